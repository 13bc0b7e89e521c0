// SPDX-License-Identifier: MIT
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void default_log(m3_log_level level, const char *message, void *user)
{
    (void)user;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "m3: %s: %s\n", names[level], message);
}

static m3_log_fn log_fn = default_log;
static void *log_user;
static m3_log_level log_max = M3_LOG_WARN;

// M3_LOG=error|warn|info|debug sets the default level (e.g. to see why the CPU backend packs its
// weights at start-up); m3_log_set overrides it.
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void read_env(void)
{
    const char *v = getenv("M3_LOG");
    if (!v) return;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(v, names[i])) log_max = (m3_log_level)i;
}

void m3_log_set(m3_log_fn fn, void *user, m3_log_level max_level)
{
    pthread_once(&env_once, read_env);
    log_fn = fn ? fn : default_log;
    log_user = user;
    log_max = max_level;
}

void m3_log(m3_log_level level, const char *fmt, ...)
{
    pthread_once(&env_once, read_env);
    if (level > log_max) return;
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    log_fn(level, message, log_user);
}
