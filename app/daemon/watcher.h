// SPDX-License-Identifier: MIT
//
// The watcher: the change stream of the indexed folders, for the engine. One inotify watch per
// folder (never following symlinks, skipping hidden and excluded names as the crawler does);
// events are batched per path until the path has been quiet for a moment (a file being written
// is looked at once it is saved), and a path that keeps changing is looked at less and less often.
// When the system's inotify watch limit runs out, the folders that could not be watched are
// rescanned periodically instead, and watch_limited says so.
//
// Threads: main thread only (events arrive through the thread-default main context).
#ifndef M3_DAEMON_WATCHER_H
#define M3_DAEMON_WATCHER_H

#include <glib.h>

typedef struct M3Watcher M3Watcher;

// paths: absolute paths that changed (files or folders, existing or gone); n of them.
typedef void (*M3WatcherChanged)(const char *const *paths, gsize n, gpointer user);
// Folders that could not be watched, to be walked again (a periodic rescan).
typedef void (*M3WatcherRescan)(const char *const *folders, gsize n, gpointer user);

typedef struct M3WatcherOptions {
    guint quiet_ms;        // a path is reported once it has been quiet this long (default 2000)
    guint rescan_s;        // unwatched folders are rescanned this often (default 600)
    guint max_watches;     // 0: as many as the system allows (tests lower it)
} M3WatcherOptions;

M3Watcher *m3_watcher_new(const M3WatcherOptions *opt, M3WatcherChanged changed, M3WatcherRescan rescan,
                          gpointer user);
void m3_watcher_free(M3Watcher *w);

// Watches these folders (and their subfolders) from now on, with these exclusions; the previous
// watches go.
void m3_watcher_set_folders(M3Watcher *w, char **folders, char **exclude, gboolean index_hidden);

// TRUE while some folders are rescanned instead of watched (the limit ran out).
gboolean m3_watcher_is_limited(M3Watcher *w);
guint m3_watcher_count(M3Watcher *w);

#endif
