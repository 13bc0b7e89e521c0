// SPDX-License-Identifier: MIT
//
// Internals shared by the two checkpoint readers (safetensors.c, pytorch.c) and weights.c.
#ifndef M3_MODEL_WEIGHTS_PRIVATE_H
#define M3_MODEL_WEIGHTS_PRIVATE_H

#include "model/weights.h"

// Hard limits on outside data, far above what any BGE-M3 checkpoint holds (the real one has 391
// tensors and a 2.27 GB file), low enough that a hostile file cannot make us allocate much.
enum {
    M3_WEIGHTS_MAX_TENSORS = 1 << 16,
    M3_WEIGHTS_MAX_NAME = 1024,
};

struct m3_weights {
    m3_mapped_file *file;
    m3_tensor *tensors;   // in file order; names are owned (malloc'd) strings
    size_t count, cap;
    const m3_tensor **sorted;  // the tensors sorted by name, for m3_weights_find (after finish)
};

// Allocates an empty set that owns file (closed by m3_weights_close).
m3_status m3_weights_new(m3_mapped_file *file, m3_weights **out, m3_error *err);

// Appends a tensor; copies name (len bytes, may lack a NUL). The data pointer is borrowed.
m3_status m3_weights_add(m3_weights *w, const char *name, size_t len, const m3_tensor *t, m3_error *err);

// Sorts the name index and refuses duplicate names. Called once, after the last add.
m3_status m3_weights_finish(m3_weights *w, m3_error *err);

// Checks that every element reachable through shape, strides and the offset lies inside a storage
// of storage_numel elements. Negative sizes or strides and overflow are refused (false).
bool m3_tensor_extent_ok(int ndim, const int64_t *shape, const int64_t *strides, int64_t offset,
                         int64_t storage_numel);

#endif
