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
    COLBERT_INT8 = 0,
    COLBERT_F32 = 1,
};

struct m3_index {
    MDB_env *env;
    MDB_dbi meta, files, fileids, chunks, text, dense, bits, post, fwd, colbert;
    char *dir;
    m3_index_model model;
    bool exact, readonly;
    size_t dim, code_bytes;     // code_bytes = dim / 8 rounded up
    size_t dense_bytes;         // one dense value
};

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
