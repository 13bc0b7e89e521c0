// SPDX-License-Identifier: MIT
//
// The CPU backend's packed weights in a model file (docs/model-file.md, "Packed weights"):
//   - m3_cpu_packer: what `m3 model convert --precision P` hands the model writer, so that the file
//     also holds every linear layer in the GEMM's packed layout for P (one opaque tensor per
//     matrix: "packed.P.encoder.layer.N.{qkv,attn_out,ffn_in,ffn_out}", "packed.P.colbert");
//   - m3_cpu_packed_usable / m3_cpu_packed_matrix: the backend's side, which wraps those bytes in
//     place from the mapping when their layout id is the one this CPU's kernel reads.
//
//     m3_cpu_packer p;
//     m3_cpu_packer_init(&p, M3_PRECISION_BF16, &err);
//     m3_model_convert_packed(src, dst, M3_DTYPE_F16, &p.base, &err);
//
// fp32, bf16 and int8 (the self-contained blob of gemm-private.h: panels of k groups of 4 bytes,
// then the per-column scales and int32 sums) have a file layout; a precision added later adds its
// case to packed-file.c: the file format stores any precision's bytes, sized by the kernel's own
// packing function.
// Threads: the packer is used by one thread; the rest only reads the model.
#ifndef M3_ENCODER_CPU_PACKED_FILE_H
#define M3_ENCODER_CPU_PACKED_FILE_H

#include <stdbool.h>

#include "encoder/cpu/gemm.h"
#include "encoder/encoder.h"
#include "model/model.h"

typedef struct m3_cpu_packer {
    m3_model_packer base;       // pass &base to the writer
    m3_gemm_precision precision;
    char layout[64];
} m3_cpu_packer;

// A packer for `precision` (AUTO: as the backend resolves it) with this CPU's kernel's layout.
// Errors: M3_STATUS_UNSUPPORTED for a precision without a file layout (fp32, bf16 and int8 have one).
// AUTO never resolves to int8 (as in the backend).
m3_status m3_cpu_packer_init(m3_cpu_packer *p, m3_precision precision, m3_error *err);

// The file's tag of a precision: "fp32", "bf16", "int8"; NULL for a precision without a file layout.
const char *m3_cpu_packed_tag(m3_gemm_precision precision);

// Whether model holds packed weights for `precision` in the layout this CPU's kernel reads. When
// not, says why at debug level (no packed weights, another layout or layout version).
bool m3_cpu_packed_usable(const m3_model *model, m3_gemm_precision precision);

// The packed matrix `name` (an [n, k] weight) of a usable model (above), wrapping the mapped
// bytes (no copy). Errors: M3_STATUS_FORMAT naming the model file when the tensor is missing, of
// another size than the layout gives [n, k], or misaligned (a damaged file); M3_STATUS_NOMEM.
m3_status m3_cpu_packed_matrix(const m3_model *model, m3_gemm_precision precision, const char *name, size_t n,
                               size_t k, m3_packed_matrix **out, m3_error *err);

#endif
