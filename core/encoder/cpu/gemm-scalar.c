// SPDX-License-Identifier: MIT
//
// The portable micro-kernels (no -m flags): a 4 × 16 block of C in a local array, which the
// compiler keeps in baseline vector registers. The fallbacks for CPUs without AVX2 (fp32),
// AVX512_BF16 (bf16) or AVX2 (int8) and the references the SIMD kernels are tested beside. The bf16 one adds the
// two products of a pair in VDPBF16PS's order (odd element first), each product exact in fp32.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-private.h"

#define MR 4
#define NR 16
#define KC 256

// Writes the accumulators to C: the first k block adds bias and residual, later ones add to C.
static void store_tile(float acc[MR][NR], float *c, size_t ldc, size_t mr, size_t nr, bool first,
                       const float *bias, const float *r, size_t ldr) {
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++) {
            if (first) {
                float x = acc[i][j] + (bias ? bias[j] : 0.0f);
                if (r)
                    x += r[i * ldr + j];
                c[i * ldc + j] = x;
            } else {
                c[i * ldc + j] += acc[i][j];
            }
        }
}

static void scalar_tile(size_t kc, const void *av, size_t lda, const void *wv, float *c,
                        size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                        const float *r, size_t ldr) {
    const float *ap = av, *wp = wv;
    float acc[MR][NR] = {{0}};
    for (size_t k = 0; k < kc; k++)
        for (size_t i = 0; i < mr; i++) {
            float a = ap[i * lda + k];
            for (size_t j = 0; j < NR; j++)
                acc[i][j] += a * wp[k * NR + j];
        }
    store_tile(acc, c, ldc, mr, nr, first, bias, r, ldr);
}

static float bf16_lo(uint32_t pair) {
    uint32_t b = pair << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static float bf16_hi(uint32_t pair) {
    uint32_t b = pair & 0xffff0000u;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static void bf16_scalar_tile(size_t kc, const void *av, size_t lda, const void *wv, float *c,
                             size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                             const float *r, size_t ldr) {
    const uint32_t *ap = av, *wp = wv;
    float acc[MR][NR] = {{0}};
    for (size_t q = 0; q < (kc + 1) / 2; q++)
        for (size_t i = 0; i < mr; i++) {
            uint32_t a = ap[i * lda + q];
            float a_lo = bf16_lo(a), a_hi = bf16_hi(a);
            for (size_t j = 0; j < NR; j++) {
                float x = acc[i][j] + a_hi * bf16_hi(wp[q * NR + j]);
                acc[i][j] = x + a_lo * bf16_lo(wp[q * NR + j]);
            }
        }
    store_tile(acc, c, ldc, mr, nr, first, bias, r, ldr);
}

static void bf16_scalar_to_bf16(const float *a, size_t lda, size_t rows, size_t kc, uint32_t *dst,
                                size_t ldd) {
    for (size_t i = 0; i < rows; i++)
        for (size_t q = 0; q < (kc + 1) / 2; q++) {
            uint32_t lo = m3_gemm_bf16_round(a[i * lda + 2 * q]);
            uint32_t hi = 2 * q + 1 < kc ? m3_gemm_bf16_round(a[i * lda + 2 * q + 1]) : 0;
            dst[i * ldd + q] = lo | hi << 16;
        }
}

// int8: exact int32 sums of the signed bytes, scaled once (gemm-private.h).
static void int8_scalar_tile(size_t kp, const uint8_t *av, size_t lda, const int8_t *wp, float *c,
                             size_t ldc, size_t mr, size_t nr, const float *a_scale,
                             const float *w_scale, const int32_t *w_sum, const float *bias,
                             const float *r, size_t ldr, bool gelu) {
    (void)w_sum;
    const int8_t *ap = (const int8_t *)av;
    int32_t acc[MR][NR] = {{0}};
    for (size_t g = 0; g < kp / 4; g++)
        for (size_t i = 0; i < mr; i++)
            for (size_t j = 0; j < NR; j++)
                for (size_t h = 0; h < 4; h++)
                    acc[i][j] += (int32_t)ap[i * lda + 4 * g + h] * wp[(g * NR + j) * 4 + h];
    float facc[MR][NR];
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++)
            facc[i][j] = (float)acc[i][j] * (a_scale[i] * w_scale[j]);
    store_tile(facc, c, ldc, mr, nr, true, bias, r, ldr);
    for (size_t i = 0; gelu && i < mr; i++)
        for (size_t j = 0; j < nr; j++)
            c[i * ldc + j] = gemm_gelu1(c[i * ldc + j]);
}

static void int8_scalar_to_int8(const float *a, size_t lda, size_t rows, size_t k, size_t kp,
                                uint8_t *dst, size_t ldd, float *scale) {
    for (size_t i = 0; i < rows; i++) {
        const float *x = a + i * lda;
        float amax = 0.0f;
        for (size_t kk = 0; kk < k; kk++)
            amax = fmaxf(amax, fabsf(x[kk]));
        float inv = m3_gemm_i8_inv(amax);
        int8_t *out = (int8_t *)dst + i * ldd;
        for (size_t kk = 0; kk < kp; kk++)
            out[kk] = kk < k ? m3_gemm_i8_quantise(x[kk], inv) : 0;
        scale[i] = m3_gemm_i8_scale(amax);
    }
}

M3_GEMM_DEFINE_GELU(scalar)

const m3_gemm_kernel m3_gemm_kernel_scalar = {
    .name = "scalar",
    .cpu_features = "",
    .precision = M3_GEMM_FP32,
    .mr = MR,
    .nr = NR,
    .kc = KC,
    .tile = scalar_tile,
    .gelu = scalar_gelu,
    .erf = scalar_erf,
};

const m3_gemm_kernel m3_gemm_kernel_bf16_scalar = {
    .name = "bf16-scalar",
    .cpu_features = "",
    .precision = M3_GEMM_BF16,
    .mr = MR,
    .nr = NR,
    .kc = KC,
    .tile = bf16_scalar_tile,
    .to_bf16 = bf16_scalar_to_bf16,
    .gelu = scalar_gelu,
    .erf = scalar_erf,
};

const m3_gemm_kernel m3_gemm_kernel_int8_scalar = {
    .name = "int8-scalar",
    .cpu_features = "",
    .precision = M3_GEMM_INT8,
    .mr = MR,
    .nr = NR,
    .kc = 0,  // int8 kernels take all of k at once
    .tile_i8 = int8_scalar_tile,
    .to_int8 = int8_scalar_to_int8,
    .gelu = scalar_gelu,
    .erf = scalar_erf,
};
