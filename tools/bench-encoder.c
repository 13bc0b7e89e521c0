// SPDX-License-Identifier: MIT
//
// Encoder throughput on the real BGE-M3 shape with random weights (no download needed):
//   bench-encoder [-t THREADS] [-r RUNS] [BATCHxLENGTH ...]      default: -t 2 1x16 4x512 1x8192
// For each shape: tokens/s (best of RUNS after one warm-up pass for shapes under 4096 tokens),
// and where the time went (GEMM, attention, the rest), from m3_encoder_get_profile.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoder/encoder.h"
#include "model/model.h"

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int threads = 2, runs = 1, argi = 1;
    while (argi + 1 < argc && argv[argi][0] == '-') {
        if (strcmp(argv[argi], "-t") == 0)
            threads = atoi(argv[argi + 1]);
        else if (strcmp(argv[argi], "-r") == 0)
            runs = atoi(argv[argi + 1]);
        else
            break;
        argi += 2;
    }
    static const char *defaults[] = {"1x16", "4x512", "1x8192"};
    const char **shapes = argi < argc ? (const char **)argv + argi : defaults;
    int n_shapes = argi < argc ? argc - argi : 3;

    m3_error err = {0};
    m3_model_config cfg = m3_model_config_bge_m3();
    m3_model *model;
    double t0 = seconds();
    if (m3_model_new_random(&cfg, 42, &model, &err) != M3_STATUS_OK) {
        fprintf(stderr, "bench-encoder: %s\n", err.message);
        return 1;
    }
    m3_encoder_options opt = m3_encoder_options_default();
    opt.threads = threads;
    m3_encoder *enc;
    if (m3_encoder_new(model, &opt, &enc, &err) != M3_STATUS_OK) {
        fprintf(stderr, "bench-encoder: %s\n", err.message);
        return 1;
    }
    printf("BGE-M3 shape (random weights), %d threads, %s; setup %.1f s\n",
           m3_encoder_threads(enc), m3_encoder_kernel_name(enc), seconds() - t0);

    uint64_t x = 1;
    for (int i = 0; i < n_shapes; i++) {
        size_t batch = 0, len = 0;
        if (sscanf(shapes[i], "%zux%zu", &batch, &len) != 2 || !batch || !len) {
            fprintf(stderr, "bench-encoder: bad shape %s (want BATCHxLENGTH)\n", shapes[i]);
            return 2;
        }
        m3_sequence *seqs = calloc(batch, sizeof *seqs);
        m3_embedding *out = calloc(batch, sizeof *out);
        int32_t *ids = malloc(batch * len * sizeof *ids);
        for (size_t j = 0; j < batch * len; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            ids[j] = 4 + (int32_t)((x >> 33) % (uint64_t)(cfg.vocab - 5));
        }
        for (size_t b = 0; b < batch; b++) {
            ids[b * len] = 0;
            ids[b * len + len - 1] = 2;
            seqs[b] = (m3_sequence){ids + b * len, len};
        }
        if (batch * len < 4096) {  // warm-up: page in weights, grow buffers
            if (m3_encoder_encode(enc, seqs, batch, M3_OUTPUT_ALL, out, &err) != M3_STATUS_OK) {
                fprintf(stderr, "bench-encoder: %s\n", err.message);
                return 1;
            }
            for (size_t b = 0; b < batch; b++)
                m3_embedding_clear(&out[b]);
        }
        double best = 1e30;
        m3_encoder_profile best_prof = {0};
        for (int r = 0; r < runs; r++) {
            m3_encoder_reset_profile(enc);
            t0 = seconds();
            if (m3_encoder_encode(enc, seqs, batch, M3_OUTPUT_ALL, out, &err) != M3_STATUS_OK) {
                fprintf(stderr, "bench-encoder: %s\n", err.message);
                return 1;
            }
            double dt = seconds() - t0;
            if (dt < best) {
                best = dt;
                m3_encoder_get_profile(enc, &best_prof);
            }
            for (size_t b = 0; b < batch; b++)
                m3_embedding_clear(&out[b]);
        }
        double total = best_prof.gemm + best_prof.attention + best_prof.other;
        printf("%5zux%-5zu %8.3f s %9.1f tokens/s   gemm %5.1f%%  attention %5.1f%%  other %5.1f%%"
               "   activations %.0f MiB\n",
               batch, len, best, (double)(batch * len) / best, 100 * best_prof.gemm / total,
               100 * best_prof.attention / total, 100 * best_prof.other / total,
               (double)m3_encoder_activation_bytes(enc) / 1048576.0);
        fflush(stdout);
        free(seqs);
        free(out);
        free(ids);
    }
    m3_encoder_free(enc);
    m3_model_close(model);
    return 0;
}
