// SPDX-License-Identifier: MIT
//
// Private to the CPU backend: multi-head self-attention over a packed batch of sequences,
//   out[t, head] = softmax(scale · q[t, head] · k[s, head]ᵀ over the tokens s of t's sequence) · v
// computed flash-style: blocks of M3_ATTENTION_BLOCK queries × blocks of keys with an online
// softmax, so memory does not grow with L² (8192-token inputs need no 8192² matrix). A first pass
// lays out K and V once (args.kv); then tasks, (sequence, head, query block) triples in that order,
// run on the thread pool. The kernel is compiled once per ISA (AVX-512F, AVX2+FMA, baseline SSE2,
// and AVX512_BF16 for bf16 requests) from attention-kernel.c and chosen at run time.
//
//     size_t blocks[n + 1];
//     m3_attention_count_blocks(offsets, n, blocks);
//     m3_attention_args a = {.q = qkv, .k = qkv + H, .v = qkv + 2 * H, .ld = 3 * H, .out = qkv,
//                            .ldo = 3 * H, .offsets = offsets, .blocks = blocks, .n_seqs = n,
//                            .heads = 16, .head_dim = 64, .scale = 0.125f,
//                            .kv = kv};   // m3_attention_kv_size(offsets[n], n, 16, 64, false) bytes
//     m3_attention(pool, &a, scratch, scratch_stride);   // scratch: threads × m3_attention_scratch_size
//
// Threads: m3_attention runs on the given pool; each pool thread uses its own scratch slice.
#ifndef M3_ENCODER_CPU_ATTENTION_H
#define M3_ENCODER_CPU_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"

enum {
    M3_ATTENTION_BLOCK = 128,    // queries per task (a multiple of 32)
    M3_ATTENTION_KEY_BLOCK = 64, // keys per inner block
    M3_ATTENTION_K_PAD = 8,      // K pair rows after the last head's (a score tile reads past the end)
};

typedef struct m3_attention_args {
    // Row t (a packed token index), head h: q + t * ld + h * head_dim (same for k, v).
    const float *q, *k, *v;
    size_t ld;
    // Output row t, head h at out + t * ldo + h * head_dim. out may alias q (with ldo == ld): each
    // task reads its own queries before it writes over them and no other task reads them.
    float *out;
    size_t ldo;
    const size_t *offsets;  // [n_seqs + 1]: sequence s is tokens [offsets[s], offsets[s + 1])
    const size_t *blocks;   // [n_seqs + 1]: from m3_attention_count_blocks
    size_t n_seqs;
    int heads;
    int head_dim;           // a multiple of 16 (m3_attention_supports)
    float scale;            // 1 / sqrt(head_dim)
    // Multiply in bf16 where the CPU has AVX512_BF16 (Q·Kᵀ and P·V as bf16 pairs summed in fp32;
    // softmax, maxima, sums and the output in fp32); elsewhere the fp32 kernel runs.
    bool bf16;
    // m3_attention_kv_size bytes (64-byte aligned, contents not needed) where K and V are laid out
    // once per call, by a pass over the tokens (reading the activations in order) before the query
    // blocks run, so that no query block gathers them again from the activations (each row there
    // lies 3·hidden floats, a page, from the next). The bf16 kernel rounds and pairs them there
    // (m3_attention_k_pairs); the fp32 kernels copy each head's rows next to each other
    // (m3_attention_k_rows), for sequences of more than one query block only (the one task of a
    // shorter sequence copies its key blocks into its scratch as it goes).
    void *kv;
    // When set (any kernel), the output goes here instead of to out, as bf16 pairs in the layout
    // of gemm.h (row t, head h at out_pairs + t * ldop + h * head_dim / 2 words), each the
    // rounding (m3_gemm_bf16_round) of the float out would hold: the output projection's A,
    // which a bf16 GEMM would otherwise convert from out.
    uint32_t *out_pairs;
    size_t ldop;
} m3_attention_args;

// Bytes args.kv needs for this many tokens (offsets[n_seqs]) and sequences, for requests with
// args.bf16 == bf16 under the kernel that now serves them (m3_attention_kernel_name_for): the fp32
// kernels need twice the bf16 kernel's bytes (8 and 4 bytes per token and channel of K and V).
size_t m3_attention_kv_size(size_t tokens, size_t n_seqs, int heads, int head_dim, bool bf16);

// The bf16 kernel's layout inside kv: head h's K rows, head_dim / 2 pairs per token, by token
// index; then head h's V as key pairs, head_dim pairs per two keys, sequence s from row
// (offsets[s] + s) / 2 (no overlap: a sequence of len tokens has (len + 1) / 2 pair rows).
static inline uint32_t *m3_attention_k_pairs(const m3_attention_args *a, int head)
{
    size_t tokens = a->offsets[a->n_seqs], d2 = (size_t)a->head_dim / 2;
    return (uint32_t *)a->kv + (size_t)head * tokens * d2;
}

static inline uint32_t *m3_attention_v_pairs(const m3_attention_args *a, int head, size_t seq)
{
    size_t tokens = a->offsets[a->n_seqs], d = (size_t)a->head_dim, rows = (tokens + a->n_seqs) / 2 + 1;
    uint32_t *v = m3_attention_k_pairs(a, a->heads) + M3_ATTENTION_K_PAD * d / 2;  // after all K
    return v + ((size_t)head * rows + (a->offsets[seq] + seq) / 2) * d;
}

// The fp32 kernels' layout: head h's K rows (head_dim floats per token, by token index), then its
// V rows the same way.
static inline float *m3_attention_k_rows(const m3_attention_args *a, int head)
{
    size_t tokens = a->offsets[a->n_seqs], d = (size_t)a->head_dim;
    return (float *)a->kv + (size_t)head * 2 * tokens * d;
}

static inline float *m3_attention_v_rows(const m3_attention_args *a, int head)
{
    return m3_attention_k_rows(a, head) + a->offsets[a->n_seqs] * (size_t)a->head_dim;
}

// True when the kernels handle this head size (a positive multiple of 16).
bool m3_attention_supports(int head_dim);

// blocks[s] = number of query blocks in sequences before s (prefix sums, blocks[n] = total).
void m3_attention_count_blocks(const size_t *offsets, size_t n_seqs, size_t *blocks);

// Bytes of scratch one pool thread needs (a multiple of 64).
size_t m3_attention_scratch_size(int head_dim);

// Runs the attention. scratch: 64-byte aligned, m3_threadpool_size(pool) slices of scratch_stride
// >= m3_attention_scratch_size(head_dim) bytes.
void m3_attention(m3_threadpool *pool, const m3_attention_args *a, void *scratch,
                  size_t scratch_stride);

// "avx512", "avx2" or "sse2": the kernel m3_attention uses on this CPU.
const char *m3_attention_kernel_name(void);

// The kernel that serves requests with args.bf16 set to bf16: "avx512bf16" or the fp32 one.
const char *m3_attention_kernel_name_for(bool bf16);

// For tests and benchmarks: use the named kernel ("avx512", "avx2", "sse2") from now on, for bf16
// requests too; "avx512bf16" sets the kernel of bf16 requests only. Returns false (and changes
// nothing) when the name is unknown or this CPU lacks the ISA. Not thread-safe: call it while no
// attention runs.
bool m3_attention_force_kernel(const char *name);

// The obvious algorithm in double precision, one thread, for tests: out must not alias q, k, v.
void m3_attention_reference(const m3_attention_args *a);

// The per-ISA kernels (attention-kernel.c): one (sequence, head, query block) task; and the pass
// before the tasks, laying out K and V of tokens [t0, t1) of a sequence (t0 even), every head, in
// kv (the bf16 kernel's pairs or the fp32 kernels' rows).
typedef void (*m3_attention_task_fn)(const m3_attention_args *a, size_t seq, int head,
                                     size_t q0, float *scratch);
typedef void (*m3_attention_pack_fn)(const m3_attention_args *a, size_t seq, size_t t0, size_t t1);
#define M3_ATTENTION_KERNEL(isa)                                                                    \
    void m3_attention_task_##isa(const m3_attention_args *a, size_t seq, int head, size_t q0,       \
                                 float *scratch);                                                  \
    void m3_attention_pack_##isa(const m3_attention_args *a, size_t seq, size_t t0, size_t t1);
M3_ATTENTION_KERNEL(avx512)
M3_ATTENTION_KERNEL(avx2)
M3_ATTENTION_KERNEL(sse2)
M3_ATTENTION_KERNEL(avx512bf16)
#undef M3_ATTENTION_KERNEL

#endif
