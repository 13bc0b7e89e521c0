// SPDX-License-Identifier: MIT
//
// The container-independent part of m3_weights: the tensor list, the name index, the choice of
// reader by the file's first bytes.
#include "model/weights-private.h"

#include <stdlib.h>
#include <string.h>

m3_status m3_weights_new(m3_mapped_file *file, m3_weights **out, m3_error *err)
{
    *out = NULL;
    m3_weights *w = calloc(1, sizeof *w);
    if (!w) {
        m3_mapped_file_close(file);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", file ? file->path : "?");
    }
    w->file = file;
    *out = w;
    return M3_STATUS_OK;
}

m3_status m3_weights_add(m3_weights *w, const char *name, size_t len, const m3_tensor *t, m3_error *err)
{
    const char *path = w->file->path;
    if (w->count >= M3_WEIGHTS_MAX_TENSORS)
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: more than %d tensors", path,
                            M3_WEIGHTS_MAX_TENSORS);
    if (len == 0 || len > M3_WEIGHTS_MAX_NAME || memchr(name, 0, len))
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: invalid tensor name (length %zu)", path, len);
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        m3_tensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
        w->tensors = p;
        w->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    memcpy(copy, name, len);
    copy[len] = 0;
    w->tensors[w->count] = *t;
    w->tensors[w->count].name = copy;
    w->count++;
    return M3_STATUS_OK;
}

static int cmp_by_name(const void *a, const void *b)
{
    const m3_tensor *x = *(const m3_tensor *const *)a, *y = *(const m3_tensor *const *)b;
    return strcmp(x->name, y->name);
}

m3_status m3_weights_finish(m3_weights *w, m3_error *err)
{
    w->sorted = malloc((w->count ? w->count : 1) * sizeof *w->sorted);
    if (!w->sorted) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", w->file->path);
    for (size_t i = 0; i < w->count; i++) w->sorted[i] = &w->tensors[i];
    qsort(w->sorted, w->count, sizeof *w->sorted, cmp_by_name);
    for (size_t i = 1; i < w->count; i++)
        if (!strcmp(w->sorted[i]->name, w->sorted[i - 1]->name))
            return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: tensor %s appears twice", w->file->path,
                                w->sorted[i]->name);
    return M3_STATUS_OK;
}

bool m3_tensor_extent_ok(int ndim, const int64_t *shape, const int64_t *strides, int64_t offset,
                         int64_t storage_numel)
{
    if (offset < 0 || storage_numel < 0) return false;
    int64_t last = offset;  // index of the last reachable element
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || strides[i] < 0) return false;
        if (shape[i] == 0) empty = true;
    }
    if (empty) return offset <= storage_numel;
    for (int i = 0; i < ndim; i++) {
        int64_t step;
        if (__builtin_mul_overflow(shape[i] - 1, strides[i], &step)) return false;
        if (__builtin_add_overflow(last, step, &last)) return false;
    }
    return last < storage_numel;
}

m3_status m3_weights_open(const char *path, m3_weights **out, m3_error *err)
{
    *out = NULL;
    m3_mapped_file *file;
    m3_status st = m3_mapped_file_open(path, &file, err);
    if (st != M3_STATUS_OK) return st;
    if (file->size >= 4 && !memcmp(file->data, "PK\x03\x04", 4)) return m3_weights_open_pytorch(file, out, err);
    if (file->size >= 4 && !memcmp(file->data, "PK", 2))  // an empty zip, a spanned zip...
        return m3_weights_open_pytorch(file, out, err);
    return m3_weights_open_safetensors(file, out, err);
}

size_t m3_weights_count(const m3_weights *w)
{
    return w->count;
}

const m3_tensor *m3_weights_at(const m3_weights *w, size_t i)
{
    return i < w->count ? &w->tensors[i] : NULL;
}

const m3_tensor *m3_weights_find(const m3_weights *w, const char *name)
{
    if (!w->sorted) return NULL;
    size_t lo = 0, hi = w->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(w->sorted[mid]->name, name);
        if (c == 0) return w->sorted[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *m3_weights_path(const m3_weights *w)
{
    return w->file->path;
}

const m3_mapped_file *m3_weights_get_file(const m3_weights *w)
{
    return w->file;
}

void m3_weights_close(m3_weights *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->count; i++) free((char *)w->tensors[i].name);
    free(w->tensors);
    free(w->sorted);
    m3_mapped_file_close(w->file);
    free(w);
}
