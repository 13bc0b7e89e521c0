// SPDX-License-Identifier: MIT
//
// The loops that measure this machine's arithmetic peak (tools/peak-flops.c, tools/bench-gemm.c):
// each runs ITERS steps of CHAINS independent accumulators of one instruction with no memory
// traffic, and returns the operations it did (flops; int8: multiply-adds × 2).
//
// 12 accumulators per thread: more than latency × throughput (4 × 2 on Zen 4/5, Sapphire
// Rapids), fewer than the 16/32 registers, so the loop is bound by the arithmetic ports alone.
// Each chain's values stay finite (x·0.999999 + 1e-6 converges), so no denormal slows it.
#ifndef M3_TOOLS_PEAK_KERNELS_H
#define M3_TOOLS_PEAK_KERNELS_H

#include <immintrin.h>

enum { PEAK_ITERS = 4 * 1000 * 1000, PEAK_CHAINS = 12 };

// The sink keeps the compiler from dropping the work.
static volatile float peak_sink;

#define REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f"), unused)) static double peak_fp32_zmm(void) {
    __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
#define SUM(i) s += _mm512_reduce_add_ps(a##i);
    REP12(DECL)
    for (long it = 0; it < PEAK_ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    float s = 0;
    REP12(SUM)
    peak_sink = s;
    return (double)PEAK_ITERS * PEAK_CHAINS * 16 * 2;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2,fma"), unused)) static double peak_fp32_ymm(void) {
    __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
#define DECL(i) __m256 a##i = _mm256_set1_ps((float)(i));
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, b, c);
#define SUM(i) s += a##i[0];
    REP12(DECL)
    for (long it = 0; it < PEAK_ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    float s = 0;
    REP12(SUM)
    peak_sink = s;
    return (double)PEAK_ITERS * PEAK_CHAINS * 8 * 2;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx512f,avx512bf16"), unused)) static double peak_bf16_zmm(void) {
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x0001);
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
#define SUM(i) s += _mm512_reduce_add_ps(a##i);
    REP12(DECL)
    for (long it = 0; it < PEAK_ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    float s = 0;
    REP12(SUM)
    peak_sink = s;
    return (double)PEAK_ITERS * PEAK_CHAINS * 16 * 4;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx512f,avx512vnni"), unused)) static double peak_int8_zmm(void) {
    __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(1);
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
// The instruction in asm: GCC 12 compiled _mm512_dpbusd_epi32 here with a register copy per step.
#define STEP(i) __asm__("vpdpbusd %2, %1, %0" : "+v"(a##i) : "v"(x), "v"(y));
#define SUM(i) s += _mm512_reduce_add_epi32(a##i);
    REP12(DECL)
    for (long it = 0; it < PEAK_ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    int s = 0;
    REP12(SUM)
    peak_sink = (float)s;
    return (double)PEAK_ITERS * PEAK_CHAINS * 16 * 8;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2,avxvnni"), unused)) static double peak_int8_ymm(void) {
    __m256i x = _mm256_set1_epi8(1), y = _mm256_set1_epi8(1);
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
// The instruction in asm: GCC 12 compiled _mm256_dpbusd_avx_epi32 here with copies and stack
// stores every step, and the loop measured them (~1 instruction a cycle on Zen 5), not VPDPBUSD.
// "x": ymm0-15, which the VEX form can encode.
#define STEP(i) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(a##i) : "x"(x), "x"(y));
#define SUM(i) s += _mm256_extract_epi32(a##i, 0);
    REP12(DECL)
    for (long it = 0; it < PEAK_ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    int s = 0;
    REP12(SUM)
    peak_sink = (float)s;
    return (double)PEAK_ITERS * PEAK_CHAINS * 8 * 8;
#undef DECL
#undef STEP
#undef SUM
}

// AMX-BF16: TDPBF16PS on six accumulator tiles of 16 × 16 fp32 from two zero source tiles (16 ×
// 32 bf16 and 16 pairs × 16), 16 · 16 · 32 · 2 flops each. The caller has asked Linux for the
// tile state (arch_prctl ARCH_REQ_XCOMP_PERM) first. The thread's tile configuration is put
// back as it was (the GEMM's AMX kernel keeps its own between calls on the pool's threads).
__attribute__((target("amx-tile,amx-bf16"), unused)) static double peak_bf16_amx(void) {
    typedef struct {
        unsigned char palette, start_row, reserved[14];
        unsigned short colsb[16];
        unsigned char rows[16];
    } tile_config;
    _Alignas(64) tile_config saved, cfg = {.palette = 1};
    _tile_storeconfig(&saved);  // all zero when the tiles are not configured
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);  // also zeroes every tile
    for (long it = 0; it < PEAK_ITERS; it++) {
        _tile_dpbf16ps(0, 6, 7);
        _tile_dpbf16ps(1, 6, 7);
        _tile_dpbf16ps(2, 6, 7);
        _tile_dpbf16ps(3, 6, 7);
        _tile_dpbf16ps(4, 6, 7);
        _tile_dpbf16ps(5, 6, 7);
    }
    if (saved.palette)
        _tile_loadconfig(&saved);
    else
        _tile_release();
    return (double)PEAK_ITERS * 6 * 16 * 16 * 32 * 2;
}

#endif
