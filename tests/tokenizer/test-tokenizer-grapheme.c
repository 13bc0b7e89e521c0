// SPDX-License-Identifier: MIT
//
// The grapheme segmentation against Unicode's conformance file GraphemeBreakTest.txt (given as
// argument): every "÷" must be a boundary, every "×" not.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/grapheme-private.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s GraphemeBreakTest.txt\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    char line[4096];
    int lines = 0, failed = 0;
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        if (!strstr(line, "\xc3\xb7")) continue;  // no ÷: blank or comment
        m3_grapheme_state st;
        m3_grapheme_reset(&st);
        // Tokens alternate: mark (÷ or ×), code point, mark, ..., mark.
        const char *p = line;
        int want_break = -1, bad = 0;
        while (*p) {
            while (*p == ' ' || *p == '\t') p++;
            if (!*p || *p == '\n') break;
            if (strncmp(p, "\xc3\xb7", 2) == 0) {
                want_break = 1;
                p += 2;
            } else if (strncmp(p, "\xc3\x97", 2) == 0) {
                want_break = 0;
                p += 2;
            } else {
                char *end;
                unsigned long cp = strtoul(p, &end, 16);
                if (end == p) {
                    bad = 1;
                    break;
                }
                p = end;
                int got = m3_grapheme_step(&st, m3_grapheme_property((uint32_t)cp));
                if (got != want_break) bad = 1;
            }
        }
        lines++;
        if (bad) {
            failed++;
            fprintf(stderr, "mismatch: %s\n", line);
        }
    }
    fclose(f);
    printf("%d lines, %d failed\n", lines, failed);
    return failed || lines == 0 ? 1 : 0;
}
