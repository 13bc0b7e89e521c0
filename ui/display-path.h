// SPDX-License-Identifier: MIT
//
// Paths as the window shows them: the results' folders, the folders to index (preferences and the
// first run) and the files that could not be read all written the same way. Any thread.
#pragma once

// path for display: in UTF-8 (bytes that are not valid UTF-8 shown as U+FFFD, the path itself
// untouched), the home folder and what is in it written with "~" ("~/Documents"). Returns a new
// string (g_free).
char *m3_display_path(const char *path);
