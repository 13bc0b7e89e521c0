// SPDX-License-Identifier: MIT
// Inside the indexer: the object, string lists, the crawler (crawl.c) and the pipeline
// (pipeline.c) share these.
#ifndef M3_INDEXER_PRIVATE_H
#define M3_INDEXER_PRIVATE_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "extract/sandbox.h"
#include "indexer/indexer.h"

enum { M3_INDEXER_PATH_MAX = 511 };  // the index's key limit

// The extractor name recorded for a file or folder that could not be opened or looked into. Such an
// entry is looked at again at every run: making it readable (chmod, chown) changes its ctime only,
// not the size and mtime that decide whether a file is looked at again.
#define M3_INDEXER_UNOPENED "open"

typedef struct m3_strvec {
    char **v;
    size_t n, cap;
} m3_strvec;

bool m3_strvec_push(m3_strvec *s, const char *str);
void m3_strvec_clear(m3_strvec *s);
void m3_strvec_sort_unique(m3_strvec *s);
bool m3_strvec_contains(const m3_strvec *sorted, const char *str);

// An indexed file that is gone from where it was: deleted at the end of a run unless a new file
// with the same content claims it (a move: the vectors are kept).
typedef struct m3_gone_file {
    char *path;
    uint64_t hash, size;
    bool claimed;
} m3_gone_file;

typedef struct m3_gone_list {
    m3_gone_file *v;
    size_t n, cap;
} m3_gone_list;

struct m3_indexer {
    m3_index *idx;
    m3_index_writer *wr;
    m3_encoder *enc;
    const m3_tokenizer *tok;
    m3_indexer_options opt;  // callbacks and numbers; the lists below replace its pointers
    m3_strvec roots, exclude;
    bool index_hidden, index_remote, prune;
    char **helper_argv;
    char index_dir[PATH_MAX];  // resolved, never indexed
    uint32_t model_version;
    m3_sandbox *sandbox;
    // Control from other threads.
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool paused;
    atomic_bool cancelled;
    // The run's counters (indexing thread).
    m3_indexer_progress prog;
    double t0, paused_s;
};

// What a walk saw: the regular files to look at, and the paths it could not look into (an
// unreadable folder or file, a folder nested too deep), each with its reason (failed[i] has
// reasons[i]; neither is sorted). The failed paths fit the index's key limit: longer ones cannot be
// recorded, and the walk reports them itself (on_file, counted as failed).
typedef struct m3_crawl {
    m3_strvec files;
    m3_strvec failed, reasons;
} m3_crawl;

void m3_crawl_clear(m3_crawl *c);
// The failure recorded for path or for a folder above it, or NULL.
const char *m3_crawl_failed_at(const m3_crawl *c, const char *path);

const char *m3_indexer_root_of(const m3_indexer *ix, const char *path);
// Adds what is under path (a wanted path; silently nothing for one that is not) to out. A path
// that vanished during the walk is simply not there; any other problem is reported, not skipped.
// Returns false when out of memory.
bool m3_indexer_walk(m3_indexer *ix, const char *path, m3_crawl *out);
// Tells the on_file callback that path was not indexed (counted as failed) without recording it:
// for paths the index cannot hold (longer than its key limit).
void m3_indexer_report_failed(m3_indexer *ix, const char *path, const char *reason);
// Records path as failed (M3_INDEXER_UNOPENED, the size and mtime lstat gives) with its reason,
// and reports it; the next commit writes it. Indexing thread.
m3_status m3_indexer_record_failed(m3_indexer *ix, const char *path, const char *reason, m3_error *err);
// True for a folder on a network file system (f_type: its statfs magic) or removable medium (by
// the mount points udisks and users use): the crawler skips those unless index_remote is set.
bool m3_indexer_remote_fs(const char *path, unsigned long f_type);
bool m3_indexer_cancelled(const m3_indexer *ix);
// Blocks while paused; false when cancelled.
bool m3_indexer_wait_running(m3_indexer *ix);
double m3_indexer_now(void);

// The pipeline: looks at the files in to_index (sorted absolute paths), claims gone files for
// moves, deletes the unclaimed ones, commits. force: re-read even unchanged files.
m3_status m3_indexer_run(m3_indexer *ix, m3_strvec *to_index, m3_gone_list *gone, bool force, m3_error *err);

#endif
