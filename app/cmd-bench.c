// SPDX-License-Identifier: MIT
//
// m3 bench [--backend cpu|vulkan|auto] [--precision P] [--threads N] [--shapes BxT,...] [--model DIR] [--json]
// m3 bench search ... (index search latency: cmd-bench-search.c)
// Encoder throughput. Without --model the weights are pseudo-random with the exact BGE-M3 shape:
// compute cost does not depend on the values, and no 2.3 GB download is needed.
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "encoder/encoder.h"
#include "model/model.h"

static const char usage_text[] =
    "usage: m3 bench [--backend NAME] [--precision P] [--threads N] [--shapes BxT,...] [--model DIR]\n"
    "                [--seconds S] [--json]\n\n"
    "Measures encoder throughput (all three outputs) for batches of B texts of T tokens each.\n\n"
    "  --backend NAME   cpu (default), vulkan, or auto (vulkan on a GPU if there is one, else cpu)\n"
    M3_CLI_PRECISION_HELP
    "  --threads N      worker threads (default: one per CPU)\n"
    "  --shapes LIST    default 1x16,4x512,1x8192; with vulkan 64x512,256x128,1x16,1x8192\n"
    "  --model DIR      use this model folder instead of random weights of the BGE-M3 shape\n"
    "  --seconds S      measure each shape for at least S seconds (default 3; at least one run)\n"
    "  --json           one JSON object per shape instead of a table\n\n"
    "'m3 bench search --help': index search latency against a brute-force scan.\n";

enum { MAX_SHAPES = 32 };

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static double mib(uint64_t bytes)
{
    return (double)bytes / 1048576.0;
}


static bool parse_shapes(const char *list, size_t shapes[][2], size_t *n)
{
    *n = 0;
    const char *p = list;
    while (*p) {
        char *end;
        unsigned long b = strtoul(p, &end, 10);
        if (end == p || *end != 'x') return false;
        p = end + 1;
        unsigned long t = strtoul(p, &end, 10);
        if (end == p || (*end && *end != ',') || b < 1 || b > 4096 || t < 2 || t > 8192 || *n == MAX_SHAPES)
            return false;
        shapes[*n][0] = b;
        shapes[*n][1] = t;
        (*n)++;
        p = *end ? end + 1 : end;
    }
    return *n > 0;
}

int m3_cmd_bench(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "search")) return m3_cmd_bench_search(argc - 1, argv + 1);
    static const struct option options[] = {
        {"backend", required_argument, NULL, 'b'},
        {"precision", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"shapes", required_argument, NULL, 's'},
        {"model", required_argument, NULL, 'm'},
        {"seconds", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    m3_encoder_options opt = m3_encoder_options_default();
    opt.precision = M3_PRECISION_AUTO;
    size_t threads = 0, seconds = 3, shapes[MAX_SHAPES][2], n_shapes = 0;
    const char *model_dir = NULL;
    bool json = false, shapes_given = false;
    parse_shapes("1x16,4x512,1x8192", shapes, &n_shapes);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'b': opt.backend = optarg; break;
        case 'p':
            if (!m3_cli_parse_precision("bench", optarg, &opt)) return M3_EXIT_USAGE;
            break;
        case 't':
            if (!m3_cli_parse_size("bench", "--threads", optarg, 1, 1024, &threads)) return M3_EXIT_USAGE;
            break;
        case 'S':
            if (!m3_cli_parse_size("bench", "--seconds", optarg, 0, 3600, &seconds)) return M3_EXIT_USAGE;
            break;
        case 's':
            if (!parse_shapes(optarg, shapes, &n_shapes)) {
                m3_cli_fail("bench", "--shapes: expected BxT,... with 1 <= B <= 4096 and 2 <= T <= 8192");
                return M3_EXIT_USAGE;
            }
            shapes_given = true;
            break;
        case 'm': model_dir = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    opt.threads = (int)threads;

    m3_error err = {0};
    m3_model *model;
    double t0 = m3_cli_now();
    if (model_dir) {
        if (m3_model_open(model_dir, &model, &err) != M3_STATUS_OK) return m3_cli_fail_error("bench", &err);
    } else {
        m3_model_config cfg = m3_model_config_bge_m3();
        if (m3_model_new_random(&cfg, 42, &model, &err) != M3_STATUS_OK) return m3_cli_fail_error("bench", &err);
    }
    double t1 = m3_cli_now();
    m3_encoder *enc;
    if (m3_encoder_new(model, &opt, &enc, &err) != M3_STATUS_OK) {
        m3_model_close(model);
        return m3_cli_fail_error("bench", &err);
    }
    double t2 = m3_cli_now();
    const m3_model_config *cfg = m3_model_get_config(model);
    size_t max_tokens = (size_t)(cfg->max_positions - cfg->pad_token_id - 1);
    m3_encoder_device dev;
    const bool gpu = m3_encoder_get_device(enc, &dev);
    if (!shapes_given && strcmp(m3_encoder_backend_name(enc), "vulkan") == 0)
        parse_shapes("64x512,256x128,1x16,1x8192", shapes, &n_shapes);  // GPU-sized batches
    if (!json) {
        printf("model: %s (%d layers, hidden %d, vocab %d), loaded in %.2f s, encoder ready in %.2f s\n",
               model_dir ? model_dir : "random weights, BGE-M3 shape", cfg->layers, cfg->hidden, cfg->vocab,
               t1 - t0, t2 - t1);
        printf("backend: %s, threads: %d, precision: %s\n", m3_encoder_backend_name(enc),
               m3_encoder_threads(enc), m3_precision_name(m3_encoder_precision(enc)));
        if (gpu) printf("device: %s\n", dev.name);
        printf("kernels: %s\n", m3_encoder_kernel_name(enc));
        printf("%-12s %10s %12s %14s\n", "batch", "runs", "ms/batch", "tokens/s");
    }

    int status = M3_EXIT_OK;
    uint64_t rng = 0x9E3779B97F4A7C15u;
    for (size_t s = 0; s < n_shapes && status == M3_EXIT_OK; s++) {
        size_t b = shapes[s][0], t = shapes[s][1];
        if (t > max_tokens) {
            status = m3_cli_fail("bench", "%zux%zu: the model takes at most %zu tokens", b, t, max_tokens);
            break;
        }
        int32_t *ids = malloc(b * t * sizeof *ids);
        m3_sequence *seqs = malloc(b * sizeof *seqs);
        m3_embedding *out = calloc(b, sizeof *out);
        if (!ids || !seqs || !out) {
            free(ids), free(seqs), free(out);
            status = m3_cli_fail("bench", "out of memory");
            break;
        }
        for (size_t i = 0; i < b; i++) {
            int32_t *row = ids + i * t;
            row[0] = 0;
            for (size_t j = 1; j + 1 < t; j++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                row[j] = 5 + (int32_t)(rng % (uint64_t)(cfg->vocab - 6));
            }
            row[t - 1] = 2;
            seqs[i] = (m3_sequence){row, t};
        }
        size_t runs = 0;
        double elapsed = 0;
        // One untimed run first: page faults of fresh buffers are not the steady state.
        for (int warm = 1; status == M3_EXIT_OK; warm = 0) {
            double start = m3_cli_now();
            if (m3_encoder_encode(enc, seqs, b, M3_OUTPUT_ALL, out, &err) != M3_STATUS_OK) {
                status = m3_cli_fail_error("bench", &err);
                break;
            }
            double dt = m3_cli_now() - start;
            for (size_t i = 0; i < b; i++) m3_embedding_clear(&out[i]);
            if (warm) {
                m3_encoder_reset_profile(enc);  // the profile of the timed runs only
                continue;
            }
            runs++;
            elapsed += dt;
            if (elapsed >= (double)seconds) break;
        }
        if (status == M3_EXIT_OK) {
            double ms = elapsed / (double)runs * 1e3, tps = (double)(b * t) * (double)runs / elapsed;
            if (json) {
                printf("{\"backend\": \"%s\", \"precision\": \"%s\", \"threads\": %d, \"batch\": %zu, "
                       "\"seq\": %zu, \"runs\": %zu, \"ms\": %.2f, \"tokens_per_s\": %.1f, \"peak_rss_mib\": %.0f",
                       m3_encoder_backend_name(enc), m3_precision_name(m3_encoder_precision(enc)),
                       m3_encoder_threads(enc), b, t, runs, ms, tps, peak_rss_mib());
                if (gpu) {
                    m3_encoder_get_device(enc, &dev);
                    fputs(", \"device\": ", stdout);
                    m3_cli_put_json_string(stdout, dev.name, strlen(dev.name));
                    printf(", \"device_peak_mib\": %.1f, \"host_visible_peak_mib\": %.1f, \"heap_usage_mib\": %.1f, "
                           "\"heap_budget_mib\": %.1f",
                           mib(dev.peak_bytes), mib(dev.host_peak_bytes), mib(dev.heap_usage), mib(dev.heap_budget));
                }
                // Where a batch's time went (the backend's steps; "outside": the encoder's own work
                // around the backend, e.g. normalising the outputs, on the calling thread).
                m3_encoder_profile prof;
                m3_encoder_get_profile(enc, &prof);
                double per = 1e3 / (double)runs;
                printf(", \"gemm_ms\": %.2f, \"attention_ms\": %.2f, \"other_ms\": %.2f, \"outside_ms\": %.2f",
                       prof.gemm * per, prof.attention * per, prof.other * per,
                       ms - (prof.gemm + prof.attention + prof.other) * per);
                printf(", \"kernels\": ");
                m3_cli_put_json_string(stdout, m3_encoder_kernel_name(enc), strlen(m3_encoder_kernel_name(enc)));
                printf("}\n");
            } else
                printf("%5zu x %-5zu %10zu %12.2f %14.1f\n", b, t, runs, ms, tps);
            fflush(stdout);
        }
        free(ids), free(seqs), free(out);
    }
    if (!json && status == M3_EXIT_OK) printf("peak memory (RSS): %.0f MiB\n", peak_rss_mib());
    if (!json && status == M3_EXIT_OK && gpu) {
        m3_encoder_get_device(enc, &dev);
        printf("peak device memory: %.1f MiB (+ %.1f MiB host-visible staging); device heap in use now %.1f MiB "
               "of a %.1f MiB budget%s\n",
               mib(dev.peak_bytes), mib(dev.host_peak_bytes), mib(dev.heap_usage), mib(dev.heap_budget),
               dev.heap_budget ? "" : " (no VK_EXT_memory_budget)");
    }
    m3_encoder_free(enc);
    m3_model_close(model);
    return status;
}
