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
m3_status m3_vulkan_backend_new(const m3_model *model, const m3_encoder_options *options,
                                m3_backend **out, m3_error *err);

#endif
