// SPDX-License-Identifier: MIT
//
// Storage buffers: device-local for weights and activations, host-visible (mapped) for staging.
// Every allocation is counted on the device (allocated / peak, host_allocated / host_peak), so
// that `m3 bench` can report the peak device memory whatever the driver offers.
#include <string.h>

#include "encoder/vulkan/vk.h"

m3_status m3_vk_buffer_new(m3_vk_device *d, VkDeviceSize size, bool host, m3_vk_buffer *out,
                           m3_error *err)
{
    memset(out, 0, sizeof *out);
    if (size == 0)
        size = 16;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = vkCreateBuffer(d->dev, &bci, NULL, &out->buf);
    if (r != VK_SUCCESS)
        return m3_vk_error(err, r, "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, out->buf, &req);
    uint32_t type = host ? d->host_type : d->device_type;
    if (!(req.memoryTypeBits & (1u << type))) {
        // Pick any allowed type with the same property flags' essentials.
        VkMemoryPropertyFlags want = host ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT : 0;
        type = UINT32_MAX;
        for (uint32_t i = 0; i < d->mem.memoryTypeCount; i++)
            if ((req.memoryTypeBits & (1u << i)) &&
                (d->mem.memoryTypes[i].propertyFlags & want) == want) {
                type = i;
                break;
            }
        if (type == UINT32_MAX) {
            vkDestroyBuffer(d->dev, out->buf, NULL);
            out->buf = VK_NULL_HANDLE;
            return m3_error_set(err, M3_STATUS_DEVICE, 0, "vulkan: no memory type for a buffer");
        }
    }
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = type,
    };
    r = vkAllocateMemory(d->dev, &mai, NULL, &out->mem);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(d->dev, out->buf, NULL);
        out->buf = VK_NULL_HANDLE;
        return m3_vk_error(err, r, "vkAllocateMemory");
    }
    r = vkBindBufferMemory(d->dev, out->buf, out->mem, 0);
    if (r == VK_SUCCESS && host)
        r = vkMapMemory(d->dev, out->mem, 0, VK_WHOLE_SIZE, 0, &out->map);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(d->dev, out->buf, NULL);
        vkFreeMemory(d->dev, out->mem, NULL);
        memset(out, 0, sizeof *out);
        return m3_vk_error(err, r, host ? "vkMapMemory" : "vkBindBufferMemory");
    }
    out->size = size;
    out->bytes = req.size;
    out->host = host;
    if (host) {
        d->host_allocated += req.size;
        if (d->host_allocated > d->host_peak)
            d->host_peak = d->host_allocated;
    } else {
        d->allocated += req.size;
        if (d->allocated > d->peak)
            d->peak = d->allocated;
    }
    return M3_STATUS_OK;
}

void m3_vk_buffer_free(m3_vk_device *d, m3_vk_buffer *b)
{
    if (!b || !b->buf)
        return;
    if (b->host)
        d->host_allocated -= b->bytes;
    else
        d->allocated -= b->bytes;
    vkDestroyBuffer(d->dev, b->buf, NULL);
    vkFreeMemory(d->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

static m3_status transfer(m3_vk_device *d, m3_vk_buffer *dev_buf, VkDeviceSize offset, void *host,
                          size_t bytes, bool up, m3_error *err)
{
    if (bytes == 0)
        return M3_STATUS_OK;
    m3_vk_buffer staging;
    m3_status st = m3_vk_buffer_new(d, bytes, true, &staging, err);
    if (st != M3_STATUS_OK)
        return st;
    m3_vk_sequence seq;
    if ((st = m3_vk_sequence_new(d, &seq, err)) != M3_STATUS_OK) {
        m3_vk_buffer_free(d, &staging);
        return st;
    }
    if (up)
        memcpy(staging.map, host, bytes);
    if ((st = m3_vk_sequence_begin(d, &seq, 0, err)) == M3_STATUS_OK) {
        if (up)
            m3_vk_sequence_copy(&seq, &staging, 0, dev_buf, offset, bytes);
        else
            m3_vk_sequence_copy(&seq, dev_buf, offset, &staging, 0, bytes);
        st = m3_vk_sequence_submit(d, &seq, err);
    }
    if (st == M3_STATUS_OK && !up)
        memcpy(host, staging.map, bytes);
    m3_vk_sequence_free(d, &seq);
    m3_vk_buffer_free(d, &staging);
    return st;
}

m3_status m3_vk_buffer_upload(m3_vk_device *d, m3_vk_buffer *dst, VkDeviceSize offset,
                              const void *src, size_t bytes, m3_error *err)
{
    return transfer(d, dst, offset, (void *)src, bytes, true, err);
}

m3_status m3_vk_buffer_download(m3_vk_device *d, m3_vk_buffer *src, VkDeviceSize offset, void *dst,
                                size_t bytes, m3_error *err)
{
    return transfer(d, src, offset, dst, bytes, false, err);
}
