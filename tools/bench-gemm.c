// SPDX-License-Identifier: MIT
//
// GFLOP/s (int8: GOP/s) of m3_gemm on the encoder's shapes (BGE-M3: hidden 1024, FFN 4096), 1
// and 2 threads, against this machine's measured peak for the precision (tools/peak-kernels.h:
// fp32 FMA, VDPBF16PS or zmm VPDPBUSD loops with no memory traffic). Several precisions run side
// by side, shape by shape, in one process (the int8 time includes quantising A). bf16 adds the
// FFN pair with its middle matrix in fp32 or as bf16 pairs, and with its input as pairs too (the
// encoder's LayerNorm writes them; bench_ffn_pairs), and the QKV and output projections with A in
// fp32 or as pairs (bench_a_pairs). Then a 16-token query (or `stream rows` tokens) through 8
// layers of weights that come from memory, as in the encoder; a fourth argument "only" runs only
// that, on 2 threads (or on the fifth argument's count).
//
//     bench-gemm [seconds per case] [fp32|bf16|int8[,...]] [stream rows] [only [threads]]
//     bench-gemm 2 fp32 1024 only  (only the stream, 1,024 rows on 2 threads: the encoder at 8 × 128)
//     bench-gemm 30 fp32 1024 only 1  (the same on 1 thread: steadier where another process runs)
//     M3_GEMM_KERNEL=avx2 bench-gemm  (force a kernel)
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "encoder/cpu/gemm.h"
#include "peak-kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct peak_job {
    double (*fn)(void);
    double ops[64];
} peak_job;

static void peak_task(void *ctx, size_t task, int thread) {
    (void)thread;
    peak_job *job = ctx;
    job->ops[task] = job->fn();
}

// The instruction the kernel picked for a precision runs on (M3_GEMM_KERNEL may force one): its
// name for the header and its peak loop (tools/peak-kernels.h); NULL for kernels without one
// instruction to measure against (int8-avx2's VPMADDUBSW + VPMADDWD pairs, the scalar ones).
typedef struct peak_instruction {
    const char *name;
    double (*fn)(void);
} peak_instruction;

static peak_instruction peak_for(m3_gemm_precision precision) {
    const char *kernel = m3_gemm_kernel_name_for(precision);
#if defined(__x86_64__)
    static const struct {
        const char *kernel;
        peak_instruction peak;
    } table[] = {
        {"avx512", {"AVX-512 FMA", peak_fp32_zmm}},
        {"avx2", {"AVX2 FMA (ymm)", peak_fp32_ymm}},
        {"bf16-avx512", {"VDPBF16PS", peak_bf16_zmm}},
        {"bf16-amx", {"AMX TDPBF16PS", peak_bf16_amx}},  // the kernel has the tile state already
        {"int8-avx512vnni", {"VPDPBUSD zmm", peak_int8_zmm}},
        {"int8-avxvnni", {"VPDPBUSD ymm (AVX-VNNI)", peak_int8_ymm}},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcmp(kernel, table[i].kernel) == 0)
            return table[i].peak;
#endif
    return (peak_instruction){kernel, NULL};
}

// The pool's peak for the instruction of the precision's kernel, best of 3; 0 when there is none.
static double measure_peak(m3_threadpool *pool, m3_gemm_precision precision) {
    peak_job job = {.fn = peak_for(precision).fn};
    if (!job.fn)
        return 0;
    int n = m3_threadpool_size(pool);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        m3_threadpool_run(pool, (size_t)n, peak_task, &job);
        double t = now() - t0, total = 0;
        for (int i = 0; i < n; i++)
            total += job.ops[i];
        if (total / t / 1e9 > best)
            best = total / t / 1e9;
    }
    return best;
}

// Deterministic test data spread over [-half, half): element i is ((i · prime) mod 1000) / 1000,
// scaled by 2 · half and shifted (the same values in every run, no generator state).
static void fill(float *v, size_t n, size_t prime, float half) {
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((i * prime) % 1000) * (half * 2e-3f) - half;
}

static const char *precision_name(m3_gemm_precision p) {
    return p == M3_GEMM_BF16 ? "bf16" : p == M3_GEMM_INT8 ? "int8" : "fp32";
}

// A batch of m tokens (16 by default: a query) through STREAM_LAYERS layers of the encoder's four
// GEMMs, as the encoder runs them: x·Wqkv → qkv; attention's output (the encoder writes it over
// qkv's first H columns, row stride 3H) ·Wo + x → x; x·W1 with GELU → mid; mid·W2 + x → x. Each
// layer has its own weights: 384 MB of fp32 weights, beyond the L3, so the weights come from
// memory as in the real encoder (the m·k·n rows above reuse one matrix that stays in the L3), and
// each GEMM reads the activations the one before wrote, on the encoder's allocator (2 MiB pages).
// At m = 1,024 (8 × 128 tokens) it is the encoder's GEMM time without its attention, the figure to
// tune the fp32 kernel's blocking against. Three ways, pass by pass in turn (one process, so the
// same machine for all): as the encoder (mid's rows FFN floats apart, 16 KiB: a power of two),
// mid's rows FFN + 16 floats apart (off the power of two: does 4K aliasing cost?), and the FFN-in
// without its GELU (what the GELU costs; not the encoder's result). For each: GFLOP/s of the best
// pass and the median one, the median per CPU-second of each pool thread (processor time, which a
// thread does not accrue while another process has its CPU: the GEMMs' own speed on a busy
// machine), and each GEMM's best pass. 0 on error.
enum { STREAM_LAYERS = 8, STREAM_REPS_MAX = 4096 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench_stream(m3_threadpool *pool, m3_gemm_precision precision, size_t m,
                        double seconds, double peak) {
    enum { FFN = 4096, H = 1024 };
    static const size_t shape[4][2] = {{3 * H, H}, {H, H}, {FFN, H}, {H, FFN}};
    static const char *const names[4] = {"qkv", "out", "ffn-in", "ffn-out"};
    static const m3_gemm_epilogue epi[4] = {M3_GEMM_BIAS, M3_GEMM_BIAS_RESIDUAL,
                                            M3_GEMM_BIAS_GELU, M3_GEMM_BIAS_RESIDUAL};
    enum { WAYS = 3 };
    static const size_t mid_ld[WAYS] = {FFN, FFN + 16, FFN};
    static const char *const ways[WAYS] = {"as the encoder", "mid stride FFN + 16", "FFN-in without GELU"};
    m3_packed_matrix *p[STREAM_LAYERS][4] = {{NULL}};
    // The activations on the encoder's allocator (2 MiB pages where the kernel has them).
    float *w = malloc((size_t)FFN * H * sizeof *w), *x = m3_gemm_buffer_alloc(m * H * sizeof *x);
    float *qkv = m3_gemm_buffer_alloc(m * 3 * H * sizeof *qkv);
    float *mid = m3_gemm_buffer_alloc(m * (FFN + 16) * sizeof *mid);
    float *bias = calloc(FFN, sizeof *bias);
    double *wall = malloc(WAYS * STREAM_REPS_MAX * sizeof *wall);
    double *cpu = malloc(WAYS * STREAM_REPS_MAX * sizeof *cpu);
    int ok = w && x && qkv && mid && bias && wall && cpu;
    if (ok) {
        fill(w, (size_t)FFN * H, 104729, 0.05f);
        fill(x, m * H, 7919, 0.5f);
        fill(qkv, m * 3 * H, 7907, 0.5f);
        fill(mid, m * (FFN + 16), 7901, 0.5f);
    }
    size_t bytes = 0;
    double flops = 0;
    m3_error err = {0};
    for (int l = 0; ok && l < STREAM_LAYERS; l++)
        for (int g = 0; ok && g < 4; g++) {
            m3_tensor t = {.name = "w", .dtype = M3_DTYPE_F32, .ndim = 2,
                           .shape = {(int64_t)shape[g][0], (int64_t)shape[g][1]},
                           .strides = {(int64_t)shape[g][1], 1}, .data = w};
            ok = m3_packed_matrix_new_as(&t, precision, &p[l][g], &err) == M3_STATUS_OK;
            if (ok) {
                size_t b;
                m3_packed_matrix_data(p[l][g], &b);
                bytes += b;
                flops += 2.0 * (double)m * (double)shape[g][0] * (double)shape[g][1];
            } else {
                fprintf(stderr, "%s\n", err.message);
            }
        }
    double threads = m3_threadpool_size(pool), total = 0, g_best[WAYS][4];
    for (int v = 0; v < WAYS; v++)
        for (int g = 0; g < 4; g++)
            g_best[v][g] = 1e30;
    int n[WAYS] = {0};
    // The first pass of each way (first touches, a cold start) is not counted.
    for (int reps = 0; ok && (total < seconds || reps < 4 * WAYS) && reps < WAYS * STREAM_REPS_MAX;
         reps++) {
        int v = reps % WAYS;
        size_t ldm = mid_ld[v];
        // Each GEMM's A and its row stride, C and its row stride (the residual is C itself,
        // which it may alias, as in the encoder).
        float *const in[4] = {x, qkv, x, mid}, *const out[4] = {qkv, x, mid, x};
        const size_t lda[4] = {H, 3 * H, H, ldm}, ldc[4] = {3 * H, H, ldm, H};
        // x again as at the start (not timed): the residual adds grow it layer by layer (|x| up to
        // ~17 after a pass), and over many passes without LayerNorm it would reach 1e7 and beyond,
        // where the GELU works on values far outside what an encoder feeds it.
        fill(x, m * H, 7919, 0.5f);
        double t0 = now(), c0 = cpu_now(), g_sum[4] = {0};
        for (int l = 0; l < STREAM_LAYERS; l++)
            for (int g = 0; g < 4; g++) {
                double tg = now();
                m3_gemm(pool, m, in[g], lda[g], p[l][g], bias,
                        v == 2 && g == 2 ? M3_GEMM_BIAS : epi[g], out[g], ldc[g], out[g], ldc[g]);
                g_sum[g] += now() - tg;
            }
        double dt = now() - t0, dc = cpu_now() - c0;
        total += dt;
        if (reps < WAYS)
            continue;
        wall[v * STREAM_REPS_MAX + n[v]] = dt;
        cpu[v * STREAM_REPS_MAX + n[v]] = dc / threads;
        n[v]++;
        for (int g = 0; g < 4; g++)
            if (g_sum[g] < g_best[v][g])
                g_best[v][g] = g_sum[g];
    }
    for (int v = 0; ok && v < WAYS; v++) {
        double *wv = wall + v * STREAM_REPS_MAX, *cv = cpu + v * STREAM_REPS_MAX;
        qsort(wv, (size_t)n[v], sizeof *wv, cmp_double);
        qsort(cv, (size_t)n[v], sizeof *cv, cmp_double);
        printf("  %s m=%4zu, %d layers' weights from memory, %-19s %6.1f G(FL)OP/s best "
               "(%4.1f%% of peak, %.3f ms), %6.1f median, %6.1f median per thread CPU-second "
               "(%d passes; %.1f GB/s of weights)\n",
               precision_name(precision), m, STREAM_LAYERS, ways[v], flops / wv[0] / 1e9,
               peak > 0 ? 100 * flops / wv[0] / 1e9 / peak : 0, wv[0] * 1e3,
               flops / wv[n[v] / 2] / 1e9, flops / cv[n[v] / 2] / 1e9, n[v],
               (double)bytes / wv[0] / 1e9);
        printf("      best pass of each GEMM:");
        for (int g = 0; g < 4; g++)
            printf(" %s %.1f", names[g],
                   2.0 * (double)m * (double)shape[g][0] * (double)shape[g][1] * STREAM_LAYERS /
                       g_best[v][g] / 1e9);
        printf(" G(FL)OP/s\n");
    }
    for (int l = 0; l < STREAM_LAYERS; l++)
        for (int g = 0; g < 4; g++)
            m3_packed_matrix_free(p[l][g]);
    free(w);
    m3_gemm_buffer_free(x);
    m3_gemm_buffer_free(qkv);
    m3_gemm_buffer_free(mid);
    free(bias);
    free(wall);
    free(cpu);
    return ok;
}

// bf16: the FFN pair (x·W1ᵀ with GELU, then ·W2ᵀ with the residual) at 2048 tokens, its middle
// matrix kept in fp32 (m3_gemm twice) or as bf16 pairs (m3_gemm_to_pairs, m3_gemm_pairs), the
// two ways alternating so that both see the same machine; best of each.
static void bench_ffn_pairs(m3_threadpool *pool, double seconds, double peak);

// bf16: the QKV (n = 3H) and output (n = H) projections at 2048 tokens with A in fp32 (converted
// inside m3_gemm) or as pairs (m3_gemm_pairs; the encoder's LayerNorm and attention write them),
// alternating; best of each.
static void bench_a_pairs(m3_threadpool *pool, double seconds, double peak) {
    enum { M = 2048, H = 1024 };
    float *x = malloc((size_t)M * H * sizeof *x), *c = malloc((size_t)M * 3 * H * sizeof *c);
    float *w = malloc((size_t)3 * H * H * sizeof *w), *b = calloc(3 * H, sizeof *b);
    uint32_t *xp = malloc((size_t)M * H / 2 * sizeof *xp);
    fill(x, (size_t)M * H, 7919, 0.5f);
    fill(w, (size_t)3 * H * H, 104729, 0.05f);
    static const size_t ns[] = {3 * H, H};
    for (size_t ni = 0; ni < 2; ni++) {
        size_t n = ns[ni];
        m3_tensor t = {.name = "w", .dtype = M3_DTYPE_F32, .ndim = 2, .shape = {(int64_t)n, H},
                       .strides = {H, 1}, .data = w};
        m3_packed_matrix *p;
        m3_error err = {0};
        if (m3_packed_matrix_new_as(&t, M3_GEMM_BF16, &p, &err)) {
            fprintf(stderr, "%s\n", err.message);
            exit(1);
        }
        m3_gemm_rows_to_pairs(p, x, H, M, H, xp, H / 2);
        double best[2] = {1e30, 1e30}, total = 0;
        int reps = 0;
        while (total < 2 * seconds || reps < 6) {
            int way = reps % 2;
            double t0 = now();
            if (way == 0)
                m3_gemm(pool, M, x, H, p, b, M3_GEMM_BIAS, NULL, 0, c, n);
            else
                m3_gemm_pairs(pool, M, xp, H / 2, p, b, M3_GEMM_BIAS, NULL, 0, c, n);
            double dt = now() - t0;
            if (reps >= 2)
                total += dt;
            if (reps >= 2 && dt < best[way])
                best[way] = dt;
            reps++;
        }
        for (int way = 0; way < 2; way++) {
            double gflops = 2.0 * M * H * (double)n / best[way] / 1e9;
            printf("  bf16 m=%d k=%d n=%4zu  A %-13s %7.1f GFLOP/s  %5.1f%% of peak  (%.3f ms best of "
                   "%d)\n",
                   M, H, n, way ? "as pairs" : "fp32", gflops, peak > 0 ? 100 * gflops / peak : 0,
                   best[way] * 1e3, reps / 2);
        }
        m3_packed_matrix_free(p);
    }
    free(x);
    free(c);
    free(w);
    free(b);
    free(xp);
}

static void bench_ffn_pairs(m3_threadpool *pool, double seconds, double peak) {
    enum { M = 2048, H = 1024, F = 4096 };
    float *x = malloc((size_t)M * H * sizeof *x), *mid = malloc((size_t)M * F * sizeof *mid);
    float *w1 = malloc((size_t)F * H * sizeof *w1), *w2 = malloc((size_t)H * F * sizeof *w2);
    float *b1 = calloc(F, sizeof *b1), *b2 = calloc(H, sizeof *b2);
    fill(x, (size_t)M * H, 7919, 0.5f);
    fill(w1, (size_t)F * H, 104729, 0.05f);
    fill(w2, (size_t)H * F, 15485863, 0.05f);
    m3_tensor t1 = {.name = "w1", .dtype = M3_DTYPE_F32, .ndim = 2, .shape = {F, H},
                    .strides = {H, 1}, .data = w1};
    m3_tensor t2 = {.name = "w2", .dtype = M3_DTYPE_F32, .ndim = 2, .shape = {H, F},
                    .strides = {F, 1}, .data = w2};
    m3_packed_matrix *p1, *p2;
    m3_error err = {0};
    if (m3_packed_matrix_new_as(&t1, M3_GEMM_BF16, &p1, &err) ||
        m3_packed_matrix_new_as(&t2, M3_GEMM_BF16, &p2, &err)) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    uint32_t *xp = malloc((size_t)M * H / 2 * sizeof *xp);  // x as pairs, made outside the timing
    double best[3] = {1e30, 1e30, 1e30}, total = 0;
    int reps = 0;
    while (total < 3 * seconds || reps < 9) {
        int way = reps % 3;
        if (way == 2)
            m3_gemm_rows_to_pairs(p1, x, H, M, H, xp, H / 2);
        double t0 = now();
        if (way == 0) {
            m3_gemm(pool, M, x, H, p1, b1, M3_GEMM_BIAS_GELU, NULL, 0, mid, F);
            m3_gemm(pool, M, mid, F, p2, b2, M3_GEMM_BIAS_RESIDUAL, x, H, x, H);
        } else {
            if (way == 1)
                m3_gemm_to_pairs(pool, M, x, H, p1, b1, M3_GEMM_BIAS_GELU, (uint32_t *)mid, F / 2);
            else
                m3_gemm_pairs_to_pairs(pool, M, xp, H / 2, p1, b1, M3_GEMM_BIAS_GELU,
                                       (uint32_t *)mid, F / 2);
            m3_gemm_pairs(pool, M, (const uint32_t *)mid, F / 2, p2, b2, M3_GEMM_BIAS_RESIDUAL, x,
                          H, x, H);
        }
        double dt = now() - t0;
        if (reps >= 3)  // the first of each way warms up
            total += dt;
        if (reps >= 3 && dt < best[way])
            best[way] = dt;
        reps++;
    }
    static const char *const ways[] = {"fp32 between", "pairs between", "pairs in, between"};
    for (int way = 0; way < 3; way++) {
        double gflops = 4.0 * M * H * F / best[way] / 1e9;
        printf("  bf16 ffn pair m=%d h=%d f=%d  %-18s %7.1f GFLOP/s  %5.1f%% of peak  (%.3f ms best of "
               "%d)\n",
               M, H, F, ways[way], gflops, peak > 0 ? 100 * gflops / peak : 0, best[way] * 1e3,
               reps / 3);
    }
    free(xp);
    m3_packed_matrix_free(p1);
    m3_packed_matrix_free(p2);
    free(x);
    free(mid);
    free(w1);
    free(w2);
    free(b1);
    free(b2);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    long stream_rows = argc > 3 ? atol(argv[3]) : 16;
    bool only_stream = argc > 4 && strcmp(argv[4], "only") == 0;
    if (stream_rows < 1 || stream_rows > 65536) {
        fprintf(stderr, "bench-gemm: stream rows must be 1..65536, not '%s'\n", argv[3]);
        return 2;
    }
    size_t stream_m = (size_t)stream_rows;
    m3_gemm_precision precisions[3];
    size_t np = 0;
    char list[64];
    snprintf(list, sizeof list, "%s", argc > 2 ? argv[2] : "fp32");
    for (char *save = NULL, *w = strtok_r(list, ",", &save); w && np < 3;
         w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "fp32") && strcmp(w, "bf16") && strcmp(w, "int8")) {
            fprintf(stderr, "bench-gemm: unknown precision '%s' (fp32, bf16, int8)\n", w);
            return 2;
        }
        precisions[np++] = strcmp(w, "bf16") == 0   ? M3_GEMM_BF16
                           : strcmp(w, "int8") == 0 ? M3_GEMM_INT8
                                                    : M3_GEMM_FP32;
    }
    static const struct { size_t m, k, n; const char *what; } shapes[] = {
        {2048, 1024, 1024, "qkv/out proj"}, {2048, 1024, 4096, "ffn in (gelu)"},
        {2048, 4096, 1024, "ffn out (resid)"}, {16, 1024, 1024, "query proj"},
        {16, 1024, 4096, "query ffn in"}, {16, 4096, 1024, "query ffn out"},
    };
    for (size_t pi = 0; pi < np; pi++)
        printf("%s kernel: %s\n", precision_name(precisions[pi]),
               m3_gemm_kernel_name_for(precisions[pi]));
    int stream_threads = only_stream && argc > 5 ? atoi(argv[5]) : 2;
    if (stream_threads < 1 || stream_threads > 64) {
        fprintf(stderr, "bench-gemm: threads must be 1..64, not '%s'\n", argv[5]);
        return 2;
    }
    for (int threads = only_stream ? stream_threads : 1; threads <= (only_stream ? stream_threads : 2);
         threads++) {
        m3_threadpool *pool;
        m3_error err = {0};
        if (m3_threadpool_new(threads, &pool, &err) != M3_STATUS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double peak[3];
        for (size_t pi = 0; pi < np; pi++) {
            peak[pi] = measure_peak(pool, precisions[pi]);
            if (peak[pi] > 0)
                printf("threads %d: measured %s peak %.1f G(FL)OP/s\n", threads,
                       peak_for(precisions[pi]).name, peak[pi]);
            else
                printf("threads %d: no single-instruction peak for kernel %s\n", threads,
                       peak_for(precisions[pi]).name);
        }
        for (size_t s = 0; !only_stream && s < sizeof shapes / sizeof *shapes; s++) {
            size_t m = shapes[s].m, k = shapes[s].k, n = shapes[s].n;
            float *a = malloc(m * k * sizeof *a), *w = malloc(n * k * sizeof *w);
            float *bias = malloc(n * sizeof *bias), *c = malloc(m * n * sizeof *c);
            fill(a, m * k, 7919, 0.5f);
            fill(w, n * k, 104729, 0.5f);
            for (size_t i = 0; i < n; i++)
                bias[i] = 0.01f;
            for (size_t i = 0; i < m * n; i++)
                c[i] = 0.0f;
            m3_tensor t = {.name = "w", .dtype = M3_DTYPE_F32, .ndim = 2,
                           .shape = {(int64_t)n, (int64_t)k}, .strides = {(int64_t)k, 1}, .data = w};
            m3_gemm_epilogue epi = strstr(shapes[s].what, "gelu")    ? M3_GEMM_BIAS_GELU
                                   : strstr(shapes[s].what, "resid") ? M3_GEMM_BIAS_RESIDUAL
                                                                     : M3_GEMM_BIAS;
            for (size_t pi = 0; pi < np; pi++) {
                m3_packed_matrix *p;
                if (m3_packed_matrix_new_as(&t, precisions[pi], &p, &err) != M3_STATUS_OK) {
                    fprintf(stderr, "%s\n", err.message);
                    return 1;
                }
                m3_gemm(pool, m, a, k, p, bias, epi, c, n, c, n);  // warm up
                double best = 1e30, total = 0;
                int reps = 0;
                while (total < seconds || reps < 3) {
                    double t0 = now();
                    m3_gemm(pool, m, a, k, p, bias, epi, c, n, c, n);
                    double dt = now() - t0;
                    total += dt;
                    reps++;
                    if (dt < best)
                        best = dt;
                }
                double gflops = 2.0 * (double)m * (double)n * (double)k / best / 1e9;
                printf("  %s m=%4zu k=%4zu n=%4zu %-16s %7.1f G(FL)OP/s  %5.1f%% of peak  (%.3f ms "
                       "best of %d)\n",
                       precision_name(precisions[pi]), m, k, n, shapes[s].what, gflops,
                       peak[pi] > 0 ? 100 * gflops / peak[pi] : 0, best * 1e3, reps);
                m3_packed_matrix_free(p);
            }
            free(a);
            free(w);
            free(bias);
            free(c);
        }
        for (size_t pi = 0; pi < np && !only_stream; pi++)
            if (precisions[pi] == M3_GEMM_BF16)
                bench_ffn_pairs(pool, seconds, peak[pi]), bench_a_pairs(pool, seconds, peak[pi]);
        for (size_t pi = 0; pi < np; pi++)
            if (!bench_stream(pool, precisions[pi], stream_m, seconds, peak[pi]))
                return 1;
        m3_threadpool_free(pool);
    }
    return 0;
}
