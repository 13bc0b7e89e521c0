// SPDX-License-Identifier: MIT
//
// M3Preferences: the preferences window. Every setting lives in GSettings (org.m3search.Search);
// the indexer service applies changes live. Folders (add with the file chooser, remove), names to
// skip, hidden files, removable drives, pause on battery, the encoder backend, CPU threads, default
// weights, the model, where the index is and how big, rebuilding the index. Main thread only.
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define M3_TYPE_PREFERENCES (m3_preferences_get_type())
G_DECLARE_FINAL_TYPE(M3Preferences, m3_preferences, M3, PREFERENCES, AdwPreferencesWindow)

// indexer (may be NULL) is used for the index size and Reindex; it is referenced.
GtkWindow *m3_preferences_new(GtkWindow *parent, GDBusProxy *indexer);

// The display form of a "folders" entry: "&DOCUMENTS" → the Documents folder's path, "~/x" → home.
// Returns the absolute path (newly allocated) or NULL when the XDG folder is not set.
char *m3_preferences_expand_folder(const char *entry);

G_END_DECLS
