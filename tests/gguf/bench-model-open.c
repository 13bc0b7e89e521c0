// SPDX-License-Identifier: MIT
//
// How long m3_model_open takes on a model file of the real BGE-M3 shape: writes random weights
// (m3_model_new_random) with a synthetic 250002-id vocabulary (so the tokenizer costs what the real
// one does) as an f16 GGUF file, then times opening it: first after asking the kernel to drop its
// page cache (works as root; otherwise says the cache is warm), then warm.
// Usage: bench-model-open [DIR] (default /tmp; about 1.1 GB is written there and removed).
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-model-open-%d.gguf", dir, (int)getpid());
    m3_model_config c = m3_model_config_bge_m3();
    m3_model *m;
    m3_error err = {0};
    double t0 = now();
    if (m3_model_new_random(&c, 1, &m, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    // A synthetic vocabulary of the real size: the specials, then 249997 distinct pieces.
    size_t n = (size_t)c.vocab;
    const char **texts = malloc(n * sizeof *texts);
    uint32_t *lens = malloc(n * sizeof *lens);
    float *scores = malloc(n * sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    char *pool = malloc(n * 24);
    static const char *const specials[4] = {"<s>", "<pad>", "</s>", "<unk>"};
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        char *p = pool + i * 24;
        if (i < 4) strcpy(p, specials[i]);
        else if (i == n - 1) strcpy(p, "<mask>");
        else {
            // Word-like pieces: 1 to 7 pseudo-random letters, two in three after a ▁, made unique by
            // the id (a vocabulary of hex numbers shares long prefixes and builds 5x slower).
            size_t o = 0;
            if (i % 3) memcpy(p, "\xe2\x96\x81", 3), o = 3;
            for (size_t k = 0; k < 1 + i % 7; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                p[o++] = (char)('a' + x % 26);
            }
            snprintf(p + o, 24 - o, "%zu", i);
        }
        texts[i] = p;
        lens[i] = (uint32_t)strlen(p);
        scores[i] = i < 4 || i == n - 1 ? 0.0f : -1.0f - (float)i * 1e-4f;
        types[i] = i == 3 ? 2 : i < 4 ? 3 : i == n - 1 ? 4 : 1;
    }
    m3_tokenizer_pieces v = {.n = n, .texts = texts, .lens = lens, .scores = scores, .types = types,
                             .add_dummy_prefix = 1, .remove_extra_whitespaces = 1, .escape_whitespaces = 1};
    if (m3_model_write_file(m, &v, M3_DTYPE_F16, path, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    m3_model_close(m);
    // The tokenizer alone: rebuilding it (protobuf, trie) is most of what opening costs.
    for (int round = 0; round < 2; round++) {
        m3_tokenizer *tok;
        double t1 = now();
        if (m3_tokenizer_new_from_pieces(&v, "synthetic", &tok, &err) != M3_STATUS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        printf("m3_tokenizer_new_from_pieces (250002 ids): %.3f s\n", now() - t1);
        m3_tokenizer_free(tok);
    }
    struct stat st;
    stat(path, &st);
    printf("wrote %s: %.2f GB (random weights of the BGE-M3 shape, f16) in %.1f s\n", path, st.st_size / 1e9,
           now() - t0);
    for (int round = 0; round < 3; round++) {
        int dropped = round == 0 ? drop_caches(path) : 0;
        t0 = now();
        if (m3_model_open(path, &m, &err) != M3_STATUS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double dt = now() - t0;
        printf("m3_model_open: %.3f s (%s)\n", dt,
               round ? "warm page cache"
               : dropped == 2 ? "cold: page cache dropped (/proc/sys/vm/drop_caches)"
               : dropped == 1 ? "cold-ish: the file's pages evicted with posix_fadvise(DONTNEED); global drop refused"
                              : "page cache state unknown");
        m3_model_close(m);
    }
    unlink(path);
    free(texts);
    free(lens);
    free(scores);
    free(types);
    free(pool);
    return 0;
}
