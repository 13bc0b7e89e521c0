// SPDX-License-Identifier: MIT
//
// Private to the bf16 GEMM kernels that use VDPBF16PS (gemm-bf16-avx512.c, and gemm-bf16-amx.c for
// the k pairs its tiles cannot take): k pair steps [q0, q1) of an R × 64 tile of accumulators,
// each loading 4 vectors of the packed pair panel (row stride 64 words) and broadcasting one
// pair word per row of A (row stride lda words). Included only by files compiled with
// -mavx512f -mavx512bf16.
#ifndef M3_ENCODER_CPU_GEMM_BF16_AVX512_STEPS_H
#define M3_ENCODER_CPU_GEMM_BF16_AVX512_STEPS_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "encoder/cpu/gemm-avx512-store.h"

static inline __attribute__((always_inline)) void m3_gemm_bf16_avx512_steps(
    __m512 acc[AVX512_MR][AVX512_NV], const int R, const uint32_t *ap, size_t lda,
    const uint32_t *wp, size_t q0, size_t q1) {
#pragma GCC unroll 4
    for (size_t q = q0; q < q1; q++) {
        __m512bh w[AVX512_NV];
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            w[v] = (__m512bh)_mm512_load_si512(wp + q * 16 * AVX512_NV + 16 * v);
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[i * lda + q]);
#pragma GCC unroll 4
            for (int v = 0; v < AVX512_NV; v++)
                acc[i][v] = _mm512_dpbf16_ps(acc[i][v], a, w[v]);
        }
    }
}

#endif
