// SPDX-License-Identifier: MIT
//
// A minimal, read-only zip reader over a memory mapping, for PyTorch checkpoints. It reads the
// central directory (zip64 end record, locator and extra fields included), checks every entry's
// local header against it and the file size, refuses overlapping entries and absurd entry counts,
// and accepts only stored (uncompressed, unencrypted) entries: torch.save writes nothing else, and
// stored data can be used in place. A compressed entry is refused as M3_STATUS_UNSUPPORTED, so
// no amount of claimed size can make us inflate anything (zip bombs).
#ifndef M3_MODEL_ZIP_PRIVATE_H
#define M3_MODEL_ZIP_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/mapped-file.h"

enum { M3_ZIP_MAX_ENTRIES = 1 << 20, M3_ZIP_MAX_NAME = 4096 };

typedef struct m3_zip_entry {
    const char *name;  // into the mapping, not NUL-terminated
    size_t name_len;
    uint64_t local_offset;
    uint64_t size;     // stored: compressed size == uncompressed size
    uint32_t crc;
    const unsigned char *data;  // into the mapping, size bytes
} m3_zip_entry;

typedef struct m3_zip {
    const m3_mapped_file *file;
    m3_zip_entry *entries;  // central directory order
    size_t count;
    m3_zip_entry **sorted;  // by name, for m3_zip_find
} m3_zip;

// Reads the directory of file (borrowed; must outlive the zip). Errors name the file:
// M3_STATUS_FORMAT, M3_STATUS_UNSUPPORTED (compressed, encrypted, multi-disk), M3_STATUS_LIMIT.
m3_status m3_zip_open(const m3_mapped_file *file, m3_zip *zip, m3_error *err);

const m3_zip_entry *m3_zip_find(const m3_zip *zip, const char *name, size_t len);

// Checks the CRC-32 of an entry (reads all its bytes).
m3_status m3_zip_check_crc(const m3_zip *zip, const m3_zip_entry *e, m3_error *err);

uint32_t m3_crc32(const void *data, size_t size);

void m3_zip_close(m3_zip *zip);

#endif
