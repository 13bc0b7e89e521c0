// SPDX-License-Identifier: MIT
//
// A tensor as read from a checkpoint: a typed, strided view into bytes owned by a weight file
// (a memory mapping) or by a model built in memory.
//
// Ownership: `data` and `name` are borrowed from the m3_weights (or m3_model) that returned the
// tensor and are valid until it is closed. Threads: tensors are immutable; read from any thread.
#ifndef M3_MODEL_TENSOR_H
#define M3_MODEL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef enum m3_dtype {
    M3_DTYPE_F32,
    M3_DTYPE_F16,
    M3_DTYPE_BF16,
} m3_dtype;

enum { M3_TENSOR_MAX_DIMS = 4 };

typedef struct m3_tensor {
    const char *name;
    m3_dtype dtype;
    int ndim;                              // 0 (a scalar) to M3_TENSOR_MAX_DIMS
    int64_t shape[M3_TENSOR_MAX_DIMS];
    int64_t strides[M3_TENSOR_MAX_DIMS];   // in elements, as PyTorch counts them
    const void *data;                      // the first element (storage offset already applied)
} m3_tensor;

size_t m3_dtype_size(m3_dtype dtype);
const char *m3_dtype_name(m3_dtype dtype);

// Number of elements (product of the shape; 1 for a scalar).
int64_t m3_tensor_numel(const m3_tensor *t);

// True when the strides are the row-major strides of the shape.
bool m3_tensor_is_contiguous(const m3_tensor *t);

// Copies the tensor into dst as contiguous row-major fp32 (numel floats), converting fp16/bf16
// exactly and following the strides.
void m3_tensor_to_f32(const m3_tensor *t, float *dst);

// Checks that t has exactly the given shape (ndim entries); on mismatch fills err with
// "<file>: tensor <name> has shape [a, b], expected [c, d]" and returns M3_STATUS_FORMAT.
m3_status m3_tensor_check_shape(const m3_tensor *t, const char *file, int ndim, const int64_t *shape,
                                m3_error *err);

// IEEE half / bfloat16 to float, exact.
float m3_f16_to_f32(uint16_t h);
float m3_bf16_to_f32(uint16_t h);
uint16_t m3_f32_to_f16(float f);  // round to nearest even

#endif
