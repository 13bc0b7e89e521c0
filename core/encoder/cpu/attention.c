// SPDX-License-Identifier: MIT
//
// Attention: task decomposition, ISA dispatch and the double-precision reference.
#include "encoder/cpu/attention.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"

bool m3_attention_supports(int head_dim)
{
    return head_dim > 0 && head_dim % 16 == 0;
}

void m3_attention_count_blocks(const size_t *offsets, size_t n_seqs, size_t *blocks)
{
    blocks[0] = 0;
    for (size_t s = 0; s < n_seqs; s++) {
        size_t len = offsets[s + 1] - offsets[s];
        blocks[s + 1] = blocks[s] + (len + M3_ATTENTION_BLOCK - 1) / M3_ATTENTION_BLOCK;
    }
}

// Must match the layout in attention-kernel.c: Qt [d][BLOCK], O [BLOCK][d],
// St [KEY_BLOCK][BLOCK], a zero row [d], maxima, sums and rescale factors [BLOCK] each; then for
// the fp32 kernels the key block's K and V rows [KEY_BLOCK][d] each (copied there for a sequence
// of one query block, attention-kernel.c), for the bf16 kernel P as key pairs
// [KEY_BLOCK / 2][BLOCK] (its Qt pairs fit in Qt).
size_t m3_attention_scratch_size(int head_dim)
{
    size_t d = (size_t)head_dim, b = M3_ATTENTION_BLOCK, kb = M3_ATTENTION_KEY_BLOCK;
    size_t tail = 2 * kb * d > kb / 2 * b ? 2 * kb * d : kb / 2 * b;
    size_t floats = 2 * b * d + kb * b + d + 3 * b + tail;
    return (floats * sizeof(float) + 63) / 64 * 64;
}

static size_t pairs_size(size_t tokens, size_t n_seqs, int heads, int head_dim)
{
    size_t d = (size_t)head_dim, h = (size_t)heads, rows = (tokens + n_seqs) / 2 + 1;
    return ((h * tokens + M3_ATTENTION_K_PAD) * d / 2 + h * rows * d) * sizeof(uint32_t);
}

static m3_attention_task_fn task_fn, bf16_fn;  // bf16_fn: NULL where the CPU lacks AVX512_BF16
static const char *task_name;

static bool cpu_has_bf16(void)
{
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
#else
    return false;
#endif
}

static void detect_kernel(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
#if defined(__x86_64__)
    if (cpu_has_bf16()) bf16_fn = m3_attention_task_avx512bf16;
#endif
    if (__builtin_cpu_supports("avx512f")) {
        task_name = "avx512";
        task_fn = m3_attention_task_avx512;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        task_name = "avx2";
        task_fn = m3_attention_task_avx2;
    } else {
        task_name = "sse2";
        task_fn = m3_attention_task_sse2;
    }
#else
    task_name = "generic";  // the same source, vectorised for the host's baseline ISA
    task_fn = m3_attention_task_sse2;
#endif
}

static bool force(const char *name);

// M3_ATTENTION_KERNEL=avx512|avx2|sse2 (fp32 kernel for every request), avx512bf16, or "fp32"
// (bf16 requests use the fp32 kernel): for benchmarks side by side and tests, like M3_GEMM_KERNEL.
static void detect_and_force(void)
{
    detect_kernel();
    const char *forced = getenv("M3_ATTENTION_KERNEL");
    if (forced && !strcmp(forced, "fp32"))
        bf16_fn = NULL;
    else if (forced && *forced)
        force(forced);
}

static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void choose_kernel(void)
{
    pthread_once(&detect_once, detect_and_force);
}

const char *m3_attention_kernel_name(void)
{
    choose_kernel();
    return task_name;
}

const char *m3_attention_kernel_name_for(bool bf16)
{
    choose_kernel();
    return bf16 && bf16_fn ? "avx512bf16" : task_name;
}

size_t m3_attention_kv_size(size_t tokens, size_t n_seqs, int heads, int head_dim, bool bf16)
{
    choose_kernel();
    if (bf16 && bf16_fn)
        return pairs_size(tokens, n_seqs, heads, head_dim);
    return 2 * tokens * (size_t)heads * (size_t)head_dim * sizeof(float);
}

static bool force(const char *name)
{
#if defined(__x86_64__) || defined(__i386__)
    if (strcmp(name, "avx512bf16") == 0) {
#if defined(__x86_64__)
        if (!cpu_has_bf16()) return false;
        bf16_fn = m3_attention_task_avx512bf16;  // fp32 requests keep their kernel
        return true;
#else
        return false;
#endif
    }
    if (strcmp(name, "avx512") == 0 && __builtin_cpu_supports("avx512f")) {
        task_fn = m3_attention_task_avx512;
    } else if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma")) {
        task_fn = m3_attention_task_avx2;
    } else if (strcmp(name, "sse2") == 0) {
        task_fn = m3_attention_task_sse2;
    } else {
        return false;
    }
    task_name = name[0] == 'a' ? (name[3] == '5' ? "avx512" : "avx2") : "sse2";
    bf16_fn = NULL;  // a forced fp32 kernel serves bf16 requests too
    return true;
#else
    return strcmp(name, "generic") == 0;
#endif
}

bool m3_attention_force_kernel(const char *name)
{
    choose_kernel();
    return force(name);
}

typedef struct run_ctx {
    const m3_attention_args *a;
    char *scratch;
    size_t stride;
    m3_attention_task_fn fn;
} run_ctx;

// The sequence holding global query block `block`: blocks[s] <= block < blocks[s + 1].
static size_t seq_of_block(const m3_attention_args *a, size_t block)
{
    size_t lo = 0, hi = a->n_seqs;  // binary search: blocks[lo] <= block < blocks[hi]
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->blocks[mid] <= block)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

// Tasks in (sequence, head, query block) order: sequence s owns tasks [blocks[s] · heads,
// blocks[s + 1] · heads). The tasks a thread takes one after another then mostly share a head,
// whose K and V (in kv, 2 × len × head_dim values) stay in its L2 cache.
static void run_task(void *ctx, size_t task, int thread)
{
    const run_ctx *r = ctx;
    const m3_attention_args *a = r->a;
    size_t seq = seq_of_block(a, task / (size_t)a->heads);
    size_t local = task - a->blocks[seq] * (size_t)a->heads, n_blocks = a->blocks[seq + 1] - a->blocks[seq];
    int head = (int)(local / n_blocks);
    size_t q0 = local % n_blocks * M3_ATTENTION_BLOCK;
    r->fn(a, seq, head, q0, (float *)(void *)(r->scratch + (size_t)thread * r->stride));
}

enum { KV_CHUNK = 32 };  // tokens per task of the pass that lays out K and V (even)

static m3_attention_pack_fn pack_for(m3_attention_task_fn fn)
{
#if defined(__x86_64__)
    if (fn == m3_attention_task_avx512bf16)
        return m3_attention_pack_avx512bf16;
#endif
    if (fn == m3_attention_task_avx512)
        return m3_attention_pack_avx512;
    return fn == m3_attention_task_avx2 ? m3_attention_pack_avx2 : m3_attention_pack_sse2;
}

// Task i: tokens [KV_CHUNK · (i % parts), + KV_CHUNK) of query block i / parts, every head.
static void kv_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const run_ctx *r = ctx;
    const m3_attention_args *a = r->a;
    const size_t parts = M3_ATTENTION_BLOCK / KV_CHUNK, block = task / parts;
    size_t seq = seq_of_block(a, block);
    size_t len = a->offsets[seq + 1] - a->offsets[seq];
    size_t t0 = (block - a->blocks[seq]) * M3_ATTENTION_BLOCK + task % parts * KV_CHUNK;
    if (t0 >= len)
        return;
    size_t t1 = t0 + KV_CHUNK < len ? t0 + KV_CHUNK : len;
    pack_for(r->fn)(a, seq, t0, t1);
}

void m3_attention(m3_threadpool *pool, const m3_attention_args *a, void *scratch,
                  size_t scratch_stride)
{
    M3_ASSERT(m3_attention_supports(a->head_dim));
    M3_ASSERT(scratch_stride >= m3_attention_scratch_size(a->head_dim));
    M3_ASSERT(a->kv);
    choose_kernel();
    run_ctx r = {.a = a, .scratch = scratch, .stride = scratch_stride, .fn = a->bf16 && bf16_fn ? bf16_fn : task_fn};
    size_t tasks = a->blocks[a->n_seqs] * (size_t)a->heads;
    if (!tasks)
        return;
    // K and V laid out first (the fp32 kernels need that only for sequences of several blocks).
    if (r.fn == bf16_fn || a->blocks[a->n_seqs] > a->n_seqs)
        m3_threadpool_run(pool, a->blocks[a->n_seqs] * (M3_ATTENTION_BLOCK / KV_CHUNK), kv_task, &r);
    m3_threadpool_run(pool, tasks, run_task, &r);
}

void m3_attention_reference(const m3_attention_args *a)
{
    size_t d = (size_t)a->head_dim;
    size_t max_len = 0;
    for (size_t s = 0; s < a->n_seqs; s++)
        if (a->offsets[s + 1] - a->offsets[s] > max_len)
            max_len = a->offsets[s + 1] - a->offsets[s];
    double *p = malloc((max_len ? max_len : 1) * sizeof *p);
    double *acc = malloc(d * sizeof *acc);
    M3_ASSERT(p && acc);
    for (size_t s = 0; s < a->n_seqs; s++) {
        size_t base = a->offsets[s], len = a->offsets[s + 1] - base;
        for (int h = 0; h < a->heads; h++) {
            size_t col = (size_t)h * d;
            for (size_t i = 0; i < len; i++) {
                const float *q = a->q + (base + i) * a->ld + col;
                double max = -INFINITY;
                for (size_t j = 0; j < len; j++) {
                    const float *k = a->k + (base + j) * a->ld + col;
                    double dot = 0;
                    for (size_t c = 0; c < d; c++)
                        dot += (double)q[c] * k[c];
                    p[j] = dot * a->scale;
                    if (p[j] > max)
                        max = p[j];
                }
                double sum = 0;
                for (size_t j = 0; j < len; j++) {
                    p[j] = exp(p[j] - max);
                    sum += p[j];
                }
                for (size_t c = 0; c < d; c++)
                    acc[c] = 0;
                for (size_t j = 0; j < len; j++) {
                    const float *v = a->v + (base + j) * a->ld + col;
                    for (size_t c = 0; c < d; c++)
                        acc[c] += p[j] * v[c];
                }
                float *o = a->out + (base + i) * a->ldo + col;
                for (size_t c = 0; c < d; c++)
                    o[c] = (float)(acc[c] / sum);
            }
        }
    }
    free(p);
    free(acc);
}
