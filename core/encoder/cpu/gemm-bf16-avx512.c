// SPDX-License-Identifier: MIT
//
// The bf16 micro-kernel for AVX512_BF16: VDPBF16PS multiplies 16 pairs of bf16 and adds both
// products to 16 fp32 accumulators, twice the flops of an fp32 FMA per instruction. The same 6 × 64
// tile as the fp32 AVX-512 kernel (24 accumulators + 4 W vectors + 1 broadcast); each k-pair step
// loads 4 vectors of the packed pair panel and broadcasts one 32-bit pair per row of A.
// Compiled with -mavx512f -mavx512bf16 and only called when the CPU has both.
#include <immintrin.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-gelu.h"
#include "encoder/cpu/gemm-gelu-avx512.h"
#include "encoder/cpu/gemm-private.h"
#include "encoder/cpu/gemm-avx512-store.h"
#include "encoder/cpu/gemm-bf16-avx512-steps.h"

// k block: a panel block of 512 k (64 KB) and the task's A block stay in L2. 512 instead of 384
// passes C through the epilogue fewer times (2 instead of 3 k blocks at k 1024): +3.6 % and
// +2.9 % tokens/s at 8×128 and 4×512 over 6 alternated rounds (docs/performance.md, run H).
#define KC 512
#define NR (16 * AVX512_NV)
// Pair steps before the end of a tile at which C's lines are prefetched (~750 cycles ahead, as the
// fp32 kernel's 64 k steps: a pair step is the same 24 instructions).
#define C_PF_STEPS 64

static inline __attribute__((always_inline)) void tile_body(size_t kc, const uint32_t *ap,
                                                            size_t lda, const uint32_t *wp,
                                                            float *c, size_t ldc, const int mr,
                                                            size_t nr, bool first,
                                                            const float *bias, const float *r,
                                                            size_t ldr, const char *pf,
                                                            size_t pf_lines) {
    __m512 acc[AVX512_MR][AVX512_NV];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            acc[i][v] = _mm512_setzero_ps();
    // Prefetches, only in tile_pf's calls (every k block but a task's last) and only where the
    // driver spreads W's next k block thin, at most a line per four pair steps (the tasks of many
    // row tiles of a batch):
    // - W's next k block into L2, two lines a pair step from the start of the tile;
    // - C's tile (in the first k block: the residual rows) into L1, C_PF_STEPS pair steps before
    //   the epilogue reads it.
    // Together +3–4 % on the GEMMs at 1,024 and 2,048 rows, the FFN-out (8 k blocks) +5 %. A tile
    // that would fetch more (a short query's task of two or three tiles) prefetches nothing: there
    // W streams from memory, the hardware prefetcher already follows the panel into its next k
    // block (contiguous), and the two prefetches made the GEMMs at 16 rows 9 % slower (W 7 %,
    // C 2 %; bench-gemm's stream, each way against none in one process; docs/performance.md).
    size_t steps = (kc + 1) / 2;
    size_t pf_steps = pf_lines <= steps / 4 ? (pf_lines + 1) / 2 : 0;
#define Q_STEPS(Q0, Q1)                                                                        \
    _Pragma("GCC unroll 4") for (size_t q = (Q0); q < (Q1); q++) {                             \
        if (q < pf_steps) {                                                                    \
            _mm_prefetch(pf + 128 * q, _MM_HINT_T1);                                           \
            _mm_prefetch(pf + 128 * q + 64, _MM_HINT_T1);                                      \
        }                                                                                      \
        m3_gemm_bf16_avx512_steps(acc, mr, ap, lda, wp, q, q + 1);                             \
    }
    size_t q_pf = steps > C_PF_STEPS ? steps - C_PF_STEPS : 0;
    Q_STEPS(0, q_pf)
    if (pf_steps)
        m3_gemm_avx512_prefetch_c(mr, nr, c, ldc, first, r, ldr);
    Q_STEPS(q_pf, steps)
#undef Q_STEPS
    m3_gemm_avx512_store(acc, mr, nr, c, ldc, first, bias, r, ldr, false);
}

#define TILE(R) tile_body(kc, ap, lda, wp, c, ldc, R, nr, first, bias, r, ldr, pf, pf_lines)

static void bf16_avx512_tile_pf(size_t kc, const void *av, size_t lda, const void *wv, float *c,
                                size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                                const float *r, size_t ldr, const void *pfv, size_t pf_lines) {
    const uint32_t *ap = av, *wp = wv;
    const char *pf = pfv;
    M3_GEMM_AVX512_DISPATCH(mr, TILE);
}

static void bf16_avx512_tile(size_t kc, const void *av, size_t lda, const void *wv, float *c,
                             size_t ldc, size_t mr, size_t nr, bool first, const float *bias,
                             const float *r, size_t ldr) {
    bf16_avx512_tile_pf(kc, av, lda, wv, c, ldc, mr, nr, first, bias, r, ldr, NULL, 0);
}

// VCVTNE2PS2BF16 rounds to nearest even (denormals to zero, as m3_gemm_bf16_round does), 32
// floats to 16 pair words at a time; the tail is loaded masked, so an odd kc ends with a zero.
// Also the AMX kernel's conversion (gemm-bf16-amx.c).
void m3_gemm_bf16_avx512_to_bf16(const float *a, size_t lda, size_t rows, size_t kc, uint32_t *dst,
                                 size_t ldd) {
    for (size_t i = 0; i < rows; i++) {
        const float *src = a + i * lda;
        uint32_t *out = dst + i * ldd;
        for (size_t k = 0; k < kc; k += 32) {
            size_t left = kc - k;
            __mmask16 lo = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __mmask16 hi = left >= 32   ? (__mmask16)0xffff
                           : left > 16 ? (__mmask16)((1u << (left - 16)) - 1)
                                       : (__mmask16)0;
            size_t words = left >= 32 ? 16 : (left + 1) / 2;
            __m512 x0 = _mm512_maskz_loadu_ps(lo, src + k);
            __m512 x1 = _mm512_maskz_loadu_ps(hi, src + k + 16);
            __m512i packed = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
            _mm512_mask_storeu_epi32(out + k / 2, (__mmask16)((1u << words) - 1), packed);
        }
    }
}

M3_GEMM_DEFINE_ERF(bf16_avx512)

const m3_gemm_kernel m3_gemm_kernel_bf16_avx512 = {
    .name = "bf16-avx512",
    .cpu_features = "avx512f,avx512bf16",
    .precision = M3_GEMM_BF16,
    .mr = AVX512_MR,
    .nr = NR,
    .kc = KC,
    .tile = bf16_avx512_tile,
    .tile_pf = bf16_avx512_tile_pf,
    .to_bf16 = m3_gemm_bf16_avx512_to_bf16,
    .gelu = m3_gemm_gelu_avx512,
    .erf = bf16_avx512_erf,
};
