// SPDX-License-Identifier: MIT
//
// The model's file list, the default model folder, and reuse of an existing Hugging Face cache:
// {hub}/models--{org}--{name}/refs/{revision} holds the commit hash of a branch or tag, and
// {hub}/models--{org}--{name}/snapshots/{commit}/{file} are symlinks into blobs/ (a missing blob
// makes a dangling link, which stat() reports as absent: such a snapshot is incomplete).
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fetch-private.h"
#include "fetch.h"

const m3_fetch_file_spec m3_fetch_files[] = {
    {"config.json", NULL, true, false},
    {"pytorch_model.bin", "model.safetensors", true, false},
    {"colbert_linear.pt", NULL, true, false},
    {"sparse_linear.pt", NULL, true, false},
    {"sentencepiece.bpe.model", NULL, true, false},
    {"tokenizer.json", NULL, false, false},
    {"tokenizer_config.json", NULL, false, true},
    {"special_tokens_map.json", NULL, false, true},
};
const size_t m3_fetch_file_count = sizeof m3_fetch_files / sizeof m3_fetch_files[0];

char *m3_fetch_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    bool slash = la > 0 && a[la - 1] != '/';
    char *p = malloc(la + slash + lb + 1);
    if (!p) return NULL;
    memcpy(p, a, la);
    if (slash) p[la] = '/';
    memcpy(p + la + slash, b, lb + 1);
    return p;
}

bool m3_fetch_file_exists(const char *dir, const char *name)
{
    char *p = m3_fetch_path_join(dir, name);
    if (!p) return false;
    struct stat st;
    bool ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

const char *m3_fetch_present_name(const char *dir, const m3_fetch_file_spec *spec)
{
    if (m3_fetch_file_exists(dir, spec->name)) return spec->name;
    if (spec->alt && m3_fetch_file_exists(dir, spec->alt)) return spec->alt;
    return NULL;
}

m3_status m3_fetch_mkdirs(const char *dir, m3_error *err)
{
    char *p = strdup(dir);
    if (!p) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            m3_status st = m3_error_errno(err, errno, "cannot create the folder", p);
            free(p);
            return st;
        }
        *s = c;
        if (c == '\0') break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(p);
        return m3_error_errno(err, ENOTDIR, "cannot use the folder", dir);
    }
    free(p);
    return M3_STATUS_OK;
}

m3_status m3_fetch_default_dir(char **dir, m3_error *err)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    char buf[4096];
    int n;
    // The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, sizeof buf, "%s/m3search/models/bge-m3", xdg);
    else if (home && home[0])
        n = snprintf(buf, sizeof buf, "%s/.local/share/m3search/models/bge-m3", home);
    else
        return m3_error_set(err, M3_STATUS_NOT_FOUND, 0,
                            "neither XDG_DATA_HOME nor HOME is set: give the model folder with --dir");
    if (n < 0 || (size_t)n >= sizeof buf) return m3_error_set(err, M3_STATUS_LIMIT, 0, "model folder path too long");
    *dir = strdup(buf);
    return *dir ? M3_STATUS_OK : m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
}

static bool is_commit_hash(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n])) return false;
    return n == 40;
}

// The hub cache folder to search, malloc'd, or NULL when none can be named.
static char *default_hub_cache(void)
{
    const char *v;
    if ((v = getenv("HF_HUB_CACHE")) && v[0]) return strdup(v);
    if ((v = getenv("HF_HOME")) && v[0]) return m3_fetch_path_join(v, "hub");
    if ((v = getenv("XDG_CACHE_HOME")) && v[0] == '/') return m3_fetch_path_join(v, "huggingface/hub");
    if ((v = getenv("HOME")) && v[0]) return m3_fetch_path_join(v, ".cache/huggingface/hub");
    return NULL;
}

m3_status m3_fetch_find_cached(const char *hub_cache, const char *repo, const char *revision,
                               char **snapshot, m3_error *err)
{
    M3_ASSERT(repo && revision && snapshot);
    *snapshot = NULL;
    if (hub_cache && !hub_cache[0]) return m3_error_set(err, M3_STATUS_NOT_FOUND, 0, "no hub cache");
    // A revision with '/' or ".." in it cannot be a cache folder name we should follow.
    if (!revision[0] || strstr(revision, ".."))
        return m3_error_set(err, M3_STATUS_NOT_FOUND, 0, "revision %s is not in the cache", revision);

    char *hub = hub_cache ? strdup(hub_cache) : default_hub_cache();
    if (!hub) return m3_error_set(err, M3_STATUS_NOT_FOUND, 0, "no hub cache folder");

    // "BAAI/bge-m3" -> "models--BAAI--bge-m3"
    char folder[512];
    size_t k = (size_t)snprintf(folder, sizeof folder, "models--");
    for (const char *s = repo; *s && k + 3 < sizeof folder; s++) {
        if (*s == '/') {
            folder[k++] = '-';
            folder[k++] = '-';
        } else {
            folder[k++] = *s;
        }
    }
    folder[k] = '\0';

    char commit[128];
    char path[4096];
    m3_status st = M3_STATUS_NOT_FOUND;
    if (is_commit_hash(revision)) {
        snprintf(commit, sizeof commit, "%s", revision);
    } else {
        if ((size_t)snprintf(path, sizeof path, "%s/%s/refs/%s", hub, folder, revision) >= sizeof path) goto out;
        FILE *f = fopen(path, "r");
        if (!f) goto out;
        size_t n = fread(commit, 1, sizeof commit - 1, f);
        fclose(f);
        commit[n] = '\0';
        while (n > 0 && isspace((unsigned char)commit[n - 1])) commit[--n] = '\0';
        if (!is_commit_hash(commit)) goto out;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/%s/snapshots/%s", hub, folder, commit) >= sizeof path) goto out;
    for (size_t i = 0; i < m3_fetch_file_count; i++)
        if (m3_fetch_files[i].encoder && !m3_fetch_present_name(path, &m3_fetch_files[i])) goto out;
    *snapshot = strdup(path);
    st = *snapshot ? M3_STATUS_OK : M3_STATUS_NOMEM;
out:
    free(hub);
    if (st == M3_STATUS_NOMEM) return m3_error_set(err, st, 0, "out of memory");
    if (st != M3_STATUS_OK)
        return m3_error_set(err, st, 0, "no complete snapshot of %s at %s in the hub cache", repo, revision);
    return st;
}
