// SPDX-License-Identifier: MIT
//
// Writes the seed corpus of fuzz-model-gguf (tests/fuzz/corpus/model-gguf/): a micro model of the
// BGE-M3 layout (hidden 8, 1 layer, 10 ids) as f32 and f16 files (with the stored piece trie), one
// without the trie (as written before it existed), and damaged variants: of the container, and of
// the trie (a flipped node, another version, a bad base resealed with a right SHA-256 so that only
// the tokenizer's own check stops it); and a small model the CPU backend runs (hidden 32, heads of
// 16) with its packed weights for fp32, bf16 and int8 (in the layout of the kernels of the machine
// that writes the seeds), one truncated inside the packed section and one with a packed tensor shrunk
// (bf16), and one int8 file with a packed tensor shrunk (its scales and sums lie inside the tensor).
// Usage: gen-gguf-seeds OUTDIR
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mapped-file.h"
#include "encoder/cpu/packed-file.h"
#include "model/gguf-private.h"
#include "model/model.h"

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc(*n);
    if (d && fread(d, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return d;
}

static void put(const char *dir, const char *name, const unsigned char *d, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

// Where the trie blob and the token strings lie in d[0..n), as offsets; false when absent.
static int find_trie(const unsigned char *d, size_t n, size_t *blob, size_t *blob_size, size_t *tokens,
                     size_t *tokens_size)
{
    m3_mapped_file *f;
    m3_error err = {0};
    if (m3_mapped_file_wrap(d, n, "seed", &f, &err)) return 0;
    m3_gguf g;
    int ok = 0;
    if (m3_gguf_parse(f, &g, &err) == M3_STATUS_OK) {
        const m3_gguf_kv *t = m3_gguf_find(&g, M3_GGUF_PIECE_TRIE_KEY), *k = m3_gguf_find(&g, "tokenizer.ggml.tokens");
        if (t && k) {
            *blob = (size_t)(t->value - d), *blob_size = t->size;
            *tokens = (size_t)(k->value - d), *tokens_size = k->size;
            ok = 1;
        }
        m3_gguf_destroy(&g);
    }
    m3_mapped_file_close(f);
    return ok;
}

// A copy of d[0..n) named `out` with the size of the packed tensor `name` 64 bytes smaller.
static void put_shrunk(const char *dir, const char *out, unsigned char *d, size_t n, const char *name)
{
    for (size_t i = 0; i + strlen(name) + 12 <= n; i++)
        if (!memcmp(d + i, name, strlen(name))) {
            uint64_t size, saved;  // after the u32 dimension count; little-endian, as the host
            memcpy(&size, d + i + strlen(name) + 4, 8);
            saved = size;
            size -= 64;
            memcpy(d + i + strlen(name) + 4, &size, 8);
            put(dir, out, d, n);
            memcpy(d + i + strlen(name) + 4, &saved, 8);
            return;
        }
    fprintf(stderr, "no tensor %s for %s\n", name, out);
    exit(1);
}

// The packed seeds: a model the CPU backend accepts, with packed fp32, bf16 and int8 weights.
static int write_packed(const char *dir, const m3_tokenizer_pieces *v)
{
    m3_model_config c = {.hidden = 32, .layers = 1, .heads = 2, .intermediate = 64, .vocab = 10,
                         .max_positions = 16, .type_vocab = 1, .pad_token_id = 1, .layer_norm_eps = 1e-5f};
    m3_model *m;
    m3_error err = {0};
    if (m3_model_new_random(&c, 11, &m, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    const m3_precision precisions[3] = {M3_PRECISION_FP32, M3_PRECISION_INT8, M3_PRECISION_BF16};
    char path[4096];
    for (int k = 0; k < 3; k++) {
        m3_cpu_packer p;
        if (m3_cpu_packer_init(&p, precisions[k], &err) != M3_STATUS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        snprintf(path, sizeof path, "%s/packed-%s.gguf", dir, p.base.precision);
        if (m3_model_write_file_packed(m, v, M3_DTYPE_F16, &p.base, path, &err) != M3_STATUS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }
    m3_model_close(m);
    size_t n;
    unsigned char *d = slurp(path, &n);  // the bf16 one (the last written)
    if (!d || n < 8192) return 1;
    put(dir, "packed-truncated.gguf", d, n - 700);
    put_shrunk(dir, "packed-shrunk.gguf", d, n, "packed.bf16.encoder.layer.0.ffn_in");
    free(d);
    snprintf(path, sizeof path, "%s/packed-int8.gguf", dir);
    d = slurp(path, &n);
    if (!d || n < 8192) return 1;
    put_shrunk(dir, "packed-int8-shrunk.gguf", d, n, "packed.int8.encoder.layer.0.ffn_in");
    free(d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen-gguf-seeds OUTDIR\n");
        return 2;
    }
    const char *dir = argv[1];
    m3_model_config c = {.hidden = 8, .layers = 1, .heads = 2, .intermediate = 16, .vocab = 10,
                         .max_positions = 16, .type_vocab = 1, .pad_token_id = 1, .layer_norm_eps = 1e-5f};
    m3_model *m;
    m3_error err = {0};
    if (m3_model_new_random(&c, 7, &m, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    static const char *const texts[10] = {"<s>", "<pad>", "</s>", "<unk>", "\xe2\x96\x81" "a", "b",
                                          "\xe2\x96\x81" "c", "d", "e", "<mask>"};
    uint32_t lens[10];
    float scores[10] = {0, 0, 0, 0, -1, -2, -3, -4, -5, 0};
    int32_t types[10] = {3, 3, 3, 2, 1, 1, 1, 1, 1, 4};
    for (int i = 0; i < 10; i++) lens[i] = (uint32_t)strlen(texts[i]);
    m3_tokenizer_pieces v = {.n = 10, .texts = texts, .lens = lens, .scores = scores, .types = types,
                             .add_dummy_prefix = 1, .remove_extra_whitespaces = 1, .escape_whitespaces = 1};
    char path[4096];
    const char *names[2] = {"micro-f32.gguf", "micro-f16.gguf"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if (m3_model_write_file(m, &v, k ? M3_DTYPE_F16 : M3_DTYPE_F32, path, &err) != M3_STATUS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }
    snprintf(path, sizeof path, "%s/micro-no-trie.gguf", dir);
    if (m3_gguf_write(m, &v, M3_DTYPE_F16, M3_GGUF_WRITE_NO_PIECE_TRIE, NULL, path, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    m3_model_close(m);
    size_t n;
    snprintf(path, sizeof path, "%s/micro-f16.gguf", dir);
    unsigned char *d = slurp(path, &n);
    if (!d || n < 64) return 1;
    put(dir, "truncated-half.gguf", d, n / 2);
    put(dir, "truncated-data.gguf", d, n - 3);
    d[4] = 2;  // version 2
    put(dir, "version-2.gguf", d, n);
    d[4] = 3;
    d[8] ^= 0x40;  // the tensor count
    put(dir, "bad-tensor-count.gguf", d, n);
    d[8] ^= 0x40;
    d[16] ^= 0x01;  // the key count
    put(dir, "bad-key-count.gguf", d, n);
    d[16] ^= 0x01;
    size_t blob, blob_size, tokens, tokens_size;
    if (!find_trie(d, n, &blob, &blob_size, &tokens, &tokens_size)) {
        fprintf(stderr, "no piece trie in micro-f16.gguf\n");
        return 1;
    }
    uint32_t h;
    memcpy(&h, d + blob + 8, 4);
    d[blob + h + 8 * 3] ^= 0x04;  // node 3's base: the SHA-256 no longer matches
    put(dir, "trie-flipped.gguf", d, n);
    d[blob + h + 8 * 3] ^= 0x04;
    d[blob + 4] = 2;  // version 2
    put(dir, "trie-version-2.gguf", d, n);
    d[blob + 4] = 1;
    // The root's base far out, with the SHA-256 made right again: only the tokenizer's check stops it.
    unsigned char saved[4];
    memcpy(saved, d + blob + h, 4);
    int32_t far = 1 << 30;
    memcpy(d + blob + h, &far, 4);
    unsigned md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char old_md[32];
    memcpy(old_md, d + blob + 24, 32);
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) || !EVP_DigestUpdate(ctx, d + tokens, tokens_size) ||
        !EVP_DigestUpdate(ctx, d + blob + h, blob_size - h) || !EVP_DigestFinal_ex(ctx, d + blob + 24, &md_len))
        return 1;
    EVP_MD_CTX_free(ctx);
    put(dir, "trie-bad-base-resealed.gguf", d, n);
    memcpy(d + blob + h, saved, 4);
    memcpy(d + blob + 24, old_md, 32);
    d[0] = 'X';
    put(dir, "bad-magic.gguf", d, n);
    free(d);
    return write_packed(dir, &v);
}
