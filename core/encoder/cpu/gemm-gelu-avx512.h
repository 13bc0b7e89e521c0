// SPDX-License-Identifier: MIT
//
// Private to the AVX-512 GEMM kernels (fp32, bf16 and int8 all use it): the exact-erf GELU of
// gemm-gelu.h written with AVX-512 intrinsics, 16 values at a time. The same erfc form,
// polynomial coefficients and clamps as gemm_gelu1 (its error bound holds: test-gemm checks it,
// 1.15e-7 · max(1, |x|) measured), with cheaper instructions where AVX-512 has them: the
// exponent applied with VSCALEFPS, the range reduction's rounding by VRNDSCALEPS, the clamps as
// min/max, and no masked (if-converted) arithmetic.
// The speed is set by the length of the dependency chain more than by the instruction count (a
// chain of ~35 dependent operations per value, and the out-of-order window holds only a few 16-value
// iterations), so both polynomials are evaluated in Estrin's form (powers t², t⁴, t⁸ and r², r⁴
// alongside pairs c_i + c_{i+1}·t: 4 and 3 steps deep instead of 9 and 7) and 1/(1 + a/2) is one
// VDIVPS (correctly rounded, off the critical path of little else) instead of VRCP14PS and a
// Newton step. Measured on the dev machine (Zen 5, 2026-12-06, one thread, interleaved, 6 rows of
// 64 as the GEMM calls it): 0.44 ns a value, against 0.53 for the Horner form with VRCP14PS and
// 0.79 for GCC's vectorisation of gemm_gelu1 (which the fp32 kernel used until then).
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
    __m512 t = _mm512_div_ps(one, d);
    __m512 t2 = _mm512_mul_ps(t, t), t4 = _mm512_mul_ps(t2, t2), t8 = _mm512_mul_ps(t4, t4);
    __m512 q01 = _mm512_fmadd_ps(_mm512_set1_ps(1.00002368f), t, _mm512_set1_ps(-1.26551223f));
    __m512 q23 = _mm512_fmadd_ps(_mm512_set1_ps(0.09678418f), t, _mm512_set1_ps(0.37409196f));
    __m512 q45 = _mm512_fmadd_ps(_mm512_set1_ps(0.27886807f), t, _mm512_set1_ps(-0.18628806f));
    __m512 q67 = _mm512_fmadd_ps(_mm512_set1_ps(1.48851587f), t, _mm512_set1_ps(-1.13520398f));
    __m512 q89 = _mm512_fmadd_ps(_mm512_set1_ps(0.17087277f), t, _mm512_set1_ps(-0.82215223f));
    __m512 q03 = _mm512_fmadd_ps(q23, t2, q01), q47 = _mm512_fmadd_ps(q67, t2, q45);
    __m512 q = _mm512_fmadd_ps(q89, t8, _mm512_fmadd_ps(q47, t4, q03));
    // exp(y), y = q - a² in [-87, 7]: 2^n p(r), |r| ≤ ln2/2 (gemm_exp_neg's polynomial).
    __m512 y = _mm512_max_ps(_mm512_fnmadd_ps(a, a, q), _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), y);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 r2 = _mm512_mul_ps(r, r), r4 = _mm512_mul_ps(r2, r2);
    __m512 p01 = _mm512_add_ps(r, one);
    __m512 p23 = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 6.0f), r, _mm512_set1_ps(0.5f));
    __m512 p45 = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 120.0f), r, _mm512_set1_ps(1.0f / 24.0f));
    __m512 p67 = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 5040.0f), r, _mm512_set1_ps(1.0f / 720.0f));
    __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(p67, r2, p45), r4, _mm512_fmadd_ps(p23, r2, p01));
    // 1 + erf(z): erfc(|z|) for z < 0, 2 - erfc(z) otherwise (not x - x/2 · erfc(z), one multiply
    // fewer but inf - inf for x = +inf).
    __m512 ec = _mm512_mul_ps(t, _mm512_scalef_ps(p, n));  // erfc(|z|)
    __mmask16 pos = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ);
    __m512 s = _mm512_mask_sub_ps(ec, pos, _mm512_set1_ps(2.0f), ec);
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
