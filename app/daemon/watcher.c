// SPDX-License-Identifier: MIT
//
// The watcher (watcher.h) on raw inotify: GFileMonitor hides a full watch table (it polls
// silently), and the service must know when that happens to say so and rescan instead.
#include "watcher.h"

#include <errno.h>
#include <fnmatch.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    WATCH_MASK = IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK,
    FLUSH_MS = 250,            // how often pending paths are looked at
    BACKOFF_WINDOW_S = 60,     // reported again within this: the path keeps changing
    BACKOFF_MAX_MS = 300000,   // at most every 5 minutes
};

typedef struct Pending {
    gint64 last_event;   // µs, monotonic
    gint64 last_report;  // µs, 0 never
    guint quiet_ms;      // grows for paths that keep changing
    gboolean pending;
} Pending;

struct M3Watcher {
    M3WatcherOptions opt;
    M3WatcherChanged changed;
    M3WatcherRescan rescan;
    gpointer user;
    int fd;
    guint fd_source, flush_source, rescan_source;
    GHashTable *by_wd;       // wd → path
    GHashTable *by_path;     // path → wd
    GHashTable *pending;     // path → Pending
    GPtrArray *unwatched;    // folders past the limit
    char **folders, **exclude;
    gboolean hidden;
};

static gboolean excluded_name(M3Watcher *w, const char *name)
{
    if (name[0] == '.' && !w->hidden) return TRUE;
    for (char **p = w->exclude; p && *p; p++)
        if (fnmatch(*p, name, 0) == 0) return TRUE;
    return FALSE;
}

static guint max_watches(M3Watcher *w) { return w->opt.max_watches ? w->opt.max_watches : G_MAXUINT; }

static void add_unwatched(M3Watcher *w, const char *dir)
{
    for (guint i = 0; i < w->unwatched->len; i++) {
        const char *u = w->unwatched->pdata[i];
        size_t l = strlen(u);
        if (!strncmp(dir, u, l) && (dir[l] == 0 || dir[l] == '/')) return;  // a parent is rescanned
    }
    g_ptr_array_add(w->unwatched, g_strdup(dir));
}

// Watches dir and its subfolders. Folders past the limit go to the rescan list.
static void watch_tree(M3Watcher *w, const char *dir, int depth)
{
    if (depth > 64 || g_hash_table_contains(w->by_path, dir)) return;
    int wd = -1;
    if (g_hash_table_size(w->by_wd) < max_watches(w)) wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
    else errno = ENOSPC;
    if (wd < 0) {
        if (errno == ENOSPC || errno == ENOMEM) {
            add_unwatched(w, dir);
            g_message("watch limit reached: %s is rescanned every %u s instead of watched (raise "
                      "fs.inotify.max_user_watches to watch it)", dir, w->opt.rescan_s);
        }
        return;
    }
    char *path = g_strdup(dir);
    g_hash_table_replace(w->by_wd, GINT_TO_POINTER(wd), path);
    g_hash_table_replace(w->by_path, g_strdup(dir), GINT_TO_POINTER(wd));
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d) return;
    const char *name;
    while ((name = g_dir_read_name(d))) {
        if (excluded_name(w, name)) continue;
        g_autofree char *child = g_build_filename(dir, name, NULL);
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) watch_tree(w, child, depth + 1);
    }
    g_dir_close(d);
}

// Drops the watches of dir and everything under it (a folder moved away or deleted).
static void unwatch_tree(M3Watcher *w, const char *dir)
{
    size_t l = strlen(dir);
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, w->by_path);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        const char *p = key;
        if (strncmp(p, dir, l) || (p[l] && p[l] != '/')) continue;
        inotify_rm_watch(w->fd, GPOINTER_TO_INT(val));
        g_hash_table_remove(w->by_wd, val);
        g_hash_table_iter_remove(&it);
    }
}

static void note(M3Watcher *w, const char *path)
{
    Pending *p = g_hash_table_lookup(w->pending, path);
    if (!p) {
        p = g_new0(Pending, 1);
        p->quiet_ms = w->opt.quiet_ms;
        g_hash_table_insert(w->pending, g_strdup(path), p);
    }
    p->last_event = g_get_monotonic_time();
    p->pending = TRUE;
}

static gboolean on_inotify(gint fd, GIOCondition cond, gpointer data)
{
    (void)cond;
    M3Watcher *w = data;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return G_SOURCE_CONTINUE;
    for (char *p = buf; p < buf + n;) {
        struct inotify_event *ev = (struct inotify_event *)p;
        p += sizeof *ev + ev->len;
        if (ev->mask & IN_Q_OVERFLOW) {
            // Events were lost: the folders are compared with the index again.
            g_message("inotify queue overflowed: rescanning the folders");
            if (w->rescan && w->folders)
                w->rescan((const char *const *)w->folders, g_strv_length(w->folders), w->user);
            continue;
        }
        const char *dir = g_hash_table_lookup(w->by_wd, GINT_TO_POINTER(ev->wd));
        if (!dir) continue;
        if (ev->mask & IN_IGNORED) {
            g_hash_table_remove(w->by_path, dir);
            g_hash_table_remove(w->by_wd, GINT_TO_POINTER(ev->wd));
            continue;
        }
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
            note(w, dir);
            continue;
        }
        if (!ev->len || excluded_name(w, ev->name)) continue;
        g_autofree char *path = g_build_filename(dir, ev->name, NULL);
        if (ev->mask & IN_ISDIR) {
            if (ev->mask & (IN_CREATE | IN_MOVED_TO)) watch_tree(w, path, 0);
            if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) unwatch_tree(w, path);
        }
        // Attribute changes matter only when they change what we can read or the times.
        note(w, path);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_flush(gpointer data)
{
    M3Watcher *w = data;
    gint64 now = g_get_monotonic_time();
    GPtrArray *ready = g_ptr_array_new();
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, w->pending);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        Pending *p = val;
        if (!p->pending) {
            // Forget paths that have been calm for a while (their back-off resets).
            if (now - p->last_report > 10 * BACKOFF_WINDOW_S * G_TIME_SPAN_SECOND) g_hash_table_iter_remove(&it);
            continue;
        }
        if (now - p->last_event < (gint64)p->quiet_ms * 1000) continue;
        // A path reported again soon after the last time keeps changing: wait longer next time.
        if (p->last_report && now - p->last_report < BACKOFF_WINDOW_S * G_TIME_SPAN_SECOND)
            p->quiet_ms = MIN(p->quiet_ms * 2, BACKOFF_MAX_MS);
        else
            p->quiet_ms = w->opt.quiet_ms;
        p->last_report = now;
        p->pending = FALSE;
        g_ptr_array_add(ready, key);
    }
    if (ready->len && w->changed) w->changed((const char *const *)ready->pdata, ready->len, w->user);
    g_ptr_array_unref(ready);
    return G_SOURCE_CONTINUE;
}

static gboolean on_rescan(gpointer data)
{
    M3Watcher *w = data;
    if (w->unwatched->len && w->rescan) w->rescan((const char *const *)w->unwatched->pdata, w->unwatched->len, w->user);
    return G_SOURCE_CONTINUE;
}

M3Watcher *m3_watcher_new(const M3WatcherOptions *opt, M3WatcherChanged changed, M3WatcherRescan rescan,
                          gpointer user)
{
    M3Watcher *w = g_new0(M3Watcher, 1);
    w->opt = *opt;
    if (!w->opt.quiet_ms) w->opt.quiet_ms = 2000;
    if (!w->opt.rescan_s) w->opt.rescan_s = 600;
    w->changed = changed;
    w->rescan = rescan;
    w->user = user;
    w->by_wd = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    w->by_path = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    w->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    w->unwatched = g_ptr_array_new_with_free_func(g_free);
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) g_warning("inotify: %s: folders are rescanned every %u s instead", g_strerror(errno), w->opt.rescan_s);
    else w->fd_source = g_unix_fd_add(w->fd, G_IO_IN, on_inotify, w);
    w->flush_source = g_timeout_add(FLUSH_MS, on_flush, w);
    w->rescan_source = g_timeout_add_seconds(w->opt.rescan_s, on_rescan, w);
    return w;
}

void m3_watcher_free(M3Watcher *w)
{
    if (!w) return;
    if (w->fd_source) g_source_remove(w->fd_source);
    g_source_remove(w->flush_source);
    g_source_remove(w->rescan_source);
    if (w->fd >= 0) close(w->fd);
    g_hash_table_unref(w->by_wd);
    g_hash_table_unref(w->by_path);
    g_hash_table_unref(w->pending);
    g_ptr_array_unref(w->unwatched);
    g_strfreev(w->folders);
    g_strfreev(w->exclude);
    g_free(w);
}

void m3_watcher_set_folders(M3Watcher *w, char **folders, char **exclude, gboolean index_hidden)
{
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, w->by_wd);
    while (g_hash_table_iter_next(&it, &key, &val)) inotify_rm_watch(w->fd, GPOINTER_TO_INT(key));
    g_hash_table_remove_all(w->by_wd);
    g_hash_table_remove_all(w->by_path);
    g_ptr_array_set_size(w->unwatched, 0);
    g_strfreev(w->folders);
    g_strfreev(w->exclude);
    w->folders = g_strdupv(folders);
    w->exclude = g_strdupv(exclude);
    w->hidden = index_hidden;
    for (char **f = w->folders; f && *f; f++) {
        if (w->fd < 0) add_unwatched(w, *f);
        else watch_tree(w, *f, 0);
    }
}

gboolean m3_watcher_is_limited(M3Watcher *w) { return w->unwatched->len > 0; }

guint m3_watcher_count(M3Watcher *w) { return g_hash_table_size(w->by_wd); }
