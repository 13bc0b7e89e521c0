// SPDX-License-Identifier: MIT
//
// M3Result: one search result as the indexer service returned it (one dictionary of Search's or
// FindSimilar's reply, see packaging/org.m3search.Indexer1.xml), immutable once made. The window
// keeps them in a GListStore that the result list shows.
//
//     M3Result *r = m3_result_new_from_variant(dict);   // dict: a{sv}; NULL when "path" is missing
//     g_print("%s %.3f\n", m3_result_get_path(r), m3_result_get_score(r));
//
// Strings returned by the getters are borrowed and live as long as the result. Main thread only.
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define M3_TYPE_RESULT (m3_result_get_type())
G_DECLARE_FINAL_TYPE(M3Result, m3_result, M3, RESULT, GObject)

// One highlighted byte range [start, end) of the snippet.
typedef struct m3_highlight {
    guint start;
    guint end;
} m3_highlight;

M3Result *m3_result_new_from_variant(GVariant *dict);

const char *m3_result_get_path(M3Result *self);
const char *m3_result_get_uri(M3Result *self);
const char *m3_result_get_snippet(M3Result *self);
const char *m3_result_get_location(M3Result *self);
const char *m3_result_get_content_type(M3Result *self);
double m3_result_get_score(M3Result *self);
// The three parts of the hybrid score: dense, sparse (lexical), colbert (multi-vector).
void m3_result_get_parts(M3Result *self, double *dense, double *sparse, double *colbert);
gint64 m3_result_get_mtime(M3Result *self);
// The highlights, clipped to the snippet and sorted; *n receives their count.
const m3_highlight *m3_result_get_highlights(M3Result *self, guint *n);

// Whether two results show the same (every field equal); NULL equals only NULL.
gboolean m3_result_equal(M3Result *a, M3Result *b);

// The file's base name (display form), its folder with the home folder shown as "~", the
// modification date as people read it, and the snippet as Pango markup with the highlights in bold.
// Each returns a newly allocated string.
char *m3_result_dup_name(M3Result *self);
char *m3_result_dup_folder(M3Result *self);
char *m3_result_dup_date(M3Result *self);
char *m3_result_dup_snippet_markup(M3Result *self);

// Pango markup of text with the byte ranges in bold on a highlight colour. Ranges outside the text
// or not on UTF-8 boundaries are clipped. Used by the row and the preview.
char *m3_markup_highlighted(const char *text, gsize len, const m3_highlight *hl, guint n);

G_END_DECLS
