// SPDX-License-Identifier: MIT
#include "passage.h"

#include <string.h>

#define ELLIPSIS "\xe2\x80\xa6"  // U+2026, what the service puts where a chunk is cut

// What the snippet's builder turned into a space between or inside words.
static gboolean is_gap(unsigned char c) {
    return c <= 0x20 || c == 0x7f;
}

// The length of text[from, len) that the core (single spaces) matches, or 0.
static gsize match_at(const char *text, gsize len, gsize from, const char *core, gsize n) {
    gsize j = from;
    for (gsize i = 0; i < n; i++) {
        if (core[i] == ' ') {
            if (j >= len || !is_gap((unsigned char)text[j]))
                return 0;
            while (j < len && is_gap((unsigned char)text[j]))
                j++;
        } else if (j >= len || text[j++] != core[i]) {
            return 0;
        }
    }
    return j - from;
}

gboolean m3_passage_find(const char *text, gsize len, const char *snippet, m3_passage *p) {
    gsize a = 0, b = strlen(snippet), el = strlen(ELLIPSIS);
    if (b - a >= el && !memcmp(snippet, ELLIPSIS, el))
        a += el;
    if (b - a >= el && !memcmp(snippet + b - el, ELLIPSIS, el))
        b -= el;
    while (a < b && snippet[a] == ' ')
        a++;
    while (b > a && snippet[b - 1] == ' ')
        b--;
    if (a == b)
        return FALSE;
    const char *core = snippet + a;
    gsize n = b - a, first = 0;
    while (first < n && core[first] != ' ')
        first++;
    // Candidates: each place the first word occurs, checked word by word from there.
    for (const char *s = text; s && (gsize)(s - text) + first <= len;) {
        s = memmem(s, len - (gsize)(s - text), core, first);
        if (!s)
            break;
        gsize at = (gsize)(s - text), m = match_at(text, len, at, core, n);
        if (m) {
            *p = (m3_passage){.at = at, .end = at + m, .snip_at = a, .snip_end = b};
            return TRUE;
        }
        s++;
    }
    return FALSE;
}
