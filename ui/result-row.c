// SPDX-License-Identifier: MIT
#include "result-row.h"

#include <glib/gi18n.h>

#include "display-path.h"
#include "plain-label.h"
#include "score-bar.h"
#include "snippet-view.h"

struct _M3ResultRow {
    GtkWidget parent_instance;
    GtkImage *icon;
    M3PlainLabel *name, *folder, *date;
    char *content_type;  // the icon's (set only when it changes: a new icon asks for a new size)
    M3SnippetView *snippet;
    M3ScoreBar *score_bar;
};

G_DEFINE_FINAL_TYPE(M3ResultRow, m3_result_row, GTK_TYPE_WIDGET)

static void m3_result_row_finalize(GObject *object) {
    g_free(M3_RESULT_ROW(object)->content_type);
    G_OBJECT_CLASS(m3_result_row_parent_class)->finalize(object);
}

static void m3_result_row_dispose(GObject *object) {
    gtk_widget_dispose_template(GTK_WIDGET(object), M3_TYPE_RESULT_ROW);
    GtkWidget *child;
    while ((child = gtk_widget_get_first_child(GTK_WIDGET(object))))
        gtk_widget_unparent(child);
    G_OBJECT_CLASS(m3_result_row_parent_class)->dispose(object);
}

static void m3_result_row_class_init(M3ResultRowClass *klass) {
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->dispose = m3_result_row_dispose;
    G_OBJECT_CLASS(klass)->finalize = m3_result_row_finalize;
    g_type_ensure(M3_TYPE_SCORE_BAR);
    g_type_ensure(M3_TYPE_SNIPPET_VIEW);
    g_type_ensure(M3_TYPE_PLAIN_LABEL);
    gtk_widget_class_set_template_from_resource(wc, "/org/m3search/Search/result-row.ui");
    gtk_widget_class_bind_template_child(wc, M3ResultRow, icon);
    gtk_widget_class_bind_template_child(wc, M3ResultRow, name);
    gtk_widget_class_bind_template_child(wc, M3ResultRow, folder);
    gtk_widget_class_bind_template_child(wc, M3ResultRow, date);
    gtk_widget_class_bind_template_child(wc, M3ResultRow, snippet);
    gtk_widget_class_bind_template_child(wc, M3ResultRow, score_bar);
    gtk_widget_class_set_css_name(wc, "resultrow");
}

static void m3_result_row_init(M3ResultRow *self) {
    gtk_widget_init_template(GTK_WIDGET(self));
}

GtkWidget *m3_result_row_new(void) {
    return g_object_new(M3_TYPE_RESULT_ROW, NULL);
}

void m3_result_row_set_result(M3ResultRow *self, M3Result *result) {
    if (!result) {
        m3_plain_label_set_text(self->name, "");
        m3_plain_label_set_text(self->folder, "");
        m3_plain_label_set_text(self->date, "");
        m3_snippet_view_set_markup(self->snippet, NULL);
        gtk_image_clear(self->icon);
        g_clear_pointer(&self->content_type, g_free);
        m3_score_bar_clear(self->score_bar);  // a blank row keeps no score of the last result
        gtk_accessible_reset_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL);
        return;
    }
    const char *type = m3_result_get_content_type(result);
    if (g_strcmp0(type, self->content_type) != 0) {
        g_autoptr(GIcon) icon = g_content_type_get_symbolic_icon(type);
        gtk_image_set_from_gicon(self->icon, icon);
        g_free(self->content_type);
        self->content_type = g_strdup(type);
    }
    g_autofree char *name = m3_result_dup_name(result);
    g_autofree char *folder = m3_result_dup_folder(result);
    g_autofree char *date = m3_result_dup_date(result);
    g_autofree char *markup = m3_result_dup_snippet_markup(result);
    const char *location = m3_result_get_location(result);
    m3_plain_label_set_text(self->name, name);
    g_autofree char *isolated = m3_display_path_isolate(folder);  // a path reads left to right
    if (location && *location) {
        g_autofree char *where = g_strdup_printf("%s · %s", isolated, location);
        m3_plain_label_set_text(self->folder, where);
    } else {
        m3_plain_label_set_text(self->folder, isolated);
    }
    m3_plain_label_set_text(self->date, date);
    m3_snippet_view_set_markup(self->snippet, markup);
    double d, s, c;
    m3_result_get_parts(result, &d, &s, &c);
    m3_score_bar_set_parts(self->score_bar, m3_result_get_score(result), d, s, c);
    // Screen readers hear the name, the folder and the date of the row.
    g_autofree char *label = g_strdup_printf(_("%s in %s, modified %s"), name, folder, date);
    gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
}
