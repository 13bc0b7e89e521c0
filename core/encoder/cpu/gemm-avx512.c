// SPDX-License-Identifier: MIT
//
// The AVX-512F micro-kernel: an MR × (16·NV) block of C in zmm accumulators; each k step loads NV
// vectors of the packed W panel and broadcasts MR floats of A (read in place), MR·NV FMAs.
// Compiled with -mavx512f -mfma (its own static library) and only called when the CPU has AVX-512F.
//
// 6 × 64 (24 accumulators + 4 W vectors + 1 broadcast of 32 zmm), k block 384, k unrolled by 4:
// measured on the 2-vCPU Zen 4 dev machine against 14×32, 12×32, 8×48 and k blocks 256/384/512,
// it was the fastest or tied everywhere (~85 % of the FMA peak at m = 2048, best at m = 16).
#include <immintrin.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-private.h"
#include "encoder/cpu/gemm-avx512-store.h"

#define AVX512_KC 384
#define NR (16 * AVX512_NV)

static inline __attribute__((always_inline)) void tile_body(size_t kc, const float *ap,
                                                            size_t lda, const float *wp, float *c,
                                                            size_t ldc, const int mr, size_t nr,
                                                            bool first, const float *bias,
                                                            const float *r, size_t ldr) {
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
            __m512 a = _mm512_set1_ps(ap[i * lda + k]);
#pragma GCC unroll 4
            for (int v = 0; v < AVX512_NV; v++)
                acc[i][v] = _mm512_fmadd_ps(a, w[v], acc[i][v]);
        }
    }
    m3_gemm_avx512_store(acc, mr, nr, c, ldc, first, bias, r, ldr);
}

#define TILE(R) tile_body(kc, ap, lda, wp, c, ldc, R, nr, first, bias, r, ldr)

static void avx512_tile(size_t kc, const void *av, size_t lda, const void *wv, float *c,
                        size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                        const float *r, size_t ldr) {
    const float *ap = av, *wp = wv;
    M3_GEMM_AVX512_DISPATCH(mr, TILE);
}

// Short A (a query of up to 16 tokens): mr × 16 sub-tiles, mr ≤ 16 accumulators, one W vector
// and mr broadcasts per k step, across the panel's four 16-column strips. Every row is computed
// while W streams in, instead of the W block coming from memory for the first 6-row tile and from
// L2 for the next two. The sums run in the same k order as avx512_tile's (identical results).
static inline __attribute__((always_inline)) void tall_body(size_t kc, const float *ap, size_t lda,
                                                            const float *wp, float *c, size_t ldc,
                                                            const int mr, size_t nr, bool first,
                                                            const float *bias, const float *r,
                                                            size_t ldr) {
    // A's rows lie a row of the activations apart (4 KB for BGE-M3): read in place, 16 of them
    // map to one L1 set. Copied k-major once per call, the broadcasts read one line per k step.
    _Alignas(64) float at[AVX512_KC * M3_GEMM_MR_MAX];
    for (int i = 0; i < mr; i++)
        for (size_t k = 0; k < kc; k++)
            at[k * (size_t)mr + (size_t)i] = ap[(size_t)i * lda + k];
    for (size_t lo = 0; lo < nr; lo += 16) {
        __m512 acc[M3_GEMM_MR_MAX];
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++)
            acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
        for (size_t k = 0; k < kc; k++) {
            __m512 w = _mm512_load_ps(wp + k * NR + lo);
            const float *a = at + k * (size_t)mr;
#pragma GCC unroll 16
            for (int i = 0; i < mr; i++)
                acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), w, acc[i]);
        }
        __mmask16 mask = nr - lo >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nr - lo)) - 1);
        __m512 b = first && bias ? _mm512_maskz_loadu_ps(mask, bias + lo) : _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            float *p = c + i * ldc + lo;
            __m512 x = _mm512_add_ps(acc[i], first ? b : _mm512_maskz_loadu_ps(mask, p));
            if (first && r)
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, r + i * ldr + lo));
            _mm512_mask_storeu_ps(p, mask, x);
        }
    }
}

#define TALL(R) tall_body(kc, ap, lda, wp, c, ldc, R, nr, first, bias, r, ldr)

static void avx512_tile_tall(size_t kc, const void *av, size_t lda, const void *wv, float *c,
                             size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                             const float *r, size_t ldr) {
    const float *ap = av, *wp = wv;
    switch (mr) {
    case 7: TALL(7); break;
    case 8: TALL(8); break;
    case 9: TALL(9); break;
    case 10: TALL(10); break;
    case 11: TALL(11); break;
    case 12: TALL(12); break;
    case 13: TALL(13); break;
    case 14: TALL(14); break;
    case 15: TALL(15); break;
    case 16: TALL(16); break;
    default: M3_GEMM_AVX512_DISPATCH(mr, TILE); break;
    }
}

M3_GEMM_DEFINE_GELU(avx512)

const m3_gemm_kernel m3_gemm_kernel_avx512 = {
    .name = "avx512",
    .cpu_features = "avx512f",
    .precision = M3_GEMM_FP32,
    .mr = AVX512_MR,
    .nr = NR,
    .kc = AVX512_KC,
    .tile = avx512_tile,
    .tile_tall = avx512_tile_tall,
    .gelu = avx512_gelu,
    .erf = avx512_erf,
};
