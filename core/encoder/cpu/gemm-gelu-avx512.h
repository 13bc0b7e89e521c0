// SPDX-License-Identifier: MIT
//
// Private to the AVX-512 GEMM kernels (fp32, bf16 and int8 all use it): the exact-erf GELU,
// x/2 · (1 + erf(x/√2)), 16 values at a time, with erf(x/√2) as a rational function of x:
//
//     erf(x/√2) ≈ x · P(x²) / Q(x²),  P and Q of degree 5 in x², x clamped to [-5.5, 5.5]
//
// fitted by tools/fit-gelu.py (minimax, 1.4e-8 from erf in exact arithmetic). Beyond 5.5, erf is
// within 5.6e-8 of ±1, so the clamp is below the fp32 rounding of the result; below -5.5 the GELU
// is 0 (|GELU(x)| < 2.8e-8 · |x| there), which also takes -inf to 0 instead of NaN. No exp, no
// erfc: ~17 instructions instead of ~40 for the erfc form that gemm-gelu.h uses (exp, a second
// polynomial), and both polynomials in Estrin's form (powers x⁴, x⁸ beside pairs c_i + c_{i+1}·x²),
// 3 steps deep instead of 5. The division is one correctly rounded VDIVPS.
// Error, checked on every float with |x| in [2⁻¹⁰, 16] of both signs (outside it GELU is x/2 or
// 0 or x to fp32 rounding): 1.92e-7 · max(1, |x|) at most against the double erfc form, within
// test-gemm's 2e-7 (the erfc form measured 1.33e-7; the difference is the fp32 rounding of P/Q
// near |erf| = 1). Speed on the dev machine (Zen 5, one thread, rows of 64 as the GEMM calls it,
// 2026-12-07): 0.19 ns a value against 0.45 for the erfc form, which was 7 % of the bf16 FFN-in.
// Included only by files compiled with -mavx512f.
#ifndef M3_ENCODER_CPU_GEMM_GELU_AVX512_H
#define M3_ENCODER_CPU_GEMM_GELU_AVX512_H

#include <immintrin.h>
#include <stddef.h>

static inline __attribute__((always_inline)) __m512 m3_gemm_gelu16(__m512 x) {
    // vmaxps returns its second operand for a NaN: NaN x is clamped to -5.5 here (finite through
    // the polynomials) and comes out as NaN from the last step's x/2.
    __m512 z = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-5.5f)), _mm512_set1_ps(5.5f));
    __m512 w = _mm512_mul_ps(z, z);
    __m512 w2 = _mm512_mul_ps(w, w), w4 = _mm512_mul_ps(w2, w2);
    __m512 p01 = _mm512_fmadd_ps(_mm512_set1_ps(6.770468503e-02f), w, _mm512_set1_ps(7.978844643e-01f));
    __m512 p23 = _mm512_fmadd_ps(_mm512_set1_ps(3.376441018e-04f), w, _mm512_set1_ps(9.354475886e-03f));
    __m512 p45 = _mm512_fmadd_ps(_mm512_set1_ps(4.549874077e-08f), w, _mm512_set1_ps(1.270409757e-05f));
    __m512 q01 = _mm512_fmadd_ps(_mm512_set1_ps(2.515211403e-01f), w, _mm512_set1_ps(1.0f));
    __m512 q23 = _mm512_fmadd_ps(_mm512_set1_ps(1.884424477e-03f), w, _mm512_set1_ps(2.864568681e-02f));
    __m512 q45 = _mm512_fmadd_ps(_mm512_set1_ps(1.197498932e-06f), w, _mm512_set1_ps(7.364610792e-05f));
    __m512 p = _mm512_fmadd_ps(p45, w4, _mm512_fmadd_ps(p23, w2, p01));
    __m512 q = _mm512_fmadd_ps(q45, w4, _mm512_fmadd_ps(q23, w2, q01));
    __m512 e = _mm512_mul_ps(z, _mm512_div_ps(p, q));  // erf(z/√2)
    __m512 h = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
    // h + h·e in one rounding (h is exact); +inf stays +inf, NaN stays NaN (the compare is true for
    // NaN), x < -5.5 gives +0.
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-5.5f), _CMP_NLT_UQ);
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
