// SPDX-License-Identifier: MIT
//
// Private to the AVX-512 GEMM kernels (gemm-avx512.c, gemm-bf16-avx512.c,
// gemm-int8-avx512vnni.c): the epilogue that writes a 6 × 64 tile of fp32 accumulators to C (first
// k block: + bias + residual, then the GELU where asked; later ones: C += acc), masked to nr
// columns, and the prefetch of what it reads. Included only by files compiled with -mavx512f.
#ifndef M3_ENCODER_CPU_GEMM_AVX512_STORE_H
#define M3_ENCODER_CPU_GEMM_AVX512_STORE_H

#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>

#include "encoder/cpu/gemm-gelu-avx512.h"

#define AVX512_MR 6
#define AVX512_NV 4

static inline __attribute__((always_inline)) void m3_gemm_avx512_store(
    __m512 acc[AVX512_MR][AVX512_NV], const int mr, size_t nr, float *c, size_t ldc, bool first,
    const float *bias, const float *r, size_t ldr, bool gelu) {
    __mmask16 mask[AVX512_NV];
#pragma GCC unroll 4
    for (int v = 0; v < AVX512_NV; v++) {
        size_t lo = 16 * (size_t)v;
        mask[v] = nr >= lo + 16 ? (__mmask16)0xffff
                  : nr > lo     ? (__mmask16)((1u << (nr - lo)) - 1)
                                : (__mmask16)0;
    }
    if (first) {
        __m512 b[AVX512_NV];
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            b[v] = bias ? _mm512_maskz_loadu_ps(mask[v], bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
            for (int v = 0; v < AVX512_NV; v++) {
                __m512 x = _mm512_add_ps(acc[i][v], b[v]);
                if (r)
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask[v], r + i * ldr + 16 * v));
                if (gelu)
                    x = m3_gemm_gelu16(x);
                _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mask[v], x);
            }
    } else {
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
            for (int v = 0; v < AVX512_NV; v++) {
                float *p = c + i * ldc + 16 * v;
                __m512 x = _mm512_add_ps(acc[i][v], _mm512_maskz_loadu_ps(mask[v], p));
                _mm512_mask_storeu_ps(p, mask[v], x);
            }
    }
}

// Brings into L1 what m3_gemm_avx512_store will read: C (later k blocks) or the residual (the
// first; NULL: nothing); the bias is small. The kernels call it some k steps before the store.
static inline __attribute__((always_inline)) void m3_gemm_avx512_prefetch_c(
    const int mr, size_t nr, const float *c, size_t ldc, bool first, const float *r, size_t ldr) {
    const float *cr = first ? r : c;
    size_t ld = first ? ldr : ldc;
    if (cr)
        for (int i = 0; i < mr; i++)
            for (size_t j = 0; j < nr; j += 16)
                _mm_prefetch((const char *)(cr + i * ld + j), _MM_HINT_T0);
}

// Calls TILE(R) with R the literal 1..AVX512_MR equal to mr, so each tile height compiles to its
// own fully unrolled loop.
#define M3_GEMM_AVX512_DISPATCH(mr, TILE)                                                      \
    switch (mr) {                                                                              \
    case 1: TILE(1); break;                                                                    \
    case 2: TILE(2); break;                                                                    \
    case 3: TILE(3); break;                                                                    \
    case 4: TILE(4); break;                                                                    \
    case 5: TILE(5); break;                                                                    \
    case 6: TILE(6); break;                                                                    \
    default: break;                                                                            \
    }

#endif
