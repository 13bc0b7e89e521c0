// SPDX-License-Identifier: MIT
//
// The attention kernels side by side in one run, on BGE-M3's heads (16 × 64) with random Q, K, V:
// the fp32 kernel and the bf16 one (where the CPU has AVX512_BF16), alternated, best of 10 each.
// As the encoder calls them: the fp32 output over Q in place, the bf16 output as pairs.
//
//     bench-attention [LENGTH [SEQUENCES [THREADS]]]   default 2048 1 (all CPUs); e.g. 512 4
//
// THREADS = 1 times the calling thread's CPU time (it runs every task), which a busy machine
// disturbs much less than the wall-clock time two threads take.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "encoder/cpu/attention.h"

enum { HEADS = 16, HEAD_DIM = 64, MAX_SEQS = 64, ROUNDS = 10 };

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(clock_id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t len = argc > 1 ? strtoul(argv[1], NULL, 10) : 2048, seqs = argc > 2 ? strtoul(argv[2], NULL, 10) : 1;
    int n_threads = argc > 3 ? atoi(argv[3]) : 0;
    if (!len || !seqs || seqs > MAX_SEQS || n_threads < 0) {
        fprintf(stderr, "usage: bench-attention [LENGTH [SEQUENCES <= %d [THREADS]]]\n", MAX_SEQS);
        return 2;
    }
    size_t hidden = (size_t)HEADS * HEAD_DIM, ld = 3 * hidden, tokens = len * seqs;
    float *qkv = malloc(tokens * ld * sizeof *qkv);
    size_t offsets[MAX_SEQS + 1], blocks[MAX_SEQS + 1];
    m3_threadpool *pool = NULL;
    m3_error err = {0};
    if (!qkv || m3_threadpool_new(n_threads, &pool, &err) != M3_STATUS_OK) {
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
    if (threads == 1)
        clock_id = CLOCK_THREAD_CPUTIME_ID;
    size_t kv_bytes = m3_attention_kv_size(tokens, seqs, HEADS, HEAD_DIM, false);
    if (m3_attention_kv_size(tokens, seqs, HEADS, HEAD_DIM, true) > kv_bytes)
        kv_bytes = m3_attention_kv_size(tokens, seqs, HEADS, HEAD_DIM, true);
    void *kv = aligned_alloc(64, (kv_bytes + 63) / 64 * 64);
    uint32_t *out_pairs = malloc(tokens * hidden / 2 * sizeof *out_pairs);
    if (!scratch || !kv || !out_pairs) {
        fprintf(stderr, "bench-attention: out of memory\n");
        return 1;
    }

    double best[2] = {1e30, 1e30};
    for (int round = 0; round < ROUNDS; round++)
        for (int bf16 = 0; bf16 < 2; bf16++) {
            m3_attention_args a = {
                .q = qkv, .k = qkv + hidden, .v = qkv + 2 * hidden, .ld = ld, .out = qkv, .ldo = ld,
                .offsets = offsets, .blocks = blocks, .n_seqs = seqs, .heads = HEADS, .head_dim = HEAD_DIM,
                .scale = 0.125f, .bf16 = bf16, .kv = kv,
                .out_pairs = bf16 ? out_pairs : NULL, .ldop = hidden / 2,
            };
            double t = now();
            m3_attention(pool, &a, scratch, stride);
            t = now() - t;
            best[bf16] = t < best[bf16] ? t : best[bf16];
        }
    double flop = 4.0 * (double)len * (double)len * HEAD_DIM * HEADS * (double)seqs;  // Q·Kᵀ and P·V
    printf("attention %zu x %zu tokens, %d heads of %d, %d thread%s (one layer)\n", seqs, len, HEADS, HEAD_DIM, threads,
           threads == 1 ? ", CPU time" : "s");
    printf("  %-10s %9.2f ms  %6.1f GFLOP/s\n", m3_attention_kernel_name_for(false), best[0] * 1e3, flop / best[0] / 1e9);
    printf("  %-10s %9.2f ms  %6.1f GFLOP/s  (%.2fx)\n", m3_attention_kernel_name_for(true), best[1] * 1e3,
           flop / best[1] / 1e9, best[0] / best[1]);
    free(scratch);
    free(kv);
    free(out_pairs);
    free(qkv);
    m3_threadpool_free(pool);
    return 0;
}
