// SPDX-License-Identifier: MIT
//
// Every case of tests/data/tokenize_public.json (ids computed by the Hugging Face fast tokenizer)
// must come out id for id, untruncated and with max_length 16.
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s [", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? ", " : "", ids[i]);
    fprintf(stderr, "]\n");
}

// Compares one encoding against the expected JSON array; prints both on a mismatch.
static bool check(const m3_tokenizer *tok, size_t index, const char *text, size_t len,
                  size_t max_length, json_object *expected, const char *what)
{
    int32_t *ids;
    size_t n;
    m3_error err = {0};
    if (m3_tokenizer_encode(tok, text, len, max_length, &ids, &n, &err) != M3_STATUS_OK) {
        fprintf(stderr, "case %zu (%s): encode failed: %s\n", index, what, err.message);
        return false;
    }
    size_t want_n = json_object_array_length(expected);
    bool same = want_n == n;
    for (size_t i = 0; same && i < n; i++)
        same = ids[i] == json_object_get_int(json_object_array_get_idx(expected, i));
    if (!same) {
        json_object *quoted = json_object_new_string_len(text, (int)len);
        fprintf(stderr, "case %zu (%s) mismatch, text %s\n", index, what,
                json_object_to_json_string_ext(quoted, JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(quoted);
        print_ids("got ", ids, n);
        int32_t *want = malloc((want_n + 1) * sizeof *want);
        for (size_t i = 0; i < want_n; i++)
            want[i] = json_object_get_int(json_object_array_get_idx(expected, i));
        print_ids("want", want, want_n);
        free(want);
    }
    free(ids);
    return same;
}

int main(void)
{
    const char *data = getenv("M3_TEST_DATA");
    if (!data) {
        fprintf(stderr, "M3_TEST_DATA is not set\n");
        return 77;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/m3-tiny/sentencepiece.bpe.model", data);
    m3_tokenizer *tok;
    m3_error err = {0};
    if (m3_tokenizer_open(path, &tok, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    snprintf(path, sizeof path, "%s/tokenize_public.json", data);
    json_object *root = json_object_from_file(path);
    json_object *cases;
    if (!root || !json_object_object_get_ex(root, "cases", &cases)) {
        fprintf(stderr, "%s: cannot read the cases\n", path);
        return 1;
    }
    size_t n_cases = json_object_array_length(cases), failed = 0, checked = 0;
    for (size_t i = 0; i < n_cases; i++) {
        json_object *c = json_object_array_get_idx(cases, i), *text, *ids, *ids16;
        if (!json_object_object_get_ex(c, "text", &text) ||
            !json_object_object_get_ex(c, "ids", &ids) ||
            !json_object_object_get_ex(c, "ids_max16", &ids16)) {
            fprintf(stderr, "case %zu: missing fields\n", i);
            failed++;
            continue;
        }
        const char *s = json_object_get_string(text);
        size_t len = (size_t)json_object_get_string_len(text);
        bool ok = check(tok, i, s, len, 1u << 20, ids, "ids");
        ok = check(tok, i, s, len, 16, ids16, "ids_max16") && ok;
        failed += !ok;
        checked++;
    }
    printf("%zu cases checked, %zu failed\n", checked, failed);
    json_object_put(root);
    m3_tokenizer_free(tok);
    return failed || checked == 0 ? 1 : 0;
}
