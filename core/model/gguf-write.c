// SPDX-License-Identifier: MIT
//
// Writing the one-file model (m3_model_write_file, m3_model_convert) and checking a model thoroughly
// (m3_model_verify). The layout and the keys are documented in docs/model-file.md.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/gguf-private.h"

// ---- a growing byte buffer for the header ----

typedef struct buf {
    unsigned char *data;
    size_t len, cap;
    bool failed;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->failed) return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n) cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_le(buf *b, uint64_t v, int n)
{
    unsigned char t[8];
    for (int i = 0; i < n; i++) t[i] = (unsigned char)(v >> (8 * i));
    put(b, t, (size_t)n);
}

static void put_str(buf *b, const char *s, size_t n)
{
    put_le(b, n, 8);
    put(b, s, n);
}

static void put_key(buf *b, const char *key, uint32_t type)
{
    put_str(b, key, strlen(key));
    put_le(b, type, 4);
}

static void kv_u32(buf *b, size_t *n_kv, const char *key, uint32_t v)
{
    put_key(b, key, M3_GGUF_UINT32);
    put_le(b, v, 4);
    (*n_kv)++;
}

static void kv_f32(buf *b, size_t *n_kv, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    put_key(b, key, M3_GGUF_FLOAT32);
    put_le(b, bits, 4);
    (*n_kv)++;
}

static void kv_bool(buf *b, size_t *n_kv, const char *key, bool v)
{
    put_key(b, key, M3_GGUF_BOOL);
    put_le(b, v ? 1 : 0, 1);
    (*n_kv)++;
}

static void kv_str(buf *b, size_t *n_kv, const char *key, const char *v)
{
    put_key(b, key, M3_GGUF_STRING);
    put_str(b, v, strlen(v));
    (*n_kv)++;
}

static void kv_array(buf *b, size_t *n_kv, const char *key, uint32_t type, uint64_t n)
{
    put_key(b, key, M3_GGUF_ARRAY);
    put_le(b, type, 4);
    put_le(b, n, 8);
    (*n_kv)++;
}

// ---- the tensor list ----

typedef struct out_tensor {
    char name[128];
    const m3_tensor *t;  // NULL for a packed tensor
    bool f16;
    size_t packed;       // a packed tensor: its index in the packer's list
    uint64_t offset, bytes;
} out_tensor;

// Appends the packer's tensors to list (n entries so far), named "packed.P.NAME". Returns the new
// count, or 0 when out of memory or a name does not fit.
static size_t list_packed(const m3_model *model, const m3_model_packer *packer, out_tensor *list, size_t n,
                          size_t n_packed)
{
    m3_model_packed_tensor *pt = calloc(n_packed ? n_packed : 1, sizeof *pt);
    if (!pt) return 0;
    packer->list(packer->ctx, model, pt, n_packed);
    for (size_t i = 0; i < n_packed; i++, n++) {
        int len = snprintf(list[n].name, sizeof list[n].name, M3_GGUF_PACKED_PREFIX "%s.%s", packer->precision,
                           pt[i].name);
        if (len < 0 || (size_t)len >= sizeof list[n].name || pt[i].bytes == 0) {
            free(pt);
            return 0;
        }
        list[n].packed = i;
        list[n].bytes = pt[i].bytes;
    }
    free(pt);
    return n;
}

static size_t list_tensors(const m3_model *model, bool f16, out_tensor *list)
{
    const m3_model_weights *w = m3_model_get_weights(model);
    const m3_model_config *c = m3_model_get_config(model);
    size_t n = 0;
#define ADD(T, ...)                                                         \
    do {                                                                    \
        snprintf(list[n].name, sizeof list[n].name, __VA_ARGS__);           \
        list[n].t = (T);                                                    \
        list[n].f16 = f16 && (T)->ndim == 2 && (T)->shape[0] > 1;           \
        n++;                                                                \
    } while (0)
    ADD(w->word, "embeddings.word_embeddings.weight");
    ADD(w->position, "embeddings.position_embeddings.weight");
    ADD(w->token_type, "embeddings.token_type_embeddings.weight");
    ADD(w->emb_ln_w, "embeddings.LayerNorm.weight");
    ADD(w->emb_ln_b, "embeddings.LayerNorm.bias");
    for (int l = 0; l < c->layers; l++) {
        const m3_layer_weights *L = &w->layers[l];
        const struct {
            const char *suffix;
            const m3_tensor *t;
        } table[] = {
            {"attention.self.query.weight", L->query_w}, {"attention.self.query.bias", L->query_b},
            {"attention.self.key.weight", L->key_w}, {"attention.self.key.bias", L->key_b},
            {"attention.self.value.weight", L->value_w}, {"attention.self.value.bias", L->value_b},
            {"attention.output.dense.weight", L->attn_out_w}, {"attention.output.dense.bias", L->attn_out_b},
            {"attention.output.LayerNorm.weight", L->attn_ln_w}, {"attention.output.LayerNorm.bias", L->attn_ln_b},
            {"intermediate.dense.weight", L->ffn_in_w}, {"intermediate.dense.bias", L->ffn_in_b},
            {"output.dense.weight", L->ffn_out_w}, {"output.dense.bias", L->ffn_out_b},
            {"output.LayerNorm.weight", L->ffn_ln_w}, {"output.LayerNorm.bias", L->ffn_ln_b},
        };
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
            ADD(table[i].t, "encoder.layer.%d.%s", l, table[i].suffix);
    }
    ADD(w->colbert_w, "colbert.weight");
    ADD(w->colbert_b, "colbert.bias");
    ADD(w->sparse_w, "sparse.weight");
    ADD(w->sparse_b, "sparse.bias");
#undef ADD
    return n;
}

// ---- writing ----

typedef struct writer {
    int fd;
    const char *path;  // the temporary file, for messages
    const char *dst;   // the file being made
    EVP_MD_CTX *md;
    uint64_t written;
    uint64_t total;    // the file's size once written
    m3_error *err;
} writer;

static m3_status write_all(writer *w, const void *p, size_t n)
{
    if (n && !EVP_DigestUpdate(w->md, p, n)) return m3_error_set(w->err, M3_STATUS_NOMEM, 0, "SHA-256 failed");
    if (w->fd < 0) {  // hashing only (plain_checksum)
        w->written += n;
        return M3_STATUS_OK;
    }
    const unsigned char *c = p;
    while (n) {
        ssize_t k = write(w->fd, c, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOSPC || errno == EDQUOT)
                return m3_error_set(w->err, M3_STATUS_IO, errno,
                                    "%s: %s after %.1f MB of %.1f MB: free some space and convert again (%s "
                                    "is left as it was)",
                                    w->path, errno == ENOSPC ? "the disk is full" : "the disk quota is exhausted",
                                    (double)w->written / 1e6, (double)w->total / 1e6,
                                    w->dst);
            return m3_error_errno(w->err, errno, "cannot write", w->path);
        }
        c += k;
        n -= (size_t)k;
        w->written += (uint64_t)k;
    }
    return M3_STATUS_OK;
}

static m3_status pad_to(writer *w, uint64_t offset)
{
    static const unsigned char zeros[64];
    while (w->written < offset) {
        uint64_t n = offset - w->written < sizeof zeros ? offset - w->written : sizeof zeros;
        m3_status st = write_all(w, zeros, (size_t)n);
        if (st != M3_STATUS_OK) return st;
    }
    return M3_STATUS_OK;
}

// Converts one tensor a slice of rows at a time (the 250002 x 1024 word table would need 1 GB as
// one fp32 copy) and writes it.
static m3_status write_tensor(writer *w, const out_tensor *o, float *f32, uint16_t *f16, size_t chunk)
{
    const m3_tensor *t = o->t;
    int64_t rows = t->ndim == 2 ? t->shape[0] : 1;
    int64_t cols = t->ndim == 2 ? t->shape[1] : m3_tensor_numel(t);
    int64_t per = (int64_t)chunk / cols;
    if (per < 1) per = 1;
    for (int64_t r0 = 0; r0 < rows; r0 += per) {
        int64_t nr = rows - r0 < per ? rows - r0 : per;
        m3_tensor v = *t;
        if (t->ndim == 2) {
            v.shape[0] = nr;
            v.data = (const unsigned char *)t->data + r0 * t->strides[0] * (int64_t)m3_dtype_size(t->dtype);
        }
        size_t n = (size_t)(nr * cols);
        m3_tensor_to_f32(&v, f32);
        m3_status st;
        if (o->f16) {
            for (size_t i = 0; i < n; i++) {
                f16[i] = m3_f32_to_f16(f32[i]);
                if ((f16[i] & 0x7fff) == 0x7c00 && isfinite(f32[i]))
                    return m3_error_set(w->err, M3_STATUS_LIMIT, 0,
                                        "%s: tensor %s holds %g, outside the fp16 range: write fp32 weights",
                                        w->dst, o->name, (double)f32[i]);
            }
            st = write_all(w, f16, n * 2);
        } else {
            st = write_all(w, f32, n * 4);
        }
        if (st != M3_STATUS_OK) return st;
    }
    return M3_STATUS_OK;
}

// The piece trie as one u8 array (gguf-private.h, docs/model-file.md), bound to the texts by a
// SHA-256 over tokens (the stored strings of tokenizer.ggml.tokens, n_tokens bytes) and the trie. The
// kv pairs start at byte 24 of the file; the header is padded so that the (base, check) pairs start
// at a multiple of 8 there. Returns false when SHA-256 fails.
static bool kv_piece_trie(buf *kv, size_t *n_kv, const m3_tokenizer_trie *t, size_t n_ids, size_t tokens_at,
                          size_t n_tokens)
{
    unsigned char md[32];
    unsigned md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && !kv->failed && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
              EVP_DigestUpdate(ctx, kv->data + tokens_at, n_tokens) &&
              EVP_DigestUpdate(ctx, t->units, 8 * t->size) && EVP_DigestUpdate(ctx, t->ids, 4 * t->size) &&
              EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) return false;
    size_t key_len = strlen(M3_GGUF_PIECE_TRIE_KEY);
    size_t blob_at = 24 + kv->len + 8 + key_len + 4 + 4 + 8;  // after the key, the types and the count
    size_t h = M3_GGUF_PIECE_TRIE_HEADER;
    h += (8 - (blob_at + h) % 8) % 8;
    kv_array(kv, n_kv, M3_GGUF_PIECE_TRIE_KEY, M3_GGUF_UINT8, h + 12 * (uint64_t)t->size);
    put(kv, M3_GGUF_PIECE_TRIE_MAGIC, 4);
    put_le(kv, M3_GGUF_PIECE_TRIE_VERSION, 4);
    put_le(kv, h, 4);
    put_le(kv, t->size, 4);
    put_le(kv, n_ids, 4);
    put_le(kv, 0, 4);
    put(kv, md, 32);
    for (size_t i = M3_GGUF_PIECE_TRIE_HEADER; i < h; i++) put_le(kv, 0, 1);
    // Host order is little-endian, the format's.
    put(kv, t->units, 8 * t->size);
    put(kv, t->ids, 4 * t->size);
    return true;
}

// The header; *data_offset is where the tensor data starts. Packed tensors start at multiples of
// M3_GGUF_PACKED_ALIGN in the file, which depends on where the data section starts: the caller
// builds the header once with data_start 0 to learn it (the header's length does not depend on the
// offsets), then again with it.
static m3_status build_header(const m3_model *model, const m3_tokenizer_pieces *v, const m3_tokenizer_trie *trie,
                              bool f16, const m3_model_packer *packer, const char *plain_checksum,
                              out_tensor *list, size_t n_tensors, uint64_t data_start, buf *b, size_t *checksum_at,
                              uint64_t *data_offset)
{
    const m3_model_config *c = m3_model_get_config(model);
    buf kv = {0};
    size_t n_kv = 0;
    kv_str(&kv, &n_kv, "general.architecture", M3_GGUF_ARCHITECTURE);
    kv_str(&kv, &n_kv, "general.name", "BGE-M3");
    kv_u32(&kv, &n_kv, "general.alignment", M3_GGUF_DEFAULT_ALIGNMENT);
    kv_u32(&kv, &n_kv, "general.file_type", f16 ? 1 : 0);  // ggml's "mostly F16" / "all F32"
    kv_str(&kv, &n_kv, "m3.hidden_act", "gelu");
    kv_u32(&kv, &n_kv, "m3.hidden_size", (uint32_t)c->hidden);
    kv_u32(&kv, &n_kv, "m3.num_hidden_layers", (uint32_t)c->layers);
    kv_u32(&kv, &n_kv, "m3.num_attention_heads", (uint32_t)c->heads);
    kv_u32(&kv, &n_kv, "m3.intermediate_size", (uint32_t)c->intermediate);
    kv_u32(&kv, &n_kv, "m3.vocab_size", (uint32_t)c->vocab);
    kv_u32(&kv, &n_kv, "m3.max_position_embeddings", (uint32_t)c->max_positions);
    kv_u32(&kv, &n_kv, "m3.type_vocab_size", (uint32_t)c->type_vocab);
    kv_u32(&kv, &n_kv, "m3.pad_token_id", (uint32_t)c->pad_token_id);
    kv_f32(&kv, &n_kv, "m3.layer_norm_eps", c->layer_norm_eps);
    kv_str(&kv, &n_kv, "tokenizer.ggml.model", M3_GGUF_TOKENIZER_MODEL);
    kv_array(&kv, &n_kv, "tokenizer.ggml.tokens", M3_GGUF_STRING, v->n);
    size_t tokens_at = kv.len;
    for (size_t i = 0; i < v->n; i++) put_str(&kv, v->texts[i], v->lens[i]);
    size_t n_tokens = kv.len - tokens_at;
    kv_array(&kv, &n_kv, "tokenizer.ggml.scores", M3_GGUF_FLOAT32, v->n);
    for (size_t i = 0; i < v->n; i++) {
        uint32_t bits;
        memcpy(&bits, &v->scores[i], 4);
        put_le(&kv, bits, 4);
    }
    kv_array(&kv, &n_kv, "tokenizer.ggml.token_type", M3_GGUF_INT32, v->n);
    for (size_t i = 0; i < v->n; i++) put_le(&kv, (uint32_t)v->types[i], 4);
    kv_array(&kv, &n_kv, "tokenizer.ggml.precompiled_charsmap", M3_GGUF_UINT8, v->charsmap_size);
    if (v->charsmap_size) put(&kv, v->charsmap, v->charsmap_size);
    kv_u32(&kv, &n_kv, "tokenizer.ggml.bos_token_id", M3_TOKEN_BOS);
    kv_u32(&kv, &n_kv, "tokenizer.ggml.padding_token_id", M3_TOKEN_PAD);
    kv_u32(&kv, &n_kv, "tokenizer.ggml.eos_token_id", M3_TOKEN_EOS);
    kv_u32(&kv, &n_kv, "tokenizer.ggml.unknown_token_id", M3_TOKEN_UNK);
    kv_u32(&kv, &n_kv, "tokenizer.ggml.mask_token_id", (uint32_t)(v->n - 1));
    kv_bool(&kv, &n_kv, "tokenizer.ggml.add_space_prefix", v->add_dummy_prefix);
    kv_bool(&kv, &n_kv, "tokenizer.ggml.remove_extra_whitespaces", v->remove_extra_whitespaces);
    kv_bool(&kv, &n_kv, "m3.tokenizer.escape_whitespaces", v->escape_whitespaces);
    bool failed = trie && trie->size && !kv_piece_trie(&kv, &n_kv, trie, v->n, tokens_at, n_tokens);
    if (packer) {
        char key[64];
        snprintf(key, sizeof key, M3_GGUF_PACKED_KEY_PREFIX "%s" M3_GGUF_PACKED_KEY_SUFFIX, packer->precision);
        kv_str(&kv, &n_kv, key, packer->layout);
        kv_str(&kv, &n_kv, M3_GGUF_PLAIN_CHECKSUM_KEY, plain_checksum);
    }
    // The checksum goes last: 64 '0' digits now, the SHA-256 of the file so written afterwards.
    kv_str(&kv, &n_kv, M3_GGUF_CHECKSUM_KEY,
           M3_GGUF_CHECKSUM_PREFIX "0000000000000000000000000000000000000000000000000000000000000000");
    size_t checksum_in_kv = kv.len - M3_GGUF_CHECKSUM_HEX;

    put(b, M3_GGUF_MAGIC, 4);
    put_le(b, M3_GGUF_VERSION, 4);
    put_le(b, n_tensors, 8);
    put_le(b, n_kv, 8);
    size_t kv_start = b->len;
    if (!kv.failed) put(b, kv.data, kv.len);
    failed = failed || kv.failed;
    free(kv.data);
    *checksum_at = kv_start + checksum_in_kv;
    uint64_t offset = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        out_tensor *o = &list[i];
        const m3_tensor *t = o->t;
        put_str(b, o->name, strlen(o->name));
        if (t) {
            put_le(b, (uint64_t)t->ndim, 4);
            for (int d = t->ndim - 1; d >= 0; d--) put_le(b, (uint64_t)t->shape[d], 8);
            put_le(b, o->f16 ? M3_GGML_F16 : M3_GGML_F32, 4);
            o->bytes = (uint64_t)m3_tensor_numel(t) * (o->f16 ? 2 : 4);
        } else {
            put_le(b, 1, 4);
            put_le(b, o->bytes, 8);
            put_le(b, M3_GGML_I8, 4);
            uint64_t at = data_start + offset;
            offset += (M3_GGUF_PACKED_ALIGN - at % M3_GGUF_PACKED_ALIGN) % M3_GGUF_PACKED_ALIGN;
        }
        o->offset = offset;
        put_le(b, offset, 8);
        offset += (o->bytes + M3_GGUF_DEFAULT_ALIGNMENT - 1) / M3_GGUF_DEFAULT_ALIGNMENT * M3_GGUF_DEFAULT_ALIGNMENT;
    }
    *data_offset = (b->len + M3_GGUF_DEFAULT_ALIGNMENT - 1) / M3_GGUF_DEFAULT_ALIGNMENT * M3_GGUF_DEFAULT_ALIGNMENT;
    return failed || b->failed ? M3_STATUS_NOMEM : M3_STATUS_OK;
}

m3_status m3_model_write_file(const m3_model *model, const m3_tokenizer_pieces *vocab, m3_dtype dtype,
                              const char *path, m3_error *err)
{
    return m3_gguf_write(model, vocab, dtype, 0, NULL, path, err);
}

m3_status m3_model_write_file_packed(const m3_model *model, const m3_tokenizer_pieces *vocab, m3_dtype dtype,
                                     const m3_model_packer *packer, const char *path, m3_error *err)
{
    return m3_gguf_write(model, vocab, dtype, 0, packer, path, err);
}

// The m3.checksum that the same file without packed weights has ("sha256:" + hex into out): its
// header and plain tensors (list[0..n_plain), laid out as in that file) hashed, nothing written.
static m3_status plain_checksum(const m3_model *model, const m3_tokenizer_pieces *vocab, const m3_tokenizer_trie *trie,
                                bool f16, out_tensor *list, size_t n_plain, float *f32, uint16_t *f16buf, size_t chunk,
                                const char *path, char out[8 + M3_GGUF_CHECKSUM_HEX + 1], m3_error *err)
{
    buf header = {0};
    size_t checksum_at = 0;
    uint64_t data_offset = 0;
    writer w = {.fd = -1, .path = path, .dst = path, .md = EVP_MD_CTX_new(), .err = err};
    m3_status st = build_header(model, vocab, trie, f16, NULL, NULL, list, n_plain, 0, &header, &checksum_at,
                                &data_offset);
    if (st != M3_STATUS_OK || !w.md || !EVP_DigestInit_ex(w.md, EVP_sha256(), NULL)) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
        goto done;
    }
    if ((st = write_all(&w, header.data, header.len)) || (st = pad_to(&w, data_offset))) goto done;
    for (size_t i = 0; i < n_plain; i++)
        if ((st = pad_to(&w, data_offset + list[i].offset)) || (st = write_tensor(&w, &list[i], f32, f16buf, chunk)))
            goto done;
    unsigned char md[32];
    unsigned md_len = 0;
    if (!EVP_DigestFinal_ex(w.md, md, &md_len) || md_len != 32) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: SHA-256 failed", path);
        goto done;
    }
    strcpy(out, M3_GGUF_CHECKSUM_PREFIX);
    for (int i = 0; i < 32; i++) snprintf(out + strlen(M3_GGUF_CHECKSUM_PREFIX) + 2 * i, 3, "%02x", md[i]);
done:
    EVP_MD_CTX_free(w.md);
    free(header.data);
    return st;
}

// Writes the packed tensor o through the packer, from one buffer big enough for the largest.
static m3_status write_packed(writer *w, const m3_model *model, const m3_model_packer *packer, m3_dtype dtype,
                              const out_tensor *o, void *scratch)
{
    m3_status st = packer->pack(packer->ctx, model, dtype, o->packed, scratch, (size_t)o->bytes, w->err);
    return st != M3_STATUS_OK ? st : write_all(w, scratch, (size_t)o->bytes);
}

m3_status m3_gguf_write(const m3_model *model, const m3_tokenizer_pieces *vocab, m3_dtype dtype, unsigned flags,
                        const m3_model_packer *packer, const char *path, m3_error *err)
{
    if (dtype != M3_DTYPE_F16 && dtype != M3_DTYPE_F32)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: model files hold f16 or f32 weights, not %s", path,
                            m3_dtype_name(dtype));
    const m3_model_config *c = m3_model_get_config(model);
    if (!vocab || vocab->n != (size_t)c->vocab)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: the vocabulary has %zu ids, the model %d", path,
                            vocab ? vocab->n : 0, c->vocab);
    size_t n_packed = packer ? packer->list(packer->ctx, model, NULL, 0) : 0;
    if (packer && (n_packed == 0 || strlen(packer->precision) > M3_GGUF_PACKED_MAX_TAG ||
                   strlen(packer->layout) > M3_GGUF_PACKED_MAX_LAYOUT))
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: packer %s lists no tensors or has a bad name", path,
                            packer->precision);
    size_t max_tensors = 9 + 16 * (size_t)c->layers + n_packed;
    out_tensor *list = calloc(max_tensors, sizeof *list);
    void *scratch = NULL;
    size_t chunk = 1u << 20;
    float *f32 = malloc(chunk * sizeof *f32);
    uint16_t *f16 = malloc(chunk * sizeof *f16);
    char *tmp = malloc(strlen(path) + 5);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    m3_tokenizer *tok = NULL;
    buf header = {0};
    writer w = {.fd = -1, .path = tmp, .dst = path, .md = md, .err = err};
    m3_status st = M3_STATUS_OK;
    if (!list || !f32 || !f16 || !tmp || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
        goto done;
    }
    // A row (or a vector) is at most max(hidden, intermediate) wide; a chunk must hold one.
    if ((size_t)c->intermediate > chunk || (size_t)c->hidden > chunk) {
        st = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: rows too wide", path);
        goto done;
    }
    sprintf(tmp, "%s.tmp", path);
    // The tokenizer is built here once, so that opening the file can use its trie as it is. This also
    // refuses a vocabulary the tokenizer would refuse at open.
    m3_tokenizer_trie trie = {0};
    if (!(flags & M3_GGUF_WRITE_NO_PIECE_TRIE)) {
        if ((st = m3_tokenizer_new_from_pieces(vocab, path, &tok, err))) goto done;
        trie = m3_tokenizer_get_trie(tok);
    }
    size_t n_tensors = list_tensors(model, dtype == M3_DTYPE_F16, list);
    if (packer) {
        size_t plain = n_tensors, biggest = 0;
        if ((n_tensors = list_packed(model, packer, list, n_tensors, n_packed)) == 0) {
            st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory listing the packed tensors", path);
            goto done;
        }
        for (size_t i = plain; i < n_tensors; i++) biggest = list[i].bytes > biggest ? list[i].bytes : biggest;
        if (!(scratch = aligned_alloc(64, (biggest + 63) / 64 * 64))) {
            st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
            goto done;
        }
    }
    size_t checksum_at = 0;
    uint64_t data_offset = 0;
    // A packed file names, as its identity, the checksum of the same file without the packed
    // weights: the plain tensors are hashed once here as that file would hold them.
    char plain[8 + M3_GGUF_CHECKSUM_HEX + 1] = "";
    if (packer && (st = plain_checksum(model, vocab, &trie, dtype == M3_DTYPE_F16, list, n_tensors - n_packed, f32, f16,
                                       chunk, path, plain, err)))
        goto done;
    st = build_header(model, vocab, &trie, dtype == M3_DTYPE_F16, packer, plain, list, n_tensors, 0, &header,
                      &checksum_at, &data_offset);
    if (st == M3_STATUS_OK && packer) {
        uint64_t first = data_offset;
        header.len = 0;
        st = build_header(model, vocab, &trie, dtype == M3_DTYPE_F16, packer, plain, list, n_tensors, first, &header,
                          &checksum_at, &data_offset);
        M3_ASSERT(st != M3_STATUS_OK || data_offset == first);
    }
    if (st) {
        st = m3_error_set(err, st, 0, "%s: out of memory building the header", path);
        goto done;
    }
    if (n_tensors) w.total = data_offset + list[n_tensors - 1].offset + list[n_tensors - 1].bytes;
    w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        st = m3_error_errno(err, errno, "cannot create", tmp);
        goto done;
    }
    if ((st = write_all(&w, header.data, header.len)) || (st = pad_to(&w, data_offset))) goto done;
    for (size_t i = 0; i < n_tensors; i++) {
        if ((st = pad_to(&w, data_offset + list[i].offset)) ||
            (st = list[i].t ? write_tensor(&w, &list[i], f32, f16, chunk)
                            : write_packed(&w, model, packer, dtype, &list[i], scratch)))
            goto done;
    }
    unsigned char digest[32];
    unsigned digest_len = 0;
    char hex[M3_GGUF_CHECKSUM_HEX + 1];
    if (!EVP_DigestFinal_ex(md, digest, &digest_len) || digest_len != 32) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: SHA-256 failed", path);
        goto done;
    }
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    if (pwrite(w.fd, hex, M3_GGUF_CHECKSUM_HEX, (off_t)checksum_at) != M3_GGUF_CHECKSUM_HEX) {
        st = m3_error_errno(err, errno ? errno : EIO, "cannot write", tmp);
        goto done;
    }
    if (fsync(w.fd) != 0) {
        st = m3_error_errno(err, errno, "cannot sync", tmp);
        goto done;
    }
    int fd = w.fd;
    w.fd = -1;
    if (close(fd) != 0) {
        st = m3_error_errno(err, errno, "cannot write", tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) st = m3_error_errno(err, errno, "cannot rename the model file to", path);
done:
    if (w.fd >= 0) close(w.fd);
    if (st != M3_STATUS_OK && tmp) unlink(tmp);
    free(header.data);
    free(scratch);
    m3_tokenizer_free(tok);
    EVP_MD_CTX_free(md);
    free(tmp);
    free(f16);
    free(f32);
    free(list);
    return st;
}

m3_status m3_model_convert(const char *src, const char *dst, m3_dtype dtype, m3_error *err)
{
    return m3_model_convert_packed(src, dst, dtype, NULL, err);
}

m3_status m3_model_convert_packed(const char *src, const char *dst, m3_dtype dtype, const m3_model_packer *packer,
                                  m3_error *err)
{
    // A model file as the source is written again (another dtype, packed weights added); its
    // vocabulary comes from its own arrays, the folder's from sentencepiece.bpe.model. dst may be
    // src itself: the new file is written beside it and renamed over it, while the old one stays
    // mapped here.
    struct stat sb;
    bool from_file = stat(src, &sb) == 0 && S_ISREG(sb.st_mode);
    m3_model *model;
    m3_status st = m3_model_open(src, &model, err);
    if (st != M3_STATUS_OK) return st;
    size_t n = strlen(src);
    char *spm = malloc(n + 32);
    m3_mapped_file *f = NULL;
    m3_tokenizer_pieces pieces = {0};
    if (!spm) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", src);
        goto done;
    }
    if (from_file) {
        if ((st = m3_mapped_file_open(src, &f, err)) || (st = m3_gguf_file_pieces(f, &pieces, err))) goto done;
    } else {
        sprintf(spm, "%s/sentencepiece.bpe.model", src);
        if ((st = m3_mapped_file_open(spm, &f, err)) ||
            (st = m3_tokenizer_pieces_read(f->data, f->size, spm, &pieces, err)))
            goto done;
    }
    st = m3_gguf_write(model, &pieces, dtype, 0, packer, dst, err);
done:
    m3_tokenizer_pieces_clear(&pieces);
    m3_mapped_file_close(f);
    free(spm);
    m3_model_close(model);
    return st;
}

// ---- verify ----

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// Checks every "<hex>  <name>" line of dir/SHA256SUMS. Returns M3_STATUS_NOT_FOUND when there is none.
static m3_status verify_sums(const char *dir, int *count, m3_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/SHA256SUMS", dir) >= (int)sizeof path)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: path too long", dir);
    FILE *sums = fopen(path, "r");
    if (!sums) return errno == ENOENT ? M3_STATUS_NOT_FOUND : m3_error_errno(err, errno, "cannot open", path);
    char line[4096];
    m3_status st = M3_STATUS_OK;
    size_t line_no = 0;
    while (st == M3_STATUS_OK && fgets(line, sizeof line, sums)) {
        line_no++;
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (len == 0) continue;
        bool ok = len > 66 && line[64] == ' ' && (line[65] == ' ' || line[65] == '*');
        for (int i = 0; ok && i < 64; i++) ok = hexval(line[i]) >= 0;
        const char *name = line + 66;
        if (!ok || strchr(name, '/')) {
            st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: line %zu is not \"<sha256>  <file name>\"", path, line_no);
            break;
        }
        char file[4096 + 256];
        snprintf(file, sizeof file, "%s/%s", dir, name);
        m3_mapped_file *f;
        if ((st = m3_mapped_file_open(file, &f, err))) break;
        unsigned char md[32];
        unsigned md_len = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, f->data, f->size) &&
             EVP_DigestFinal_ex(ctx, md, &md_len);
        EVP_MD_CTX_free(ctx);
        m3_mapped_file_close(f);
        if (!ok) {
            st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: SHA-256 failed", file);
            break;
        }
        for (int i = 0; i < 32 && st == M3_STATUS_OK; i++)
            if (hexval(line[2 * i]) * 16 + hexval(line[2 * i + 1]) != md[i])
                st = m3_error_set(err, M3_STATUS_FORMAT, 0,
                                  "%s: checksum mismatch against SHA256SUMS: the file is damaged; download it again",
                                  file);
        (*count)++;
    }
    fclose(sums);
    return st;
}

// A Hugging Face cache snapshot holds symlinks into ../../blobs/, each blob named by its content's
// hash: the SHA-256 for LFS files, the git blob SHA-1 ("blob <size>\0" + content) for the others.
// Checks every such link of dir against its blob's name. Returns M3_STATUS_NOT_FOUND when dir has
// none (not a snapshot).
static m3_status verify_hub_blobs(const char *dir, int *count, m3_error *err)
{
    DIR *d = opendir(dir);
    if (!d) return m3_error_errno(err, errno, "cannot open", dir);
    m3_status st = M3_STATUS_OK;
    int found = 0;
    struct dirent *e;
    while (st == M3_STATUS_OK && (e = readdir(d))) {
        char file[4096 + 256], target[4096];
        snprintf(file, sizeof file, "%s/%s", dir, e->d_name);
        struct stat lsb;
        if (lstat(file, &lsb) != 0 || !S_ISLNK(lsb.st_mode)) continue;
        ssize_t tn = readlink(file, target, sizeof target - 1);
        if (tn <= 0) continue;
        target[tn] = 0;
        const char *base = strrchr(target, '/');
        base = base ? base + 1 : target;
        size_t hex_len = strlen(base);
        bool hex = (hex_len == 64 || hex_len == 40) && strstr(target, "blobs/");
        for (size_t i = 0; hex && i < hex_len; i++) hex = hexval(base[i]) >= 0;
        if (!hex) continue;
        m3_mapped_file *f;
        if ((st = m3_mapped_file_open(file, &f, err))) break;
        unsigned char md[32];
        unsigned md_len = 0;
        char head[40];
        int hn = snprintf(head, sizeof head, "blob %zu", f->size);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = ctx && EVP_DigestInit_ex(ctx, hex_len == 64 ? EVP_sha256() : EVP_sha1(), NULL) &&
                  (hex_len == 64 || EVP_DigestUpdate(ctx, head, (size_t)hn + 1)) &&
                  EVP_DigestUpdate(ctx, f->data, f->size) && EVP_DigestFinal_ex(ctx, md, &md_len);
        EVP_MD_CTX_free(ctx);
        m3_mapped_file_close(f);
        if (!ok) {
            st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: hashing failed", file);
            break;
        }
        for (size_t i = 0; i < hex_len / 2 && st == M3_STATUS_OK; i++)
            if (hexval(base[2 * i]) * 16 + hexval(base[2 * i + 1]) != md[i])
                st = m3_error_set(err, M3_STATUS_FORMAT, 0,
                                  "%s: checksum mismatch against its Hugging Face cache blob name (%s %.16s...): "
                                  "the file is damaged; delete the blob and download it again",
                                  file, hex_len == 64 ? "SHA-256" : "git SHA-1", base);
        found++;
    }
    closedir(d);
    if (st != M3_STATUS_OK) return st;
    *count = found;
    return found ? M3_STATUS_OK : M3_STATUS_NOT_FOUND;
}

m3_status m3_model_verify(const char *path, m3_model_verify_report *report, m3_error *err)
{
    m3_model_verify_report r = {0};
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? m3_error_set(err, M3_STATUS_NOT_FOUND, ENOENT, "%s: no such model file or folder", path)
                               : m3_error_errno(err, errno, "cannot open", path);
    m3_status st;
    if (S_ISREG(sb.st_mode)) {
        r.is_file = 1;
        m3_mapped_file *f;
        if ((st = m3_mapped_file_open(path, &f, err))) return st;
        m3_gguf g;
        if ((st = m3_gguf_parse(f, &g, err))) {
            m3_mapped_file_close(f);
            return st;
        }
        char hex[M3_GGUF_CHECKSUM_HEX + 1];
        const char *stored = NULL;
        st = m3_gguf_compute_checksum(&g, hex, &stored, err);
        if (st == M3_STATUS_OK && memcmp(hex, stored, M3_GGUF_CHECKSUM_HEX) != 0)
            st = m3_error_set(err, M3_STATUS_FORMAT, 0,
                              "%s: checksum mismatch (stored sha256:%.16s..., computed sha256:%.16s...): the file "
                              "is damaged; convert the model again",
                              path, stored, hex);
        if (st == M3_STATUS_OK) {
            r.checksummed = 1;
            snprintf(r.checksum, sizeof r.checksum, "sha256:%s", hex);
        }
        m3_gguf_destroy(&g);
        m3_mapped_file_close(f);
        if (st != M3_STATUS_OK) return st;
    } else {
        int count = 0;
        st = verify_sums(path, &count, err);
        if (st == M3_STATUS_NOT_FOUND) {
            st = verify_hub_blobs(path, &count, err);
            if (st == M3_STATUS_OK) r.hub_cache = 1;
        }
        if (st != M3_STATUS_OK && st != M3_STATUS_NOT_FOUND) return st;
        r.checksummed = count;
    }
    m3_model *model;
    if ((st = m3_model_open(path, &model, err))) return st;
    r.tensors = 9 + 16 * (size_t)m3_model_get_config(model)->layers;
    m3_model_close(model);
    if (report) *report = r;
    return M3_STATUS_OK;
}
