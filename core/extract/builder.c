// SPDX-License-Identifier: MIT
//
// The normalising text builder of the structured-document extractors (builder.h). ICU does the
// Unicode work: UTF-8 → UTF-16 with substitution, NFKC of presentation forms only (NFKC on the
// whole text would also fold full-width Latin, superscripts, ① ... which carry meaning), NFC.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uscript.h>
#include <unicode/ustring.h>

#include "extract/builder.h"

void m3_text_builder_init(m3_text_builder *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void m3_text_builder_clear(m3_text_builder *b)
{
    free(b->text);
    free(b->marks);
    size_t limit = b->limit;
    m3_text_builder_init(b, limit);
}

bool m3_text_builder_failed(const m3_text_builder *b) { return b->oom || b->over; }

static bool reserve(m3_text_builder *b, size_t n)
{
    if (b->len + n + 1 > b->limit + 1) {
        b->over = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *t = realloc(b->text, cap);
    if (!t) {
        b->oom = true;
        return false;
    }
    b->text = t;
    b->cap = cap;
    return true;
}

// Compatibility forms that only draw letters: resolved with NFKC.
static bool presentation_form(UChar32 c)
{
    return (c >= 0xfb00 && c <= 0xfb06) ||   // Latin ligatures
           (c >= 0xfb13 && c <= 0xfb17) ||   // Armenian ligatures
           (c >= 0xfb1d && c <= 0xfb4f) ||   // Hebrew presentation forms
           (c >= 0xfb50 && c <= 0xfdff) ||   // Arabic presentation forms-A
           (c >= 0xfe70 && c <= 0xfefe);     // Arabic presentation forms-B
}

// Scripts written without spaces between words, whose line wraps must not become spaces.
static bool unspaced(UChar32 c)
{
    if ((c >= 0x3000 && c <= 0x303f) || (c >= 0xff00 && c <= 0xffef)) return true;  // CJK punctuation, full width
    UErrorCode e = U_ZERO_ERROR;
    UScriptCode s = uscript_getScript(c, &e);
    return U_SUCCESS(e) && (s == USCRIPT_HAN || s == USCRIPT_HIRAGANA || s == USCRIPT_KATAKANA);
}

static bool dropped(UChar32 c)
{
    // Bidi embeddings and isolates (PDF text carries them): the text is stored in logical order.
    if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) return true;
    return c == 0xad || c == 0xfeff || c == 0xfffc || c == 0x200b ||
           (u_charType(c) == U_CONTROL_CHAR && !u_isUWhiteSpace(c));
}

static bool put_cp(m3_text_builder *b, UChar32 c)
{
    if (dropped(c)) return true;
    if (u_isUWhiteSpace(c) || c == '\t') {
        if (b->len && b->last != '\n') b->space = true;
        return true;
    }
    if (b->space) {
        b->space = false;
        if (!(unspaced(b->last) && unspaced(c))) {
            if (!reserve(b, 1)) return false;
            b->text[b->len++] = ' ';
        }
    }
    if (!reserve(b, 4)) return false;
    int32_t n = 0;
    U8_APPEND_UNSAFE((uint8_t *)b->text + b->len, n, c);
    b->len += (size_t)n;
    b->last = (uint32_t)c;
    return true;
}

// The UTF-16 of s with presentation forms resolved; *n its length. NULL when out of memory.
static UChar *to_utf16(const char *s, size_t n, int32_t *out_n)
{
    UErrorCode e = U_ZERO_ERROR;
    int32_t len = 0;
    u_strFromUTF8WithSub(NULL, 0, &len, s, (int32_t)n, 0xfffd, NULL, &e);
    if (e != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(e)) return NULL;
    // A presentation form decomposes to at most 4 UTF-16 units per unit (U+FDFA: 18; checked below).
    UChar *u = malloc(((size_t)len + 1) * sizeof *u);
    if (!u) return NULL;
    e = U_ZERO_ERROR;
    u_strFromUTF8WithSub(u, len + 1, &len, s, (int32_t)n, 0xfffd, NULL, &e);
    if (U_FAILURE(e)) {
        free(u);
        return NULL;
    }
    bool any = false;
    for (int32_t i = 0; i < len && !any; i++) any = presentation_form(u[i]);
    if (!any) {
        *out_n = len;
        return u;
    }
    const UNormalizer2 *nfkc = unorm2_getNFKCInstance(&e);
    if (U_FAILURE(e)) {
        free(u);
        return NULL;
    }
    size_t cap = (size_t)len * 18 + 1, o = 0;
    UChar *m = malloc(cap * sizeof *m);
    if (!m) {
        free(u);
        return NULL;
    }
    for (int32_t i = 0; i < len; i++) {
        if (presentation_form(u[i])) {
            e = U_ZERO_ERROR;
            int32_t k = unorm2_normalize(nfkc, &u[i], 1, m + o, (int32_t)(cap - o), &e);
            if (U_SUCCESS(e)) {
                o += (size_t)k;
                continue;
            }
        }
        m[o++] = u[i];
    }
    free(u);
    *out_n = (int32_t)o;
    return m;
}

bool m3_text_builder_append(m3_text_builder *b, const char *s, size_t n)
{
    if (b->oom || b->over) return false;
    if (!n) return true;
    if (n > (size_t)INT32_MAX / 20) {
        b->over = true;
        return false;
    }
    int32_t len;
    UChar *u = to_utf16(s, n, &len);
    if (!u) {
        b->oom = true;
        return false;
    }
    UErrorCode e = U_ZERO_ERROR;
    const UNormalizer2 *nfc = unorm2_getNFCInstance(&e);
    UChar *v = NULL;
    int32_t vlen = 0;
    if (U_SUCCESS(e) && !unorm2_isNormalized(nfc, u, len, &e) && U_SUCCESS(e)) {
        // NFC never grows by more than a factor of 3.
        v = malloc(((size_t)len * 3 + 1) * sizeof *v);
        if (v) {
            vlen = unorm2_normalize(nfc, u, len, v, len * 3 + 1, &e);
            if (U_FAILURE(e)) free(v), v = NULL;
        }
    }
    const UChar *w = v ? v : u;
    int32_t wlen = v ? vlen : len;
    bool ok = true;
    for (int32_t i = 0; i < wlen && ok;) {
        UChar32 c;
        U16_NEXT(w, i, wlen, c);
        ok = put_cp(b, c);
    }
    free(u);
    free(v);
    return ok;
}

bool m3_text_builder_append_str(m3_text_builder *b, const char *s) { return m3_text_builder_append(b, s, strlen(s)); }

bool m3_text_builder_break(m3_text_builder *b)
{
    if (b->oom || b->over) return false;
    b->space = false;
    if (!b->len || b->last == '\n') return true;
    if (!reserve(b, 1)) return false;
    b->text[b->len++] = '\n';
    b->last = '\n';
    return true;
}

bool m3_text_builder_mark(m3_text_builder *b, const char *fmt, ...)
{
    if (!m3_text_builder_break(b)) return false;
    m3_location_mark m = {.text = b->len};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m.where, sizeof m.where, fmt, ap);
    va_end(ap);
    // Printable, valid UTF-8: a truncated sequence at the end is cut, control characters spaced.
    size_t n = strlen(m.where);
    while (n && !m3_extract_utf8_valid((const unsigned char *)m.where, n, false)) m.where[--n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)m.where[i] < 0x20 || m.where[i] == 0x7f) m.where[i] = ' ';
    if (!n) return true;
    // The previous place had no text: this one replaces it.
    if (b->n_marks && b->marks[b->n_marks - 1].text == m.text) {
        b->marks[b->n_marks - 1] = m;
        return true;
    }
    if (b->n_marks == b->cap_marks) {
        size_t cap = b->cap_marks ? 2 * b->cap_marks : 16;
        m3_location_mark *nm = realloc(b->marks, cap * sizeof *nm);
        if (!nm) {
            b->oom = true;
            return false;
        }
        b->marks = nm;
        b->cap_marks = cap;
    }
    b->marks[b->n_marks++] = m;
    return true;
}

m3_status m3_text_builder_finish(m3_text_builder *b, const char *path, m3_extracted *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    if (b->over || b->oom) {
        m3_status s = b->over ? m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: text longer than %zu MiB", path, b->limit >> 20)
                              : m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
        m3_text_builder_clear(b);
        return s;
    }
    // No trailing paragraph end; a last place without text is dropped.
    if (b->len && b->last == '\n') b->len--;
    while (b->n_marks && b->marks[b->n_marks - 1].text >= b->len) b->n_marks--;
    if (!b->text && !(b->text = malloc(1))) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    b->text[b->len] = 0;
    out->text = b->text;
    out->len = b->len;
    out->derived = true;
    out->marks = b->n_marks ? b->marks : NULL;
    out->n_marks = b->n_marks;
    if (!b->n_marks) free(b->marks);
    snprintf(out->encoding, sizeof out->encoding, "UTF-8");
    b->text = NULL;
    b->marks = NULL;
    m3_text_builder_clear(b);
    return M3_STATUS_OK;
}
