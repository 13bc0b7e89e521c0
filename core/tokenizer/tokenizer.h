// SPDX-License-Identifier: MIT
//
// The XLM-RoBERTa tokenizer of BGE-M3: SentencePiece unigram, exact to the Hugging Face fast
// tokenizer id for id (see docs/ARCHITECTURE.md and the model notes in docs/).
//
//     m3_tokenizer *tok;
//     if (m3_tokenizer_open(dir "/sentencepiece.bpe.model", &tok, &err) != M3_STATUS_OK) ...
//     int32_t *ids; size_t n;
//     m3_tokenizer_encode(tok, text, strlen(text), 8192, &ids, &n, &err);  // <s> ... </s>
//     free(ids);
//     m3_tokenizer_free(tok);
//
// Ids follow the HF/XLM-R convention: <s>=0 <pad>=1 </s>=2 <unk>=3, piece ids = SentencePiece id
// + 1, <mask> = number of pieces + 1 (250001 for the real model).
//
// Threads: a tokenizer is immutable after loading; any number of threads may encode with it at once.
#ifndef M3_TOKENIZER_TOKENIZER_H
#define M3_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct m3_tokenizer m3_tokenizer;

enum {
    M3_TOKEN_BOS = 0,  // <s>
    M3_TOKEN_PAD = 1,  // <pad>
    M3_TOKEN_EOS = 2,  // </s>
    M3_TOKEN_UNK = 3,  // <unk>
};

// Loads a SentencePiece model file (the protobuf `sentencepiece.bpe.model`). Errors name the file:
// M3_STATUS_IO, M3_STATUS_FORMAT (malformed protobuf, not a unigram model, bad charsmap...),
// M3_STATUS_NOMEM.
m3_status m3_tokenizer_open(const char *path, m3_tokenizer **out, m3_error *err);

// Same from bytes in memory (copied as needed; data may be freed after the call). name is used in
// error messages.
m3_status m3_tokenizer_load(const void *data, size_t size, const char *name, m3_tokenizer **out,
                            m3_error *err);

// Tokenizes len bytes of UTF-8 text (invalid sequences are handled as the reference does: each bad
// byte becomes U+FFFD) into <s> pieces... </s>, keeping at most max_length ids in all (the first
// max_length - 2 pieces; max_length must be >= 2). *ids is malloc'd and owned by the caller.
m3_status m3_tokenizer_encode(const m3_tokenizer *tok, const char *text, size_t len, size_t max_length,
                              int32_t **ids, size_t *n_ids, m3_error *err);

// The number of ids (vocabulary size, 250002 for BGE-M3).
size_t m3_tokenizer_vocab_size(const m3_tokenizer *tok);

// The piece text of an id (UTF-8, with U+2581 for spaces), or NULL when out of range. Borrowed,
// valid until m3_tokenizer_free.
const char *m3_tokenizer_piece(const m3_tokenizer *tok, int32_t id);

// ---- The vocabulary as plain data (model files that carry it outside the protobuf) ----------
//
// A GGUF model file (docs/model-file.md) stores the tokenizer as arrays: one entry per id in HF
// order (<s> <pad> </s> <unk>, the SentencePiece pieces from its id 3 on, <mask>), with the
// SentencePiece score and type of each, the precompiled charsmap and the normalizer flags. These
// functions convert between that form and a SentencePiece model; a tokenizer built from the
// arrays of a model gives the same ids as one loaded from the model itself (the arrays are
// turned back into the same ModelProto fields and go through m3_tokenizer_load).
//
//     m3_tokenizer_pieces p;
//     m3_tokenizer_pieces_read(spm_bytes, spm_size, "sentencepiece.bpe.model", &p, &err);
//     ... write p.texts / p.lens / p.scores / p.types / p.charsmap ...
//     m3_tokenizer_pieces_clear(&p);
//     m3_tokenizer_new_from_pieces(&arrays_read_back, "model.gguf", &tok, &err);
// The tokenizer's piece trie (a double array over the bytes of the piece texts) as plain arrays, so
// that a model file can store it and a later load need not rebuild it (0.6-1 s for 250002 ids; see
// docs/model-file.md, key m3.tokenizer.piece_trie). Host byte order (little-endian, as the files).
typedef struct m3_tokenizer_trie {
    const int32_t *units;  // [2 * size]: base, check of each node
    const int32_t *ids;    // [size]: the id of the piece ending at each node, -1 for none
    size_t size;           // number of nodes; 0: no trie
} m3_tokenizer_trie;

typedef struct m3_tokenizer_pieces {
    size_t n;                        // number of ids (250002 for BGE-M3), at least 5
    const char *const *texts;        // [n] UTF-8 texts by id, not NUL terminated, U+2581 for spaces
    const uint32_t *lens;            // [n] their lengths in bytes
    const float *scores;             // [n] SentencePiece scores (0 for <pad> and <mask>)
    const int32_t *types;            // [n] SentencePiece types: 1 normal, 2 unknown, 3 control,
                                     //     4 user defined, 5 unused, 6 byte
    const void *charsmap;            // NormalizerSpec.precompiled_charsmap; NULL when size is 0
    size_t charsmap_size;
    int add_dummy_prefix;            // NormalizerSpec flags (0 or 1)
    int remove_extra_whitespaces;
    int escape_whitespaces;
    m3_tokenizer_trie trie;          // optional, read by m3_tokenizer_new_from_pieces only: a trie
                                     // saved from a tokenizer of this vocabulary (m3_tokenizer_get_trie),
                                     // used in place of building one; borrowed until m3_tokenizer_free
    void *storage;                   // owned memory when filled by m3_tokenizer_pieces_read, else NULL
} m3_tokenizer_pieces;

// Reads the vocabulary of a SentencePiece model (the bytes of sentencepiece.bpe.model) into *out,
// in HF id order. The model must be one m3_tokenizer_load accepts (same errors). *out owns its
// memory (release it with m3_tokenizer_pieces_clear); data may be freed after the call.
m3_status m3_tokenizer_pieces_read(const void *data, size_t size, const char *name,
                                   m3_tokenizer_pieces *out, m3_error *err);

// Frees what m3_tokenizer_pieces_read allocated and zeroes *p. A zeroed struct is a no-op.
void m3_tokenizer_pieces_clear(m3_tokenizer_pieces *p);

// Builds a tokenizer from the arrays (borrowed; they may be freed after the call, except
// pieces->trie). Ids 1 and n-1 must be "<pad>" and "<mask>" (the texts the tokenizer matches
// literally), every text non-empty UTF-8, every type 1..6. name is used in error messages. Errors:
// M3_STATUS_FORMAT, M3_STATUS_LIMIT, M3_STATUS_NOMEM, and those of m3_tokenizer_load.
//
// pieces->trie, when given, is used in place (zero-copy; it must stay valid and unchanged until
// m3_tokenizer_free) after two checks: one linear pass proves that every lookup stays inside the
// arrays (so no trie, however damaged, makes the tokenizer read out of bounds), and the texts of
// about 1 id in 61 are looked up (a trie of another vocabulary fails). A trie that fails either is
// not an error: it is logged (M3_LOG_WARN, naming `name` and the reason) and a trie is built
// instead. The caller vouches that the trie was saved from a tokenizer of exactly these texts
// (a model file checks a SHA-256 over both): an in-bounds trie that maps other keys gives other ids.
m3_status m3_tokenizer_new_from_pieces(const m3_tokenizer_pieces *pieces, const char *name,
                                       m3_tokenizer **out, m3_error *err);

// The piece trie of tok, to store with its vocabulary (m3_tokenizer_pieces.trie). Borrowed, valid
// until m3_tokenizer_free. When tok uses a trie given to m3_tokenizer_new_from_pieces, these are
// that trie's pointers.
m3_tokenizer_trie m3_tokenizer_get_trie(const m3_tokenizer *tok);

// NULL is a no-op.
void m3_tokenizer_free(m3_tokenizer *tok);

#endif
