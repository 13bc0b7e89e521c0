// SPDX-License-Identifier: MIT
//
// Private to the encoder: the Vulkan backend's constructor (the interface is encoder/backend.h).
#ifndef M3_ENCODER_VULKAN_BACKEND_H
#define M3_ENCODER_VULKAN_BACKEND_H

#include "encoder/backend.h"

// Opens a Vulkan device (M3_VULKAN_DEVICE picks one; see vk.h) and uploads the weights as fp16.
// Errors: M3_STATUS_DEVICE (no Vulkan driver or device, device lost: the message says why, so the
// caller can log it and fall back to the CPU backend), M3_STATUS_NOMEM (host or device memory),
// M3_STATUS_UNSUPPORTED (a model shape the kernels do not cover: head size not a multiple of 8 up
// to 64, activations of max_positions tokens over the device's storage-buffer range).
// options->backend "auto" refuses CPU Vulkan devices (M3_STATUS_DEVICE): the caller then uses the
// CPU backend, which is faster than lavapipe.
m3_status m3_vulkan_backend_new(const m3_model *model, const m3_encoder_options *options,
                                m3_backend **out, m3_error *err);

// A forward pass of `tokens` runs as this many rows (the shape its recording is cached under):
// multiples of 16 up to 256, then steps of at most 1/8, never over max_tokens.
size_t m3_vulkan_padded_tokens(size_t tokens, size_t max_tokens);

// For tests and benchmarks: what the cache of recorded forward passes did so far.
typedef struct m3_vulkan_stats {
    size_t recordings;     // forward passes recorded
    size_t replays;        // forward passes run from a cached recording
    size_t evictions;      // recordings dropped by the LRU bound
    size_t plans;          // recordings cached now (at most 8)
    size_t padded_tokens;  // padding rows computed in all
    double record_seconds; // host time spent recording
    double run_seconds;    // submit to fence (device time plus the submit)
    double host_seconds;   // gathering the inputs and copying the outputs
} m3_vulkan_stats;
void m3_vulkan_backend_get_stats(const m3_backend *be, m3_vulkan_stats *out);
// Forgets every cached recording: the next passes are recorded afresh.
void m3_vulkan_backend_drop_plans(m3_backend *be);

#endif
