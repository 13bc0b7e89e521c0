// SPDX-License-Identifier: MIT
//
// Private to the GEMM: the micro-kernel table each instruction set provides (gemm-avx512.c,
// gemm-avx2.c, gemm-scalar.c for fp32; gemm-bf16-avx512.c, gemm-bf16-scalar.c for bf16) and the
// packed-weight layout they share with gemm.c.
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
// A, fp32: read in place (row i of the tile at a + i*lda). A, bf16: gemm.c converts each micro-tile
// to rows of k pairs (the same pairing as W, rounded to nearest even) in a buffer, lda in words.
#ifndef M3_ENCODER_CPU_GEMM_PRIVATE_H
#define M3_ENCODER_CPU_GEMM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "encoder/cpu/gemm.h"

enum { M3_GEMM_MR_MAX = 16 };
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

// bf16: rows × ceil(kc / 2) pair words at dst (row stride ldd words) from fp32 A (rows × kc at
// a, row stride lda), rounded to nearest even, a zero after an odd kc.
typedef void (*m3_gemm_to_bf16_fn)(const float *a, size_t lda, size_t rows, size_t kc,
                                   uint32_t *dst, size_t ldd);

typedef struct m3_gemm_kernel {
    const char *name;
    const char *cpu_features;  // what __builtin_cpu_supports must say, comma-separated ("" = any)
    m3_gemm_precision precision;
    size_t mr;  // rows of A per micro-tile (≤ M3_GEMM_MR_MAX)
    size_t nr;  // panel width in columns of W
    size_t kc;  // k block: a panel block (kc × nr) and an A tile stay in cache
    m3_gemm_tile_fn tile;
    m3_gemm_to_bf16_fn to_bf16;  // bf16 kernels only
    void (*gelu)(float *x, size_t n);             // x = gelu_erf(x), in place
    void (*erf)(const float *x, float *y, size_t n);  // y = erf(x) (for the accuracy test)
} m3_gemm_kernel;

extern const m3_gemm_kernel m3_gemm_kernel_scalar;
extern const m3_gemm_kernel m3_gemm_kernel_bf16_scalar;
#if defined(__x86_64__)
extern const m3_gemm_kernel m3_gemm_kernel_avx2;
extern const m3_gemm_kernel m3_gemm_kernel_avx512;
extern const m3_gemm_kernel m3_gemm_kernel_bf16_avx512;
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

// The kernel a packed matrix was packed for (its layout depends on the kernel's nr).
const m3_gemm_kernel *m3_packed_matrix_kernel(const m3_packed_matrix *p);

#endif
