// SPDX-License-Identifier: MIT
//
// Private to the Vulkan backend: a small kompute-style layer over Vulkan 1.1 compute.
//   device.c    instance, physical device choice, one compute queue, memory types and budget,
//               VkResult -> m3_status (the only place Vulkan codes are interpreted)
//   buffer.c    storage buffers (device-local) and host-visible staging, uploads and downloads
//   pipeline.c  compute pipelines from the embedded SPIR-V, specialization constants, the
//               on-disk pipeline cache ($XDG_CACHE_HOME/m3search/)
//   sequence.c  a command buffer + fence + descriptor pool: record dispatches and barriers,
//               submit, wait
//   ops.c       the kernels: one record function per shader
// Nothing in here returns a VkResult to the rest of core.
//
// Threads: a device and everything made from it are used by one thread at a time.
// Teardown: sequences, pipelines and buffers before their device.
#ifndef M3_ENCODER_VULKAN_VK_H
#define M3_ENCODER_VULKAN_VK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#include "base/status.h"

typedef struct m3_vk_device {
    VkInstance instance;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    uint32_t device_type;         // the memory type for storage buffers
    uint32_t host_type;           // host-visible, coherent (staging)
    bool has_budget;              // VK_EXT_memory_budget enabled
    bool has_coopmat_nv;          // VK_NV_cooperative_matrix supported (not used yet)
    uint64_t max_range;           // maxStorageBufferRange
    VkPipelineCache cache;
    char cache_path[1024];
    uint64_t allocated;           // bytes of device memory we hold now
    uint64_t peak;                // the most we ever held
} m3_vk_device;

// Maps a failed VkResult to a status: OUT_OF_HOST_MEMORY -> NOMEM, OUT_OF_DEVICE_MEMORY -> NOMEM
// (code = the VkResult, so callers can tell device memory apart and retry smaller), everything
// else (DEVICE_LOST, INITIALIZATION_FAILED, ...) -> DEVICE. what says which call failed.
m3_status m3_vk_error(m3_error *err, VkResult r, const char *what);
bool m3_vk_is_device_oom(const m3_error *err);

// Opens the device chosen by M3_VULKAN_DEVICE (an index or a name substring) or else the first
// discrete GPU, then integrated, virtual, and CPU (lavapipe) last. No loader, no device, or no
// compute queue: M3_STATUS_DEVICE with the reason.
m3_status m3_vk_device_open(m3_vk_device **out, m3_error *err);
void m3_vk_device_close(m3_vk_device *d);
// Device-local memory budget and usage in bytes from VK_EXT_memory_budget (0, 0 without it).
void m3_vk_device_budget(const m3_vk_device *d, uint64_t *budget, uint64_t *usage);

typedef struct m3_vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map;  // host-visible buffers only
} m3_vk_buffer;

// A storage buffer of size bytes (device-local, or host-visible when host is true: mapped).
m3_status m3_vk_buffer_new(m3_vk_device *d, VkDeviceSize size, bool host, m3_vk_buffer *out,
                           m3_error *err);
void m3_vk_buffer_free(m3_vk_device *d, m3_vk_buffer *b);
// One-shot copies between host memory and a device buffer through a staging buffer (blocking).
m3_status m3_vk_buffer_upload(m3_vk_device *d, m3_vk_buffer *dst, VkDeviceSize offset,
                              const void *src, size_t bytes, m3_error *err);
m3_status m3_vk_buffer_download(m3_vk_device *d, m3_vk_buffer *src, VkDeviceSize offset, void *dst,
                                size_t bytes, m3_error *err);

typedef struct m3_vk_pipeline {
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipe;
    uint32_t bindings;
} m3_vk_pipeline;

// A compute pipeline from SPIR-V words with `bindings` storage buffers at bindings 0.., a push
// constant block of push_bytes and n_spec uint32 specialization constants (ids 0..n_spec-1).
m3_status m3_vk_pipeline_new(m3_vk_device *d, const uint32_t *code, size_t code_bytes,
                             uint32_t bindings, uint32_t push_bytes, const uint32_t *spec,
                             uint32_t n_spec, m3_vk_pipeline *out, m3_error *err);
void m3_vk_pipeline_free(m3_vk_device *d, m3_vk_pipeline *p);
// Writes the pipeline cache to disk (best effort; failures are logged at debug level).
void m3_vk_pipeline_cache_save(m3_vk_device *d);

// A buffer range bound to one binding.
typedef struct m3_vk_range {
    const m3_vk_buffer *b;
    VkDeviceSize offset, size;  // size 0 = to the end of the buffer
} m3_vk_range;

typedef struct m3_vk_sequence {
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool dpool;
    uint32_t dpool_sets, dpool_used;
    m3_error *err;   // the first error while recording
    m3_status st;
} m3_vk_sequence;

m3_status m3_vk_sequence_new(m3_vk_device *d, m3_vk_sequence *out, m3_error *err);
void m3_vk_sequence_free(m3_vk_device *d, m3_vk_sequence *s);
// Starts recording; max_dispatches bounds the descriptor sets the recording may use.
m3_status m3_vk_sequence_begin(m3_vk_device *d, m3_vk_sequence *s, uint32_t max_dispatches,
                               m3_error *err);
// Records one dispatch (errors are kept in the sequence and reported by submit) followed by a
// full compute->compute/transfer barrier.
void m3_vk_sequence_dispatch(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_pipeline *p,
                             const m3_vk_range *ranges, const void *push, uint32_t push_bytes,
                             uint32_t gx, uint32_t gy, uint32_t gz);
void m3_vk_sequence_copy(m3_vk_sequence *s, const m3_vk_buffer *src, VkDeviceSize src_off,
                         const m3_vk_buffer *dst, VkDeviceSize dst_off, VkDeviceSize bytes);
// A barrier after transfers so that following shaders see their writes (and vice versa).
void m3_vk_sequence_barrier(m3_vk_sequence *s);
// Ends, submits and waits for the fence.
m3_status m3_vk_sequence_submit(m3_vk_device *d, m3_vk_sequence *s, m3_error *err);

#endif
