// SPDX-License-Identifier: MIT
//
// The inner loops of the dense search (private to core/index): Hamming distances of sign codes and
// the dot products of the int8 rescoring and of the exact scores. Each has an AVX-512 (VPOPCNTDQ),
// an AVX2 and a portable version, chosen once at run time with __builtin_cpu_supports, so that the
// library assumes nothing beyond x86-64's baseline. Every version gives the same Hamming distances;
// the dot products differ only by the order of the float additions.
//
//     const m3_scan_kernels *k = m3_scan_kernels_get();
//     k->hamming(codes, 1024, code_bytes, qcode, dist);
//
// Threads: the kernels are pure functions; the choice is made once (pthread_once).
#ifndef M3_INDEX_SCAN_H
#define M3_INDEX_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct m3_scan_kernels {
    const char *name;  // "avx512", "avx2", "popcnt" or "generic"
    // out[i] = Hamming distance between the code codes[i·cb, (i+1)·cb) and q[0, cb), for i < n.
    // codes and q may be unaligned (codes point into the LMDB map).
    void (*hamming)(const unsigned char *codes, size_t n, size_t cb, const unsigned char *q, uint32_t *out);
    // Writes to slots the i < n (in order) with dist[i] < below whose bit i is set in live (bit
    // i % 8 of byte i / 8); returns how many. n is a multiple of 64; slots has room for n + 16
    // (the vector versions store whole registers).
    size_t (*below)(const uint32_t *dist, const unsigned char *live, size_t n, uint32_t below, uint32_t *slots);
    // Σ q[i]·p[i] for i < d; p is int8, unaligned.
    float (*dot_i8)(const float *q, const void *p, size_t d);
    // Σ q[i]·p[i] for i < d; p is fp32, unaligned.
    float (*dot_f32)(const float *q, const void *p, size_t d);
} m3_scan_kernels;

// The best kernels this CPU runs.
const m3_scan_kernels *m3_scan_kernels_get(void);

// Tests: the kernels named (each of "avx512", "avx2", "popcnt", "generic"); NULL when this CPU
// cannot run them.
const m3_scan_kernels *m3_scan_kernels_named(const char *name);

#endif
