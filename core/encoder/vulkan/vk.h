// SPDX-License-Identifier: MIT
//
// Private to the Vulkan backend: a small kompute-style layer over Vulkan 1.1 compute.
//   device.c    instance, physical device choice, one compute queue, memory types and budget,
//               VkResult -> m3_status (the only place Vulkan codes are interpreted)
//   buffer.c    storage buffers (device-local) and host-visible staging, uploads and downloads
//   pipeline.c  compute pipelines from the embedded SPIR-V, specialization constants, the
//               on-disk pipeline cache ($XDG_CACHE_HOME/m3search/)
//   sequence.c  a command buffer + fence (+ a descriptor pool without push descriptors): record
//               dispatches and barriers once, submit and wait as often as wanted
//   coopmat.c   whether and how to use the NV cooperative-matrix GEMM (a pure function of the
//               device's capabilities, unit-tested with made-up property lists)
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

// A cooperative-matrix shape: M×K times K×N (all 0: none).
typedef struct m3_vk_coopmat {
    uint32_t m, n, k;
} m3_vk_coopmat;

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
    // Descriptors: pushed into the command buffer (VK_KHR_push_descriptor) when the device has it
    // and M3_VULKAN_DESCRIPTORS is not "sets"; else descriptor sets from a pool per sequence.
    bool use_push;
    PFN_vkCmdPushDescriptorSetKHR push_descriptor_set;
    // The NV cooperative-matrix GEMM: the matrix shape in use (m == 0: not used, coopmat_why says
    // why; the features it needs are enabled only when it is used).
    m3_vk_coopmat coopmat;
    char coopmat_why[96];
    uint32_t subgroup_size;       // VkPhysicalDeviceSubgroupProperties
    uint64_t max_range;           // maxStorageBufferRange
    VkPipelineCache cache;
    char cache_path[1024];
    // Memory we hold (buffer.c): device-local buffers, and host-visible staging buffers.
    uint64_t allocated, peak;            // device-local bytes now, the most ever
    uint64_t host_allocated, host_peak;  // host-visible bytes now, the most ever
} m3_vk_device;

// Maps a failed VkResult to a status: OUT_OF_HOST_MEMORY -> NOMEM, OUT_OF_DEVICE_MEMORY -> NOMEM
// (code = the VkResult, so callers can tell device memory apart and retry smaller), everything
// else (DEVICE_LOST, INITIALIZATION_FAILED, ...) -> DEVICE. what says which call failed.
m3_status m3_vk_error(m3_error *err, VkResult r, const char *what);
bool m3_vk_is_device_oom(const m3_error *err);

// Opens the device chosen by M3_VULKAN_DEVICE (an index or a name substring) or else the first
// discrete GPU, then integrated, virtual, and CPU (lavapipe) last. With M3_VK_GPU_ONLY a CPU
// device (lavapipe) is never chosen, not even by M3_VULKAN_DEVICE (the "auto" backend: the CPU
// backend beats lavapipe). No loader, no device, or no compute queue: M3_STATUS_DEVICE with the
// reason. Environment, read here: M3_VULKAN_DESCRIPTORS=sets turns push descriptors off,
// M3_VULKAN_COOPMAT=0 the cooperative-matrix GEMM.
enum { M3_VK_GPU_ONLY = 1 };
m3_status m3_vk_device_open(m3_vk_device **out, unsigned flags, m3_error *err);
void m3_vk_device_close(m3_vk_device *d);
// Device-local memory budget and usage in bytes from VK_EXT_memory_budget (0, 0 without it).
void m3_vk_device_budget(const m3_vk_device *d, uint64_t *budget, uint64_t *usage);

typedef struct m3_vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;   // as asked for
    VkDeviceSize bytes;  // as allocated (counted in the device's totals)
    void *map;           // host-visible buffers only
    bool host;
} m3_vk_buffer;

// A storage buffer of size bytes (device-local, or host-visible when host is true: mapped); also
// usable as a copy source/destination and for indirect dispatch arguments. The device's
// allocated and peak counters follow every buffer made and freed.
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
// constant block of push_bytes and n_spec uint32 specialization constants (ids 0..n_spec-1, at
// most 12). The set layout is a push-descriptor layout when the device uses push descriptors.
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

// A sequence: a command buffer recorded once and submitted as often as wanted (the forward pass
// keeps one per batch shape), its fence and, without push descriptors, the descriptor pool its
// dispatches' sets come from (they live as long as the recording). Buffers referenced by a
// recording must outlive it (or the sequence must be begun again before its next run).
typedef struct m3_vk_sequence {
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool dpool;
    uint32_t dpool_sets, dpool_used;
    m3_error *err;   // where the first error while recording goes
    m3_status st;
    bool recorded;   // ended without error: run may submit it
} m3_vk_sequence;

m3_status m3_vk_sequence_new(m3_vk_device *d, m3_vk_sequence *out, m3_error *err);
void m3_vk_sequence_free(m3_vk_device *d, m3_vk_sequence *s);
// Starts a new recording (dropping the previous one); max_dispatches bounds the descriptor sets
// the recording may use (ignored with push descriptors).
m3_status m3_vk_sequence_begin(m3_vk_device *d, m3_vk_sequence *s, uint32_t max_dispatches,
                               m3_error *err);
// Records one dispatch (errors are kept in the sequence and reported by end) followed by a full
// compute/transfer -> compute/transfer/indirect barrier.
void m3_vk_sequence_dispatch(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_pipeline *p,
                             const m3_vk_range *ranges, const void *push, uint32_t push_bytes,
                             uint32_t gx, uint32_t gy, uint32_t gz);
// The same with the group counts read at execution time from args (3 uint32 at offset, a
// multiple of 4), so that one recording serves inputs whose counts differ.
void m3_vk_sequence_dispatch_indirect(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_pipeline *p,
                                      const m3_vk_range *ranges, const void *push,
                                      uint32_t push_bytes, const m3_vk_buffer *args,
                                      VkDeviceSize offset);
void m3_vk_sequence_copy(m3_vk_sequence *s, const m3_vk_buffer *src, VkDeviceSize src_off,
                         const m3_vk_buffer *dst, VkDeviceSize dst_off, VkDeviceSize bytes);
// A barrier after transfers so that following shaders see their writes (and vice versa).
void m3_vk_sequence_barrier(m3_vk_sequence *s);
// Ends the recording (after a barrier that makes every write visible to the host) and returns
// the first error met while recording.
m3_status m3_vk_sequence_end(m3_vk_device *d, m3_vk_sequence *s, m3_error *err);
// Submits the recorded commands and waits for them; may be called again to replay them (the host
// may change the contents of the buffers in between, not the buffers).
m3_status m3_vk_sequence_run(m3_vk_device *d, m3_vk_sequence *s, m3_error *err);
// end, then run.
m3_status m3_vk_sequence_submit(m3_vk_device *d, m3_vk_sequence *s, m3_error *err);

// ---- The NV cooperative-matrix GEMM: is it usable, with which shape (coopmat.c) -----------------
// What the device offers, gathered by device.c (or made up by a test).
typedef struct m3_vk_coopmat_caps {
    bool compiled;         // glslc accepted GL_NV_cooperative_matrix (M3_VK_GLSLC_COOPMAT_NV)
    bool extension;        // VK_NV_cooperative_matrix advertised
    bool feature;          // VkPhysicalDeviceCooperativeMatrixFeaturesNV.cooperativeMatrix
    bool compute_stage;    // cooperativeMatrixSupportedStages has the compute stage
    bool float16;          // shaderFloat16 (VK_KHR_shader_float16_int8)
    bool memory_model;     // vulkanMemoryModel (VK_KHR_vulkan_memory_model)
    bool subgroup_basic;   // subgroup operations: basic, in compute shaders (gl_SubgroupID)
    uint32_t subgroup_size, max_shared, max_invocations;
    const VkCooperativeMatrixPropertiesNV *props;
    uint32_t n_props;
} m3_vk_coopmat_caps;

// The workgroup tile of gemm-coopmat-nv.comp for matrix shape c (its specialization constants
// 3..7; the workgroup has WM·WN subgroups) and the shared memory it needs.
enum { M3_VK_COOP_WM = 2, M3_VK_COOP_WN = 2, M3_VK_COOP_SM = 2, M3_VK_COOP_SN = 2,
       M3_VK_COOP_KS = 2 };
size_t m3_vk_coopmat_shared_bytes(m3_vk_coopmat c);

// Picks the shape for the GEMM: an fp16×fp16→fp32(→fp32) subgroup-scope entry of props whose
// M, N, K are 8, 16 or 32, preferring 16×16×16, then the largest M·N·K; and only if everything
// else the kernel needs is there (and its workgroup fits the shared memory and invocation limits).
// Returns false with *why set (a static string) when the tiled kernel must be used.
bool m3_vk_coopmat_choose(const m3_vk_coopmat_caps *caps, m3_vk_coopmat *out, const char **why);

#endif
