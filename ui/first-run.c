// SPDX-License-Identifier: MIT
#include "first-run.h"

#include <errno.h>
#include <math.h>

#include <glib/gi18n.h>

#include "display-path.h"
#include "fetch/fetch.h"
#include "model/model.h"
#include "preferences.h"
#include "stack-page.h"

struct _M3FirstRun {
    AdwWindow parent_instance;
    GtkStack *stack;
    AdwStatusPage *progress_page;
    GtkButton *download_button, *cache_button, *cancel_button;
    GtkLabel *model_error, *progress_label;
    GtkProgressBar *progress;
    GtkListBox *folders_list;

    GSettings *settings;
    char *cached;       // a complete Hugging Face cache snapshot of BAAI/bge-m3, or NULL
    char *model;        // the model file chosen or made
    gint cancel;        // set (atomically) by Cancel; the download's progress callback reads it
    guint pulse;        // the bar's pulse timer while converting
    GPtrArray *checks;  // the folder check buttons (each with its "folders" entry as "m3-folder")
};

G_DEFINE_FINAL_TYPE(M3FirstRun, m3_first_run, ADW_TYPE_WINDOW)

static void convert_model(M3FirstRun *self, const char *folder);

// ---- Words for sizes and times ----

static char *progress_text(guint64 done, guint64 total, double rate, double eta) {
    g_autofree char *d = g_format_size(done);
    g_autofree char *t = g_format_size(total);
    GString *s = g_string_new(NULL);
    if (total)
        g_string_append_printf(s, _("%s of %s"), d, t);
    else
        g_string_append(s, d);
    if (rate > 0) {
        g_autofree char *r = g_format_size((guint64)rate);
        g_string_append(s, " · ");
        g_string_append_printf(s, _("%s/s"), r);
    }
    if (eta >= 0 && isfinite(eta)) {
        guint m = (guint)ceil(eta / 60);
        g_string_append(s, " · ");
        if (eta < 60)
            g_string_append(s, _("less than a minute left"));
        else
            g_string_append_printf(s, g_dngettext(NULL, "about %u minute left", "about %u minutes left", m), m);
    }
    return g_string_free(s, FALSE);
}

// ---- Download (worker thread) ----

typedef struct progress_msg {
    M3FirstRun *self;  // a reference
    guint64 done, total;
    double rate, eta;
    char *file;
} progress_msg;

typedef struct download_job {
    M3FirstRun *self;  // kept alive by the task (its source object)
    gint64 last_us;    // the last progress message sent (worker side)
} download_job;

static gboolean progress_idle(gpointer user) {
    progress_msg *m = user;
    M3FirstRun *self = m->self;
    if (self->progress) {
        gtk_progress_bar_set_fraction(self->progress, m->total ? (double)m->done / (double)m->total : 0.0);
        g_autofree char *text = progress_text(m->done, m->total, m->rate, m->eta);
        gtk_label_set_text(self->progress_label, text);
    }
    g_object_unref(m->self);
    g_free(m->file);
    g_free(m);
    return G_SOURCE_REMOVE;
}

static int fetch_progress_cb(const m3_fetch_progress *p, void *user) {
    download_job *job = user;
    if (g_atomic_int_get(&job->self->cancel))
        return 1;
    gint64 now = g_get_monotonic_time();
    // At most ten redraws a second, and every file's end.
    if (p->event == M3_FETCH_EVENT_PROGRESS && now - job->last_us < 100000)
        return 0;
    job->last_us = now;
    progress_msg *m = g_new0(progress_msg, 1);
    *m = (progress_msg){g_object_ref(job->self), p->done, p->total, p->rate, p->eta_s, g_strdup(p->file)};
    g_main_context_invoke(NULL, progress_idle, m);
    return 0;
}

static void download_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable) {
    (void)source, (void)cancellable;
    download_job *job = data;
    m3_fetch_options opt = {0};
    opt.progress = fetch_progress_cb;
    opt.progress_user = job;
    opt.hf_cache = "";  // the cache was offered on its own button; this button downloads
    char *dir = NULL;
    m3_error err = {0};
    m3_status st = m3_fetch_model(&opt, &dir, NULL, &err);
    if (st != M3_STATUS_OK) {
        int code = err.code == ECANCELED ? G_IO_ERROR_CANCELLED : G_IO_ERROR_FAILED;
        g_task_return_new_error(task, G_IO_ERROR, code, "%s", err.message);
        return;
    }
    g_task_return_pointer(task, dir, free);
}

// Whether an earlier download left partial files: the button then says Resume.
static gboolean has_partial_download(void) {
    char *dir = NULL;
    m3_error err = {0};
    if (m3_fetch_default_dir(&dir, &err) != M3_STATUS_OK)
        return FALSE;
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    free(dir);
    const char *name;
    while (d && (name = g_dir_read_name(d)))
        if (g_str_has_suffix(name, ".part"))
            return TRUE;
    return FALSE;
}

static void show_model_page(M3FirstRun *self, const char *error) {
    gtk_label_set_text(self->model_error, error ? error : "");
    gtk_button_set_label(self->download_button, has_partial_download() ? _("_Resume the Download")
                                                                       : _("_Download the Model (2.3 GB)"));
    m3_stack_show(self->stack, "model");
}

static void download_done_cb(GObject *source, GAsyncResult *res, gpointer user) {
    (void)user;
    M3FirstRun *self = M3_FIRST_RUN(source);
    g_autoptr(GError) error = NULL;
    char *dir = g_task_propagate_pointer(G_TASK(res), &error);
    if (!self->stack) {
        free(dir);
        return;  // the window was closed meanwhile
    }
    if (!dir) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            show_model_page(self, _("The download was stopped. It continues where it stopped when you download again."));
        else {
            g_autofree char *text = g_strdup_printf(_("The download failed: %s"), error->message);
            show_model_page(self, text);
        }
        return;
    }
    convert_model(self, dir);
    free(dir);
}

static void download_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3FirstRun *self = M3_FIRST_RUN(widget);
    g_atomic_int_set(&self->cancel, 0);
    adw_status_page_set_title(self->progress_page, _("Downloading the Model"));
    gtk_progress_bar_set_fraction(self->progress, 0);
    gtk_label_set_text(self->progress_label, _("Connecting…"));
    gtk_widget_set_visible(GTK_WIDGET(self->cancel_button), TRUE);
    m3_stack_show(self->stack, "progress");
    download_job *job = g_new0(download_job, 1);
    job->self = self;  // the task holds self (its source object) until it is done
    GTask *task = g_task_new(self, NULL, download_done_cb, NULL);
    g_task_set_task_data(task, job, g_free);
    g_task_run_in_thread(task, download_thread);
    g_object_unref(task);
}

static void cancel_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3FirstRun *self = M3_FIRST_RUN(widget);
    g_atomic_int_set(&self->cancel, 1);
    gtk_label_set_text(self->progress_label, _("Stopping…"));
}

// ---- Convert to the one-file model (worker thread) ----

static void convert_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable) {
    (void)source, (void)cancellable;
    char **paths = data;  // {folder, file}
    m3_error err = {0};
    if (m3_model_convert(paths[0], paths[1], M3_DTYPE_F16, &err) != M3_STATUS_OK)
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
    else
        g_task_return_boolean(task, TRUE);
}

static void show_folders_page(M3FirstRun *self);

static void convert_done_cb(GObject *source, GAsyncResult *res, gpointer user) {
    (void)user;
    M3FirstRun *self = M3_FIRST_RUN(source);
    g_autoptr(GError) error = NULL;
    gboolean ok = g_task_propagate_boolean(G_TASK(res), &error);
    g_clear_handle_id(&self->pulse, g_source_remove);
    if (!self->stack)
        return;
    if (!ok) {
        g_autofree char *text = g_strdup_printf(_("The model could not be prepared: %s"), error->message);
        show_model_page(self, text);
        return;
    }
    char **paths = g_task_get_task_data(G_TASK(res));
    g_free(self->model);
    self->model = g_strdup(paths[1]);
    show_folders_page(self);
}

static gboolean pulse_cb(gpointer user) {
    gtk_progress_bar_pulse(M3_FIRST_RUN(user)->progress);
    return G_SOURCE_CONTINUE;
}

static void convert_model(M3FirstRun *self, const char *folder) {
    char *models = NULL;
    m3_error err = {0};
    g_autofree char *target = NULL;
    if (m3_fetch_default_dir(&models, &err) == M3_STATUS_OK) {
        g_autofree char *parent = g_path_get_dirname(models);
        target = g_build_filename(parent, "bge-m3.gguf", NULL);
        g_mkdir_with_parents(parent, 0700);
        free(models);
    } else {
        target = g_build_filename(g_get_user_data_dir(), "m3search", "bge-m3.gguf", NULL);
    }
    adw_status_page_set_title(self->progress_page, _("Preparing the Model"));
    gtk_label_set_text(self->progress_label, _("Making one file of the model, so that it loads in a moment…"));
    gtk_widget_set_visible(GTK_WIDGET(self->cancel_button), FALSE);
    m3_stack_show(self->stack, "progress");
    self->pulse = g_timeout_add(150, pulse_cb, self);
    char **paths = g_new0(char *, 3);
    paths[0] = g_strdup(folder);
    paths[1] = g_steal_pointer(&target);
    GTask *task = g_task_new(self, NULL, convert_done_cb, NULL);
    g_task_set_task_data(task, paths, (GDestroyNotify)g_strfreev);
    g_task_run_in_thread(task, convert_thread);
    g_object_unref(task);
}

// ---- Existing models ----

static void use_cache_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3FirstRun *self = M3_FIRST_RUN(widget);
    if (self->cached)
        convert_model(self, self->cached);
}

static void chosen_cb(GtkNativeDialog *dialog, int response, M3FirstRun *self) {
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        g_autofree char *path = file ? g_file_get_path(file) : NULL;
        if (path && g_file_test(path, G_FILE_TEST_IS_DIR)) {
            convert_model(self, path);
        } else if (path) {
            g_free(self->model);
            self->model = g_steal_pointer(&path);
            show_folders_page(self);
        }
    }
    g_object_unref(dialog);
}

static void choose(M3FirstRun *self, gboolean folder) {
    GtkFileChooserNative *dialog = gtk_file_chooser_native_new(
        folder ? _("Choose the Model Folder") : _("Choose the Model File"), GTK_WINDOW(self),
        folder ? GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER : GTK_FILE_CHOOSER_ACTION_OPEN, _("_Choose"), _("_Cancel"));
    if (!folder) {
        GtkFileFilter *filter = gtk_file_filter_new();
        gtk_file_filter_set_name(filter, _("One-file models (.gguf)"));
        gtk_file_filter_add_pattern(filter, "*.gguf");
        gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(dialog), filter);
        g_object_unref(filter);
    }
    gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dialog), TRUE);
    g_signal_connect(dialog, "response", G_CALLBACK(chosen_cb), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

static void choose_file_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    choose(M3_FIRST_RUN(widget), FALSE);
}

static void choose_folder_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    choose(M3_FIRST_RUN(widget), TRUE);
}

// ---- Folders and finish ----

static void add_folder_row(M3FirstRun *self, const char *entry, gboolean active) {
    g_autofree char *path = m3_preferences_expand_folder(entry);
    if (!path || !g_file_test(path, G_FILE_TEST_IS_DIR))
        return;
    g_autofree char *display = m3_display_path(path);
    g_autofree char *escaped = g_markup_escape_text(display, -1);
    GtkWidget *row = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), escaped);
    GtkWidget *check = gtk_check_button_new();
    gtk_check_button_set_active(GTK_CHECK_BUTTON(check), active);
    gtk_accessible_update_property(GTK_ACCESSIBLE(check), GTK_ACCESSIBLE_PROPERTY_LABEL, display, -1);
    g_object_set_data_full(G_OBJECT(check), "m3-folder", g_strdup(entry), g_free);
    adw_action_row_add_prefix(ADW_ACTION_ROW(row), check);
    adw_action_row_set_activatable_widget(ADW_ACTION_ROW(row), check);
    gtk_list_box_append(self->folders_list, row);
    g_ptr_array_add(self->checks, check);
}

static void show_folders_page(M3FirstRun *self) {
    if (self->checks->len == 0) {
        g_auto(GStrv) current = g_settings_get_strv(self->settings, "folders");
        static const char *const offered[] = {"&DOCUMENTS", "&DESKTOP", "&DOWNLOAD"};
        for (size_t i = 0; i < G_N_ELEMENTS(offered); i++)
            add_folder_row(self, offered[i], g_strv_contains((const char *const *)current, offered[i]));
        for (char **f = current; *f; f++)
            if (**f != '&')
                add_folder_row(self, *f, TRUE);
    }
    m3_stack_show(self->stack, "folders");
}

static void finish_action(GtkWidget *widget, const char *action, GVariant *param) {
    (void)action, (void)param;
    M3FirstRun *self = M3_FIRST_RUN(widget);
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    for (guint i = 0; i < self->checks->len; i++)
        if (gtk_check_button_get_active(self->checks->pdata[i]))
            g_strv_builder_add(b, g_object_get_data(self->checks->pdata[i], "m3-folder"));
    g_auto(GStrv) folders = g_strv_builder_end(b);
    g_settings_delay(self->settings);
    g_settings_set_strv(self->settings, "folders", (const char *const *)folders);
    g_settings_set_string(self->settings, "model", self->model);
    g_settings_apply(self->settings);
    // Asking for the state starts the service if it is not running (D-Bus activation).
    GDBusConnection *bus = g_application_get_dbus_connection(g_application_get_default());
    if (bus)
        g_dbus_connection_call(bus, "org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1", "Status",
                               NULL, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL, NULL);
    gtk_window_close(GTK_WINDOW(self));
}

// ---- Object ----

static void m3_first_run_dispose(GObject *object) {
    M3FirstRun *self = M3_FIRST_RUN(object);
    g_atomic_int_set(&self->cancel, 1);  // a download in flight stops; its .part files stay
    g_clear_handle_id(&self->pulse, g_source_remove);
    gtk_widget_dispose_template(GTK_WIDGET(object), M3_TYPE_FIRST_RUN);
    G_OBJECT_CLASS(m3_first_run_parent_class)->dispose(object);
}

static void m3_first_run_finalize(GObject *object) {
    M3FirstRun *self = M3_FIRST_RUN(object);
    g_clear_object(&self->settings);
    g_free(self->cached);
    g_free(self->model);
    g_ptr_array_unref(self->checks);
    G_OBJECT_CLASS(m3_first_run_parent_class)->finalize(object);
}

static void m3_first_run_class_init(M3FirstRunClass *klass) {
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->dispose = m3_first_run_dispose;
    G_OBJECT_CLASS(klass)->finalize = m3_first_run_finalize;
    gtk_widget_class_set_template_from_resource(wc, "/org/m3search/Search/first-run.ui");
#define CHILD(name) gtk_widget_class_bind_template_child(wc, M3FirstRun, name)
    CHILD(stack), CHILD(progress_page), CHILD(download_button), CHILD(cache_button), CHILD(cancel_button);
    CHILD(model_error), CHILD(progress_label), CHILD(progress), CHILD(folders_list);
#undef CHILD
    gtk_widget_class_install_action(wc, "setup.download", NULL, download_action);
    gtk_widget_class_install_action(wc, "setup.cancel", NULL, cancel_action);
    gtk_widget_class_install_action(wc, "setup.use-cache", NULL, use_cache_action);
    gtk_widget_class_install_action(wc, "setup.choose-file", NULL, choose_file_action);
    gtk_widget_class_install_action(wc, "setup.choose-folder", NULL, choose_folder_action);
    gtk_widget_class_install_action(wc, "setup.finish", NULL, finish_action);
}

static void m3_first_run_init(M3FirstRun *self) {
    gtk_widget_init_template(GTK_WIDGET(self));
    self->settings = g_settings_new("org.m3search.Search");
    self->checks = g_ptr_array_new();
    char *snapshot = NULL;
    m3_error err = {0};
    if (m3_fetch_find_cached(NULL, "BAAI/bge-m3", "main", &snapshot, &err) == M3_STATUS_OK) {
        self->cached = g_strdup(snapshot);
        free(snapshot);
    }
    gtk_widget_set_visible(GTK_WIDGET(self->cache_button), self->cached != NULL);
    show_model_page(self, NULL);
}

GtkWindow *m3_first_run_new(GtkWindow *parent) {
    return g_object_new(M3_TYPE_FIRST_RUN, "transient-for", parent, "application",
                        gtk_window_get_application(parent), NULL);
}
