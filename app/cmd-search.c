// SPDX-License-Identifier: MIT
//
// m3 search [--index DIR] [--model DIR] [--limit N] [--json] [--mode M] [--weights D,S,C] QUERY
// Encodes the query and runs the hybrid search; prints one result per file (its best chunk).
// --json prints {"results":[{"path","score","dense","sparse","colbert","start","end","snippet",
// "highlights":[[start,end],...] (byte ranges in the snippet)}]}.
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "encoder/encoder.h"
#include "index/index.h"
#include "model/model.h"

static const char usage_text[] =
    "usage: m3 search [--index DIR] [--model DIR] [--limit N] [--json] [--mode MODE] [--weights D,S,C] QUERY\n\n"
    "Finds the indexed files that best match QUERY, by meaning, in any language.\n\n"
    "  --index DIR        the index folder (default $XDG_DATA_HOME/m3search/index)\n"
    "  --model PATH       the model (folder or .gguf file) the index was built with; default $M3_MODEL\n"
    "  --backend NAME     encoder backend: auto (default: vulkan on a GPU, else cpu), cpu, vulkan\n"
    "  --threads N        encoder threads (default: one per CPU)\n"
    "  --limit N          results (default 10)\n"
    "  --json             JSON output\n"
    "  --mode MODE        hybrid (default), dense, sparse or colbert\n"
    "  --weights D,S,C    hybrid weights of dense, sparse, colbert (default 0.4,0.2,0.4)\n"
    "  --candidates N     candidates from each of dense and sparse (default 200)\n"
    "  --exhaustive       score every chunk exactly (slow; for checks)\n"
    "  --all-chunks       do not group results by file\n";

void m3_cli_print_hits(FILE *out, const m3_search_hit *hits, size_t n, bool json)
{
    if (json) {
        fputs("{\"results\":[", out);
        for (size_t i = 0; i < n; i++) {
            const m3_search_hit *h = &hits[i];
            fputs(i ? ",{\"path\":" : "{\"path\":", out);
            m3_cli_put_json_string(out, h->path, strlen(h->path));
            fputs(",\"score\":", out);
            m3_cli_put_float(out, h->score);
            fputs(",\"dense\":", out);
            m3_cli_put_float(out, h->dense);
            fputs(",\"sparse\":", out);
            m3_cli_put_float(out, h->sparse);
            fputs(",\"colbert\":", out);
            m3_cli_put_float(out, h->colbert);
            fprintf(out, ",\"start\":%llu,\"end\":%llu,\"location\":", (unsigned long long)h->start,
                    (unsigned long long)h->end);
            if (h->location) m3_cli_put_json_string(out, h->location, strlen(h->location));
            else fputs("null", out);
            fputs(",\"snippet\":", out);
            m3_cli_put_json_string(out, h->snippet ? h->snippet : "", h->snippet ? strlen(h->snippet) : 0);
            fputs(",\"highlights\":[", out);
            for (size_t k = 0; k < h->n_highlights; k++)
                fprintf(out, "%s[%u,%u]", k ? "," : "", h->highlights[k][0], h->highlights[k][1]);
            fputc(']', out);
            fputc('}', out);
        }
        fputs("]}\n", out);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const m3_search_hit *h = &hits[i];
        fprintf(out, "%.4f  %s  [%llu-%llu]%s%s\n", (double)h->score, h->path, (unsigned long long)h->start,
                (unsigned long long)h->end, h->location ? "  " : "", h->location ? h->location : "");
        if (h->snippet && *h->snippet) fprintf(out, "        %s\n", h->snippet);
    }
}

bool m3_cli_parse_weights(const char *command, const char *value, float w[3])
{
    char *end;
    for (int i = 0; i < 3; i++) {
        w[i] = strtof(value, &end);
        if (end == value || !(w[i] >= 0) || (i < 2 && *end != ',') || (i == 2 && *end)) {
            m3_cli_fail(command, "--weights: expected three non-negative numbers D,S,C");
            return false;
        }
        value = end + 1;
    }
    if (!(w[0] + w[1] + w[2] > 0)) {
        m3_cli_fail(command, "--weights: the sum must be positive");
        return false;
    }
    return true;
}

int m3_cmd_search(int argc, char **argv)
{
    static const struct option options[] = {
        {"index", required_argument, NULL, 'i'},  {"model", required_argument, NULL, 'm'},
        {"backend", required_argument, NULL, 'b'}, {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},         {"mode", required_argument, NULL, 'M'},
        {"weights", required_argument, NULL, 'w'}, {"candidates", required_argument, NULL, 'c'},
        {"exhaustive", no_argument, NULL, 'x'},   {"all-chunks", no_argument, NULL, 'a'},
        {"threads", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *index_dir = NULL, *model_dir = getenv("M3_MODEL"), *mode = "hybrid";
    m3_encoder_options eopt = m3_encoder_options_default();
    eopt.backend = "auto";  // a GPU when there is one (encoder.h)
    m3_search_options so = m3_search_options_default();
    bool json = false, weights_set = false;
    size_t limit = 10, candidates = 200, threads = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'i': index_dir = optarg; break;
        case 'm': model_dir = optarg; break;
        case 'b': eopt.backend = optarg; break;
        case 'n': if (!m3_cli_parse_size("search", "--limit", optarg, 1, 100000, &limit)) return M3_EXIT_USAGE; break;
        case 'c': if (!m3_cli_parse_size("search", "--candidates", optarg, 1, 1000000, &candidates)) return M3_EXIT_USAGE; break;
        case 't': if (!m3_cli_parse_size("search", "--threads", optarg, 1, 1024, &threads)) return M3_EXIT_USAGE; break;
        case 'j': json = true; break;
        case 'x': so.exhaustive = true; break;
        case 'a': so.group_by_file = false; break;
        case 'M': mode = optarg; break;
        case 'w': if (!m3_cli_parse_weights("search", optarg, so.weights)) return M3_EXIT_USAGE; weights_set = true; break;
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (!model_dir || optind != argc - 1) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    if (!strcmp(mode, "dense")) so.weights[0] = 1, so.weights[1] = so.weights[2] = 0;
    else if (!strcmp(mode, "sparse")) so.weights[1] = 1, so.weights[0] = so.weights[2] = 0;
    else if (!strcmp(mode, "colbert")) so.weights[2] = 1, so.weights[0] = so.weights[1] = 0;
    else if (strcmp(mode, "hybrid")) {
        m3_cli_fail("search", "--mode: expected hybrid, dense, sparse or colbert");
        return M3_EXIT_USAGE;
    }
    if (weights_set && strcmp(mode, "hybrid")) {
        m3_cli_fail("search", "--weights applies to --mode hybrid only");
        return M3_EXIT_USAGE;
    }
    so.limit = limit;
    eopt.threads = (int)threads;
    so.dense_candidates = so.sparse_candidates = candidates;
    const char *query = argv[optind];
    // An empty query encodes to <s></s> alone, whose vectors rank the index in no useful order.
    if (!query[strspn(query, " \t\n\r\f\v")]) {
        m3_cli_fail("search", "the query is empty");
        return M3_EXIT_USAGE;
    }
    char *default_dir = index_dir ? NULL : m3_index_default_dir();
    if (!index_dir) index_dir = default_dir;
    m3_error err = {0};
    int rc = M3_EXIT_FAILURE;
    m3_model *model = NULL;
    m3_encoder *enc = NULL;
    m3_index *idx = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    m3_embedding q = {0};
    m3_search_hit *hits = NULL;
    size_t n_hits = 0;
    m3_index_model mid;
    if (m3_index_model_identify(model_dir, &mid, &err) != M3_STATUS_OK) goto fail;
    m3_index_options iopt = {.flags = M3_INDEX_READONLY, .model = &mid};
    if (m3_index_open(index_dir, &iopt, &idx, &err) != M3_STATUS_OK) goto fail;
    if (m3_model_open(model_dir, &model, &err) != M3_STATUS_OK || m3_encoder_new(model, &eopt, &enc, &err) != M3_STATUS_OK)
        goto fail;
    const m3_tokenizer *tok = m3_model_get_tokenizer(model);
    if (!tok) {
        m3_error_set(&err, M3_STATUS_FORMAT, 0, "%s: the model has no tokenizer", model_dir);
        goto fail;
    }
    if (m3_tokenizer_encode(tok, query, strlen(query), 8192, &ids, &n_ids, &err) != M3_STATUS_OK) goto fail;
    m3_sequence seq = {ids, n_ids};
    if (m3_encoder_encode(enc, &seq, 1, M3_OUTPUT_ALL, &q, &err) != M3_STATUS_OK) goto fail;
    so.tokenizer = tok;
    if (m3_index_search(idx, &q, &so, &hits, &n_hits, &err) != M3_STATUS_OK) goto fail;
    m3_cli_print_hits(stdout, hits, n_hits, json);
    rc = M3_EXIT_OK;
    goto out;
fail:
    m3_cli_fail_error("search", &err);
out:
    m3_search_hits_free(hits, n_hits);
    m3_embedding_clear(&q);
    free(ids);
    m3_encoder_free(enc);
    m3_model_close(model);
    m3_index_close(idx);
    free(default_dir);
    return rc;
}
