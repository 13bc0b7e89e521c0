// SPDX-License-Identifier: MIT
//
// What the indexer service's Status dictionary (a{sv}, see packaging/org.m3search.Indexer1.xml)
// means for the window, in a person's words: whether a model and folders are set, the progress line
// ("Indexing: 120 of 500 files · …"), and the banner (the service's error, failed files, folders only
// rescanned). Pure functions of the dictionary: no widgets, so they are tested directly. Missing or
// mistyped keys read as 0 / "" / false. Any thread.
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct m3_progress {
    char *text;       // newly allocated; the caller frees it
    double fraction;  // in [0, 1]; negative when unknown (the bar pulses) or paused with nothing
                      // waiting (no bar)
    gboolean paused;
} m3_progress;

gboolean m3_state_has_model(GVariant *status);
// No model the service can use: none configured, or the configured one could not be opened (the
// service's "model-missing"). A model configured and not (yet) said missing is loading or loaded.
gboolean m3_state_model_missing(GVariant *status);
gboolean m3_state_has_folders(GVariant *status);
guint64 m3_state_files_indexed(GVariant *status);
// Crawling or indexing now.
gboolean m3_state_is_busy(GVariant *status);
// Fills *p and returns TRUE while there is progress to show (crawling, indexing or paused);
// FALSE when idle.
gboolean m3_state_progress(GVariant *status, m3_progress *p);
// The banner text (newly allocated) or NULL for none; *button and *action get the banner button's
// label and action (static strings, NULL for no button).
char *m3_state_banner(GVariant *status, const char **button, const char **action);

G_END_DECLS
