// SPDX-License-Identifier: MIT
//
// Private to the Vulkan backend: the kernels (one pipeline per shader in shaders/) and their record
// functions, plus host-array entry points for the op-level tests (tests/encoder/test-vulkan-ops.c).
// Activations are fp32; matrix weights are IEEE halves packed two per uint32, rows padded to an
// even length (ldw uints per row); vectors (biases, LayerNorm) are fp32.
#ifndef M3_ENCODER_VULKAN_OPS_H
#define M3_ENCODER_VULKAN_OPS_H

#include "encoder/vulkan/vk.h"

enum { M3_VK_ATTN_BLOCK = 16 };  // queries per attention workgroup (attention.comp BR)

typedef struct m3_vk_kernels {
    m3_vk_pipeline gemm, attention, layernorm, embed, rowdot, gather;
    // The GEMM in use: gemm-coopmat-nv.comp when the device has a matching cooperative-matrix
    // shape (d->coopmat), else the tiled gemm.comp. The cooperative one rounds A to fp16.
    m3_vk_pipeline gemm_coop;
    bool coop;
    uint32_t head_dim;
    char name[128];
} m3_vk_kernels;

// head_dim must be a multiple of 8 and at most 64 (M3_STATUS_UNSUPPORTED otherwise). The GEMM is
// the cooperative-matrix one where d->coopmat says so (and the build has it).
m3_status m3_vk_kernels_new(m3_vk_device *d, uint32_t head_dim, m3_vk_kernels *out, m3_error *err);
void m3_vk_kernels_free(m3_vk_device *d, m3_vk_kernels *k);

typedef enum m3_vk_epilogue {
    M3_VK_BIAS = 0,
    M3_VK_BIAS_GELU = 1,
    M3_VK_BIAS_RESIDUAL = 2,
} m3_vk_epilogue;

typedef struct m3_vk_gemm_args {
    const m3_vk_buffer *a, *w, *bias, *r, *c;  // r may be NULL unless the epilogue is RESIDUAL
    uint32_t m, n, k;
    uint32_t lda, ldw, ldc, ldr;   // elements (ldw: uints)
    uint32_t a_off, c_off, r_off;  // elements
    m3_vk_epilogue epilogue;
} m3_vk_gemm_args;

void m3_vk_gemm(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k, const m3_vk_gemm_args *g);
// out[t, hidden] = attention over qkv [T, 3·hidden] (blocks: see m3_vk_attention_blocks, at the
// start of the blocks buffer). The grid is (n_blocks, heads, 1), or, when args is not NULL, the
// three uint32 at args_off in args (written before the recording runs).
void m3_vk_attention(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k,
                     const m3_vk_buffer *qkv, const m3_vk_buffer *out, const m3_vk_buffer *blocks,
                     uint32_t n_blocks, uint32_t heads, uint32_t hidden, float scale,
                     const m3_vk_buffer *args, VkDeviceSize args_off);
// out[i, 0..h) = x[idx[idx_off + i], 0..h) for i < the row count: the three uint32 at args_off in
// args are the grid (rows, 1, 1).
void m3_vk_gather_rows(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k,
                       const m3_vk_buffer *x, uint32_t h, const m3_vk_buffer *idx,
                       uint32_t idx_off, const m3_vk_buffer *out, const m3_vk_buffer *args,
                       VkDeviceSize args_off);
void m3_vk_layernorm(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k,
                     const m3_vk_buffer *x, uint32_t rows, uint32_t h, const m3_vk_buffer *gamma,
                     const m3_vk_buffer *beta, float eps);
// x[t] += position[pos[t]] + type, then LayerNorm (x holds the gathered word rows).
void m3_vk_embed(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k, const m3_vk_buffer *x,
                 uint32_t rows, uint32_t h, const m3_vk_buffer *gamma, const m3_vk_buffer *beta,
                 float eps, const m3_vk_buffer *pos_table, uint32_t ldpos,
                 const m3_vk_buffer *type_row, const m3_vk_buffer *pos);
void m3_vk_rowdot(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k, const m3_vk_buffer *x,
                  uint32_t rows, uint32_t h, const m3_vk_buffer *w, float b,
                  const m3_vk_buffer *out);

// Fills blocks (4 uint32 per block: first query, queries, sequence start, sequence length) for the
// packed sequences offsets[0..n] and returns the number of blocks; blocks may be NULL to count.
size_t m3_vk_attention_blocks(const size_t *offsets, size_t n, uint32_t *blocks);

// A matrix weight [rows, cols] of fp32 values uploaded as packed halves; *ldw gets the row stride.
m3_status m3_vk_weight_upload(m3_vk_device *d, const float *src, size_t rows, size_t cols,
                              m3_vk_buffer *out, uint32_t *ldw, m3_error *err);
// An fp32 vector or matrix uploaded as is.
m3_status m3_vk_f32_upload(m3_vk_device *d, const float *src, size_t n, m3_vk_buffer *out,
                           m3_error *err);

// ---- For the op-level tests: whole operations on host arrays (blocking) ----------------------
// C[M, N] = epilogue(A[M, K] · W[N, K]ᵀ + bias) (W rounded to fp16 as the backend does; A too
// when k->coop).
m3_status m3_vk_test_gemm(m3_vk_device *d, const m3_vk_kernels *k, size_t m, size_t n, size_t kk,
                          const float *a, const float *w, const float *bias, const float *r,
                          m3_vk_epilogue ep, float *c, m3_error *err);
m3_status m3_vk_test_attention(m3_vk_device *d, const m3_vk_kernels *k, const size_t *offsets,
                               size_t n_seqs, size_t heads, const float *qkv, float *out,
                               m3_error *err);
m3_status m3_vk_test_layernorm(m3_vk_device *d, const m3_vk_kernels *k, size_t rows, size_t h,
                               float *x, const float *gamma, const float *beta, float eps,
                               m3_error *err);

#endif
