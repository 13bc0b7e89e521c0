// SPDX-License-Identifier: MIT
#include "score-bar.h"

#include <glib/gi18n.h>

struct _M3ScoreBar {
    GtkWidget parent_instance;
    double parts[3];
    char *text;  // the numbers, for the tooltip (built when shown) and screen readers
};

G_DEFINE_FINAL_TYPE(M3ScoreBar, m3_score_bar, GTK_TYPE_WIDGET)

// Dense, lexical, multi-vector: GNOME palette blue 3, orange 3, purple 2.
static const GdkRGBA part_colors[3] = {
    {0.208, 0.518, 0.894, 1.0},
    {1.000, 0.471, 0.000, 1.0},
    {0.753, 0.380, 0.796, 1.0},
};

static void m3_score_bar_snapshot(GtkWidget *widget, GtkSnapshot *snapshot) {
    M3ScoreBar *self = M3_SCORE_BAR(widget);
    float w = (float)gtk_widget_get_width(widget), h = (float)gtk_widget_get_height(widget);
    GdkRGBA track = {0.5, 0.5, 0.5, 0.18};
    gtk_snapshot_append_color(snapshot, &track, &GRAPHENE_RECT_INIT(0, 0, w, h));
    // Each part gets a third of the width, filled by its value: readable at a glance.
    float x = 0, third = w / 3.0f;
    gboolean rtl = gtk_widget_get_direction(widget) == GTK_TEXT_DIR_RTL;
    for (int i = 0; i < 3; i++) {
        double v = CLAMP(self->parts[i], 0.0, 1.0);
        float len = (float)(v * third) - 1.0f;
        if (len > 0) {
            float left = rtl ? w - x - len : x;
            gtk_snapshot_append_color(snapshot, &part_colors[i], &GRAPHENE_RECT_INIT(left, 0, len, h));
        }
        x += third;
    }
}

static void m3_score_bar_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                                 int *minimum, int *natural, int *min_baseline, int *nat_baseline) {
    (void)widget, (void)for_size, (void)min_baseline, (void)nat_baseline;
    *minimum = *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 60 : 6;
}

// The tooltip's text is given when GTK asks for it: gtk_widget_set_tooltip_text() on every bound
// row asked the X server where the pointer is (three round trips per row, most of a list update's
// binding time under Xvfb).
static gboolean query_tooltip_cb(GtkWidget *widget, int x, int y, gboolean keyboard, GtkTooltip *tooltip,
                                 gpointer user) {
    (void)x, (void)y, (void)keyboard, (void)user;
    M3ScoreBar *self = M3_SCORE_BAR(widget);
    if (!self->text)
        return FALSE;
    gtk_tooltip_set_text(tooltip, self->text);
    return TRUE;
}

static void m3_score_bar_finalize(GObject *object) {
    g_free(M3_SCORE_BAR(object)->text);
    G_OBJECT_CLASS(m3_score_bar_parent_class)->finalize(object);
}

static void m3_score_bar_class_init(M3ScoreBarClass *klass) {
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->finalize = m3_score_bar_finalize;
    wc->snapshot = m3_score_bar_snapshot;
    wc->measure = m3_score_bar_measure;
    gtk_widget_class_set_css_name(wc, "scorebar");
    gtk_widget_class_set_accessible_role(wc, GTK_ACCESSIBLE_ROLE_IMG);
}

static void m3_score_bar_init(M3ScoreBar *self) {
    gtk_widget_set_valign(GTK_WIDGET(self), GTK_ALIGN_CENTER);
    gtk_widget_set_has_tooltip(GTK_WIDGET(self), TRUE);
    g_signal_connect(self, "query-tooltip", G_CALLBACK(query_tooltip_cb), NULL);
}

GtkWidget *m3_score_bar_new(void) {
    return g_object_new(M3_TYPE_SCORE_BAR, NULL);
}

void m3_score_bar_set_parts(M3ScoreBar *self, double score, double dense, double sparse, double colbert) {
    self->parts[0] = dense;
    self->parts[1] = sparse;
    self->parts[2] = colbert;
    g_free(self->text);
    self->text = g_strdup_printf(_("Score %.3f — meaning %.3f, words %.3f, passages %.3f"), score, dense, sparse,
                                 colbert);
    gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, self->text, -1);
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

void m3_score_bar_clear(M3ScoreBar *self) {
    if (!self->text)
        return;
    self->parts[0] = self->parts[1] = self->parts[2] = 0;
    g_clear_pointer(&self->text, g_free);
    gtk_accessible_reset_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL);
    gtk_widget_queue_draw(GTK_WIDGET(self));
}
