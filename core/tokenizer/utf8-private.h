// SPDX-License-Identifier: MIT
//
// UTF-8 helpers shared by the tokenizer's files. Decoding is strict (no overlong forms, no
// surrogates, nothing above U+10FFFF) because the reference works on Python strings: every text
// that reaches the normalizer has been made valid first (m3_utf8_repair).
#ifndef M3_TOKENIZER_UTF8_PRIVATE_H
#define M3_TOKENIZER_UTF8_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Length of the valid UTF-8 sequence at s[0..n), 0 when it is invalid or truncated.
// Writes the code point to *cp when valid.
static inline size_t m3_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xc2) return 0;
    if (c < 0xe0) {
        if (n < 2 || (s[1] & 0xc0) != 0x80) return 0;
        *cp = ((c & 0x1fu) << 6) | (s[1] & 0x3fu);
        return 2;
    }
    if (c < 0xf0) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
        uint32_t v = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
        if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff)) return 0;
        *cp = v;
        return 3;
    }
    if (c < 0xf5) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        uint32_t v = ((c & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) |
                     (s[3] & 0x3fu);
        if (v < 0x10000 || v > 0x10ffff) return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

// Length of the sequence that starts with lead byte c, in text already known to be valid.
static inline size_t m3_utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

// True when s[0..n) is entirely valid UTF-8.
bool m3_utf8_valid(const unsigned char *s, size_t n);

// Unicode White_Space (Rust's char::is_whitespace, which the reference's Strip and lstrip use).
static inline bool m3_unicode_is_white_space(uint32_t cp)
{
    if (cp < 0x80) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0d);
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

// A growable byte buffer. On allocation failure the buffer keeps its old content, returns false.
typedef struct m3_bytes {
    unsigned char *data;
    size_t len, cap;
} m3_bytes;

bool m3_bytes_reserve(m3_bytes *b, size_t extra);

static inline bool m3_bytes_append(m3_bytes *b, const void *p, size_t n)
{
    if (b->cap - b->len < n && !m3_bytes_reserve(b, n)) return false;
    for (size_t i = 0; i < n; i++) b->data[b->len + i] = ((const unsigned char *)p)[i];
    b->len += n;
    return true;
}

#endif
