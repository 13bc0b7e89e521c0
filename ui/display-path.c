// SPDX-License-Identifier: MIT
//
// See display-path.h.
#include "display-path.h"

#include <string.h>

#include <glib.h>

char *m3_display_path(const char *path) {
    g_autofree char *display = g_filename_display_name(path);
    g_autofree char *home = g_filename_display_name(g_get_home_dir());
    size_t n = strlen(home);
    // "/" as the home folder would make every path "~…": keep those as they are.
    if (n > 1 && strncmp(display, home, n) == 0 && (display[n] == '/' || display[n] == '\0'))
        return g_strconcat("~", display + n, NULL);
    return g_steal_pointer(&display);
}

char *m3_display_path_isolate(const char *text) {
    return g_strconcat("\u2066", text, "\u2069", NULL);
}
