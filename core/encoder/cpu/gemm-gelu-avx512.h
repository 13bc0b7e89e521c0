// SPDX-License-Identifier: MIT
//
// Private to the AVX-512 GEMM kernels (fp32, bf16 and int8 all use it): the exact-erf GELU of
// gemm-gelu-rational.h, 16 values at a time. Included only by files compiled with -mavx512f.
#ifndef M3_ENCODER_CPU_GEMM_GELU_AVX512_H
#define M3_ENCODER_CPU_GEMM_GELU_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#include "encoder/cpu/gemm-gelu-rational.h"

static inline __attribute__((always_inline)) __m512 m3_gemm_gelu16(__m512 x) {
    __m512 e = M3_GELU_ERF(_mm512, __m512, x);
    __m512 h = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
    // h + h·e in one rounding (h is exact); +inf stays +inf, NaN stays NaN (the compare is true for
    // NaN), x < -5.5 gives +0.
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-M3_GELU_CLAMP), _CMP_NLT_UQ);
    return _mm512_maskz_fmadd_ps(keep, h, e, h);
}

// x[0..n) = gelu_erf(x), in place; the tail loaded and stored masked.
static inline void m3_gemm_gelu_avx512(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, m3_gemm_gelu16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, m3_gemm_gelu16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

#endif
