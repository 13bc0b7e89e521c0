// SPDX-License-Identifier: MIT
#include "snippet-view.h"
#include "text-font.h"

#define SNIPPET_LINES 2
#define SNIPPET_NATURAL_CHARS 60  // natural width, in average characters (the row is wider anyway)

struct _M3SnippetView {
    GtkWidget parent_instance;
    guint font_serial;    // the Pango context's serial the layout and metrics are for
    PangoLayout *layout;  // made on first use; its font follows the widget's CSS
    char *markup;
    int laid_width;       // the width the layout was last laid out at (Pango units), -1 when none
    int line_height, char_width;  // from the font's metrics (Pango units), 0 until measured
};

G_DEFINE_FINAL_TYPE(M3SnippetView, m3_snippet_view, GTK_TYPE_WIDGET)

static PangoLayout *layout_of(M3SnippetView *self) {
    if (!self->layout) {
        self->layout = gtk_widget_create_pango_layout(GTK_WIDGET(self), NULL);
        pango_layout_set_wrap(self->layout, PANGO_WRAP_WORD_CHAR);
        pango_layout_set_ellipsize(self->layout, PANGO_ELLIPSIZE_END);
        pango_layout_set_height(self->layout, -SNIPPET_LINES);  // negative: a number of lines
        pango_layout_set_auto_dir(self->layout, TRUE);
        self->laid_width = -1;
        char *plain = NULL;
        if (self->markup && pango_parse_markup(self->markup, -1, 0, NULL, &plain, NULL, NULL))
            pango_layout_set_markup(self->layout, self->markup, -1);
        else
            pango_layout_set_text(self->layout, self->markup ? self->markup : "", -1);
        g_free(plain);
    }
    return self->layout;
}

static void m3_snippet_view_measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                                    int *natural, int *min_baseline, int *nat_baseline) {
    (void)for_size, (void)min_baseline, (void)nat_baseline;
    // Font metrics only (looked up once per font): no text is laid out to answer a size request.
    M3SnippetView *self = M3_SNIPPET_VIEW(widget);
    if (!self->line_height)
        m3_text_font_metrics(widget, &self->line_height, &self->char_width);
    if (orientation == GTK_ORIENTATION_HORIZONTAL) {
        *minimum = 0;
        *natural = PANGO_PIXELS_CEIL(self->char_width * SNIPPET_NATURAL_CHARS);
    } else {
        *minimum = *natural = PANGO_PIXELS_CEIL(self->line_height * SNIPPET_LINES);
    }
}

static void m3_snippet_view_snapshot(GtkWidget *widget, GtkSnapshot *snapshot) {
    M3SnippetView *self = M3_SNIPPET_VIEW(widget);
    if (!self->markup || !*self->markup)
        return;
    PangoLayout *layout = layout_of(self);
    int width = gtk_widget_get_width(widget) * PANGO_SCALE;
    if (width != self->laid_width) {
        pango_layout_set_width(layout, width);
        self->laid_width = width;
    }
    pango_layout_set_alignment(layout, gtk_widget_get_direction(widget) == GTK_TEXT_DIR_RTL ? PANGO_ALIGN_RIGHT
                                                                                             : PANGO_ALIGN_LEFT);
    GdkRGBA color;
    m3_text_color(widget, &color);
    gtk_snapshot_append_layout(snapshot, layout, &color);
}

// A new font (CSS, text scale) or direction: lay the text out anew.
static void drop_layout(M3SnippetView *self) {
    g_clear_object(&self->layout);
    self->line_height = self->char_width = 0;
    gtk_widget_queue_resize(GTK_WIDGET(self));
}

static void m3_snippet_view_css_changed(GtkWidget *widget, GtkCssStyleChange *change) {
    GTK_WIDGET_CLASS(m3_snippet_view_parent_class)->css_changed(widget, change);
    M3SnippetView *self = M3_SNIPPET_VIEW(widget);
    if (m3_text_font_changed(widget, &self->font_serial))  // not at each new style (text-font.h)
        drop_layout(self);
}

static void m3_snippet_view_direction_changed(GtkWidget *widget, GtkTextDirection previous) {
    GTK_WIDGET_CLASS(m3_snippet_view_parent_class)->direction_changed(widget, previous);
    drop_layout(M3_SNIPPET_VIEW(widget));
}

static void m3_snippet_view_finalize(GObject *object) {
    M3SnippetView *self = M3_SNIPPET_VIEW(object);
    g_clear_object(&self->layout);
    g_free(self->markup);
    G_OBJECT_CLASS(m3_snippet_view_parent_class)->finalize(object);
}

static void m3_snippet_view_class_init(M3SnippetViewClass *klass) {
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->finalize = m3_snippet_view_finalize;
    wc->measure = m3_snippet_view_measure;
    wc->snapshot = m3_snippet_view_snapshot;
    wc->css_changed = m3_snippet_view_css_changed;
    wc->direction_changed = m3_snippet_view_direction_changed;
    gtk_widget_class_set_css_name(wc, "snippet");
    gtk_widget_class_set_accessible_role(wc, GTK_ACCESSIBLE_ROLE_LABEL);
}

static void m3_snippet_view_init(M3SnippetView *self) {
    self->laid_width = -1;
}

GtkWidget *m3_snippet_view_new(void) {
    return g_object_new(M3_TYPE_SNIPPET_VIEW, NULL);
}

void m3_snippet_view_set_markup(M3SnippetView *self, const char *markup) {
    if (!g_strcmp0(markup, self->markup))
        return;
    g_free(self->markup);
    self->markup = g_strdup(markup);
    g_clear_object(&self->layout);
    // The height is two lines whatever the text: only a redraw, no new size request.
    gtk_widget_queue_draw(GTK_WIDGET(self));
    char *plain = NULL;
    if (markup && !pango_parse_markup(markup, -1, 0, NULL, &plain, NULL, NULL))
        plain = g_strdup(markup);
    gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, plain ? plain : "", -1);
    g_free(plain);
}
