// SPDX-License-Identifier: MIT
// Fused multi-head attention over packed variable-length sequences, flash style: each workgroup
// takes BR queries of one sequence and one head, walks that sequence's keys in tiles of BC with an
// online softmax (running max m and sum l per query), and never stores the L×L matrix.
//   qkv [T, 3·hidden] fp32: q at column h·D, k at hidden + h·D, v at 2·hidden + h·D
//   out [T, hidden] fp32:   out[t, h·D + d] = softmax_j(q_t·k_j · scale) · v_j over t's sequence
// blocks[b] = (first query token, queries in block (<= BR), sequence's first token, its length);
// dispatch (blocks, heads). 8 threads share a query row: keys j ≡ lane (mod 8) for the scores and
// dimensions d ≡ lane (mod 8) for the output.
// Every inner loop has a constant trip count and is unrolled: llvmpipe (lavapipe) stops a shader
// invocation after 65535 loop iterations in total, which a 4096-token sequence would otherwise
// exceed; only the loop over key tiles (at most 256 at 8192 tokens) remains a loop.
#version 450
#extension GL_EXT_control_flow_attributes : require

layout(constant_id = 0) const uint D = 64;  // head size, a multiple of 8, at most 64
const uint BR = 16, BC = 32, LANES = 8, DL = D / LANES;
layout(local_size_x = 128) in;  // BR * LANES

layout(push_constant) uniform Args {
    uint hidden;
    float scale;
} p;

layout(std430, binding = 0) readonly buffer BufQKV { float qkv[]; };
layout(std430, binding = 1) writeonly buffer BufO { float o[]; };
layout(std430, binding = 2) readonly buffer BufBlocks { uvec4 blocks[]; };

shared vec4 Qs[BR * D / 4];
shared vec4 Ks[BC * D / 4];
shared float Vs[BC * D];
shared float Ps[BR * BC];
shared float red[BR * LANES];

void main()
{
    const uvec4 blk = blocks[gl_WorkGroupID.x];
    const uint head = gl_WorkGroupID.y;
    const uint tid = gl_LocalInvocationID.x;
    const uint row = tid / LANES, lane = tid % LANES;
    const uint ld = 3 * p.hidden, hoff = head * D;

    [[unroll]] for (uint i = 0; i < (BR * D / 4 + BR * LANES - 1) / (BR * LANES); i++) {
        uint e = tid + i * BR * LANES;
        if (e < BR * D / 4) {
            uint rr = e / (D / 4), d = 4 * (e % (D / 4));
            vec4 v = vec4(0.0);
            if (rr < blk.y) {
                uint at = (blk.x + rr) * ld + hoff + d;
                v = vec4(qkv[at], qkv[at + 1], qkv[at + 2], qkv[at + 3]) * p.scale;
            }
            Qs[e] = v;
        }
    }

    float m = -1.0 / 0.0, l = 0.0;
    float acc[DL];
    [[unroll]] for (uint i = 0; i < DL; i++)
        acc[i] = 0.0;

    for (uint j0 = 0; j0 < blk.w; j0 += BC) {
        const uint nk = min(BC, blk.w - j0);
        barrier();  // the previous tile's Ks/Vs/Ps are no longer read
        [[unroll]] for (uint i = 0; i < (BC * D / 4 + BR * LANES - 1) / (BR * LANES); i++) {
            uint e = tid + i * BR * LANES;
            if (e >= BC * D / 4)
                break;
            uint cc = e / (D / 4), d = 4 * (e % (D / 4));
            vec4 kv = vec4(0.0), vv = vec4(0.0);
            if (cc < nk) {
                uint at = (blk.z + j0 + cc) * ld + p.hidden + hoff + d;
                kv = vec4(qkv[at], qkv[at + 1], qkv[at + 2], qkv[at + 3]);
                at += p.hidden;
                vv = vec4(qkv[at], qkv[at + 1], qkv[at + 2], qkv[at + 3]);
            }
            Ks[e] = kv;
            Vs[4 * e] = vv.x;
            Vs[4 * e + 1] = vv.y;
            Vs[4 * e + 2] = vv.z;
            Vs[4 * e + 3] = vv.w;
        }
        barrier();

        // Scores of this row for keys lane, lane + 8, ...
        float s[BC / LANES];
        float tmax = -1.0 / 0.0;
        [[unroll]] for (uint i = 0; i < BC / LANES; i++) {
            uint cc = lane + i * LANES;
            float sc = 0.0;
            [[unroll]] for (uint d = 0; d < D / 4; d++)
                sc += dot(Qs[row * (D / 4) + d], Ks[cc * (D / 4) + d]);
            s[i] = cc < nk ? sc : -1.0 / 0.0;
            tmax = max(tmax, s[i]);
        }
        red[tid] = tmax;
        barrier();
        [[unroll]] for (uint i = 0; i < LANES; i++)
            tmax = max(tmax, red[row * LANES + i]);
        const float m_new = max(m, tmax);  // finite: every tile has at least one key
        const float alpha = exp(m - m_new);
        float psum = 0.0;
        [[unroll]] for (uint i = 0; i < BC / LANES; i++) {
            float e = exp(s[i] - m_new);
            Ps[row * BC + lane + i * LANES] = e;
            psum += e;
        }
        barrier();  // red read above, Ps written
        red[tid] = psum;
        barrier();
        float tsum = 0.0;
        [[unroll]] for (uint i = 0; i < LANES; i++)
            tsum += red[row * LANES + i];
        l = l * alpha + tsum;
        m = m_new;
        [[unroll]] for (uint i = 0; i < DL; i++) {
            uint d = lane + i * LANES;
            float a = acc[i] * alpha;
            [[unroll]] for (uint cc = 0; cc < BC; cc++)  // Ps is 0 past the last key
                a = fma(Ps[row * BC + cc], Vs[cc * D + d], a);
            acc[i] = a;
        }
    }

    if (row < blk.y) {
        const uint t = blk.x + row;
        const float inv = 1.0 / l;
        [[unroll]] for (uint i = 0; i < DL; i++)
            o[t * p.hidden + hoff + lane + i * LANES] = acc[i] * inv;
    }
}
