// SPDX-License-Identifier: MIT
#include "result.h"

#include <string.h>

#include <glib/gi18n.h>

#include "display-path.h"

struct _M3Result {
    GObject parent_instance;
    char *path, *uri, *snippet, *location, *content_type;
    double score, dense, sparse, colbert;
    gint64 mtime;
    GArray *highlights;  // m3_highlight
};

G_DEFINE_FINAL_TYPE(M3Result, m3_result, G_TYPE_OBJECT)

static void m3_result_finalize(GObject *object) {
    M3Result *self = M3_RESULT(object);
    g_free(self->path);
    g_free(self->uri);
    g_free(self->snippet);
    g_free(self->location);
    g_free(self->content_type);
    g_array_unref(self->highlights);
    G_OBJECT_CLASS(m3_result_parent_class)->finalize(object);
}

static void m3_result_class_init(M3ResultClass *klass) {
    G_OBJECT_CLASS(klass)->finalize = m3_result_finalize;
}

static void m3_result_init(M3Result *self) {
    self->highlights = g_array_new(FALSE, FALSE, sizeof(m3_highlight));
}

static int compare_highlights(gconstpointer a, gconstpointer b) {
    const m3_highlight *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

M3Result *m3_result_new_from_variant(GVariant *dict) {
    g_autoptr(GVariantDict) d = g_variant_dict_new(dict);
    const char *path = NULL;
    if (!g_variant_dict_lookup(d, "path", "&s", &path) || path[0] != '/')
        return NULL;
    M3Result *self = g_object_new(M3_TYPE_RESULT, NULL);
    const char *s;
    self->uri = g_variant_dict_lookup(d, "uri", "&s", &s) ? g_strdup(s) : g_filename_to_uri(path, NULL, NULL);
    // The file itself from the URI, which is exact: "path" is for display, and the service shows a
    // name that is not UTF-8 there with U+FFFD in place of its other bytes.
    self->path = self->uri ? g_filename_from_uri(self->uri, NULL, NULL) : NULL;
    if (!self->path)
        self->path = g_strdup(path);
    self->snippet = g_strdup(g_variant_dict_lookup(d, "snippet", "&s", &s) ? s : "");
    if (!g_utf8_validate(self->snippet, -1, NULL)) {
        char *valid = g_utf8_make_valid(self->snippet, -1);
        g_free(self->snippet);
        self->snippet = valid;
    }
    self->location = g_strdup(g_variant_dict_lookup(d, "location", "&s", &s) ? s : "");
    self->content_type = g_strdup(g_variant_dict_lookup(d, "content-type", "&s", &s) && *s ? s : "application/octet-stream");
    g_variant_dict_lookup(d, "score", "d", &self->score);
    g_variant_dict_lookup(d, "dense", "d", &self->dense);
    g_variant_dict_lookup(d, "sparse", "d", &self->sparse);
    g_variant_dict_lookup(d, "colbert", "d", &self->colbert);
    g_variant_dict_lookup(d, "mtime", "x", &self->mtime);
    g_autoptr(GVariant) hl = g_variant_dict_lookup_value(d, "highlights", G_VARIANT_TYPE("a(uu)"));
    if (hl) {
        GVariantIter it;
        guint32 a, b;
        size_t len = strlen(self->snippet);
        g_variant_iter_init(&it, hl);
        while (g_variant_iter_next(&it, "(uu)", &a, &b)) {
            if (a >= b || b > len)
                continue;
            m3_highlight h = {a, b};
            g_array_append_val(self->highlights, h);
        }
        g_array_sort(self->highlights, compare_highlights);
    }
    return self;
}

const char *m3_result_get_path(M3Result *self) { return self->path; }
const char *m3_result_get_uri(M3Result *self) { return self->uri; }
const char *m3_result_get_snippet(M3Result *self) { return self->snippet; }
const char *m3_result_get_location(M3Result *self) { return self->location; }
const char *m3_result_get_content_type(M3Result *self) { return self->content_type; }
double m3_result_get_score(M3Result *self) { return self->score; }
gint64 m3_result_get_mtime(M3Result *self) { return self->mtime; }

void m3_result_get_parts(M3Result *self, double *dense, double *sparse, double *colbert) {
    *dense = self->dense;
    *sparse = self->sparse;
    *colbert = self->colbert;
}

const m3_highlight *m3_result_get_highlights(M3Result *self, guint *n) {
    *n = self->highlights->len;
    return (const m3_highlight *)self->highlights->data;
}

gboolean m3_result_equal(M3Result *a, M3Result *b) {
    if (a == b)
        return TRUE;
    if (!a || !b)
        return FALSE;
    return g_str_equal(a->path, b->path) && g_str_equal(a->uri, b->uri) && g_str_equal(a->snippet, b->snippet) &&
           g_str_equal(a->location, b->location) && g_str_equal(a->content_type, b->content_type) &&
           a->score == b->score && a->dense == b->dense && a->sparse == b->sparse && a->colbert == b->colbert &&
           a->mtime == b->mtime && a->highlights->len == b->highlights->len &&
           (a->highlights->len == 0 ||
            memcmp(a->highlights->data, b->highlights->data, a->highlights->len * sizeof(m3_highlight)) == 0);
}

char *m3_result_dup_name(M3Result *self) {
    return g_filename_display_basename(self->path);
}

char *m3_result_dup_folder(M3Result *self) {
    g_autofree char *dir = g_path_get_dirname(self->path);
    return m3_display_path(dir);
}

// The local time zone, read again at most once a minute (after the user changed it). GLib reads
// and parses it anew on every g_time_zone_new_local() while TZ is unset, which a reply's 50 dates
// made ~1 ms of the main thread's work. Main thread only.
static GTimeZone *local_zone(void) {
    static GTimeZone *zone;
    static gint64 read_at;
    gint64 now = g_get_monotonic_time();
    if (!zone || now - read_at > 60 * G_USEC_PER_SEC) {
        g_clear_pointer(&zone, g_time_zone_unref);
        zone = g_time_zone_new_local();
        read_at = now;
    }
    return zone;
}

char *m3_result_dup_date(M3Result *self) {
    if (self->mtime <= 0)
        return g_strdup("");
    GTimeZone *zone = local_zone();
    g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(self->mtime);
    g_autoptr(GDateTime) when = utc ? g_date_time_to_timezone(utc, zone) : NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now(zone);
    if (!when)
        return g_strdup("");
    if (g_date_time_get_year(when) == g_date_time_get_year(now) &&
        g_date_time_get_day_of_year(when) == g_date_time_get_day_of_year(now))
        /* TRANSLATORS: a file modified today: the time (strftime format) */
        return g_date_time_format(when, _("%H:%M"));
    /* TRANSLATORS: a file's modification date (strftime format) */
    return g_date_time_format(when, _("%e %b %Y"));
}

// Moves a byte offset back to the start of the UTF-8 character it falls in.
static gsize utf8_floor(const char *text, gsize len, gsize at) {
    if (at > len)
        at = len;
    while (at > 0 && at < len && ((unsigned char)text[at] & 0xC0) == 0x80)
        at--;
    return at;
}

char *m3_markup_highlighted(const char *text, gsize len, const m3_highlight *hl, guint n) {
    GString *out = g_string_sized_new(len + 64);
    gsize at = 0;
    for (guint i = 0; i < n; i++) {
        gsize a = utf8_floor(text, len, hl[i].start), b = utf8_floor(text, len, hl[i].end);
        if (a < at)
            a = at;
        if (b <= a)
            continue;
        g_autofree char *before = g_markup_escape_text(text + at, (gssize)(a - at));
        g_autofree char *mark = g_markup_escape_text(text + a, (gssize)(b - a));
        g_string_append(out, before);
        g_string_append_printf(out, "<span weight=\"bold\" background=\"#f8e45c80\">%s</span>", mark);
        at = b;
    }
    g_autofree char *rest = g_markup_escape_text(text + at, (gssize)(len - at));
    g_string_append(out, rest);
    return g_string_free(out, FALSE);
}

char *m3_result_dup_snippet_markup(M3Result *self) {
    guint n;
    const m3_highlight *hl = m3_result_get_highlights(self, &n);
    // The row shows one flowing line: newlines become spaces (same byte length, ranges stay valid).
    g_autofree char *flat = g_strdup(self->snippet);
    for (char *p = flat; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return m3_markup_highlighted(flat, strlen(flat), hl, n);
}
