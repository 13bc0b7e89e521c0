// SPDX-License-Identifier: MIT
//
// Private to the GEMM kernels: erf and exact GELU written as branch-free scalar code, for the
// scalar kernels' GELU and every kernel's erf (test-gemm's check). The AVX2 and AVX-512 kernels
// take their GELU from gemm-gelu-avx2.h and gemm-gelu-avx512.h instead (gemm-gelu-rational.h):
// GCC did not vectorise this code with -mavx2 -mfma, where it took 8.4 ns a value against 0.40
// for the AVX2 rational form (dev machine, 2026-12-07), which made the AVX2 fp32 encoder 14–28 %
// and int8-avxvnni 47 % faster at 8 × 128.
//
// erf(a), a = |z|:  a < 0.8: a·P(a²), P the Taylor series of erf to a^23 (truncation < 2e-9);
//                   a ≥ 0.8: 1 - erfc(a), erfc(a) = t·exp(-a² + Q(t)), t = 1/(1 + a/2), the
//                   Chebyshev fit of Numerical Recipes (relative error < 1.2e-7 on erfc, which is
//                   below 0.26 there, so < 3.1e-8 absolute). Measured (test-gemm): max abs
//                   error 1.06e-7 over [-10, 10], under 2 ulp of the fp32 result.
// GELU takes 1 + erf(z) straight from the erfc form at every z: erfc(|z|) for z < 0 (so that large
// negative inputs keep their relative accuracy instead of cancelling 1 - 0.99999) and 2 - erfc(z)
// for z ≥ 0. Near 0, where erf itself needs the Taylor form for its relative accuracy, 1 + erf(z)
// is close to 1 and the erfc form's absolute error (< 1.2e-7 · erfc ≤ 1.2e-7) is what counts: the
// GELU error stays at 1.07e-7 · max(1, |x|) (test-gemm), and skipping the second polynomial makes
// the GELU 28 % faster (1.09 → 0.78 ns a value on the dev machine's AVX-512, 2026-12-06), ~4 % of
// the FFN-in GEMM.
#ifndef M3_ENCODER_CPU_GEMM_GELU_H
#define M3_ENCODER_CPU_GEMM_GELU_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline __attribute__((always_inline)) float gemm_exp_neg(float y) {
    // exp(y) for y in [-87, 0]; 2^n · p(r), |r| ≤ ln2/2, p the degree-7 Taylor polynomial.
    // Written so that NaN (a damaged model's weights) lands on -87 too: converting NaN or a huge n
    // to an integer below would be undefined behaviour.
    y = y >= -87.0f ? y : -87.0f;
    y = y <= 88.0f ? y : 88.0f;
    float n = (y * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
    float r = y - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// erf(a) for a in [0, 0.8): a·P(a²), the Taylor series to n = 11.
static inline __attribute__((always_inline)) float gemm_erf_small(float a) {
    float s = a * a;
    float p = -1.2290555301717926e-09f;
    p = p * s + 1.4807192815879218e-08f;
    p = p * s + -1.6365844691234924e-07f;
    p = p * s + 1.6462114365889246e-06f;
    p = p * s + -1.492565035840625e-05f;
    p = p * s + 0.00012055332981789664f;
    p = p * s + -0.00085483270234508522f;
    p = p * s + 0.0052239776254421879f;
    p = p * s + -0.026866170645131252f;
    p = p * s + 0.11283791670955126f;
    p = p * s + -0.37612638903183754f;
    p = p * s + 1.1283791670955126f;
    return a * p;
}

// erfc(a) for a ≥ 0.8 (any a ≥ 0 works; clamped at 10, where erfc is 2e-45).
static inline __attribute__((always_inline)) float gemm_erfc_large(float a) {
    a = a > 10.0f ? 10.0f : a;
    float t = 1.0f / (1.0f + 0.5f * a);
    float q = 0.17087277f;
    q = q * t + -0.82215223f;
    q = q * t + 1.48851587f;
    q = q * t + -1.13520398f;
    q = q * t + 0.27886807f;
    q = q * t + -0.18628806f;
    q = q * t + 0.09678418f;
    q = q * t + 0.37409196f;
    q = q * t + 1.00002368f;
    q = q * t + -1.26551223f;
    return t * gemm_exp_neg(q - a * a);
}

static inline __attribute__((always_inline)) float gemm_erf1(float z) {
    float a = __builtin_fabsf(z);
    float small = gemm_erf_small(a < 0.8f ? a : 0.0f);
    float large = 1.0f - gemm_erfc_large(a);
    return __builtin_copysignf(a < 0.8f ? small : large, z);
}

static inline __attribute__((always_inline)) float gemm_gelu1(float x) {
    float z = x * 0.70710678118654752f;
    float ec = gemm_erfc_large(__builtin_fabsf(z));
    return 0.5f * x * (z < 0.0f ? ec : 2.0f - ec);
}

// The loops each kernel file exports (the compiler vectorises them with that file's flags); a
// kernel with a GELU of its own (gemm-gelu-avx512.h) takes only the erf.
#define M3_GEMM_DEFINE_ERF(prefix)                                    \
    static void prefix##_erf(const float *x, float *y, size_t n) {    \
        for (size_t i = 0; i < n; i++)                                \
            y[i] = gemm_erf1(x[i]);                                   \
    }
#define M3_GEMM_DEFINE_GELU(prefix)                                   \
    static void prefix##_gelu(float *x, size_t n) {                   \
        for (size_t i = 0; i < n; i++)                                \
            x[i] = gemm_gelu1(x[i]);                                  \
    }                                                                 \
    M3_GEMM_DEFINE_ERF(prefix)

#endif
