// SPDX-License-Identifier: MIT
//
// Paths as the window shows them: the results' folders, the folders to index (preferences and the
// first run) and the files that could not be read all written the same way. Any thread.
#pragma once

// path for display: in UTF-8 (bytes that are not valid UTF-8 shown as U+FFFD, the path itself
// untouched), the home folder and what is in it written with "~" ("~/Documents"). Returns a new
// string (g_free).
char *m3_display_path(const char *path);

// text (a display path) as one left-to-right unit within the text it is composed into: between
// U+2066 LEFT-TO-RIGHT ISOLATE and U+2069 POP DIRECTIONAL ISOLATE. Without it the bidi algorithm
// orders a path by its surroundings: in a right-to-left UI, or next to a Hebrew place ("עמוד 1"),
// "~/Documents" was drawn "Documents/~". Left to right even for a folder with a Hebrew name: a
// path's separators run left to right. For labels only, not for text that is copied or compared.
// Returns a new string (g_free).
char *m3_display_path_isolate(const char *text);
