// SPDX-License-Identifier: MIT
//
// Private to the GEMM: the micro-kernel table each instruction set provides (gemm-avx512.c,
// gemm-avx2.c for fp32; gemm-bf16-amx.c, gemm-bf16-avx512.c for bf16; gemm-int8-*.c for int8;
// gemm-scalar.c for all three) and the packed-weight layout they share with gemm.c.
//
// Packed W, fp32: ceil(n / nr) panels of nr columns; panel p holds W[p*nr + j][kk] at
// data[p*k*nr + kk*nr + j] (k-major, so one k step reads nr consecutive floats), columns past n are
// zero. A k block [k0, k0 + kc) of a panel is the contiguous range starting at k0*nr.
// Packed W, bf16: the same panels over k rounded up to even (kp), in k pairs: panel p holds the
// pair (W[p*nr + j][2q], W[p*nr + j][2q + 1]) as two bf16 (low half first) in the 32-bit word
// data32[p*(kp/2)*nr + q*nr + j]; an odd k's last pair ends with a zero. So one k pair step reads
// nr consecutive words, as VDPBF16PS wants them, and a k block starting at an even k0 starts at
// element k0*nr of the panel, as for fp32.
//
// Packed W, int8 (one self-contained blob, no pointers, so that it can be stored and mapped as
// is; every offset is a multiple of 64 bytes from its start):
//   kp = k rounded up to a multiple of 4, np = ceil(n / nr) * nr;
//   bytes [0, np*kp): ceil(n / nr) panels; panel p holds q(W[p*nr + j][4g + h]) as an int8 at
//     byte p*kp*nr + (g*nr + j)*4 + h (k in groups of 4 per 32-bit word, as VPDPBUSD and
//     VPMADDUBSW + VPMADDWD read them; one k-group step reads nr consecutive words); zeros past
//     n and past k;
//   then np fp32 scales s[j] (column j of C; 0 past n), then np int32 sums sum_k q(W[j][k]).
//   q(W[j][k]) = round_even(W[j][k] * 127 / max_k |W[j][k]|), s[j] = max_k |W[j][k]| / 127
//   (a zero row: s = 0, q = 0). The sums serve the VNNI kernels, whose VPDPBUSD multiplies
//   unsigned A bytes: they store q(A) + 128 and subtract 128 * sum from the int32 result.
// A, int8: gemm.c quantises each row of A over its whole k (the int8 kernels never block k: the
// int32 sums are exact and scaled once) with the kernel's to_int8: q(A[i][k]) =
// round_even(A[i][k] * (127 / max_k |A[i][k]|)) in [-127, 127], row scale max / 127, kp bytes per
// row, zero-padded; the VNNI kernels store q + 128 (unsigned), the others q (signed).
//
// A, fp32: read in place (row i of the tile at a + i*lda). A, bf16: gemm.c converts each row of A
// once per GEMM to k pairs (the same pairing as W, rounded to nearest even) in a buffer, lda in
// words (kp / 2); a k block starting at an even k0 starts at word k0 / 2 of the row.
#ifndef M3_ENCODER_CPU_GEMM_PRIVATE_H
#define M3_ENCODER_CPU_GEMM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "encoder/cpu/gemm.h"

enum { M3_GEMM_MR_MAX = 32 };
// The version of the packed layouts above, part of m3_gemm_layout_id: raise it whenever a layout
// changes, so that model files packed before are packed again at start-up instead of misread.
enum { M3_GEMM_LAYOUT_VERSION = 1 };

// One micro-tile, mr rows (1..kernel mr) × nr columns (1..kernel nr), over kc steps of k (bf16:
// ceil(kc / 2) pairs; A and W padded with zeros past an odd kc):
//   first: C = acc + bias[j] (bias NULL: 0) + R[i][j] (r NULL: none); R may alias C exactly.
//   else:  C += acc.
// a: row 0 of the tile (fp32: floats, lda in floats; bf16: pair words, lda in words).
typedef void (*m3_gemm_tile_fn)(size_t kc, const void *a, size_t lda, const void *wp, float *c,
                                size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                                const float *r, size_t ldr);

// The same tile that also prefetches pf_lines cache lines from pf into L2 while it runs (two a k
// step, so at most 2 · kc of them), spreading the driver's reads of W's next k block from memory
// over the tiles before it (gemm.c). Optional: fp32 and bf16 AVX-512; NULL in the other kernels.
typedef void (*m3_gemm_tile_pf_fn)(size_t kc, const void *a, size_t lda, const void *wp, float *c,
                                   size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                                   const float *r, size_t ldr, const void *pf, size_t pf_lines);

// bf16: rows × ceil(kc / 2) pair words at dst (row stride ldd words) from fp32 A (rows × kc at
// a, row stride lda), rounded to nearest even, a zero after an odd kc.
typedef void (*m3_gemm_to_bf16_fn)(const float *a, size_t lda, size_t rows, size_t kc,
                                   uint32_t *dst, size_t ldd);

// int8: a micro-tile of mr rows × nr columns over all kp (a multiple of 4) of the quantised A
// (kernel's format, row stride lda bytes) and the panel at wp (the panel's first byte):
//   C = a_scale[i] * w_scale[j] * sum_k q(A)[i][k] q(W)[j][k] + bias[j] (NULL: 0) + R[i][j]
// (r NULL: none; R may alias C exactly), then C = gelu_erf(C) where gelu is true: in registers,
// before the store, because reading the tile back stalls on its stores while C's lines are still
// on their way from memory. w_sum: the panel's int32 sums (see the layout above).
typedef void (*m3_gemm_tile_i8_fn)(size_t kp, const uint8_t *a, size_t lda, const int8_t *wp,
                                   float *c, size_t ldc, size_t mr, size_t nr,
                                   const float *a_scale, const float *w_scale,
                                   const int32_t *w_sum, const float *bias, const float *r,
                                   size_t ldr, bool gelu);

// int8: rows × kp bytes at dst (row stride ldd) from fp32 A (rows × k at a, row stride lda), and
// each row's scale (see the layout above).
typedef void (*m3_gemm_to_int8_fn)(const float *a, size_t lda, size_t rows, size_t k, size_t kp,
                                   uint8_t *dst, size_t ldd, float *scale);

typedef struct m3_gemm_kernel {
    const char *name;
    const char *cpu_features;  // what __builtin_cpu_supports must say, comma-separated ("" = any)
    m3_gemm_precision precision;
    size_t mr;  // rows of A per micro-tile (≤ M3_GEMM_MR_MAX)
    size_t nr;  // panel width in columns of W
    size_t kc;  // k block: a panel block (kc × nr) and an A tile stay in cache
    m3_gemm_tile_fn tile;
    m3_gemm_tile_pf_fn tile_pf;  // optional (see its type)
    m3_gemm_to_bf16_fn to_bf16;  // bf16 kernels only
    m3_gemm_tile_i8_fn tile_i8;  // int8 kernels only (tile is NULL)
    m3_gemm_to_int8_fn to_int8;  // int8 kernels only
    void (*gelu)(float *x, size_t n);             // x = gelu_erf(x), in place
    void (*erf)(const float *x, float *y, size_t n);  // y = erf(x) (for the accuracy test)
} m3_gemm_kernel;

extern const m3_gemm_kernel m3_gemm_kernel_scalar;
extern const m3_gemm_kernel m3_gemm_kernel_bf16_scalar;
extern const m3_gemm_kernel m3_gemm_kernel_int8_scalar;
#if defined(__x86_64__)
extern const m3_gemm_kernel m3_gemm_kernel_int8_avx512vnni;
extern const m3_gemm_kernel m3_gemm_kernel_int8_avxvnni;
extern const m3_gemm_kernel m3_gemm_kernel_int8_avx2;
extern const m3_gemm_kernel m3_gemm_kernel_avx2;
extern const m3_gemm_kernel m3_gemm_kernel_avx512;
extern const m3_gemm_kernel m3_gemm_kernel_bf16_avx512;
extern const m3_gemm_kernel m3_gemm_kernel_bf16_amx;
extern const m3_gemm_kernel m3_gemm_kernel_bf16_amx_model;
// AVX512_BF16's conversion of A to pairs (m3_gemm_to_bf16_fn), shared by the AMX kernels.
void m3_gemm_bf16_avx512_to_bf16(const float *a, size_t lda, size_t rows, size_t kc,
                                 uint32_t *dst, size_t ldd);
#endif

// The kernel for `precision` that M3_GEMM_KERNEL asks for (a comma-separated list of names; the
// first of that precision this CPU has wins), else the best one of that precision the CPU has.
// Read at each call, so a test can switch kernels with setenv between packings.
const m3_gemm_kernel *m3_gemm_kernel_select_for(m3_gemm_precision precision);
const m3_gemm_kernel *m3_gemm_kernel_select(void);  // fp32

// The bf16 bits of x rounded to nearest even, as VCVTNE2PS2BF16 does: NaN stays a (quiet) NaN,
// a denormal becomes a zero of its sign. The scalar reference of the kernels' conversions.
static inline uint16_t m3_gemm_bf16_round(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    if ((b & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((b >> 16) | 0x40u);
    if ((b & 0x7f800000u) == 0)
        return (uint16_t)((b >> 16) & 0x8000u);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

// The int8 quantisation step of one value, x times the row's 127 / max|x| (round to nearest even,
// as VCVTPS2DQ under the default rounding mode), clamped to [-127, 127]. The scalar reference of
// the kernels' conversions.
static inline int8_t m3_gemm_i8_quantise(float x, float inv) {
    float y = x * inv;
    y = y > 127.0f ? 127.0f : y < -127.0f ? -127.0f : y;
    return (int8_t)__builtin_rintf(y);
}

// 127 / amax (0 for amax 0, so that a zero row quantises to zeros), and the scale amax / 127.
static inline float m3_gemm_i8_inv(float amax) {
    return amax > 0.0f ? 127.0f / amax : 0.0f;
}
static inline float m3_gemm_i8_scale(float amax) {
    return amax / 127.0f;
}

// The kernel a packed matrix was packed for (its layout depends on the kernel's nr).
const m3_gemm_kernel *m3_packed_matrix_kernel(const m3_packed_matrix *p);

#endif
