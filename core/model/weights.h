// SPDX-License-Identifier: MIT
//
// One checkpoint file: a named set of tensors. Two containers are read:
//   - safetensors (`model.safetensors`): a JSON header and raw little-endian data;
//   - PyTorch zip + pickle (`pytorch_model.bin`, `colbert_linear.pt`, `sparse_linear.pt`): a
//     restricted reader that understands state dicts of tensors (FloatStorage, HalfStorage,
//     BFloat16Storage; shapes, strides, storage offsets) and nothing else. It never executes
//     anything: any opcode or global outside that subset is refused with an error naming the file
//     and the opcode. Zip64 is supported (the real checkpoint is 2.27 GB); stored (uncompressed)
//     entries are used in place from the mapping, so weights never pass through the heap.
//
//     m3_weights *w;
//     if (m3_weights_open(path, &w, &err) != M3_STATUS_OK) ...
//     const m3_tensor *t = m3_weights_find(w, "encoder.layer.0.attention.self.query.weight");
//     m3_weights_close(w);
//
// Tensor data is aligned to its element size. Safetensors tensors are contiguous; PyTorch tensors
// keep their strides (check m3_tensor_is_contiguous or copy with m3_tensor_to_f32). Zip CRCs are
// checked for the pickle and small entries, not for the tensor storages (that would read the whole
// 2.27 GB file at open).
//
// Every malformed input (truncated, bit-flipped, inconsistent shapes, out-of-range storages,
// zip bombs, arbitrary globals) returns M3_STATUS_FORMAT / M3_STATUS_UNSUPPORTED / M3_STATUS_LIMIT
// with a message naming the file; none crashes.
//
// Threads: immutable after opening; read from any thread.
#ifndef M3_MODEL_WEIGHTS_H
#define M3_MODEL_WEIGHTS_H

#include <stddef.h>

#include "base/mapped-file.h"
#include "model/tensor.h"

typedef struct m3_weights m3_weights;

// Opens a checkpoint, choosing the container by its first bytes (zip magic → PyTorch, otherwise
// safetensors).
m3_status m3_weights_open(const char *path, m3_weights **out, m3_error *err);

// Parses from an existing mapping (ownership of file passes to the weights, even on error).
m3_status m3_weights_open_safetensors(m3_mapped_file *file, m3_weights **out, m3_error *err);
m3_status m3_weights_open_pytorch(m3_mapped_file *file, m3_weights **out, m3_error *err);

size_t m3_weights_count(const m3_weights *w);
const m3_tensor *m3_weights_at(const m3_weights *w, size_t i);  // in file order
const m3_tensor *m3_weights_find(const m3_weights *w, const char *name);  // NULL when absent
const char *m3_weights_path(const m3_weights *w);

// The mapping the tensors point into (borrowed, valid until m3_weights_close). Tests use it to
// check that tensor data is read in place.
const m3_mapped_file *m3_weights_get_file(const m3_weights *w);

// NULL is a no-op.
void m3_weights_close(m3_weights *w);

#endif
