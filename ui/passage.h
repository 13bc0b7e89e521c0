// SPDX-License-Identifier: MIT
//
// Where a result's snippet lies in its file's text, so that the preview can show it with the
// file's own context around it. The service's snippet (core/index/search.c) is the chunk's words
// as written with one space for each run of whitespace, control characters turned into spaces, and
// "…" before and after when the chunk goes on: the file holds the same words with any run of
// spaces, tabs and line breaks between them. Pure function of its arguments; any thread.
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct m3_passage {
    gsize at, end;          // the matched bytes of the text: [at, end)
    gsize snip_at, snip_end; // the snippet's part that matched ([snip_at, snip_end): without the
                             // "…" marks and the spaces next to them)
} m3_passage;

// Finds the first place in text[0, len) whose words are the snippet's, separated by one or more
// whitespace or control characters where the snippet has a space. FALSE (and *p untouched) when
// the snippet has no words or the text does not hold them (the file changed since it was indexed,
// or its extracted text differs from its bytes).
gboolean m3_passage_find(const char *text, gsize len, const char *snippet, m3_passage *p);

G_END_DECLS
