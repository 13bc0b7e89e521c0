// SPDX-License-Identifier: MIT
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>

static void default_log(m3_log_level level, const char *message, void *user)
{
    (void)user;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "m3: %s: %s\n", names[level], message);
}

static m3_log_fn log_fn = default_log;
static void *log_user;
static m3_log_level log_max = M3_LOG_WARN;

void m3_log_set(m3_log_fn fn, void *user, m3_log_level max_level)
{
    log_fn = fn ? fn : default_log;
    log_user = user;
    log_max = max_level;
}

void m3_log(m3_log_level level, const char *fmt, ...)
{
    if (level > log_max) return;
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    log_fn(level, message, log_user);
}
