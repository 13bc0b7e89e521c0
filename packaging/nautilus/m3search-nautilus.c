// SPDX-License-Identifier: MIT
//
// "Find Similar Documents" in Nautilus 43+ (libnautilus-extension-4).
//
// Nautilus loads this module from its extension folder, calls nautilus_module_initialize() with a
// GTypeModule, asks nautilus_module_list_types() for the types to instantiate and uses the
// NautilusMenuProvider among them. The item appears for exactly one selected regular file whose
// activation URI is a local file:// URI; folders, several files and remote or virtual locations
// (sftp://, smb://, trash://) get nothing. Activating it asks the window to open "find similar" for
// that file through D-Bus activation of the application org.m3search.Search:
//   org.freedesktop.Application.ActivateAction("find-similar", [<'file:///...'>], {})
// No shell and no command line is built from the file name; the URI travels as a D-Bus string.
// The session bus starts the window (its .service file) when it is not running.
//
// Threads: everything runs on Nautilus's main thread; the D-Bus call is asynchronous so a slow or
// missing window never blocks the file manager.

#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <nautilus-extension.h>

#define M3_APP_BUS_NAME "org.m3search.Search"
#define M3_APP_OBJECT_PATH "/org/m3search/Search"
#define M3_MENU_ITEM_NAME "M3Search::find-similar"

#define M3_TYPE_NAUTILUS_PROVIDER (m3_nautilus_provider_get_type())
G_DECLARE_FINAL_TYPE(M3NautilusProvider, m3_nautilus_provider, M3, NAUTILUS_PROVIDER, GObject)

struct _M3NautilusProvider {
    GObject parent_instance;
};

static void m3_nautilus_provider_menu_iface_init(NautilusMenuProviderInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED(M3NautilusProvider, m3_nautilus_provider, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                               G_IMPLEMENT_INTERFACE_DYNAMIC(NAUTILUS_TYPE_MENU_PROVIDER,
                                                             m3_nautilus_provider_menu_iface_init))

// The file:// URI the window should look at, or NULL when the item must not be offered.
// The activation URI is used so that a local file seen through recent:/// still qualifies.
static char *local_regular_file_uri(NautilusFileInfo *info) {
    if (nautilus_file_info_is_gone(info) || nautilus_file_info_get_file_type(info) != G_FILE_TYPE_REGULAR)
        return NULL;
    g_autofree char *uri = nautilus_file_info_get_activation_uri(info);
    if (uri == NULL) return NULL;
    g_autoptr(GFile) file = g_file_new_for_uri(uri);
    if (!g_file_has_uri_scheme(file, "file") || !g_file_is_native(file)) return NULL;
    return g_file_get_uri(file);  // canonical form
}

static void activate_action_done_cb(GObject *source, GAsyncResult *result, gpointer user_data) {
    g_autofree char *uri = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
    if (reply == NULL)
        g_warning("m3search: could not open \"find similar\" for %s: %s (is m3search installed?)", uri,
                  error->message);
}

static void bus_ready_cb(GObject *source, GAsyncResult *result, gpointer user_data) {
    (void)source;
    char *uri = user_data;  // owned; handed on to activate_action_done_cb
    g_autoptr(GError) error = NULL;
    g_autoptr(GDBusConnection) bus = g_bus_get_finish(result, &error);
    if (bus == NULL) {
        g_warning("m3search: no session bus to open \"find similar\" for %s: %s", uri, error->message);
        g_free(uri);
        return;
    }
    GVariantBuilder params;
    g_variant_builder_init(&params, G_VARIANT_TYPE("av"));
    g_variant_builder_add(&params, "v", g_variant_new_string(uri));
    g_dbus_connection_call(bus, M3_APP_BUS_NAME, M3_APP_OBJECT_PATH, "org.freedesktop.Application",
                           "ActivateAction", g_variant_new("(sava{sv})", "find-similar", &params, NULL), NULL,
                           G_DBUS_CALL_FLAGS_NONE, -1, NULL, activate_action_done_cb, uri);
}

static void find_similar_activate_cb(NautilusMenuItem *item, gpointer user_data) {
    (void)item;
    const char *uri = user_data;
    g_bus_get(G_BUS_TYPE_SESSION, NULL, bus_ready_cb, g_strdup(uri));
}

static GList *m3_nautilus_provider_get_file_items(NautilusMenuProvider *provider, GList *files) {
    (void)provider;
    if (files == NULL || files->next != NULL) return NULL;  // exactly one selected file
    char *uri = local_regular_file_uri(NAUTILUS_FILE_INFO(files->data));
    if (uri == NULL) return NULL;
    NautilusMenuItem *item = nautilus_menu_item_new(
        M3_MENU_ITEM_NAME, _("Find Similar Documents"),
        _("Show the indexed documents whose content is most like this file"), "org.m3search.Search-symbolic");
    g_signal_connect_data(item, "activate", G_CALLBACK(find_similar_activate_cb), uri, (GClosureNotify)(void (*)(void))g_free, 0);
    return g_list_append(NULL, item);
}

static void m3_nautilus_provider_menu_iface_init(NautilusMenuProviderInterface *iface) {
    iface->get_file_items = m3_nautilus_provider_get_file_items;
}

static void m3_nautilus_provider_init(M3NautilusProvider *self) { (void)self; }
static void m3_nautilus_provider_class_init(M3NautilusProviderClass *klass) { (void)klass; }
static void m3_nautilus_provider_class_finalize(M3NautilusProviderClass *klass) { (void)klass; }

static GType provider_types[1];

// The module's entry points, looked up by name by Nautilus.
G_MODULE_EXPORT void nautilus_module_initialize(GTypeModule *module) {
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    m3_nautilus_provider_register_type(module);
    provider_types[0] = M3_TYPE_NAUTILUS_PROVIDER;
}

G_MODULE_EXPORT void nautilus_module_shutdown(void) {}

G_MODULE_EXPORT void nautilus_module_list_types(const GType **types, int *num_types) {
    *types = provider_types;
    *num_types = G_N_ELEMENTS(provider_types);
}
