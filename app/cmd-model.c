// SPDX-License-Identifier: MIT
//
// m3 model download [--endpoint URL] [--revision REV] [--dir DIR] [--quiet] ...
// stdout: the model folder to give to --model (one line). Progress and errors on stderr.
// m3 model convert SRC DST [--dtype f16|f32] [--precision fp32|bf16|int8|auto]: a model folder to the
// one-file model (GGUF), optionally with the CPU backend's packed weights for a precision.
// m3 model verify PATH: re-checks a model file's checksum, or a folder's SHA256SUMS and structure.
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "encoder/cpu/packed-file.h"
#include "fetch/fetch.h"
#include "model/model.h"

static const char usage_text[] =
    "usage: m3 model download [--endpoint URL] [--revision REV] [--dir DIR] [--quiet]\n\n"
    "Fetches BAAI/bge-m3 (about 2.3 GB) from the Hugging Face hub and prints the folder to give to\n"
    "--model. An existing Hugging Face cache snapshot ($HF_HOME/hub, ~/.cache/huggingface/hub) with\n"
    "every needed file is used as it is, without downloading. An interrupted download resumes when the\n"
    "same command runs again; every file is checked against the hub's SHA-256 before it is installed,\n"
    "and DIR/SHA256SUMS records the SHA-256 of every installed file for `m3 model verify DIR`.\n\n"
    "  --endpoint URL     the hub or a mirror (default: $HF_ENDPOINT, else https://huggingface.co)\n"
    "  --revision REV     branch, tag or commit (default main)\n"
    "  --dir DIR          where to put the files (default $XDG_DATA_HOME/m3search/models/bge-m3)\n"
    "  --no-cache         do not reuse a Hugging Face cache snapshot\n"
    "  --quiet            no progress output\n"
    "  --retries N        tries after a transient failure of one transfer (default 5)\n"
    "  --retry-delay MS   first back-off in milliseconds, doubled each retry (default 1000)\n\n"
    "Environment: HF_ENDPOINT, HF_TOKEN (sent as a bearer token), HF_HOME / HF_HUB_CACHE, and the\n"
    "usual proxy variables (https_proxy, no_proxy).\n\n"
    "usage: m3 model convert SRC DST [--dtype f16|f32] [--precision fp32|bf16|int8|auto]\n\n"
    "Writes the model folder SRC once into the single memory-mappable file DST (GGUF; see\n"
    "docs/model-file.md) that --model also takes and that opens in well under a second. SRC may\n"
    "also be such a file (DST may be the same file): e.g. to add packed weights to it.\n\n"
    "  --dtype f16        weight matrices in fp16, biases and LayerNorm in fp32 (default; ~1.1 GB)\n"
    "  --dtype f32        every value exactly as in SRC (~2.3 GB): outputs identical to the folder's\n"
    "  --precision P      also store the linear layers packed for the CPU backend at precision P\n"
    "                     (bf16: +0.6 GB, fp32: +1.2 GB, int8: +0.3 GB), in the layout of this CPU's\n"
    "                     kernels: the CPU backend then maps them in place instead of packing at\n"
    "                     start-up (other precisions and CPUs still work: they pack as without it;\n"
    "                     auto = what the backend's auto picks, bf16 or fp32, never int8)\n\n"
    "usage: m3 model verify PATH\n\n"
    "Reads every byte of a model and checks it: a model file against the SHA-256 stored in it; a\n"
    "folder against its SHA256SUMS when it has one (`m3 model download` writes it), a Hugging Face\n"
    "cache snapshot against its blob names; then that the model opens (every file parses, every\n"
    "tensor has its shape). Exit 0 only when the model is intact.\n";

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct view {
    bool quiet;
    bool tty;
    bool drawn;        // a progress line is on the terminal (needs clearing before other output)
    double last_draw;
} view;

static const char *human(double bytes, char buf[32])
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000.0 && u < 4) bytes /= 1000.0, u++;
    snprintf(buf, 32, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return buf;
}

static void clear_line(view *v)
{
    if (v->drawn) fputs("\r\033[K", stderr);
    v->drawn = false;
}

static int progress_cb(const m3_fetch_progress *p, void *user)
{
    view *v = user;
    if (interrupted) return 1;
    if (v->quiet) return 0;
    char a[32], b[32], c[32];
    switch (p->event) {
    case M3_FETCH_EVENT_RETRY:
        clear_line(v);
        fprintf(stderr, "m3 model download: %s; retry %u in %.1f s\n", p->message, p->attempt,
                p->retry_in_ms / 1000.0);
        return 0;
    case M3_FETCH_EVENT_DONE:
        if (v->tty) {
            clear_line(v);
            fprintf(stderr, "%s: %s, %s verified\n", p->file, human((double)p->file_done, a), p->checked);
        } else {
            fprintf(stderr, "m3 model download: %s: %s, %s verified, installed\n", p->file,
                    human((double)p->file_done, a), p->checked);
        }
        return 0;
    case M3_FETCH_EVENT_START:
        if (!v->tty && p->file_done > 0)
            fprintf(stderr, "m3 model download: %s: resuming at %s\n", p->file, human((double)p->file_done, a));
        else if (!v->tty && p->file_total > 1000000)
            fprintf(stderr, "m3 model download: %s: fetching %s\n", p->file, human((double)p->file_total, a));
        break;
    default:
        break;
    }
    if (!v->tty) return 0;
    double t = m3_cli_now();
    if (p->event != M3_FETCH_EVENT_START && t - v->last_draw < 0.25) return 0;
    v->last_draw = t;
    if (p->event == M3_FETCH_EVENT_CHECK) {
        fprintf(stderr, "\r\033[Kchecking %s", p->file);
    } else {
        char eta[32] = "--:--";
        if (p->eta_s >= 0 && p->eta_s < 360000) {
            long s = (long)p->eta_s;
            snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
        }
        char rate[40] = "--";
        if (p->rate > 0) snprintf(rate, sizeof rate, "%s/s", human(p->rate, c));
        fprintf(stderr, "\r\033[K%s  %s / %s  %s  ETA %s", p->file, human((double)p->done, a),
                human((double)p->total, b), rate, eta);
    }
    v->drawn = true;
    return 0;
}

static int download(int argc, char **argv)
{
    static const struct option options[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"revision", required_argument, NULL, 'r'},
        {"dir", required_argument, NULL, 'd'},
        {"quiet", no_argument, NULL, 'q'},
        {"no-cache", no_argument, NULL, 'n'},
        {"retries", required_argument, NULL, 'R'},
        {"retry-delay", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    m3_fetch_options opt = {0};
    view v = {0};
    size_t n;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'e': opt.endpoint = optarg; break;
        case 'r': opt.revision = optarg; break;
        case 'd': opt.dir = optarg; break;
        case 'q': v.quiet = true; break;
        case 'n': opt.hf_cache = ""; break;
        case 'R':
            if (!m3_cli_parse_size("model download", "--retries", optarg, 0, 100, &n)) return M3_EXIT_USAGE;
            opt.retries = n == 0 ? -1 : (int)n;  // the core reads 0 as "the default"
            break;
        case 'D':
            if (!m3_cli_parse_size("model download", "--retry-delay", optarg, 0, 600000, &n)) return M3_EXIT_USAGE;
            opt.retry_delay_ms = n == 0 ? -1 : (int)n;
            break;
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    v.tty = isatty(STDERR_FILENO);
    opt.progress = progress_cb;
    opt.progress_user = &v;

    // SIGINT sets a flag that the progress callback turns into a cancellation: the .part files stay
    // consistent and a later run resumes them. No SA_RESTART, so that a blocking wait returns.
    struct sigaction sa = {.sa_handler = on_sigint}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    char *dir = NULL;
    bool from_cache = false;
    m3_error err = {0};
    m3_status st = m3_fetch_model(&opt, &dir, &from_cache, &err);
    clear_line(&v);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (st != M3_STATUS_OK) {
        if (err.code == ECANCELED && interrupted) {
            m3_cli_fail("model download", "interrupted (%s) — run the same command again to resume", err.message);
            return 130;
        }
        return m3_cli_fail_error("model download", &err);
    }
    if (!v.quiet && from_cache)
        fprintf(stderr, "m3 model download: using the Hugging Face cache snapshot %s (nothing downloaded)\n", dir);
    puts(dir);
    free(dir);
    if (fflush(stdout) != 0 || ferror(stdout)) return m3_cli_fail("model download", "cannot write standard output");
    return M3_EXIT_OK;
}

static int convert(int argc, char **argv)
{
    static const struct option options[] = {
        {"dtype", required_argument, NULL, 't'},
        {"precision", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    m3_dtype dtype = M3_DTYPE_F16;
    bool packed = false;
    m3_cpu_packer packer;
    m3_error err = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!strcmp(optarg, "f16")) dtype = M3_DTYPE_F16;
            else if (!strcmp(optarg, "f32")) dtype = M3_DTYPE_F32;
            else {
                m3_cli_fail("model convert", "--dtype %s: expected f16 or f32", optarg);
                return M3_EXIT_USAGE;
            }
            break;
        case 'p': {
            m3_precision precision;
            if (m3_precision_parse(optarg, &precision, &err) != M3_STATUS_OK ||
                m3_cpu_packer_init(&packer, precision, &err) != M3_STATUS_OK) {
                m3_cli_fail_error("model convert", &err);
                return M3_EXIT_USAGE;
            }
            packed = true;
            break;
        }
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (argc - optind != 2) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    const char *src = argv[optind], *dst = argv[optind + 1];
    double t0 = m3_cli_now();
    if (m3_model_convert_packed(src, dst, dtype, packed ? &packer.base : NULL, &err) != M3_STATUS_OK)
        return m3_cli_fail_error("model convert", &err);
    struct stat st;
    char size[32];
    if (stat(dst, &st) != 0) st.st_size = 0;
    fprintf(stderr, "m3 model convert: wrote %s (%s, %s weights%s%s%s) in %.1f s\n", dst,
            human((double)st.st_size, size), m3_dtype_name(dtype), packed ? ", packed " : "",
            packed ? packer.base.precision : "", packed ? " for the CPU" : "", m3_cli_now() - t0);
    puts(dst);
    if (fflush(stdout) != 0 || ferror(stdout)) return m3_cli_fail("model convert", "cannot write standard output");
    return M3_EXIT_OK;
}

static int verify(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage_text, stdout);
        return M3_EXIT_OK;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    m3_error err = {0};
    m3_model_verify_report r;
    double t0 = m3_cli_now();
    if (m3_model_verify(argv[1], &r, &err) != M3_STATUS_OK) return m3_cli_fail_error("model verify", &err);
    if (r.is_file)
        printf("%s: OK: model file, checksum %s matches, %zu tensors checked (%.1f s)\n", argv[1], r.checksum,
               r.tensors, m3_cli_now() - t0);
    else if (r.checksummed && r.hub_cache)
        printf("%s: OK: Hugging Face cache snapshot, %d files match their blob names (SHA-256 / git SHA-1), "
               "%zu tensors checked (%.1f s)\n", argv[1], r.checksummed, r.tensors, m3_cli_now() - t0);
    else if (r.checksummed)
        printf("%s: OK: model folder, %d files match SHA256SUMS, %zu tensors checked (%.1f s)\n", argv[1],
               r.checksummed, r.tensors, m3_cli_now() - t0);
    else
        printf("%s: OK: model folder without SHA256SUMS: structure checked (every file opens, %zu tensors have "
               "their shapes)\n", argv[1], r.tensors);
    if (fflush(stdout) != 0 || ferror(stdout)) return m3_cli_fail("model verify", "cannot write standard output");
    return M3_EXIT_OK;
}

int m3_cmd_model(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "download")) return download(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "convert")) return convert(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "verify")) return verify(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage_text, stdout);
        return M3_EXIT_OK;
    }
    fputs(usage_text, stderr);
    return M3_EXIT_USAGE;
}
