// SPDX-License-Identifier: MIT
//
// The int8 micro-kernel for AVX512-VNNI: VPDPBUSD multiplies 4 unsigned bytes of A by 4 signed
// bytes of W in each of 16 int32 lanes and adds the 4 products to the lane: 64 multiply-adds per
// instruction, 4× an fp32 FMA. The same 6 × 64 tile as the fp32 and bf16 AVX-512 kernels (24
// int32 accumulators + 4 W vectors + 1 broadcast); each k-group step (4 k) loads 4 vectors of the
// packed panel and broadcasts one 4-byte group per row of A. A is stored as q + 128 (unsigned,
// 1..255), so the sum is sum (q_a + 128) q_w = sum q_a q_w + 128 sum q_w: the store subtracts
// 128 × the column's packed sum, converts to fp32, scales by the row's and the column's scale
// and adds bias and residual (gemm-avx512-store.h). The int32 sums are exact: 255 × 127 × k
// stays below 2^31 for k ≤ M3_GEMM_INT8_K_MAX.
// Compiled with -mavx512f -mavx512bw -mavx512vnni and only called when the CPU has them.
#include <immintrin.h>
#include <string.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-private.h"
#include "encoder/cpu/gemm-avx512-store.h"
#include "encoder/cpu/gemm-gelu-avx512.h"

#define NR (16 * AVX512_NV)

// acc += VPDPBUSD(a unsigned, w signed). Inline assembly rather than _mm512_dpbusd_epi32: with the
// intrinsic, GCC 12 copies every accumulator to a new register at each step (a move per
// VPDPBUSD) and folds the W loads into the instructions (6 loads per W vector), which made the
// kernel load-bound at about half its speed.
static inline __attribute__((always_inline)) __m512i dpbusd(__m512i acc, __m512i a, __m512i w) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w));
    return acc;
}

static inline __attribute__((always_inline)) int32_t load_group(const uint8_t *p) {
    int32_t g;
    memcpy(&g, p, sizeof g);
    return g;
}

// The accumulators are named variables, not an array: with an array GCC 12 kept them in memory
// (a load and a store per VPDPBUSD). Rows past mr (a constant here) are dead code.
#define ACC_DECL(i)                                                                            \
    __m512i acc##i##0 = _mm512_setzero_si512(), acc##i##1 = acc##i##0, acc##i##2 = acc##i##0,  \
            acc##i##3 = acc##i##0;
#define ACC_STEP(i)                                                                            \
    if (mr > i) {                                                                              \
        __m512i a = _mm512_set1_epi32(load_group(ap + i * lda + 4 * g));                       \
        acc##i##0 = dpbusd(acc##i##0, a, w0);                                                  \
        acc##i##1 = dpbusd(acc##i##1, a, w1);                                                  \
        acc##i##2 = dpbusd(acc##i##2, a, w2);                                                  \
        acc##i##3 = dpbusd(acc##i##3, a, w3);                                                  \
    }
#define ACC_OUT(i)                                                                             \
    if (mr > i) {                                                                              \
        __m512 as = _mm512_set1_ps(a_scale[i]);                                                \
        out[i][0] = dequantise(acc##i##0, corr[0], _mm512_mul_ps(as, ws[0]));                  \
        out[i][1] = dequantise(acc##i##1, corr[1], _mm512_mul_ps(as, ws[1]));                  \
        out[i][2] = dequantise(acc##i##2, corr[2], _mm512_mul_ps(as, ws[2]));                  \
        out[i][3] = dequantise(acc##i##3, corr[3], _mm512_mul_ps(as, ws[3]));                  \
    }

static inline __attribute__((always_inline)) __m512 dequantise(__m512i acc, __m512i corr,
                                                               __m512 scale) {
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, corr)), scale);
}

static inline __attribute__((always_inline)) void tile_body(
    size_t kp, const uint8_t *ap, size_t lda, const int8_t *wp, float *c, size_t ldc,
    const int mr, size_t nr, const float *a_scale, const float *w_scale, const int32_t *w_sum,
    const float *bias, const float *r, size_t ldr, bool gelu) {
    _Static_assert(AVX512_MR == 6 && AVX512_NV == 4, "the tile below is written out as 6 x 4");
    ACC_DECL(0) ACC_DECL(1) ACC_DECL(2) ACC_DECL(3) ACC_DECL(4) ACC_DECL(5)
    for (size_t g = 0; g < kp / 4; g++) {
        const int8_t *wg = wp + g * 4 * NR;
        __m512i w0 = _mm512_load_si512(wg), w1 = _mm512_load_si512(wg + 64);
        __m512i w2 = _mm512_load_si512(wg + 128), w3 = _mm512_load_si512(wg + 192);
        ACC_STEP(0) ACC_STEP(1) ACC_STEP(2) ACC_STEP(3) ACC_STEP(4) ACC_STEP(5)
    }
    // The blob holds a scale and a sum for every column of the panel (0 past n): full loads.
    __m512 ws[AVX512_NV];
    __m512i corr[AVX512_NV];
#pragma GCC unroll 4
    for (int v = 0; v < AVX512_NV; v++) {
        ws[v] = _mm512_loadu_ps(w_scale + 16 * v);
        corr[v] = _mm512_slli_epi32(_mm512_loadu_si512(w_sum + 16 * v), 7);
    }
    __m512 out[AVX512_MR][AVX512_NV];
    ACC_OUT(0) ACC_OUT(1) ACC_OUT(2) ACC_OUT(3) ACC_OUT(4) ACC_OUT(5)
    m3_gemm_avx512_store(out, mr, nr, c, ldc, true, bias, r, ldr, gelu);
}

#define TILE(R)                                                                                \
    tile_body(kp, ap, lda, wp, c, ldc, R, nr, a_scale, w_scale, w_sum, bias, r, ldr, gelu)

static void int8_avx512vnni_tile(size_t kp, const uint8_t *ap, size_t lda, const int8_t *wp,
                                 float *c, size_t ldc, size_t mr, size_t nr, const float *a_scale,
                                 const float *w_scale, const int32_t *w_sum, const float *bias,
                                 const float *r, size_t ldr, bool gelu) {
    M3_GEMM_AVX512_DISPATCH(mr, TILE);
}

// Per row: the largest magnitude, then q = round_even(clamp(x * 127 / max)) + 128 as bytes, 16 at
// a time (masked past k: zeros, so the padding to kp holds 128, the unsigned zero).
static void int8_avx512vnni_to_int8(const float *a, size_t lda, size_t rows, size_t k, size_t kp,
                                    uint8_t *dst, size_t ldd, float *scale) {
    for (size_t i = 0; i < rows; i++) {
        const float *x = a + i * lda;
        __m512 mx = _mm512_setzero_ps();
        for (size_t kk = 0; kk < k; kk += 16) {
            size_t left = k - kk;
            __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(m, x + kk)));
        }
        float amax = _mm512_reduce_max_ps(mx);
        __m512 inv = _mm512_set1_ps(m3_gemm_i8_inv(amax));
        const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
        const __m512i bias128 = _mm512_set1_epi32(128);
        uint8_t *out = dst + i * ldd;
        for (size_t kk = 0; kk < kp; kk += 16) {
            size_t left = k > kk ? k - kk : 0, room = kp - kk;
            __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __mmask16 ms = room >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << room) - 1);
            __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + kk), inv);
            y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
            __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(y), bias128);
            _mm512_mask_cvtepi32_storeu_epi8(out + kk, ms, q);
        }
        scale[i] = m3_gemm_i8_scale(amax);
    }
}

M3_GEMM_DEFINE_ERF(int8_avx512vnni)

const m3_gemm_kernel m3_gemm_kernel_int8_avx512vnni = {
    .name = "int8-avx512vnni",
    .cpu_features = "avx512f,avx512bw,avx512vnni",
    .precision = M3_GEMM_INT8,
    .mr = AVX512_MR,
    .nr = NR,
    .kc = 0,  // int8 kernels take all of k at once
    .tile_i8 = int8_avx512vnni_tile,
    .to_int8 = int8_avx512vnni_to_int8,
    .gelu = m3_gemm_gelu_avx512,
    .erf = int8_avx512vnni_erf,
};
