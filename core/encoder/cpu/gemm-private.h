// SPDX-License-Identifier: MIT
//
// Private to the GEMM: the micro-kernel table each instruction set provides (gemm-avx512.c,
// gemm-avx2.c, gemm-scalar.c) and the packed-weight layout they share with gemm.c.
//
// Packed W: ceil(n / nr) panels of nr columns; panel p holds W[p*nr + j][kk] at
// data[p*k*nr + kk*nr + j] (k-major, so one k step reads nr consecutive floats), columns past n are
// zero. A k block [k0, k0 + kc) of a panel is the contiguous range starting at k0*nr.
//
// Packed A tile (built per task in gemm.c): rows i0..i0+mr of A for a k block, stored as
// ap[kk*mr_max + r], so a k step broadcasts mr consecutive floats.
#ifndef M3_ENCODER_CPU_GEMM_PRIVATE_H
#define M3_ENCODER_CPU_GEMM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

enum { M3_GEMM_MR_MAX = 16 };

// One micro-tile, mr rows (1..kernel mr) × nr columns (1..kernel nr), over kc steps:
//   first: C = acc + bias[j] (bias NULL: 0) + R[i][j] (r NULL: none); R may alias C exactly.
//   else:  C += acc.
typedef void (*m3_gemm_tile_fn)(size_t kc, const float *ap, const float *wp, float *c, size_t ldc,
                                size_t mr, size_t nr, bool first, const float *bias,
                                const float *r, size_t ldr);

typedef struct m3_gemm_kernel {
    const char *name;
    size_t mr;  // rows of A per micro-tile (≤ M3_GEMM_MR_MAX)
    size_t nr;  // panel width in columns of W
    size_t kc;  // k block: a panel block (kc × nr) and an A tile stay in cache
    m3_gemm_tile_fn tile;
    void (*gelu)(float *x, size_t n);             // x = gelu_erf(x), in place
    void (*erf)(const float *x, float *y, size_t n);  // y = erf(x) (for the accuracy test)
} m3_gemm_kernel;

extern const m3_gemm_kernel m3_gemm_kernel_scalar;
#if defined(__x86_64__)
extern const m3_gemm_kernel m3_gemm_kernel_avx2;
extern const m3_gemm_kernel m3_gemm_kernel_avx512;
#endif

// The kernel M3_GEMM_KERNEL asks for (when this CPU has it), else the best one the CPU has.
// Read at each call, so a test can switch kernels with setenv between packings.
const m3_gemm_kernel *m3_gemm_kernel_select(void);

// The kernel a packed matrix was packed for (its layout depends on the kernel's nr).
const m3_gemm_kernel *m3_packed_matrix_kernel(const m3_packed_matrix *p);

#endif
