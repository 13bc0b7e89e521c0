// SPDX-License-Identifier: MIT
//
// The CPU backend: the XLM-RoBERTa forward pass in fp32 over a packed batch (the tokens of all
// sequences concatenated into one [T, hidden] matrix, so that every GEMM sees a large m).
//
// Per layer, with x [T, H] and one scratch matrix big [T, max(3H, FFN)]:
//   big[:, 0:3H] = x·[Wq; Wk; Wv]ᵀ + b          one fused GEMM
//   big[:, 0:H]  = attention(q, k, v)            in place over q (attention.h)
//   x = LN(x + big[:, 0:H]·Woᵀ + bo)             GEMM with residual epilogue, then LayerNorm
//   big[:, 0:F]  = gelu(x·W1ᵀ + b1)              GEMM with GELU epilogue
//   x = LN(x + big·W2ᵀ + b2)
// so activations cost (H + max(3H, FFN)) floats per token. The word-embedding table is read in
// place (any dtype); linear weights are packed once when the backend is made, in the options'
// precision (fp32; bf16 for the AVX512_BF16 kernel: half the memory, twice the speed; int8: a
// quarter of the memory, VNNI kernels).
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "encoder/backend.h"
#include "encoder/cpu/attention.h"
#include "encoder/cpu/gemm.h"
#include "encoder/cpu/packed-file.h"

enum {
    MIN_BATCH_TOKENS = 8192,  // tokens per forward pass (at least max_positions - 2)
    ROWS_PER_TASK = 16,       // rows per task for the row-wise steps (embeddings, LayerNorm)
};

typedef struct cpu_layer {
    m3_packed_matrix *qkv, *attn_out, *ffn_in, *ffn_out;
    float *qkv_b;  // owned: the three biases stacked
    // The model's fp32 vectors in place, or owned fp32 copies (vec_f32, free_vec).
    const float *attn_out_b, *attn_ln_w, *attn_ln_b;
    const float *ffn_in_b, *ffn_out_b, *ffn_ln_w, *ffn_ln_b;
} cpu_layer;

typedef struct cpu_shared cpu_shared;

typedef struct cpu_backend {
    m3_backend base;  // first: a m3_backend * is a cpu_backend *
    cpu_shared *shared;          // the packed weights below belong to it (NULL while being made)
    m3_model_config cfg;
    m3_gemm_precision precision;  // of every linear layer
    const m3_model *model;
    bool from_file;               // the linear layers are the model file's packed bytes, in place
    const m3_model_weights *w;
    m3_threadpool *pool;
    cpu_layer *layers;
    float *type_row;             // token_type[0], [H]
    const float *emb_ln_w, *emb_ln_b;  // [H]
    m3_packed_matrix *colbert;
    const float *colbert_b;      // [H]
    const float *sparse_w;       // [H]
    float sparse_b;
    size_t big_cols;             // max(3H, FFN, H)
    // Activations, grown on demand.
    float *x, *big;
    uint32_t *xp;                // bf16 only: x after each LayerNorm as bf16 pairs (gemm.h), the
                                 // next GEMMs' A, [tokens, ceil(H / 2)] words
    int32_t *ids, *pos;
    size_t cap_tokens;
    size_t *offsets, *blocks;
    size_t cap_seqs;
    void *attn_scratch;
    size_t attn_stride;
    void *attn_kv;               // K and V laid out for the attention kernel (attention.h, kv)
    size_t attn_kv_bytes;
    size_t bytes;
    char kernel_name[64];
} cpu_backend;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// The activations: on huge pages when large (m3_gemm_buffer_alloc says why).
static void *alloc64(size_t bytes)
{
    return m3_gemm_buffer_alloc((bytes + 63) / 64 * 64 + 64);  // released with m3_gemm_buffer_free
}

// Reads row `row` of a 2-D tensor as fp32 (any dtype, any strides).
static void tensor_row(const m3_tensor *t, int64_t row, float *dst, size_t n)
{
    const unsigned char *base = t->data;
    int64_t s0 = t->strides[0], s1 = t->strides[1];
    switch (t->dtype) {
    case M3_DTYPE_F32: {
        const float *p = (const float *)(const void *)base + row * s0;
        if (s1 == 1)
            memcpy(dst, p, n * sizeof *dst);
        else
            for (size_t i = 0; i < n; i++)
                dst[i] = p[(int64_t)i * s1];
        break;
    }
    case M3_DTYPE_F16: {
        const uint16_t *p = (const uint16_t *)(const void *)base + row * s0;
        for (size_t i = 0; i < n; i++)
            dst[i] = m3_f16_to_f32(p[(int64_t)i * s1]);
        break;
    }
    case M3_DTYPE_BF16: {
        const uint16_t *p = (const uint16_t *)(const void *)base + row * s0;
        for (size_t i = 0; i < n; i++)
            dst[i] = m3_bf16_to_f32(p[(int64_t)i * s1]);
        break;
    }
    }
}

static m3_status check_shape2(const m3_tensor *t, int64_t rows, int64_t cols, m3_error *err)
{
    if (!t || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return m3_error_set(err, M3_STATUS_INVALID, 0,
                            "cpu backend: tensor %s is not [%lld, %lld]", t ? t->name : "(missing)",
                            (long long)rows, (long long)cols);
    return M3_STATUS_OK;
}

// A small tensor of n elements as fp32: the tensor's own bytes when they are contiguous fp32 (a
// model file's vectors, read in place from its mapping: the model outlives its encoders), else an
// owned copy. free_vec tells them apart.
static m3_status vec_f32(const m3_tensor *t, size_t n, const float **out, m3_error *err)
{
    *out = NULL;
    if (!t || m3_tensor_numel(t) != (int64_t)n)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "cpu backend: tensor %s has not %zu elements",
                            t ? t->name : "(missing)", n);
    if (t->dtype == M3_DTYPE_F32 && t->ndim >= 1 && t->ndim <= 2 && t->strides[t->ndim - 1] == 1 &&
        (t->ndim == 1 || t->strides[0] == t->shape[1]) && (uintptr_t)t->data % sizeof(float) == 0) {
        *out = t->data;
        return M3_STATUS_OK;
    }
    float *v = malloc(n * sizeof *v);
    if (!v)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
    m3_tensor_to_f32(t, v);
    *out = v;
    return M3_STATUS_OK;
}

// Once a weight is packed, the backend never reads its source again (only the Vulkan fallback
// might, and it reads through the same pointer). The source is usually a read-only mapping of the
// model file: ask the kernel to drop the pages this process faulted in while packing, so that
// resident memory is the packed copy alone (the f16 file's linear layers would otherwise stay
// resident beside their bf16 copy, ~0.6 GB for BGE-M3). MADV_PAGEOUT never loses data: clean file
// pages are re-read on access, anonymous ones (a random model in memory) swapped or left alone.
static void release_source(const m3_tensor *t)
{
#ifdef MADV_PAGEOUT
    size_t last = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->strides[d] < 0 || t->shape[d] <= 0)
            return;
        last += (size_t)(t->shape[d] - 1) * (size_t)t->strides[d];
    }
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    uintptr_t begin = (uintptr_t)t->data, end = begin + (last + 1) * m3_dtype_size(t->dtype);
    uintptr_t lo = (begin + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t hi = end / (uintptr_t)page * (uintptr_t)page;
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_PAGEOUT);  // advice only: older kernels say EINVAL
#else
    (void)t;
#endif
}

// The packed matrix of weight t: the model file's bytes for `file_name` in place when it holds them
// in this kernel's layout (packed-file.h), else packed here.
static m3_status pack(const cpu_backend *cb, const m3_tensor *t, int64_t rows, int64_t cols,
                      const char *file_name, m3_packed_matrix **out, m3_error *err)
{
    m3_status st = check_shape2(t, rows, cols, err);
    if (st != M3_STATUS_OK)
        return st;
    if (cb->from_file)
        return m3_cpu_packed_matrix(cb->model, cb->precision, file_name, (size_t)rows,
                                    (size_t)cols, out, err);
    st = m3_packed_matrix_new_as(t, cb->precision, out, err);
    if (st == M3_STATUS_OK)
        release_source(t);
    return st;
}

// Packs [Wq; Wk; Wv] as one [3H, H] matrix so that Q, K and V come from one GEMM.
static m3_status pack_qkv(const cpu_backend *cb, const m3_layer_weights *lw, size_t h,
                          const char *file_name, m3_packed_matrix **out, m3_error *err)
{
    const m3_tensor *parts[3] = {lw->query_w, lw->key_w, lw->value_w};
    for (int i = 0; i < 3; i++) {
        m3_status st = check_shape2(parts[i], (int64_t)h, (int64_t)h, err);
        if (st != M3_STATUS_OK)
            return st;
    }
    if (cb->from_file)
        return m3_cpu_packed_matrix(cb->model, cb->precision, file_name, 3 * h, h, out, err);
    float *tmp = malloc(3 * h * h * sizeof *tmp);
    if (!tmp)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
    for (int i = 0; i < 3; i++)
        m3_tensor_to_f32(parts[i], tmp + (size_t)i * h * h);
    m3_tensor cat = {
        .name = "qkv", .dtype = M3_DTYPE_F32, .ndim = 2,
        .shape = {(int64_t)(3 * h), (int64_t)h}, .strides = {(int64_t)h, 1}, .data = tmp,
    };
    m3_status st = m3_packed_matrix_new_as(&cat, cb->precision, out, err);
    free(tmp);
    for (int i = 0; i < 3 && st == M3_STATUS_OK; i++)
        release_source(parts[i]);
    return st;
}

static m3_status qkv_bias(const m3_layer_weights *lw, size_t h, float **out, m3_error *err)
{
    const m3_tensor *parts[3] = {lw->query_b, lw->key_b, lw->value_b};
    float *b = malloc(3 * h * sizeof *b);
    *out = b;
    if (!b)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
    for (int i = 0; i < 3; i++) {
        if (!parts[i] || m3_tensor_numel(parts[i]) != (int64_t)h)
            return m3_error_set(err, M3_STATUS_INVALID, 0, "cpu backend: bad attention bias %s",
                                parts[i] ? parts[i]->name : "(missing)");
        m3_tensor_to_f32(parts[i], b + (size_t)i * h);
    }
    return M3_STATUS_OK;
}

// ---- Row-wise steps, run as tasks of ROWS_PER_TASK rows --------------------------------------

// LayerNorm of one row, statistics in double (two passes: mean, then centred variance). Each sum
// runs in eight independent partial sums: a single running double sum waits on every addition's
// latency (~4 cycles an element, 48 LayerNorms of every token per pass), while eight vectorise and
// overlap. Still double: the order changes nothing visible.
#define LN_LANES 8
static void layer_norm_row(float *x, size_t n, const float *w, const float *b, double eps)
{
    double part[LN_LANES] = {0};
    size_t i = 0;
    for (; i + LN_LANES <= n; i += LN_LANES)
        for (size_t k = 0; k < LN_LANES; k++)
            part[k] += x[i + k];
    double sum = 0;
    for (; i < n; i++)
        sum += x[i];
    for (size_t k = 0; k < LN_LANES; k++)
        sum += part[k];
    double mean = sum / (double)n, var = 0;
    for (size_t k = 0; k < LN_LANES; k++)
        part[k] = 0;
    for (i = 0; i + LN_LANES <= n; i += LN_LANES)
        for (size_t k = 0; k < LN_LANES; k++) {
            double d = x[i + k] - mean;
            part[k] += d * d;
        }
    for (; i < n; i++) {
        double d = x[i] - mean;
        var += d * d;
    }
    for (size_t k = 0; k < LN_LANES; k++)
        var += part[k];
    float inv = (float)(1.0 / sqrt(var / (double)n + eps));
    float m = (float)mean;
    for (i = 0; i < n; i++)
        x[i] = (x[i] - m) * inv * w[i] + b[i];
}

typedef struct rows_ctx {
    cpu_backend *cb;
    size_t rows;
    const float *ln_w, *ln_b;
    float *out;  // sparse weights
    const m3_packed_matrix *pairs_w;  // bf16: the LayerNorms also write cb->xp, converted as a
                                      // GEMM on this matrix would; NULL: fp32 x only
} rows_ctx;

// bf16: row t of x (just normalised, still in L1) as the next GEMM's A pairs, the same bits that
// GEMM would convert it to: the conversion leaves the GEMM, and x is read once less per layer.
static void row_to_pairs(const rows_ctx *r, size_t t)
{
    if (r->pairs_w) {
        size_t h = (size_t)r->cb->cfg.hidden, hp = (h + 1) / 2;
        m3_gemm_rows_to_pairs(r->pairs_w, r->cb->x + t * h, h, 1, h, r->cb->xp + t * hp, hp);
    }
}

static void embed_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const rows_ctx *r = ctx;
    cpu_backend *cb = r->cb;
    size_t h = (size_t)cb->cfg.hidden;
    size_t end = (task + 1) * ROWS_PER_TASK < r->rows ? (task + 1) * ROWS_PER_TASK : r->rows;
    float *tmp = cb->big + task * ROWS_PER_TASK * cb->big_cols;  // this task's rows of big
    for (size_t t = task * ROWS_PER_TASK; t < end; t++) {
        float *x = cb->x + t * h;
        tensor_row(cb->w->word, cb->ids[t], x, h);
        tensor_row(cb->w->position, cb->pos[t], tmp, h);
        for (size_t i = 0; i < h; i++)
            x[i] = x[i] + cb->type_row[i] + tmp[i];
        layer_norm_row(x, h, cb->emb_ln_w, cb->emb_ln_b, cb->cfg.layer_norm_eps);
        row_to_pairs(r, t);
    }
}

static void layer_norm_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const rows_ctx *r = ctx;
    size_t h = (size_t)r->cb->cfg.hidden;
    size_t end = (task + 1) * ROWS_PER_TASK < r->rows ? (task + 1) * ROWS_PER_TASK : r->rows;
    for (size_t t = task * ROWS_PER_TASK; t < end; t++) {
        layer_norm_row(r->cb->x + t * h, h, r->ln_w, r->ln_b, r->cb->cfg.layer_norm_eps);
        row_to_pairs(r, t);
    }
}

static void sparse_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const rows_ctx *r = ctx;
    const cpu_backend *cb = r->cb;
    size_t h = (size_t)cb->cfg.hidden;
    size_t end = (task + 1) * ROWS_PER_TASK < r->rows ? (task + 1) * ROWS_PER_TASK : r->rows;
    for (size_t t = task * ROWS_PER_TASK; t < end; t++) {
        const float *x = cb->x + t * h;
        double dot = cb->sparse_b;
        for (size_t i = 0; i < h; i++)
            dot += (double)x[i] * cb->sparse_w[i];
        r->out[t] = dot > 0 ? (float)dot : 0.0f;
    }
}

static void run_rows(cpu_backend *cb, m3_task_fn fn, rows_ctx *r)
{
    size_t tasks = (r->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    if (tasks)
        m3_threadpool_run(cb->pool, tasks, fn, r);
}

// Attention multiplies in bf16 (where the CPU can) when the linear layers are bf16 or int8: int8
// already gives up more than bf16 attention costs, and at 512 tokens fp32 attention took a
// quarter of an int8 forward pass.
static bool attention_bf16(const cpu_backend *cb)
{
    return cb->precision == M3_GEMM_BF16 || cb->precision == M3_GEMM_INT8;
}

// ---- Buffers ----------------------------------------------------------------------------------

// Words per row of cb->xp (0 unless bf16).
static size_t xp_words(const cpu_backend *cb)
{
    return cb->precision == M3_GEMM_BF16 ? ((size_t)cb->cfg.hidden + 1) / 2 : 0;
}

static m3_status reserve(cpu_backend *cb, size_t tokens, size_t seqs, m3_error *err)
{
    if (seqs > cb->cap_seqs) {
        size_t *o = realloc(cb->offsets, (seqs + 1) * sizeof *o);
        if (o)
            cb->offsets = o;
        size_t *b = o ? realloc(cb->blocks, (seqs + 1) * sizeof *b) : NULL;
        if (b)
            cb->blocks = b;
        if (!o || !b)
            return m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
        cb->cap_seqs = seqs;
    }
    if (tokens > cb->cap_tokens) {
        size_t h = (size_t)cb->cfg.hidden;
        m3_gemm_buffer_free(cb->x);
        m3_gemm_buffer_free(cb->big);
        m3_gemm_buffer_free(cb->xp);
        free(cb->ids);
        free(cb->pos);
        cb->x = alloc64(tokens * h * sizeof(float));
        cb->big = alloc64(tokens * cb->big_cols * sizeof(float));
        cb->xp = xp_words(cb) ? alloc64(tokens * xp_words(cb) * sizeof(uint32_t)) : NULL;
        cb->ids = malloc(tokens * sizeof(int32_t));
        cb->pos = malloc(tokens * sizeof(int32_t));
        if (!cb->x || !cb->big || !cb->ids || !cb->pos || (xp_words(cb) && !cb->xp)) {
            m3_gemm_buffer_free(cb->x);
            m3_gemm_buffer_free(cb->big);
            m3_gemm_buffer_free(cb->xp);
            free(cb->ids);
            free(cb->pos);
            cb->x = cb->big = NULL;
            cb->xp = NULL;
            cb->ids = cb->pos = NULL;
            cb->cap_tokens = 0;
            return m3_error_set(err, M3_STATUS_NOMEM, 0,
                                "cpu backend: out of memory for the activations of %zu tokens",
                                tokens);
        }
        cb->cap_tokens = tokens;
    }
    size_t kv = m3_attention_kv_size(tokens, seqs, cb->cfg.heads, cb->cfg.hidden / cb->cfg.heads,
                                     attention_bf16(cb));
    if (kv > cb->attn_kv_bytes) {
        m3_gemm_buffer_free(cb->attn_kv);
        cb->attn_kv_bytes = 0;
        cb->attn_kv = alloc64(kv);
        if (!cb->attn_kv)
            return m3_error_set(err, M3_STATUS_NOMEM, 0,
                                "cpu backend: out of memory for the attention of %zu tokens", tokens);
        cb->attn_kv_bytes = kv;
    }
    cb->bytes = cb->cap_tokens * ((size_t)cb->cfg.hidden + cb->big_cols) * sizeof(float) +
                cb->cap_tokens * xp_words(cb) * sizeof(uint32_t) +
                cb->cap_tokens * 2 * sizeof(int32_t) + (cb->cap_seqs + 1) * 2 * sizeof(size_t) +
                cb->attn_stride * (size_t)m3_threadpool_size(cb->pool) + cb->attn_kv_bytes;
    return M3_STATUS_OK;
}

// ---- The forward pass -------------------------------------------------------------------------

static m3_status cpu_encode(m3_backend *be, const m3_backend_batch *batch, m3_error *err)
{
    cpu_backend *cb = (cpu_backend *)be;
    const size_t h = (size_t)cb->cfg.hidden, ffn = (size_t)cb->cfg.intermediate;
    const size_t n = batch->n;
    m3_encoder_profile *prof = &cb->base.profile;
    if (n == 0)
        return M3_STATUS_OK;

    size_t total = 0;
    for (size_t s = 0; s < n; s++)
        total += batch->seqs[s].n;
    M3_ASSERT(total <= cb->base.max_tokens);
    m3_status st = reserve(cb, total, n, err);
    if (st != M3_STATUS_OK)
        return st;

    double t0 = now(), t1;
    cb->offsets[0] = 0;
    for (size_t s = 0; s < n; s++) {
        size_t off = cb->offsets[s];
        for (size_t i = 0; i < batch->seqs[s].n; i++) {
            cb->ids[off + i] = batch->seqs[s].ids[i];
            cb->pos[off + i] = (int32_t)(i + (size_t)cb->cfg.pad_token_id + 1);
        }
        cb->offsets[s + 1] = off + batch->seqs[s].n;
    }
    m3_attention_count_blocks(cb->offsets, n, cb->blocks);
    const bool bf16 = cb->precision == M3_GEMM_BF16;
    const size_t hp = xp_words(cb);
    rows_ctx rows = {.cb = cb, .rows = total, .pairs_w = bf16 ? cb->layers[0].qkv : NULL};
    run_rows(cb, embed_task, &rows);
    t1 = now();
    prof->other += t1 - t0;

    m3_attention_args att = {
        .q = cb->big, .k = cb->big + h, .v = cb->big + 2 * h, .ld = 3 * h,
        .out = cb->big, .ldo = 3 * h, .offsets = cb->offsets, .blocks = cb->blocks, .n_seqs = n,
        .heads = cb->cfg.heads, .head_dim = cb->cfg.hidden / cb->cfg.heads,
        .scale = (float)(1.0 / sqrt((double)(cb->cfg.hidden / cb->cfg.heads))),
        .bf16 = attention_bf16(cb), .kv = cb->attn_kv,
        // bf16: the output as the output projection's A pairs, in xp (the QKV GEMM has read the
        // LayerNorm's pairs there; the next LayerNorm writes them after the projection).
        .out_pairs = bf16 ? cb->xp : NULL, .ldop = hp,
    };
    double t_gemm = 0, t_att = 0, t_other = 0;
    for (int l = 0; l < cb->cfg.layers; l++) {
        const cpu_layer *L = &cb->layers[l];
        t0 = now();
        if (bf16)  // A: the pairs of the LayerNorm before (embed_task's, or the FFN's)
            m3_gemm_pairs(cb->pool, total, cb->xp, hp, L->qkv, L->qkv_b, M3_GEMM_BIAS, NULL, 0,
                          cb->big, 3 * h);
        else
            m3_gemm(cb->pool, total, cb->x, h, L->qkv, L->qkv_b, M3_GEMM_BIAS, NULL, 0, cb->big,
                    3 * h);
        t1 = now();
        t_gemm += t1 - t0;
        m3_attention(cb->pool, &att, cb->attn_scratch, cb->attn_stride);
        t0 = now();
        t_att += t0 - t1;
        if (bf16)
            m3_gemm_pairs(cb->pool, total, cb->xp, hp, L->attn_out, L->attn_out_b,
                          M3_GEMM_BIAS_RESIDUAL, cb->x, h, cb->x, h);
        else
            m3_gemm(cb->pool, total, cb->big, 3 * h, L->attn_out, L->attn_out_b,
                    M3_GEMM_BIAS_RESIDUAL, cb->x, h, cb->x, h);
        t1 = now();
        t_gemm += t1 - t0;
        rows.ln_w = L->attn_ln_w;
        rows.ln_b = L->attn_ln_b;
        rows.pairs_w = bf16 ? L->ffn_in : NULL;
        run_rows(cb, layer_norm_task, &rows);
        t0 = now();
        t_other += t0 - t1;
        if (bf16) {
            // The GELU output as W2's bf16 pairs (gemm.h): half the bytes, converted only once.
            uint32_t *pairs = (uint32_t *)cb->big;
            size_t ldp = (ffn + 1) / 2;
            m3_gemm_pairs_to_pairs(cb->pool, total, cb->xp, hp, L->ffn_in, L->ffn_in_b,
                                   M3_GEMM_BIAS_GELU, pairs, ldp);
            m3_gemm_pairs(cb->pool, total, pairs, ldp, L->ffn_out, L->ffn_out_b,
                          M3_GEMM_BIAS_RESIDUAL, cb->x, h, cb->x, h);
        } else {
            m3_gemm(cb->pool, total, cb->x, h, L->ffn_in, L->ffn_in_b, M3_GEMM_BIAS_GELU, NULL, 0,
                    cb->big, ffn);
            m3_gemm(cb->pool, total, cb->big, ffn, L->ffn_out, L->ffn_out_b, M3_GEMM_BIAS_RESIDUAL,
                    cb->x, h, cb->x, h);
        }
        t1 = now();
        t_gemm += t1 - t0;
        rows.ln_w = L->ffn_ln_w;
        rows.ln_b = L->ffn_ln_b;
        // The next layer's QKV input; after the last layer only fp32 x is read (heads, ColBERT).
        rows.pairs_w = bf16 && l + 1 < cb->cfg.layers ? cb->layers[l + 1].qkv : NULL;
        run_rows(cb, layer_norm_task, &rows);
        t0 = now();
        t_other += t0 - t1;
    }

    // Heads.
    if (batch->outputs & M3_OUTPUT_DENSE)
        for (size_t s = 0; s < n; s++)
            memcpy(batch->cls[s], cb->x + cb->offsets[s] * h, h * sizeof(float));
    if (batch->outputs & M3_OUTPUT_SPARSE) {
        rows.out = batch->sparse;
        run_rows(cb, sparse_task, &rows);
    }
    t1 = now();
    t_other += t1 - t0;
    if (batch->outputs & M3_OUTPUT_COLBERT) {
        m3_gemm(cb->pool, total, cb->x, h, cb->colbert, cb->colbert_b, M3_GEMM_BIAS, NULL, 0,
                cb->big, h);
        t0 = now();
        t_gemm += t0 - t1;
        for (size_t s = 0; s < n; s++)
            if (batch->seqs[s].n > 1)
                memcpy(batch->colbert[s], cb->big + (cb->offsets[s] + 1) * h,
                       (batch->seqs[s].n - 1) * h * sizeof(float));
        t_other += now() - t0;
    }
    prof->gemm += t_gemm;
    prof->attention += t_att;
    prof->other += t_other;
    prof->tokens += total;
    prof->forwards++;
    return M3_STATUS_OK;
}

// ---- Lifetime ---------------------------------------------------------------------------------

static int cpu_threads(const m3_backend *be)
{
    return m3_threadpool_size(((const cpu_backend *)be)->pool);
}

static const char *cpu_kernel_name(const m3_backend *be)
{
    return ((const cpu_backend *)be)->kernel_name;
}

static size_t cpu_activation_bytes(const m3_backend *be)
{
    return ((const cpu_backend *)be)->bytes;
}

// ---- weights shared by the encoders of one model ----------------------------------------------
// Two encoders on one model (the indexer service's indexing and search paths) would otherwise pack
// every linear layer twice: the packed weights are made once per model and precision, and freed
// with the last encoder that uses them.

typedef struct cpu_weights {
    cpu_layer *layers;
    float *type_row;
    const float *emb_ln_w, *emb_ln_b;
    m3_packed_matrix *colbert;
    const float *colbert_b, *sparse_w;
    float sparse_b;
} cpu_weights;

struct cpu_shared {
    cpu_shared *next;
    int refs;
    const m3_model *model;
    m3_gemm_precision precision;
    int n_layers;
    cpu_weights w;
};

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static cpu_shared *shared_list;

static void weights_get(const cpu_backend *cb, cpu_weights *w)
{
    *w = (cpu_weights){cb->layers, cb->type_row, cb->emb_ln_w, cb->emb_ln_b,
                       cb->colbert, cb->colbert_b, cb->sparse_w, cb->sparse_b};
}

static void weights_set(cpu_backend *cb, const cpu_weights *w)
{
    cb->layers = w->layers;
    cb->type_row = w->type_row;
    cb->emb_ln_w = w->emb_ln_w;
    cb->emb_ln_b = w->emb_ln_b;
    cb->colbert = w->colbert;
    cb->colbert_b = w->colbert_b;
    cb->sparse_w = w->sparse_w;
    cb->sparse_b = w->sparse_b;
}

// Frees v unless it is src's own bytes (vec_f32 used them in place).
static void free_vec(const float *v, const m3_tensor *src)
{
    if (v && (!src || (const void *)v != src->data))
        free((void *)(uintptr_t)v);
}

// mw: the model's weights the vectors came from.
static void weights_free(cpu_weights *w, int n_layers, const m3_model_weights *mw)
{
    if (w->layers) {
        for (int l = 0; l < n_layers; l++) {
            cpu_layer *L = &w->layers[l];
            const m3_layer_weights *lw = &mw->layers[l];
            m3_packed_matrix_free(L->qkv);
            m3_packed_matrix_free(L->attn_out);
            m3_packed_matrix_free(L->ffn_in);
            m3_packed_matrix_free(L->ffn_out);
            free(L->qkv_b);
            free_vec(L->attn_out_b, lw->attn_out_b);
            free_vec(L->attn_ln_w, lw->attn_ln_w);
            free_vec(L->attn_ln_b, lw->attn_ln_b);
            free_vec(L->ffn_in_b, lw->ffn_in_b);
            free_vec(L->ffn_out_b, lw->ffn_out_b);
            free_vec(L->ffn_ln_w, lw->ffn_ln_w);
            free_vec(L->ffn_ln_b, lw->ffn_ln_b);
        }
        free(w->layers);
    }
    m3_packed_matrix_free(w->colbert);
    free_vec(w->colbert_b, mw->colbert_b);
    free_vec(w->sparse_w, mw->sparse_w);
    free(w->type_row);
    free_vec(w->emb_ln_w, mw->emb_ln_w);
    free_vec(w->emb_ln_b, mw->emb_ln_b);
}

// The shared weights for this model and precision, with a reference taken; NULL when none yet.
// Called with shared_mu held.
static cpu_shared *shared_find(const m3_model *model, m3_gemm_precision precision)
{
    for (cpu_shared *s = shared_list; s; s = s->next)
        if (s->model == model && s->precision == precision) {
            s->refs++;
            return s;
        }
    return NULL;
}

static void cpu_free(m3_backend *be)
{
    cpu_backend *cb = (cpu_backend *)be;
    if (!cb)
        return;
    m3_gemm_release_scratch();  // the converted activations this thread kept for its next batch
    if (cb->shared) {
        pthread_mutex_lock(&shared_mu);
        cpu_shared *sh = cb->shared;
        if (--sh->refs == 0) {
            for (cpu_shared **p = &shared_list; *p; p = &(*p)->next)
                if (*p == sh) {
                    *p = sh->next;
                    break;
                }
            weights_free(&sh->w, sh->n_layers, m3_model_get_weights(sh->model));
            free(sh);
        }
        pthread_mutex_unlock(&shared_mu);
    } else {
        cpu_weights w;
        weights_get(cb, &w);
        weights_free(&w, cb->cfg.layers, cb->w);
    }
    m3_gemm_buffer_free(cb->x);
    m3_gemm_buffer_free(cb->xp);
    m3_gemm_buffer_free(cb->big);
    free(cb->ids);
    free(cb->pos);
    free(cb->offsets);
    free(cb->blocks);
    m3_gemm_buffer_free(cb->attn_scratch);
    m3_gemm_buffer_free(cb->attn_kv);
    m3_threadpool_free(cb->pool);
    free(cb);
}

// The names of layer l's packed matrices in a model file (packed-file.c lists the same).
typedef struct layer_names {
    char qkv[48], attn_out[48], ffn_in[48], ffn_out[48];
} layer_names;

static void layer_names_of(int l, layer_names *n)
{
    snprintf(n->qkv, sizeof n->qkv, "encoder.layer.%d.qkv", l);
    snprintf(n->attn_out, sizeof n->attn_out, "encoder.layer.%d.attn_out", l);
    snprintf(n->ffn_in, sizeof n->ffn_in, "encoder.layer.%d.ffn_in", l);
    snprintf(n->ffn_out, sizeof n->ffn_out, "encoder.layer.%d.ffn_out", l);
}

// Whether the linear layers come from the model file's packed bytes (packed-file.h); says which at
// debug level.
static bool use_file_packing(const m3_model *model, m3_gemm_precision precision)
{
    if (!m3_cpu_packed_usable(model, precision))
        return false;
    m3_log(M3_LOG_DEBUG, "%s: using the packed %s weights in place from the model file",
           m3_model_get_path(model), m3_cpu_packed_tag(precision));
    return true;
}

static m3_status load_layer(const cpu_backend *cb, int l, const m3_layer_weights *lw,
                            const m3_model_config *cfg, cpu_layer *L, m3_error *err)
{
    size_t h = (size_t)cfg->hidden, f = (size_t)cfg->intermediate;
    layer_names names;
    layer_names_of(l, &names);
    m3_status st;
    if ((st = pack_qkv(cb, lw, h, names.qkv, &L->qkv, err)) ||
        (st = qkv_bias(lw, h, &L->qkv_b, err)) ||
        (st = pack(cb, lw->attn_out_w, (int64_t)h, (int64_t)h, names.attn_out, &L->attn_out, err)) ||
        (st = vec_f32(lw->attn_out_b, h, &L->attn_out_b, err)) ||
        (st = vec_f32(lw->attn_ln_w, h, &L->attn_ln_w, err)) ||
        (st = vec_f32(lw->attn_ln_b, h, &L->attn_ln_b, err)) ||
        (st = pack(cb, lw->ffn_in_w, (int64_t)f, (int64_t)h, names.ffn_in, &L->ffn_in, err)) ||
        (st = vec_f32(lw->ffn_in_b, f, &L->ffn_in_b, err)) ||
        (st = pack(cb, lw->ffn_out_w, (int64_t)h, (int64_t)f, names.ffn_out, &L->ffn_out, err)) ||
        (st = vec_f32(lw->ffn_out_b, h, &L->ffn_out_b, err)) ||
        (st = vec_f32(lw->ffn_ln_w, h, &L->ffn_ln_w, err)) ||
        (st = vec_f32(lw->ffn_ln_b, h, &L->ffn_ln_b, err)))
        return st;
    return M3_STATUS_OK;
}

typedef struct layer_loads {
    cpu_backend *cb;
    m3_status *st;  // per layer
    m3_error *err;  // per layer
} layer_loads;

static void load_layer_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    layer_loads *ll = ctx;
    ll->st[task] = load_layer(ll->cb, (int)task, &ll->cb->w->layers[task], &ll->cb->cfg, &ll->cb->layers[task],
                              &ll->err[task]);
}

m3_status m3_cpu_backend_new(const m3_model *model, const m3_encoder_options *options,
                             m3_backend **out, m3_error *err)
{
    *out = NULL;
    const m3_model_config *cfg = m3_model_get_config(model);
    const m3_model_weights *w = m3_model_get_weights(model);
    if (cfg->heads <= 0 || cfg->hidden % cfg->heads != 0 ||
        !m3_attention_supports(cfg->hidden / cfg->heads))
        return m3_error_set(err, M3_STATUS_INVALID, 0,
                            "cpu backend: head size %d / %d is not a multiple of 16", cfg->hidden,
                            cfg->heads);
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
    bool locked = false;  // shared_mu, while this encoder packs the shared weights
    cb->cfg = *cfg;
    cb->model = model;
    cb->w = w;
    m3_precision precision = options ? options->precision : M3_PRECISION_FP32;
    if (precision == M3_PRECISION_AUTO)
        precision = m3_gemm_precision_native(M3_GEMM_BF16) ? M3_PRECISION_BF16 : M3_PRECISION_FP32;
    cb->precision = precision == M3_PRECISION_BF16   ? M3_GEMM_BF16
                    : precision == M3_PRECISION_INT8 ? M3_GEMM_INT8
                                                     : M3_GEMM_FP32;
    size_t h = (size_t)cfg->hidden, f = (size_t)cfg->intermediate;
    cb->big_cols = 3 * h > f ? 3 * h : f;
    m3_status st = m3_threadpool_new(options ? options->threads : 0, &cb->pool, err);
    if (st != M3_STATUS_OK)
        goto fail;
    // Another encoder of this model packed the weights already: use them. Otherwise pack them here,
    // holding the lock, so that an encoder made meanwhile waits and then shares them.
    pthread_mutex_lock(&shared_mu);
    locked = true;
    if ((cb->shared = shared_find(model, cb->precision))) {
        pthread_mutex_unlock(&shared_mu);
        locked = false;
        weights_set(cb, &cb->shared->w);
        goto scratch;
    }

    // A model file packed for this precision and kernel: its bytes are used in place (no packing).
    cb->from_file = use_file_packing(model, cb->precision);
    if ((st = check_shape2(w->word, cfg->vocab, cfg->hidden, err)) ||
        (st = check_shape2(w->position, cfg->max_positions, cfg->hidden, err)) ||
        (st = check_shape2(w->token_type, cfg->type_vocab, cfg->hidden, err)))
        goto fail;
    cb->type_row = malloc(h * sizeof(float));
    if (!cb->type_row) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
        goto fail;
    }
    tensor_row(w->token_type, 0, cb->type_row, h);
    if ((st = vec_f32(w->emb_ln_w, h, &cb->emb_ln_w, err)) ||
        (st = vec_f32(w->emb_ln_b, h, &cb->emb_ln_b, err)) ||
        (st = pack(cb, w->colbert_w, (int64_t)h, (int64_t)h, "colbert", &cb->colbert, err)) ||
        (st = vec_f32(w->colbert_b, h, &cb->colbert_b, err)) ||
        (st = vec_f32(w->sparse_w, h, &cb->sparse_w, err)))
        goto fail;
    float sb;
    if (!w->sparse_b || m3_tensor_numel(w->sparse_b) != 1) {
        st = m3_error_set(err, M3_STATUS_INVALID, 0, "cpu backend: the sparse bias is not a scalar");
        goto fail;
    }
    m3_tensor_to_f32(w->sparse_b, &sb);
    cb->sparse_b = sb;

    cb->layers = calloc((size_t)cfg->layers, sizeof *cb->layers);
    if (!cb->layers) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
        goto fail;
    }
    // Layers are packed in parallel (start-up time is packing: conversion and bf16 rounding of
    // ~300 M weights for BGE-M3); the first failing layer's error is reported.
    layer_loads loads = {.cb = cb, .st = calloc((size_t)cfg->layers, sizeof *loads.st),
                         .err = calloc((size_t)cfg->layers, sizeof *loads.err)};
    if (!loads.st || !loads.err) {
        free(loads.st);
        free(loads.err);
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
        goto fail;
    }
    m3_threadpool_run(cb->pool, (size_t)cfg->layers, load_layer_task, &loads);
    for (int l = 0; l < cfg->layers && st == M3_STATUS_OK; l++)
        if ((st = loads.st[l]) != M3_STATUS_OK && err)
            *err = loads.err[l];
    free(loads.st);
    free(loads.err);
    if (st != M3_STATUS_OK)
        goto fail;
    cpu_shared *sh = calloc(1, sizeof *sh);
    if (!sh) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
        goto fail;
    }
    *sh = (cpu_shared){shared_list, 1, model, cb->precision, cfg->layers, {0}};
    weights_get(cb, &sh->w);
    shared_list = sh;
    cb->shared = sh;
    pthread_mutex_unlock(&shared_mu);
    locked = false;

scratch:;
    int threads = m3_threadpool_size(cb->pool);
    cb->attn_stride = m3_attention_scratch_size(cfg->hidden / cfg->heads);
    cb->attn_scratch = alloc64(cb->attn_stride * (size_t)threads);
    if (!cb->attn_scratch) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "cpu backend: out of memory");
        goto fail;
    }
    cb->bytes = cb->attn_stride * (size_t)threads;
    snprintf(cb->kernel_name, sizeof cb->kernel_name, "gemm %s, attention %s",
             m3_gemm_kernel_name_for(cb->precision), m3_attention_kernel_name_for(attention_bf16(cb)));

    size_t longest = cfg->max_positions > 2 ? (size_t)cfg->max_positions - 2 : 1;
    cb->base = (m3_backend){
        .name = "cpu",
        .ctx = cb,
        .max_tokens = longest > MIN_BATCH_TOKENS ? longest : MIN_BATCH_TOKENS,
        .precision = precision,
        .encode = cpu_encode,
        .threads = cpu_threads,
        .kernel_name = cpu_kernel_name,
        .activation_bytes = cpu_activation_bytes,
        .free = cpu_free,
    };
    *out = &cb->base;
    return M3_STATUS_OK;

fail:
    if (locked)
        pthread_mutex_unlock(&shared_mu);
    cpu_free(&cb->base);
    return st;
}
