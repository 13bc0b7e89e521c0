// SPDX-License-Identifier: MIT
//
// The Vulkan backend's cache of recorded forward passes, and its two descriptor paths, on a random
// model of odd shape (hidden 96, 3 heads of 32, FFN 200), through the backend interface so that
// the raw outputs can be compared bit for bit:
//  1. the same inputs twice: the second pass replays the recording and gives identical bits;
//  2. other inputs of the same padded shape (other lengths, other ids): replayed, and identical to
//     a fresh recording of the same inputs;
//  3. more shapes than the LRU holds: evictions, at most 8 recordings kept, and a shape recorded
//     again after its eviction gives the first bits;
//  4. a pass larger than the activations: they grow, every recording is dropped, and the earlier
//     shapes still give their first bits (no recording may point at freed buffers);
//  5. another output mask is another recording, with the same bits for what both compute;
//  6. descriptor sets (M3_VULKAN_DESCRIPTORS=sets) give the same bits as push descriptors;
//  7. the "auto" backend is Vulkan exactly when a non-CPU Vulkan device exists (never lavapipe).
// Skips (77) when no Vulkan device exists.
//
// `test-vulkan-replay --bge-m3` is not a test: it measures, on the BGE-M3 shape with random
// weights, what recording costs next to running (1 × 16 tokens), fresh and replayed.
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoder/backend.h"
#include "encoder/vulkan/vk.h"
#include "encoder/vulkan/vulkan-backend.h"

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

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// The raw outputs of one pass: cls [n][h], sparse [T], colbert [T - n][h] (sequence after
// sequence).
typedef struct result {
    size_t n, tokens, h;
    float *cls, *sparse, *colbert;
} result;

static void result_clear(result *r)
{
    free(r->cls);
    free(r->sparse);
    free(r->colbert);
    memset(r, 0, sizeof *r);
}

// Runs sequences of the given lengths with ids from seed through the backend.
static m3_status run(m3_backend *be, size_t h, int vocab, const size_t *lens, size_t n,
                     uint64_t seed, unsigned outputs, result *r, m3_error *err)
{
    size_t total = 0;
    for (size_t s = 0; s < n; s++)
        total += lens[s];
    *r = (result){.n = n, .tokens = total, .h = h};
    r->cls = calloc(n * h, sizeof(float));
    r->sparse = calloc(total, sizeof(float));
    r->colbert = calloc((total - n) * h + 1, sizeof(float));
    int32_t *ids = malloc(total * sizeof *ids);
    m3_sequence *seqs = malloc(n * sizeof *seqs);
    float **cls = malloc(n * sizeof *cls), **col = malloc(n * sizeof *col);
    size_t at = 0, col_at = 0;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t s = 0; s < n; s++) {
        for (size_t i = 0; i < lens[s]; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            ids[at + i] = i == 0 ? 0 : (int32_t)((x >> 33) % (uint64_t)vocab);
        }
        seqs[s] = (m3_sequence){ids + at, lens[s]};
        cls[s] = r->cls + s * h;
        col[s] = r->colbert + col_at * h;
        at += lens[s];
        col_at += lens[s] - 1;
    }
    m3_backend_batch b = {
        .seqs = seqs, .n = n, .outputs = outputs, .cls = cls, .sparse = r->sparse, .colbert = col,
    };
    m3_status st = be->encode(be, &b, err);
    free(ids);
    free(seqs);
    free(cls);
    free(col);
    return st;
}

static bool same_bits(const result *a, const result *b, unsigned outputs)
{
    if (a->n != b->n || a->tokens != b->tokens)
        return false;
    bool ok = true;
    if (outputs & M3_OUTPUT_DENSE)
        ok = ok && memcmp(a->cls, b->cls, a->n * a->h * sizeof(float)) == 0;
    if (outputs & M3_OUTPUT_SPARSE)
        ok = ok && memcmp(a->sparse, b->sparse, a->tokens * sizeof(float)) == 0;
    if (outputs & M3_OUTPUT_COLBERT)
        ok = ok && memcmp(a->colbert, b->colbert, (a->tokens - a->n) * a->h * sizeof(float)) == 0;
    return ok;
}

static bool all_finite(const result *r)
{
    for (size_t i = 0; i < r->n * r->h; i++)
        if (!isfinite(r->cls[i]))
            return false;
    for (size_t i = 0; i < (r->tokens - r->n) * r->h; i++)
        if (!isfinite(r->colbert[i]))
            return false;
    return true;
}

static m3_status make_backend(const m3_model *model, m3_backend **be, m3_error *err)
{
    m3_encoder_options opt = m3_encoder_options_default();
    opt.backend = "vulkan";
    return m3_vulkan_backend_new(model, &opt, be, err);
}

static int cache_tests(void)
{
    m3_model_config cfg = m3_model_config_bge_m3();
    cfg.hidden = 96;
    cfg.heads = 3;
    cfg.layers = 2;
    cfg.intermediate = 200;
    cfg.vocab = 1001;
    const size_t h = (size_t)cfg.hidden;
    m3_model *model;
    m3_error err = {0};
    if (m3_model_new_random(&cfg, 11, &model, &err) != M3_STATUS_OK) {
        printf("FAIL: random model: %s\n", err.message);
        return 1;
    }
    m3_backend *be;
    m3_status st = make_backend(model, &be, &err);
    if (st == M3_STATUS_DEVICE) {
        printf("SKIP: %s\n", err.message);
        m3_model_close(model);
        return 77;
    }
    if (st != M3_STATUS_OK) {
        printf("FAIL: m3_vulkan_backend_new: %s\n", err.message);
        m3_model_close(model);
        return 1;
    }
    printf("backend: %s\n", be->kernel_name(be));
    const size_t max = be->max_tokens;
    CHECK(m3_vulkan_padded_tokens(1, max) == 16 && m3_vulkan_padded_tokens(16, max) == 16 &&
              m3_vulkan_padded_tokens(17, max) == 32 && m3_vulkan_padded_tokens(257, max) == 288 &&
              m3_vulkan_padded_tokens(4097, max) == 4608 &&
              m3_vulkan_padded_tokens(8192, max) == 8192,
          "padded token counts");
    for (size_t t = 1; t <= max; t += 37) {
        size_t p = m3_vulkan_padded_tokens(t, max);
        CHECK(p >= t && p <= max && (t <= 256 || (double)p <= 1.125 * (double)t + 1e-9),
              "padding of %zu tokens: %zu", t, p);
    }

    const unsigned all = M3_OUTPUT_ALL;
    m3_vulkan_stats s0, s1;
    static const size_t a_lens[] = {5, 11};       // 16 tokens
    static const size_t b_lens[] = {3, 9, 4};     // 16 tokens, another packing
    static const size_t c_lens[] = {7, 2};        // 9 tokens, padded to the same 16
    result a1, a2, b_replay, b_fresh, c_replay, c_fresh;

    // 1. The same inputs twice.
    double t0 = seconds();
    st = run(be, h, cfg.vocab, a_lens, 2, 1, all, &a1, &err);
    double t1 = seconds();
    CHECK(st == M3_STATUS_OK, "a: %s", err.message);
    m3_vulkan_backend_get_stats(be, &s0);
    st = run(be, h, cfg.vocab, a_lens, 2, 1, all, &a2, &err);
    double t2 = seconds();
    CHECK(st == M3_STATUS_OK, "a again: %s", err.message);
    m3_vulkan_backend_get_stats(be, &s1);
    CHECK(s0.recordings == 1 && s0.replays == 0 && s1.recordings == 1 && s1.replays == 1,
          "first pass recorded, second replayed (%zu/%zu, %zu/%zu)", s0.recordings, s0.replays,
          s1.recordings, s1.replays);
    CHECK(all_finite(&a1), "finite outputs");
    CHECK(same_bits(&a1, &a2, all), "replay of the same inputs: other bits");
    result_clear(&a2);
    printf("1x16 on the small model: first pass %.2f ms (recording %.3f ms), replay %.2f ms\n",
           1e3 * (t1 - t0), 1e3 * s0.record_seconds, 1e3 * (t2 - t1));

    // 2. Other packings of the same padded shape: replayed, and identical to fresh recordings.
    st = run(be, h, cfg.vocab, b_lens, 3, 2, all, &b_replay, &err);
    CHECK(st == M3_STATUS_OK, "b: %s", err.message);
    st = run(be, h, cfg.vocab, c_lens, 2, 3, all, &c_replay, &err);
    CHECK(st == M3_STATUS_OK, "c: %s", err.message);
    m3_vulkan_backend_get_stats(be, &s1);
    CHECK(s1.recordings == 1 && s1.replays == 3, "b and c replayed the 16-token recording");
    m3_vulkan_backend_drop_plans(be);
    st = run(be, h, cfg.vocab, b_lens, 3, 2, all, &b_fresh, &err);
    CHECK(st == M3_STATUS_OK, "b fresh: %s", err.message);
    m3_vulkan_backend_drop_plans(be);
    st = run(be, h, cfg.vocab, c_lens, 2, 3, all, &c_fresh, &err);
    CHECK(st == M3_STATUS_OK, "c fresh: %s", err.message);
    m3_vulkan_backend_get_stats(be, &s1);
    CHECK(s1.recordings == 3, "fresh recordings after dropping the cache");
    CHECK(same_bits(&b_replay, &b_fresh, all), "b: replay and fresh recording differ");
    CHECK(same_bits(&c_replay, &c_fresh, all), "c: replay and fresh recording differ");
    CHECK(!same_bits(&a1, &b_replay, M3_OUTPUT_DENSE), "other inputs, other outputs");

    // 3. More shapes than the LRU holds (16, 32, ..., 160 tokens: ten recordings), once the
    // activations are large enough for all of them (growing them drops every recording).
    static const size_t warm_lens[] = {128, 128};
    result warm;
    st = run(be, h, cfg.vocab, warm_lens, 2, 99, all, &warm, &err);
    CHECK(st == M3_STATUS_OK, "256 tokens: %s", err.message);
    result_clear(&warm);
    m3_vulkan_backend_get_stats(be, &s0);
    result first[10];
    for (size_t i = 0; i < 10; i++) {
        size_t lens[2] = {8 * (i + 1), 8 * (i + 1)};
        st = run(be, h, cfg.vocab, lens, 2, 100 + i, all, &first[i], &err);
        CHECK(st == M3_STATUS_OK, "lru %zu: %s", i, err.message);
    }
    m3_vulkan_backend_get_stats(be, &s1);
    CHECK(s1.plans == 8 && s1.evictions >= s0.evictions + 2,
          "at most 8 recordings kept (%zu), evictions %zu", s1.plans, s1.evictions);
    for (size_t i = 0; i < 10; i++) {  // the first ones were evicted: recorded again
        size_t lens[2] = {8 * (i + 1), 8 * (i + 1)};
        result again;
        st = run(be, h, cfg.vocab, lens, 2, 100 + i, all, &again, &err);
        CHECK(st == M3_STATUS_OK && same_bits(&first[i], &again, all),
              "lru %zu: again, other bits", i);
        result_clear(&again);
    }

    // 4. A pass beyond the activations' size: they grow, recordings are dropped.
    size_t cap0 = be->activation_bytes(be);
    static const size_t big_lens[] = {300, 301};
    result big;
    st = run(be, h, cfg.vocab, big_lens, 2, 7, all, &big, &err);
    CHECK(st == M3_STATUS_OK, "big: %s", err.message);
    m3_vulkan_backend_get_stats(be, &s1);
    CHECK(be->activation_bytes(be) > cap0 && s1.plans == 1,
          "activations grew (%zu -> %zu bytes) and only the new recording is left (%zu)", cap0,
          be->activation_bytes(be), s1.plans);
    st = run(be, h, cfg.vocab, a_lens, 2, 1, all, &a2, &err);
    CHECK(st == M3_STATUS_OK && same_bits(&a1, &a2, all), "a after the growth: other bits");
    result_clear(&a2);

    // 5. Dense only: its own recording, the same dense bits.
    m3_vulkan_backend_get_stats(be, &s0);
    st = run(be, h, cfg.vocab, a_lens, 2, 1, M3_OUTPUT_DENSE, &a2, &err);
    m3_vulkan_backend_get_stats(be, &s1);
    CHECK(st == M3_STATUS_OK && s1.recordings == s0.recordings + 1, "dense only: recorded");
    CHECK(same_bits(&a1, &a2, M3_OUTPUT_DENSE), "dense only: other dense bits");
    result_clear(&a2);

    // 6. Descriptor sets instead of push descriptors: the same bits.
    bool pushed = strstr(be->kernel_name(be), "push descriptors") != NULL;
    setenv("M3_VULKAN_DESCRIPTORS", "sets", 1);
    m3_backend *be2;
    st = make_backend(model, &be2, &err);
    unsetenv("M3_VULKAN_DESCRIPTORS");
    CHECK(st == M3_STATUS_OK, "backend with descriptor sets: %s", err.message);
    if (st == M3_STATUS_OK) {
        printf("backend: %s\n", be2->kernel_name(be2));
        CHECK(strstr(be2->kernel_name(be2), "descriptor sets") != NULL, "descriptor sets in use");
        result x;
        st = run(be2, h, cfg.vocab, a_lens, 2, 1, all, &x, &err);
        CHECK(st == M3_STATUS_OK && same_bits(&a1, &x, all), "sets vs push: a differs");
        result_clear(&x);
        st = run(be2, h, cfg.vocab, b_lens, 3, 2, all, &x, &err);  // replayed on be2
        CHECK(st == M3_STATUS_OK && same_bits(&b_fresh, &x, all), "sets vs push: b differs");
        result_clear(&x);
        st = run(be2, h, cfg.vocab, big_lens, 2, 7, all, &x, &err);
        CHECK(st == M3_STATUS_OK && same_bits(&big, &x, all), "sets vs push: big differs");
        result_clear(&x);
        m3_vulkan_backend_get_stats(be2, &s1);
        CHECK(s1.replays == 1, "descriptor sets: replayed (%zu)", s1.replays);
        be2->free(be2);
    }
    printf("push descriptors on this device: %s\n", pushed ? "yes" : "no (both runs used sets)");

    // 7. "auto": Vulkan only on a GPU.
    m3_vk_device *gpu = NULL;
    m3_error gerr = {0};
    bool has_gpu = m3_vk_device_open(&gpu, M3_VK_GPU_ONLY, &gerr) == M3_STATUS_OK;
    m3_vk_device_close(gpu);
    m3_encoder_options ao = m3_encoder_options_default();
    ao.backend = "auto";
    m3_encoder *ae;
    st = m3_encoder_new(model, &ao, &ae, &err);
    CHECK(st == M3_STATUS_OK, "auto: %s", err.message);
    if (st == M3_STATUS_OK) {
        const char *name = m3_encoder_backend_name(ae);
        printf("auto: %s (%s)\n", name, has_gpu ? "a GPU is there" : gerr.message);
        CHECK(strcmp(name, has_gpu ? "vulkan" : "cpu") == 0, "auto chose %s", name);
        m3_encoder_free(ae);
    }

    for (size_t i = 0; i < 10; i++)
        result_clear(&first[i]);
    result_clear(&a1);
    result_clear(&b_replay);
    result_clear(&b_fresh);
    result_clear(&c_replay);
    result_clear(&c_fresh);
    result_clear(&big);
    be->free(be);
    m3_model_close(model);
    printf("%d checks, %d failure(s)\n", checks, failures);
    return failures ? 1 : 0;
}

// Recording vs running on the BGE-M3 shape, 1 × 16 tokens.
static int measure_bge_m3(void)
{
    m3_model_config cfg = m3_model_config_bge_m3();
    m3_model *model;
    m3_error err = {0};
    if (m3_model_new_random(&cfg, 42, &model, &err) != M3_STATUS_OK) {
        printf("random model: %s\n", err.message);
        return 1;
    }
    m3_backend *be;
    if (make_backend(model, &be, &err) != M3_STATUS_OK) {
        printf("vulkan: %s\n", err.message);
        m3_model_close(model);
        return err.status == M3_STATUS_DEVICE ? 77 : 1;
    }
    printf("backend: %s\n", be->kernel_name(be));
    static const size_t lens[] = {16};
    m3_vulkan_stats s;
    result r;
    for (int i = 0; i < 3; i++) {
        if (i == 2)
            m3_vulkan_backend_drop_plans(be);  // a fresh recording again, caches warm
        m3_vulkan_stats before;
        m3_vulkan_backend_get_stats(be, &before);
        double t0 = seconds();
        if (run(be, (size_t)cfg.hidden, cfg.vocab, lens, 1, 1, M3_OUTPUT_ALL, &r, &err)) {
            printf("encode: %s\n", err.message);
            break;
        }
        double dt = seconds() - t0;
        m3_vulkan_backend_get_stats(be, &s);
        printf("1x16 %s: %.1f ms in all, recording %.3f ms, submit-to-fence %.1f ms, host %.2f ms\n",
               s.recordings > before.recordings ? "recorded" : "replayed", 1e3 * dt,
               1e3 * (s.record_seconds - before.record_seconds),
               1e3 * (s.run_seconds - before.run_seconds),
               1e3 * (s.host_seconds - before.host_seconds));
        result_clear(&r);
    }
    be->free(be);
    m3_model_close(model);
    return 0;
}

int main(int argc, char **argv)
{
#ifdef __SANITIZE_ADDRESS__
    // Keep lavapipe mapped after the loader's dlclose so that LeakSanitizer can name its frames
    // at exit (tests/encoder/vulkan-lsan.supp suppresses them by library name).
    dlopen("libvulkan_lvp.so", RTLD_LAZY | RTLD_NODELETE);
#endif
    if (argc > 1 && strcmp(argv[1], "--bge-m3") == 0)
        return measure_bge_m3();
    return cache_tests();
}
