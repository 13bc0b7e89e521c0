// SPDX-License-Identifier: MIT
//
// Multi-vector (ColBERT) storage: the per-chunk value (int8, fp32 or sign bits, optionally pooled ×2
// by Ward clustering of the chunk's token vectors), its validation, dequantisation, and MaxSim
// against a float query (sign bits through per-query lookup tables). Layout and measurements:
// docs/index.md ("Multi-vectors").
//
// Sign bits are asymmetric: the document side keeps sign(R·x) of each unit vector x, the query stays
// float. R is a fixed randomised Hadamard transform (H·D, D a fixed ±1 diagonal; only when dim is a
// power of two, else R = I): it spreads dimensions of large magnitude or constant sign over all
// coordinates, so every bit carries information. A stored row is read as sign(y)·c, y = R·x, with
// c = sqrt(π / (2·dim)): the coordinates of a rotated unit vector are close to N(0, 1/dim), so
// ||y||² / ||y||₁ ≈ c, and (R·q)·sign(y)·c is then the unbiased estimate of q·x that RaBitQ uses.
// Storing that ratio per vector (or the least-squares scale mean |y|) was measured and ranked no
// better than the constant (docs/index.md), so a row is the bits alone: dim / 8 bytes.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index/index-private.h"

enum {
    POOL_WINDOW = 1024,   // tokens clustered together at most (bounds the Gram matrix: 8 MiB)
    GROUP = 16,           // query vectors scored together from one lookup table
    MAX_TABLE_BYTES = 16 << 20,
};

// Four-float vectors (SSE2 / NEON, the baseline of every build); GCC and clang extension.
typedef float f32x4 __attribute__((vector_size(16)));

static inline f32x4 load4(const float *p)
{
    f32x4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

// A dot product with 16 independent partial sums in four SIMD registers.
static float dot16(const float *a, const float *b, size_t d)
{
    f32x4 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 += load4(a + i) * load4(b + i);
        s1 += load4(a + i + 4) * load4(b + i + 4);
        s2 += load4(a + i + 8) * load4(b + i + 8);
        s3 += load4(a + i + 12) * load4(b + i + 12);
    }
    f32x4 t = (s0 + s1) + (s2 + s3);
    float s = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < d; i++) s += a[i] * b[i];
    return s;
}

static void normalize(float *x, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) s += (double)x[i] * x[i];
    if (s <= 0) return;
    float inv = (float)(1.0 / sqrt(s));
    for (size_t i = 0; i < d; i++) x[i] *= inv;
}

// ---- the rotation --------------------------------------------------------------------------------

static bool rotates(size_t d) { return d >= 2 && (d & (d - 1)) == 0; }

float *m3_index_colbert_signs(size_t d)
{
    float *signs = malloc((d ? d : 1) * sizeof *signs);
    if (!signs) return NULL;
    // The fixed sign of dimension i (splitmix64 of i): part of the format, never to change.
    for (size_t i = 0; i < d; i++) {
        uint64_t z = 0x6d33636f6c626572ULL + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        signs[i] = (z & 1) ? -1.0f : 1.0f;
    }
    return signs;
}

// Orthonormal Walsh-Hadamard transform (its own inverse).
static void fwht(float *x, size_t d)
{
    for (size_t h = 1; h < d; h *= 2)
        for (size_t i = 0; i < d; i += 2 * h)
            for (size_t j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    float s = (float)(1.0 / sqrt((double)d));
    for (size_t i = 0; i < d; i++) x[i] *= s;
}

static void rotate(const m3_index *idx, float *x)  // x ← H·D·x
{
    size_t d = idx->dim;
    if (!rotates(d)) return;
    for (size_t i = 0; i < d; i++) x[i] *= idx->colbert_signs[i];
    fwht(x, d);
}

static void unrotate(const m3_index *idx, float *x)  // x ← D·H·x
{
    size_t d = idx->dim;
    if (!rotates(d)) return;
    fwht(x, d);
    for (size_t i = 0; i < d; i++) x[i] *= idx->colbert_signs[i];
}

static float bits_scale(size_t d) { return (float)sqrt(M_PI / (2.0 * (double)d)); }

// ---- token pooling (Ward) ------------------------------------------------------------------------

typedef struct merge_rec {
    uint32_t a, b;   // representative leaves of the two clusters
    uint32_t order;
    double height;
} merge_rec;

static int cmp_merge(const void *x, const void *y)
{
    const merge_rec *a = x, *b = y;
    if (a->height != b->height) return a->height < b->height ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static uint32_t uf_find(uint32_t *parent, uint32_t i)
{
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
}

typedef struct pool_work {
    double *g;          // Gram matrix of the cluster sums, w × w
    uint32_t *size, *chain, *parent, *first;
    unsigned char *active;
    merge_rec *merges;
} pool_work;

static double ward_dist(const pool_work *p, size_t w, size_t a, size_t b)
{
    double na = p->size[a], nb = p->size[b];
    double d2 = p->g[a * w + a] / (na * na) + p->g[b * w + b] / (nb * nb) - 2 * p->g[a * w + b] / (na * nb);
    return na * nb / (na + nb) * (d2 > 0 ? d2 : 0);
}

// Ward's agglomerative clustering of the w unit rows x (NN-chain: exact, O(w²) distance evaluations
// as Ward's linkage is reducible), cut where `want` clusters remain. The pooled rows (renormalised
// means) go to out in the order of their first token; map[t] receives row0 + the row of token t.
static size_t pool_window(const float *x, size_t w, size_t d, size_t want, pool_work *p, float *out, uint16_t *map,
                          size_t row0)
{
    for (size_t i = 0; i < w; i++) {
        for (size_t j = i; j < w; j++) p->g[i * w + j] = p->g[j * w + i] = dot16(x + i * d, x + j * d, d);
        p->size[i] = 1;
        p->active[i] = 1;
        p->parent[i] = (uint32_t)i;
    }
    size_t alive = w, top = 0, nm = 0;
    while (alive > 1) {
        if (top == 0) {
            size_t a = 0;
            while (!p->active[a]) a++;
            p->chain[top++] = (uint32_t)a;
        }
        size_t a = p->chain[top - 1], prev = top >= 2 ? p->chain[top - 2] : SIZE_MAX;
        size_t b = prev;
        double best = prev != SIZE_MAX ? ward_dist(p, w, a, prev) : INFINITY;
        for (size_t c = 0; c < w; c++) {
            if (!p->active[c] || c == a) continue;
            double dist = ward_dist(p, w, a, c);
            if (dist < best) {
                best = dist;
                b = c;
            }
        }
        if (b == SIZE_MAX) {  // only NaN distances (non-finite input): merge with any other cluster
            b = 0;
            while (!p->active[b] || b == a) b++;
            best = 0;
        }
        if (b != prev) {
            p->chain[top++] = (uint32_t)b;
            continue;
        }
        // a and b are reciprocal nearest neighbours: merge b into a.
        top -= 2;
        double gaa = p->g[a * w + a] + 2 * p->g[a * w + b] + p->g[b * w + b];
        for (size_t k = 0; k < w; k++) {
            if (!p->active[k]) continue;
            p->g[a * w + k] += p->g[b * w + k];
            p->g[k * w + a] = p->g[a * w + k];
        }
        p->g[a * w + a] = gaa;
        p->size[a] += p->size[b];
        p->active[b] = 0;
        alive--;
        p->merges[nm] = (merge_rec){(uint32_t)a, (uint32_t)b, (uint32_t)nm, isnan(best) ? INFINITY : best};
        nm++;
    }
    // The hierarchy's lowest w − want merges give the want clusters.
    qsort(p->merges, nm, sizeof *p->merges, cmp_merge);
    for (size_t m = 0; m < nm && m < w - want; m++) {
        uint32_t ra = uf_find(p->parent, p->merges[m].a), rb = uf_find(p->parent, p->merges[m].b);
        if (ra != rb) p->parent[rb] = ra;
    }
    size_t rows = 0;
    for (size_t t = 0; t < w; t++) p->first[t] = UINT32_MAX;
    for (size_t t = 0; t < w; t++) {
        uint32_t r = uf_find(p->parent, (uint32_t)t);
        if (p->first[r] == UINT32_MAX) {
            p->first[r] = (uint32_t)rows;
            memset(out + rows * d, 0, d * sizeof *out);
            rows++;
        }
        size_t row = p->first[r];
        for (size_t i = 0; i < d; i++) out[row * d + i] += x[t * d + i];
        map[t] = (uint16_t)(row0 + row);
    }
    for (size_t r = 0; r < rows; r++) normalize(out + r * d, d);
    return rows;
}

// Pools n rows by `factor` in windows of POOL_WINDOW tokens. Returns the row count, 0 on no memory.
static size_t pool_rows(const float *x, size_t n, size_t d, unsigned factor, float *out, uint16_t *map)
{
    size_t w = n < POOL_WINDOW ? n : POOL_WINDOW;
    pool_work p = {0};
    p.g = malloc(w * w * sizeof *p.g);
    p.size = malloc(w * sizeof *p.size);
    p.chain = malloc(w * sizeof *p.chain);
    p.parent = malloc(w * sizeof *p.parent);
    p.first = malloc(w * sizeof *p.first);
    p.active = malloc(w);
    p.merges = malloc(w * sizeof *p.merges);
    size_t rows = 0;
    if (p.g && p.size && p.chain && p.parent && p.first && p.active && p.merges)
        for (size_t start = 0; start < n; start += POOL_WINDOW) {
            size_t m = n - start < POOL_WINDOW ? n - start : POOL_WINDOW;
            rows += pool_window(x + start * d, m, d, (m + factor - 1) / factor, &p, out + rows * d, map + start, rows);
        }
    free(p.g);
    free(p.size);
    free(p.chain);
    free(p.parent);
    free(p.first);
    free(p.active);
    free(p.merges);
    return rows;
}

// ---- the value -----------------------------------------------------------------------------------

size_t m3_index_colbert_row_bytes(uint32_t kind, size_t d)
{
    switch (kind) {
    case COLBERT_INT8: return d + 4;
    case COLBERT_F32: return 4 * d;
    case COLBERT_BITS: return (d + 7) / 8;
    default: return 0;
    }
}

static void quantize_int8_row(const float *x, size_t d, unsigned char *dst)
{
    float maxabs = 0;
    for (size_t i = 0; i < d; i++) maxabs = fmaxf(maxabs, fabsf(x[i]));
    float scale = maxabs > 0 ? maxabs / 127.0f : 1.0f, inv = 1.0f / scale;
    memcpy(dst, &scale, 4);
    for (size_t i = 0; i < d; i++) {
        long q = lrintf(x[i] * inv);
        dst[4 + i] = (unsigned char)(int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
}

m3_status m3_index_colbert_encode(const m3_index *idx, const float *rows, size_t n, void **value, size_t *len,
                                  m3_error *err)
{
    *value = NULL;
    *len = 0;
    size_t d = idx->dim, row = m3_index_colbert_row_bytes(idx->colbert_kind, d);
    bool pooled = idx->colbert_pool > 1;
    if (n > (pooled ? 65535u : COLBERT_MAX_ROWS))
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "a chunk of %zu token vectors is too long to store", n);
    float *pool = NULL, *tmp = NULL;
    uint16_t *map = NULL;
    size_t nv = n;
    if (pooled && n > 1) {
        if (!(pool = malloc(n * d * sizeof *pool)) || !(map = malloc(n * sizeof *map))) goto nomem;
        if (!(nv = pool_rows(rows, n, d, idx->colbert_pool, pool, map))) goto nomem;
        rows = pool;
    } else if (pooled && n == 1) {
        if (!(map = calloc(1, sizeof *map))) goto nomem;
    }
    size_t head = 8 + (pooled ? (4 + 2 * n + 3) / 4 * 4 : 0);
    unsigned char *v = calloc(1, head + nv * row);
    if (!v || !(tmp = malloc(d * sizeof *tmp))) {
        free(v);
        goto nomem;
    }
    uint32_t hdr[2] = {(uint32_t)nv, idx->colbert_kind | (pooled ? COLBERT_POOLED : 0)};
    memcpy(v, hdr, 8);
    if (pooled) {
        uint32_t t = (uint32_t)n;
        memcpy(v + 8, &t, 4);
        if (n) memcpy(v + 12, map, 2 * n);
    }
    unsigned char *p = v + head;
    for (size_t r = 0; r < nv; r++, p += row) {
        const float *x = rows + r * d;
        switch (idx->colbert_kind) {
        case COLBERT_F32: memcpy(p, x, 4 * d); break;
        case COLBERT_INT8: quantize_int8_row(x, d, p); break;
        case COLBERT_BITS:
            memcpy(tmp, x, d * sizeof *tmp);
            rotate(idx, tmp);
            for (size_t i = 0; i < d; i++)
                if (tmp[i] > 0) p[i / 8] |= (unsigned char)(1u << (i % 8));
            break;
        }
    }
    free(pool);
    free(map);
    free(tmp);
    *value = v;
    *len = head + nv * row;
    return M3_STATUS_OK;
nomem:
    free(pool);
    free(map);
    free(tmp);
    return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
}

bool m3_index_colbert_parse(const m3_index *idx, const MDB_val *v, colbert_view *out)
{
    memset(out, 0, sizeof *out);
    if (v->mv_size < 8) return false;
    const unsigned char *p = v->mv_data;
    uint32_t n, kind;
    memcpy(&n, p, 4);
    memcpy(&kind, p + 4, 4);
    bool pooled = (kind & COLBERT_POOLED) != 0;
    kind &= ~(uint32_t)COLBERT_POOLED;
    // One storage per index: a value of another kind (or pooling) is damage, never mixed in.
    if (kind != idx->colbert_kind || pooled != (idx->colbert_pool > 1) || n > COLBERT_MAX_ROWS) return false;
    size_t row = m3_index_colbert_row_bytes(kind, idx->dim), head = 8;
    if (idx->colbert_kind == COLBERT_NONE || row == 0) return false;  // no value may exist then
    uint32_t t = n;
    if (pooled) {
        if (v->mv_size < 12) return false;
        memcpy(&t, p + 8, 4);
        if (t > 65535 || n > t || (t && !n)) return false;
        head = 8 + (4 + 2 * (size_t)t + 3) / 4 * 4;
    }
    if (v->mv_size < head || (v->mv_size - head) / row != n || (v->mv_size - head) % row) return false;
    if (pooled)
        for (uint32_t i = 0; i < t; i++) {
            uint16_t r;
            memcpy(&r, p + 12 + 2 * (size_t)i, 2);
            if (r >= n) return false;
        }
    out->kind = kind;
    out->n = n;
    out->tokens = t;
    out->map = pooled ? p + 12 : NULL;
    out->rows = p + head;
    out->row_bytes = row;
    return true;
}

uint32_t m3_index_colbert_row_of(const colbert_view *v, uint32_t token)
{
    if (!v->map) return token;
    uint16_t r;
    memcpy(&r, v->map + 2 * (size_t)token, 2);
    return r;
}

void m3_index_colbert_decode(const m3_index *idx, const colbert_view *v, size_t r, float *dst)
{
    size_t d = idx->dim;
    const unsigned char *p = v->rows + r * v->row_bytes;
    switch (v->kind) {
    case COLBERT_F32: memcpy(dst, p, 4 * d); break;
    case COLBERT_INT8: {
        float scale;
        memcpy(&scale, p, 4);
        for (size_t i = 0; i < d; i++) dst[i] = (float)(int8_t)p[4 + i] * scale;
        break;
    }
    case COLBERT_BITS: {
        float c = bits_scale(d);
        for (size_t i = 0; i < d; i++) dst[i] = (p[i / 8] >> (i % 8) & 1) ? c : -c;
        unrotate(idx, dst);
        break;
    }
    }
}

// ---- MaxSim against a float query ----------------------------------------------------------------

struct colbert_scorer {
    const m3_index *idx;
    size_t nq, d, groups;
    const float *q;       // the query's vectors (not owned)
    float *table;         // bits: per group, [nibble][16 values][GROUP lanes], 64-byte aligned
    float *qsum;          // bits: Σ of each rotated query vector, groups × GROUP
    float *rows;          // int8 / fp32: the candidate's rows as floats
    size_t rows_cap;
    float *acc;           // per query vector: best score so far
    uint32_t *arg;
};

m3_status m3_index_colbert_scorer_new(const m3_index *idx, const m3_embedding *q, colbert_scorer **out, m3_error *err)
{
    *out = NULL;
    colbert_scorer *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->idx = idx;
    s->nq = q->n_colbert;
    s->d = idx->dim;
    s->q = q->colbert;
    s->groups = (s->nq + GROUP - 1) / GROUP;
    if (!(s->acc = malloc((s->nq + 1) * sizeof *s->acc)) || !(s->arg = malloc((s->nq + 1) * sizeof *s->arg))) goto nomem;
    size_t cb = (s->d + 7) / 8, nib = 2 * cb;
    size_t table_bytes = s->groups * nib * 16 * GROUP * sizeof(float);
    if (idx->colbert_kind == COLBERT_BITS && table_bytes <= MAX_TABLE_BYTES) {
        // table[g][k][v][l] = Σ over the set bits b of v of query (g·GROUP + l)'s rotated dimension 4k + b.
        s->table = aligned_alloc(64, table_bytes ? table_bytes : 64);
        s->qsum = calloc(s->groups * GROUP, sizeof *s->qsum);
        float *qr = calloc(8 * cb, sizeof *qr);
        if (!s->table || !s->qsum || !qr) {
            free(qr);
            goto nomem;
        }
        for (size_t g = 0; g < s->groups; g++) {
            float *tg = s->table + g * nib * 16 * GROUP;
            memset(tg, 0, nib * 16 * GROUP * sizeof *tg);
            for (size_t l = 0; l < GROUP && g * GROUP + l < s->nq; l++) {
                memcpy(qr, s->q + (g * GROUP + l) * s->d, s->d * sizeof *qr);
                rotate(idx, qr);
                for (size_t i = 0; i < s->d; i++) s->qsum[g * GROUP + l] += qr[i];
                for (size_t k = 0; k < nib; k++)
                    for (unsigned v = 1; v < 16; v++) {
                        unsigned low = (unsigned)__builtin_ctz(v);
                        tg[(k * 16 + v) * GROUP + l] = tg[(k * 16 + (v & (v - 1))) * GROUP + l] + qr[4 * k + low];
                    }
            }
        }
        free(qr);
    }
    *out = s;
    return M3_STATUS_OK;
nomem:
    m3_index_colbert_scorer_free(s);
    return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
}

void m3_index_colbert_scorer_free(colbert_scorer *s)
{
    if (!s) return;
    free(s->table);
    free(s->qsum);
    free(s->rows);
    free(s->acc);
    free(s->arg);
    free(s);
}

// Sign bits: 2·Σ_{bits set} q − Σ q, read from the group's table a nibble at a time: per byte of
// the row, two table entries of GROUP floats are added into eight independent accumulators.
static void score_bits(colbert_scorer *s, const colbert_view *v)
{
    size_t cb = v->row_bytes, nib = 2 * cb;
    float c = bits_scale(s->d);
    for (size_t g = 0; g < s->groups; g++) {
        const f32x4 *tg = (const f32x4 *)(s->table + g * nib * 16 * GROUP);  // 64-byte aligned
        size_t lanes = s->nq - g * GROUP < GROUP ? s->nq - g * GROUP : GROUP;
        for (size_t r = 0; r < v->n; r++) {
            const unsigned char *code = v->rows + r * cb;
            f32x4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
            for (size_t b = 0; b < cb; b++) {
                const f32x4 *lo = tg + ((2 * b) * 16 + (code[b] & 15)) * (GROUP / 4);
                const f32x4 *hi = tg + ((2 * b + 1) * 16 + (code[b] >> 4)) * (GROUP / 4);
                a0 += lo[0];
                a1 += lo[1];
                a2 += lo[2];
                a3 += lo[3];
                b0 += hi[0];
                b1 += hi[1];
                b2 += hi[2];
                b3 += hi[3];
            }
            float acc[GROUP];
            f32x4 sum[4] = {a0 + b0, a1 + b1, a2 + b2, a3 + b3};
            memcpy(acc, sum, sizeof acc);
            for (size_t l = 0; l < lanes; l++) {
                float sc = c * (2 * acc[l] - s->qsum[g * GROUP + l]);
                size_t qi = g * GROUP + l;
                if (sc > s->acc[qi]) {
                    s->acc[qi] = sc;
                    s->arg[qi] = (uint32_t)r;
                }
            }
        }
    }
}

bool m3_index_colbert_score(colbert_scorer *s, const colbert_view *v, float *score, uint32_t *best_row,
                            float *best_val)
{
    *score = 0;
    if (!s->nq || !v->n) return true;
    for (size_t i = 0; i < s->nq; i++) {
        s->acc[i] = -INFINITY;
        s->arg[i] = 0;
    }
    if (v->kind == COLBERT_BITS && s->table) {
        score_bits(s, v);
    } else {
        size_t d = s->d;
        if (s->rows_cap < v->n) {
            float *nr = realloc(s->rows, (size_t)v->n * d * sizeof *nr);
            if (!nr) return false;
            s->rows = nr;
            s->rows_cap = v->n;
        }
        for (size_t r = 0; r < v->n; r++) m3_index_colbert_decode(s->idx, v, r, s->rows + r * d);
        for (size_t i = 0; i < s->nq; i++)
            for (size_t r = 0; r < v->n; r++) {
                float sc = dot16(s->q + i * d, s->rows + r * d, d);
                if (sc > s->acc[i]) {
                    s->acc[i] = sc;
                    s->arg[i] = (uint32_t)r;
                }
            }
    }
    double total = 0;
    for (size_t i = 0; i < s->nq; i++) {
        total += s->acc[i];
        if (best_row) best_row[i] = s->arg[i];
        if (best_val) best_val[i] = s->acc[i];
    }
    *score = (float)(total / (double)s->nq);
    return true;
}
