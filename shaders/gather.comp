// SPDX-License-Identifier: MIT
// Gathers rows: o[i] = x[idx[idx_off + i]] for row i = the workgroup (rows of H floats). The dense
// head's <s> rows, one per sequence, written straight into the host-visible download buffer; the
// row count comes from an indirect dispatch, so one recorded forward pass serves any packing.
#version 450

layout(local_size_x = 128) in;

layout(push_constant) uniform Args {
    uint H, idx_off;
} p;

layout(std430, binding = 0) readonly buffer BufX { float x[]; };
layout(std430, binding = 1) readonly buffer BufIdx { uint idx[]; };
layout(std430, binding = 2) writeonly buffer BufO { float o[]; };

void main()
{
    const uint row = gl_WorkGroupID.x;
    const uint src = idx[p.idx_off + row] * p.H;
    for (uint i = gl_LocalInvocationID.x; i < p.H; i += 128)
        o[row * p.H + i] = x[src + i];
}
