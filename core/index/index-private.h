// SPDX-License-Identifier: MIT
//
// Inside the index: the LMDB handles and the binary formats shared by index.c, search.c and
// check.c. Every value read from the map is length-checked before use: a damaged index must give
// M3_STATUS_FORMAT, never a crash. All integers in keys are big-endian (so that LMDB's byte order
// is numeric order); integers and floats in values are little-endian native (x86-64, arm64).
#ifndef M3_INDEX_PRIVATE_H
#define M3_INDEX_PRIVATE_H

#include <lmdb.h>
#include <string.h>

#include "index/index.h"

enum {
    BITS_BLOCK = 1024,          // chunks per block of sign codes
    BITS_LIVE_BYTES = BITS_BLOCK / 8,
    POSTING_BLOCK = 128,        // postings per block of a term's inverted list
    // A ColBERT value: u32 n (vectors), u32 kind [| COLBERT_POOLED: u32 t (tokens), u16 row of each
    // token, zero-padded to 4 bytes], then n rows of the kind.
    COLBERT_INT8 = 0,           // row: f32 scale + int8[dim]
    COLBERT_F32 = 1,            // row: f32[dim]
    COLBERT_BITS = 2,           // row: sign bits of the rotated vector, (dim + 7) / 8 bytes
    COLBERT_NONE = 0xff,        // the index keeps no ColBERT values (not a value kind)
    COLBERT_POOLED = 0x100,
    COLBERT_MAX_ROWS = 1 << 20,
};

struct m3_index {
    MDB_env *env;
    MDB_dbi meta, files, fileids, chunks, text, dense, bits, post, fwd, colbert;
    MDB_dbi location;           // chunk id → place ("page 12"); optional table (see has_location)
    bool has_location;          // false for an index written before places existed, opened read-only
    char *dir;
    m3_index_model model;
    bool exact, readonly;
    size_t dim, code_bytes;     // code_bytes = dim / 8 rounded up
    size_t dense_bytes;         // one dense value
    m3_colbert_storage colbert_storage;  // how ColBERT vectors are kept (meta "colbert"), never DEFAULT
    uint32_t colbert_kind;      // the value kind (COLBERT_*), COLBERT_NONE for M3_COLBERT_NONE
    unsigned colbert_pool;      // 1, or 2: token vectors pooled ×2 (meta "colbert_pool")
    float *colbert_signs;       // sign bits: the rotation's fixed ±1 per dimension (colbert.c)
};

// A parsed ColBERT value (pointers into the map: valid while the read transaction lives).
typedef struct colbert_view {
    uint32_t kind;              // COLBERT_INT8 / F32 / BITS
    uint32_t n;                 // stored vectors
    uint32_t tokens;            // token positions (n unless pooled)
    const unsigned char *map;   // pooled: u16 row of each token (unaligned); NULL otherwise
    const unsigned char *rows;
    size_t row_bytes;
} colbert_view;

// colbert.c: the value for a chunk's n unit token vectors (pooled and quantised as the index says);
// *value is malloc'd.
m3_status m3_index_colbert_encode(const m3_index *idx, const float *rows, size_t n, void **value, size_t *len,
                                  m3_error *err);
// Validates a value (length, kind and pooling = the index's, token map in range); false when damaged.
bool m3_index_colbert_parse(const m3_index *idx, const MDB_val *v, colbert_view *out);
size_t m3_index_colbert_row_bytes(uint32_t kind, size_t dim);
// The rotation's signs for dim dimensions (malloc'd; NULL when out of memory).
float *m3_index_colbert_signs(size_t dim);
// The stored row r dequantised into dst[dim] (sign bits: rotated back; not unit length).
void m3_index_colbert_decode(const m3_index *idx, const colbert_view *v, size_t r, float *dst);
// The row holding token position t (0 = the first token after <s>).
uint32_t m3_index_colbert_row_of(const colbert_view *v, uint32_t t);

// MaxSim of one query against stored values: prepared once per query (lookup tables for sign bits),
// used by one thread at a time, borrowing q's vectors until freed.
typedef struct colbert_scorer colbert_scorer;
m3_status m3_index_colbert_scorer_new(const m3_index *idx, const m3_embedding *q, colbert_scorer **out,
                                      m3_error *err);
// *score = mean over query vectors of the best row's score; best_row / best_val (when non-NULL)
// receive, per query vector, that row and its score. False when out of memory.
bool m3_index_colbert_score(colbert_scorer *s, const colbert_view *v, float *score, uint32_t *best_row,
                            float *best_val);
void m3_index_colbert_scorer_free(colbert_scorer *s);
// The chunk's ColBERT value, parsed (M3_STATUS_FORMAT when missing or damaged).
m3_status m3_index_read_colbert(m3_index *idx, MDB_txn *txn, uint32_t id, colbert_view *out, m3_error *err);

typedef struct chunk_rec {
    uint32_t file_id, tokens;
    uint64_t start, end;
} chunk_rec;

static inline void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// Posting block value: u16 count, u16 0, f32 max, u32 ids[count], u8 q[count]; weight ≈ q/255·max.
typedef struct posting_block {
    uint32_t count;
    float max;
    const unsigned char *ids;   // count × u32 (unaligned)
    const unsigned char *q;
} posting_block;

static inline bool posting_block_parse(const MDB_val *v, posting_block *b)
{
    if (v->mv_size < 8) return false;
    const unsigned char *p = v->mv_data;
    uint16_t count;
    memcpy(&count, p, 2);
    memcpy(&b->max, p + 4, 4);
    if (count == 0 || count > POSTING_BLOCK || v->mv_size != 8 + (size_t)count * 5 || !(b->max > 0))
        return false;
    b->count = count;
    b->ids = p + 8;
    b->q = p + 8 + (size_t)count * 4;
    return true;
}

static inline uint32_t posting_id(const posting_block *b, size_t i)
{
    uint32_t id;
    memcpy(&id, b->ids + 4 * i, 4);
    return id;
}

// Maps an LMDB (or errno) code to a status with a message naming the index.
m3_status m3_index_mdb_error(const m3_index *idx, int rc, const char *what, m3_error *err);

// A read transaction (handles MDB_MAP_RESIZED from another process's growth).
int m3_index_begin_read(m3_index *idx, MDB_txn **txn);

m3_status m3_index_read_chunk(m3_index *idx, MDB_txn *txn, uint32_t id, chunk_rec *out, m3_error *err);
m3_status m3_index_read_embedding(m3_index *idx, MDB_txn *txn, uint32_t id, unsigned what,
                                  m3_embedding *out, m3_error *err);
m3_status m3_index_read_text(m3_index *idx, MDB_txn *txn, uint32_t id, char **text, size_t *len,
                             m3_error *err);
// The chunk's place into buf (NUL-terminated); false when it has none (or the index predates places).
bool m3_index_read_location(m3_index *idx, MDB_txn *txn, uint32_t id, char *buf, size_t cap);
m3_status m3_index_read_path(m3_index *idx, MDB_txn *txn, uint32_t file_id, char **path, m3_error *err);
m3_status m3_index_read_file(m3_index *idx, MDB_txn *txn, const char *path, m3_index_file *out,
                             m3_error *err);

static inline void key_be32(MDB_val *k, unsigned char buf[4], uint32_t v)
{
    put_be32(buf, v);
    k->mv_data = buf;
    k->mv_size = 4;
}

#endif
