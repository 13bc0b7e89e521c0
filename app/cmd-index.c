// SPDX-License-Identifier: MIT
//
// m3 index [--index DIR] --model DIR [--backend auto] [--precision P] [--rebuild] [--exact] [--colbert KIND]
//          [--colbert-pool N] PATH...
// Keeps the index current with the files and folders given, through the indexing pipeline
// (core/indexer/indexer.h: walk, compare, read-ahead, sandboxed extraction, chunking, batches,
// writer). This file is the command line around it: options, the progress line, the summary.
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "encoder/encoder.h"
#include "extract/extract.h"
#include "index/index.h"
#include "indexer/indexer.h"
#include "model/model.h"

static const char usage_text[] =
    "usage: m3 index [--index DIR] --model DIR [--backend auto] [--precision P] [--rebuild]\n"
    "                [--exact] [--colbert int8|bits|none] [--colbert-pool 1|2] PATH...\n\n"
    "Indexes the text files under each PATH (files or folders) for 'm3 search'.\n"
    "Unchanged files are skipped, changed ones re-indexed, deleted ones dropped (also\n"
    "when a PATH itself was deleted). Files that cannot be read are listed as failed.\n"
    "Exit status 1 when a PATH named here could not be indexed.\n\n"
    "  --index DIR          the index folder (default $XDG_DATA_HOME/m3search/index)\n"
    "  --model PATH         the model folder (BAAI/bge-m3 layout) or its converted .gguf file;\n"
    "                       default $M3_MODEL\n"
    "  --backend NAME       encoder backend: auto (default: vulkan on a GPU, else cpu), cpu, vulkan\n"
    "  --precision P        CPU encoder arithmetic: auto (default: bf16 where the CPU has\n"
    "                       AVX512_BF16, else fp32), fp32, bf16, int8\n"
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

// ---- progress ----------------------------------------------------------------------------------

typedef struct cli_progress {
    bool tty;
    m3_indexer_progress last;
    char **roots;        // the PATHs named, resolved
    size_t n_roots;
    bool root_failed;    // one of them could not be indexed: the exit status says so
} cli_progress;

static void progress_cb(const m3_indexer_progress *p, void *user)
{
    cli_progress *c = user;
    c->last = *p;
    if (!c->tty || p->crawling) return;
    double eta = p->eta_seconds > 0 ? p->eta_seconds : 0;
    fprintf(stderr, "\r\033[K%zu/%zu files, %zu chunks, %.0f tokens/s, ETA %d:%02d", p->files_done, p->files_total,
            p->chunks, p->tokens_per_second, (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

static void file_cb(const char *path, m3_file_outcome outcome, const char *reason, void *user)
{
    cli_progress *c = user;
    for (size_t i = 0; outcome == M3_OUTCOME_FAILED && i < c->n_roots; i++)
        if (!strcmp(path, c->roots[i])) c->root_failed = true;
    // Unsupported types are expected in any folder; failures and size limits are worth a line.
    if (outcome == M3_OUTCOME_FAILED || (outcome == M3_OUTCOME_SKIPPED && reason && !strstr(reason, "not supported")))
        fprintf(stderr, "%sm3 index: %s%s%s\n", c->tty ? "\r\033[K" : "", reason && strstr(reason, path) ? "" : path,
                reason && strstr(reason, path) ? "" : ": ", reason ? reason : "failed");
}

// ---- a PATH that no longer exists ---------------------------------------------------------------

// The absolute path a PATH that no longer exists had: its deepest existing folder resolved (as
// realpath resolved it when it was indexed), the rest taken as written, with "." and ".." applied
// to the names (nothing is left on disk to say where a deleted symlink pointed). False when the
// result does not fit in PATH_MAX.
static bool absolute_missing_path(const char *arg, char out[PATH_MAX])
{
    char norm[PATH_MAX] = "", cwd[PATH_MAX];
    size_t n = 0;
    if (arg[0] != '/' && !getcwd(cwd, sizeof cwd)) return false;
    char joined[2 * PATH_MAX];
    if (snprintf(joined, sizeof joined, "%s/%s", arg[0] == '/' ? "" : cwd, arg) >= (int)sizeof joined) return false;
    for (char *save = NULL, *name = strtok_r(joined, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
        if (!strcmp(name, ".")) continue;
        if (!strcmp(name, "..")) {
            while (n > 0 && norm[n - 1] != '/') n--;
            if (n > 0) n--;  // the slash before the name
            norm[n] = 0;
            continue;
        }
        size_t l = strlen(name);
        if (n + 1 + l >= sizeof norm) return false;
        norm[n++] = '/';
        memcpy(norm + n, name, l + 1);
        n += l;
    }
    if (!n) return realpath("/", out) != NULL;  // "/" exists: not reached for a missing path
    // The deepest existing folder above it, resolved; then the names below it.
    char prefix[PATH_MAX], real[PATH_MAX];
    for (size_t cut = n; cut > 0;) {
        while (cut > 0 && norm[cut - 1] != '/') cut--;
        if (cut == 0) break;
        cut--;  // at the slash before the last name left
        memcpy(prefix, norm, cut);
        prefix[cut] = 0;
        if (realpath(cut ? prefix : "/", real))
            return snprintf(out, PATH_MAX, "%s%s", strcmp(real, "/") ? real : "", norm + cut) < PATH_MAX;
    }
    return false;
}

static int count_cb(const char *path, const m3_index_file *f, void *user)
{
    (void)path;
    (void)f;
    ++*(size_t *)user;
    return 0;
}

// How many files the index holds at path or under it.
static size_t count_files_under(m3_index *idx, const char *path)
{
    size_t n = 0;
    if (m3_index_list_files_under(idx, path, count_cb, &n, NULL) != M3_STATUS_OK) return 0;
    return n;
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
        {"precision", required_argument, NULL, 'p'},
        {0},
    };
    const char *index_dir = NULL, *model_dir = getenv("M3_MODEL");
    m3_encoder_options eopt = m3_encoder_options_default();
    eopt.backend = "auto";  // a GPU when there is one (encoder.h)
    eopt.precision = M3_PRECISION_AUTO;  // bf16 where the CPU has AVX512_BF16
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
        case 'p': if (!m3_cli_parse_precision("index", optarg, &eopt)) return M3_EXIT_USAGE; break;
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
    m3_indexer *ix = NULL;
    m3_index_model mid;
    cli_progress prog = {0};
    size_t n_roots = 0;
    char **roots = calloc((size_t)(argc - optind) + 1, sizeof *roots);
    if (!roots) {
        m3_cli_fail("index", "out of memory");
        goto out;
    }
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
    if (m3_model_open(model_dir, &model, &err) != M3_STATUS_OK || m3_encoder_new(model, &eopt, &enc, &err) != M3_STATUS_OK) {
        m3_cli_fail_error("index", &err);
        goto out;
    }
    if (!m3_model_get_tokenizer(model)) {
        m3_cli_fail("index", "%s: the model has no tokenizer", model_dir);
        goto out;
    }
    // Roots: absolute, resolved. A PATH deleted since it was indexed is still a root, so that the
    // sync drops its files; one the index knows nothing of is a mistake.
    for (int i = optind; i < argc; i++) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(argv[i], real) || stat(real, &st) != 0) {
            int e = errno;
            size_t held = 0;
            if ((e != ENOENT && e != ENOTDIR) || !absolute_missing_path(argv[i], real) ||
                (held = count_files_under(idx, real)) == 0) {
                m3_cli_fail("index", "%s: %s", argv[i], strerror(e));
                goto out;
            }
            fprintf(stderr, "m3 index: note: %s no longer exists: dropping its %zu file%s from the index\n", argv[i],
                    held, held == 1 ? "" : "s");
        }
        roots[n_roots++] = strdup(real);
        if (!roots[n_roots - 1]) {
            m3_cli_fail("index", "out of memory");
            goto out;
        }
    }
    {
        // The extraction helper: this same program as 'm3 extract-helper'.
        static const char *const helper_argv[] = {"/proc/self/exe", "extract-helper", NULL};
        m3_indexer_options xopt = m3_indexer_options_default();
        xopt.roots = (const char *const *)roots;
        xopt.n_roots = n_roots;
        xopt.index_hidden = false;
        xopt.index_remote = true;  // on the command line, what was named is what is indexed
        xopt.max_file_size = max_size;
        xopt.chunk = (m3_chunk_options){chunk_tokens, overlap};
        xopt.batch_tokens = batch_tokens;
        xopt.commit_ms = (unsigned)commit_ms;
        xopt.helper_argv = helper_argv;
        xopt.on_progress = progress_cb;
        xopt.on_file = file_cb;
        xopt.user = &prog;
        prog.roots = roots;
        prog.n_roots = n_roots;
        prog.tty = !quiet && isatty(2);
        if (m3_indexer_new(idx, wr, enc, m3_model_get_tokenizer(model), &xopt, &ix, &err) != M3_STATUS_OK) {
            m3_cli_fail_error("index", &err);
            goto out;
        }
    }
    if (m3_indexer_sync(ix, &err) != M3_STATUS_OK) {
        if (prog.tty) fputc('\n', stderr);
        m3_cli_fail_error("index", &err);
        goto out;
    }
    if (prog.tty) fputc('\n', stderr);
    if (!quiet) {
        const m3_indexer_progress *p = &prog.last;
        fprintf(stderr,
                "m3 index: %zu indexed (%zu chunks, %llu tokens), %zu unchanged, %zu removed, %zu failed, %.1f s"
                " (%.0f tokens/s)\n",
                p->indexed, p->chunks, (unsigned long long)p->tokens, p->unchanged, p->removed, p->failed, p->seconds,
                p->tokens_per_second);
    }
    rc = prog.root_failed ? M3_EXIT_FAILURE : M3_EXIT_OK;
out:
    m3_indexer_free(ix);
    m3_index_writer_free(wr);
    m3_encoder_free(enc);
    m3_model_close(model);
    m3_index_close(idx);
    for (size_t i = 0; i < n_roots; i++) free(roots[i]);
    free(roots);
    free(default_dir);
    return rc;
}
