// SPDX-License-Identifier: MIT
//
// Private to the encoder: the interface a compute backend implements (ggml-backend style, a struct
// of function pointers + context). The CPU backend (encoder/cpu/) is the reference; a Vulkan backend
// implements the same calls and can be compared with it output for output.
//
// The split of work: the backend runs the transformer over a packed batch and the heads' linear
// parts (the per-token sparse weight, the raw ColBERT projection); encoder.c validates the inputs,
// cuts batches to the backend's token budget and does the backend-independent post-processing
// (L2 normalisation, the sparse max-per-id dictionary). So every backend gives the same outputs
// for the same raw numbers.
//
//     m3_backend *be;
//     m3_cpu_backend_new(model, &options, &be, &err);
//     be->encode(be, &batch, &err);
//     be->free(be);
//
// Threads: a backend is used by one thread at a time (its encoder's).
#ifndef M3_ENCODER_BACKEND_H
#define M3_ENCODER_BACKEND_H

#include <stddef.h>

#include "base/status.h"
#include "encoder/encoder.h"
#include "model/model.h"

// One forward pass. The caller has checked every sequence (1 <= n <= max_positions - 2, ids in
// [0, vocab)) and keeps the total number of tokens within the backend's max_tokens. Sequences are
// packed without padding: sequence s occupies tokens [offset_s, offset_s + n_s) of the batch.
typedef struct m3_backend_batch {
    const m3_sequence *seqs;
    size_t n;
    unsigned outputs;     // mask of m3_output: only these are computed
    // Destinations, owned by the caller, filled by the backend:
    float *const *cls;     // when DENSE: cls[s] = [hidden], the last hidden state of token 0
    float *sparse;         // when SPARSE: [total tokens], relu(H[t]·w_sparse + b_sparse) per token
    float *const *colbert; // when COLBERT: colbert[s] = [n_s - 1][hidden], W_col·H[i] + b_col for
                           // i = 1 .. n_s - 1, not normalised
} m3_backend_batch;

typedef struct m3_backend m3_backend;

struct m3_backend {
    const char *name;    // "cpu", "vulkan"
    void *ctx;
    size_t max_tokens;   // the most tokens one encode call accepts (>= max_positions - 2)
    m3_precision precision;  // what it computes in (never AUTO); zero, FP32, unless it says
    m3_status (*encode)(m3_backend *be, const m3_backend_batch *batch, m3_error *err);
    int (*threads)(const m3_backend *be);
    // A short description of the kernels in use ("gemm avx512, attention avx512").
    const char *(*kernel_name)(const m3_backend *be);
    // Bytes of activation (scratch) memory currently allocated.
    size_t (*activation_bytes)(const m3_backend *be);
    // The compute device (m3_encoder_get_device); NULL for backends that run on the CPU.
    bool (*device)(const m3_backend *be, m3_encoder_device *out);
    // Time spent so far (the backend fills gemm, attention, other, tokens, forwards).
    m3_encoder_profile profile;
    void (*free)(m3_backend *be);
};

// The CPU backend (encoder/cpu/cpu-backend.c). Errors: M3_STATUS_NOMEM, M3_STATUS_IO (threads),
// M3_STATUS_INVALID (a model shape it cannot run).
m3_status m3_cpu_backend_new(const m3_model *model, const m3_encoder_options *options,
                             m3_backend **out, m3_error *err);

#endif
