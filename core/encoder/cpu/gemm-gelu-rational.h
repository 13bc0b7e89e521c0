// SPDX-License-Identifier: MIT
//
// Private to the vector GELUs (gemm-gelu-avx512.h, gemm-gelu-avx2.h): the exact-erf GELU,
// x/2 · (1 + erf(x/√2)), with erf(x/√2) as a rational function of x:
//
//     erf(x/√2) ≈ x · P(x²) / Q(x²),  P and Q of degree 5 in x², x clamped to [-5.5, 5.5]
//
// fitted by tools/fit-gelu.py (minimax, 1.4e-8 from erf in exact arithmetic). Beyond 5.5, erf is
// within 5.6e-8 of ±1, so the clamp is below the fp32 rounding of the result; below -5.5 the GELU
// is 0 (|GELU(x)| < 2.8e-8 · |x| there), which also takes -inf to 0 instead of NaN. No exp, no
// erfc: ~17 instructions instead of ~40 for the erfc form that gemm-gelu.h uses (exp, a second
// polynomial), and both polynomials in Estrin's form (powers x⁴, x⁸ beside pairs c_i + c_{i+1}·x²),
// 3 steps deep instead of 5; the division is one correctly rounded VDIVPS. Both vector forms
// make the same fused operations in the same order, so their results are the same bits.
// Error, checked on every float with |x| in [2⁻¹⁰, 16] of both signs (outside it GELU is x/2 or
// 0 or x to fp32 rounding): 1.92e-7 · max(1, |x|) at most against the double erfc form, within
// test-gemm's 2e-7 (the erfc form measured 1.33e-7; the difference is the fp32 rounding of P/Q
// near |erf| = 1). It needs the fused multiply-adds: with separate roundings (gemm-gelu.h's
// scalar code, built without FMA for the scalar kernels) it reached 2.26e-7, so that stays on the
// erfc form. Speed on the dev machine (Zen 5, one thread, rows of 64 as the GEMM calls it,
// 2026-12-07): 0.19 ns a value against 0.45 for the erfc form in AVX-512, which was 7 % of the
// bf16 FFN-in.
#ifndef M3_ENCODER_CPU_GEMM_GELU_RATIONAL_H
#define M3_ENCODER_CPU_GEMM_GELU_RATIONAL_H

#define M3_GELU_CLAMP 5.5f
#define M3_GELU_P0 7.978844643e-01f  // √(2/π): erf(x/√2) ≈ x·√(2/π) near 0
#define M3_GELU_P1 6.770468503e-02f
#define M3_GELU_P2 9.354475886e-03f
#define M3_GELU_P3 3.376441018e-04f
#define M3_GELU_P4 1.270409757e-05f
#define M3_GELU_P5 4.549874077e-08f
#define M3_GELU_Q1 2.515211403e-01f  // Q0 = 1
#define M3_GELU_Q2 2.864568681e-02f
#define M3_GELU_Q3 1.884424477e-03f
#define M3_GELU_Q4 7.364610792e-05f
#define M3_GELU_Q5 1.197498932e-06f

// erf(x/√2) for the vector x of type VT with the intrinsics of prefix PFX (_mm256, _mm512): both
// vector GELUs expand this one sequence. vmaxps returns its second operand for a NaN, so NaN x is
// clamped to -5.5 (finite through the polynomials); the GELU's last step, x/2 · (1 + erf), makes
// it NaN again.
#define M3_GELU_ERF(PFX, VT, x)                                                                \
    ({                                                                                         \
        VT z_ = PFX##_min_ps(PFX##_max_ps((x), PFX##_set1_ps(-M3_GELU_CLAMP)),                 \
                             PFX##_set1_ps(M3_GELU_CLAMP));                                    \
        VT w_ = PFX##_mul_ps(z_, z_);                                                          \
        VT w2_ = PFX##_mul_ps(w_, w_), w4_ = PFX##_mul_ps(w2_, w2_);                           \
        VT p_ = PFX##_fmadd_ps(                                                                \
            PFX##_fmadd_ps(PFX##_set1_ps(M3_GELU_P5), w_, PFX##_set1_ps(M3_GELU_P4)), w4_,     \
            PFX##_fmadd_ps(                                                                    \
                PFX##_fmadd_ps(PFX##_set1_ps(M3_GELU_P3), w_, PFX##_set1_ps(M3_GELU_P2)), w2_, \
                PFX##_fmadd_ps(PFX##_set1_ps(M3_GELU_P1), w_, PFX##_set1_ps(M3_GELU_P0))));    \
        VT q_ = PFX##_fmadd_ps(                                                                \
            PFX##_fmadd_ps(PFX##_set1_ps(M3_GELU_Q5), w_, PFX##_set1_ps(M3_GELU_Q4)), w4_,     \
            PFX##_fmadd_ps(                                                                    \
                PFX##_fmadd_ps(PFX##_set1_ps(M3_GELU_Q3), w_, PFX##_set1_ps(M3_GELU_Q2)), w2_, \
                PFX##_fmadd_ps(PFX##_set1_ps(M3_GELU_Q1), w_, PFX##_set1_ps(1.0f))));          \
        PFX##_mul_ps(z_, PFX##_div_ps(p_, q_));                                                \
    })

#endif
