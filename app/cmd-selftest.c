// SPDX-License-Identifier: MIT
//
// m3 selftest --model PATH [--backend cpu|all] [--reference DIR | --published] [--threads N]
// Checks a model end to end and prints one PASS/FAIL line per check (expected, got, tolerance).
//   - The real BGE-M3 (recognised by its shape: vocab 250002, hidden 1024, 24 layers), or any model
//     with --published: the tokenizer oracles and FlagEmbedding's published values (docs: bge-m3.md,
//     "Published reference values"). --published on another model exercises these checks (they fail:
//     other weights give other values), which is how the tests run them without the 2.3 GB model.
//   - Any other model (the tiny test model): the fixture references in DIR (m3_public.json +
//     m3_public.safetensors: ids, dense, lexical, ColBERT and scores; tokenize_public.json: ids).
// Exit 0 only when every check passes on every backend that could be made.
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "encoder/encoder.h"
#include "model/model.h"
#include "model/weights.h"

static const char usage_text[] =
    "usage: m3 selftest --model PATH [--backend cpu|all] [--reference DIR | --published] [--threads N]\n\n"
    "Checks a model end to end and prints one PASS or FAIL line per check, with the expected value,\n"
    "the value got and the tolerance. Exit 0 only when every check passes.\n\n"
    "  --model PATH       a model folder or a model file (`m3 model convert`)\n"
    "  --backend NAME     cpu (default), or all: every backend this build has (one it cannot make,\n"
    "                     e.g. without a GPU, is reported as SKIP)\n"
    "  --reference DIR    for a model other than the real BGE-M3: the folder holding m3_public.json,\n"
    "                     m3_public.safetensors and tokenize_public.json (tests/data for m3-tiny)\n"
    "  --published        check the published values of the real BGE-M3 whatever the model's shape\n"
    "                     (on another model they fail; the tests use it to run these checks)\n"
    "  --threads N        encoder worker threads (default: one per CPU)\n\n"
    "The real BGE-M3 is checked against the tokenizer oracles and the values FlagEmbedding publishes\n"
    "(fp32 on CPU): scores and weights within 1e-4 absolute with fp32 weights, within 2e-3 with the\n"
    "fp16 weights of a converted file. Fixture references: 1e-4 with fp32 weights; with fp16 weights\n"
    "dense and ColBERT values and scores within 1e-3, lexical weights within 1e-2 absolute (the tiny\n"
    "model's reach 4) and lexical scores within 3e-3 relative.\n";

typedef struct tally {
    int pass, fail;
} tally;

typedef struct tolerances {
    double vec;     // dense and ColBERT components
    double lex;     // lexical weights
    double score;   // dense and ColBERT scores
    double sparse;  // lexical (sparse) scores; relative to max(1, |expected|) when sparse_relative
    bool sparse_relative;
} tolerances;

static void report(tally *t, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void report(tally *t, bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(ok ? "PASS  " : "FAIL  ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    if (ok) t->pass++;
    else t->fail++;
}

static void check_value(tally *t, const char *backend, const char *what, double want, double got, double tol)
{
    double d = fabs(got - want);
    report(t, d <= tol, "[%s] %-42s expected %.9g  got %.9g  |diff| %.2e (tol %.0e)", backend, what, want, got, d,
           tol);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool encode_text(const m3_tokenizer *tok, m3_encoder *enc, const char *text, size_t len, size_t max_length,
                        m3_embedding *out, int32_t **ids_out, size_t *n_out, m3_error *err)
{
    int32_t *ids;
    size_t n;
    if (m3_tokenizer_encode(tok, text, len, max_length, &ids, &n, err) != M3_STATUS_OK) return false;
    m3_sequence seq = {ids, n};
    bool ok = m3_encoder_encode(enc, &seq, 1, M3_OUTPUT_ALL, out, err) == M3_STATUS_OK;
    if (ids_out && ok) {
        *ids_out = ids;
        *n_out = n;
    } else {
        free(ids);
    }
    return ok;
}

static float sparse_weight(const m3_embedding *e, int32_t id)
{
    for (size_t i = 0; i < e->n_sparse; i++)
        if (e->sparse[i].id == id) return e->sparse[i].weight;
    return 0.0f;
}

// ---- the tokenizer oracles and published values of the real model ----

static void check_ids(tally *t, const char *what, const int32_t *want, size_t n_want, const int32_t *got,
                      size_t n_got)
{
    char a[512] = "", b[512] = "";
    size_t la = 0, lb = 0;
    for (size_t i = 0; i < n_want && la < sizeof a - 16; i++)
        la += (size_t)snprintf(a + la, sizeof a - la, i ? ", %" PRId32 : "%" PRId32, want[i]);
    for (size_t i = 0; i < n_got && lb < sizeof b - 16; i++)
        lb += (size_t)snprintf(b + lb, sizeof b - lb, i ? ", %" PRId32 : "%" PRId32, got[i]);
    bool ok = n_want == n_got && !memcmp(want, got, n_want * sizeof *want);
    report(t, ok, "%s  expected [%s]  got [%s]", what, a, b);
}

static void published_tokenizer(tally *t, const m3_tokenizer *tok)
{
    static const struct {
        const char *text;
        int32_t ids[16];
        size_t n;
    } oracles[] = {
        {"Hello World!", {0, 35378, 6661, 38, 2}, 5},
        {"The quick brown fox jumps over the lazy dog.",
         {0, 581, 63773, 119455, 6, 147797, 88203, 7, 645, 70, 21, 3285, 10269, 5, 2}, 15},
    };
    for (size_t i = 0; i < sizeof oracles / sizeof oracles[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        m3_error err = {0};
        char what[96];
        snprintf(what, sizeof what, "tokenizer \"%s\"", oracles[i].text);
        if (m3_tokenizer_encode(tok, oracles[i].text, strlen(oracles[i].text), 8192, &ids, &n, &err) != M3_STATUS_OK)
            report(t, false, "%s: %s", what, err.message);
        else
            check_ids(t, what, oracles[i].ids, oracles[i].n, ids, n);
        free(ids);
    }
}

static void published_values(tally *t, const char *be, const m3_tokenizer *tok, m3_encoder *enc, double tol)
{
    static const char *const s1[2] = {"What is BGE M3?", "Defination of BM25"};
    static const char *const s2[2] = {
        "BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.",
        "BM25 is a bag-of-words retrieval function that ranks a set of documents based on the query terms "
        "appearing in each document"};
    static const double dense[2][2] = {{0.6259035, 0.34749585}, {0.349868, 0.6782462}};
    static const struct {
        const char *piece;
        double w;
    } lex[] = {{"What", 0.08362077}, {"is", 0.081469566}, {"B", 0.12964639}, {"GE", 0.25186998},
               {"M", 0.17001738},    {"3", 0.26957875},   {"?", 0.040755156}};
    static const double lex_score[2] = {0.19554448500275612, 0.00880391988903284};
    static const double colbert[2] = {0.7796662449836731, 0.4621177911758423};
    static const struct {
        int32_t id;
        double w;
    } superman[] = {{183497, 0.32012847}, {83, 0.19853045},    {70, 0.16743071},
                    {2965, 0.24451455},   {1601, 0.17550871},  {90865, 0.25476876},
                    {111, 0.11962792},    {756, 0.13541803},   {1733, 0.18622744}};
    static const char superman_text[] = "Superman is the best superhero of all time";
    m3_embedding q[2] = {0}, p[2] = {0}, sm = {0};
    int32_t *q0_ids = NULL;
    size_t q0_n = 0;
    m3_error err = {0};
    bool ok = encode_text(tok, enc, s1[0], strlen(s1[0]), 10, &q[0], &q0_ids, &q0_n, &err) &&
              encode_text(tok, enc, s1[1], strlen(s1[1]), 10, &q[1], NULL, NULL, &err) &&
              encode_text(tok, enc, s2[0], strlen(s2[0]), 100, &p[0], NULL, NULL, &err) &&
              encode_text(tok, enc, s2[1], strlen(s2[1]), 100, &p[1], NULL, NULL, &err) &&
              encode_text(tok, enc, superman_text, strlen(superman_text), 8192, &sm, NULL, NULL, &err);
    if (!ok) {
        report(t, false, "[%s] encoding the published examples: %s", be, err.message);
        goto done;
    }
    char what[96];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            snprintf(what, sizeof what, "dense s1[%d]·s2[%d]", i, j);
            check_value(t, be, what, dense[i][j], m3_score_dense(&q[i], &p[j]), tol);
        }
    for (size_t k = 0; k < sizeof lex / sizeof lex[0]; k++) {
        // The published dictionary names tokens by their text without the leading ▁.
        double got = NAN;
        for (size_t i = 1; i + 1 < q0_n; i++) {
            const char *piece = m3_tokenizer_piece(tok, q0_ids[i]);
            if (piece && !strncmp(piece, "\xe2\x96\x81", 3)) piece += 3;
            if (piece && !strcmp(piece, lex[k].piece)) got = sparse_weight(&q[0], q0_ids[i]);
        }
        snprintf(what, sizeof what, "lexical weight of \"%s\" in s1[0]", lex[k].piece);
        check_value(t, be, what, lex[k].w, got, tol);
    }
    for (int j = 0; j < 2; j++) {
        snprintf(what, sizeof what, "lexical score (s1[0], s2[%d])", j);
        check_value(t, be, what, lex_score[j], m3_score_sparse(&q[0], &p[j]), tol);
    }
    report(t, q[0].n_colbert == 8 && p[0].n_colbert == 30 && q[0].dim == 1024,
           "[%s] %-42s expected (8, 1024) (30, 1024)  got (%zu, %zu) (%zu, %zu)", be, "colbert shapes", q[0].n_colbert,
           q[0].dim, p[0].n_colbert, p[0].dim);
    for (int j = 0; j < 2; j++) {
        snprintf(what, sizeof what, "colbert score (s1[0], s2[%d])", j);
        check_value(t, be, what, colbert[j], m3_score_colbert(&q[0], &p[j]), tol);
    }
    for (size_t k = 0; k < sizeof superman / sizeof superman[0]; k++) {
        snprintf(what, sizeof what, "lexical weight of id %" PRId32 " (Superman...)", superman[k].id);
        check_value(t, be, what, superman[k].w, sparse_weight(&sm, superman[k].id), tol);
    }
done:
    free(q0_ids);
    for (int i = 0; i < 2; i++) {
        m3_embedding_clear(&q[i]);
        m3_embedding_clear(&p[i]);
    }
    m3_embedding_clear(&sm);
}

// ---- the fixture references (the tiny model) ----

static int32_t *json_ids(json_object *a, size_t *n)
{
    *n = a ? json_object_array_length(a) : 0;
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    for (size_t i = 0; ids && i < *n; i++) ids[i] = json_object_get_int(json_object_array_get_idx(a, i));
    return ids;
}

static void reference_tokenizer(tally *t, const m3_tokenizer *tok, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenize_public.json", dir);
    json_object *root = json_object_from_file(path);
    json_object *cases = root ? json_object_object_get(root, "cases") : NULL;
    if (!cases) {
        report(t, false, "tokenizer: cannot read %s", path);
        json_object_put(root);
        return;
    }
    size_t n_cases = json_object_array_length(cases), ok_full = 0, ok_16 = 0, shown = 0;
    for (size_t k = 0; k < n_cases; k++) {
        json_object *c = json_object_array_get_idx(cases, k);
        const char *text = json_object_get_string(json_object_object_get(c, "text"));
        size_t len = (size_t)json_object_get_string_len(json_object_object_get(c, "text"));
        for (int pass = 0; pass < 2; pass++) {
            size_t n_want, n_got = 0;
            int32_t *want = json_ids(json_object_object_get(c, pass ? "ids_max16" : "ids"), &n_want);
            int32_t *got = NULL;
            m3_error err = {0};
            bool same = m3_tokenizer_encode(tok, text, len, pass ? 16 : 8192, &got, &n_got, &err) == M3_STATUS_OK &&
                        n_got == n_want && !memcmp(got, want, n_want * sizeof *want);
            if (same) *(pass ? &ok_16 : &ok_full) += 1;
            else if (shown++ < 5) {
                char what[64];
                snprintf(what, sizeof what, "tokenizer text %zu%s", k, pass ? " (max_length 16)" : "");
                check_ids(t, what, want, n_want, got, n_got);
            }
            free(want);
            free(got);
        }
    }
    report(t, ok_full == n_cases, "tokenizer: %zu/%zu reference texts give the expected ids", ok_full, n_cases);
    report(t, ok_16 == n_cases, "tokenizer: %zu/%zu reference texts give the expected ids at max_length 16", ok_16,
           n_cases);
    json_object_put(root);
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static void reference_encoder(tally *t, const char *be, m3_encoder *enc, const char *dir,
                              const tolerances *tol)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/m3_public.json", dir);
    json_object *root = json_object_from_file(path);
    json_object *cases = root ? json_object_object_get(root, "cases") : NULL;
    json_object *scores = root ? json_object_object_get(root, "scores") : NULL;
    json_object *modes = root ? json_object_object_get(root, "weights_for_different_modes") : NULL;
    if (!cases || !scores || !modes || json_object_array_length(modes) != 3) {
        report(t, false, "[%s] cannot read %s", be, path);
        json_object_put(root);
        return;
    }
    snprintf(path, sizeof path, "%s/m3_public.safetensors", dir);
    m3_weights *refw = NULL;
    m3_error err = {0};
    if (m3_weights_open(path, &refw, &err) != M3_STATUS_OK) {
        report(t, false, "[%s] %s", be, err.message);
        json_object_put(root);
        return;
    }
    size_t n_cases = json_object_array_length(cases);
    m3_embedding *emb = calloc(n_cases, sizeof *emb);
    for (size_t k = 0; emb && k < n_cases; k++) {
        json_object *c = json_object_array_get_idx(cases, k);
        // The fixture's ids are SentencePiece's (its "ids" note: literal special-token text is not
        // special there), so the encoder is fed them as they are; the tokenizer is checked against
        // tokenize_public.json, which holds the HF tokenizer's ids.
        size_t n;
        int32_t *ids = json_ids(json_object_object_get(c, "ids"), &n);
        m3_sequence seq = {ids, n};
        m3_status st = ids ? m3_encoder_encode(enc, &seq, 1, M3_OUTPUT_ALL, &emb[k], &err) : M3_STATUS_NOMEM;
        free(ids);
        if (st != M3_STATUS_OK) {
            report(t, false, "[%s] case %zu: %s", be, k, err.message);
            continue;
        }
        const m3_embedding *e = &emb[k];
        size_t h = e->dim;
        char name[64];
        snprintf(name, sizeof name, "c%zu.dense", k);
        const m3_tensor *td = m3_weights_find(refw, name);
        snprintf(name, sizeof name, "c%zu.colbert", k);
        const m3_tensor *tc = m3_weights_find(refw, name);
        if (!td || !tc || m3_tensor_numel(td) != (int64_t)h || m3_tensor_numel(tc) != (int64_t)(e->n_colbert * h)) {
            report(t, false, "[%s] case %zu: reference tensors missing or of another size", be, k);
            continue;
        }
        float *ref = malloc((size_t)m3_tensor_numel(tc) * sizeof *ref + h * sizeof *ref);
        m3_tensor_to_f32(td, ref);
        double dd = max_diff(e->dense, ref, h);
        m3_tensor_to_f32(tc, ref);
        double dc = max_diff(e->colbert, ref, e->n_colbert * h);
        free(ref);
        // Lexical weights: the union of both token sets, a weight absent on one side read as 0. With
        // fp32 weights the sets must be equal; with fp16 a token whose weight is within the tolerance
        // of 0 may appear or vanish (relu at the threshold).
        json_object *lex = json_object_object_get(c, "lexical_weights");
        bool keys_ok = (size_t)json_object_object_length(lex) == e->n_sparse;
        double dl = 0;
        size_t found = 0;
        json_object_object_foreach(lex, key, val) {
            double want = json_object_get_double(val);
            float got = sparse_weight(e, (int32_t)atoi(key));
            if (got != 0.0f) found++;
            else keys_ok = false;
            dl = fmax(dl, fabs(got - want));
        }
        for (size_t i = 0; i < e->n_sparse; i++) {
            char key[16];
            snprintf(key, sizeof key, "%" PRId32, e->sparse[i].id);
            if (!json_object_object_get(lex, key)) dl = fmax(dl, fabs(e->sparse[i].weight));
        }
        if (tol->sparse_relative) keys_ok = true;
        report(t, dd <= tol->vec && dc <= tol->vec && dl <= tol->lex && keys_ok,
               "[%s] case %2zu (%4zu tokens): max |diff| dense %.2e, colbert %.2e (tol %.0e), lexical "
               "%.2e (tol %.0e)%s",
               be, k, e->tokens, dd, dc, tol->vec, dl, tol->lex, keys_ok ? "" : "; lexical token sets differ");
    }
    static const char *const names[5] = {"dense", "sparse", "colbert", "sparse+dense", "colbert+sparse+dense"};
    double w[3];
    for (int i = 0; i < 3; i++) w[i] = json_object_get_double(json_object_array_get_idx(modes, i));
    for (size_t i = 0; emb && i < json_object_array_length(scores); i++) {
        json_object *s = json_object_array_get_idx(scores, i);
        size_t q = (size_t)json_object_get_int(json_object_object_get(s, "q"));
        size_t p = (size_t)json_object_get_int(json_object_object_get(s, "p"));
        if (q >= n_cases || p >= n_cases || !emb[q].dense || !emb[p].dense) {
            report(t, false, "[%s] score %zu: no embeddings for cases %zu and %zu", be, i, q, p);
            continue;
        }
        double d = m3_score_dense(&emb[q], &emb[p]), sp = m3_score_sparse(&emb[q], &emb[p]),
               co = m3_score_colbert(&emb[q], &emb[p]);
        double got[5] = {d, sp, co, (w[0] * d + w[1] * sp) / (w[0] + w[1]),
                         (w[0] * d + w[1] * sp + w[2] * co) / (w[0] + w[1] + w[2])};
        char line[1024];
        size_t len = 0;
        bool ok = true;
        for (int m = 0; m < 5; m++) {
            double want = json_object_get_double(json_object_object_get(s, names[m]));
            double tl = m == 0 || m == 2 ? tol->score : tol->sparse;
            if (m != 0 && m != 2 && tol->sparse_relative) tl *= fmax(1.0, fabs(want));
            ok = ok && fabs(got[m] - want) <= tl;
            len += (size_t)snprintf(line + len, sizeof line - len, "%s%s %.7g/%.7g", m ? ", " : "", names[m], want,
                                    got[m]);
        }
        report(t, ok, "[%s] scores (q %zu, p %zu) expected/got: %s (tol %.0e dense/colbert, %.0e%s with sparse)", be,
               q, p, line, tol->score, tol->sparse, tol->sparse_relative ? " relative" : "");
    }
    for (size_t k = 0; emb && k < n_cases; k++) m3_embedding_clear(&emb[k]);
    free(emb);
    m3_weights_close(refw);
    json_object_put(root);
}

int m3_cmd_selftest(int argc, char **argv)
{
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},
        {"backend", required_argument, NULL, 'b'},
        {"reference", required_argument, NULL, 'r'},
        {"published", no_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *model_path = NULL, *backend = "cpu", *reference = NULL;
    bool published = false;
    size_t threads = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'b': backend = optarg; break;
        case 'r': reference = optarg; break;
        case 'p': published = true; break;
        case 't':
            if (!m3_cli_parse_size("selftest", "--threads", optarg, 1, 1024, &threads)) return M3_EXIT_USAGE;
            break;
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (!model_path || optind != argc || (strcmp(backend, "cpu") && strcmp(backend, "all")) ||
        (published && reference)) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    m3_error err = {0};
    m3_model *model;
    double t0 = seconds();
    if (m3_model_open(model_path, &model, &err) != M3_STATUS_OK) return m3_cli_fail_error("selftest", &err);
    double t_open = seconds() - t0;
    const m3_model_config *cfg = m3_model_get_config(model);
    const m3_tokenizer *tok = m3_model_get_tokenizer(model);
    bool fp16 = m3_model_get_weights(model)->word->dtype != M3_DTYPE_F32;
    bool real = (cfg->vocab == 250002 && cfg->hidden == 1024 && cfg->layers == 24) || published;
    printf("model: %s (hidden %d, %d layers, vocab %d, %s weights), opened in %.3f s\n", model_path, cfg->hidden,
           cfg->layers, cfg->vocab, fp16 ? "fp16" : "fp32", t_open);
    if (!real && !reference) {
        m3_model_close(model);
        return m3_cli_fail("selftest", "%s is not the real BGE-M3 (vocab 250002, hidden 1024, 24 layers): give "
                           "--reference DIR with its reference outputs", model_path);
    }
    // fp16 weights: tolerances about 5x the errors measured on m3-tiny (dense 1.1e-4, ColBERT 1.7e-4,
    // lexical 2.1e-3 absolute, sparse scores 6e-4 relative); fp32 weights: the reference's 1e-4.
    tolerances tol = fp16 ? (tolerances){1e-3, 1e-2, 1e-3, 3e-3, true} : (tolerances){1e-4, 1e-4, 1e-4, 1e-4, false};
    double tol_published = fp16 ? 2e-3 : 1e-4;
    if (real)
        printf("checking the published FlagEmbedding values (fp32 on CPU) within %.0e absolute\n", tol_published);
    else
        printf("checking the references in %s: values within %.0e (dense, ColBERT), %.0e (lexical)%s\n", reference,
               tol.vec, tol.lex, fp16 ? " as fp16 weights allow" : "");

    tally t = {0};
    if (real) published_tokenizer(&t, tok);
    else reference_tokenizer(&t, tok, reference);

    static const char *const all[] = {"cpu", "vulkan"};
    size_t n_backends = strcmp(backend, "all") ? 1 : sizeof all / sizeof all[0];
    for (size_t b = 0; b < n_backends; b++) {
        m3_encoder_options opt = m3_encoder_options_default();
        opt.backend = all[b];
        opt.threads = (int)threads;
        m3_encoder *enc;
        if (m3_encoder_new(model, &opt, &enc, &err) != M3_STATUS_OK) {
            if (b == 0) report(&t, false, "[%s] cannot make the encoder: %s", all[b], err.message);
            else printf("SKIP  [%s] %s\n", all[b], err.message);
            continue;
        }
        if (real) published_values(&t, all[b], tok, enc, tol_published);
        else reference_encoder(&t, all[b], enc, reference, &tol);
        m3_encoder_free(enc);
    }
    m3_model_close(model);
    printf("%s: %d passed, %d failed\n", t.fail ? "FAIL" : "PASS", t.pass, t.fail);
    if (fflush(stdout) != 0 || ferror(stdout)) return m3_cli_fail("selftest", "cannot write standard output");
    return t.fail ? M3_EXIT_FAILURE : M3_EXIT_OK;
}
