// SPDX-License-Identifier: MIT
//
// Tiny assertion helpers shared by the model tests.
#ifndef M3_TESTS_MODEL_TEST_UTIL_H
#define M3_TESTS_MODEL_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                              \
    do {                                                                         \
        test_checks++;                                                           \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures++;                                                     \
        }                                                                        \
    } while (0)

#define CHECK_OK(expr)                                                                            \
    do {                                                                                          \
        m3_error check_err_ = {0};                                                                \
        (void)check_err_;                                                                         \
        m3_status check_st_ = (expr);                                                             \
        test_checks++;                                                                            \
        if (check_st_ != M3_STATUS_OK) {                                                          \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, m3_status_name(check_st_)); \
            test_failures++;                                                                      \
        }                                                                                         \
    } while (0)

// Path of a file in tests/data (M3_TEST_DATA), in a static buffer.
static inline const char *test_data(const char *rel)
{
    static char buf[4096];
    const char *dir = getenv("M3_TEST_DATA");
    if (!dir) {
        fprintf(stderr, "M3_TEST_DATA is not set\n");
        exit(77);
    }
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    return buf;
}

static inline int test_finish(const char *name)
{
    if (test_checks == 0) {
        fprintf(stderr, "%s: no checks ran\n", name);
        return 1;
    }
    fprintf(stderr, "%s: %d checks, %d failures\n", name, test_checks, test_failures);
    return test_failures ? 1 : 0;
}

#endif
