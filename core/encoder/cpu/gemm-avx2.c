// SPDX-License-Identifier: MIT
//
// The AVX2+FMA micro-kernel: a 6 × 16 block of C in 12 ymm accumulators (16 registers: 12 + two
// W vectors + one broadcast); each k step loads 2 vectors of the packed W panel and broadcasts 6
// floats of A (read in place, one row per accumulator row). Compiled with -mavx2 -mfma and only called when the CPU has both.
#include <immintrin.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-gelu-avx2.h"
#include "encoder/cpu/gemm-private.h"
#include "encoder/cpu/gemm-avx2-store.h"

#define MR AVX2_MR
#define NV AVX2_NV
#define NR (8 * NV)
#define KC 256

static inline __attribute__((always_inline)) void tile_body(size_t kc, const float *ap,
                                                            size_t lda, const float *wp, float *c,
                                                            size_t ldc,
                                                            const int mr, size_t nr, bool first,
                                                            const float *bias, const float *r,
                                                            size_t ldr) {
    __m256 acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[i][v] = _mm256_setzero_ps();
    for (size_t k = 0; k < kc; k++) {
        __m256 w[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            w[v] = _mm256_load_ps(wp + k * NR + 8 * v);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m256 a = _mm256_broadcast_ss(ap + i * lda + k);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm256_fmadd_ps(a, w[v], acc[i][v]);
        }
    }
    m3_gemm_avx2_store(acc, mr, nr, c, ldc, first, bias, r, ldr, false);
}

#define TILE(R)                                                                                \
    case R:                                                                                    \
        tile_body(kc, ap, lda, wp, c, ldc, R, nr, first, bias, r, ldr);                        \
        break;

static void avx2_tile(size_t kc, const void *av, size_t lda, const void *wv, float *c, size_t ldc,
                      size_t mr, size_t nr, bool first, const float *bias, const float *r,
                      size_t ldr) {
    const float *ap = av, *wp = wv;
    switch (mr) {
        TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
    default:
        break;
    }
}

M3_GEMM_DEFINE_ERF(avx2)

const m3_gemm_kernel m3_gemm_kernel_avx2 = {
    .name = "avx2",
    .cpu_features = "avx2,fma",
    .precision = M3_GEMM_FP32,
    .mr = MR,
    .nr = NR,
    .kc = KC,
    .tile = avx2_tile,
    .gelu = m3_gemm_gelu_avx2,
    .erf = avx2_erf,
};
