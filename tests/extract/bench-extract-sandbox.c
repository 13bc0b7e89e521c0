// SPDX-License-Identifier: MIT
//
// Not a test: the cost of the extraction sandbox. Reads every regular file of DIR into memory, then
// extracts them all in-process (m3_extract_find + extract) and through the sandboxed helper
// (m3_sandbox_extract), ROUNDS times each, and prints the best files/s of each and the helper's
// start-up time. The figure in docs/index.md comes from
//   bench-extract-sandbox DIR [ROUNDS]   (DIR: 2000 files of 2 KiB cut from /usr/share/doc:
//   i=0; find /usr/share/doc -type f -size +2k | sort | while read -r f; do
//     case $f in *.gz) zcat "$f";; *) cat "$f";; esac 2>/dev/null | head -c 2048 >DIR/$i.txt
//     [ $(stat -c %s DIR/$i.txt) -eq 2048 ] && i=$((i + 1)); [ $i -ge 2000 ] && break; done)
// This program is its own helper ("helper" as first argument).
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "extract/extract.h"
#include "extract/sandbox.h"

static double clock_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

// CPU time of this process plus, when helper > 0, the helper's.
static double cpu_s(pid_t helper)
{
    clockid_t clk;
    double t = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (helper > 0 && clock_getcpuclockid(helper, &clk) == 0) t += clock_s(clk);
    return t;
}

typedef struct file {
    char *path;
    unsigned char *data;
    size_t size;
} file;

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "helper")) _exit(m3_sandbox_serve(0, 1));
    if (argc < 2) {
        fprintf(stderr, "usage: bench-extract-sandbox DIR [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 1;
    }
    size_t n = 0, cap = 0, bytes = 0;
    file *files = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        if (n == cap) files = realloc(files, (cap = cap ? 2 * cap : 1024) * sizeof *files);
        files[n].path = strdup(path);
        files[n].data = malloc((size_t)st.st_size + 1);
        files[n].size = fread(files[n].data, 1, (size_t)st.st_size, f);
        bytes += files[n].size;
        fclose(f);
        n++;
    }
    closedir(d);
    static const char *const helper[] = {"/proc/self/exe", "helper", NULL};
    m3_sandbox_options opt = m3_sandbox_options_default();
    opt.argv = helper;
    m3_sandbox *sb;
    m3_error err = {0};
    double t0 = now_s();
    if (m3_sandbox_new(&opt, &sb, &err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double start_ms = (now_s() - t0) * 1e3;
    double best_in = 1e30, best_sb = 1e30, cpu_in = 1e30, cpu_sb = 1e30;
    size_t ok_in = 0, ok_sb = 0;
    for (int r = 0; r < rounds; r++) {
        ok_in = ok_sb = 0;
        t0 = now_s();
        double c0 = cpu_s(0);
        for (size_t i = 0; i < n; i++) {
            m3_extracted doc;
            const m3_extractor *ex = m3_extract_find(files[i].path, files[i].data, files[i].size < 4096 ? files[i].size : 4096);
            if (ex && ex->extract(files[i].data, files[i].size, files[i].path, &doc, NULL) == M3_STATUS_OK) {
                ok_in++;
                m3_extracted_clear(&doc);
            }
        }
        double t = now_s() - t0, c = cpu_s(0) - c0;
        if (t < best_in) best_in = t;
        if (c < cpu_in) cpu_in = c;
        pid_t helper = m3_sandbox_get_pid(sb);
        t0 = now_s();
        c0 = cpu_s(helper);
        for (size_t i = 0; i < n; i++) {
            m3_extracted doc;
            if (m3_sandbox_extract(sb, files[i].path, files[i].data, files[i].size, &doc, NULL, NULL) == M3_STATUS_OK) {
                ok_sb++;
                m3_extracted_clear(&doc);
            }
        }
        t = now_s() - t0;
        c = cpu_s(helper) - c0;
        if (t < best_sb) best_sb = t;
        if (c < cpu_sb) cpu_sb = c;
    }
    m3_sandbox_free(sb);
    printf("%zu files, %.1f KiB on average; extracted %zu in-process, %zu sandboxed\n", n,
           n ? (double)bytes / (double)n / 1024 : 0.0, ok_in, ok_sb);
    printf("in-process: %.0f files/s (%.1f us/file wall, %.1f us/file CPU)\n", (double)n / best_in,
           best_in / (double)n * 1e6, cpu_in / (double)n * 1e6);
    printf("sandboxed:  %.0f files/s (%.1f us/file wall, %.1f us/file CPU of both processes)\n", (double)n / best_sb,
           best_sb / (double)n * 1e6, cpu_sb / (double)n * 1e6);
    printf("helper start-up (spawn, warm-up of %s, limits, filter): %.1f ms\n", "iconv converters", start_ms);
    for (size_t i = 0; i < n; i++) free(files[i].path), free(files[i].data);
    free(files);
    return 0;
}
