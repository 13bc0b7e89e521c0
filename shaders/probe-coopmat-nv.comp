// SPDX-License-Identifier: MIT
// Configure-time probe: does glslc accept GL_NV_cooperative_matrix? (shaders/meson.build)
#version 450
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 32) in;
layout(binding = 0) buffer B { float16_t d[]; };
void main()
{
    fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> m = fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>(0.0);
    coopMatStoreNV(m, d, 0, 16, false);
}
