// SPDX-License-Identifier: MIT
//
// The service's watcher (app/daemon/watcher.c) on a real folder, driven by real writes:
//   - a file being written is reported once, after it has been quiet, never while it is written;
//   - a file that keeps changing is backed off: each report after the second waits at least twice
//     as long as the quiet period before it (300 ms, then 600 ms, then 1200 ms);
//   - hidden and excluded names are not reported; a new subfolder is watched at once.
// Timing is asserted only from below (a report can never come before its quiet period, whatever
// the load), plus generous upper bounds that only a lost event would break.
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "watcher.h"

enum { QUIET_MS = 300, LOST_MS = 20000 };

typedef struct Report {
    char *path;
    gint64 when;  // µs, monotonic
} Report;

static GArray *reports;  // of Report
static int failures;

#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            failures++;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
            printf(__VA_ARGS__);                          \
            printf("\n");                                 \
        }                                                 \
    } while (0)

static void on_changed(const char *const *paths, gsize n, gpointer user)
{
    (void)user;
    for (gsize i = 0; i < n; i++) {
        Report r = {g_strdup(paths[i]), g_get_monotonic_time()};
        g_array_append_val(reports, r);
    }
}

static gboolean quit_loop(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

// Runs the main loop (the watcher's sources) for ms milliseconds.
static void spin(guint ms)
{
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    g_timeout_add(ms, quit_loop, loop);
    g_main_loop_run(loop);
    g_main_loop_unref(loop);
}

static guint count_reports(const char *path)
{
    guint n = 0;
    for (guint i = 0; i < reports->len; i++)
        if (!strcmp(g_array_index(reports, Report, i).path, path)) n++;
    return n;
}

// Spins until path has been reported `want` times in all; returns the time of that report, or 0.
static gint64 wait_report(const char *path, guint want)
{
    for (gint64 end = g_get_monotonic_time() + LOST_MS * 1000; g_get_monotonic_time() < end;) {
        if (count_reports(path) >= want) {
            for (guint i = reports->len; i-- > 0;)
                if (!strcmp(g_array_index(reports, Report, i).path, path)) return g_array_index(reports, Report, i).when;
        }
        spin(20);
    }
    return 0;
}

static void append(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    g_assert(fd >= 0);
    g_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

int main(void)
{
    reports = g_array_new(FALSE, FALSE, sizeof(Report));
    g_autofree char *dir = g_dir_make_tmp("m3-watcher-XXXXXX", NULL);
    g_assert(dir);
    M3WatcherOptions opt = {.quiet_ms = QUIET_MS};
    M3Watcher *w = m3_watcher_new(&opt, on_changed, NULL, NULL);
    char *folders[] = {dir, NULL}, *exclude[] = {"*.tmp", NULL};
    m3_watcher_set_folders(w, folders, exclude, FALSE);
    CHECK(m3_watcher_count(w) == 1 && !m3_watcher_is_limited(w), "one folder watched, within the limit");

    // A file being written (a chunk every 100 ms for 1.2 s) is reported once, after the last write.
    g_autofree char *growing = g_build_filename(dir, "growing.txt", NULL);
    for (int i = 0; i < 12; i++) {
        append(growing, "another line of a long download\n");
        spin(100);
        CHECK(count_reports(growing) == 0, "reported while still being written (after %d writes)", i + 1);
    }
    gint64 last_write = g_get_monotonic_time();
    gint64 at = wait_report(growing, 1);
    CHECK(at, "the written file was never reported");
    CHECK(at - last_write >= (QUIET_MS - 100) * 1000, "reported %lld ms after the last write, before it was quiet",
          (long long)(at - last_write) / 1000);
    spin(2 * QUIET_MS);
    CHECK(count_reports(growing) == 1, "the written file was reported %u times, not once", count_reports(growing));

    // Hidden and excluded names are not reported; a new subfolder's files are.
    g_autofree char *hidden = g_build_filename(dir, ".hidden.txt", NULL);
    g_autofree char *tmp = g_build_filename(dir, "x.tmp", NULL);
    g_autofree char *sub = g_build_filename(dir, "sub", NULL);
    g_autofree char *inner = g_build_filename(sub, "inner.txt", NULL);
    append(hidden, "h\n");
    append(tmp, "t\n");
    g_assert(g_mkdir(sub, 0700) == 0);
    spin(50);  // the subfolder is watched when its creation is read
    append(inner, "i\n");
    CHECK(wait_report(inner, 1), "a file in a new subfolder was never reported");
    CHECK(count_reports(hidden) == 0 && count_reports(tmp) == 0, "hidden or excluded names were reported");

    // A file that keeps changing: delays from each change to its report. The first two use the
    // configured quiet period; from then on each report waits twice as long as the one before.
    g_autofree char *busy = g_build_filename(dir, "busy.log", NULL);
    gint64 delay_ms[4];
    for (guint k = 0; k < 4; k++) {
        append(busy, "a log line\n");
        gint64 t0 = g_get_monotonic_time(), t1 = wait_report(busy, k + 1);
        delay_ms[k] = t1 ? (t1 - t0) / 1000 : -1;
        CHECK(t1, "change %u of the busy file was never reported", k + 1);
    }
    printf("busy file: reported %lld, %lld, %lld, %lld ms after each change\n", (long long)delay_ms[0],
           (long long)delay_ms[1], (long long)delay_ms[2], (long long)delay_ms[3]);
    CHECK(delay_ms[0] >= QUIET_MS && delay_ms[1] >= QUIET_MS, "reported before the quiet period");
    CHECK(delay_ms[2] >= 2 * QUIET_MS, "no back-off: the third report came after %lld ms (< %d)",
          (long long)delay_ms[2], 2 * QUIET_MS);
    CHECK(delay_ms[3] >= 4 * QUIET_MS, "no growing back-off: the fourth report came after %lld ms (< %d)",
          (long long)delay_ms[3], 4 * QUIET_MS);

    m3_watcher_free(w);
    for (guint i = 0; i < reports->len; i++) g_free(g_array_index(reports, Report, i).path);
    g_array_unref(reports);
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);
    if (system(rm) != 0) printf("note: could not remove %s\n", dir);
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
