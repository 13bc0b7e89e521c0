// SPDX-License-Identifier: MIT
//
// Loads the built Nautilus extension the way Nautilus 43 does — a GTypeModule whose load() opens the
// shared module and calls nautilus_module_initialize(), then nautilus_module_list_types() and a
// NautilusMenuProvider among the listed types — and asks it for menu items with file-info objects
// made here (M3TestFileInfo implements the NautilusFileInfo interface, as NautilusFile does).
//
// Checks: the item appears for exactly one local regular file, and not for folders, several files,
// special files, vanished files or remote/virtual locations; its label is translated (run with
// LANGUAGE=de and the .mo built from po/); activating it reaches an application registered as
// org.m3search.Search on the session bus (run under dbus-run-session: a private bus) with
// ActivateAction("find-similar", [<file URI>]), the URI naming the very file.
//
// usage: test-nautilus-extension MODULE.so BUILD_LOCALEDIR INSTALL_LOCALEDIR EXPECTED_LABEL

#include <gio/gio.h>
#include <gmodule.h>
#include <glib/gstdio.h>
#include <libintl.h>
#include <locale.h>
#include <string.h>
#include <nautilus-extension.h>

static const char *module_path, *build_localedir, *install_localedir, *expected_label;

// ---- the module loader (what Nautilus's NautilusModule does) ----

#define M3_TYPE_TEST_MODULE (m3_test_module_get_type())
G_DECLARE_FINAL_TYPE(M3TestModule, m3_test_module, M3, TEST_MODULE, GTypeModule)

struct _M3TestModule {
    GTypeModule parent_instance;
    GModule *library;
    void (*list_types)(const GType **types, int *num_types);
    void (*shutdown)(void);
};

G_DEFINE_TYPE(M3TestModule, m3_test_module, G_TYPE_TYPE_MODULE)

static gboolean m3_test_module_load(GTypeModule *module) {
    M3TestModule *self = M3_TEST_MODULE(module);
    void (*initialize)(GTypeModule *) = NULL;
    self->library = g_module_open(module_path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
    if (self->library == NULL) {
        g_printerr("cannot open %s: %s\n", module_path, g_module_error());
        return FALSE;
    }
    if (!g_module_symbol(self->library, "nautilus_module_initialize", (gpointer *)&initialize) ||
        !g_module_symbol(self->library, "nautilus_module_list_types", (gpointer *)&self->list_types) ||
        !g_module_symbol(self->library, "nautilus_module_shutdown", (gpointer *)&self->shutdown)) {
        g_printerr("%s lacks a nautilus_module_* entry point: %s\n", module_path, g_module_error());
        g_module_close(self->library);
        return FALSE;
    }
    initialize(module);
    return TRUE;
}

static void m3_test_module_unload(GTypeModule *module) {
    M3TestModule *self = M3_TEST_MODULE(module);
    self->shutdown();
    g_module_close(self->library);
}

static void m3_test_module_init(M3TestModule *self) { (void)self; }
static void m3_test_module_class_init(M3TestModuleClass *klass) {
    G_TYPE_MODULE_CLASS(klass)->load = m3_test_module_load;
    G_TYPE_MODULE_CLASS(klass)->unload = m3_test_module_unload;
}

// ---- a NautilusFileInfo made by the test ----

#define M3_TYPE_TEST_FILE_INFO (m3_test_file_info_get_type())
G_DECLARE_FINAL_TYPE(M3TestFileInfo, m3_test_file_info, M3, TEST_FILE_INFO, GObject)

struct _M3TestFileInfo {
    GObject parent_instance;
    GFile *location;
    char *activation_uri;  // NULL: the location's URI
    GFileType type;
    gboolean gone;
};

static void file_info_iface_init(NautilusFileInfoInterface *iface);
G_DEFINE_TYPE_WITH_CODE(M3TestFileInfo, m3_test_file_info, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(NAUTILUS_TYPE_FILE_INFO, file_info_iface_init))

static M3TestFileInfo *fi(NautilusFileInfo *info) { return M3_TEST_FILE_INFO(info); }
static gboolean fi_is_gone(NautilusFileInfo *info) { return fi(info)->gone; }
static char *fi_get_name(NautilusFileInfo *info) { return g_file_get_basename(fi(info)->location); }
static char *fi_get_uri(NautilusFileInfo *info) { return g_file_get_uri(fi(info)->location); }
static char *fi_get_uri_scheme(NautilusFileInfo *info) { return g_file_get_uri_scheme(fi(info)->location); }
static GFile *fi_get_location(NautilusFileInfo *info) { return g_object_ref(fi(info)->location); }
static GFileType fi_get_file_type(NautilusFileInfo *info) { return fi(info)->type; }
static gboolean fi_is_directory(NautilusFileInfo *info) { return fi(info)->type == G_FILE_TYPE_DIRECTORY; }
static char *fi_get_mime_type(NautilusFileInfo *info) {
    return g_strdup(fi(info)->type == G_FILE_TYPE_DIRECTORY ? "inode/directory" : "text/plain");
}
static gboolean fi_is_mime_type(NautilusFileInfo *info, const char *mime_type) {
    g_autofree char *own = fi_get_mime_type(info);
    return g_content_type_is_a(own, mime_type);
}
static char *fi_get_activation_uri(NautilusFileInfo *info) {
    return fi(info)->activation_uri ? g_strdup(fi(info)->activation_uri) : fi_get_uri(info);
}
static GFile *fi_get_parent_location(NautilusFileInfo *info) { return g_file_get_parent(fi(info)->location); }
static char *fi_get_parent_uri(NautilusFileInfo *info) {
    g_autoptr(GFile) parent = g_file_get_parent(fi(info)->location);
    return parent ? g_file_get_uri(parent) : g_strdup("");
}

static void file_info_iface_init(NautilusFileInfoInterface *iface) {
    iface->is_gone = fi_is_gone;
    iface->get_name = fi_get_name;
    iface->get_uri = fi_get_uri;
    iface->get_uri_scheme = fi_get_uri_scheme;
    iface->get_location = fi_get_location;
    iface->get_file_type = fi_get_file_type;
    iface->is_directory = fi_is_directory;
    iface->get_mime_type = fi_get_mime_type;
    iface->is_mime_type = fi_is_mime_type;
    iface->get_activation_uri = fi_get_activation_uri;
    iface->get_parent_location = fi_get_parent_location;
    iface->get_parent_uri = fi_get_parent_uri;
}

static void m3_test_file_info_finalize(GObject *object) {
    M3TestFileInfo *self = M3_TEST_FILE_INFO(object);
    g_object_unref(self->location);
    g_free(self->activation_uri);
    G_OBJECT_CLASS(m3_test_file_info_parent_class)->finalize(object);
}
static void m3_test_file_info_init(M3TestFileInfo *self) { (void)self; }
static void m3_test_file_info_class_init(M3TestFileInfoClass *klass) {
    G_OBJECT_CLASS(klass)->finalize = m3_test_file_info_finalize;
}

static NautilusFileInfo *file_info_new(const char *uri, GFileType type, const char *activation_uri, gboolean gone) {
    M3TestFileInfo *self = g_object_new(M3_TYPE_TEST_FILE_INFO, NULL);
    self->location = g_file_new_for_uri(uri);
    self->type = type;
    self->activation_uri = g_strdup(activation_uri);
    self->gone = gone;
    return NAUTILUS_FILE_INFO(self);
}

// ---- the tests ----

static NautilusMenuProvider *provider;
static char *tmp_dir, *odd_file_path, *odd_file_uri;

// The items the provider offers for these files (a NULL-terminated argument list; the files are
// consumed, the items owned by the caller).
static GList *items_for(NautilusFileInfo *first, ...) {
    GList *files = NULL;
    va_list ap;
    va_start(ap, first);
    for (NautilusFileInfo *info = first; info != NULL; info = va_arg(ap, NautilusFileInfo *))
        files = g_list_append(files, info);
    va_end(ap);
    GList *items = nautilus_menu_provider_get_file_items(provider, files);
    g_list_free_full(files, g_object_unref);
    return items;
}

static void assert_one_find_similar_item(GList *items) {
    g_assert_cmpuint(g_list_length(items), ==, 1);
    g_autofree char *name = NULL, *label = NULL;
    g_object_get(items->data, "name", &name, "label", &label, NULL);
    g_assert_cmpstr(name, ==, "M3Search::find-similar");
    g_assert_cmpstr(label, ==, expected_label);
}

static char *module_binding;  // the gettext binding the module made when it was initialised

static void test_module_types(void) {
    // The module binds its gettext domain to the installed locale folder when it initialises.
    g_assert_cmpstr(module_binding, ==, install_localedir);
    g_assert_nonnull(provider);
    g_assert_true(NAUTILUS_IS_MENU_PROVIDER(provider));
}

static void test_one_local_file(void) {
    GList *items = items_for(file_info_new(odd_file_uri, G_FILE_TYPE_REGULAR, NULL, FALSE), NULL);
    assert_one_find_similar_item(items);
    g_list_free_full(items, g_object_unref);
}

static void test_local_file_seen_through_recent(void) {
    GList *items = items_for(file_info_new("recent:///a1b2c3", G_FILE_TYPE_REGULAR, odd_file_uri, FALSE), NULL);
    assert_one_find_similar_item(items);
    g_list_free_full(items, g_object_unref);
}

static void test_no_item(void) {
    static const struct {
        const char *uri;
        GFileType type;
        const char *activation_uri;
        gboolean gone;
    } cases[] = {
        {"file:///tmp", G_FILE_TYPE_DIRECTORY, NULL, FALSE},
        {"file:///dev/null", G_FILE_TYPE_SPECIAL, NULL, FALSE},
        {"file:///tmp/vanished.txt", G_FILE_TYPE_REGULAR, NULL, TRUE},
        {"sftp://server.example/home/me/letter.txt", G_FILE_TYPE_REGULAR, NULL, FALSE},
        {"smb://server.example/share/letter.txt", G_FILE_TYPE_REGULAR, NULL, FALSE},
        {"trash:///letter.txt", G_FILE_TYPE_REGULAR, NULL, FALSE},
        {"recent:///d4e5f6", G_FILE_TYPE_REGULAR, "sftp://server.example/letter.txt", FALSE},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GList *items = items_for(file_info_new(cases[i].uri, cases[i].type, cases[i].activation_uri, cases[i].gone), NULL);
        if (items != NULL) g_error("an item was offered for %s (case %zu)", cases[i].uri, i);
    }
    // Several files, even all regular and local: no item.
    GList *items = items_for(file_info_new(odd_file_uri, G_FILE_TYPE_REGULAR, NULL, FALSE),
                             file_info_new("file:///etc/hostname", G_FILE_TYPE_REGULAR, NULL, FALSE), NULL);
    g_assert_null(items);
    // No files, and the folder background: no item.
    g_assert_null(nautilus_menu_provider_get_file_items(provider, NULL));
    g_autoptr(NautilusFileInfo) folder = file_info_new("file:///tmp", G_FILE_TYPE_DIRECTORY, NULL, FALSE);
    g_assert_null(nautilus_menu_provider_get_background_items(provider, folder));
}

// Without the window on the bus (nothing owns the name, no .service file on this private bus) the
// activation fails politely: one warning naming the file, no crash, Nautilus carries on.
static char *warning_text;
static gboolean expected_warning_cb(const char *domain, GLogLevelFlags level, const char *message, gpointer data) {
    (void)data;
    return !(level & G_LOG_LEVEL_WARNING && g_strcmp0(domain, "m3search-nautilus") == 0 &&
             strstr(message, "could not open") != NULL);  // FALSE: not fatal
}
static void warning_cb(const char *domain, GLogLevelFlags level, const char *message, gpointer loop) {
    (void)domain, (void)level;
    warning_text = g_strdup(message);
    g_main_loop_quit(loop);
}

static gboolean timeout_cb(gpointer loop);

static void test_activate_without_application(void) {
    if (g_getenv("DBUS_SESSION_BUS_ADDRESS") == NULL) {
        g_test_skip("no private session bus (run under dbus-run-session)");
        return;
    }
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_test_log_set_fatal_handler(expected_warning_cb, NULL);
    guint handler = g_log_set_handler("m3search-nautilus", G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION, warning_cb, loop);
    GList *items = items_for(file_info_new(odd_file_uri, G_FILE_TYPE_REGULAR, NULL, FALSE), NULL);
    assert_one_find_similar_item(items);
    nautilus_menu_item_activate(items->data);
    g_list_free_full(items, g_object_unref);
    guint timeout = g_timeout_add_seconds(10, timeout_cb, loop);
    g_main_loop_run(loop);
    g_log_remove_handler("m3search-nautilus", handler);
    g_test_log_set_fatal_handler(NULL, NULL);
    g_assert_nonnull(warning_text);
    g_source_remove(timeout);
    g_assert_nonnull(strstr(warning_text, odd_file_uri));
    g_assert_nonnull(strstr(warning_text, "org.m3search.Search"));
    g_free(warning_text);
}

// The stand-in for the window: a GApplication with the window's id and its find-similar action.
static char *received_uri;
static void find_similar_cb(GSimpleAction *action, GVariant *parameter, gpointer loop) {
    (void)action;
    received_uri = g_variant_dup_string(parameter, NULL);
    g_main_loop_quit(loop);
}

static gboolean timeout_cb(gpointer loop) {
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

static void test_activate_reaches_application(void) {
    if (g_getenv("DBUS_SESSION_BUS_ADDRESS") == NULL) {
        g_test_skip("no private session bus (run under dbus-run-session)");
        return;
    }
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GApplication) app = g_application_new("org.m3search.Search", G_APPLICATION_IS_SERVICE);
    g_autoptr(GSimpleAction) action = g_simple_action_new("find-similar", G_VARIANT_TYPE_STRING);
    g_signal_connect(action, "activate", G_CALLBACK(find_similar_cb), loop);
    g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(action));
    g_autoptr(GError) error = NULL;
    g_assert_true(g_application_register(app, NULL, &error));
    g_assert_no_error(error);
    g_assert_false(g_application_get_is_remote(app));

    GList *items = items_for(file_info_new(odd_file_uri, G_FILE_TYPE_REGULAR, NULL, FALSE), NULL);
    assert_one_find_similar_item(items);
    nautilus_menu_item_activate(items->data);
    g_list_free_full(items, g_object_unref);  // the call in flight must not depend on the item
    guint timeout = g_timeout_add_seconds(10, timeout_cb, loop);
    g_main_loop_run(loop);
    if (received_uri != NULL) g_source_remove(timeout);
    g_assert_nonnull(received_uri);
    g_assert_cmpstr(received_uri, ==, odd_file_uri);
    g_autoptr(GFile) received = g_file_new_for_uri(received_uri);
    g_autofree char *received_path = g_file_get_path(received);
    g_assert_cmpstr(received_path, ==, odd_file_path);
    g_free(received_uri);
}

int main(int argc, char **argv) {
    setlocale(LC_ALL, "");
    g_test_init(&argc, &argv, NULL);
    if (argc != 5) {
        g_printerr("usage: %s MODULE BUILD_LOCALEDIR INSTALL_LOCALEDIR EXPECTED_LABEL\n", argv[0]);
        return 2;
    }
    module_path = argv[1];
    build_localedir = argv[2];
    install_localedir = argv[3];
    expected_label = argv[4];

    // A file name that would break any command line built from it.
    tmp_dir = g_dir_make_tmp("m3-nautilus-XXXXXX", NULL);
    g_assert_nonnull(tmp_dir);
    odd_file_path = g_build_filename(tmp_dir, "it's \"a\" $(touch pwned) ü;rm -rf ~ #1.txt", NULL);
    g_assert_true(g_file_set_contents(odd_file_path, "Steuererklärung\n", -1, NULL));
    odd_file_uri = g_filename_to_uri(odd_file_path, NULL, NULL);

    M3TestModule *module = g_object_new(M3_TYPE_TEST_MODULE, NULL);
    g_assert_true(g_type_module_use(G_TYPE_MODULE(module)));  // never unused, as in Nautilus
    module_binding = g_strdup(bindtextdomain("m3search", NULL));
    const GType *types = NULL;
    int n_types = 0;
    module->list_types(&types, &n_types);
    for (int i = 0; i < n_types; i++) {
        GObject *object = g_object_new(types[i], NULL);
        if (NAUTILUS_IS_MENU_PROVIDER(object) && provider == NULL) provider = NAUTILUS_MENU_PROVIDER(object);
        else g_object_unref(object);
    }
    // Labels come from the .mo files built in this tree, not from an installed copy.
    bindtextdomain("m3search", build_localedir);

    g_test_add_func("/nautilus/module", test_module_types);
    g_test_add_func("/nautilus/one-local-file", test_one_local_file);
    g_test_add_func("/nautilus/recent-local-file", test_local_file_seen_through_recent);
    g_test_add_func("/nautilus/no-item", test_no_item);
    g_test_add_func("/nautilus/activate-without-application", test_activate_without_application);
    g_test_add_func("/nautilus/activate", test_activate_reaches_application);
    int status = g_test_run();

    if (provider != NULL) g_object_unref(provider);
    g_free(module_binding);
    g_unlink(odd_file_path);
    g_rmdir(tmp_dir);
    g_free(odd_file_path);
    g_free(odd_file_uri);
    g_free(tmp_dir);
    return status;
}
