// SPDX-License-Identifier: MIT
//
// The choice of the NV cooperative-matrix GEMM (m3_vk_coopmat_choose) on made-up device
// capabilities: property lists as NVIDIA drivers report them, lists without a usable entry, and
// each missing feature. Needs no device: the kernel itself runs only where the hardware has
// cooperative matrices (not lavapipe), so this is what machines without one can check.
#include <stdio.h>
#include <string.h>

#include "encoder/vulkan/vk.h"

static int failures, checks;

#define CHECK(cond, ...)                                \
    do {                                                \
        checks++;                                       \
        if (!(cond)) {                                  \
            failures++;                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

enum { F16 = VK_COMPONENT_TYPE_FLOAT16_NV, F32 = VK_COMPONENT_TYPE_FLOAT32_NV,
       S8 = VK_COMPONENT_TYPE_SINT8_NV, S32 = VK_COMPONENT_TYPE_SINT32_NV };

static VkCooperativeMatrixPropertiesNV prop(uint32_t m, uint32_t n, uint32_t k, int a, int b,
                                            int c, int d, VkScopeNV scope)
{
    return (VkCooperativeMatrixPropertiesNV){
        .sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV,
        .MSize = m, .NSize = n, .KSize = k,
        .AType = (VkComponentTypeNV)a, .BType = (VkComponentTypeNV)b,
        .CType = (VkComponentTypeNV)c, .DType = (VkComponentTypeNV)d,
        .scope = scope,
    };
}

// A device with everything (an NVIDIA GPU: subgroup 32, 48 KiB shared memory).
static m3_vk_coopmat_caps full(const VkCooperativeMatrixPropertiesNV *p, uint32_t n)
{
    return (m3_vk_coopmat_caps){
        .compiled = true, .extension = true, .feature = true, .compute_stage = true,
        .float16 = true, .memory_model = true, .subgroup_basic = true,
        .subgroup_size = 32, .max_shared = 48 * 1024, .max_invocations = 1024,
        .props = p, .n_props = n,
    };
}

static void expect(const char *what, const m3_vk_coopmat_caps *caps, uint32_t m, uint32_t n,
                   uint32_t k, const char *why_part)
{
    m3_vk_coopmat c = {9, 9, 9};
    const char *why = NULL;
    bool ok = m3_vk_coopmat_choose(caps, &c, &why);
    CHECK(why != NULL, "%s: no reason given", what);
    if (m == 0) {
        CHECK(!ok && c.m == 0 && c.n == 0 && c.k == 0, "%s: chose %ux%ux%u", what, c.m, c.n, c.k);
        CHECK(why && strstr(why, why_part), "%s: reason \"%s\", expected \"%s\"", what,
              why ? why : "(null)", why_part);
    } else {
        CHECK(ok && c.m == m && c.n == n && c.k == k, "%s: chose %ux%ux%u (%s), expected %ux%ux%u",
              what, c.m, c.n, c.k, why ? why : "", m, n, k);
    }
    printf("%-52s -> %s%s\n", what, ok ? "cooperative matrix " : "tiled: ", ok ? "" : why);
}

int main(void)
{
    const VkScopeNV SG = VK_SCOPE_SUBGROUP_NV;
    // What an NVIDIA driver lists (fp16 -> fp16 and -> fp32 in several shapes, int8).
    const VkCooperativeMatrixPropertiesNV nvidia[] = {
        prop(16, 8, 16, F16, F16, F16, F16, SG), prop(16, 8, 8, F16, F16, F16, F16, SG),
        prop(16, 16, 16, F16, F16, F16, F16, SG), prop(16, 8, 16, F16, F16, F32, F32, SG),
        prop(16, 8, 8, F16, F16, F32, F32, SG), prop(16, 16, 16, F16, F16, F32, F32, SG),
        prop(16, 8, 32, S8, S8, S32, S32, SG),
    };
    m3_vk_coopmat_caps caps = full(nvidia, sizeof nvidia / sizeof *nvidia);
    expect("NVIDIA list: 16x16x16 fp16->fp32 preferred", &caps, 16, 16, 16, "");

    const VkCooperativeMatrixPropertiesNV no16[] = {
        prop(16, 8, 8, F16, F16, F32, F32, SG), prop(16, 8, 16, F16, F16, F32, F32, SG),
        prop(16, 16, 16, F16, F16, F16, F16, SG),  // fp16 accumulation only at 16x16x16
    };
    caps = full(no16, 3);
    expect("no fp32 16x16x16: the largest other (16x8x16)", &caps, 16, 8, 16, "");

    const VkCooperativeMatrixPropertiesNV big[] = {
        prop(32, 32, 16, F16, F16, F32, F32, SG), prop(16, 8, 16, F16, F16, F32, F32, SG),
    };
    caps = full(big, 2);
    caps.max_shared = 32 * 1024;  // the 32x32 tile needs more shared memory than this
    expect("32x32x16 over the shared memory: 16x8x16", &caps, 16, 8, 16, "");
    caps.max_shared = 128 * 1024;
    expect("32x32x16 with room for it", &caps, 32, 32, 16, "");

    const VkCooperativeMatrixPropertiesNV bad[] = {
        prop(16, 16, 16, F16, F16, F16, F16, SG),   // fp16 accumulation
        prop(16, 16, 16, F16, F32, F32, F32, SG),   // mixed inputs
        prop(16, 16, 16, F16, F16, F32, F32, VK_SCOPE_WORKGROUP_NV),
        prop(12, 16, 16, F16, F16, F32, F32, SG),   // odd size
        prop(16, 16, 64, F16, F16, F32, F32, SG),   // K = 64: not a size the kernel takes
        prop(16, 8, 32, S8, S8, S32, S32, SG),
    };
    caps = full(bad, sizeof bad / sizeof *bad);
    expect("no fp16 x fp16 -> fp32 subgroup entry", &caps, 0, 0, 0, "no fp16 x fp16 -> fp32");
    caps = full(NULL, 0);
    expect("empty property list", &caps, 0, 0, 0, "no fp16 x fp16 -> fp32");

    // Each missing piece.
    caps = full(nvidia, 7);
    caps.compiled = false;
    expect("glslc without GL_NV_cooperative_matrix", &caps, 0, 0, 0, "not built");
    caps = full(nvidia, 7);
    caps.extension = false;
    expect("no VK_NV_cooperative_matrix (lavapipe)", &caps, 0, 0, 0, "no VK_NV_cooperative_matrix");
    caps = full(nvidia, 7);
    caps.feature = false;
    expect("cooperativeMatrix feature off", &caps, 0, 0, 0, "not available");
    caps = full(nvidia, 7);
    caps.compute_stage = false;
    expect("not in compute shaders", &caps, 0, 0, 0, "not available");
    caps = full(nvidia, 7);
    caps.float16 = false;
    expect("no shaderFloat16", &caps, 0, 0, 0, "shaderFloat16");
    caps = full(nvidia, 7);
    caps.memory_model = false;
    expect("no vulkanMemoryModel", &caps, 0, 0, 0, "vulkanMemoryModel");
    caps = full(nvidia, 7);
    caps.subgroup_basic = false;
    expect("no subgroup operations", &caps, 0, 0, 0, "subgroup");
    caps = full(nvidia, 7);
    caps.max_invocations = 64;  // 2x2 subgroups of 32 = 128 invocations
    expect("workgroup of 128 over the invocation limit", &caps, 0, 0, 0, "fits");
    caps = full(nvidia, 7);
    caps.subgroup_size = 64;  // a 256-invocation workgroup is fine
    expect("subgroups of 64", &caps, 16, 16, 16, "");

    // The tile's shared memory as the shader declares it (64x64 tile, BK 32).
    size_t bytes = m3_vk_coopmat_shared_bytes((m3_vk_coopmat){16, 16, 16});
    CHECK(bytes == (size_t)(64 + 64) * 40 * 2 + 64 * 68 * 4, "shared bytes %zu", bytes);

    printf("%d checks, %d failure(s)\n", checks, failures);
    return failures ? 1 : 0;
}
