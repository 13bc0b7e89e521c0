// SPDX-License-Identifier: MIT
// LayerNorm of each row of x [rows, H] in place, one workgroup per row, statistics in fp32 with
// two passes (mean, then the centred variance) as the CPU backend does in double.
// With -DEMBED the row is first built as the embedding input:
//   x[t] = word[t] (gathered on the host) + position[pos[t]] (packed halves) + type (fp32)
#version 450
#include "common.glsl"

layout(local_size_x = 128) in;

layout(push_constant) uniform Args {
    uint rows, H;
    uint ldpos;  // uints per position row
    float eps;
} p;

layout(std430, binding = 0) buffer BufX { float x[]; };
layout(std430, binding = 1) readonly buffer BufG { float gamma[]; };
layout(std430, binding = 2) readonly buffer BufB { float beta[]; };
#ifdef EMBED
layout(std430, binding = 3) readonly buffer BufPos { uint pos_table[]; };
layout(std430, binding = 4) readonly buffer BufType { float type_row[]; };
layout(std430, binding = 5) readonly buffer BufIdx { int pos[]; };
#endif

shared float red[128];

float block_sum(float v)
{
    uint tid = gl_LocalInvocationID.x;
    red[tid] = v;
    barrier();
    for (uint s = 64; s > 0; s >>= 1) {
        if (tid < s)
            red[tid] += red[tid + s];
        barrier();
    }
    float total = red[0];
    barrier();
    return total;
}

void main()
{
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows)
        return;  // uniform per workgroup
    const uint tid = gl_LocalInvocationID.x;
    const uint base = row * p.H;
#ifdef EMBED
    const uint prow = uint(pos[row]) * p.ldpos;
    for (uint i = tid; i < p.H; i += 128)
        x[base + i] += half_at(pos_table[prow + i / 2], i) + type_row[i];
    barrier();  // memoryBarrierBuffer not needed: each element is rewritten by its own thread
#endif
    float s = 0.0;
    for (uint i = tid; i < p.H; i += 128)
        s += x[base + i];
    const float mean = block_sum(s) / float(p.H);
    float q = 0.0;
    for (uint i = tid; i < p.H; i += 128) {
        float d = x[base + i] - mean;
        q += d * d;
    }
    const float inv = inversesqrt(block_sum(q) / float(p.H) + p.eps);
    for (uint i = tid; i < p.H; i += 128)
        x[base + i] = (x[base + i] - mean) * inv * gamma[i] + beta[i];
}
