// SPDX-License-Identifier: MIT
#include "cli.h"

#include "encoder/encoder.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

int m3_cli_fail(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "m3 %s: ", command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return M3_EXIT_FAILURE;
}

int m3_cli_fail_error(const char *command, const m3_error *err)
{
    return m3_cli_fail(command, "%s", err->message[0] ? err->message : m3_status_name(err->status));
}

int m3_cli_read_json_string(FILE *in, size_t *line_no, char **text, size_t *len, m3_error *err)
{
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &cap, in);
        if (n < 0) {
            int e = errno;
            free(line);
            if (e != 0 && !feof(in)) return m3_error_errno(err, e, "cannot read", "standard input"), -1;
            return 0;
        }
        (*line_no)++;
        size_t start = 0;
        while (start < (size_t)n && strchr(" \t\r\n", line[start])) start++;
        if (start == (size_t)n) continue;  // a blank line is not an input

        json_tokener *tok = json_tokener_new();
        if (!tok) {
            free(line);
            return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory"), -1;
        }
        json_object *obj = json_tokener_parse_ex(tok, line + start, (int)((size_t)n - start));
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = start + (size_t)json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        // Whatever follows the string on its line must be whitespace: two values on one line would
        // silently shift every later output line against its input.
        bool trailing = false;
        for (size_t i = used; i < (size_t)n; i++)
            if (!strchr(" \t\r\n", line[i])) trailing = true;
        free(line);
        if (!obj || jerr != json_tokener_success || trailing || !json_object_is_type(obj, json_type_string)) {
            json_object_put(obj);
            m3_error_set(err, M3_STATUS_FORMAT, 0, "standard input line %zu: expected one JSON string per line",
                         *line_no);
            return -1;
        }
        size_t l = (size_t)json_object_get_string_len(obj);
        char *copy = malloc(l + 1);
        if (!copy) {
            json_object_put(obj);
            return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory"), -1;
        }
        memcpy(copy, json_object_get_string(obj), l);
        copy[l] = '\0';
        json_object_put(obj);
        *text = copy;
        *len = l;
        return 1;
    }
}

bool m3_cli_parse_size(const char *command, const char *option, const char *value, size_t min,
                       size_t max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || end == value || *end || value[0] == '-' || v < min || v > max) {
        m3_cli_fail(command, "%s: expected an integer from %zu to %zu, got '%s'", option, min, max, value);
        return false;
    }
    *out = (size_t)v;
    return true;
}

bool m3_cli_parse_precision(const char *command, const char *value, m3_encoder_options *opt)
{
    m3_error err = {0};
    if (m3_precision_parse(value, &opt->precision, &err) != M3_STATUS_OK) {
        m3_cli_fail(command, "--precision: expected auto, fp32, bf16 or int8, got '%s'", value);
        return false;
    }
    return true;
}

// The length of the valid UTF-8 sequence at s (n bytes left), 0 when there is none (GLib's decoder
// is strict: no overlong forms, no surrogates, nothing past U+10FFFF).
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) return 1;  // ASCII, NUL included (GLib reports a NUL as incomplete)
    gunichar c = g_utf8_get_char_validated((const char *)s, (gssize)(n < 4 ? n : 4));
    return c == (gunichar)-1 || c == (gunichar)-2 ? 0 : (size_t)g_unichar_to_utf8(c, NULL);
}

void m3_cli_put_json_string(FILE *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = utf8_sequence(p + i, n - i);
        if (len == 0) fprintf(out, "\\udc%02x", c);
        else if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f) fprintf(out, "\\u%04x", c);
        else fwrite(p + i, 1, len, out);
        i += len ? len : 1;
    }
    fputc('"', out);
}

void m3_cli_put_float(FILE *out, float v)
{
    if (!isfinite(v)) {
        fputs("null", out);
        return;
    }
    // 9 significant digits always read back as the same float.
    fprintf(out, "%.9g", (double)v);
}

double m3_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
