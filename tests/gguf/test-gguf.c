// SPDX-License-Identifier: MIT
//
// The one-file model (GGUF, docs/model-file.md) on m3-tiny:
//   1. convert to f32 and f16; both open and carry the folder's config;
//   2. the tokenizer from the file gives the .model's ids and the reference ids (tokenize_public.json)
//      for all reference texts, untruncated and at max_length 16; its piece trie is used in place from
//      the mapping; a file without the trie (as written before it existed), with a trie of another
//      version, damaged (SHA-256 mismatch) or resealed with a bad node (the tokenizer's own check)
//      opens with the trie rebuilt, a warning where it is damage, and the same ids;
//   3. encoder parity: f32 file == folder (bitwise); f16 file against the float64 reference
//      (dense cosine >= 0.9999, every ColBERT vector's cosine >= 0.999, lexical weights within
//      5e-3 absolute; measured 2.1e-3 on m3-tiny, whose weights reach 4); the errors are printed;
//   4. damage: the file truncated at many offsets, and bit flips in the header, never open silently
//      wrong or crash: open fails with a message naming the file, or (a flip in a value the
//      structure cannot judge, e.g. a score) m3_model_verify reports the checksum mismatch; a bit
//      flipped in tensor data opens (no hashing at open) and fails verify.
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mapped-file.h"
#include "encoder/encoder.h"
#include "model/gguf-private.h"
#include "model/model.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

static int failures, checks;

#define CHECK(cond, ...)                                      \
    do {                                                      \
        checks++;                                             \
        if (!(cond)) {                                        \
            failures++;                                       \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);       \
            printf(__VA_ARGS__);                              \
            printf("\n");                                     \
        }                                                     \
    } while (0)

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc((size_t)len + 1);
    if (d && fread(d, 1, (size_t)len, f) != (size_t)len) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return d;
}

static bool write_file(const char *path, const unsigned char *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(d, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

// How many of the 2 x 437 reference encodings (ids, ids_max16 of tokenize_public.json) tok gives.
static size_t reference_encodings(const char *data, const m3_tokenizer *tok, size_t *total)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenize_public.json", data);
    json_object *root = json_object_from_file(path);
    json_object *cases = root ? json_object_object_get(root, "cases") : NULL;
    size_t n = cases ? json_object_array_length(cases) : 0, same = 0;
    for (size_t k = 0; k < n; k++) {
        json_object *c = json_object_array_get_idx(cases, k), *t = json_object_object_get(c, "text");
        for (int pass = 0; pass < 2; pass++) {
            json_object *want = json_object_object_get(c, pass ? "ids_max16" : "ids");
            int32_t *ids = NULL;
            size_t n_ids = 0;
            m3_error err = {0};
            bool ok = m3_tokenizer_encode(tok, json_object_get_string(t), (size_t)json_object_get_string_len(t),
                                          pass ? 16 : 8192, &ids, &n_ids, &err) == M3_STATUS_OK &&
                      n_ids == json_object_array_length(want);
            for (size_t i = 0; ok && i < n_ids; i++) ok = ids[i] == json_object_get_int(json_object_array_get_idx(want, i));
            same += ok;
            free(ids);
        }
    }
    json_object_put(root);
    *total = 2 * n;
    return same;
}

static void test_tokenizer(const char *data, const m3_tokenizer *from_file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/m3-tiny/sentencepiece.bpe.model", data);
    m3_tokenizer *ref;
    m3_error err = {0};
    if (m3_tokenizer_open(path, &ref, &err) != M3_STATUS_OK) {
        CHECK(0, "%s", err.message);
        return;
    }
    CHECK(m3_tokenizer_vocab_size(ref) == m3_tokenizer_vocab_size(from_file), "vocab sizes differ");
    for (size_t id = 0; id < m3_tokenizer_vocab_size(ref); id++)
        if (strcmp(m3_tokenizer_piece(ref, (int32_t)id), m3_tokenizer_piece(from_file, (int32_t)id)) != 0) {
            CHECK(0, "piece %zu differs", id);
            break;
        }
    snprintf(path, sizeof path, "%s/tokenize_public.json", data);
    json_object *root = json_object_from_file(path);
    json_object *cases = json_object_object_get(root, "cases");
    size_t n = json_object_array_length(cases), same = 0;
    for (size_t k = 0; k < n; k++) {
        json_object *t = json_object_object_get(json_object_array_get_idx(cases, k), "text");
        const char *text = json_object_get_string(t);
        size_t len = (size_t)json_object_get_string_len(t);
        for (size_t max = 16; max <= 8192; max += 8192 - 16) {
            int32_t *a = NULL, *b = NULL;
            size_t na = 0, nb = 0;
            m3_tokenizer_encode(ref, text, len, max, &a, &na, &err);
            m3_tokenizer_encode(from_file, text, len, max, &b, &nb, &err);
            if (na == nb && !memcmp(a, b, na * sizeof *a)) same++;
            else CHECK(0, "text %zu (max_length %zu): ids differ", k, max);
            free(a);
            free(b);
        }
    }
    CHECK(n == 437 && same == 2 * n, "tokenizer from the file: %zu of %zu", same, 2 * n);
    printf("tokenizer from the model file: %zu/%zu encodings equal to the .model's\n", same, 2 * n);
    size_t total, good = reference_encodings(data, from_file, &total);
    CHECK(total == 874 && good == total, "tokenizer from the file: %zu of %zu reference encodings", good, total);
    printf("tokenizer from the model file: %zu/%zu reference encodings (tokenize_public.json) equal\n", good, total);
    json_object_put(root);
    m3_tokenizer_free(ref);
}

// ---- the stored piece trie ----

static char last_log[1024];
static int n_warnings, n_infos;

static void on_log(m3_log_level level, const char *message, void *user)
{
    (void)user;
    if (level <= M3_LOG_WARN) n_warnings++;
    else if (level == M3_LOG_INFO) n_infos++;
    else return;
    snprintf(last_log, sizeof last_log, "%s", message);
}

// Where the piece trie's blob and the token strings lie in the file bytes d[0..n) (offsets), or false.
static bool find_trie(const unsigned char *d, size_t n, size_t *blob, size_t *blob_size, size_t *tokens,
                      size_t *tokens_size)
{
    m3_mapped_file *f;
    m3_error err = {0};
    if (m3_mapped_file_wrap(d, n, "find-trie", &f, &err)) return false;
    m3_gguf g;
    bool ok = false;
    if (m3_gguf_parse(f, &g, &err) == M3_STATUS_OK) {
        const m3_gguf_kv *t = m3_gguf_find(&g, M3_GGUF_PIECE_TRIE_KEY), *k = m3_gguf_find(&g, "tokenizer.ggml.tokens");
        if (t && k) {
            *blob = (size_t)(t->value - d), *blob_size = t->size;
            *tokens = (size_t)(k->value - d), *tokens_size = k->size;
            ok = true;
        }
        m3_gguf_destroy(&g);
    }
    m3_mapped_file_close(f);
    return ok;
}

// Writes the SHA-256 a valid trie blob carries (over the token strings, then the nodes and ids).
static void reseal_trie(unsigned char *d, size_t blob, size_t blob_size, size_t tokens, size_t tokens_size)
{
    uint32_t h;
    memcpy(&h, d + blob + 8, 4);
    unsigned md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, d + tokens, tokens_size);
    EVP_DigestUpdate(ctx, d + blob + h, blob_size - h);
    EVP_DigestFinal_ex(ctx, d + blob + 24, &md_len);
    EVP_MD_CTX_free(ctx);
}

// Opens path through the GGUF reader and says whether the tokenizer uses the trie in the mapping.
static bool open_parts(const char *path, bool *in_place, m3_gguf_model_parts *parts)
{
    m3_mapped_file *f;
    m3_error err = {0};
    if (m3_mapped_file_open(path, &f, &err) != M3_STATUS_OK) {
        CHECK(0, "%s", err.message);
        return false;
    }
    const unsigned char *lo = f->data, *hi = f->data + f->size;
    if (m3_gguf_load_parts(f, parts, &err) != M3_STATUS_OK) {
        CHECK(0, "%s", err.message);
        return false;
    }
    const unsigned char *units = (const unsigned char *)m3_tokenizer_get_trie(parts->tokenizer).units;
    *in_place = units >= lo && units < hi;
    return true;
}

static void test_piece_trie(const char *data, const char *src, const char *good, const char *dir)
{
    m3_log_set(on_log, NULL, M3_LOG_DEBUG);
    m3_gguf_model_parts parts;
    bool in_place = false;
    size_t total, same;
    // 1. As written today: the trie is used from the mapping.
    n_warnings = n_infos = 0;
    if (open_parts(good, &in_place, &parts)) {
        same = reference_encodings(data, parts.tokenizer, &total);
        CHECK(in_place && n_warnings == 0, "the stored trie is used in place (in place %d, \"%s\")", in_place, last_log);
        CHECK(same == total, "stored trie: %zu of %zu reference encodings", same, total);
        printf("stored piece trie: used in place from the mapping, %zu/%zu reference encodings equal\n", same, total);
        m3_gguf_model_parts_clear(&parts);
    }
    // 2. A file without the trie (as written before it existed): built at open, no warning.
    char path[4200];
    snprintf(path, sizeof path, "%s/no-trie.gguf", dir);
    m3_model *model = NULL;
    m3_mapped_file *spm = NULL;
    m3_tokenizer_pieces pieces = {0};
    m3_error err = {0};
    char spm_path[4200];
    snprintf(spm_path, sizeof spm_path, "%s/sentencepiece.bpe.model", src);
    CHECK(m3_model_open(src, &model, &err) == M3_STATUS_OK && m3_mapped_file_open(spm_path, &spm, &err) == M3_STATUS_OK &&
              m3_tokenizer_pieces_read(spm->data, spm->size, spm_path, &pieces, &err) == M3_STATUS_OK &&
              m3_gguf_write(model, &pieces, M3_DTYPE_F16, M3_GGUF_WRITE_NO_PIECE_TRIE, NULL, path, &err) == M3_STATUS_OK,
          "write without the trie: %s", err.message);
    m3_tokenizer_pieces_clear(&pieces);
    m3_mapped_file_close(spm);
    m3_model_close(model);
    n_warnings = n_infos = 0;
    if (open_parts(path, &in_place, &parts)) {
        same = reference_encodings(data, parts.tokenizer, &total);
        CHECK(!in_place && n_warnings == 0 && same == total, "no trie: in place %d, %d warnings, %zu of %zu", in_place,
              n_warnings, same, total);
        printf("file without the trie: built at open, no warning, %zu/%zu reference encodings equal\n", same, total);
        m3_gguf_model_parts_clear(&parts);
    }
    CHECK(m3_model_verify(path, NULL, &err) == M3_STATUS_OK, "verify the file without the trie: %s", err.message);
    // 3. Damage: a flipped node (SHA-256 mismatch), another version, a resealed bad base.
    size_t n;
    unsigned char *d = read_file(good, &n);
    size_t blob = 0, blob_size = 0, tokens = 0, tokens_size = 0;
    CHECK(d && find_trie(d, n, &blob, &blob_size, &tokens, &tokens_size), "find the trie in %s", good);
    if (!d || !blob) {
        free(d);
        m3_log_set(NULL, NULL, M3_LOG_WARN);
        return;
    }
    uint32_t h;
    memcpy(&h, d + blob + 8, 4);
    CHECK((blob + h) % 8 == 0, "the trie's nodes start at a multiple of 8 in the file (%zu)", blob + h);
    static const struct {
        const char *what, *log;
        bool warn;
    } kinds[] = {
        {"a flipped bit in a node", "does not match its SHA-256", true},
        {"version 2", "version 2 is not read", false},
        {"a bad base, resealed with a right SHA-256", "outside", true},
        {"a header with another node count", "does not match its size", true},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        unsigned char *c = malloc(n);
        memcpy(c, d, n);
        if (k == 0) c[blob + h + 8 * 100 + 1] ^= 0x08;
        if (k == 1) c[blob + 4] = 2;
        if (k == 2) {
            int32_t bad = -7;
            memcpy(c + blob + h + 8 * 1, &bad, 4);  // node 1's base (the root's is checked too)
            memcpy(c + blob + h, &bad, 4);
            reseal_trie(c, blob, blob_size, tokens, tokens_size);
        }
        if (k == 3) c[blob + 12] ^= 0x01;
        snprintf(path, sizeof path, "%s/trie-damaged.gguf", dir);
        CHECK(write_file(path, c, n), "write");
        n_warnings = n_infos = 0;
        last_log[0] = 0;
        if (open_parts(path, &in_place, &parts)) {
            same = reference_encodings(data, parts.tokenizer, &total);
            CHECK(!in_place && (kinds[k].warn ? n_warnings == 1 : n_warnings == 0 && n_infos == 1) &&
                      strstr(last_log, kinds[k].log) && same == total,
                  "%s: in place %d, %d warnings, %d infos, \"%s\", %zu of %zu", kinds[k].what, in_place, n_warnings,
                  n_infos, last_log, same, total);
            printf("%s: opens with the trie rebuilt (%s \"%s\"), %zu/%zu reference encodings equal\n", kinds[k].what,
                   kinds[k].warn ? "warning" : "info", last_log, same, total);
            m3_gguf_model_parts_clear(&parts);
        }
        memset(&err, 0, sizeof err);
        CHECK(m3_model_verify(path, NULL, &err) == M3_STATUS_FORMAT && strstr(err.message, "checksum mismatch"),
              "%s: verify says \"%s\"", kinds[k].what, err.message);
        unlink(path);
        free(c);
    }
    free(d);
    m3_log_set(NULL, NULL, M3_LOG_WARN);
}

typedef struct outputs {
    m3_embedding *e;
    size_t n;
} outputs;

static outputs encode_reference(const char *data, const m3_model *model)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/m3_public.json", data);
    json_object *root = json_object_from_file(path);
    json_object *cases = json_object_object_get(root, "cases");
    outputs o = {calloc(json_object_array_length(cases), sizeof *o.e), json_object_array_length(cases)};
    m3_encoder_options opt = m3_encoder_options_default();
    opt.threads = 2;
    m3_encoder *enc;
    m3_error err = {0};
    if (m3_encoder_new(model, &opt, &enc, &err) != M3_STATUS_OK) {
        CHECK(0, "encoder: %s", err.message);
        json_object_put(root);
        return o;
    }
    for (size_t k = 0; k < o.n; k++) {
        json_object *ids = json_object_object_get(json_object_array_get_idx(cases, k), "ids");
        size_t n = json_object_array_length(ids);
        int32_t *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++) v[i] = json_object_get_int(json_object_array_get_idx(ids, i));
        m3_sequence seq = {v, n};
        CHECK(m3_encoder_encode(enc, &seq, 1, M3_OUTPUT_ALL, &o.e[k], &err) == M3_STATUS_OK, "encode: %s",
              err.message);
        free(v);
    }
    m3_encoder_free(enc);
    json_object_put(root);
    return o;
}

static void free_outputs(outputs *o)
{
    for (size_t k = 0; k < o->n; k++) m3_embedding_clear(&o->e[k]);
    free(o->e);
}

static double cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static void test_parity(const char *data, const m3_model *folder, const m3_model *f32, const m3_model *f16)
{
    outputs a = encode_reference(data, folder), b = encode_reference(data, f32), c = encode_reference(data, f16);
    // f32 file: the same bytes in, the same kernels: identical outputs.
    size_t identical = 0;
    for (size_t k = 0; k < a.n; k++) {
        const m3_embedding *x = &a.e[k], *y = &b.e[k];
        bool same = x->dim == y->dim && x->n_sparse == y->n_sparse && x->n_colbert == y->n_colbert &&
                    !memcmp(x->dense, y->dense, x->dim * sizeof(float)) &&
                    !memcmp(x->sparse, y->sparse, x->n_sparse * sizeof *x->sparse) &&
                    !memcmp(x->colbert, y->colbert, x->n_colbert * x->dim * sizeof(float));
        identical += same;
        CHECK(same, "case %zu: the f32 file's outputs differ from the folder's", k);
    }
    printf("f32 model file: %zu/%zu cases bitwise identical to the folder\n", identical, a.n);

    // f16 file against the float64 reference.
    char path[4096];
    snprintf(path, sizeof path, "%s/m3_public.safetensors", data);
    m3_weights *ref;
    m3_error err = {0};
    if (m3_weights_open(path, &ref, &err) != M3_STATUS_OK) {
        CHECK(0, "%s", err.message);
        goto done;
    }
    snprintf(path, sizeof path, "%s/m3_public.json", data);
    json_object *root = json_object_from_file(path);
    json_object *cases = json_object_object_get(root, "cases");
    double min_dense = 1, min_col = 1, max_lex = 0, max_lex_rel = 0, max_dense_abs = 0, max_col_abs = 0;
    for (size_t k = 0; k < c.n; k++) {
        const m3_embedding *e = &c.e[k];
        size_t h = e->dim;
        char name[64];
        snprintf(name, sizeof name, "c%zu.dense", k);
        const m3_tensor *td = m3_weights_find(ref, name);
        snprintf(name, sizeof name, "c%zu.colbert", k);
        const m3_tensor *tc = m3_weights_find(ref, name);
        if (!td || !tc || m3_tensor_numel(tc) != (int64_t)(e->n_colbert * h)) {
            CHECK(0, "case %zu: reference tensors", k);
            continue;
        }
        float *r = malloc((size_t)m3_tensor_numel(tc) * sizeof *r + h * sizeof *r);
        m3_tensor_to_f32(td, r);
        min_dense = fmin(min_dense, cosine(e->dense, r, h));
        for (size_t i = 0; i < h; i++) max_dense_abs = fmax(max_dense_abs, fabs(e->dense[i] - r[i]));
        m3_tensor_to_f32(tc, r);
        for (size_t v = 0; v < e->n_colbert; v++) {
            min_col = fmin(min_col, cosine(e->colbert + v * h, r + v * h, h));
            for (size_t i = 0; i < h; i++) max_col_abs = fmax(max_col_abs, fabs(e->colbert[v * h + i] - r[v * h + i]));
        }
        free(r);
        json_object *lex = json_object_object_get(json_object_array_get_idx(cases, k), "lexical_weights");
        json_object_object_foreach(lex, key, val) {
            double want = json_object_get_double(val), got = 0;
            for (size_t i = 0; i < e->n_sparse; i++)
                if (e->sparse[i].id == atoi(key)) got = e->sparse[i].weight;
            max_lex = fmax(max_lex, fabs(got - want));
            max_lex_rel = fmax(max_lex_rel, fabs(got - want) / fmax(1.0, fabs(want)));
        }
    }
    printf("f16 model file vs the float64 reference: dense cosine >= %.7f (max |diff| %.2e), colbert cosine >= "
           "%.7f (max |diff| %.2e), lexical max |diff| %.2e (%.2e relative to max(1,|w|))\n",
           min_dense, max_dense_abs, min_col, max_col_abs, max_lex, max_lex_rel);
    CHECK(min_dense >= 0.9999, "dense cosine %.7f", min_dense);
    CHECK(min_col >= 0.999, "colbert cosine %.7f", min_col);
    CHECK(max_lex <= 5e-3, "lexical error %.3g", max_lex);
    json_object_put(root);
    m3_weights_close(ref);
done:
    free_outputs(&a);
    free_outputs(&b);
    free_outputs(&c);
}

// Opening a damaged file must fail with a message naming it, or succeed only where verify then fails.
static void test_damage(const char *good, const char *dir)
{
    // A flip in the stored trie logs a warning (and rebuilds it): counted, not printed.
    m3_log_set(on_log, NULL, M3_LOG_WARN);
    size_t n;
    unsigned char *d = read_file(good, &n);
    if (!d) {
        CHECK(0, "cannot read %s", good);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/damaged.gguf", dir);
    m3_error err = {0};
    m3_model *m;
    // Truncations: every offset in the first 4 kB, then a spread through the header and the data.
    size_t n_trunc = 0, n_trunc_ok = 0;
    CHECK(write_file(path, d, n), "write %s", path);
    for (size_t len = n; len-- > 0;) {
        bool probe = len < 4096 || len % 4099 == 0 || n - len < 64;
        if (!probe) continue;
        if (truncate(path, (off_t)len) != 0) {
            CHECK(0, "truncate: %s", strerror(errno));
            break;
        }
        n_trunc++;
        memset(&err, 0, sizeof err);
        m3_status st = m3_model_open(path, &m, &err);
        if (st == M3_STATUS_OK) m3_model_close(m);
        bool ok = st != M3_STATUS_OK && strstr(err.message, path) != NULL;
        if (ok) n_trunc_ok++;
        else if (n_trunc - n_trunc_ok < 5) CHECK(0, "truncated at %zu: status %d, \"%s\"", len, st, err.message);
    }
    printf("truncated at %zu offsets: %zu refused with the file named\n", n_trunc, n_trunc_ok);
    CHECK(n_trunc == n_trunc_ok, "truncations");

    // Bit flips through the header (magic, counts, keys, tokenizer arrays, tensor infos).
    size_t header = 0;
    for (size_t i = 0; i + 8 < n; i++)  // the tensor data starts after the last tensor name
        if (!memcmp(d + i, "sparse.bias", 11)) header = i + 11 + 4 + 8 + 4 + 8;
    size_t flips = 0, refused = 0, caught_by_verify = 0;
    for (size_t off = 0; off < header; off += off < 512 ? 1 : 997) {
        d[off] ^= (unsigned char)(1u << (off % 8));
        CHECK(write_file(path, d, n), "write");
        d[off] ^= (unsigned char)(1u << (off % 8));
        flips++;
        memset(&err, 0, sizeof err);
        m3_status st = m3_model_open(path, &m, &err);
        if (st != M3_STATUS_OK) {
            refused++;
            CHECK(strstr(err.message, path) != NULL, "flip at %zu: message \"%s\" does not name the file", off,
                  err.message);
            continue;
        }
        m3_model_close(m);
        memset(&err, 0, sizeof err);
        if (m3_model_verify(path, NULL, &err) != M3_STATUS_OK && strstr(err.message, path)) caught_by_verify++;
        else CHECK(0, "flip at %zu: opened and verified", off);
    }
    printf("header bit flips: %zu, %zu refused at open, %zu opened but caught by verify\n", flips, refused,
           caught_by_verify);
    CHECK(flips == refused + caught_by_verify && refused > 0, "header flips");

    // A flipped bit in tensor data: opens (no hashing at open), verify names the damage.
    d[n - 1000] ^= 0x10;
    CHECK(write_file(path, d, n), "write");
    CHECK(m3_model_open(path, &m, &err) == M3_STATUS_OK, "data flip should open: %s", err.message);
    m3_model_close(m);
    memset(&err, 0, sizeof err);
    CHECK(m3_model_verify(path, NULL, &err) == M3_STATUS_FORMAT && strstr(err.message, "checksum mismatch") &&
              strstr(err.message, path),
          "verify of a flipped data bit: \"%s\"", err.message);
    printf("data bit flip: verify says \"%s\"\n", err.message);
    m3_model_verify_report r;
    CHECK(m3_model_verify(good, &r, &err) == M3_STATUS_OK && r.is_file && r.checksummed == 1, "verify good: %s",
          err.message);
    unlink(path);
    free(d);
    m3_log_set(NULL, NULL, M3_LOG_WARN);
}

int main(void)
{
    const char *data = getenv("M3_TEST_DATA");
    if (!data) {
        printf("SKIP: M3_TEST_DATA is not set\n");
        return 77;
    }
    char dir[] = "/tmp/m3-test-gguf-XXXXXX";
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    char src[4096], p16[4200], p32[4200];
    snprintf(src, sizeof src, "%s/m3-tiny", data);
    snprintf(p16, sizeof p16, "%s/tiny-f16.gguf", dir);
    snprintf(p32, sizeof p32, "%s/tiny-f32.gguf", dir);
    m3_error err = {0};
    CHECK(m3_model_convert(src, p16, M3_DTYPE_F16, &err) == M3_STATUS_OK, "convert f16: %s", err.message);
    CHECK(m3_model_convert(src, p32, M3_DTYPE_F32, &err) == M3_STATUS_OK, "convert f32: %s", err.message);
    CHECK(m3_model_convert(src, p32, M3_DTYPE_BF16, &err) == M3_STATUS_INVALID, "bf16 is refused");
    // A model file as the source: written again with the same dtype, it is the same file, byte for byte.
    char again[4200];
    snprintf(again, sizeof again, "%s/tiny-f16-again.gguf", dir);
    CHECK(m3_model_convert(p16, again, M3_DTYPE_F16, &err) == M3_STATUS_OK, "convert a file: %s", err.message);
    size_t n_a = 0, n_b = 0;
    unsigned char *fa = read_file(p16, &n_a), *fb = read_file(again, &n_b);
    CHECK(fa && fb && n_a == n_b && !memcmp(fa, fb, n_a), "the f16 file converted again differs (%zu, %zu bytes)",
          n_a, n_b);
    free(fa);
    free(fb);
    unlink(again);
    m3_model *folder = NULL, *f16 = NULL, *f32 = NULL;
    CHECK(m3_model_open(src, &folder, &err) == M3_STATUS_OK, "%s", err.message);
    CHECK(m3_model_open(p16, &f16, &err) == M3_STATUS_OK, "open f16: %s", err.message);
    CHECK(m3_model_open(p32, &f32, &err) == M3_STATUS_OK, "open f32: %s", err.message);
    if (folder && f16 && f32) {
        CHECK(!memcmp(m3_model_get_config(folder), m3_model_get_config(f16), sizeof(m3_model_config)), "config");
        const m3_model_weights *w = m3_model_get_weights(f16);
        CHECK(w->word->dtype == M3_DTYPE_F16 && w->layers[0].query_w->dtype == M3_DTYPE_F16 &&
                  w->layers[0].query_b->dtype == M3_DTYPE_F32 && w->emb_ln_w->dtype == M3_DTYPE_F32 &&
                  w->token_type->dtype == M3_DTYPE_F32 && w->sparse_w->dtype == M3_DTYPE_F32 &&
                  w->colbert_w->dtype == M3_DTYPE_F16,
              "dtype policy");
        CHECK(m3_model_get_weights(f32)->word->dtype == M3_DTYPE_F32, "f32 file");
        CHECK(!strcmp(m3_model_get_path(f16), p16), "path");
        test_tokenizer(data, m3_model_get_tokenizer(f16));
        test_parity(data, folder, f32, f16);
    }
    m3_model_close(folder);
    m3_model_close(f16);
    m3_model_close(f32);
    test_piece_trie(data, src, p16, dir);
    test_damage(p16, dir);
    // Not a model file at all.
    char junk[4200];
    snprintf(junk, sizeof junk, "%s/junk.gguf", dir);
    CHECK(write_file(junk, (const unsigned char *)"not a model", 11), "write");
    m3_model *m;
    CHECK(m3_model_open(junk, &m, &err) == M3_STATUS_FORMAT && strstr(err.message, "not a GGUF model file"),
          "junk: %s", err.message);
    unlink(junk);
    unlink(p16);
    unlink(p32);
    rmdir(dir);
    printf("test-gguf: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
