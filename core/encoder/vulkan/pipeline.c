// SPDX-License-Identifier: MIT
//
// Compute pipelines from embedded SPIR-V, and the on-disk pipeline cache.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "encoder/vulkan/vk.h"

m3_status m3_vk_pipeline_new(m3_vk_device *d, const uint32_t *code, size_t code_bytes,
                             uint32_t bindings, uint32_t push_bytes, const uint32_t *spec,
                             uint32_t n_spec, m3_vk_pipeline *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    M3_ASSERT(bindings <= 8 && n_spec <= 12);
    out->bindings = bindings;
    VkDescriptorSetLayoutBinding b[8];
    for (uint32_t i = 0; i < bindings; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dl = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .flags = d->use_push ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0,
        .bindingCount = bindings,
        .pBindings = b,
    };
    VkResult r = vkCreateDescriptorSetLayout(d->dev, &dl, NULL, &out->set_layout);
    if (r != VK_SUCCESS)
        return m3_vk_error(err, r, "vkCreateDescriptorSetLayout");
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = push_bytes};
    VkPipelineLayoutCreateInfo pl = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &out->set_layout,
        .pushConstantRangeCount = push_bytes ? 1 : 0,
        .pPushConstantRanges = &pr,
    };
    m3_status st;
    if ((r = vkCreatePipelineLayout(d->dev, &pl, NULL, &out->layout)) != VK_SUCCESS) {
        st = m3_vk_error(err, r, "vkCreatePipelineLayout");
        goto fail;
    }
    VkShaderModuleCreateInfo smi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = code_bytes,
        .pCode = code,
    };
    VkShaderModule mod;
    if ((r = vkCreateShaderModule(d->dev, &smi, NULL, &mod)) != VK_SUCCESS) {
        st = m3_vk_error(err, r, "vkCreateShaderModule");
        goto fail;
    }
    VkSpecializationMapEntry map[12];
    for (uint32_t i = 0; i < n_spec; i++)
        map[i] = (VkSpecializationMapEntry){.constantID = i, .offset = 4 * i, .size = 4};
    VkSpecializationInfo si = {
        .mapEntryCount = n_spec, .pMapEntries = map, .dataSize = 4 * n_spec, .pData = spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = mod,
            .pName = "main",
            .pSpecializationInfo = n_spec ? &si : NULL,
        },
        .layout = out->layout,
    };
    r = vkCreateComputePipelines(d->dev, d->cache, 1, &ci, NULL, &out->pipe);
    vkDestroyShaderModule(d->dev, mod, NULL);
    if (r != VK_SUCCESS) {
        st = m3_vk_error(err, r, "vkCreateComputePipelines");
        goto fail;
    }
    return M3_STATUS_OK;

fail:
    m3_vk_pipeline_free(d, out);
    return st;
}

void m3_vk_pipeline_free(m3_vk_device *d, m3_vk_pipeline *p)
{
    if (!p)
        return;
    if (p->pipe)
        vkDestroyPipeline(d->dev, p->pipe, NULL);
    if (p->layout)
        vkDestroyPipelineLayout(d->dev, p->layout, NULL);
    if (p->set_layout)
        vkDestroyDescriptorSetLayout(d->dev, p->set_layout, NULL);
    memset(p, 0, sizeof *p);
}

// mkdir -p for the folder part of path.
static void make_parents(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(tmp, 0700);
        *s = '/';
    }
}

void m3_vk_pipeline_cache_save(m3_vk_device *d)
{
    if (!d->cache || !d->cache_path[0])
        return;
    size_t size = 0;
    if (vkGetPipelineCacheData(d->dev, d->cache, &size, NULL) != VK_SUCCESS || size == 0)
        return;
    void *data = malloc(size);
    if (!data)
        return;
    if (vkGetPipelineCacheData(d->dev, d->cache, &size, data) == VK_SUCCESS) {
        make_parents(d->cache_path);
        // Write to a temporary name and rename, so a concurrent reader never sees half a file.
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", d->cache_path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        if (f) {
            bool ok = fwrite(data, 1, size, f) == size;
            ok = (fclose(f) == 0) && ok;
            if (!ok || rename(tmp, d->cache_path) != 0) {
                m3_log(M3_LOG_DEBUG, "vulkan: cannot write the pipeline cache %s", d->cache_path);
                remove(tmp);
            }
        }
    }
    free(data);
}
