// SPDX-License-Identifier: MIT
//
// The vocabulary as a double-array trie over bytes (base + label, check = parent), built once at
// load. The unigram lattice asks, at every character, for all pieces that start there; a
// double-array answers each step with two loads, which is what makes the tokenizer fast.
#ifndef M3_TOKENIZER_PIECE_TRIE_PRIVATE_H
#define M3_TOKENIZER_PIECE_TRIE_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct m3_piece_trie_unit {
    int32_t base;   // children of this node live at base + byte
    int32_t check;  // the parent's index; -1 for a free slot
} m3_piece_trie_unit;

typedef struct m3_piece_trie {
    m3_piece_trie_unit *units;  // units[0] is the root; 256 free slots pad the end
    int32_t *ids;               // ids[node]: the id of the piece ending at node, -1 for none
    size_t size;
} m3_piece_trie;

// Builds the trie of n keys (non-empty byte strings). When a key occurs several times the largest
// id wins, as in the reference's vocabulary map where the later entry replaces the earlier one.
// name is used in errors. Errors: M3_STATUS_NOMEM, M3_STATUS_LIMIT (more than 2^31 nodes).
m3_status m3_piece_trie_build(m3_piece_trie *trie, size_t n, const unsigned char *const *keys,
                              const uint32_t *lens, const int32_t *ids, const char *name,
                              m3_error *err);

void m3_piece_trie_destroy(m3_piece_trie *trie);

// One step from node by byte c: the child's index, or -1.
static inline int32_t m3_piece_trie_next(const m3_piece_trie *trie, int32_t node, unsigned char c)
{
    int32_t t = trie->units[node].base + c;
    return trie->units[t].check == node ? t : -1;
}

// The id of the piece equal to s[0..n), or -1.
int32_t m3_piece_trie_find(const m3_piece_trie *trie, const unsigned char *s, size_t n);

#endif
