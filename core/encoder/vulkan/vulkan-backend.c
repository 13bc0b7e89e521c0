// SPDX-License-Identifier: MIT
//
// The Vulkan backend: the XLM-RoBERTa forward pass over a packed batch. Matrix weights live on the
// device as fp16 (packed halves), activations and all accumulation in fp32. The word-embedding
// table stays in host memory and its rows are gathered on the host (the table is 512 MB for
// BGE-M3, more than lavapipe's 128 MiB storage range); positions, token type and the embedding
// LayerNorm run on the device.
//
// Per layer, with x [T, H], qkv [T, 3H], att [T, H] and ffn [chunk, F]:
//   qkv = x·[Wq; Wk; Wv]ᵀ + b                     gemm
//   att = attention(qkv) over each sequence       attention (flash style, packed sequences)
//   x   = LN(x + att·Woᵀ + bo)                    gemm (residual epilogue), layernorm
//   for each chunk of rows: ffn = gelu(x·W1ᵀ + b1); x = x + ffn·W2ᵀ + b2   (chunks keep ffn
//   within the storage-buffer range)
//   x   = LN(x)
// Heads: the <s> rows (gather, straight into the download buffer), the sparse dot (rowdot), the
// ColBERT projection (gemm into qkv, copied down).
//
// Recorded once per shape, replayed after: a pass of T tokens runs as P = padded(T) rows (padding
// rows are zero words at position 2: computed, never read back), and everything that depends on
// how the T tokens split into sequences is data, not commands: the attention blocks, the <s>
// rows and the two grids that depend on them (indirect dispatches) sit in a small buffer that the
// host fills before each submit. So a recording depends only on P and the outputs asked for, and
// an LRU of PLAN_SLOTS recordings keyed by (P, outputs) serves every packing of those. Recordings
// reference the shared activation buffers; when those grow, every recording is dropped.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "encoder/vulkan/ops.h"
#include "encoder/vulkan/vulkan-backend.h"

enum { MIN_BATCH_TOKENS = 8192, PLAN_SLOTS = 8 };

typedef struct vk_layer {
    m3_vk_buffer qkv_w, qkv_b, out_w, out_b, ln1_w, ln1_b;
    m3_vk_buffer ffn_in_w, ffn_in_b, ffn_out_w, ffn_out_b, ln2_w, ln2_b;
} vk_layer;

// One recorded forward pass, for p (padded) tokens and a set of outputs.
typedef struct vk_plan {
    m3_vk_sequence seq;
    size_t tokens;     // p; 0: the slot holds no valid recording
    unsigned outputs;
    uint64_t used;     // LRU clock
} vk_plan;

typedef struct vk_backend {
    m3_backend base;  // first: a m3_backend * is a vk_backend *
    m3_model_config cfg;
    const m3_model_weights *w;
    m3_vk_device *dev;
    m3_vk_kernels k;
    vk_plan plans[PLAN_SLOTS];
    uint64_t clock;
    m3_vulkan_stats stats;
    // Fault injection for tests: M3_VULKAN_FAIL_AFTER=N makes the pass after N good ones fail as
    // a lost device would (VK_ERROR_DEVICE_LOST); -1 (unset): never.
    long fail_after;
    vk_layer *layers;
    uint32_t ldw_h, ldw_f, ldpos;
    m3_vk_buffer pos_table, type_row, emb_ln_w, emb_ln_b;
    m3_vk_buffer colbert_w, colbert_b, sparse_w;
    float sparse_b;
    // Activations, grown on demand to cap_tokens (padded tokens); meta holds the packing.
    m3_vk_buffer x, qkv, att, ffn, pos, meta, up, down;
    size_t cap_tokens, ffn_rows, bytes;
    char kernel_name[512];
} vk_backend;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Reads row `row` of a 2-D tensor as fp32 (any dtype, any strides).
static void tensor_row(const m3_tensor *t, int64_t row, float *dst, size_t n)
{
    const unsigned char *base = t->data;
    int64_t s0 = t->strides[0], s1 = t->strides[1];
    for (size_t i = 0; i < n; i++) {
        int64_t at = row * s0 + (int64_t)i * s1;
        switch (t->dtype) {
        case M3_DTYPE_F32: dst[i] = ((const float *)(const void *)base)[at]; break;
        case M3_DTYPE_F16: dst[i] = m3_f16_to_f32(((const uint16_t *)(const void *)base)[at]); break;
        case M3_DTYPE_BF16: dst[i] = m3_bf16_to_f32(((const uint16_t *)(const void *)base)[at]); break;
        }
    }
}

static m3_status check_numel(const m3_tensor *t, size_t n, m3_error *err)
{
    if (!t || m3_tensor_numel(t) != (int64_t)n)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "vulkan backend: tensor %s has not %zu elements",
                            t ? t->name : "(missing)", n);
    return M3_STATUS_OK;
}

// Uploads tensors (concatenated along rows) as one fp16 matrix [sum rows, cols].
static m3_status upload_matrix(vk_backend *vb, const m3_tensor *const *parts, int n_parts,
                               size_t rows_each, size_t cols, m3_vk_buffer *out, uint32_t *ldw,
                               m3_error *err)
{
    for (int i = 0; i < n_parts; i++) {
        m3_status st = check_numel(parts[i], rows_each * cols, err);
        if (st != M3_STATUS_OK)
            return st;
    }
    float *tmp = malloc((size_t)n_parts * rows_each * cols * sizeof *tmp);
    if (!tmp)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "vulkan backend: out of memory");
    for (int i = 0; i < n_parts; i++)
        m3_tensor_to_f32(parts[i], tmp + (size_t)i * rows_each * cols);
    m3_status st = m3_vk_weight_upload(vb->dev, tmp, (size_t)n_parts * rows_each, cols, out, ldw, err);
    free(tmp);
    return st;
}

static m3_status upload_vector(vk_backend *vb, const m3_tensor *const *parts, int n_parts,
                               size_t n_each, m3_vk_buffer *out, m3_error *err)
{
    for (int i = 0; i < n_parts; i++) {
        m3_status st = check_numel(parts[i], n_each, err);
        if (st != M3_STATUS_OK)
            return st;
    }
    float *tmp = malloc((size_t)n_parts * n_each * sizeof *tmp);
    if (!tmp)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "vulkan backend: out of memory");
    for (int i = 0; i < n_parts; i++)
        m3_tensor_to_f32(parts[i], tmp + (size_t)i * n_each);
    m3_status st = m3_vk_f32_upload(vb->dev, tmp, (size_t)n_parts * n_each, out, err);
    free(tmp);
    return st;
}

static m3_status load_layer(vk_backend *vb, const m3_layer_weights *lw, vk_layer *L, m3_error *err)
{
    size_t h = (size_t)vb->cfg.hidden, f = (size_t)vb->cfg.intermediate;
    const m3_tensor *qkv_w[3] = {lw->query_w, lw->key_w, lw->value_w};
    const m3_tensor *qkv_b[3] = {lw->query_b, lw->key_b, lw->value_b};
    m3_status st;
    if ((st = upload_matrix(vb, qkv_w, 3, h, h, &L->qkv_w, &vb->ldw_h, err)) ||
        (st = upload_vector(vb, qkv_b, 3, h, &L->qkv_b, err)) ||
        (st = upload_matrix(vb, &lw->attn_out_w, 1, h, h, &L->out_w, &vb->ldw_h, err)) ||
        (st = upload_vector(vb, &lw->attn_out_b, 1, h, &L->out_b, err)) ||
        (st = upload_vector(vb, &lw->attn_ln_w, 1, h, &L->ln1_w, err)) ||
        (st = upload_vector(vb, &lw->attn_ln_b, 1, h, &L->ln1_b, err)) ||
        (st = upload_matrix(vb, &lw->ffn_in_w, 1, f, h, &L->ffn_in_w, &vb->ldw_h, err)) ||
        (st = upload_vector(vb, &lw->ffn_in_b, 1, f, &L->ffn_in_b, err)) ||
        (st = upload_matrix(vb, &lw->ffn_out_w, 1, h, f, &L->ffn_out_w, &vb->ldw_f, err)) ||
        (st = upload_vector(vb, &lw->ffn_out_b, 1, h, &L->ffn_out_b, err)) ||
        (st = upload_vector(vb, &lw->ffn_ln_w, 1, h, &L->ln2_w, err)) ||
        (st = upload_vector(vb, &lw->ffn_ln_b, 1, h, &L->ln2_b, err)))
        return st;
    return M3_STATUS_OK;
}

// ---- Activations ------------------------------------------------------------------------------

size_t m3_vulkan_padded_tokens(size_t tokens, size_t max_tokens)
{
    // Steps of 16 up to 256 tokens, then of 1/16 to 1/8 of the size (powers of two): at most
    // 12.5 % of padding rows, and a few dozen shapes in all up to 8192 tokens.
    size_t step = 16;
    while (step * 16 < tokens)
        step *= 2;
    size_t p = (tokens + step - 1) / step * step;
    return p < max_tokens ? p : max_tokens;
}

// Where things are for a pass of p (padded) tokens of hidden size h.
typedef struct vk_layout {
    // Upload (host-visible): [word rows p·h f32][positions p i32][meta].
    size_t up_pos, up_meta, up_bytes;
    // meta (device; a copy of the upload's tail): [attention blocks p × uvec4][<s> rows p u32,
    // padded to 16 bytes][attention grid 3 u32 + pad][gather grid 3 u32 + pad].
    size_t blocks, cls, attn_args, cls_args, meta_bytes;
    // Download (host-visible): [<s> rows p·h f32][sparse p f32][colbert p·h f32].
    size_t sparse_at, col_at, down_bytes;
} vk_layout;

static vk_layout layout_for(size_t p, size_t h)
{
    vk_layout l;
    l.blocks = 0;  // a block holds at least one token: at most p blocks
    l.cls = p * 16;
    l.attn_args = l.cls + (p * 4 + 15) / 16 * 16;
    l.cls_args = l.attn_args + 16;
    l.meta_bytes = l.cls_args + 16;
    l.up_pos = p * h * 4;
    l.up_meta = l.up_pos + (p * 4 + 15) / 16 * 16;
    l.up_bytes = l.up_meta + l.meta_bytes;
    l.sparse_at = p * h * 4;
    l.col_at = l.sparse_at + p * 4;
    l.down_bytes = l.col_at + p * h * 4;
    return l;
}

// Forgets every recording (their sequences are kept for the next ones).
static void drop_plans(vk_backend *vb)
{
    for (size_t i = 0; i < PLAN_SLOTS; i++)
        vb->plans[i].tokens = 0;
}

static void free_activations(vk_backend *vb)
{
    drop_plans(vb);  // they reference these buffers
    m3_vk_buffer *all[] = {&vb->x, &vb->qkv, &vb->att, &vb->ffn, &vb->pos, &vb->meta, &vb->up,
                           &vb->down};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        m3_vk_buffer_free(vb->dev, all[i]);
    vb->cap_tokens = 0;
    vb->bytes = 0;
}

static m3_status allocate(vk_backend *vb, size_t tokens, m3_error *err)
{
    free_activations(vb);
    size_t h = (size_t)vb->cfg.hidden, f = (size_t)vb->cfg.intermediate;
    size_t range = (size_t)vb->dev->max_range;
    size_t ffn_rows = range / (f * 4);
    if (ffn_rows > tokens)
        ffn_rows = tokens;
    vk_layout l = layout_for(tokens, h);
    m3_status st;
    if ((st = m3_vk_buffer_new(vb->dev, tokens * h * 4, false, &vb->x, err)) ||
        (st = m3_vk_buffer_new(vb->dev, tokens * 3 * h * 4, false, &vb->qkv, err)) ||
        (st = m3_vk_buffer_new(vb->dev, tokens * h * 4, false, &vb->att, err)) ||
        (st = m3_vk_buffer_new(vb->dev, ffn_rows * f * 4, false, &vb->ffn, err)) ||
        (st = m3_vk_buffer_new(vb->dev, tokens * 4, false, &vb->pos, err)) ||
        (st = m3_vk_buffer_new(vb->dev, l.meta_bytes, false, &vb->meta, err)) ||
        (st = m3_vk_buffer_new(vb->dev, l.up_bytes, true, &vb->up, err)) ||
        (st = m3_vk_buffer_new(vb->dev, l.down_bytes, true, &vb->down, err))) {
        free_activations(vb);
        return st;
    }
    vb->cap_tokens = tokens;
    vb->ffn_rows = ffn_rows;
    vb->bytes = (tokens * (5 * h + 1) + ffn_rows * f) * 4 + l.meta_bytes + l.up_bytes +
                l.down_bytes;
    return M3_STATUS_OK;
}

// Activations for p (padded) tokens. They grow to at least twice the previous size (fewer
// regrowths, each of which drops the recordings), or exactly p when that much does not fit.
static m3_status reserve(vk_backend *vb, size_t p, m3_error *err)
{
    if (p <= vb->cap_tokens)
        return M3_STATUS_OK;
    size_t want = 2 * vb->cap_tokens;
    if (want > vb->base.max_tokens)
        want = vb->base.max_tokens;
    if (want > p) {
        m3_error local = {0};
        if (allocate(vb, want, &local) == M3_STATUS_OK)
            return M3_STATUS_OK;
        if (!m3_vk_is_device_oom(&local)) {
            if (err)
                *err = local;
            return local.status;
        }
    }
    return allocate(vb, p, err);
}

// ---- The forward pass -------------------------------------------------------------------------

// Records the pass of p (padded) tokens with these outputs into s. Everything that depends on
// the packing is read from vb->meta at run time.
static m3_status record(vk_backend *vb, m3_vk_sequence *s, size_t p, unsigned outputs,
                        m3_error *err)
{
    const size_t h = (size_t)vb->cfg.hidden, f = (size_t)vb->cfg.intermediate;
    m3_vk_device *d = vb->dev;
    const float eps = vb->cfg.layer_norm_eps;
    const vk_layout lay = layout_for(p, h);
    size_t chunks = (p + vb->ffn_rows - 1) / vb->ffn_rows;
    uint32_t dispatches = (uint32_t)(4 + (size_t)vb->cfg.layers * (5 + 2 * chunks));
    m3_status st = m3_vk_sequence_begin(d, s, dispatches, err);
    if (st != M3_STATUS_OK)
        return st;
    m3_vk_sequence_copy(s, &vb->up, 0, &vb->x, 0, p * h * 4);
    m3_vk_sequence_copy(s, &vb->up, lay.up_pos, &vb->pos, 0, p * 4);
    m3_vk_sequence_copy(s, &vb->up, lay.up_meta, &vb->meta, 0, lay.meta_bytes);
    m3_vk_sequence_barrier(s);
    uint32_t T = (uint32_t)p, H = (uint32_t)h, F = (uint32_t)f;
    m3_vk_embed(d, s, &vb->k, &vb->x, T, H, &vb->emb_ln_w, &vb->emb_ln_b, eps, &vb->pos_table,
                vb->ldpos, &vb->type_row, &vb->pos);
    const float scale = 1.0f / sqrtf((float)vb->k.head_dim);
    for (int l = 0; l < vb->cfg.layers; l++) {
        const vk_layer *L = &vb->layers[l];
        m3_vk_gemm_args g = {
            .a = &vb->x, .w = &L->qkv_w, .bias = &L->qkv_b, .c = &vb->qkv,
            .m = T, .n = 3 * H, .k = H, .lda = H, .ldw = vb->ldw_h, .ldc = 3 * H,
            .epilogue = M3_VK_BIAS,
        };
        m3_vk_gemm(d, s, &vb->k, &g);
        m3_vk_attention(d, s, &vb->k, &vb->qkv, &vb->att, &vb->meta, 0, (uint32_t)vb->cfg.heads,
                        H, scale, &vb->meta, lay.attn_args);
        g = (m3_vk_gemm_args){
            .a = &vb->att, .w = &L->out_w, .bias = &L->out_b, .r = &vb->x, .c = &vb->x,
            .m = T, .n = H, .k = H, .lda = H, .ldw = vb->ldw_h, .ldc = H, .ldr = H,
            .epilogue = M3_VK_BIAS_RESIDUAL,
        };
        m3_vk_gemm(d, s, &vb->k, &g);
        m3_vk_layernorm(d, s, &vb->k, &vb->x, T, H, &L->ln1_w, &L->ln1_b, eps);
        for (size_t r0 = 0; r0 < p; r0 += vb->ffn_rows) {
            uint32_t rows = (uint32_t)(p - r0 < vb->ffn_rows ? p - r0 : vb->ffn_rows);
            uint32_t off = (uint32_t)(r0 * h);
            g = (m3_vk_gemm_args){
                .a = &vb->x, .w = &L->ffn_in_w, .bias = &L->ffn_in_b, .c = &vb->ffn,
                .m = rows, .n = F, .k = H, .lda = H, .ldw = vb->ldw_h, .ldc = F, .a_off = off,
                .epilogue = M3_VK_BIAS_GELU,
            };
            m3_vk_gemm(d, s, &vb->k, &g);
            g = (m3_vk_gemm_args){
                .a = &vb->ffn, .w = &L->ffn_out_w, .bias = &L->ffn_out_b, .r = &vb->x, .c = &vb->x,
                .m = rows, .n = H, .k = F, .lda = F, .ldw = vb->ldw_f, .ldc = H, .ldr = H,
                .c_off = off, .r_off = off, .epilogue = M3_VK_BIAS_RESIDUAL,
            };
            m3_vk_gemm(d, s, &vb->k, &g);
        }
        m3_vk_layernorm(d, s, &vb->k, &vb->x, T, H, &L->ln2_w, &L->ln2_b, eps);
    }
    if (outputs & M3_OUTPUT_DENSE)
        m3_vk_gather_rows(d, s, &vb->k, &vb->x, H, &vb->meta, (uint32_t)(lay.cls / 4), &vb->down,
                          &vb->meta, lay.cls_args);
    if (outputs & M3_OUTPUT_SPARSE) {
        m3_vk_rowdot(d, s, &vb->k, &vb->x, T, H, &vb->sparse_w, vb->sparse_b, &vb->att);
        m3_vk_sequence_copy(s, &vb->att, 0, &vb->down, lay.sparse_at, p * 4);
    }
    if (outputs & M3_OUTPUT_COLBERT) {
        m3_vk_gemm_args g = {
            .a = &vb->x, .w = &vb->colbert_w, .bias = &vb->colbert_b, .c = &vb->qkv,
            .m = T, .n = H, .k = H, .lda = H, .ldw = vb->ldw_h, .ldc = H, .epilogue = M3_VK_BIAS,
        };
        m3_vk_gemm(d, s, &vb->k, &g);
        m3_vk_sequence_copy(s, &vb->qkv, 0, &vb->down, lay.col_at, p * h * 4);
    }
    return m3_vk_sequence_end(d, s, err);
}

// The recording for (p, outputs): the cached one, or a new one in an empty or the least
// recently used slot.
static m3_status get_plan(vk_backend *vb, size_t p, unsigned outputs, vk_plan **out,
                          m3_error *err)
{
    vk_plan *slot = NULL;
    for (size_t i = 0; i < PLAN_SLOTS; i++) {
        vk_plan *c = &vb->plans[i];
        if (c->tokens == p && c->outputs == outputs) {
            c->used = ++vb->clock;
            vb->stats.replays++;
            *out = c;
            return M3_STATUS_OK;
        }
        if (!slot || (slot->tokens != 0 && (c->tokens == 0 || c->used < slot->used)))
            slot = c;
    }
    if (slot->tokens != 0)
        vb->stats.evictions++;
    slot->tokens = 0;
    m3_status st;
    if (!slot->seq.pool && (st = m3_vk_sequence_new(vb->dev, &slot->seq, err)) != M3_STATUS_OK)
        return st;
    double t0 = now();
    if ((st = record(vb, &slot->seq, p, outputs, err)) != M3_STATUS_OK)
        return st;
    vb->stats.record_seconds += now() - t0;
    vb->stats.recordings++;
    slot->tokens = p;
    slot->outputs = outputs;
    slot->used = ++vb->clock;
    *out = slot;
    return M3_STATUS_OK;
}

static m3_status forward(vk_backend *vb, const m3_backend_batch *batch, size_t total, size_t p,
                         m3_error *err)
{
    const size_t h = (size_t)vb->cfg.hidden;
    const size_t n = batch->n;
    const vk_layout lay = layout_for(p, h);
    double t0 = now();

    // The inputs: word rows, positions, and the packing (attention blocks, <s> rows, grids).
    size_t *offsets = malloc((n + 1) * sizeof *offsets);
    if (!offsets)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "vulkan backend: out of memory");
    unsigned char *up = vb->up.map;
    float *word = (float *)(void *)up;
    int32_t *pos = (int32_t *)(void *)(up + lay.up_pos);
    unsigned char *meta = up + lay.up_meta;
    uint32_t *cls = (uint32_t *)(void *)(meta + lay.cls);
    const int32_t first_pos = vb->cfg.pad_token_id + 1;
    offsets[0] = 0;
    for (size_t q = 0; q < n; q++) {
        size_t off = offsets[q];
        for (size_t i = 0; i < batch->seqs[q].n; i++) {
            tensor_row(vb->w->word, batch->seqs[q].ids[i], word + (off + i) * h, h);
            pos[off + i] = (int32_t)i + first_pos;
        }
        cls[q] = (uint32_t)off;
        offsets[q + 1] = off + batch->seqs[q].n;
    }
    memset(word + total * h, 0, (p - total) * h * 4);
    for (size_t t = total; t < p; t++)
        pos[t] = first_pos;
    size_t nb = m3_vk_attention_blocks(offsets, n, (uint32_t *)(void *)(meta + lay.blocks));
    uint32_t *attn_args = (uint32_t *)(void *)(meta + lay.attn_args);
    uint32_t *cls_args = (uint32_t *)(void *)(meta + lay.cls_args);
    attn_args[0] = (uint32_t)nb;
    attn_args[1] = (uint32_t)vb->cfg.heads;
    attn_args[2] = 1;
    cls_args[0] = (uint32_t)n;
    cls_args[1] = 1;
    cls_args[2] = 1;
    double t1 = now();

    vk_plan *plan;
    m3_status st = get_plan(vb, p, batch->outputs, &plan, err);
    if (st != M3_STATUS_OK)
        goto done;
    double t2 = now();
    if ((st = m3_vk_sequence_run(vb->dev, &plan->seq, err)) != M3_STATUS_OK)
        goto done;
    double t3 = now();

    const unsigned char *down = vb->down.map;
    for (size_t q = 0; q < n; q++) {
        size_t len = batch->seqs[q].n;
        if (batch->outputs & M3_OUTPUT_DENSE)
            memcpy(batch->cls[q], down + q * h * 4, h * 4);
        if ((batch->outputs & M3_OUTPUT_COLBERT) && len > 1)
            memcpy(batch->colbert[q], down + lay.col_at + (offsets[q] + 1) * h * 4,
                   (len - 1) * h * 4);
    }
    if (batch->outputs & M3_OUTPUT_SPARSE)
        memcpy(batch->sparse, down + lay.sparse_at, total * 4);
    // Without per-kernel timestamps the device time is reported as one figure under gemm, which
    // dominates it (documented in docs/vulkan.md); host-side gathering, recording and copies are
    // "other".
    double t4 = now();
    m3_encoder_profile *prof = &vb->base.profile;
    prof->gemm += t3 - t2;
    prof->other += (t2 - t0) + (t4 - t3);
    prof->tokens += total;
    prof->forwards++;
    vb->stats.run_seconds += t3 - t2;
    vb->stats.host_seconds += (t1 - t0) + (t4 - t3);
    vb->stats.padded_tokens += p - total;
done:
    free(offsets);
    return st;
}

static m3_status vk_encode(m3_backend *be, const m3_backend_batch *batch, m3_error *err)
{
    vk_backend *vb = (vk_backend *)be;
    if (batch->n == 0)
        return M3_STATUS_OK;
    size_t total = 0;
    for (size_t q = 0; q < batch->n; q++)
        total += batch->seqs[q].n;
    M3_ASSERT(total <= vb->base.max_tokens);
    size_t p = m3_vulkan_padded_tokens(total, vb->base.max_tokens);
    if (vb->fail_after >= 0 && vb->fail_after-- == 0)  // M3_VULKAN_FAIL_AFTER (tests)
        return m3_vk_error(err, VK_ERROR_DEVICE_LOST, "vkQueueSubmit (injected by M3_VULKAN_FAIL_AFTER)");
    m3_error local = {0};
    m3_status st = reserve(vb, p, &local);
    if (st != M3_STATUS_OK && m3_vk_is_device_oom(&local) && batch->n > 1) {
        // Out of device memory: retry as two smaller passes (whole sequences each).
        size_t half = batch->n / 2, tok = 0;
        for (size_t q = 0; q < half; q++)
            tok += batch->seqs[q].n;
        m3_log(M3_LOG_WARN, "vulkan: out of device memory for %zu tokens, retrying as %zu + %zu",
               total, tok, total - tok);
        m3_backend_batch a = *batch, b = *batch;
        a.n = half;
        b.seqs += half;
        b.n -= half;
        b.cls = batch->cls ? batch->cls + half : NULL;
        b.colbert = batch->colbert ? batch->colbert + half : NULL;
        b.sparse = batch->sparse ? batch->sparse + tok : NULL;
        if ((st = vk_encode(be, &a, err)) != M3_STATUS_OK)
            return st;
        return vk_encode(be, &b, err);
    }
    if (st != M3_STATUS_OK) {
        if (err)
            *err = local;
        return st;
    }
    return forward(vb, batch, total, p, err);
}

void m3_vulkan_backend_get_stats(const m3_backend *be, m3_vulkan_stats *out)
{
    const vk_backend *vb = (const vk_backend *)be;
    *out = vb->stats;
    out->plans = 0;
    for (size_t i = 0; i < PLAN_SLOTS; i++)
        out->plans += vb->plans[i].tokens != 0;
}

void m3_vulkan_backend_drop_plans(m3_backend *be)
{
    drop_plans((vk_backend *)be);
}

// ---- Lifetime ---------------------------------------------------------------------------------

static int vk_threads(const m3_backend *be)
{
    (void)be;
    return 1;
}

static const char *vk_kernel_name(const m3_backend *be)
{
    return ((const vk_backend *)be)->kernel_name;
}

static size_t vk_activation_bytes(const m3_backend *be)
{
    return ((const vk_backend *)be)->bytes;
}

static bool vk_device(const m3_backend *be, m3_encoder_device *out)
{
    const vk_backend *vb = (const vk_backend *)be;
    *out = (m3_encoder_device){
        .name = vb->dev->props.deviceName,
        .peak_bytes = vb->dev->peak,
        .now_bytes = vb->dev->allocated,
        .host_peak_bytes = vb->dev->host_peak,
    };
    m3_vk_device_budget(vb->dev, &out->heap_budget, &out->heap_usage);
    return true;
}

static void vk_free(m3_backend *be)
{
    vk_backend *vb = (vk_backend *)be;
    if (!vb)
        return;
    if (vb->dev) {
        uint64_t budget, usage;
        m3_vk_device_budget(vb->dev, &budget, &usage);
        m3_log(M3_LOG_DEBUG,
               "vulkan: peak device memory %.1f MiB + %.1f MiB host-visible (heap usage now %.1f "
               "MiB of %.1f); %zu recordings (%.3f ms each), %zu replays, %zu evictions",
               (double)vb->dev->peak / 1048576.0, (double)vb->dev->host_peak / 1048576.0,
               (double)usage / 1048576.0, (double)budget / 1048576.0, vb->stats.recordings,
               vb->stats.recordings ? 1e3 * vb->stats.record_seconds / (double)vb->stats.recordings
                                    : 0.0,
               vb->stats.replays, vb->stats.evictions);
        free_activations(vb);
        for (size_t i = 0; i < PLAN_SLOTS; i++)
            m3_vk_sequence_free(vb->dev, &vb->plans[i].seq);
        if (vb->layers) {
            for (int l = 0; l < vb->cfg.layers; l++) {
                vk_layer *L = &vb->layers[l];
                m3_vk_buffer *all[] = {&L->qkv_w, &L->qkv_b, &L->out_w, &L->out_b,
                                       &L->ln1_w, &L->ln1_b, &L->ffn_in_w, &L->ffn_in_b,
                                       &L->ffn_out_w, &L->ffn_out_b, &L->ln2_w, &L->ln2_b};
                for (size_t i = 0; i < sizeof all / sizeof *all; i++)
                    m3_vk_buffer_free(vb->dev, all[i]);
            }
        }
        m3_vk_buffer *all[] = {&vb->pos_table, &vb->type_row, &vb->emb_ln_w, &vb->emb_ln_b,
                               &vb->colbert_w, &vb->colbert_b, &vb->sparse_w};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            m3_vk_buffer_free(vb->dev, all[i]);
        m3_vk_kernels_free(vb->dev, &vb->k);
        m3_vk_device_close(vb->dev);
    }
    free(vb->layers);
    free(vb);
}

m3_status m3_vulkan_backend_new(const m3_model *model, const m3_encoder_options *options,
                                m3_backend **out, m3_error *err)
{
    *out = NULL;
    // "auto" asks for a GPU: a CPU Vulkan device (lavapipe) is slower than the CPU backend.
    const bool gpu_only = options && options->backend && strcmp(options->backend, "auto") == 0;
    const m3_model_config *cfg = m3_model_get_config(model);
    const m3_model_weights *w = m3_model_get_weights(model);
    if (cfg->heads <= 0 || cfg->hidden % cfg->heads != 0)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "vulkan backend: hidden %d, heads %d",
                            cfg->hidden, cfg->heads);
    vk_backend *vb = calloc(1, sizeof *vb);
    if (!vb)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "vulkan backend: out of memory");
    vb->cfg = *cfg;
    vb->w = w;
    const char *fail = getenv("M3_VULKAN_FAIL_AFTER");
    vb->fail_after = fail && *fail ? strtol(fail, NULL, 10) : -1;
    size_t h = (size_t)cfg->hidden;
    m3_status st;
    if ((st = m3_vk_device_open(&vb->dev, gpu_only ? M3_VK_GPU_ONLY : 0, err)) ||
        (st = m3_vk_kernels_new(vb->dev, (uint32_t)(cfg->hidden / cfg->heads), &vb->k, err)))
        goto fail;
    size_t longest = cfg->max_positions > 2 ? (size_t)cfg->max_positions - 2 : 1;
    size_t max_tokens = longest > MIN_BATCH_TOKENS ? longest : MIN_BATCH_TOKENS;
    if (max_tokens * 3 * h * 4 > vb->dev->max_range) {
        st = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                          "vulkan backend: %zu tokens of hidden %zu exceed %s's storage-buffer "
                          "range of %llu MiB",
                          max_tokens, h, vb->dev->props.deviceName,
                          (unsigned long long)(vb->dev->max_range >> 20));
        goto fail;
    }
    if (!w->word || w->word->ndim != 2 || w->word->shape[0] != cfg->vocab ||
        w->word->shape[1] != cfg->hidden || !w->sparse_b || m3_tensor_numel(w->sparse_b) != 1) {
        st = m3_error_set(err, M3_STATUS_INVALID, 0, "vulkan backend: bad word table or sparse bias");
        goto fail;
    }
    m3_tensor_to_f32(w->sparse_b, &vb->sparse_b);
    uint32_t ld_col;
    if ((st = upload_matrix(vb, &w->position, 1, (size_t)cfg->max_positions, h, &vb->pos_table,
                            &vb->ldpos, err)) ||
        (st = upload_vector(vb, &w->token_type, 1, h * (size_t)cfg->type_vocab, &vb->type_row,
                            err)) ||
        (st = upload_vector(vb, &w->emb_ln_w, 1, h, &vb->emb_ln_w, err)) ||
        (st = upload_vector(vb, &w->emb_ln_b, 1, h, &vb->emb_ln_b, err)) ||
        (st = upload_matrix(vb, &w->colbert_w, 1, h, h, &vb->colbert_w, &ld_col, err)) ||
        (st = upload_vector(vb, &w->colbert_b, 1, h, &vb->colbert_b, err)) ||
        (st = upload_vector(vb, &w->sparse_w, 1, h, &vb->sparse_w, err)))
        goto fail;
    vb->layers = calloc((size_t)cfg->layers, sizeof *vb->layers);
    if (!vb->layers) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "vulkan backend: out of memory");
        goto fail;
    }
    for (int l = 0; l < cfg->layers; l++)
        if ((st = load_layer(vb, &w->layers[l], &vb->layers[l], err)))
            goto fail;
    m3_vk_pipeline_cache_save(vb->dev);
    snprintf(vb->kernel_name, sizeof vb->kernel_name, "%s, %s, on %s", vb->k.name,
             vb->dev->use_push ? "push descriptors" : "descriptor sets", vb->dev->props.deviceName);
    vb->base = (m3_backend){
        .name = "vulkan",
        .ctx = vb,
        .max_tokens = max_tokens,
        .encode = vk_encode,
        .threads = vk_threads,
        .kernel_name = vk_kernel_name,
        .activation_bytes = vk_activation_bytes,
        .device = vk_device,
        .free = vk_free,
    };
    *out = &vb->base;
    return M3_STATUS_OK;

fail:
    vk_free(&vb->base);
    return st;
}
