// SPDX-License-Identifier: MIT
#include "text-font.h"

gboolean m3_text_font_changed(GtkWidget *widget, guint *serial) {
    guint now = pango_context_get_serial(gtk_widget_get_pango_context(widget));
    if (now == *serial)
        return FALSE;
    *serial = now;
    return TRUE;
}

void m3_text_font_metrics(GtkWidget *widget, int *line_height, int *char_width) {
    PangoContext *ctx = gtk_widget_get_pango_context(widget);
    PangoFontMetrics *m = pango_context_get_metrics(ctx, pango_context_get_font_description(ctx), NULL);
    *line_height = pango_font_metrics_get_height(m);
    if (*line_height <= 0)
        *line_height = pango_font_metrics_get_ascent(m) + pango_font_metrics_get_descent(m);
    *char_width = pango_font_metrics_get_approximate_char_width(m);
    pango_font_metrics_unref(m);
}

void m3_text_color(GtkWidget *widget, GdkRGBA *color) {
    G_GNUC_BEGIN_IGNORE_DEPRECATIONS  // gtk_widget_get_color is 4.10; this is the 4.8 way
    gtk_style_context_get_color(gtk_widget_get_style_context(widget), color);
    G_GNUC_END_IGNORE_DEPRECATIONS
}
