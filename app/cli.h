// SPDX-License-Identifier: MIT
//
// Shared helpers of the m3 command line. The CLI's stdin/stdout formats are stable interfaces that
// tests and other programs drive:
//   input:  one JSON string per line
//   output: one JSON value per line
// Errors: one line "m3 COMMAND: reason" on stderr and a non-zero exit status.
#ifndef M3_APP_CLI_H
#define M3_APP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/status.h"

enum {
    M3_EXIT_OK = 0,
    M3_EXIT_FAILURE = 1,  // the command ran and failed (bad model, bad input...)
    M3_EXIT_USAGE = 2,    // the command line itself is wrong
};

// Prints "m3 COMMAND: message" to stderr. Returns M3_EXIT_FAILURE for `return m3_cli_fail(...)`.
int m3_cli_fail(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Same with the message of a core error.
int m3_cli_fail_error(const char *command, const m3_error *err);

// Reads the next line of in that holds a JSON string (blank lines are skipped) and decodes it into
// *text (malloc'd, caller frees; may contain NUL bytes, hence *len). Returns 1 for a line, 0 at end
// of input, -1 on a malformed line (message in err, naming the line number).
int m3_cli_read_json_string(FILE *in, size_t *line_no, char **text, size_t *len, m3_error *err);

// Parses a positive integer option value; false (with a message) when it is not one.
// Seconds on the monotonic clock (for rates and timings).
double m3_cli_now(void);

bool m3_cli_parse_size(const char *command, const char *option, const char *value, size_t min,
                       size_t max, size_t *out);

// Parses --precision (auto, fp32, bf16, int8) into opt->precision; false (with a message) otherwise.
// The commands that encode start from M3_PRECISION_AUTO (the library's default is fp32).
struct m3_encoder_options;
bool m3_cli_parse_precision(const char *command, const char *value, struct m3_encoder_options *opt);
#define M3_CLI_PRECISION_HELP                                                                      \
    "  --precision P      auto (default: bf16 where the CPU has AVX512_BF16, else fp32), fp32, bf16, int8\n"

// Writes the n bytes at s as a JSON string, quotes included. Valid UTF-8 is written as it is
// (control characters escaped); a byte that is not part of valid UTF-8 (a file name may hold any
// bytes but '/' and NUL) becomes \udcXX, the lone surrogate U+DC00 + byte that Python's
// surrogateescape uses: the output stays valid JSON and os.fsencode(json.loads(...)) gives back the
// exact bytes.
void m3_cli_put_json_string(FILE *out, const char *s, size_t n);

// Writes a float as a JSON number that reads back as the same float (NaN/inf cannot occur in valid
// output; they are written as null so that a consumer fails loudly instead of misparsing).
void m3_cli_put_float(FILE *out, float v);

int m3_cmd_tokenize(int argc, char **argv);
int m3_cmd_embed(int argc, char **argv);
int m3_cmd_bench(int argc, char **argv);
int m3_cmd_bench_search(int argc, char **argv);  // m3 bench search (cmd-bench-search.c)
int m3_cmd_model(int argc, char **argv);
int m3_cmd_selftest(int argc, char **argv);

int m3_cmd_index(int argc, char **argv);
int m3_cmd_search(int argc, char **argv);
int m3_cmd_similar(int argc, char **argv);
int m3_cmd_status(int argc, char **argv);
int m3_cmd_check(int argc, char **argv);
int m3_cmd_extract(int argc, char **argv);         // cmd-extract.c
int m3_cmd_extract_helper(int argc, char **argv);  // internal: the sandboxed extractor process
int m3_cmd_daemon(int argc, char **argv);          // m3 daemon: talks to m3searchd (cmd-daemon.c)

// Shared by search and similar (cmd-search.c): hybrid weights "D,S,C"; results as text or JSON.
struct m3_search_hit;
bool m3_cli_parse_weights(const char *command, const char *value, float w[3]);
void m3_cli_print_hits(FILE *out, const struct m3_search_hit *hits, size_t n, bool json);

#endif
