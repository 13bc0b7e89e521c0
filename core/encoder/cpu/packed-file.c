// SPDX-License-Identifier: MIT
//
// The CPU backend's packed weights in a model file (packed-file.h). The names of the packed
// matrices, and which weights each one packs, are listed once here (matrix_at) for both the writer
// and the backend.
#include "encoder/cpu/packed-file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

enum { PER_LAYER = 4 };

// Matrix i of the list: its name, its [n, k] shape and the tensors it stacks (1, or 3 for QKV).
typedef struct matrix_ref {
    char name[64];
    size_t n, k;
    const m3_tensor *parts[3];
    int n_parts;
} matrix_ref;

static size_t matrix_count(const m3_model *model)
{
    return (size_t)m3_model_get_config(model)->layers * PER_LAYER + 1;
}

static void matrix_at(const m3_model *model, size_t i, matrix_ref *m)
{
    const m3_model_config *c = m3_model_get_config(model);
    const m3_model_weights *w = m3_model_get_weights(model);
    size_t h = (size_t)c->hidden, f = (size_t)c->intermediate;
    memset(m, 0, sizeof *m);
    m->n_parts = 1;
    if (i == (size_t)c->layers * PER_LAYER) {
        *m = (matrix_ref){.name = "colbert", .n = h, .k = h, .parts = {w->colbert_w}, .n_parts = 1};
        return;
    }
    const m3_layer_weights *L = &w->layers[i / PER_LAYER];
    int l = (int)(i / PER_LAYER);
    switch (i % PER_LAYER) {
    case 0:
        snprintf(m->name, sizeof m->name, "encoder.layer.%d.qkv", l);
        m->n = 3 * h, m->k = h, m->n_parts = 3;
        m->parts[0] = L->query_w, m->parts[1] = L->key_w, m->parts[2] = L->value_w;
        break;
    case 1:
        snprintf(m->name, sizeof m->name, "encoder.layer.%d.attn_out", l);
        m->n = h, m->k = h, m->parts[0] = L->attn_out_w;
        break;
    case 2:
        snprintf(m->name, sizeof m->name, "encoder.layer.%d.ffn_in", l);
        m->n = f, m->k = h, m->parts[0] = L->ffn_in_w;
        break;
    default:
        snprintf(m->name, sizeof m->name, "encoder.layer.%d.ffn_out", l);
        m->n = h, m->k = f, m->parts[0] = L->ffn_out_w;
        break;
    }
}

// No default: a precision added to m3_gemm_precision must name its tag here (the compiler warns),
// or it has none (NULL) and never uses a file's packed bytes.
const char *m3_cpu_packed_tag(m3_gemm_precision precision)
{
    switch (precision) {
    case M3_GEMM_FP32: return "fp32";
    case M3_GEMM_BF16: return "bf16";
    case M3_GEMM_INT8: return "int8";
    }
    return NULL;
}

static size_t packer_list(void *ctx, const m3_model *model, m3_model_packed_tensor *out, size_t max)
{
    const m3_cpu_packer *p = ctx;
    size_t n = matrix_count(model);
    for (size_t i = 0; i < n && i < max; i++) {
        matrix_ref m;
        matrix_at(model, i, &m);
        snprintf(out[i].name, sizeof out[i].name, "%s", m.name);
        out[i].bytes = m3_packed_matrix_bytes_for(m.n, m.k, p->precision);
    }
    return n;
}

// The weights as the file stores them: the writer rounds each value of a matrix to fp16 for an F16
// file (m3_f32_to_f16), and the backend reading that file packs m3_f16_to_f32 of it; the same
// round trip here makes the packed bytes equal to what packing the written file gives.
static m3_status packer_pack(void *ctx, const m3_model *model, m3_dtype stored, size_t i, void *dst, size_t bytes,
                             m3_error *err)
{
    const m3_cpu_packer *p = ctx;
    matrix_ref m;
    matrix_at(model, i, &m);
    size_t part_rows = m.n / (size_t)m.n_parts;
    for (int j = 0; j < m.n_parts; j++)
        if (!m.parts[j] || m.parts[j]->ndim != 2 || (size_t)m.parts[j]->shape[0] != part_rows ||
            (size_t)m.parts[j]->shape[1] != m.k)
            return m3_error_set(err, M3_STATUS_INVALID, 0, "packing %s: a weight has another shape", m.name);
    float *tmp = malloc(m.n * m.k * sizeof *tmp);
    if (!tmp) return m3_error_set(err, M3_STATUS_NOMEM, 0, "packing %s: out of memory", m.name);
    for (int j = 0; j < m.n_parts; j++) m3_tensor_to_f32(m.parts[j], tmp + (size_t)j * part_rows * m.k);
    if (stored == M3_DTYPE_F16)
        for (size_t e = 0; e < m.n * m.k; e++) tmp[e] = m3_f16_to_f32(m3_f32_to_f16(tmp[e]));
    m3_tensor t = {
        .name = m.name, .dtype = M3_DTYPE_F32, .ndim = 2,
        .shape = {(int64_t)m.n, (int64_t)m.k}, .strides = {(int64_t)m.k, 1}, .data = tmp,
    };
    m3_status st = m3_packed_matrix_pack_into(&t, p->precision, dst, bytes, err);
    free(tmp);
    return st;
}

m3_status m3_cpu_packer_init(m3_cpu_packer *p, m3_precision precision, m3_error *err)
{
    memset(p, 0, sizeof *p);
    if (precision == M3_PRECISION_AUTO)
        precision = m3_gemm_precision_native(M3_GEMM_BF16) ? M3_PRECISION_BF16 : M3_PRECISION_FP32;
    switch (precision) {  // AUTO is resolved above, never to int8 (as in the backend)
    case M3_PRECISION_FP32: p->precision = M3_GEMM_FP32; break;
    case M3_PRECISION_BF16: p->precision = M3_GEMM_BF16; break;
    case M3_PRECISION_INT8: p->precision = M3_GEMM_INT8; break;
    default:
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "no packed model-file layout for precision %s",
                            m3_precision_name(precision));
    }
    m3_gemm_layout_id(p->precision, p->layout, sizeof p->layout);
    p->base = (m3_model_packer){
        .precision = m3_cpu_packed_tag(p->precision),
        .layout = p->layout,
        .ctx = p,
        .list = packer_list,
        .pack = packer_pack,
    };
    return M3_STATUS_OK;
}

bool m3_cpu_packed_usable(const m3_model *model, m3_gemm_precision precision)
{
    const char *tag = m3_cpu_packed_tag(precision);
    if (!tag)
        return false;  // a precision without a file layout: packed at start-up
    const char *stored = m3_model_packed_layout(model, tag);
    char want[64];
    m3_gemm_layout_id(precision, want, sizeof want);
    if (!stored) {
        m3_log(M3_LOG_DEBUG, "%s: no packed %s weights in the model; packing them at start-up",
               m3_model_get_path(model), tag);
        return false;
    }
    if (strcmp(stored, want) != 0) {
        m3_log(M3_LOG_DEBUG,
               "%s: the model's packed %s weights have layout %s, this CPU's kernel reads %s; packing them "
               "at start-up (convert the model again on this machine to store its layout)",
               m3_model_get_path(model), tag, stored, want);
        return false;
    }
    return true;
}

m3_status m3_cpu_packed_matrix(const m3_model *model, m3_gemm_precision precision, const char *name, size_t n,
                               size_t k, m3_packed_matrix **out, m3_error *err)
{
    *out = NULL;
    size_t bytes = 0;
    const void *data = m3_model_packed_find(model, m3_cpu_packed_tag(precision), name, &bytes);
    if (!data)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: the packed %s weights lack %s (damaged file? convert the model again)",
                            m3_model_get_path(model), m3_cpu_packed_tag(precision), name);
    m3_error why = {0};
    m3_status st = m3_packed_matrix_wrap(n, k, precision, data, bytes, out, &why);
    if (st == M3_STATUS_FORMAT)
        return m3_error_set(err, st, 0, "%s: packed %s weight %s: %s (damaged file? convert the model again)",
                            m3_model_get_path(model), m3_cpu_packed_tag(precision), name, why.message);
    if (st != M3_STATUS_OK && err) *err = why;
    return st;
}
