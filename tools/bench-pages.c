// SPDX-License-Identifier: MIT
//
// 4 KiB pages against 2 MiB (transparent huge) pages for the fp32 encoder's GEMMs, side by side in
// one process: LAYERS layers of BGE-M3's four GEMMs (QKV, output projection, FFN in with GELU, FFN
// out with the residual) at `rows` tokens, 2 threads, each layer with its own weights (192 MB,
// beyond the L3, as in the encoder). "huge" holds weights and activations as the CPU backend does
// (m3_packed_matrix_new_as and m3_gemm_buffer_alloc: MADV_HUGEPAGE); "4k" packs the same weights
// into aligned_alloc memory (m3_packed_matrix_pack_into + wrap) with activations from
// aligned_alloc too, which on Debian's THP mode "madvise" stays in 4 KiB pages. The passes
// alternate A B B A so that a machine busy with something else slows both alike; best and median
// GFLOP/s of each, and the ratio of the medians.
//
//     bench-pages [rows, 1024] [rounds, 10]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "encoder/cpu/gemm.h"

enum { LAYERS = 4, MAX_ROUNDS = 100 };

static const size_t shape[4][2] = {{3072, 1024}, {1024, 1024}, {4096, 1024}, {1024, 4096}};
static const m3_gemm_epilogue epi[4] = {M3_GEMM_BIAS, M3_GEMM_BIAS_RESIDUAL, M3_GEMM_BIAS_GELU,
                                        M3_GEMM_BIAS_RESIDUAL};

typedef struct variant {
    const char *name;
    m3_packed_matrix *w[LAYERS][4];
    void *w_data[LAYERS][4];  // "4k": the packed bytes the wrapped matrices borrow
    float *x, *big;           // [rows, 1024] and [rows, 4096], as the backend's x and big
    double t[MAX_ROUNDS];
} variant;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void fill(float *v, size_t n, size_t prime) {
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((i * prime) % 1000) * 1e-3f - 0.5f;
}

static int setup(variant *v, bool huge, size_t rows, const float *w, m3_error *err) {
    v->name = huge ? "huge" : "4k";
    size_t xb = rows * 1024 * sizeof(float), bb = rows * 4096 * sizeof(float);
    v->x = huge ? m3_gemm_buffer_alloc(xb) : aligned_alloc(64, xb);
    v->big = huge ? m3_gemm_buffer_alloc(bb) : aligned_alloc(64, bb);
    if (!v->x || !v->big)
        return 0;
    fill(v->x, rows * 1024, 7919);
    fill(v->big, rows * 4096, 7919);
    for (int l = 0; l < LAYERS; l++)
        for (int g = 0; g < 4; g++) {
            size_t n = shape[g][0], k = shape[g][1];
            m3_tensor t = {.name = "w", .dtype = M3_DTYPE_F32, .ndim = 2,
                           .shape = {(int64_t)n, (int64_t)k}, .strides = {(int64_t)k, 1}, .data = w};
            if (huge) {
                if (m3_packed_matrix_new_as(&t, M3_GEMM_FP32, &v->w[l][g], err) != M3_STATUS_OK)
                    return 0;
                continue;
            }
            size_t bytes = m3_packed_matrix_bytes_for(n, k, M3_GEMM_FP32);
            v->w_data[l][g] = aligned_alloc(64, (bytes + 63) / 64 * 64);
            if (!v->w_data[l][g] ||
                m3_packed_matrix_pack_into(&t, M3_GEMM_FP32, v->w_data[l][g], bytes, err) != M3_STATUS_OK ||
                m3_packed_matrix_wrap(n, k, M3_GEMM_FP32, v->w_data[l][g], bytes, &v->w[l][g], err) !=
                    M3_STATUS_OK)
                return 0;
        }
    return 1;
}

static void teardown(variant *v, bool huge) {
    for (int l = 0; l < LAYERS; l++)
        for (int g = 0; g < 4; g++) {
            m3_packed_matrix_free(v->w[l][g]);
            free(v->w_data[l][g]);
        }
    if (huge) {
        m3_gemm_buffer_free(v->x);
        m3_gemm_buffer_free(v->big);
    } else {
        free(v->x);
        free(v->big);
    }
}

// One pass: every layer's four GEMMs between x and big, A never aliasing C (the attention between
// them is left out; the output projection reads its input from big).
static double pass(m3_threadpool *pool, variant *v, size_t rows, const float *bias) {
    double t0 = now();
    for (int l = 0; l < LAYERS; l++)
        for (int g = 0; g < 4; g++) {
            size_t n = shape[g][0], k = shape[g][1];
            float *in = g % 2 ? v->big : v->x, *out = g % 2 ? v->x : v->big;
            m3_gemm(pool, rows, in, k, v->w[l][g], bias, epi[g], out, n, out, n);
        }
    return now() - t0;
}

int main(int argc, char **argv) {
    size_t rows = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    int rounds = argc > 2 ? atoi(argv[2]) : 10;
    if (rows == 0 || rows > 65536 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: bench-pages [rows 1..65536] [rounds 1..%d]\n", MAX_ROUNDS);
        return 2;
    }
    float *w = malloc(4096 * 1024 * sizeof *w), *bias = calloc(4096, sizeof *bias);
    static variant v[2];
    m3_error err = {0};
    m3_threadpool *pool = NULL;
    if (!w || !bias) {
        fprintf(stderr, "bench-pages: out of memory\n");
        return 1;
    }
    fill(w, 4096 * 1024, 104729);
    if (!setup(&v[0], false, rows, w, &err) || !setup(&v[1], true, rows, w, &err) ||
        m3_threadpool_new(2, &pool, &err) != M3_STATUS_OK) {
        fprintf(stderr, "bench-pages: %s\n", err.message[0] ? err.message : "out of memory");
        return 1;
    }
    double flops = 0;
    for (int g = 0; g < 4; g++)
        flops += 2.0 * (double)rows * (double)shape[g][0] * (double)shape[g][1] * LAYERS;
    pass(pool, &v[0], rows, bias);  // warm up: the pages are faulted in
    pass(pool, &v[1], rows, bias);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < 2; i++) {
            int which = r % 2 ? 1 - i : i;  // A B, B A, ...
            v[which].t[r] = pass(pool, &v[which], rows, bias);
        }
    double median[2];
    for (int i = 0; i < 2; i++) {
        qsort(v[i].t, (size_t)rounds, sizeof *v[i].t, by_value);
        median[i] = v[i].t[rounds / 2];
        printf("fp32 %zu rows, %d layers, 2 threads, %-4s pages: best %6.1f GFLOP/s  median %6.1f GFLOP/s\n",
               rows, LAYERS, v[i].name, flops / v[i].t[0] / 1e9, flops / median[i] / 1e9);
    }
    printf("huge/4k (medians): %.3f\n", median[0] / median[1]);
    m3_threadpool_free(pool);
    teardown(&v[0], false);
    teardown(&v[1], true);
    free(w);
    free(bias);
    return 0;
}
