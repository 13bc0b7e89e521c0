// SPDX-License-Identifier: MIT
//
// A minimal reader of SentencePiece's ModelProto (sentencepiece_model.proto, proto2), keeping only
// what the XLM-R tokenizer needs:
//     ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
//     SentencePiece   1 piece (string), 2 score (float), 3 type (enum, NORMAL=1 by default)
//     TrainerSpec     3 model_type (UNIGRAM=1 by default), 40 unk_id (0), 41 bos_id (1),
//                     42 eos_id (2), 43 pad_id (-1)
//     NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix (true),
//                     4 remove_extra_whitespaces (true), 5 escape_whitespaces (true)
// Every other field is skipped by wire type. Malformed input gives M3_STATUS_FORMAT; nothing is
// read outside the given bytes.
#ifndef M3_TOKENIZER_SP_MODEL_PRIVATE_H
#define M3_TOKENIZER_SP_MODEL_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct m3_sp_piece {
    const unsigned char *text;  // borrowed from the parsed bytes, not NUL terminated
    uint32_t len;
    float score;
    int32_t type;
} m3_sp_piece;

enum { M3_SP_MODEL_UNIGRAM = 1 };

typedef struct m3_sp_model {
    m3_sp_piece *pieces;  // malloc'd; the texts point into the bytes given to m3_sp_model_parse
    size_t n_pieces;
    int32_t model_type, unk_id, bos_id, eos_id, pad_id;
    const unsigned char *normalizer_name;  // borrowed, may be NULL
    size_t normalizer_name_len;
    const unsigned char *charsmap;  // borrowed, may be NULL
    size_t charsmap_size;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
} m3_sp_model;

// Parses data[0..size). The model borrows data, which must outlive it. name is used in errors.
// Checks the structure only (types, lengths, UTF-8 of the pieces); the caller judges the values.
m3_status m3_sp_model_parse(const unsigned char *data, size_t size, const char *name,
                            m3_sp_model *model, m3_error *err);

void m3_sp_model_destroy(m3_sp_model *model);

#endif
