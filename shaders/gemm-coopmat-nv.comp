// SPDX-License-Identifier: MIT
// gemm.comp's operation on tensor cores through GL_NV_cooperative_matrix (same push constants,
// bindings and epilogues, so ops.c records either one):
//   C[m, n] = epilogue(sum_k A[m, k] · W[n, k] + bias[n]) for m < M, n < N
// A (fp32 activations) and W (packed halves) are staged in shared memory as fp16; the products
// accumulate in fp32 cooperative matrices; the finished fp32 tile goes through shared memory to
// the epilogue (bias, exact-erf GELU, residual), which needs each element's row and column.
//
// A workgroup is WM×WN subgroups; each subgroup owns SM×SN matrices of MM×MN, so the workgroup
// tile is BM = WM·SM·MM by BN = WN·SN·MN, walking K in steps of BK = KS·MK. The matrix shape is
// the one the device reports for fp16×fp16→fp32 at subgroup scope (VkCooperativeMatrixPropertiesNV,
// chosen in core/encoder/vulkan/coopmat.c); all of these are specialization constants, and the
// workgroup size is WM·WN·(subgroup size).
// Built only when glslc accepts GL_NV_cooperative_matrix (the configure-time probe), used only on a
// device that advertises it with a matching shape, cooperativeMatrix, shaderFloat16 and
// vulkanMemoryModel (GL_KHR_memory_scope_semantics makes glslang emit the Vulkan memory model).
#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"

layout(constant_id = 0) const uint MM = 16;  // cooperative matrix rows
layout(constant_id = 1) const uint MN = 16;  // cooperative matrix columns
layout(constant_id = 2) const uint MK = 16;  // cooperative matrix depth
layout(constant_id = 3) const uint WM = 2;   // subgroups along m
layout(constant_id = 4) const uint WN = 2;   // subgroups along n
layout(constant_id = 5) const uint SM = 2;   // matrices per subgroup along m
layout(constant_id = 6) const uint SN = 2;   // matrices per subgroup along n
layout(constant_id = 7) const uint KS = 2;   // MK steps per shared tile
layout(local_size_x_id = 8) in;              // WM · WN · subgroup size

layout(push_constant) uniform Args {
    uint M, N, K;
    uint lda, ldw, ldc, ldr;
    uint a_off, c_off, r_off;
    uint mode;
} p;

layout(std430, binding = 0) readonly buffer BufA { float a[]; };
layout(std430, binding = 1) readonly buffer BufW { uint w[]; };
layout(std430, binding = 2) readonly buffer BufBias { float bias[]; };
layout(std430, binding = 3) readonly buffer BufR { float r[]; };
layout(std430, binding = 4) buffer BufC { float c[]; };

const uint NT = gl_WorkGroupSize.x;
const uint BM = WM * SM * MM, BN = WN * SN * MN, BK = KS * MK;
// Row strides padded by 16 bytes (fewer bank conflicts); cooperative loads and stores want
// 16-byte-aligned rows, which these keep for any MK, MN that are multiples of 8.
const uint LDA = BK + 8, LDB = BK + 8, LDC = BN + 4;

shared float16_t As[BM * LDA];  // [m][k]
shared float16_t Bs[BN * LDB];  // [n][k], i.e. the K×N operand in column-major order
shared float Cs[BM * LDC];      // [m][n]

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint wm = gl_SubgroupID / WN, wn = gl_SubgroupID % WN;
    const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;

    fcoopmatNV<32, gl_ScopeSubgroup, MM, MN> acc[SM][SN];
    [[unroll]] for (uint i = 0; i < SM; i++)
        [[unroll]] for (uint j = 0; j < SN; j++)
            acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, MM, MN>(0.0);

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        // A: BM rows × BK columns, consecutive threads along k (contiguous reads); zero outside.
        [[unroll]] for (uint i = 0; i < (BM * BK + NT - 1) / NT; i++) {
            const uint e = tid + i * NT;
            if (e < BM * BK) {
                const uint mm = e / BK, kk = e % BK, gm = m0 + mm, gk = k0 + kk;
                const float v = (gm < p.M && gk < p.K) ? a[p.a_off + gm * p.lda + gk] : 0.0;
                As[mm * LDA + kk] = float16_t(v);
            }
        }
        // W: BN rows × BK/2 words of two halves (a row's pad half is zero).
        [[unroll]] for (uint i = 0; i < (BN * BK / 2 + NT - 1) / NT; i++) {
            const uint e = tid + i * NT;
            if (e < BN * BK / 2) {
                const uint nn = e / (BK / 2), kw = e % (BK / 2), gn = n0 + nn, gk = k0 + 2 * kw;
                f16vec2 v = f16vec2(0.0);
                if (gn < p.N && gk < p.K)
                    v = unpackFloat2x16(w[gn * p.ldw + gk / 2]);
                Bs[nn * LDB + 2 * kw] = v.x;
                Bs[nn * LDB + 2 * kw + 1] = v.y;
            }
        }
        barrier();
        [[unroll]] for (uint ks = 0; ks < KS; ks++) {
            fcoopmatNV<16, gl_ScopeSubgroup, MM, MK> am[SM];
            fcoopmatNV<16, gl_ScopeSubgroup, MK, MN> bm[SN];
            [[unroll]] for (uint i = 0; i < SM; i++)
                coopMatLoadNV(am[i], As, (wm * SM + i) * MM * LDA + ks * MK, LDA, false);
            [[unroll]] for (uint j = 0; j < SN; j++)
                coopMatLoadNV(bm[j], Bs, (wn * SN + j) * MN * LDB + ks * MK, LDB, true);
            [[unroll]] for (uint i = 0; i < SM; i++)
                [[unroll]] for (uint j = 0; j < SN; j++)
                    acc[i][j] = coopMatMulAddNV(am[i], bm[j], acc[i][j]);
        }
        barrier();
    }

    [[unroll]] for (uint i = 0; i < SM; i++)
        [[unroll]] for (uint j = 0; j < SN; j++)
            coopMatStoreNV(acc[i][j], Cs, (wm * SM + i) * MM * LDC + (wn * SN + j) * MN, LDC, false);
    barrier();
    [[unroll]] for (uint i = 0; i < (BM * BN + NT - 1) / NT; i++) {
        const uint e = tid + i * NT;
        const uint mm = e / BN, nn = e % BN, gm = m0 + mm, gn = n0 + nn;
        if (e < BM * BN && gm < p.M && gn < p.N) {
            float v = Cs[mm * LDC + nn] + bias[gn];
            if (p.mode == 1u)
                v = gelu_erf(v);
            else if (p.mode == 2u)
                v += r[p.r_off + gm * p.ldr + gn];
            c[p.c_off + gm * p.ldc + gn] = v;
        }
    }
}
