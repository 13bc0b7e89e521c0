// SPDX-License-Identifier: MIT
#include "base/status.h"

#include <string.h>

const char *m3_status_name(m3_status status)
{
    switch (status) {
    case M3_STATUS_OK: return "ok";
    case M3_STATUS_NOMEM: return "out of memory";
    case M3_STATUS_IO: return "input/output error";
    case M3_STATUS_FORMAT: return "format error";
    case M3_STATUS_UNSUPPORTED: return "unsupported";
    case M3_STATUS_INVALID: return "invalid argument";
    case M3_STATUS_NOT_FOUND: return "not found";
    case M3_STATUS_LIMIT: return "limit exceeded";
    case M3_STATUS_DEVICE: return "device error";
    case M3_STATUS_BUSY: return "busy";
    case M3_STATUS_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

m3_status m3_error_setv(m3_error *err, m3_status status, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->status = status;
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        // A message is one line: a newline from a file name would break the CLI's contract.
        for (char *p = err->message; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return status;
}

m3_status m3_error_set(m3_error *err, m3_status status, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    m3_error_setv(err, status, code, fmt, ap);
    va_end(ap);
    return status;
}

m3_status m3_error_errno(m3_error *err, int errnum, const char *what, const char *path)
{
    return m3_error_set(err, M3_STATUS_IO, errnum, "%s: %s: %s", path, what, strerror(errnum));
}
