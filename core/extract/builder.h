// SPDX-License-Identifier: MIT
//
// The text of a structured document (PDF, office files, e-books, HTML, mail), built piece by piece
// by its extractor, normalised the same way for every format so that the same words give the same
// text whatever the file was:
//   - invalid UTF-8 becomes U+FFFD; control characters, soft hyphens, BOMs and object replacement
//     characters are dropped;
//   - presentation forms are resolved to the letters they draw (Arabic and Hebrew presentation
//     forms, e.g. the lam-alef ligature U+FEFB → U+0644 U+0627; Latin ligatures ﬁ ﬂ), then NFC, so
//     that combining marks (Thai, Indic, Hebrew points) sit composed on their base letters;
//   - runs of white space (line ends included) become one space, and none at all between two CJK
//     characters (Han, kana, CJK punctuation; not Hangul, which spaces its words): a PDF line wrap
//     inside a Chinese sentence must not split a word;
//   - paragraphs end with one "\n" (m3_text_builder_break), never at the very start or twice.
// Places (m3_text_builder_mark) start a new paragraph and are recorded at the offset of the next
// text; a place with no text before the next place (an empty page) is dropped.
//
//     m3_text_builder b;
//     m3_text_builder_init(&b, 64 << 20);
//     m3_text_builder_mark(&b, "page %d", 1);
//     m3_text_builder_append(&b, s, n);          // false: out of memory or over the limit
//     m3_text_builder_break(&b);
//     return m3_text_builder_finish(&b, path, out, err);   // frees b's buffers in every case
//
// Errors: finish returns M3_STATUS_NOMEM or M3_STATUS_LIMIT ("PATH: text longer than N MiB") when an
// append failed. Threads: a builder is used by one thread.
#ifndef M3_EXTRACT_BUILDER_H
#define M3_EXTRACT_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extract/extract.h"

typedef struct m3_text_builder {
    char *text;
    size_t len, cap, limit;
    m3_location_mark *marks;
    size_t n_marks, cap_marks;
    uint32_t last;     // last code point written (0 at the start)
    bool space;        // white space seen since it
    bool oom, over;    // an append failed: out of memory, over the limit
} m3_text_builder;

// limit: the most bytes of text (a decompression bomb stops there).
void m3_text_builder_init(m3_text_builder *b, size_t limit);
bool m3_text_builder_append(m3_text_builder *b, const char *s, size_t n);
bool m3_text_builder_append_str(m3_text_builder *b, const char *s);
bool m3_text_builder_break(m3_text_builder *b);
bool m3_text_builder_mark(m3_text_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// True when an append failed (the extractor may stop early).
bool m3_text_builder_failed(const m3_text_builder *b);
// Moves the text and marks into *out (derived offsets, encoding "UTF-8") and resets b.
m3_status m3_text_builder_finish(m3_text_builder *b, const char *path, m3_extracted *out, m3_error *err);
void m3_text_builder_clear(m3_text_builder *b);

#endif
