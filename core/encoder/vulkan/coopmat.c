// SPDX-License-Identifier: MIT
//
// Whether the NV cooperative-matrix GEMM (shaders/gemm-coopmat-nv.comp) can run on a device, and
// with which matrix shape. A pure function of the capabilities device.c gathers, so that the
// choice is unit-tested with made-up property lists (tests/encoder/test-vulkan-coopmat.c) on
// machines without such a device.
#include "encoder/vulkan/vk.h"

size_t m3_vk_coopmat_shared_bytes(m3_vk_coopmat c)
{
    // As the shader declares them: As [BM][BK + 8] and Bs [BN][BK + 8] halves, Cs [BM][BN + 4].
    size_t bm = (size_t)M3_VK_COOP_WM * M3_VK_COOP_SM * c.m;
    size_t bn = (size_t)M3_VK_COOP_WN * M3_VK_COOP_SN * c.n;
    size_t bk = (size_t)M3_VK_COOP_KS * c.k;
    return (bm + bn) * (bk + 8) * 2 + bm * (bn + 4) * 4;
}

static bool good_size(uint32_t v)
{
    return v == 8 || v == 16 || v == 32;
}

bool m3_vk_coopmat_choose(const m3_vk_coopmat_caps *caps, m3_vk_coopmat *out, const char **why)
{
    *out = (m3_vk_coopmat){0, 0, 0};
    const char *no = NULL;
    if (!caps->compiled)
        no = "not built (glslc lacks GL_NV_cooperative_matrix)";
    else if (!caps->extension)
        no = "no VK_NV_cooperative_matrix";
    else if (!caps->feature || !caps->compute_stage)
        no = "cooperative matrices not available to compute shaders";
    else if (!caps->float16)
        no = "no shaderFloat16";
    else if (!caps->memory_model)
        no = "no vulkanMemoryModel";
    else if (!caps->subgroup_basic || caps->subgroup_size == 0)
        no = "no basic subgroup operations in compute shaders";
    if (no) {
        *why = no;
        return false;
    }
    m3_vk_coopmat best = {0, 0, 0};
    for (uint32_t i = 0; i < caps->n_props; i++) {
        const VkCooperativeMatrixPropertiesNV *p = &caps->props[i];
        if (p->AType != VK_COMPONENT_TYPE_FLOAT16_NV || p->BType != VK_COMPONENT_TYPE_FLOAT16_NV ||
            p->CType != VK_COMPONENT_TYPE_FLOAT32_NV || p->DType != VK_COMPONENT_TYPE_FLOAT32_NV ||
            p->scope != VK_SCOPE_SUBGROUP_NV || !good_size(p->MSize) || !good_size(p->NSize) ||
            !good_size(p->KSize))
            continue;
        m3_vk_coopmat c = {p->MSize, p->NSize, p->KSize};
        if ((size_t)M3_VK_COOP_WM * M3_VK_COOP_WN * caps->subgroup_size > caps->max_invocations ||
            m3_vk_coopmat_shared_bytes(c) > caps->max_shared)
            continue;
        bool c16 = c.m == 16 && c.n == 16 && c.k == 16, b16 = best.m == 16 && best.n == 16 &&
                                                           best.k == 16;
        uint64_t cv = (uint64_t)c.m * c.n * c.k, bv = (uint64_t)best.m * best.n * best.k;
        if (best.m == 0 || (c16 && !b16) || (!b16 && cv > bv))
            best = c;
    }
    if (best.m == 0) {
        *why = "no fp16 x fp16 -> fp32 subgroup shape that fits";
        return false;
    }
    *out = best;
    *why = "";
    return true;
}
