// SPDX-License-Identifier: MIT
//
// Each Vulkan kernel against a plain C reference in double, on random shapes including odd sizes:
// GEMM with its three epilogues (bias, exact-erf GELU, residual), LayerNorm, and the flash-style
// attention over packed variable-length sequences (boundaries respected, sequences of 1 token,
// lengths that are not multiples of the tile sizes). The GEMM is the one the device gets (the
// NV cooperative-matrix kernel where it has one, which rounds A to fp16 as the reference then does
// too); then everything runs again with descriptor sets instead of push descriptors and the tiled
// GEMM (M3_VULKAN_DESCRIPTORS=sets, M3_VULKAN_COOPMAT=0). Skips (77) when no Vulkan device exists.
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/vulkan/ops.h"
#include "model/tensor.h"

static int failures, checks;

#define CHECK(cond, ...)                                \
    do {                                                \
        checks++;                                       \
        if (!(cond)) {                                  \
            failures++;                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

static uint64_t rng = 88172645463325252ull;

static float frand(void)  // uniform in [-1, 1)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_vec(size_t n, float scale)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = frand() * scale;
    return v;
}

// Largest |a - b| / (1 + |b|).
static double max_rel(const float *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (1.0 + fabs(b[i]));
        if (!(e <= m))
            m = isnan(e) ? INFINITY : e;
    }
    return m;
}

static void test_gemm(m3_vk_device *d, const m3_vk_kernels *k, size_t m, size_t n, size_t kk,
                      m3_vk_epilogue ep)
{
    float *a = rand_vec(m * kk, 1.0f), *w = rand_vec(n * kk, 0.5f), *b = rand_vec(n, 1.0f);
    float *r = rand_vec(m * n, 1.0f), *c = calloc(m * n + 1, sizeof *c);
    double *ref = calloc(m * n + 1, sizeof *ref);
    for (size_t i = 0; i < n * kk; i++)
        w[i] = m3_f16_to_f32(m3_f32_to_f16(w[i]));  // the kernel stores weights as fp16
    if (k->coop)  // and the cooperative-matrix kernel stages A as fp16
        for (size_t i = 0; i < m * kk; i++)
            a[i] = m3_f16_to_f32(m3_f32_to_f16(a[i]));
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = b[j];
            for (size_t q = 0; q < kk; q++)
                s += (double)a[i * kk + q] * w[j * kk + q];
            if (ep == M3_VK_BIAS_GELU)
                s = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
            else if (ep == M3_VK_BIAS_RESIDUAL)
                s += r[i * n + j];
            ref[i * n + j] = s;
        }
    m3_error err = {0};
    m3_status st = m3_vk_test_gemm(d, k, m, n, kk, a, w, b, r, ep, c, &err);
    CHECK(st == M3_STATUS_OK, "gemm %zux%zux%zu: %s", m, n, kk, err.message);
    double e = max_rel(c, ref, m * n);
    CHECK(e < 2e-5 * sqrt((double)kk + 1), "gemm %zux%zux%zu epilogue %d: error %.3g", m, n, kk,
          (int)ep, e);
    free(a);
    free(w);
    free(b);
    free(r);
    free(c);
    free(ref);
}

static void test_layernorm(m3_vk_device *d, const m3_vk_kernels *k, size_t rows, size_t h)
{
    float *x = rand_vec(rows * h, 3.0f), *g = rand_vec(h, 1.0f), *b = rand_vec(h, 1.0f);
    double *ref = malloc(rows * h * sizeof *ref);
    for (size_t i = 0; i < rows * h; i++)
        x[i] += 5.0f;  // a large mean: the two-pass variance must not cancel
    for (size_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < h; i++)
            mean += x[r * h + i];
        mean /= (double)h;
        for (size_t i = 0; i < h; i++)
            var += (x[r * h + i] - mean) * (x[r * h + i] - mean);
        double inv = 1.0 / sqrt(var / (double)h + 1e-5);
        for (size_t i = 0; i < h; i++)
            ref[r * h + i] = (x[r * h + i] - mean) * inv * g[i] + b[i];
    }
    m3_error err = {0};
    m3_status st = m3_vk_test_layernorm(d, k, rows, h, x, g, b, 1e-5f, &err);
    CHECK(st == M3_STATUS_OK, "layernorm: %s", err.message);
    double e = max_rel(x, ref, rows * h);
    CHECK(e < 1e-5, "layernorm %zux%zu: error %.3g", rows, h, e);
    free(x);
    free(g);
    free(b);
    free(ref);
}

static void test_attention(m3_vk_device *d, const m3_vk_kernels *k, const size_t *lens, size_t n,
                           size_t heads)
{
    size_t dh = k->head_dim, hid = heads * dh;
    size_t *off = malloc((n + 1) * sizeof *off);
    off[0] = 0;
    for (size_t s = 0; s < n; s++)
        off[s + 1] = off[s] + lens[s];
    size_t t = off[n];
    float *qkv = rand_vec(t * 3 * hid, 2.0f), *out = calloc(t * hid, sizeof *out);
    double *ref = calloc(t * hid, sizeof *ref);
    double *p = malloc(t * sizeof *p);
    double scale = 1.0 / sqrt((double)dh);
    for (size_t s = 0; s < n; s++)
        for (size_t hh = 0; hh < heads; hh++)
            for (size_t i = off[s]; i < off[s + 1]; i++) {
                const float *q = qkv + i * 3 * hid + hh * dh;
                double mx = -INFINITY, sum = 0;
                for (size_t j = off[s]; j < off[s + 1]; j++) {
                    const float *kv = qkv + j * 3 * hid + hid + hh * dh;
                    double dot = 0;
                    for (size_t x = 0; x < dh; x++)
                        dot += (double)q[x] * kv[x];
                    p[j] = dot * scale;
                    mx = fmax(mx, p[j]);
                }
                for (size_t j = off[s]; j < off[s + 1]; j++)
                    sum += (p[j] = exp(p[j] - mx));
                for (size_t x = 0; x < dh; x++) {
                    double o = 0;
                    for (size_t j = off[s]; j < off[s + 1]; j++)
                        o += p[j] * qkv[j * 3 * hid + 2 * hid + hh * dh + x];
                    ref[i * hid + hh * dh + x] = o / sum;
                }
            }
    m3_error err = {0};
    m3_status st = m3_vk_test_attention(d, k, off, n, heads, qkv, out, &err);
    CHECK(st == M3_STATUS_OK, "attention: %s", err.message);
    double e = max_rel(out, ref, t * hid);
    CHECK(e < 2e-5, "attention d%zu, %zu sequences, %zu tokens, %zu heads: error %.3g", dh, n, t,
          heads, e);
    printf("attention d%zu, %zu seqs, %zu tokens: max rel error %.3g\n", dh, n, t, e);
    free(off);
    free(qkv);
    free(out);
    free(ref);
    free(p);
}

// Every kernel on a device opened with the current environment.
static int run_all(void)
{
    m3_error err = {0};
    m3_vk_device *d;
    m3_status st = m3_vk_device_open(&d, 0, &err);
    if (st == M3_STATUS_DEVICE) {
        printf("SKIP: no Vulkan device: %s\n", err.message);
        return 77;
    }
    if (st != M3_STATUS_OK) {
        printf("FAIL: m3_vk_device_open: %s\n", err.message);
        return 1;
    }
    printf("device: %s, storage range %llu MiB, %s, cooperative matrix: %s%s\n",
           d->props.deviceName, (unsigned long long)(d->max_range >> 20),
           d->use_push ? "push descriptors" : "descriptor sets", d->coopmat.m ? "yes" : "no, ",
           d->coopmat.m ? "" : d->coopmat_why);

    m3_vk_kernels k64, k24;
    st = m3_vk_kernels_new(d, 64, &k64, &err);
    CHECK(st == M3_STATUS_OK, "kernels d64: %s", err.message);
    st = m3_vk_kernels_new(d, 24, &k24, &err);
    CHECK(st == M3_STATUS_OK, "kernels d24: %s", err.message);
    m3_vk_kernels bad;
    CHECK(m3_vk_kernels_new(d, 20, &bad, &err) == M3_STATUS_UNSUPPORTED, "head size 20 refused");
    printf("kernels: %s\n", k64.name);

    static const size_t shapes[][3] = {
        {1, 1, 1}, {1, 3, 2}, {7, 5, 3}, {37, 53, 29}, {64, 64, 64}, {65, 129, 17},
        {130, 70, 257}, {3, 200, 1024}, {300, 96, 128}, {20, 40, 4096},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int ep = 0; ep < 3; ep++)
            test_gemm(d, &k64, shapes[i][0], shapes[i][1], shapes[i][2], (m3_vk_epilogue)ep);

    test_layernorm(d, &k64, 1, 1);
    test_layernorm(d, &k64, 5, 37);
    test_layernorm(d, &k64, 17, 1024);
    test_layernorm(d, &k64, 3, 1000);

    static const size_t one[] = {1};
    static const size_t mixed[] = {3, 1, 17, 40, 16, 33};
    static const size_t longer[] = {300, 5, 129};
    test_attention(d, &k64, one, 1, 1);
    test_attention(d, &k64, mixed, 6, 2);
    test_attention(d, &k64, longer, 3, 3);
    test_attention(d, &k24, mixed, 6, 3);
    // Longer than lavapipe's 65535-loop-iteration limit per invocation would allow for a kernel
    // with rolled inner loops (the bug this guards against appeared from ~3750 tokens).
    static const size_t long_one[] = {4100};
    test_attention(d, &k64, long_one, 1, 1);

    m3_vk_kernels_free(d, &k64);
    m3_vk_kernels_free(d, &k24);
    m3_vk_device_close(d);
    return 0;
}

int main(void)
{
#ifdef __SANITIZE_ADDRESS__
    // Keep lavapipe mapped after the loader's dlclose so that LeakSanitizer can name its frames
    // at exit (tests/encoder/vulkan-lsan.supp suppresses them by library name).
    dlopen("libvulkan_lvp.so", RTLD_LAZY | RTLD_NODELETE);
#endif
    int r = run_all();
    if (r != 0 && failures == 0)
        return r;
    // The fallbacks: descriptor sets, the tiled GEMM.
    setenv("M3_VULKAN_DESCRIPTORS", "sets", 1);
    setenv("M3_VULKAN_COOPMAT", "0", 1);
    run_all();
    printf("%d checks, %d failure(s)\n", checks, failures);
    return failures ? 1 : 0;
}
