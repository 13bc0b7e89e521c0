// SPDX-License-Identifier: MIT
//
// Core logs through one process-wide callback, like ggml_log_set. The default writes
// "m3: <level>: <message>" to stderr, up to warnings, or up to the level named by the environment
// variable M3_LOG (error, warn, info, debug). The GTK app forwards to GLib structured logging.
//
// Threads: m3_log may be called from any thread; the callback must be thread-safe.
// m3_log_set is meant to be called once, before other threads start.
#ifndef M3_BASE_LOG_H
#define M3_BASE_LOG_H

typedef enum m3_log_level {
    M3_LOG_ERROR,
    M3_LOG_WARN,
    M3_LOG_INFO,
    M3_LOG_DEBUG,
} m3_log_level;

typedef void (*m3_log_fn)(m3_log_level level, const char *message, void *user);

// Installs fn (NULL restores the default). Messages above max_level are dropped before formatting.
void m3_log_set(m3_log_fn fn, void *user, m3_log_level max_level);

void m3_log(m3_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
