// SPDX-License-Identifier: MIT
//
// The service's engine (engine.h): the indexing thread and the search path.
#include "engine.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "encoder/encoder.h"
#include "index/index.h"
#include "indexer/indexer.h"
#include "model/model.h"

G_DEFINE_QUARK(m3 - indexer - error - quark, m3_indexer_error)

enum {
    IDLE_FREE_S = 120,       // the indexing encoder is freed after this long without work
    RETRY_S = 10,            // a refused index (another writer) is tried again after this long
};

// What searches share with the indexing thread. Reference-counted: a search keeps it alive while
// the configuration changes under it.
typedef struct Resources {
    gint refs;
    m3_model *model;
    m3_index *idx;
    GMutex search_mu;        // one search at a time on the search encoder (not thread-safe)
    m3_encoder *search_enc;  // made on first use, normal priority
    GMutex sandbox_mu;       // one extraction at a time in the sandbox, apart from search_mu
    m3_sandbox *sandbox;     // extraction for FindSimilar on files outside the index
    char *backend;
    m3_precision precision;
    double weights[3];
} Resources;

struct M3Engine {
    GMutex mu;
    GCond cond;
    // Requests from the main thread.
    M3EngineConfig config;
    guint config_gen;
    GHashTable *paths;       // path → GINT_TO_POINTER(force)
    gboolean want_sync, want_retry, quit;
    char *pause_reason;
    // What the indexing thread reports.
    char *state, *error, *backend, *device;
    gboolean model_missing;
    m3_indexer_progress prog;
    m3_index_stats stats;
    Resources *res;
    m3_indexer *ix;          // owned by the thread; pointer shared for pause/cancel
    // Plumbing.
    GThread *thread;
    GMainContext *main_ctx;
    M3EngineNotify status_changed, index_changed;
    gpointer user;
    gint searches;           // in flight (teardown waits)
    GHashTable *latest;      // client → the serial of its newest request (under mu)
    guint serial;
};

// ---- configuration ----------------------------------------------------------------------------

void m3_engine_config_clear(M3EngineConfig *c)
{
    g_free(c->model);
    g_free(c->index_dir);
    g_strfreev(c->folders);
    g_strfreev(c->exclude);
    g_free(c->backend);
    g_free(c->precision);
    memset(c, 0, sizeof *c);
}

void m3_engine_config_copy(M3EngineConfig *dst, const M3EngineConfig *src)
{
    *dst = *src;
    dst->model = g_strdup(src->model);
    dst->index_dir = g_strdup(src->index_dir);
    dst->folders = g_strdupv(src->folders);
    dst->exclude = g_strdupv(src->exclude);
    dst->backend = g_strdup(src->backend);
    dst->precision = g_strdup(src->precision);
}

// ---- resources --------------------------------------------------------------------------------

static Resources *res_ref(Resources *r)
{
    if (r) g_atomic_int_inc(&r->refs);
    return r;
}

static void res_unref(Resources *r)
{
    if (!r || !g_atomic_int_dec_and_test(&r->refs)) return;
    m3_encoder_free(r->search_enc);
    m3_sandbox_free(r->sandbox);
    m3_index_close(r->idx);
    m3_model_close(r->model);
    g_mutex_clear(&r->search_mu);
    g_mutex_clear(&r->sandbox_mu);
    g_free(r->backend);
    g_free(r);
}

// ---- status -----------------------------------------------------------------------------------

static gboolean status_idle_cb(gpointer data)
{
    M3Engine *e = data;
    if (e->status_changed) e->status_changed(e->user);
    return G_SOURCE_REMOVE;
}

static gboolean index_idle_cb(gpointer data)
{
    M3Engine *e = data;
    if (e->index_changed) e->index_changed(e->user);
    return G_SOURCE_REMOVE;
}

// From any thread: tell the main thread. The service rate-limits what it sends on the bus.
static void post_status(M3Engine *e) { g_main_context_invoke(e->main_ctx, status_idle_cb, e); }

// D-Bus strings must be UTF-8, and file names need not be (nor the messages that quote them): a
// path goes out in its display form (bytes that are not UTF-8 as U+FFFD; results carry the exact
// file in their "uri"), any other text with its invalid bytes replaced.
static GVariant *path_string(const char *path)
{
    if (g_utf8_validate(path, -1, NULL)) return g_variant_new_string(path);
    g_autofree char *shown = g_filename_display_name(path);
    return g_variant_new_string(shown);
}

static GVariant *text_string(const char *text)
{
    if (g_utf8_validate(text, -1, NULL)) return g_variant_new_string(text);
    g_autofree char *valid = g_utf8_make_valid(text, -1);
    return g_variant_new_string(valid);
}

static void set_state(M3Engine *e, const char *state, const char *error)
{
    g_mutex_lock(&e->mu);
    g_free(e->state);
    e->state = g_strdup(state);
    g_free(e->error);
    e->error = g_strdup(error ? error : "");
    g_mutex_unlock(&e->mu);
    post_status(e);
}

static void refresh_stats(M3Engine *e, m3_index *idx)
{
    m3_index_stats st;
    if (m3_index_get_stats(idx, &st, NULL) != M3_STATUS_OK) return;
    g_mutex_lock(&e->mu);
    e->stats = st;
    g_mutex_unlock(&e->mu);
}

GVariant *m3_engine_dup_status(M3Engine *e)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_mutex_lock(&e->mu);
    const char *state = e->state;
    if (e->pause_reason && (!strcmp(state, "idle") || !strcmp(state, "indexing") || !strcmp(state, "crawling")))
        state = "paused";
    uint64_t pending = e->prog.files_total > e->prog.files_done ? e->prog.files_total - e->prog.files_done : 0;
    if (!strcmp(state, "idle") || !strcmp(state, "error")) pending = 0;
    pending += g_hash_table_size(e->paths);
    const m3_index_stats *st = &e->stats;
    g_variant_builder_add(&b, "{sv}", "state", g_variant_new_string(state));
    g_variant_builder_add(&b, "{sv}", "paused-reason", g_variant_new_string(e->pause_reason ? e->pause_reason : ""));
    g_variant_builder_add(&b, "{sv}", "error", text_string(e->error ? e->error : ""));
    g_variant_builder_add(&b, "{sv}", "model-missing", g_variant_new_boolean(e->model_missing));
    g_variant_builder_add(&b, "{sv}", "files-indexed",
                          g_variant_new_uint64(st->files - st->files_failed - st->files_skipped));
    g_variant_builder_add(&b, "{sv}", "files-pending", g_variant_new_uint64(pending));
    g_variant_builder_add(&b, "{sv}", "files-failed", g_variant_new_uint64(st->files_failed));
    g_variant_builder_add(&b, "{sv}", "chunks", g_variant_new_uint64(st->chunks));
    g_variant_builder_add(&b, "{sv}", "tokens", g_variant_new_uint64(st->tokens));
    gboolean running = !strcmp(state, "indexing");
    g_variant_builder_add(&b, "{sv}", "tokens-per-second",
                          g_variant_new_double(running ? e->prog.tokens_per_second : 0));
    g_variant_builder_add(&b, "{sv}", "eta-seconds", g_variant_new_double(running ? e->prog.eta_seconds : -1));
    g_variant_builder_add(&b, "{sv}", "backend", g_variant_new_string(e->backend ? e->backend : ""));
    g_variant_builder_add(&b, "{sv}", "device", g_variant_new_string(e->device ? e->device : ""));
    g_variant_builder_add(&b, "{sv}", "model", path_string(e->config.model ? e->config.model : ""));
    g_variant_builder_add(&b, "{sv}", "index-bytes", g_variant_new_uint64(st->file_bytes));
    g_variant_builder_add(&b, "{sv}", "index-folder", path_string(e->config.index_dir ? e->config.index_dir : ""));
    GVariantBuilder folders;
    g_variant_builder_init(&folders, G_VARIANT_TYPE_STRING_ARRAY);
    for (char **f = e->config.folders; f && *f; f++) g_variant_builder_add_value(&folders, path_string(*f));
    g_variant_builder_add(&b, "{sv}", "folders", g_variant_builder_end(&folders));
    g_mutex_unlock(&e->mu);
    return g_variant_builder_end(&b);
}

gboolean m3_engine_is_busy(M3Engine *e)
{
    g_mutex_lock(&e->mu);
    gboolean busy = strcmp(e->state, "idle") && strcmp(e->state, "error");
    busy = busy || e->want_sync || g_hash_table_size(e->paths) > 0;
    g_mutex_unlock(&e->mu);
    return busy;
}

// ---- the indexing thread -----------------------------------------------------------------------

typedef struct Worker {
    M3Engine *e;
    M3EngineConfig config;   // the applied configuration
    guint gen;
    Resources *res;
    m3_index_writer *wr;
    m3_encoder *enc;
    m3_indexer *ix;
    gint64 last_work;
    gboolean retry_open;     // the index could not be opened (busy): try again later
} Worker;

static void on_progress(const m3_indexer_progress *p, void *user)
{
    M3Engine *e = user;
    g_mutex_lock(&e->mu);
    e->prog = *p;
    const char *state = p->crawling ? "crawling" : "indexing";
    if (strcmp(e->state, state)) {
        g_free(e->state);
        e->state = g_strdup(state);
    }
    g_mutex_unlock(&e->mu);
    post_status(e);
}

static void on_file(const char *path, m3_file_outcome outcome, const char *reason, void *user)
{
    (void)user;
    if (outcome == M3_OUTCOME_FAILED) g_message("%s: %s", path, reason ? reason : "failed");
}

static void on_commit(void *user)
{
    M3Engine *e = user;
    g_mutex_lock(&e->mu);
    Resources *r = res_ref(e->res);
    g_mutex_unlock(&e->mu);
    if (r) refresh_stats(e, r->idx);
    res_unref(r);
    g_main_context_invoke(e->main_ctx, index_idle_cb, e);
    post_status(e);
}

static void drop_pipeline(Worker *w)
{
    M3Engine *e = w->e;
    g_mutex_lock(&e->mu);
    e->ix = NULL;
    g_mutex_unlock(&e->mu);
    m3_indexer_free(w->ix);
    w->ix = NULL;
    m3_encoder_free(w->enc);
    w->enc = NULL;
}

static void drop_resources(Worker *w)
{
    M3Engine *e = w->e;
    drop_pipeline(w);
    m3_index_writer_free(w->wr);
    w->wr = NULL;
    g_mutex_lock(&e->mu);
    Resources *r = e->res;
    e->res = NULL;
    g_mutex_unlock(&e->mu);
    res_unref(w->res);
    w->res = NULL;
    // LMDB allows one environment per file and process: the old index must be closed before the
    // new one opens. Searches hold it for milliseconds.
    while (r && g_atomic_int_get(&r->refs) > 1) g_usleep(5000);
    res_unref(r);
}

// The extraction helper is `m3 extract-helper`, installed (and built) next to this program: one
// place registers the extractors for every format.
static const char *const *helper_argv(void)
{
    static const char *argv[3];
    static gsize once;
    if (g_once_init_enter(&once)) {
        g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
        g_autofree char *dir = self ? g_path_get_dirname(self) : g_strdup(".");
        argv[0] = g_build_filename(dir, "m3", NULL);
        argv[1] = "extract-helper";
        g_once_init_leave(&once, 1);
    }
    return argv;
}

static gboolean helper_argv_ok(void) { return g_file_test(helper_argv()[0], G_FILE_TEST_IS_EXECUTABLE); }

// Opens the model and the index (creating it; a damaged index or one of another model is moved
// aside and rebuilt: the index is a cache of the user's files).
static gboolean open_resources(Worker *w)
{
    M3Engine *e = w->e;
    const M3EngineConfig *c = &w->config;
    m3_error err = {0};
    g_mutex_lock(&e->mu);
    e->model_missing = !c->model || !*c->model;
    g_mutex_unlock(&e->mu);
    if (!c->model || !*c->model) {
        set_state(e, "error", "No model yet: download BGE-M3 or choose one in the window.");
        return FALSE;
    }
    Resources *r = g_new0(Resources, 1);
    r->refs = 1;
    g_mutex_init(&r->search_mu);
    g_mutex_init(&r->sandbox_mu);
    r->backend = g_strdup(c->backend);
    // Both paths compute in one precision, so that they share the packed weights and a query's
    // vectors match the indexed ones'.
    if (m3_precision_parse(c->precision && *c->precision ? c->precision : "auto", &r->precision, &err) != M3_STATUS_OK) {
        g_message("%s: using auto", err.message);
        r->precision = M3_PRECISION_AUTO;
    }
    memcpy(r->weights, c->weights, sizeof r->weights);
    m3_index_model mid;
    if (m3_model_open(c->model, &r->model, &err) != M3_STATUS_OK ||
        m3_index_model_identify(c->model, &mid, &err) != M3_STATUS_OK) {
        g_autofree char *msg = g_strdup_printf("The model cannot be used: %s", err.message);
        set_state(e, "error", msg);
        g_mutex_lock(&e->mu);
        e->model_missing = TRUE;
        g_mutex_unlock(&e->mu);
        res_unref(r);
        return FALSE;
    }
    if (g_mkdir_with_parents(c->index_dir, 0700) != 0) {
        g_autofree char *msg = g_strdup_printf("Cannot create the index folder %s: %s", c->index_dir, g_strerror(errno));
        set_state(e, "error", msg);
        res_unref(r);
        return FALSE;
    }
    m3_index_options iopt = {.flags = M3_INDEX_CREATE, .model = &mid};
    m3_status s = m3_index_open(c->index_dir, &iopt, &r->idx, &err);
    if (s == M3_STATUS_FORMAT || s == M3_STATUS_INVALID || s == M3_STATUS_UNSUPPORTED) {
        g_message("%s; rebuilding the index", err.message);
        if (m3_index_remove(c->index_dir, &err) == M3_STATUS_OK) s = m3_index_open(c->index_dir, &iopt, &r->idx, &err);
    }
    if (s == M3_STATUS_OK) s = m3_index_writer_new(r->idx, &w->wr, &err);
    if (s != M3_STATUS_OK) {
        set_state(e, "error", err.message);
        w->retry_open = s == M3_STATUS_BUSY;
        res_unref(r);
        return FALSE;
    }
    w->retry_open = FALSE;
    w->res = r;
    g_mutex_lock(&e->mu);
    e->res = res_ref(r);
    g_mutex_unlock(&e->mu);
    refresh_stats(e, r->idx);
    return TRUE;
}

static gboolean make_pipeline(Worker *w)
{
    M3Engine *e = w->e;
    const M3EngineConfig *c = &w->config;
    m3_error err = {0};
    if (w->ix) return TRUE;
    m3_encoder_options eo = m3_encoder_options_default();
    eo.backend = c->backend && *c->backend ? c->backend : "auto";
    eo.threads = (int)c->cpu_threads;
    eo.precision = w->res->precision;
    if (!helper_argv_ok()) {
        g_autofree char *msg = g_strdup_printf("The extraction helper %s is missing: reinstall m3search", helper_argv()[0]);
        set_state(e, "error", msg);
        return FALSE;
    }
    if (m3_encoder_new(w->res->model, &eo, &w->enc, &err) != M3_STATUS_OK) {
        set_state(e, "error", err.message);
        return FALSE;
    }
    m3_indexer_options o = m3_indexer_options_default();
    o.roots = (const char *const *)c->folders;
    o.n_roots = c->folders ? g_strv_length(c->folders) : 0;
    o.exclude = (const char *const *)c->exclude;
    o.n_exclude = c->exclude ? g_strv_length(c->exclude) : 0;
    o.index_hidden = c->index_hidden;
    o.index_remote = c->index_remote;
    o.prune_outside_roots = TRUE;
    if (c->max_file_size) o.max_file_size = c->max_file_size;
    o.commit_ms = c->commit_ms ? c->commit_ms : 2000;
    if (c->batch_tokens) o.batch_tokens = c->batch_tokens;
    o.helper_argv = helper_argv();
    o.on_progress = on_progress;
    o.on_file = on_file;
    o.on_commit = on_commit;
    o.user = e;
    if (m3_indexer_new(w->res->idx, w->wr, w->enc, m3_model_get_tokenizer(w->res->model), &o, &w->ix, &err) !=
        M3_STATUS_OK) {
        set_state(e, "error", err.message);
        m3_encoder_free(w->enc);
        w->enc = NULL;
        return FALSE;
    }
    m3_encoder_device dev;
    g_mutex_lock(&e->mu);
    g_free(e->backend);
    e->backend = g_strdup(m3_encoder_backend_name(w->enc));
    g_free(e->device);
    e->device = g_strdup(m3_encoder_get_device(w->enc, &dev) ? dev.name : "CPU");
    e->ix = w->ix;
    if (e->pause_reason) m3_indexer_pause(w->ix);
    g_mutex_unlock(&e->mu);
    return TRUE;
}

// A new configuration: reopen what changed.
static void apply_config(Worker *w, const M3EngineConfig *next)
{
    const M3EngineConfig *old = &w->config;
    gboolean reopen = !w->res || g_strcmp0(old->model, next->model) || g_strcmp0(old->index_dir, next->index_dir) ||
                      g_strcmp0(old->precision, next->precision) || g_strcmp0(old->backend, next->backend);
    // Only what changes which files belong in the index calls for a new walk.
    gboolean resync = reopen || !g_strv_equal((const char *const *)(old->folders ? old->folders : (char *[]){NULL}),
                                              (const char *const *)(next->folders ? next->folders : (char *[]){NULL})) ||
                      !g_strv_equal((const char *const *)(old->exclude ? old->exclude : (char *[]){NULL}),
                                    (const char *const *)(next->exclude ? next->exclude : (char *[]){NULL})) ||
                      old->index_hidden != next->index_hidden || old->index_remote != next->index_remote ||
                      old->max_file_size != next->max_file_size;
    gboolean rebuild_pipeline = reopen || g_strcmp0(old->backend, next->backend) || old->cpu_threads != next->cpu_threads;
    if (rebuild_pipeline) drop_pipeline(w);
    if (reopen) drop_resources(w);
    m3_engine_config_clear(&w->config);
    m3_engine_config_copy(&w->config, next);
    if (reopen && !open_resources(w)) return;
    if (w->res) memcpy(w->res->weights, next->weights, sizeof w->res->weights);
    if (w->ix) {
        m3_indexer_options o = m3_indexer_options_default();
        o.roots = (const char *const *)next->folders;
        o.n_roots = next->folders ? g_strv_length(next->folders) : 0;
        o.exclude = (const char *const *)next->exclude;
        o.n_exclude = next->exclude ? g_strv_length(next->exclude) : 0;
        o.index_hidden = next->index_hidden;
        o.index_remote = next->index_remote;
        o.prune_outside_roots = TRUE;
        o.max_file_size = next->max_file_size ? next->max_file_size : o.max_file_size;
        o.commit_ms = next->commit_ms ? next->commit_ms : 2000;
        if (next->batch_tokens) o.batch_tokens = next->batch_tokens;
        m3_error err;
        if (m3_indexer_configure(w->ix, &o, &err) != M3_STATUS_OK) set_state(w->e, "error", err.message);
    }
    if (resync) {
        g_mutex_lock(&w->e->mu);
        w->e->want_sync = TRUE;
        g_mutex_unlock(&w->e->mu);
    }
}

typedef struct failed_ctx {
    GPtrArray *paths;
} failed_ctx;

static int collect_failed_cb(const char *path, const m3_index_file *f, void *user)
{
    failed_ctx *c = user;
    if (f->state == M3_FILE_FAILED || f->state == M3_FILE_PENDING ||
        (f->state == M3_FILE_SKIPPED && strcmp(f->extractor, "none")))
        g_ptr_array_add(c->paths, g_strdup(path));
    return 0;
}

static void run_work(Worker *w, gboolean sync, GPtrArray *paths, GPtrArray *forced)
{
    M3Engine *e = w->e;
    m3_error err = {0};
    m3_status s = M3_STATUS_OK;
    if (!make_pipeline(w)) return;
    m3_indexer_uncancel(w->ix);
    if (sync) s = m3_indexer_sync(w->ix, &err);
    if (s == M3_STATUS_OK && paths->len)
        s = m3_indexer_update(w->ix, (const char *const *)paths->pdata, paths->len, 0, &err);
    if (s == M3_STATUS_OK && forced->len)
        s = m3_indexer_update(w->ix, (const char *const *)forced->pdata, forced->len, M3_INDEXER_FORCE, &err);
    w->last_work = g_get_monotonic_time();
    refresh_stats(e, w->res->idx);
    if (s == M3_STATUS_CANCELLED) {
        // A new configuration (or shutdown) interrupted the run: look at everything again.
        g_mutex_lock(&e->mu);
        e->want_sync = TRUE;
        g_mutex_unlock(&e->mu);
        set_state(e, "idle", NULL);
    } else if (s != M3_STATUS_OK) {
        g_warning("indexing: %s", err.message);
        set_state(e, "error", err.message);
    } else {
        set_state(e, "idle", NULL);
    }
    g_mutex_lock(&e->mu);
    memset(&e->prog, 0, sizeof e->prog);
    g_mutex_unlock(&e->mu);
    post_status(e);
}

static gpointer worker_main(gpointer data)
{
    M3Engine *e = data;
    Worker w = {.e = e, .last_work = g_get_monotonic_time()};
    // Everything this thread starts (encoder workers, the reader, the extraction helper) inherits
    // the idle CPU and I/O class: indexing only uses what nobody else wants.
    // M3SEARCHD_PRIORITY=normal (tests on a busy machine, where an idle-class thread may not run
    // for minutes) keeps the normal class.
    if (g_strcmp0(g_getenv("M3SEARCHD_PRIORITY"), "normal") && !m3_indexer_lower_priority())
        g_message("cannot lower the indexing thread's priority");
    for (;;) {
        g_mutex_lock(&e->mu);
        for (;;) {
            if (e->quit || w.gen != e->config_gen) break;
            gboolean has_work = e->want_sync || e->want_retry || g_hash_table_size(e->paths) > 0;
            if (has_work && !e->pause_reason && w.res) break;
            gint64 now = g_get_monotonic_time();
            if (w.retry_open) {
                if (!g_cond_wait_until(&e->cond, &e->mu, now + RETRY_S * G_TIME_SPAN_SECOND)) {
                    w.gen = 0;  // reopen
                    break;
                }
            } else if (w.enc && !has_work) {
                // Idle: the encoder's activations and packed weights go after a while.
                gint64 idle_free = g_get_monotonic_time() + IDLE_FREE_S * G_TIME_SPAN_SECOND;
                const char *t = g_getenv("M3SEARCHD_IDLE_FREE_S");
                if (t) idle_free = w.last_work + g_ascii_strtoll(t, NULL, 10) * G_TIME_SPAN_SECOND;
                else idle_free = w.last_work + IDLE_FREE_S * G_TIME_SPAN_SECOND;
                if (!g_cond_wait_until(&e->cond, &e->mu, idle_free) && w.enc) {
                    g_mutex_unlock(&e->mu);
                    drop_pipeline(&w);
                    g_mutex_lock(&e->mu);
                }
            } else {
                g_cond_wait(&e->cond, &e->mu);
            }
        }
        if (e->quit) {
            g_mutex_unlock(&e->mu);
            break;
        }
        if (w.gen != e->config_gen || !w.res) {
            M3EngineConfig next;
            m3_engine_config_copy(&next, &e->config);
            w.gen = e->config_gen;
            g_mutex_unlock(&e->mu);
            if (w.gen == 0) w.gen = e->config_gen;
            apply_config(&w, &next);
            m3_engine_config_clear(&next);
            continue;
        }
        gboolean sync = e->want_sync, retry = e->want_retry;
        e->want_sync = e->want_retry = FALSE;
        GPtrArray *paths = g_ptr_array_new_with_free_func(g_free), *forced = g_ptr_array_new_with_free_func(g_free);
        GHashTableIter it;
        gpointer key, val;
        g_hash_table_iter_init(&it, e->paths);
        while (g_hash_table_iter_next(&it, &key, &val)) {
            g_ptr_array_add(val ? forced : paths, key);
            g_hash_table_iter_steal(&it);
        }
        g_mutex_unlock(&e->mu);
        if (retry) {
            failed_ctx fc = {forced};
            m3_index_list_files(w.res->idx, collect_failed_cb, &fc, NULL);
        }
        if (sync) set_state(e, "crawling", NULL);
        run_work(&w, sync, paths, forced);
        g_ptr_array_unref(paths);
        g_ptr_array_unref(forced);
    }
    drop_resources(&w);
    m3_engine_config_clear(&w.config);
    return NULL;
}

// ---- main-thread API ---------------------------------------------------------------------------

M3Engine *m3_engine_new(M3EngineNotify status_changed, M3EngineNotify index_changed, gpointer user)
{
    M3Engine *e = g_new0(M3Engine, 1);
    g_mutex_init(&e->mu);
    g_cond_init(&e->cond);
    e->paths = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    e->latest = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    e->state = g_strdup("idle");
    e->error = g_strdup("");
    e->main_ctx = g_main_context_ref_thread_default();
    e->status_changed = status_changed;
    e->index_changed = index_changed;
    e->user = user;
    e->thread = g_thread_new("m3-indexer", worker_main, e);
    return e;
}

void m3_engine_free(M3Engine *e)
{
    if (!e) return;
    g_mutex_lock(&e->mu);
    e->quit = TRUE;
    if (e->ix) {
        m3_indexer_cancel(e->ix);
        m3_indexer_resume(e->ix);
    }
    g_cond_broadcast(&e->cond);
    g_mutex_unlock(&e->mu);
    g_thread_join(e->thread);
    while (g_atomic_int_get(&e->searches) > 0) g_usleep(5000);
    // Pending notifications hold e: run them (against nothing) before freeing.
    e->status_changed = e->index_changed = NULL;
    while (g_main_context_iteration(e->main_ctx, FALSE)) {}
    g_hash_table_unref(e->paths);
    g_hash_table_unref(e->latest);
    m3_engine_config_clear(&e->config);
    g_free(e->state);
    g_free(e->error);
    g_free(e->backend);
    g_free(e->device);
    g_free(e->pause_reason);
    g_main_context_unref(e->main_ctx);
    g_mutex_clear(&e->mu);
    g_cond_clear(&e->cond);
    g_free(e);
}

void m3_engine_configure(M3Engine *e, const M3EngineConfig *config)
{
    g_mutex_lock(&e->mu);
    m3_engine_config_clear(&e->config);
    m3_engine_config_copy(&e->config, config);
    e->config_gen++;
    if (e->ix) m3_indexer_cancel(e->ix);  // the running sync stops; the thread picks this up
    g_cond_broadcast(&e->cond);
    g_mutex_unlock(&e->mu);
    post_status(e);
}

void m3_engine_update(M3Engine *e, const char *const *paths, gsize n, gboolean force)
{
    g_mutex_lock(&e->mu);
    for (gsize i = 0; i < n; i++) {
        gpointer old = NULL;
        gboolean had = g_hash_table_lookup_extended(e->paths, paths[i], NULL, &old);
        g_hash_table_insert(e->paths, g_strdup(paths[i]), GINT_TO_POINTER(force || (had && old)));
    }
    g_cond_broadcast(&e->cond);
    g_mutex_unlock(&e->mu);
    post_status(e);
}

gboolean m3_engine_covers(M3Engine *e, const char *path)
{
    g_autofree char *real = realpath(path, NULL);
    const char *p = real ? real : path;
    gboolean covered = FALSE;
    g_mutex_lock(&e->mu);
    for (char **f = e->config.folders; f && *f && !covered; f++) covered = m3_path_under(p, *f);
    g_mutex_unlock(&e->mu);
    return covered;
}

void m3_engine_retry_failed(M3Engine *e)
{
    g_mutex_lock(&e->mu);
    e->want_retry = TRUE;
    g_cond_broadcast(&e->cond);
    g_mutex_unlock(&e->mu);
}

void m3_engine_rescan(M3Engine *e)
{
    g_mutex_lock(&e->mu);
    e->want_sync = TRUE;
    g_cond_broadcast(&e->cond);
    g_mutex_unlock(&e->mu);
}

void m3_engine_set_paused(M3Engine *e, const char *reason)
{
    g_mutex_lock(&e->mu);
    g_free(e->pause_reason);
    e->pause_reason = g_strdup(reason);
    if (e->ix) {
        if (reason) m3_indexer_pause(e->ix);
        else m3_indexer_resume(e->ix);
    }
    g_cond_broadcast(&e->cond);
    g_mutex_unlock(&e->mu);
    post_status(e);
}

// ---- searching ---------------------------------------------------------------------------------

typedef struct SearchJob {
    M3Engine *e;
    char *client;
    guint serial;
    char *query;             // Search
    char *path;              // FindSimilar
    GVariant *options;
} SearchJob;

static void search_job_free(gpointer data)
{
    SearchJob *j = data;
    g_free(j->client);
    g_free(j->query);
    g_free(j->path);
    if (j->options) g_variant_unref(j->options);
    g_free(j);
}

typedef struct Filters {
    guint limit;
    char *folder;
    char **types;
    gint64 modified_after;
    gboolean any;
} Filters;

static gboolean parse_options(GVariant *opts, const double defaults[3], m3_search_options *so, Filters *f,
                              GError **error)
{
    GVariantDict d;
    g_variant_dict_init(&d, opts);
    guint limit = 20;
    const char *mode = "hybrid";
    g_autoptr(GVariant) weights = NULL;
    gboolean ok = TRUE;
    if (g_variant_dict_contains(&d, "limit") && !g_variant_dict_lookup(&d, "limit", "u", &limit)) ok = FALSE;
    if (g_variant_dict_contains(&d, "mode") && !g_variant_dict_lookup(&d, "mode", "&s", &mode)) ok = FALSE;
    if (g_variant_dict_contains(&d, "weights") && !(weights = g_variant_dict_lookup_value(&d, "weights", G_VARIANT_TYPE("ad"))))
        ok = FALSE;
    if (g_variant_dict_contains(&d, "folder") && !g_variant_dict_lookup(&d, "folder", "s", &f->folder)) ok = FALSE;
    if (g_variant_dict_contains(&d, "types") && !g_variant_dict_lookup(&d, "types", "^as", &f->types)) ok = FALSE;
    if (g_variant_dict_contains(&d, "modified-after") &&
        !g_variant_dict_lookup(&d, "modified-after", "x", &f->modified_after))
        ok = FALSE;
    if (!ok) {
        g_variant_dict_clear(&d);
        g_set_error(error, M3_INDEXER_ERROR, M3_INDEXER_ERROR_INVALID_ARGUMENT,
                    "Bad search option: expected limit (u), mode (s), weights (ad), folder (s), types (as), "
                    "modified-after (x)");
        return FALSE;
    }
    *so = m3_search_options_default();
    double w[3] = {defaults[0], defaults[1], defaults[2]};
    if (!strcmp(mode, "dense")) w[0] = 1, w[1] = w[2] = 0;
    else if (!strcmp(mode, "sparse")) w[1] = 1, w[0] = w[2] = 0;
    else if (!strcmp(mode, "colbert")) w[2] = 1, w[0] = w[1] = 0;
    else if (strcmp(mode, "hybrid")) ok = FALSE;
    if (ok && weights && !strcmp(mode, "hybrid")) {
        gsize n;
        const double *v = g_variant_get_fixed_array(weights, &n, sizeof(double));
        if (n != 3 || !(v[0] >= 0 && v[1] >= 0 && v[2] >= 0 && v[0] + v[1] + v[2] > 0)) ok = FALSE;
        else memcpy(w, v, sizeof w);
    }
    g_variant_dict_clear(&d);
    if (!ok || limit == 0 || limit > 1000) {
        g_set_error(error, M3_INDEXER_ERROR, M3_INDEXER_ERROR_INVALID_ARGUMENT,
                    "Bad search option: mode is hybrid, dense, sparse or colbert; weights are three "
                    "non-negative numbers with a positive sum; limit is 1 to 1000");
        return FALSE;
    }
    for (int i = 0; i < 3; i++) so->weights[i] = (float)w[i];
    f->limit = limit;
    f->any = (f->folder && *f->folder) || (f->types && *f->types) || f->modified_after;
    // Filters apply to the ranked files: ask for more, so that enough remain.
    so->limit = f->any ? MAX(limit * 8, 200) : limit;
    return TRUE;
}

static void filters_clear(Filters *f)
{
    g_free(f->folder);
    g_strfreev(f->types);
}

static gboolean type_matches(const char *type, char **wanted)
{
    if (!wanted || !*wanted) return TRUE;
    g_autofree char *mime = g_content_type_get_mime_type(type);
    for (char **t = wanted; *t; t++) {
        size_t l = strlen(*t);
        if (l > 2 && !strcmp(*t + l - 2, "/*") && mime && !strncmp(mime, *t, l - 1)) return TRUE;
        if ((mime && !strcmp(mime, *t)) || g_content_type_is_a(type, *t) || g_content_type_is_mime_type(type, *t))
            return TRUE;
    }
    return FALSE;
}

static GVariant *hits_to_variant(m3_index *idx, const m3_search_hit *hits, size_t n, const Filters *f)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
    guint out = 0;
    for (size_t i = 0; i < n && out < f->limit; i++) {
        const m3_search_hit *h = &hits[i];
        if (f->folder && *f->folder) {
            size_t l = strlen(f->folder);
            while (l > 1 && f->folder[l - 1] == '/') l--;
            if (strncmp(h->path, f->folder, l) || (h->path[l] != '/' && l > 1)) continue;
        }
        g_autofree char *type = g_content_type_guess(h->path, NULL, 0, NULL);
        if (!type_matches(type, f->types)) continue;
        m3_index_file info = {0};
        m3_index_get_file(idx, h->path, &info, NULL);
        gint64 mtime = info.mtime_ns / 1000000000;
        if (f->modified_after && mtime < f->modified_after) continue;
        g_autofree char *uri = g_filename_to_uri(h->path, NULL, NULL);
        g_autofree char *mime = g_content_type_get_mime_type(type);
        GVariantBuilder hb, hl;
        g_variant_builder_init(&hl, G_VARIANT_TYPE("a(uu)"));
        for (size_t k = 0; k < h->n_highlights; k++)
            g_variant_builder_add(&hl, "(uu)", h->highlights[k][0], h->highlights[k][1]);
        g_variant_builder_init(&hb, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&hb, "{sv}", "path", path_string(h->path));
        g_variant_builder_add(&hb, "{sv}", "uri", g_variant_new_string(uri ? uri : ""));
        g_variant_builder_add(&hb, "{sv}", "score", g_variant_new_double(h->score));
        g_variant_builder_add(&hb, "{sv}", "dense", g_variant_new_double(h->dense));
        g_variant_builder_add(&hb, "{sv}", "sparse", g_variant_new_double(h->sparse));
        g_variant_builder_add(&hb, "{sv}", "colbert", g_variant_new_double(h->colbert));
        g_variant_builder_add(&hb, "{sv}", "snippet", text_string(h->snippet ? h->snippet : ""));
        g_variant_builder_add(&hb, "{sv}", "highlights", g_variant_builder_end(&hl));
        g_variant_builder_add(&hb, "{sv}", "start", g_variant_new_uint64(h->start));
        g_variant_builder_add(&hb, "{sv}", "end", g_variant_new_uint64(h->end));
        g_variant_builder_add(&hb, "{sv}", "location", text_string(h->location ? h->location : ""));
        g_variant_builder_add(&hb, "{sv}", "mtime", g_variant_new_int64(mtime));
        g_variant_builder_add(&hb, "{sv}", "content-type", g_variant_new_string(mime ? mime : type));
        g_variant_builder_add(&b, "a{sv}", &hb);
        out++;
    }
    return g_variant_builder_end(&b);
}

// M3SEARCHD_TRACE=1: each search's time split (encoding, index search, results) on stderr, for
// tools/bench-window.py.
static gboolean trace_searches(void)
{
    static int on = -1;
    if (on < 0) on = g_strcmp0(g_getenv("M3SEARCHD_TRACE"), "1") == 0;
    return on;
}

static gboolean ensure_search_encoder(Resources *r, GError **error)
{
    m3_error err = {0};
    if (!r->search_enc) {
        m3_encoder_options eo = m3_encoder_options_default();
        eo.backend = r->backend && *r->backend ? r->backend : "auto";
        eo.precision = r->precision;
        if (m3_encoder_new(r->model, &eo, &r->search_enc, &err) != M3_STATUS_OK) {
            g_set_error(error, M3_INDEXER_ERROR, M3_INDEXER_ERROR_FAILED, "Cannot start the encoder: %s", err.message);
            return FALSE;
        }
    }
    return TRUE;
}

static GVariant *run_search(SearchJob *j, Resources *r, GCancellable *cancel, GError **error)
{
    m3_search_options so;
    Filters f = {0};
    m3_error err = {0};
    GVariant *result = NULL;
    if (!parse_options(j->options, r->weights, &so, &f, error)) return NULL;
    so.tokenizer = m3_model_get_tokenizer(r->model);
    m3_search_hit *hits = NULL;
    size_t n = 0;
    m3_status s = M3_STATUS_OK;
    // FindSimilar on a file the index does not hold (or holds an older copy of): read, extracted
    // and tokenized before the search lock, under the sandbox's own, so that a slow extraction (up
    // to the sandbox's timeout) does not hold up the searches behind it.
    m3_index_file info;
    GStatBuf st;
    gboolean current = FALSE, exists = FALSE, indexed = FALSE;
    int lstat_errno = 0;
    m3_sequence seqs[M3_SIMILAR_QUERY_CHUNKS] = {0};
    size_t n_seqs = 0;
    if (!j->query) {
        exists = g_lstat(j->path, &st) == 0;
        lstat_errno = exists ? 0 : errno;
        indexed = exists && m3_index_get_file(r->idx, j->path, &info, NULL) == M3_STATUS_OK;
        current = indexed && info.state == M3_FILE_DONE && (uint64_t)st.st_size == info.size;
        if (exists && !current && !g_cancellable_is_cancelled(cancel)) {
            g_mutex_lock(&r->sandbox_mu);
            if (!r->sandbox) {
                m3_sandbox_options sopt = m3_sandbox_options_default();
                sopt.argv = helper_argv();
                s = m3_sandbox_new(&sopt, &r->sandbox, &err);
            }
            if (s == M3_STATUS_OK) s = m3_indexer_file_queries(j->path, r->sandbox, so.tokenizer, seqs, &n_seqs, &err);
            g_mutex_unlock(&r->sandbox_mu);
        }
    }
    g_mutex_lock(&r->search_mu);
    if (g_cancellable_set_error_if_cancelled(cancel, error)) goto out;
    if (s != M3_STATUS_OK) goto failed;
    if (j->client) {
        g_mutex_lock(&j->e->mu);
        guint latest = GPOINTER_TO_UINT(g_hash_table_lookup(j->e->latest, j->client));
        g_mutex_unlock(&j->e->mu);
        if (latest != j->serial) {
            g_set_error(error, M3_INDEXER_ERROR, M3_INDEXER_ERROR_SUPERSEDED,
                        "Superseded by a newer request from the same client");
            goto out;
        }
    }
    if (!ensure_search_encoder(r, error)) goto out;
    if (j->query) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        m3_embedding q = {0};
        gint64 t0 = g_get_monotonic_time();
        s = m3_tokenizer_encode(so.tokenizer, j->query, strlen(j->query), 8192, &ids, &n_ids, &err);
        if (s == M3_STATUS_OK) {
            m3_sequence seq = {ids, n_ids};
            s = m3_encoder_encode(r->search_enc, &seq, 1, M3_OUTPUT_ALL, &q, &err);
        }
        gint64 t1 = g_get_monotonic_time();
        if (s == M3_STATUS_OK && !g_cancellable_is_cancelled(cancel)) s = m3_index_search(r->idx, &q, &so, &hits, &n, &err);
        if (s == M3_STATUS_OK && trace_searches()) {
            gint64 t2 = g_get_monotonic_time();
            result = hits_to_variant(r->idx, hits, n, &f);
            g_printerr("m3searchd-trace: search of %zu tokens: encoding %.1f ms, index search %.1f ms, results %.1f ms\n",
                       n_ids, (t1 - t0) / 1000.0, (t2 - t1) / 1000.0, (g_get_monotonic_time() - t2) / 1000.0);
        }
        m3_embedding_clear(&q);
        free(ids);
    } else if (current) {
        s = m3_index_similar(r->idx, j->path, &so, &hits, &n, &err);
    } else if (!exists) {
        g_set_error(error, M3_INDEXER_ERROR, M3_INDEXER_ERROR_NOT_FOUND, "%s: %s", j->path, g_strerror(lstat_errno));
        goto out;
    } else {
        m3_embedding emb[M3_SIMILAR_QUERY_CHUNKS] = {0};
        s = m3_encoder_encode(r->search_enc, seqs, n_seqs, M3_OUTPUT_ALL, emb, &err);
        if (s == M3_STATUS_OK) {
            so.exclude_file_id = indexed ? (int64_t)info.file_id : -1;
            s = m3_index_similar_to(r->idx, emb, n_seqs, &so, &hits, &n, &err);
        }
        for (size_t i = 0; i < n_seqs; i++) m3_embedding_clear(&emb[i]);
    }
failed:
    if (s != M3_STATUS_OK) {
        g_set_error(error, M3_INDEXER_ERROR,
                    s == M3_STATUS_NOT_FOUND ? M3_INDEXER_ERROR_NOT_FOUND
                    : s == M3_STATUS_INVALID || s == M3_STATUS_UNSUPPORTED ? M3_INDEXER_ERROR_INVALID_ARGUMENT
                                                                         : M3_INDEXER_ERROR_FAILED,
                    "%s", err.message);
        goto out;
    }
    if (!result) result = hits_to_variant(r->idx, hits, n, &f);
out:
    g_mutex_unlock(&r->search_mu);
    for (size_t i = 0; i < n_seqs; i++) free((void *)seqs[i].ids);
    m3_search_hits_free(hits, n);
    filters_clear(&f);
    return result;
}

static void search_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
    (void)source;
    SearchJob *j = data;
    M3Engine *e = j->e;
    g_mutex_lock(&e->mu);
    Resources *r = res_ref(e->res);
    // Why there is nothing to search with: the problem the service reports (a model that cannot
    // be used names its file and the reason), else no model set, else still opening.
    g_autofree char *why = !r && e->error && *e->error ? g_strdup(e->error)
                           : e->model_missing         ? g_strdup("No model yet: download BGE-M3 or choose one first")
                                                      : g_strdup("The model and the index are still opening");
    g_mutex_unlock(&e->mu);
    GError *error = NULL;
    GVariant *v = NULL;
    if (!r)
        g_set_error(&error, M3_INDEXER_ERROR, M3_INDEXER_ERROR_NOT_READY, "%s", why);
    else
        v = run_search(j, r, cancel, &error);
    res_unref(r);
    if (v) g_task_return_pointer(task, g_variant_ref_sink(v), (GDestroyNotify)g_variant_unref);
    else g_task_return_error(task, error);
    g_atomic_int_dec_and_test(&e->searches);
}

static void start_search(M3Engine *e, SearchJob *j, GCancellable *cancel, GAsyncReadyCallback cb, gpointer user)
{
    if (j->client) {
        g_mutex_lock(&e->mu);
        j->serial = ++e->serial;
        g_hash_table_insert(e->latest, g_strdup(j->client), GUINT_TO_POINTER(j->serial));
        g_mutex_unlock(&e->mu);
    }
    GTask *task = g_task_new(NULL, cancel, cb, user);
    g_task_set_source_tag(task, start_search);
    g_task_set_task_data(task, j, search_job_free);
    g_atomic_int_inc(&e->searches);
    g_task_run_in_thread(task, search_thread);
    g_object_unref(task);
}

// A Search (query) or FindSimilar (path) job.
static void queue_job(M3Engine *e, const char *client, const char *query, const char *path, GVariant *options,
                      GCancellable *cancel, GAsyncReadyCallback cb, gpointer user)
{
    SearchJob *j = g_new0(SearchJob, 1);
    j->e = e;
    j->client = g_strdup(client);
    j->query = g_strdup(query);
    j->path = g_strdup(path);
    j->options = g_variant_ref_sink(options ? options : g_variant_new("a{sv}", NULL));
    start_search(e, j, cancel, cb, user);
}

void m3_engine_search_async(M3Engine *e, const char *client, const char *query, GVariant *options,
                            GCancellable *cancel, GAsyncReadyCallback cb, gpointer user)
{
    queue_job(e, client, query, NULL, options, cancel, cb, user);
}

void m3_engine_similar_async(M3Engine *e, const char *client, const char *path, GVariant *options,
                             GCancellable *cancel, GAsyncReadyCallback cb, gpointer user)
{
    queue_job(e, client, NULL, path, options, cancel, cb, user);
}

GVariant *m3_engine_results_finish(M3Engine *e, GAsyncResult *res, GError **error)
{
    (void)e;
    return g_task_propagate_pointer(G_TASK(res), error);
}

typedef struct failed_list {
    GVariantBuilder b;
} failed_list;

static int failed_cb(const char *path, const m3_index_file *f, void *user)
{
    failed_list *l = user;
    if (f->state == M3_FILE_FAILED || (f->state == M3_FILE_SKIPPED && strcmp(f->extractor, "none")))
        g_variant_builder_add(&l->b, "(@s@s)", path_string(path), text_string(f->reason[0] ? f->reason : "failed"));
    return 0;
}

GVariant *m3_engine_dup_failed(M3Engine *e, GError **error)
{
    g_mutex_lock(&e->mu);
    Resources *r = res_ref(e->res);
    g_mutex_unlock(&e->mu);
    failed_list l;
    g_variant_builder_init(&l.b, G_VARIANT_TYPE("a(ss)"));
    m3_error err = {0};
    if (r && m3_index_list_files(r->idx, failed_cb, &l, &err) != M3_STATUS_OK) {
        g_variant_builder_clear(&l.b);
        res_unref(r);
        g_set_error(error, M3_INDEXER_ERROR, M3_INDEXER_ERROR_FAILED, "%s", err.message);
        return NULL;
    }
    res_unref(r);
    return g_variant_builder_end(&l.b);
}
