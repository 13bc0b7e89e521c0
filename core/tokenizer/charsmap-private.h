// SPDX-License-Identifier: MIT
//
// SentencePiece's precompiled charsmap (NormalizerSpec.precompiled_charsmap), as the Hugging Face
// `Precompiled` normalizer applies it. The blob is
//     u32 little-endian trie_size | trie_size bytes of darts-clone units (u32 LE) | string pool
// The trie maps UTF-8 byte sequences to offsets of NUL-terminated replacements in the pool.
#ifndef M3_TOKENIZER_CHARSMAP_PRIVATE_H
#define M3_TOKENIZER_CHARSMAP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "tokenizer/utf8-private.h"

typedef struct m3_charsmap {
    uint32_t *units;          // host-order copy of the darts-clone array; NULL when no charsmap
    size_t n_units;
    char *pool;               // the replacement strings, NUL separated
    size_t pool_size;
    uint8_t *char_start;      // char_start[i]: a UTF-8 character begins at pool[i]
} m3_charsmap;

// Parses and checks the blob (copied). An empty blob gives the identity normalizer. Errors:
// M3_STATUS_FORMAT (naming name), M3_STATUS_NOMEM.
m3_status m3_charsmap_init(m3_charsmap *map, const unsigned char *blob, size_t size, const char *name,
                           m3_error *err);

void m3_charsmap_destroy(m3_charsmap *map);

// The shortest key that is a prefix of key[0..n) (darts common-prefix search, first result, as
// the reference's `transform` takes results[0]); the search stops at a NUL byte. On a match sets
// *rep / *rep_len to the replacement (valid UTF-8, may be empty) and returns true.
bool m3_charsmap_first_match(const m3_charsmap *map, const unsigned char *key, size_t n,
                             const char **rep, size_t *rep_len);

// Appends the normalization of the valid UTF-8 text s[0..n) to out: each extended grapheme
// cluster shorter than 6 bytes that has a matching prefix is replaced as a whole by that prefix's
// replacement; otherwise each character is replaced by its own match or kept. Returns false when
// memory runs out.
bool m3_charsmap_normalize(const m3_charsmap *map, const unsigned char *s, size_t n, m3_bytes *out);

#endif
