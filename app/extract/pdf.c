// SPDX-License-Identifier: MIT
//
// PDF through poppler-glib: the text of each page in poppler's reading order (it orders the text
// blocks of a page, and the words of right-to-left lines into logical order), marked "page N".
// The normalising builder then resolves what PDFs carry of the drawing: Arabic presentation forms
// (lam-alef ligatures...), Latin ligature glyphs, line wraps inside CJK text.
// A PDF that needs a password to open is "skipped: encrypted"; one with only an owner password
// (printing or copying restricted) opens and is read, as every PDF reader does.
#include <poppler.h>
#include <stdlib.h>
#include <string.h>

#include "extract/docs-private.h"

enum { PDF_VERSION = 1, PDF_MAX_PAGES = 100000 };

static size_t code_points(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

// Ends a sentence: . ! ? : and their CJK and Arabic forms.
static bool ends_sentence(const char *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r')) n--;
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

// A page's lines: a line wrap inside a paragraph is white space (none between CJK characters: the
// builder), a paragraph ends after a line that ends a sentence or is clearly shorter than the
// page's longest line (a heading, the last line of a paragraph).
static void append_page(m3_text_builder *b, const char *text)
{
    size_t longest = 0;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        size_t k = code_points(p, n);
        if (k > longest) longest = k;
        p += n + (p[n] == '\n');
    }
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        m3_text_builder_append(b, p, n);
        if (ends_sentence(p, n) || code_points(p, n) * 10 < longest * 6) m3_text_builder_break(b);
        else m3_text_builder_append(b, "\n", 1);
        p += n + (p[n] == '\n');
    }
}

static m3_status extract_pdf(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                             m3_error *err)
{
    memset(out, 0, sizeof *out);
    GBytes *bytes = g_bytes_new_static(data, size);
    GError *ge = NULL;
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &ge);
    g_bytes_unref(bytes);
    if (!doc) {
        m3_status s;
        if (ge && ge->domain == POPPLER_ERROR && ge->code == POPPLER_ERROR_ENCRYPTED) s = docs_encrypted(path, err);
        else s = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: damaged PDF (%s)", path, ge ? ge->message : "unreadable");
        if (ge) g_error_free(ge);
        return s;
    }
    int pages = poppler_document_get_n_pages(doc);
    m3_status s = M3_STATUS_OK;
    if (pages > PDF_MAX_PAGES)
        s = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: PDF with %d pages (at most %d)", path, pages, PDF_MAX_PAGES);
    m3_text_builder b;
    m3_text_builder_init(&b, DOCS_MAX_TEXT);
    for (int i = 0; i < pages && s == M3_STATUS_OK; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page) continue;
        char *text = poppler_page_get_text(page);
        m3_text_builder_mark(&b, "page %d", i + 1);
        if (text) append_page(&b, text);
        g_free(text);
        g_object_unref(page);
        if (m3_text_builder_failed(&b)) break;
    }
    g_object_unref(doc);
    if (s != M3_STATUS_OK) {
        m3_text_builder_clear(&b);
        return s;
    }
    return m3_text_builder_finish(&b, path, out, err);
}

static bool sniff_pdf(const unsigned char *head, size_t n) { return n >= 5 && !memcmp(head, "%PDF-", 5); }

static const char *const pdf_ext[] = {"pdf", NULL};
const m3_extractor m3_docs_pdf = {"pdf", PDF_VERSION, pdf_ext, extract_pdf, sniff_pdf};
