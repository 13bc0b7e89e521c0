// SPDX-License-Identifier: MIT
//
// The CPU encoder's reduced precisions against fp32 and the transformers reference (the bars of
// docs/performance.md, "CPU precisions"): per case, dense cosine >= 0.9995 (against the fp32
// encoder and the transformers vector), mean ColBERT token cosine >= 0.999, and the 10 heaviest
// lexical ids the same as fp32's (and the reference's) with weights within 2e-2.
//   1. m3-tiny, the cases of m3_public.json up to 1024 tokens (bf16 changes the GEMMs, whose
//      depth is the hidden size whatever the length; the longer cases only cost time, mostly in
//      the fp32 attention), with each bf16 GEMM kernel this CPU has (forced through
//      M3_GEMM_KERNEL: the portable one everywhere, AVX512_BF16 and the AMX kernel's model,
//      its tile instructions done in C, where AVX512_BF16 is present, AMX-BF16 where present);
//   2. the BGE-M3 widths (hidden 1024, FFN 4096, 16 heads) with random weights, 2 layers and a
//      small vocabulary (the GEMMs are what bf16 changes; depth and vocabulary only cost time;
//      M3_TEST_LAYERS=24 measures the full depth for docs/performance.md).
// int8 (weights per channel, activations per token): the same cases with every int8 kernel this
// CPU has, held to its own bar, dense cosine >= 0.999 per case (against fp32 and the transformers
// vector); its ColBERT and lexical figures are printed, not held to bf16's bars.
// Also: m3_precision_parse / name, AUTO resolving to what this CPU runs (never int8).
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/encoder.h"
#include "model/model.h"
#include "model/weights.h"

#define DENSE_MIN 0.9995
#define INT8_DENSE_MIN 0.999
#define COLBERT_MIN 0.999
#define LEX_TOL 2e-2
#define TOP 10

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
}

static int by_weight_desc(const void *x, const void *y) {
    const m3_sparse_weight *a = x, *b = y;
    if (a->weight != b->weight)
        return a->weight < b->weight ? 1 : -1;
    return (a->id > b->id) - (a->id < b->id);
}

// The weight of id in a dictionary sorted by id; -1 when absent.
static double weight_of(const m3_sparse_weight *s, size_t n, int32_t id) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && s[lo].id == id ? s[lo].weight : -1.0;
}

typedef struct fidelity {
    double dense, colbert, lex;  // worst: lowest cosines, largest weight error
    int top_mismatch;            // cases whose heaviest ids differ
} fidelity;

// The heaviest TOP ids of want must be those of got, each weight within LEX_TOL. want is sorted
// by id (as m3_embedding's). Returns the largest weight error, or INFINITY when the ids differ.
static double compare_top(const m3_sparse_weight *want, size_t n_want, const m3_sparse_weight *got,
                          size_t n_got) {
    m3_sparse_weight *a = malloc((n_want + 1) * sizeof *a), *b = malloc((n_got + 1) * sizeof *b);
    memcpy(a, want, n_want * sizeof *a);
    memcpy(b, got, n_got * sizeof *b);
    qsort(a, n_want, sizeof *a, by_weight_desc);
    qsort(b, n_got, sizeof *b, by_weight_desc);
    size_t top = n_want < TOP ? n_want : TOP;
    double worst = 0;
    for (size_t i = 0; i < top && isfinite(worst); i++) {
        double w = weight_of(got, n_got, a[i].id);
        bool in_top = false;
        for (size_t j = 0; j < top && j < n_got; j++)
            in_top = in_top || b[j].id == a[i].id;
        worst = in_top && w >= 0 ? fmax(worst, fabs(w - a[i].weight)) : INFINITY;
    }
    free(a);
    free(b);
    return worst;
}

// bf16 (strict): every bar; int8: the dense bar INT8_DENSE_MIN, the rest measured only.
static void compare(const char *what, size_t k, const m3_embedding *want, const m3_embedding *got,
                    fidelity *f, bool strict) {
    size_t h = want->dim;
    double d = cosine(want->dense, got->dense, h);
    double c = 0;
    for (size_t i = 0; i < want->n_colbert; i++)
        c += cosine(want->colbert + i * h, got->colbert + i * h, h);
    c = want->n_colbert ? c / (double)want->n_colbert : 1.0;
    double l = compare_top(want->sparse, want->n_sparse, got->sparse, got->n_sparse);
    CHECK(d >= (strict ? DENSE_MIN : INT8_DENSE_MIN), "%s case %zu: dense cosine %.6f", what, k, d);
    CHECK(!strict || c >= COLBERT_MIN, "%s case %zu: mean colbert cosine %.6f", what, k, c);
    CHECK(!strict || isfinite(l), "%s case %zu: the %d heaviest lexical ids differ", what, k, TOP);
    CHECK(!strict || !isfinite(l) || l <= LEX_TOL, "%s case %zu: lexical weight error %.4f", what,
          k, l);
    f->dense = fmin(f->dense, d);
    f->colbert = fmin(f->colbert, c);
    if (isfinite(l))
        f->lex = fmax(f->lex, l);
    else
        f->top_mismatch++;
}

static m3_embedding *encode_all(const m3_model *model, m3_precision precision,
                                const m3_sequence *seqs, size_t n, char *kernel, size_t kernel_len) {
    m3_encoder_options opt = m3_encoder_options_default();
    opt.precision = precision;
    m3_encoder *enc;
    m3_error err = {0};
    if (m3_encoder_new(model, &opt, &enc, &err) != M3_STATUS_OK) {
        printf("FAIL: m3_encoder_new: %s\n", err.message);
        exit(1);
    }
    snprintf(kernel, kernel_len, "%s", m3_encoder_kernel_name(enc));
    m3_embedding *out = calloc(n, sizeof *out);
    for (size_t k = 0; k < n; k++)
        if (m3_encoder_encode(enc, &seqs[k], 1, M3_OUTPUT_ALL, &out[k], &err) != M3_STATUS_OK) {
            printf("FAIL: encode case %zu: %s\n", k, err.message);
            exit(1);
        }
    m3_encoder_free(enc);
    return out;
}

static void report(const char *what, const char *kernel, const fidelity *f) {
    printf("%-28s %-40s dense cos >= %.6f, colbert mean cos >= %.6f, top-%d lexical weight error "
           "<= %.4f, top-%d id mismatches %d\n",
           what, kernel, f->dense, f->colbert, TOP, f->lex, TOP, f->top_mismatch);
}

// Part 1: the tiny model and the transformers reference.
static void tiny_model(const char *data) {
    char path[4096];
    m3_error err = {0};
    snprintf(path, sizeof path, "%s/m3-tiny", data);
    m3_model *model;
    if (m3_model_open(path, &model, &err) != M3_STATUS_OK) {
        printf("FAIL: m3_model_open(%s): %s\n", path, err.message);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/m3_public.json", data);
    json_object *root = json_object_from_file(path);
    snprintf(path, sizeof path, "%s/m3_public.safetensors", data);
    m3_weights *refw;
    if (!root || m3_weights_open(path, &refw, &err) != M3_STATUS_OK) {
        printf("FAIL: cannot read the reference in %s\n", data);
        exit(1);
    }
    size_t h = (size_t)m3_model_get_config(model)->hidden;
    json_object *jcases = json_object_object_get(root, "cases");
    size_t n_all = json_object_array_length(jcases), n = 0;
    m3_sequence *seqs = calloc(n_all, sizeof *seqs);
    m3_embedding *ref = calloc(n_all, sizeof *ref);  // the transformers reference: dense, lexical
    char (*case_names)[24] = calloc(n_all, sizeof *case_names);
    for (size_t ci = 0; ci < n_all; ci++) {
        json_object *c = json_object_array_get_idx(jcases, ci);
        json_object *ids = json_object_object_get(c, "ids");
        size_t len = json_object_array_length(ids);
        if (len > 1024)
            continue;
        size_t k = n++;
        snprintf(case_names[k], sizeof case_names[k], "c%zu", ci);
        int32_t *v = malloc(len * sizeof *v);
        for (size_t i = 0; i < len; i++)
            v[i] = json_object_get_int(json_object_array_get_idx(ids, i));
        seqs[k] = (m3_sequence){v, len};
        json_object *lex = json_object_object_get(c, "lexical_weights");
        ref[k].sparse = malloc(((size_t)json_object_object_length(lex) + 1) * sizeof *ref[k].sparse);
        json_object_object_foreach(lex, key, val) {
            ref[k].sparse[ref[k].n_sparse++] =
                (m3_sparse_weight){atoi(key), (float)json_object_get_double(val)};
        }
        qsort(ref[k].sparse, ref[k].n_sparse, sizeof *ref[k].sparse, by_weight_desc);
        // by id, as m3_embedding's
        for (size_t i = 1; i < ref[k].n_sparse; i++)
            for (size_t j = i; j > 0 && ref[k].sparse[j - 1].id > ref[k].sparse[j].id; j--) {
                m3_sparse_weight t = ref[k].sparse[j];
                ref[k].sparse[j] = ref[k].sparse[j - 1];
                ref[k].sparse[j - 1] = t;
            }
        char name[64];
        snprintf(name, sizeof name, "%s.dense", case_names[k]);
        const m3_tensor *t = m3_weights_find(refw, name);
        if (!t || m3_tensor_numel(t) != (int64_t)h) {
            printf("FAIL: reference tensor %s\n", name);
            exit(1);
        }
        ref[k].dense = malloc(h * sizeof(float));
        m3_tensor_to_f32(t, ref[k].dense);
        ref[k].dim = h;
    }

    char kernel[128];
    m3_embedding *fp32 = encode_all(model, M3_PRECISION_FP32, seqs, n, kernel, sizeof kernel);
    static const struct { const char *kernel; m3_precision precision; } kernels[] = {
        {"bf16-scalar", M3_PRECISION_BF16},     {"bf16-avx512", M3_PRECISION_BF16},
        {"bf16-amx", M3_PRECISION_BF16},        {"bf16-amx-model", M3_PRECISION_BF16},
        {"int8-scalar", M3_PRECISION_INT8},     {"int8-avx2", M3_PRECISION_INT8},
        {"int8-avxvnni", M3_PRECISION_INT8},    {"int8-avx512vnni", M3_PRECISION_INT8},
    };
    for (size_t ki = 0; ki < sizeof kernels / sizeof *kernels; ki++) {
        bool strict = kernels[ki].precision == M3_PRECISION_BF16;
        const char *pname = m3_precision_name(kernels[ki].precision);
        char vs_fp32_what[64], vs_ref_what[64];
        snprintf(vs_fp32_what, sizeof vs_fp32_what, "tiny, %s vs fp32:", pname);
        snprintf(vs_ref_what, sizeof vs_ref_what, "tiny, %s vs transformers:", pname);
        setenv("M3_GEMM_KERNEL", kernels[ki].kernel, 1);
        m3_embedding *got = encode_all(model, kernels[ki].precision, seqs, n, kernel, sizeof kernel);
        if (!strstr(kernel, kernels[ki].kernel)) {
            printf("%s: not on this CPU (%s), skipped\n", kernels[ki].kernel, kernel);
        } else {
            fidelity vs_fp32 = {1, 1, 0, 0}, vs_ref = {1, 1, 0, 0};
            for (size_t k = 0; k < n; k++) {
                compare(vs_fp32_what, k, &fp32[k], &got[k], &vs_fp32, strict);
                double d = cosine(ref[k].dense, got[k].dense, h);
                CHECK(d >= (strict ? DENSE_MIN : INT8_DENSE_MIN),
                      "%s case %zu: dense cosine %.6f", vs_ref_what, k, d);
                vs_ref.dense = fmin(vs_ref.dense, d);
                double l = compare_top(ref[k].sparse, ref[k].n_sparse, got[k].sparse,
                                       got[k].n_sparse);
                CHECK(!strict || (isfinite(l) && l <= LEX_TOL),
                      "%s case %zu: top-%d lexical ids/weights (%.4f)", vs_ref_what, k, TOP, l);
                if (isfinite(l))
                    vs_ref.lex = fmax(vs_ref.lex, l);
                else
                    vs_ref.top_mismatch++;
            }
            report(vs_fp32_what, kernel, &vs_fp32);
            printf("%-28s %-40s dense cos >= %.6f, top-%d lexical weight error <= %.4f, "
                   "mismatches %d\n",
                   vs_ref_what, kernel, vs_ref.dense, TOP, vs_ref.lex, vs_ref.top_mismatch);
        }
        for (size_t k = 0; k < n; k++)
            m3_embedding_clear(&got[k]);
        free(got);
    }
    unsetenv("M3_GEMM_KERNEL");
    for (size_t k = 0; k < n; k++) {
        m3_embedding_clear(&fp32[k]);
        m3_embedding_clear(&ref[k]);
        free((void *)seqs[k].ids);
    }
    printf("tiny: %zu of %zu reference cases (those up to 1024 tokens)\n", n, n_all);
    free(fp32);
    free(ref);
    free(seqs);
    free(case_names);
    m3_weights_close(refw);
    json_object_put(root);
    m3_model_close(model);
}

// Part 2: BGE-M3 widths, random weights, against the fp32 path.
static void bge_m3_widths(void) {
    m3_model_config cfg = m3_model_config_bge_m3();
    cfg.layers = getenv("M3_TEST_LAYERS") ? atoi(getenv("M3_TEST_LAYERS")) : 2;
    if (cfg.layers < 1 || cfg.layers > 24)
        cfg.layers = 2;
    cfg.vocab = 4000;
    cfg.max_positions = 514;
    m3_model *model;
    m3_error err = {0};
    if (m3_model_new_random(&cfg, 7, &model, &err) != M3_STATUS_OK) {
        printf("FAIL: m3_model_new_random: %s\n", err.message);
        exit(1);
    }
    static const size_t lens[] = {16, 77, 300};
    enum { N = sizeof lens / sizeof *lens };
    m3_sequence seqs[N];
    uint64_t x = 99;
    for (size_t k = 0; k < N; k++) {
        int32_t *v = malloc(lens[k] * sizeof *v);
        v[0] = 0;
        for (size_t i = 1; i + 1 < lens[k]; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            v[i] = 4 + (int32_t)((x >> 33) % (uint64_t)(cfg.vocab - 4));
        }
        v[lens[k] - 1] = 2;
        seqs[k] = (m3_sequence){v, lens[k]};
    }
    char kernel[128];
    m3_embedding *fp32 = encode_all(model, M3_PRECISION_FP32, seqs, N, kernel, sizeof kernel);
    m3_embedding *bf16 = encode_all(model, M3_PRECISION_BF16, seqs, N, kernel, sizeof kernel);
    fidelity f = {1, 1, 0, 0};
    for (size_t k = 0; k < N; k++)
        compare("BGE-M3 widths bf16 vs fp32", k, &fp32[k], &bf16[k], &f, true);
    printf("BGE-M3 widths, %d layers:\n", cfg.layers);
    report("BGE-M3 widths, bf16 vs fp32:", kernel, &f);
    m3_embedding *int8 = encode_all(model, M3_PRECISION_INT8, seqs, N, kernel, sizeof kernel);
    fidelity fi = {1, 1, 0, 0};
    for (size_t k = 0; k < N; k++)
        compare("BGE-M3 widths int8 vs fp32", k, &fp32[k], &int8[k], &fi, false);
    report("BGE-M3 widths, int8 vs fp32:", kernel, &fi);
    {   // auto: bf16 exactly where the CPU has a bf16 kernel of its own.
        m3_encoder_options opt = m3_encoder_options_default();
        opt.precision = M3_PRECISION_AUTO;
        m3_encoder *enc;
        CHECK(m3_encoder_new(model, &opt, &enc, &err) == M3_STATUS_OK, "auto: %s", err.message);
        bool native = false;
#if defined(__x86_64__)
        __builtin_cpu_init();
        native = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#endif
        CHECK(m3_encoder_precision(enc) == (native ? M3_PRECISION_BF16 : M3_PRECISION_FP32),
              "auto chose %s", m3_precision_name(m3_encoder_precision(enc)));
        printf("auto: %s (%s)\n", m3_precision_name(m3_encoder_precision(enc)),
               m3_encoder_kernel_name(enc));
        m3_encoder_free(enc);
    }
    for (size_t k = 0; k < N; k++) {
        m3_embedding_clear(&fp32[k]);
        m3_embedding_clear(&bf16[k]);
        m3_embedding_clear(&int8[k]);
        free((void *)seqs[k].ids);
    }
    free(fp32);
    free(bf16);
    free(int8);
    m3_model_close(model);
}

int main(void) {
    const char *data = getenv("M3_TEST_DATA");
    if (!data) {
        printf("SKIP: M3_TEST_DATA is not set\n");
        return 77;
    }
    m3_precision p;
    m3_error err = {0};
    CHECK(m3_precision_parse("bf16", &p, &err) == M3_STATUS_OK && p == M3_PRECISION_BF16, "bf16");
    CHECK(m3_precision_parse("int8", &p, &err) == M3_STATUS_OK && p == M3_PRECISION_INT8, "int8");
    CHECK(strcmp(m3_precision_name(M3_PRECISION_INT8), "int8") == 0, "int8 name");
    CHECK(m3_precision_parse("auto", &p, &err) == M3_STATUS_OK && p == M3_PRECISION_AUTO, "auto");
    CHECK(m3_precision_parse("fp16", &p, &err) == M3_STATUS_INVALID && strstr(err.message, "fp16"),
          "fp16 accepted or unnamed: %s", err.message);
    CHECK(strcmp(m3_precision_name(M3_PRECISION_FP32), "fp32") == 0, "name");

    tiny_model(data);
    bge_m3_widths();
    if (failures)
        printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
