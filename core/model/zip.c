// SPDX-License-Identifier: MIT
//
// Minimal read-only zip reader (see zip-private.h). Layouts follow PKWARE's APPNOTE.TXT:
// end of central directory (EOCD) record, zip64 EOCD locator and record, central directory file
// headers, local file headers, zip64 extended information extra field (id 0x0001).
#include "model/zip-private.h"

#include <stdlib.h>
#include <string.h>

enum {
    SIG_LOCAL = 0x04034b50,
    SIG_CENTRAL = 0x02014b50,
    SIG_EOCD = 0x06054b50,
    SIG_EOCD64 = 0x06064b50,
    SIG_LOCATOR64 = 0x07064b50,
    EOCD_SIZE = 22,
    LOCATOR64_SIZE = 20,
    EOCD64_SIZE = 56,
    CENTRAL_SIZE = 46,
    LOCAL_SIZE = 30,
};

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

uint32_t m3_crc32(const void *data, size_t size)
{
    static uint32_t table[256];
    static _Atomic int ready;
    if (!ready) {
        // Idempotent: racing threads compute the same table.
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < size; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static int cmp_name(const void *a, const void *b)
{
    const m3_zip_entry *x = *(m3_zip_entry *const *)a, *y = *(m3_zip_entry *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static int cmp_offset(const void *a, const void *b)
{
    const m3_zip_entry *x = a, *y = b;
    return x->local_offset < y->local_offset ? -1 : x->local_offset > y->local_offset;
}

// Finds the EOCD record: the last signature from which a complete record fits (a comment of up to
// 65535 bytes may follow it).
static m3_status find_eocd(const m3_mapped_file *f, size_t *at, m3_error *err)
{
    if (f->size < EOCD_SIZE)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not a zip archive (%zu bytes)", f->path, f->size);
    size_t lowest = f->size > EOCD_SIZE + 65535 ? f->size - EOCD_SIZE - 65535 : 0;
    for (size_t i = f->size - EOCD_SIZE + 1; i-- > lowest;) {
        if (rd32(f->data + i) == SIG_EOCD && i + EOCD_SIZE + rd16(f->data + i + 20) == f->size) {
            *at = i;
            return M3_STATUS_OK;
        }
    }
    return m3_error_set(err, M3_STATUS_FORMAT, 0,
                        "%s: no zip end-of-central-directory record (truncated or not a zip archive)", f->path);
}

static m3_status format_error(m3_error *err, const m3_mapped_file *f, const char *what)
{
    return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: damaged zip archive: %s", f->path, what);
}

m3_status m3_zip_open(const m3_mapped_file *f, m3_zip *zip, m3_error *err)
{
    memset(zip, 0, sizeof *zip);
    zip->file = f;
    size_t eocd = 0;
    m3_status st = find_eocd(f, &eocd, err);
    if (st != M3_STATUS_OK) return st;
    const unsigned char *e = f->data + eocd;
    uint64_t disk = rd16(e + 4), cd_disk = rd16(e + 6), n_disk = rd16(e + 8), n_total = rd16(e + 10);
    uint64_t cd_size = rd32(e + 12), cd_offset = rd32(e + 16);
    uint64_t cd_end_limit = eocd;  // the central directory ends before this
    if (eocd >= LOCATOR64_SIZE && rd32(f->data + eocd - LOCATOR64_SIZE) == SIG_LOCATOR64) {
        const unsigned char *loc = f->data + eocd - LOCATOR64_SIZE;
        uint64_t rec = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: multi-disk zip archives are not supported",
                                f->path);
        if (rec > eocd - LOCATOR64_SIZE || eocd - LOCATOR64_SIZE - rec < EOCD64_SIZE)
            return format_error(err, f, "zip64 end record out of range");
        const unsigned char *z = f->data + rec;
        if (rd32(z) != SIG_EOCD64) return format_error(err, f, "bad zip64 end record signature");
        disk = rd32(z + 16);
        cd_disk = rd32(z + 20);
        n_disk = rd64(z + 24);
        n_total = rd64(z + 32);
        cd_size = rd64(z + 40);
        cd_offset = rd64(z + 48);
        cd_end_limit = rec;
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: multi-disk zip archives are not supported", f->path);
    if (cd_offset > cd_end_limit || cd_size > cd_end_limit - cd_offset)
        return format_error(err, f, "central directory out of range");
    if (n_total > M3_ZIP_MAX_ENTRIES)
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: zip archive claims %llu entries (at most %d)", f->path,
                            (unsigned long long)n_total, M3_ZIP_MAX_ENTRIES);
    if (n_total * CENTRAL_SIZE > cd_size)
        return format_error(err, f, "entry count does not fit the central directory");
    zip->entries = calloc(n_total ? n_total : 1, sizeof *zip->entries);
    zip->sorted = malloc((n_total ? n_total : 1) * sizeof *zip->sorted);
    if (!zip->entries || !zip->sorted) {
        m3_zip_close(zip);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", f->path);
    }
    const unsigned char *p = f->data + cd_offset, *cd_end = p + cd_size;
    for (uint64_t i = 0; i < n_total; i++) {
        if ((size_t)(cd_end - p) < CENTRAL_SIZE || rd32(p) != SIG_CENTRAL) {
            st = format_error(err, f, "bad central directory header");
            goto fail;
        }
        uint16_t flags = rd16(p + 8), method = rd16(p + 10);
        uint32_t crc = rd32(p + 16);
        uint64_t csize = rd32(p + 20), usize = rd32(p + 24), offset = rd32(p + 42);
        uint32_t entry_disk = rd16(p + 34);
        size_t name_len = rd16(p + 28), extra_len = rd16(p + 30), comment_len = rd16(p + 32);
        if ((size_t)(cd_end - p) - CENTRAL_SIZE < name_len + extra_len + comment_len) {
            st = format_error(err, f, "central directory header runs past the directory");
            goto fail;
        }
        const char *name = (const char *)p + CENTRAL_SIZE;
        const unsigned char *extra = p + CENTRAL_SIZE + name_len;
        if (name_len == 0 || memchr(name, 0, name_len)) {
            st = format_error(err, f, "empty or invalid entry name");
            goto fail;
        }
        // Zip64 extra field: 8-byte values for exactly the fields saturated in the header, in order.
        for (size_t x = 0; x + 4 <= extra_len;) {
            uint16_t id = rd16(extra + x), len = rd16(extra + x + 2);
            if (len > extra_len - x - 4) {
                st = format_error(err, f, "extra field runs past its header");
                goto fail;
            }
            if (id == 0x0001) {
                const unsigned char *z = extra + x + 4, *z_end = z + len;
                uint64_t *fields[3] = {&usize, &csize, &offset};
                for (int k = 0; k < 3; k++) {
                    if (*fields[k] != 0xffffffffu) continue;
                    if (z_end - z < 8) {
                        st = format_error(err, f, "zip64 extra field too short");
                        goto fail;
                    }
                    *fields[k] = rd64(z);
                    z += 8;
                }
                if (entry_disk == 0xffff && z_end - z >= 4) entry_disk = rd32(z);
            }
            x += 4 + (size_t)len;
        }
        if (entry_disk != 0) {
            st = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: multi-disk zip archives are not supported",
                              f->path);
            goto fail;
        }
        if (flags & 0x41) {  // bit 0: encrypted, bit 6: strong encryption
            st = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: zip entry %.*s is encrypted", f->path,
                              (int)(name_len > 200 ? 200 : name_len), name);
            goto fail;
        }
        if (method != 0) {
            st = m3_error_set(err, M3_STATUS_UNSUPPORTED, method,
                              "%s: zip entry %.*s is compressed (method %u); only stored entries are read, as "
                              "torch.save writes them",
                              f->path, (int)(name_len > 200 ? 200 : name_len), name, method);
            goto fail;
        }
        if (csize != usize) {
            st = format_error(err, f, "stored entry with different compressed and uncompressed sizes");
            goto fail;
        }
        // The local header must lie before the central directory and agree with it.
        if (offset > cd_offset || cd_offset - offset < LOCAL_SIZE) {
            st = format_error(err, f, "local header offset out of range");
            goto fail;
        }
        const unsigned char *local = f->data + offset;
        size_t lname = rd16(local + 26), lextra = rd16(local + 28);
        if (rd32(local) != SIG_LOCAL || lname != name_len || rd16(local + 8) != method) {
            st = format_error(err, f, "local header does not match the central directory");
            goto fail;
        }
        uint64_t data_at = offset + LOCAL_SIZE + lname + lextra;
        if (data_at > cd_offset || csize > cd_offset - data_at || memcmp(local + LOCAL_SIZE, name, name_len)) {
            st = format_error(err, f, "entry data out of range");
            goto fail;
        }
        m3_zip_entry *ze = &zip->entries[i];
        ze->name = name;
        ze->name_len = name_len;
        ze->local_offset = offset;
        ze->size = csize;
        ze->crc = crc;
        ze->data = f->data + data_at;
        zip->count++;
        p += CENTRAL_SIZE + name_len + extra_len + comment_len;
    }
    // No two entries may share bytes: sort a copy by offset and check each ends before the next.
    {
        m3_zip_entry *by_offset = malloc((zip->count ? zip->count : 1) * sizeof *by_offset);
        if (!by_offset) {
            st = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", f->path);
            goto fail;
        }
        memcpy(by_offset, zip->entries, zip->count * sizeof *by_offset);
        qsort(by_offset, zip->count, sizeof *by_offset, cmp_offset);
        bool overlap = false;
        for (size_t i = 1; i < zip->count && !overlap; i++) {
            const m3_zip_entry *a = &by_offset[i - 1];
            uint64_t a_end = (uint64_t)(a->data - f->data) + a->size;
            overlap = a_end > by_offset[i].local_offset;
        }
        free(by_offset);
        if (overlap) {
            st = format_error(err, f, "overlapping entries");
            goto fail;
        }
    }
    for (size_t i = 0; i < zip->count; i++) zip->sorted[i] = &zip->entries[i];
    qsort(zip->sorted, zip->count, sizeof *zip->sorted, cmp_name);
    for (size_t i = 1; i < zip->count; i++)
        if (!cmp_name(&zip->sorted[i - 1], &zip->sorted[i])) {
            st = format_error(err, f, "two entries with the same name");
            goto fail;
        }
    return M3_STATUS_OK;
fail:
    m3_zip_close(zip);
    return st;
}

const m3_zip_entry *m3_zip_find(const m3_zip *zip, const char *name, size_t len)
{
    m3_zip_entry key = {.name = name, .name_len = len};
    const m3_zip_entry *pkey = &key;
    m3_zip_entry **hit = bsearch(&pkey, zip->sorted, zip->count, sizeof *zip->sorted, cmp_name);
    return hit ? *hit : NULL;
}

m3_status m3_zip_check_crc(const m3_zip *zip, const m3_zip_entry *e, m3_error *err)
{
    if (m3_crc32(e->data, e->size) == e->crc) return M3_STATUS_OK;
    return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: zip entry %.*s fails its CRC check (damaged file)",
                        zip->file->path, (int)(e->name_len > 200 ? 200 : e->name_len), e->name);
}

void m3_zip_close(m3_zip *zip)
{
    free(zip->entries);
    free(zip->sorted);
    zip->entries = NULL;
    zip->sorted = NULL;
    zip->count = 0;
}
