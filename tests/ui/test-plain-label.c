// SPDX-License-Identifier: MIT
//
// M3PlainLabel (ui/plain-label.h) in a real window (under Xvfb): each kind asks for the size its
// text needs, measured against a Pango layout of the same text in the same font, and the window
// gives a wrapped text the height its lines need at the width it gets (a wrapped label that said
// it had one height whatever its width was cut off below its third line).
#include <stdio.h>
#include <stdlib.h>

#include <gtk/gtk.h>

#include "plain-label.h"

static int failures;

static void check(const char *what, gboolean ok) {
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

// The text's size in the widget's font, laid out as the widget should: width -1 for one line.
static void text_size(GtkWidget *widget, const char *text, int width, int *w, int *h) {
    PangoLayout *layout = gtk_widget_create_pango_layout(widget, text);
    pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_width(layout, width < 0 ? -1 : width * PANGO_SCALE);
    pango_layout_get_pixel_size(layout, w, h);
    g_object_unref(layout);
}

static int measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *natural) {
    int min, nat;
    gtk_widget_measure(widget, orientation, for_size, &min, &nat, NULL, NULL);
    if (natural)
        *natural = nat;
    return min;
}

static void settle(void) {
    for (int i = 0; i < 50; i++) {
        while (g_main_context_pending(NULL))
            g_main_context_iteration(NULL, FALSE);
        g_usleep(10000);
    }
}

int main(void) {
    if (!gtk_init_check()) {
        printf("SKIP: no display (the test runs under xvfb-run)\n");
        return 77;
    }
    const char *details = "~/Documents/Letters\nplain text document · 5 Dec 2026\n"
                          "Score 4.579 (meaning 0.992, words 19.302, passages 0.805)";
    GtkWidget *window = gtk_window_new();
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    GtkWidget *wrapped = g_object_new(M3_TYPE_PLAIN_LABEL, "wrap", TRUE, NULL);
    GtkWidget *below = gtk_label_new("below");
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    GtkWidget *name = g_object_new(M3_TYPE_PLAIN_LABEL, "ellipsize", PANGO_ELLIPSIZE_MIDDLE, "hexpand", TRUE, NULL);
    GtkWidget *date = g_object_new(M3_TYPE_PLAIN_LABEL, "fit-text", TRUE, NULL);
    gtk_box_append(GTK_BOX(row), name);
    gtk_box_append(GTK_BOX(row), date);
    gtk_box_append(GTK_BOX(box), row);
    gtk_box_append(GTK_BOX(box), wrapped);
    gtk_box_append(GTK_BOX(box), below);
    gtk_window_set_child(GTK_WINDOW(window), box);
    gtk_window_set_default_size(GTK_WINDOW(window), 260, 200);
    m3_plain_label_set_text(M3_PLAIN_LABEL(wrapped), details);
    m3_plain_label_set_text(M3_PLAIN_LABEL(name), "a rather long file name that will not fit.txt");
    m3_plain_label_set_text(M3_PLAIN_LABEL(date), "5 Dec 2026");
    gtk_window_present(GTK_WINDOW(window));
    settle();

    // Wrapped: height for width, natural width the widest line.
    int w, h, nat;
    check("a wrapped text's height depends on its width",
          gtk_widget_get_request_mode(wrapped) == GTK_SIZE_REQUEST_HEIGHT_FOR_WIDTH);
    text_size(wrapped, details, -1, &w, &h);
    int min_w = measure(wrapped, GTK_ORIENTATION_HORIZONTAL, -1, &nat);
    check("a wrapped text's natural width is its widest line's", nat == w);
    check("a wrapped text's minimum width is narrower than its natural width", min_w > 0 && min_w < nat);
    check("its height at its natural width is its lines' (three)", measure(wrapped, GTK_ORIENTATION_VERTICAL, w, NULL) == h);
    int narrow_h;
    text_size(wrapped, details, 150, NULL, &narrow_h);
    check("its height at 150 px is its wrapped lines'", measure(wrapped, GTK_ORIENTATION_VERTICAL, 150, NULL) == narrow_h);
    check("wrapped at 150 px it needs more lines", narrow_h > h);
    int at_w;
    text_size(wrapped, details, gtk_widget_get_width(wrapped), NULL, &at_w);
    check("the window gives the wrapped text the height of its lines at the width it gets",
          gtk_widget_get_width(wrapped) > 0 && gtk_widget_get_height(wrapped) >= at_w);
    graphene_rect_t b;
    check("the widget below starts below the wrapped text's last line",
          gtk_widget_compute_bounds(below, box, &b) && b.origin.y >= gtk_widget_get_height(row) + at_w);

    // One line, expanding: no width of its own, one line high; ellipsized into what it gets.
    int line_h;
    text_size(name, "Ag", -1, NULL, &line_h);
    check("an expanding line asks for no width", measure(name, GTK_ORIENTATION_HORIZONTAL, -1, &nat) == 0 && nat == 0);
    int name_h = measure(name, GTK_ORIENTATION_VERTICAL, -1, NULL);
    check("an expanding line is one line of its font high", name_h > 0 && abs(name_h - line_h) <= 2);
    check("an expanding line has a constant size", gtk_widget_get_request_mode(name) == GTK_SIZE_REQUEST_CONSTANT_SIZE);

    // Fit to its text: as wide as the text, and wider with a longer text.
    text_size(date, "5 Dec 2026", -1, &w, NULL);
    check("a fitted line is as wide as its text", measure(date, GTK_ORIENTATION_HORIZONTAL, -1, &nat) == w && nat == w);
    m3_plain_label_set_text(M3_PLAIN_LABEL(date), "Yesterday, 23:59:59");
    text_size(date, "Yesterday, 23:59:59", -1, &w, NULL);
    check("a fitted line grows with a longer text", measure(date, GTK_ORIENTATION_HORIZONTAL, -1, NULL) == w);
    settle();
    check("the row gives the fitted line its width", gtk_widget_get_width(date) >= w);
    check("the text reads back", g_str_equal(m3_plain_label_get_text(M3_PLAIN_LABEL(date)), "Yesterday, 23:59:59"));

    gtk_window_destroy(GTK_WINDOW(window));
    settle();
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
