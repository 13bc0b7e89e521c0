// SPDX-License-Identifier: MIT
//
// Arbitrary bytes as a SentencePiece model: loading must fail cleanly or give a tokenizer that
// encodes. Seeds: tests/fuzz/corpus/tokenizer-model/.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    m3_tokenizer *tok;
    m3_error err = {0};
    m3_status s = m3_tokenizer_load(data, size, "fuzz.model", &tok, &err);
    if (s != M3_STATUS_OK) {
        M3_ASSERT(tok == NULL && err.status == s && err.message[0]);
        return 0;
    }
    static const char *const texts[] = {"Hello  wörld <mask>!", "ＡＢＣ ﬁ e\xcc\x81 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", ""};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t *ids;
        size_t n;
        M3_ASSERT(m3_tokenizer_encode(tok, texts[i], strlen(texts[i]), 32, &ids, &n, &err) ==
                  M3_STATUS_OK);
        M3_ASSERT(n >= 2 && n <= 32 && ids[0] == M3_TOKEN_BOS && ids[n - 1] == M3_TOKEN_EOS);
        for (size_t k = 0; k < n; k++)
            M3_ASSERT(m3_tokenizer_piece(tok, ids[k]) != NULL);
        free(ids);
    }
    m3_tokenizer_free(tok);
    return 0;
}
