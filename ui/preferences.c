// SPDX-License-Identifier: MIT
#include "preferences.h"

#include <glib/gi18n.h>

#include "display-path.h"
#include "vulkan-devices.h"

struct _M3Preferences {
    AdwPreferencesWindow parent_instance;
    GtkListBox *folders_list;
    AdwEntryRow *exclude_row;
    GtkSwitch *hidden_switch, *removable_switch, *battery_switch;
    AdwComboRow *backend_row;
    GtkSpinButton *threads_spin, *wd_spin, *ws_spin, *wc_spin;
    AdwActionRow *model_row, *index_row;

    GSettings *settings;
    GDBusProxy *indexer;
    GCancellable *life;
    GStrv backends;  // the setting value of each backend_row item
    // What the running service says it indexes (its Status): its folders may be others than the
    // settings' (m3searchd --folder); NULL until a Status reply came.
    GStrv service_folders;
    gboolean syncing;
};

G_DEFINE_FINAL_TYPE(M3Preferences, m3_preferences, ADW_TYPE_PREFERENCES_WINDOW)

static const struct {
    const char *key;
    GUserDirectory dir;
} xdg_folders[] = {
    {"&DESKTOP", G_USER_DIRECTORY_DESKTOP},     {"&DOCUMENTS", G_USER_DIRECTORY_DOCUMENTS},
    {"&DOWNLOAD", G_USER_DIRECTORY_DOWNLOAD},   {"&MUSIC", G_USER_DIRECTORY_MUSIC},
    {"&PICTURES", G_USER_DIRECTORY_PICTURES},   {"&PUBLICSHARE", G_USER_DIRECTORY_PUBLIC_SHARE},
    {"&TEMPLATES", G_USER_DIRECTORY_TEMPLATES}, {"&VIDEOS", G_USER_DIRECTORY_VIDEOS},
};

char *m3_preferences_expand_folder(const char *entry) {
    for (size_t i = 0; i < G_N_ELEMENTS(xdg_folders); i++)
        if (g_str_equal(entry, xdg_folders[i].key)) {
            const char *dir = g_get_user_special_dir(xdg_folders[i].dir);
            return dir ? g_strdup(dir) : NULL;
        }
    if (entry[0] == '~' && (entry[1] == '/' || entry[1] == '\0'))
        return g_build_filename(g_get_home_dir(), entry + 1, NULL);
    return g_strdup(entry);
}

// ---- Folders ----

static void remove_folder_cb(GtkButton *button, M3Preferences *self) {
    const char *entry = g_object_get_data(G_OBJECT(button), "m3-folder");
    g_auto(GStrv) folders = g_settings_get_strv(self->settings, "folders");
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    for (char **f = folders; *f; f++)
        if (!g_str_equal(*f, entry))
            g_strv_builder_add(b, *f);
    g_auto(GStrv) kept = g_strv_builder_end(b);
    g_settings_set_strv(self->settings, "folders", (const char *const *)kept);
}

static void load_folders(M3Preferences *self) {
    GtkWidget *child;
    while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->folders_list))))
        gtk_list_box_remove(self->folders_list, child);
    g_auto(GStrv) folders = g_settings_get_strv(self->settings, "folders");
    for (char **f = folders; *f; f++) {
        g_autofree char *path = m3_preferences_expand_folder(*f);
        GtkWidget *row = adw_action_row_new();
        g_autofree char *display = path ? m3_display_path(path) : g_strdup(*f);
        g_autofree char *escaped = g_markup_escape_text(display, -1);
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), escaped);
        if (!path)
            adw_action_row_set_subtitle(ADW_ACTION_ROW(row), _("This folder is not set up on this computer"));
        GtkWidget *remove = gtk_button_new_from_icon_name("user-trash-symbolic");
        gtk_widget_set_valign(remove, GTK_ALIGN_CENTER);
        gtk_widget_add_css_class(remove, "flat");
        g_autofree char *label = g_strdup_printf(_("Remove %s"), display);
        gtk_widget_set_tooltip_text(remove, label);
        gtk_accessible_update_property(GTK_ACCESSIBLE(remove), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
        g_object_set_data_full(G_OBJECT(remove), "m3-folder", g_strdup(*f), g_free);
        g_signal_connect(remove, "clicked", G_CALLBACK(remove_folder_cb), self);
        adw_action_row_add_prefix(ADW_ACTION_ROW(row), gtk_image_new_from_icon_name("folder-symbolic"));
        adw_action_row_add_suffix(ADW_ACTION_ROW(row), remove);
        gtk_list_box_append(self->folders_list, row);
    }
    if (!folders[0]) {
        GtkWidget *row = adw_action_row_new();
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), _("No folders: nothing will be indexed"));
        gtk_list_box_append(self->folders_list, row);
    }
}

static void folder_chosen_cb(GtkNativeDialog *dialog, int response, M3Preferences *self) {
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        g_autofree char *path = file ? g_file_get_path(file) : NULL;
        g_auto(GStrv) folders = g_settings_get_strv(self->settings, "folders");
        if (path && !g_strv_contains((const char *const *)folders, path)) {
            g_autoptr(GStrvBuilder) b = g_strv_builder_new();
            g_strv_builder_addv(b, (const char **)folders);
            g_strv_builder_add(b, path);
            g_auto(GStrv) more = g_strv_builder_end(b);
            g_settings_set_strv(self->settings, "folders", (const char *const *)more);
        }
    }
    g_object_unref(dialog);
}

static void add_folder_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    GtkFileChooserNative *dialog = gtk_file_chooser_native_new(
        _("Add a Folder to Index"), GTK_WINDOW(widget), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Add"), _("_Cancel"));
    gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dialog), TRUE);
    g_signal_connect(dialog, "response", G_CALLBACK(folder_chosen_cb), widget);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

// ---- Names to skip ----

static void load_excludes(M3Preferences *self) {
    g_auto(GStrv) patterns = g_settings_get_strv(self->settings, "exclude-patterns");
    g_autofree char *text = g_strjoinv(" ", patterns);
    gtk_editable_set_text(GTK_EDITABLE(self->exclude_row), text);
}

static void excludes_apply_cb(M3Preferences *self) {
    const char *text = gtk_editable_get_text(GTK_EDITABLE(self->exclude_row));
    g_auto(GStrv) parts = g_strsplit_set(text, " \t\n", -1);
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    for (char **p = parts; *p; p++)
        if (**p)
            g_strv_builder_add(b, *p);
    g_auto(GStrv) patterns = g_strv_builder_end(b);
    g_settings_set_strv(self->settings, "exclude-patterns", (const char *const *)patterns);
}

// ---- Backend ----

static void load_backend(M3Preferences *self) {
    g_autofree char *current = g_settings_get_string(self->settings, "backend");
    guint selected = 0;
    for (guint i = 0; self->backends[i]; i++)
        if (g_str_equal(self->backends[i], current))
            selected = i;
    self->syncing = TRUE;
    adw_combo_row_set_selected(self->backend_row, selected);
    self->syncing = FALSE;
}

static void backend_selected_cb(M3Preferences *self) {
    guint i = adw_combo_row_get_selected(self->backend_row);
    if (!self->syncing && i < g_strv_length(self->backends))
        g_settings_set_string(self->settings, "backend", self->backends[i]);
}

// Lists auto, CPU, the first GPU, then each Vulkan device by name (the setting's current value too,
// even when that device is not present now).
static void fill_backends(M3Preferences *self, char **devices) {
    GtkStringList *names = gtk_string_list_new(NULL);
    g_autoptr(GStrvBuilder) values = g_strv_builder_new();
    // Short: the row shows the choice beside its title (its subtitle says what automatic picks).
    gtk_string_list_append(names, _("Automatic"));
    g_strv_builder_add(values, "auto");
    gtk_string_list_append(names, _("Processor (CPU)"));
    g_strv_builder_add(values, "cpu");
    gtk_string_list_append(names, _("Graphics card (Vulkan)"));
    g_strv_builder_add(values, "vulkan");
    g_autofree char *current = g_settings_get_string(self->settings, "backend");
    gboolean current_listed = !g_str_has_prefix(current, "vulkan:");
    for (char **d = devices; d && *d; d++) {
        g_autofree char *value = g_strconcat("vulkan:", *d, NULL);
        current_listed |= g_str_equal(value, current);
        gtk_string_list_append(names, *d);
        g_strv_builder_add(values, value);
    }
    if (!current_listed) {
        gtk_string_list_append(names, current + strlen("vulkan:"));
        g_strv_builder_add(values, current);
    }
    g_strfreev(self->backends);
    self->backends = g_strv_builder_end(values);
    self->syncing = TRUE;
    adw_combo_row_set_model(self->backend_row, G_LIST_MODEL(names));
    self->syncing = FALSE;
    g_object_unref(names);
    load_backend(self);
}

static void devices_cb(GObject *source, GAsyncResult *res, gpointer user) {
    (void)source;
    g_auto(GStrv) devices = m3_vulkan_devices_finish(res, NULL);
    if (devices)
        fill_backends(M3_PREFERENCES(user), devices);
}

// ---- Weights, model, index ----

static void load_weights(M3Preferences *self) {
    g_autoptr(GVariant) w = g_settings_get_value(self->settings, "weights");
    gsize n = 0;
    const double *v = g_variant_get_fixed_array(w, &n, sizeof(double));
    GtkSpinButton *spins[3] = {self->wd_spin, self->ws_spin, self->wc_spin};
    self->syncing = TRUE;
    for (gsize i = 0; i < 3; i++)
        gtk_spin_button_set_value(spins[i], i < n ? v[i] : 0);
    self->syncing = FALSE;
}

static void weights_changed_cb(M3Preferences *self) {
    if (self->syncing)
        return;
    double w[3] = {gtk_spin_button_get_value(self->wd_spin), gtk_spin_button_get_value(self->ws_spin),
                   gtk_spin_button_get_value(self->wc_spin)};
    g_settings_set_value(self->settings, "weights", g_variant_new_fixed_array(G_VARIANT_TYPE_DOUBLE, w, 3, sizeof(double)));
}

static void load_model(M3Preferences *self) {
    g_autofree char *model = g_settings_get_string(self->settings, "model");
    g_autofree char *escaped = g_markup_escape_text(*model ? model : _("None yet"), -1);
    adw_action_row_set_subtitle(self->model_row, escaped);
}

static void model_chosen_cb(GtkNativeDialog *dialog, int response, M3Preferences *self) {
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        g_autofree char *path = file ? g_file_get_path(file) : NULL;
        if (path)
            g_settings_set_string(self->settings, "model", path);
    }
    g_object_unref(dialog);
}

static void choose_model_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    GtkFileChooserNative *dialog = gtk_file_chooser_native_new(
        _("Choose the Model File (.gguf)"), GTK_WINDOW(widget), GTK_FILE_CHOOSER_ACTION_OPEN, _("_Choose"), _("_Cancel"));
    GtkFileFilter *filter = gtk_file_filter_new();
    gtk_file_filter_set_name(filter, _("One-file models (.gguf)"));
    gtk_file_filter_add_pattern(filter, "*.gguf");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(dialog), filter);
    g_object_unref(filter);
    gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dialog), TRUE);
    g_signal_connect(dialog, "response", G_CALLBACK(model_chosen_cb), widget);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

static void show_index(M3Preferences *self, GVariant *reply);

static void status_cb(GObject *source, GAsyncResult *res, gpointer user) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    show_index(M3_PREFERENCES(user), reply);
}

// The index row: where the index is and, from the service's Status reply, how big it is. The
// running service's own model, index folder and folders win over the settings where they differ (a
// service started with --model, --index or --folder).
static void show_index(M3Preferences *self, GVariant *reply) {
    g_autofree char *folder = g_settings_get_string(self->settings, "index-folder");
    if (!*folder) {
        g_free(folder);
        folder = g_build_filename(g_get_user_data_dir(), "m3search", "index", NULL);
    }
    g_autofree char *text = NULL;
    guint64 bytes = 0;
    if (reply) {
        g_autoptr(GVariant) status = g_variant_get_child_value(reply, 0);
        g_variant_lookup(status, "index-bytes", "t", &bytes);
        const char *s = NULL;
        if (g_variant_lookup(status, "index-folder", "&s", &s) && *s) {
            g_free(folder);
            folder = g_strdup(s);
        }
        if (g_variant_lookup(status, "model", "&s", &s) && *s) {
            g_autofree char *escaped = g_markup_escape_text(s, -1);
            adw_action_row_set_subtitle(self->model_row, escaped);
        }
        g_strfreev(self->service_folders);
        self->service_folders = NULL;
        g_variant_lookup(status, "folders", "^as", &self->service_folders);
        g_autofree char *size = g_format_size(bytes);
        text = g_strdup_printf(_("%s — %s"), folder, size);
    } else {
        text = g_strdup(folder);
    }
    g_autofree char *escaped = g_markup_escape_text(text, -1);
    adw_action_row_set_subtitle(self->index_row, escaped);
}

static void rebuild_response_cb(AdwMessageDialog *dialog, const char *response, M3Preferences *self) {
    (void)dialog;
    if (!g_str_equal(response, "rebuild") || !self->indexer)
        return;
    // The service's folders (Reindex refuses paths outside them), else the settings'.
    g_auto(GStrv) folders = self->service_folders ? g_strdupv(self->service_folders)
                                                  : g_settings_get_strv(self->settings, "folders");
    for (char **f = folders; *f; f++) {
        g_autofree char *path = m3_preferences_expand_folder(*f);
        if (path)
            g_dbus_proxy_call(self->indexer, "Reindex", g_variant_new("(s)", path), G_DBUS_CALL_FLAGS_NONE, -1,
                              NULL, NULL, NULL);
    }
    adw_preferences_window_add_toast(ADW_PREFERENCES_WINDOW(self), adw_toast_new(_("Every file will be read again")));
}

static void rebuild_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    GtkWidget *dialog = adw_message_dialog_new(GTK_WINDOW(widget), _("Rebuild the Index?"),
                                               _("Every document is read and encoded again. Searching keeps "
                                                 "working meanwhile, but indexing may take a long time."));
    adw_message_dialog_add_responses(ADW_MESSAGE_DIALOG(dialog), "cancel", _("_Cancel"), "rebuild", _("_Rebuild"), NULL);
    adw_message_dialog_set_response_appearance(ADW_MESSAGE_DIALOG(dialog), "rebuild", ADW_RESPONSE_DESTRUCTIVE);
    g_signal_connect(dialog, "response", G_CALLBACK(rebuild_response_cb), widget);
    gtk_window_present(GTK_WINDOW(dialog));
}

// ---- Object ----

static void settings_changed_cb(GSettings *settings, const char *key, M3Preferences *self) {
    (void)settings;
    if (g_str_equal(key, "folders"))
        load_folders(self);
    else if (g_str_equal(key, "exclude-patterns"))
        load_excludes(self);
    else if (g_str_equal(key, "weights"))
        load_weights(self);
    else if (g_str_equal(key, "model"))
        load_model(self);
    else if (g_str_equal(key, "backend"))
        load_backend(self);
}

static void m3_preferences_dispose(GObject *object) {
    M3Preferences *self = M3_PREFERENCES(object);
    g_cancellable_cancel(self->life);
    if (self->settings)
        g_signal_handlers_disconnect_by_data(self->settings, self);
    gtk_widget_dispose_template(GTK_WIDGET(object), M3_TYPE_PREFERENCES);
    G_OBJECT_CLASS(m3_preferences_parent_class)->dispose(object);
}

static void m3_preferences_finalize(GObject *object) {
    M3Preferences *self = M3_PREFERENCES(object);
    g_clear_object(&self->life);
    g_clear_object(&self->settings);
    g_clear_object(&self->indexer);
    g_strfreev(self->backends);
    g_strfreev(self->service_folders);
    G_OBJECT_CLASS(m3_preferences_parent_class)->finalize(object);
}

static void m3_preferences_class_init(M3PreferencesClass *klass) {
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->dispose = m3_preferences_dispose;
    G_OBJECT_CLASS(klass)->finalize = m3_preferences_finalize;
    gtk_widget_class_set_template_from_resource(wc, "/org/m3search/Search/preferences.ui");
#define CHILD(name) gtk_widget_class_bind_template_child(wc, M3Preferences, name)
    CHILD(folders_list), CHILD(exclude_row), CHILD(hidden_switch), CHILD(removable_switch);
    CHILD(battery_switch), CHILD(backend_row), CHILD(threads_spin), CHILD(wd_spin), CHILD(ws_spin);
    CHILD(wc_spin), CHILD(model_row), CHILD(index_row);
#undef CHILD
    gtk_widget_class_install_action(wc, "prefs.add-folder", NULL, add_folder_action);
    gtk_widget_class_install_action(wc, "prefs.choose-model", NULL, choose_model_action);
    gtk_widget_class_install_action(wc, "prefs.rebuild", NULL, rebuild_action);
    gtk_widget_class_add_binding_action(wc, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void m3_preferences_init(M3Preferences *self) {
    gtk_widget_init_template(GTK_WIDGET(self));
    self->life = g_cancellable_new();
    self->settings = g_settings_new("org.m3search.Search");
    g_settings_bind(self->settings, "index-hidden", self->hidden_switch, "active", G_SETTINGS_BIND_DEFAULT);
    g_settings_bind(self->settings, "index-removable", self->removable_switch, "active", G_SETTINGS_BIND_DEFAULT);
    g_settings_bind(self->settings, "pause-on-battery", self->battery_switch, "active", G_SETTINGS_BIND_DEFAULT);
    g_settings_bind(self->settings, "cpu-threads", gtk_spin_button_get_adjustment(self->threads_spin), "value",
                    G_SETTINGS_BIND_DEFAULT);
    g_signal_connect(self->settings, "changed", G_CALLBACK(settings_changed_cb), self);
    load_folders(self);
    load_excludes(self);
    load_weights(self);
    load_model(self);
    fill_backends(self, NULL);
    g_signal_connect_swapped(self->backend_row, "notify::selected", G_CALLBACK(backend_selected_cb), self);
    g_signal_connect_swapped(self->exclude_row, "apply", G_CALLBACK(excludes_apply_cb), self);
    g_signal_connect_swapped(self->wd_spin, "value-changed", G_CALLBACK(weights_changed_cb), self);
    g_signal_connect_swapped(self->ws_spin, "value-changed", G_CALLBACK(weights_changed_cb), self);
    g_signal_connect_swapped(self->wc_spin, "value-changed", G_CALLBACK(weights_changed_cb), self);
    m3_vulkan_devices_async(self->life, devices_cb, self);
}

GtkWindow *m3_preferences_new(GtkWindow *parent, GDBusProxy *indexer) {
    M3Preferences *self = g_object_new(M3_TYPE_PREFERENCES, "transient-for", parent, NULL);
    self->indexer = indexer ? g_object_ref(indexer) : NULL;
    if (indexer)
        g_dbus_proxy_call(indexer, "Status", NULL, G_DBUS_CALL_FLAGS_NONE, -1, self->life, status_cb, self);
    else
        show_index(self, NULL);
    return GTK_WINDOW(self);
}
