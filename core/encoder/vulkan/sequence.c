// SPDX-License-Identifier: MIT
//
// A sequence: one command buffer and its fence, recorded once and submitted as often as wanted.
// Descriptors are pushed into the command buffer (VK_KHR_push_descriptor) where the device has
// it; otherwise each dispatch gets a descriptor set from the sequence's pool, and the sets live as
// long as the recording (the pool is reset when the next recording begins).
#include <string.h>

#include "encoder/vulkan/vk.h"

m3_status m3_vk_sequence_new(m3_vk_device *d, m3_vk_sequence *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = d->queue_family,
    };
    VkResult r = vkCreateCommandPool(d->dev, &pci, NULL, &out->pool);
    if (r != VK_SUCCESS)
        return m3_vk_error(err, r, "vkCreateCommandPool");
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = out->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    m3_status st;
    if ((r = vkAllocateCommandBuffers(d->dev, &ai, &out->cmd)) != VK_SUCCESS) {
        st = m3_vk_error(err, r, "vkAllocateCommandBuffers");
        goto fail;
    }
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = vkCreateFence(d->dev, &fci, NULL, &out->fence)) != VK_SUCCESS) {
        st = m3_vk_error(err, r, "vkCreateFence");
        goto fail;
    }
    return M3_STATUS_OK;
fail:
    m3_vk_sequence_free(d, out);
    return st;
}

void m3_vk_sequence_free(m3_vk_device *d, m3_vk_sequence *s)
{
    if (!s)
        return;
    if (s->dpool)
        vkDestroyDescriptorPool(d->dev, s->dpool, NULL);
    if (s->fence)
        vkDestroyFence(d->dev, s->fence, NULL);
    if (s->pool)
        vkDestroyCommandPool(d->dev, s->pool, NULL);  // frees cmd
    memset(s, 0, sizeof *s);
}

m3_status m3_vk_sequence_begin(m3_vk_device *d, m3_vk_sequence *s, uint32_t max_dispatches,
                               m3_error *err)
{
    VkResult r;
    s->st = M3_STATUS_OK;
    s->err = err;
    s->recorded = false;
    if (!d->use_push && max_dispatches > s->dpool_sets) {
        if (s->dpool)
            vkDestroyDescriptorPool(d->dev, s->dpool, NULL);
        s->dpool = VK_NULL_HANDLE;
        s->dpool_sets = 0;
        VkDescriptorPoolSize ps = {
            .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = 8 * max_dispatches};
        VkDescriptorPoolCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
            .maxSets = max_dispatches,
            .poolSizeCount = 1,
            .pPoolSizes = &ps,
        };
        if ((r = vkCreateDescriptorPool(d->dev, &ci, NULL, &s->dpool)) != VK_SUCCESS)
            return m3_vk_error(err, r, "vkCreateDescriptorPool");
        s->dpool_sets = max_dispatches;
    } else if (s->dpool) {
        vkResetDescriptorPool(d->dev, s->dpool, 0);
    }
    s->dpool_used = 0;
    if ((r = vkResetCommandBuffer(s->cmd, 0)) != VK_SUCCESS)
        return m3_vk_error(err, r, "vkResetCommandBuffer");
    // Not ONE_TIME_SUBMIT: a recording is replayed.
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    if ((r = vkBeginCommandBuffer(s->cmd, &bi)) != VK_SUCCESS)
        return m3_vk_error(err, r, "vkBeginCommandBuffer");
    return M3_STATUS_OK;
}

void m3_vk_sequence_barrier(m3_vk_sequence *s)
{
    // Indirect dispatch arguments are read in the DRAW_INDIRECT stage.
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                         VK_ACCESS_INDIRECT_COMMAND_READ_BIT,
    };
    vkCmdPipelineBarrier(s->cmd,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                             VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
}

// Binds the pipeline, its buffers and push constants; false after an error (kept in s).
static bool bind(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_pipeline *p,
                 const m3_vk_range *ranges, const void *push, uint32_t push_bytes)
{
    if (s->st != M3_STATUS_OK)
        return false;
    VkDescriptorBufferInfo bi[8];
    VkWriteDescriptorSet w[8];
    VkDescriptorSet set = VK_NULL_HANDLE;
    if (!d->use_push) {
        if (s->dpool_used >= s->dpool_sets) {
            s->st = m3_error_set(s->err, M3_STATUS_DEVICE, 0,
                                 "vulkan: internal error: more dispatches than planned (%u)",
                                 s->dpool_sets);
            return false;
        }
        VkDescriptorSetAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
            .descriptorPool = s->dpool,
            .descriptorSetCount = 1,
            .pSetLayouts = &p->set_layout,
        };
        VkResult r = vkAllocateDescriptorSets(d->dev, &ai, &set);
        if (r != VK_SUCCESS) {
            s->st = m3_vk_error(s->err, r, "vkAllocateDescriptorSets");
            return false;
        }
        s->dpool_used++;
    }
    for (uint32_t i = 0; i < p->bindings; i++) {
        VkDeviceSize size = ranges[i].size ? ranges[i].size : VK_WHOLE_SIZE;
        if (size == VK_WHOLE_SIZE && ranges[i].b->size - ranges[i].offset > d->max_range)
            size = d->max_range;
        bi[i] = (VkDescriptorBufferInfo){ranges[i].b->buf, ranges[i].offset, size};
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,  // ignored when pushed
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    }
    vkCmdBindPipeline(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipe);
    if (d->use_push) {
        d->push_descriptor_set(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, p->bindings,
                               w);
    } else {
        vkUpdateDescriptorSets(d->dev, p->bindings, w, 0, NULL);
        vkCmdBindDescriptorSets(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0,
                                NULL);
    }
    if (push_bytes)
        vkCmdPushConstants(s->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    return true;
}

void m3_vk_sequence_dispatch(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_pipeline *p,
                             const m3_vk_range *ranges, const void *push, uint32_t push_bytes,
                             uint32_t gx, uint32_t gy, uint32_t gz)
{
    if (!bind(d, s, p, ranges, push, push_bytes))
        return;
    vkCmdDispatch(s->cmd, gx, gy, gz);
    m3_vk_sequence_barrier(s);
}

void m3_vk_sequence_dispatch_indirect(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_pipeline *p,
                                      const m3_vk_range *ranges, const void *push,
                                      uint32_t push_bytes, const m3_vk_buffer *args,
                                      VkDeviceSize offset)
{
    M3_ASSERT(offset % 4 == 0);
    if (!bind(d, s, p, ranges, push, push_bytes))
        return;
    vkCmdDispatchIndirect(s->cmd, args->buf, offset);
    m3_vk_sequence_barrier(s);
}

void m3_vk_sequence_copy(m3_vk_sequence *s, const m3_vk_buffer *src, VkDeviceSize src_off,
                         const m3_vk_buffer *dst, VkDeviceSize dst_off, VkDeviceSize bytes)
{
    if (s->st != M3_STATUS_OK || bytes == 0)
        return;
    VkBufferCopy c = {src_off, dst_off, bytes};
    vkCmdCopyBuffer(s->cmd, src->buf, dst->buf, 1, &c);
}

m3_status m3_vk_sequence_end(m3_vk_device *d, m3_vk_sequence *s, m3_error *err)
{
    (void)d;
    // What the shaders and copies wrote becomes visible to the host once the fence is waited on.
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    vkCmdPipelineBarrier(s->cmd,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkResult r = vkEndCommandBuffer(s->cmd);
    if (s->st != M3_STATUS_OK)
        return s->st;
    if (r != VK_SUCCESS)
        return m3_vk_error(err, r, "vkEndCommandBuffer");
    s->recorded = true;
    return M3_STATUS_OK;
}

m3_status m3_vk_sequence_run(m3_vk_device *d, m3_vk_sequence *s, m3_error *err)
{
    M3_ASSERT(s->recorded);
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &s->cmd,
    };
    VkResult r;
    if ((r = vkResetFences(d->dev, 1, &s->fence)) != VK_SUCCESS)
        return m3_vk_error(err, r, "vkResetFences");
    if ((r = vkQueueSubmit(d->queue, 1, &si, s->fence)) != VK_SUCCESS)
        return m3_vk_error(err, r, "vkQueueSubmit");
    if ((r = vkWaitForFences(d->dev, 1, &s->fence, VK_TRUE, UINT64_MAX)) != VK_SUCCESS)
        return m3_vk_error(err, r, "vkWaitForFences");
    return M3_STATUS_OK;
}

m3_status m3_vk_sequence_submit(m3_vk_device *d, m3_vk_sequence *s, m3_error *err)
{
    m3_status st = m3_vk_sequence_end(d, s, err);
    return st != M3_STATUS_OK ? st : m3_vk_sequence_run(d, s, err);
}
