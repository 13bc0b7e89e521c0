// SPDX-License-Identifier: MIT
//
// Private to the CPU backend: the matrix multiply of the encoder's linear layers,
//   C[m, n] = epilogue( sum_k A[m, k] * W[n, k] + bias[n] )
// with W a PyTorch Linear weight ([out, in], row-major), packed once at load time into the layout
// the micro-kernel streams. A, C, bias and R are fp32 whatever the precision (bf16 also has forms
// that read A or write C as bf16 pairs: m3_gemm_pairs, m3_gemm_to_pairs); the precision is
// that of the products: fp32, bf16 (W and A rounded to bf16, products summed in fp32), or int8
// (W quantised per output channel, A per row, both symmetric to [-127, 127]; products summed in
// int32 and scaled back to fp32 in the store, where bias, GELU and the residual are applied).
// Runtime dispatch: fp32 AVX-512F, AVX2+FMA, scalar; bf16 AVX512_BF16 (VDPBF16PS), scalar; int8
// AVX512-VNNI (zmm VPDPBUSD), AVX-VNNI (ymm VPDPBUSD), AVX2 (VPMADDUBSW + VPMADDWD), scalar.
//
// Threads: m3_gemm runs on the given pool; a packed matrix is immutable and shared.
#ifndef M3_ENCODER_CPU_GEMM_H
#define M3_ENCODER_CPU_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "base/threadpool.h"
#include "model/tensor.h"

typedef struct m3_packed_matrix m3_packed_matrix;

typedef enum m3_gemm_precision {
    M3_GEMM_FP32,
    M3_GEMM_BF16,
    M3_GEMM_INT8,
} m3_gemm_precision;

typedef enum m3_gemm_epilogue {
    M3_GEMM_BIAS,           // C = A·Wᵀ + bias
    M3_GEMM_BIAS_GELU,      // C = gelu_erf(A·Wᵀ + bias)
    M3_GEMM_BIAS_RESIDUAL,  // C = A·Wᵀ + bias + R   (R may alias C)
} m3_gemm_epilogue;

// Packs W ([n, k], any dtype, any strides) for the chosen kernel of `precision` (bf16: rounded to
// nearest even; int8: quantised per row of W, k at most M3_GEMM_INT8_K_MAX so that the int32 sums
// cannot overflow). Errors: M3_STATUS_NOMEM, M3_STATUS_INVALID.
enum { M3_GEMM_INT8_K_MAX = 65536 };
m3_status m3_packed_matrix_new_as(const m3_tensor *w, m3_gemm_precision precision,
                                  m3_packed_matrix **out, m3_error *err);
m3_status m3_packed_matrix_new(const m3_tensor *w, m3_packed_matrix **out, m3_error *err);  // fp32

// At least `bytes` of memory for the large buffers the kernels stream (packed weights, the CPU
// backend's activations): 64-byte aligned; from 2 MiB up, 2 MiB aligned and rounded up to 2 MiB
// with the kernel asked for transparent huge pages (MADV_HUGEPAGE: Debian's default THP mode is
// "madvise", so without it every buffer is in 4 KiB pages). NULL when out of memory; the caller
// owns it and releases it with m3_gemm_buffer_free (never free()). Thread-safe.
void *m3_gemm_buffer_alloc(size_t bytes);
// Releases a buffer of m3_gemm_buffer_alloc; NULL does nothing.
void m3_gemm_buffer_free(void *data);

// Packed weights stored in a model file (docs/model-file.md, "Packed weights"). The layout of a
// precision depends on the kernel this CPU runs (its panel width nr) and on the packing code's
// version (M3_GEMM_LAYOUT_VERSION): m3_gemm_layout_id names it ("bf16-kpairs-nr64-v1"), and bytes
// packed under one id are valid exactly for a kernel that reports the same id.
// The id of the layout the selected kernel of `precision` reads, into buf; returns buf.
const char *m3_gemm_layout_id(m3_gemm_precision precision, char *buf, size_t size);
// Bytes of an [n, k] matrix packed for the selected kernel of `precision`; 0 when it overflows.
size_t m3_packed_matrix_bytes_for(size_t n, size_t k, m3_gemm_precision precision);
// Packs W into dst, exactly `bytes` = m3_packed_matrix_bytes_for bytes (what m3_packed_matrix_new_as
// would hold). Errors: M3_STATUS_INVALID (another size), M3_STATUS_NOMEM.
m3_status m3_packed_matrix_pack_into(const m3_tensor *w, m3_gemm_precision precision, void *dst,
                                     size_t bytes, m3_error *err);
// A packed matrix over bytes the caller owns (a model file's mapping; they must outlive it and
// are never written or freed). Errors: M3_STATUS_FORMAT when bytes is not the packed size for
// the selected kernel or data is not 64-byte aligned; M3_STATUS_NOMEM.
m3_status m3_packed_matrix_wrap(size_t n, size_t k, m3_gemm_precision precision, const void *data,
                                size_t bytes, m3_packed_matrix **out, m3_error *err);

size_t m3_packed_matrix_rows(const m3_packed_matrix *p);  // n
size_t m3_packed_matrix_cols(const m3_packed_matrix *p);  // k
void m3_packed_matrix_free(m3_packed_matrix *p);

// A: [m, k] with row stride lda; C: [m, n] with row stride ldc; bias: [n] fp32 or NULL (= 0);
// R: [m, n] with row stride ldr (only for M3_GEMM_BIAS_RESIDUAL).
// int8 and bf16 convert A into a buffer of m × k bytes (int8) or 2 bytes (bf16) that belongs to
// the calling thread and is kept for its next call (freed when the thread exits); if growing it
// fails the process aborts with a message (the call has no error to return; the buffer is a
// fraction of the activations the caller already holds).
void m3_gemm(m3_threadpool *pool, size_t m, const float *a, size_t lda, const m3_packed_matrix *w,
             const float *bias, m3_gemm_epilogue epilogue, const float *r, size_t ldr, float *c,
             size_t ldc);

// bf16 only: the activations between two bf16 GEMMs kept as bf16 k pairs (the layout of converted
// A in gemm-private.h: row i at p + i * ld words, ceil(cols / 2) words, each the bf16 of column 2q
// in its low half and of column 2q + 1 in its high half, rounded to nearest even, a zero half after
// an odd cols), so that the fp32 matrix between them is never written to memory nor read back
// and converted (the FFN: gelu(x·W1ᵀ + b1) goes straight into W2's multiply).
// m3_gemm_to_pairs: as m3_gemm with epilogue M3_GEMM_BIAS or M3_GEMM_BIAS_GELU, but C is stored
// rounded to bf16 pairs at c (ldc in words, ≥ ceil(n / 2)). m3_gemm_pairs: as m3_gemm with A
// given as pairs (lda in words, ≥ ceil(k / 2)). m3_gemm_pairs(m3_gemm_to_pairs(…)) gives exactly
// the bits of the two fp32 m3_gemm calls (the second rounds its A to the same pairs). w must be
// packed as bf16; to_pairs uses the calling thread's buffer as m3_gemm does, plus an fp32 tile
// per pool thread (≤ 192 × 256 floats).
void m3_gemm_to_pairs(m3_threadpool *pool, size_t m, const float *a, size_t lda,
                      const m3_packed_matrix *w, const float *bias, m3_gemm_epilogue epilogue,
                      uint32_t *c, size_t ldc);
void m3_gemm_pairs(m3_threadpool *pool, size_t m, const uint32_t *a, size_t lda,
                   const m3_packed_matrix *w, const float *bias, m3_gemm_epilogue epilogue,
                   const float *r, size_t ldr, float *c, size_t ldc);
// Both: A as pairs (lda words) and C stored as pairs (ldc words); epilogue as m3_gemm_to_pairs.
void m3_gemm_pairs_to_pairs(m3_threadpool *pool, size_t m, const uint32_t *a, size_t lda,
                            const m3_packed_matrix *w, const float *bias,
                            m3_gemm_epilogue epilogue, uint32_t *c, size_t ldc);
// The conversion a bf16 GEMM on w applies to fp32 A, for a caller that makes A itself (a LayerNorm
// writing the next GEMM's input as pairs while its row is still in L1): rows × ceil(k / 2) pair
// words at dst (row stride ldd words) from rows × k floats at a (row stride lda), the same bits
// m3_gemm(…, w, …) would convert them to. w must be packed as bf16. Thread-safe.
void m3_gemm_rows_to_pairs(const m3_packed_matrix *w, const float *a, size_t lda, size_t rows,
                           size_t k, uint32_t *dst, size_t ldd);

// Frees the calling thread's buffer of converted A now instead of at its exit (an encoder freed
// by a long-lived thread, the indexer's when it goes idle, gives its memory back). The next
// m3_gemm on the thread allocates it again.
void m3_gemm_release_scratch(void);

// The packed bytes (int8: the self-contained blob of gemm-private.h, which holds no pointers) and
// their size: what a model file could store for the kernel that packed them.
const void *m3_packed_matrix_data(const m3_packed_matrix *p, size_t *bytes);

// The name of the kernel chosen at run time ("avx512", "avx2", "scalar"; "bf16-amx",
// "bf16-avx512", "bf16-scalar"; "int8-avx512vnni", "int8-avxvnni", "int8-avx2", "int8-scalar").
const char *m3_gemm_kernel_name(void);  // fp32
const char *m3_gemm_kernel_name_for(m3_gemm_precision precision);

// Whether this CPU multiplies in `precision` with a kernel of its own (not the scalar fallback):
// what `auto` asks before it picks bf16.
bool m3_gemm_precision_native(m3_gemm_precision precision);

// Exact-erf GELU, 0.5 x (1 + erf(x / sqrt 2)), vectorised inside the kernels; this is the scalar
// reference they are tested against.
float m3_gelu_erf(float x);

#endif
