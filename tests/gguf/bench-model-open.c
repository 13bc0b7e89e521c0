// SPDX-License-Identifier: MIT
//
// How long m3_model_open takes on a model file of the real BGE-M3 shape: writes random weights
// (m3_model_new_random) with a synthetic 250002-id vocabulary (so the tokenizer costs what the real
// one does: word-like pieces in Latin, Cyrillic and CJK letters, the real precompiled charsmap of the
// fixture's sentencepiece.bpe.model) as f16 GGUF files, once with the stored piece trie and once
// without it (as files written before it existed), then times opening each: first after asking the
// kernel to drop its page cache (works as root; otherwise evicts the file's pages with
// posix_fadvise), then warm.
// Usage: bench-model-open [--keep] [DIR]   writes both files in DIR (default /tmp; about 2.3 GB),
//                                          times them and removes them (--keep: leaves them, for perf)
//        bench-model-open --open FILE      only times opening FILE (a kept file, a real model)
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/mapped-file.h"
#include "model/gguf-private.h"
#include "model/model.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int drop_caches(const char *path)
{
    // Evict this file's pages (works for any user on a file they own), then ask for a global drop.
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    sync();
    FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
    if (!f) return fd >= 0 ? 1 : 0;
    int ok = fputs("1\n", f) >= 0;
    ok = fclose(f) == 0 && ok;
    return ok ? 2 : fd >= 0 ? 1 : 0;
}

// Opens path `rounds` times, the first after dropping the page cache; prints each time.
static int time_open(const char *path, const char *label, int rounds)
{
    m3_model *m;
    m3_error err = {0};
    for (int round = 0; round < rounds; round++) {
        int dropped = round == 0 ? drop_caches(path) : 0;
        double t0 = now();
        if (m3_model_open(path, &m, &err) != M3_STATUS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double dt = now() - t0;
        printf("m3_model_open%s: %.3f s (%s)\n", label, dt,
               round ? "warm page cache"
               : dropped == 2 ? "cold: page cache dropped (/proc/sys/vm/drop_caches)"
               : dropped == 1 ? "cold-ish: the file's pages evicted with posix_fadvise(DONTNEED); global drop refused"
                              : "page cache state unknown");
        m3_model_close(m);
    }
    return 0;
}

// Appends one pseudo-random letter of the alphabet k (0 Latin, 1 Cyrillic, 2 CJK) to p.
static size_t put_letter(char *p, int k, uint64_t r)
{
    if (k == 0) {
        p[0] = (char)('a' + r % 26);
        return 1;
    }
    if (k == 1) {  // U+0430..U+044F
        unsigned cp = 0x430 + (unsigned)(r % 32);
        p[0] = (char)(0xc0 | cp >> 6), p[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    unsigned cp = 0x4e00 + (unsigned)(r % 3000);  // common CJK ideographs
    p[0] = (char)(0xe0 | cp >> 12), p[1] = (char)(0x80 | (cp >> 6 & 0x3f)), p[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

int main(int argc, char **argv)
{
    bool keep = false;
    int a = 1;
    if (argc == 3 && !strcmp(argv[1], "--open")) return time_open(argv[2], "", 3);
    if (a < argc && !strcmp(argv[a], "--keep")) keep = true, a++;
    if (argc - a > 1 || (a < argc && argv[a][0] == '-')) {
        fprintf(stderr, "usage: bench-model-open [--keep] [DIR] | --open FILE\n");
        return 2;
    }
    const char *dir = a < argc ? argv[a] : "/tmp";
    char path[4096], path_old[4096];
    snprintf(path, sizeof path, "%s/bench-model-open-%d.gguf", dir, (int)getpid());
    snprintf(path_old, sizeof path_old, "%s/bench-model-open-%d-no-trie.gguf", dir, (int)getpid());
    m3_model_config c = m3_model_config_bge_m3();
    m3_model *m;
    m3_error err = {0};
    double t0 = now();
    if (m3_model_new_random(&c, 1, &m, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    // The real charsmap (the fixture's model is XLM-R's with a smaller vocabulary).
    m3_mapped_file *spm;
    m3_tokenizer_pieces fixture;
    if (m3_mapped_file_open(M3_SOURCE_ROOT "/tests/data/m3-tiny/sentencepiece.bpe.model", &spm, &err) ||
        m3_tokenizer_pieces_read(spm->data, spm->size, "fixture", &fixture, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    // A synthetic vocabulary of the real size: the specials, then 249997 distinct pieces.
    size_t n = (size_t)c.vocab;
    const char **texts = malloc(n * sizeof *texts);
    uint32_t *lens = malloc(n * sizeof *lens);
    float *scores = malloc(n * sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    char *pool = malloc(n * 40);
    static const char *const specials[4] = {"<s>", "<pad>", "</s>", "<unk>"};
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        char *p = pool + i * 40;
        if (i < 4) strcpy(p, specials[i]);
        else if (i == n - 1) strcpy(p, "<mask>");
        else {
            // Word-like pieces: 1 to 7 pseudo-random letters of one alphabet (3 in 5 Latin, then
            // Cyrillic and CJK), two in three after a ▁, made unique by the id (a vocabulary of hex
            // numbers shares long prefixes and builds 5x slower).
            size_t o = 0;
            int alphabet = i % 5 < 3 ? 0 : i % 5 == 3 ? 1 : 2;
            if (i % 3) memcpy(p, "\xe2\x96\x81", 3), o = 3;
            for (size_t k = 0; k < 1 + i % 7; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                o += put_letter(p + o, alphabet, x);
            }
            snprintf(p + o, 40 - o, "%zu", i);
        }
        texts[i] = p;
        lens[i] = (uint32_t)strlen(p);
        scores[i] = i < 4 || i == n - 1 ? 0.0f : -1.0f - (float)i * 1e-4f;
        types[i] = i == 3 ? 2 : i < 4 ? 3 : i == n - 1 ? 4 : 1;
    }
    m3_tokenizer_pieces v = {.n = n, .texts = texts, .lens = lens, .scores = scores, .types = types,
                             .charsmap = fixture.charsmap, .charsmap_size = fixture.charsmap_size,
                             .add_dummy_prefix = 1, .remove_extra_whitespaces = 1, .escape_whitespaces = 1};
    if (m3_gguf_write(m, &v, M3_DTYPE_F16, 0, NULL, path, &err) != M3_STATUS_OK ||
        m3_gguf_write(m, &v, M3_DTYPE_F16, M3_GGUF_WRITE_NO_PIECE_TRIE, NULL, path_old, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    m3_model_close(m);
    struct stat st, st_old;
    stat(path, &st);
    stat(path_old, &st_old);
    printf("wrote %s: %.3f GB and %s: %.3f GB (random weights of the BGE-M3 shape, f16) in %.1f s\n", path,
           st.st_size / 1e9, path_old, st_old.st_size / 1e9, now() - t0);
    // The tokenizer alone, building its trie, then with the trie of the first one.
    m3_tokenizer *built = NULL;
    for (int round = 0; round < 4; round++) {
        m3_tokenizer *tok;
        m3_tokenizer_pieces w = v;
        if (round >= 2) w.trie = m3_tokenizer_get_trie(built);
        double t1 = now();
        if (m3_tokenizer_new_from_pieces(&w, "synthetic", &tok, &err) != M3_STATUS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        printf("m3_tokenizer_new_from_pieces (250002 ids, %s): %.3f s\n",
               round < 2 ? "building the trie" : "with a saved trie", now() - t1);
        if (round == 0) {
            built = tok;
            printf("piece trie: %zu nodes, %.1f MB\n", m3_tokenizer_get_trie(tok).size,
                   m3_tokenizer_get_trie(tok).size * 12 / 1e6);
        } else {
            m3_tokenizer_free(tok);
        }
    }
    m3_tokenizer_free(built);
    int rc = time_open(path_old, " (no stored trie, as before)", 3) || time_open(path, " (stored trie)", 3) ||
             time_open(path_old, " (no stored trie, as before)", 2) || time_open(path, " (stored trie)", 2);
    if (keep) {
        printf("kept %s and %s\n", path, path_old);
    } else {
        unlink(path);
        unlink(path_old);
    }
    m3_tokenizer_pieces_clear(&fixture);
    m3_mapped_file_close(spm);
    free(texts);
    free(lens);
    free(scores);
    free(types);
    free(pool);
    return rc;
}
