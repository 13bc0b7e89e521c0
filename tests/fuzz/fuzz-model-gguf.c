// SPDX-License-Identifier: MIT
//
// Arbitrary bytes as a GGUF model file: opening must fail with a status whose message names the
// input, or give a model whose every tensor lies inside the input (each is read through once; ASan
// catches a byte outside) and whose tokenizer encodes, through the stored piece trie when the input
// carries one that passes the checks (m3.tokenizer.piece_trie). Seeds: tests/fuzz/corpus/model-gguf/
// (made by tests/gguf/gen-gguf-seeds.c).
#include <stdint.h>
#include <string.h>

#include "base/log.h"
#include "base/mapped-file.h"
#include "model/gguf-private.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void quiet(m3_log_level level, const char *message, void *user)
{
    (void)level, (void)message, (void)user;
}

// A damaged piece trie is logged (and rebuilt) on every such input: keep the fuzzer's output readable.
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    m3_log_set(quiet, NULL, M3_LOG_WARN);
    return 0;
}

static void read_tensor(const m3_tensor *t)
{
    if (!t) return;
    int64_t n = m3_tensor_numel(t);
    if (n <= 0 || n > (1 << 22)) return;
    float *out = malloc((size_t)n * sizeof *out);
    if (!out) return;
    m3_tensor_to_f32(t, out);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    m3_mapped_file *f;
    m3_error err = {0};
    if (m3_mapped_file_wrap(data, size, "fuzz.gguf", &f, &err) != M3_STATUS_OK) return 0;
    m3_model *m;
    m3_status st = m3_model_open_gguf(f, &m, &err);
    if (st != M3_STATUS_OK) {
        M3_ASSERT(m == NULL && err.status == st && strstr(err.message, "fuzz.gguf"));
        return 0;
    }
    const m3_model_weights *w = m3_model_get_weights(m);
    read_tensor(w->word);
    read_tensor(w->position);
    read_tensor(w->colbert_w);
    for (int l = 0; l < m3_model_get_config(m)->layers; l++) read_tensor(w->layers[l].ffn_out_w);
    int32_t *ids;
    size_t n;
    if (m3_tokenizer_encode(m3_model_get_tokenizer(m), "Hello <mask> wörld", 19, 64, &ids, &n, &err) == M3_STATUS_OK)
        free(ids);
    m3_model_close(m);
    return 0;
}
