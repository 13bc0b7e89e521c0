// SPDX-License-Identifier: MIT
//
// m3: the command line of m3search. Each command lives in its own cmd-*.c file.
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "extract/docs.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"tokenize", m3_cmd_tokenize, "text (one JSON string per line) to BGE-M3 token ids"},
    {"embed", m3_cmd_embed, "text to dense, sparse and multi-vector embeddings (JSON lines)"},
    {"index", m3_cmd_index, "index files and folders for search (LMDB; skips unchanged files)"},
    {"search", m3_cmd_search, "hybrid search of the index (dense + sparse + multi-vector)"},
    {"extract", m3_cmd_extract, "the text the index sees of a file (PDF, office, e-book, HTML, mail...)"},
    {"similar", m3_cmd_similar, "indexed files similar to a file, from its stored vectors"},
    {"status", m3_cmd_status, "what the index holds"},
    {"check", m3_cmd_check, "verify the index's consistency (exit 0 only when consistent)"},
    {"bench", m3_cmd_bench, "encoder throughput (random BGE-M3 weights); 'bench search': index search latency"},
    {"model", m3_cmd_model, "model download: fetch BGE-M3 (resumable, verified) or reuse the HF cache"},
    {"selftest", m3_cmd_selftest, "check a model against the published BGE-M3 values or reference outputs"},
    {"daemon", m3_cmd_daemon, "the indexer service m3searchd: status, pause, resume, failed, reindex"},
};

static void usage(FILE *out)
{
    fputs("usage: m3 COMMAND [OPTIONS...]\n\n"
          "m3search's command line: BGE-M3 embeddings of text, by meaning, in 100+ languages.\n\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'm3 COMMAND --help' describes a command.\n", out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return M3_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return M3_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        puts("m3 " M3_VERSION);
        return M3_EXIT_OK;
    }
    if (!strcmp(argv[1], "extract-helper")) return m3_cmd_extract_helper(argc - 1, argv + 1);  // internal
    // The document formats' tables: index and similar decide with m3_extract_find (in this process)
    // whether a file is readable and whether its extractor changed; the extraction itself runs in
    // the helper.
    m3_error derr = {0};
    if (m3_docs_register(&derr) != M3_STATUS_OK) {
        fprintf(stderr, "m3: %s\n", derr.message);
        return M3_EXIT_FAILURE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "m3: unknown command '%s' (try 'm3 --help')\n", argv[1]);
    return M3_EXIT_USAGE;
}
