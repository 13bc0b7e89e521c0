// SPDX-License-Identifier: MIT
//
// This machine's arithmetic peak, the figure the GEMM's efficiency is measured against
// (docs/performance.md): independent chains of one instruction with no memory traffic, on 1 and
// on N threads (one per online CPU unless given), best of 5 runs of ~0.3 s each.
//
//   fp32   VFMADD231PS zmm (AVX-512F) or ymm (AVX2+FMA)      2 flops per lane
//   bf16   VDPBF16PS zmm (AVX512_BF16)                          4 flops per fp32 lane (2 pairs)
//   int8   VPDPBUSD zmm (AVX512_VNNI) / ymm (AVX-VNNI)          8 ops per int32 lane (4 pairs)
//
// 12 accumulators per thread: more than latency × throughput (4 × 2 on Zen 4/5, Sapphire
// Rapids), fewer than the 16/32 registers, so the loop is bound by the FMA ports alone. Each
// chain's values stay finite (x·0.999999 + 1e-6 converges), so no denormal slows it.
//
//     peak-flops [threads]
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { ITERS = 4 * 1000 * 1000, CHAINS = 12 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Every kernel returns the operations it did; the sink keeps the compiler from dropping the work.
static volatile float sink;

#define REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f"))) static double fp32_zmm(void) {
    __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
#define SUM(i) s += _mm512_reduce_add_ps(a##i);
    REP12(DECL)
    for (long it = 0; it < ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    float s = 0;
    REP12(SUM)
    sink = s;
    return (double)ITERS * CHAINS * 16 * 2;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2,fma"))) static double fp32_ymm(void) {
    __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
#define DECL(i) __m256 a##i = _mm256_set1_ps((float)(i));
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, b, c);
#define SUM(i) s += a##i[0];
    REP12(DECL)
    for (long it = 0; it < ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    float s = 0;
    REP12(SUM)
    sink = s;
    return (double)ITERS * CHAINS * 8 * 2;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx512f,avx512bf16"))) static double bf16_zmm(void) {
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x0001);
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
#define SUM(i) s += _mm512_reduce_add_ps(a##i);
    REP12(DECL)
    for (long it = 0; it < ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    float s = 0;
    REP12(SUM)
    sink = s;
    return (double)ITERS * CHAINS * 16 * 4;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx512f,avx512vnni"))) static double int8_zmm(void) {
    __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(1);
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, y);
#define SUM(i) s += _mm512_reduce_add_epi32(a##i);
    REP12(DECL)
    for (long it = 0; it < ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    int s = 0;
    REP12(SUM)
    sink = (float)s;
    return (double)ITERS * CHAINS * 16 * 8;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2,avxvnni"))) static double int8_ymm(void) {
    __m256i x = _mm256_set1_epi8(1), y = _mm256_set1_epi8(1);
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
#define STEP(i) a##i = _mm256_dpbusd_avx_epi32(a##i, x, y);
#define SUM(i) s += _mm256_extract_epi32(a##i, 0);
    REP12(DECL)
    for (long it = 0; it < ITERS; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    int s = 0;
    REP12(SUM)
    sink = (float)s;
    return (double)ITERS * CHAINS * 8 * 8;
#undef DECL
#undef STEP
#undef SUM
}

typedef double (*kernel_fn)(void);

typedef struct run {
    kernel_fn fn;
    double ops;
} run;

static void *thread_main(void *arg) {
    run *r = arg;
    r->ops = r->fn();
    return NULL;
}

// Giga-operations per second of fn on `threads` threads, best of 5.
static double measure(kernel_fn fn, int threads) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t tid[256];
        run runs[256];
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            runs[i] = (run){fn, 0};
            if (pthread_create(&tid[i], NULL, thread_main, &runs[i]) != 0) {
                perror("pthread_create");
                exit(1);
            }
        }
        double ops = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(tid[i], NULL);
            ops += runs[i].ops;
        }
        double g = ops / (now() - t0) / 1e9;
        if (g > best)
            best = g;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "peak-flops: threads must be 1..256\n");
        return 2;
    }
    __builtin_cpu_init();
    static const struct {
        const char *name, *unit;
        kernel_fn fn;
    } *k, kernels[] = {
        {"fp32 FMA zmm (AVX-512F)", "GFLOP/s", fp32_zmm},
        {"fp32 FMA ymm (AVX2)", "GFLOP/s", fp32_ymm},
        {"bf16 VDPBF16PS zmm (AVX512_BF16)", "GFLOP/s", bf16_zmm},
        {"int8 VPDPBUSD zmm (AVX512_VNNI)", "GOP/s", int8_zmm},
        {"int8 VPDPBUSD ymm (AVX-VNNI)", "GOP/s", int8_ymm},
    };
    int have[] = {
        __builtin_cpu_supports("avx512f"),
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
        __builtin_cpu_supports("avx512bf16"),
        __builtin_cpu_supports("avx512vnni"),
        __builtin_cpu_supports("avxvnni"),
    };
    printf("%-36s %12s %12s\n", "instruction", "1 thread", "threads");
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; i++) {
        k = &kernels[i];
        if (!have[i]) {
            printf("%-36s %12s %12s\n", k->name, "-", "-");
            continue;
        }
        double one = measure(k->fn, 1), all = measure(k->fn, threads);
        printf("%-36s %8.1f %s  %6.1f %s (%d threads)\n", k->name, one, k->unit, all, k->unit,
               threads);
    }
    return 0;
}
