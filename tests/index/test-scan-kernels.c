// SPDX-License-Identifier: MIT
//
// The dense search's kernels (core/index/scan.c): every version this CPU runs against the portable
// one, on random codes of odd and usual sizes. Hamming distances and the slots below a threshold
// must be equal; dot products equal to within float rounding.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/scan.h"

static int failures;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fputc('\n', stderr);                           \
            failures++;                                    \
        }                                                  \
    } while (0)

static uint64_t rng = 0x243F6A8885A308D3u;

static uint64_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

int main(void)
{
    static const char *const names[] = {"avx512", "avx2", "popcnt"};
    static const size_t dims[] = {8, 24, 64, 100, 128, 200, 512, 1000, 1024, 4096};
    const m3_scan_kernels *ref = m3_scan_kernels_named("generic");
    const m3_scan_kernels *best = m3_scan_kernels_get();
    CHECK(ref && best, "no kernels");
    printf("kernels chosen: %s\n", best->name);
    size_t tested = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const m3_scan_kernels *kern = m3_scan_kernels_named(names[k]);
        if (!kern) {
            printf("%s: not supported here\n", names[k]);
            continue;
        }
        tested++;
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
            size_t d = dims[di], cb = (d + 7) / 8, n = 1024;
            // Codes one byte off alignment, as values in the map may be.
            unsigned char *buf = malloc(n * cb + 1), *codes = buf + 1, *q = malloc(cb + 1);
            unsigned char live[128];
            uint32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *sa = malloc((n + 16) * 4), *sb = malloc((n + 16) * 4);
            float *qf = malloc(d * sizeof *qf), *pf = malloc(d * sizeof *pf + 1);
            signed char *p8 = malloc(d + 1);
            for (size_t i = 0; i < n * cb; i++) codes[i] = (unsigned char)next();
            for (size_t i = 0; i < cb; i++) q[i] = (unsigned char)next();
            for (size_t i = 0; i < sizeof live; i++) live[i] = (unsigned char)next();
            kern->hamming(codes, n, cb, q, a);
            ref->hamming(codes, n, cb, q, b);
            CHECK(!memcmp(a, b, n * sizeof *a), "%s hamming, dim %zu", kern->name, d);
            uint32_t thresholds[] = {0, (uint32_t)d / 2, (uint32_t)d + 1, UINT32_MAX};
            for (size_t t = 0; t < 4; t++) {
                size_t ma = kern->below(a, live, n, thresholds[t], sa), mb = ref->below(a, live, n, thresholds[t], sb);
                CHECK(ma == mb && !memcmp(sa, sb, ma * 4), "%s below %u, dim %zu: %zu vs %zu slots", kern->name,
                      thresholds[t], d, ma, mb);
            }
            double norm = 0;
            for (size_t i = 0; i < d; i++) {
                qf[i] = (float)((double)(next() >> 11) * 0x1p-53 - 0.5);
                pf[i] = (float)((double)(next() >> 11) * 0x1p-53 - 0.5);
                p8[i] = (signed char)((int)(next() % 255) - 127);
                norm += fabs(qf[i]) * 127;
            }
            float x = kern->dot_i8(qf, p8, d), y = ref->dot_i8(qf, p8, d);
            CHECK(fabs(x - y) <= 1e-5 * norm + 1e-6, "%s dot_i8, dim %zu: %g vs %g", kern->name, d, x, y);
            // fp32 values one byte off alignment.
            unsigned char *raw = malloc(4 * d + 1);
            memcpy(raw + 1, pf, 4 * d);
            x = kern->dot_f32(qf, raw + 1, d);
            y = ref->dot_f32(qf, raw + 1, d);
            CHECK(fabs(x - y) <= 1e-5 * (double)d, "%s dot_f32, dim %zu: %g vs %g", kern->name, d, x, y);
            free(raw);
            free(buf), free(q), free(a), free(b), free(sa), free(sb), free(qf), free(pf), free(p8);
        }
    }
    printf("%zu kernel sets compared with the portable one\n", tested);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    return 0;
}
