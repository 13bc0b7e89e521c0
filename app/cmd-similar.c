// SPDX-License-Identifier: MIT
//
// m3 similar [--index DIR] [--model DIR] [--limit N] [--json] FILE
// Files similar to FILE, excluded from the results. An indexed FILE queries with its stored vectors
// (no model needed); any other file is read, chunked and encoded first (with the index's model).
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "encoder/encoder.h"
#include "extract/extract.h"
#include "extract/sandbox.h"
#include "index/index.h"
#include "indexer/indexer.h"
#include "model/model.h"

static const char usage_text[] =
    "usage: m3 similar [--index DIR] [--model PATH] [--backend NAME] [--limit N] [--json] [--weights D,S,C] FILE\n\n"
    "Lists the indexed files most similar to FILE. An indexed FILE is compared through its stored\n"
    "vectors; any other file is read and encoded first, which needs the model.\n\n"
    "  --index DIR        the index folder (default $XDG_DATA_HOME/m3search/index)\n"
    "  --model PATH       the model the index was built with (default $M3_MODEL); needed only for\n"
    "                     a FILE that is not indexed\n"
    "  --backend NAME     encoder backend for a FILE that is not indexed (default auto)\n"
    "  --limit N          results (default 10)\n"
    "  --json             JSON output (as m3 search)\n"
    "  --weights D,S,C    hybrid weights (default 0.4,0.2,0.4)\n";

// Extracts, chunks and encodes the first chunks of a file the index does not hold, as `m3 index`
// would (same extractor and chunking), then asks for the files similar to those chunks.
static m3_status similar_unindexed(m3_index *idx, const char *file, const char *model_dir, const char *backend,
                                   const m3_search_options *so, m3_search_hit **hits, size_t *n_hits,
                                   m3_error *err)
{
    m3_model *model = NULL;
    m3_encoder *enc = NULL;
    m3_sandbox *sandbox = NULL;
    m3_embedding emb[M3_SIMILAR_QUERY_CHUNKS] = {0};
    size_t n = 0;
    // Extracted in the sandboxed helper, as `m3 index` does: the file may be anything.
    static const char *const helper[] = {"/proc/self/exe", "extract-helper", NULL};
    m3_sandbox_options sopt = m3_sandbox_options_default();
    sopt.argv = helper;
    m3_encoder_options eo = m3_encoder_options_default();
    eo.backend = backend;
    m3_status s;
    if ((s = m3_sandbox_new(&sopt, &sandbox, err)) || (s = m3_model_open(model_dir, &model, err)) ||
        (s = m3_encoder_new(model, &eo, &enc, err)) ||
        (s = m3_indexer_encode_file(file, sandbox, m3_model_get_tokenizer(model), enc, emb, &n, err)))
        goto out;
    s = m3_index_similar_to(idx, emb, n, so, hits, n_hits, err);
out:
    for (size_t i = 0; i < M3_SIMILAR_QUERY_CHUNKS; i++) m3_embedding_clear(&emb[i]);
    m3_sandbox_free(sandbox);
    m3_encoder_free(enc);
    m3_model_close(model);
    return s;
}

int m3_cmd_similar(int argc, char **argv)
{
    static const struct option options[] = {
        {"index", required_argument, NULL, 'i'}, {"model", required_argument, NULL, 'm'},
        {"limit", required_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
        {"weights", required_argument, NULL, 'w'}, {"backend", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'}, {0},
    };
    const char *index_dir = NULL, *model_dir = NULL, *backend = "auto";
    m3_search_options so = m3_search_options_default();
    bool json = false;
    size_t limit = 10;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'i': index_dir = optarg; break;
        case 'm': model_dir = optarg; break;
        case 'b': backend = optarg; break;
        case 'n': if (!m3_cli_parse_size("similar", "--limit", optarg, 1, 100000, &limit)) return M3_EXIT_USAGE; break;
        case 'j': json = true; break;
        case 'w': if (!m3_cli_parse_weights("similar", optarg, so.weights)) return M3_EXIT_USAGE; break;
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    so.limit = limit;
    char real[PATH_MAX];
    const char *file = realpath(argv[optind], real) ? real : argv[optind];
    char *default_dir = index_dir ? NULL : m3_index_default_dir();
    if (!index_dir) index_dir = default_dir;
    m3_error err = {0};
    int rc = M3_EXIT_FAILURE;
    m3_index *idx = NULL;
    m3_search_hit *hits = NULL;
    size_t n_hits = 0;
    m3_index_model mid;
    if (model_dir && m3_index_model_identify(model_dir, &mid, &err) != M3_STATUS_OK) goto fail;
    m3_index_options iopt = {.flags = M3_INDEX_READONLY, .model = model_dir ? &mid : NULL};
    if (m3_index_open(index_dir, &iopt, &idx, &err) != M3_STATUS_OK) goto fail;
    m3_status s = m3_index_similar(idx, file, &so, &hits, &n_hits, &err);
    if (s == M3_STATUS_NOT_FOUND) {
        // Not indexed: encode it with the index's model (checked against the index at open).
        const char *env = getenv("M3_MODEL");
        if (!model_dir && env && *env) {
            model_dir = env;
            m3_index_close(idx);
            idx = NULL;
            iopt.model = &mid;
            if (m3_index_model_identify(model_dir, &mid, &err) != M3_STATUS_OK ||
                m3_index_open(index_dir, &iopt, &idx, &err) != M3_STATUS_OK)
                goto fail;
        }
        if (!model_dir) {
            rc = m3_cli_fail("similar", "%s is not indexed: give --model (or set M3_MODEL) to encode it", file);
            goto out;
        }
        s = similar_unindexed(idx, file, model_dir, backend, &so, &hits, &n_hits, &err);
    }
    if (s != M3_STATUS_OK) goto fail;
    m3_cli_print_hits(stdout, hits, n_hits, json);
    rc = M3_EXIT_OK;
    goto out;
fail:
    m3_cli_fail_error("similar", &err);
out:
    m3_search_hits_free(hits, n_hits);
    m3_index_close(idx);
    free(default_dir);
    return rc;
}
