// SPDX-License-Identifier: MIT
//
// The portable micro-kernel (no -m flags): a 4 × 16 block of C in a local array, which the
// compiler keeps in baseline vector registers. The fallback for CPUs without AVX2 and the
// reference the SIMD kernels are tested beside.
#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-private.h"

#define MR 4
#define NR 16
#define KC 256

static void scalar_tile(size_t kc, const float *ap, const float *wp, float *c, size_t ldc,
                        size_t mr, size_t nr, bool first, const float *bias, const float *r,
                        size_t ldr) {
    float acc[MR][NR] = {{0}};
    for (size_t k = 0; k < kc; k++)
        for (size_t i = 0; i < MR; i++) {
            float a = ap[k * MR + i];
            for (size_t j = 0; j < NR; j++)
                acc[i][j] += a * wp[k * NR + j];
        }
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++) {
            if (first) {
                float x = acc[i][j] + (bias ? bias[j] : 0.0f);
                if (r)
                    x += r[i * ldr + j];
                c[i * ldc + j] = x;
            } else {
                c[i * ldc + j] += acc[i][j];
            }
        }
}

M3_GEMM_DEFINE_GELU(scalar)

const m3_gemm_kernel m3_gemm_kernel_scalar = {
    .name = "scalar",
    .mr = MR,
    .nr = NR,
    .kc = KC,
    .tile = scalar_tile,
    .gelu = scalar_gelu,
    .erf = scalar_erf,
};
