// SPDX-License-Identifier: MIT
//
// See text-warm.h for why.
#include "text-warm.h"

#include "plain-label.h"
#include "result-row.h"
#include "snippet-view.h"
#include "x11-frames.h"

// Wide enough to wrap the sample into a few lines at any of the window's sizes, tall enough that no
// line falls outside the image (cairo skips glyphs outside it, which would leave them cold).
enum { WARM_WIDTH = 480, WARM_HEIGHT = 480 };

// The scripts documents are written in, each as a sample of its common letters, digits and marks:
// the Latin script with paths, dates and Western European accents first, then the scripts whose
// fonts are fallbacks (loading one costs a fontconfig search and opening its file).
static const char *const SAMPLES[] = {
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG. "
    "0123456789 ~/.,:;!?'\"()[]{}<>@#$%^&*-_+=|\\ "
    "äöüßÄÖÜ éèêëàâçñóòôúùûíìîÿ ÉÈÊÀÂÇÑÓÔÚÍ æøåÆØÅ œŒ "
    "ąćęłńśźżĄĆĘŁŃŚŹŻ čšžřěůČŠŽŘ “”‘’„«»–—…€£·",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. ЁЖ",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "다람쥐 헌 쳇바퀴에 타고파. 키스의 고유조건은 입술끼리 만나야 하고 특별한 기술은 필요치 않다.",
    "我能吞下玻璃而不伤身体。いろはにほへと ちりぬるを わかよたれそ つねならむ。カタカナ",
    "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق.",
    "דג סקרן שט בים מאוכזב ולפתע מצא חברה.",
    "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम",
    "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน",
};
enum { N_SAMPLES = G_N_ELEMENTS(SAMPLES) };

// One idle step per font and script, so that a keystroke during the warm-up waits for one at most.
typedef struct {
    GtkWidget *window;     // referenced: the warm-up stops when it is unrealized (closed)
    GPtrArray *widgets;    // the text widgets to warm, referenced; the first ones warmed first
    guint next, script;   // the next widget, and the next script for it
    cairo_surface_t *image;
    cairo_t *cr;
    char *markup[N_SAMPLES];  // each sample, once bold (matches, headings) and once regular
    GHashTable *fonts;     // font descriptions already warmed, as strings
    gint64 spent_us;
} warm_state;

static void collect(GtkWidget *widget, GPtrArray *widgets) {
    if (GTK_IS_LABEL(widget) || GTK_IS_TEXT_VIEW(widget) || M3_IS_SNIPPET_VIEW(widget) || M3_IS_PLAIN_LABEL(widget))
        g_ptr_array_add(widgets, g_object_ref(widget));
    for (GtkWidget *child = gtk_widget_get_first_child(widget); child; child = gtk_widget_get_next_sibling(child))
        collect(child, widgets);
}

static warm_state *warm_state_new(GtkWidget *window) {
    warm_state *st = g_new0(warm_state, 1);
    st->window = g_object_ref(window);
    st->widgets = g_ptr_array_new_with_free_func(g_object_unref);
    // A row made only for this: its labels and snippet get the fonts the list's rows will have.
    GtkWidget *row = g_object_ref_sink(m3_result_row_new());
    collect(row, st->widgets);
    g_object_unref(row);  // its children stay alive through st->widgets until warmed
    collect(window, st->widgets);  // the preview's text view, and the rest of the window
    st->image = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, WARM_WIDTH, WARM_HEIGHT);
    st->cr = cairo_create(st->image);
    for (guint i = 0; i < N_SAMPLES; i++) {
        g_autofree char *escaped = g_markup_escape_text(SAMPLES[i], -1);
        st->markup[i] = g_strdup_printf("<b>%s</b>\n%s", escaped, escaped);
    }
    st->fonts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return st;
}

static void warm_state_free(gpointer data) {
    warm_state *st = data;
    g_ptr_array_unref(st->widgets);
    cairo_destroy(st->cr);
    cairo_surface_destroy(st->image);
    for (guint i = 0; i < N_SAMPLES; i++)
        g_free(st->markup[i]);
    // Last, once the warm-up's own memory is back: the heap's next pages, resident (x11-frames.h).
    if (gtk_widget_get_realized(st->window))
        m3_x11_frames_touch_heap_in_steps(GTK_WINDOW(st->window), FALSE);
    if (g_getenv("M3SEARCH_TRACE"))
        g_printerr("m3search-trace: text caches warmed for %u fonts in %.1f ms\n",
                   g_hash_table_size(st->fonts), st->spent_us / 1000.0);
    g_hash_table_unref(st->fonts);
    g_object_unref(st->window);
    g_free(st);
}

// Lays out and draws one script's sample in `widget`'s font.
static void warm_font_of(GtkWidget *widget, const char *markup, warm_state *st) {
    PangoLayout *layout = gtk_widget_create_pango_layout(widget, NULL);
    pango_layout_set_width(layout, WARM_WIDTH * PANGO_SCALE);
    pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_markup(layout, markup, -1);
    cairo_move_to(st->cr, 0, 0);
    pango_cairo_show_layout(st->cr, layout);  // shapes, loads and rasterises every glyph
    g_object_unref(layout);
}

// Whether `widget` has a font no widget before had (then its scripts are warmed).
static gboolean new_font(GtkWidget *widget, warm_state *st) {
    PangoContext *pango = gtk_widget_get_pango_context(widget);
    return g_hash_table_add(st->fonts, pango_font_description_to_string(pango_context_get_font_description(pango)));
}

static gboolean warm_step_cb(gpointer data) {
    warm_state *st = data;
    if (!gtk_widget_get_realized(st->window))
        return G_SOURCE_REMOVE;
    gint64 start = g_get_monotonic_time();
    if (st->script == 0)  // a widget's first step: skip widgets whose font is warm already
        while (st->next < st->widgets->len && !new_font(st->widgets->pdata[st->next], st))
            st->next++;
    if (st->next < st->widgets->len) {
        warm_font_of(st->widgets->pdata[st->next], st->markup[st->script], st);
        if (++st->script == N_SAMPLES) {
            st->script = 0;
            st->next++;
        }
    }
    st->spent_us += g_get_monotonic_time() - start;
    return st->next < st->widgets->len ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void after_paint_cb(GdkFrameClock *clock, gpointer user) {
    g_signal_handlers_disconnect_by_func(clock, after_paint_cb, user);
    // Low priority: input and the next frames come first.
    g_idle_add_full(G_PRIORITY_LOW, warm_step_cb, warm_state_new(user), warm_state_free);
}

static void realize_cb(GtkWidget *window, gpointer user) {
    (void)user;
    g_signal_handlers_disconnect_by_func(window, realize_cb, NULL);
    GdkSurface *surface = gtk_native_get_surface(GTK_NATIVE(window));
    if (surface)
        g_signal_connect_object(gdk_surface_get_frame_clock(surface), "after-paint", G_CALLBACK(after_paint_cb),
                                window, 0);
}

void m3_text_warm_up(GtkWindow *window) {
    g_signal_connect_after(window, "realize", G_CALLBACK(realize_cb), NULL);
}
