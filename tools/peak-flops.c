// SPDX-License-Identifier: MIT
//
// This machine's arithmetic peak, the figure the GEMM's efficiency is measured against
// (docs/performance.md): independent chains of one instruction with no memory traffic, on 1 and
// on N threads (one per online CPU unless given), best of 5 runs of ~0.3 s each.
//
//   fp32   VFMADD231PS zmm (AVX-512F) or ymm (AVX2+FMA)      2 flops per lane
//   bf16   VDPBF16PS zmm (AVX512_BF16)                          4 flops per fp32 lane (2 pairs)
//          TDPBF16PS tiles (AMX-BF16)                            16 pairs per fp32 output
//   int8   VPDPBUSD zmm (AVX512_VNNI) / ymm (AVX-VNNI)          8 ops per int32 lane (4 pairs)
//
// The loops are in peak-kernels.h.
//
//     peak-flops [threads]
#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "peak-kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

// AVX-VNNI from CPUID (leaf 7, subleaf 1, EAX bit 4): clang 14's __builtin_cpu_supports does not
// know "avxvnni". Its ymm instructions also need the OS to save ymm state (AVX2 implies that).
static int have_avx_vnni(void)
{
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4));
}

// AMX-TILE and AMX-BF16 from CPUID (leaf 7, EDX bits 24 and 22), and Linux's leave to use the
// tiles (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA), as the GEMM asks (core/encoder/cpu/gemm.c).
static int have_amx_bf16(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 24)) && (d & (1u << 22)) &&
           syscall(SYS_arch_prctl, 0x1023, 18) == 0;
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
        {"fp32 FMA zmm (AVX-512F)", "GFLOP/s", peak_fp32_zmm},
        {"fp32 FMA ymm (AVX2)", "GFLOP/s", peak_fp32_ymm},
        {"bf16 VDPBF16PS zmm (AVX512_BF16)", "GFLOP/s", peak_bf16_zmm},
        {"bf16 TDPBF16PS tiles (AMX-BF16)", "GFLOP/s", peak_bf16_amx},
        {"int8 VPDPBUSD zmm (AVX512_VNNI)", "GOP/s", peak_int8_zmm},
        {"int8 VPDPBUSD ymm (AVX-VNNI)", "GOP/s", peak_int8_ymm},
    };
    int have[] = {
        __builtin_cpu_supports("avx512f"),
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
        __builtin_cpu_supports("avx512bf16"),
        have_amx_bf16(),
        __builtin_cpu_supports("avx512vnni"),
        have_avx_vnni(),
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
