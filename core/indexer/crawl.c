// SPDX-License-Identifier: MIT
//
// The crawler: which paths the indexer wants (roots, hidden names, exclusion patterns, the index
// folder, network and removable file systems) and the walk that lists them. Never follows
// symlinks; directories are opened O_NOATIME so that a walk does not change the user's times.
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

bool m3_indexer_wants(const m3_indexer *ix, const char *path)
{
    const char *root = m3_indexer_root_of(ix, path);
    if (!root || strlen(path) > M3_INDEXER_PATH_MAX) return false;
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

static void walk_dir(const m3_indexer *ix, const char *path, m3_strvec *out, int depth)
{
    struct stat st;
    if (depth > 64 || lstat(path, &st) != 0 || S_ISLNK(st.st_mode)) return;
    if (S_ISREG(st.st_mode)) {
        if (strlen(path) <= M3_INDEXER_PATH_MAX) m3_strvec_push(out, path);
        return;
    }
    if (!S_ISDIR(st.st_mode) || (ix->index_dir[0] && !strcmp(path, ix->index_dir))) return;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    if (!ix->index_remote && remote_dir(path, fd)) {
        close(fd);
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    char child[PATH_MAX];
    while ((e = readdir(d)) && !m3_indexer_cancelled(ix)) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (name_excluded(ix, e->d_name, strlen(e->d_name))) continue;
        if (snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") ? path : "", e->d_name) >= (int)sizeof child)
            continue;
        walk_dir(ix, child, out, depth + 1);
    }
    closedir(d);
}

void m3_indexer_walk(const m3_indexer *ix, const char *path, m3_strvec *out)
{
    if (!m3_indexer_wants(ix, path)) return;
    walk_dir(ix, path, out, 0);
}
