// SPDX-License-Identifier: MIT
//
// m3 status [--index DIR] [--json] [--files]: what the index holds.
// m3 check [--index DIR]: verifies every invariant of the index; exit 0 only when consistent.
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "index/index.h"

static const char status_usage[] =
    "usage: m3 status [--index DIR] [--json] [--files]\n\n"
    "Describes the index: model, files, chunks, sizes.\n\n"
    "  --index DIR   the index folder (default $XDG_DATA_HOME/m3search/index)\n"
    "  --json        one JSON object\n"
    "  --files       also list every file (with --json: one JSON object per line after the summary)\n";

static const char check_usage[] =
    "usage: m3 check [--index DIR]\n\n"
    "Checks that the index is consistent; exit status 0 only when it is.\n";

static const char *state_name(uint32_t s)
{
    return s == M3_FILE_DONE ? "done" : s == M3_FILE_FAILED ? "failed" : s == M3_FILE_SKIPPED ? "skipped" : "pending";
}

typedef struct list_ctx {
    bool json;
} list_ctx;

static int list_cb(const char *path, const m3_index_file *f, void *user)
{
    list_ctx *l = user;
    if (l->json) {
        fputs("{\"path\":", stdout);
        m3_cli_put_json_string(stdout, path, strlen(path));
        printf(",\"size\":%" PRIu64 ",\"mtime_ns\":%" PRId64 ",\"hash\":\"%016" PRIx64 "\",\"state\":\"%s\","
               "\"extractor\":\"%s\",\"chunks\":%u,\"first_chunk\":%u,\"tokens\":%" PRIu64 ",\"reason\":",
               f->size, f->mtime_ns, f->hash, state_name(f->state), f->extractor, f->n_chunks, f->first_chunk,
               f->tokens);
        m3_cli_put_json_string(stdout, f->reason, strnlen(f->reason, sizeof f->reason));
        fputs("}\n", stdout);
    } else {
        printf("%-7s %6u chunks  %s%s%s\n", state_name(f->state), f->n_chunks, path, f->reason[0] ? ": " : "",
               f->reason);
    }
    return 0;
}

static int open_index(const char *cmd, const char *index_dir, m3_index **idx)
{
    char *default_dir = index_dir ? NULL : m3_index_default_dir();
    m3_error err = {0};
    m3_index_options opt = {.flags = M3_INDEX_READONLY};
    m3_status s = m3_index_open(index_dir ? index_dir : default_dir, &opt, idx, &err);
    free(default_dir);
    if (s != M3_STATUS_OK) return m3_cli_fail_error(cmd, &err);
    return M3_EXIT_OK;
}

int m3_cmd_status(int argc, char **argv)
{
    static const struct option options[] = {
        {"index", required_argument, NULL, 'i'}, {"json", no_argument, NULL, 'j'},
        {"files", no_argument, NULL, 'f'},       {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *index_dir = NULL;
    bool json = false, files = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'i': index_dir = optarg; break;
        case 'j': json = true; break;
        case 'f': files = true; break;
        case 'h': fputs(status_usage, stdout); return M3_EXIT_OK;
        default: fputs(status_usage, stderr); return M3_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(status_usage, stderr);
        return M3_EXIT_USAGE;
    }
    m3_index *idx;
    int rc = open_index("status", index_dir, &idx);
    if (rc) return rc;
    m3_error err = {0};
    m3_index_stats st;
    if (m3_index_get_stats(idx, &st, &err) != M3_STATUS_OK) {
        m3_index_close(idx);
        return m3_cli_fail_error("status", &err);
    }
    const m3_index_model *m = m3_index_get_model(idx);
    unsigned pool;
    const char *colbert = m3_colbert_storage_name(m3_index_get_colbert(idx, &pool));
    if (json) {
        // The folder and the model's name may hold any bytes (a quote, a name that is not UTF-8).
        fputs("{\"index\":", stdout);
        m3_cli_put_json_string(stdout, m3_index_get_dir(idx), strlen(m3_index_get_dir(idx)));
        fputs(",\"model\":", stdout);
        m3_cli_put_json_string(stdout, m->id, strnlen(m->id, sizeof m->id));
        printf(",\"checksum\":\"%s\",\"dim\":%d,\"exact\":%s,"
               "\"colbert_storage\":\"%s\",\"colbert_pool\":%u,\"colbert_tokens\":%" PRIu64 ",\"files\":%" PRIu64
               ",\"failed\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"chunks\":%" PRIu64 ",\"tokens\":%" PRIu64 ",\"postings\":%" PRIu64
               ",\"colbert_vectors\":%" PRIu64 ",\"map_size\":%" PRIu64 ",\"used_bytes\":%" PRIu64
               ",\"file_bytes\":%" PRIu64 ",\"bytes\":{\"text\":%" PRIu64 ",\"dense\":%" PRIu64 ",\"bits\":%" PRIu64
               ",\"sparse\":%" PRIu64 ",\"colbert\":%" PRIu64 "}}\n",
               m->checksum, m->dim, m3_index_is_exact(idx) ? "true" : "false", colbert,
               pool, st.colbert_tokens, st.files - st.files_skipped,
               st.files_failed, st.files_skipped, st.chunks, st.tokens, st.postings, st.colbert_vectors, st.map_size, st.used_bytes,
               st.file_bytes, st.bytes_text, st.bytes_dense, st.bytes_bits, st.bytes_sparse, st.bytes_colbert);
    } else {
        printf("index    %s\nmodel    %s (checksum %s, %d dimensions%s)\n", m3_index_get_dir(idx), m->id, m->checksum,
               m->dim, m3_index_is_exact(idx) ? ", exact vectors" : "");
        if (m3_index_get_colbert(idx, NULL) == M3_COLBERT_NONE)
            printf("colbert  none (no multi-vectors: the hybrid score is dense + sparse)\n");
        else
            printf("colbert  %s%s (%.1f bytes per token)\n", colbert,
                   pool > 1 ? ", pooled x2" : ", one vector per token",
                   st.colbert_tokens ? (double)st.bytes_colbert / (double)st.colbert_tokens : 0.0);
        printf("files    %" PRIu64 " (%" PRIu64 " failed, %" PRIu64 " skipped)\nchunks   %" PRIu64 " (%" PRIu64 " tokens, %" PRIu64
               " postings, %" PRIu64 " multi-vectors)\n",
               st.files - st.files_skipped, st.files_failed, st.files_skipped, st.chunks, st.tokens, st.postings,
               st.colbert_vectors);
        printf("size     %.1f MiB used of a %.1f MiB map (text %.1f, dense %.1f, sign codes %.1f, sparse %.1f, "
               "multi-vector %.1f MiB)\n",
               st.used_bytes / 1048576.0, st.map_size / 1048576.0, st.bytes_text / 1048576.0,
               st.bytes_dense / 1048576.0, st.bytes_bits / 1048576.0, st.bytes_sparse / 1048576.0,
               st.bytes_colbert / 1048576.0);
    }
    if (files) {
        list_ctx l = {json};
        if (m3_index_list_files(idx, list_cb, &l, &err) != M3_STATUS_OK) {
            m3_index_close(idx);
            return m3_cli_fail_error("status", &err);
        }
    }
    m3_index_close(idx);
    return M3_EXIT_OK;
}

static void report_cb(const char *message, void *user)
{
    (void)user;
    fprintf(stderr, "m3 check: %s\n", message);
}

int m3_cmd_check(int argc, char **argv)
{
    static const struct option options[] = {
        {"index", required_argument, NULL, 'i'}, {"help", no_argument, NULL, 'h'}, {0},
    };
    const char *index_dir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'i': index_dir = optarg; break;
        case 'h': fputs(check_usage, stdout); return M3_EXIT_OK;
        default: fputs(check_usage, stderr); return M3_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(check_usage, stderr);
        return M3_EXIT_USAGE;
    }
    m3_index *idx;
    int rc = open_index("check", index_dir, &idx);
    if (rc) return rc;
    m3_error err = {0};
    uint64_t problems = 0;
    m3_status s = m3_index_check(idx, report_cb, NULL, &problems, &err);
    m3_index_close(idx);
    if (s != M3_STATUS_OK) return m3_cli_fail_error("check", &err);
    if (problems) return m3_cli_fail("check", "%" PRIu64 " problems: the index is inconsistent; run 'm3 index --rebuild'", problems);
    puts("ok");
    return M3_EXIT_OK;
}
