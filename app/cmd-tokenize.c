// SPDX-License-Identifier: MIT
//
// m3 tokenize --model DIR|FILE [--max-length N]
// stdin: one JSON string per line; stdout: one JSON array of ids per line.
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cli.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static const char usage_text[] =
    "usage: m3 tokenize --model DIR|FILE [--max-length N]\n\n"
    "Reads one JSON string per line on standard input and writes the BGE-M3 token ids of each\n"
    "(<s> ... </s>) as one JSON array per line.\n\n"
    "  --model DIR|FILE  the model folder (its sentencepiece.bpe.model is used) or a model file\n"
    "                    made by `m3 model convert`\n"
    "  --max-length N    keep at most N ids per text, <s> and </s> included (default 8192)\n";

int m3_cmd_tokenize(int argc, char **argv)
{
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},
        {"max-length", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *model_dir = NULL;
    size_t max_length = 8192;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'l':
            if (!m3_cli_parse_size("tokenize", "--max-length", optarg, 2, 1u << 30, &max_length))
                return M3_EXIT_USAGE;
            break;
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (!model_dir || optind != argc) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }

    m3_error err = {0};
    m3_tokenizer *tok = NULL;
    m3_model *model = NULL;
    struct stat sb;
    if (stat(model_dir, &sb) == 0 && S_ISREG(sb.st_mode)) {
        // A model file carries the tokenizer; opening it maps the weights without reading them.
        if (m3_model_open(model_dir, &model, &err) != M3_STATUS_OK) return m3_cli_fail_error("tokenize", &err);
    } else {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/sentencepiece.bpe.model", model_dir) >= (int)sizeof path)
            return m3_cli_fail("tokenize", "%s: path too long", model_dir);
        if (m3_tokenizer_open(path, &tok, &err) != M3_STATUS_OK) return m3_cli_fail_error("tokenize", &err);
    }
    const m3_tokenizer *use = model ? m3_model_get_tokenizer(model) : tok;

    int status = M3_EXIT_OK;
    size_t line_no = 0;
    for (;;) {
        char *text;
        size_t len;
        int r = m3_cli_read_json_string(stdin, &line_no, &text, &len, &err);
        if (r == 0) break;
        if (r < 0) {
            status = m3_cli_fail_error("tokenize", &err);
            break;
        }
        int32_t *ids;
        size_t n;
        m3_status s = m3_tokenizer_encode(use, text, len, max_length, &ids, &n, &err);
        free(text);
        if (s != M3_STATUS_OK) {
            status = m3_cli_fail("tokenize", "standard input line %zu: %s", line_no, err.message);
            break;
        }
        putchar('[');
        for (size_t i = 0; i < n; i++) printf(i ? ", %" PRId32 : "%" PRId32, ids[i]);
        fputs("]\n", stdout);
        free(ids);
    }
    m3_tokenizer_free(tok);
    m3_model_close(model);
    if (fflush(stdout) != 0 || ferror(stdout)) status = m3_cli_fail("tokenize", "cannot write standard output");
    return status;
}
