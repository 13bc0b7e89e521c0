// SPDX-License-Identifier: MIT
// The sparse head's linear part: out[t] = relu(x[t] · w + b) for each token t of x [rows, H].
// One workgroup per token.
#version 450

layout(local_size_x = 128) in;

layout(push_constant) uniform Args {
    uint rows, H;
    float b;
} p;

layout(std430, binding = 0) readonly buffer BufX { float x[]; };
layout(std430, binding = 1) readonly buffer BufW { float w[]; };
layout(std430, binding = 2) writeonly buffer BufO { float o[]; };

shared float red[128];

void main()
{
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows)
        return;
    const uint tid = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint i = tid; i < p.H; i += 128)
        s = fma(x[row * p.H + i], w[i], s);
    red[tid] = s;
    barrier();
    for (uint k = 64; k > 0; k >>= 1) {
        if (tid < k)
            red[tid] += red[tid + k];
        barrier();
    }
    if (tid == 0)
        o[row] = max(red[0] + p.b, 0.0);
}
