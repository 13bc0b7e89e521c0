// SPDX-License-Identifier: MIT
//
// M3ScoreBar: a small horizontal bar showing how the dense, lexical (sparse) and multi-vector
// (ColBERT) parts made a result's hybrid score: one coloured segment per part, its length the
// part's weighted share. The numbers are in the tooltip and in the accessible description.
// Main thread only.
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define M3_TYPE_SCORE_BAR (m3_score_bar_get_type())
G_DECLARE_FINAL_TYPE(M3ScoreBar, m3_score_bar, M3, SCORE_BAR, GtkWidget)

GtkWidget *m3_score_bar_new(void);
// Sets the score and its three parts (each in [-1, 1]; negative parts draw as nothing).
void m3_score_bar_set_parts(M3ScoreBar *self, double score, double dense, double sparse, double colbert);
// Shows no score: an empty track, no tooltip and no accessible label (a blank row's bar).
void m3_score_bar_clear(M3ScoreBar *self);

G_END_DECLS
