// SPDX-License-Identifier: MIT
//
// What the window's own text widgets (M3SnippetView, M3PlainLabel) need of their font, looked up
// without laying any text out: whether GTK gave them another font, one line's height, an average
// character's width, and the CSS text colour. Main thread only.
#pragma once

#include <gtk/gtk.h>

// Whether widget's font (its Pango context's font, resolution or font options) changed since
// *serial was taken; takes the new serial into *serial. A widget's style changes far more often
// than its font (each state change of a row above it, such as hover or selection), and laying
// the text out anew at each was most of the window's text shaping: lay out anew only when this
// says so.
gboolean m3_text_font_changed(GtkWidget *widget, guint *serial);
// One line's height and an average character's width in widget's font (Pango units), from the
// font's metrics (looked up once per font by Pango).
void m3_text_font_metrics(GtkWidget *widget, int *line_height, int *char_width);
// widget's CSS text colour.
void m3_text_color(GtkWidget *widget, GdkRGBA *color);
