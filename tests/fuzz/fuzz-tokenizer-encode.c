// SPDX-License-Identifier: MIT
//
// Arbitrary bytes as text, encoded with the fixture model (loaded once, from M3_TEST_DATA or the
// source tree). Checks the invariants: <s> first, </s> last, every id in range, truncation obeyed.
// Seeds: tests/fuzz/corpus/tokenizer-encode/.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef M3_SOURCE_ROOT
#define M3_SOURCE_ROOT "."
#endif

static m3_tokenizer *fixture(void)
{
    static m3_tokenizer *tok;
    if (tok) return tok;
    const char *dir = getenv("M3_TEST_DATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/m3-tiny/sentencepiece.bpe.model",
             dir ? dir : M3_SOURCE_ROOT "/tests/data");
    m3_error err = {0};
    if (m3_tokenizer_open(path, &tok, &err) != M3_STATUS_OK) {
        fprintf(stderr, "fuzz-tokenizer-encode: %s\n", err.message);
        abort();
    }
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    m3_tokenizer *tok = fixture();
    // The first byte picks a max_length, so truncation is fuzzed too.
    size_t max_length = size ? 2 + data[0] % 64 : 8192;
    if (size && data[0] >= 128) max_length = 1u << 20;
    int32_t *ids;
    size_t n;
    m3_error err = {0};
    M3_ASSERT(m3_tokenizer_encode(tok, (const char *)data, size, max_length, &ids, &n, &err) ==
              M3_STATUS_OK);
    M3_ASSERT(n >= 2 && n <= max_length && ids[0] == M3_TOKEN_BOS && ids[n - 1] == M3_TOKEN_EOS);
    for (size_t i = 0; i < n; i++)
        M3_ASSERT(ids[i] >= 0 && (size_t)ids[i] < m3_tokenizer_vocab_size(tok));
    // Deterministic: a second run gives the same ids.
    int32_t *again;
    size_t n_again;
    M3_ASSERT(m3_tokenizer_encode(tok, (const char *)data, size, max_length, &again, &n_again, &err) ==
              M3_STATUS_OK);
    M3_ASSERT(n_again == n && memcmp(again, ids, n * sizeof *ids) == 0);
    free(again);
    free(ids);
    return 0;
}
