// SPDX-License-Identifier: MIT
//
// m3searchd: the indexer service. Owns org.m3search.Indexer on the session bus and exports
// org.m3search.Indexer1 (packaging/org.m3search.Indexer1.xml) at /org/m3search/Indexer. Settings
// come from GSettings (org.m3search.Search) and apply live; --model, --index and --folder override
// them for scripts and tests. The parts: engine.c (model, index, indexing thread, searches),
// watcher.c (inotify change stream), this file (bus, settings, power, signals).
#include <glib-unix.h>
#include <gio/gio.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "extract/docs.h"
#include "watcher.h"

#define BUS_NAME "org.m3search.Indexer"
#define OBJECT_PATH "/org/m3search/Indexer"
#define INTERFACE "org.m3search.Indexer1"

enum { STATUS_MIN_INTERVAL_MS = 250 };  // StatusChanged at most 4 times a second

typedef struct Service {
    GMainLoop *loop;
    GDBusConnection *bus;
    GDBusNodeInfo *introspection;
    guint owner_id, object_id, upower_watch;
    GSettings *settings;
    M3Engine *engine;
    M3Watcher *watcher;
    GDBusProxy *upower;
    gboolean on_battery;
    // Command-line overrides.
    char *opt_model, *opt_index;
    char **opt_folders;
    guint config_timer;      // settings changes arrive in bursts: applied once, shortly after
    // StatusChanged rate limit.
    gint64 last_status;
    guint status_timer;
    int exit_code;
} Service;

// ---- configuration ----------------------------------------------------------------------------

// "&DOCUMENTS" → the XDG Documents folder, "~/x" → $HOME/x; resolved; NULL when it does not exist.
static char *resolve_folder(const char *f)
{
    static const struct {
        const char *name;
        GUserDirectory dir;
    } xdg[] = {{"&DESKTOP", G_USER_DIRECTORY_DESKTOP},     {"&DOCUMENTS", G_USER_DIRECTORY_DOCUMENTS},
               {"&DOWNLOAD", G_USER_DIRECTORY_DOWNLOAD},   {"&MUSIC", G_USER_DIRECTORY_MUSIC},
               {"&PICTURES", G_USER_DIRECTORY_PICTURES},   {"&PUBLICSHARE", G_USER_DIRECTORY_PUBLIC_SHARE},
               {"&TEMPLATES", G_USER_DIRECTORY_TEMPLATES}, {"&VIDEOS", G_USER_DIRECTORY_VIDEOS}};
    g_autofree char *path = NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(xdg); i++)
        if (!strcmp(f, xdg[i].name)) {
            const char *d = g_get_user_special_dir(xdg[i].dir);
            // An unset XDG folder falls back to HOME in GLib: never index the whole home that way.
            if (!d || !strcmp(d, g_get_home_dir())) return NULL;
            path = g_strdup(d);
        }
    if (!path && f[0] == '~' && (f[1] == '/' || !f[1])) path = g_build_filename(g_get_home_dir(), f + 1, NULL);
    if (!path && g_str_has_prefix(f, "file://")) path = g_filename_from_uri(f, NULL, NULL);
    if (!path) path = g_strdup(f);
    if (!g_path_is_absolute(path)) return NULL;
    char *real = realpath(path, NULL);
    if (!real || !g_file_test(real, G_FILE_TEST_IS_DIR)) {
        free(real);
        return NULL;
    }
    char *r = g_strdup(real);
    free(real);
    return r;
}

static char **resolve_folders(char **in)
{
    GPtrArray *out = g_ptr_array_new();
    for (char **f = in; f && *f; f++) {
        char *r = resolve_folder(*f);
        if (r) g_ptr_array_add(out, r);
        else g_message("folder %s does not exist (yet): not indexed", *f);
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

static char *default_model(void)
{
    // The model the window downloads and converts (README "Getting the model").
    char *gguf = g_build_filename(g_get_user_data_dir(), "m3search", "models", "bge-m3.gguf", NULL);
    if (g_file_test(gguf, G_FILE_TEST_IS_REGULAR)) return gguf;
    g_free(gguf);
    return g_strdup("");
}

static void build_config(Service *s, M3EngineConfig *c)
{
    memset(c, 0, sizeof *c);
    g_autofree char *model = g_settings_get_string(s->settings, "model");
    c->model = s->opt_model ? g_strdup(s->opt_model) : *model ? g_strdup(model) : default_model();
    g_autofree char *index = g_settings_get_string(s->settings, "index-folder");
    c->index_dir = s->opt_index ? g_strdup(s->opt_index)
                   : *index     ? g_strdup(index)
                                : g_build_filename(g_get_user_data_dir(), "m3search", "index", NULL);
    g_auto(GStrv) folders = g_settings_get_strv(s->settings, "folders");
    c->folders = resolve_folders(s->opt_folders ? s->opt_folders : folders);
    c->exclude = g_settings_get_strv(s->settings, "exclude-patterns");
    c->index_hidden = g_settings_get_boolean(s->settings, "index-hidden");
    c->index_remote = g_settings_get_boolean(s->settings, "index-removable");
    c->max_file_size = g_settings_get_uint64(s->settings, "max-file-size");
    c->backend = g_settings_get_string(s->settings, "backend");
    c->cpu_threads = g_settings_get_uint(s->settings, "cpu-threads");
    c->precision = g_settings_get_string(s->settings, "precision");
    g_autoptr(GVariant) w = g_settings_get_value(s->settings, "weights");
    gsize n = 0;
    const double *wv = g_variant_get_fixed_array(w, &n, sizeof(double));
    for (int i = 0; i < 3; i++) c->weights[i] = n == 3 ? wv[i] : (double[]){0.4, 0.2, 0.4}[i];
    const char *ms = g_getenv("M3SEARCHD_COMMIT_MS");
    c->commit_ms = ms ? (guint)g_ascii_strtoull(ms, NULL, 10) : 2000;
    // Test knob: small batches commit often, so that a kill lands between commits.
    const char *bt = g_getenv("M3SEARCHD_BATCH_TOKENS");
    c->batch_tokens = bt ? (guint)g_ascii_strtoull(bt, NULL, 10) : 0;
}

static void apply_pause(Service *s)
{
    const char *reason = NULL;
    if (g_settings_get_boolean(s->settings, "paused")) reason = "user";
    else if (s->on_battery && g_settings_get_boolean(s->settings, "pause-on-battery")) reason = "battery";
    m3_engine_set_paused(s->engine, reason);
}

static void configure(Service *s)
{
    M3EngineConfig c;
    build_config(s, &c);
    m3_watcher_set_folders(s->watcher, c.folders, c.exclude, c.index_hidden);
    m3_engine_configure(s->engine, &c);
    m3_engine_config_clear(&c);
}

static gboolean configure_cb(gpointer data)
{
    Service *s = data;
    s->config_timer = 0;
    configure(s);
    return G_SOURCE_REMOVE;
}

static void settings_changed_cb(GSettings *settings, const char *key, gpointer data)
{
    (void)settings;
    Service *s = data;
    if (!strcmp(key, "paused") || !strcmp(key, "pause-on-battery")) apply_pause(s);
    else if (!g_str_has_prefix(key, "window-") && !s->config_timer) s->config_timer = g_timeout_add(200, configure_cb, s);
}

// ---- power ------------------------------------------------------------------------------------

static void upower_read(Service *s)
{
    g_autoptr(GVariant) v = s->upower ? g_dbus_proxy_get_cached_property(s->upower, "OnBattery") : NULL;
    gboolean on = v && g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN) && g_variant_get_boolean(v);
    if (on != s->on_battery) g_message(on ? "on battery: indexing pauses" : "on mains power: indexing resumes");
    s->on_battery = on;
    apply_pause(s);
}

static void upower_props_cb(GDBusProxy *proxy, GVariant *changed, GStrv invalidated, gpointer data)
{
    (void)proxy, (void)changed, (void)invalidated;
    upower_read(data);
}

static void upower_appeared_cb(GDBusConnection *bus, const char *name, const char *owner, gpointer data)
{
    (void)name, (void)owner;
    Service *s = data;
    g_clear_object(&s->upower);
    s->upower = g_dbus_proxy_new_sync(bus, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, NULL, "org.freedesktop.UPower",
                                      "/org/freedesktop/UPower", "org.freedesktop.UPower", NULL, NULL);
    if (s->upower) g_signal_connect(s->upower, "g-properties-changed", G_CALLBACK(upower_props_cb), s);
    upower_read(s);
}

static void upower_vanished_cb(GDBusConnection *bus, const char *name, gpointer data)
{
    (void)bus, (void)name;
    Service *s = data;
    g_clear_object(&s->upower);
    upower_read(s);
}

// ---- signals ----------------------------------------------------------------------------------

// The folders the user chose that do not exist (Status "missing-folders"), looked at anew for each
// Status, since one may be created or mounted any time. The XDG folders of the default list
// (&DESKTOP...) are left out: a machine need not have them all.
static GVariant *missing_folders(Service *s)
{
    g_auto(GStrv) chosen = s->opt_folders ? NULL : g_settings_get_strv(s->settings, "folders");
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_STRING_ARRAY);
    for (char **f = s->opt_folders ? s->opt_folders : chosen; f && *f; f++) {
        if ((*f)[0] == '&') continue;
        g_autofree char *real = resolve_folder(*f);
        g_autofree char *shown = real ? NULL : g_filename_display_name(*f);  // argv need not be UTF-8
        if (!real) g_variant_builder_add(&b, "s", shown);
    }
    return g_variant_builder_end(&b);
}

static GVariant *dup_status(Service *s)
{
    GVariant *st = m3_engine_dup_status(s->engine);
    // The watcher's part of the status, and the folders that are not there.
    GVariantDict d;
    g_variant_dict_init(&d, st);
    g_variant_dict_insert(&d, "watch-limited", "b", m3_watcher_is_limited(s->watcher));
    g_variant_dict_insert_value(&d, "missing-folders", missing_folders(s));
    g_variant_unref(g_variant_ref_sink(st));
    return g_variant_dict_end(&d);
}

static gboolean emit_status(gpointer data)
{
    Service *s = data;
    s->status_timer = 0;
    s->last_status = g_get_monotonic_time();
    if (s->bus)
        g_dbus_connection_emit_signal(s->bus, NULL, OBJECT_PATH, INTERFACE, "StatusChanged",
                                      g_variant_new_tuple((GVariant *[]){dup_status(s)}, 1), NULL);
    return G_SOURCE_REMOVE;
}

static void status_changed_cb(gpointer data)
{
    Service *s = data;
    if (s->status_timer) return;
    gint64 since_ms = (g_get_monotonic_time() - s->last_status) / 1000;
    guint wait = since_ms >= STATUS_MIN_INTERVAL_MS ? 0 : (guint)(STATUS_MIN_INTERVAL_MS - since_ms);
    s->status_timer = g_timeout_add(wait, emit_status, s);
}

static void index_changed_cb(gpointer data)
{
    Service *s = data;
    if (s->bus) g_dbus_connection_emit_signal(s->bus, NULL, OBJECT_PATH, INTERFACE, "IndexChanged", NULL, NULL);
}

static void watcher_changed_cb(const char *const *paths, gsize n, gpointer data)
{
    Service *s = data;
    m3_engine_update(s->engine, paths, n, FALSE);
}

static void watcher_rescan_cb(const char *const *folders, gsize n, gpointer data)
{
    Service *s = data;
    m3_engine_update(s->engine, folders, n, FALSE);
}

// ---- methods ----------------------------------------------------------------------------------

static void return_error(GDBusMethodInvocation *inv, GError *error)
{
    static const char *const names[] = {"NotReady", "InvalidArgument", "NotFound", "Failed", "Superseded"};
    const char *name = error->domain == M3_INDEXER_ERROR && error->code >= 0 && error->code < (int)G_N_ELEMENTS(names)
                           ? names[error->code]
                           : "Failed";
    g_autofree char *full = g_strconcat(INTERFACE ".Error.", name, NULL);
    g_dbus_method_invocation_return_dbus_error(inv, full, error->message);
    g_error_free(error);
}

static void results_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    (void)source;
    GDBusMethodInvocation *inv = data;
    Service *s = g_object_get_data(G_OBJECT(inv), "m3-service");
    GError *error = NULL;
    GVariant *v = m3_engine_results_finish(s->engine, res, &error);
    if (!v) return_error(inv, error);
    else g_dbus_method_invocation_return_value(inv, g_variant_new_tuple(&v, 1));
    if (v) g_variant_unref(v);
    g_object_unref(inv);
}

// A path or file:// URI → an absolute path, or NULL.
static char *to_path(const char *path_or_uri)
{
    if (g_str_has_prefix(path_or_uri, "file://")) return g_filename_from_uri(path_or_uri, NULL, NULL);
    return g_path_is_absolute(path_or_uri) ? g_canonicalize_filename(path_or_uri, NULL) : NULL;
}

static void method_cb(GDBusConnection *bus, const char *sender, const char *object, const char *iface,
                      const char *method, GVariant *params, GDBusMethodInvocation *inv, gpointer data)
{
    (void)bus, (void)object, (void)iface;
    Service *s = data;
    if (!strcmp(method, "Search") || !strcmp(method, "FindSimilar")) {
        const char *arg;
        GVariant *opts;
        g_variant_get(params, "(&s@a{sv})", &arg, &opts);
        g_object_set_data(G_OBJECT(inv), "m3-service", s);
        g_object_ref(inv);
        if (!strcmp(method, "Search")) {
            m3_engine_search_async(s->engine, sender, arg, opts, NULL, results_cb, inv);
        } else {
            g_autofree char *path = to_path(arg);
            if (!path) {
                g_object_unref(inv);
                g_variant_unref(opts);
                g_dbus_method_invocation_return_dbus_error(inv, INTERFACE ".Error.InvalidArgument",
                                                           "FindSimilar needs an absolute path or a file:// URI");
                return;
            }
            m3_engine_similar_async(s->engine, sender, path, opts, NULL, results_cb, inv);
        }
        g_variant_unref(opts);
    } else if (!strcmp(method, "Status")) {
        g_dbus_method_invocation_return_value(inv, g_variant_new_tuple((GVariant *[]){dup_status(s)}, 1));
    } else if (!strcmp(method, "Pause") || !strcmp(method, "Resume")) {
        // Kept in the settings: a user's pause survives restarts.
        g_settings_set_boolean(s->settings, "paused", !strcmp(method, "Pause"));
        apply_pause(s);
        g_dbus_method_invocation_return_value(inv, NULL);
    } else if (!strcmp(method, "Reindex")) {
        const char *arg;
        g_variant_get(params, "(&s)", &arg);
        if (!*arg) {
            m3_engine_retry_failed(s->engine);
        } else {
            g_autofree char *path = to_path(arg);
            if (!path) {
                g_dbus_method_invocation_return_dbus_error(inv, INTERFACE ".Error.InvalidArgument",
                                                           "Reindex needs an absolute path, a file:// URI or \"\"");
                return;
            }
            if (!m3_engine_covers(s->engine, path)) {
                g_autofree char *shown = g_filename_display_name(path);
                g_autofree char *msg = g_strdup_printf("%s is not in the indexed folders", shown);
                g_dbus_method_invocation_return_dbus_error(inv, INTERFACE ".Error.InvalidArgument", msg);
                return;
            }
            const char *p = path;
            m3_engine_update(s->engine, &p, 1, TRUE);
        }
        g_dbus_method_invocation_return_value(inv, NULL);
    } else if (!strcmp(method, "FailedFiles")) {
        GError *error = NULL;
        GVariant *v = m3_engine_dup_failed(s->engine, &error);
        if (!v) return_error(inv, error);
        else g_dbus_method_invocation_return_value(inv, g_variant_new_tuple(&v, 1));
    } else {
        g_dbus_method_invocation_return_dbus_error(inv, "org.freedesktop.DBus.Error.UnknownMethod", method);
    }
}

static const GDBusInterfaceVTable vtable = {method_cb, NULL, NULL, {0}};

static void bus_acquired_cb(GDBusConnection *bus, const char *name, gpointer data)
{
    (void)name;
    Service *s = data;
    GError *error = NULL;
    s->bus = g_object_ref(bus);
    s->object_id = g_dbus_connection_register_object(bus, OBJECT_PATH, s->introspection->interfaces[0], &vtable, s,
                                                     NULL, &error);
    if (!s->object_id) {
        g_printerr("m3searchd: cannot export %s: %s\n", OBJECT_PATH, error->message);
        g_error_free(error);
        s->exit_code = 1;
        g_main_loop_quit(s->loop);
        return;
    }
    s->upower_watch = g_bus_watch_name(G_BUS_TYPE_SYSTEM, "org.freedesktop.UPower", G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                     upower_appeared_cb, upower_vanished_cb, s, NULL);
}

static void name_acquired_cb(GDBusConnection *bus, const char *name, gpointer data)
{
    (void)bus;
    (void)data;
    g_message("serving %s", name);
}

static void name_lost_cb(GDBusConnection *bus, const char *name, gpointer data)
{
    Service *s = data;
    if (!bus) g_printerr("m3searchd: no session bus: cannot serve %s\n", name);
    else g_printerr("m3searchd: %s is owned by another process (another m3searchd is running)\n", name);
    s->exit_code = 1;
    g_main_loop_quit(s->loop);
}

static gboolean quit_cb(gpointer data)
{
    Service *s = data;
    g_main_loop_quit(s->loop);
    return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    Service s = {0};
    gboolean version = FALSE;
    GOptionEntry entries[] = {
        {"model", 0, 0, G_OPTION_ARG_FILENAME, &s.opt_model, "The model (folder or .gguf) instead of the setting", "PATH"},
        {"index", 0, 0, G_OPTION_ARG_FILENAME, &s.opt_index, "The index folder instead of the setting", "DIR"},
        {"folder", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &s.opt_folders,
         "Index this folder (repeatable) instead of the configured ones", "DIR"},
        {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- the m3search indexer service");
    g_option_context_set_summary(ctx, "Keeps the index of your folders current in the background and answers searches\n"
                                      "on the session bus as org.m3search.Indexer. Settings: org.m3search.Search.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("m3searchd: %s\n", error->message);
        return 2;
    }
    if (version) {
        printf("m3searchd %s\n", M3_VERSION);
        return 0;
    }
    // The document formats' tables (the extraction itself runs in `m3 extract-helper`): the indexer
    // decides from the extractor's name and version whether a file must be read again.
    m3_error derr = {0};
    if (m3_docs_register(&derr) != M3_STATUS_OK) {
        g_printerr("m3searchd: %s\n", derr.message);
        return 1;
    }
    if (s.opt_model && !g_path_is_absolute(s.opt_model)) {
        char *abs = g_canonicalize_filename(s.opt_model, NULL);
        g_free(s.opt_model);
        s.opt_model = abs;
    }
    if (s.opt_index && !g_path_is_absolute(s.opt_index)) {
        char *abs = g_canonicalize_filename(s.opt_index, NULL);
        g_free(s.opt_index);
        s.opt_index = abs;
    }
    GSettingsSchemaSource *src = g_settings_schema_source_get_default();
    g_autoptr(GSettingsSchema) schema = src ? g_settings_schema_source_lookup(src, "org.m3search.Search", TRUE) : NULL;
    if (!schema) {
        g_printerr("m3searchd: the settings schema org.m3search.Search is not installed (or GSETTINGS_SCHEMA_DIR "
                   "does not point to it): reinstall m3search\n");
        return 1;
    }
    g_autoptr(GBytes) xml = g_resources_lookup_data("/org/m3search/Indexer/org.m3search.Indexer1.xml", 0, &error);
    if (!xml || !(s.introspection = g_dbus_node_info_new_for_xml(g_bytes_get_data(xml, NULL), &error))) {
        g_printerr("m3searchd: %s\n", error->message);
        return 1;
    }
    s.loop = g_main_loop_new(NULL, FALSE);
    s.settings = g_settings_new("org.m3search.Search");
    s.engine = m3_engine_new(status_changed_cb, index_changed_cb, &s);
    const char *q = g_getenv("M3SEARCHD_QUIET_MS"), *r = g_getenv("M3SEARCHD_RESCAN_S"),
               *mw = g_getenv("M3SEARCHD_MAX_WATCHES");
    M3WatcherOptions wo = {q ? (guint)atoi(q) : 2000, r ? (guint)atoi(r) : 600, mw ? (guint)atoi(mw) : 0};
    s.watcher = m3_watcher_new(&wo, watcher_changed_cb, watcher_rescan_cb, &s);
    g_signal_connect(s.settings, "changed", G_CALLBACK(settings_changed_cb), &s);
    apply_pause(&s);
    configure(&s);
    s.owner_id = g_bus_own_name(G_BUS_TYPE_SESSION, BUS_NAME, G_BUS_NAME_OWNER_FLAGS_NONE, bus_acquired_cb,
                                name_acquired_cb, name_lost_cb, &s, NULL);
    g_unix_signal_add(SIGTERM, quit_cb, &s);
    g_unix_signal_add(SIGINT, quit_cb, &s);
    g_main_loop_run(s.loop);
    // Teardown: stop answering, then let the indexing thread commit what it has and stop.
    if (s.status_timer) g_source_remove(s.status_timer);
    if (s.config_timer) g_source_remove(s.config_timer);
    if (s.upower_watch) g_bus_unwatch_name(s.upower_watch);
    g_clear_object(&s.upower);
    if (s.object_id) g_dbus_connection_unregister_object(s.bus, s.object_id);
    g_bus_unown_name(s.owner_id);
    // No more signals: what the engine reports while it stops goes nowhere.
    g_clear_object(&s.bus);
    m3_watcher_free(s.watcher);
    m3_engine_free(s.engine);
    g_object_unref(s.settings);
    g_dbus_node_info_unref(s.introspection);
    g_main_loop_unref(s.loop);
    g_free(s.opt_model);
    g_free(s.opt_index);
    g_strfreev(s.opt_folders);
    return s.exit_code;
}
