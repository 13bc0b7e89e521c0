// SPDX-License-Identifier: MIT
//
// The GEMM against a double-precision reference: every kernel this CPU has (forced through
// M3_GEMM_KERNEL; bf16-amx-model, the AMX kernel with its tile instructions done in C, wherever
// AVX512_BF16 is), fp32, bf16 (whose reference multiplies the bf16-rounded A and W in double) and
// int8 (whose reference quantises A per row and W per column as gemm-private.h specifies and
// multiplies the integers in double; also checked against the unquantised product), odd shapes
// (odd k for the bf16 pairs, k not a multiple of 4 for the int8 groups), all epilogues, strides, a
// residual that aliases C, several k blocks, 1 and 3 threads; bf16's pair forms (m3_gemm_pairs,
// m3_gemm_to_pairs, m3_gemm_pairs_to_pairs, m3_gemm_rows_to_pairs) bit for bit against m3_gemm;
// then erf and GELU of each kernel against libm over a sweep.
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/cpu/gemm.h"
#include "encoder/cpu/gemm-private.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            if (++failures > 20)                                                                   \
                exit(1);                                                                           \
        }                                                                                          \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static float frand(void) {  // uniform in [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static double gelu_ref(double x) {
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

static const float SENTINEL = 1234.5f;

// layout 0: W fp32 [n, k] contiguous; 1: fp32 transposed view (strides {1, n}); 2: bf16.
static float round_bf16(float x) {
    uint32_t bits = (uint32_t)m3_gemm_bf16_round(x) << 16;
    memcpy(&x, &bits, sizeof x);
    return x;
}

// The quantisation of gemm-private.h, written out again: x[0..k) (stride s) to q · scale in out.
static void quantise_ref(const float *x, size_t s, size_t k, double *out) {
    float amax = 0.0f;
    for (size_t kk = 0; kk < k; kk++)
        amax = fmaxf(amax, fabsf(x[kk * s]));
    float inv = amax > 0.0f ? 127.0f / amax : 0.0f, scale = amax / 127.0f;
    for (size_t kk = 0; kk < k; kk++) {
        float y = fminf(fmaxf(x[kk * s] * inv, -127.0f), 127.0f);
        out[kk] = (double)rintf(y) * scale;
    }
}

// bf16: the pair forms against m3_gemm, bit for bit (gemm.h): A given as its bf16 pairs gives C
// exactly, and C stored as pairs is exactly C rounded (c: what m3_gemm wrote, r not aliasing it).
static void check_pairs(m3_threadpool *pool, const m3_packed_matrix *p, size_t m, const float *a,
                        size_t lda, const float *bias, m3_gemm_epilogue epi, const float *r,
                        size_t ldr, const float *c, size_t ldc) {
    const char *kname = m3_packed_matrix_kernel(p)->name;
    size_t n = m3_packed_matrix_rows(p), k = m3_packed_matrix_cols(p);
    size_t lda2 = (k + 1) / 2 + 1, ldo = (n + 1) / 2 + 2;  // a word (two) past each row
    uint32_t *ap = malloc(m * lda2 * sizeof *ap), *out = malloc(m * ldo * sizeof *out);
    float *c2 = malloc(m * ldc * sizeof *c2);
    for (size_t i = 0; i < m; i++)
        for (size_t q = 0; q < lda2; q++)
            ap[i * lda2 + q] = 2 * q >= k ? 0xdeadbeefu  // never read
                               : m3_gemm_bf16_round(a[i * lda + 2 * q]) |
                                     (2 * q + 1 < k ? (uint32_t)m3_gemm_bf16_round(a[i * lda + 2 * q + 1]) << 16 : 0u);
    // m3_gemm_rows_to_pairs: exactly those words, nothing past ceil(k / 2) written.
    uint32_t *ap2 = malloc(m * lda2 * sizeof *ap2);
    for (size_t i = 0; i < m * lda2; i++)
        ap2[i] = 0xdeadbeefu;
    m3_gemm_rows_to_pairs(p, a, lda, m, k, ap2, lda2);
    if (memcmp(ap2, ap, m * lda2 * sizeof *ap) != 0)
        CHECK(0, "%s m=%zu k=%zu: m3_gemm_rows_to_pairs differs from the rounded pairs", kname, m, k);
    free(ap2);
    m3_gemm_pairs(pool, m, ap, lda2, p, bias, epi, r, ldr, c2, ldc);
    for (size_t i = 0; i < m; i++)
        if (memcmp(c2 + i * ldc, c + i * ldc, n * sizeof *c) != 0) {
            CHECK(0, "%s m=%zu n=%zu k=%zu epi=%d threads=%d: m3_gemm_pairs row %zu differs from m3_gemm",
                  kname, m, n, k, (int)epi, m3_threadpool_size(pool), i);
            break;
        }
    if (epi != M3_GEMM_BIAS_RESIDUAL) {
        for (size_t i = 0; i < m * ldo; i++)
            out[i] = 0xdeadbeefu;
        m3_gemm_to_pairs(pool, m, a, lda, p, bias, epi, out, ldo);
        for (size_t i = 0; i < m; i++)
            for (size_t q = 0; q < ldo; q++) {
                uint32_t want = 2 * q >= n ? 0xdeadbeefu  // past the row: untouched
                                : m3_gemm_bf16_round(c[i * ldc + 2 * q]) |
                                      (2 * q + 1 < n ? (uint32_t)m3_gemm_bf16_round(c[i * ldc + 2 * q + 1]) << 16 : 0u);
                if (out[i * ldo + q] != want) {
                    CHECK(0, "%s m=%zu n=%zu k=%zu epi=%d threads=%d: m3_gemm_to_pairs word [%zu][%zu] = %08x, want %08x",
                          kname, m, n, k, (int)epi, m3_threadpool_size(pool), i, q, out[i * ldo + q], want);
                    i = m;
                    break;
                }
            }
        // Pairs in and out: the same words as to_pairs from fp32 A (and nothing past the row).
        uint32_t *out2 = malloc(m * ldo * sizeof *out2);
        for (size_t i = 0; i < m * ldo; i++)
            out2[i] = 0xdeadbeefu;
        m3_gemm_pairs_to_pairs(pool, m, ap, lda2, p, bias, epi, out2, ldo);
        if (memcmp(out2, out, m * ldo * sizeof *out) != 0)
            CHECK(0, "%s m=%zu n=%zu k=%zu epi=%d threads=%d: m3_gemm_pairs_to_pairs differs from m3_gemm_to_pairs",
                  kname, m, n, k, (int)epi, m3_threadpool_size(pool));
        free(out2);
    }
    free(ap);
    free(out);
    free(c2);
}

static void check_case(m3_threadpool *pool, const m3_gemm_kernel *kern, size_t m, size_t n,
                       size_t k, m3_gemm_epilogue epi, bool alias, int layout, bool with_bias) {
    const char *kname = kern->name;
    bool bf16 = kern->precision == M3_GEMM_BF16, int8 = kern->precision == M3_GEMM_INT8;
    size_t lda = k + 3, ldc = n + 5, ldr = alias ? ldc : n + 2;
    float *a = malloc(m * lda * sizeof *a);
    float *w = malloc(n * k * sizeof *w);  // logical W[j][kk] = w[j*k + kk]
    float *wstore = malloc(n * k * sizeof *wstore);
    uint16_t *wbf = malloc(n * k * sizeof *wbf);
    float *bias = malloc(n * sizeof *bias);
    float *c = malloc(m * ldc * sizeof *c);
    float *r = alias ? c : malloc(m * ldr * sizeof *r);
    double *ref = malloc(m * n * sizeof *ref);
    for (size_t i = 0; i < m * lda; i++)
        a[i] = frand();
    for (size_t i = 0; i < n * k; i++) {
        w[i] = frand();
        if (layout == 2) {  // round to bf16 so the reference sees the same values
            uint32_t bits;
            memcpy(&bits, &w[i], 4);
            wbf[i] = (uint16_t)(bits >> 16);
            bits &= 0xffff0000u;
            memcpy(&w[i], &bits, 4);
        }
    }
    for (size_t j = 0; j < n; j++)
        bias[j] = frand();
    for (size_t i = 0; i < m * ldc; i++)
        c[i] = SENTINEL;
    bool residual = epi == M3_GEMM_BIAS_RESIDUAL;
    if (residual)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                r[i * ldr + j] = frand();

    m3_tensor t = {.name = "w", .ndim = 2, .shape = {(int64_t)n, (int64_t)k}};
    if (layout == 0) {
        t.dtype = M3_DTYPE_F32;
        t.strides[0] = (int64_t)k;
        t.strides[1] = 1;
        t.data = w;
    } else if (layout == 1) {
        for (size_t j = 0; j < n; j++)
            for (size_t kk = 0; kk < k; kk++)
                wstore[kk * n + j] = w[j * k + kk];
        t.dtype = M3_DTYPE_F32;
        t.strides[0] = 1;
        t.strides[1] = (int64_t)n;
        t.data = wstore;
    } else {
        t.dtype = M3_DTYPE_BF16;
        t.strides[0] = (int64_t)k;
        t.strides[1] = 1;
        t.data = wbf;
    }
    // int8: A quantised per row, W per column, as the packing and the kernels must.
    double *aq = malloc(m * k * sizeof *aq), *wq = malloc(n * k * sizeof *wq);
    double *exact = malloc(m * n * sizeof *exact);
    if (int8) {
        for (size_t i = 0; i < m; i++)
            quantise_ref(a + i * lda, 1, k, aq + i * k);
        for (size_t j = 0; j < n; j++)
            quantise_ref(w + j * k, 1, k, wq + j * k);
    }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = with_bias ? bias[j] : 0.0, e = s;
            for (size_t kk = 0; kk < k; kk++) {
                s += bf16   ? (double)round_bf16(a[i * lda + kk]) * round_bf16(w[j * k + kk])
                     : int8 ? aq[i * k + kk] * wq[j * k + kk]
                            : (double)a[i * lda + kk] * w[j * k + kk];
                if (int8)
                    e += (double)a[i * lda + kk] * w[j * k + kk];
            }
            if (epi == M3_GEMM_BIAS_GELU) {
                s = gelu_ref(s);
                e = gelu_ref(e);
            }
            if (residual) {
                s += r[i * ldr + j];
                e += r[i * ldr + j];
            }
            ref[i * n + j] = s;
            exact[i * n + j] = e;
        }

    m3_error err = {0};
    m3_packed_matrix *p = NULL;
    m3_status st = m3_packed_matrix_new_as(&t, kern->precision, &p, &err);
    CHECK(st == M3_STATUS_OK, "pack: %s", err.message);
    if (st == M3_STATUS_OK) {
        CHECK(m3_packed_matrix_rows(p) == n && m3_packed_matrix_cols(p) == k, "packed shape");
        CHECK(strcmp(m3_packed_matrix_kernel(p)->name, kname) == 0, "packed for %s, not %s",
              m3_packed_matrix_kernel(p)->name, kname);
        m3_gemm(pool, m, a, lda, p, with_bias ? bias : NULL, epi, residual ? r : NULL, ldr, c, ldc);
        double tol = 1e-5 * sqrt((double)k);
        // int8 against the unquantised product: each product errs by up to about half a step of
        // A's and of W's scale (|x| < 1: 1/254 each), random signs, so about sqrt(k) / 100.
        double qtol = 0.02 * sqrt((double)k) + 0.02;
        int bad = 0;
        for (size_t i = 0; int8 && i < m && bad < 3; i++)
            for (size_t j = 0; j < n; j++)
                if (!(fabs(c[i * ldc + j] - exact[i * n + j]) <= qtol)) {
                    CHECK(0, "%s m=%zu n=%zu k=%zu epi=%d: C[%zu][%zu] = %g, unquantised %g", kname,
                          m, n, k, (int)epi, i, j, c[i * ldc + j], exact[i * n + j]);
                    bad++;
                    break;
                }
        for (size_t i = 0; i < m && bad < 3; i++) {
            for (size_t j = 0; j < n; j++) {
                double got = c[i * ldc + j], want = ref[i * n + j];
                if (!(fabs(got - want) <= tol * (1.0 + fabs(want)))) {
                    CHECK(0, "%s m=%zu n=%zu k=%zu epi=%d alias=%d layout=%d threads=%d: C[%zu][%zu] = %g, want %g",
                          kname, m, n, k, (int)epi, (int)alias, layout, m3_threadpool_size(pool), i,
                          j, got, want);
                    bad++;
                    break;
                }
            }
            if (!alias)
                for (size_t j = n; j < ldc; j++)
                    if (c[i * ldc + j] != SENTINEL) {
                        CHECK(0, "%s m=%zu n=%zu k=%zu: wrote past n in row %zu", kname, m, n, k, i);
                        bad++;
                        break;
                    }
        }        if (bf16 && !alias)
            check_pairs(pool, p, m, a, lda, with_bias ? bias : NULL, epi, residual ? r : NULL, ldr,
                        c, ldc);
    }
    m3_packed_matrix_free(p);
    free(aq);
    free(wq);
    free(exact);
    free(a);
    free(w);
    free(wstore);
    free(wbf);
    free(bias);
    if (!alias)
        free(r);
    free(c);
    free(ref);
}

static void check_gelu(const m3_gemm_kernel *kern) {
    enum { N = 400001 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (size_t i = 0; i < N; i++)
        x[i] = -10.0f + 20.0f * (float)i / (N - 1);
    kern->erf(x, y, N);
    double max_erf = 0, at_erf = 0;
    for (size_t i = 0; i < N; i++) {
        double e = fabs((double)y[i] - erf((double)x[i]));
        if (e > max_erf) {
            max_erf = e;
            at_erf = x[i];
        }
    }
    memcpy(y, x, N * sizeof *x);
    kern->gelu(y, N);
    double max_gelu = 0, at_gelu = 0;
    for (size_t i = 0; i < N; i++) {
        double want = gelu_ref(x[i]);
        double e = fabs((double)y[i] - want) / fmax(1.0, fabs((double)x[i]));
        if (e > max_gelu) {
            max_gelu = e;
            at_gelu = x[i];
        }
    }
    // The fp32 result alone rounds by up to 6e-8 near |erf| = 1; libm erff is within 1 ulp.
    printf("%s: erf max abs error %.3g (x = %g), gelu max error / max(1,|x|) %.3g (x = %g)\n",
           kern->name, max_erf, at_erf, max_gelu, at_gelu);
    CHECK(max_erf <= 1.2e-7, "%s erf error %g", kern->name, max_erf);
    CHECK(max_gelu <= 2e-7, "%s gelu error %g", kern->name, max_gelu);
    // Far tails and special values.
    float tails[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 30.0f, -30.0f, 1e6f, -1e6f};
    size_t nt = sizeof tails / sizeof *tails;
    float out[sizeof tails / sizeof *tails];
    kern->erf(tails, out, nt);
    for (size_t i = 0; i < nt; i++)
        CHECK(fabs(out[i] - erf(tails[i])) <= 1e-7, "%s erf(%g) = %g", kern->name, tails[i], out[i]);
    memcpy(out, tails, sizeof out);
    kern->gelu(out, nt);
    for (size_t i = 0; i < nt; i++)
        CHECK(fabs(out[i] - gelu_ref(tails[i])) <= 2e-7 * fmax(1.0, fabs(tails[i])),
              "%s gelu(%g) = %g", kern->name, tails[i], out[i]);
    // +inf stays +inf (an overflowed activation is not turned into NaN), NaN stays NaN.
    float special[2] = {INFINITY, NAN};
    kern->gelu(special, 2);
    CHECK(special[0] == INFINITY && isnan(special[1]), "%s gelu(inf) = %g, gelu(nan) = %g",
          kern->name, special[0], special[1]);
    free(x);
    free(y);
}

// Two threads multiplying at once, each on its own pool, with one packed W: bf16 and int8 convert A
// into a buffer of the calling thread (gemm.c), so their results must be bit for bit those of the
// same calls made one after the other. The threads exit afterwards: under the sanitizer build a
// buffer not freed at thread exit is reported as a leak.
typedef struct concurrent_job {
    const m3_packed_matrix *w;
    size_t m, k, n;
    const float *a;
    float *c;
    int rounds;
    bool ok;
} concurrent_job;

static void *concurrent_run(void *arg) {
    concurrent_job *job = arg;
    m3_threadpool *pool;
    m3_error err = {0};
    job->ok = m3_threadpool_new(2, &pool, &err) == M3_STATUS_OK;
    for (int r = 0; job->ok && r < job->rounds; r++)  // sizes alternate: the buffer grows and is reused
        m3_gemm(pool, r % 2 ? job->m / 3 : job->m, job->a, job->k, job->w, NULL, M3_GEMM_BIAS, NULL,
                0, job->c, job->n);
    if (job->ok)
        m3_threadpool_free(pool);
    return NULL;
}

static void check_concurrent(m3_threadpool *pool, m3_gemm_precision precision) {
    enum { M = 150, K = 300, N = 200 };
    float *w = malloc(sizeof(float) * N * K), *a = malloc(sizeof(float) * 2 * M * K);
    float *want = malloc(sizeof(float) * 2 * M * N), *got = malloc(sizeof(float) * 2 * M * N);
    for (size_t i = 0; i < (size_t)N * K; i++)
        w[i] = frand();
    for (size_t i = 0; i < 2 * (size_t)M * K; i++)
        a[i] = frand();
    m3_tensor t = {.name = "w", .dtype = M3_DTYPE_F32, .ndim = 2, .shape = {N, K}, .strides = {K, 1},
                   .data = w};
    m3_packed_matrix *p = NULL;
    m3_error err = {0};
    CHECK(m3_packed_matrix_new_as(&t, precision, &p, &err) == M3_STATUS_OK, "%s", err.message);
    concurrent_job jobs[2];
    pthread_t threads[2];
    for (int j = 0; p && j < 2; j++) {
        m3_gemm(pool, M, a + j * M * K, K, p, NULL, M3_GEMM_BIAS, NULL, 0, want + j * M * N, N);
        jobs[j] = (concurrent_job){.w = p, .m = M, .k = K, .n = N, .a = a + j * M * K,
                                   .c = got + j * M * N, .rounds = 7};
    }
    for (int j = 0; p && j < 2; j++)
        CHECK(pthread_create(&threads[j], NULL, concurrent_run, &jobs[j]) == 0, "pthread_create");
    for (int j = 0; p && j < 2; j++) {
        pthread_join(threads[j], NULL);
        CHECK(jobs[j].ok, "thread pool for thread %d", j);
        CHECK(memcmp(want + j * M * N, got + j * M * N, sizeof(float) * M * N) == 0,
              "%s: concurrent GEMM %d differs from the same GEMM alone",
              m3_packed_matrix_kernel(p)->name, j);
    }
    // The calling thread's buffer given back (as an encoder freed by a long-lived thread does):
    // the next GEMM on this thread makes a new one and gives the same result.
    m3_gemm_release_scratch();
    m3_gemm_release_scratch();  // twice: nothing left to free
    for (int j = 0; p && j < 2; j++) {
        m3_gemm(pool, M, a + j * M * K, K, p, NULL, M3_GEMM_BIAS, NULL, 0, got + j * M * N, N);
        CHECK(memcmp(want + j * M * N, got + j * M * N, sizeof(float) * M * N) == 0,
              "%s: the GEMM after m3_gemm_release_scratch differs", m3_packed_matrix_kernel(p)->name);
    }
    m3_packed_matrix_free(p);
    free(w);
    free(a);
    free(want);
    free(got);
}

int main(void) {
    static const char *const kernels[] = {"scalar",          "avx2",         "avx512",
                                          "bf16-scalar",     "bf16-avx512",  "bf16-amx",
                                          "bf16-amx-model",  "int8-scalar",  "int8-avx2",
                                          "int8-avxvnni",    "int8-avx512vnni"};
    static const size_t ms[] = {1, 2, 3, 7, 16, 33, 100};
    static const size_t ns[] = {1, 5, 17, 64, 129};
    static const size_t ks[] = {1, 3, 31, 128, 130};
    static const struct { size_t m, n, k; } big[] = {{200, 300, 600}, {17, 1000, 1030}, {129, 33, 2049}};
    m3_error err = {0};
    m3_threadpool *pools[2];
    if (m3_threadpool_new(1, &pools[0], &err) || m3_threadpool_new(3, &pools[1], &err)) {
        fprintf(stderr, "thread pool: %s\n", err.message);
        return 1;
    }
    {   // Invalid weights are refused.
        float one = 1;
        m3_tensor bad = {.name = "b", .dtype = M3_DTYPE_F32, .ndim = 1, .shape = {1}, .strides = {1},
                         .data = &one};
        m3_packed_matrix *p = NULL;
        CHECK(m3_packed_matrix_new(&bad, &p, &err) == M3_STATUS_INVALID && !p, "1-d weight accepted");
    }
    {   // Streamed buffers: aligned (2 MiB from 2 MiB up, outside ASan), every byte writable and
        // readable back, freed; sizes around the huge-page threshold and the small path.
        static const size_t sizes[] = {1, 4096, (2u << 20) - 1, 2u << 20, (2u << 20) + 1, 5u << 20};
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            unsigned char *b = m3_gemm_buffer_alloc(sizes[i]);
            CHECK(b && (uintptr_t)b % 64 == 0, "m3_gemm_buffer_alloc(%zu): %p", sizes[i], (void *)b);
            if (!b)
                continue;
#ifndef __SANITIZE_ADDRESS__
            if (sizes[i] >= 2u << 20)
                CHECK((uintptr_t)b % (2u << 20) == 0, "m3_gemm_buffer_alloc(%zu) not 2 MiB aligned", sizes[i]);
#endif
            for (size_t j = 0; j < sizes[i]; j++)
                b[j] = (unsigned char)(j * 31 + i);
            size_t wrong = 0;
            for (size_t j = 0; j < sizes[i]; j++)
                wrong += b[j] != (unsigned char)(j * 31 + i);
            CHECK(wrong == 0, "m3_gemm_buffer_alloc(%zu): %zu bytes read back wrong", sizes[i], wrong);
            m3_gemm_buffer_free(b);
        }
        m3_gemm_buffer_free(NULL);
    }
    CHECK(fabsf(m3_gelu_erf(1.0f) - 0.8413447461f) < 1e-7f, "m3_gelu_erf(1) = %g", m3_gelu_erf(1.0f));
    int tested = 0;
    for (size_t ki = 0; ki < sizeof kernels / sizeof *kernels; ki++) {
        const char *name = kernels[ki];
        setenv("M3_GEMM_KERNEL", name, 1);
        m3_gemm_precision prec = strncmp(name, "bf16-", 5) == 0   ? M3_GEMM_BF16
                                 : strncmp(name, "int8-", 5) == 0 ? M3_GEMM_INT8
                                                                  : M3_GEMM_FP32;
        const m3_gemm_kernel *kern = m3_gemm_kernel_select_for(prec);
        if (strcmp(kern->name, name) != 0) {
            printf("%s: not available on this CPU, skipped\n", name);
            continue;
        }
        tested++;
        check_gelu(kern);
        int cases = 0;
        for (size_t pi = 0; pi < 2; pi++)
            for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
                for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
                    for (size_t c = 0; c < sizeof ks / sizeof *ks; c++) {
                        int v = (int)(a + b + c + pi);
                        for (int epi = 0; epi < 3; epi++) {
                            bool alias = epi == M3_GEMM_BIAS_RESIDUAL && v % 2;
                            check_case(pools[pi], kern, ms[a], ns[b], ks[c], (m3_gemm_epilogue)epi,
                                       alias, (v + epi) % 3, (v + epi) % 4 != 3);
                            cases++;
                        }
                    }
        for (size_t pi = 0; pi < 2; pi++)
            for (size_t bi = 0; bi < sizeof big / sizeof *big; bi++)
                for (int epi = 0; epi < 3; epi++)
                    for (int alias = 0; alias < 1 + (epi == M3_GEMM_BIAS_RESIDUAL); alias++) {
                        check_case(pools[pi], kern, big[bi].m, big[bi].n, big[bi].k,
                                   (m3_gemm_epilogue)epi, alias, (int)bi % 2, true);
                        cases++;
                    }
        if (prec != M3_GEMM_FP32)
            check_concurrent(pools[1], prec);
        printf("%s: %d cases\n", name, cases);
    }
    unsetenv("M3_GEMM_KERNEL");
    printf("default kernels: %s, %s, %s (bf16 native: %s, int8 native: %s)\n",
           m3_gemm_kernel_name(), m3_gemm_kernel_name_for(M3_GEMM_BF16),
           m3_gemm_kernel_name_for(M3_GEMM_INT8),
           m3_gemm_precision_native(M3_GEMM_BF16) ? "yes" : "no",
           m3_gemm_precision_native(M3_GEMM_INT8) ? "yes" : "no");
    {   // The int8 blob's layout (gemm-private.h), which a model file may store: 5 × 7 W under the
        // default int8 kernel: panels of 4-byte k groups, then the scales, then the sums.
        float w[5 * 7];
        for (int j = 0; j < 5; j++)
            for (int kk = 0; kk < 7; kk++)
                w[j * 7 + kk] = (float)((j + 1) * (kk - 3));  // row j: max |w| = 3 (j + 1)
        m3_tensor t = {.name = "w", .dtype = M3_DTYPE_F32, .ndim = 2, .shape = {5, 7},
                       .strides = {7, 1}, .data = w};
        m3_packed_matrix *p = NULL;
        CHECK(m3_packed_matrix_new_as(&t, M3_GEMM_INT8, &p, &err) == M3_STATUS_OK, "%s", err.message);
        if (p) {
            size_t nr = m3_packed_matrix_kernel(p)->nr, bytes = 0;
            const uint8_t *blob = m3_packed_matrix_data(p, &bytes);
            CHECK(bytes == nr * 8 + nr * 8, "int8 blob of %zu bytes, want %zu", bytes, nr * 16);
            const int8_t *q = (const int8_t *)blob;
            const float *scale = (const float *)(blob + nr * 8);
            const int32_t *sum = (const int32_t *)(scale + nr);
            for (size_t j = 0; j < nr; j++)
                for (size_t kk = 0; kk < 8; kk++) {
                    int want = j < 5 && kk < 7 ? (int)lrint(((double)kk - 3) * 127 / 3) : 0;
                    CHECK(q[(kk / 4 * nr + j) * 4 + kk % 4] == want, "blob W[%zu][%zu] = %d, want %d",
                          j, kk, q[(kk / 4 * nr + j) * 4 + kk % 4], want);
                }
            for (size_t j = 0; j < nr; j++) {
                CHECK(scale[j] == (j < 5 ? 3.0f * (float)(j + 1) / 127.0f : 0.0f), "scale[%zu] = %g",
                      j, scale[j]);
                CHECK(sum[j] == 0, "sum[%zu] = %d", j, sum[j]);  // -127 -85 -42 0 42 85 127
            }
        }
        m3_packed_matrix_free(p);
    }
    {   // int8 refuses a k whose int32 sums could overflow.
        m3_tensor wide = {.name = "wide", .dtype = M3_DTYPE_F32, .ndim = 2,
                          .shape = {1, M3_GEMM_INT8_K_MAX + 1}, .strides = {M3_GEMM_INT8_K_MAX + 1, 1},
                          .data = NULL};
        m3_packed_matrix *p = NULL;
        CHECK(m3_packed_matrix_new_as(&wide, M3_GEMM_INT8, &p, &err) == M3_STATUS_INVALID && !p &&
                  strstr(err.message, "wide"),
              "int8 k > max accepted: %s", err.message);
    }
    {   // A denormal rounds to a zero of its sign (as VCVTNE2PS2BF16), ties to even, NaN stays NaN.
        float tiny = 1e-40f, nan = NAN;
        CHECK(m3_gemm_bf16_round(tiny) == 0 && m3_gemm_bf16_round(-tiny) == 0x8000, "denormal");
        CHECK(m3_gemm_bf16_round(1.00390625f) == 0x3f80, "tie to even (down)");
        CHECK(m3_gemm_bf16_round(1.01171875f) == 0x3f82, "tie to even (up)");
        CHECK((m3_gemm_bf16_round(nan) & 0x7fc0) == 0x7fc0, "NaN");
    }
    m3_threadpool_free(pools[0]);
    m3_threadpool_free(pools[1]);
    CHECK(tested > 0, "no kernel tested");
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
