// SPDX-License-Identifier: MIT
//
// Private to the AVX2 GEMM kernels (fp32 avx2, int8-avx2, int8-avxvnni): the exact-erf GELU of
// gemm-gelu-rational.h, 8 values at a time, the same operations as the AVX-512 form (so the same
// results: both expand M3_GELU_ERF). Included only by files compiled with -mavx2 -mfma.
#ifndef M3_ENCODER_CPU_GEMM_GELU_AVX2_H
#define M3_ENCODER_CPU_GEMM_GELU_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "encoder/cpu/gemm-gelu-rational.h"

static inline __attribute__((always_inline)) __m256 m3_gemm_gelu8(__m256 x) {
    __m256 e = M3_GELU_ERF(_mm256, __m256, x);
    __m256 h = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
    // h + h·e in one rounding; all-ones where x ≥ -5.5 or NaN, zero (so +0) below.
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-M3_GELU_CLAMP), _CMP_NLT_UQ);
    return _mm256_and_ps(keep, _mm256_fmadd_ps(h, e, h));
}

// x[0..n) = gelu_erf(x), in place; the tail through an 8-float buffer.
static inline void m3_gemm_gelu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, m3_gemm_gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float tail[8] = {0};
        memcpy(tail, x + i, (n - i) * sizeof *x);
        _mm256_storeu_ps(tail, m3_gemm_gelu8(_mm256_loadu_ps(tail)));
        memcpy(x + i, tail, (n - i) * sizeof *x);
    }
}

#endif
