// SPDX-License-Identifier: MIT
//
// The kernels of the Vulkan backend: pipelines from the embedded SPIR-V (shaders/*.comp) and one
// record function per shader.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/vulkan/ops.h"
#include "model/tensor.h"

static const uint32_t gemm_spv[] =
#include "gemm.spv.h"
    ;
static const uint32_t attention_spv[] =
#include "attention.spv.h"
    ;
static const uint32_t layernorm_spv[] =
#include "layernorm.spv.h"
    ;
static const uint32_t embed_spv[] =
#include "embed.spv.h"
    ;
static const uint32_t rowdot_spv[] =
#include "rowdot.spv.h"
    ;
static const uint32_t gather_spv[] =
#include "gather.spv.h"
    ;
#ifdef M3_VK_GLSLC_COOPMAT_NV
static const uint32_t gemm_coop_spv[] =
#include "gemm-coopmat-nv.spv.h"
    ;
#endif

// GEMM tile (specialization constants of gemm.comp): TM×TN threads, RM×RN outputs each, BK.
enum { GEMM_TM = 16, GEMM_TN = 16, GEMM_RM = 4, GEMM_RN = 4, GEMM_BK = 16 };
enum { GEMM_BM = GEMM_TM * GEMM_RM, GEMM_BN = GEMM_TN * GEMM_RN };

typedef struct gemm_push {
    uint32_t m, n, k, lda, ldw, ldc, ldr, a_off, c_off, r_off, mode;
} gemm_push;
typedef struct attn_push {
    uint32_t hidden;
    float scale;
} attn_push;
typedef struct ln_push {
    uint32_t rows, h, ldpos;
    float eps;
} ln_push;
typedef struct rowdot_push {
    uint32_t rows, h;
    float b;
} rowdot_push;
typedef struct gather_push {
    uint32_t h, idx_off;
} gather_push;

m3_status m3_vk_kernels_new(m3_vk_device *d, uint32_t head_dim, m3_vk_kernels *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    if (head_dim == 0 || head_dim % 8 != 0 || head_dim > 64)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                            "vulkan: head size %u is not a multiple of 8 up to 64", head_dim);
    out->head_dim = head_dim;
    uint32_t gspec[6] = {GEMM_TM, GEMM_TN, GEMM_RM, GEMM_RN, GEMM_BK, GEMM_TM * GEMM_TN};
    m3_status st;
    if ((st = m3_vk_pipeline_new(d, gemm_spv, sizeof gemm_spv, 5, sizeof(gemm_push), gspec, 6,
                                 &out->gemm, err)) ||
        (st = m3_vk_pipeline_new(d, attention_spv, sizeof attention_spv, 3, sizeof(attn_push),
                                 &head_dim, 1, &out->attention, err)) ||
        (st = m3_vk_pipeline_new(d, layernorm_spv, sizeof layernorm_spv, 3, sizeof(ln_push), NULL,
                                 0, &out->layernorm, err)) ||
        (st = m3_vk_pipeline_new(d, embed_spv, sizeof embed_spv, 6, sizeof(ln_push), NULL, 0,
                                 &out->embed, err)) ||
        (st = m3_vk_pipeline_new(d, rowdot_spv, sizeof rowdot_spv, 3, sizeof(rowdot_push), NULL, 0,
                                 &out->rowdot, err)) ||
        (st = m3_vk_pipeline_new(d, gather_spv, sizeof gather_spv, 3, sizeof(gather_push), NULL, 0,
                                 &out->gather, err))) {
        m3_vk_kernels_free(d, out);
        return st;
    }
#ifdef M3_VK_GLSLC_COOPMAT_NV
    if (d->coopmat.m) {
        const m3_vk_coopmat c = d->coopmat;
        uint32_t cspec[9] = {c.m, c.n, c.k, M3_VK_COOP_WM, M3_VK_COOP_WN, M3_VK_COOP_SM,
                             M3_VK_COOP_SN, M3_VK_COOP_KS,
                             M3_VK_COOP_WM * M3_VK_COOP_WN * d->subgroup_size};
        if ((st = m3_vk_pipeline_new(d, gemm_coop_spv, sizeof gemm_coop_spv, 5, sizeof(gemm_push),
                                     cspec, 9, &out->gemm_coop, err))) {
            m3_vk_kernels_free(d, out);
            return st;
        }
        out->coop = true;
        snprintf(out->name, sizeof out->name,
                 "gemm coopmat-nv %ux%ux%u (tile %ux%u) fp16, attention flash d%u", c.m, c.n, c.k,
                 M3_VK_COOP_WM * M3_VK_COOP_SM * c.m, M3_VK_COOP_WN * M3_VK_COOP_SN * c.n,
                 head_dim);
        return M3_STATUS_OK;
    }
#endif
    snprintf(out->name, sizeof out->name, "gemm tiled %ux%u fp16 weights, attention flash d%u",
             GEMM_BM, GEMM_BN, head_dim);
    return M3_STATUS_OK;
}

void m3_vk_kernels_free(m3_vk_device *d, m3_vk_kernels *k)
{
    if (!k)
        return;
    m3_vk_pipeline_free(d, &k->gemm);
    m3_vk_pipeline_free(d, &k->attention);
    m3_vk_pipeline_free(d, &k->layernorm);
    m3_vk_pipeline_free(d, &k->embed);
    m3_vk_pipeline_free(d, &k->rowdot);
    m3_vk_pipeline_free(d, &k->gather);
    m3_vk_pipeline_free(d, &k->gemm_coop);
    k->coop = false;
}

static m3_vk_range whole(const m3_vk_buffer *b)
{
    return (m3_vk_range){b, 0, 0};
}

// Splits a row count into a 2-D grid (x at most 65535).
static void row_grid(uint32_t rows, uint32_t *gx, uint32_t *gy)
{
    *gx = rows < 65535 ? rows : 65535;
    *gy = (rows + *gx - 1) / *gx;
}

void m3_vk_gemm(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k, const m3_vk_gemm_args *g)
{
    if (g->m == 0 || g->n == 0)
        return;
    gemm_push p = {g->m, g->n, g->k, g->lda, g->ldw, g->ldc, g->ldr,
                   g->a_off, g->c_off, g->r_off, (uint32_t)g->epilogue};
    m3_vk_range r[5] = {whole(g->a), whole(g->w), whole(g->bias), whole(g->r ? g->r : g->c),
                        whole(g->c)};
    if (k->coop) {
        const m3_vk_coopmat c = d->coopmat;
        uint32_t bm = M3_VK_COOP_WM * M3_VK_COOP_SM * c.m, bn = M3_VK_COOP_WN * M3_VK_COOP_SN * c.n;
        m3_vk_sequence_dispatch(d, s, &k->gemm_coop, r, &p, sizeof p, (g->n + bn - 1) / bn,
                                (g->m + bm - 1) / bm, 1);
        return;
    }
    m3_vk_sequence_dispatch(d, s, &k->gemm, r, &p, sizeof p, (g->n + GEMM_BN - 1) / GEMM_BN,
                            (g->m + GEMM_BM - 1) / GEMM_BM, 1);
}

void m3_vk_attention(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k,
                     const m3_vk_buffer *qkv, const m3_vk_buffer *out, const m3_vk_buffer *blocks,
                     uint32_t n_blocks, uint32_t heads, uint32_t hidden, float scale,
                     const m3_vk_buffer *args, VkDeviceSize args_off)
{
    attn_push p = {hidden, scale};
    m3_vk_range r[3] = {whole(qkv), whole(out), whole(blocks)};
    if (args)
        m3_vk_sequence_dispatch_indirect(d, s, &k->attention, r, &p, sizeof p, args, args_off);
    else if (n_blocks > 0)
        m3_vk_sequence_dispatch(d, s, &k->attention, r, &p, sizeof p, n_blocks, heads, 1);
}

void m3_vk_gather_rows(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k,
                       const m3_vk_buffer *x, uint32_t h, const m3_vk_buffer *idx,
                       uint32_t idx_off, const m3_vk_buffer *out, const m3_vk_buffer *args,
                       VkDeviceSize args_off)
{
    gather_push p = {h, idx_off};
    m3_vk_range r[3] = {whole(x), whole(idx), whole(out)};
    m3_vk_sequence_dispatch_indirect(d, s, &k->gather, r, &p, sizeof p, args, args_off);
}

void m3_vk_layernorm(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k,
                     const m3_vk_buffer *x, uint32_t rows, uint32_t h, const m3_vk_buffer *gamma,
                     const m3_vk_buffer *beta, float eps)
{
    if (rows == 0)
        return;
    ln_push p = {rows, h, 0, eps};
    m3_vk_range r[3] = {whole(x), whole(gamma), whole(beta)};
    uint32_t gx, gy;
    row_grid(rows, &gx, &gy);
    m3_vk_sequence_dispatch(d, s, &k->layernorm, r, &p, sizeof p, gx, gy, 1);
}

void m3_vk_embed(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k, const m3_vk_buffer *x,
                 uint32_t rows, uint32_t h, const m3_vk_buffer *gamma, const m3_vk_buffer *beta,
                 float eps, const m3_vk_buffer *pos_table, uint32_t ldpos,
                 const m3_vk_buffer *type_row, const m3_vk_buffer *pos)
{
    if (rows == 0)
        return;
    ln_push p = {rows, h, ldpos, eps};
    m3_vk_range r[6] = {whole(x), whole(gamma), whole(beta), whole(pos_table), whole(type_row),
                        whole(pos)};
    uint32_t gx, gy;
    row_grid(rows, &gx, &gy);
    m3_vk_sequence_dispatch(d, s, &k->embed, r, &p, sizeof p, gx, gy, 1);
}

void m3_vk_rowdot(m3_vk_device *d, m3_vk_sequence *s, const m3_vk_kernels *k, const m3_vk_buffer *x,
                  uint32_t rows, uint32_t h, const m3_vk_buffer *w, float b,
                  const m3_vk_buffer *out)
{
    if (rows == 0)
        return;
    rowdot_push p = {rows, h, b};
    m3_vk_range r[3] = {whole(x), whole(w), whole(out)};
    uint32_t gx, gy;
    row_grid(rows, &gx, &gy);
    m3_vk_sequence_dispatch(d, s, &k->rowdot, r, &p, sizeof p, gx, gy, 1);
}

size_t m3_vk_attention_blocks(const size_t *offsets, size_t n, uint32_t *blocks)
{
    size_t count = 0;
    for (size_t s = 0; s < n; s++) {
        size_t start = offsets[s], len = offsets[s + 1] - offsets[s];
        for (size_t q = 0; q < len; q += M3_VK_ATTN_BLOCK, count++) {
            if (!blocks)
                continue;
            size_t nq = len - q < M3_VK_ATTN_BLOCK ? len - q : M3_VK_ATTN_BLOCK;
            uint32_t *b = blocks + 4 * count;
            b[0] = (uint32_t)(start + q);
            b[1] = (uint32_t)nq;
            b[2] = (uint32_t)start;
            b[3] = (uint32_t)len;
        }
    }
    return count;
}

m3_status m3_vk_weight_upload(m3_vk_device *d, const float *src, size_t rows, size_t cols,
                              m3_vk_buffer *out, uint32_t *ldw, m3_error *err)
{
    size_t ld = (cols + 1) / 2;
    uint32_t *packed = calloc(rows * ld > 0 ? rows * ld : 1, sizeof *packed);
    if (!packed)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "vulkan: out of memory");
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            uint32_t h = m3_f32_to_f16(src[r * cols + c]);
            packed[r * ld + c / 2] |= (c & 1) ? h << 16 : h;
        }
    m3_status st = m3_vk_buffer_new(d, rows * ld * 4, false, out, err);
    if (st == M3_STATUS_OK)
        st = m3_vk_buffer_upload(d, out, 0, packed, rows * ld * 4, err);
    free(packed);
    if (st != M3_STATUS_OK)
        m3_vk_buffer_free(d, out);
    *ldw = (uint32_t)ld;
    return st;
}

m3_status m3_vk_f32_upload(m3_vk_device *d, const float *src, size_t n, m3_vk_buffer *out,
                           m3_error *err)
{
    m3_status st = m3_vk_buffer_new(d, n * sizeof(float), false, out, err);
    if (st == M3_STATUS_OK)
        st = m3_vk_buffer_upload(d, out, 0, src, n * sizeof(float), err);
    if (st != M3_STATUS_OK)
        m3_vk_buffer_free(d, out);
    return st;
}

// ---- Test entry points -------------------------------------------------------------------------

m3_status m3_vk_test_gemm(m3_vk_device *d, const m3_vk_kernels *k, size_t m, size_t n, size_t kk,
                          const float *a, const float *w, const float *bias, const float *r,
                          m3_vk_epilogue ep, float *c, m3_error *err)
{
    m3_vk_buffer ba = {0}, bw = {0}, bb = {0}, br = {0}, bc = {0};
    m3_vk_sequence s = {0};
    uint32_t ldw;
    m3_status st;
    if ((st = m3_vk_f32_upload(d, a, m * kk, &ba, err)) ||
        (st = m3_vk_weight_upload(d, w, n, kk, &bw, &ldw, err)) ||
        (st = m3_vk_f32_upload(d, bias, n, &bb, err)) ||
        (st = m3_vk_f32_upload(d, r ? r : c, m * n, &br, err)) ||
        (st = m3_vk_buffer_new(d, m * n * sizeof(float), false, &bc, err)) ||
        (st = m3_vk_sequence_new(d, &s, err)) || (st = m3_vk_sequence_begin(d, &s, 1, err)))
        goto done;
    m3_vk_gemm_args g = {
        .a = &ba, .w = &bw, .bias = &bb, .r = &br, .c = &bc,
        .m = (uint32_t)m, .n = (uint32_t)n, .k = (uint32_t)kk,
        .lda = (uint32_t)kk, .ldw = ldw, .ldc = (uint32_t)n, .ldr = (uint32_t)n, .epilogue = ep,
    };
    m3_vk_gemm(d, &s, k, &g);
    if ((st = m3_vk_sequence_submit(d, &s, err)) == M3_STATUS_OK)
        st = m3_vk_buffer_download(d, &bc, 0, c, m * n * sizeof(float), err);
done:
    m3_vk_sequence_free(d, &s);
    m3_vk_buffer_free(d, &ba);
    m3_vk_buffer_free(d, &bw);
    m3_vk_buffer_free(d, &bb);
    m3_vk_buffer_free(d, &br);
    m3_vk_buffer_free(d, &bc);
    return st;
}

m3_status m3_vk_test_attention(m3_vk_device *d, const m3_vk_kernels *k, const size_t *offsets,
                               size_t n_seqs, size_t heads, const float *qkv, float *out,
                               m3_error *err)
{
    size_t t = offsets[n_seqs], hidden = heads * k->head_dim;
    size_t nb = m3_vk_attention_blocks(offsets, n_seqs, NULL);
    uint32_t *blocks = malloc((nb ? nb : 1) * 4 * sizeof *blocks);
    if (!blocks)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "vulkan: out of memory");
    m3_vk_attention_blocks(offsets, n_seqs, blocks);
    m3_vk_buffer bq = {0}, bo = {0}, bb = {0};
    m3_vk_sequence s = {0};
    m3_status st;
    if ((st = m3_vk_f32_upload(d, qkv, t * 3 * hidden, &bq, err)) ||
        (st = m3_vk_buffer_new(d, t * hidden * sizeof(float), false, &bo, err)) ||
        (st = m3_vk_buffer_new(d, nb * 16, false, &bb, err)) ||
        (st = m3_vk_buffer_upload(d, &bb, 0, blocks, nb * 16, err)) ||
        (st = m3_vk_sequence_new(d, &s, err)) || (st = m3_vk_sequence_begin(d, &s, 1, err)))
        goto done;
    m3_vk_attention(d, &s, k, &bq, &bo, &bb, (uint32_t)nb, (uint32_t)heads, (uint32_t)hidden,
                    1.0f / sqrtf((float)k->head_dim), NULL, 0);
    if ((st = m3_vk_sequence_submit(d, &s, err)) == M3_STATUS_OK)
        st = m3_vk_buffer_download(d, &bo, 0, out, t * hidden * sizeof(float), err);
done:
    free(blocks);
    m3_vk_sequence_free(d, &s);
    m3_vk_buffer_free(d, &bq);
    m3_vk_buffer_free(d, &bo);
    m3_vk_buffer_free(d, &bb);
    return st;
}

m3_status m3_vk_test_layernorm(m3_vk_device *d, const m3_vk_kernels *k, size_t rows, size_t h,
                               float *x, const float *gamma, const float *beta, float eps,
                               m3_error *err)
{
    m3_vk_buffer bx = {0}, bg = {0}, bb = {0};
    m3_vk_sequence s = {0};
    m3_status st;
    if ((st = m3_vk_f32_upload(d, x, rows * h, &bx, err)) ||
        (st = m3_vk_f32_upload(d, gamma, h, &bg, err)) ||
        (st = m3_vk_f32_upload(d, beta, h, &bb, err)) || (st = m3_vk_sequence_new(d, &s, err)) ||
        (st = m3_vk_sequence_begin(d, &s, 1, err)))
        goto done;
    m3_vk_layernorm(d, &s, k, &bx, (uint32_t)rows, (uint32_t)h, &bg, &bb, eps);
    if ((st = m3_vk_sequence_submit(d, &s, err)) == M3_STATUS_OK)
        st = m3_vk_buffer_download(d, &bx, 0, x, rows * h * sizeof(float), err);
done:
    m3_vk_sequence_free(d, &s);
    m3_vk_buffer_free(d, &bx);
    m3_vk_buffer_free(d, &bg);
    m3_vk_buffer_free(d, &bb);
    return st;
}
