// SPDX-License-Identifier: MIT
//
// The flash-style attention kernel against the double-precision reference: random packed batches
// with odd lengths (1, 7, 65, 300, ...), several head sizes, in-place output (out aliasing Q as the
// encoder uses it) and a separate output buffer; the output as bf16 pairs (out_pairs) bit for bit
// against the rounded fp32 output. Batches mix sequences of one query block (≤ 128 tokens: the fp32
// kernels copy K and V per key block) with longer ones (laid out by the K/V pass into args.kv).
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "encoder/cpu/attention.h"
#include "encoder/cpu/gemm-private.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float rnd(void)  // uniform in [-1, 1)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / 16777216.0) - 1.0);
}

static int failures;
static bool bf16;  // the cases run as bf16 requests (the AVX512_BF16 kernel)

static float to_bf16(float f)  // round to nearest even, as the kernel does
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double run_case(m3_threadpool *pool, const size_t *lens, size_t n, int heads, int head_dim,
                       float amplitude, int in_place)
{
    size_t hidden = (size_t)heads * (size_t)head_dim, ld = 3 * hidden;
    size_t *offsets = malloc((n + 1) * sizeof *offsets);
    size_t *blocks = malloc((n + 1) * sizeof *blocks);
    offsets[0] = 0;
    for (size_t s = 0; s < n; s++)
        offsets[s + 1] = offsets[s] + lens[s];
    size_t t = offsets[n];
    float *qkv = malloc(t * ld * sizeof *qkv + 1);
    for (size_t i = 0; i < t * ld; i++)
        qkv[i] = rnd() * amplitude;
    float *want = malloc(t * hidden * sizeof *want + 1);
    float *got = malloc(t * ld * sizeof *got + 1);
    m3_attention_count_blocks(offsets, n, blocks);
    m3_attention_args a = {
        .q = qkv, .k = qkv + hidden, .v = qkv + 2 * hidden, .ld = ld,
        .out = want, .ldo = hidden, .offsets = offsets, .blocks = blocks, .n_seqs = n,
        .heads = heads, .head_dim = head_dim, .scale = 1.0f / sqrtf((float)head_dim), .bf16 = bf16,
    };
    if (bf16) {
        // The reference sees what the bf16 kernel multiplies: Q·scale·log2(e) (the kernel's
        // scores are in base-2 units), K and V rounded to bf16. What remains is the rounding of P,
        // so the kernel's pairing and blocking are checked as tightly as the fp32 kernels'; the
        // encoder-precision test judges bf16's own fidelity.
        const float q_scale = a.scale * 1.44269504088896341f;
        float *rounded = malloc(t * ld * sizeof *rounded + 1);
        for (size_t i = 0; i < t * ld; i++)
            rounded[i] = to_bf16(i % ld < hidden ? qkv[i] * q_scale : qkv[i]);
        m3_attention_args r = a;
        r.q = rounded, r.k = rounded + hidden, r.v = rounded + 2 * hidden, r.scale = 0.693147180559945309f;
        m3_attention_reference(&r);
        free(rounded);
    } else {
        m3_attention_reference(&a);
    }

    int threads = m3_threadpool_size(pool);
    size_t stride = m3_attention_scratch_size(head_dim);
    void *scratch = aligned_alloc(64, stride * (size_t)threads);
    const float *out;
    size_t ldo;
    if (in_place) {
        memcpy(got, qkv, t * ld * sizeof *got);
        a.q = got;
        a.k = got + hidden;
        a.v = got + 2 * hidden;
        a.out = got;
        a.ldo = ld;
        out = got;
        ldo = ld;
    } else {
        a.out = got;
        a.ldo = hidden;
        out = got;
        ldo = hidden;
    }
    void *kv = aligned_alloc(64, (m3_attention_kv_size(t, n, heads, head_dim, bf16) + 63) / 64 * 64);
    a.kv = kv;
    m3_attention(pool, &a, scratch, stride);

    // The same run with the output as pairs (from the untouched inputs; a sentinel word after each
    // row): each word the two rounded floats of the fp32 output, nothing else written.
    size_t ldop = hidden / 2 + 1;
    uint32_t *op = malloc(t * ldop * sizeof *op + 1);
    for (size_t i = 0; i < t * ldop; i++)
        op[i] = 0xdeadbeefu;
    m3_attention_args p = a;
    p.q = qkv, p.k = qkv + hidden, p.v = qkv + 2 * hidden, p.ld = ld;
    p.out = NULL, p.ldo = 0, p.out_pairs = op, p.ldop = ldop;
    m3_attention(pool, &p, scratch, stride);
    free(kv);
    for (size_t i = 0; i < t; i++)
        for (size_t q = 0; q < ldop; q++) {
            uint32_t want_word = 2 * q >= hidden ? 0xdeadbeefu
                                 : m3_gemm_bf16_round(out[i * ldo + 2 * q]) |
                                       (uint32_t)m3_gemm_bf16_round(out[i * ldo + 2 * q + 1]) << 16;
            if (op[i * ldop + q] != want_word) {
                failures++;
                printf("FAIL: heads=%d d=%d out_pairs[%zu][%zu] = %08x, want %08x\n", heads,
                       head_dim, i, q, op[i * ldop + q], want_word);
                i = t;
                break;
            }
        }
    free(op);

    double max_err = 0;
    for (size_t i = 0; i < t; i++)
        for (size_t c = 0; c < hidden; c++) {
            double e = fabs((double)out[i * ldo + c] - want[i * hidden + c]);
            if (!(e <= max_err))  // NaN counts as an error
                max_err = isnan(e) ? INFINITY : e;
        }
    // fp32 logits lose absolute precision as they grow: the tolerance follows the amplitude.
    // With bf16, P has 8 significant bits: 2^-9 of each weight, times V's amplitude at most.
    double tol = bf16 ? 2.5e-3 * amplitude : amplitude > 2.0f ? 5e-4 : 2e-5;
    if (!(max_err < tol)) {
        failures++;
        printf("FAIL:");
    }
    printf(" seqs=%zu [", n);
    for (size_t s = 0; s < n && s < 8; s++)
        printf("%s%zu", s ? " " : "", lens[s]);
    printf("%s] heads=%d d=%d amp=%g %s max_err=%.3g\n", n > 8 ? " ..." : "", heads, head_dim,
           (double)amplitude, in_place ? "in-place" : "separate", max_err);
    free(scratch);
    free(offsets);
    free(blocks);
    free(qkv);
    free(want);
    free(got);
    return max_err;
}

static double run_cases(m3_threadpool *pool)
{
    double worst = 0, e;
    static const size_t single[] = {1, 7, 16, 63, 64, 65, 128, 129, 300};
    static const int dims[] = {16, 32, 48, 64, 80, 128};
    for (size_t i = 0; i < sizeof single / sizeof *single; i++)
        for (size_t j = 0; j < sizeof dims / sizeof *dims; j++) {
            e = run_case(pool, &single[i], 1, 2, dims[j], 1.0f, (int)(i + j) % 2);
            worst = e > worst ? e : worst;
        }

    // Packed batches: boundaries must not leak between sequences.
    static const size_t mix[] = {1, 7, 65, 300, 2, 64, 129, 1, 33};
    e = run_case(pool, mix, sizeof mix / sizeof *mix, 3, 64, 1.0f, 1);
    worst = e > worst ? e : worst;
    e = run_case(pool, mix, sizeof mix / sizeof *mix, 2, 32, 1.0f, 0);
    worst = e > worst ? e : worst;
    // Large logits: the online softmax must rescale without overflow.
    e = run_case(pool, mix, sizeof mix / sizeof *mix, 2, 64, 6.0f, 1);
    worst = e > worst ? e : worst;

    // Random shapes.
    for (int round = 0; round < 12; round++) {
        size_t lens[6];
        size_t n = 1 + (size_t)((rnd() + 1.0f) * 2.99f);
        for (size_t s = 0; s < n; s++)
            lens[s] = 1 + (size_t)((rnd() + 1.0f) * 0.5f * 400.0f);
        int heads = 1 + (int)((rnd() + 1.0f) * 1.49f);
        int d = 16 * (1 + (int)((rnd() + 1.0f) * 2.49f));
        e = run_case(pool, lens, n, heads, d, 2.0f, round % 2);
        worst = e > worst ? e : worst;
    }

    // One long sequence, as the encoder sees at 8192 tokens (shorter here to keep the O(L²)
    // reference quick).
    static const size_t longer[] = {1500};
    e = run_case(pool, longer, 1, 2, 64, 1.0f, 1);
    worst = e > worst ? e : worst;

    return worst;
}

int main(void)
{
    m3_threadpool *pool;
    m3_error err = {0};
    if (m3_threadpool_new(0, &pool, &err) != M3_STATUS_OK) {
        fprintf(stderr, "threadpool: %s\n", err.message);
        return 1;
    }
    printf("attention kernel: %s, %d threads\n", m3_attention_kernel_name(),
           m3_threadpool_size(pool));
    if (m3_attention_supports(0) || m3_attention_supports(24) || !m3_attention_supports(64)) {
        printf("FAIL: m3_attention_supports\n");
        failures++;
    }

    double worst = 0;
    static const char *kernels[] = {"avx512", "avx2", "sse2", "generic"};
    const char *native = m3_attention_kernel_name();
    for (size_t kn = 0; kn < 4; kn++) {
        if (!m3_attention_force_kernel(kernels[kn])) {
            printf("kernel %s: not supported by this CPU, skipped\n", kernels[kn]);
            continue;
        }
        printf("kernel %s:\n", kernels[kn]);
        worst = fmax(worst, run_cases(pool));
    }
    m3_attention_force_kernel(native);
    // bf16 requests: the AVX512_BF16 kernel where the CPU has it.
    if (m3_attention_force_kernel("avx512bf16")) {
        bf16 = true;
        printf("kernel avx512bf16 (bf16 requests):\n");
        double e = run_cases(pool);
        printf("bf16: max error %.3g\n", e);
    } else {
        printf("kernel avx512bf16: this CPU lacks AVX512_BF16, skipped\n");
    }
    m3_threadpool_free(pool);
    printf("max error over all cases: %.3g; %d failure(s)\n", worst, failures);
    return failures ? 1 : 0;
}
