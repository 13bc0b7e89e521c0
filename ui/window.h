// SPDX-License-Identifier: MIT
//
// M3Window: the search window. Talks to the indexer service (org.m3search.Indexer1) only
// asynchronously: every keystroke sends a Search with its own GCancellable and cancels the one in
// flight; a reply is shown only if it answers the latest query. Shows the service's state (indexing
// progress, paused, no folders, nothing indexed, failed files, unreachable, model missing) as status
// pages, a banner and toasts. Main thread only.
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define M3_TYPE_WINDOW (m3_window_get_type())
G_DECLARE_FINAL_TYPE(M3Window, m3_window, M3, WINDOW, AdwApplicationWindow)

M3Window *m3_window_new(GtkApplication *app);
// Puts text into the search entry (a new query runs) and leaves find-similar mode.
void m3_window_search(M3Window *self, const char *text);
// Enters find-similar mode for file (a path or a file:// URI): the query becomes "Similar to FILE".
void m3_window_find_similar(M3Window *self, const char *path_or_uri);
// The indexer proxy, or NULL until it is made (borrowed).
GDBusProxy *m3_window_get_indexer(M3Window *self);

G_END_DECLS
