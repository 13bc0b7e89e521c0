// SPDX-License-Identifier: MIT
//
// The pipeline of one run: a reader thread reads, hashes, extracts (in the sandboxed helper),
// chunks and tokenizes files ahead into a bounded queue; the calling thread takes batches up to
// the token budget, encodes them and hands them to the writer, committing at least every
// commit_ms. Pause and cancel are checked between files (reader) and batches (encoder).
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "indexer-private.h"

enum { QUEUE_MAX = 16, BATCH_FILES = 256, SNIFF_BYTES = 4096 };

typedef enum action {
    ACTION_INDEX,
    ACTION_TOUCH,   // same content: metadata only
    ACTION_MOVE,    // same content as a gone file: its vectors move here
    ACTION_FAILED,
    ACTION_SKIPPED,
    ACTION_IGNORE,  // vanished or not a regular file any more: nothing to record
} action;

typedef struct work_file {
    char *path;
    m3_index_file info;
    action action;
    bool retry;              // a failure worth retrying at the next look (a read that raced a write)
    const char *move_from;   // ACTION_MOVE: the gone file's path (owned by the gone list)
    char *text;              // extracted UTF-8; chunk offsets refer to it
    m3_location_mark *marks; // the document's places; chunks[i].location points into them
    size_t n_chunks;
    m3_text_chunk *chunks;
    uint64_t *fstart, *fend; // file byte ranges
    int32_t **ids;
    size_t *n_ids;
    size_t tokens;
    struct work_file *next;
} work_file;

typedef struct job {
    m3_indexer *ix;
    m3_strvec *paths;
    m3_gone_list *gone;
    bool force;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    work_file *head, *tail;
    size_t queued;
    bool done, stop;
} job;

static void work_free(work_file *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_chunks; i++) free(w->ids ? w->ids[i] : NULL);
    free(w->ids);
    free(w->n_ids);
    free(w->fstart);
    free(w->fend);
    free(w->chunks);
    free(w->text);
    free(w->marks);
    free(w->path);
    free(w);
}

// O_NONBLOCK: the walk saw a regular file, but a FIFO put in its place since would block the open
// until something writes to it (the fstat after it refuses anything but a regular file).
static int open_noatime(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    return fd;
}

// Sets what happens to the file; the reason (printf-style) is cut to what the index keeps.
static work_file *finish(work_file *w, action a, const char *extractor, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static work_file *finish(work_file *w, action a, const char *extractor, const char *fmt, ...)
{
    w->action = a;
    if (extractor) snprintf(w->info.extractor, sizeof w->info.extractor, "%s", extractor);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        char full[M3_ERROR_MESSAGE_MAX];
        vsnprintf(full, sizeof full, fmt, ap);
        va_end(ap);
        // The reason is listed beside the path: "PATH: damaged" would say the path twice.
        size_t pl = strlen(w->path);
        const char *r = !strncmp(full, w->path, pl) && full[pl] == ':' && full[pl + 1] == ' ' ? full + pl + 2 : full;
        size_t n = strlen(r);
        if (n >= sizeof w->info.reason) {
            n = sizeof w->info.reason - 1;
            while (n && ((unsigned char)r[n] & 0xc0) == 0x80) n--;  // whole characters only
        }
        memcpy(w->info.reason, r, n);
        w->info.reason[n] = 0;
    }
    return w;
}

static bool read_all(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        got += (size_t)r;
    }
    return true;
}

// Claims a gone file with this content, for a move. Only the reader thread claims.
static const char *claim_gone(job *j, uint64_t hash, uint64_t size)
{
    for (size_t i = 0; j->gone && i < j->gone->n; i++) {
        m3_gone_file *g = &j->gone->v[i];
        if (!g->claimed && g->hash == hash && g->size == size) {
            g->claimed = true;
            return g->path;
        }
    }
    return NULL;
}

// Reads, hashes, extracts, chunks and tokenizes one file.
static work_file *prepare(job *j, const char *path)
{
    m3_indexer *ix = j->ix;
    work_file *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return NULL;
    }
    int fd = open_noatime(path);
    struct stat st;
    if (fd < 0) {
        int e = errno;
        // Deleted since the walk (or a folder on its way replaced, or the file replaced by a
        // symlink): simply gone, nothing to record.
        if (e == ENOENT || e == ENOTDIR || e == ELOOP) return finish(w, ACTION_IGNORE, NULL, NULL);
        // Unreadable (permissions, I/O error): a failure the user should see, looked at again at
        // every run (M3_INDEXER_UNOPENED) since a chmod that fixes it leaves size and mtime alone.
        if (lstat(path, &st) == 0) {
            w->info.size = (uint64_t)st.st_size;
            w->info.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        }
        return finish(w, ACTION_FAILED, M3_INDEXER_UNOPENED, "cannot open: %s", strerror(e));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return finish(w, ACTION_IGNORE, NULL, NULL);
    }
    w->info.size = (uint64_t)st.st_size;
    w->info.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (w->info.size > ix->opt.max_file_size) {
        close(fd);
        char limit[32];
        snprintf(limit, sizeof limit, "%.0f MiB", (double)ix->opt.max_file_size / (1 << 20));
        return finish(w, ACTION_SKIPPED, "", "skipped: larger than the %s limit", limit);
    }
    unsigned char *data = malloc(w->info.size + 1);
    if (!data) {
        close(fd);
        return finish(w, ACTION_FAILED, "read", "out of memory reading the file");
    }
    // The type first, from the name and the first bytes: an unsupported file (a photo, a video)
    // is not read whole. It is recorded, so that it is not looked at again until it changes.
    size_t head = w->info.size < SNIFF_BYTES ? w->info.size : SNIFF_BYTES;
    bool ok = read_all(fd, data, head);
    const m3_extractor *ex = ok ? m3_extract_find(path, data, head) : NULL;
    if (ok && !ex) {
        close(fd);
        free(data);
        w->info.extractor_version = m3_extract_set_version();  // looked at again when that changes
        return finish(w, ACTION_SKIPPED, "none", "skipped: type not supported");
    }
    ok = ok && read_all(fd, data + head, w->info.size - head);
    // A file written while we read it would be recorded with the old size and time but other
    // content, and never looked at again: compare the metadata after the read and treat a change
    // as a failed read, so that the next look picks the file up again.
    struct stat after;
    if (fstat(fd, &after) != 0 || after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != st.st_mtim.tv_nsec)
        ok = false;
    int read_errno = errno;
    close(fd);
    if (!ok) {
        free(data);
        w->retry = true;
        return finish(w, ACTION_FAILED, "read", "cannot read the file (it changed while being read, or %s)",
                      strerror(read_errno));
    }
    size_t got = w->info.size;
    w->info.hash = m3_index_hash(data, got, 0);
    m3_index_file old;
    bool indexed = m3_index_get_file(ix->idx, path, &old, NULL) == M3_STATUS_OK;
    if (indexed && !j->force && old.hash == w->info.hash && old.size == w->info.size &&
        old.state != M3_FILE_PENDING && old.model_version == ix->model_version && ex->version == old.extractor_version &&
        !strcmp(ex->name, old.extractor)) {
        free(data);
        return finish(w, ACTION_TOUCH, NULL, NULL);
    }
    if (!j->force && (!indexed || old.hash != w->info.hash) && (w->move_from = claim_gone(j, w->info.hash, w->info.size))) {
        free(data);
        return finish(w, ACTION_MOVE, NULL, NULL);
    }
    snprintf(w->info.extractor, sizeof w->info.extractor, "%s", ex->name);
    w->info.extractor_version = ex->version;
    // The extractor runs in the sandboxed helper (a crash, hang or exploit there only fails this
    // file); chunking and tokenizing stay here.
    m3_extracted doc;
    m3_error err = {0};
    if (m3_sandbox_extract(ix->sandbox, path, data, got, &doc, NULL, &err) != M3_STATUS_OK) {
        free(data);
        // An encrypted document is skipped, not failed (docs/formats.md): "PATH: skipped: encrypted".
        const char *skip = err.status == M3_STATUS_UNSUPPORTED ? strstr(err.message, "skipped: ") : NULL;
        if (skip) return finish(w, ACTION_SKIPPED, NULL, "%s", skip);
        return finish(w, ACTION_FAILED, NULL, "%s", err.message);
    }
    free(data);
    if (m3_extract_chunk(ix->tok, doc.text, doc.len, &ix->opt.chunk, &w->chunks, &w->n_chunks, &err) != M3_STATUS_OK ||
        !(w->ids = calloc(w->n_chunks + 1, sizeof *w->ids)) || !(w->n_ids = calloc(w->n_chunks + 1, sizeof *w->n_ids)) ||
        !(w->fstart = calloc(w->n_chunks + 1, 8)) || !(w->fend = calloc(w->n_chunks + 1, 8))) {
        m3_extracted_clear(&doc);
        w->n_chunks = 0;
        return finish(w, ACTION_FAILED, NULL, "%s: cannot cut the text into chunks", path);
    }
    for (size_t i = 0; i < w->n_chunks; i++) {
        const m3_text_chunk *c = &w->chunks[i];
        w->fstart[i] = m3_extracted_file_offset(&doc, c->start, false, w->info.size);
        w->fend[i] = m3_extracted_file_offset(&doc, c->end, true, w->info.size);
        if (m3_tokenizer_encode(ix->tok, doc.text + c->start, c->end - c->start, 8192, &w->ids[i], &w->n_ids[i],
                                &err) != M3_STATUS_OK) {
            m3_extracted_clear(&doc);
            return finish(w, ACTION_FAILED, NULL, "%s", err.message);
        }
        w->tokens += w->n_ids[i];
    }
    w->info.tokens = w->tokens;
    // Each chunk's place (page, slide, sheet...): the pointers go into the marks, kept with the text.
    m3_extracted_locate_chunks(&doc, w->chunks, w->n_chunks);
    w->text = doc.text;
    w->marks = doc.marks;
    doc.text = NULL;
    doc.marks = NULL;
    doc.n_marks = 0;
    m3_extracted_clear(&doc);
    w->info.state = M3_FILE_DONE;
    w->action = ACTION_INDEX;
    return w;
}

static void *reader_main(void *arg)
{
    job *j = arg;
    for (size_t i = 0; i < j->paths->n && !j->stop; i++) {
        if (!m3_indexer_wait_running(j->ix)) break;
        work_file *w = prepare(j, j->paths->v[i]);
        pthread_mutex_lock(&j->mu);
        while (j->queued >= QUEUE_MAX && !j->stop) pthread_cond_wait(&j->cv, &j->mu);
        if (w && !j->stop) {
            if (j->tail) j->tail->next = w;
            else j->head = w;
            j->tail = w;
            j->queued++;
        } else {
            work_free(w);
        }
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_lock(&j->mu);
    j->done = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

// Takes the next prepared file; blocks unless `wait` is false. NULL at the end (or nothing ready).
static work_file *pop(job *j, bool wait)
{
    pthread_mutex_lock(&j->mu);
    while (!j->head && !j->done && wait) pthread_cond_wait(&j->cv, &j->mu);
    work_file *w = j->head;
    if (w) {
        j->head = w->next;
        if (!j->head) j->tail = NULL;
        j->queued--;
        w->next = NULL;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return w;
}

static void report(m3_indexer *ix)
{
    m3_indexer_progress *p = &ix->prog;
    p->seconds = m3_indexer_now() - ix->t0 - ix->paused_s;
    p->tokens_per_second = p->seconds > 0 ? (double)p->tokens / p->seconds : 0;
    p->eta_seconds = p->files_done && p->files_total >= p->files_done && p->seconds > 0
                         ? p->seconds / (double)p->files_done * (double)(p->files_total - p->files_done)
                         : -1;
    if (ix->opt.on_progress) ix->opt.on_progress(p, ix->opt.user);
}

static void outcome(m3_indexer *ix, const work_file *w, m3_file_outcome o)
{
    if (ix->opt.on_file) ix->opt.on_file(w->path, o, w->info.reason[0] ? w->info.reason : NULL, ix->opt.user);
}

static m3_status encode_and_put(m3_indexer *ix, work_file **files, size_t nf, m3_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < nf; i++) total += files[i]->n_chunks;
    m3_sequence *seqs = calloc(total + 1, sizeof *seqs);
    m3_embedding *embs = calloc(total + 1, sizeof *embs);
    m3_index_chunk_input *in = calloc(total + 1, sizeof *in);
    m3_status s = M3_STATUS_OK;
    if (!seqs || !embs || !in) {
        s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < nf; i++)
        for (size_t c = 0; c < files[i]->n_chunks; c++) seqs[k++] = (m3_sequence){files[i]->ids[c], files[i]->n_ids[c]};
    if (total && (s = m3_encoder_encode(ix->enc, seqs, total, M3_OUTPUT_ALL, embs, err)) != M3_STATUS_OK) goto done;
    k = 0;
    for (size_t i = 0; i < nf && s == M3_STATUS_OK; i++) {
        work_file *w = files[i];
        for (size_t c = 0; c < w->n_chunks; c++, k++)
            in[c] = (m3_index_chunk_input){w->fstart[c], w->fend[c], w->text + w->chunks[c].start,
                                           w->chunks[c].end - w->chunks[c].start, &embs[k], w->chunks[c].location};
        s = m3_index_writer_put_file(ix->wr, w->path, &w->info, in, w->n_chunks, err);
        ix->prog.chunks += w->n_chunks;
        ix->prog.tokens += w->tokens;
        ix->prog.indexed++;
        if (s == M3_STATUS_OK) outcome(ix, w, M3_OUTCOME_INDEXED);
    }
done:
    for (size_t i = 0; i < total; i++) m3_embedding_clear(&embs[i]);
    free(seqs);
    free(embs);
    free(in);
    return s;
}

static m3_status commit(m3_indexer *ix, m3_error *err)
{
    bool changed = m3_index_writer_pending_files(ix->wr) > 0;
    m3_status s = m3_index_writer_commit(ix->wr, err);
    if (s == M3_STATUS_OK && changed && ix->opt.on_commit) ix->opt.on_commit(ix->opt.user);
    return s;
}

// Records a file that was not encoded (touched, moved, failed, skipped).
static m3_status record(m3_indexer *ix, work_file *w, m3_error *err)
{
    m3_indexer_progress *p = &ix->prog;
    switch (w->action) {
    case ACTION_TOUCH:
        p->unchanged++;
        outcome(ix, w, M3_OUTCOME_UNCHANGED);
        return m3_index_writer_touch_file(ix->wr, w->path, &w->info, err);
    case ACTION_MOVE:
        p->unchanged++;
        outcome(ix, w, M3_OUTCOME_UNCHANGED);
        return m3_index_writer_move_file(ix->wr, w->move_from, w->path, &w->info, err);
    case ACTION_FAILED:
    case ACTION_SKIPPED:
        if (w->action == ACTION_SKIPPED) {
            w->info.state = M3_FILE_SKIPPED;
            p->skipped++;
        } else {
            w->info.state = w->retry ? M3_FILE_PENDING : M3_FILE_FAILED;
            p->failed++;
        }
        outcome(ix, w, w->action == ACTION_SKIPPED ? M3_OUTCOME_SKIPPED : M3_OUTCOME_FAILED);
        return m3_index_writer_put_file(ix->wr, w->path, &w->info, NULL, 0, err);
    default:
        return M3_STATUS_OK;
    }
}

void m3_indexer_report_failed(m3_indexer *ix, const char *path, const char *reason)
{
    ix->prog.failed++;
    if (ix->opt.on_file) ix->opt.on_file(path, M3_OUTCOME_FAILED, reason, ix->opt.user);
}

m3_status m3_indexer_record_failed(m3_indexer *ix, const char *path, const char *reason, m3_error *err)
{
    m3_index_file info = {.state = M3_FILE_FAILED};
    struct stat st;
    if (lstat(path, &st) == 0) {
        info.size = (uint64_t)st.st_size;
        info.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    snprintf(info.extractor, sizeof info.extractor, "%s", M3_INDEXER_UNOPENED);
    snprintf(info.reason, sizeof info.reason, "%s", reason);
    m3_indexer_report_failed(ix, path, reason);
    return m3_index_writer_put_file(ix->wr, path, &info, NULL, 0, err);
}

static m3_status drop_gone(m3_indexer *ix, m3_gone_list *gone, m3_error *err)
{
    for (size_t i = 0; gone && i < gone->n; i++) {
        if (gone->v[i].claimed) continue;
        m3_status s = m3_index_writer_delete_file(ix->wr, gone->v[i].path, err);
        if (s != M3_STATUS_OK) return s;
        ix->prog.removed++;
        if (ix->opt.on_file) ix->opt.on_file(gone->v[i].path, M3_OUTCOME_REMOVED, NULL, ix->opt.user);
    }
    return M3_STATUS_OK;
}

m3_status m3_indexer_run(m3_indexer *ix, m3_strvec *to_index, m3_gone_list *gone, bool force, m3_error *err)
{
    job j = {.ix = ix, .paths = to_index, .gone = gone, .force = force};
    pthread_t reader;
    m3_status s = M3_STATUS_OK;
    ix->prog.files_total += to_index->n;
    ix->prog.crawling = false;
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    if (pthread_create(&reader, NULL, reader_main, &j) != 0) {
        pthread_mutex_destroy(&j.mu);
        pthread_cond_destroy(&j.cv);
        return m3_error_set(err, M3_STATUS_NOMEM, errno, "cannot start the indexer's reader thread");
    }
    double last_commit = m3_indexer_now();
    work_file *batch[BATCH_FILES];
    for (;;) {
        if (!m3_indexer_wait_running(ix)) {
            s = m3_error_set(err, M3_STATUS_CANCELLED, 0, "indexing cancelled");
            break;
        }
        // A batch: prepared files up to the token budget (wait for the first one only).
        size_t nb = 0, tokens = 0;
        work_file *w = pop(&j, true);
        if (!w) break;
        do {
            ix->prog.files_done++;
            if (w->action == ACTION_INDEX) {
                batch[nb++] = w;
                tokens += w->tokens;
            } else {
                s = record(ix, w, err);
                work_free(w);
                if (s != M3_STATUS_OK) break;
            }
        } while (nb < BATCH_FILES && tokens < ix->opt.batch_tokens && (w = pop(&j, false)));
        if (s == M3_STATUS_OK) s = encode_and_put(ix, batch, nb, err);
        for (size_t i = 0; i < nb; i++) work_free(batch[i]);
        if (s != M3_STATUS_OK) break;
        if (m3_index_writer_pending_bytes(ix->wr) > (32u << 20) ||
            (m3_indexer_now() - last_commit) * 1000 >= ix->opt.commit_ms) {
            if ((s = commit(ix, err)) != M3_STATUS_OK) break;
            last_commit = m3_indexer_now();
        }
        report(ix);
    }
    pthread_mutex_lock(&j.mu);
    j.stop = true;
    pthread_cond_broadcast(&j.cv);
    pthread_mutex_unlock(&j.mu);
    for (work_file *w; (w = pop(&j, false));) work_free(w);
    pthread_join(reader, NULL);
    for (work_file *w; (w = pop(&j, false));) work_free(w);
    pthread_mutex_destroy(&j.mu);
    pthread_cond_destroy(&j.cv);
    // Gone files are dropped only after a complete run: an interrupted one may not have seen the
    // moved file that would claim them yet (the next run finds them again).
    if (s == M3_STATUS_OK) s = drop_gone(ix, gone, err);
    if (s == M3_STATUS_OK) s = commit(ix, err);
    else m3_index_writer_commit(ix->wr, NULL);  // keep what was done before the error or cancel
    report(ix);
    return s;
}
