// SPDX-License-Identifier: MIT
//
// The crawler: which paths the indexer wants (roots, hidden names, exclusion patterns, the index
// folder, network and removable file systems) and the walk that lists them, and what it could
// not look into (unreadable, nested too deep, a path too long for the index): those are failures
// to show, never left out unsaid. Never follows symlinks; directories are opened O_NOATIME so that
// a walk does not change the user's times.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "indexer-private.h"

bool m3_strvec_push(m3_strvec *s, const char *str)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    return (s->v[s->n] = strdup(str)) ? (s->n++, true) : false;
}

void m3_strvec_clear(m3_strvec *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    *s = (m3_strvec){0};
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void m3_strvec_sort_unique(m3_strvec *s)
{
    if (!s->n) return;
    qsort(s->v, s->n, sizeof *s->v, cmp_str);
    size_t m = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (m && !strcmp(s->v[m - 1], s->v[i])) free(s->v[i]);
        else s->v[m++] = s->v[i];
    }
    s->n = m;
}

bool m3_strvec_contains(const m3_strvec *sorted, const char *str)
{
    return sorted->n && bsearch(&str, sorted->v, sorted->n, sizeof *sorted->v, cmp_str);
}

// True when path is root or inside it.
bool m3_path_under(const char *path, const char *root)
{
    size_t rl = strlen(root);
    if (rl == 1 && root[0] == '/') return path[0] == '/';
    return !strncmp(path, root, rl) && (path[rl] == 0 || path[rl] == '/');
}

// One name (not a path) against the hidden rule and the patterns.
static bool name_excluded(const m3_indexer *ix, const char *name, size_t len)
{
    char buf[NAME_MAX + 1];
    if (len == 0 || len > NAME_MAX) return len != 0;
    memcpy(buf, name, len);
    buf[len] = 0;
    if (buf[0] == '.' && !ix->index_hidden) return true;
    for (size_t i = 0; i < ix->exclude.n; i++)
        if (fnmatch(ix->exclude.v[i], buf, 0) == 0) return true;
    return false;
}

const char *m3_indexer_root_of(const m3_indexer *ix, const char *path)
{
    const char *best = NULL;
    for (size_t i = 0; i < ix->roots.n; i++)
        if (m3_path_under(path, ix->roots.v[i]) && (!best || strlen(ix->roots.v[i]) > strlen(best)))
            best = ix->roots.v[i];
    return best;
}

// Under a root, not the index folder, no excluded or hidden name below the root. The length is
// not looked at: the walk reports paths too long for the index instead of leaving them out unsaid.
static bool wanted(const m3_indexer *ix, const char *path)
{
    const char *root = m3_indexer_root_of(ix, path);
    if (!root) return false;
    if (ix->index_dir[0] && m3_path_under(path, ix->index_dir)) return false;
    // Every component below the root: a hidden or excluded folder excludes what is in it.
    const char *p = path + strlen(root);
    while (*p) {
        while (*p == '/') p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && name_excluded(ix, p, len)) return false;
        p += len;
    }
    return true;
}

bool m3_indexer_wants(const m3_indexer *ix, const char *path)
{
    return strlen(path) <= M3_INDEXER_PATH_MAX && wanted(ix, path);
}

// Network file systems and removable media are skipped unless the user asked for them: they can
// disappear, be slow, or belong to someone else. Removable media are known by where udisks mounts
// them; network file systems by their statfs magic.
bool m3_indexer_remote_fs(const char *path, unsigned long f_type)
{
    static const char *const removable[] = {"/media/", "/run/media/"};
    for (size_t i = 0; i < sizeof removable / sizeof *removable; i++)
        if (!strncmp(path, removable[i], strlen(removable[i]))) return true;
    switch (f_type) {
    case 0x6969:      // NFS
    case 0xFF534D42:  // CIFS
    case 0xFE534D42:  // SMB2
    case 0x517B:      // SMB
    case 0x65735546:  // FUSE (sshfs, gvfs, rclone...)
    case 0x564c:      // NCP
    case 0x73757245:  // Coda
    case 0x47504653:  // GPFS
    case 0x01021997:  // 9p
    case 0x6B414653:  // AFS
    case 0x00C36400:  // Ceph
        return true;
    default:
        return false;
    }
}

static bool remote_dir(const char *path, int fd)
{
    struct statfs fs;
    return m3_indexer_remote_fs(path, fstatfs(fd, &fs) == 0 ? (unsigned long)fs.f_type : 0);
}

void m3_crawl_clear(m3_crawl *c)
{
    m3_strvec_clear(&c->files);
    m3_strvec_clear(&c->failed);
    m3_strvec_clear(&c->reasons);
}

const char *m3_crawl_failed_at(const m3_crawl *c, const char *path)
{
    for (size_t i = 0; i < c->failed.n; i++)
        if (m3_path_under(path, c->failed.v[i])) return c->reasons.v[i];
    return NULL;
}

enum { MAX_DEPTH = 64 };  // folders below a root; bounds the walk's recursion

static const char too_long[] = "path longer than 511 bytes: not indexed";
static const char too_long_folder[] = "path longer than 511 bytes: not indexed, nor anything in it";

// Something the walk could not look at. A path the index can hold is recorded as failed (listed
// with the failed files, looked at again at the next run); a longer one can only be reported.
static bool crawl_fail(m3_indexer *ix, m3_crawl *out, const char *path, const char *reason)
{
    if (strlen(path) > M3_INDEXER_PATH_MAX) {
        m3_indexer_report_failed(ix, path, too_long);
        return true;
    }
    if (!m3_strvec_push(&out->failed, path)) return false;
    if (m3_strvec_push(&out->reasons, reason)) return true;
    free(out->failed.v[--out->failed.n]);  // the two lists stay parallel
    return false;
}

// A path deleted while the walk reaches it (or a folder on its way replaced by a file, or by a
// symlink, which O_NOFOLLOW refuses) is no problem: it is simply not there any more.
static bool vanished(int e) { return e == ENOENT || e == ENOTDIR || e == ELOOP; }

// False only when out of memory.
static bool walk_dir(m3_indexer *ix, const char *path, m3_crawl *out, int depth)
{
    struct stat st;
    char reason[160];
    if (lstat(path, &st) != 0) {
        if (vanished(errno)) return true;
        // There but out of reach: say, in a folder that can be listed but not searched (r, no x).
        snprintf(reason, sizeof reason, "cannot open: %s", strerror(errno));
        return crawl_fail(ix, out, path, reason);
    }
    if (S_ISLNK(st.st_mode)) return true;
    if (S_ISREG(st.st_mode)) {
        if (strlen(path) > M3_INDEXER_PATH_MAX) {
            m3_indexer_report_failed(ix, path, too_long);
            return true;
        }
        return m3_strvec_push(&out->files, path);
    }
    if (!S_ISDIR(st.st_mode) || (ix->index_dir[0] && !strcmp(path, ix->index_dir))) return true;
    // Everything in a folder whose own path is too long is longer still: one report says it all.
    if (strlen(path) > M3_INDEXER_PATH_MAX) {
        m3_indexer_report_failed(ix, path, too_long_folder);
        return true;
    }
    if (depth >= MAX_DEPTH) return crawl_fail(ix, out, path, "folders nested more than 64 deep: not indexed");
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (vanished(errno)) return true;
        snprintf(reason, sizeof reason, "cannot open the folder: %s", strerror(errno));
        return crawl_fail(ix, out, path, reason);
    }
    if (!ix->index_remote && remote_dir(path, fd)) {
        close(fd);
        return true;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        snprintf(reason, sizeof reason, "cannot read the folder: %s", strerror(errno));
        close(fd);
        return crawl_fail(ix, out, path, reason);
    }
    bool ok = true;
    char child[M3_INDEXER_PATH_MAX + 1 + NAME_MAX + 1];  // this folder's path fits in 511 bytes
    while (ok && !m3_indexer_cancelled(ix)) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            // A listing cut short: what it did not reach must not look deleted.
            if (errno) {
                snprintf(reason, sizeof reason, "cannot read the folder: %s", strerror(errno));
                ok = crawl_fail(ix, out, path, reason);
            }
            break;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (name_excluded(ix, e->d_name, strlen(e->d_name))) continue;
        // Cannot be cut: the folder's path fits in 511 bytes, a name in NAME_MAX.
        snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") ? path : "", e->d_name);
        ok = walk_dir(ix, child, out, depth + 1);
    }
    closedir(d);
    return ok;
}

bool m3_indexer_walk(m3_indexer *ix, const char *path, m3_crawl *out)
{
    // Outside the roots, excluded or hidden: left out on purpose, nothing to say.
    if (!wanted(ix, path)) return true;
    return walk_dir(ix, path, out, 0);
}
