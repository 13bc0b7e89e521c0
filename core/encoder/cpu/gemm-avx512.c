// SPDX-License-Identifier: MIT
//
// The AVX-512F micro-kernel: an MR × (16·NV) block of C in zmm accumulators; each k step loads NV
// vectors of the packed W panel and broadcasts MR floats of the packed A tile, MR·NV FMAs.
// Compiled with -mavx512f -mfma (its own static library) and only called when the CPU has AVX-512F.
//
// 6 × 64 (24 accumulators + 4 W vectors + 1 broadcast of 32 zmm), k block 384, k unrolled by 4:
// measured on the 2-vCPU Zen 4 dev machine against 14×32, 12×32, 8×48 and k blocks 256/384/512,
// it was the fastest or tied everywhere (~85 % of the FMA peak at m = 2048, best at m = 16).
#include <immintrin.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-private.h"

#define AVX512_MR 6
#define AVX512_NV 4
#define AVX512_KC 384
#define NR (16 * AVX512_NV)

static inline __attribute__((always_inline)) void tile_body(size_t kc, const float *ap,
                                                            const float *wp, float *c, size_t ldc,
                                                            const int mr, size_t nr, bool first,
                                                            const float *bias, const float *r,
                                                            size_t ldr) {
    __m512 acc[AVX512_MR][AVX512_NV];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            acc[i][v] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (size_t k = 0; k < kc; k++) {
        __m512 w[AVX512_NV];
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            w[v] = _mm512_load_ps(wp + k * NR + 16 * v);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            __m512 a = _mm512_set1_ps(ap[k * AVX512_MR + i]);
#pragma GCC unroll 4
            for (int v = 0; v < AVX512_NV; v++)
                acc[i][v] = _mm512_fmadd_ps(a, w[v], acc[i][v]);
        }
    }
    __mmask16 mask[AVX512_NV];
#pragma GCC unroll 4
    for (int v = 0; v < AVX512_NV; v++) {
        size_t lo = 16 * (size_t)v;
        mask[v] = nr >= lo + 16 ? (__mmask16)0xffff
                  : nr > lo     ? (__mmask16)((1u << (nr - lo)) - 1)
                                : (__mmask16)0;
    }
    if (first) {
        __m512 b[AVX512_NV];
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            b[v] = bias ? _mm512_maskz_loadu_ps(mask[v], bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
            for (int v = 0; v < AVX512_NV; v++) {
                __m512 x = _mm512_add_ps(acc[i][v], b[v]);
                if (r)
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask[v], r + i * ldr + 16 * v));
                _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mask[v], x);
            }
    } else {
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
            for (int v = 0; v < AVX512_NV; v++) {
                float *p = c + i * ldc + 16 * v;
                __m512 x = _mm512_add_ps(acc[i][v], _mm512_maskz_loadu_ps(mask[v], p));
                _mm512_mask_storeu_ps(p, mask[v], x);
            }
    }
}

#define TILE(R)                                                                                \
    case R:                                                                                    \
        tile_body(kc, ap, wp, c, ldc, R, nr, first, bias, r, ldr);                             \
        break;

static void avx512_tile(size_t kc, const float *ap, const float *wp, float *c, size_t ldc,
                        size_t mr, size_t nr, bool first, const float *bias, const float *r,
                        size_t ldr) {
    switch (mr) {
        TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
#if AVX512_MR >= 7
        TILE(7) TILE(8)
#endif
#if AVX512_MR >= 9
        TILE(9) TILE(10) TILE(11) TILE(12)
#endif
#if AVX512_MR >= 13
        TILE(13) TILE(14)
#endif
    default:
        break;
    }
}

M3_GEMM_DEFINE_GELU(avx512)

const m3_gemm_kernel m3_gemm_kernel_avx512 = {
    .name = "avx512",
    .mr = AVX512_MR,
    .nr = NR,
    .kc = AVX512_KC,
    .tile = avx512_tile,
    .gelu = avx512_gelu,
    .erf = avx512_erf,
};
