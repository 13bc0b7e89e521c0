// SPDX-License-Identifier: MIT
//
// The words of a PDF page with their boxes, from poppler's text layout (TextOutputDev) through
// poppler's core API (pdf-words.cc, the one C++ file: poppler-glib only offers text through its
// selection, which loses lines on right-to-left pages). pdf.c rebuilds lines and logical order.
#ifndef M3_APP_EXTRACT_PDF_WORDS_H
#define M3_APP_EXTRACT_PDF_WORDS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct m3_pdf_word {
    double x0, y0, x1, y1;  // points, y down
    char *text;             // UTF-8, NUL-terminated (malloc'd), as poppler's text map gives it
} m3_pdf_word;

typedef struct m3_pdf_doc m3_pdf_doc;

enum { M3_PDF_OK = 0, M3_PDF_DAMAGED = 1, M3_PDF_LOCKED = 2, M3_PDF_NOMEM = 3 };

// Opens size bytes (borrowed: they must outlive the document). M3_PDF_LOCKED when a password is
// needed to open it.
int m3_pdf_open(const unsigned char *data, size_t size, m3_pdf_doc **out);
int m3_pdf_page_count(const m3_pdf_doc *doc);
// The words of page i (0-based) in poppler's reading order; *words malloc'd (free with
// m3_pdf_words_free). M3_PDF_OK, or M3_PDF_NOMEM.
int m3_pdf_page_words(m3_pdf_doc *doc, int i, m3_pdf_word **words, size_t *n);
void m3_pdf_words_free(m3_pdf_word *words, size_t n);
void m3_pdf_close(m3_pdf_doc *doc);

#ifdef __cplusplus
}
#endif

#endif
