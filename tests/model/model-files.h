// SPDX-License-Identifier: MIT
//
// Helpers for tests that write model files: temp dirs, whole-file IO, a safetensors writer and a
// small zip writer (stored entries, optional zip64 everywhere), used to make damaged and variant
// checkpoints.
#ifndef M3_TESTS_MODEL_MODEL_FILES_H
#define M3_TESTS_MODEL_MODEL_FILES_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/weights.h"
#include "model/zip-private.h"

static inline char *mf_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/m3-model-test-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    if (!d) {
        perror("mkdtemp");
        exit(1);
    }
    return strdup(d);
}

static inline void mf_rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline void mf_write(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        exit(1);
    }
}

static inline unsigned char *mf_read(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) exit(1);
    fclose(f);
    *size = (size_t)n;
    return p;
}

static inline char *mf_join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

// Links (or copies) a file of the m3-tiny fixture into dir.
static inline void mf_link(const char *fixture_dir, const char *dir, const char *name)
{
    char *src = mf_join(fixture_dir, name), *dst = mf_join(dir, name);
    if (symlink(src, dst)) {
        perror(dst);
        exit(1);
    }
    free(src);
    free(dst);
}

// Writes the contiguous tensors of w as a safetensors file. prefix is prepended to every name;
// skip (or NULL) names a tensor to leave out; reshape (or NULL) names a tensor whose 2-D shape is
// written as [shape0, numel / shape0].
static inline void mf_write_safetensors(const char *path, const m3_weights *w, const char *prefix, const char *skip,
                                        const char *reshape, int64_t shape0)
{
    size_t cap = 1 << 20, used = 0;
    char *hdr = malloc(cap);
    used += (size_t)snprintf(hdr + used, cap - used, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < m3_weights_count(w); i++) {
        const m3_tensor *t = m3_weights_at(w, i);
        if (skip && !strcmp(t->name, skip)) continue;
        int64_t numel = m3_tensor_numel(t);
        uint64_t bytes = (uint64_t)numel * m3_dtype_size(t->dtype);
        used += (size_t)snprintf(hdr + used, cap - used, ",\"%s%s\":{\"dtype\":\"%s\",\"shape\":[", prefix, t->name,
                                 m3_dtype_name(t->dtype));
        if (reshape && !strcmp(t->name, reshape))
            used += (size_t)snprintf(hdr + used, cap - used, "%lld,%lld", (long long)shape0,
                                     (long long)(numel / shape0));
        else
            for (int d = 0; d < t->ndim; d++)
                used += (size_t)snprintf(hdr + used, cap - used, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        used += (size_t)snprintf(hdr + used, cap - used, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                 (unsigned long long)(off + bytes));
        off += bytes;
    }
    used += (size_t)snprintf(hdr + used, cap - used, "}");
    while (used % 8) hdr[used++] = ' ';
    FILE *f = fopen(path, "wb");
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)used >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(hdr, 1, used, f);
    for (size_t i = 0; i < m3_weights_count(w); i++) {
        const m3_tensor *t = m3_weights_at(w, i);
        if (skip && !strcmp(t->name, skip)) continue;
        fwrite(t->data, m3_dtype_size(t->dtype), (size_t)m3_tensor_numel(t), f);
    }
    fclose(f);
    free(hdr);
}

typedef struct mf_entry {
    const char *name;
    const void *data;
    size_t size;
    uint16_t method;   // 0 stored; anything else is written as is (the data is not compressed)
    uint64_t claimed;  // when non-zero: the size written in the headers instead of size
} mf_entry;

typedef struct mf_buf {
    unsigned char *p;
    size_t n, cap;
} mf_buf;

static inline void mf_put(mf_buf *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 1024;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static inline void mf_u16(mf_buf *b, uint32_t v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    mf_put(b, x, 2);
}

static inline void mf_u32(mf_buf *b, uint32_t v)
{
    mf_u16(b, v & 0xffff);
    mf_u16(b, v >> 16);
}

static inline void mf_u64(mf_buf *b, uint64_t v)
{
    mf_u32(b, (uint32_t)v);
    mf_u32(b, (uint32_t)(v >> 32));
}

// Builds a zip archive of the entries (data aligned to 64 bytes with a padding extra field, as
// torch does). zip64: every size and offset goes through zip64 extra fields and a zip64 end record.
static inline unsigned char *mf_zip(const mf_entry *e, size_t n, bool zip64, uint64_t claimed_count, size_t *size)
{
    mf_buf b = {0};
    uint64_t *offsets = calloc(n + 1, sizeof *offsets);
    for (size_t i = 0; i < n; i++) {
        offsets[i] = b.n;
        uint64_t sz = e[i].claimed ? e[i].claimed : e[i].size;
        size_t name_len = strlen(e[i].name);
        size_t extra64 = zip64 ? 20 : 0;
        size_t pos = b.n + 30 + name_len + extra64 + 4;
        size_t pad = (64 - pos % 64) % 64;
        mf_u32(&b, 0x04034b50);
        mf_u16(&b, zip64 ? 45 : 20);
        mf_u16(&b, 0);
        mf_u16(&b, e[i].method);
        mf_u32(&b, 0);
        mf_u32(&b, m3_crc32(e[i].data, e[i].size));
        mf_u32(&b, zip64 ? 0xffffffffu : (uint32_t)sz);
        mf_u32(&b, zip64 ? 0xffffffffu : (uint32_t)sz);
        mf_u16(&b, (uint32_t)name_len);
        mf_u16(&b, (uint32_t)(extra64 + 4 + pad));
        mf_put(&b, e[i].name, name_len);
        if (zip64) {
            mf_u16(&b, 1);
            mf_u16(&b, 16);
            mf_u64(&b, sz);
            mf_u64(&b, sz);
        }
        mf_u16(&b, 0x4246);
        mf_u16(&b, (uint32_t)pad);
        static const unsigned char zeros[64];
        mf_put(&b, zeros, pad);
        mf_put(&b, e[i].data, e[i].size);
    }
    uint64_t cd_offset = b.n;
    for (size_t i = 0; i < n; i++) {
        uint64_t sz = e[i].claimed ? e[i].claimed : e[i].size;
        size_t name_len = strlen(e[i].name);
        mf_u32(&b, 0x02014b50);
        mf_u16(&b, 0x031e);
        mf_u16(&b, zip64 ? 45 : 20);
        mf_u16(&b, 0);
        mf_u16(&b, e[i].method);
        mf_u32(&b, 0);
        mf_u32(&b, m3_crc32(e[i].data, e[i].size));
        mf_u32(&b, zip64 ? 0xffffffffu : (uint32_t)sz);
        mf_u32(&b, zip64 ? 0xffffffffu : (uint32_t)sz);
        mf_u16(&b, (uint32_t)name_len);
        mf_u16(&b, zip64 ? 28 : 0);
        mf_u16(&b, 0);
        mf_u16(&b, 0);
        mf_u16(&b, 0);
        mf_u32(&b, 0);
        mf_u32(&b, zip64 ? 0xffffffffu : (uint32_t)offsets[i]);
        mf_put(&b, e[i].name, name_len);
        if (zip64) {
            mf_u16(&b, 1);
            mf_u16(&b, 24);
            mf_u64(&b, sz);
            mf_u64(&b, sz);
            mf_u64(&b, offsets[i]);
        }
    }
    uint64_t cd_size = b.n - cd_offset;
    uint64_t count = claimed_count ? claimed_count : n;
    if (zip64) {
        uint64_t rec = b.n;
        mf_u32(&b, 0x06064b50);
        mf_u64(&b, 44);
        mf_u16(&b, 45);
        mf_u16(&b, 45);
        mf_u32(&b, 0);
        mf_u32(&b, 0);
        mf_u64(&b, count);
        mf_u64(&b, count);
        mf_u64(&b, cd_size);
        mf_u64(&b, cd_offset);
        mf_u32(&b, 0x07064b50);
        mf_u32(&b, 0);
        mf_u64(&b, rec);
        mf_u32(&b, 1);
    }
    mf_u32(&b, 0x06054b50);
    mf_u16(&b, 0);
    mf_u16(&b, 0);
    mf_u16(&b, zip64 ? 0xffff : (uint32_t)count);
    mf_u16(&b, zip64 ? 0xffff : (uint32_t)count);
    mf_u32(&b, zip64 ? 0xffffffffu : (uint32_t)cd_size);
    mf_u32(&b, zip64 ? 0xffffffffu : (uint32_t)cd_offset);
    mf_u16(&b, 0);
    free(offsets);
    *size = b.n;
    return b.p;
}

#endif
