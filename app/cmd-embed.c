// SPDX-License-Identifier: MIT
//
// m3 embed --model DIR [--backend cpu] [--precision P] [--max-length N] [--threads N] [--outputs LIST]
// stdin: one JSON string per line; stdout: one JSON object per line:
//   {"tokens": N, "dense": [...], "sparse": {"<id>": w, ...}, "colbert": [[...], ...]}
// Texts are tokenized as they arrive and encoded in batches of up to a token budget, because the
// encoder is much faster on large batches; the output order is the input order.
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "encoder/encoder.h"
#include "model/model.h"

static const char usage_text[] =
    "usage: m3 embed --model DIR [--backend cpu] [--precision P] [--max-length N] [--threads N]\n"
    "                [--outputs LIST]\n\n"
    "Reads one JSON string per line on standard input and writes one JSON object per line:\n"
    "  {\"tokens\": N, \"dense\": [...], \"sparse\": {\"<id>\": weight, ...}, \"colbert\": [[...], ...]}\n\n"
    "  --model DIR        the model folder (Hugging Face layout of BAAI/bge-m3)\n"
    "  --backend NAME     cpu (default), vulkan, or auto (vulkan on a GPU, else cpu)\n"
    M3_CLI_PRECISION_HELP
    "  --max-length N     truncate each text to N tokens, <s> and </s> included (default 8192)\n"
    "  --threads N        worker threads (default: one per CPU)\n"
    "  --outputs LIST     comma-separated subset of dense,sparse,colbert (default: all three)\n"
    "  --batch-tokens N   token budget of one encoder batch (default 16384)\n";

enum { MAX_BATCH_TEXTS = 256 };

typedef struct batch {
    m3_sequence seqs[MAX_BATCH_TEXTS];
    int32_t *ids[MAX_BATCH_TEXTS];
    m3_embedding out[MAX_BATCH_TEXTS];
    size_t n;
    size_t tokens;
} batch;

static bool parse_outputs(const char *list, unsigned *outputs)
{
    *outputs = 0;
    char *copy = strdup(list), *save = NULL;
    if (!copy) return false;
    bool ok = true;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (!strcmp(item, "dense")) *outputs |= M3_OUTPUT_DENSE;
        else if (!strcmp(item, "sparse")) *outputs |= M3_OUTPUT_SPARSE;
        else if (!strcmp(item, "colbert")) *outputs |= M3_OUTPUT_COLBERT;
        else ok = false;
    }
    free(copy);
    return ok && *outputs;
}

static void print_embedding(const m3_embedding *e, unsigned outputs)
{
    printf("{\"tokens\": %zu", e->tokens);
    if (outputs & M3_OUTPUT_DENSE) {
        fputs(", \"dense\": [", stdout);
        for (size_t i = 0; i < e->dim; i++) {
            if (i) fputs(", ", stdout);
            m3_cli_put_float(stdout, e->dense[i]);
        }
        putchar(']');
    }
    if (outputs & M3_OUTPUT_SPARSE) {
        fputs(", \"sparse\": {", stdout);
        for (size_t i = 0; i < e->n_sparse; i++) {
            printf(i ? ", \"%" PRId32 "\": " : "\"%" PRId32 "\": ", e->sparse[i].id);
            m3_cli_put_float(stdout, e->sparse[i].weight);
        }
        putchar('}');
    }
    if (outputs & M3_OUTPUT_COLBERT) {
        fputs(", \"colbert\": [", stdout);
        for (size_t v = 0; v < e->n_colbert; v++) {
            fputs(v ? ", [" : "[", stdout);
            for (size_t i = 0; i < e->dim; i++) {
                if (i) fputs(", ", stdout);
                m3_cli_put_float(stdout, e->colbert[v * e->dim + i]);
            }
            putchar(']');
        }
        putchar(']');
    }
    fputs("}\n", stdout);
}

// Encodes and prints the batch, then empties it.
static m3_status flush_batch(m3_encoder *enc, batch *b, unsigned outputs, m3_error *err)
{
    m3_status s = M3_STATUS_OK;
    if (b->n) s = m3_encoder_encode(enc, b->seqs, b->n, outputs, b->out, err);
    for (size_t i = 0; i < b->n; i++) {
        if (s == M3_STATUS_OK) {
            print_embedding(&b->out[i], outputs);
            m3_embedding_clear(&b->out[i]);
        }
        free(b->ids[i]);
    }
    b->n = 0;
    b->tokens = 0;
    return s;
}

int m3_cmd_embed(int argc, char **argv)
{
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},
        {"backend", required_argument, NULL, 'b'},
        {"precision", required_argument, NULL, 'p'},
        {"max-length", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'},
        {"outputs", required_argument, NULL, 'o'},
        {"batch-tokens", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *model_dir = NULL;
    m3_encoder_options opt = m3_encoder_options_default();
    opt.precision = M3_PRECISION_AUTO;
    size_t max_length = 8192, threads = 0, batch_tokens = 16384;
    unsigned outputs = M3_OUTPUT_ALL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'b': opt.backend = optarg; break;
        case 'p':
            if (!m3_cli_parse_precision("embed", optarg, &opt)) return M3_EXIT_USAGE;
            break;
        case 'l':
            if (!m3_cli_parse_size("embed", "--max-length", optarg, 2, 1u << 30, &max_length)) return M3_EXIT_USAGE;
            break;
        case 't':
            if (!m3_cli_parse_size("embed", "--threads", optarg, 1, 1024, &threads)) return M3_EXIT_USAGE;
            break;
        case 'B':
            if (!m3_cli_parse_size("embed", "--batch-tokens", optarg, 1, 1u << 24, &batch_tokens)) return M3_EXIT_USAGE;
            break;
        case 'o':
            if (!parse_outputs(optarg, &outputs)) {
                m3_cli_fail("embed", "--outputs: expected a comma-separated list of dense, sparse, colbert");
                return M3_EXIT_USAGE;
            }
            break;
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (!model_dir || optind != argc) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    opt.threads = (int)threads;

    m3_error err = {0};
    m3_model *model;
    if (m3_model_open(model_dir, &model, &err) != M3_STATUS_OK) return m3_cli_fail_error("embed", &err);
    // The model's position table bounds the input: 8194 rows, positions from 2, so 8192 tokens.
    const m3_model_config *cfg = m3_model_get_config(model);
    size_t model_max = (size_t)(cfg->max_positions - cfg->pad_token_id - 1);
    if (max_length > model_max) max_length = model_max;
    m3_encoder *enc;
    if (m3_encoder_new(model, &opt, &enc, &err) != M3_STATUS_OK) {
        m3_model_close(model);
        return m3_cli_fail_error("embed", &err);
    }
    const m3_tokenizer *tok = m3_model_get_tokenizer(model);

    batch *b = calloc(1, sizeof *b);
    int status = b ? M3_EXIT_OK : m3_cli_fail("embed", "out of memory");
    size_t line_no = 0;
    while (b) {
        char *text;
        size_t len;
        int r = m3_cli_read_json_string(stdin, &line_no, &text, &len, &err);
        if (r < 0) status = m3_cli_fail_error("embed", &err);
        if (r <= 0) break;
        int32_t *ids;
        size_t n;
        m3_status s = m3_tokenizer_encode(tok, text, len, max_length, &ids, &n, &err);
        free(text);
        if (s != M3_STATUS_OK) {
            status = m3_cli_fail("embed", "standard input line %zu: %s", line_no, err.message);
            break;
        }
        if (b->n && (b->n == MAX_BATCH_TEXTS || b->tokens + n > batch_tokens) &&
            flush_batch(enc, b, outputs, &err) != M3_STATUS_OK) {
            free(ids);
            status = m3_cli_fail_error("embed", &err);
            break;
        }
        b->ids[b->n] = ids;
        b->seqs[b->n] = (m3_sequence){ids, n};
        b->n++;
        b->tokens += n;
    }
    if (b && status == M3_EXIT_OK && flush_batch(enc, b, outputs, &err) != M3_STATUS_OK)
        status = m3_cli_fail_error("embed", &err);
    if (b)
        for (size_t i = 0; i < b->n; i++) free(b->ids[i]);
    free(b);
    m3_encoder_free(enc);
    m3_model_close(model);
    if (fflush(stdout) != 0 || ferror(stdout)) status = m3_cli_fail("embed", "cannot write standard output");
    return status;
}
