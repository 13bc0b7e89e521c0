// SPDX-License-Identifier: MIT
//
// A BGE-M3 model folder: config.json, the encoder weights (model.safetensors or pytorch_model.bin),
// the ColBERT and sparse heads and the SentencePiece tokenizer; or a random model in memory.
#include "model/model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/mapped-file.h"
#include "model/gguf-private.h"
#include "model/weights.h"

struct m3_model {
    m3_model_config config;
    m3_model_weights weights;
    m3_layer_weights *layers;
    m3_weights *encoder, *colbert, *sparse;  // NULL for a random model
    m3_tokenizer *tokenizer;                 // NULL for a random model
    m3_gguf_packed packed;                   // a model file's packed weights (empty otherwise)
    char *path;
    // A random model owns its tensors, their names and one buffer holding every value.
    m3_tensor *own;
    size_t n_own;
    float *values;
};

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

// Maps errors of opening a required file: a missing file is M3_STATUS_NOT_FOUND, with a hint.
static m3_status missing(m3_error *err, const char *path)
{
    return m3_error_set(err, M3_STATUS_NOT_FOUND, ENOENT,
                        "%s: missing (a BGE-M3 model folder holds config.json, model.safetensors or "
                        "pytorch_model.bin, colbert_linear.pt, sparse_linear.pt, sentencepiece.bpe.model)",
                        path);
}

static m3_status read_config(const char *path, m3_model_config *config, m3_error *err)
{
    if (!file_exists(path)) return missing(err, path);
    m3_mapped_file *f;
    m3_status st = m3_mapped_file_open(path, &f, err);
    if (st != M3_STATUS_OK) return st;
    st = m3_model_config_parse((const char *)f->data, f->size, path, config, err);
    m3_mapped_file_close(f);
    return st;
}

static m3_status open_weights(const char *path, m3_weights **out, m3_error *err)
{
    *out = NULL;
    if (!file_exists(path)) return missing(err, path);
    return m3_weights_open(path, out, err);
}

// Finds `name`, or `roberta.<name>` as some exports write it, and checks its shape.
static m3_status resolve(const m3_weights *w, const char *name, int ndim, int64_t d0, int64_t d1,
                         const m3_tensor **out, m3_error *err)
{
    const m3_tensor *t = m3_weights_find(w, name);
    if (!t) {
        char prefixed[M3_ERROR_MESSAGE_MAX];
        snprintf(prefixed, sizeof prefixed, "roberta.%s", name);
        t = m3_weights_find(w, prefixed);
    }
    if (!t)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: tensor %s is missing", m3_weights_path(w), name);
    int64_t shape[2] = {d0, d1};
    m3_status st = m3_tensor_check_shape(t, m3_weights_path(w), ndim, shape, err);
    if (st != M3_STATUS_OK) return st;
    *out = t;
    return M3_STATUS_OK;
}

// Resolves every tensor of m3_model_weights against the configuration.
static m3_status resolve_all(m3_model *m, m3_error *err)
{
    const m3_model_config *c = &m->config;
    m3_model_weights *mw = &m->weights;
    const m3_weights *w = m->encoder;
    int64_t H = c->hidden, I = c->intermediate;
    m3_status st;
    if ((st = resolve(w, "embeddings.word_embeddings.weight", 2, c->vocab, H, &mw->word, err)) ||
        (st = resolve(w, "embeddings.position_embeddings.weight", 2, c->max_positions, H, &mw->position, err)) ||
        (st = resolve(w, "embeddings.token_type_embeddings.weight", 2, c->type_vocab, H, &mw->token_type, err)) ||
        (st = resolve(w, "embeddings.LayerNorm.weight", 1, H, 0, &mw->emb_ln_w, err)) ||
        (st = resolve(w, "embeddings.LayerNorm.bias", 1, H, 0, &mw->emb_ln_b, err)))
        return st;
    for (int l = 0; l < c->layers; l++) {
        m3_layer_weights *L = &m->layers[l];
        struct {
            const char *suffix;
            int ndim;
            int64_t d0, d1;
            const m3_tensor **slot;
        } table[] = {
            {"attention.self.query.weight", 2, H, H, &L->query_w},
            {"attention.self.query.bias", 1, H, 0, &L->query_b},
            {"attention.self.key.weight", 2, H, H, &L->key_w},
            {"attention.self.key.bias", 1, H, 0, &L->key_b},
            {"attention.self.value.weight", 2, H, H, &L->value_w},
            {"attention.self.value.bias", 1, H, 0, &L->value_b},
            {"attention.output.dense.weight", 2, H, H, &L->attn_out_w},
            {"attention.output.dense.bias", 1, H, 0, &L->attn_out_b},
            {"attention.output.LayerNorm.weight", 1, H, 0, &L->attn_ln_w},
            {"attention.output.LayerNorm.bias", 1, H, 0, &L->attn_ln_b},
            {"intermediate.dense.weight", 2, I, H, &L->ffn_in_w},
            {"intermediate.dense.bias", 1, I, 0, &L->ffn_in_b},
            {"output.dense.weight", 2, H, I, &L->ffn_out_w},
            {"output.dense.bias", 1, H, 0, &L->ffn_out_b},
            {"output.LayerNorm.weight", 1, H, 0, &L->ffn_ln_w},
            {"output.LayerNorm.bias", 1, H, 0, &L->ffn_ln_b},
        };
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
            char name[128];
            snprintf(name, sizeof name, "encoder.layer.%d.%s", l, table[i].suffix);
            st = resolve(w, name, table[i].ndim, table[i].d0, table[i].d1, table[i].slot, err);
            if (st != M3_STATUS_OK) return st;
        }
    }
    if ((st = resolve(m->colbert, "weight", 2, H, H, &mw->colbert_w, err)) ||
        (st = resolve(m->colbert, "bias", 1, H, 0, &mw->colbert_b, err)) ||
        (st = resolve(m->sparse, "weight", 2, 1, H, &mw->sparse_w, err)) ||
        (st = resolve(m->sparse, "bias", 1, 1, 0, &mw->sparse_b, err)))
        return st;
    return M3_STATUS_OK;
}

static m3_model *model_alloc(const m3_model_config *config, const char *path)
{
    m3_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->config = *config;
    m->layers = calloc((size_t)config->layers, sizeof *m->layers);
    m->path = strdup(path);
    if (!m->layers || !m->path) {
        m3_model_close(m);
        return NULL;
    }
    m->weights.layers = m->layers;
    return m;
}

m3_status m3_model_open_gguf(m3_mapped_file *file, m3_model **out, m3_error *err)
{
    *out = NULL;
    m3_gguf_model_parts parts;
    m3_status st = m3_gguf_load_parts(file, &parts, err);
    if (st != M3_STATUS_OK) return st;
    m3_model *m = model_alloc(&parts.config, parts.encoder ? m3_weights_path(parts.encoder) : "?");
    if (!m) {
        m3_gguf_model_parts_clear(&parts);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "model file: out of memory");
    }
    m->encoder = parts.encoder;
    m->colbert = parts.colbert;
    m->sparse = parts.sparse;
    m->tokenizer = parts.tokenizer;
    m->packed = parts.packed;
    if ((st = resolve_all(m, err)) != M3_STATUS_OK) {
        m3_model_close(m);
        return st;
    }
    *out = m;
    return M3_STATUS_OK;
}

// A regular file is a model file: GGUF (by its magic), or an error that says what was expected.
static m3_status open_file(const char *path, m3_model **out, m3_error *err)
{
    m3_mapped_file *f;
    m3_status st = m3_mapped_file_open(path, &f, err);
    if (st != M3_STATUS_OK) return st;
    if (f->size < 4 || memcmp(f->data, M3_GGUF_MAGIC, 4) != 0) {
        m3_mapped_file_close(f);
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: not a GGUF model file (no GGUF magic); --model takes a model folder or a "
                            "file made by `m3 model convert`",
                            path);
    }
    return m3_model_open_gguf(f, out, err);
}

m3_status m3_model_open(const char *dir, m3_model **out, m3_error *err)
{
    *out = NULL;
    if (!dir[0]) return m3_error_set(err, M3_STATUS_INVALID, 0, "the model path is empty");
    struct stat fsb;
    if (stat(dir, &fsb) == 0 && S_ISREG(fsb.st_mode)) return open_file(dir, out, err);
    m3_model_config config;
    m3_model *m = NULL;
    char *p_config = join(dir, "config.json"), *p_st = join(dir, "model.safetensors"),
         *p_bin = join(dir, "pytorch_model.bin"), *p_colbert = join(dir, "colbert_linear.pt"),
         *p_sparse = join(dir, "sparse_linear.pt"), *p_tok = join(dir, "sentencepiece.bpe.model");
    m3_status st = M3_STATUS_OK;
    if (!p_config || !p_st || !p_bin || !p_colbert || !p_sparse || !p_tok) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", dir);
        goto done;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        st = errno == ENOENT ? m3_error_set(err, M3_STATUS_NOT_FOUND, ENOENT, "%s: no such model folder", dir)
                             : m3_error_errno(err, errno, "cannot open the model folder", dir);
        goto done;
    }
    if ((st = read_config(p_config, &config, err))) goto done;
    m = model_alloc(&config, dir);
    if (!m) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", dir);
        goto done;
    }
    // model.safetensors maps faster and is simpler to validate; the pickle is the fallback.
    if ((st = open_weights(file_exists(p_st) ? p_st : p_bin, &m->encoder, err)) ||
        (st = open_weights(p_colbert, &m->colbert, err)) || (st = open_weights(p_sparse, &m->sparse, err)) ||
        (st = resolve_all(m, err)))
        goto done;
    if (!file_exists(p_tok)) {
        st = missing(err, p_tok);
        goto done;
    }
    if ((st = m3_tokenizer_open(p_tok, &m->tokenizer, err))) goto done;
done:
    free(p_config);
    free(p_st);
    free(p_bin);
    free(p_colbert);
    free(p_sparse);
    free(p_tok);
    if (st != M3_STATUS_OK) {
        m3_model_close(m);
        return st;
    }
    *out = m;
    return M3_STATUS_OK;
}

// xorshift64*: cheap, deterministic, good enough for weights whose values do not matter.
static inline uint64_t next_random(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void fill_uniform(float *dst, int64_t n, uint64_t seed, float scale)
{
    uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ULL;
    // Two values per draw: the high 24 bits of each half, mapped to [-1, 1).
    const float k = scale / 8388608.0f;
    int64_t i = 0;
    for (; i + 1 < n; i += 2) {
        uint64_t r = next_random(&s);
        dst[i] = (float)((int32_t)(uint32_t)(r >> 40) - 8388608) * k;
        dst[i + 1] = (float)((int32_t)(uint32_t)((r >> 8) & 0xffffffu) - 8388608) * k;
    }
    if (i < n) dst[i] = (float)((int32_t)(uint32_t)(next_random(&s) >> 40) - 8388608) * k;
}

static void fill_const(float *dst, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++) dst[i] = v;
}

enum fill_kind { FILL_RANDOM, FILL_ONE, FILL_ZERO };

m3_status m3_model_new_random(const m3_model_config *config, uint64_t seed, m3_model **out, m3_error *err)
{
    *out = NULL;
    m3_status st = m3_model_config_check(config, "random model", err);
    if (st != M3_STATUS_OK) return st;
    m3_model *m = model_alloc(config, "random");
    if (!m) return m3_error_set(err, M3_STATUS_NOMEM, 0, "random model: out of memory");
    const m3_model_config *c = &m->config;
    int64_t H = c->hidden, I = c->intermediate;
    size_t n_tensors = 5 + 16 * (size_t)c->layers + 4;
    m->own = calloc(n_tensors, sizeof *m->own);
    if (!m->own) {
        m3_model_close(m);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "random model: out of memory");
    }
    struct spec {
        const char *name;
        int ndim;
        int64_t d0, d1;
        enum fill_kind fill;
        const m3_tensor **slot;
    };
    // Two passes over the same list: count the values, then carve the buffer and fill it.
    float *values = NULL;
    for (int pass = 0; pass < 2; pass++) {
        int64_t total = 0;
        size_t k = 0;
        m3_model_weights *mw = &m->weights;
#define ADD(NAME, NDIM, D0, D1, FILL, SLOT)                                                          \
    do {                                                                                             \
        struct spec sp = {NAME, NDIM, D0, D1, FILL, SLOT};                                           \
        int64_t n = sp.ndim == 2 ? sp.d0 * sp.d1 : sp.d0;                                            \
        if (pass == 1) {                                                                             \
            m3_tensor *t = &m->own[k];                                                               \
            t->name = sp.name;                                                                       \
            t->dtype = M3_DTYPE_F32;                                                                 \
            t->ndim = sp.ndim;                                                                       \
            t->shape[0] = sp.d0;                                                                     \
            t->shape[1] = sp.d1;                                                                     \
            t->strides[0] = sp.ndim == 2 ? sp.d1 : 1;                                                \
            t->strides[1] = 1;                                                                       \
            t->data = values + total;                                                                \
            if (sp.fill == FILL_RANDOM) fill_uniform(values + total, n, seed * 0x100000001B3ULL + k + 1, 0.0346f); \
            else fill_const(values + total, n, sp.fill == FILL_ONE ? 1.0f : 0.0f);                 \
            *sp.slot = t;                                                                            \
        }                                                                                            \
        k++;                                                                                         \
        total += n;                                                                                  \
    } while (0)
        // Uniform in [-0.0346, 0.0346) has standard deviation 0.02, BERT's initializer range.
        ADD("embeddings.word_embeddings.weight", 2, c->vocab, H, FILL_RANDOM, &mw->word);
        ADD("embeddings.position_embeddings.weight", 2, c->max_positions, H, FILL_RANDOM, &mw->position);
        ADD("embeddings.token_type_embeddings.weight", 2, c->type_vocab, H, FILL_RANDOM, &mw->token_type);
        ADD("embeddings.LayerNorm.weight", 1, H, 0, FILL_ONE, &mw->emb_ln_w);
        ADD("embeddings.LayerNorm.bias", 1, H, 0, FILL_ZERO, &mw->emb_ln_b);
        for (int l = 0; l < c->layers; l++) {
            m3_layer_weights *L = &m->layers[l];
            ADD("query.weight", 2, H, H, FILL_RANDOM, &L->query_w);
            ADD("query.bias", 1, H, 0, FILL_ZERO, &L->query_b);
            ADD("key.weight", 2, H, H, FILL_RANDOM, &L->key_w);
            ADD("key.bias", 1, H, 0, FILL_ZERO, &L->key_b);
            ADD("value.weight", 2, H, H, FILL_RANDOM, &L->value_w);
            ADD("value.bias", 1, H, 0, FILL_ZERO, &L->value_b);
            ADD("attention.output.dense.weight", 2, H, H, FILL_RANDOM, &L->attn_out_w);
            ADD("attention.output.dense.bias", 1, H, 0, FILL_ZERO, &L->attn_out_b);
            ADD("attention.output.LayerNorm.weight", 1, H, 0, FILL_ONE, &L->attn_ln_w);
            ADD("attention.output.LayerNorm.bias", 1, H, 0, FILL_ZERO, &L->attn_ln_b);
            ADD("intermediate.dense.weight", 2, I, H, FILL_RANDOM, &L->ffn_in_w);
            ADD("intermediate.dense.bias", 1, I, 0, FILL_ZERO, &L->ffn_in_b);
            ADD("output.dense.weight", 2, H, I, FILL_RANDOM, &L->ffn_out_w);
            ADD("output.dense.bias", 1, H, 0, FILL_ZERO, &L->ffn_out_b);
            ADD("output.LayerNorm.weight", 1, H, 0, FILL_ONE, &L->ffn_ln_w);
            ADD("output.LayerNorm.bias", 1, H, 0, FILL_ZERO, &L->ffn_ln_b);
        }
        ADD("colbert.weight", 2, H, H, FILL_RANDOM, &mw->colbert_w);
        ADD("colbert.bias", 1, H, 0, FILL_ZERO, &mw->colbert_b);
        ADD("sparse.weight", 2, 1, H, FILL_RANDOM, &mw->sparse_w);
        ADD("sparse.bias", 1, 1, 0, FILL_ZERO, &mw->sparse_b);
#undef ADD
        if (pass == 0) {
            values = malloc((size_t)total * sizeof *values);
            if (!values) {
                m3_model_close(m);
                return m3_error_set(err, M3_STATUS_NOMEM, 0, "random model: out of memory (%lld MB of weights)",
                                    (long long)(total * 4 / 1000000));
            }
            m->values = values;
        } else {
            m->n_own = k;
        }
    }
    *out = m;
    return M3_STATUS_OK;
}

const m3_model_config *m3_model_get_config(const m3_model *model)
{
    return &model->config;
}

const m3_model_weights *m3_model_get_weights(const m3_model *model)
{
    return &model->weights;
}

const m3_tokenizer *m3_model_get_tokenizer(const m3_model *model)
{
    return model->tokenizer;
}

const char *m3_model_packed_layout(const m3_model *model, const char *precision)
{
    return m3_gguf_packed_layout_of(&model->packed, precision);
}

const void *m3_model_packed_find(const m3_model *model, const char *precision, const char *name, size_t *bytes)
{
    return m3_gguf_packed_find(&model->packed, precision, name, bytes);
}

const char *m3_model_get_path(const m3_model *model)
{
    return model->path;
}

void m3_model_close(m3_model *model)
{
    if (!model) return;
    m3_tokenizer_free(model->tokenizer);
    m3_gguf_packed_clear(&model->packed);
    m3_weights_close(model->encoder);
    m3_weights_close(model->colbert);
    m3_weights_close(model->sparse);
    free(model->layers);
    free(model->own);
    free(model->values);
    free(model->path);
    free(model);
}
