// SPDX-License-Identifier: MIT
//
// Tokenizer throughput: encodes every line of a text file (one thread, no truncation) and writes
// the ids of each line as one line of space-separated numbers, the way `spm_encode
// --output_format=id` does, so that tools/bench-tokenizer.sh can time and compare both.
//
//     bench-tokenizer MODEL INPUT [OUTPUT]
//
// Prints the input size, the encoding time (reading and writing excluded) and MB/s to stderr.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL INPUT [OUTPUT]\n", argv[0]);
        return 2;
    }
    m3_error err = {0};
    double t0 = now();
    m3_tokenizer *tok;
    if (m3_tokenizer_open(argv[1], &tok, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double t_load = now() - t0;
    FILE *in = fopen(argv[2], "rb");
    if (!in) {
        perror(argv[2]);
        return 1;
    }
    FILE *out = argc > 3 ? fopen(argv[3], "w") : NULL;
    if (argc > 3 && !out) {
        perror(argv[3]);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, bytes = 0, lines = 0, tokens = 0;
    ssize_t got;
    double t_encode = 0;
    while ((got = getline(&line, &cap, in)) > 0) {
        size_t len = (size_t)got;
        if (line[len - 1] == '\n') len--;
        int32_t *ids;
        size_t n;
        double t = now();
        if (m3_tokenizer_encode(tok, line, len, SIZE_MAX, &ids, &n, &err) != M3_STATUS_OK) {
            fprintf(stderr, "line %zu: %s\n", lines + 1, err.message);
            return 1;
        }
        t_encode += now() - t;
        bytes += len;
        lines++;
        tokens += n;
        if (out) {
            for (size_t i = 0; i < n; i++) fprintf(out, i ? " %d" : "%d", ids[i]);
            fputc('\n', out);
        }
        free(ids);
    }
    free(line);
    fclose(in);
    if (out) fclose(out);
    m3_tokenizer_free(tok);
    fprintf(stderr, "m3 tokenizer: %zu lines, %.2f MB, %zu ids, load %.3f s, encode %.3f s, %.2f MB/s\n",
            lines, (double)bytes / 1e6, tokens, t_load, t_encode, (double)bytes / 1e6 / t_encode);
    return 0;
}
