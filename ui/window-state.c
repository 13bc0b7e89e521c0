// SPDX-License-Identifier: MIT
#include "window-state.h"

#include "display-path.h"

#include <math.h>

#include <glib/gi18n.h>

static const char *str(GVariant *status, const char *key) {
    const char *s = NULL;
    return status && g_variant_lookup(status, key, "&s", &s) ? s : "";
}

static guint64 count(GVariant *status, const char *key) {
    guint64 v = 0;
    return status && g_variant_lookup(status, key, "t", &v) ? v : 0;
}

static double real(GVariant *status, const char *key, double otherwise) {
    double v;
    return status && g_variant_lookup(status, key, "d", &v) ? v : otherwise;
}

gboolean m3_state_has_model(GVariant *status) {
    return *str(status, "model") != '\0';
}

gboolean m3_state_model_missing(GVariant *status) {
    gboolean missing = FALSE;
    return !m3_state_has_model(status) || (g_variant_lookup(status, "model-missing", "b", &missing) && missing);
}

gboolean m3_state_has_folders(GVariant *status) {
    g_autoptr(GVariant) folders = status ? g_variant_lookup_value(status, "folders", G_VARIANT_TYPE_STRING_ARRAY) : NULL;
    return folders && g_variant_n_children(folders) > 0;
}

guint64 m3_state_files_indexed(GVariant *status) {
    return count(status, "files-indexed");
}

gboolean m3_state_is_busy(GVariant *status) {
    const char *state = str(status, "state");
    return g_str_equal(state, "crawling") || g_str_equal(state, "indexing");
}

// "about 3 minutes left" and the like, rounded the way people say it.
static char *eta_text(double s) {
    if (s < 0 || !isfinite(s))
        return NULL;
    if (s < 60)
        return g_strdup(_("less than a minute left"));
    if (s < 3600) {
        guint m = (guint)lround(s / 60);
        return g_strdup_printf(g_dngettext(NULL, "about %u minute left", "about %u minutes left", m), m);
    }
    guint h = (guint)lround(s / 3600);
    return g_strdup_printf(g_dngettext(NULL, "about %u hour left", "about %u hours left", h), h);
}

gboolean m3_state_progress(GVariant *status, m3_progress *p) {
    const char *state = str(status, "state");
    guint64 done = count(status, "files-indexed"), pending = count(status, "files-pending");
    gboolean paused = g_str_equal(state, "paused");
    if (!m3_state_is_busy(status) && !paused)
        return FALSE;  // idle: nothing to show (paused always shows, so that it can be resumed)
    p->paused = paused;
    p->fraction = done + pending ? (double)done / (double)(done + pending) : -1.0;
    if (paused && !pending)
        p->fraction = -1.0;  // nothing waiting: a full bar would read as "done"
    GString *text = g_string_new(NULL);
    if (paused) {
        const char *why = str(status, "paused-reason");
        if (g_str_equal(why, "battery"))
            g_string_append(text, _("Indexing paused while the computer runs on battery"));
        else
            g_string_append(text, _("Indexing paused"));
        if (pending) {
            g_autofree char *n = g_strdup_printf("%" G_GUINT64_FORMAT, pending);
            g_string_append(text, " · ");
            g_string_append_printf(text, g_dngettext(NULL, "%s file waiting", "%s files waiting", (gulong)pending), n);
        }
    } else if (g_str_equal(state, "crawling")) {
        g_string_append(text, _("Looking for new and changed files…"));
        if (done + pending)
            g_string_append_printf(text, " · %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT, done, done + pending);
    } else {
        g_autofree char *d = g_strdup_printf("%" G_GUINT64_FORMAT, done);
        g_autofree char *t = g_strdup_printf("%" G_GUINT64_FORMAT, done + pending);
        g_string_append_printf(text, _("Indexing: %s of %s files"), d, t);
        double rate = real(status, "tokens-per-second", 0);
        if (rate > 0) {
            g_string_append(text, " · ");
            g_string_append_printf(text, _("%.0f tokens/s"), rate);
        }
        g_autofree char *eta = eta_text(real(status, "eta-seconds", -1));
        if (eta)
            g_string_append_printf(text, " · %s", eta);
    }
    p->text = g_string_free(text, FALSE);
    return TRUE;
}

char *m3_state_banner(GVariant *status, const char **button, const char **action) {
    *button = *action = NULL;
    const char *error = str(status, "error");
    if (*error && m3_state_has_model(status)) {
        return g_strdup_printf(_("Indexing stopped: %s"), error);
    }
    // A folder the user chose that is not there (deleted, renamed, a drive not mounted).
    g_autofree const char **missing = NULL;
    if (status && g_variant_lookup(status, "missing-folders", "^a&s", &missing) && missing && missing[0]) {
        *button = _("_Preferences");
        *action = "app.preferences";
        guint n = g_strv_length((char **)missing);
        if (n == 1) {
            g_autofree char *shown = m3_display_path(missing[0]);
            return g_strdup_printf(_("“%s” does not exist: nothing in it is indexed"), shown);
        }
        return g_strdup_printf(g_dngettext(NULL, "%u folder does not exist: nothing in it is indexed",
                                           "%u folders do not exist: nothing in them is indexed", n), n);
    }
    guint64 failed = count(status, "files-failed");
    if (failed) {
        *button = _("_Show");
        *action = "win.show-failed";
        g_autofree char *n = g_strdup_printf("%" G_GUINT64_FORMAT, failed);
        return g_strdup_printf(g_dngettext(NULL, "%s file could not be read", "%s files could not be read",
                                           (gulong)failed), n);
    }
    gboolean limited = FALSE;
    if (status && g_variant_lookup(status, "watch-limited", "b", &limited) && limited)
        return g_strdup(_("Some folders hold too many subfolders to watch; they are checked for changes every "
                          "few minutes instead."));
    return NULL;
}
