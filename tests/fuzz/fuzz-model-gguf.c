// SPDX-License-Identifier: MIT
//
// Arbitrary bytes as a GGUF model file: opening must fail with a status whose message names the
// input, or give a model whose every tensor lies inside the input (each is read through once; ASan
// catches a byte outside) and whose tokenizer encodes, through the stored piece trie when the input
// carries one that passes the checks (m3.tokenizer.piece_trie). Seeds: tests/fuzz/corpus/model-gguf/
// (made by tests/gguf/gen-gguf-seeds.c). When the input holds the CPU backend's packed weights in the
// layout of this CPU's kernels (docs/model-file.md, "Packed weights"), an encoder is made, which uses
// them in place, and encodes a few ids: it must succeed or fail with a message naming the input,
// and never read outside it.
#include <stdint.h>
#include <string.h>

#include "base/log.h"
#include "base/mapped-file.h"
#include "encoder/cpu/packed-file.h"
#include "encoder/encoder.h"
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

static void encode_packed(const m3_model *m)
{
    static const struct {
        m3_gemm_precision gemm;
        m3_precision encoder;
    } precisions[] = {
        {M3_GEMM_FP32, M3_PRECISION_FP32}, {M3_GEMM_BF16, M3_PRECISION_BF16}, {M3_GEMM_INT8, M3_PRECISION_INT8}};
    for (size_t p = 0; p < sizeof precisions / sizeof *precisions; p++) {
        if (!m3_cpu_packed_usable(m, precisions[p].gemm)) continue;
        m3_encoder_options opt = m3_encoder_options_default();
        opt.threads = 1;
        opt.precision = precisions[p].encoder;
        m3_encoder *enc;
        m3_error err = {0};
        m3_status st = m3_encoder_new(m, &opt, &enc, &err);
        if (st != M3_STATUS_OK) {
            M3_ASSERT(st != M3_STATUS_FORMAT || strstr(err.message, "fuzz.gguf"));
            continue;
        }
        const int32_t ids[3] = {0, m3_model_get_config(m)->vocab > 4 ? 4 : 0, 2 % m3_model_get_config(m)->vocab};
        m3_sequence seq = {ids, 3};
        m3_embedding e;
        if (m3_encoder_encode(enc, &seq, 1, M3_OUTPUT_ALL, &e, &err) == M3_STATUS_OK) m3_embedding_clear(&e);
        m3_encoder_free(enc);
    }
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
    encode_packed(m);
    m3_model_close(m);
    return 0;
}
