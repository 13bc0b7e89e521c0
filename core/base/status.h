// SPDX-License-Identifier: MIT
//
// Status codes and error reports shared by every core module.
//
//     m3_error err = {0};
//     m3_model *model;
//     if (m3_model_open("/path/to/bge-m3", &model, &err) != M3_STATUS_OK)
//         fprintf(stderr, "m3: %s\n", err.message);
//
// Core functions return an m3_status (0 = ok, negative = error) and, when the caller passes a
// non-NULL m3_error, fill it with the status, the original foreign code (errno, a zip or pickle
// opcode, later VkResult / MDB / CURLcode) and a one-line human message that names the file and the
// problem. Foreign codes are mapped once, at the module boundary that met them.
//
// Threads: m3_error is a plain value; each thread uses its own.
#ifndef M3_BASE_STATUS_H
#define M3_BASE_STATUS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum m3_status {
    M3_STATUS_OK = 0,
    M3_STATUS_NOMEM = -1,       // an allocation failed
    M3_STATUS_IO = -2,          // the operating system refused a read, write, open or map (errno in code)
    M3_STATUS_FORMAT = -3,      // outside data is malformed: truncated, corrupt, inconsistent
    M3_STATUS_UNSUPPORTED = -4, // well-formed but outside what we accept (an unknown pickle opcode...)
    M3_STATUS_INVALID = -5,     // the caller passed an invalid argument
    M3_STATUS_NOT_FOUND = -6,   // a named file or tensor does not exist
    M3_STATUS_LIMIT = -7,       // a size limit was exceeded (too many tokens, a zip bomb...)
    M3_STATUS_DEVICE = -8,      // an accelerator failed or is missing
    M3_STATUS_BUSY = -9,        // another process holds what is needed (e.g. an index's writer lock)
    M3_STATUS_CANCELLED = -10,  // the caller cancelled the operation (m3_indexer_cancel)
} m3_status;

enum { M3_ERROR_MESSAGE_MAX = 512 };

typedef struct m3_error {
    m3_status status;
    int code;                            // the foreign code behind the status, 0 when none
    char message[M3_ERROR_MESSAGE_MAX];  // one line, no trailing newline
} m3_error;

// Returns a short constant name for a status ("format error", ...). Never NULL.
const char *m3_status_name(m3_status status);

// Records an error in err (when err is non-NULL) and returns status, so that callers can write
// `return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: truncated header", path);`.
// The message is formatted with printf rules and cut to fit.
m3_status m3_error_set(m3_error *err, m3_status status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// Same, from a va_list.
m3_status m3_error_setv(m3_error *err, m3_status status, int code, const char *fmt, va_list ap);

// Records errno as M3_STATUS_IO: "<what>: <path>: <strerror(errnum)>".
m3_status m3_error_errno(m3_error *err, int errnum, const char *what, const char *path);

// Programming errors abort with the location; runtime errors are returned, never asserted.
#define M3_ASSERT(cond)                                                                  \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
