// SPDX-License-Identifier: MIT
//
// Read-only memory mapping of a whole file. Model weights are used straight from the mapping so
// that a 2.27 GB checkpoint never passes through the heap.
//
//     m3_mapped_file *f;
//     if (m3_mapped_file_open(path, &f, &err) == M3_STATUS_OK) {
//         use(f->data, f->size);
//         m3_mapped_file_close(f);
//     }
//
// Ownership: the pointers into data stay valid until m3_mapped_file_close. An empty file maps to
// data == NULL, size == 0. Threads: an open mapping may be read from any number of threads.
#ifndef M3_BASE_MAPPED_FILE_H
#define M3_BASE_MAPPED_FILE_H

#include <stddef.h>

#include "base/status.h"

typedef struct m3_mapped_file {
    const unsigned char *data;
    size_t size;
    char *path;  // a copy of the path it was opened with, for error messages
} m3_mapped_file;

// Maps path read-only. Errors: M3_STATUS_IO (with errno; directories are refused with EISDIR),
// M3_STATUS_NOMEM.
m3_status m3_mapped_file_open(const char *path, m3_mapped_file **out, m3_error *err);

// Wraps caller-owned bytes in the same interface (fuzzers, tests, in-memory data). The bytes are
// borrowed and must outlive the returned object. name is used in error messages.
m3_status m3_mapped_file_wrap(const void *data, size_t size, const char *name, m3_mapped_file **out,
                              m3_error *err);

// Unmaps and frees. NULL is a no-op.
void m3_mapped_file_close(m3_mapped_file *file);

#endif
