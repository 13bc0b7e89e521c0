// SPDX-License-Identifier: MIT
//
// The indexer object: configuration, control from other threads (pause, resume, cancel), and
// the two runs: sync (walk everything, compare with the index) and update (some paths again).
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "indexer-private.h"

double m3_indexer_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

m3_indexer_options m3_indexer_options_default(void)
{
    return (m3_indexer_options){
        .max_file_size = 64u << 20,
        .chunk = {512, 64},
        .batch_tokens = 8192,
        .commit_ms = 2000,
    };
}

static bool copy_list(m3_strvec *dst, const char *const *src, size_t n)
{
    m3_strvec v = {0};
    for (size_t i = 0; i < n; i++)
        if (src[i] && !m3_strvec_push(&v, src[i])) {
            m3_strvec_clear(&v);
            return false;
        }
    m3_strvec_clear(dst);
    *dst = v;
    return true;
}

m3_status m3_indexer_configure(m3_indexer *ix, const m3_indexer_options *opt, m3_error *err)
{
    for (size_t i = 0; i < opt->n_roots; i++)
        if (!opt->roots[i] || opt->roots[i][0] != '/')
            return m3_error_set(err, M3_STATUS_INVALID, 0, "indexer: folder '%s' is not an absolute path",
                                opt->roots[i] ? opt->roots[i] : "(null)");
    if (!copy_list(&ix->roots, opt->roots, opt->n_roots) || !copy_list(&ix->exclude, opt->exclude, opt->n_exclude))
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    // "/a/b/" and "/a/b" are one root.
    for (size_t i = 0; i < ix->roots.n; i++) {
        size_t l = strlen(ix->roots.v[i]);
        while (l > 1 && ix->roots.v[i][l - 1] == '/') ix->roots.v[i][--l] = 0;
    }
    ix->index_hidden = opt->index_hidden;
    ix->index_remote = opt->index_remote;
    ix->prune = opt->prune_outside_roots;
    ix->opt.max_file_size = opt->max_file_size ? opt->max_file_size : 64u << 20;
    ix->opt.chunk = opt->chunk.max_tokens ? opt->chunk : (m3_chunk_options){512, 64};
    ix->opt.batch_tokens = opt->batch_tokens ? opt->batch_tokens : 8192;
    ix->opt.commit_ms = opt->commit_ms;
    return M3_STATUS_OK;
}

m3_status m3_indexer_new(m3_index *idx, m3_index_writer *writer, m3_encoder *enc, const m3_tokenizer *tok,
                         const m3_indexer_options *opt, m3_indexer **out, m3_error *err)
{
    *out = NULL;
    if (!opt->helper_argv || !opt->helper_argv[0])
        return m3_error_set(err, M3_STATUS_INVALID, 0, "indexer: no extraction helper given");
    m3_indexer *ix = calloc(1, sizeof *ix);
    if (!ix) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    ix->idx = idx;
    ix->wr = writer;
    ix->enc = enc;
    ix->tok = tok;
    ix->opt = *opt;
    ix->opt.roots = ix->opt.exclude = NULL;
    ix->model_version = (uint32_t)strtoull(m3_index_get_model(idx)->checksum + 8, NULL, 16);
    pthread_mutex_init(&ix->mu, NULL);
    pthread_cond_init(&ix->cv, NULL);
    atomic_init(&ix->cancelled, false);
    if (!realpath(m3_index_get_dir(idx), ix->index_dir)) ix->index_dir[0] = 0;
    size_t n = 0;
    while (opt->helper_argv[n]) n++;
    m3_status s = M3_STATUS_NOMEM;
    if (!(ix->helper_argv = calloc(n + 1, sizeof *ix->helper_argv))) goto fail;
    for (size_t i = 0; i < n; i++)
        if (!(ix->helper_argv[i] = strdup(opt->helper_argv[i]))) goto fail;
    if ((s = m3_indexer_configure(ix, opt, err)) != M3_STATUS_OK) goto fail;
    // The extraction helper's memory limit leaves room for the largest file, its text (up to 4
    // bytes per byte) and line anchors.
    m3_sandbox_options sopt = m3_sandbox_options_default();
    sopt.argv = (const char *const *)ix->helper_argv;
    if (sopt.memory_limit < 24 * ix->opt.max_file_size) sopt.memory_limit = 24 * ix->opt.max_file_size;
    if (sopt.max_text < 4 * ix->opt.max_file_size) sopt.max_text = 4 * ix->opt.max_file_size;
    if ((s = m3_sandbox_new(&sopt, &ix->sandbox, err)) != M3_STATUS_OK) goto fail;
    *out = ix;
    return M3_STATUS_OK;
fail:
    if (s == M3_STATUS_NOMEM) m3_error_set(err, s, 0, "out of memory");
    m3_indexer_free(ix);
    return s;
}

void m3_indexer_free(m3_indexer *ix)
{
    if (!ix) return;
    m3_sandbox_free(ix->sandbox);
    m3_strvec_clear(&ix->roots);
    m3_strvec_clear(&ix->exclude);
    for (size_t i = 0; ix->helper_argv && ix->helper_argv[i]; i++) free(ix->helper_argv[i]);
    free(ix->helper_argv);
    pthread_mutex_destroy(&ix->mu);
    pthread_cond_destroy(&ix->cv);
    free(ix);
}

// ---- control -----------------------------------------------------------------------------------

void m3_indexer_pause(m3_indexer *ix)
{
    pthread_mutex_lock(&ix->mu);
    ix->paused = true;
    pthread_mutex_unlock(&ix->mu);
}

void m3_indexer_resume(m3_indexer *ix)
{
    pthread_mutex_lock(&ix->mu);
    ix->paused = false;
    pthread_cond_broadcast(&ix->cv);
    pthread_mutex_unlock(&ix->mu);
}

void m3_indexer_cancel(m3_indexer *ix)
{
    pthread_mutex_lock(&ix->mu);
    atomic_store(&ix->cancelled, true);
    pthread_cond_broadcast(&ix->cv);
    pthread_mutex_unlock(&ix->mu);
}

void m3_indexer_uncancel(m3_indexer *ix) { atomic_store(&ix->cancelled, false); }

bool m3_indexer_is_paused(const m3_indexer *ix)
{
    pthread_mutex_lock((pthread_mutex_t *)&ix->mu);
    bool p = ix->paused;
    pthread_mutex_unlock((pthread_mutex_t *)&ix->mu);
    return p;
}

bool m3_indexer_cancelled(const m3_indexer *ix) { return atomic_load(&ix->cancelled); }

bool m3_indexer_wait_running(m3_indexer *ix)
{
    pthread_mutex_lock(&ix->mu);
    double t = 0;
    while (ix->paused && !atomic_load(&ix->cancelled)) {
        if (!t) t = m3_indexer_now();
        pthread_cond_wait(&ix->cv, &ix->mu);
    }
    if (t) ix->paused_s += m3_indexer_now() - t;
    bool run = !atomic_load(&ix->cancelled);
    pthread_mutex_unlock(&ix->mu);
    return run;
}

bool m3_indexer_lower_priority(void)
{
    struct sched_param sp = {0};
    bool ok = sched_setscheduler(0, SCHED_IDLE, &sp) == 0;
    // ioprio_set(IOPRIO_WHO_PROCESS, this thread, IOPRIO_CLASS_IDLE): glibc has no wrapper.
    enum { IOPRIO_WHO_PROCESS = 1, IOPRIO_CLASS_IDLE = 3, IOPRIO_CLASS_SHIFT = 13 };
    ok = syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT) == 0 && ok;
    return ok;
}

// ---- runs --------------------------------------------------------------------------------------

static void start_run(m3_indexer *ix)
{
    memset(&ix->prog, 0, sizeof ix->prog);
    ix->prog.crawling = true;
    ix->prog.eta_seconds = -1;
    ix->t0 = m3_indexer_now();
    ix->paused_s = 0;
    if (ix->opt.on_progress) ix->opt.on_progress(&ix->prog, ix->opt.user);
}

static void gone_clear(m3_gone_list *g)
{
    for (size_t i = 0; i < g->n; i++) free(g->v[i].path);
    free(g->v);
    *g = (m3_gone_list){0};
}

static bool gone_push(m3_gone_list *g, const char *path, const m3_index_file *f)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        m3_gone_file *v = realloc(g->v, cap * sizeof *v);
        if (!v) return false;
        g->v = v;
        g->cap = cap;
    }
    char *p = strdup(path);
    if (!p) return false;
    // Only a fully indexed file can give its vectors to a moved copy.
    bool reusable = f->state == M3_FILE_DONE;
    g->v[g->n++] = (m3_gone_file){p, reusable ? f->hash : 0, reusable ? f->size : UINT64_MAX, false};
    return true;
}

typedef struct compare_ctx {
    m3_indexer *ix;
    const m3_strvec *found;   // sorted files found on disk
    const m3_crawl *crawl;    // and what the walk could not look into
    m3_gone_list *gone;
    m3_strvec *to_index;
    bool force, nomem;
} compare_ctx;

// Whether the file was read by the extractor that would read it today: an upgraded extractor
// (another version) re-reads the files it read, and a change in the set of extractors gives the
// files none could read another look. A file skipped for its size or failed before any extractor
// ran has no extractor to compare.
// A file the plain-text fallback read (an extension no extractor named then) whose extension names
// another extractor now (a format added since: flat OpenDocument's fods and fodp were read as
// XML text before) is read again by that one.
static bool extractor_current(const char *path, const m3_index_file *f)
{
    if (!strcmp(f->extractor, "none")) return f->extractor_version == m3_extract_set_version();
    if (!strcmp(f->extractor, M3_INDEXER_UNOPENED)) return false;  // could not be opened: try again
    if (!f->extractor[0] || !strcmp(f->extractor, "read")) return true;
    const m3_extractor *ex = m3_extract_find_name(f->extractor);
    if (!ex || ex->version != f->extractor_version) return false;
    const m3_extractor *by_ext = m3_extract_find_ext(path);
    return !by_ext || !strcmp(by_ext->name, ex->name);
}

// For each indexed file: gone (not found, or not wanted any more), changed, or unchanged.
static int compare_cb(const char *path, const m3_index_file *f, void *user)
{
    compare_ctx *c = user;
    m3_indexer *ix = c->ix;
    bool under_root = m3_indexer_root_of(ix, path) != NULL;
    if (!under_root && !ix->prune) return 0;
    // A path the walk could not look into is recorded again with its reason; what the index holds
    // under an unreadable folder stays as it is: a folder that cannot be read says nothing about
    // whether its files are still there (a permission or an I/O error may pass).
    if (m3_crawl_failed_at(c->crawl, path)) return 0;
    if (!m3_strvec_contains(c->found, path)) {
        if (!gone_push(c->gone, path, f)) c->nomem = true;
        return c->nomem;
    }
    // Found: a cheap look at size and mtime (and whether its extractor changed); the reader hashes
    // the rest.
    struct stat st;
    if (lstat(path, &st) == 0 && !c->force) {
        int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (f->size == (uint64_t)st.st_size && f->mtime_ns == mt && f->state != M3_FILE_PENDING &&
            (f->model_version == ix->model_version || f->state != M3_FILE_DONE) && extractor_current(path, f)) {
            ix->prog.unchanged++;
            return 0;
        }
    }
    if (!m3_strvec_push(c->to_index, path)) c->nomem = true;
    return c->nomem;
}

typedef struct known_ctx {
    m3_strvec *known;
} known_ctx;

static int known_cb(const char *path, const m3_index_file *f, void *user)
{
    (void)f;
    return !m3_strvec_push(((known_ctx *)user)->known, path);
}

// The shared part of sync and update: crawl = what the walk saw under `scopes`; files the index
// holds under the scopes are compared with it; new files are added; what the walk could not look
// into is recorded as failed.
static m3_status reconcile(m3_indexer *ix, const m3_strvec *scopes, m3_crawl *crawl, bool whole, bool force,
                           m3_error *err)
{
    m3_strvec to_index = {0}, known = {0};
    m3_strvec *found = &crawl->files;
    m3_gone_list gone = {0};
    m3_status s = M3_STATUS_OK;
    m3_strvec_sort_unique(found);
    compare_ctx c = {ix, found, crawl, &gone, &to_index, force, false};
    known_ctx kc = {&known};
    for (size_t i = 0; s == M3_STATUS_OK && i < (whole ? 1 : scopes->n); i++) {
        const char *scope = whole ? NULL : scopes->v[i];
        s = m3_index_list_files_under(ix->idx, scope, compare_cb, &c, err);
        if (s == M3_STATUS_OK) s = m3_index_list_files_under(ix->idx, scope, known_cb, &kc, err);
    }
    if (s == M3_STATUS_OK && c.nomem) s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    if (s != M3_STATUS_OK) goto out;
    // Files found that the index does not hold yet.
    m3_strvec_sort_unique(&known);
    for (size_t i = 0; i < found->n; i++)
        if (!m3_strvec_contains(&known, found->v[i]) && !m3_strvec_push(&to_index, found->v[i])) {
            s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
            goto out;
        }
    m3_strvec_sort_unique(&to_index);
    // Written by the run's commits (the writer belongs to this thread).
    for (size_t i = 0; i < crawl->failed.n && s == M3_STATUS_OK; i++)
        s = m3_indexer_record_failed(ix, crawl->failed.v[i], crawl->reasons.v[i], err);
    if (s == M3_STATUS_OK) s = m3_indexer_run(ix, &to_index, &gone, force, err);
out:
    m3_strvec_clear(&to_index);
    m3_strvec_clear(&known);
    gone_clear(&gone);
    return s;
}

m3_status m3_indexer_sync(m3_indexer *ix, m3_error *err)
{
    start_run(ix);
    m3_crawl found = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < ix->roots.n && !m3_indexer_cancelled(ix); i++)
        ok = m3_indexer_walk(ix, ix->roots.v[i], &found);
    m3_status s = !ok                        ? m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory")
                  : m3_indexer_cancelled(ix) ? m3_error_set(err, M3_STATUS_CANCELLED, 0, "indexing cancelled")
                                             : reconcile(ix, &ix->roots, &found, ix->prune, false, err);
    m3_crawl_clear(&found);
    return s;
}

m3_status m3_indexer_update(m3_indexer *ix, const char *const *paths, size_t n, unsigned flags, m3_error *err)
{
    start_run(ix);
    m3_crawl found = {0};
    m3_strvec scopes = {0};
    m3_status s = M3_STATUS_OK;
    for (size_t i = 0; i < n && s == M3_STATUS_OK; i++) {
        const char *p = paths[i];
        if (!p || p[0] != '/' || !m3_indexer_root_of(ix, p)) continue;
        // The scope: what the index holds there is compared with what is there now (nothing, if
        // the path is gone or no longer wanted).
        if (!m3_strvec_push(&scopes, p) || !m3_indexer_walk(ix, p, &found))
            s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    }
    if (s == M3_STATUS_OK) s = reconcile(ix, &scopes, &found, false, (flags & M3_INDEXER_FORCE) != 0, err);
    m3_crawl_clear(&found);
    m3_strvec_clear(&scopes);
    return s;
}
