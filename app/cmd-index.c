// SPDX-License-Identifier: MIT
//
// m3 index [--index DIR] --model DIR [--backend auto] [--rebuild] [--exact] [--colbert KIND]
//          [--colbert-pool N] PATH...
// Walks the files and folders given (never following symlinks, skipping hidden entries), skips
// unchanged files (size and mtime, then content hash), re-indexes changed ones and drops deleted
// ones. A reader thread reads, extracts (in the sandboxed helper 'm3 extract-helper',
// core/extract/sandbox.h), chunks and tokenizes ahead while the main thread encodes
// in batches of a token budget and commits to the index in batches. Files are opened
// O_RDONLY|O_NOATIME and never modified.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "encoder/encoder.h"
#include "extract/extract.h"
#include "extract/sandbox.h"
#include "index/index.h"
#include "model/model.h"

static const char usage_text[] =
    "usage: m3 index [--index DIR] --model DIR [--backend auto] [--rebuild] [--exact]\n"
    "                [--colbert int8|bits|none] [--colbert-pool 1|2] PATH...\n\n"
    "Indexes the text files under each PATH (files or folders) for 'm3 search'.\n"
    "Unchanged files are skipped, changed ones re-indexed, deleted ones dropped.\n\n"
    "  --index DIR          the index folder (default $XDG_DATA_HOME/m3search/index)\n"
    "  --model PATH         the model folder (BAAI/bge-m3 layout) or its converted .gguf file;\n"
    "                       default $M3_MODEL\n"
    "  --backend NAME       encoder backend: auto (default: vulkan on a GPU, else cpu), cpu, vulkan\n"
    "  --threads N          encoder threads (default: one per CPU)\n"
    "  --rebuild            delete the index first and index everything again\n"
    "  --exact              (new index) also keep exact fp32 vectors\n"
    "  --colbert KIND       (new index) how the multi-vectors are kept: bits (default, 128 bytes\n"
    "                       per token at 1024-d), int8 (1028 bytes, closest to exact) or none\n"
    "                       (hybrid score from dense + sparse only)\n"
    "  --colbert-pool N     (new index) 2: pool each chunk's token vectors into half as many\n"
    "                       (half the size, coarser ColBERT scores); default 1\n"
    "  --chunk-tokens N     tokens per chunk (default 512)\n"
    "  --overlap N          tokens repeated between chunks (default 64)\n"
    "  --batch-tokens N     encoder token budget per batch (default 8192)\n"
    "  --max-file-size N    skip files larger than N bytes (default 67108864)\n"
    "  --commit-interval MS commit at least this often (default 2000)\n"
    "  --quiet              no progress line\n";

enum { QUEUE_MAX = 16 };

typedef struct work_file {
    char *path;
    m3_index_file info;
    int action;              // 0 index, 1 touch (same content), 2 failed, 3 skip
    char *text;              // extracted UTF-8
    size_t n_chunks;
    m3_text_chunk *chunks;
    uint64_t *fstart, *fend; // file byte ranges
    int32_t **ids;
    size_t *n_ids;
    size_t tokens;
    char *reason;            // why extraction failed (action 2), reported by the main thread
    struct work_file *next;
} work_file;

typedef struct job {
    char **paths;            // files to read
    size_t n_paths;
    m3_index *idx;
    const m3_tokenizer *tok;
    m3_chunk_options chunk;
    uint64_t max_size;
    m3_sandbox *sandbox;     // the extraction helper; used by the reader thread only
    // Queue.
    pthread_mutex_t mu;
    pthread_cond_t cv;
    work_file *head, *tail;
    size_t queued;
    bool done;
    volatile bool stop;
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
    free(w->reason);
    free(w->path);
    free(w);
}

static int open_noatime(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    return fd;
}

// Reads, hashes, extracts, chunks and tokenizes one file.
static work_file *prepare(job *j, const char *path)
{
    work_file *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return NULL;
    }
    unsigned char *data = NULL;
    int fd = open_noatime(path);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        w->action = 3;
        return w;
    }
    w->info.size = (uint64_t)st.st_size;
    w->info.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (w->info.size > j->max_size) {
        close(fd);
        w->action = 3;
        return w;
    }
    data = malloc(w->info.size + 1);
    size_t got = 0;
    while (data && got < w->info.size) {
        ssize_t r = read(fd, data + got, w->info.size - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    // A file written while we read it would be recorded with the old size and time but other
    // content, and never looked at again: compare the metadata after the read and treat a change
    // as a failed read, so the next run picks the file up again.
    struct stat after;
    if (fstat(fd, &after) != 0 || after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != st.st_mtim.tv_nsec)
        got = (size_t)-1;
    close(fd);
    if (!data || got != w->info.size) {
        free(data);
        w->action = 2;
        snprintf(w->info.extractor, sizeof w->info.extractor, "read");
        return w;
    }
    w->info.hash = m3_index_hash(data, got, 0);
    m3_index_file old;
    if (m3_index_get_file(j->idx, path, &old, NULL) == M3_STATUS_OK && old.hash == w->info.hash &&
        old.size == w->info.size && old.state != M3_FILE_PENDING &&
        old.model_version == (uint32_t)strtoull(m3_index_get_model(j->idx)->checksum + 8, NULL, 16)) {
        const m3_extractor *ex = m3_extract_find(path, data, got < 4096 ? got : 4096);
        if (ex && ex->version == old.extractor_version && !strcmp(ex->name, old.extractor)) {
            free(data);
            w->action = 1;
            return w;
        }
    }
    const m3_extractor *ex = m3_extract_find(path, data, got < 4096 ? got : 4096);
    if (!ex) {
        free(data);
        w->action = 3;
        return w;
    }
    snprintf(w->info.extractor, sizeof w->info.extractor, "%s", ex->name);
    w->info.extractor_version = ex->version;
    // The extractor runs in the sandboxed helper (a crash, hang or exploit there only fails this
    // file); chunking and tokenizing stay here.
    m3_extracted doc;
    m3_error err = {0};
    if (m3_sandbox_extract(j->sandbox, path, data, got, &doc, NULL, &err) != M3_STATUS_OK) {
        free(data);
        w->action = 2;
        w->reason = strdup(err.message);
        return w;
    }
    free(data);
    if (m3_extract_chunk(j->tok, doc.text, doc.len, &j->chunk, &w->chunks, &w->n_chunks, &err) != M3_STATUS_OK ||
        !(w->ids = calloc(w->n_chunks + 1, sizeof *w->ids)) || !(w->n_ids = calloc(w->n_chunks + 1, sizeof *w->n_ids)) ||
        !(w->fstart = calloc(w->n_chunks + 1, 8)) || !(w->fend = calloc(w->n_chunks + 1, 8))) {
        m3_extracted_clear(&doc);
        w->n_chunks = 0;
        w->action = 2;
        return w;
    }
    for (size_t i = 0; i < w->n_chunks; i++) {
        const m3_text_chunk *c = &w->chunks[i];
        w->fstart[i] = m3_extracted_file_offset(&doc, c->start, false, w->info.size);
        w->fend[i] = m3_extracted_file_offset(&doc, c->end, true, w->info.size);
        if (m3_tokenizer_encode(j->tok, doc.text + c->start, c->end - c->start, 8192, &w->ids[i], &w->n_ids[i],
                                &err) != M3_STATUS_OK) {
            m3_extracted_clear(&doc);
            w->action = 2;
            return w;
        }
        w->tokens += w->n_ids[i];
    }
    w->info.tokens = w->tokens;
    w->text = doc.text;  // chunk offsets refer to it
    doc.text = NULL;
    m3_extracted_clear(&doc);
    w->info.state = M3_FILE_DONE;
    return w;
}

static void *reader_main(void *arg)
{
    job *j = arg;
    for (size_t i = 0; i < j->n_paths && !j->stop; i++) {
        work_file *w = prepare(j, j->paths[i]);
        pthread_mutex_lock(&j->mu);
        while (j->queued >= QUEUE_MAX && !j->stop) pthread_cond_wait(&j->cv, &j->mu);
        if (w) {
            if (j->tail) j->tail->next = w;
            else j->head = w;
            j->tail = w;
            j->queued++;
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

// ---- walking -----------------------------------------------------------------------------------

typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static bool strvec_push(strvec *s, const char *str)
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

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void walk(const char *path, const char *skip_dir, strvec *out, int depth)
{
    struct stat st;
    if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode) || depth > 64) return;
    if (S_ISREG(st.st_mode)) {
        strvec_push(out, path);
        return;
    }
    if (!S_ISDIR(st.st_mode) || (skip_dir && !strcmp(path, skip_dir))) return;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    char child[PATH_MAX];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;  // hidden entries, . and ..
        if (snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") ? path : "", e->d_name) >= (int)sizeof child)
            continue;
        walk(child, skip_dir, out, depth + 1);
    }
    closedir(d);
}

typedef struct gone_ctx {
    strvec *roots, *seen, *gone;
} gone_ctx;

static int gone_cb(const char *path, const m3_index_file *f, void *user)
{
    (void)f;
    gone_ctx *g = user;
    bool under = false;
    for (size_t i = 0; i < g->roots->n && !under; i++) {
        size_t rl = strlen(g->roots->v[i]);
        under = !strncmp(path, g->roots->v[i], rl) && (path[rl] == 0 || path[rl] == '/' || !strcmp(g->roots->v[i], "/"));
    }
    if (!under) return 0;
    const char *key = path;
    if (!bsearch(&key, g->seen->v, g->seen->n, sizeof(char *), cmp_str)) strvec_push(g->gone, path);
    return 0;
}

// ---- the command -------------------------------------------------------------------------------

typedef struct counters {
    size_t files_total, files_done, indexed, unchanged, failed, removed, chunks;
    uint64_t tokens;
    double t0;
    bool tty;
} counters;

static void progress(const counters *c, bool final)
{
    if (!c->tty) return;
    double dt = m3_cli_now() - c->t0;
    double rate = dt > 0 ? (double)c->tokens / dt : 0;
    double eta = c->files_done ? dt / (double)c->files_done * (double)(c->files_total - c->files_done) : 0;
    fprintf(stderr, "\r\033[K%zu/%zu files, %zu chunks, %.0f tokens/s, ETA %d:%02d", c->files_done, c->files_total,
            c->chunks, rate, (int)eta / 60, (int)eta % 60);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static m3_status encode_and_put(m3_encoder *enc, m3_index_writer *wr, work_file **files, size_t nf, counters *cnt,
                                m3_error *err)
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
    if (total && (s = m3_encoder_encode(enc, seqs, total, M3_OUTPUT_ALL, embs, err)) != M3_STATUS_OK) goto done;
    k = 0;
    for (size_t i = 0; i < nf && s == M3_STATUS_OK; i++) {
        work_file *w = files[i];
        for (size_t c = 0; c < w->n_chunks; c++, k++)
            in[c] = (m3_index_chunk_input){w->fstart[c], w->fend[c], w->text + w->chunks[c].start,
                                           w->chunks[c].end - w->chunks[c].start, &embs[k]};
        s = m3_index_writer_put_file(wr, w->path, &w->info, in, w->n_chunks, err);
        cnt->chunks += w->n_chunks;
        cnt->tokens += w->tokens;
        cnt->indexed++;
    }
done:
    for (size_t i = 0; i < total; i++) m3_embedding_clear(&embs[i]);
    free(seqs);
    free(embs);
    free(in);
    return s;
}

int m3_cmd_index(int argc, char **argv)
{
    static const struct option options[] = {
        {"index", required_argument, NULL, 'i'},     {"model", required_argument, NULL, 'm'},
        {"backend", required_argument, NULL, 'b'},   {"threads", required_argument, NULL, 't'},
        {"rebuild", no_argument, NULL, 'r'},         {"exact", no_argument, NULL, 'e'},
        {"chunk-tokens", required_argument, NULL, 'c'}, {"overlap", required_argument, NULL, 'o'},
        {"batch-tokens", required_argument, NULL, 'B'}, {"max-file-size", required_argument, NULL, 'M'},
        {"quiet", no_argument, NULL, 'q'},           {"help", no_argument, NULL, 'h'},
        {"commit-interval", required_argument, NULL, 'I'},
        {"colbert", required_argument, NULL, 'C'},   {"colbert-pool", required_argument, NULL, 'P'},
        {0},
    };
    const char *index_dir = NULL, *model_dir = getenv("M3_MODEL");
    m3_encoder_options eopt = m3_encoder_options_default();
    eopt.backend = "auto";  // a GPU when there is one (encoder.h)
    size_t threads = 0, chunk_tokens = 512, overlap = 64, batch_tokens = 8192, max_size = 64u << 20;
    size_t commit_ms = 2000;
    bool rebuild = false, exact = false, quiet = false;
    m3_colbert_storage colbert = M3_COLBERT_DEFAULT;
    size_t colbert_pool = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'i': index_dir = optarg; break;
        case 'm': model_dir = optarg; break;
        case 'b': eopt.backend = optarg; break;
        case 't': if (!m3_cli_parse_size("index", "--threads", optarg, 1, 1024, &threads)) return M3_EXIT_USAGE; break;
        case 'r': rebuild = true; break;
        case 'e': exact = true; break;
        case 'q': quiet = true; break;
        case 'c': if (!m3_cli_parse_size("index", "--chunk-tokens", optarg, 16, 8192, &chunk_tokens)) return M3_EXIT_USAGE; break;
        case 'o': if (!m3_cli_parse_size("index", "--overlap", optarg, 0, 4096, &overlap)) return M3_EXIT_USAGE; break;
        case 'B': if (!m3_cli_parse_size("index", "--batch-tokens", optarg, 16, 1u << 24, &batch_tokens)) return M3_EXIT_USAGE; break;
        case 'M': if (!m3_cli_parse_size("index", "--max-file-size", optarg, 1, (size_t)1 << 40, &max_size)) return M3_EXIT_USAGE; break;
        case 'I': if (!m3_cli_parse_size("index", "--commit-interval", optarg, 0, 3600000, &commit_ms)) return M3_EXIT_USAGE; break;
        case 'C':
            if (!m3_colbert_storage_parse(optarg, &colbert) || colbert == M3_COLBERT_F32) {
                m3_cli_fail("index", "--colbert: expected int8, bits or none, not '%s'", optarg);
                return M3_EXIT_USAGE;
            }
            break;
        case 'P': if (!m3_cli_parse_size("index", "--colbert-pool", optarg, 1, 2, &colbert_pool)) return M3_EXIT_USAGE; break;
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (!model_dir || optind >= argc) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    // A full disk under a file size limit must be an error, not a signal.
    signal(SIGXFSZ, SIG_IGN);
    eopt.threads = (int)threads;
    char *default_dir = index_dir ? NULL : m3_index_default_dir();
    if (!index_dir) index_dir = default_dir;
    m3_error err = {0};
    int rc = M3_EXIT_FAILURE;
    m3_model *model = NULL;
    m3_encoder *enc = NULL;
    m3_index *idx = NULL;
    m3_index_writer *wr = NULL;
    strvec roots = {0}, files = {0}, gone = {0}, to_index = {0};
    char index_real[PATH_MAX] = "";
    m3_index_model mid;
    job j = {0};
    pthread_t reader;
    bool reader_started = false;
    counters cnt = {0};
    if (m3_index_model_identify(model_dir, &mid, &err) != M3_STATUS_OK) {
        m3_cli_fail_error("index", &err);
        goto out;
    }
    if (rebuild && m3_index_remove(index_dir, &err) != M3_STATUS_OK) {
        m3_cli_fail_error("index", &err);
        goto out;
    }
    m3_index_options iopt = {.flags = M3_INDEX_CREATE | (exact ? M3_INDEX_EXACT : 0), .model = &mid,
                             .colbert = colbert, .colbert_pool = (unsigned)colbert_pool};
    if (m3_index_open(index_dir, &iopt, &idx, &err) != M3_STATUS_OK) {
        m3_cli_fail_error("index", &err);
        goto out;
    }
    {
        // The storage is chosen when the index is created: an existing one keeps its own.
        unsigned pool;
        m3_colbert_storage has = m3_index_get_colbert(idx, &pool);
        if ((colbert && colbert != has) || (colbert_pool && has != M3_COLBERT_NONE && colbert_pool != pool))
            fprintf(stderr,
                    "m3 index: note: %s keeps its multi-vectors as '%s'%s, as it was created; --colbert and "
                    "--colbert-pool apply to a new index only: add --rebuild to re-index with them\n",
                    index_dir, m3_colbert_storage_name(has), pool > 1 ? " pooled x2" : "");
    }
    // The writer first: a second `m3 index` on this index stops here, before loading the model.
    if (m3_index_writer_new(idx, &wr, &err) != M3_STATUS_OK) {
        m3_cli_fail_error("index", &err);
        goto out;
    }
    if (!realpath(index_dir, index_real)) index_real[0] = 0;
    if (m3_model_open(model_dir, &model, &err) != M3_STATUS_OK || m3_encoder_new(model, &eopt, &enc, &err) != M3_STATUS_OK) {
        m3_cli_fail_error("index", &err);
        goto out;
    }
    if (!m3_model_get_tokenizer(model)) {
        m3_cli_fail("index", "%s: the model has no tokenizer", model_dir);
        goto out;
    }
    // Roots (absolute, resolved) and the files under them.
    for (int i = optind; i < argc; i++) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(argv[i], real) || stat(real, &st) != 0) {
            m3_cli_fail("index", "%s: %s", argv[i], strerror(errno));
            goto out;
        }
        strvec_push(&roots, real);
        walk(real, index_real[0] ? index_real : NULL, &files, 0);
    }
    qsort(files.v, files.n, sizeof *files.v, cmp_str);
    size_t m = 0;
    for (size_t i = 0; i < files.n; i++) {
        if (m && !strcmp(files.v[m - 1], files.v[i])) free(files.v[i]);
        else files.v[m++] = files.v[i];
    }
    files.n = m;
    // Deleted files first.
    gone_ctx g = {&roots, &files, &gone};
    if (m3_index_list_files(idx, gone_cb, &g, &err) != M3_STATUS_OK) {
        m3_cli_fail_error("index", &err);
        goto out;
    }
    for (size_t i = 0; i < gone.n; i++)
        if (m3_index_writer_delete_file(wr, gone.v[i], &err) != M3_STATUS_OK) {
            m3_cli_fail_error("index", &err);
            goto out;
        }
    cnt.removed = gone.n;
    if (m3_index_writer_commit(wr, &err) != M3_STATUS_OK) {
        m3_cli_fail_error("index", &err);
        goto out;
    }
    // Changed files: size and mtime first (the reader hashes the others).
    for (size_t i = 0; i < files.n; i++) {
        m3_index_file f;
        struct stat st;
        if (lstat(files.v[i], &st) != 0) continue;
        int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (m3_index_get_file(idx, files.v[i], &f, NULL) == M3_STATUS_OK && f.size == (uint64_t)st.st_size &&
            f.mtime_ns == mt && f.state != M3_FILE_PENDING &&
            f.model_version == (uint32_t)strtoull(mid.checksum + 8, NULL, 16)) {
            cnt.unchanged++;
            continue;
        }
        strvec_push(&to_index, files.v[i]);
    }
    cnt.files_total = to_index.n;
    cnt.tty = !quiet && isatty(2);
    cnt.t0 = m3_cli_now();
    j.paths = to_index.v;
    j.n_paths = to_index.n;
    j.idx = idx;
    j.tok = m3_model_get_tokenizer(model);
    j.chunk = (m3_chunk_options){chunk_tokens, overlap};
    j.max_size = max_size;
    // The extraction helper: this same program as 'm3 extract-helper'. Its memory limit leaves
    // room for the largest file, its text (up to 4 bytes per byte) and line anchors.
    static const char *const helper_argv[] = {"/proc/self/exe", "extract-helper", NULL};
    m3_sandbox_options sopt = m3_sandbox_options_default();
    sopt.argv = helper_argv;
    if (sopt.memory_limit < 24 * (uint64_t)max_size) sopt.memory_limit = 24 * (uint64_t)max_size;
    if (sopt.max_text < 4 * (uint64_t)max_size) sopt.max_text = 4 * (uint64_t)max_size;  // UTF-8 of legacy text
    if (m3_sandbox_new(&sopt, &j.sandbox, &err) != M3_STATUS_OK) {
        m3_cli_fail_error("index", &err);
        goto out_lists;
    }
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    if (pthread_create(&reader, NULL, reader_main, &j) != 0) {
        m3_cli_fail("index", "cannot start the reader thread");
        goto out_lists;
    }
    reader_started = true;
    double last_commit = m3_cli_now();
    work_file *batch[256];
    for (;;) {
        // A batch: prepared files up to the token budget (wait for the first one only).
        size_t nb = 0, tokens = 0;
        work_file *w = pop(&j, true);
        if (!w) break;
        do {
            cnt.files_done++;
            if (w->action == 1) {
                if (m3_index_writer_touch_file(wr, w->path, &w->info, &err) != M3_STATUS_OK) goto fail_batch;
                cnt.unchanged++;
                work_free(w);
            } else if (w->action == 2) {
                if (w->reason) fprintf(stderr, "%sm3 index: %s\n", cnt.tty ? "\r\033[K" : "", w->reason);
                w->info.state = M3_FILE_FAILED;
                w->n_chunks = 0;
                if (m3_index_writer_put_file(wr, w->path, &w->info, NULL, 0, &err) != M3_STATUS_OK) goto fail_batch;
                cnt.failed++;
                work_free(w);
            } else if (w->action == 3) {
                work_free(w);
            } else {
                batch[nb++] = w;
                tokens += w->tokens;
            }
        } while (nb < 256 && tokens < batch_tokens && (w = pop(&j, false)));
        m3_status s = encode_and_put(enc, wr, batch, nb, &cnt, &err);
        for (size_t i = 0; i < nb; i++) work_free(batch[i]);
        if (s != M3_STATUS_OK) goto fail;
        if (m3_index_writer_pending_bytes(wr) > (32u << 20) || m3_cli_now() - last_commit >= (double)commit_ms / 1000) {
            if (m3_index_writer_commit(wr, &err) != M3_STATUS_OK) goto fail;
            last_commit = m3_cli_now();
        }
        progress(&cnt, false);
        continue;
    fail_batch:
        work_free(w);
        for (size_t i = 0; i < nb; i++) work_free(batch[i]);
        goto fail;
    }
    if (m3_index_writer_commit(wr, &err) != M3_STATUS_OK) goto fail;
    progress(&cnt, true);
    if (!quiet) {
        double dt = m3_cli_now() - cnt.t0;
        fprintf(stderr,
                "m3 index: %zu indexed (%zu chunks, %llu tokens), %zu unchanged, %zu removed, %zu failed, %.1f s"
                " (%.0f tokens/s)\n",
                cnt.indexed, cnt.chunks, (unsigned long long)cnt.tokens, cnt.unchanged, cnt.removed, cnt.failed, dt,
                dt > 0 ? (double)cnt.tokens / dt : 0.0);
    }
    rc = M3_EXIT_OK;
    goto out_lists;
fail:
    if (cnt.tty) fputc('\n', stderr);
    m3_cli_fail_error("index", &err);
out_lists:
    if (reader_started) {
        j.stop = true;
        pthread_mutex_lock(&j.mu);
        pthread_cond_broadcast(&j.cv);
        pthread_mutex_unlock(&j.mu);
        for (work_file *w; (w = pop(&j, false));) work_free(w);
        pthread_join(reader, NULL);
        for (work_file *w; (w = pop(&j, false));) work_free(w);
    }
    for (size_t i = 0; i < to_index.n; i++) free(to_index.v[i]);
    free(to_index.v);
out:
    m3_sandbox_free(j.sandbox);
    m3_index_writer_free(wr);
    m3_encoder_free(enc);
    m3_model_close(model);
    m3_index_close(idx);
    for (size_t i = 0; i < roots.n; i++) free(roots.v[i]);
    for (size_t i = 0; i < files.n; i++) free(files.v[i]);
    for (size_t i = 0; i < gone.n; i++) free(gone.v[i]);
    free(roots.v);
    free(files.v);
    free(gone.v);
    free(default_dir);
    return rc;
}
