// SPDX-License-Identifier: MIT
//
// m3 daemon status|pause|resume|failed|reindex [PATH]: talks to the indexer service m3searchd on
// the session bus (org.m3search.Indexer1). Never starts it: a command that asks about the service
// must not be the thing that launches a model into memory.
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: m3 daemon status [--json] | pause | resume | failed | reindex [PATH]\n\n"
    "Talks to the indexer service m3searchd (org.m3search.Indexer on the session bus).\n\n"
    "  status     what it is doing: state, files indexed and pending, rate, model, index size\n"
    "  pause      stop indexing until 'resume' (kept across restarts)\n"
    "  resume     go on indexing\n"
    "  failed     the files that could not be indexed, with the reason\n"
    "  reindex    read PATH (a file or folder) again, or retry every failed file without PATH\n";

static GVariant *call(GDBusConnection *bus, const char *method, GVariant *args, const GVariantType *reply,
                      GError **error)
{
    return g_dbus_connection_call_sync(bus, "org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1",
                                       method, args, reply, G_DBUS_CALL_FLAGS_NO_AUTO_START, 30000, NULL, error);
}

static void print_status(GVariant *st, gboolean json)
{
    if (json) {
        GVariantIter it;
        const char *key;
        GVariant *v;
        printf("{");
        gboolean first = TRUE;
        g_variant_iter_init(&it, st);
        while (g_variant_iter_next(&it, "{&sv}", &key, &v)) {
            printf("%s\"%s\":", first ? "" : ",", key);
            if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
                gsize n;
                const char *text = g_variant_get_string(v, &n);
                m3_cli_put_json_string(stdout, text, n);
            } else if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING_ARRAY)) {
                g_autofree const char **sv = g_variant_get_strv(v, NULL);
                putchar('[');
                for (int i = 0; sv[i]; i++) {
                    if (i) putchar(',');
                    m3_cli_put_json_string(stdout, sv[i], strlen(sv[i]));
                }
                putchar(']');
            } else if (g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN)) {
                fputs(g_variant_get_boolean(v) ? "true" : "false", stdout);
            } else {
                g_autofree char *val = g_variant_print(v, FALSE);
                fputs(val, stdout);
            }
            first = FALSE;
            g_variant_unref(v);
        }
        printf("}\n");
        return;
    }
    const char *state = "", *reason = "", *error = "", *model = "", *backend = "", *device = "";
    guint64 done = 0, pending = 0, failed = 0, chunks = 0, bytes = 0;
    double rate = 0, eta = -1;
    gboolean limited = FALSE;
    g_variant_lookup(st, "state", "&s", &state);
    g_variant_lookup(st, "paused-reason", "&s", &reason);
    g_variant_lookup(st, "error", "&s", &error);
    g_variant_lookup(st, "model", "&s", &model);
    g_variant_lookup(st, "backend", "&s", &backend);
    g_variant_lookup(st, "device", "&s", &device);
    g_variant_lookup(st, "files-indexed", "t", &done);
    g_variant_lookup(st, "files-pending", "t", &pending);
    g_variant_lookup(st, "files-failed", "t", &failed);
    g_variant_lookup(st, "chunks", "t", &chunks);
    g_variant_lookup(st, "index-bytes", "t", &bytes);
    g_variant_lookup(st, "tokens-per-second", "d", &rate);
    g_variant_lookup(st, "eta-seconds", "d", &eta);
    g_variant_lookup(st, "watch-limited", "b", &limited);
    printf("state    %s%s%s%s\n", state, *reason ? " (" : "", reason, *reason ? ")" : "");
    if (*error) printf("problem  %s\n", error);
    printf("files    %" G_GUINT64_FORMAT " indexed, %" G_GUINT64_FORMAT " pending, %" G_GUINT64_FORMAT " failed\n", done,
           pending, failed);
    if (rate > 0) printf("rate     %.0f tokens/s%s", rate, eta >= 0 ? "" : "\n");
    if (rate > 0 && eta >= 0) printf(", about %d:%02d left\n", (int)eta / 60, (int)eta % 60);
    printf("index    %" G_GUINT64_FORMAT " chunks, %.1f MiB\n", chunks, (double)bytes / 1048576.0);
    printf("model    %s\n", *model ? model : "(none yet)");
    if (*backend) printf("encoder  %s (%s)\n", backend, device);
    if (limited) printf("watching some folders are rescanned periodically: the inotify watch limit is reached\n");
    g_autofree const char **missing = NULL;
    if (g_variant_lookup(st, "missing-folders", "^a&s", &missing))
        for (int i = 0; missing && missing[i]; i++) printf("missing  %s: the folder does not exist, nothing in it is indexed\n", missing[i]);
}

int m3_cmd_daemon(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? M3_EXIT_USAGE : M3_EXIT_OK;
    }
    const char *what = argv[1];
    GError *error = NULL;
    g_autoptr(GDBusConnection) bus = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error);
    if (!bus) {
        m3_cli_fail("daemon", "no session bus: %s", error->message);
        g_error_free(error);
        return M3_EXIT_FAILURE;
    }
    g_autoptr(GVariant) owner = g_dbus_connection_call_sync(
        bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
        g_variant_new("(s)", "org.m3search.Indexer"), G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
    gboolean running = FALSE;
    if (owner) g_variant_get(owner, "(b)", &running);
    if (!running) {
        m3_cli_fail("daemon", "the indexer service m3searchd is not running (start it with 'systemctl --user start "
                              "m3searchd', or open the m3search window)");
        return M3_EXIT_FAILURE;
    }
    g_autoptr(GVariant) r = NULL;
    if (!strcmp(what, "status")) {
        gboolean json = argc > 2 && !strcmp(argv[2], "--json");
        if ((r = call(bus, "Status", NULL, G_VARIANT_TYPE("(a{sv})"), &error))) {
            g_autoptr(GVariant) st = g_variant_get_child_value(r, 0);
            print_status(st, json);
        }
    } else if (!strcmp(what, "pause") || !strcmp(what, "resume")) {
        r = call(bus, !strcmp(what, "pause") ? "Pause" : "Resume", NULL, NULL, &error);
    } else if (!strcmp(what, "reindex")) {
        g_autofree char *path = argc > 2 ? g_canonicalize_filename(argv[2], NULL) : g_strdup("");
        r = call(bus, "Reindex", g_variant_new("(s)", path), NULL, &error);
    } else if (!strcmp(what, "failed")) {
        if ((r = call(bus, "FailedFiles", NULL, G_VARIANT_TYPE("(a(ss))"), &error))) {
            g_autoptr(GVariant) list = g_variant_get_child_value(r, 0);
            GVariantIter it;
            const char *path, *reason;
            g_variant_iter_init(&it, list);
            while (g_variant_iter_next(&it, "(&s&s)", &path, &reason)) printf("%s\t%s\n", path, reason);
        }
    } else {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    if (!r) {
        g_dbus_error_strip_remote_error(error);
        m3_cli_fail("daemon", "%s: %s", what, error->message);
        g_error_free(error);
        return M3_EXIT_FAILURE;
    }
    return M3_EXIT_OK;
}
