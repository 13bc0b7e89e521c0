// SPDX-License-Identifier: MIT
//
// The vocabulary as a double-array trie over bytes (base + label, check = parent), built once at
// load, or borrowed from a model file that stores one (docs/model-file.md) after a check. The
// unigram lattice asks, at every character, for all pieces that start there; a double-array
// answers each step with two loads, which is what makes the tokenizer fast.
//
// Invariants that make lookups safe without bounds tests (the builder makes them true, and
// m3_piece_trie_borrow checks them in one linear pass): 0 <= base <= size - 256 for every unit, so
// base + byte is always an index; the root's check is negative, so no walk re-enters the root.
#ifndef M3_TOKENIZER_PIECE_TRIE_PRIVATE_H
#define M3_TOKENIZER_PIECE_TRIE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct m3_piece_trie_unit {
    int32_t base;   // children of this node live at base + byte
    int32_t check;  // the parent's index; -1 for a free slot
} m3_piece_trie_unit;

typedef struct m3_piece_trie {
    const m3_piece_trie_unit *units;  // units[0] is the root; 256 free slots pad the end
    const int32_t *ids;               // ids[node]: the id of the piece ending at node, -1 for none
    size_t size;
    bool borrowed;                    // units and ids belong to the caller of m3_piece_trie_borrow
} m3_piece_trie;

// Builds the trie of n keys (non-empty byte strings). When a key occurs several times the largest
// id wins, as in the reference's vocabulary map where the later entry replaces the earlier one.
// name is used in errors. Errors: M3_STATUS_NOMEM, M3_STATUS_LIMIT (more than 2^31 nodes).
m3_status m3_piece_trie_build(m3_piece_trie *trie, size_t n, const unsigned char *const *keys,
                              const uint32_t *lens, const int32_t *ids, const char *name,
                              m3_error *err);

// Uses units[0..size) and ids[0..size) in place (borrowed: they must outlive the trie) after checking,
// in one linear pass, what lookups rely on: size >= 257, every base in [0, size - 256], the root's
// check negative, every id in [-1, n_ids) and on one node at most. This makes any walk memory-safe;
// whether the trie maps the right keys is not proven here (see m3_piece_trie_spot_check). Errors:
// M3_STATUS_FORMAT naming `name` and the first bad node, M3_STATUS_NOMEM.
m3_status m3_piece_trie_borrow(m3_piece_trie *trie, const m3_piece_trie_unit *units, const int32_t *ids,
                               size_t size, size_t n_ids, const char *name, m3_error *err);

// Looks up the keys of about n / stride ids (the first 8 and every stride-th; keys[id], lens[id]
// bytes, non-empty) and checks each maps to its id, or to a later id with the same text (the
// largest of several equal texts wins, as m3_piece_trie_build does). A cheap test that a saved trie
// belongs to this vocabulary; it proves nothing about the other keys. Errors: M3_STATUS_FORMAT
// naming `name` and the first key that disagrees.
m3_status m3_piece_trie_spot_check(const m3_piece_trie *trie, size_t n, const unsigned char *const *keys,
                                   const uint32_t *lens, size_t stride, const char *name, m3_error *err);

// Frees a built trie (a borrowed one's arrays are left alone) and zeroes *trie.
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
