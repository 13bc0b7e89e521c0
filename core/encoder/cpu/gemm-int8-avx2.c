// SPDX-License-Identifier: MIT
//
// The int8 micro-kernels on ymm registers, one source compiled twice (meson.build):
//   M3_INT8_VNNI=1  AVX-VNNI ({vex} VPDPBUSD on ymm: 32 multiply-adds per instruction), for the
//                   CPUs with AVX-VNNI but no AVX-512 (Alder Lake and later laptops). A is stored
//                   as q + 128 (unsigned), and the store subtracts 128 × the column's packed sum,
//                   as in gemm-int8-avx512vnni.c. Tile 6 × 16: 12 accumulators + 2 W + 1 A.
//   M3_INT8_VNNI=0  plain AVX2: VPMADDUBSW multiplies unsigned by signed bytes and adds pairs into
//                   saturating int16, VPMADDWD by ones adds the pairs into int32. To keep VPMADDUBSW
//                   from saturating, A stays signed (q in [-127, 127]) and goes in as |q_a| while W
//                   takes q_a's sign (VPSIGNB): each product |q_a| · ±q_w = q_a q_w, and a pair
//                   sums to at most 2 · 127 · 127 = 32258 < 32767. Exact, the same sums as the
//                   other kernels. Tile 4 × 16: 8 accumulators + 2 W + |A| and A + ones + temps.
// Both read the int8 panel layout of gemm-private.h (4-byte k groups, nr = 16) and write through
// gemm-avx2-store.h. Compiled with -mavx2 -mfma (and -mavxvnni for the VNNI one); each is only
// called when the CPU has its features.
#include <immintrin.h>
#include <string.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-gelu-avx2.h"
#include "encoder/cpu/gemm-private.h"
#include "encoder/cpu/gemm-avx2-store.h"

#define NV AVX2_NV
#define NR (8 * NV)
#if M3_INT8_VNNI
#define MR 6
#define PREFIX int8_avxvnni
#else
#define MR 4
#define PREFIX int8_avx2
#endif
// AVX-VNNI: the {vex} VPDPBUSD in inline assembly rather than _mm256_dpbusd_avx_epi32, whose
// GCC 12 code copies every accumulator at each step (see gemm-int8-avx512vnni.c).
#define GLUE2(a, b) a##b
#define GLUE(a, b) GLUE2(a, b)
#define FN(name) GLUE(PREFIX, name)

static inline __attribute__((always_inline)) int32_t load_group(const uint8_t *p) {
    int32_t g;
    memcpy(&g, p, sizeof g);
    return g;
}

// acc += the 4-byte dot products of a (A's group, broadcast) and w (W's groups).
static inline __attribute__((always_inline)) __m256i dot4(__m256i acc, __m256i a, __m256i w) {
#if M3_INT8_VNNI
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(w));
    return acc;
#else
    __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(a), _mm256_sign_epi8(w, a));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}

static inline __attribute__((always_inline)) __m256 dequantise(__m256i acc, __m256i corr,
                                                               __m256 scale) {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc, corr)), scale);
}

// The accumulators are named variables, not an array: with an array GCC 12 kept them in memory
// (a load and a store per multiply). Rows past mr (a constant here) are dead code.
#define ACC_DECL(i) __m256i acc##i##0 = _mm256_setzero_si256(), acc##i##1 = acc##i##0;
#define ACC_STEP(i)                                                                            \
    if (mr > i) {                                                                              \
        __m256i a = _mm256_set1_epi32(load_group(ap + i * lda + 4 * g));                       \
        acc##i##0 = dot4(acc##i##0, a, w0);                                                    \
        acc##i##1 = dot4(acc##i##1, a, w1);                                                    \
    }
#define ACC_OUT(i)                                                                             \
    if (mr > i) {                                                                              \
        __m256 as = _mm256_set1_ps(a_scale[i]);                                                \
        out[i][0] = dequantise(acc##i##0, corr[0], _mm256_mul_ps(as, ws[0]));                  \
        out[i][1] = dequantise(acc##i##1, corr[1], _mm256_mul_ps(as, ws[1]));                  \
    }

static inline __attribute__((always_inline)) void tile_body(
    size_t kp, const uint8_t *ap, size_t lda, const int8_t *wp, float *c, size_t ldc,
    const int mr, size_t nr, const float *a_scale, const float *w_scale, const int32_t *w_sum,
    const float *bias, const float *r, size_t ldr, bool gelu) {
    _Static_assert(AVX2_MR == 6 && NV == 2, "the tile below is written out as up to 6 x 2");
    ACC_DECL(0) ACC_DECL(1) ACC_DECL(2) ACC_DECL(3) ACC_DECL(4) ACC_DECL(5)
    for (size_t g = 0; g < kp / 4; g++) {
        const int8_t *wg = wp + g * 4 * NR;
        __m256i w0 = _mm256_load_si256((const __m256i *)wg);
        __m256i w1 = _mm256_load_si256((const __m256i *)(wg + 32));
        ACC_STEP(0) ACC_STEP(1) ACC_STEP(2) ACC_STEP(3) ACC_STEP(4) ACC_STEP(5)
    }
    // The blob holds a scale and a sum for every column of the panel (0 past n): full loads.
    __m256 ws[NV];
    __m256i corr[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        ws[v] = _mm256_loadu_ps(w_scale + 8 * v);
#if M3_INT8_VNNI
        corr[v] = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(w_sum + 8 * v)), 7);
#else
        (void)w_sum;
        corr[v] = _mm256_setzero_si256();
#endif
    }
    __m256 out[AVX2_MR][AVX2_NV];
    ACC_OUT(0) ACC_OUT(1) ACC_OUT(2) ACC_OUT(3) ACC_OUT(4) ACC_OUT(5)
    m3_gemm_avx2_store(out, mr, nr, c, ldc, true, bias, r, ldr, gelu);
}

#define TILE(R)                                                                                \
    case R:                                                                                    \
        tile_body(kp, ap, lda, wp, c, ldc, R, nr, a_scale, w_scale, w_sum, bias, r, ldr, gelu); \
        break;

static void FN(_tile)(size_t kp, const uint8_t *ap, size_t lda, const int8_t *wp, float *c,
                      size_t ldc, size_t mr, size_t nr, const float *a_scale,
                      const float *w_scale, const int32_t *w_sum, const float *bias,
                      const float *r, size_t ldr, bool gelu) {
    switch (mr) {
        TILE(1) TILE(2) TILE(3) TILE(4)
#if MR > 4
        TILE(5) TILE(6)
#endif
    default:
        break;
    }
}

// Per row: the largest magnitude, then q = round_even(clamp(x * 127 / max)) as bytes, 32 at a
// time (VPACKSSDW + VPACKSSWB interleave the 128-bit lanes; VPERMD puts the groups back in order),
// the rest one at a time with the scalar reference's step. VNNI: q + 128 (XOR 0x80 on the byte).
static void FN(_to_int8)(const float *a, size_t lda, size_t rows, size_t k, size_t kp,
                         uint8_t *dst, size_t ldd, float *scale) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const uint8_t flip = M3_INT8_VNNI ? 0x80 : 0;
    for (size_t i = 0; i < rows; i++) {
        const float *x = a + i * lda;
        __m256 mx = _mm256_setzero_ps();
        size_t kk = 0;
        for (; kk + 8 <= k; kk += 8)
            mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(x + kk), abs_mask));
        float lanes[8];
        _mm256_storeu_ps(lanes, mx);
        float amax = 0.0f;
        for (int l = 0; l < 8; l++)
            amax = lanes[l] > amax ? lanes[l] : amax;
        for (; kk < k; kk++)
            amax = __builtin_fabsf(x[kk]) > amax ? __builtin_fabsf(x[kk]) : amax;
        float inv_s = m3_gemm_i8_inv(amax);
        __m256 inv = _mm256_set1_ps(inv_s);
        uint8_t *out = dst + i * ldd;
        for (kk = 0; kk + 32 <= k; kk += 32) {
            __m256i q[4];
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + kk + 8 * v), inv);
                q[v] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(y, lo), hi));
            }
            __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
                                           _mm256_packs_epi32(q[2], q[3]));
            b = _mm256_permutevar8x32_epi32(b, order);
            b = _mm256_xor_si256(b, _mm256_set1_epi8((char)flip));
            _mm256_storeu_si256((__m256i *)(out + kk), b);
        }
        for (; kk < kp; kk++)
            out[kk] = (uint8_t)((uint8_t)(kk < k ? m3_gemm_i8_quantise(x[kk], inv_s) : 0) ^ flip);
        scale[i] = m3_gemm_i8_scale(amax);
    }
}

#define DEFINE_ERF(p) M3_GEMM_DEFINE_ERF(p)  // expands PREFIX before M3_GEMM_DEFINE_ERF pastes it
DEFINE_ERF(PREFIX)

#if M3_INT8_VNNI
const m3_gemm_kernel m3_gemm_kernel_int8_avxvnni = {
    .name = "int8-avxvnni",
    .cpu_features = "avx2,fma,avxvnni",
#else
const m3_gemm_kernel m3_gemm_kernel_int8_avx2 = {
    .name = "int8-avx2",
    .cpu_features = "avx2,fma",
#endif
    .precision = M3_GEMM_INT8,
    .mr = MR,
    .nr = NR,
    .kc = 0,  // int8 kernels take all of k at once
    .tile_i8 = FN(_tile),
    .to_int8 = FN(_to_int8),
    .gelu = m3_gemm_gelu_avx2,
    .erf = FN(_erf),
};
