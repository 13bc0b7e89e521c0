// SPDX-License-Identifier: MIT
//
// The attention kernels side by side in one run, on BGE-M3's heads (16 × 64) with random Q, K, V:
// the fp32 kernel and the bf16 one (where the CPU has AVX512_BF16), alternated, best of 10 each.
//
//     bench-attention [LENGTH [SEQUENCES]]      default 2048 1; e.g. bench-attention 512 4
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "encoder/cpu/attention.h"

enum { HEADS = 16, HEAD_DIM = 64, MAX_SEQS = 64, ROUNDS = 10 };

static double now(void)
{
    struct timespec t;
    clock_gettime(getenv("CPUTIME") ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t len = argc > 1 ? strtoul(argv[1], NULL, 10) : 2048, seqs = argc > 2 ? strtoul(argv[2], NULL, 10) : 1;
    if (!len || !seqs || seqs > MAX_SEQS) {
        fprintf(stderr, "usage: bench-attention [LENGTH [SEQUENCES <= %d]]\n", MAX_SEQS);
        return 2;
    }
    size_t hidden = (size_t)HEADS * HEAD_DIM, ld = 3 * hidden, tokens = len * seqs;
    float *qkv = malloc(tokens * ld * sizeof *qkv), *out = malloc(tokens * hidden * sizeof *out);
    size_t offsets[MAX_SEQS + 1], blocks[MAX_SEQS + 1];
    m3_threadpool *pool = NULL;
    m3_error err = {0};
    if (!qkv || !out || m3_threadpool_new(getenv("THREADS") ? atoi(getenv("THREADS")) : 0, &pool, &err) != M3_STATUS_OK) {
        fprintf(stderr, "bench-attention: %s\n", err.message[0] ? err.message : "out of memory");
        return 1;
    }
    srand(1);
    for (size_t i = 0; i < tokens * ld; i++)
        qkv[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (size_t s = 0; s <= seqs; s++)
        offsets[s] = s * len;
    m3_attention_count_blocks(offsets, seqs, blocks);
    int threads = m3_threadpool_size(pool);
    size_t stride = m3_attention_scratch_size(HEAD_DIM);
    void *scratch = aligned_alloc(64, stride * (size_t)threads);
    size_t kv_bytes = m3_attention_kv_size(tokens, seqs, HEADS, HEAD_DIM, false);
    if (m3_attention_kv_size(tokens, seqs, HEADS, HEAD_DIM, true) > kv_bytes)
        kv_bytes = m3_attention_kv_size(tokens, seqs, HEADS, HEAD_DIM, true);
    void *kv = aligned_alloc(64, (kv_bytes + 63) / 64 * 64);
    uint32_t *out_pairs = malloc(tokens * hidden / 2 * sizeof *out_pairs);

    double best[2] = {1e30, 1e30}, bold[2] = {1e30, 1e30};
    extern int m3_attention_ab_old, m3_attention_direct;
    m3_attention_direct = getenv("DIRECT") != NULL;
    int rounds = getenv("ROUNDS") ? atoi(getenv("ROUNDS")) : ROUNDS;
    for (int round = 0; round < rounds; round++)
        for (int bf16 = 0; bf16 < 2; bf16++)
          for (int old = 0; old < 2; old++) {
            m3_attention_ab_old = getenv("SWAP") ? !old : old;
            m3_attention_args a = {
                .q = qkv, .k = qkv + hidden, .v = qkv + 2 * hidden, .ld = ld, .out = qkv, .ldo = ld,
                .offsets = offsets, .blocks = blocks, .n_seqs = seqs, .heads = HEADS, .head_dim = HEAD_DIM,
                .scale = 0.125f, .bf16 = bf16, .kv = kv, .out_pairs = bf16 ? out_pairs : NULL, .ldop = hidden / 2,
            };
            double t = now();
            m3_attention(pool, &a, scratch, stride);
            t = now() - t;
            if (m3_attention_ab_old) bold[bf16] = t < bold[bf16] ? t : bold[bf16];
            else best[bf16] = t < best[bf16] ? t : best[bf16];
          }
    extern double m3_attention_t_kv, m3_attention_t_run, m3_attention_t_kvp[2];
    printf("kv pass best: fp32 %.3f ms, bf16 %.3f ms\n", m3_attention_t_kvp[0] * 1e3, m3_attention_t_kvp[1] * 1e3);
    printf("new phases total: kv %.2f ms, tasks %.2f ms\n", m3_attention_t_kv * 1e3, m3_attention_t_run * 1e3);
    printf("A/B old: fp32 %.2f ms, bf16 %.2f ms; new: fp32 %.2f (%.3fx) bf16 %.2f (%.3fx)\n", bold[0]*1e3, bold[1]*1e3,
           best[0]*1e3, bold[0]/best[0], best[1]*1e3, bold[1]/best[1]);
    double flop = 4.0 * (double)len * (double)len * HEAD_DIM * HEADS * (double)seqs;  // Q·Kᵀ and P·V
    printf("attention %zu x %zu tokens, %d heads of %d, %d threads (one layer)\n", seqs, len, HEADS, HEAD_DIM, threads);
    printf("  %-10s %9.2f ms  %6.1f GFLOP/s\n", m3_attention_kernel_name_for(false), best[0] * 1e3, flop / best[0] / 1e9);
    printf("  %-10s %9.2f ms  %6.1f GFLOP/s  (%.2fx)\n", m3_attention_kernel_name_for(true), best[1] * 1e3,
           flop / best[1] / 1e9, best[0] / best[1]);
    free(scratch);
    free(kv);
    free(out_pairs);
    free(qkv);
    free(out);
    m3_threadpool_free(pool);
    return 0;
}
