// SPDX-License-Identifier: MIT
//
// The M3 encoder: token ids in, BGE-M3's three representations out (dense, sparse/lexical,
// multi-vector/ColBERT), each optional. Backends (cpu now, vulkan next) implement the same
// interface (encoder/backend.h) and can be compared output for output.
//
//     m3_encoder_options opt = m3_encoder_options_default();
//     m3_encoder *enc;
//     if (m3_encoder_new(model, &opt, &enc, &err) != M3_STATUS_OK) ...
//     m3_sequence seqs[2] = {{ids0, n0}, {ids1, n1}};   // from m3_tokenizer_encode
//     m3_embedding out[2];
//     m3_encoder_encode(enc, seqs, 2, M3_OUTPUT_ALL, out, &err);
//     ... out[i].dense[0 .. dim), out[i].sparse[0 .. n_sparse), out[i].colbert[...] ...
//     m3_embedding_clear(&out[0]); m3_embedding_clear(&out[1]);
//     m3_encoder_free(enc);
//
// What is computed (see docs/ARCHITECTURE.md): XLM-R embeddings with positions starting at 2, post-LN
// blocks with exact-erf GELU, then
//   dense   = H[0] / max(|H[0]|, 1e-12)
//   sparse  = for each token id not in {0,1,2,3}: max over its positions of relu(H[i]·w + b), > 0 only
//   colbert = normalize(W·H[i] + b) for i = 1 .. L-1 (the </s> vector is kept)
// Results do not depend on how texts are batched.
//
// Ownership: the encoder borrows the model (close the model after the encoder). Outputs are owned by
// the caller and released with m3_embedding_clear.
// Threads: one encoder per thread at a time; an encoder runs its own worker threads inside
// m3_encoder_encode and returns with them idle.
#ifndef M3_ENCODER_ENCODER_H
#define M3_ENCODER_ENCODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "model/model.h"

typedef struct m3_encoder m3_encoder;

typedef enum m3_output {
    M3_OUTPUT_DENSE = 1u << 0,
    M3_OUTPUT_SPARSE = 1u << 1,
    M3_OUTPUT_COLBERT = 1u << 2,
    M3_OUTPUT_ALL = 7u,
} m3_output;

// The arithmetic of the CPU backend's linear layers (the GPU backend keeps its own):
//   FP32  exact to 1e-4 against the transformers reference (the library default);
//   BF16  weights and activations rounded to bf16, products summed in fp32: twice the speed where
//         the CPU has AVX512_BF16 (VDPBF16PS); elsewhere it runs a portable kernel, slower than
//         fp32. Measured fidelity: docs/performance.md ("CPU precisions");
//   INT8  weights quantised per output channel, activations per token, both symmetric int8,
//         products summed in int32 (AVX512-VNNI, AVX-VNNI, AVX2, or a portable kernel): a quarter
//         of fp32's weight memory; below bf16's fidelity, so AUTO never picks it;
//   AUTO  BF16 where the CPU has AVX512_BF16, else FP32 (the command line's default).
// LayerNorm, attention, GELU and the heads' post-processing stay fp32 in every precision.
typedef enum m3_precision {
    M3_PRECISION_FP32 = 0,
    M3_PRECISION_BF16,
    M3_PRECISION_AUTO,
    M3_PRECISION_INT8,
} m3_precision;

typedef struct m3_encoder_options {
    const char *backend;     // "cpu" (default), "vulkan", or "auto": Vulkan on a GPU when the
                             // build has it and a GPU is there (never lavapipe), else cpu
    int threads;             // worker threads; 0 = one per online CPU
    m3_precision precision;  // of the CPU backend; FP32 by default
} m3_encoder_options;

m3_encoder_options m3_encoder_options_default(void);

// "fp32", "bf16", "int8", "auto" to the enum. Errors: M3_STATUS_INVALID naming the word and the choices.
m3_status m3_precision_parse(const char *name, m3_precision *out, m3_error *err);
const char *m3_precision_name(m3_precision precision);

// The precision the encoder computes in, AUTO resolved for this CPU (FP32 for a GPU backend).
m3_precision m3_encoder_precision(const m3_encoder *enc);

// One input: HF ids including <s> and </s>, 1 <= n <= max_positions - 2 (8192 for BGE-M3).
typedef struct m3_sequence {
    const int32_t *ids;
    size_t n;
} m3_sequence;

typedef struct m3_sparse_weight {
    int32_t id;
    float weight;
} m3_sparse_weight;

typedef struct m3_embedding {
    size_t tokens;              // n of the input sequence
    size_t dim;                 // hidden size
    float *dense;               // [dim], or NULL when not asked for
    m3_sparse_weight *sparse;   // [n_sparse], sorted by id, each id once, weights > 0
    size_t n_sparse;
    float *colbert;             // [n_colbert][dim], row-major, each row unit length
    size_t n_colbert;           // tokens - 1
} m3_embedding;

// Creates an encoder for model with the chosen backend. The backend may prepare the weights
// (repack, convert) once here. The model must outlive the encoder. Errors: M3_STATUS_INVALID
// (unknown backend), M3_STATUS_NOMEM, M3_STATUS_DEVICE.
m3_status m3_encoder_new(const m3_model *model, const m3_encoder_options *options, m3_encoder **out,
                         m3_error *err);

// Encodes n sequences; outputs is a mask of m3_output. out[0..n) are overwritten (not cleared
// first). On error, nothing is left allocated in out. Errors: M3_STATUS_INVALID (empty sequence,
// too long, id out of range), M3_STATUS_NOMEM. When a GPU backend fails (device lost, device
// memory exhausted even for one sequence per pass), a warning is logged, the encoder switches to
// the CPU backend for the rest of its life and redoes the call: the caller sees no error.
m3_status m3_encoder_encode(m3_encoder *enc, const m3_sequence *seqs, size_t n, unsigned outputs,
                            m3_embedding *out, m3_error *err);

const char *m3_encoder_backend_name(const m3_encoder *enc);
int m3_encoder_threads(const m3_encoder *enc);

// A short description of the compute kernels the backend chose for this machine, for `m3 bench`
// and bug reports, e.g. "gemm avx512, attention avx512". Valid until m3_encoder_free.
const char *m3_encoder_kernel_name(const m3_encoder *enc);

// The most tokens one forward pass takes: m3_encoder_encode cuts larger batches into passes of at
// most this many tokens (whole sequences; never fewer than max_positions - 2, so any valid
// sequence fits). Activation memory is proportional to it.
size_t m3_encoder_max_batch_tokens(const m3_encoder *enc);

// Bytes of activation buffers the encoder holds now. They grow on demand to the largest forward
// pass seen so far (about (hidden + max(3·hidden, intermediate)) floats per token, 20 KiB per token
// for BGE-M3, 160 MiB at 8192 tokens) and are kept for reuse until m3_encoder_free.
size_t m3_encoder_activation_bytes(const m3_encoder *enc);

// Where the time of m3_encoder_encode went since the encoder was made (wall-clock seconds,
// measured around each step of the forward pass).
typedef struct m3_encoder_profile {
    double gemm;       // linear layers: QKV, output projections, FFN, the ColBERT head
    double attention;  // softmax(QKᵀ/sqrt(d))·V
    double other;      // embeddings, LayerNorm, the sparse head, post-processing
    size_t tokens;     // tokens encoded
    size_t forwards;   // forward passes run
} m3_encoder_profile;

void m3_encoder_get_profile(const m3_encoder *enc, m3_encoder_profile *out);
void m3_encoder_reset_profile(m3_encoder *enc);

// The compute device of a GPU backend (vulkan), for `m3 bench` and bug reports. Memory in bytes:
// peak_bytes is the most device memory the encoder held (weights, activations), now_bytes what
// it holds now, host_peak_bytes its host-visible staging at most; heap_usage and heap_budget are
// the driver's figures for the whole device-local heap (VK_EXT_memory_budget; 0 when unknown).
typedef struct m3_encoder_device {
    const char *name;  // valid until m3_encoder_free
    uint64_t peak_bytes, now_bytes, host_peak_bytes;
    uint64_t heap_usage, heap_budget;
} m3_encoder_device;

// Fills out and returns true for a GPU backend; false (out zeroed) for the CPU backend.
bool m3_encoder_get_device(const m3_encoder *enc, m3_encoder_device *out);

// Frees what m3_encoder_encode put in e and zeroes it. NULL is a no-op.
void m3_embedding_clear(m3_embedding *e);

// Scores as FlagEmbedding computes them (accumulated in double): dense = q·p; sparse = sum over
// the ids both have of w_q·w_p (0 when none is shared, or when a dictionary is empty or was not
// asked for); colbert = mean over q's vectors of the best dot product with p's vectors. A dense
// or ColBERT score whose vectors are missing from q or p (not asked for; a 1-token input has no
// ColBERT vectors) is NaN.
float m3_score_dense(const m3_embedding *q, const m3_embedding *p);
float m3_score_sparse(const m3_embedding *q, const m3_embedding *p);
float m3_score_colbert(const m3_embedding *q, const m3_embedding *p);

// NULL is a no-op.
void m3_encoder_free(m3_encoder *enc);

#endif
