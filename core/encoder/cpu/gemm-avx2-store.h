// SPDX-License-Identifier: MIT
//
// Private to the ymm GEMM kernels (gemm-avx2.c, gemm-int8-avx2.c): the epilogue that writes a
// 6 × 16 tile of fp32 accumulators to C (first k block: + bias + residual, then the GELU where
// asked; later ones: C += acc), masked to nr columns. Included only by files compiled with -mavx2.
#ifndef M3_ENCODER_CPU_GEMM_AVX2_STORE_H
#define M3_ENCODER_CPU_GEMM_AVX2_STORE_H

#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>

#include "encoder/cpu/gemm-gelu-avx2.h"

#define AVX2_MR 6
#define AVX2_NV 2

static inline __attribute__((always_inline)) void m3_gemm_avx2_store(
    __m256 acc[AVX2_MR][AVX2_NV], const int mr, size_t nr, float *c, size_t ldc, bool first,
    const float *bias, const float *r, size_t ldr, bool gelu) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i mask[AVX2_NV];
#pragma GCC unroll 4
    for (int v = 0; v < AVX2_NV; v++) {
        size_t lo = 8 * (size_t)v;
        int valid = nr >= lo + 8 ? 8 : nr > lo ? (int)(nr - lo) : 0;
        mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), iota);
    }
    if (first) {
        __m256 b[AVX2_NV];
#pragma GCC unroll 4
        for (int v = 0; v < AVX2_NV; v++)
            b[v] = bias ? _mm256_maskload_ps(bias + 8 * v, mask[v]) : _mm256_setzero_ps();
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
            for (int v = 0; v < AVX2_NV; v++) {
                __m256 x = _mm256_add_ps(acc[i][v], b[v]);
                if (r)
                    x = _mm256_add_ps(x, _mm256_maskload_ps(r + i * ldr + 8 * v, mask[v]));
                if (gelu)
                    x = m3_gemm_gelu8(x);
                _mm256_maskstore_ps(c + i * ldc + 8 * v, mask[v], x);
            }
    } else {
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
            for (int v = 0; v < AVX2_NV; v++) {
                float *p = c + i * ldc + 8 * v;
                __m256 x = _mm256_add_ps(acc[i][v], _mm256_maskload_ps(p, mask[v]));
                _mm256_maskstore_ps(p, mask[v], x);
            }
    }
}

#endif
