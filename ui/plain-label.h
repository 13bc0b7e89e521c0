// SPDX-License-Identifier: MIT
//
// M3PlainLabel: plain text drawn like a GtkLabel with the same CSS (font, colour), measured at a
// fraction of the cost. What the result rows show their file name, folder and date with, and the
// preview its details.
//
// Why: a GtkLabel asks for a new size whenever its text changes, which makes GTK lay out the
// window again (and, on X11, ask the X server for the window's monitor and work area), and it
// shapes its text several times per size request: once for its natural width, again for the width
// it gets, and a wrapping one a dozen times more while it searches its minimum width. The
// preview's wrapping details label alone did four fifths of the window's text shaping while the
// user typed (docs/performance.md, "The window"). An M3PlainLabel shapes its text once per text
// and width, and a new style (a row hovered or selected) lays it out anew only with a new font.
//
// Three kinds, fixed at construction:
//   - one line (default): ellipsized (`ellipsize`) to the width it gets; natural width 0, meant to
//     expand; its height is one line of its font (font metrics, no layout), so a new text only
//     redraws it;
//   - `fit-text`: one line whose natural and minimum width are the text's (laid out when the text
//     is set), for short text shown whole beside expanding lines, such as a date; a new text asks
//     for a new size only when its width differs;
//   - `wrap`: lines broken at words (or within a word that does not fit) and at newlines; natural
//     width the widest line's, minimum about 20 characters (or the text's, when narrower), height
//     for a width one layout at that width (the last few widths' heights are kept).
// The text is centred vertically in a taller allocation; a line starts at the widget's start edge
// whatever its text's direction (as a label's), a wrapped text's lines follow Pango's alignment. The text is its accessible label (role label). Main thread only.
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define M3_TYPE_PLAIN_LABEL (m3_plain_label_get_type())
G_DECLARE_FINAL_TYPE(M3PlainLabel, m3_plain_label, M3, PLAIN_LABEL, GtkWidget)

GtkWidget *m3_plain_label_new(void);
// Shows text (copied); NULL shows nothing.
void m3_plain_label_set_text(M3PlainLabel *self, const char *text);
// The text shown (owned by the widget; "" when none).
const char *m3_plain_label_get_text(M3PlainLabel *self);

G_END_DECLS
