// SPDX-License-Identifier: MIT
//
// The whole encoder against the reference fixtures (tests/data, made by transformers in float64 +
// FlagEmbedding's post-processing): for the 17 cases of m3_public.json (up to 8192 tokens) the
// dense vector, each lexical weight and each ColBERT vector within 1e-4, identical lexical key
// sets, and every (query, passage) score, hybrids included, within 1e-4. Then batch independence
// (all cases in one call, and shuffled, equal to one-at-a-time within 1e-5), output subsets, and
// invalid inputs (M3_STATUS_INVALID, nothing allocated).
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoder/encoder.h"
#include "model/model.h"
#include "model/weights.h"

#define TOL_REF 1e-4
#define TOL_BATCH 1e-5

static int failures;

#define CHECK(cond, ...)                          \
    do {                                          \
        if (!(cond)) {                            \
            failures++;                           \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                  \
            printf("\n");                         \
        }                                         \
    } while (0)

typedef struct ref_case {
    int32_t *ids;
    size_t n;
    m3_sparse_weight *lex;  // sorted by id
    size_t n_lex;
    float *dense;    // [H]
    float *colbert;  // [n - 1][H]
} ref_case;

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_sw(const void *a, const void *b)
{
    const m3_sparse_weight *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static float *ref_tensor(const m3_weights *w, const char *name, int64_t numel)
{
    const m3_tensor *t = m3_weights_find(w, name);
    if (!t || m3_tensor_numel(t) != numel) {
        printf("FAIL: reference tensor %s missing or of the wrong size\n", name);
        exit(1);
    }
    float *v = malloc((size_t)numel * sizeof *v + 1);
    m3_tensor_to_f32(t, v);
    return v;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

// Largest difference between two results of the same input; INFINITY when their shapes differ.
static double compare_embeddings(const m3_embedding *a, const m3_embedding *b)
{
    if (a->tokens != b->tokens || a->dim != b->dim || a->n_sparse != b->n_sparse ||
        a->n_colbert != b->n_colbert || !a->dense != !b->dense)
        return INFINITY;
    double m = 0;
    if (a->dense)
        m = fmax(m, max_abs_diff(a->dense, b->dense, a->dim));
    if (a->n_colbert)
        m = fmax(m, max_abs_diff(a->colbert, b->colbert, a->n_colbert * a->dim));
    for (size_t i = 0; i < a->n_sparse; i++) {
        if (a->sparse[i].id != b->sparse[i].id)
            return INFINITY;
        m = fmax(m, fabs((double)a->sparse[i].weight - b->sparse[i].weight));
    }
    return m;
}

int main(void)
{
    const char *data = getenv("M3_TEST_DATA");
    if (!data) {
        printf("SKIP: M3_TEST_DATA is not set\n");
        return 77;
    }
    char path[4096];
    m3_error err = {0};

    snprintf(path, sizeof path, "%s/m3-tiny", data);
    m3_model *model;
    if (m3_model_open(path, &model, &err) != M3_STATUS_OK) {
        printf("FAIL: m3_model_open(%s): %s\n", path, err.message);
        return 1;
    }
    const m3_model_config *cfg = m3_model_get_config(model);
    size_t h = (size_t)cfg->hidden;

    snprintf(path, sizeof path, "%s/m3_public.json", data);
    json_object *root = json_object_from_file(path);
    if (!root) {
        printf("FAIL: cannot read %s\n", path);
        return 1;
    }
    snprintf(path, sizeof path, "%s/m3_public.safetensors", data);
    m3_weights *refw;
    if (m3_weights_open(path, &refw, &err) != M3_STATUS_OK) {
        printf("FAIL: m3_weights_open(%s): %s\n", path, err.message);
        return 1;
    }

    json_object *jcases = json_object_object_get(root, "cases");
    json_object *jscores = json_object_object_get(root, "scores");
    json_object *jmodes = json_object_object_get(root, "weights_for_different_modes");
    size_t n_cases = json_object_array_length(jcases);
    double wd = json_object_get_double(json_object_array_get_idx(jmodes, 0));
    double ws = json_object_get_double(json_object_array_get_idx(jmodes, 1));
    double wc = json_object_get_double(json_object_array_get_idx(jmodes, 2));

    ref_case *rc = calloc(n_cases, sizeof *rc);
    m3_sequence *seqs = calloc(n_cases, sizeof *seqs);
    for (size_t k = 0; k < n_cases; k++) {
        json_object *c = json_object_array_get_idx(jcases, k);
        json_object *ids = json_object_object_get(c, "ids");
        rc[k].n = json_object_array_length(ids);
        rc[k].ids = malloc(rc[k].n * sizeof *rc[k].ids);
        for (size_t i = 0; i < rc[k].n; i++)
            rc[k].ids[i] = json_object_get_int(json_object_array_get_idx(ids, i));
        json_object *lex = json_object_object_get(c, "lexical_weights");
        rc[k].n_lex = (size_t)json_object_object_length(lex);
        rc[k].lex = malloc((rc[k].n_lex + 1) * sizeof *rc[k].lex);
        size_t j = 0;
        json_object_object_foreach(lex, key, val) {
            rc[k].lex[j].id = atoi(key);
            rc[k].lex[j].weight = (float)json_object_get_double(val);
            j++;
        }
        qsort(rc[k].lex, rc[k].n_lex, sizeof *rc[k].lex, cmp_sw);
        char name[64];
        snprintf(name, sizeof name, "c%zu.dense", k);
        rc[k].dense = ref_tensor(refw, name, (int64_t)h);
        snprintf(name, sizeof name, "c%zu.colbert", k);
        rc[k].colbert = ref_tensor(refw, name, (int64_t)((rc[k].n - 1) * h));
        seqs[k] = (m3_sequence){rc[k].ids, rc[k].n};
    }

    m3_encoder_options opt = m3_encoder_options_default();
    m3_encoder *enc;
    if (m3_encoder_new(model, &opt, &enc, &err) != M3_STATUS_OK) {
        printf("FAIL: m3_encoder_new: %s\n", err.message);
        return 1;
    }
    printf("encoder: backend %s, %d threads, %s\n", m3_encoder_backend_name(enc),
           m3_encoder_threads(enc), m3_encoder_kernel_name(enc));

    // 1. Each case alone, against the reference.
    m3_embedding *alone = calloc(n_cases, sizeof *alone);
    double e_dense = 0, e_lex = 0, e_col = 0;
    for (size_t k = 0; k < n_cases; k++) {
        double t0 = seconds();
        m3_status st = m3_encoder_encode(enc, &seqs[k], 1, M3_OUTPUT_ALL, &alone[k], &err);
        double dt = seconds() - t0;
        CHECK(st == M3_STATUS_OK, "case %zu: %s", k, err.message);
        if (st != M3_STATUS_OK)
            continue;
        const m3_embedding *e = &alone[k];
        CHECK(e->tokens == rc[k].n && e->dim == h && e->n_colbert == rc[k].n - 1,
              "case %zu: shapes", k);
        double d = max_abs_diff(e->dense, rc[k].dense, h);
        double c = max_abs_diff(e->colbert, rc[k].colbert, (rc[k].n - 1) * h);
        double l = 0;
        int keys_ok = e->n_sparse == rc[k].n_lex;
        for (size_t i = 0; keys_ok && i < e->n_sparse; i++) {
            keys_ok = e->sparse[i].id == rc[k].lex[i].id;
            l = fmax(l, fabs((double)e->sparse[i].weight - rc[k].lex[i].weight));
        }
        CHECK(keys_ok, "case %zu: lexical key sets differ (%zu vs %zu keys)", k, e->n_sparse,
              rc[k].n_lex);
        CHECK(d < TOL_REF, "case %zu: dense error %.3g", k, d);
        CHECK(c < TOL_REF, "case %zu: colbert error %.3g", k, c);
        CHECK(l < TOL_REF, "case %zu: lexical error %.3g", k, l);
        e_dense = fmax(e_dense, d);
        e_col = fmax(e_col, c);
        e_lex = fmax(e_lex, l);
        if (rc[k].n > 1000)
            printf("case %zu: %zu tokens in %.2f s\n", k, rc[k].n, dt);
    }
    printf("max error vs reference: dense %.3g, lexical %.3g, colbert %.3g\n", e_dense, e_lex,
           e_col);

    // 2. Scores.
    double e_score[5] = {0};
    static const char *score_names[5] = {"dense", "sparse", "colbert", "sparse+dense",
                                         "colbert+sparse+dense"};
    for (size_t i = 0; i < json_object_array_length(jscores); i++) {
        json_object *s = json_object_array_get_idx(jscores, i);
        size_t q = (size_t)json_object_get_int(json_object_object_get(s, "q"));
        size_t p = (size_t)json_object_get_int(json_object_object_get(s, "p"));
        if (q >= n_cases || p >= n_cases) {
            CHECK(0, "score %zu: bad case index", i);
            continue;
        }
        double dense = m3_score_dense(&alone[q], &alone[p]);
        double sparse = m3_score_sparse(&alone[q], &alone[p]);
        double colbert = m3_score_colbert(&alone[q], &alone[p]);
        double got[5] = {dense, sparse, colbert, (wd * dense + ws * sparse) / (wd + ws),
                         (wd * dense + ws * sparse + wc * colbert) / (wd + ws + wc)};
        for (int m = 0; m < 5; m++) {
            double want = json_object_get_double(json_object_object_get(s, score_names[m]));
            double e = fabs(got[m] - want);
            if (!(e <= e_score[m]))
                e_score[m] = isnan(e) ? INFINITY : e;
            CHECK(e < TOL_REF, "score (%zu, %zu) %s: %.7g, want %.7g", q, p, score_names[m],
                  got[m], want);
        }
    }
    printf("max score error over %zu pairs: dense %.3g, sparse %.3g, colbert %.3g, "
           "sparse+dense %.3g, colbert+sparse+dense %.3g\n",
           json_object_array_length(jscores), e_score[0], e_score[1], e_score[2], e_score[3],
           e_score[4]);

    // 3. Batch independence: everything in one call (several forward passes: the cases add up to
    // more than one pass's token budget), and shuffled.
    m3_embedding *batch = calloc(n_cases, sizeof *batch);
    m3_sequence *shuffled = calloc(n_cases, sizeof *shuffled);
    size_t *perm = calloc(n_cases, sizeof *perm);
    double e_batch = 0;
    for (int round = 0; round < 2; round++) {
        for (size_t k = 0; k < n_cases; k++)
            perm[k] = k;
        if (round == 1) {
            uint64_t x = 12345;
            for (size_t k = n_cases - 1; k > 0; k--) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                size_t j = (size_t)(x >> 33) % (k + 1);
                size_t t = perm[k];
                perm[k] = perm[j];
                perm[j] = t;
            }
        }
        for (size_t k = 0; k < n_cases; k++)
            shuffled[k] = seqs[perm[k]];
        m3_status st = m3_encoder_encode(enc, shuffled, n_cases, M3_OUTPUT_ALL, batch, &err);
        CHECK(st == M3_STATUS_OK, "batch: %s", err.message);
        if (st != M3_STATUS_OK)
            continue;
        for (size_t k = 0; k < n_cases; k++) {
            double e = compare_embeddings(&batch[k], &alone[perm[k]]);
            CHECK(e < TOL_BATCH, "batch round %d, case %zu: differs from alone by %.3g", round,
                  perm[k], e);
            e_batch = fmax(e_batch, e);
            m3_embedding_clear(&batch[k]);
        }
    }
    // Short cases only (one forward pass, many sequences packed together).
    {
        size_t m = 0;
        for (size_t k = 0; k < n_cases; k++)
            if (rc[k].n < 100)
                shuffled[m++] = seqs[k];
        m3_status st = m3_encoder_encode(enc, shuffled, m, M3_OUTPUT_ALL, batch, &err);
        CHECK(st == M3_STATUS_OK, "short batch: %s", err.message);
        for (size_t k = 0, j = 0; st == M3_STATUS_OK && k < n_cases; k++) {
            if (rc[k].n >= 100)
                continue;
            double e = compare_embeddings(&batch[j], &alone[k]);
            CHECK(e < TOL_BATCH, "short batch, case %zu: differs from alone by %.3g", k, e);
            e_batch = fmax(e_batch, e);
            m3_embedding_clear(&batch[j++]);
        }
    }
    printf("max difference batched vs alone: %.3g\n", e_batch);

    // 4. Output subsets: only what is asked for, same values.
    {
        m3_embedding e;
        m3_status st = m3_encoder_encode(enc, &seqs[0], 1, M3_OUTPUT_DENSE, &e, &err);
        CHECK(st == M3_STATUS_OK && e.dense && !e.sparse && !e.colbert && e.n_sparse == 0 &&
                  e.n_colbert == 0,
              "dense only");
        if (st == M3_STATUS_OK)
            CHECK(max_abs_diff(e.dense, alone[0].dense, h) < TOL_BATCH, "dense only: values");
        m3_embedding_clear(&e);
        st = m3_encoder_encode(enc, &seqs[1], 1, M3_OUTPUT_SPARSE | M3_OUTPUT_COLBERT, &e, &err);
        CHECK(st == M3_STATUS_OK && !e.dense && e.n_sparse == alone[1].n_sparse &&
                  e.n_colbert == alone[1].n_colbert,
              "sparse + colbert");
        if (st == M3_STATUS_OK)
            CHECK(isnan(m3_score_dense(&e, &alone[1])), "dense score without dense vectors");
        m3_embedding_clear(&e);
        // One token: no ColBERT vectors, still a dense vector.
        int32_t one[1] = {0};
        m3_sequence s1 = {one, 1};
        st = m3_encoder_encode(enc, &s1, 1, M3_OUTPUT_ALL, &e, &err);
        CHECK(st == M3_STATUS_OK && e.dense && e.n_colbert == 0 && !e.colbert && e.n_sparse == 0,
              "one-token input");
        m3_embedding_clear(&e);
        m3_embedding_clear(NULL);
        CHECK(m3_encoder_encode(enc, NULL, 0, M3_OUTPUT_ALL, NULL, &err) == M3_STATUS_OK,
              "empty batch");
    }

    // 5. Invalid inputs: M3_STATUS_INVALID, outputs left with nothing allocated.
    {
        int32_t ok_ids[3] = {0, 5, 2};
        int32_t big_id[3] = {0, cfg->vocab, 2};
        int32_t neg_id[3] = {0, -1, 2};
        size_t too_long = (size_t)cfg->max_positions - 1;
        int32_t *long_ids = calloc(too_long, sizeof *long_ids);
        struct {
            const char *what;
            m3_sequence seq;
        } bad[] = {
            {"empty sequence", {ok_ids, 0}},
            {"NULL ids", {NULL, 3}},
            {"too long", {long_ids, too_long}},
            {"id >= vocab", {big_id, 3}},
            {"negative id", {neg_id, 3}},
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            m3_sequence two[2] = {{ok_ids, 3}, bad[i].seq};
            m3_embedding out[2];
            memset(out, 0, sizeof out);
            m3_error e2 = {0};
            m3_status st = m3_encoder_encode(enc, two, 2, M3_OUTPUT_ALL, out, &e2);
            CHECK(st == M3_STATUS_INVALID && e2.status == M3_STATUS_INVALID && e2.message[0],
                  "%s: status %d", bad[i].what, (int)st);
            CHECK(!out[0].dense && !out[0].sparse && !out[0].colbert && !out[1].dense,
                  "%s: outputs allocated", bad[i].what);
            printf("invalid input (%s): %s\n", bad[i].what, e2.message);
        }
        // The longest valid input is accepted.
        long_ids[0] = 0;
        m3_sequence longest = {long_ids, too_long - 1};
        m3_embedding e;
        CHECK(m3_encoder_encode(enc, &longest, 1, M3_OUTPUT_DENSE, &e, &err) == M3_STATUS_OK,
              "longest input: %s", err.message);
        m3_embedding_clear(&e);
        m3_embedding out1;
        CHECK(m3_encoder_encode(enc, &longest, 1, 0x10, &out1, &err) == M3_STATUS_INVALID,
              "unknown output flag");
        free(long_ids);

        m3_encoder *bad_enc = NULL;
        m3_encoder_options o = {.backend = "no-such-backend"};
        CHECK(m3_encoder_new(model, &o, &bad_enc, &err) == M3_STATUS_INVALID && !bad_enc,
              "unknown backend");
    }

    m3_encoder_profile prof;
    m3_encoder_get_profile(enc, &prof);
    printf("profile: %zu tokens in %zu passes; gemm %.2f s, attention %.2f s, other %.2f s; "
           "activations %.1f MiB\n",
           prof.tokens, prof.forwards, prof.gemm, prof.attention, prof.other,
           (double)m3_encoder_activation_bytes(enc) / 1048576.0);

    for (size_t k = 0; k < n_cases; k++) {
        m3_embedding_clear(&alone[k]);
        free(rc[k].ids);
        free(rc[k].lex);
        free(rc[k].dense);
        free(rc[k].colbert);
    }
    free(alone);
    free(batch);
    free(shuffled);
    free(perm);
    free(rc);
    free(seqs);
    m3_encoder_free(enc);
    m3_encoder_free(NULL);
    m3_weights_close(refw);
    json_object_put(root);
    m3_model_close(model);
    printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
