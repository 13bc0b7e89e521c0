// SPDX-License-Identifier: MIT
//
// PDF through poppler: the words of each page with their boxes from poppler's text layout
// (pdf-words.cc, poppler's TextOutputDev), marked "page N". Lines are rebuilt here, better than poppler's own
// text output (pdftotext) on three counts:
//   - right-to-left: the glyphs of a line are put in visual order by their boxes, and ICU's
//     inverse bidi algorithm turns the line into logical order (Arabic, Hebrew, with numbers and
//     Latin inside); a ligature glyph (lam-alef) keeps its letters in logical order;
//   - spaces come from the gaps between glyph boxes (pdftotext puts spaces inside Arabic words);
//   - a line wrap is white space, none inside CJK text (the builder), and a paragraph ends after a
//     line that ends a sentence or is clearly shorter than the page's longest line.
// A PDF that needs a password to open is "skipped: encrypted"; one with only an owner password
// (printing or copying restricted) is read, as every PDF reader does. The builder then resolves
// presentation forms and Latin ligatures.
#include <stdlib.h>
#include <string.h>
#include <unicode/ubidi.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include "extract/docs-private.h"
#include "extract/pdf-words.h"

enum { PDF_VERSION = 3,  // 3: ligature glyphs of right-to-left letters in visual order
       PDF_MAX_PAGES = 100000 };

typedef struct line {
    size_t first, n;   // words [first, first + n) of the page
    double y0, y1;
} line;

// One line's words (sorted left to right) to logical-order UTF-8 appended to out (NUL-terminated).
// False when out of memory.
static bool line_text(const m3_pdf_word *w, const size_t *order, size_t n, double height, char **out, size_t *len,
                      size_t *cap)
{
    // The visual string: words left to right, a space where the gap says so. Inverse bidi makes it
    // logical; combining marks (drawn after their base) stay after it.
    size_t ucap = 16;
    for (size_t k = 0; k < n; k++) ucap += strlen(w[order[k]].text) + 2;
    UChar *vis = malloc(ucap * sizeof *vis), *tmp = malloc(ucap * sizeof *tmp);
    if (!vis || !tmp) {
        free(vis), free(tmp);
        return false;
    }
    int32_t vn = 0, rtl = 0, ltr = 0;
    for (size_t k = 0; k < n; k++) {
        const m3_pdf_word *x = &w[order[k]];
        if (k && x->x0 - w[order[k - 1]].x1 > 0.15 * height) vis[vn++] = ' ';
        UErrorCode e = U_ZERO_ERROR;
        int32_t tn = 0;
        u_strFromUTF8WithSub(tmp, (int32_t)ucap, &tn, x->text, -1, 0xfffd, NULL, &e);
        if (U_FAILURE(e)) continue;
        for (int32_t i = 0; i < tn;) {
            UChar32 c;
            U16_NEXT(tmp, i, tn, c);
            UCharDirection d = u_charDirection(c);
            rtl += d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC;
            ltr += d == U_LEFT_TO_RIGHT;
        }
        // The word's text is in visual order (pdf-words.cc), right-to-left letters included.
        memcpy(vis + vn, tmp, (size_t)tn * sizeof *vis);
        vn += tn;
    }
    UChar *logical = vis;
    int32_t ln = vn;
    UBiDi *bidi = NULL;
    if (rtl) {
        UErrorCode e = U_ZERO_ERROR;
        bidi = ubidi_openSized(vn, 0, &e);
        if (bidi) {
            ubidi_setInverse(bidi, true);
            ubidi_setPara(bidi, vis, vn, rtl > ltr ? 1 : 0, NULL, &e);
            logical = tmp;
            if (U_SUCCESS(e)) ln = ubidi_writeReordered(bidi, tmp, (int32_t)ucap, UBIDI_DO_MIRRORING | UBIDI_REMOVE_BIDI_CONTROLS | UBIDI_KEEP_BASE_COMBINING, &e);
            if (U_FAILURE(e)) logical = vis, ln = vn;
        }
    }
    // To UTF-8 at the end of out.
    UErrorCode e = U_ZERO_ERROR;
    int32_t need = 0;
    u_strToUTF8WithSub(NULL, 0, &need, logical, ln, 0xfffd, NULL, &e);
    bool ok = true;
    if (*len + (size_t)need + 2 > *cap) {
        size_t nc = (*len + (size_t)need + 2) * 2;
        char *no = realloc(*out, nc);
        if (!no) ok = false;
        else *out = no, *cap = nc;
    }
    if (ok) {
        e = U_ZERO_ERROR;
        u_strToUTF8WithSub(*out + *len, (int32_t)(*cap - *len), &need, logical, ln, 0xfffd, NULL, &e);
        *len += (size_t)need;
        (*out)[*len] = 0;
    }
    if (bidi) ubidi_close(bidi);
    free(vis);
    free(tmp);
    return ok;
}

static size_t code_points(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

// Ends a sentence: . ! ? : and their CJK and Arabic forms.
static bool ends_sentence(const char *s, size_t n)
{
    while (n && s[n - 1] == ' ') n--;
    if (!n) return false;
    unsigned char c = (unsigned char)s[n - 1];
    if (c == '.' || c == '!' || c == '?' || c == ':') return true;
    static const char *const wide[] = {"\u3002", "\uff01", "\uff1f", "\uff1a", "\u061f", "\u06d4"};
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
        size_t l = strlen(wide[i]);
        if (n >= l && !memcmp(s + n - l, wide[i], l)) return true;
    }
    return false;
}

// The page's words → lines (consecutive words of poppler's reading order whose vertical middle
// lies within the line) → text, appended to b.
static bool append_page(m3_text_builder *b, const m3_pdf_word *w, size_t n)
{
    line *lines = malloc((n + 1) * sizeof *lines);
    size_t *order = malloc((n + 1) * sizeof *order);
    char *text = NULL;
    size_t len = 0, cap = 0, n_lines = 0;
    size_t *ends = malloc((n + 1) * sizeof *ends);  // end offset of each line in text
    bool ok = lines && order && ends;
    for (size_t i = 0; ok && i < n; i++) {
        double mid = (w[i].y0 + w[i].y1) / 2;
        line *l = n_lines ? &lines[n_lines - 1] : NULL;
        if (l && mid >= l->y0 && mid <= l->y1) {
            l->n++;
            if (w[i].y0 < l->y0) l->y0 = w[i].y0;
            if (w[i].y1 > l->y1) l->y1 = w[i].y1;
        } else {
            lines[n_lines++] = (line){i, 1, w[i].y0, w[i].y1};
        }
    }
    size_t longest = 0;
    for (size_t li = 0; ok && li < n_lines; li++) {
        const line *l = &lines[li];
        // Left to right (insertion sort: lines are short and mostly sorted already).
        for (size_t k = 0; k < l->n; k++) {
            size_t j = k, id = l->first + k;
            while (j && w[order[j - 1]].x0 > w[id].x0) order[j] = order[j - 1], j--;
            order[j] = id;
        }
        size_t before = len;
        ok = line_text(w, order, l->n, l->y1 - l->y0, &text, &len, &cap);
        ends[li] = len;
        size_t k = code_points(text ? text + before : "", len - before);
        if (k > longest) longest = k;
    }
    for (size_t li = 0, start = 0; ok && li < n_lines; start = ends[li], li++) {
        size_t ln = ends[li] - start;
        m3_text_builder_append(b, text + start, ln);
        if (ends_sentence(text + start, ln) || code_points(text + start, ln) * 10 < longest * 6) m3_text_builder_break(b);
        else m3_text_builder_append(b, "\n", 1);
    }
    free(lines);
    free(order);
    free(ends);
    free(text);
    return ok;
}

static m3_status extract_pdf(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                             m3_error *err)
{
    memset(out, 0, sizeof *out);
    m3_pdf_doc *doc;
    int rc = m3_pdf_open(data, size, &doc);
    if (rc == M3_PDF_LOCKED) return docs_encrypted(path, err);
    if (rc == M3_PDF_NOMEM) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    if (rc != M3_PDF_OK) return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: damaged PDF (not readable by poppler)", path);
    int pages = m3_pdf_page_count(doc);
    m3_status s = M3_STATUS_OK;
    if (pages > PDF_MAX_PAGES)
        s = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: PDF with %d pages (at most %d)", path, pages, PDF_MAX_PAGES);
    m3_text_builder b;
    m3_text_builder_init(&b, DOCS_MAX_TEXT);
    for (int i = 0; i < pages && s == M3_STATUS_OK; i++) {
        m3_pdf_word *w;
        size_t n;
        if (m3_pdf_page_words(doc, i, &w, &n) != M3_PDF_OK) {
            s = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
            break;
        }
        m3_text_builder_mark(&b, "page %d", i + 1);
        bool ok = append_page(&b, w, n);
        m3_pdf_words_free(w, n);
        if (!ok) s = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
        if (m3_text_builder_failed(&b)) break;
    }
    m3_pdf_close(doc);
    if (s != M3_STATUS_OK) {
        m3_text_builder_clear(&b);
        return s;
    }
    return m3_text_builder_finish(&b, path, out, err);
}

static bool sniff_pdf(const unsigned char *head, size_t n) { return n >= 5 && !memcmp(head, "%PDF-", 5); }

static const char *const pdf_ext[] = {"pdf", NULL};
const m3_extractor m3_docs_pdf = {"pdf", PDF_VERSION, pdf_ext, extract_pdf, sniff_pdf};
