// SPDX-License-Identifier: MIT
//
// Arbitrary bytes as a PyTorch zip + pickle checkpoint: the zip reader and the restricted pickle
// interpreter must fail with a status naming the input, or give tensors whose every element lies
// inside the input. Seeds: tests/fuzz/corpus/model-pytorch/ (the fixture heads, hand-made pickles).
#include <stdint.h>
#include <string.h>

#include "base/mapped-file.h"
#include "fuzz-model-weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    m3_mapped_file *f;
    m3_error err = {0};
    if (m3_mapped_file_wrap(data, size, "fuzz.pt", &f, &err) != M3_STATUS_OK) return 0;
    m3_weights *w;
    m3_status st = m3_weights_open_pytorch(f, &w, &err);
    if (st != M3_STATUS_OK) {
        M3_ASSERT(w == NULL && err.status == st && strstr(err.message, "fuzz.pt"));
        return 0;
    }
    fuzz_check_weights(w);
    m3_weights_close(w);
    return 0;
}
