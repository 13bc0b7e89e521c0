// SPDX-License-Identifier: MIT
#include "tokenizer/utf8-private.h"

#include <stdlib.h>

bool m3_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        // Eight ASCII bytes at a time: most text is mostly ASCII.
        while (i + 8 <= n) {
            uint64_t w = 0;
            for (int k = 0; k < 8; k++) w |= (uint64_t)s[i + k] << (8 * k);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = m3_utf8_decode(s + i, n - i, &cp);
        if (l == 0) return false;
        i += l;
    }
    return true;
}

bool m3_bytes_reserve(m3_bytes *b, size_t extra)
{
    if (b->cap - b->len >= extra) return true;
    if (extra > SIZE_MAX / 2 - b->len) return false;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap - b->len < extra) ncap *= 2;
    unsigned char *p = realloc(b->data, ncap);
    if (!p) return false;
    b->data = p;
    b->cap = ncap;
    return true;
}
