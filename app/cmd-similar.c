// SPDX-License-Identifier: MIT
//
// m3 similar [--index DIR] [--limit N] [--json] FILE
// Files similar to an indexed FILE, from its stored vectors (no model needed); FILE is excluded.
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "index/index.h"

static const char usage_text[] =
    "usage: m3 similar [--index DIR] [--model DIR] [--limit N] [--json] [--weights D,S,C] FILE\n\n"
    "Lists the indexed files most similar to FILE (which must be indexed), from the stored vectors.\n\n"
    "  --index DIR        the index folder (default $XDG_DATA_HOME/m3search/index)\n"
    "  --model DIR        accepted for symmetry with search; checked against the index when given\n"
    "  --limit N          results (default 10)\n"
    "  --json             JSON output (as m3 search)\n"
    "  --weights D,S,C    hybrid weights (default 0.4,0.2,0.4)\n";

int m3_cmd_similar(int argc, char **argv)
{
    static const struct option options[] = {
        {"index", required_argument, NULL, 'i'}, {"model", required_argument, NULL, 'm'},
        {"limit", required_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
        {"weights", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *index_dir = NULL, *model_dir = NULL;
    m3_search_options so = m3_search_options_default();
    bool json = false;
    size_t limit = 10;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'i': index_dir = optarg; break;
        case 'm': model_dir = optarg; break;
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
    m3_index_options iopt = {M3_INDEX_READONLY, model_dir ? &mid : NULL};
    if (m3_index_open(index_dir, &iopt, &idx, &err) != M3_STATUS_OK) goto fail;
    if (m3_index_similar(idx, file, &so, &hits, &n_hits, &err) != M3_STATUS_OK) goto fail;
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
