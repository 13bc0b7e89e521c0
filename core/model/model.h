// SPDX-License-Identifier: MIT
//
// A BGE-M3 model: its configuration, its encoder weights, the two heads and the tokenizer, read from
// a Hugging Face model folder as published for `BAAI/bge-m3`:
//   config.json, model.safetensors and/or pytorch_model.bin, colbert_linear.pt, sparse_linear.pt,
//   sentencepiece.bpe.model (tokenizer.json is not needed: the XLM-R pipeline is built from the
//   SentencePiece model, which holds the same pieces, scores and normalizer).
// When both weight containers are present, model.safetensors is used (it maps faster).
//
//     m3_model *model;
//     if (m3_model_open("/path/to/bge-m3", &model, &err) != M3_STATUS_OK) ...
//     const m3_model_config *cfg = m3_model_get_config(model);
//     const m3_model_weights *w = m3_model_get_weights(model);
//     ... m3_encoder_new(model, ...) ...
//     m3_model_close(model);   // after every encoder made from it
//
// Every tensor is checked against the configuration when the model opens: a missing tensor or a
// wrong shape is an M3_STATUS_FORMAT error naming the file and the tensor. Tensor names may carry
// a `roberta.` prefix (some exports do) or not (BAAI/bge-m3 does not).
//
// Ownership: the model owns its weights, tensors and tokenizer; borrowed pointers are valid until
// m3_model_close. Teardown: encoders first, then the model.
// Threads: immutable after opening; share it between any number of encoders and threads.
#ifndef M3_MODEL_MODEL_H
#define M3_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "model/tensor.h"
#include "tokenizer/tokenizer.h"

typedef struct m3_model m3_model;

typedef struct m3_model_config {
    int hidden;          // 1024 for BGE-M3
    int layers;          // 24
    int heads;           // 16 (head size = hidden / heads)
    int intermediate;    // 4096
    int vocab;           // 250002
    int max_positions;   // 8194 (positions start at pad_token_id + 1 = 2)
    int type_vocab;      // 1
    int pad_token_id;    // 1
    float layer_norm_eps; // 1e-5
} m3_model_config;

// The configuration of the published BGE-M3 (for benchmarks with random weights).
m3_model_config m3_model_config_bge_m3(void);

// Parses the bytes of a config.json (len bytes, need not be NUL-terminated). Reads hidden_size,
// num_hidden_layers, num_attention_heads, intermediate_size, vocab_size, max_position_embeddings,
// type_vocab_size, pad_token_id, layer_norm_eps; hidden_act must be "gelu" (exact erf GELU) and
// position_embedding_type, when present, "absolute". name is used in error messages. Errors:
// M3_STATUS_FORMAT (not JSON, a key missing or of the wrong type), M3_STATUS_UNSUPPORTED (another
// activation, sizes outside the limits of m3_model_config_check), M3_STATUS_LIMIT (over 1 MiB).
// On error *config is zeroed.
m3_status m3_model_config_parse(const char *json, size_t len, const char *name, m3_model_config *config,
                                m3_error *err);

// Checks a configuration's sanity: every size positive and not absurd (hidden <= 65536, layers <=
// 1024, intermediate <= 2^20, vocab <= 2^24, positions <= 2^20, type_vocab <= 1024), hidden
// divisible by heads, pad_token_id + 2 <= max_positions, 0 < layer_norm_eps < 1. Returns
// M3_STATUS_UNSUPPORTED naming `name` otherwise.
m3_status m3_model_config_check(const m3_model_config *config, const char *name, m3_error *err);

typedef struct m3_layer_weights {
    const m3_tensor *query_w, *query_b;   // [hidden, hidden], [hidden]  (PyTorch Linear: [out, in])
    const m3_tensor *key_w, *key_b;
    const m3_tensor *value_w, *value_b;
    const m3_tensor *attn_out_w, *attn_out_b;  // attention.output.dense
    const m3_tensor *attn_ln_w, *attn_ln_b;    // attention.output.LayerNorm
    const m3_tensor *ffn_in_w, *ffn_in_b;      // intermediate.dense [intermediate, hidden]
    const m3_tensor *ffn_out_w, *ffn_out_b;    // output.dense [hidden, intermediate]
    const m3_tensor *ffn_ln_w, *ffn_ln_b;      // output.LayerNorm
} m3_layer_weights;

typedef struct m3_model_weights {
    const m3_tensor *word;         // [vocab, hidden]
    const m3_tensor *position;     // [max_positions, hidden]
    const m3_tensor *token_type;   // [type_vocab, hidden]
    const m3_tensor *emb_ln_w, *emb_ln_b;
    const m3_layer_weights *layers;  // [config.layers]
    const m3_tensor *colbert_w, *colbert_b;  // [hidden, hidden], [hidden] (fp16 in the real files)
    const m3_tensor *sparse_w, *sparse_b;    // [1, hidden], [1]
} m3_model_weights;

// Opens a model folder, or a model file written by m3_model_write_file (a regular file is read as
// GGUF, recognised by its magic; see docs/model-file.md). A model file is mapped, its header and
// tensor index checked (a truncated file fails here: every tensor's bytes must lie inside the file)
// and its tokenizer rebuilt; the weights are used in place from the mapping and are not hashed
// (m3_model_verify does that), so opening costs milliseconds plus the tokenizer. Errors name the
// file: M3_STATUS_NOT_FOUND (a required file is missing), M3_STATUS_IO, M3_STATUS_FORMAT,
// M3_STATUS_UNSUPPORTED (e.g. hidden_act other than "gelu", another GGUF architecture).
m3_status m3_model_open(const char *dir, m3_model **out, m3_error *err);

// ---- The one-file model (GGUF; docs/model-file.md) -----------------------------------------------

// Writes model and its tokenizer vocabulary to path as one GGUF file: every tensor, the
// configuration, the tokenizer arrays and a SHA-256 checksum. dtype M3_DTYPE_F16 stores the weight
// matrices with more than one row (embedding tables, linear layers, the ColBERT head) in fp16,
// rounded to nearest even; vectors and one-row matrices (biases, LayerNorm, token type, the sparse
// head) stay fp32. M3_DTYPE_F32 keeps every value exactly. The file is written to "path.tmp",
// synced and renamed, so path is either the old file or the whole new one. Errors: M3_STATUS_INVALID
// (another dtype, a vocabulary whose size is not config.vocab), M3_STATUS_LIMIT (a value outside the
// fp16 range: use fp32), M3_STATUS_IO (with errno), M3_STATUS_NOMEM.
m3_status m3_model_write_file(const m3_model *model, const m3_tokenizer_pieces *vocab, m3_dtype dtype,
                              const char *path, m3_error *err);

// Converts the model folder src (as m3_model_open reads it, plus its sentencepiece.bpe.model for the
// vocabulary) into the model file dst with m3_model_write_file. src may also be a model file (its
// own vocabulary arrays are used; dst may be src itself): written again with the same dtype, it
// gives the same file byte for byte.
m3_status m3_model_convert(const char *src, const char *dst, m3_dtype dtype, m3_error *err);

// ---- Packed weights (docs/model-file.md, "Packed weights") ----------------------------------------
// A model file may also hold the linear layers already in a backend's packed layout for one
// precision, so that the backend uses them in place from the mapping instead of packing at start-up.
// The model layer stores opaque bytes; what they mean is the backend's (m3_cpu_packer in
// encoder/cpu/packed-file.h provides the CPU backend's).

typedef struct m3_model_packed_tensor {
    char name[96];   // unique per packer, e.g. "encoder.layer.3.qkv"
    uint64_t bytes;  // what the packer writes for it
} m3_model_packed_tensor;

typedef struct m3_model_packer {
    const char *precision;  // the tag in the file ([a-z0-9_], at most 15 characters), e.g. "bf16"
    const char *layout;     // the layout id (printable, at most 63 characters)
    void *ctx;
    // The packed tensors of model: returns how many; lists at most max of them into out.
    size_t (*list)(void *ctx, const m3_model *model, m3_model_packed_tensor *out, size_t max);
    // Packs tensor i of the list into dst (its bytes). The weights must be taken as the file stores
    // them (`stored`: F16 means rounded to fp16 first), so that the bytes equal what the backend
    // would pack from the written file.
    m3_status (*pack)(void *ctx, const m3_model *model, m3_dtype stored, size_t i, void *dst, size_t bytes,
                      m3_error *err);
} m3_model_packer;

// m3_model_write_file and m3_model_convert, adding packer's tensors (NULL: none, as those). Each
// packed tensor starts at a multiple of 4096 bytes in the file. A full disk is M3_STATUS_IO naming
// the file and ENOSPC; the file at dst is then untouched.
m3_status m3_model_write_file_packed(const m3_model *model, const m3_tokenizer_pieces *vocab, m3_dtype dtype,
                                     const m3_model_packer *packer, const char *path, m3_error *err);
m3_status m3_model_convert_packed(const char *src, const char *dst, m3_dtype dtype, const m3_model_packer *packer,
                                  m3_error *err);

// The layout id of the packed weights model holds for `precision` ("fp32", "bf16", ...), or NULL
// when it holds none (a folder, a random model, a file converted without --precision).
const char *m3_model_packed_layout(const m3_model *model, const char *precision);
// The bytes of packed tensor `name` for `precision` (in the file's mapping: the GGUF reader checked
// they lie inside the file and start at a multiple of 4096 bytes) and their size; NULL when absent.
const void *m3_model_packed_find(const m3_model *model, const char *precision, const char *name, size_t *bytes);

// What m3_model_verify checked, for a report.
typedef struct m3_model_verify_report {
    int is_file;           // 1: a GGUF model file; 0: a model folder
    int checksummed;       // files whose checksum was compared (1 for a model file)
    int hub_cache;         // 1: a folder checked against its Hugging Face cache blob names
    char checksum[72];     // a model file: "sha256:<hex>" as stored (and found correct)
    size_t tensors;        // tensors whose shape was checked
} m3_model_verify_report;

// Checks a model thoroughly, reading every byte. A model file: the SHA-256 over the whole file
// (m3.checksum, see docs/model-file.md) and then everything m3_model_open checks. A model folder:
// when it holds a SHA256SUMS file (lines "<64 hex>  <name>", as sha256sum writes them; `m3 model
// download` writes one) every file it names is hashed and compared; without one, a Hugging Face
// cache snapshot (files that are symlinks into blobs/ named by a SHA-256 or a git blob SHA-1) is
// checked against those names; then the folder is opened (every file parses, every tensor has its
// shape). Errors: M3_STATUS_FORMAT naming the damaged file ("checksum mismatch"), and those of
// m3_model_open. report may be NULL.
m3_status m3_model_verify(const char *path, m3_model_verify_report *report, m3_error *err);

// Reads only the header of the model file path (GGUF, milliseconds): its configuration and its stored
// checksum ("sha256:<64 hex>", NUL-terminated into checksum; for a file with packed weights the
// checksum of the same file without them, m3.plain_checksum: its identity). The checksum is not recomputed
// (m3_model_verify does that). Errors as m3_model_open's; M3_STATUS_FORMAT for a folder or non-GGUF.
m3_status m3_model_file_identify(const char *path, m3_model_config *config, char checksum[72], m3_error *err);

// Builds a model of the given shape with deterministic pseudo-random fp32 weights in memory and no
// tokenizer (m3_model_get_tokenizer returns NULL). Used by `m3 bench`: compute cost does not depend
// on the values. Weights are scaled so activations stay finite.
m3_status m3_model_new_random(const m3_model_config *config, uint64_t seed, m3_model **out,
                              m3_error *err);

const m3_model_config *m3_model_get_config(const m3_model *model);
const m3_model_weights *m3_model_get_weights(const m3_model *model);
const m3_tokenizer *m3_model_get_tokenizer(const m3_model *model);  // NULL for random models
const char *m3_model_get_path(const m3_model *model);               // the folder, or "random"

// NULL is a no-op.
void m3_model_close(m3_model *model);

#endif
