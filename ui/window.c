// SPDX-License-Identifier: MIT
#include "window.h"

#include <glib/gi18n.h>
#include <sys/resource.h>
#include <time.h>

#include "display-path.h"
#include "indexer1-dbus.h"
#include "preview.h"
#include "result-slot.h"
#include "result-row.h"
#include "result.h"
#include "stack-page.h"
#include "text-warm.h"
#include "x11-frames.h"
#include "window-state.h"

#define RESULT_LIMIT 50
// GTK 4.8's list view makes and binds a row widget for every item of a short list (up to 200), so a
// 50-row reply at once costs 50 bindings and layouts before the next frame. The list holds slots
// (M3ResultSlot) that take the new results in place, so rows are rebound, not rebuilt; the first
// places (those the list shows, from its height) take theirs at once, the rest follow in small
// batches, one per frame from the frame after next (a batch per idle turn let several land before
// one frame, whose layout then took 15 ms); a newer reply drops what is still pending.
#define RESULTS_FIRST 12  // the most places filled at once (a tall window shows about that many)
#define ROW_MIN_HEIGHT 64  // px: a result row is 76 px with the default fonts; less errs towards more rows
#define REFRESH_INTERVAL_MS 1000  // the most often IndexChanged asks for the listed results again
#define RESULTS_BATCH 8
#define NOT_READY_RETRY_MS 1000  // a query the service was not ready for is sent again at least this often
// The results list keeps this width (window.ui gives it as its width-request); below this much and
// the preview's least width, the preview gives way: it is hidden and the list takes the window.
#define LIST_MIN_WIDTH 360
#define PREVIEW_MIN_WIDTH 280

struct _M3Window {
    AdwApplicationWindow parent_instance;

    // Template children.
    GtkSearchEntry *entry;
    GtkRevealer *similar_chip;
    GtkDropDown *type_drop, *age_drop, *mode_drop;
    GtkButton *folder_button;
    GtkRange *wd_scale, *ws_scale, *wc_scale;
    GtkRevealer *banner;
    char *banner_text;  // what the banner says now, NULL when it is hidden
    AdwToastOverlay *toasts;
    GtkStack *stack;
    GtkListView *list;
    AdwStatusPage *status_page;
    GtkButton *status_button;
    GtkPaned *paned;
    GtkWidget *preview_pane;  // the paned's end child: the preview and its action bar
    M3Preview *preview;
    GtkRevealer *progress_bar_revealer;
    GtkLabel *progress_label;
    GtkProgressBar *progress;
    GtkButton *pause_button;
    GMenuModel *result_menu;
    GtkWidget *context_menu;  // a GtkPopoverMenu parented to the list
    GtkListBox *failed_list;
    gboolean showing_failed;  // the failed files' page is shown (until Back)

    GSettings *settings;
    M3DbusIndexer1 *indexer;
    GCancellable *life;   // cancelled at dispose: every call that is not a query
    GCancellable *query;  // the query in flight, cancelled by the next one
    guint64 serial;       // the latest query's number; older replies are dropped
    // What is asked changes (typing, filters, find similar): a new generation, whose results start
    // with their first row selected. A refresh after IndexChanged asks the same again: the same
    // generation, which keeps the selected file selected. shown_generation: the listed results'.
    guint64 generation, shown_generation;
    GListStore *results;  // of M3ResultSlot
    // The places holding the shown reply's results: all of the store's, or none. An empty list
    // (the entry cleared, a reply with no results) blanks its slots rather than removing them: the
    // rows stay built for the next results, instead of ~15 ms of row teardown now and of building,
    // styling and laying out new rows in the frame that shows the next results.
    guint listed;
    GtkSingleSelection *selection;
    char *similar;        // file:// URI in find-similar mode, else NULL
    char *folder_filter;  // absolute path or NULL
    GVariant *status;     // the service's last Status dictionary, or NULL
    char *unreachable;    // why the service cannot be reached, or NULL when it can
    gboolean searched;    // results answer the current query (so an empty list means "no results")
    GPtrArray *pending;   // the shown reply's results (M3Result) while some are not in the list yet, or NULL
    guint pending_at, pending_tick;  // the next place to fill; the window's tick callback filling them
    gint64 pending_frame;            // the frame the first places are drawn in: no batch joins it
    guint refresh_timer;      // a throttled refresh after IndexChanged
    gint64 last_refresh_us;
    // The service said NotReady to the current query: no model, or (with a model configured, by
    // Status) still loading it. The query is sent again on each StatusChanged and every
    // NOT_READY_RETRY_MS (retry_timer) until it is answered or there is no query.
    gboolean not_ready;
    guint retry_timer;
    // Narrow windows (fit_panes_cb): the paned's position the user chose (or window.ui's), which a
    // narrower window lowers for the preview's least width and a wider one restores.
    int wanted_position;
    gboolean setting_position;
    guint fit_idle;
    gboolean setup_offered;  // the first-run assistant was opened

    // M3SEARCH_TRACE=1: keystroke-to-list latency and main-loop gaps on stderr; =2 also prints every
    // frame and gap over 16 ms, and every page switch; =3 also every frame's start and end (for
    // tools/frame-who.py, which tells what else ran on the CPUs meanwhile).
    gboolean trace, trace_verbose, trace_frames;
    gint64 trace_key_us, trace_shown_key_us, trace_reply_us, trace_update_us, trace_last_tick_us, trace_max_gap_us;
    guint trace_timer;
    // Frames (GdkFrameClock phases): this one's start and the ends of its layout and drawing; the
    // longest frame with its split; the longest gap with no frame in it (our code, D-Bus, input).
    gint64 frame_start_us, frame_layout_us, frame_paint_us, frame_end_us;
    gint64 frame_start_cpu_us, frame_start_faults;  // the main thread's CPU time and page faults then
    gint64 max_frame_us, max_frame_layout_us, max_frame_paint_us, max_gap_outside_us, frames_over_16;
    // The main thread's CPU time at the last tick, and the most it used within one gap: a gap in
    // which it barely ran was the machine's load (other processes), not work of this process.
    gint64 trace_last_cpu_us, max_gap_cpu_us;
    // The same without the frames that switch the page (status page <-> results: everything is
    // drawn anew) and the gaps holding them.
    gboolean trace_switched;
    gboolean trace_drawn;    // the first frame is drawn (start-up's entry changes came before it)
    gboolean trace_started;  // the user has typed since: gaps and frames count from then on
    GtkWidget *trace_page;  // the page the last frame showed (compared only, no reference)
    gint64 switch_frame_end_us, max_gap_steady_us, max_frame_steady_us, frames_over_16_steady;
    gint64 trace_splice_us, trace_select_us;  // show_results' parts: the splice, the selection (preview)
    gint64 trace_bind_us, trace_preview_us;   // within them: binding rows, filling the preview
    guint trace_binds;                        // rows bound
};

G_DEFINE_FINAL_TYPE(M3Window, m3_window, ADW_TYPE_APPLICATION_WINDOW)

static void run_query(M3Window *self);
static void send_query(M3Window *self);
static void set_similar_chip(M3Window *self, const char *label, const char *tooltip);
static void refresh_status(M3Window *self);
static guint places_shown(M3Window *self);
static void update_view(M3Window *self);
static void selection_changed_cb(M3Window *self);
static gboolean retry_query_cb(gpointer user);

static const char *const text_types[] = {"text/*", NULL};
static const char *const pdf_types[] = {"application/pdf", NULL};
static const char *const office_types[] = {
    "application/vnd.oasis.opendocument.*", "application/vnd.openxmlformats-officedocument.*",
    "application/msword", "application/rtf", NULL};
static const char *const mail_types[] = {"message/rfc822", NULL};
static const char *const *const type_filters[] = {NULL, text_types, pdf_types, office_types, mail_types};
static const gint64 age_filters[] = {0, 86400, 7 * 86400, 31 * 86400, 366 * 86400};
static const char *const modes[] = {"hybrid", "dense", "sparse", "colbert"};

// ---- Errors in a person's words ----

// Whether error means the service cannot be reached at all (not running, not installed, crashed).
static gboolean is_unreachable(const GError *error) {
    return g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
           g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
           g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) ||
           g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_FAILED) ||
           g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_EXEC_FAILED) ||
           g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_CHILD_EXITED) ||
           g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
           g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
           g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
           g_error_matches(error, G_IO_ERROR, G_IO_ERROR_DBUS_ERROR);
}

static gboolean is_remote(const GError *error, const char *name) {
    g_autofree char *remote = g_dbus_error_get_remote_error(error);
    return remote && g_str_equal(remote, name);
}

static void toast(M3Window *self, const char *text) {
    AdwToast *t = adw_toast_new(text);
    adw_toast_set_timeout(t, 5);
    adw_toast_overlay_add_toast(self->toasts, t);
}

// Handles a failed call: the service unreachable changes the view; anything else is a toast with
// the service's own message (which names the file and the problem). A query's NotReady is
// query_done_cb's: the query waits for the service.
static void call_failed(M3Window *self, GError *error, const char *what) {
    if (is_unreachable(error)) {
        g_dbus_error_strip_remote_error(error);
        g_free(self->unreachable);
        self->unreachable = g_strdup(error->message);
    } else {
        g_dbus_error_strip_remote_error(error);
        g_autofree char *text = g_strdup_printf("%s: %s", what, error->message);
        toast(self, text);
    }
    update_view(self);
}

// Reveals or hides a bar. Its content is made anew each time it is shown (see set_banner), and the
// progress bar's texts are cleared when it hides: GTK 4.8 tells assistive technology nothing about
// revealing, so a hidden bar must hold nothing that a screen reader would read out.
static void reveal(GtkRevealer *revealer, gboolean shown) {
    gtk_revealer_set_reveal_child(revealer, shown);
}

// ---- Queries ----

static GVariant *query_options(M3Window *self) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "limit", g_variant_new_uint32(RESULT_LIMIT));
    guint mode = gtk_drop_down_get_selected(self->mode_drop);
    if (mode >= G_N_ELEMENTS(modes))
        mode = 0;
    g_variant_builder_add(&b, "{sv}", "mode", g_variant_new_string(modes[mode]));
    if (mode == 0) {
        double w[3] = {gtk_range_get_value(self->wd_scale), gtk_range_get_value(self->ws_scale),
                       gtk_range_get_value(self->wc_scale)};
        if (w[0] + w[1] + w[2] > 0)
            g_variant_builder_add(&b, "{sv}", "weights",
                                  g_variant_new_fixed_array(G_VARIANT_TYPE_DOUBLE, w, 3, sizeof(double)));
    }
    if (self->folder_filter)
        g_variant_builder_add(&b, "{sv}", "folder", g_variant_new_string(self->folder_filter));
    guint type = gtk_drop_down_get_selected(self->type_drop);
    if (type < G_N_ELEMENTS(type_filters) && type_filters[type])
        g_variant_builder_add(&b, "{sv}", "types", g_variant_new_strv((const char *const *)type_filters[type], -1));
    guint age = gtk_drop_down_get_selected(self->age_drop);
    if (age < G_N_ELEMENTS(age_filters) && age_filters[age])
        g_variant_builder_add(&b, "{sv}", "modified-after",
                              g_variant_new_int64(g_get_real_time() / G_USEC_PER_SEC - age_filters[age]));
    return g_variant_builder_end(&b);
}

typedef struct query_call {
    M3Window *self;  // not a reference: the window cancels the call before it goes away
    guint64 serial, generation;
    gboolean similar;
    gint64 key_us;  // M3SEARCH_TRACE: when the keystroke that sent it changed the entry
} query_call;

static M3Result *selected(M3Window *self) {
    M3ResultSlot *slot = gtk_single_selection_get_selected_item(self->selection);
    return slot ? m3_result_slot_get_result(slot) : NULL;
}

static char *selected_path(M3Window *self) {
    M3Result *r = selected(self);
    return r ? g_strdup(m3_result_get_path(r)) : NULL;
}

static void trace_frame_cb(GdkFrameClock *clock, gpointer user) {
    M3Window *self = user;
    g_signal_handlers_disconnect_by_func(clock, trace_frame_cb, self);
    gint64 now = g_get_monotonic_time();
    gint64 key = self->trace_shown_key_us;
    g_printerr("m3search-trace: keystroke→list %.1f ms (reply after %.1f ms, list updated in %.1f ms, drawn %.1f ms "
               "later; that frame's layout %.1f ms, drawing %.1f ms); longest main-loop gap so far %.1f ms; longest "
               "frame so far %.1f ms (layout %.1f ms, drawing %.1f ms), %" G_GINT64_FORMAT " frames over 16 ms; longest "
               "gap without a frame so far %.1f ms; most main-thread CPU in one gap so far %.1f ms (splice %.1f ms, "
               "selection and preview %.1f ms; rows bound in %.1f ms (%u rows), preview filled in %.1f ms); "
               "without page switches so far: longest gap %.1f ms, longest frame %.1f ms, %" G_GINT64_FORMAT
               " frames over 16 ms\n",
               (now - key) / 1000.0, (self->trace_reply_us - key) / 1000.0,
               (self->trace_update_us - self->trace_reply_us) / 1000.0, (now - self->trace_update_us) / 1000.0,
               (self->frame_layout_us - self->frame_start_us) / 1000.0,
               (self->frame_paint_us - self->frame_layout_us) / 1000.0, self->trace_max_gap_us / 1000.0,
               self->max_frame_us / 1000.0, self->max_frame_layout_us / 1000.0, self->max_frame_paint_us / 1000.0,
               self->frames_over_16, self->max_gap_outside_us / 1000.0, self->max_gap_cpu_us / 1000.0,
               self->trace_splice_us / 1000.0, self->trace_select_us / 1000.0, self->trace_bind_us / 1000.0,
               self->trace_binds, self->trace_preview_us / 1000.0, self->max_gap_steady_us / 1000.0,
               self->max_frame_steady_us / 1000.0, self->frames_over_16_steady);
}

static void drop_pending(M3Window *self) {
    if (self->pending_tick)
        gtk_widget_remove_tick_callback(GTK_WIDGET(self), self->pending_tick);
    self->pending_tick = 0;
    g_clear_pointer(&self->pending, g_ptr_array_unref);
}

// The places [pending_at, upto) of the list take the shown reply's results: a listed slot takes its
// new result (its row rebinds), places past the list's end get new slots (one splice).
static void fill_places(M3Window *self, guint upto) {
    GListModel *list = G_LIST_MODEL(self->results);
    guint listed = g_list_model_get_n_items(list), i = self->pending_at;
    for (; i < upto && i < listed; i++) {
        g_autoptr(M3ResultSlot) slot = g_list_model_get_item(list, i);
        m3_result_slot_set_result(slot, self->pending->pdata[i]);
    }
    if (i < upto) {
        g_autoptr(GPtrArray) slots = g_ptr_array_new_with_free_func(g_object_unref);
        for (guint k = i; k < upto; k++)
            g_ptr_array_add(slots, m3_result_slot_new(self->pending->pdata[k]));
        g_list_store_splice(self->results, listed, 0, slots->pdata, slots->len);
    }
    self->pending_at = upto;
}

// Empties the list, keeping its slots and their rows (see listed): the rows show nothing, the
// selection none (so the preview empties and the actions are off), and the results page is hidden
// by update_view.
static void blank_places(M3Window *self) {
    GListModel *list = G_LIST_MODEL(self->results);
    guint n = g_list_model_get_n_items(list);
    for (guint i = 0; i < n; i++) {
        g_autoptr(M3ResultSlot) slot = g_list_model_get_item(list, i);
        m3_result_slot_set_result(slot, NULL);
    }
    self->listed = 0;
    selection_changed_cb(self);  // the selected slot may be the same object, now blank
}

// Before the first results: blank places for the rows the list will show first, so that their
// widgets are built (from the row's template) and styled while the window waits for the first
// keystroke, not in the update and the frame that first show results (list above).
static gboolean prebuild_rows_cb(gpointer user) {
    M3Window *self = user;
    // Not once the window is gone, nor when results came first.
    if (!gtk_widget_get_realized(GTK_WIDGET(self)) || g_list_model_get_n_items(G_LIST_MODEL(self->results)) > 0)
        return G_SOURCE_REMOVE;
    gint64 t0 = g_get_monotonic_time();
    guint n = places_shown(self);
    g_autoptr(GPtrArray) slots = g_ptr_array_new_with_free_func(g_object_unref);
    for (guint k = 0; k < n; k++)
        g_ptr_array_add(slots, m3_result_slot_new(NULL));
    g_list_store_splice(self->results, 0, 0, slots->pdata, slots->len);
    if (self->trace)
        g_printerr("m3search-trace: %u rows built ahead in %.1f ms\n", n, (g_get_monotonic_time() - t0) / 1000.0);
    return G_SOURCE_REMOVE;
}

static void prebuild_after_paint_cb(GdkFrameClock *clock, M3Window *self) {
    g_signal_handlers_disconnect_by_func(clock, prebuild_after_paint_cb, self);
    g_idle_add_full(G_PRIORITY_LOW, prebuild_rows_cb, g_object_ref(self), g_object_unref);
}

static void prebuild_realize_cb(GtkWidget *widget, gpointer user) {
    (void)user;
    g_signal_handlers_disconnect_by_func(widget, prebuild_realize_cb, NULL);
    GdkSurface *surface = gtk_native_get_surface(GTK_NATIVE(widget));
    if (surface)
        g_signal_connect_object(gdk_surface_get_frame_clock(surface), "after-paint",
                                G_CALLBACK(prebuild_after_paint_cb), widget, 0);
}

// The next batch of the shown reply's remaining results, one per frame (its update phase, before
// that frame's layout), from the frame after the one that draws the first places.
static gboolean append_pending_cb(GtkWidget *window, GdkFrameClock *clock, gpointer user) {
    (void)window;
    M3Window *self = user;
    if (gdk_frame_clock_get_frame_counter(clock) <= self->pending_frame)
        return G_SOURCE_CONTINUE;
    if (self->trace_verbose)
        g_printerr("m3search-trace: batch at frame %" G_GINT64_FORMAT " (first places: %" G_GINT64_FORMAT ")\n",
                   gdk_frame_clock_get_frame_counter(clock), self->pending_frame);
    fill_places(self, MIN(self->pending->len, self->pending_at + RESULTS_BATCH));
    if (self->pending_at < self->pending->len)
        return G_SOURCE_CONTINUE;
    self->pending_tick = 0;
    g_clear_pointer(&self->pending, g_ptr_array_unref);
    return G_SOURCE_REMOVE;
}

// How many places the list shows at most: the list's height (the stack's: the list's page may be
// hidden yet) over a row's least height, and one more (at most RESULTS_FIRST). Rows below those
// are laid out in the next frames rather than in the one that first shows results.
static guint places_shown(M3Window *self) {
    int height = gtk_widget_get_height(GTK_WIDGET(self->stack));
    return height > 0 ? MIN(RESULTS_FIRST, (guint)height / ROW_MIN_HEIGHT + 1) : RESULTS_FIRST;
}

static void show_results(M3Window *self, GVariant *results, guint64 generation) {
    if (self->trace)
        self->trace_reply_us = g_get_monotonic_time();
    if (self->trace_verbose)
        g_printerr("m3search-trace: reply at %.3f s\n", self->trace_reply_us / 1e6);
    // Only a refresh of the listed results keeps the selected file: the results of a new query
    // (the next keystroke) start at their best match, which is what the preview then shows and
    // what Enter, Ctrl+M and the other actions on the selected result act on.
    g_autofree char *keep = generation == self->shown_generation && self->searched ? selected_path(self) : NULL;
    self->shown_generation = generation;
    GPtrArray *items = g_ptr_array_new_with_free_func(g_object_unref);
    GVariantIter it;
    GVariant *dict;
    g_variant_iter_init(&it, results);
    while ((dict = g_variant_iter_next_value(&it))) {
        M3Result *r = m3_result_new_from_variant(dict);
        if (r)
            g_ptr_array_add(items, r);
        g_variant_unref(dict);
    }
    // A refresh keeps the selected file selected when it is still there.
    guint select = 0;
    for (guint i = 0; keep && i < items->len; i++)
        if (g_str_equal(m3_result_get_path(items->pdata[i]), keep))
            select = i;
    // The first places (with the selected one) now; places past the reply's end go now too (they
    // would show below the new results), which happens only when a reply is shorter than the last.
    drop_pending(self);
    guint first = MIN(items->len, MAX(places_shown(self), select + 1));
    gint64 t0 = self->trace ? g_get_monotonic_time() : 0;
    self->trace_bind_us = self->trace_preview_us = 0;
    self->trace_binds = 0;
    guint listed = g_list_model_get_n_items(G_LIST_MODEL(self->results));
    if (items->len == 0)
        blank_places(self);
    else if (listed > items->len)
        g_list_store_splice(self->results, items->len, listed - items->len, NULL, 0);
    self->listed = items->len;
    self->pending = g_ptr_array_ref(items);
    self->pending_at = 0;
    fill_places(self, first);
    if (first < items->len) {
        // Between frames the clock counts the last one: the first places are laid out in the next.
        // The window's clock and ticks: the list has none while its page is hidden.
        GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(self));
        self->pending_frame = clock ? gdk_frame_clock_get_frame_counter(clock) + 1 : 0;
        self->pending_tick = gtk_widget_add_tick_callback(GTK_WIDGET(self), append_pending_cb, self, NULL);
    }
    else
        g_clear_pointer(&self->pending, g_ptr_array_unref);
    gint64 t1 = self->trace ? g_get_monotonic_time() : 0;
    if (items->len) {
        // The selected place may keep its slot while the slot's result changed: no selection
        // change then, but the preview and the actions must follow the new result.
        gboolean same_place = gtk_single_selection_get_selected(self->selection) == select;
        gtk_single_selection_set_selected(self->selection, select);
        if (same_place)
            selection_changed_cb(self);
    }
    if (self->trace) {
        self->trace_splice_us = t1 - t0;
        self->trace_select_us = g_get_monotonic_time() - t1;
    }
    g_ptr_array_unref(items);
    self->searched = TRUE;
    update_view(self);
    if (self->trace && self->trace_shown_key_us) {
        self->trace_update_us = g_get_monotonic_time();
        GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(self->list));
        if (clock)
            g_signal_connect(clock, "after-paint", G_CALLBACK(trace_frame_cb), self);
    }
}

static void query_done_cb(GObject *source, GAsyncResult *res, gpointer user) {
    query_call *call = user;
    M3Window *self = call->self;
    guint64 serial = call->serial, generation = call->generation;
    gint64 key_us = call->key_us;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) results = NULL;
    gboolean ok = call->similar
        ? m3_dbus_indexer1_call_find_similar_finish(M3_DBUS_INDEXER1(source), &results, res, &error)
        : m3_dbus_indexer1_call_search_finish(M3_DBUS_INDEXER1(source), &results, res, &error);
    g_free(call);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;  // a newer query (or the window's end) superseded it: self may be gone
    if (serial != self->serial)
        return;
    g_clear_object(&self->query);
    if (!ok && is_remote(error, "org.m3search.Indexer1.Error.NotReady")) {
        // No model, or the service is still loading it (after a start or restart): the query is
        // asked again when the service's state changes (status_changed_cb) and every
        // NOT_READY_RETRY_MS, which also covers a service that says nothing more once ready.
        self->not_ready = TRUE;
        if (!self->retry_timer)
            self->retry_timer = g_timeout_add(NOT_READY_RETRY_MS, retry_query_cb, self);
        update_view(self);
        return;
    }
    if (!ok) {
        call_failed(self, error, self->similar ? _("Finding similar files failed") : _("Search failed"));
        return;
    }
    g_clear_pointer(&self->unreachable, g_free);
    self->not_ready = FALSE;
    g_clear_handle_id(&self->retry_timer, g_source_remove);
    self->trace_shown_key_us = key_us;
    show_results(self, results, generation);
}

// Asks anew: what is asked has changed.
static void run_query(M3Window *self) {
    g_clear_handle_id(&self->refresh_timer, g_source_remove);  // the new query's results are current
    self->generation++;
    send_query(self);
}

// Sends the current query (run_query's, or the same again for a refresh); a reply replaces the list.
static void send_query(M3Window *self) {
    if (self->query) {
        g_cancellable_cancel(self->query);
        g_clear_object(&self->query);
    }
    self->serial++;
    const char *text = gtk_editable_get_text(GTK_EDITABLE(self->entry));
    if (!self->similar && !*text) {
        gint64 t0 = self->trace_verbose ? g_get_monotonic_time() : 0;
        drop_pending(self);
        blank_places(self);
        self->searched = FALSE;
        self->not_ready = FALSE;  // no query waits for the service
        g_clear_handle_id(&self->retry_timer, g_source_remove);
        update_view(self);
        if (self->trace_verbose)
            g_printerr("m3search-trace: list emptied in %.1f ms\n", (g_get_monotonic_time() - t0) / 1000.0);
        return;
    }
    if (!self->indexer)
        return;  // the proxy is being made; its callback runs the query
    self->query = g_cancellable_new();
    query_call *call = g_new(query_call, 1);
    *call = (query_call){self, self->serial, self->generation, self->similar != NULL, self->trace_key_us};
    if (self->similar)
        m3_dbus_indexer1_call_find_similar(self->indexer, self->similar, query_options(self), self->query,
                                           query_done_cb, call);
    else
        m3_dbus_indexer1_call_search(self->indexer, text, query_options(self), self->query, query_done_cb, call);
    // While the service searches: the results will replace another page, a frame that draws most
    // of the window, so the heap memory it grows into is made resident now (x11-frames.h).
    if (g_strcmp0(gtk_stack_get_visible_child_name(self->stack), "results") != 0)
        m3_x11_frames_touch_heap(GTK_WINDOW(self));
}

static void search_changed_cb(M3Window *self) {
    // Typing leaves find-similar mode: the typed text is what is asked for now.
    if (self->similar && *gtk_editable_get_text(GTK_EDITABLE(self->entry))) {
        g_clear_pointer(&self->similar, g_free);
        set_similar_chip(self, NULL, NULL);
    }
    if (self->trace)
        self->trace_key_us = g_get_monotonic_time();
    self->trace_started |= self->trace_drawn;  // the first change after start-up: the user types
    if (self->trace_verbose)
        g_printerr("m3search-trace: keystroke at %.3f s\n", self->trace_key_us / 1e6);
    run_query(self);
}

// ---- The service's state ----

static void status_done_cb(GObject *source, GAsyncResult *res, gpointer user) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) status = NULL;
    gboolean ok = m3_dbus_indexer1_call_status_finish(M3_DBUS_INDEXER1(source), &status, res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    M3Window *self = user;
    if (!ok) {
        call_failed(self, error, _("Asking the search service for its state failed"));
        return;
    }
    gboolean was_unreachable = self->unreachable != NULL;
    g_clear_pointer(&self->unreachable, g_free);
    g_clear_pointer(&self->status, g_variant_unref);
    self->status = g_variant_ref_sink(g_steal_pointer(&status));
    update_view(self);
    // Back after the service was gone (the query typed meanwhile), or no answer yet; a query the
    // service was not ready for is sent again by status_changed_cb and retry_query_cb instead.
    if (was_unreachable || (!self->searched && !self->not_ready))
        run_query(self);
}

static void refresh_status(M3Window *self) {
    if (self->indexer)
        m3_dbus_indexer1_call_status(self->indexer, self->life, status_done_cb, self);
}

// The service's state changed (loaded its model, opened its index, indexes): a query it was not
// ready for is asked again, the same generation (the service says NotReady until it is ready; no
// Status key says "ready"); a model newly configured asks anew.
static void status_changed_cb(M3DbusIndexer1 *proxy, GVariant *status, M3Window *self) {
    (void)proxy;
    gboolean had_model = self->status && m3_state_has_model(self->status);
    g_clear_pointer(&self->status, g_variant_unref);
    self->status = g_variant_ref(status);
    g_clear_pointer(&self->unreachable, g_free);
    update_view(self);
    if (!had_model && m3_state_has_model(status))
        run_query(self);
    else if (self->not_ready && !m3_state_model_missing(status))
        send_query(self);
}

static gboolean retry_query_cb(gpointer user) {
    M3Window *self = user;
    self->retry_timer = 0;
    // Not while the service says it has no model: status_changed_cb asks when it gets one.
    if (self->not_ready && !self->unreachable && !(self->status && m3_state_model_missing(self->status)))
        send_query(self);
    return G_SOURCE_REMOVE;
}

// While the service indexes, the index changes with every commit (several times a second): the
// listed results are asked for again at most once a second (at once after a quiet second, else
// when the second is over), not on every commit — each refresh rebinds rows and lays them out.
static gboolean refresh_cb(gpointer user) {
    M3Window *self = user;
    self->refresh_timer = 0;
    self->last_refresh_us = g_get_monotonic_time();
    if (self->searched)
        send_query(self);  // the same query again: the selected file stays selected
    return G_SOURCE_REMOVE;
}

static void index_changed_cb(M3DbusIndexer1 *proxy, M3Window *self) {
    (void)proxy;
    if (self->refresh_timer)
        return;
    gint64 since = g_get_monotonic_time() - self->last_refresh_us;
    if (since >= REFRESH_INTERVAL_MS * 1000)
        refresh_cb(self);
    else
        self->refresh_timer = g_timeout_add((guint)(REFRESH_INTERVAL_MS - since / 1000), refresh_cb, self);
}

static void name_owner_cb(GObject *proxy, GParamSpec *pspec, M3Window *self) {
    (void)pspec;
    g_autofree char *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(proxy));
    if (!owner) {
        // The service went away. Asking for its state starts it again if it is activatable, and
        // otherwise tells the window that it is unreachable.
        g_clear_pointer(&self->status, g_variant_unref);
    }
    refresh_status(self);
}

static void proxy_ready_cb(GObject *source, GAsyncResult *res, gpointer user) {
    (void)source;
    g_autoptr(GError) error = NULL;
    M3DbusIndexer1 *proxy = m3_dbus_indexer1_proxy_new_for_bus_finish(res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    M3Window *self = user;
    if (!proxy) {
        self->unreachable = g_strdup(error->message);
        update_view(self);
        return;
    }
    self->indexer = proxy;
    g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(proxy), 120000);  // a cold start loads the model
    g_signal_connect(proxy, "status-changed", G_CALLBACK(status_changed_cb), self);
    g_signal_connect(proxy, "index-changed", G_CALLBACK(index_changed_cb), self);
    g_signal_connect(proxy, "notify::g-name-owner", G_CALLBACK(name_owner_cb), self);
    refresh_status(self);
    run_query(self);
}

static void set_status_page(M3Window *self, const char *icon, const char *title, const char *description,
                            const char *button, const char *action) {
    adw_status_page_set_icon_name(self->status_page, icon);
    adw_status_page_set_title(self->status_page, title);
    adw_status_page_set_description(self->status_page, description);
    gtk_widget_set_visible(GTK_WIDGET(self->status_button), button != NULL);
    if (button) {
        gtk_button_set_label(self->status_button, button);
        gtk_actionable_set_action_name(GTK_ACTIONABLE(self->status_button), action);
    }
    // The next results will replace this page, a frame that draws most of the window: the memory
    // it will draw into, ready while the user types (x11-frames.h).
    if (g_strcmp0(gtk_stack_get_visible_child_name(self->stack), "status") != 0 &&
        gtk_widget_get_realized(GTK_WIDGET(self)))
        m3_x11_frames_touch_heap_in_steps(GTK_WINDOW(self), TRUE);
    m3_stack_show(self->stack, "status");
}

// The banner across the window's top: a message and an optional button. Made anew when its text
// changes, because widgets that were hidden when GTK 4.8 first described the window to assistive
// technology never appear there later.
static void set_banner(M3Window *self, const char *text, const char *button, const char *action) {
    if (g_strcmp0(text, self->banner_text) == 0)
        return;
    g_free(self->banner_text);
    self->banner_text = g_strdup(text);
    reveal(self->banner, text != NULL);
    if (!text) {
        gtk_revealer_set_child(self->banner, NULL);
        return;
    }
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    gtk_widget_add_css_class(box, "m3-banner");
    GtkWidget *label = gtk_label_new(text);
    gtk_label_set_wrap(GTK_LABEL(label), TRUE);
    gtk_widget_set_hexpand(label, TRUE);
    gtk_box_append(GTK_BOX(box), label);
    if (button) {
        GtkWidget *b = gtk_button_new_with_mnemonic(button);
        gtk_widget_set_valign(b, GTK_ALIGN_CENTER);
        gtk_widget_add_css_class(b, "suggested-action");
        gtk_actionable_set_action_name(GTK_ACTIONABLE(b), action);
        gtk_box_append(GTK_BOX(box), b);
    }
    gtk_revealer_set_child(self->banner, box);
}

static void update_progress(M3Window *self) {
    m3_progress p;
    if (self->unreachable || !self->status || !m3_state_progress(self->status, &p)) {
        reveal(self->progress_bar_revealer, FALSE);
        gtk_label_set_text(self->progress_label, "");
        return;
    }
    reveal(self->progress_bar_revealer, TRUE);
    gtk_label_set_text(self->progress_label, p.text);
    gtk_widget_set_visible(GTK_WIDGET(self->progress), !(p.paused && p.fraction < 0));
    if (p.fraction < 0)
        gtk_progress_bar_pulse(self->progress);
    else
        gtk_progress_bar_set_fraction(self->progress, p.fraction);
    gtk_button_set_label(self->pause_button, p.paused ? _("_Resume") : _("_Pause"));
    gtk_button_set_use_underline(self->pause_button, TRUE);
    gtk_actionable_set_action_name(GTK_ACTIONABLE(self->pause_button), p.paused ? "win.resume" : "win.pause");
    g_free(p.text);
}

static void update_view(M3Window *self) {
    update_progress(self);
    const char *text = gtk_editable_get_text(GTK_EDITABLE(self->entry));
    gboolean has_query = self->similar || *text;
    gboolean has_results = self->listed > 0;
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.open", has_results);

    // The banner: the service's error, failed files, folders only rescanned.
    g_autofree char *banner = NULL;
    const char *banner_button = NULL, *banner_action = NULL;
    if (!self->unreachable && self->status)
        banner = m3_state_banner(self->status, &banner_button, &banner_action);
    set_banner(self, banner, banner_button, banner_action);
    if (self->showing_failed)
        return;  // the failed files' page stays until Back

    if (self->unreachable) {
        g_autofree char *desc = g_strdup_printf(
            _("m3search could not reach its indexer service (m3searchd), which finds and reads your "
              "documents. Make sure m3search is installed completely, then try again.\n\n%s"),
            self->unreachable);
        set_status_page(self, "network-offline-symbolic", _("The Search Service Is Not Running"), desc,
                        _("_Try Again"), "win.reconnect");
        return;
    }
    if (!self->status && !has_results) {
        set_status_page(self, "system-search-symbolic", _("Starting the Search Service…"), NULL, NULL, NULL);
        return;
    }
    // A query the service was not ready for, with a model it could not open: missing as well.
    if (self->status && (!m3_state_has_model(self->status) ||
                         (self->not_ready && m3_state_model_missing(self->status)))) {
        set_status_page(self, "dialog-warning-symbolic", _("The Language Model Is Missing"),
                        _("m3search needs the BGE-M3 model (about 2.3 GB) to understand your documents. "
                          "Download it, or choose a copy you already have."),
                        _("_Set Up…"), "app.first-run");
        if (!self->setup_offered && self->status && !m3_state_has_model(self->status)) {
            // The first time the service says it has no model, the assistant opens by itself.
            self->setup_offered = TRUE;
            gtk_widget_activate_action(GTK_WIDGET(self), "app.first-run", NULL);
        }
        return;
    }
    if (self->not_ready) {
        // NotReady with a model configured: the service is still loading it (or opening the
        // index). The query runs when it is ready; the model is not missing.
        set_status_page(self, "system-search-symbolic", _("Loading the Language Model…"),
                        _("The search service is getting ready. Your search runs as soon as it is."), NULL, NULL);
        return;
    }
    if (self->status && !m3_state_has_folders(self->status)) {
        set_status_page(self, "folder-symbolic", _("No Folders Chosen"),
                        _("Choose the folders whose documents you want to find."), _("_Choose Folders…"),
                        "app.preferences");
        return;
    }
    if (!has_query) {
        guint64 indexed = m3_state_files_indexed(self->status);
        if (indexed == 0 && m3_state_is_busy(self->status))
            set_status_page(self, "folder-documents-symbolic", _("Indexing Your Documents"),
                            _("Results appear as soon as the first files are read."), NULL, NULL);
        else if (indexed == 0)
            set_status_page(self, "folder-documents-symbolic", _("Nothing Indexed Yet"),
                            _("The chosen folders hold no documents that m3search can read yet."),
                            _("_Choose Folders…"), "app.preferences");
        else {
            g_autofree char *n = g_strdup_printf("%" G_GUINT64_FORMAT, indexed);
            g_autofree char *desc = g_strdup_printf(
                g_dngettext(NULL, "%s file is indexed. Type in any language.",
                            "%s files are indexed. Type in any language.", (gulong)indexed), n);
            set_status_page(self, "system-search-symbolic", _("Search Your Documents"), desc, NULL, NULL);
        }
        return;
    }
    if (!has_results && !self->searched) {
        // The query's first answer is on its way (the list was emptied): no stale or blank rows.
        set_status_page(self, "system-search-symbolic", _("Searching…"), NULL, NULL, NULL);
        return;
    }
    if (!has_results) {
        g_autofree char *desc = self->similar
            ? g_strdup(_("No other indexed file is like this one."))
            : g_strdup_printf(_("Nothing matched “%s”. Try other words or fewer filters."), text);
        set_status_page(self, "edit-find-symbolic", _("No Results"), desc, NULL, NULL);
        return;
    }
    m3_stack_show(self->stack, "results");
}

// ---- Actions on the selected result ----

// Why a file did not open, short enough for a toast: GIO's messages repeat the whole path ("Error
// when getting information for file “/home/…/x.txt”: No such file or directory"), which cut the
// reason off; the file is named once, by its name, and the reason is the message's last part.
static char *open_failed_text(const char *name, const GError *error) {
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return g_strdup_printf(_("“%s” no longer exists"), name);
    const char *reason = error->message;
    const char *colon = g_strrstr(reason, ": ");
    if (colon && colon[2])
        reason = colon + 2;
    return g_strdup_printf(_("Could not open “%s”: %s"), name, reason);
}

static void launched_cb(GObject *source, GAsyncResult *res, gpointer user) {
    (void)source;
    g_autoptr(GError) error = NULL;
    char *name = user;
    if (!g_app_info_launch_default_for_uri_finish(res, &error) && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        GApplication *app = g_application_get_default();
        GtkWindow *win = app ? gtk_application_get_active_window(GTK_APPLICATION(app)) : NULL;
        if (win && M3_IS_WINDOW(win)) {
            g_autofree char *text = open_failed_text(name, error);
            toast(M3_WINDOW(win), text);
        }
    }
    g_free(name);
}

static void open_uri(M3Window *self, const char *uri, const char *name) {
    GdkAppLaunchContext *ctx = gdk_display_get_app_launch_context(gtk_widget_get_display(GTK_WIDGET(self)));
    g_app_info_launch_default_for_uri_async(uri, G_APP_LAUNCH_CONTEXT(ctx), NULL, launched_cb, g_strdup(name));
    g_object_unref(ctx);
}

static void open_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    M3Result *r = selected(self);
    if (!r)
        return;
    g_autofree char *name = m3_result_dup_name(r);
    open_uri(self, m3_result_get_uri(r), name);
}

typedef struct show_call {
    M3Window *self;
    char *folder_uri, *name;
} show_call;

static void show_items_cb(GObject *source, GAsyncResult *res, gpointer user) {
    show_call *call = user;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
    // No file manager implements FileManager1: open the folder itself instead.
    if (!reply && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        open_uri(call->self, call->folder_uri, call->name);
    g_free(call->folder_uri);
    g_free(call->name);
    g_free(call);
}

static void show_in_folder_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    M3Result *r = selected(self);
    GDBusConnection *bus = self->indexer ? g_dbus_proxy_get_connection(G_DBUS_PROXY(self->indexer)) : NULL;
    if (!r)
        return;
    g_autofree char *dir = g_path_get_dirname(m3_result_get_path(r));
    show_call *call = g_new(show_call, 1);
    call->self = self;
    call->folder_uri = g_filename_to_uri(dir, NULL, NULL);
    call->name = m3_result_dup_folder(r);
    if (!bus) {
        open_uri(self, call->folder_uri, call->name);
        g_free(call->folder_uri), g_free(call->name), g_free(call);
        return;
    }
    const char *uris[] = {m3_result_get_uri(r), NULL};
    g_dbus_connection_call(bus, "org.freedesktop.FileManager1", "/org/freedesktop/FileManager1",
                           "org.freedesktop.FileManager1", "ShowItems", g_variant_new("(^ass)", uris, ""), NULL,
                           G_DBUS_CALL_FLAGS_NONE, 10000, self->life, show_items_cb, call);
}

static void find_similar_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    M3Result *r = selected(self);
    if (r)
        m3_window_find_similar(self, m3_result_get_uri(r));
}

static void copy_path_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    M3Result *r = selected(self);
    if (!r)
        return;
    // Clipboard text is UTF-8: a name that is not shows in its display form.
    g_autofree char *text = g_filename_display_name(m3_result_get_path(r));
    gdk_clipboard_set_text(gtk_widget_get_clipboard(widget), text);
    toast(self, _("Path copied"));
}

static void focus_search_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    gtk_widget_grab_focus(GTK_WIDGET(self->entry));
    gtk_editable_select_region(GTK_EDITABLE(self->entry), 0, -1);
}

static void clear_similar_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    if (!self->similar)
        return;
    g_clear_pointer(&self->similar, g_free);
    set_similar_chip(self, NULL, NULL);
    gtk_widget_grab_focus(GTK_WIDGET(self->entry));
    run_query(self);
}

static void simple_call_cb(GObject *source, GAsyncResult *res, gpointer user) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), res, &error);
    if (!reply && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        call_failed(M3_WINDOW(user), error, _("The search service refused"));
}

static void service_call(M3Window *self, const char *method, GVariant *args) {
    if (self->indexer)
        g_dbus_proxy_call(G_DBUS_PROXY(self->indexer), method, args, G_DBUS_CALL_FLAGS_NONE, -1, self->life,
                          simple_call_cb, self);
}

static void pause_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)param;
    service_call(M3_WINDOW(widget), g_str_equal(action, "win.pause") ? "Pause" : "Resume", NULL);
}

static void reconnect_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    set_status_page(self, "system-search-symbolic", _("Starting the Search Service…"), NULL, NULL, NULL);
    refresh_status(self);
}

static void retry_failed_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action;
    const char *path = param ? g_variant_get_string(param, NULL) : "";
    service_call(M3_WINDOW(widget), "Reindex", g_variant_new("(s)", path));
    toast(M3_WINDOW(widget), *path ? _("The file will be read again") : _("Failed files will be read again"));
}

static void failed_files_cb(GObject *source, GAsyncResult *res, gpointer user) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) files = NULL;
    gboolean ok = m3_dbus_indexer1_call_failed_files_finish(M3_DBUS_INDEXER1(source), &files, res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    M3Window *self = user;
    if (!ok) {
        call_failed(self, error, _("Listing the failed files failed"));
        return;
    }
    // Shown in the window rather than in a dialog: GTK 4.8's accessibility code crashes when a dialog
    // goes away while assistive technology listens.
    GtkWidget *child;
    while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->failed_list))))
        gtk_list_box_remove(self->failed_list, child);
    GVariantIter it;
    const char *path, *reason;
    guint n = 0;
    g_variant_iter_init(&it, files);
    while (g_variant_iter_next(&it, "(&s&s)", &path, &reason)) {
        GtkWidget *row = adw_action_row_new();
        g_autofree char *display = m3_display_path(path);
        g_autofree char *escaped = g_markup_escape_text(display, -1);
        g_autofree char *why = g_markup_escape_text(reason, -1);
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), escaped);
        adw_action_row_set_subtitle(ADW_ACTION_ROW(row), why);
        GtkWidget *retry = gtk_button_new_from_icon_name("view-refresh-symbolic");
        gtk_widget_set_valign(retry, GTK_ALIGN_CENTER);
        gtk_widget_set_tooltip_text(retry, _("Read Again"));
        gtk_accessible_update_property(GTK_ACCESSIBLE(retry), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Read Again"), -1);
        gtk_actionable_set_action_name(GTK_ACTIONABLE(retry), "win.retry-failed");
        gtk_actionable_set_action_target(GTK_ACTIONABLE(retry), "s", path);
        gtk_widget_add_css_class(retry, "flat");
        adw_action_row_add_suffix(ADW_ACTION_ROW(row), retry);
        gtk_list_box_append(self->failed_list, row);
        n++;
    }
    if (!n) {
        GtkWidget *row = adw_action_row_new();
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), _("Every file was read."));
        gtk_list_box_append(self->failed_list, row);
    }
    self->showing_failed = TRUE;
    m3_stack_show(self->stack, "failed");
}

static void hide_failed_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    self->showing_failed = FALSE;
    update_view(self);
    gtk_widget_grab_focus(GTK_WIDGET(self->entry));
}

static void show_failed_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    if (self->indexer)
        m3_dbus_indexer1_call_failed_files(self->indexer, self->life, failed_files_cb, self);
}

// ---- Filters ----

static void folder_chosen_cb(GtkNativeDialog *dialog, int response, M3Window *self) {
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        g_free(self->folder_filter);
        self->folder_filter = file ? g_file_get_path(file) : NULL;
        if (self->folder_filter) {
            g_autofree char *display = g_filename_display_basename(self->folder_filter);
            gtk_button_set_label(self->folder_button, display);
        }
        run_query(self);
    }
    g_object_unref(dialog);
}

static void choose_folder_filter_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    GtkFileChooserNative *dialog = gtk_file_chooser_native_new(
        _("Search in Folder"), GTK_WINDOW(widget), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Select"), _("_Cancel"));
    gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dialog), TRUE);
    g_signal_connect(dialog, "response", G_CALLBACK(folder_chosen_cb), widget);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

static void clear_folder_filter_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    g_clear_pointer(&self->folder_filter, g_free);
    gtk_button_set_label(self->folder_button, _("Any folder"));
    run_query(self);
}

// The ranking popover's sliders are this window's weights, starting from the "weights" setting (the
// default ranking, also the service's default) and following it whenever it changes (Preferences):
// moving a slider adjusts this window until the default changes or Reset to Defaults.
static void load_default_weights(M3Window *self) {
    g_autoptr(GVariant) w = g_settings_get_value(self->settings, "weights");
    gsize n = 0;
    const double *v = g_variant_get_fixed_array(w, &n, sizeof(double));
    GtkRange *scales[3] = {self->wd_scale, self->ws_scale, self->wc_scale};
    for (gsize i = 0; i < 3; i++) {
        // One query for the three, not one per slider.
        g_signal_handlers_block_by_func(scales[i], run_query, self);
        gtk_range_set_value(scales[i], i < n ? v[i] : 0.0);
        g_signal_handlers_unblock_by_func(scales[i], run_query, self);
    }
}

static void weights_changed_cb(GSettings *settings, const char *key, M3Window *self) {
    (void)settings, (void)key;
    load_default_weights(self);
    run_query(self);
}

// The weights count only when the three scores are combined: the sliders are off in the other
// modes, and their tooltip says why.
static void mode_changed_cb(M3Window *self) {
    gboolean hybrid = gtk_drop_down_get_selected(self->mode_drop) == 0;
    GtkWidget *scales[3] = {GTK_WIDGET(self->wd_scale), GTK_WIDGET(self->ws_scale), GTK_WIDGET(self->wc_scale)};
    for (int i = 0; i < 3; i++) {
        gtk_widget_set_sensitive(scales[i], hybrid);
        gtk_widget_set_tooltip_text(scales[i], hybrid ? NULL : _("Weights apply only when ranking by all three"));
    }
}

static void reset_ranking_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3Window *self = M3_WINDOW(widget);
    g_signal_handlers_block_by_func(self->mode_drop, run_query, self);
    gtk_drop_down_set_selected(self->mode_drop, 0);
    g_signal_handlers_unblock_by_func(self->mode_drop, run_query, self);
    load_default_weights(self);
    run_query(self);
}

// ---- List, keyboard, context menu ----

static void setup_row_cb(GtkSignalListItemFactory *factory, GtkListItem *item, M3Window *self);

static void row_pressed_cb(GtkGestureClick *gesture, int n_press, double x, double y, M3Window *self) {
    (void)n_press;
    GtkWidget *row = gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(gesture));
    GtkListItem *item = g_object_get_data(G_OBJECT(row), "m3-list-item");
    if (!item || gtk_list_item_get_position(item) == GTK_INVALID_LIST_POSITION)
        return;
    gtk_single_selection_set_selected(self->selection, gtk_list_item_get_position(item));
    graphene_point_t p;
    if (!gtk_widget_compute_point(row, GTK_WIDGET(self->list), &GRAPHENE_POINT_INIT((float)x, (float)y), &p))
        return;
    gtk_popover_set_pointing_to(GTK_POPOVER(self->context_menu), &(GdkRectangle){(int)p.x, (int)p.y, 1, 1});
    gtk_popover_popup(GTK_POPOVER(self->context_menu));
}

// Menu or Shift+F10 in the results: the selected result's context menu, at its row (the keyboard's
// right click).
static gboolean context_menu_key_cb(GtkWidget *list, GVariant *args, gpointer user) {
    (void)args;
    M3Window *self = user;
    guint pos = gtk_single_selection_get_selected(self->selection);
    if (pos == GTK_INVALID_LIST_POSITION)
        return FALSE;
    GdkRectangle at = {0, 0, 1, 1};
    for (GtkWidget *cell = gtk_widget_get_first_child(list); cell; cell = gtk_widget_get_next_sibling(cell)) {
        GtkWidget *row = gtk_widget_get_first_child(cell);
        GtkListItem *item = row ? g_object_get_data(G_OBJECT(row), "m3-list-item") : NULL;
        graphene_rect_t b;
        if (item && gtk_list_item_get_position(item) == pos && gtk_widget_compute_bounds(cell, list, &b)) {
            gboolean rtl = gtk_widget_get_direction(list) == GTK_TEXT_DIR_RTL;
            at = (GdkRectangle){(int)(rtl ? b.origin.x + b.size.width - 48 : b.origin.x + 48),
                                (int)(b.origin.y + b.size.height / 2), 1, 1};
            break;
        }
    }
    gtk_popover_set_pointing_to(GTK_POPOVER(self->context_menu), &at);
    gtk_popover_popup(GTK_POPOVER(self->context_menu));
    return TRUE;
}

static void setup_row_cb(GtkSignalListItemFactory *factory, GtkListItem *item, M3Window *self) {
    (void)factory;
    GtkWidget *row = m3_result_row_new();
    g_object_set_data(G_OBJECT(row), "m3-list-item", item);
    g_object_set_data(G_OBJECT(row), "m3-window", self);
    GtkGesture *click = gtk_gesture_click_new();
    gtk_gesture_single_set_button(GTK_GESTURE_SINGLE(click), GDK_BUTTON_SECONDARY);
    g_signal_connect(click, "pressed", G_CALLBACK(row_pressed_cb), self);
    gtk_widget_add_controller(row, GTK_EVENT_CONTROLLER(click));
    gtk_list_item_set_child(item, row);
}

static void show_slot(M3Window *self, M3ResultSlot *slot, GtkWidget *row) {
    gint64 t0 = self->trace ? g_get_monotonic_time() : 0;
    m3_result_row_set_result(M3_RESULT_ROW(row), m3_result_slot_get_result(slot));
    if (self->trace) {
        self->trace_bind_us += g_get_monotonic_time() - t0;
        self->trace_binds++;
    }
}

// A bound row follows its slot's result (a new reply puts results into the listed slots).
static void slot_changed_cb(M3ResultSlot *slot, GParamSpec *pspec, GtkWidget *row) {
    (void)pspec;
    show_slot(g_object_get_data(G_OBJECT(row), "m3-window"), slot, row);
}

static void bind_row_cb(GtkSignalListItemFactory *factory, GtkListItem *item, M3Window *self) {
    (void)factory;
    GtkWidget *row = gtk_list_item_get_child(item);
    M3ResultSlot *slot = gtk_list_item_get_item(item);
    show_slot(self, slot, row);
    g_signal_connect_object(slot, "notify::result", G_CALLBACK(slot_changed_cb), row, 0);
}

static void unbind_row_cb(GtkSignalListItemFactory *factory, GtkListItem *item, M3Window *self) {
    (void)factory, (void)self;
    g_signal_handlers_disconnect_by_func(gtk_list_item_get_item(item), slot_changed_cb,
                                         gtk_list_item_get_child(item));
}

static void selection_changed_cb(M3Window *self) {
    gint64 t0 = self->trace ? g_get_monotonic_time() : 0;
    m3_preview_set_result(self->preview, selected(self));
    if (self->trace)
        self->trace_preview_us += g_get_monotonic_time() - t0;
    gboolean any = selected(self) != NULL;
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.open", any);
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.show-in-folder", any);
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.find-similar", any);
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.copy-path", any);
}

static void list_activate_cb(GtkListView *list, guint position, M3Window *self) {
    (void)list;
    gtk_single_selection_set_selected(self->selection, position);
    gtk_widget_activate_action(GTK_WIDGET(self), "win.open", NULL);
}

// Moves the keyboard focus onto the selected result's row. The list view itself, focused from
// outside, would focus the row it last had focus on (GTK 4.8 tracks that apart from the selection:
// a selection the window sets, as a right click on a row does, leaves it where it was), and its
// next Down would move on from there, not from the row the preview shows.
static void focus_selected_row(M3Window *self) {
    guint pos = gtk_single_selection_get_selected(self->selection);
    if (pos == GTK_INVALID_LIST_POSITION) {
        gtk_widget_child_focus(GTK_WIDGET(self->list), GTK_DIR_TAB_FORWARD);
        return;
    }
    // Scrolling to the row makes the list view create its widget when it is far out of view.
    gtk_widget_activate_action(GTK_WIDGET(self->list), "list.scroll-to-item", "u", pos);
    for (GtkWidget *cell = gtk_widget_get_first_child(GTK_WIDGET(self->list)); cell;
         cell = gtk_widget_get_next_sibling(cell)) {
        GtkWidget *row = gtk_widget_get_first_child(cell);
        GtkListItem *item = row ? g_object_get_data(G_OBJECT(row), "m3-list-item") : NULL;
        if (item && gtk_list_item_get_position(item) == pos && gtk_widget_grab_focus(cell))
            return;
    }
    gtk_widget_child_focus(GTK_WIDGET(self->list), GTK_DIR_TAB_FORWARD);
}

// Down in the search entry moves into the results, onto the selected (first) one; Enter opens it.
static gboolean entry_key_cb(GtkEventControllerKey *key, guint keyval, guint code, GdkModifierType state, M3Window *self) {
    (void)key, (void)code, (void)state;
    if ((keyval == GDK_KEY_Down || keyval == GDK_KEY_KP_Down) &&
        self->listed > 0 &&
        g_str_equal(gtk_stack_get_visible_child_name(self->stack), "results")) {
        focus_selected_row(self);
        return TRUE;
    }
    return FALSE;
}

// Escape anywhere in the window: leaves similar mode.
static gboolean window_key_cb(GtkEventControllerKey *key, guint keyval, guint code, GdkModifierType state, M3Window *self) {
    (void)key, (void)code, (void)state;
    if (keyval == GDK_KEY_Escape && self->similar) {
        gtk_widget_activate_action(GTK_WIDGET(self), "win.clear-similar", NULL);
        return TRUE;
    }
    return FALSE;
}

static void entry_activate_cb(M3Window *self) {
    if (selected(self))
        gtk_widget_activate_action(GTK_WIDGET(self), "win.open", NULL);
}

static void entry_stop_cb(M3Window *self) {
    if (self->similar)
        gtk_widget_activate_action(GTK_WIDGET(self), "win.clear-similar", NULL);
    else
        gtk_editable_set_text(GTK_EDITABLE(self->entry), "");
}

// ---- Main-loop gap measurement (M3SEARCH_TRACE) ----

static gint64 thread_cpu_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

// Page faults the calling thread has taken (a frame that touches fresh memory pays for each).
static gint64 thread_faults(void) {
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_minflt + ru.ru_majflt : 0;
}

static gboolean trace_tick_cb(gpointer user) {
    M3Window *self = user;
    gint64 now = g_get_monotonic_time(), last = self->trace_last_tick_us, gap = now - last, cpu = thread_cpu_us();
    gint64 gap_cpu = cpu - self->trace_last_cpu_us;
    if (!self->trace_started) {  // measured from the first keystroke on: start-up is not typing
        self->trace_last_tick_us = now;
        self->trace_last_cpu_us = cpu;
        return G_SOURCE_CONTINUE;
    }
    if (last && cpu - self->trace_last_cpu_us > self->max_gap_cpu_us)
        self->max_gap_cpu_us = cpu - self->trace_last_cpu_us;
    self->trace_last_cpu_us = cpu;
    if (last && gap > self->trace_max_gap_us)
        self->trace_max_gap_us = gap;
    if (last && self->switch_frame_end_us <= last && gap > self->max_gap_steady_us)
        self->max_gap_steady_us = gap;
    if (last && gap > 16000 && self->trace_verbose)
        g_printerr("m3search-trace: gap %.1f ms at %.3f s (main-thread CPU %.1f ms, %s)\n", gap / 1000.0,
                   now / 1e6, gap_cpu / 1000.0,
                   self->frame_start_us >= last ? "with a frame" : "no frame");
    // A gap that held no frame was spent elsewhere: our callbacks, D-Bus replies, input handling.
    if (last && self->frame_start_us < last && gap > self->max_gap_outside_us)
        self->max_gap_outside_us = gap;
    self->trace_last_tick_us = now;
    return G_SOURCE_CONTINUE;
}

static void frame_before_paint_cb(GdkFrameClock *clock, M3Window *self) {
    (void)clock;
    self->frame_start_us = self->frame_layout_us = self->frame_paint_us = g_get_monotonic_time();
    if (self->trace_verbose) {
        self->frame_start_cpu_us = thread_cpu_us();
        self->frame_start_faults = thread_faults();
    }
    // A frame that shows another page than the last frame did (compared here, not from the
    // stack's notifications: the page may change and change back between two frames).
    GtkWidget *page = gtk_stack_get_visible_child(self->stack);
    self->trace_switched = page != self->trace_page;
    self->trace_page = page;
}

static void frame_layout_cb(GdkFrameClock *clock, M3Window *self) {
    (void)clock;
    self->frame_layout_us = self->frame_paint_us = g_get_monotonic_time();  // measure and allocate done
}

static void frame_paint_cb(GdkFrameClock *clock, M3Window *self) {
    (void)clock;
    self->frame_paint_us = g_get_monotonic_time();  // snapshot and rendering done
}

static void frame_after_paint_cb(GdkFrameClock *clock, M3Window *self) {
    gint64 now = g_get_monotonic_time(), frame = now - self->frame_start_us;
    self->frame_end_us = now;
    if (!self->trace_started) {  // start-up (its first frame draws the whole window) is not typing
        self->trace_drawn = TRUE;
        return;
    }
    self->frames_over_16 += frame > 16000;
    gboolean switched = self->trace_switched;
    if (switched) {
        self->switch_frame_end_us = now;
    } else {
        self->frames_over_16_steady += frame > 16000;
        if (frame > self->max_frame_steady_us)
            self->max_frame_steady_us = frame;
    }
    if (self->trace_frames)
        g_printerr("m3search-trace: every frame: from %.4f s to %.4f s, main-thread CPU %.2f ms\n",
                   self->frame_start_us / 1e6, now / 1e6, (thread_cpu_us() - self->frame_start_cpu_us) / 1000.0);
    if ((frame > 16000 || switched) && self->trace_verbose)
        g_printerr("m3search-trace: frame %.1f ms at %.3f s (layout %.1f ms, drawing %.1f ms; main-thread CPU %.1f ms, "
                   "%" G_GINT64_FORMAT " page faults; frame %" G_GINT64_FORMAT ")%s\n", frame / 1000.0, now / 1e6,
                   (self->frame_layout_us - self->frame_start_us) / 1000.0,
                   (self->frame_paint_us - self->frame_layout_us) / 1000.0,
                   (thread_cpu_us() - self->frame_start_cpu_us) / 1000.0, thread_faults() - self->frame_start_faults,
                   gdk_frame_clock_get_frame_counter(clock), switched ? ", a page switch" : "");
    if (frame > self->max_frame_us) {
        self->max_frame_us = frame;
        self->max_frame_layout_us = self->frame_layout_us - self->frame_start_us;
        self->max_frame_paint_us = self->frame_paint_us - self->frame_layout_us;
    }
}

// The frame clock exists once the window is realized; "after" handlers run after GTK's own.
static void trace_realize_cb(GtkWidget *widget, gpointer user) {
    (void)user;
    M3Window *self = M3_WINDOW(widget);
    GdkFrameClock *clock = gtk_widget_get_frame_clock(widget);
    g_signal_connect(clock, "before-paint", G_CALLBACK(frame_before_paint_cb), self);
    g_signal_connect_after(clock, "layout", G_CALLBACK(frame_layout_cb), self);
    g_signal_connect_after(clock, "paint", G_CALLBACK(frame_paint_cb), self);
    g_signal_connect_after(clock, "after-paint", G_CALLBACK(frame_after_paint_cb), self);
}

// ---- Narrow windows ----

// Whether the panes need fitting to the paned's width: the preview shown only with room for it
// beside the list, and then at least PREVIEW_MIN_WIDTH wide, the list as wide as wanted otherwise.
static gboolean panes_fit(M3Window *self, int *position) {
    int width = gtk_widget_get_width(GTK_WIDGET(self->paned));
    gboolean room = width >= LIST_MIN_WIDTH + PREVIEW_MIN_WIDTH;
    *position = MAX(LIST_MIN_WIDTH, MIN(self->wanted_position, width - PREVIEW_MIN_WIDTH));
    if (room != gtk_widget_get_visible(self->preview_pane))
        return FALSE;
    return !room || gtk_paned_get_position(self->paned) == *position;
}

static gboolean fit_panes_cb(gpointer user) {
    M3Window *self = user;
    self->fit_idle = 0;
    int position;
    if (panes_fit(self, &position))
        return G_SOURCE_REMOVE;
    int width = gtk_widget_get_width(GTK_WIDGET(self->paned));
    gboolean room = width >= LIST_MIN_WIDTH + PREVIEW_MIN_WIDTH;
    gtk_widget_set_visible(self->preview_pane, room);
    if (room) {
        self->setting_position = TRUE;
        gtk_paned_set_position(self->paned, position);
        self->setting_position = FALSE;
    }
    return G_SOURCE_REMOVE;
}

// A position the user chose (dragging the handle) is the one to come back to in a wider window;
// the paned's own clamping in a narrow one, and fit_panes_cb's, are not.
static void position_changed_cb(M3Window *self) {
    int width = gtk_widget_get_width(GTK_WIDGET(self->paned)), position = gtk_paned_get_position(self->paned);
    if (!self->setting_position && width >= LIST_MIN_WIDTH + PREVIEW_MIN_WIDTH &&
        position <= width - PREVIEW_MIN_WIDTH)
        self->wanted_position = position;
}

// After each layout: a change of the window's width is fitted in an idle (not within the layout).
static void m3_window_size_allocate(GtkWidget *widget, int width, int height, int baseline) {
    GTK_WIDGET_CLASS(m3_window_parent_class)->size_allocate(widget, width, height, baseline);
    M3Window *self = M3_WINDOW(widget);
    int position;
    if (!self->fit_idle && !panes_fit(self, &position))
        self->fit_idle = g_idle_add(fit_panes_cb, self);
}

// ---- Object ----

static gboolean close_request_cb(GtkWindow *window, gpointer user) {
    (void)user;
    M3Window *self = M3_WINDOW(window);
    int w, h;
    gtk_window_get_default_size(window, &w, &h);
    g_settings_set_int(self->settings, "window-width", w);
    g_settings_set_int(self->settings, "window-height", h);
    g_settings_set_boolean(self->settings, "window-maximized", gtk_window_is_maximized(window));
    return FALSE;
}

static void m3_window_dispose(GObject *object) {
    M3Window *self = M3_WINDOW(object);
    if (self->trace) {
        g_printerr("m3search-trace: longest main-loop gap %.1f ms; longest frame %.1f ms (layout %.1f ms, drawing "
                   "%.1f ms), %" G_GINT64_FORMAT " frames over 16 ms; longest gap without a frame %.1f ms\n",
                   self->trace_max_gap_us / 1000.0, self->max_frame_us / 1000.0, self->max_frame_layout_us / 1000.0,
                   self->max_frame_paint_us / 1000.0, self->frames_over_16, self->max_gap_outside_us / 1000.0);
        GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(self));
        if (clock)
            g_signal_handlers_disconnect_by_data(clock, self);
        g_clear_handle_id(&self->trace_timer, g_source_remove);
    }
    if (self->query)
        g_cancellable_cancel(self->query);
    g_cancellable_cancel(self->life);
    g_clear_object(&self->query);
    drop_pending(self);
    g_clear_handle_id(&self->refresh_timer, g_source_remove);
    g_clear_handle_id(&self->retry_timer, g_source_remove);
    g_clear_handle_id(&self->fit_idle, g_source_remove);
    if (self->settings)
        g_signal_handlers_disconnect_by_data(self->settings, self);
    if (self->indexer)
        g_signal_handlers_disconnect_by_data(self->indexer, self);
    g_clear_object(&self->indexer);
    g_clear_pointer(&self->context_menu, gtk_widget_unparent);
    gtk_widget_dispose_template(GTK_WIDGET(object), M3_TYPE_WINDOW);
    G_OBJECT_CLASS(m3_window_parent_class)->dispose(object);
}

static void m3_window_finalize(GObject *object) {
    M3Window *self = M3_WINDOW(object);
    g_clear_object(&self->life);
    g_clear_object(&self->settings);
    drop_pending(self);
    g_clear_object(&self->results);
    g_clear_object(&self->selection);
    g_clear_pointer(&self->status, g_variant_unref);
    g_free(self->similar);
    g_free(self->folder_filter);
    g_free(self->unreachable);
    g_free(self->banner_text);
    G_OBJECT_CLASS(m3_window_parent_class)->finalize(object);
}

static void m3_window_class_init(M3WindowClass *klass) {
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->dispose = m3_window_dispose;
    G_OBJECT_CLASS(klass)->finalize = m3_window_finalize;
    wc->size_allocate = m3_window_size_allocate;
    g_type_ensure(M3_TYPE_PREVIEW);
    gtk_widget_class_set_template_from_resource(wc, "/org/m3search/Search/window.ui");
#define CHILD(name) gtk_widget_class_bind_template_child(wc, M3Window, name)
    CHILD(entry), CHILD(similar_chip), CHILD(type_drop), CHILD(age_drop);
    CHILD(mode_drop), CHILD(folder_button), CHILD(wd_scale), CHILD(ws_scale), CHILD(wc_scale);
    CHILD(banner), CHILD(toasts), CHILD(stack), CHILD(list);
    CHILD(status_page), CHILD(status_button), CHILD(paned), CHILD(preview_pane), CHILD(preview);
    CHILD(progress_bar_revealer);
    CHILD(progress_label), CHILD(progress), CHILD(pause_button), CHILD(result_menu), CHILD(failed_list);
#undef CHILD
    gtk_widget_class_install_action(wc, "win.open", NULL, open_action);
    gtk_widget_class_install_action(wc, "win.show-in-folder", NULL, show_in_folder_action);
    gtk_widget_class_install_action(wc, "win.find-similar", NULL, find_similar_action);
    gtk_widget_class_install_action(wc, "win.copy-path", NULL, copy_path_action);
    gtk_widget_class_install_action(wc, "win.focus-search", NULL, focus_search_action);
    gtk_widget_class_install_action(wc, "win.clear-similar", NULL, clear_similar_action);
    gtk_widget_class_install_action(wc, "win.pause", NULL, pause_action);
    gtk_widget_class_install_action(wc, "win.resume", NULL, pause_action);
    gtk_widget_class_install_action(wc, "win.reconnect", NULL, reconnect_action);
    gtk_widget_class_install_action(wc, "win.retry-failed", "s", retry_failed_action);
    gtk_widget_class_install_action(wc, "win.show-failed", NULL, show_failed_action);
    gtk_widget_class_install_action(wc, "win.hide-failed", NULL, hide_failed_action);
    gtk_widget_class_install_action(wc, "win.choose-folder-filter", NULL, choose_folder_filter_action);
    gtk_widget_class_install_action(wc, "win.clear-folder-filter", NULL, clear_folder_filter_action);
    gtk_widget_class_install_action(wc, "win.reset-ranking", NULL, reset_ranking_action);
}

static void m3_window_init(M3Window *self) {
    gtk_widget_init_template(GTK_WIDGET(self));
    self->life = g_cancellable_new();
    self->settings = g_settings_new("org.m3search.Search");
    self->results = g_list_store_new(M3_TYPE_RESULT_SLOT);
    self->selection = gtk_single_selection_new(G_LIST_MODEL(g_object_ref(self->results)));
    gtk_single_selection_set_autoselect(self->selection, TRUE);
    GtkListItemFactory *factory = gtk_signal_list_item_factory_new();
    g_signal_connect(factory, "setup", G_CALLBACK(setup_row_cb), self);
    g_signal_connect(factory, "bind", G_CALLBACK(bind_row_cb), self);
    g_signal_connect(factory, "unbind", G_CALLBACK(unbind_row_cb), self);
    gtk_list_view_set_factory(self->list, factory);
    g_object_unref(factory);
    gtk_list_view_set_model(self->list, GTK_SELECTION_MODEL(self->selection));
    g_signal_connect(self->list, "activate", G_CALLBACK(list_activate_cb), self);
    g_signal_connect_swapped(self->selection, "notify::selected-item", G_CALLBACK(selection_changed_cb), self);
    selection_changed_cb(self);

    self->context_menu = gtk_popover_menu_new_from_model(self->result_menu);
    gtk_widget_set_parent(self->context_menu, GTK_WIDGET(self->list));
    gtk_popover_set_has_arrow(GTK_POPOVER(self->context_menu), FALSE);
    gtk_widget_set_halign(self->context_menu, GTK_ALIGN_START);
    GtkEventController *menu_keys = gtk_shortcut_controller_new();
    gtk_shortcut_controller_add_shortcut(
        GTK_SHORTCUT_CONTROLLER(menu_keys),
        gtk_shortcut_new(gtk_alternative_trigger_new(gtk_keyval_trigger_new(GDK_KEY_Menu, 0),
                                                     gtk_keyval_trigger_new(GDK_KEY_F10, GDK_SHIFT_MASK)),
                         gtk_callback_action_new(context_menu_key_cb, self, NULL)));
    gtk_widget_add_controller(GTK_WIDGET(self->list), menu_keys);

    gtk_window_set_focus(GTK_WINDOW(self), GTK_WIDGET(self->entry));  // typing starts a search at once
    gtk_search_entry_set_search_delay(self->entry, 0);  // a newer query cancels the older: no debounce
    gtk_search_entry_set_key_capture_widget(self->entry, GTK_WIDGET(self));
    g_signal_connect_swapped(self->entry, "search-changed", G_CALLBACK(search_changed_cb), self);
    g_signal_connect_swapped(self->entry, "activate", G_CALLBACK(entry_activate_cb), self);
    g_signal_connect_swapped(self->entry, "stop-search", G_CALLBACK(entry_stop_cb), self);
    GtkEventController *keys = gtk_event_controller_key_new();
    g_signal_connect(keys, "key-pressed", G_CALLBACK(entry_key_cb), self);
    gtk_widget_add_controller(GTK_WIDGET(self->entry), keys);
    keys = gtk_event_controller_key_new();
    // Capture: the list view would otherwise take Escape for itself.
    gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
    g_signal_connect(keys, "key-pressed", G_CALLBACK(window_key_cb), self);
    gtk_widget_add_controller(GTK_WIDGET(self), keys);

    self->wanted_position = gtk_paned_get_position(self->paned);
    g_signal_connect_swapped(self->paned, "notify::position", G_CALLBACK(position_changed_cb), self);

    load_default_weights(self);
    g_signal_connect(self->settings, "changed::weights", G_CALLBACK(weights_changed_cb), self);
    g_signal_connect_swapped(self->type_drop, "notify::selected", G_CALLBACK(run_query), self);
    g_signal_connect_swapped(self->age_drop, "notify::selected", G_CALLBACK(run_query), self);
    g_signal_connect_swapped(self->mode_drop, "notify::selected", G_CALLBACK(mode_changed_cb), self);
    g_signal_connect_swapped(self->mode_drop, "notify::selected", G_CALLBACK(run_query), self);
    mode_changed_cb(self);
    g_signal_connect_swapped(self->wd_scale, "value-changed", G_CALLBACK(run_query), self);
    g_signal_connect_swapped(self->ws_scale, "value-changed", G_CALLBACK(run_query), self);
    g_signal_connect_swapped(self->wc_scale, "value-changed", G_CALLBACK(run_query), self);

    gtk_window_set_default_size(GTK_WINDOW(self), g_settings_get_int(self->settings, "window-width"),
                                g_settings_get_int(self->settings, "window-height"));
    if (g_settings_get_boolean(self->settings, "window-maximized"))
        gtk_window_maximize(GTK_WINDOW(self));
    g_signal_connect(self, "close-request", G_CALLBACK(close_request_cb), NULL);
    m3_x11_frames_keep_pool(GTK_WINDOW(self));
    m3_text_warm_up(GTK_WINDOW(self));
    g_signal_connect_after(self, "realize", G_CALLBACK(prebuild_realize_cb), NULL);

    const char *trace = g_getenv("M3SEARCH_TRACE");
    self->trace = trace && (*trace == '1' || *trace == '2' || *trace == '3');
    self->trace_verbose = trace && (*trace == '2' || *trace == '3');
    self->trace_frames = trace && *trace == '3';
    if (self->trace) {
        self->trace_timer = g_timeout_add(1, trace_tick_cb, self);
        g_signal_connect(self, "realize", G_CALLBACK(trace_realize_cb), NULL);
    }

    m3_dbus_indexer1_proxy_new_for_bus(G_BUS_TYPE_SESSION, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                       "org.m3search.Indexer", "/org/m3search/Indexer", self->life,
                                       proxy_ready_cb, self);
    set_similar_chip(self, NULL, NULL);
    update_view(self);
}

M3Window *m3_window_new(GtkApplication *app) {
    return g_object_new(M3_TYPE_WINDOW, "application", app, NULL);
}

void m3_window_search(M3Window *self, const char *text) {
    if (self->similar) {
        g_clear_pointer(&self->similar, g_free);
        set_similar_chip(self, NULL, NULL);
    }
    gtk_editable_set_text(GTK_EDITABLE(self->entry), text ? text : "");
    gtk_editable_set_position(GTK_EDITABLE(self->entry), -1);
    run_query(self);
}

// The removable "Similar to FILE" chip before the search entry; NULL label removes it. Made anew
// each time for the reason set_banner gives.
static void set_similar_chip(M3Window *self, const char *label, const char *tooltip) {
    reveal(self->similar_chip, label != NULL);
    if (!label) {
        gtk_revealer_set_child(self->similar_chip, NULL);
        return;
    }
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 2);
    gtk_widget_add_css_class(box, "similar-chip");
    gtk_widget_set_valign(box, GTK_ALIGN_CENTER);
    gtk_widget_set_tooltip_text(box, tooltip);
    GtkWidget *text = gtk_label_new(label);
    gtk_label_set_ellipsize(GTK_LABEL(text), PANGO_ELLIPSIZE_MIDDLE);
    gtk_label_set_max_width_chars(GTK_LABEL(text), 28);
    gtk_widget_set_margin_start(text, 8);
    GtkWidget *close = gtk_button_new_from_icon_name("window-close-symbolic");
    gtk_actionable_set_action_name(GTK_ACTIONABLE(close), "win.clear-similar");
    gtk_widget_set_tooltip_text(close, _("Stop Finding Similar Files"));
    gtk_accessible_update_property(GTK_ACCESSIBLE(close), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                   _("Stop Finding Similar Files"), -1);
    gtk_widget_add_css_class(close, "flat");
    gtk_widget_add_css_class(close, "circular");
    gtk_box_append(GTK_BOX(box), text);
    gtk_box_append(GTK_BOX(box), close);
    gtk_revealer_set_child(self->similar_chip, box);
}

void m3_window_find_similar(M3Window *self, const char *path_or_uri) {
    g_autoptr(GFile) file = g_str_has_prefix(path_or_uri, "file:") ? g_file_new_for_uri(path_or_uri)
                                                                    : g_file_new_for_commandline_arg(path_or_uri);
    g_free(self->similar);
    self->similar = g_file_get_uri(file);
    g_autofree char *path = g_file_get_path(file);
    g_autofree char *name = path ? g_filename_display_basename(path) : g_file_get_basename(file);
    g_autofree char *label = g_strdup_printf(_("Similar to %s"), name);
    set_similar_chip(self, label, path ? path : self->similar);
    // The typed text stays out of the query in this mode; clearing it avoids a confusing mix.
    g_signal_handlers_block_by_func(self->entry, search_changed_cb, self);
    gtk_editable_set_text(GTK_EDITABLE(self->entry), "");
    g_signal_handlers_unblock_by_func(self->entry, search_changed_cb, self);
    run_query(self);
}

GDBusProxy *m3_window_get_indexer(M3Window *self) {
    return self->indexer ? G_DBUS_PROXY(self->indexer) : NULL;
}
