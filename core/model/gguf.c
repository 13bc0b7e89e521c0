// SPDX-License-Identifier: MIT
//
// A strict GGUF v3 reader over a memory mapping (gguf-private.h). Every length is checked against
// the bytes that remain before it is used; nothing outside the mapping is ever read.
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf-private.h"
#include "model/weights-private.h"

typedef struct reader {
    const unsigned char *base, *p, *end;
    const char *path;
    m3_error *err;
} reader;

__attribute__((format(printf, 3, 4))) static m3_status fail(const reader *r, m3_status st, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return m3_error_set(r->err, st, 0, "%s: %s GGUF model file: %s (at byte %zu of %zu)", r->path,
                        st == M3_STATUS_FORMAT ? "malformed or truncated" : "unsupported", what,
                        (size_t)(r->p - r->base), (size_t)(r->end - r->base));
}

static size_t left(const reader *r)
{
    return (size_t)(r->end - r->p);
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static m3_status read_u32(reader *r, uint32_t *v, const char *what)
{
    if (left(r) < 4) return fail(r, M3_STATUS_FORMAT, "%s runs past the end", what);
    *v = (uint32_t)le(r->p, 4);
    r->p += 4;
    return M3_STATUS_OK;
}

static m3_status read_u64(reader *r, uint64_t *v, const char *what)
{
    if (left(r) < 8) return fail(r, M3_STATUS_FORMAT, "%s runs past the end", what);
    *v = le(r->p, 8);
    r->p += 8;
    return M3_STATUS_OK;
}

static m3_status read_string(reader *r, const char **s, size_t *len, const char *what)
{
    uint64_t n = 0;
    m3_status st = read_u64(r, &n, what);
    if (st != M3_STATUS_OK) return st;
    if (n > left(r)) return fail(r, M3_STATUS_FORMAT, "%s of %llu bytes runs past the end", what, (unsigned long long)n);
    *s = (const char *)r->p;
    *len = (size_t)n;
    r->p += n;
    return M3_STATUS_OK;
}

static size_t scalar_size(uint32_t type)
{
    switch (type) {
    case M3_GGUF_UINT8:
    case M3_GGUF_INT8:
    case M3_GGUF_BOOL: return 1;
    case M3_GGUF_UINT16:
    case M3_GGUF_INT16: return 2;
    case M3_GGUF_UINT32:
    case M3_GGUF_INT32:
    case M3_GGUF_FLOAT32: return 4;
    case M3_GGUF_UINT64:
    case M3_GGUF_INT64:
    case M3_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

#define TRY(expr)                           \
    do {                                    \
        m3_status s_ = (expr);              \
        if (s_ != M3_STATUS_OK) return s_;  \
    } while (0)

static m3_status read_value(reader *r, m3_gguf_kv *kv, size_t index)
{
    TRY(read_u32(r, &kv->type, "a value type"));
    kv->n = 1;
    if (kv->type == M3_GGUF_STRING) {
        const char *s;
        size_t len;
        TRY(read_string(r, &s, &len, "a string value"));
        kv->value = (const unsigned char *)s;
        kv->size = len;
        return M3_STATUS_OK;
    }
    if (kv->type == M3_GGUF_ARRAY) {
        uint64_t n = 0;
        TRY(read_u32(r, &kv->array_type, "an array type"));
        TRY(read_u64(r, &n, "an array length"));
        kv->n = n;
        kv->value = r->p;
        if (kv->array_type == M3_GGUF_STRING) {
            // Each string is at least its 8-byte length.
            if (n > left(r) / 8)
                return fail(r, M3_STATUS_FORMAT, "key %zu: array of %llu strings runs past the end", index,
                            (unsigned long long)n);
            for (uint64_t i = 0; i < n; i++) {
                const char *s;
                size_t len;
                TRY(read_string(r, &s, &len, "a string in an array"));
            }
        } else if (kv->array_type == M3_GGUF_ARRAY) {
            return fail(r, M3_STATUS_UNSUPPORTED, "key %zu: arrays of arrays are not supported", index);
        } else {
            size_t es = scalar_size(kv->array_type);
            if (es == 0)
                return fail(r, M3_STATUS_FORMAT, "key %zu: unknown array element type %u", index, kv->array_type);
            if (n > left(r) / es)
                return fail(r, M3_STATUS_FORMAT, "key %zu: array of %llu elements runs past the end", index,
                            (unsigned long long)n);
            r->p += n * es;
        }
        kv->size = (size_t)(r->p - kv->value);
        return M3_STATUS_OK;
    }
    size_t es = scalar_size(kv->type);
    if (es == 0) return fail(r, M3_STATUS_FORMAT, "key %zu: unknown value type %u", index, kv->type);
    if (left(r) < es) return fail(r, M3_STATUS_FORMAT, "key %zu: value runs past the end", index);
    kv->value = r->p;
    kv->size = es;
    r->p += es;
    return M3_STATUS_OK;
}

static int key_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

static int kv_sort_cmp(const void *x, const void *y)
{
    const m3_gguf_kv *a = *(const m3_gguf_kv *const *)x, *b = *(const m3_gguf_kv *const *)y;
    return key_cmp(a->key, a->key_len, b->key, b->key_len);
}

static int tensor_offset_cmp(const void *x, const void *y)
{
    const m3_gguf_tensor *a = *(const m3_gguf_tensor *const *)x, *b = *(const m3_gguf_tensor *const *)y;
    return (a->offset > b->offset) - (a->offset < b->offset);
}

static size_t ggml_type_size(uint32_t type)
{
    return type == M3_GGML_F32 ? 4 : type == M3_GGML_F16 || type == M3_GGML_BF16 ? 2 : type == M3_GGML_I8 ? 1 : 0;
}

static m3_status parse(reader *r, m3_gguf *g)
{
    if (left(r) < 4 || memcmp(r->p, M3_GGUF_MAGIC, 4) != 0)
        return fail(r, M3_STATUS_FORMAT, "no GGUF magic");
    r->p += 4;
    uint32_t version = 0;
    uint64_t n_tensors = 0, n_kv = 0;
    TRY(read_u32(r, &version, "the version"));
    if (version != M3_GGUF_VERSION)
        return fail(r, M3_STATUS_UNSUPPORTED, "version %u (only version 3 is read)", version);
    TRY(read_u64(r, &n_tensors, "the tensor count"));
    TRY(read_u64(r, &n_kv, "the key count"));
    if (n_tensors > M3_WEIGHTS_MAX_TENSORS)
        return fail(r, M3_STATUS_LIMIT, "%llu tensors (at most %d)", (unsigned long long)n_tensors,
                    M3_WEIGHTS_MAX_TENSORS);
    if (n_kv > M3_GGUF_MAX_KV)
        return fail(r, M3_STATUS_LIMIT, "%llu keys (at most %d)", (unsigned long long)n_kv, M3_GGUF_MAX_KV);
    // Each pair takes at least 12 bytes, each tensor info 24: a count that cannot fit is refused
    // before anything is allocated for it.
    if (n_kv > left(r) / 12 || n_tensors > left(r) / 24)
        return fail(r, M3_STATUS_FORMAT, "%llu keys and %llu tensors cannot fit in the file",
                    (unsigned long long)n_kv, (unsigned long long)n_tensors);
    g->kvs = calloc(n_kv ? n_kv : 1, sizeof *g->kvs);
    g->sorted = calloc(n_kv ? n_kv : 1, sizeof *g->sorted);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->kvs || !g->sorted || !g->tensors)
        return m3_error_set(r->err, M3_STATUS_NOMEM, 0, "%s: out of memory reading the GGUF header", r->path);
    for (size_t i = 0; i < n_kv; i++) {
        m3_gguf_kv *kv = &g->kvs[i];
        TRY(read_string(r, &kv->key, &kv->key_len, "a key"));
        if (kv->key_len == 0 || kv->key_len > 65535)
            return fail(r, M3_STATUS_FORMAT, "key %zu has a length of %zu bytes", i, kv->key_len);
        TRY(read_value(r, kv, i));
        g->sorted[i] = kv;
        g->n_kv = i + 1;
    }
    qsort(g->sorted, g->n_kv, sizeof *g->sorted, kv_sort_cmp);
    for (size_t i = 1; i < g->n_kv; i++)
        if (kv_sort_cmp(&g->sorted[i - 1], &g->sorted[i]) == 0)
            return fail(r, M3_STATUS_FORMAT, "key %.*s appears twice", (int)(g->sorted[i]->key_len > 100 ? 100 : g->sorted[i]->key_len),
                        g->sorted[i]->key);
    g->alignment = M3_GGUF_DEFAULT_ALIGNMENT;
    const m3_gguf_kv *al = m3_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != M3_GGUF_UINT32) return fail(r, M3_STATUS_FORMAT, "general.alignment is not a uint32");
        uint32_t a = (uint32_t)le(al->value, 4);
        if (a < 8 || a > 65536 || (a & (a - 1)) != 0)
            return fail(r, M3_STATUS_UNSUPPORTED, "general.alignment %u is not a power of two from 8 to 65536", a);
        g->alignment = a;
    }
    for (size_t i = 0; i < n_tensors; i++) {
        m3_gguf_tensor *t = &g->tensors[i];
        TRY(read_string(r, &t->name, &t->name_len, "a tensor name"));
        if (t->name_len == 0 || t->name_len > M3_WEIGHTS_MAX_NAME)
            return fail(r, M3_STATUS_FORMAT, "tensor %zu has a name of %zu bytes", i, t->name_len);
        TRY(read_u32(r, &t->n_dims, "a tensor's dimension count"));
        if (t->n_dims < 1 || t->n_dims > M3_GGUF_MAX_DIMS)
            return fail(r, M3_STATUS_FORMAT, "tensor %zu has %u dimensions", i, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) TRY(read_u64(r, &t->dims[d], "a tensor dimension"));
        TRY(read_u32(r, &t->type, "a tensor type"));
        TRY(read_u64(r, &t->offset, "a tensor offset"));
        g->n_tensors = i + 1;
    }
    // The data section starts at the next multiple of the alignment.
    size_t header_end = (size_t)(r->p - r->base);
    size_t file_size = (size_t)(r->end - r->base);
    size_t pad = (g->alignment - header_end % g->alignment) % g->alignment;
    if (n_tensors && pad > file_size - header_end)
        return fail(r, M3_STATUS_FORMAT, "the tensor data section is missing");
    g->data_offset = header_end + (n_tensors ? pad : 0);
    g->data_end = g->data_offset;
    size_t data_size = file_size - g->data_offset;
    r->p = r->base + g->data_offset;
    for (size_t i = 0; i < g->n_tensors; i++) {
        m3_gguf_tensor *t = &g->tensors[i];
        size_t es = ggml_type_size(t->type);
        if (es == 0)
            return fail(r, M3_STATUS_UNSUPPORTED, "tensor %.*s has element type %u (F32, F16, BF16 and I8 are read)",
                        (int)t->name_len, t->name, t->type);
        uint64_t bytes = es;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (t->dims[d] == 0 || t->dims[d] > data_size / bytes)
                return fail(r, M3_STATUS_FORMAT, "tensor %.*s: dimension %u of %llu does not fit in the data section",
                            (int)t->name_len, t->name, d, (unsigned long long)t->dims[d]);
            bytes *= t->dims[d];
        }
        if (t->offset % g->alignment != 0)
            return fail(r, M3_STATUS_FORMAT, "tensor %.*s: offset %llu is not a multiple of the alignment %zu",
                        (int)t->name_len, t->name, (unsigned long long)t->offset, g->alignment);
        if (t->offset > data_size || bytes > data_size - t->offset)
            return fail(r, M3_STATUS_FORMAT,
                        "tensor %.*s: bytes %llu to %llu of the data section lie past the end of the file "
                        "(%zu bytes of data; the file is truncated)",
                        (int)t->name_len, t->name, (unsigned long long)t->offset,
                        (unsigned long long)(t->offset + bytes), data_size);
        t->bytes = bytes;
        size_t end = g->data_offset + (size_t)(t->offset + bytes);
        if (end > g->data_end) g->data_end = end;
    }
    // Overlapping tensors mean a damaged index; sort by offset and compare neighbours.
    const m3_gguf_tensor **by_offset = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *by_offset);
    if (!by_offset) return m3_error_set(r->err, M3_STATUS_NOMEM, 0, "%s: out of memory", r->path);
    for (size_t i = 0; i < g->n_tensors; i++) by_offset[i] = &g->tensors[i];
    qsort(by_offset, g->n_tensors, sizeof *by_offset, tensor_offset_cmp);
    for (size_t i = 1; i < g->n_tensors; i++) {
        if (by_offset[i]->offset < by_offset[i - 1]->offset + by_offset[i - 1]->bytes) {
            const m3_gguf_tensor *t = by_offset[i];
            free(by_offset);
            return fail(r, M3_STATUS_FORMAT, "tensor %.*s overlaps another tensor", (int)t->name_len, t->name);
        }
    }
    free(by_offset);
    // A writer may pad the last tensor to the alignment, no more: anything else is damage.
    size_t slack = file_size - g->data_end;
    if (slack >= g->alignment && g->n_tensors)
        return fail(r, M3_STATUS_FORMAT, "%zu unexplained bytes follow the tensor data", slack);
    return M3_STATUS_OK;
}

m3_status m3_gguf_parse(const m3_mapped_file *file, m3_gguf *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    out->file = file;
    reader r = {file->data, file->data, file->data + file->size, file->path, err};
    if (!file->data) r.base = r.p = r.end = (const unsigned char *)"";
    m3_status st = parse(&r, out);
    if (st != M3_STATUS_OK) m3_gguf_destroy(out);
    return st;
}

void m3_gguf_destroy(m3_gguf *g)
{
    free(g->kvs);
    free(g->sorted);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

const m3_gguf_kv *m3_gguf_find(const m3_gguf *g, const char *key)
{
    size_t lo = 0, hi = g->n_kv, len = strlen(key);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(g->sorted[mid]->key, g->sorted[mid]->key_len, key, len);
        if (c == 0) return g->sorted[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static m3_status lookup(const m3_gguf *g, const char *key, uint32_t type, const char *type_name,
                        const m3_gguf_kv **out, m3_error *err)
{
    const m3_gguf_kv *kv = m3_gguf_find(g, key);
    if (!kv)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: the GGUF model file lacks the key %s", g->file->path, key);
    if (kv->type != type)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: GGUF key %s has value type %u, expected %s",
                            g->file->path, key, kv->type, type_name);
    *out = kv;
    return M3_STATUS_OK;
}

m3_status m3_gguf_get_u32(const m3_gguf *g, const char *key, uint32_t *v, m3_error *err)
{
    const m3_gguf_kv *kv = NULL;
    TRY(lookup(g, key, M3_GGUF_UINT32, "uint32", &kv, err));
    *v = (uint32_t)le(kv->value, 4);
    return M3_STATUS_OK;
}

m3_status m3_gguf_get_f32(const m3_gguf *g, const char *key, float *v, m3_error *err)
{
    const m3_gguf_kv *kv = NULL;
    TRY(lookup(g, key, M3_GGUF_FLOAT32, "float32", &kv, err));
    uint32_t bits = (uint32_t)le(kv->value, 4);
    memcpy(v, &bits, 4);
    return M3_STATUS_OK;
}

m3_status m3_gguf_get_bool(const m3_gguf *g, const char *key, bool *v, m3_error *err)
{
    const m3_gguf_kv *kv = NULL;
    TRY(lookup(g, key, M3_GGUF_BOOL, "bool", &kv, err));
    if (kv->value[0] > 1)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: GGUF key %s holds %u, not a bool", g->file->path, key,
                            kv->value[0]);
    *v = kv->value[0] != 0;
    return M3_STATUS_OK;
}

m3_status m3_gguf_get_string(const m3_gguf *g, const char *key, const char **s, size_t *len, m3_error *err)
{
    const m3_gguf_kv *kv = NULL;
    TRY(lookup(g, key, M3_GGUF_STRING, "string", &kv, err));
    *s = (const char *)kv->value;
    *len = kv->size;
    return M3_STATUS_OK;
}

m3_status m3_gguf_get_array(const m3_gguf *g, const char *key, uint32_t type, const m3_gguf_kv **out,
                            m3_error *err)
{
    const m3_gguf_kv *kv = NULL;
    TRY(lookup(g, key, M3_GGUF_ARRAY, "array", &kv, err));
    if (kv->array_type != type)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: GGUF key %s is an array of type %u, expected %u",
                            g->file->path, key, kv->array_type, type);
    *out = kv;
    return M3_STATUS_OK;
}

m3_status m3_gguf_compute_checksum(const m3_gguf *g, char hex[M3_GGUF_CHECKSUM_HEX + 1], const char **stored,
                                   m3_error *err)
{
    const char *s = NULL;
    size_t len = 0;
    const size_t plen = strlen(M3_GGUF_CHECKSUM_PREFIX);
    TRY(m3_gguf_get_string(g, M3_GGUF_CHECKSUM_KEY, &s, &len, err));
    bool ok = len == plen + M3_GGUF_CHECKSUM_HEX && memcmp(s, M3_GGUF_CHECKSUM_PREFIX, plen) == 0;
    for (size_t i = plen; ok && i < len; i++) ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!ok)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: %s is not \"sha256:\" and 64 hex digits (damaged)",
                            g->file->path, M3_GGUF_CHECKSUM_KEY);
    *stored = s + plen;
    const unsigned char *data = g->file->data;
    size_t at = (size_t)((const unsigned char *)s + plen - data), size = g->file->size;
    char zeros[M3_GGUF_CHECKSUM_HEX];
    memset(zeros, '0', sizeof zeros);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned md_len = 0;
    ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, data, at) &&
         EVP_DigestUpdate(ctx, zeros, M3_GGUF_CHECKSUM_HEX);
    // The rest in slices, so that a 1 GB mapping is read once, front to back.
    for (size_t off = at + M3_GGUF_CHECKSUM_HEX; ok && off < size;) {
        size_t n = size - off < (64u << 20) ? size - off : (64u << 20);
        ok = EVP_DigestUpdate(ctx, data + off, n);
        off += n;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: SHA-256 failed", g->file->path);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return M3_STATUS_OK;
}
