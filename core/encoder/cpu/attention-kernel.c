// SPDX-License-Identifier: MIT
//
// One attention task (a sequence, a head, a block of up to M3_ATTENTION_BLOCK queries), flash-style:
// for each block of keys, Sᵀ = K·Qᵀ (Q pre-scaled by scale·log2 e, so scores are in base 2), an
// online softmax update of the per-query maxima and sums, O = O·alpha + P·V; finally
// out = O / sum. Nothing grows with the sequence length.
//
// Layout choices: the query block is transposed once per task (Qt [d][B]) so that scores come out
// as Sᵀ[key][query] with queries along the vector lanes: the Q·Kᵀ tile broadcasts K elements
// straight from the activation buffer (no per-block transposition of K), and the softmax runs
// down columns (vertical max / exp / sum, no horizontal reductions). P·V broadcasts Sᵀ elements
// against rows of V, also straight from the activation buffer.
//
// bf16 (the variant compiled with AVX512_BF16): the two products run on VDPBF16PS, pairs of bf16
// multiplied and summed into fp32 accumulators; the softmax, the running maxima and sums and the
// output stay fp32. Q·Kᵀ pairs adjacent channels (Q transposed into channel pairs, K rows as they
// are); P·V pairs adjacent keys (P and V interleaved two rows at a time per key block).
//
// This file is compiled once per ISA (see meson.build) with M3_ATTN_ISA = avx512 / avx2 / sse2 /
// avx512bf16 and the matching -m flags. It uses GCC vector extensions rather than intrinsics, so
// one source serves all three: vx is the ISA's own vector (one zmm, ymm or xmm, VX floats), and
// the tiles count queries and channels in 16s (one zmm; two ymm or four xmm). Register tiles are
// sized per ISA so the accumulators stay in registers (32 zmm; 16 ymm; 16 xmm).
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "encoder/cpu/attention.h"
#include "encoder/cpu/gemm-private.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#ifndef M3_ATTN_ISA
#error "M3_ATTN_ISA must name the variant (avx512, avx2, sse2)"
#endif

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define TASK_FN CAT(m3_attention_task, M3_ATTN_ISA)
#define PACK_FN CAT(m3_attention_pack, M3_ATTN_ISA)

#if defined(__AVX512F__)
#define S_ROWS 8      // K·Qᵀ tile: S_ROWS keys × S_COLV·16 queries
#define S_COLV 2
#define P_ROWS 4      // P·V tile: P_ROWS queries × up to P_COLV·16 channels
#define P_COLV 4
#elif defined(__AVX2__)
#define S_ROWS 4
#define S_COLV 1
#define P_ROWS 4
#define P_COLV 1
#else
#define S_ROWS 2
#define S_COLV 1
#define P_ROWS 2
#define P_COLV 1
#endif

#define B M3_ATTENTION_BLOCK       // queries per task; the row stride of Qt and St
#ifndef KB
#define KB M3_ATTENTION_KEY_BLOCK // keys per block
#endif

// The ISA's own vector. Not a 16-float vector everywhere, which this file used first: one that is
// not one register is no machine type to GCC 12, so it kept arrays of them in memory and copied
// them through 8-byte integer moves, and the AVX2 kernel ran slower than SSE2 and at a fifteenth
// of AVX-512 (docs/performance.md, "AVX2 and SSE2 attention").
#if defined(__AVX512F__)
#define VX 16
#elif defined(__AVX2__)
#define VX 8
#else
#define VX 4
#endif
typedef float vx __attribute__((vector_size(4 * VX)));
typedef int32_t vxi __attribute__((vector_size(4 * VX)));
typedef float vxu __attribute__((vector_size(4 * VX), aligned(4), may_alias));  // unaligned

#define INLINE static inline __attribute__((always_inline))

INLINE vx load(const float *p)
{
    return *(const vxu *)p;
}

INLINE void store(float *p, vx v)
{
    *(vxu *)p = v;
}

INLINE vx splat(float s)
{
    // One broadcast: s - 0 is s for every s, so GCC drops the subtraction (not s + 0: -0 + 0 = +0).
    return s - (vx){0};
}

INLINE vx select_x(vxi mask, vx a, vx b)
{
    return (vx)((mask & (vxi)a) | (~mask & (vxi)b));
}

// 2^x on [-126, 0] (x > 0 also works up to 127); below -126 (and -inf) it is 0 (AVX-512:
// 2^-126). The scores come in base-2 units (Q is scaled by log2(e) too), so the range reduction is
// exact: x = n + r, n = round(x), |r| <= 1/2; 2^r by a Taylor polynomial in r·ln 2, 2^n applied by
// VSCALEFPS (AVX-512) or built in the exponent bits. Degree 6 (error < 1.3e-7 relative, about an
// ulp) for the fp32 kernels; the bf16 kernel rounds P to 8 significant bits before P·V (relative
// error up to 2^-9), so degree 5 (error < 2.5e-6, a thousandth of that rounding) is enough there.
// (Degree 4, < 4.3e-5, raised test-encoder-precision's worst lexical weight error on the BGE-M3
// widths from 0.0026 to 0.0039: within the 0.02 bar, but not worth ~1 % of the kernel.)
#if defined(__AVX512BF16__)
#define EXP_DEGREE 5
#else
#define EXP_DEGREE 6
#endif
#define LOG2E 1.44269504088896341f
INLINE vx vexp2(vx x)
{
#if defined(__AVX512F__)
    x = (vx)_mm512_max_ps((__m512)x, (__m512)splat(-126.0f));  // -inf becomes -126 too
    vx n = (vx)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    vxi under = x < splat(-126.0f);
    x = select_x(under, splat(-126.0f), x);
    vx n = (x + 12582912.0f) - 12582912.0f;  // 1.5·2^23: rounds to an integer
#endif
    vx r = x - n;
#if EXP_DEGREE == 6
    vx p = splat(1.5403530393381606e-04f);
    p = p * r + 1.3333558146428443e-03f;
    p = p * r + 9.618129107628477e-03f;
#else
    vx p = splat(1.3333558146428443e-03f);
    p = p * r + 9.618129107628477e-03f;
#endif
    p = p * r + 5.550410866482158e-02f;
    p = p * r + 2.402265069591007e-01f;
    p = p * r + 6.931471805599453e-01f;
    p = p * r + 1.0f;
#if defined(__AVX512F__)
    return (vx)_mm512_scalef_ps((__m512)p, (__m512)n);
#else
    vxi e = (__builtin_convertvector(n, vxi) + 127) << 23;
    return select_x(under, splat(0.0f), p * (vx)e);
#endif
}

INLINE vx vmax(vx a, vx b)
{
#if defined(__AVX512F__)
    return (vx)_mm512_max_ps((__m512)a, (__m512)b);
#else
    return select_x(a > b, a, b);
#endif
}

#if defined(__AVX512F__)
// Transposes a 16 × 16 block of 32-bit elements in place: r[i] lane j becomes r[j] lane i.
// (Unpack pairs, then quads within 128-bit lanes, then move the 128-bit lanes.)
INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    // Now r[4i + k], 128-bit lane L, holds column 4L + k of rows 4i .. 4i+3.
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m512 x0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88), x1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
        __m512 y0 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88), y1 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
        t[k] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        t[8 + k] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        t[4 + k] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = t[i];
}
#endif

#if !defined(__AVX512BF16__)  // the bf16 kernel's tiles are its own (below)
#define QV (16 * S_COLV / VX)  // vx accumulators a key row in the K·Qᵀ tile
#define PV (16 * P_COLV / VX)  // at most, a query row in the P·V tile

// St[j0 .. j0+S_ROWS)[r0 .. r0+16·S_COLV) = K·Qt over d channels; kr[i] is key j0+i's row
// (a zero row past the end of the sequence).
INLINE void qk_tile(const float *qt, const float *const *kr, float *st, size_t d, size_t j0,
                    size_t r0)
{
    vx acc[S_ROWS][QV];
#pragma GCC unroll 16
    for (int i = 0; i < S_ROWS; i++)
#pragma GCC unroll 16
        for (int v = 0; v < QV; v++)
            acc[i][v] = splat(0.0f);
    for (size_t c = 0; c < d; c++) {
        vx q[QV];
#pragma GCC unroll 16
        for (int v = 0; v < QV; v++)
            q[v] = load(qt + c * B + r0 + VX * (size_t)v);
#pragma GCC unroll 16
        for (int i = 0; i < S_ROWS; i++) {
            vx k = splat(kr[i][c]);
#pragma GCC unroll 16
            for (int v = 0; v < QV; v++)
                acc[i][v] += k * q[v];
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < S_ROWS; i++)
#pragma GCC unroll 16
        for (int v = 0; v < QV; v++)
            store(st + (j0 + (size_t)i) * B + r0 + VX * (size_t)v, acc[i][v]);
}

// O[r0 .. r0+P_ROWS)[c0 .. c0+16·colv) += P·V over nk keys; P[r][j] = St[j][r]; vb points at
// key 0's channel 0.
INLINE void pv_tile(const float *st, const float *vb, size_t ld, size_t nk, float *o, size_t d,
                    const float *alpha, size_t r0, size_t c0, const int colv)
{
    const int nv = colv * 16 / VX;
    vx acc[P_ROWS][PV];
#pragma GCC unroll 16
    for (int r = 0; r < P_ROWS; r++)
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++)
            acc[r][v] =
                load(o + (r0 + (size_t)r) * d + c0 + VX * (size_t)v) * alpha[r0 + (size_t)r];
    for (size_t j = 0; j < nk; j++) {
        const float *vr = vb + j * ld + c0;
        vx vv[PV];
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++)
            vv[v] = load(vr + VX * (size_t)v);
#pragma GCC unroll 16
        for (int r = 0; r < P_ROWS; r++) {
            vx p = splat(st[j * B + r0 + (size_t)r]);
#pragma GCC unroll 16
            for (int v = 0; v < nv; v++)
                acc[r][v] += p * vv[v];
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < P_ROWS; r++)
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++)
            store(o + (r0 + (size_t)r) * d + c0 + VX * (size_t)v, acc[r][v]);
}
#endif

#if defined(__AVX512BF16__)
#include <immintrin.h>

// Two bf16 in 32 bits, the even element (channel or key) in the low half: VDPBF16PS multiplies
// low with low and high with high, so both operands of a product must pair the same way.
typedef uint32_t pair_t;

INLINE uint32_t bf16_bits(float f)  // round to nearest even, as VCVTNE2PS2BF16 does
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

// 16 pairs (a[i], b[i]) from two rows of 16 floats.
INLINE __m512i interleave_pairs(__m512 a, __m512 b)
{
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(b, a));  // words: a[0..16), b[0..16)
}

// One row of d floats (a multiple of 16) as d/2 pairs in channel order.
INLINE void row_to_pairs(const float *src, pair_t *dst, size_t d)
{
    size_t c = 0;
    for (; c + 32 <= d; c += 32)
        _mm512_storeu_si512(dst + c / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + c + 16),
                                                                        _mm512_loadu_ps(src + c)));
    if (c < d)
        _mm256_storeu_si256((__m256i *)(void *)(dst + c / 2), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + c)));
}

// St[j0 .. j0+S_ROWS)[r0 .. r0+16·S_COLV) = K·Qt over d2 channel pairs; kp: the key block's rows
// as pairs (d2 per row), qp: Qt as pairs [d2][B].
INLINE void qk_tile_bf16(const pair_t *qp, const pair_t *kp, float *st, size_t d2, size_t j0, size_t r0)
{
    __m512 acc[S_ROWS][S_COLV];
#pragma GCC unroll 16
    for (int i = 0; i < S_ROWS; i++)
#pragma GCC unroll 16
        for (int v = 0; v < S_COLV; v++)
            acc[i][v] = _mm512_setzero_ps();
    for (size_t c = 0; c < d2; c++) {
        __m512bh q[S_COLV];
#pragma GCC unroll 16
        for (int v = 0; v < S_COLV; v++)
            q[v] = (__m512bh)_mm512_loadu_si512(qp + c * B + r0 + 16 * (size_t)v);
#pragma GCC unroll 16
        for (int i = 0; i < S_ROWS; i++) {
            __m512bh k = (__m512bh)_mm512_set1_epi32((int)kp[(j0 + (size_t)i) * d2 + c]);
#pragma GCC unroll 16
            for (int v = 0; v < S_COLV; v++)
                acc[i][v] = _mm512_dpbf16_ps(acc[i][v], k, q[v]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < S_ROWS; i++)
#pragma GCC unroll 16
        for (int v = 0; v < S_COLV; v++)
            _mm512_storeu_ps(st + (j0 + (size_t)i) * B + r0 + 16 * (size_t)v, acc[i][v]);
}

// O[r0 .. r0+P_ROWS)[c0 .. c0+16·colv) += P·V over nk2 key pairs; pp: P as key pairs [nk2][B]
// (query r's pair j at pp[j·B + r]), vp: V as key pairs [nk2][d].
INLINE void pv_tile_bf16(const pair_t *pp, const pair_t *vp, size_t nk2, float *o, size_t d,
                         const float *alpha, size_t r0, size_t c0, const int colv)
{
    __m512 acc[P_ROWS][P_COLV];
#pragma GCC unroll 16
    for (int r = 0; r < P_ROWS; r++)
#pragma GCC unroll 16
        for (int v = 0; v < colv; v++)
            acc[r][v] = _mm512_mul_ps(_mm512_loadu_ps(o + (r0 + (size_t)r) * d + c0 + 16 * (size_t)v),
                                      _mm512_set1_ps(alpha[r0 + (size_t)r]));
    for (size_t j = 0; j < nk2; j++) {
        __m512bh vv[P_COLV];
#pragma GCC unroll 16
        for (int v = 0; v < colv; v++)
            vv[v] = (__m512bh)_mm512_loadu_si512(vp + j * d + c0 + 16 * (size_t)v);
#pragma GCC unroll 16
        for (int r = 0; r < P_ROWS; r++) {
            __m512bh p = (__m512bh)_mm512_set1_epi32((int)pp[j * B + r0 + (size_t)r]);
#pragma GCC unroll 16
            for (int v = 0; v < colv; v++)
                acc[r][v] = _mm512_dpbf16_ps(acc[r][v], p, vv[v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < P_ROWS; r++)
#pragma GCC unroll 16
        for (int v = 0; v < colv; v++)
            _mm512_storeu_ps(o + (r0 + (size_t)r) * d + c0 + 16 * (size_t)v, acc[r][v]);
}

// Tokens [t0, t1) of one sequence (t0 even), K and V of every head, as bf16 pairs in kv
// (attention.h): K rows in channel pairs, V rows two keys at a time (an odd last key pairs with
// zeros). Token by token, so the activations are read in order (a row's heads lie side by side).
void PACK_FN(const m3_attention_args *a, size_t seq, size_t t0, size_t t1)
{
    const size_t d = (size_t)a->head_dim, d2 = d / 2;
    const size_t base = a->offsets[seq], len = a->offsets[seq + 1] - base;
    for (size_t t = t0; t < t1; t += 2) {
        const bool odd_end = t + 1 == len;
        const float *k0 = a->k + (base + t) * a->ld, *v0 = a->v + (base + t) * a->ld;
        for (int h = 0; h < a->heads; h++) {
            const size_t col = (size_t)h * d;
            pair_t *kp = m3_attention_k_pairs(a, h) + (base + t) * d2;
            pair_t *vp = m3_attention_v_pairs(a, h, seq) + t / 2 * d;
            row_to_pairs(k0 + col, kp, d);
            if (!odd_end)
                row_to_pairs(k0 + a->ld + col, kp + d2, d);
            for (size_t c = 0; c < d; c += 16)
                _mm512_storeu_si512(vp + c, interleave_pairs(_mm512_loadu_ps(v0 + col + c),
                                                            odd_end ? _mm512_setzero_ps() : _mm512_loadu_ps(v0 + a->ld + col + c)));
        }
    }
}
#else
// Tokens [t0, t1) of one sequence, K and V of every head, copied into kv (attention.h) for the
// fp32 kernels. Token by token, so the activations are read in order. Not for a sequence of one
// query block: its one task per head copies each key block as it goes, straight into L1.
void PACK_FN(const m3_attention_args *a, size_t seq, size_t t0, size_t t1)
{
    const size_t d = (size_t)a->head_dim, base = a->offsets[seq];
    if (a->offsets[seq + 1] - base <= B)
        return;
    for (size_t t = base + t0; t < base + t1; t++)
        for (int h = 0; h < a->heads; h++) {
            const float *k = a->k + t * a->ld + (size_t)h * d, *v = a->v + t * a->ld + (size_t)h * d;
            float *kd = m3_attention_k_rows(a, h) + t * d, *vd = m3_attention_v_rows(a, h) + t * d;
            for (size_t c = 0; c < d; c += VX) {  // d is a multiple of 16
                store(kd + c, load(k + c));
                store(vd + c, load(v + c));
            }
        }
}
#endif

void TASK_FN(const m3_attention_args *a, size_t seq, int head, size_t q0, float *scratch)
{
    const size_t d = (size_t)a->head_dim, ld = a->ld;
    const size_t base = a->offsets[seq], len = a->offsets[seq + 1] - base;
    const size_t col = (size_t)head * d;
    const size_t qw = 16 * S_COLV;  // queries per score tile
    size_t nq = len - q0 < B ? len - q0 : B;
    size_t nq_r = (nq + qw - 1) / qw * qw;  // a multiple of qw, 16 and P_ROWS, <= B
    float *qt = scratch, *o = qt + d * B, *st = o + B * d, *zero = st + KB * B;
    float *row_max = zero + d, *row_sum = row_max + B, *row_alpha = row_sum + B;

#if defined(__AVX512BF16__)
    // Qt as channel pairs [d/2][B] in the Qt area; beside it the key block's rows as pairs.
    const size_t d2 = d / 2;
    pair_t *qp = (pair_t *)(void *)qt, *pp = (pair_t *)(void *)(row_alpha + B);
    const pair_t *kp = m3_attention_k_pairs(a, head) + base * d2, *vp = m3_attention_v_pairs(a, head, seq);
    // 16 queries × 16 channel pairs at a time: each row scaled and paired (VCVTNE2PS2BF16 rounds
    // as bf16_bits does), then the 16 × 16 words transposed; any last 8 pairs one by one.
    const __m512 scale = _mm512_set1_ps(a->scale * LOG2E);
    size_t c2 = 0;
    for (; c2 + 16 <= d2; c2 += 16)
        for (size_t r0 = 0; r0 < nq_r; r0 += 16) {
            __m512 w[16];
#pragma GCC unroll 16
            for (size_t i = 0; i < 16; i++) {
                const float *src = a->q + (base + q0 + r0 + i) * ld + col + 2 * c2;
                w[i] = r0 + i < nq ? (__m512)_mm512_cvtne2ps_pbh(_mm512_mul_ps(_mm512_loadu_ps(src + 16), scale),
                                                                 _mm512_mul_ps(_mm512_loadu_ps(src), scale))
                                   : _mm512_setzero_ps();
            }
            transpose16(w);
#pragma GCC unroll 16
            for (size_t i = 0; i < 16; i++)
                _mm512_storeu_ps(qp + (c2 + i) * B + r0, w[i]);
        }
    for (size_t r = 0; r < nq_r; r++) {
        const float *src = a->q + (base + q0 + r) * ld + col;
        for (size_t c = c2; c < d2; c++)
            qp[c * B + r] = r < nq ? bf16_bits(src[2 * c] * (a->scale * LOG2E)) | bf16_bits(src[2 * c + 1] * (a->scale * LOG2E)) << 16 : 0;
        for (size_t c = 0; c < d; c++)
            o[r * d + c] = 0.0f;
        row_max[r] = -INFINITY;
        row_sum[r] = 0.0f;
    }
#else
#if defined(__AVX512F__)
    // Qt 16 queries × 16 channels at a time, transposed in registers (scattering single floats
    // to 16 rows of Qt cost ~5 % of the task).
    const __m512 scale = _mm512_set1_ps(a->scale * LOG2E);
    for (size_t c0 = 0; c0 < d; c0 += 16)
        for (size_t r0 = 0; r0 < nq_r; r0 += 16) {
            __m512 w[16];
#pragma GCC unroll 16
            for (size_t i = 0; i < 16; i++)
                w[i] = r0 + i < nq ? _mm512_mul_ps(_mm512_loadu_ps(a->q + (base + q0 + r0 + i) * ld + col + c0), scale)
                                   : _mm512_setzero_ps();
            transpose16(w);
#pragma GCC unroll 16
            for (size_t i = 0; i < 16; i++)
                _mm512_storeu_ps(qt + (c0 + i) * B + r0, w[i]);
        }
#endif
    for (size_t r = 0; r < nq_r; r++) {
#if !defined(__AVX512F__)
        const float *src = a->q + (base + q0 + r) * ld + col;
        for (size_t c = 0; c < d; c++)
            qt[c * B + r] = r < nq ? src[c] * (a->scale * LOG2E) : 0.0f;
#endif
        for (size_t c = 0; c < d; c++)
            o[r * d + c] = 0.0f;
        row_max[r] = -INFINITY;
        row_sum[r] = 0.0f;
    }
#endif
    for (size_t c = 0; c < d; c++)
        zero[c] = 0.0f;

    for (size_t k0 = 0; k0 < len; k0 += KB) {
        size_t nk = len - k0 < KB ? len - k0 : KB;
#if defined(__AVX512BF16__)
        // Rows past the sequence's end (up to S_ROWS - 1) read the next keys or the padding: their
        // scores are never used.
        for (size_t j0 = 0; j0 < nk; j0 += S_ROWS)
            for (size_t r0 = 0; r0 < nq_r; r0 += qw)
                qk_tile_bf16(qp, kp + k0 * d2, st, d2, j0, r0);
#else
        // The key block's K and V rows side by side (in the activations they lie 3·hidden floats
        // apart, a page each, and the tiles below read every row many times): in kv, copied there
        // once per call, where the sequence has several query blocks; else copied here.
        const float *kc, *vc;
        if (len > B) {
            kc = m3_attention_k_rows(a, head) + (base + k0) * d;
            vc = m3_attention_v_rows(a, head) + (base + k0) * d;
        } else {
            float *kb = row_alpha + B, *vb = kb + KB * d;
            for (size_t j = 0; j < nk; j++) {
                memcpy(kb + j * d, a->k + (base + k0 + j) * ld + col, d * sizeof *kb);
                memcpy(vb + j * d, a->v + (base + k0 + j) * ld + col, d * sizeof *vb);
            }
            kc = kb;
            vc = vb;
        }
        for (size_t j0 = 0; j0 < nk; j0 += S_ROWS) {
            const float *kr[S_ROWS];
            for (size_t i = 0; i < S_ROWS; i++)
                kr[i] = j0 + i < nk ? kc + (j0 + i) * d : zero;
            for (size_t r0 = 0; r0 < nq_r; r0 += qw)
                qk_tile(qt, kr, st, d, j0, r0);
        }
#endif

        // Online softmax, VX queries at a time (S in base-2 units): new maxima, alpha =
        // 2^(old - new) rescales what was accumulated (0 on the first block, where the old maximum
        // is -inf), P = 2^(S - max).
        for (size_t r0 = 0; r0 < nq_r; r0 += VX) {
            // Four independent maxima: one chain would wait on each comparison's latency.
            vx m4[4] = {load(st + r0), load(st + r0), load(st + r0), load(st + r0)};
            size_t j = 1;
            for (; j + 4 <= nk; j += 4)
                for (int u = 0; u < 4; u++)
                    m4[u] = vmax(m4[u], load(st + (j + (size_t)u) * B + r0));
            for (; j < nk; j++)
                m4[0] = vmax(m4[0], load(st + j * B + r0));
            vx mx = vmax(vmax(m4[0], m4[1]), vmax(m4[2], m4[3]));
            vx old = load(row_max + r0);
            mx = select_x(old > mx, old, mx);
            vx alpha = vexp2(old - mx);
            vx sum = splat(0.0f);
#if defined(__AVX512BF16__)
            // P goes straight into key pairs for P·V (an odd last key pairs with zeros).
            for (size_t j = 0; j < nk; j += 2) {
                vx p0 = vexp2(load(st + j * B + r0) - mx);
                vx p1 = j + 1 < nk ? vexp2(load(st + (j + 1) * B + r0) - mx) : splat(0.0f);
                sum += p0 + p1;
                _mm512_storeu_si512(pp + j / 2 * B + r0, interleave_pairs((__m512)p0, (__m512)p1));
            }
#else
            for (size_t j = 0; j < nk; j++) {
                vx p = vexp2(load(st + j * B + r0) - mx);
                store(st + j * B + r0, p);
                sum += p;
            }
#endif
            store(row_sum + r0, load(row_sum + r0) * alpha + sum);
            store(row_max + r0, mx);
            store(row_alpha + r0, alpha);  // O's rows are rescaled as P·V loads them
        }

#if defined(__AVX512BF16__)
        // P was paired by the softmax above; V was paired once per layer.
        size_t nk2 = (nk + 1) / 2;
        const pair_t *vb = vp + k0 / 2 * d;
        for (size_t r0 = 0; r0 < nq_r; r0 += P_ROWS) {
            size_t c0 = 0;
            for (; c0 + 64 <= d; c0 += 64)
                pv_tile_bf16(pp, vb, nk2, o, d, row_alpha, r0, c0, 4);
            for (; c0 + 32 <= d; c0 += 32)
                pv_tile_bf16(pp, vb, nk2, o, d, row_alpha, r0, c0, 2);
            for (; c0 < d; c0 += 16)
                pv_tile_bf16(pp, vb, nk2, o, d, row_alpha, r0, c0, 1);
        }
#else
        const float *vb = vc;
        for (size_t r0 = 0; r0 < nq_r; r0 += P_ROWS) {
            size_t c0 = 0;
#if P_COLV >= 4
            for (; c0 + 64 <= d; c0 += 64)
                pv_tile(st, vb, d, nk, o, d, row_alpha, r0, c0, 4);
#endif
#if P_COLV >= 2
            for (; c0 + 32 <= d; c0 += 32)
                pv_tile(st, vb, d, nk, o, d, row_alpha, r0, c0, 2);
#endif
            for (; c0 < d; c0 += 16)
                pv_tile(st, vb, d, nk, o, d, row_alpha, r0, c0, 1);
        }
#endif
    }

    if (a->out_pairs) {
        // The output projection's A as bf16 pairs: the same quotients, rounded as the bf16 GEMM
        // rounds its A (VCVTNE2PS2BF16 there and here; m3_gemm_bf16_round is the same rounding).
        for (size_t r = 0; r < nq; r++) {
            const float *src = o + r * d;
            uint32_t *dst = a->out_pairs + (base + q0 + r) * a->ldop + col / 2;
            size_t c = 0;
#if defined(__AVX512BF16__)
            __m512 sum = _mm512_set1_ps(row_sum[r]);
            for (; c + 32 <= d; c += 32) {
                __m512 x0 = _mm512_div_ps(_mm512_loadu_ps(src + c), sum);
                __m512 x1 = _mm512_div_ps(_mm512_loadu_ps(src + c + 16), sum);
                _mm512_storeu_si512(dst + c / 2, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
            }
#endif
            for (; c < d; c += 2)  // d is even (a multiple of 16)
                dst[c / 2] = m3_gemm_bf16_round(src[c] / row_sum[r]) |
                             (uint32_t)m3_gemm_bf16_round(src[c + 1] / row_sum[r]) << 16;
        }
        return;
    }
    for (size_t r = 0; r < nq; r++) {
        float *dst = a->out + (base + q0 + r) * a->ldo + col;
        for (size_t c = 0; c < d; c++)
            dst[c] = o[r * d + c] / row_sum[r];
    }
}
