// SPDX-License-Identifier: MIT
//
// The GGUF container (version 3) as m3search uses it for its one-file model (docs/model-file.md):
//   gguf.c        a strict reader of any GGUF v3 file: header, typed key/value pairs, tensor infos,
//                 every offset and size checked against the file; the SHA-256 of m3.checksum;
//   gguf-model.c  the model's parts from a parsed file: config (m3.*), tensors (as m3_weights),
//                 tokenizer (tokenizer.ggml.*), packed weights (packed.*, m3.packed.*: opaque bytes);
//   gguf-write.c  the writer (m3_model_write_file, m3_model_convert in model.h) and m3_model_verify.
// Little-endian only, like the format.
#ifndef M3_MODEL_GGUF_PRIVATE_H
#define M3_MODEL_GGUF_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/mapped-file.h"
#include "model/model.h"
#include "model/weights.h"

#define M3_GGUF_MAGIC "GGUF"
#define M3_GGUF_ARCHITECTURE "m3-xlm-roberta"
#define M3_GGUF_TOKENIZER_MODEL "xlm-roberta-unigram"
#define M3_GGUF_CHECKSUM_KEY "m3.checksum"
#define M3_GGUF_CHECKSUM_PREFIX "sha256:"
// The tokenizer's built piece trie (docs/model-file.md, "The piece trie"): a u8 array holding
// "M3PT", u32 version, u32 header size H, u32 nodes N, u32 ids, u32 0, the SHA-256 of the bytes of
// tokenizer.ggml.tokens's strings followed by the pairs and ids below, zeros up to H, then N (i32
// base, i32 check) pairs and N i32 ids; the writer pads H so that the pairs start at a multiple of 8
// in the file and can be used in place.
#define M3_GGUF_PIECE_TRIE_KEY "m3.tokenizer.piece_trie"
#define M3_GGUF_PIECE_TRIE_MAGIC "M3PT"

enum {
    M3_GGUF_VERSION = 3,
    M3_GGUF_DEFAULT_ALIGNMENT = 32,
    M3_GGUF_MAX_KV = 1 << 16,
    M3_GGUF_MAX_DIMS = 4,
    M3_GGUF_CHECKSUM_HEX = 64,
    M3_GGUF_PIECE_TRIE_VERSION = 1,
    M3_GGUF_PIECE_TRIE_HEADER = 56,  // the fixed fields; H may be up to 7 bytes more
};

// Value types of key/value pairs (gguf_type).
typedef enum m3_gguf_type {
    M3_GGUF_UINT8 = 0,
    M3_GGUF_INT8 = 1,
    M3_GGUF_UINT16 = 2,
    M3_GGUF_INT16 = 3,
    M3_GGUF_UINT32 = 4,
    M3_GGUF_INT32 = 5,
    M3_GGUF_FLOAT32 = 6,
    M3_GGUF_BOOL = 7,
    M3_GGUF_STRING = 8,
    M3_GGUF_ARRAY = 9,
    M3_GGUF_UINT64 = 10,
    M3_GGUF_INT64 = 11,
    M3_GGUF_FLOAT64 = 12,
} m3_gguf_type;

// Tensor element types (ggml_type) that we read and write. I8 holds opaque bytes: only the packed
// weights (M3_GGUF_PACKED_PREFIX) use it, as one dimension of their size in bytes.
enum { M3_GGML_F32 = 0, M3_GGML_F16 = 1, M3_GGML_I8 = 24, M3_GGML_BF16 = 30 };

// Packed weights (docs/model-file.md, "Packed weights"): for each precision P that the file holds
// packed, the key "m3.packed.P.layout" (a string: the layout id of the kernel that packed them, as
// m3_gemm_layout_id says it) and one I8 tensor "packed.P.NAME" per packed matrix, NAME chosen by
// the backend (e.g. "encoder.layer.3.qkv"), starting at a multiple of M3_GGUF_PACKED_ALIGN in
// the file so that it can be used in place from the mapping.
#define M3_GGUF_PACKED_PREFIX "packed."
#define M3_GGUF_PACKED_KEY_PREFIX "m3.packed."
#define M3_GGUF_PACKED_KEY_SUFFIX ".layout"
// In a file with packed weights: the m3.checksum of the same file without them, "sha256:" + 64 hex
// digits. The file's identity for an index (m3_model_file_identify), since packing changes no output.
#define M3_GGUF_PLAIN_CHECKSUM_KEY "m3.plain_checksum"
enum { M3_GGUF_PACKED_ALIGN = 4096, M3_GGUF_PACKED_MAX_TAG = 15, M3_GGUF_PACKED_MAX_LAYOUT = 63 };

typedef struct m3_gguf_packed_blob {
    char *name;          // "P.NAME" (the tensor name without "packed."), owned
    const void *data;    // in the mapping
    size_t bytes;
} m3_gguf_packed_blob;

typedef struct m3_gguf_packed_layout {
    char precision[M3_GGUF_PACKED_MAX_TAG + 1];
    char layout[M3_GGUF_PACKED_MAX_LAYOUT + 1];
} m3_gguf_packed_layout;

// The packed section of a model file: every packed tensor (sorted by name) and every layout key.
typedef struct m3_gguf_packed {
    m3_gguf_packed_blob *blobs;
    size_t n_blobs;
    m3_gguf_packed_layout *layouts;
    size_t n_layouts;
} m3_gguf_packed;

void m3_gguf_packed_clear(m3_gguf_packed *p);
const char *m3_gguf_packed_layout_of(const m3_gguf_packed *p, const char *precision);
const void *m3_gguf_packed_find(const m3_gguf_packed *p, const char *precision, const char *name, size_t *bytes);

typedef struct m3_gguf_kv {
    const char *key;                // borrowed from the mapping, not NUL terminated
    size_t key_len;
    uint32_t type;                  // m3_gguf_type
    uint32_t array_type;            // element type when type is M3_GGUF_ARRAY
    uint64_t n;                     // number of elements (1 for a scalar)
    const unsigned char *value;     // scalars and arrays: the first element; strings: the bytes
    size_t size;                    // bytes from value to the end of the value
} m3_gguf_kv;

typedef struct m3_gguf_tensor {
    const char *name;  // borrowed, not NUL terminated
    size_t name_len;
    uint32_t n_dims;
    uint64_t dims[M3_GGUF_MAX_DIMS];  // ggml order: dims[0] varies fastest
    uint32_t type;                    // M3_GGML_*
    uint64_t offset;                  // from the start of the data section
    uint64_t bytes;
} m3_gguf_tensor;

typedef struct m3_gguf {
    const m3_mapped_file *file;  // borrowed
    m3_gguf_kv *kvs;             // in file order
    const m3_gguf_kv **sorted;   // by key, for m3_gguf_find
    size_t n_kv;
    m3_gguf_tensor *tensors;     // in file order
    size_t n_tensors;
    size_t alignment;
    size_t data_offset;          // start of the tensor data section in the file
    size_t data_end;             // end of the last tensor's bytes (data_offset when none)
} m3_gguf;

// Parses the file's header, key/value pairs and tensor infos and checks every tensor's bytes lie
// inside the file (a truncated file fails here). Reads nothing of the tensor data. Errors name the
// file: M3_STATUS_FORMAT (malformed, truncated, overlapping tensors, trailing bytes),
// M3_STATUS_UNSUPPORTED (another version, an element type other than F32/F16/BF16, nested
// arrays), M3_STATUS_LIMIT, M3_STATUS_NOMEM. The result borrows file.
m3_status m3_gguf_parse(const m3_mapped_file *file, m3_gguf *out, m3_error *err);
void m3_gguf_destroy(m3_gguf *g);

// The pair named key (NUL terminated), or NULL.
const m3_gguf_kv *m3_gguf_find(const m3_gguf *g, const char *key);

// Typed lookups: M3_STATUS_FORMAT naming the file and key when the key is missing or of another type.
m3_status m3_gguf_get_u32(const m3_gguf *g, const char *key, uint32_t *v, m3_error *err);
m3_status m3_gguf_get_f32(const m3_gguf *g, const char *key, float *v, m3_error *err);
m3_status m3_gguf_get_bool(const m3_gguf *g, const char *key, bool *v, m3_error *err);
m3_status m3_gguf_get_string(const m3_gguf *g, const char *key, const char **s, size_t *len, m3_error *err);
// An array of element type `type`; *kv is the pair (n elements starting at kv->value).
m3_status m3_gguf_get_array(const m3_gguf *g, const char *key, uint32_t type, const m3_gguf_kv **kv,
                            m3_error *err);

// SHA-256 (lowercase hex) of the whole file with the 64 hex digits of m3.checksum read as '0'.
// Errors: M3_STATUS_FORMAT when m3.checksum is missing or not "sha256:" + 64 hex digits.
m3_status m3_gguf_compute_checksum(const m3_gguf *g, char hex[M3_GGUF_CHECKSUM_HEX + 1],
                                   const char **stored, m3_error *err);

// The parts of a model in a parsed GGUF file. The encoder weights own file; colbert and sparse
// borrow the same mapping (close them first).
typedef struct m3_gguf_model_parts {
    m3_model_config config;
    m3_weights *encoder, *colbert, *sparse;
    m3_tokenizer *tokenizer;
    m3_gguf_packed packed;  // borrows the encoder's mapping
} m3_gguf_model_parts;

// Reads everything from file (ownership passes to the parts, even on error). Checks the
// architecture, the configuration and the tokenizer keys; tensor shapes are checked by the model.
m3_status m3_gguf_load_parts(m3_mapped_file *file, m3_gguf_model_parts *out, m3_error *err);
void m3_gguf_model_parts_clear(m3_gguf_model_parts *parts);

// The vocabulary of a model file (to write it again: convert from a file). The texts and the
// charsmap point into file's mapping (keep it open); release with m3_tokenizer_pieces_clear.
m3_status m3_gguf_file_pieces(const m3_mapped_file *file, m3_tokenizer_pieces *out, m3_error *err);

// m3_model_write_file with flags: M3_GGUF_WRITE_NO_PIECE_TRIE leaves the piece trie out, as files
// written before it existed (for tests and benchmarks of that path).
enum { M3_GGUF_WRITE_NO_PIECE_TRIE = 1 };
m3_status m3_gguf_write(const m3_model *model, const m3_tokenizer_pieces *vocab, m3_dtype dtype, unsigned flags,
                        const m3_model_packer *packer, const char *path, m3_error *err);

// model.c: a model from a GGUF file already mapped (ownership of file passes, even on error).
// The fuzz target uses it on bytes in memory.
m3_status m3_model_open_gguf(m3_mapped_file *file, m3_model **out, m3_error *err);

#endif
