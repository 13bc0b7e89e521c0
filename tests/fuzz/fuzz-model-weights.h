// SPDX-License-Identifier: MIT
//
// Shared check of the model fuzz targets: a set of weights that opened must be internally sound.
// Every tensor's reachable elements are read (ASan catches any that lie outside the input), and
// every tensor can be found by its name.
#ifndef M3_FUZZ_MODEL_WEIGHTS_H
#define M3_FUZZ_MODEL_WEIGHTS_H

#include <stdlib.h>

#include "model/weights.h"

static inline void fuzz_check_weights(const m3_weights *w)
{
    for (size_t i = 0; i < m3_weights_count(w); i++) {
        const m3_tensor *t = m3_weights_at(w, i);
        M3_ASSERT(t && t->name && m3_weights_find(w, t->name) == t);
        M3_ASSERT(t->ndim >= 0 && t->ndim <= M3_TENSOR_MAX_DIMS);
        int64_t n = m3_tensor_numel(t);
        M3_ASSERT(n >= 0);
        if (n == 0 || n > (1 << 20)) continue;
        float *out = malloc((size_t)n * sizeof *out);
        if (!out) continue;
        m3_tensor_to_f32(t, out);
        free(out);
    }
}

#endif
