// SPDX-License-Identifier: MIT
#include "preview.h"

#include "display-path.h"
#include "passage.h"
#include "plain-label.h"
#include "stack-page.h"

#include <string.h>

#include <adwaita.h>
#include <glib/gi18n.h>

#define PREVIEW_MAX_FILE (4u << 20)
#define PREVIEW_CONTEXT 1500  // bytes of context shown before and after the passage
// The file is read for the context only once the selection has rested this long: while the user
// types, each keystroke's best match would otherwise be read and laid out (3 KB of text) in turn.
#define PREVIEW_LOAD_DELAY_MS 120

struct _M3Preview {
    GtkWidget parent_instance;
    GtkStack *stack;
    GtkLabel *title;
    M3PlainLabel *details;
    GtkTextView *text;
    M3Result *result;
    GCancellable *load;
    guint load_timer;  // the delayed start of the file's reading
};

G_DEFINE_FINAL_TYPE(M3Preview, m3_preview, GTK_TYPE_WIDGET)

static void m3_preview_dispose(GObject *object) {
    M3Preview *self = M3_PREVIEW(object);
    if (self->load)
        g_cancellable_cancel(self->load);
    g_clear_object(&self->load);
    g_clear_handle_id(&self->load_timer, g_source_remove);
    g_clear_object(&self->result);
    gtk_widget_dispose_template(GTK_WIDGET(object), M3_TYPE_PREVIEW);
    GtkWidget *child;
    while ((child = gtk_widget_get_first_child(GTK_WIDGET(object))))
        gtk_widget_unparent(child);
    G_OBJECT_CLASS(m3_preview_parent_class)->dispose(object);
}

static void m3_preview_class_init(M3PreviewClass *klass) {
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->dispose = m3_preview_dispose;
    g_type_ensure(M3_TYPE_PLAIN_LABEL);
    gtk_widget_class_set_template_from_resource(wc, "/org/m3search/Search/preview.ui");
    gtk_widget_class_bind_template_child(wc, M3Preview, stack);
    gtk_widget_class_bind_template_child(wc, M3Preview, title);
    gtk_widget_class_bind_template_child(wc, M3Preview, details);
    gtk_widget_class_bind_template_child(wc, M3Preview, text);
    gtk_widget_class_set_css_name(wc, "preview");
}

// The text wraps, so it never needs to scroll sideways; but scrolling to the passage with a margin
// (show_text) moves the view sideways by the few pixels the text view is wider than its viewport
// when the passage ends near a line's end, which hid the first letters of every line.
static void keep_left_cb(GtkAdjustment *h, gpointer user) {
    (void)user;
    if (gtk_adjustment_get_value(h) != gtk_adjustment_get_lower(h))
        gtk_adjustment_set_value(h, gtk_adjustment_get_lower(h));
}

static void m3_preview_init(M3Preview *self) {
    gtk_widget_init_template(GTK_WIDGET(self));
    GtkAdjustment *h = gtk_scrollable_get_hadjustment(GTK_SCROLLABLE(self->text));
    if (h)
        g_signal_connect(h, "value-changed", G_CALLBACK(keep_left_cb), NULL);
    m3_stack_show(self->stack, "empty");
    GtkTextBuffer *buf = gtk_text_view_get_buffer(self->text);
    gtk_text_buffer_create_tag(buf, "match", "weight", PANGO_WEIGHT_BOLD, "background", "#f8e45c", "foreground", "#000000", NULL);
    gtk_text_buffer_create_tag(buf, "context", "foreground-rgba", &(GdkRGBA){0.5, 0.5, 0.5, 1.0}, NULL);
}

// Fills the buffer: before (context, dimmed), the snippet's bytes [s0, s1) with their highlights,
// after (dimmed).
static void show_text(M3Preview *self, const char *before, gsize nb, gsize s0, gsize s1, const char *after,
                      gsize na) {
    GtkTextBuffer *buf = gtk_text_view_get_buffer(self->text);
    gtk_text_buffer_set_text(buf, "", 0);
    GtkTextIter end;
    gtk_text_buffer_get_end_iter(buf, &end);
    if (nb)
        gtk_text_buffer_insert_with_tags_by_name(buf, &end, before, (int)nb, "context", NULL);
    int passage_at = gtk_text_iter_get_offset(&end);
    const char *snippet = m3_result_get_snippet(self->result);
    gsize at = s0;
    guint n;
    const m3_highlight *hl = m3_result_get_highlights(self->result, &n);
    for (guint i = 0; i < n; i++) {
        gsize a = MAX(hl[i].start, at), b = MIN(hl[i].end, s1);
        if (b <= a || !g_utf8_validate(snippet + at, (gssize)(a - at), NULL) ||
            !g_utf8_validate(snippet + a, (gssize)(b - a), NULL))
            continue;
        gtk_text_buffer_insert(buf, &end, snippet + at, (int)(a - at));
        gtk_text_buffer_insert_with_tags_by_name(buf, &end, snippet + a, (int)(b - a), "match", NULL);
        at = b;
    }
    gtk_text_buffer_insert(buf, &end, snippet + at, (int)(s1 - at));
    if (na)
        gtk_text_buffer_insert_with_tags_by_name(buf, &end, after, (int)na, "context", NULL);
    // The passage's start at a fixed place: the top without context before it, else a few lines
    // down. Aligning (not "scroll until visible") gives the same place whatever size the view has
    // when the scroll runs: the text view keeps the line it shows first when it grows, so a
    // minimal scroll made during an early, small allocation hid the first lines for good.
    GtkTextIter start;
    gtk_text_buffer_get_iter_at_offset(buf, &start, passage_at);
    GtkTextMark *mark = gtk_text_buffer_get_mark(buf, "passage");
    if (mark)
        gtk_text_buffer_move_mark(buf, mark, &start);
    else
        mark = gtk_text_buffer_create_mark(buf, "passage", &start, TRUE);
    gtk_text_view_scroll_to_mark(self->text, mark, 0, TRUE, 0, nb ? 0.15 : 0);
    // The new text's lines and the scroll are worked out when the text view is next allocated, or
    // else while it is drawn; then its scrollbar, drawn next, would meet an adjustment changed after
    // the layout ("Trying to snapshot GtkGizmo without a current allocation", the scrollbar missing
    // for a frame). Allocating the scrolled window, not only its child, places the scrollbar after.
    gtk_widget_queue_allocate(GTK_WIDGET(self->text));
    gtk_widget_queue_allocate(gtk_widget_get_parent(GTK_WIDGET(self->text)));
}

// Cuts a byte range of valid UTF-8 at character boundaries.
static gsize utf8_back(const char *s, gsize at) {
    while (at > 0 && ((unsigned char)s[at] & 0xC0) == 0x80)
        at--;
    return at;
}

static void loaded_cb(GObject *source, GAsyncResult *res, gpointer user) {
    g_autoptr(GError) error = NULL;
    char *contents = NULL;
    gsize len = 0;
    if (!g_file_load_contents_finish(G_FILE(source), res, &contents, &len, NULL, &error))
        return;  // cancelled (a newer selection) or unreadable: the snippet alone stays shown
    g_autofree char *data = contents;
    M3Preview *self = M3_PREVIEW(user);
    const char *snippet = m3_result_get_snippet(self->result);
    if (len > PREVIEW_MAX_FILE || !*snippet || !g_utf8_validate(data, (gssize)len, NULL))
        return;
    m3_passage p;
    if (!m3_passage_find(data, len, snippet, &p))
        return;  // the file changed since, or its text is not its bytes: the snippet alone stays shown
    gsize from = p.at > PREVIEW_CONTEXT ? utf8_back(data, p.at - PREVIEW_CONTEXT) : 0;
    gsize to = p.end + PREVIEW_CONTEXT < len ? utf8_back(data, p.end + PREVIEW_CONTEXT) : len;
    show_text(self, data + from, p.at - from, p.snip_at, p.snip_end, data + p.end, to - p.end);
}

// The same passage of the same file with the same highlights (the next keystroke's results often
// keep the best match): the text shown, with its context, stays as it is.
static gboolean same_passage(M3Result *a, M3Result *b) {
    if (!a || !b)
        return FALSE;
    guint na, nb;
    const m3_highlight *ha = m3_result_get_highlights(a, &na), *hb = m3_result_get_highlights(b, &nb);
    return g_str_equal(m3_result_get_path(a), m3_result_get_path(b)) &&
           g_str_equal(m3_result_get_snippet(a), m3_result_get_snippet(b)) && na == nb &&
           (na == 0 || !memcmp(ha, hb, na * sizeof *ha));
}

static gboolean load_context_cb(gpointer user) {
    M3Preview *self = user;
    self->load_timer = 0;
    g_autoptr(GFile) file = g_file_new_for_path(m3_result_get_path(self->result));
    g_file_load_contents_async(file, self->load, loaded_cb, self);
    return G_SOURCE_REMOVE;
}

void m3_preview_set_result(M3Preview *self, M3Result *result) {
    gboolean keep_text = same_passage(self->result, result);
    if (self->load && !keep_text) {
        g_cancellable_cancel(self->load);
        g_clear_object(&self->load);
        g_clear_handle_id(&self->load_timer, g_source_remove);
    }
    g_set_object(&self->result, result);
    if (!result) {
        m3_stack_show(self->stack, "empty");
        return;
    }
    g_autofree char *name = m3_result_dup_name(result);
    g_autofree char *folder = m3_result_dup_folder(result);
    g_autofree char *date = m3_result_dup_date(result);
    const char *location = m3_result_get_location(result);
    double d, s, c;
    m3_result_get_parts(result, &d, &s, &c);
    g_autofree char *type = g_content_type_get_description(m3_result_get_content_type(result));
    GString *details = g_string_new(NULL);
    g_autofree char *isolated = m3_display_path_isolate(folder);  // a path reads left to right
    g_string_append_printf(details, "%s\n%s · %s", isolated, type, date);
    if (location && *location)
        g_string_append_printf(details, " · %s", location);
    g_string_append_printf(details, "\n");
    g_string_append_printf(details, _("Score %.3f (meaning %.3f, words %.3f, passages %.3f)"),
                           m3_result_get_score(result), d, s, c);
    gtk_label_set_text(self->title, name);
    m3_plain_label_set_text(self->details, details->str);
    g_string_free(details, TRUE);
    m3_stack_show(self->stack, "result");
    if (keep_text)
        return;
    show_text(self, NULL, 0, 0, strlen(m3_result_get_snippet(result)), NULL, 0);
    const char *ct = m3_result_get_content_type(result);
    if (g_content_type_is_a(ct, "text/plain")) {
        self->load = g_cancellable_new();
        self->load_timer = g_timeout_add(PREVIEW_LOAD_DELAY_MS, load_context_cb, self);
    }
}
