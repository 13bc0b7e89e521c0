// SPDX-License-Identifier: MIT
//
// Between tokenizer.c and tokenizer-pieces.c: loading a SentencePiece model with a saved piece trie.
#ifndef M3_TOKENIZER_TOKENIZER_PRIVATE_H
#define M3_TOKENIZER_TOKENIZER_PRIVATE_H

#include "tokenizer/tokenizer.h"

// m3_tokenizer_load, using *trie (when trie && trie->size) as m3_tokenizer_new_from_pieces describes:
// checked, borrowed, or logged and rebuilt.
m3_status m3_tokenizer_load_with_trie(const void *data, size_t size, const char *name,
                                      const m3_tokenizer_trie *trie, m3_tokenizer **out, m3_error *err);

#endif
