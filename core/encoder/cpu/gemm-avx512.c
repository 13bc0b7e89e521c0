// SPDX-License-Identifier: MIT
//
// The AVX-512F micro-kernel: an MR × (16·NV) block of C in zmm accumulators; each k step loads NV
// vectors of the packed W panel and broadcasts MR floats of A (read in place), MR·NV FMAs.
// Compiled with -mavx512f -mfma (its own static library) and only called when the CPU has AVX-512F.
//
// 6 × 64 (24 accumulators + 4 W vectors + 1 broadcast of 32 zmm), k unrolled by 4: measured on
// the 2-vCPU AMD EPYC dev machine against 14×32, 12×32, 8×48, it was the fastest or tied
// everywhere (~85 % of the FMA peak at m = 2048, best at m = 16).
// k block 512, not 384 (which won with one matrix repeated, warm in the L3), and the C tile (or,
// in the first k block, the residual rows) prefetched into L1 C_PF_STEPS k steps before the
// epilogue reads it: inside the encoder, where each GEMM's activations and weights come from the
// L3 or memory, C's lines have left the caches by the time a tile's epilogue adds to them again,
// and the 24 loads stalled the tile; fewer k blocks mean fewer such epilogues. Together +5–7 % on
// the encoder's fp32 GEMMs at 1,024 rows (bench-gemm's stream rows, docs/performance.md, "fp32:
// k block 512 and C prefetched").
// Measured since (2026-12-07, docs/performance.md "Seventh session"), against the encoder's own
// layout (bench-gemm's stream, 2 MiB pages): the kernel runs at 87–94 % of the FMA peak there at
// its best pass, close to a matrix alone, so none of these was kept: A packed per micro-tile
// (the 6 rows' 4K aliasing), the next tile's A prefetched, the first k block's write-only C
// prefetched, the FFN rows off the power-of-two stride, GELU in the epilogue, other task sizes,
// k block 1,024, column-major task order. Each was within the machine's noise or slower.
#include <immintrin.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-private.h"
#include "encoder/cpu/gemm-avx512-store.h"
#include "encoder/cpu/gemm-gelu-avx512.h"

#define AVX512_KC 512
// k steps before the end of the tile at which C's lines are prefetched (~600 cycles ahead).
#define C_PF_STEPS 64
#define NR (16 * AVX512_NV)

static inline __attribute__((always_inline)) void tile_body(size_t kc, const float *ap,
                                                            size_t lda, const float *wp, float *c,
                                                            size_t ldc, const int mr, size_t nr,
                                                            bool first, const float *bias,
                                                            const float *r, size_t ldr,
                                                            const char *pf, size_t pf_steps) {
    __m512 acc[AVX512_MR][AVX512_NV];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            acc[i][v] = _mm512_setzero_ps();
    // The k steps [K0, K1): two ranges, so that C's prefetch sits between them.
#define K_STEPS(K0, K1)                                                                        \
    _Pragma("GCC unroll 4") for (size_t k = (K0); k < (K1); k++) {                             \
        if (k < pf_steps) {                                                                    \
            _mm_prefetch(pf + 128 * k, _MM_HINT_T1);                                           \
            _mm_prefetch(pf + 128 * k + 64, _MM_HINT_T1);                                      \
        }                                                                                      \
        __m512 w[AVX512_NV];                                                                   \
        _Pragma("GCC unroll 4") for (int v = 0; v < AVX512_NV; v++)                            \
            w[v] = _mm512_load_ps(wp + k * NR + 16 * v);                                       \
        _Pragma("GCC unroll 16") for (int i = 0; i < mr; i++) {                                \
            __m512 a = _mm512_set1_ps(ap[i * lda + k]);                                        \
            _Pragma("GCC unroll 4") for (int v = 0; v < AVX512_NV; v++)                        \
                acc[i][v] = _mm512_fmadd_ps(a, w[v], acc[i][v]);                               \
        }                                                                                      \
    }
    size_t k_pf = kc > C_PF_STEPS ? kc - C_PF_STEPS : 0;
    K_STEPS(0, k_pf)
    m3_gemm_avx512_prefetch_c(mr, nr, c, ldc, first, r, ldr);
    K_STEPS(k_pf, kc)
#undef K_STEPS
    m3_gemm_avx512_store(acc, mr, nr, c, ldc, first, bias, r, ldr, false);
}

#define TILE(R) tile_body(kc, ap, lda, wp, c, ldc, R, nr, first, bias, r, ldr, pf, pf_steps)

// An odd pf_lines prefetches the line after the range too (a prefetch never faults).
static void avx512_tile_pf(size_t kc, const void *av, size_t lda, const void *wv, float *c,
                           size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                           const float *r, size_t ldr, const void *pfv, size_t pf_lines) {
    const float *ap = av, *wp = wv;
    const char *pf = pfv;
    size_t pf_steps = (pf_lines + 1) / 2;
    M3_GEMM_AVX512_DISPATCH(mr, TILE);
}

static void avx512_tile(size_t kc, const void *av, size_t lda, const void *wv, float *c,
                        size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                        const float *r, size_t ldr) {
    avx512_tile_pf(kc, av, lda, wv, c, ldc, mr, nr, first, bias, r, ldr, NULL, 0);
}

M3_GEMM_DEFINE_ERF(avx512)

const m3_gemm_kernel m3_gemm_kernel_avx512 = {
    .name = "avx512",
    .cpu_features = "avx512f",
    .precision = M3_GEMM_FP32,
    .mr = AVX512_MR,
    .nr = NR,
    .kc = AVX512_KC,
    .tile = avx512_tile,
    .tile_pf = avx512_tile_pf,
    .gelu = m3_gemm_gelu_avx512,
    .erf = avx512_erf,
};
