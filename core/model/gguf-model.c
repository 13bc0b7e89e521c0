// SPDX-License-Identifier: MIT
//
// A BGE-M3 model's parts from a parsed GGUF file (docs/model-file.md): the configuration from the
// m3.* keys, the tensors (HF names; "colbert." and "sparse." prefixes select the two heads) as
// m3_weights pointing into the mapping, and the tokenizer rebuilt from the tokenizer.ggml.* arrays.
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "model/gguf-private.h"
#include "model/weights-private.h"

#define TRY(expr)                           \
    do {                                    \
        m3_status s_ = (expr);              \
        if (s_ != M3_STATUS_OK) return s_;  \
    } while (0)

static m3_status get_int(const m3_gguf *g, const char *key, int *v, m3_error *err)
{
    uint32_t u;
    TRY(m3_gguf_get_u32(g, key, &u, err));
    if (u > (uint32_t)INT32_MAX)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: GGUF key %s = %u is out of range", g->file->path,
                            key, u);
    *v = (int)u;
    return M3_STATUS_OK;
}

static bool string_is(const char *s, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

static m3_status read_config(const m3_gguf *g, m3_model_config *c, m3_error *err)
{
    const char *path = g->file->path;
    const char *s;
    size_t len;
    TRY(m3_gguf_get_string(g, "general.architecture", &s, &len, err));
    if (!string_is(s, len, M3_GGUF_ARCHITECTURE))
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                            "%s: GGUF architecture \"%.*s\" is not " M3_GGUF_ARCHITECTURE
                            " (make the file with `m3 model convert`)",
                            path, (int)(len > 64 ? 64 : len), s);
    TRY(m3_gguf_get_string(g, "m3.hidden_act", &s, &len, err));
    if (!string_is(s, len, "gelu"))
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: m3.hidden_act \"%.*s\" is not \"gelu\"", path,
                            (int)(len > 64 ? 64 : len), s);
    TRY(get_int(g, "m3.hidden_size", &c->hidden, err));
    TRY(get_int(g, "m3.num_hidden_layers", &c->layers, err));
    TRY(get_int(g, "m3.num_attention_heads", &c->heads, err));
    TRY(get_int(g, "m3.intermediate_size", &c->intermediate, err));
    TRY(get_int(g, "m3.vocab_size", &c->vocab, err));
    TRY(get_int(g, "m3.max_position_embeddings", &c->max_positions, err));
    TRY(get_int(g, "m3.type_vocab_size", &c->type_vocab, err));
    TRY(get_int(g, "m3.pad_token_id", &c->pad_token_id, err));
    TRY(m3_gguf_get_f32(g, "m3.layer_norm_eps", &c->layer_norm_eps, err));
    return m3_model_config_check(c, path, err);
}

static int blob_cmp(const void *a, const void *b)
{
    return strcmp(((const m3_gguf_packed_blob *)a)->name, ((const m3_gguf_packed_blob *)b)->name);
}

// A packed tensor ("packed.P.NAME", I8, one dimension): recorded as opaque bytes in the mapping.
// Whether its size and layout suit the kernels is for the backend to judge when it uses them.
static m3_status add_packed(const m3_gguf *g, const m3_gguf_tensor *gt, m3_gguf_packed *pk, m3_error *err)
{
    const char *path = g->file->path;
    size_t plen = strlen(M3_GGUF_PACKED_PREFIX);
    if (gt->type != M3_GGML_I8 || gt->n_dims != 1)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: packed tensor %.*s is not a one-dimensional array of bytes (I8)", path,
                            (int)gt->name_len, gt->name);
    if ((g->data_offset + gt->offset) % M3_GGUF_PACKED_ALIGN != 0)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: packed tensor %.*s does not start at a multiple of %d bytes in the file",
                            path, (int)gt->name_len, gt->name, M3_GGUF_PACKED_ALIGN);
    m3_gguf_packed_blob *b = realloc(pk->blobs, (pk->n_blobs + 1) * sizeof *b);
    if (!b) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    pk->blobs = b;
    b += pk->n_blobs;
    b->name = strndup(gt->name + plen, gt->name_len - plen);
    if (!b->name) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    b->data = g->file->data + g->data_offset + gt->offset;
    b->bytes = (size_t)gt->bytes;
    pk->n_blobs++;
    return M3_STATUS_OK;
}

// The "m3.packed.P.layout" keys: P a short tag of [a-z0-9_], the value a printable string.
static m3_status read_packed_layouts(const m3_gguf *g, m3_gguf_packed *pk, m3_error *err)
{
    const char *path = g->file->path;
    size_t pre = strlen(M3_GGUF_PACKED_KEY_PREFIX), suf = strlen(M3_GGUF_PACKED_KEY_SUFFIX);
    for (size_t i = 0; i < g->n_kv; i++) {
        const m3_gguf_kv *kv = &g->kvs[i];
        if (kv->key_len <= pre + suf || memcmp(kv->key, M3_GGUF_PACKED_KEY_PREFIX, pre) != 0) continue;
        size_t tag = kv->key_len - pre - suf;
        bool ok = memcmp(kv->key + pre + tag, M3_GGUF_PACKED_KEY_SUFFIX, suf) == 0 && tag <= M3_GGUF_PACKED_MAX_TAG;
        for (size_t c = 0; ok && c < tag; c++) {
            char ch = kv->key[pre + c];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
        }
        ok = ok && kv->type == M3_GGUF_STRING && kv->size > 0 && kv->size <= M3_GGUF_PACKED_MAX_LAYOUT;
        for (size_t c = 0; ok && c < kv->size; c++) ok = kv->value[c] > 0x20 && kv->value[c] < 0x7f;
        if (!ok)
            return m3_error_set(err, M3_STATUS_FORMAT, 0,
                                "%s: %.*s is not a packed-weights layout key (m3.packed.<precision>.layout, "
                                "a string of at most %d printable characters)",
                                path, (int)(kv->key_len > 100 ? 100 : kv->key_len), kv->key,
                                M3_GGUF_PACKED_MAX_LAYOUT);
        m3_gguf_packed_layout *l = realloc(pk->layouts, (pk->n_layouts + 1) * sizeof *l);
        if (!l) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
        pk->layouts = l;
        l += pk->n_layouts++;
        memset(l, 0, sizeof *l);
        memcpy(l->precision, kv->key + pre, tag);
        memcpy(l->layout, kv->value, kv->size);
    }
    if (pk->n_blobs > 1)  // qsort's base must not be NULL, even for no elements
        qsort(pk->blobs, pk->n_blobs, sizeof *pk->blobs, blob_cmp);
    return M3_STATUS_OK;
}

void m3_gguf_packed_clear(m3_gguf_packed *p)
{
    for (size_t i = 0; i < p->n_blobs; i++) free(p->blobs[i].name);
    free(p->blobs);
    free(p->layouts);
    memset(p, 0, sizeof *p);
}

const char *m3_gguf_packed_layout_of(const m3_gguf_packed *p, const char *precision)
{
    for (size_t i = 0; i < p->n_layouts; i++)
        if (!strcmp(p->layouts[i].precision, precision)) return p->layouts[i].layout;
    return NULL;
}

const void *m3_gguf_packed_find(const m3_gguf_packed *p, const char *precision, const char *name, size_t *bytes)
{
    char full[M3_GGUF_PACKED_MAX_TAG + 2 + 256];
    if (snprintf(full, sizeof full, "%s.%s", precision, name) >= (int)sizeof full) return NULL;
    m3_gguf_packed_blob key = {.name = full};
    const m3_gguf_packed_blob *b = p->n_blobs ? bsearch(&key, p->blobs, p->n_blobs, sizeof key, blob_cmp) : NULL;
    if (!b) return NULL;
    *bytes = b->bytes;
    return b->data;
}

static m3_status read_tensors(const m3_gguf *g, m3_gguf_model_parts *p, m3_error *err)
{
    const unsigned char *data = g->file->data;
    size_t plen = strlen(M3_GGUF_PACKED_PREFIX);
    for (size_t i = 0; i < g->n_tensors; i++) {
        const m3_gguf_tensor *gt = &g->tensors[i];
        if (gt->name_len > plen && !memcmp(gt->name, M3_GGUF_PACKED_PREFIX, plen)) {
            TRY(add_packed(g, gt, &p->packed, err));
            continue;
        }
        if (gt->type == M3_GGML_I8)
            return m3_error_set(err, M3_STATUS_FORMAT, 0,
                                "%s: tensor %.*s holds bytes (I8); only packed weights (" M3_GGUF_PACKED_PREFIX
                                "*) do",
                                g->file->path, (int)gt->name_len, gt->name);
        m3_tensor t = {0};
        t.dtype = gt->type == M3_GGML_F32 ? M3_DTYPE_F32 : gt->type == M3_GGML_F16 ? M3_DTYPE_F16 : M3_DTYPE_BF16;
        t.ndim = (int)gt->n_dims;
        // GGUF lists dimensions fastest first; PyTorch (and m3_tensor) slowest first.
        for (int d = 0; d < t.ndim; d++) t.shape[d] = (int64_t)gt->dims[t.ndim - 1 - d];
        int64_t stride = 1;
        for (int d = t.ndim - 1; d >= 0; d--) {
            t.strides[d] = stride;
            stride *= t.shape[d];
        }
        t.data = data + g->data_offset + gt->offset;
        m3_weights *set = p->encoder;
        const char *name = gt->name;
        size_t len = gt->name_len;
        if (len > 8 && !memcmp(name, "colbert.", 8)) {
            set = p->colbert;
            name += 8, len -= 8;
        } else if (len > 7 && !memcmp(name, "sparse.", 7)) {
            set = p->sparse;
            name += 7, len -= 7;
        }
        TRY(m3_weights_add(set, name, len, &t, err));
    }
    TRY(m3_weights_finish(p->encoder, err));
    TRY(m3_weights_finish(p->colbert, err));
    TRY(m3_weights_finish(p->sparse, err));
    return read_packed_layouts(g, &p->packed, err);
}

// The stored piece trie (M3_GGUF_PIECE_TRIE_KEY), pointing into the mapping, once its SHA-256 over
// the token texts and the trie matches (about 15 ms for the real model: far less than building it);
// left empty, so that the tokenizer builds its trie, when the file has none (written before it
// existed), another version, or a trie that is damaged or belongs to other texts. The tokenizer
// checks again that every walk stays inside the arrays.
static void read_piece_trie(const m3_gguf *g, const m3_gguf_kv *tokens, size_t n_ids, m3_tokenizer_trie *trie)
{
    const m3_gguf_kv *kv = m3_gguf_find(g, M3_GGUF_PIECE_TRIE_KEY);
    if (!kv) return;
    const unsigned char *b = kv->value;
    uint64_t n = kv->n;
    const char *why = NULL;
    uint32_t version = 0, h = 0, nodes = 0, ids = 0;
    if (kv->type != M3_GGUF_ARRAY || kv->array_type != M3_GGUF_UINT8) {
        why = "is not an array of bytes";
    } else if (n < M3_GGUF_PIECE_TRIE_HEADER || memcmp(b, M3_GGUF_PIECE_TRIE_MAGIC, 4) != 0) {
        why = "has no " M3_GGUF_PIECE_TRIE_MAGIC " header";
    } else {
        memcpy(&version, b + 4, 4);  // little-endian hosts only, as the format
        memcpy(&h, b + 8, 4);
        memcpy(&nodes, b + 12, 4);
        memcpy(&ids, b + 16, 4);
        if (version != M3_GGUF_PIECE_TRIE_VERSION) {
            m3_log(M3_LOG_INFO, "%s: %s version %u is not read by this version of m3; building the trie",
                   g->file->path, M3_GGUF_PIECE_TRIE_KEY, version);
            return;
        }
        if (h < M3_GGUF_PIECE_TRIE_HEADER || h > n || (n - h) % 12 != 0 || (n - h) / 12 != nodes)
            why = "has a header that does not match its size";
        else if (ids != n_ids)
            why = "was built for another vocabulary size";
        else if ((uintptr_t)(b + h) % 4 != 0)
            why = "is not aligned in the file";
    }
    if (!why) {
        unsigned char md[32];
        unsigned md_len = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
                  EVP_DigestUpdate(ctx, tokens->value, tokens->size) && EVP_DigestUpdate(ctx, b + h, n - h) &&
                  EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 32;
        EVP_MD_CTX_free(ctx);
        if (!ok) why = "cannot be hashed (SHA-256 failed)";
        else if (memcmp(md, b + 24, 32) != 0) why = "does not match its SHA-256";
    }
    if (why) {
        m3_log(M3_LOG_WARN, "%s: %s %s (damaged?); building the trie, which takes longer", g->file->path,
               M3_GGUF_PIECE_TRIE_KEY, why);
        return;
    }
    trie->units = (const int32_t *)(const void *)(b + h);
    trie->ids = trie->units + 2 * (size_t)nodes;
    trie->size = nodes;
}

// The vocabulary arrays of a parsed file into *out: texts and charsmap point into the mapping, the
// lengths, scores and types are one block that out->storage owns (m3_tokenizer_pieces_clear).
// *tokens_kv is tokenizer.ggml.tokens (for the piece trie's SHA-256).
static m3_status read_pieces(const m3_gguf *g, const m3_model_config *c, m3_tokenizer_pieces *out,
                             const m3_gguf_kv **tokens_kv, m3_error *err)
{
    memset(out, 0, sizeof *out);
    const char *path = g->file->path;
    const char *s;
    size_t len;
    TRY(m3_gguf_get_string(g, "tokenizer.ggml.model", &s, &len, err));
    if (!string_is(s, len, M3_GGUF_TOKENIZER_MODEL))
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                            "%s: tokenizer.ggml.model \"%.*s\" is not \"" M3_GGUF_TOKENIZER_MODEL "\"", path,
                            (int)(len > 64 ? 64 : len), s);
    const m3_gguf_kv *tokens, *scores, *types, *charsmap;
    TRY(m3_gguf_get_array(g, "tokenizer.ggml.tokens", M3_GGUF_STRING, &tokens, err));
    TRY(m3_gguf_get_array(g, "tokenizer.ggml.scores", M3_GGUF_FLOAT32, &scores, err));
    TRY(m3_gguf_get_array(g, "tokenizer.ggml.token_type", M3_GGUF_INT32, &types, err));
    TRY(m3_gguf_get_array(g, "tokenizer.ggml.precompiled_charsmap", M3_GGUF_UINT8, &charsmap, err));
    size_t n = (size_t)c->vocab;
    if (tokens->n != n || scores->n != n || types->n != n)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: the tokenizer has %llu tokens, %llu scores and %llu types; m3.vocab_size is %zu",
                            path, (unsigned long long)tokens->n, (unsigned long long)scores->n,
                            (unsigned long long)types->n, n);
    // The XLM-R special ids are fixed by the tokenizer; the keys say so and must agree.
    static const struct {
        const char *key;
        int id;  // -1: the last id (<mask>)
    } specials[] = {
        {"tokenizer.ggml.bos_token_id", M3_TOKEN_BOS}, {"tokenizer.ggml.padding_token_id", M3_TOKEN_PAD},
        {"tokenizer.ggml.eos_token_id", M3_TOKEN_EOS}, {"tokenizer.ggml.unknown_token_id", M3_TOKEN_UNK},
        {"tokenizer.ggml.mask_token_id", -1},
    };
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        uint32_t v;
        TRY(m3_gguf_get_u32(g, specials[i].key, &v, err));
        uint32_t want = specials[i].id < 0 ? (uint32_t)(n - 1) : (uint32_t)specials[i].id;
        if (v != want)
            return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: %s is %u; the XLM-R tokenizer has %u", path,
                                specials[i].key, v, want);
    }
    bool add_prefix, remove_ws, escape_ws;
    TRY(m3_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &add_prefix, err));
    TRY(m3_gguf_get_bool(g, "tokenizer.ggml.remove_extra_whitespaces", &remove_ws, err));
    TRY(m3_gguf_get_bool(g, "m3.tokenizer.escape_whitespaces", &escape_ws, err));

    char *block = malloc(n * (sizeof(const char *) + sizeof(uint32_t) + sizeof(float) + sizeof(int32_t)));
    if (!block) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory reading the tokenizer", path);
    const char **texts = (const char **)(void *)block;
    uint32_t *lens = (uint32_t *)(void *)(texts + n);
    float *sc = (float *)(void *)(lens + n);
    int32_t *ty = (int32_t *)(void *)(sc + n);
    // The strings were bounds-checked by the parser; walk them again to index them.
    const unsigned char *q = tokens->value;
    for (size_t i = 0; i < n; i++) {
        uint64_t l = 0;
        for (int k = 7; k >= 0; k--) l = l << 8 | q[k];
        if (l > UINT32_MAX) {
            free(block);
            return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: tokenizer token %zu is too long", path, i);
        }
        texts[i] = (const char *)q + 8;
        lens[i] = (uint32_t)l;
        q += 8 + l;
        memcpy(&sc[i], scores->value + 4 * i, 4);  // little-endian hosts only, as the format
        memcpy(&ty[i], types->value + 4 * i, 4);
    }
    *out = (m3_tokenizer_pieces){
        .n = n,
        .texts = texts,
        .lens = lens,
        .scores = sc,
        .types = ty,
        .charsmap = charsmap->n ? charsmap->value : NULL,
        .charsmap_size = (size_t)charsmap->n,
        .add_dummy_prefix = add_prefix,
        .remove_extra_whitespaces = remove_ws,
        .escape_whitespaces = escape_ws,
        .storage = block,
    };
    *tokens_kv = tokens;
    return M3_STATUS_OK;
}

static m3_status read_tokenizer(const m3_gguf *g, const m3_model_config *c, m3_gguf_model_parts *p, m3_error *err)
{
    m3_tokenizer_pieces pieces;
    const m3_gguf_kv *tokens;
    TRY(read_pieces(g, c, &pieces, &tokens, err));
    read_piece_trie(g, tokens, pieces.n, &pieces.trie);
    m3_status st = m3_tokenizer_new_from_pieces(&pieces, g->file->path, &p->tokenizer, err);
    m3_tokenizer_pieces_clear(&pieces);
    return st;
}

m3_status m3_gguf_file_pieces(const m3_mapped_file *file, m3_tokenizer_pieces *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    m3_gguf g;
    TRY(m3_gguf_parse(file, &g, err));
    m3_model_config c;
    const m3_gguf_kv *tokens;
    m3_status st = read_config(&g, &c, err);
    if (st == M3_STATUS_OK) st = read_pieces(&g, &c, out, &tokens, err);
    m3_gguf_destroy(&g);
    return st;
}

m3_status m3_gguf_load_parts(m3_mapped_file *file, m3_gguf_model_parts *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    m3_gguf g;
    m3_status st = m3_gguf_parse(file, &g, err);
    if (st != M3_STATUS_OK) {
        m3_mapped_file_close(file);
        return st;
    }
    m3_mapped_file *wrap_c = NULL, *wrap_s = NULL;
    // The heads' weight sets borrow the mapping through wrappers; the encoder's set owns it (and
    // closes it on error).
    if ((st = m3_weights_new(file, &out->encoder, err)) ||
        (st = m3_mapped_file_wrap(file->data, file->size, file->path, &wrap_c, err)) ||
        (st = m3_weights_new(wrap_c, &out->colbert, err)) ||
        (st = m3_mapped_file_wrap(file->data, file->size, file->path, &wrap_s, err)) ||
        (st = m3_weights_new(wrap_s, &out->sparse, err)) || (st = read_config(&g, &out->config, err)) ||
        (st = read_tensors(&g, out, err)) || (st = read_tokenizer(&g, &out->config, out, err)))
        goto done;
done:
    m3_gguf_destroy(&g);
    if (st != M3_STATUS_OK) m3_gguf_model_parts_clear(out);
    return st;
}

void m3_gguf_model_parts_clear(m3_gguf_model_parts *p)
{
    m3_tokenizer_free(p->tokenizer);
    m3_gguf_packed_clear(&p->packed);
    m3_weights_close(p->colbert);
    m3_weights_close(p->sparse);
    m3_weights_close(p->encoder);
    memset(p, 0, sizeof *p);
}

m3_status m3_model_file_identify(const char *path, m3_model_config *config, char checksum[72], m3_error *err)
{
    m3_mapped_file *file;
    m3_status st = m3_mapped_file_open(path, &file, err);
    if (st != M3_STATUS_OK) return st;
    if (file->size < 4 || memcmp(file->data, M3_GGUF_MAGIC, 4) != 0) {
        st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not a GGUF model file (no GGUF magic)", path);
        m3_mapped_file_close(file);
        return st;
    }
    m3_gguf g;
    if ((st = m3_gguf_parse(file, &g, err)) == M3_STATUS_OK) {
        const char *s;
        size_t len;
        if ((st = read_config(&g, config, err)) == M3_STATUS_OK &&
            (st = m3_gguf_get_string(&g, m3_gguf_find(&g, M3_GGUF_PLAIN_CHECKSUM_KEY) ? M3_GGUF_PLAIN_CHECKSUM_KEY
                                                                                   : M3_GGUF_CHECKSUM_KEY,
                                     &s, &len, err)) == M3_STATUS_OK) {
            if (len != strlen(M3_GGUF_CHECKSUM_PREFIX) + M3_GGUF_CHECKSUM_HEX)
                st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: malformed " M3_GGUF_CHECKSUM_KEY, path);
            else
                memcpy(checksum, s, len), checksum[len] = 0;
        }
        m3_gguf_destroy(&g);
    }
    m3_mapped_file_close(file);
    return st;
}
