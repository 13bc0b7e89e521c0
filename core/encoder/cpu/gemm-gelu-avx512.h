// SPDX-License-Identifier: MIT
//
// Private to the AVX-512 GEMM kernels: the exact-erf GELU of gemm-gelu.h written with AVX-512
// intrinsics, 16 values at a time. The same erfc form, polynomials and clamps as gemm_gelu1 (its
// error bound holds: test-gemm checks it), with cheaper instructions where AVX-512 has them:
// 1/(1 + a/2) from VRCP14PS and one Newton step (relative error ~2^-28) instead of VDIVPS, the
// exponent applied with VSCALEFPS, the range reduction's rounding by VRNDSCALEPS, the clamps as
// min/max, and no masked (if-converted) arithmetic. GCC's vectorisation of gemm_gelu1 took
// ~55 instructions per 16 values; this takes ~36 (the FFN-in GEMM spends ~12 % of its time in
// GELU at 2048 tokens).
// Included only by files compiled with -mavx512f.
#ifndef M3_ENCODER_CPU_GEMM_GELU_AVX512_H
#define M3_ENCODER_CPU_GEMM_GELU_AVX512_H

#include <immintrin.h>
#include <stddef.h>

static inline __attribute__((always_inline)) __m512 m3_gemm_gelu16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    // a = min(|z|, 10); vminps returns its second operand for a NaN, so NaN x goes through the
    // polynomials as a = 10 (finite) and comes out as NaN from the last multiply by x.
    __m512 a = _mm512_min_ps(_mm512_abs_ps(z), _mm512_set1_ps(10.0f));
    __m512 d = _mm512_fmadd_ps(a, _mm512_set1_ps(0.5f), one);
    __m512 t = _mm512_rcp14_ps(d);
    t = _mm512_fmadd_ps(t, _mm512_fnmadd_ps(d, t, one), t);  // t (2 - d t)
    __m512 q = _mm512_set1_ps(0.17087277f);
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-0.82215223f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.48851587f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.13520398f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.27886807f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-0.18628806f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.09678418f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.37409196f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.00002368f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.26551223f));
    // exp(y), y = q - a² in [-87, 7]: 2^n p(r), |r| ≤ ln2/2 (gemm_exp_neg's polynomial).
    __m512 y = _mm512_max_ps(_mm512_fnmadd_ps(a, a, q), _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), y);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, one);
    p = _mm512_fmadd_ps(p, r, one);
    __m512 ec = _mm512_mul_ps(t, _mm512_scalef_ps(p, n));  // erfc(|z|)
    // 1 + erf(z): erfc(|z|) for z < 0, 2 - erfc(z) otherwise.
    __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 s = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.0f), ec), ec);
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), s);
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
