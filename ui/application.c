// SPDX-License-Identifier: MIT
#include "application.h"

#include <glib/gi18n.h>

#include "first-run.h"
#include "preferences.h"
#include "window.h"

struct _M3Application {
    AdwApplication parent_instance;
};

G_DEFINE_FINAL_TYPE(M3Application, m3_application, ADW_TYPE_APPLICATION)

static M3Window *main_window(M3Application *self) {
    GtkWindow *win = gtk_application_get_active_window(GTK_APPLICATION(self));
    for (GList *l = gtk_application_get_windows(GTK_APPLICATION(self)); !M3_IS_WINDOW(win) && l; l = l->next)
        win = l->data;
    if (!win || !M3_IS_WINDOW(win))
        win = GTK_WINDOW(m3_window_new(GTK_APPLICATION(self)));
    return M3_WINDOW(win);
}

static void m3_application_activate(GApplication *app) {
    gtk_window_present(GTK_WINDOW(main_window(M3_APPLICATION(app))));
}

static void m3_application_open(GApplication *app, GFile **files, int n_files, const char *hint) {
    (void)hint;
    M3Window *win = main_window(M3_APPLICATION(app));
    if (n_files > 0) {
        g_autofree char *uri = g_file_get_uri(files[n_files - 1]);
        m3_window_find_similar(win, uri);
    }
    gtk_window_present(GTK_WINDOW(win));
}

static int m3_application_command_line(GApplication *app, GApplicationCommandLine *cmdline) {
    GVariantDict *options = g_application_command_line_get_options_dict(cmdline);
    const char *similar = NULL;
    g_auto(GStrv) rest = NULL;
    g_variant_dict_lookup(options, "similar", "^&ay", &similar);  // a file name: bytes
    g_variant_dict_lookup(options, G_OPTION_REMAINING, "^as", &rest);
    M3Window *win = main_window(M3_APPLICATION(app));
    if (similar) {
        // Relative to the directory the command was run in, which may not be ours.
        g_autoptr(GFile) file = g_application_command_line_create_file_for_arg(cmdline, similar);
        g_autofree char *uri = g_file_get_uri(file);
        m3_window_find_similar(win, uri);
    } else if (rest && rest[0]) {
        g_autofree char *query = g_strjoinv(" ", rest);
        m3_window_search(win, query);
    }
    gtk_window_present(GTK_WINDOW(win));
    return 0;
}

static void find_similar_action(GSimpleAction *action, GVariant *param, gpointer user) {
    (void)action;
    M3Window *win = main_window(M3_APPLICATION(user));
    m3_window_find_similar(win, g_variant_get_string(param, NULL));
    gtk_window_present(GTK_WINDOW(win));
}

static void search_action(GSimpleAction *action, GVariant *param, gpointer user) {
    (void)action;
    M3Window *win = main_window(M3_APPLICATION(user));
    m3_window_search(win, g_variant_get_string(param, NULL));
    gtk_window_present(GTK_WINDOW(win));
}

static void preferences_action(GSimpleAction *action, GVariant *param, gpointer user) {
    (void)action, (void)param;
    M3Window *win = main_window(M3_APPLICATION(user));
    GtkWindow *prefs = m3_preferences_new(GTK_WINDOW(win), m3_window_get_indexer(win));
    gtk_window_present(prefs);
}

static void first_run_action(GSimpleAction *action, GVariant *param, gpointer user) {
    (void)action, (void)param;
    M3Window *win = main_window(M3_APPLICATION(user));
    gtk_window_present(m3_first_run_new(GTK_WINDOW(win)));
}

static void about_action(GSimpleAction *action, GVariant *param, gpointer user) {
    (void)action, (void)param;
    M3Window *win = main_window(M3_APPLICATION(user));
    const char *developers[] = {"The m3search authors", NULL};
    GtkWidget *about = g_object_new(ADW_TYPE_ABOUT_WINDOW, "transient-for", win, "application-name", "m3search",
                                    "application-icon", "system-search", "version", M3_VERSION,
                                    "comments", _("Find your documents by meaning, in any language"),
                                    "license-type", GTK_LICENSE_MIT_X11, "developers", developers,
                                    "translator-credits", _("translator-credits"), NULL);
    gtk_window_present(GTK_WINDOW(about));
}

static void quit_action(GSimpleAction *action, GVariant *param, gpointer user) {
    (void)action, (void)param;
    for (GList *l = gtk_application_get_windows(GTK_APPLICATION(user)); l;) {
        GList *next = l->next;
        gtk_window_close(l->data);
        l = next;
    }
}

static const GActionEntry app_actions[] = {
    {.name = "find-similar", .activate = find_similar_action, .parameter_type = "s"},
    {.name = "search", .activate = search_action, .parameter_type = "s"},
    {.name = "preferences", .activate = preferences_action},
    {.name = "first-run", .activate = first_run_action},
    {.name = "about", .activate = about_action},
    {.name = "quit", .activate = quit_action},
};

static void m3_application_startup(GApplication *app) {
    G_APPLICATION_CLASS(m3_application_parent_class)->startup(app);
    g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
    static const struct {
        const char *action;
        const char *accels[3];
    } accels[] = {
        {"win.focus-search", {"<Ctrl>f", "<Ctrl>l", NULL}},
        {"win.open", {"<Ctrl>o", NULL}},
        {"win.show-in-folder", {"<Ctrl><Alt>o", NULL}},
        {"win.find-similar", {"<Ctrl>m", NULL}},
        {"win.copy-path", {"<Ctrl><Shift>c", NULL}},
        {"app.preferences", {"<Ctrl>comma", NULL}},
        {"app.quit", {"<Ctrl>q", NULL}},
        {"window.close", {"<Ctrl>w", NULL}},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(accels); i++)
        gtk_application_set_accels_for_action(GTK_APPLICATION(app), accels[i].action, accels[i].accels);
    GtkCssProvider *css = gtk_css_provider_new();
    gtk_css_provider_load_from_resource(css, "/org/m3search/Search/style.css");
    gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css),
                                               GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    g_object_unref(css);
}

static void m3_application_class_init(M3ApplicationClass *klass) {
    GApplicationClass *ac = G_APPLICATION_CLASS(klass);
    ac->activate = m3_application_activate;
    ac->open = m3_application_open;
    ac->command_line = m3_application_command_line;
    ac->startup = m3_application_startup;
}

static void m3_application_init(M3Application *self) {
    static const GOptionEntry options[] = {
        {"similar", 's', 0, G_OPTION_ARG_FILENAME, NULL, N_("Find files similar to FILE"), N_("FILE")},
        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, NULL, NULL, N_("[QUERY…]")},
        {NULL},
    };
    g_application_add_main_option_entries(G_APPLICATION(self), options);
    g_application_set_option_context_summary(G_APPLICATION(self),
                                             _("Find your documents by meaning, in any language."));
}

M3Application *m3_application_new(void) {
    return g_object_new(M3_TYPE_APPLICATION, "application-id", "org.m3search.Search", "flags",
                        G_APPLICATION_HANDLES_COMMAND_LINE | G_APPLICATION_HANDLES_OPEN, "resource-base-path",
                        "/org/m3search/Search", NULL);
}
