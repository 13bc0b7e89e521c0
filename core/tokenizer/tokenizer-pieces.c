// SPDX-License-Identifier: MIT
//
// The tokenizer's vocabulary as plain arrays (tokenizer.h, m3_tokenizer_pieces), for model files
// that store it outside SentencePiece's protobuf. Building a tokenizer from the arrays writes them
// back as the ModelProto fields that sp-model.c reads (pieces, normalizer spec; the trainer spec's
// defaults are already the XLM-R layout) and loads that through m3_tokenizer_load: one code path,
// so a converted model tokenizes exactly as the original.
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/sp-model-private.h"
#include "tokenizer/tokenizer-private.h"
#include "tokenizer/utf8-private.h"

// HF id <-> SentencePiece id in XLMRobertaConverter's layout: HF 0 <s> = SP 1, HF 2 </s> = SP 2,
// HF 3 <unk> = SP 0, HF id i >= 4 = SP i - 1; HF 1 <pad> and HF n-1 <mask> have no SP piece.
static size_t hf_from_sp(size_t sp)
{
    return sp == 0 ? 3 : sp == 1 ? 0 : sp == 2 ? 2 : sp + 1;
}

enum { TYPE_CONTROL = 3, TYPE_USER_DEFINED = 4 };

m3_status m3_tokenizer_pieces_read(const void *data, size_t size, const char *name,
                                   m3_tokenizer_pieces *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    if (!name) name = "(memory)";
    // The loader judges the model (unigram, XLM-R special ids, charsmap...) so that every vocabulary
    // read here is one that m3_tokenizer_new_from_pieces will accept back.
    m3_tokenizer *check;
    m3_status st = m3_tokenizer_load(data, size, name, &check, err);
    if (st != M3_STATUS_OK) return st;
    m3_tokenizer_free(check);

    m3_sp_model m;
    st = m3_sp_model_parse(data, size, name, &m, err);
    if (st != M3_STATUS_OK) return st;
    size_t n = m.n_pieces + 2;
    // One block: texts[n], lens[n], scores[n], types[n], then a copy of the model bytes that the
    // texts and the charsmap point into.
    size_t bytes = n * (sizeof(char *) + sizeof(uint32_t) + sizeof(float) + sizeof(int32_t)) + size;
    unsigned char *block = malloc(bytes);
    if (!block) {
        m3_sp_model_destroy(&m);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory reading the vocabulary", name);
    }
    const char **texts = (const char **)(void *)block;
    uint32_t *lens = (uint32_t *)(void *)(texts + n);
    float *scores = (float *)(void *)(lens + n);
    int32_t *types = (int32_t *)(void *)(scores + n);
    unsigned char *copy = (unsigned char *)(types + n);
    memcpy(copy, data, size);
    const unsigned char *base = data;
    for (size_t sp = 0; sp < m.n_pieces; sp++) {
        size_t id = hf_from_sp(sp);
        texts[id] = (const char *)copy + (m.pieces[sp].text - base);
        lens[id] = m.pieces[sp].len;
        scores[id] = m.pieces[sp].score;
        types[id] = m.pieces[sp].type;
    }
    texts[1] = "<pad>";
    lens[1] = 5;
    scores[1] = 0.0f;
    types[1] = TYPE_CONTROL;
    texts[n - 1] = "<mask>";
    lens[n - 1] = 6;
    scores[n - 1] = 0.0f;
    types[n - 1] = TYPE_USER_DEFINED;
    out->n = n;
    out->texts = texts;
    out->lens = lens;
    out->scores = scores;
    out->types = types;
    out->charsmap = m.charsmap_size ? copy + (m.charsmap - base) : NULL;
    out->charsmap_size = m.charsmap_size;
    out->add_dummy_prefix = m.add_dummy_prefix;
    out->remove_extra_whitespaces = m.remove_extra_whitespaces;
    out->escape_whitespaces = m.escape_whitespaces;
    out->storage = block;
    m3_sp_model_destroy(&m);
    return M3_STATUS_OK;
}

void m3_tokenizer_pieces_clear(m3_tokenizer_pieces *p)
{
    free(p->storage);
    memset(p, 0, sizeof *p);
}

// ---- protobuf writing (proto2 wire format) ----

static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static unsigned char *put_tag(unsigned char *p, uint32_t field, unsigned wire)
{
    return put_varint(p, (uint64_t)field << 3 | wire);
}

// SentencePiece { 1: piece, 2: score, 3: type }, without its own tag and length.
static size_t piece_size(uint32_t len, int32_t type)
{
    return 1 + varint_size(len) + len + 1 + 4 + 1 + varint_size((uint64_t)type);
}

static bool is_text(const m3_tokenizer_pieces *p, size_t id, const char *want)
{
    size_t l = strlen(want);
    return p->lens[id] == l && p->texts[id] && memcmp(p->texts[id], want, l) == 0;
}

m3_status m3_tokenizer_new_from_pieces(const m3_tokenizer_pieces *p, const char *name, m3_tokenizer **out,
                                       m3_error *err)
{
    *out = NULL;
    if (!name) name = "(memory)";
    if (!p || !p->texts || !p->lens || !p->scores || !p->types || (!p->charsmap && p->charsmap_size))
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: incomplete tokenizer arrays", name);
    size_t n = p->n;
    if (n < 5)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: the tokenizer has %zu ids, fewer than <s> <pad> </s> <unk> <mask>", name, n);
    if (n > (size_t)INT32_MAX)
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: too many tokenizer ids (%zu)", name, n);
    if (!is_text(p, 1, "<pad>") || !is_text(p, n - 1, "<mask>"))
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: tokenizer ids 1 and %zu must be <pad> and <mask> (the XLM-R layout)", name,
                            n - 1);
    size_t total = 64 + (size_t)varint_size(p->charsmap_size) + p->charsmap_size;
    for (size_t id = 0; id < n; id++) {
        if (id == 1 || id == n - 1) continue;
        if (p->lens[id] == 0 || !p->texts[id] || !m3_utf8_valid((const unsigned char *)p->texts[id], p->lens[id]))
            return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: tokenizer id %zu is empty or not UTF-8", name, id);
        if (p->types[id] < 1 || p->types[id] > 6)
            return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: tokenizer id %zu has an unknown type %d", name,
                                id, (int)p->types[id]);
        if (p->lens[id] > (1u << 20))
            return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: tokenizer id %zu is %u bytes long", name, id,
                                (unsigned)p->lens[id]);
        size_t ps = piece_size(p->lens[id], p->types[id]);
        total += 1 + varint_size(ps) + ps;
    }
    unsigned char *buf = malloc(total);
    if (!buf) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory building the tokenizer", name);
    unsigned char *w = buf;
    // ModelProto.pieces in SentencePiece order: <unk> <s> </s>, then HF ids 4 .. n-2.
    for (size_t sp = 0; sp < n - 2; sp++) {
        size_t id = hf_from_sp(sp);
        uint32_t len = p->lens[id];
        int32_t type = p->types[id];
        w = put_tag(w, 1, 2);
        w = put_varint(w, piece_size(len, type));
        w = put_tag(w, 1, 2);
        w = put_varint(w, len);
        memcpy(w, p->texts[id], len);
        w += len;
        w = put_tag(w, 2, 5);
        uint32_t bits;
        memcpy(&bits, &p->scores[id], 4);
        for (int k = 0; k < 4; k++) *w++ = (unsigned char)(bits >> (8 * k));
        w = put_tag(w, 3, 0);
        w = put_varint(w, (uint64_t)type);
    }
    // ModelProto.normalizer_spec { 2: precompiled_charsmap, 3..5: flags }.
    size_t spec = 6 + (p->charsmap_size ? 1 + varint_size(p->charsmap_size) + p->charsmap_size : 0);
    w = put_tag(w, 3, 2);
    w = put_varint(w, spec);
    if (p->charsmap_size) {
        w = put_tag(w, 2, 2);
        w = put_varint(w, p->charsmap_size);
        memcpy(w, p->charsmap, p->charsmap_size);
        w += p->charsmap_size;
    }
    w = put_tag(w, 3, 0);
    *w++ = p->add_dummy_prefix != 0;
    w = put_tag(w, 4, 0);
    *w++ = p->remove_extra_whitespaces != 0;
    w = put_tag(w, 5, 0);
    *w++ = p->escape_whitespaces != 0;
    M3_ASSERT((size_t)(w - buf) <= total);
    m3_status st = m3_tokenizer_load_with_trie(buf, (size_t)(w - buf), name, &p->trie, out, err);
    free(buf);
    return st;
}
