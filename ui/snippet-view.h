// SPDX-License-Identifier: MIT
//
// M3SnippetView: a result's snippet, at most two lines, wrapped at words and ellipsized at the end.
// It does what a GtkLabel with wrap, lines = 2 and an ellipsis would show, at a fraction of the
// cost: a wrapping GtkLabel lays its text out several times per size request (minimum, natural and
// height-for-width), which made the first frame after a new result list take ~160 ms under Xvfb on
// 2 vCPUs (docs/performance.md, "The window"). This widget's height is two lines of its font
// (no layout needed), its natural width a fixed number of characters, and its text is laid out once
// per width, when it is drawn. The plain text is its accessible label.
// Main thread only.
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define M3_TYPE_SNIPPET_VIEW (m3_snippet_view_get_type())
G_DECLARE_FINAL_TYPE(M3SnippetView, m3_snippet_view, M3, SNIPPET_VIEW, GtkWidget)

GtkWidget *m3_snippet_view_new(void);
// Shows markup (Pango markup, e.g. m3_result_dup_snippet_markup's); NULL or "" shows nothing.
// Invalid markup is shown as plain text.
void m3_snippet_view_set_markup(M3SnippetView *self, const char *markup);

G_END_DECLS
