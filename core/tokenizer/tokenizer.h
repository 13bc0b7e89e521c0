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

// NULL is a no-op.
void m3_tokenizer_free(m3_tokenizer *tok);

#endif
