// SPDX-License-Identifier: MIT
//
// Two CPU encoders on one model (the indexer service's indexing and search paths) share the packed
// weights: the second costs only its scratch memory, both encode at once from two threads with
// the same results as one encoder alone, either can be freed first, and another precision gets
// its own packing. On the BGE-M3 widths with random weights and 2 layers (about 100 MB packed in
// fp32), so that the memory difference is plain.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/encoder.h"
#include "model/model.h"

static int failures;
#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            failures++;                                                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            printf(__VA_ARGS__);                                                          \
            printf("\n");                                                                 \
        }                                                                                 \
    } while (0)

// Resident memory of this process in KiB.
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kib;
}

enum { TOKENS = 48 };
static int32_t ids[TOKENS];

typedef struct job {
    m3_encoder *enc;
    m3_embedding out;
    m3_status st;
} job;

static void *encode_job(void *arg)
{
    job *j = arg;
    m3_sequence seq = {ids, TOKENS};
    j->st = m3_encoder_encode(j->enc, &seq, 1, M3_OUTPUT_ALL, &j->out, NULL);
    return NULL;
}

static bool same(const m3_embedding *a, const m3_embedding *b)
{
    return a->dim == b->dim && !memcmp(a->dense, b->dense, a->dim * sizeof(float)) &&
           a->n_colbert == b->n_colbert && !memcmp(a->colbert, b->colbert, a->n_colbert * a->dim * sizeof(float));
}

int main(void)
{
    m3_model_config cfg = m3_model_config_bge_m3();
    cfg.layers = 2;
    cfg.vocab = 1000;
    m3_model *model = NULL;
    m3_error err = {0};
    if (m3_model_new_random(&cfg, 11, &model, &err) != M3_STATUS_OK) {
        printf("FAIL: random model: %s\n", err.message);
        return 1;
    }
    ids[0] = 0;
    for (int i = 1; i < TOKENS - 1; i++) ids[i] = 5 + (i * 37) % 900;
    ids[TOKENS - 1] = 2;
    m3_encoder_options o = m3_encoder_options_default();
    o.backend = "cpu";
    o.threads = 2;
    o.precision = M3_PRECISION_FP32;
    m3_encoder *a = NULL, *b = NULL, *c = NULL;
    long r0 = rss_kib();
    CHECK(m3_encoder_new(model, &o, &a, &err) == M3_STATUS_OK, "encoder a: %s", err.message);
    long r1 = rss_kib();
    CHECK(m3_encoder_new(model, &o, &b, &err) == M3_STATUS_OK, "encoder b: %s", err.message);
    long r2 = rss_kib();
    printf("resident memory: first encoder +%ld KiB, second +%ld KiB\n", r1 - r0, r2 - r1);
    CHECK(r1 - r0 > 50000, "the first encoder packs about 100 MB (+%ld KiB)", r1 - r0);
    CHECK(r2 - r1 < (r1 - r0) / 4, "the second encoder shares the packed weights (+%ld KiB, first +%ld KiB)",
          r2 - r1, r1 - r0);
    if (!a || !b) return 1;

    // Both at once, from two threads, as the service's indexing and search paths run.
    job ja = {.enc = a}, jb = {.enc = b};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, encode_job, &ja);
    pthread_create(&tb, NULL, encode_job, &jb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(ja.st == M3_STATUS_OK && jb.st == M3_STATUS_OK, "both encode");
    CHECK(same(&ja.out, &jb.out), "two encoders sharing weights give identical vectors");

    // The first one goes; the second keeps working on the shared weights.
    m3_encoder_free(a);
    job jb2 = {.enc = b};
    encode_job(&jb2);
    CHECK(jb2.st == M3_STATUS_OK && same(&jb2.out, &ja.out), "after the first encoder is freed, the second is unchanged");

    // Another precision packs its own copy (bf16 weights are not fp32 ones).
    o.precision = M3_PRECISION_BF16;
    CHECK(m3_encoder_new(model, &o, &c, &err) == M3_STATUS_OK, "bf16 encoder: %s", err.message);
    job jc = {.enc = c};
    encode_job(&jc);
    CHECK(jc.st == M3_STATUS_OK && !same(&jc.out, &ja.out), "a bf16 encoder computes with its own bf16 weights");

    m3_embedding_clear(&ja.out);
    m3_embedding_clear(&jb.out);
    m3_embedding_clear(&jb2.out);
    m3_embedding_clear(&jc.out);
    m3_encoder_free(b);
    m3_encoder_free(c);
    m3_model_close(model);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
