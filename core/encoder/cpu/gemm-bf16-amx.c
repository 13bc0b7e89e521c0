// SPDX-License-Identifier: MIT
//
// The bf16 micro-kernel for AMX-BF16 (Intel Sapphire Rapids and later): TDPBF16PS multiplies a
// 16 × 32 bf16 tile of A by a 16-pair × 16-column tile of W into a 16 × 16 fp32 tile of C: 16 k
// pairs for each of 256 outputs per instruction, 256 times the work of one VDPBF16PS (one pair
// for each of 16).
//
// It reads the bf16 layout of every other bf16 kernel (gemm-private.h) as it is, so model files
// packed for bf16-avx512 (nr 64) serve it too: one k-pair row of a panel is 64 words, and a W tile
// is 16 consecutive pair rows × 16 of those words (row stride 256 bytes, 64 bytes a row, the four
// tiles of a panel 16 words apart); an A tile is 16 rows of the converted A × 16 pair words (row
// stride lda words). The micro-tile is 32 rows × 64 columns, done as two halves of 32 columns:
// each half holds C in 2 × 2 tiles (0–3), the two A tiles of 16 rows (4, 5) and two W tiles (6, 7),
// and each k step of 16 pairs loads those four for four TDPBF16PS. So every W tile, the operand
// that comes from L2 (a panel's k block is 64 KB), serves 32 rows: half the W bytes per
// TDPBF16PS of a 16-row tile with four W tiles, which would need L2's whole bandwidth.
//
// What the tiles cannot take, AVX-512 does (every CPU with AMX-BF16 has AVX512_BF16): the k pairs
// past the last multiple of 16 (only in a matrix whose k is not a multiple of 32: KC is one) are
// added with VDPBF16PS to the tiles' sums, read back from a per-thread buffer, and the epilogue is
// the AVX-512 kernels' (gemm-avx512-store.h), six rows at a time.
//
// The tile configuration (the upper tiles' rows and the lower ones' follow the micro-tile's mr) is
// per thread and kept between calls: LDTILECFG only runs when a thread's mr changes. Linux lets a process use the tiles only
// after it asks (arch_prctl ARCH_REQ_XCOMP_PERM, done by gemm.c before it first picks this kernel).
//
// Built twice: with the real instructions (-mamx-tile -mamx-bf16; "bf16-amx"), and with
// M3_AMX_MODEL, where the six tile instructions used here are C functions that do what Intel's
// reference pseudocode says they do ("bf16-amx-model"). The model is never picked on its own; it
// lets test-gemm and test-encoder-precision run this file's tiling, addressing, tails and
// epilogue on a CPU without AMX, under M3_GEMM_KERNEL=bf16-amx-model.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-gelu-avx512.h"
#include "encoder/cpu/gemm-private.h"
#include "encoder/cpu/gemm-avx512-store.h"
#include "encoder/cpu/gemm-bf16-avx512-steps.h"

#define KC 512  // a multiple of 32: only a matrix's last k block can have a tail
#define NR 64
#define MR 32
#define HALF 32        // columns per half of the micro-tile
#define TILE_PAIRS 16  // k pairs per A tile row (64 bytes)

// LDTILECFG's 64-byte operand: palette 1, then bytes per row and rows of each tile.
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

#ifdef M3_AMX_MODEL
// The tile instructions as Intel's pseudocode defines them. A tile is 16 rows of 64 bytes; a load
// fills rows × colsb and zeroes the rest, LDTILECFG zeroes every tile.
static _Thread_local struct {
    uint8_t rows[8];
    uint16_t colsb[8];
    _Alignas(64) unsigned char t[8][16][64];
} model;

static void model_loadconfig(const amx_config *cfg) {
    memset(&model, 0, sizeof model);
    for (int t = 0; t < 8; t++) {
        model.rows[t] = cfg->rows[t];
        model.colsb[t] = cfg->colsb[t];
    }
}

static void model_zero(int t) {
    memset(model.t[t], 0, sizeof model.t[t]);
}

static void model_load(int t, const void *p, size_t stride) {
    model_zero(t);
    for (int r = 0; r < model.rows[t]; r++)
        memcpy(model.t[t][r], (const unsigned char *)p + r * stride, model.colsb[t]);
}

static void model_store(int t, void *p, size_t stride) {
    for (int r = 0; r < model.rows[t]; r++)
        memcpy((unsigned char *)p + r * stride, model.t[t][r], model.colsb[t]);
}

static float model_bf16(const unsigned char *p) {
    uint32_t bits = (uint32_t)(p[0] | p[1] << 8) << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return (bits & 0x7f800000u) == 0 ? 0.0f * f : f;  // denormals are zero (DAZ)
}

// TDPBF16PS: C[m][n] += A[m][2k] W[k][2n] + A[m][2k+1] W[k][2n+1], k over A's pairs, both
// products exact in fp32 and added one after the other, the result's denormals flushed.
static void model_dpbf16ps(int c, int a, int b) {
    for (int m = 0; m < model.rows[c]; m++)
        for (int n = 0; n < model.colsb[c] / 4; n++) {
            float acc;
            memcpy(&acc, &model.t[c][m][4 * n], sizeof acc);
            for (int k = 0; k < model.colsb[a] / 4; k++) {
                acc += model_bf16(&model.t[a][m][4 * k]) * model_bf16(&model.t[b][k][4 * n]);
                acc += model_bf16(&model.t[a][m][4 * k + 2]) * model_bf16(&model.t[b][k][4 * n + 2]);
            }
            if (fabsf(acc) < 0x1p-126f)
                acc = 0.0f * acc;
            memcpy(&model.t[c][m][4 * n], &acc, sizeof acc);
        }
}

#define tile_loadconfig(cfg) model_loadconfig(cfg)
#define tile_zero(t) model_zero(t)
#define tile_load(t, p, stride) model_load(t, p, stride)
#define tile_store(t, p, stride) model_store(t, p, stride)
#define tile_dp(c, a, b) model_dpbf16ps(c, a, b)
#define KERNEL_NAME "bf16-amx-model"
#define KERNEL_FEATURES "avx512f,avx512bf16"
#define KERNEL m3_gemm_kernel_bf16_amx_model
#else
#define tile_loadconfig(cfg) _tile_loadconfig(cfg)
#define tile_zero(t) _tile_zero(t)
#define tile_load(t, p, stride) _tile_loadd(t, p, stride)
#define tile_store(t, p, stride) _tile_stored(t, p, stride)
#define tile_dp(c, a, b) _tile_dpbf16ps(c, a, b)
#define KERNEL_NAME "bf16-amx"
#define KERNEL_FEATURES "avx512f,avx512bf16,amx-bf16"
#define KERNEL m3_gemm_kernel_bf16_amx
#endif

// The rows the calling thread's tiles are configured for (0: not configured).
static _Thread_local size_t configured_rows;
// The tiles' sums of the current micro-tile, 32 rows × 64 columns.
static _Thread_local _Alignas(64) float sums[MR * NR];

// Tiles 0, 1 and 4 take the micro-tile's first 16 rows (or all of fewer), tiles 2, 3 and 5 the
// rest (unconfigured, and unused, when mr ≤ 16); the W tiles 6 and 7 are 16 k pairs deep.
static void configure(size_t mr) {
    if (configured_rows == mr)
        return;
    size_t top = mr < 16 ? mr : 16, bottom = mr - top;
    amx_config cfg = {.palette = 1};
    static const int top_tiles[] = {0, 1, 4}, bottom_tiles[] = {2, 3, 5};
    for (int i = 0; i < 3; i++) {
        cfg.rows[top_tiles[i]] = (uint8_t)top;
        cfg.colsb[top_tiles[i]] = 64;
        cfg.rows[bottom_tiles[i]] = (uint8_t)bottom;
        cfg.colsb[bottom_tiles[i]] = bottom ? 64 : 0;
    }
    for (int t = 6; t < 8; t++) {
        cfg.rows[t] = TILE_PAIRS;
        cfg.colsb[t] = 64;
    }
    tile_loadconfig(&cfg);
    configured_rows = mr;
}

// Rows [i0, i0 + R) of the micro-tile: the tiles' sums (none when full is 0) plus the k pairs
// [full, pairs) on VDPBF16PS, then the epilogue.
static inline __attribute__((always_inline)) void finish_rows(
    const int R, size_t i0, size_t full, size_t pairs, const uint32_t *ap, size_t lda,
    const uint32_t *wp, float *c, size_t ldc, size_t nr, bool first, const float *bias,
    const float *r, size_t ldr) {
    __m512 acc[AVX512_MR][AVX512_NV];
#pragma GCC unroll 6
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            acc[i][v] = full ? _mm512_load_ps(sums + (i0 + i) * NR + 16 * v) : _mm512_setzero_ps();
    m3_gemm_bf16_avx512_steps(acc, R, ap + i0 * lda, lda, wp, full, pairs);
    m3_gemm_avx512_store(acc, R, nr, c + i0 * ldc, ldc, first, bias, r ? r + i0 * ldr : NULL, ldr,
                         false);
}

#define FINISH(R) finish_rows(R, i0, full, pairs, ap, lda, wp, c, ldc, nr, first, bias, r, ldr)

static void bf16_amx_tile(size_t kc, const void *av, size_t lda, const void *wv, float *c,
                          size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                          const float *r, size_t ldr) {
    const uint32_t *ap = av, *wp = wv;
    size_t pairs = (kc + 1) / 2, full = pairs / TILE_PAIRS * TILE_PAIRS;
    if (full) {
        configure(mr);
        const size_t a_stride = lda * 4, w_stride = NR * 4, c_stride = NR * 4;
        bool two = mr > 16;
        const uint32_t *ap2 = two ? ap + 16 * lda : ap;  // rows 16–31
        for (size_t h = 0; h * HALF < nr; h++) {  // the second half only where there are columns
            tile_zero(0);
            tile_zero(1);
            if (two) {
                tile_zero(2);
                tile_zero(3);
            }
            for (size_t q = 0; q < full; q += TILE_PAIRS) {
                const uint32_t *w = wp + q * NR + h * HALF;
                tile_load(4, ap + q, a_stride);
                tile_load(6, w, w_stride);
                tile_load(7, w + 16, w_stride);
                tile_dp(0, 4, 6);
                tile_dp(1, 4, 7);
                if (two) {
                    tile_load(5, ap2 + q, a_stride);
                    tile_dp(2, 5, 6);
                    tile_dp(3, 5, 7);
                }
            }
            float *s0 = sums + h * HALF;
            tile_store(0, s0, c_stride);
            tile_store(1, s0 + 16, c_stride);
            if (two) {
                tile_store(2, s0 + 16 * NR, c_stride);
                tile_store(3, s0 + 16 * NR + 16, c_stride);
            }
        }
    }
    for (size_t i0 = 0; i0 < mr; i0 += AVX512_MR) {
        size_t rows = mr - i0 < AVX512_MR ? mr - i0 : AVX512_MR;
        M3_GEMM_AVX512_DISPATCH(rows, FINISH);
    }
}

M3_GEMM_DEFINE_ERF(bf16_amx)

const m3_gemm_kernel KERNEL = {
    .name = KERNEL_NAME,
    .cpu_features = KERNEL_FEATURES,
    .precision = M3_GEMM_BF16,
    .mr = MR,
    .nr = NR,
    .kc = KC,
    .tile = bf16_amx_tile,
    .to_bf16 = m3_gemm_bf16_avx512_to_bf16,
    .gelu = m3_gemm_gelu_avx512,
    .erf = bf16_amx_erf,
};
