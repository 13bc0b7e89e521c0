// SPDX-License-Identifier: MIT
//
// The indexing pipeline: keeps an index current with folders of documents. Used alike by
// `m3 index` (one sync, then exit) and by the indexer service m3searchd (a sync at start, then
// updates for the paths its file monitors report).
//
//     m3_indexer_options opt = m3_indexer_options_default();
//     opt.roots = roots; opt.n_roots = n;               // absolute paths (folders or files)
//     opt.on_progress = show_progress;                 // optional callbacks
//     m3_indexer *ix;
//     m3_indexer_new(idx, writer, encoder, tokenizer, &opt, &ix, &err);
//     m3_indexer_sync(ix, &err);                       // walk, drop deleted, index changed
//     m3_indexer_update(ix, paths, n, 0, &err);        // re-check some paths (created, changed, gone)
//     m3_indexer_free(ix);
//
// The walk (crawl.c) lists regular files under the roots: never following symlinks, skipping
// hidden names (unless asked), names matching the exclusion patterns, the index folder itself and,
// unless asked, network and removable file systems. What it cannot look at is not left out unsaid:
// an unreadable file or folder (or one nested more than 64 folders deep) is recorded as failed with
// its reason ("cannot open: Permission denied") and looked at again at every run, and a path longer
// than the index's key limit (511 bytes), which cannot be recorded, is reported through on_file
// (failed, "path longer than 511 bytes: not indexed") at every run. A path deleted while the walk
// or the reader reaches it is simply gone. A file is looked at again only when its size or
// mtime changed; then its content hash decides between re-encoding and only updating its
// metadata (a renamed or moved file with the same content keeps its vectors: see
// m3_indexer_update). A reader thread reads, extracts (in the sandboxed helper), chunks and
// tokenizes ahead while the calling thread encodes batches of a token budget and commits.
// Files are opened O_RDONLY|O_NOATIME and never modified.
//
// Ownership: the indexer borrows the index, writer, encoder and tokenizer; free the indexer first.
// Threads: m3_indexer_sync and m3_indexer_update run on one thread at a time (the indexing thread),
// which blocks in them; the callbacks run on that thread. m3_indexer_pause, m3_indexer_resume,
// m3_indexer_cancel and m3_indexer_set_* may be called from any thread at any time.
// Priority: the threads the indexer starts inherit the calling thread's scheduling policy and I/O
// priority; m3_indexer_lower_priority() makes the calling thread (and so everything it starts
// afterwards: the encoder's workers, the reader, the extraction helper) idle-class.
#ifndef M3_INDEXER_INDEXER_H
#define M3_INDEXER_INDEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "encoder/encoder.h"
#include "extract/extract.h"
#include "extract/sandbox.h"
#include "index/index.h"
#include "tokenizer/tokenizer.h"

typedef struct m3_indexer m3_indexer;

// Counters of the running sync or update (and totals since the indexer was made).
typedef struct m3_indexer_progress {
    size_t files_total;    // files found to look at in this run
    size_t files_done;     // of those, looked at
    size_t indexed, unchanged, failed, skipped, removed;
    size_t chunks;         // chunks written in this run
    uint64_t tokens;       // tokens encoded in this run
    double seconds;        // since the run started (pauses excluded)
    double tokens_per_second;
    double eta_seconds;    // estimate for the rest of the run, -1 when unknown
    bool crawling;         // still walking the folders
} m3_indexer_progress;

typedef enum m3_file_outcome {
    M3_OUTCOME_INDEXED = 0,
    M3_OUTCOME_UNCHANGED = 1,  // same content: only metadata updated
    M3_OUTCOME_FAILED = 2,     // reason says why (damaged, unreadable, extractor crashed, path too
                               // long: that one alone is not recorded in the index)
    M3_OUTCOME_SKIPPED = 3,    // reason says why (too large, type not supported)
    M3_OUTCOME_REMOVED = 4,    // gone from disk (or excluded now): dropped from the index
} m3_file_outcome;

typedef struct m3_indexer_options {
    const char *const *roots;   // absolute paths of folders or files to keep indexed
    size_t n_roots;
    const char *const *exclude; // fnmatch patterns matched against each name (not the path)
    size_t n_exclude;
    bool index_hidden;          // names starting with '.' (default false)
    bool index_remote;          // network and removable file systems (default false)
    bool prune_outside_roots;   // sync drops indexed files under no root (the service; `m3 index`
                                // only drops files under the roots it was given)
    uint64_t max_file_size;     // larger files are skipped (default 64 MiB)
    m3_chunk_options chunk;     // default 512 tokens, 64 overlap
    size_t batch_tokens;        // encoder token budget per batch (default 8192)
    unsigned commit_ms;         // commit at least this often (default 2000)
    const char *const *helper_argv;  // the extraction helper (m3_sandbox_options.argv); required

    // Optional callbacks, on the indexing thread. user is passed to each.
    void (*on_progress)(const m3_indexer_progress *p, void *user);  // after each batch
    void (*on_file)(const char *path, m3_file_outcome outcome, const char *reason, void *user);
    void (*on_commit)(void *user);  // after each commit that changed the index
    void *user;
} m3_indexer_options;

m3_indexer_options m3_indexer_options_default(void);

// Makes an indexer over an open index and its (only) writer. The exclusion patterns, roots and
// the helper argv are copied. Errors: M3_STATUS_INVALID (no helper, a relative root), NOMEM, and
// the sandbox's errors when the helper cannot start.
m3_status m3_indexer_new(m3_index *idx, m3_index_writer *writer, m3_encoder *enc, const m3_tokenizer *tok,
                         const m3_indexer_options *opt, m3_indexer **out, m3_error *err);

// Replaces the roots, exclusions and flags (the service applies changed settings); takes effect at
// the next sync or update. Call from the indexing thread, between runs.
m3_status m3_indexer_configure(m3_indexer *ix, const m3_indexer_options *opt, m3_error *err);

// Walks every root, drops indexed files that are gone (or now excluded, or, with
// prune_outside_roots, under no root), then indexes new and changed files and commits. A root that
// no longer exists drops everything the index holds under it. What the index holds under a folder
// that cannot be read stays (the folder itself is recorded as failed): an unreadable folder does
// not say that its files were deleted.
// Returns M3_STATUS_CANCELLED when cancelled (what was committed stays), else the first error that
// stopped it (a file that fails only fails itself and is recorded with its reason).
m3_status m3_indexer_sync(m3_indexer *ix, m3_error *err);

// Looks at these paths again (absolute; files or folders, existing or not): a path that no longer
// exists (or is excluded) is dropped with everything under it, a folder is walked, a file is
// indexed if new or changed. M3_INDEXER_FORCE re-reads files even when size and mtime match
// (Reindex) and retries failed ones. Paths outside every root are ignored.
enum { M3_INDEXER_FORCE = 1u << 0 };
m3_status m3_indexer_update(m3_indexer *ix, const char *const *paths, size_t n, unsigned flags, m3_error *err);

// True when path (absolute) is under a root, not excluded by name and at most 511 bytes long
// (the index's key limit); the service uses it to decide what to watch. Does not touch the file
// system.
bool m3_indexer_wants(const m3_indexer *ix, const char *path);

// True when path is root or lies under it (component-wise: "/a/bc" is not under "/a/b"); both
// absolute, without a trailing slash (root may be "/"). Does not touch the file system.
bool m3_path_under(const char *path, const char *root);

// Pause blocks the running sync/update between files and batches until resume; cancel makes it
// return M3_STATUS_CANCELLED soon (also releasing a pause). Any thread.
void m3_indexer_pause(m3_indexer *ix);
void m3_indexer_resume(m3_indexer *ix);
void m3_indexer_cancel(m3_indexer *ix);
// Clears a cancel so that the next run goes ahead.
void m3_indexer_uncancel(m3_indexer *ix);
bool m3_indexer_is_paused(const m3_indexer *ix);

// Makes the calling thread idle-class for the CPU (SCHED_IDLE) and for I/O (IOPRIO_CLASS_IDLE).
// Threads and processes it starts afterwards inherit both. Returns false if the system refused.
bool m3_indexer_lower_priority(void);

void m3_indexer_free(m3_indexer *ix);

// The first part of m3_indexer_encode_file, for callers that encode under a lock of their own (the
// service: a slow extraction must not hold up other searches): reads, extracts, chunks and
// tokenizes path into seqs[0..*n) (each seqs[i].ids malloc'd: the caller frees them). Errors as
// m3_indexer_encode_file's. Threads: uses sandbox as its header allows (one thread at a time).
m3_status m3_indexer_file_queries(const char *path, m3_sandbox *sandbox, const m3_tokenizer *tok,
                                  m3_sequence seqs[M3_SIMILAR_QUERY_CHUNKS], size_t *n, m3_error *err);

// For "find similar" on a file the index does not hold: reads path (at most 64 MiB), extracts it in
// the sandbox, chunks it as the pipeline does and encodes its first M3_SIMILAR_QUERY_CHUNKS chunks
// into out[0..*n) (release each with m3_embedding_clear). Errors name the file: unreadable,
// too large (M3_STATUS_LIMIT), unsupported type, no text (M3_STATUS_INVALID), the extractor's.
// Threads: uses sandbox, enc as their headers allow (one thread at a time each).
m3_status m3_indexer_encode_file(const char *path, m3_sandbox *sandbox, const m3_tokenizer *tok, m3_encoder *enc,
                                 m3_embedding out[M3_SIMILAR_QUERY_CHUNKS], size_t *n, m3_error *err);

#endif
