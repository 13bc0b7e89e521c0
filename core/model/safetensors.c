// SPDX-License-Identifier: MIT
//
// safetensors reader: an 8-byte little-endian header length, a JSON header
//   {"__metadata__": {...}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}}
// and the raw little-endian data. Offsets are relative to the data section (after the header). We
// require what the reference implementation requires: the tensors tile the data section exactly
// (no overlap, no hole, nothing after the last one) and each holds numel * dtype size bytes.
// Tensors point into the mapping.
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/weights-private.h"

enum {
    MAX_HEADER = 100 * 1024 * 1024,  // the reference reader's limit
    MAX_JSON_DEPTH = 8,
};

typedef struct span {
    uint64_t begin, end;
    size_t index;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static bool get_u64(json_object *o, uint64_t max, uint64_t *out)
{
    if (!json_object_is_type(o, json_type_int)) return false;
    int64_t v = json_object_get_int64(o);
    if (v < 0 || (uint64_t)v > max) return false;
    *out = (uint64_t)v;
    return true;
}

static m3_status parse_tensor(m3_weights *w, const char *name, json_object *desc, const unsigned char *data,
                              uint64_t data_len, span *sp, m3_error *err)
{
    const char *path = w->file->path;
    json_object *jdtype, *jshape, *joffs;
    if (!json_object_is_type(desc, json_type_object) || !json_object_object_get_ex(desc, "dtype", &jdtype) ||
        !json_object_object_get_ex(desc, "shape", &jshape) ||
        !json_object_object_get_ex(desc, "data_offsets", &joffs) || !json_object_is_type(jdtype, json_type_string) ||
        !json_object_is_type(jshape, json_type_array) || !json_object_is_type(joffs, json_type_array))
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: tensor %s: header entry needs dtype, shape and data_offsets", path, name);
    m3_tensor t = {0};
    const char *dt = json_object_get_string(jdtype);
    if (!strcmp(dt, "F32")) t.dtype = M3_DTYPE_F32;
    else if (!strcmp(dt, "F16")) t.dtype = M3_DTYPE_F16;
    else if (!strcmp(dt, "BF16")) t.dtype = M3_DTYPE_BF16;
    else
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: tensor %s has dtype %.16s (F32, F16, BF16 are read)",
                            path, name, dt);
    size_t ndim = json_object_array_length(jshape);
    if (ndim > M3_TENSOR_MAX_DIMS)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: tensor %s has %zu dimensions (at most %d)", path,
                            name, ndim, M3_TENSOR_MAX_DIMS);
    t.ndim = (int)ndim;
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d;
        if (!get_u64(json_object_array_get_idx(jshape, i), INT64_MAX, &d) ||
            __builtin_mul_overflow(numel, d, &numel) || numel > (uint64_t)INT64_MAX / 8)
            return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: tensor %s has an invalid shape", path, name);
        t.shape[i] = (int64_t)d;
    }
    int64_t stride = 1;
    for (int i = t.ndim - 1; i >= 0; i--) {
        t.strides[i] = stride;
        stride *= t.shape[i] ? t.shape[i] : 1;
    }
    uint64_t begin, end;
    if (json_object_array_length(joffs) != 2 || !get_u64(json_object_array_get_idx(joffs, 0), data_len, &begin) ||
        !get_u64(json_object_array_get_idx(joffs, 1), data_len, &end) || begin > end)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: tensor %s: data_offsets are not a range inside the %llu data bytes", path, name,
                            (unsigned long long)data_len);
    uint64_t bytes = numel * m3_dtype_size(t.dtype);
    if (end - begin != bytes)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: tensor %s: data_offsets hold %llu bytes, its shape and dtype need %llu", path,
                            name, (unsigned long long)(end - begin), (unsigned long long)bytes);
    t.data = data + begin;
    // Encoders read elements through typed pointers: refuse misaligned data rather than fault later.
    if ((uintptr_t)(data + begin) % m3_dtype_size(t.dtype) != 0)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: tensor %s: data is not aligned to its element size",
                            path, name);
    sp->begin = begin;
    sp->end = end;
    sp->index = w->count;
    return m3_weights_add(w, name, strlen(name), &t, err);
}

static m3_status parse(m3_weights *w, m3_error *err)
{
    const m3_mapped_file *f = w->file;
    const char *path = f->path;
    if (f->size < 8)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not a safetensors file (%zu bytes, no header)", path,
                            f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->data[i];
    if (n > MAX_HEADER || n > f->size - 8)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: not a safetensors file (header length %llu, file size %zu)", path,
                            (unsigned long long)n, f->size);
    if (n < 2 || f->data[8] != '{')
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not a safetensors file (the header is not a JSON object)",
                            path);
    const char *json = (const char *)f->data + 8;
    json_tokener *tok = json_tokener_new_ex(MAX_JSON_DEPTH);
    if (!tok) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, json, (int)n);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        json_object_put(root);
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: the safetensors header is not valid JSON: %s", path,
                            jerr == json_tokener_continue ? "truncated" : json_tokener_error_desc(jerr));
    }
    // The writer pads the header with spaces to an 8-byte boundary; anything else is damage.
    for (size_t i = end; i < n; i++)
        if (json[i] != ' ' && json[i] != '\t' && json[i] != '\n' && json[i] != '\r') {
            json_object_put(root);
            return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: garbage after the safetensors header at byte %zu",
                                path, (size_t)(8 + i));
        }
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: the safetensors header is not a JSON object", path);
    }
    const unsigned char *data = f->data + 8 + n;
    uint64_t data_len = f->size - 8 - n;
    size_t nkeys = (size_t)json_object_object_length(root);
    span *spans = malloc((nkeys ? nkeys : 1) * sizeof *spans);
    if (!spans) {
        json_object_put(root);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    }
    m3_status st = M3_STATUS_OK;
    size_t ns = 0;
    json_object_object_foreach(root, key, val)
    {
        if (!strcmp(key, "__metadata__")) continue;  // free-form strings; nothing we need
        st = parse_tensor(w, key, val, data, data_len, &spans[ns], err);
        if (st != M3_STATUS_OK) break;
        ns++;
    }
    json_object_put(root);
    if (st == M3_STATUS_OK) {
        qsort(spans, ns, sizeof *spans, cmp_span);
        uint64_t at = 0;
        for (size_t i = 0; i < ns && st == M3_STATUS_OK; i++) {
            if (spans[i].begin != at)
                st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: tensor %s: data %s other tensors (offset %llu, expected %llu)",
                                  path, w->tensors[spans[i].index].name, spans[i].begin < at ? "overlaps" : "leaves a gap before",
                                  (unsigned long long)spans[i].begin, (unsigned long long)at);
            at = spans[i].end;
        }
        if (st == M3_STATUS_OK && at != data_len)
            st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: %llu bytes after the last tensor (damaged or truncated?)",
                              path, (unsigned long long)(data_len - at));
    }
    free(spans);
    if (st == M3_STATUS_OK) st = m3_weights_finish(w, err);
    return st;
}

m3_status m3_weights_open_safetensors(m3_mapped_file *file, m3_weights **out, m3_error *err)
{
    *out = NULL;
    m3_weights *w;
    m3_status st = m3_weights_new(file, &w, err);
    if (st != M3_STATUS_OK) return st;
    st = parse(w, err);
    if (st != M3_STATUS_OK) {
        m3_weights_close(w);
        return st;
    }
    *out = w;
    return M3_STATUS_OK;
}
