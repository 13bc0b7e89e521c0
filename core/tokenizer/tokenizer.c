// SPDX-License-Identifier: MIT
//
// The pipeline of the Hugging Face fast tokenizer that transformers' XLMRobertaConverter builds
// from a SentencePiece model, step for step:
//   1. literal special tokens (<s> <pad> </s> <unk> <mask>) are cut out of the raw text (leftmost
//      longest; <mask> also takes the white space on its left); each text span in between is
//      tokenized on its own,
//   2. Precompiled normalizer (charsmap-private.h), then Strip (right), then Replace(" {2,}", "▁"),
//   3. Metaspace: spaces become ▁, a ▁ is prepended, the text is split before every ▁,
//   4. unigram Viterbi per word over the vocabulary (scores in double), unknown characters fused,
//   5. <s> ... </s> around the pieces, truncated to max_length.
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/log.h"
#include "base/mapped-file.h"
#include "tokenizer/charsmap-private.h"
#include "tokenizer/piece-trie-private.h"
#include "tokenizer/sp-model-private.h"
#include "tokenizer/tokenizer-private.h"
#include "tokenizer/utf8-private.h"

// The reference's unigram model scores an unknown character this far below the worst piece.
#define UNK_PENALTY 10.0

struct m3_tokenizer {
    unsigned char *blob;  // a copy of the model file: the pieces point into it
    m3_sp_model model;
    m3_charsmap charsmap;
    m3_piece_trie trie;
    double *scores;       // by id
    char *texts;          // every id's text, NUL terminated
    size_t *text_offset;  // by id, into texts
    size_t vocab_size;
    int32_t mask_id;
    double unk_score;
    bool add_dummy_prefix;
};

static const char *const special_text[4] = {"<s>", "<pad>", "</s>", "<unk>"};

// A saved trie (m3_tokenizer_pieces.trie) in place of building one, when it is safe to walk and a
// spot check of its keys agrees (proving every key would cost a third of a second: 250002 walks
// through 25 MB, a cache miss each step; that the trie is this vocabulary's is vouched for by the
// caller, e.g. a model file's checksum); otherwise false, with the reason logged.
static bool tokenizer_borrow_trie(m3_tokenizer *tok, const m3_tokenizer_trie *saved, size_t vocab,
                                  const unsigned char *const *keys, const uint32_t *lens, const char *name)
{
    m3_error why = {0};
    if (!saved->units || !saved->ids || (uintptr_t)saved->units % 4 || (uintptr_t)saved->ids % 4) {
        m3_log(M3_LOG_WARN, "%s: the piece trie's arrays are missing or misaligned; building it", name);
        return false;
    }
    const m3_piece_trie_unit *units = (const m3_piece_trie_unit *)(const void *)saved->units;
    if (m3_piece_trie_borrow(&tok->trie, units, saved->ids, saved->size, vocab, name, &why) == M3_STATUS_OK &&
        m3_piece_trie_spot_check(&tok->trie, vocab, keys, lens, 61, name, &why) == M3_STATUS_OK)
        return true;
    m3_piece_trie_destroy(&tok->trie);
    m3_log(M3_LOG_WARN, "%s (the stored piece trie is damaged or stale: building it, which takes longer)",
           why.message);
    return false;
}

static m3_status tokenizer_build_vocab(m3_tokenizer *tok, const m3_tokenizer_trie *saved, const char *name,
                                       m3_error *err)
{
    size_t n = tok->model.n_pieces;
    // XLMRobertaConverter's layout: <s> <pad> </s> <unk>, the SentencePiece pieces from index 3
    // on (so id = SentencePiece id + 1), then <mask>.
    size_t vocab = n + 2;
    tok->vocab_size = vocab;
    tok->mask_id = (int32_t)(n + 1);
    tok->scores = malloc(vocab * sizeof *tok->scores);
    tok->text_offset = malloc(vocab * sizeof *tok->text_offset);
    const unsigned char **keys = malloc(vocab * sizeof *keys);
    uint32_t *lens = malloc(vocab * sizeof *lens);
    int32_t *ids = malloc(vocab * sizeof *ids);
    size_t text_bytes = 32;
    for (size_t i = 3; i < n; i++) text_bytes += tok->model.pieces[i].len + 1;
    tok->texts = malloc(text_bytes);
    if (!tok->scores || !tok->text_offset || !keys || !lens || !ids || !tok->texts) goto nomem;

    size_t off = 0;
    for (size_t id = 0; id < vocab; id++) {
        const unsigned char *text;
        uint32_t len;
        double score = 0.0;
        if (id < 4 || id == vocab - 1) {
            text = (const unsigned char *)(id < 4 ? special_text[id] : "<mask>");
            len = (uint32_t)strlen((const char *)text);
        } else {
            const m3_sp_piece *p = &tok->model.pieces[id - 1];
            text = p->text;
            len = p->len;
            score = p->score;
        }
        tok->scores[id] = score;
        tok->text_offset[id] = off;
        memcpy(tok->texts + off, text, len);
        tok->texts[off + len] = 0;
        off += len + 1;
        keys[id] = text;
        lens[id] = len;
        ids[id] = (int32_t)id;
    }
    // The reference's minimum runs over its whole vocabulary, the zero-scored specials included.
    double min_score = INFINITY;
    for (size_t id = 0; id < vocab; id++)
        if (tok->scores[id] < min_score) min_score = tok->scores[id];
    tok->unk_score = min_score - UNK_PENALTY;
    m3_status s = M3_STATUS_OK;
    // The special tokens are pieces too: the reference's lattice matches them inside words (a
    // full-width "＜s＞" normalizes to "<s>" and becomes id 0), and so do we.
    if (!saved || !saved->size || !tokenizer_borrow_trie(tok, saved, vocab, keys, lens, name))
        s = m3_piece_trie_build(&tok->trie, vocab, keys, lens, ids, name, err);
    free(keys);
    free(lens);
    free(ids);
    return s;
nomem:
    free(keys);
    free(lens);
    free(ids);
    return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory building the vocabulary", name);
}

m3_status m3_tokenizer_load(const void *data, size_t size, const char *name, m3_tokenizer **out,
                            m3_error *err)
{
    return m3_tokenizer_load_with_trie(data, size, name, NULL, out, err);
}

m3_status m3_tokenizer_load_with_trie(const void *data, size_t size, const char *name,
                                      const m3_tokenizer_trie *trie, m3_tokenizer **out, m3_error *err)
{
    *out = NULL;
    if (!name) name = "(memory)";
    if (!data && size) return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: no data", name);
    if (size == 0)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: empty file, not a sentencepiece model",
                            name);
    m3_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok || !(tok->blob = malloc(size))) {
        free(tok);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", name);
    }
    memcpy(tok->blob, data, size);
    m3_status s = m3_sp_model_parse(tok->blob, size, name, &tok->model, err);
    if (s != M3_STATUS_OK) goto fail;
    const m3_sp_model *m = &tok->model;
    if (m->model_type != M3_SP_MODEL_UNIGRAM) {
        s = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                         "%s: sentencepiece model type %d is not unigram (1)", name, m->model_type);
        goto fail;
    }
    if (m->n_pieces < 3) {
        s = m3_error_set(err, M3_STATUS_FORMAT, 0,
                         "%s: sentencepiece model has %zu pieces, fewer than <unk> <s> </s>", name,
                         m->n_pieces);
        goto fail;
    }
    if (m->n_pieces > (size_t)INT32_MAX - 2) {
        s = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: too many pieces (%zu)", name, m->n_pieces);
        goto fail;
    }
    // The fixed XLM-R id mapping (HF id = SentencePiece id + 1, unk -> 3) is only right for this
    // layout; another one would silently give wrong ids.
    if (m->unk_id != 0 || m->bos_id != 1 || m->eos_id != 2 || m->pad_id != -1) {
        s = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                         "%s: special ids unk=%d bos=%d eos=%d pad=%d are not the XLM-R layout "
                         "(0, 1, 2, -1)",
                         name, m->unk_id, m->bos_id, m->eos_id, m->pad_id);
        goto fail;
    }
    tok->add_dummy_prefix = m->add_dummy_prefix;
    s = m3_charsmap_init(&tok->charsmap, m->charsmap, m->charsmap_size, name, err);
    if (s != M3_STATUS_OK) goto fail;
    s = tokenizer_build_vocab(tok, trie, name, err);
    if (s != M3_STATUS_OK) goto fail;
    *out = tok;
    return M3_STATUS_OK;
fail:
    m3_tokenizer_free(tok);
    return s;
}

m3_status m3_tokenizer_open(const char *path, m3_tokenizer **out, m3_error *err)
{
    *out = NULL;
    m3_mapped_file *f;
    m3_status s = m3_mapped_file_open(path, &f, err);
    if (s != M3_STATUS_OK) return s;
    s = m3_tokenizer_load(f->data, f->size, path, out, err);
    m3_mapped_file_close(f);
    return s;
}

void m3_tokenizer_free(m3_tokenizer *tok)
{
    if (!tok) return;
    m3_piece_trie_destroy(&tok->trie);
    m3_charsmap_destroy(&tok->charsmap);
    m3_sp_model_destroy(&tok->model);
    free(tok->scores);
    free(tok->texts);
    free(tok->text_offset);
    free(tok->blob);
    free(tok);
}

size_t m3_tokenizer_vocab_size(const m3_tokenizer *tok) { return tok->vocab_size; }

m3_tokenizer_trie m3_tokenizer_get_trie(const m3_tokenizer *tok)
{
    return (m3_tokenizer_trie){(const int32_t *)(const void *)tok->trie.units, tok->trie.ids, tok->trie.size};
}

const char *m3_tokenizer_piece(const m3_tokenizer *tok, int32_t id)
{
    if (id < 0 || (size_t)id >= tok->vocab_size) return NULL;
    return tok->texts + tok->text_offset[id];
}

// ---- encoding ----

typedef struct lattice_node {
    double score;   // best score of a path ending here
    int32_t start;  // where its last piece starts, -1 when unreached
    int32_t id;
} lattice_node;

typedef struct path_piece {
    int32_t start, end, id;
} path_piece;

// Per-call scratch: the tokenizer itself stays immutable and shareable between threads.
typedef struct encoder {
    const m3_tokenizer *tok;
    m3_bytes norm, word;
    lattice_node *lattice;
    path_piece *path;
    size_t lattice_cap;
    int32_t *ids;
    size_t n_ids, cap_ids;
    size_t limit;  // pieces allowed between <s> and </s>
} encoder;

static bool encoder_push(encoder *e, int32_t id)
{
    if (e->n_ids - 1 >= e->limit) return true;  // ids[0] is <s>; truncation drops the rest
    if (e->n_ids == e->cap_ids) {
        size_t ncap = e->cap_ids * 2;
        int32_t *p = realloc(e->ids, ncap * sizeof *p);
        if (!p) return false;
        e->ids = p;
        e->cap_ids = ncap;
    }
    e->ids[e->n_ids++] = id;
    return true;
}

static bool encoder_full(const encoder *e) { return e->n_ids - 1 >= e->limit; }

// Viterbi over one word (valid UTF-8), as the reference's optimized unigram encoder: nodes in
// order of start, then of length; a later candidate replaces a node only when strictly better.
static bool encode_word(encoder *e, const unsigned char *w, size_t n)
{
    const m3_tokenizer *tok = e->tok;
    if (n + 1 > e->lattice_cap) {
        size_t ncap = e->lattice_cap ? e->lattice_cap : 64;
        while (ncap < n + 1) ncap *= 2;
        lattice_node *l = realloc(e->lattice, ncap * sizeof *l);
        if (!l) return false;
        e->lattice = l;
        path_piece *p = realloc(e->path, ncap * sizeof *p);
        if (!p) return false;
        e->path = p;
        e->lattice_cap = ncap;
    }
    lattice_node *lat = e->lattice;
    lat[0] = (lattice_node){0.0, 0, -1};
    for (size_t i = 1; i <= n; i++) lat[i].start = -1;
    const m3_piece_trie_unit *units = tok->trie.units;
    const int32_t *trie_ids = tok->trie.ids;
    const double *scores = tok->scores;
    for (size_t pos = 0; pos < n;) {
        size_t mblen = m3_utf8_len(w[pos]);
        if (mblen > n - pos) mblen = n - pos;
        double base_score = lat[pos].score;
        bool has_single = false;
        int32_t node = 0;
        for (size_t k = pos; k < n; k++) {
            int32_t t = units[node].base + w[k];
            if (units[t].check != node) break;
            node = t;
            int32_t id = trie_ids[node];
            if (id < 0) continue;
            size_t end = k + 1;
            double cand = base_score + scores[id];
            if (lat[end].start < 0 || cand > lat[end].score) lat[end] = (lattice_node){cand, (int32_t)pos, id};
            if (end - pos == mblen) has_single = true;
        }
        if (!has_single) {
            size_t end = pos + mblen;
            double cand = base_score + tok->unk_score;
            if (lat[end].start < 0 || cand > lat[end].score)
                lat[end] = (lattice_node){cand, (int32_t)pos, M3_TOKEN_UNK};
        }
        pos += mblen;
    }
    size_t n_path = 0;
    for (size_t end = n; end > 0;) {
        size_t start = (size_t)lat[end].start;
        e->path[n_path++] = (path_piece){(int32_t)start, (int32_t)end, lat[end].id};
        end = start;
    }
    // Forward, fusing runs of unknown pieces into one; the fused text keeps its own id when it
    // happens to be a piece, as the reference maps the fused string back through its vocabulary.
    for (size_t k = n_path; k-- > 0;) {
        path_piece p = e->path[k];
        if (p.id != M3_TOKEN_UNK) {
            if (!encoder_push(e, p.id)) return false;
            continue;
        }
        int32_t start = p.start, end = p.end;
        while (k > 0 && e->path[k - 1].id == M3_TOKEN_UNK) end = e->path[--k].end;
        int32_t id = m3_piece_trie_find(&tok->trie, w + start, (size_t)(end - start));
        if (!encoder_push(e, id >= 0 ? id : M3_TOKEN_UNK)) return false;
    }
    return true;
}

static const unsigned char METASPACE[3] = {0xe2, 0x96, 0x81};  // U+2581 ▁

static bool is_metaspace(const unsigned char *s, size_t n)
{
    return n >= 3 && s[0] == METASPACE[0] && s[1] == METASPACE[1] && s[2] == METASPACE[2];
}

// Start of the character that ends at s[end] (valid UTF-8).
static size_t char_before(const unsigned char *s, size_t end)
{
    size_t i = end - 1;
    while (i > 0 && end - i < 4 && (s[i] & 0xc0) == 0x80) i--;
    return i;
}

static size_t strip_right(const unsigned char *s, size_t n)
{
    while (n > 0) {
        size_t i = char_before(s, n);
        uint32_t cp = 0;
        if (m3_utf8_decode(s + i, n - i, &cp) != n - i || !m3_unicode_is_white_space(cp)) break;
        n = i;
    }
    return n;
}

// One span of text between special tokens.
static bool encode_span(encoder *e, const unsigned char *s, size_t n)
{
    e->norm.len = 0;
    e->word.len = 0;
    if (!m3_charsmap_normalize(&e->tok->charsmap, s, n, &e->norm)) return false;
    const unsigned char *t = e->norm.data;
    size_t len = strip_right(t, e->norm.len);
    if (len == 0) return true;
    // Replace(" {2,}", "▁") then Metaspace's ' ' -> ▁: every run of spaces becomes one ▁.
    if (!m3_bytes_reserve(&e->word, len * 3 + 3)) return false;
    m3_bytes *w = &e->word;
    if (e->tok->add_dummy_prefix && t[0] != ' ' && !is_metaspace(t, len))
        m3_bytes_append(w, METASPACE, 3);
    for (size_t i = 0; i < len;) {
        if (t[i] == ' ') {
            m3_bytes_append(w, METASPACE, 3);
            while (i < len && t[i] == ' ') i++;
        } else {
            w->data[w->len++] = t[i++];
        }
    }
    // Split before every ▁ (MergedWithNext).
    const unsigned char *d = w->data;
    size_t word_start = 0;
    for (size_t i = 1; i + 3 <= w->len; i++) {
        if (d[i] == METASPACE[0] && is_metaspace(d + i, w->len - i)) {
            if (!encode_word(e, d + word_start, i - word_start)) return false;
            if (encoder_full(e)) return true;
            word_start = i;
            i += 2;
        }
    }
    return encode_word(e, d + word_start, w->len - word_start);
}

typedef struct special_token {
    const char *text;
    size_t len;
    bool lstrip;
} special_token;

// Each bad byte becomes U+FFFD, like a decoder with errors="replace" applied byte by byte.
static unsigned char *repair_utf8(const unsigned char *s, size_t n, size_t *out_len)
{
    if (n > (SIZE_MAX - 1) / 3) return NULL;
    unsigned char *r = malloc(n * 3 + 1);
    if (!r) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = m3_utf8_decode(s + i, n - i, &cp);
        if (l == 0) {
            r[o++] = 0xef;
            r[o++] = 0xbf;
            r[o++] = 0xbd;
            i++;
        } else {
            memcpy(r + o, s + i, l);
            o += l;
            i += l;
        }
    }
    *out_len = o;
    return r;
}

m3_status m3_tokenizer_encode(const m3_tokenizer *tok, const char *text, size_t len, size_t max_length,
                              int32_t **ids, size_t *n_ids, m3_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    if (max_length < 2)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "tokenizer: max_length %zu is below 2",
                            max_length);
    if (!text && len) return m3_error_set(err, M3_STATUS_INVALID, 0, "tokenizer: no text");
    const unsigned char *s = (const unsigned char *)text;
    unsigned char *repaired = NULL;
    if (len && !m3_utf8_valid(s, len)) {
        repaired = repair_utf8(s, len, &len);
        if (!repaired) return m3_error_set(err, M3_STATUS_NOMEM, 0, "tokenizer: out of memory");
        s = repaired;
    }

    encoder e = {.tok = tok, .limit = max_length - 2};
    e.cap_ids = 64;
    e.ids = malloc(e.cap_ids * sizeof *e.ids);
    bool ok = e.ids != NULL;
    if (ok) e.ids[e.n_ids++] = M3_TOKEN_BOS;

    const special_token specials[5] = {
        {"<s>", 3, false}, {"<pad>", 5, false}, {"</s>", 4, false}, {"<unk>", 5, false},
        {"<mask>", 6, true},
    };
    const int32_t special_ids[5] = {M3_TOKEN_BOS, M3_TOKEN_PAD, M3_TOKEN_EOS, M3_TOKEN_UNK,
                                    tok->mask_id};
    size_t span = 0;
    for (size_t i = 0; ok && !encoder_full(&e) && i < len;) {
        const unsigned char *lt = memchr(s + i, '<', len - i);
        if (!lt) break;
        size_t at = (size_t)(lt - s);
        int which = -1;
        for (int k = 0; k < 5; k++) {
            if (len - at >= specials[k].len && memcmp(s + at, specials[k].text, specials[k].len) == 0) {
                which = k;
                break;
            }
        }
        if (which < 0) {
            i = at + 1;
            continue;
        }
        size_t span_end = at;
        if (specials[which].lstrip) span_end = span + strip_right(s + span, at - span);
        ok = encode_span(&e, s + span, span_end - span) && encoder_push(&e, special_ids[which]);
        span = i = at + specials[which].len;
    }
    if (ok && !encoder_full(&e)) ok = encode_span(&e, s + span, len - span);
    if (ok) {
        e.limit++;  // room for </s>
        ok = encoder_push(&e, M3_TOKEN_EOS);
    }
    free(e.norm.data);
    free(e.word.data);
    free(e.lattice);
    free(e.path);
    free(repaired);
    if (!ok) {
        free(e.ids);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "tokenizer: out of memory");
    }
    *ids = e.ids;
    *n_ids = e.n_ids;
    return M3_STATUS_OK;
}
