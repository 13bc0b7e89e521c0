// SPDX-License-Identifier: MIT
//
// Chunking by tokens at sentence boundaries. Sentences come from ICU's sentence break iterator run
// directly over the UTF-8 text (utext_openUTF8: boundaries are byte offsets). Each sentence is
// tokenized once to know its size; chunks are packed greedily, and the next chunk starts with the
// last whole sentences of the previous one that fit in the overlap.
#include <stdlib.h>
#include <string.h>
#include <unicode/ubrk.h>
#include <unicode/utext.h>

#include "extract/extract.h"

enum { WORD_PIECE = 48 };

typedef struct seg {
    size_t start, end, tokens;
} seg;

typedef struct segs {
    seg *v;
    size_t n, cap;
} segs;

static bool seg_push(segs *s, size_t start, size_t end, size_t tokens)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        seg *v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (seg){start, end, tokens};
    return true;
}

static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static size_t count_tokens(const m3_tokenizer *tok, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0;
    if (m3_tokenizer_encode(tok, text, len, 1u << 20, &ids, &n, NULL) != M3_STATUS_OK) return len;  // a safe guess
    free(ids);
    return n >= 2 ? n - 2 : 0;
}

// A sentence over the budget: cut between words, and a word over the budget between characters.
static bool split_long(const m3_tokenizer *tok, const char *text, size_t a, size_t b, size_t budget, segs *out)
{
    size_t start = a, tokens = 0, i = a;
    while (i < b) {
        size_t ws = i;
        while (i < b && is_space((unsigned char)text[i])) i++;
        size_t w0 = i;
        while (i < b && !is_space((unsigned char)text[i]) && i - w0 < WORD_PIECE) i++;
        while (i < b && ((unsigned char)text[i] & 0xc0) == 0x80) i++;
        if (i == w0) break;
        size_t t = count_tokens(tok, text + w0, i - w0);
        if (tokens && tokens + t > budget) {
            if (!seg_push(out, start, ws, tokens)) return false;
            start = w0;
            tokens = 0;
        }
        tokens += t;
    }
    return seg_push(out, start, b, tokens);
}

m3_status m3_extract_chunk(const m3_tokenizer *tok, const char *text, size_t len, const m3_chunk_options *opt,
                           m3_text_chunk **chunks, size_t *n_chunks, m3_error *err)
{
    *chunks = NULL;
    *n_chunks = 0;
    size_t max_tokens = opt && opt->max_tokens ? opt->max_tokens : 512;
    size_t overlap = opt ? opt->overlap_tokens : 64;
    if (max_tokens < 8) return m3_error_set(err, M3_STATUS_INVALID, 0, "chunks need at least 8 tokens");
    size_t budget = max_tokens - 2;
    if (overlap >= budget / 2) overlap = budget / 2;
    segs s = {0};
    m3_status st = M3_STATUS_OK;
    // Sentences.
    UErrorCode ue = U_ZERO_ERROR;
    UText *ut = utext_openUTF8(NULL, text, (int64_t)len, &ue);
    UBreakIterator *bi = U_SUCCESS(ue) ? ubrk_open(UBRK_SENTENCE, "", NULL, 0, &ue) : NULL;
    if (U_SUCCESS(ue)) ubrk_setUText(bi, ut, &ue);
    if (U_FAILURE(ue)) {
        if (bi) ubrk_close(bi);
        utext_close(ut);
        return m3_error_set(err, M3_STATUS_NOMEM, ue, "ICU sentence iterator: %s", u_errorName(ue));
    }
    int32_t prev = ubrk_first(bi);
    for (int32_t b = ubrk_next(bi); b != UBRK_DONE; prev = b, b = ubrk_next(bi)) {
        size_t a = (size_t)prev, e = (size_t)b;
        while (a < e && is_space((unsigned char)text[a])) a++;
        while (e > a && is_space((unsigned char)text[e - 1])) e--;
        if (a == e) continue;
        size_t t = count_tokens(tok, text + a, e - a);
        bool ok = t > budget ? split_long(tok, text, a, e, budget, &s) : seg_push(&s, a, e, t);
        if (!ok) {
            st = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
            break;
        }
    }
    ubrk_close(bi);
    utext_close(ut);
    if (st != M3_STATUS_OK) {
        free(s.v);
        return st;
    }
    // Greedy packing with sentence overlap.
    m3_text_chunk *out = NULL;
    size_t n = 0, cap = 0, i = 0;
    while (i < s.n) {
        size_t j = i, tokens = 0;
        while (j < s.n && (j == i || tokens + s.v[j].tokens <= budget)) tokens += s.v[j++].tokens;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            m3_text_chunk *nc = realloc(out, cap * sizeof *out);
            if (!nc) {
                free(out);
                free(s.v);
                return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
            }
            out = nc;
        }
        out[n++] = (m3_text_chunk){s.v[i].start, s.v[j - 1].end, tokens + 2, NULL};
        if (j >= s.n) break;
        // The next chunk repeats the last sentences (at most `overlap` tokens), always progressing.
        size_t k = j, ot = 0;
        while (k > i + 1 && ot + s.v[k - 1].tokens <= overlap) ot += s.v[--k].tokens;
        i = k;
    }
    free(s.v);
    *chunks = out;
    *n_chunks = n;
    return M3_STATUS_OK;
}
