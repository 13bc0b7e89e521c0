// SPDX-License-Identifier: MIT
//
// Fetches the BGE-M3 model files from a Hugging Face hub (or a mirror) with libcurl: resumable,
// retried, verified, installed atomically. Reuses an existing Hugging Face cache snapshot instead of
// downloading when it holds every file the encoder needs.
//
//     m3_fetch_options opt = {0};           // every field 0/NULL means "the default"
//     opt.progress = my_progress_cb;        // optional; return non-zero from it to cancel
//     char *dir;
//     m3_error err = {0};
//     if (m3_fetch_model(&opt, &dir, &err) != M3_STATUS_OK)
//         fprintf(stderr, "m3: %s\n", err.message);
//     else
//         use_model(dir), free(dir);
//
// Layout. A file FILE of revision REV is fetched from {endpoint}/{repo}/resolve/{REV}/{FILE}. The
// files are config.json, pytorch_model.bin (or model.safetensors when the revision has no
// pytorch_model.bin), colbert_linear.pt, sparse_linear.pt, sentencepiece.bpe.model, tokenizer.json,
// tokenizer_config.json and special_tokens_map.json; the last two are optional (the encoder does not
// read them; a mirror may serve only what the encoder needs): a 404 for them is no error and a folder
// without them is complete. Each is written to DIR/FILE.part and renamed to
// DIR/FILE only after its size and checksum matched what the hub publishes, after fsync: a file named
// FILE in DIR is always complete and verified, and is never fetched again.
//
// Checksums. The hub answers /resolve/ for a large (LFS) file with a redirect to a CDN whose first
// response carries X-Linked-Etag (the SHA-256 of the content) and X-Linked-Size; for a small file it
// answers 200 with an ETag that is the git blob SHA-1 ("blob <len>\0" + content). Both are checked;
// a server that publishes neither (a plain mirror) gets the size checked only.
//
// SHA256SUMS. After each file is installed, DIR/SHA256SUMS lists the SHA-256 of every file installed
// in DIR ("<64 hex>  <name>" lines, as sha256sum writes them; `m3 model verify DIR` and
// `sha256sum -c SHA256SUMS` check the folder with it): for an LFS file that is the SHA-256 the hub
// published and the download was checked against; for a small file, for which the hub publishes
// only a git SHA-1, it is computed from the downloaded bytes (after they matched that SHA-1); from a
// mirror that publishes no checksum, it is that of the bytes received (their size matched). Entries
// of earlier calls are kept for files still there; a file in DIR that no call of ours installed is
// not listed. The list is written to SHA256SUMS.tmp, synced and renamed: never half written.
// Nothing is written into a Hugging Face cache snapshot (decision 2 below): it is not ours, and the
// hub cache already names each file's blob by its hash.
//
// Order of decisions:
//   1. DIR already holds every file: DIR is the answer, no request is made.
//   2. A Hugging Face cache snapshot of the revision holds every file the encoder needs
//      (config.json, the weights, colbert_linear.pt, sparse_linear.pt, sentencepiece.bpe.model):
//      that snapshot folder is the answer, no request is made.
//   3. Otherwise the missing files are fetched into DIR: first a HEAD of each (sizes and checksums),
//      then a free-space check of DIR (statvfs against the bytes still missing), then the GETs,
//      resuming any DIR/FILE.part with an HTTP Range request.
//
// Environment: HF_ENDPOINT (mirror), HF_TOKEN (sent as "Authorization: Bearer", never to another
// host after a redirect), HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME (the cache), XDG_DATA_HOME (the
// default DIR), and libcurl's proxy variables (https_proxy, no_proxy...). TLS is always verified.
//
// Threads: m3_fetch_model blocks until done; call it from a worker thread in a GUI. Separate calls
// may run on separate threads (libcurl >= 7.84 initialises thread-safely), but two calls must not
// fetch into the same DIR at once: the second fails with M3_STATUS_IO / EBUSY (an flock on
// DIR/.m3-fetch.lock).
#ifndef M3_FETCH_FETCH_H
#define M3_FETCH_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

typedef enum m3_fetch_event {
    M3_FETCH_EVENT_CHECK,     // a HEAD request for `file` is about to be (or being) made
    M3_FETCH_EVENT_START,     // the GET of `file` starts (file_done > 0 when it resumes)
    M3_FETCH_EVENT_PROGRESS,  // bytes arrived (or a second passed); called often, rate-limit drawing
    M3_FETCH_EVENT_RETRY,     // a transient failure; `message` says what, `retry_in_ms` the back-off
    M3_FETCH_EVENT_DONE,      // `file` was verified and installed
} m3_fetch_event;

// What the progress callback sees. Every pointer is borrowed and valid only during the callback.
typedef struct m3_fetch_progress {
    m3_fetch_event event;
    const char *file;         // the file's name in the repository ("pytorch_model.bin")
    const char *message;      // M3_FETCH_EVENT_RETRY: the failure, one line; NULL otherwise
    const char *checked;      // M3_FETCH_EVENT_DONE: what was verified: "SHA-256", "git SHA-1" or
                              // "size" (the server published no checksum); NULL otherwise
    unsigned retry_in_ms;     // M3_FETCH_EVENT_RETRY: the delay before the next try
    unsigned attempt;         // M3_FETCH_EVENT_RETRY: the try that failed, from 1
    uint64_t file_done;       // bytes of `file` on disk (resumed part included)
    uint64_t file_total;      // the file's published size, 0 when the server did not say
    uint64_t done;            // bytes on disk of every file still to fetch in this call
    uint64_t total;           // bytes of every file still to fetch in this call (0 during CHECK)
    double rate;              // bytes per second, smoothed over the last seconds; 0 when unknown
    double eta_s;             // seconds until `total` at `rate`; negative when unknown
} m3_fetch_progress;

// Returns 0 to go on, non-zero to cancel: the transfer stops within about a second, the .part files
// are kept (a later call resumes them) and m3_fetch_model returns M3_STATUS_IO with code ECANCELED.
// Called on the thread of m3_fetch_model; the callback is also the only cancellation point, and it is
// called at least about once a second while m3_fetch_model waits on the network (libcurl's transfer
// callback) and every 200 ms during a back-off.
typedef int (*m3_fetch_progress_fn)(const m3_fetch_progress *progress, void *user);

typedef struct m3_fetch_options {
    const char *endpoint;      // NULL: $HF_ENDPOINT, else "https://huggingface.co"; no trailing '/'
    const char *repo;          // NULL: "BAAI/bge-m3"
    const char *revision;      // NULL: "main"; a branch, tag or commit hash
    const char *dir;           // NULL: $XDG_DATA_HOME/m3search/models/bge-m3 (~/.local/share/...)
    const char *token;         // NULL: $HF_TOKEN; "" sends no token
    const char *hf_cache;      // the hub cache folder to reuse; NULL: $HF_HUB_CACHE, $HF_HOME/hub,
                               // $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub; "": none
    int retries;               // tries after a transient failure of one transfer (the count starts
                               // over whenever a try moved the download forward); 0: default 5;
                               // negative: none
    int retry_delay_ms;        // first back-off, doubled each retry (max 60 s); 0: default 1000;
                               // negative: no delay
    int connect_timeout_s;     // 0: default 30
    int stall_timeout_s;       // a transfer slower than 1 KiB/s for this long fails; 0: default 60
    m3_fetch_progress_fn progress;
    void *progress_user;
} m3_fetch_options;

// Makes the model available and writes the folder to give to --model to *model_dir (malloc'd, the
// caller frees); *from_cache tells whether it is a Hugging Face cache snapshot (may be NULL).
// opts may be NULL (all defaults).
//
// Errors (err->message is one line that names the URL or file and what to do):
//   M3_STATUS_NOT_FOUND  a file is not at its URL (HTTP 404; code 404): check the revision/endpoint
//   M3_STATUS_IO         network (code: CURLcode, or the HTTP status >= 400), file system (code:
//                        errno; ENOSPC/EFBIG for a full disk; EBUSY for a concurrent download into
//                        DIR), cancelled (code ECANCELED). The .part files stay, a later call resumes.
//   M3_STATUS_FORMAT     a file's size or checksum differs from what the hub publishes: the download
//                        was removed, nothing was installed.
//   M3_STATUS_INVALID    a bad option (an endpoint that is not http(s), an empty revision...).
//   M3_STATUS_NOMEM      out of memory.
m3_status m3_fetch_model(const m3_fetch_options *opts, char **model_dir, bool *from_cache, m3_error *err);

// Writes the default DIR (see m3_fetch_options.dir) to *dir (malloc'd). M3_STATUS_NOT_FOUND when
// neither XDG_DATA_HOME nor HOME is set.
m3_status m3_fetch_default_dir(char **dir, m3_error *err);

// Looks for a complete snapshot of repo at revision in the hub cache folder hub_cache (NULL: the
// default search order above). Writes the snapshot folder to *snapshot (malloc'd) and returns
// M3_STATUS_OK, or M3_STATUS_NOT_FOUND when there is none or it lacks a file. Makes no request.
m3_status m3_fetch_find_cached(const char *hub_cache, const char *repo, const char *revision,
                               char **snapshot, m3_error *err);

#endif
