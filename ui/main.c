// SPDX-License-Identifier: MIT
//
// m3search: the search window. See application.h for the command line.
#include <locale.h>

#include <glib/gi18n.h>

#include "application.h"
#include "x11-frames.h"

int main(int argc, char **argv) {
    m3_x11_frames_keep_memory();
    setlocale(LC_ALL, "");
    // M3SEARCH_LOCALEDIR: the build tree's translations (build/po), for runs without installing.
    const char *localedir = g_getenv("M3SEARCH_LOCALEDIR");
    bindtextdomain(GETTEXT_PACKAGE, localedir && *localedir ? localedir : M3_LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);
    g_autoptr(M3Application) app = m3_application_new();
    return g_application_run(G_APPLICATION(app), argc, argv);
}
