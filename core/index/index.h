// SPDX-License-Identifier: MIT
//
// The index: an LMDB environment holding, for every indexed file, its chunks, their text (zstd) and
// BGE-M3's three representations, and the hybrid search over them. See docs/index.md for the layout.
//
//     m3_index_model model;
//     m3_index_model_identify("/path/to/bge-m3", &model, &err);
//     m3_index_options opt = {.flags = M3_INDEX_CREATE, .model = &model};
//     m3_index *idx;
//     if (m3_index_open(dir, &opt, &idx, &err) != M3_STATUS_OK) ...
//     m3_index_writer *w;
//     m3_index_writer_new(idx, &w, &err);
//     m3_index_writer_put_file(w, path, &info, chunks, n_chunks, &err);   // buffered
//     m3_index_writer_commit(w, &err);                                   // one transaction
//     m3_index_writer_free(w);
//     m3_index_search(idx, &query_embedding, &search_options, &hits, &n_hits, &err);
//     m3_search_hits_free(hits, n_hits);
//     m3_index_close(idx);
//
// Teardown: writers and hits first, then the index.
// Threads: one m3_index per process (LMDB's rule: one environment per process). Searches and reads
// may run from any thread at once (each uses its own short read transaction); there is one writer
// at a time, and readers never wait for it.
// Errors: LMDB codes are mapped here (err->code holds the MDB or errno code); a damaged index is an
// M3_STATUS_FORMAT error that says to rebuild it (the index is a cache of the user's files).
#ifndef M3_INDEX_INDEX_H
#define M3_INDEX_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "encoder/encoder.h"
#include "tokenizer/tokenizer.h"

typedef struct m3_index m3_index;
typedef struct m3_index_writer m3_index_writer;

// Version 2 records how ColBERT vectors are kept (meta "colbert", "colbert_pool"); a version-1 index
// is read as int8 (fp32 when exact), unpooled. Older m3 builds refuse version 2 with a clear message.
enum { M3_INDEX_FORMAT_VERSION = 2, M3_INDEX_FORMAT_OLDEST = 1 };

// What identifies a model: an index refuses vectors from another model.
typedef struct m3_index_model {
    char id[160];        // human-readable: "<folder name> hidden=H layers=L vocab=V"
    char checksum[17];   // 16 hex digits over the model's files (see m3_index_model_identify)
    int dim;             // hidden size: length of dense and ColBERT vectors
    int vocab;
} m3_index_model;

// Identifies the model folder dir without loading its weights: hashes config.json,
// sentencepiece.bpe.model, colbert_linear.pt, sparse_linear.pt whole and the weight file
// (model.safetensors or pytorch_model.bin) by size and its first and last 4 MiB. A model file
// (GGUF, from `m3 model convert`) is identified by the SHA-256 stored in its header: a folder and
// its converted file are different models to the index (fp16 weights give slightly other vectors).
m3_status m3_index_model_identify(const char *dir, m3_index_model *out, m3_error *err);

enum m3_index_flags {
    M3_INDEX_READONLY = 1u << 0,  // open for reading only (search, similar, status, check)
    M3_INDEX_CREATE = 1u << 1,    // create the folder (mode 0700) and the index when missing
    M3_INDEX_EXACT = 1u << 2,     // on creation: also keep exact fp32 dense and ColBERT vectors
};

// How an index keeps the ColBERT multi-vectors (chosen at creation, the same for every chunk).
// Measured fidelity and sizes: docs/index.md.
typedef enum m3_colbert_storage {
    M3_COLBERT_DEFAULT = 0,  // at creation: M3_COLBERT_BITS (M3_COLBERT_F32 in an exact index)
    M3_COLBERT_INT8 = 1,     // int8 + f32 scale per vector: dim + 4 bytes (1028 B at 1024-d)
    M3_COLBERT_BITS = 2,     // sign bits of the (fixed, randomly) rotated vector: dim / 8 bytes (128 B
                             // at 1024-d), scored asymmetrically against the float query
    M3_COLBERT_NONE = 3,     // no multi-vectors: the ColBERT weight drops out of the hybrid score
    M3_COLBERT_F32 = 4,      // fp32: 4 × dim bytes (exact indexes)
} m3_colbert_storage;

typedef struct m3_index_options {
    unsigned flags;
    // The model the caller will search or write with. Required to create. When non-NULL and the
    // index holds another model (checksum differs), the open fails with M3_STATUS_UNSUPPORTED.
    const m3_index_model *model;
    // On creation only: how ColBERT vectors are kept, and the pooling factor (1: one vector per
    // token; 2: the chunk's token vectors clustered into half as many, see docs/index.md; 0: 1).
    // An existing index keeps what it was created with (m3_index_get_colbert says what): compare
    // after opening to tell the user. An exact index takes DEFAULT, F32 or NONE, pool 1; anything
    // else is M3_STATUS_INVALID at creation.
    m3_colbert_storage colbert;
    unsigned colbert_pool;
} m3_index_options;

// The default index folder: $XDG_DATA_HOME/m3search/index (or ~/.local/share/...). malloc'd.
char *m3_index_default_dir(void);

// Opens (creating when asked) the index in folder dir. Runs mdb_reader_check to clear stale
// readers. Errors: M3_STATUS_NOT_FOUND (no index and no CREATE), M3_STATUS_UNSUPPORTED (another
// model or format version), M3_STATUS_FORMAT (damaged), M3_STATUS_IO.
m3_status m3_index_open(const char *dir, const m3_index_options *opt, m3_index **out, m3_error *err);

// Moves every index file of dir aside (to dir/../index.broken-<time>) or deletes them, so that a
// fresh index can be created. Used by --rebuild and after damage.
m3_status m3_index_remove(const char *dir, m3_error *err);

const m3_index_model *m3_index_get_model(const m3_index *idx);  // valid until close
bool m3_index_is_exact(const m3_index *idx);
// How the index keeps ColBERT vectors (never DEFAULT) and, in *pool when non-NULL, the pooling factor.
m3_colbert_storage m3_index_get_colbert(const m3_index *idx, unsigned *pool);
// "int8", "bits", "none", "f32" (NULL for DEFAULT or an unknown value); parse: the inverse (false
// when name is none of them).
const char *m3_colbert_storage_name(m3_colbert_storage storage);
bool m3_colbert_storage_parse(const char *name, m3_colbert_storage *out);
const char *m3_index_get_dir(const m3_index *idx);

// NULL is a no-op.
void m3_index_close(m3_index *idx);

// A 64-bit hash of bytes (not cryptographic): content hashes of files, model checksums.
uint64_t m3_index_hash(const void *data, size_t len, uint64_t seed);

// ---- files -------------------------------------------------------------------------------------

typedef enum m3_file_state {
    M3_FILE_PENDING = 0,
    M3_FILE_DONE = 1,
    M3_FILE_FAILED = 2,   // extraction failed: kept so that it is not retried until it changes
    M3_FILE_SKIPPED = 3,  // not indexed on purpose (too large, type not supported): reason says why
} m3_file_state;

typedef struct m3_index_file {
    uint64_t size;
    int64_t mtime_ns;
    uint64_t hash;               // m3_index_hash of the content
    uint32_t state;              // m3_file_state
    uint32_t extractor_version;
    uint32_t model_version;      // low 32 bits of the model checksum
    uint32_t file_id;            // set by the index
    uint32_t first_chunk;        // chunks [first_chunk, first_chunk + n_chunks), set by the index
    uint32_t n_chunks;
    uint64_t tokens;
    char extractor[16];          // extractor name ("text", "markdown", "code")
    char reason[200];            // why a file failed or was skipped ("" otherwise), for people
} m3_index_file;

// Looks a path up. M3_STATUS_NOT_FOUND when the index does not hold it.
m3_status m3_index_get_file(m3_index *idx, const char *path, m3_index_file *out, m3_error *err);

// Calls fn for every file, in path order, inside one read transaction; fn returns non-zero to stop.
m3_status m3_index_list_files(m3_index *idx, int (*fn)(const char *path, const m3_index_file *file,
                                                       void *user),
                              void *user, m3_error *err);

// Same, for the files whose path is prefix or starts with prefix + "/" (a folder's files).
m3_status m3_index_list_files_under(m3_index *idx, const char *prefix,
                                    int (*fn)(const char *path, const m3_index_file *file, void *user),
                                    void *user, m3_error *err);

// ---- chunks ------------------------------------------------------------------------------------

typedef struct m3_index_chunk {
    uint32_t file_id;
    uint32_t tokens;
    uint64_t start, end;  // byte range in the file
} m3_index_chunk;

m3_status m3_index_get_chunk(m3_index *idx, uint32_t chunk_id, m3_index_chunk *out, m3_error *err);

// The place a chunk comes from ("page 12", "slide 3", "sheet Budget", "chapter 2", "message 7";
// at most M3_INDEX_LOCATION_MAX - 1 bytes) into buf. M3_STATUS_NOT_FOUND when the chunk has none
// (plain text, or an index written before places were kept: such an index opens as it is).
enum { M3_INDEX_LOCATION_MAX = 64 };
m3_status m3_index_get_chunk_location(m3_index *idx, uint32_t chunk_id, char *buf, size_t cap, m3_error *err);

// The chunk's text (UTF-8, malloc'd, NUL-terminated, *len without the NUL).
m3_status m3_index_dup_chunk_text(m3_index *idx, uint32_t chunk_id, char **text, size_t *len,
                                  m3_error *err);

// The stored vectors of a chunk as an m3_embedding (dense, sparse, colbert; dequantised unless the
// index is exact). Release with m3_embedding_clear. ColBERT rows are the stored ones: pooled
// vectors in a pooled index (n_colbert about half the tokens), none with M3_COLBERT_NONE, and for
// sign bits the estimate sign·sqrt(π/2·dim) rotated back (length about 1.25, not 1), whose dot
// product with a unit query estimates the original's.
m3_status m3_index_load_embedding(m3_index *idx, uint32_t chunk_id, m3_embedding *out, m3_error *err);

// Calls fn for every live chunk id in order (one read transaction).
m3_status m3_index_list_chunks(m3_index *idx, int (*fn)(uint32_t chunk_id, const m3_index_chunk *c,
                                                        void *user),
                               void *user, m3_error *err);

// ---- writing -----------------------------------------------------------------------------------

typedef struct m3_index_chunk_input {
    uint64_t start, end;      // byte range in the file
    const char *text;         // the chunk's text (UTF-8), stored compressed for snippets
    size_t text_len;
    const m3_embedding *emb;  // dense, sparse and colbert all required
    const char *location;     // the chunk's place (m3_text_chunk.location), NULL or "" for none;
                              // cut to M3_INDEX_LOCATION_MAX - 1 bytes at a character boundary
} m3_index_chunk_input;

// A writer buffers changes and applies them in one write transaction per commit. On
// MDB_MAP_FULL the commit aborts, grows the map and redoes the whole batch. Only one writer may
// exist per index (LMDB serialises writers across processes too).
m3_status m3_index_writer_new(m3_index *idx, m3_index_writer **out, m3_error *err);

// Replaces (or adds) the file at path with these chunks; info's size, mtime_ns, hash, state,
// extractor fields and tokens are stored, the others are assigned. Vectors are quantised here.
m3_status m3_index_writer_put_file(m3_index_writer *w, const char *path, const m3_index_file *info,
                                   const m3_index_chunk_input *chunks, size_t n, m3_error *err);

// Updates only the size, mtime and hash of a file whose content did not change (no error when
// absent).
m3_status m3_index_writer_touch_file(m3_index_writer *w, const char *path, const m3_index_file *info,
                                     m3_error *err);

// Gives the indexed file at from (its chunks and vectors) the path to, with info's size, mtime and
// hash: a renamed or moved file with the same content is not encoded again. A file already at to
// is replaced. Nothing happens when from is not indexed at commit time.
m3_status m3_index_writer_move_file(m3_index_writer *w, const char *from, const char *to,
                                    const m3_index_file *info, m3_error *err);

// Drops a file and all its chunks (no error when absent).
m3_status m3_index_writer_delete_file(m3_index_writer *w, const char *path, m3_error *err);

// Bytes buffered since the last commit (to decide when to commit).
size_t m3_index_writer_pending_bytes(const m3_index_writer *w);
size_t m3_index_writer_pending_files(const m3_index_writer *w);

// Applies everything buffered. On error nothing of the batch is applied and the batch is dropped.
m3_status m3_index_writer_commit(m3_index_writer *w, m3_error *err);

// Drops what is not committed. NULL is a no-op.
void m3_index_writer_free(m3_index_writer *w);

// ---- search ------------------------------------------------------------------------------------

typedef struct m3_search_options {
    float weights[3];          // dense, sparse, colbert (default 0.4, 0.2, 0.4); a zero weight
                               // skips that score's candidates and re-ranking cost
    size_t limit;              // results (default 10)
    size_t dense_candidates;   // from the binary scan + int8 rescore (default 200)
    size_t sparse_candidates;  // from the postings (default 200)
    size_t rerank;             // candidates re-ranked with ColBERT, best by dense+sparse first
                               // (0: max(100, 4 × limit))
    bool exhaustive;           // score every chunk exactly (tests, tiny indexes)
    bool group_by_file;        // best chunk per file (default true)
    int64_t exclude_file_id;   // -1: none
    const m3_tokenizer *tokenizer;  // for snippets aligned to the query; NULL: the chunk's head
    size_t snippet_bytes;      // about this long (default 240)
} m3_search_options;

m3_search_options m3_search_options_default(void);

typedef struct m3_search_hit {
    char *path;
    uint32_t chunk_id;
    uint64_t start, end;       // the chunk's byte range in the file
    float score, dense, sparse, colbert;
    char *snippet;             // UTF-8, one line: the chunk's words as written, whitespace runs and
                               // control characters as one space, "…" where the chunk goes on
    uint32_t (*highlights)[2]; // byte ranges [start, end) of the snippet's words that matched the
    size_t n_highlights;       // query best (its terms, or where its multi-vectors align)
    char *location;            // the chunk's place ("page 12"), NULL when it has none
} m3_search_hit;

// Hybrid search for an encoded query (dense, sparse and colbert as asked by the weights).
// *hits is malloc'd, best first; free with m3_search_hits_free. In an index without multi-vectors
// (M3_COLBERT_NONE) the ColBERT weight is dropped: score = (wd·dense + ws·sparse) / (wd + ws), hit
// colbert = 0, snippets aligned lexically (the query's sparse terms); a search weighting ColBERT
// alone is then M3_STATUS_UNSUPPORTED.
m3_status m3_index_search(m3_index *idx, const m3_embedding *query, const m3_search_options *opt,
                          m3_search_hit **hits, size_t *n_hits, m3_error *err);

enum { M3_SIMILAR_QUERY_CHUNKS = 8 };  // a file's first chunks that query for similar files

// Files similar to the file at path, from its stored vectors (its first M3_SIMILAR_QUERY_CHUNKS
// chunks as queries, best score per other file); the file itself is excluded. M3_STATUS_NOT_FOUND
// when the index does not hold path.
m3_status m3_index_similar(m3_index *idx, const char *path, const m3_search_options *opt,
                           m3_search_hit **hits, size_t *n_hits, m3_error *err);

// The same for a file that is not indexed, given the embeddings of its chunks (the first
// M3_SIMILAR_QUERY_CHUNKS are used; opt->exclude_file_id as the caller sets it).
m3_status m3_index_similar_to(m3_index *idx, const m3_embedding *chunks, size_t n, const m3_search_options *opt,
                              m3_search_hit **hits, size_t *n_hits, m3_error *err);

void m3_search_hits_free(m3_search_hit *hits, size_t n);

// ---- status and checks -------------------------------------------------------------------------

typedef struct m3_index_stats {
    uint64_t files, files_failed, files_skipped, chunks, tokens, postings, colbert_vectors;
    uint64_t map_size, used_bytes, file_bytes;
    uint64_t bytes_text, bytes_dense, bytes_bits, bytes_sparse, bytes_colbert;  // pages of each table
    uint64_t colbert_tokens;          // token positions the multi-vectors stand for (pooled: 2 per vector)
    uint64_t colbert_value_bytes;     // the ColBERT values' own bytes, without LMDB's pages
} m3_index_stats;

m3_status m3_index_get_stats(m3_index *idx, m3_index_stats *out, m3_error *err);

// Checks every invariant (files ↔ chunks ↔ vectors ↔ postings ↔ live bits). Calls report (when
// non-NULL) for each problem found, and sets *problems. Returns an error only when the check could
// not run.
m3_status m3_index_check(m3_index *idx, void (*report)(const char *message, void *user), void *user,
                         uint64_t *problems, m3_error *err);

#endif
