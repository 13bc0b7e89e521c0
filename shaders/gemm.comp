// SPDX-License-Identifier: MIT
// C[m, n] = epilogue(sum_k A[m, k] · W[n, k] + bias[n]) for m < M, n < N.
// A: fp32 activations, row stride lda (elements), starting at a_off. W: a PyTorch Linear weight
// [N, K] stored as halves packed two per uint, row stride ldw uints (rows are padded with zeros to
// an even length). Epilogue (mode): 0 bias, 1 bias then exact-erf GELU, 2 bias + R[m, n] (the
// residual; R may be the same buffer as C: each element is read before the same thread writes it).
//
// Tiled in shared memory: a workgroup of TM×TN threads computes a BM×BN tile, each thread a
// (BM/TM)×(BN/TN) block, walking K in steps of BK. Tile sizes are specialization constants (the
// defaults suit 32 KiB of shared memory and subgroups of 8 to 32). fp32 accumulation throughout.
// Inner loops have constant trip counts and are unrolled: llvmpipe stops an invocation after
// 65535 loop iterations in total, so only the walk over K remains a loop.
#version 450
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout(constant_id = 0) const uint TM = 16;  // threads along m
layout(constant_id = 1) const uint TN = 16;  // threads along n
layout(constant_id = 2) const uint RM = 4;   // rows per thread
layout(constant_id = 3) const uint RN = 4;   // columns per thread
layout(constant_id = 4) const uint BK = 16;  // k step (even)
layout(local_size_x_id = 5) in;              // = TM * TN

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

const uint BM = TM * RM;
const uint BN = TN * RN;
shared float As[BK * BM];  // [k][m]
shared float Ws[BK * BN];  // [k][n]

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint nthreads = TM * TN;
    const uint tm = tid / TN, tn = tid % TN;
    const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;

    float acc[RM][RN];
    for (uint i = 0; i < RM; i++)
        for (uint j = 0; j < RN; j++)
            acc[i][j] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        // A tile: BM rows × BK columns, consecutive threads along k for contiguous reads.
        [[unroll]] for (uint i = 0; i < (BM * BK + nthreads - 1) / nthreads; i++) {
            uint e = tid + i * nthreads;
            if (e >= BM * BK)
                break;
            uint mm = e / BK, kk = e % BK;
            uint gm = m0 + mm, gk = k0 + kk;
            As[kk * BM + mm] = (gm < p.M && gk < p.K) ? a[p.a_off + gm * p.lda + gk] : 0.0;
        }
        // W tile: BN rows × BK halves = BK/2 words per row.
        const uint half_bk = BK / 2;
        [[unroll]] for (uint i = 0; i < (BN * half_bk + nthreads - 1) / nthreads; i++) {
            uint e = tid + i * nthreads;
            if (e >= BN * half_bk)
                break;
            uint nn = e / half_bk, kw = e % half_bk;
            uint gn = n0 + nn, gk = k0 + 2 * kw;
            vec2 v = vec2(0.0);
            if (gn < p.N && gk < p.K)
                v = unpackHalf2x16(w[gn * p.ldw + gk / 2]);  // the pad half is zero
            Ws[(2 * kw) * BN + nn] = v.x;
            Ws[(2 * kw + 1) * BN + nn] = v.y;
        }
        barrier();
        [[unroll]] for (uint kk = 0; kk < BK; kk++) {
            float av[RM], wv[RN];
            [[unroll]] for (uint i = 0; i < RM; i++)
                av[i] = As[kk * BM + tm + i * TM];
            [[unroll]] for (uint j = 0; j < RN; j++)
                wv[j] = Ws[kk * BN + tn + j * TN];
            [[unroll]] for (uint i = 0; i < RM; i++)
                [[unroll]] for (uint j = 0; j < RN; j++)
                    acc[i][j] = fma(av[i], wv[j], acc[i][j]);
        }
        barrier();
    }

    for (uint i = 0; i < RM; i++) {
        uint gm = m0 + tm + i * TM;
        if (gm >= p.M)
            continue;
        for (uint j = 0; j < RN; j++) {
            uint gn = n0 + tn + j * TN;
            if (gn >= p.N)
                continue;
            float v = acc[i][j] + bias[gn];
            if (p.mode == 1u)
                v = gelu_erf(v);
            else if (p.mode == 2u)
                v += r[p.r_off + gm * p.ldr + gn];
            c[p.c_off + gm * p.ldc + gn] = v;
        }
    }
}
