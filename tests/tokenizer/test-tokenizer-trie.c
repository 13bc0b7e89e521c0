// SPDX-License-Identifier: MIT
//
// A saved piece trie (m3_tokenizer_pieces.trie, what a model file stores) on the fixture model:
//   1. used in place (zero-copy) and giving every reference case of tokenize_public.json id for id,
//      untruncated and at max_length 16, like the trie the tokenizer builds;
//   2. damaged in each way the load checks for (a base out of range, negative, an id out of range or
//      on two nodes, the root with a parent, too few nodes, the trie of another vocabulary): refused
//      with a warning naming the reason, rebuilt, and the reference ids still come out;
//   3. random bit flips anywhere in the arrays: never a crash or a read out of bounds (run under
//      ASan), whether the flip is caught or not.
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mapped-file.h"
#include "tokenizer/tokenizer.h"

static int failures, checks;

#define CHECK(cond, ...)                                  \
    do {                                                  \
        checks++;                                         \
        if (!(cond)) {                                    \
            failures++;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
            printf(__VA_ARGS__);                          \
            printf("\n");                                 \
        }                                                 \
    } while (0)

static char last_warning[1024];
static int warnings;

static void on_log(m3_log_level level, const char *message, void *user)
{
    (void)user;
    if (level > M3_LOG_WARN) return;
    warnings++;
    snprintf(last_warning, sizeof last_warning, "%s", message);
}

static json_object *cases;

// Every reference case (ids and ids_max16) through tok; returns how many of the 2 * n encodings agree.
static size_t golden(const m3_tokenizer *tok, size_t limit)
{
    size_t n = json_object_array_length(cases), same = 0;
    if (limit && limit < n) n = limit;
    for (size_t k = 0; k < n; k++) {
        json_object *c = json_object_array_get_idx(cases, k);
        json_object *t = json_object_object_get(c, "text");
        for (int pass = 0; pass < 2; pass++) {
            json_object *want = json_object_object_get(c, pass ? "ids_max16" : "ids");
            int32_t *ids = NULL;
            size_t n_ids = 0;
            m3_error err = {0};
            bool ok = m3_tokenizer_encode(tok, json_object_get_string(t), (size_t)json_object_get_string_len(t),
                                          pass ? 16 : 8192, &ids, &n_ids, &err) == M3_STATUS_OK &&
                      n_ids == json_object_array_length(want);
            for (size_t i = 0; ok && i < n_ids; i++)
                ok = ids[i] == json_object_get_int(json_object_array_get_idx(want, i));
            same += ok;
            free(ids);
        }
    }
    return same;
}

typedef struct trie_copy {
    int32_t *units, *ids;
    size_t size;
} trie_copy;

static trie_copy copy_trie(m3_tokenizer_trie t)
{
    trie_copy c = {malloc(8 * t.size), malloc(4 * t.size), t.size};
    memcpy(c.units, t.units, 8 * t.size);
    memcpy(c.ids, t.ids, 4 * t.size);
    return c;
}

// Builds a tokenizer from pieces with the trie c; reports whether c was used in place.
static m3_tokenizer *with_trie(const m3_tokenizer_pieces *pieces, const trie_copy *c, bool *borrowed)
{
    m3_tokenizer_pieces p = *pieces;
    p.trie = (m3_tokenizer_trie){c->units, c->ids, c->size};
    m3_tokenizer *tok = NULL;
    m3_error err = {0};
    warnings = 0;
    last_warning[0] = 0;
    if (m3_tokenizer_new_from_pieces(&p, "saved-trie", &tok, &err) != M3_STATUS_OK) {
        CHECK(0, "new_from_pieces: %s", err.message);
        return NULL;
    }
    *borrowed = m3_tokenizer_get_trie(tok).units == c->units && m3_tokenizer_get_trie(tok).ids == c->ids;
    return tok;
}

int main(void)
{
    const char *data = getenv("M3_TEST_DATA");
    if (!data) {
        printf("SKIP: M3_TEST_DATA is not set\n");
        return 77;
    }
    m3_log_set(on_log, NULL, M3_LOG_DEBUG);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenize_public.json", data);
    json_object *root = json_object_from_file(path);
    cases = root ? json_object_object_get(root, "cases") : NULL;
    snprintf(path, sizeof path, "%s/m3-tiny/sentencepiece.bpe.model", data);
    m3_mapped_file *f = NULL;
    m3_tokenizer_pieces pieces = {0};
    m3_error err = {0};
    if (!cases || m3_mapped_file_open(path, &f, &err) ||
        m3_tokenizer_pieces_read(f->data, f->size, path, &pieces, &err)) {
        printf("FAIL: cannot read the fixture: %s\n", err.message);
        return 1;
    }
    size_t n_cases = json_object_array_length(cases);

    // 1. The built trie, saved and used again in place.
    m3_tokenizer *built;
    CHECK(m3_tokenizer_new_from_pieces(&pieces, "built", &built, &err) == M3_STATUS_OK, "%s", err.message);
    CHECK(golden(built, 0) == 2 * n_cases, "the built trie misses reference cases");
    trie_copy good = copy_trie(m3_tokenizer_get_trie(built));
    printf("piece trie of %zu ids: %zu nodes\n", pieces.n, good.size);
    bool borrowed = false;
    m3_tokenizer *tok = with_trie(&pieces, &good, &borrowed);
    CHECK(tok && borrowed && warnings == 0, "a good saved trie is used in place (borrowed %d, warning \"%s\")",
          borrowed, last_warning);
    size_t same = tok ? golden(tok, 0) : 0;
    CHECK(same == 2 * n_cases, "saved trie: %zu of %zu reference encodings", same, 2 * n_cases);
    printf("saved trie, used in place: %zu/%zu reference encodings equal\n", same, 2 * n_cases);
    m3_tokenizer_free(tok);

    // 2. Damage of each kind the load checks for: refused with the reason, rebuilt, still exact.
    // A node with children and one that ends a piece, to damage.
    size_t inner = 0, leaf = 0;
    for (size_t i = 1; i < good.size && (!inner || !leaf); i++) {
        if (good.units[2 * i + 1] < 0) continue;
        if (!inner && good.units[2 * i] != (int32_t)(good.size - 256)) inner = i;
        else if (!leaf && good.ids[i] >= 0) leaf = i;
    }
    // The trie of another vocabulary: the same texts in another id order.
    m3_tokenizer_pieces other = pieces;
    const char **texts = malloc(pieces.n * sizeof *texts);
    uint32_t *lens = malloc(pieces.n * sizeof *lens);
    memcpy(texts, pieces.texts, pieces.n * sizeof *texts);
    memcpy(lens, pieces.lens, pieces.n * sizeof *lens);
    for (size_t i = 4; i + 8 < pieces.n - 1; i += 2) {
        const char *t = texts[i];
        texts[i] = texts[i + 1], texts[i + 1] = t;
        uint32_t l = lens[i];
        lens[i] = lens[i + 1], lens[i + 1] = l;
    }
    other.texts = texts;
    other.lens = lens;
    m3_tokenizer *other_tok = NULL;
    CHECK(m3_tokenizer_new_from_pieces(&other, "other", &other_tok, &err) == M3_STATUS_OK, "%s", err.message);
    static const struct {
        const char *what, *reason;
    } kinds[] = {
        {"an inner node's base past the end", "outside"},
        {"a negative base", "outside"},
        {"an id out of range", "has id"},
        {"an id on two nodes", "on two nodes"},
        {"the root with a parent", "root has a parent"},
        {"too few nodes", "at least 257"},
        {"the trie of another vocabulary", "does not belong to this vocabulary"},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        trie_copy bad = k == 6 ? copy_trie(m3_tokenizer_get_trie(other_tok)) : copy_trie(m3_tokenizer_get_trie(built));
        switch (k) {
        case 0: bad.units[2 * inner] = (int32_t)bad.size - 100; break;
        case 1: bad.units[2 * inner] = -3; break;
        case 2: bad.ids[leaf] = (int32_t)pieces.n; break;
        case 3: bad.ids[inner] = bad.ids[leaf]; break;
        case 4: bad.units[1] = 0; break;
        case 5: bad.size = 200; break;
        default: break;
        }
        tok = with_trie(&pieces, &bad, &borrowed);
        CHECK(tok && !borrowed && warnings == 1 && strstr(last_warning, "saved-trie") &&
                  strstr(last_warning, kinds[k].reason),
              "%s: borrowed %d, %d warnings, last \"%s\" (want \"%s\")", kinds[k].what, borrowed, warnings,
              last_warning, kinds[k].reason);
        same = tok ? golden(tok, 0) : 0;
        CHECK(same == 2 * n_cases, "%s: rebuilt, %zu of %zu reference encodings", kinds[k].what, same, 2 * n_cases);
        printf("%s: refused (\"%s\"), rebuilt, %zu/%zu reference encodings equal\n", kinds[k].what, last_warning,
               same, 2 * n_cases);
        m3_tokenizer_free(tok);
        free(bad.units);
        free(bad.ids);
    }
    m3_tokenizer_free(other_tok);

    // 3. Random bit flips: caught or not, never a crash (ASan watches the walks).
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t refused = 0, used = 0;
    trie_copy flip = copy_trie(m3_tokenizer_get_trie(built));
    for (int round = 0; round < 300; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t word = (size_t)(x % (3 * good.size));
        int bit = (int)(x >> 40) % 32;
        int32_t *w = word < 2 * good.size ? &flip.units[word] : &flip.ids[word - 2 * good.size];
        *w ^= (int32_t)(1u << bit);
        tok = with_trie(&pieces, &flip, &borrowed);
        if (tok) golden(tok, 40);
        borrowed ? used++ : refused++;
        m3_tokenizer_free(tok);
        *w ^= (int32_t)(1u << bit);
    }
    printf("300 random bit flips: %zu refused and rebuilt, %zu in bounds and used (no crash)\n", refused, used);
    CHECK(refused > 0, "some flips must be caught");
    free(flip.units);
    free(flip.ids);
    free(good.units);
    free(good.ids);
    free(texts);
    free(lens);
    m3_tokenizer_free(built);
    m3_tokenizer_pieces_clear(&pieces);
    m3_mapped_file_close(f);
    json_object_put(root);
    m3_log_set(NULL, NULL, M3_LOG_WARN);
    printf("test-tokenizer-trie: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
