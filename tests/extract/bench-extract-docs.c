// SPDX-License-Identifier: MIT
//
// Not a test: extraction throughput of the document extractors, in-process (the sandbox adds a
// copy through a pipe per file, see bench-extract-sandbox). For each FILE: the best of ROUNDS runs,
// as "FILE extractor bytes text-bytes seconds MB/s". tools/bench-extract.sh runs it next to the
// reference command-line tools (pdftotext, pandoc, zcat).
//     bench-extract-docs [--rounds N] FILE...
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "extract/docs.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int rounds = 5, first = 1;
    if (argc > 2 && !strcmp(argv[1], "--rounds")) rounds = atoi(argv[2]), first = 3;
    if (first >= argc || rounds < 1) {
        fputs("usage: bench-extract-docs [--rounds N] FILE...\n", stderr);
        return 2;
    }
    if (m3_docs_register(NULL) != M3_STATUS_OK) return 1;
    for (int i = first; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        size_t n = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        unsigned char *d = malloc(n + 1);
        if (fread(d, 1, n, f) != n) return 1;
        fclose(f);
        double best = 1e30;
        size_t text = 0;
        const m3_extractor *ex = NULL;
        for (int r = 0; r < rounds; r++) {
            double t0 = now();
            ex = m3_extract_find(argv[i], d, n < 4096 ? n : 4096);
            m3_extracted doc;
            m3_error err = {0};
            if (!ex || ex->extract(d, n, argv[i], &doc, &err) != M3_STATUS_OK) {
                fprintf(stderr, "%s: %s\n", argv[i], ex ? err.message : "no extractor");
                return 1;
            }
            double t = now() - t0;
            text = doc.len;
            m3_extracted_clear(&doc);
            if (t < best) best = t;
        }
        printf("%s %s %zu %zu %.4f %.2f\n", argv[i], ex->name, n, text, best, (double)n / best / 1e6);
        free(d);
    }
    return 0;
}
