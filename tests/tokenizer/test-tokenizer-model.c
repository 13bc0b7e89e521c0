// SPDX-License-Identifier: MIT
//
// The model reader against damaged and hand-made models (truncations, bit flips, wrong wire types,
// unsupported layouts), the lattice rules on a tiny hand-made vocabulary, and edge cases of
// m3_tokenizer_encode on the fixture model.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static int failures;
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                        \
        }                                                                      \
    } while (0)

// ---- a protobuf writer for hand-made models ----

typedef struct buf {
    unsigned char data[4096];
    size_t len;
} buf;

static void put_varint(buf *b, uint64_t v)
{
    while (v >= 0x80) {
        b->data[b->len++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (unsigned char)v;
}
static void put_tag(buf *b, unsigned field, unsigned wire) { put_varint(b, (uint64_t)field << 3 | wire); }
static void put_bytes(buf *b, unsigned field, const void *p, size_t n)
{
    put_tag(b, field, 2);
    put_varint(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
static void put_piece(buf *b, const char *text, float score, int type)
{
    buf m = {.len = 0};
    put_bytes(&m, 1, text, strlen(text));
    put_tag(&m, 2, 5);
    memcpy(m.data + m.len, &score, 4);
    m.len += 4;
    if (type) {
        put_tag(&m, 3, 0);
        put_varint(&m, (uint64_t)type);
    }
    put_bytes(b, 1, m.data, m.len);
}
static void put_base_pieces(buf *b)
{
    put_piece(b, "<unk>", 0, 2);
    put_piece(b, "<s>", 0, 3);
    put_piece(b, "</s>", 0, 3);
}

static m3_status load(const buf *b, m3_tokenizer **tok, m3_error *err)
{
    return m3_tokenizer_load(b->data, b->len, "handmade.model", tok, err);
}

static bool encodes_to(const m3_tokenizer *tok, const char *text, size_t len, size_t max_length,
                       const int32_t *want, size_t n_want)
{
    int32_t *ids;
    size_t n;
    m3_error err = {0};
    if (m3_tokenizer_encode(tok, text, len, max_length, &ids, &n, &err) != M3_STATUS_OK) {
        fprintf(stderr, "encode failed: %s\n", err.message);
        return false;
    }
    bool same = n == n_want && memcmp(ids, want, n * sizeof *ids) == 0;
    if (!same) {
        fprintf(stderr, "text \"%.*s\" (max %zu): got", (int)len, text, max_length);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return same;
}
#define ENCODES(tok, text, max, ...)                                                          \
    CHECK(encodes_to(tok, text, strlen(text), max, (const int32_t[]){__VA_ARGS__},           \
                     sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)))

static void test_handmade(void)
{
    m3_tokenizer *tok;
    m3_error err = {0};
    buf b = {.len = 0};
    put_base_pieces(&b);
    put_piece(&b, "\xe2\x96\x81", -1, 0);  // ▁  SentencePiece id 3, our id 4
    put_piece(&b, "x", -1, 0);             //    5
    put_piece(&b, "xx", -2, 0);            //    6; <mask> is 7
    CHECK(load(&b, &tok, &err) == M3_STATUS_OK);
    if (!tok) return;
    CHECK(m3_tokenizer_vocab_size(tok) == 8);
    CHECK(strcmp(m3_tokenizer_piece(tok, 7), "<mask>") == 0);
    CHECK(strcmp(m3_tokenizer_piece(tok, 6), "xx") == 0);
    // "x"+"xx", "xx"+"x" and "x"+"x"+"x" all score -3: the first candidate found is kept.
    ENCODES(tok, "xxx", 100, 0, 4, 5, 6, 2);
    // Unknown characters next to each other become one <unk>; no charsmap means no normalization.
    ENCODES(tok, "xq\xc3\xa9x", 100, 0, 4, 5, 3, 5, 2);
    ENCODES(tok, "  x \t x  ", 100, 0, 4, 5, 4, 3, 4, 5, 2);  // \t is not a space without charsmap
    ENCODES(tok, "x<mask>x", 100, 0, 4, 5, 7, 4, 5, 2);
    ENCODES(tok, "xxx", 3, 0, 4, 2);
    m3_tokenizer_free(tok);
}

// Models that are well-formed protobuf but wrong, or malformed in a precise way.
static void test_bad_models(void)
{
    m3_tokenizer *tok;
    m3_error err = {0};
    struct {
        const char *what;
        m3_status want;
        buf b;
    } cases[16];
    size_t n = 0;
#define CASE(w, s) (cases[n].what = (w), cases[n].want = (s), cases[n].b.len = 0, &cases[n++].b)
    buf *b = CASE("bpe model", M3_STATUS_UNSUPPORTED);
    put_base_pieces(b);
    buf t = {.len = 0};
    put_tag(&t, 3, 0);
    put_varint(&t, 2);
    put_bytes(b, 2, t.data, t.len);

    b = CASE("unk id 5", M3_STATUS_UNSUPPORTED);
    put_base_pieces(b);
    t.len = 0;
    put_tag(&t, 40, 0);
    put_varint(&t, 5);
    put_bytes(b, 2, t.data, t.len);

    b = CASE("two pieces", M3_STATUS_FORMAT);
    put_piece(b, "<unk>", 0, 2);
    put_piece(b, "<s>", 0, 3);

    b = CASE("piece as varint", M3_STATUS_FORMAT);
    put_tag(b, 1, 0);
    put_varint(b, 7);

    b = CASE("score as varint", M3_STATUS_FORMAT);
    put_base_pieces(b);
    t.len = 0;
    put_bytes(&t, 1, "a", 1);
    put_tag(&t, 2, 0);
    put_varint(&t, 1);
    put_bytes(b, 1, t.data, t.len);

    b = CASE("piece not UTF-8", M3_STATUS_FORMAT);
    put_base_pieces(b);
    put_piece(b, "\xff", -1, 0);

    b = CASE("empty piece", M3_STATUS_FORMAT);
    put_base_pieces(b);
    put_piece(b, "", -1, 0);

    b = CASE("group wire type", M3_STATUS_FORMAT);
    put_base_pieces(b);
    put_tag(b, 9, 3);

    b = CASE("overlong varint", M3_STATUS_FORMAT);
    put_base_pieces(b);
    put_tag(b, 9, 0);
    for (int i = 0; i < 11; i++) b->data[b->len++] = 0xff;
    b->data[b->len++] = 0;

    b = CASE("length past the end", M3_STATUS_FORMAT);
    put_base_pieces(b);
    put_tag(b, 9, 2);
    put_varint(b, 1000);

    b = CASE("charsmap bad trie size", M3_STATUS_FORMAT);
    put_base_pieces(b);
    t.len = 0;
    put_bytes(&t, 2, "\x07\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07", 11);
    put_bytes(b, 3, t.data, t.len);

    b = CASE("charsmap pool not UTF-8", M3_STATUS_FORMAT);
    put_base_pieces(b);
    t.len = 0;
    put_bytes(&t, 2, "\x04\x00\x00\x00\x00\x00\x00\x00\xc3", 9);
    put_bytes(b, 3, t.data, t.len);

    b = CASE("empty file", M3_STATUS_FORMAT);
#undef CASE
    for (size_t i = 0; i < n; i++) {
        memset(&err, 0, sizeof err);
        m3_status s = load(&cases[i].b, &tok, &err);
        if (s != cases[i].want) {
            fprintf(stderr, "%s: got %s (%s), want %s\n", cases[i].what, m3_status_name(s),
                    err.message, m3_status_name(cases[i].want));
            failures++;
        }
        CHECK(tok == NULL);
        CHECK(s == M3_STATUS_OK || strstr(err.message, "handmade.model") != NULL);
        m3_tokenizer_free(tok);
    }
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

// A damaged copy must load cleanly or fail with a status and a message naming the file; a model
// that loads must encode.
static void check_damaged(const unsigned char *data, size_t size, size_t *loaded, size_t *refused)
{
    m3_tokenizer *tok;
    m3_error err = {0};
    m3_status s = m3_tokenizer_load(data, size, "damaged.model", &tok, &err);
    if (s == M3_STATUS_OK) {
        int32_t *ids;
        size_t n;
        CHECK(m3_tokenizer_encode(tok, "Hello wörld <s> ＡＢＣ", 27, 64, &ids, &n, &err) ==
              M3_STATUS_OK);
        CHECK(n >= 2 && ids[0] == 0 && ids[n - 1] == 2);
        free(ids);
        m3_tokenizer_free(tok);
        (*loaded)++;
    } else {
        CHECK(s == M3_STATUS_FORMAT || s == M3_STATUS_UNSUPPORTED || s == M3_STATUS_LIMIT);
        CHECK(strstr(err.message, "damaged.model") != NULL);
        (*refused)++;
    }
}

static void test_damaged(const unsigned char *model, size_t size)
{
    size_t loaded = 0, refused = 0;
    for (size_t cut = 0; cut < size; cut += cut < 4096 ? 1 : 997) check_damaged(model, cut, &loaded, &refused);
    unsigned char *copy = malloc(size);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 3000; i++) {
        memcpy(copy, model, size);
        for (int k = 0; k < 1 + i % 3; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(rng >> 33) % size;
            // Half of the flips hit the first 64 KiB, where the pieces' tags and lengths are.
            if (i % 2) at %= 65536;
            copy[at] ^= (unsigned char)(1u << ((rng >> 20) & 7));
        }
        check_damaged(copy, size, &loaded, &refused);
    }
    free(copy);
    printf("damaged copies: %zu loaded, %zu refused\n", loaded, refused);
    CHECK(refused > 0);
}

static void test_fixture_edges(const m3_tokenizer *tok)
{
    ENCODES(tok, "", 8192, 0, 2);
    ENCODES(tok, "Hello world", 2, 0, 2);
    ENCODES(tok, "Hello world", 3, 0, 376, 2);
    ENCODES(tok, "<mask>", 8192, 0, 8001, 2);
    ENCODES(tok, " <mask> ", 8192, 0, 8001, 2);
    ENCODES(tok, "<s></s><pad><unk>", 8192, 0, 0, 2, 1, 3, 2);
    ENCODES(tok, "<s></s><pad><unk>", 4, 0, 0, 2, 2);
    // Full-width brackets normalize to "<s>", which the reference's lattice matches as a piece.
    ENCODES(tok, "\xef\xbc\x9cs\xef\xbc\x9e", 8192, 0, 4, 0, 2);
    CHECK(m3_tokenizer_vocab_size(tok) == 8002);
    CHECK(strcmp(m3_tokenizer_piece(tok, 0), "<s>") == 0);
    CHECK(strcmp(m3_tokenizer_piece(tok, 8001), "<mask>") == 0);
    CHECK(strcmp(m3_tokenizer_piece(tok, 4), "\xe2\x96\x81") == 0);
    CHECK(m3_tokenizer_piece(tok, -1) == NULL && m3_tokenizer_piece(tok, 8002) == NULL);

    int32_t *ids, *ids2;
    size_t n, n2;
    m3_error err = {0};
    CHECK(m3_tokenizer_encode(tok, "abc", 3, 1, &ids, &n, &err) == M3_STATUS_INVALID);
    CHECK(ids == NULL && n == 0);
    // Each invalid byte reads as U+FFFD.
    const char bad[] = "a\xff\xc3 b\xe2\x82";
    const char fixed[] = "a\xef\xbf\xbd\xef\xbf\xbd b\xef\xbf\xbd\xef\xbf\xbd";
    CHECK(m3_tokenizer_encode(tok, bad, sizeof bad - 1, 64, &ids, &n, &err) == M3_STATUS_OK);
    CHECK(m3_tokenizer_encode(tok, fixed, sizeof fixed - 1, 64, &ids2, &n2, &err) == M3_STATUS_OK);
    CHECK(n == n2 && memcmp(ids, ids2, n * sizeof *ids) == 0);
    free(ids);
    free(ids2);
    // NUL bytes are text like any other.
    CHECK(m3_tokenizer_encode(tok, "a\0b", 3, 64, &ids, &n, &err) == M3_STATUS_OK);
    free(ids);
    // A long word with no spaces, truncated.
    size_t long_len = 200000;
    char *long_text = malloc(long_len);
    for (size_t i = 0; i < long_len; i++) long_text[i] = "abcdefgh"[i % 7];
    CHECK(m3_tokenizer_encode(tok, long_text, long_len, 8192, &ids, &n, &err) == M3_STATUS_OK);
    CHECK(n == 8192 && ids[8191] == 2);
    free(ids);
    free(long_text);
}

int main(void)
{
    test_handmade();
    test_bad_models();

    m3_tokenizer *tok;
    m3_error err = {0};
    CHECK(m3_tokenizer_open("/nonexistent/sentencepiece.bpe.model", &tok, &err) == M3_STATUS_IO);
    CHECK(m3_tokenizer_open("/", &tok, &err) == M3_STATUS_IO);

    const char *data = getenv("M3_TEST_DATA");
    if (!data) {
        fprintf(stderr, "M3_TEST_DATA is not set\n");
        return 77;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/m3-tiny/sentencepiece.bpe.model", data);
    size_t size;
    unsigned char *model = read_file(path, &size);
    CHECK(model != NULL);
    if (model) {
        CHECK(m3_tokenizer_load(model, size, path, &tok, &err) == M3_STATUS_OK);
        if (tok) test_fixture_edges(tok);
        m3_tokenizer_free(tok);
        test_damaged(model, size);
        free(model);
    }
    if (failures) fprintf(stderr, "%d checks failed\n", failures);
    else printf("all checks passed\n");
    return failures ? 1 : 0;
}
