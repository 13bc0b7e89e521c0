// SPDX-License-Identifier: MIT
//
// The service's engine: the model, the index and the two paths through them.
//   - The indexing thread (idle CPU and I/O class) owns the index writer, its encoder and the
//     pipeline (core/indexer); it runs a sync after each configuration and then updates for the
//     paths the watcher reports. Its encoder is freed after a while idle (memory).
//   - Searches run on a small pool of normal-priority threads with their own encoder on the same
//     loaded model, so that a search never waits for an indexing batch.
// The main thread configures, reports paths, pauses, and receives status changes and "index
// changed" notifications through its main context.
//
// Threads: every m3_engine_* function is for the main thread; callbacks run on the main thread.
// Teardown: m3_engine_free waits for the indexing thread and the searches in flight.
#ifndef M3_DAEMON_ENGINE_H
#define M3_DAEMON_ENGINE_H

#include <gio/gio.h>

typedef struct M3Engine M3Engine;

typedef struct M3EngineConfig {
    char *model;          // model folder or .gguf; "" or NULL: none yet (the service waits)
    char *index_dir;      // the index folder
    char **folders;       // absolute, resolved; NULL-terminated
    char **exclude;       // fnmatch patterns; NULL-terminated
    gboolean index_hidden, index_remote;
    guint64 max_file_size;
    char *backend;        // "auto", "cpu", "vulkan"
    guint cpu_threads;    // 0: one per CPU
    char *precision;      // CPU precision: "auto", "fp32", "bf16", "int8"
    double weights[3];    // default hybrid weights
    guint commit_ms;      // commit interval
    guint batch_tokens;   // encoder token budget per batch (0: the pipeline's default)
} M3EngineConfig;

void m3_engine_config_clear(M3EngineConfig *c);
void m3_engine_config_copy(M3EngineConfig *dst, const M3EngineConfig *src);

typedef void (*M3EngineNotify)(gpointer user);

M3Engine *m3_engine_new(M3EngineNotify status_changed, M3EngineNotify index_changed, gpointer user);
void m3_engine_free(M3Engine *e);

// Applies a configuration: a new model or index folder reopens them, other changes reconfigure
// the pipeline; then a sync looks at every folder again.
void m3_engine_configure(M3Engine *e, const M3EngineConfig *config);

// Queues paths (absolute) to look at again; force re-reads them even when unchanged (Reindex).
void m3_engine_update(M3Engine *e, const char *const *paths, gsize n, gboolean force);
// Whether path (absolute) is one of the configured folders or under one: what Reindex may ask for.
// A path that exists is compared in its canonical form (symbolic links resolved), as the folders are.
gboolean m3_engine_covers(M3Engine *e, const char *path);
// Retries every failed file.
void m3_engine_retry_failed(M3Engine *e);
// Queues a sync (the periodic rescan of folders that could not be watched).
void m3_engine_rescan(M3Engine *e);

// reason: "user", "battery" or NULL (running).
void m3_engine_set_paused(M3Engine *e, const char *reason);

// The Status dictionary (a{sv}, floating reference) as org.m3search.Indexer1.xml describes it.
GVariant *m3_engine_dup_status(M3Engine *e);
gboolean m3_engine_is_busy(M3Engine *e);  // crawling or indexing (tests, the idle exit)

// Search / FindSimilar: results as aa{sv}. Errors in the org.m3search.Indexer1.Error domain below.
// client names who asks (the caller's unique bus name): a client's newer request supersedes its
// requests still waiting, which then fail with M3_INDEXER_ERROR_SUPERSEDED instead of running (a
// window sends one per keystroke; only the last one matters, and none may queue behind stale ones).
void m3_engine_search_async(M3Engine *e, const char *client, const char *query, GVariant *options,
                            GCancellable *cancel, GAsyncReadyCallback cb, gpointer user);
void m3_engine_similar_async(M3Engine *e, const char *client, const char *path, GVariant *options,
                             GCancellable *cancel, GAsyncReadyCallback cb, gpointer user);
GVariant *m3_engine_results_finish(M3Engine *e, GAsyncResult *res, GError **error);

// Failed and skipped files as a(ss) (unsupported types left out: those are no news to anyone).
GVariant *m3_engine_dup_failed(M3Engine *e, GError **error);

#define M3_INDEXER_ERROR (m3_indexer_error_quark())
GQuark m3_indexer_error_quark(void);
typedef enum {
    M3_INDEXER_ERROR_NOT_READY,
    M3_INDEXER_ERROR_INVALID_ARGUMENT,
    M3_INDEXER_ERROR_NOT_FOUND,
    M3_INDEXER_ERROR_FAILED,
    M3_INDEXER_ERROR_SUPERSEDED,
} M3IndexerError;

#endif
