// SPDX-License-Identifier: MIT
//
// Hybrid search: dense candidates (popcount scan of sign codes, int8 rescore) ∪ sparse candidates
// (term-at-a-time over the postings with MaxScore's early termination), then the three exact scores
// from the stored vectors per candidate (ColBERT for the best `rerank` by dense+sparse), the
// weighted sum, one best chunk per file, and a snippet where the query's vectors align best.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index/index-private.h"

enum { RERANK = 100, SNIPPET_PIECE = 48 };

m3_search_options m3_search_options_default(void)
{
    return (m3_search_options){
        .weights = {0.4f, 0.2f, 0.4f},
        .limit = 10,
        .dense_candidates = 200,
        .sparse_candidates = 200,
        .group_by_file = true,
        .exclude_file_id = -1,
        .snippet_bytes = 240,
    };
}

void m3_search_hits_free(m3_search_hit *hits, size_t n)
{
    if (!hits) return;
    for (size_t i = 0; i < n; i++) {
        free(hits[i].path);
        free(hits[i].snippet);
    }
    free(hits);
}

// ---- a small top-k (min-heap on score) ---------------------------------------------------------

typedef struct scored {
    uint32_t id;
    float score;
} scored;

typedef struct topk {
    scored *v;
    size_t n, k;
} topk;

static void heap_down(scored *v, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && v[l].score < v[m].score) m = l;
        if (r < n && v[r].score < v[m].score) m = r;
        if (m == i) return;
        scored t = v[i];
        v[i] = v[m];
        v[m] = t;
        i = m;
    }
}

static void topk_push(topk *t, uint32_t id, float score)
{
    if (t->k == 0) return;
    if (t->n < t->k) {
        size_t i = t->n++;
        t->v[i] = (scored){id, score};
        while (i && t->v[(i - 1) / 2].score > t->v[i].score) {
            scored x = t->v[i];
            t->v[i] = t->v[(i - 1) / 2];
            t->v[(i - 1) / 2] = x;
            i = (i - 1) / 2;
        }
    } else if (score > t->v[0].score) {
        t->v[0] = (scored){id, score};
        heap_down(t->v, t->n, 0);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

// ---- candidate set -----------------------------------------------------------------------------

typedef struct idset {
    uint32_t *v;
    size_t n, cap;
} idset;

static bool idset_add(idset *s, uint32_t id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = id;
    return true;
}

static void idset_unique(idset *s)
{
    if (!s->n) return;
    qsort(s->v, s->n, sizeof *s->v, cmp_u32);
    size_t m = 1;
    for (size_t i = 1; i < s->n; i++)
        if (s->v[i] != s->v[m - 1]) s->v[m++] = s->v[i];
    s->n = m;
}

// ---- dense candidates ----------------------------------------------------------------------------

static m3_status dense_candidates(m3_index *idx, MDB_txn *txn, const float *q, size_t want, idset *out,
                                  m3_error *err)
{
    size_t cb = idx->code_bytes, d = idx->dim;
    unsigned char *qcode = calloc(1, cb + 8);
    scored *heap = malloc(want * 8 * sizeof *heap);
    scored *fine = malloc(want * sizeof *fine);
    m3_status s = M3_STATUS_OK;
    if (!qcode || !heap || !fine) {
        s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < d; i++)
        if (q[i] > 0) qcode[i / 8] |= (unsigned char)(1u << (i % 8));
    // Stage 1: Hamming similarity over the sign codes, keeping 8 × want.
    topk coarse = {heap, 0, want * 8};
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, idx->bits, &cur);
    if (rc) {
        s = m3_index_mdb_error(idx, rc, "bits", err);
        goto done;
    }
    size_t block_bytes = BITS_LIVE_BYTES + (size_t)BITS_BLOCK * cb;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 4 || v.mv_size != block_bytes) {
            s = m3_error_set(err, M3_STATUS_FORMAT, 0, "index %s is damaged (sign-code block); run 'm3 index --rebuild'",
                             idx->dir);
            break;
        }
        uint32_t base = get_be32(k.mv_data) * BITS_BLOCK;
        const unsigned char *live = v.mv_data, *codes = live + BITS_LIVE_BYTES;
        for (size_t slot = 0; slot < BITS_BLOCK; slot++) {
            if (!(live[slot / 8] >> (slot % 8) & 1)) continue;
            const unsigned char *c = codes + slot * cb;
            int ham = 0;
            size_t b = 0;
            for (; b + 8 <= cb; b += 8) {
                uint64_t x, y;
                memcpy(&x, c + b, 8);
                memcpy(&y, qcode + b, 8);
                ham += __builtin_popcountll(x ^ y);
            }
            for (; b < cb; b++) ham += __builtin_popcount((unsigned)(c[b] ^ qcode[b]));
            topk_push(&coarse, base + (uint32_t)slot, -(float)ham);
        }
    }
    mdb_cursor_close(cur);
    if (s != M3_STATUS_OK) goto done;
    // Stage 2: int8 rescoring, zero-copy from the map.
    topk top = {fine, 0, want};
    for (size_t i = 0; i < coarse.n; i++) {
        unsigned char kb[4];
        key_be32(&k, kb, coarse.v[i].id);
        if ((rc = mdb_get(txn, idx->dense, &k, &v)) || v.mv_size != idx->dense_bytes) {
            s = rc && rc != MDB_NOTFOUND ? m3_index_mdb_error(idx, rc, "dense", err)
                                         : m3_error_set(err, M3_STATUS_FORMAT, 0,
                                                        "index %s is damaged (dense vector %u); run 'm3 index --rebuild'",
                                                        idx->dir, coarse.v[i].id);
            goto done;
        }
        const signed char *p = v.mv_data;
        float scale, dot = 0;
        memcpy(&scale, p + d, 4);
        for (size_t j = 0; j < d; j++) dot += q[j] * (float)p[j];
        topk_push(&top, coarse.v[i].id, dot * scale);
    }
    for (size_t i = 0; i < top.n; i++)
        if (!idset_add(out, top.v[i].id)) {
            s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
            break;
        }
done:
    free(qcode);
    free(heap);
    free(fine);
    return s;
}

// ---- sparse candidates -------------------------------------------------------------------------

typedef struct accum {
    uint32_t *keys;  // UINT32_MAX = empty
    float *vals;
    size_t cap, n;
} accum;

static bool accum_init(accum *a, size_t cap)
{
    a->cap = cap;
    a->n = 0;
    a->keys = malloc(cap * sizeof *a->keys);
    a->vals = calloc(cap, sizeof *a->vals);
    if (!a->keys || !a->vals) return false;
    memset(a->keys, 0xff, cap * sizeof *a->keys);
    return true;
}

static float *accum_find(accum *a, uint32_t id, bool insert)
{
    size_t m = a->cap - 1, i = (id * 2654435761u) & m;
    while (a->keys[i] != UINT32_MAX) {
        if (a->keys[i] == id) return &a->vals[i];
        i = (i + 1) & m;
    }
    if (!insert) return NULL;
    if (a->n + 1 > a->cap / 2) {
        accum b;
        if (!accum_init(&b, a->cap * 2)) {
            free(b.keys);
            free(b.vals);
            return NULL;
        }
        for (size_t j = 0; j < a->cap; j++)
            if (a->keys[j] != UINT32_MAX) *accum_find(&b, a->keys[j], true) = a->vals[j];
        free(a->keys);
        free(a->vals);
        *a = b;
        return accum_find(a, id, true);
    }
    a->keys[i] = id;
    a->n++;
    return &a->vals[i];
}

typedef struct qterm {
    uint32_t id;
    float w, ub;  // query weight, upper bound w·max over the term's blocks
} qterm;

static int cmp_qterm_ub(const void *a, const void *b)
{
    const qterm *x = a, *y = b;
    return x->ub > y->ub ? -1 : x->ub < y->ub;
}

// K-th best accumulated score (a copy is partially sorted).
static float kth_best(const accum *a, size_t k, float *tmp)
{
    size_t n = 0;
    for (size_t i = 0; i < a->cap; i++)
        if (a->keys[i] != UINT32_MAX) tmp[n++] = a->vals[i];
    if (n < k) return 0;
    // Selection by a min-heap of size k.
    scored *h = (scored *)malloc(k * sizeof *h);
    if (!h) return 0;
    topk t = {h, 0, k};
    for (size_t i = 0; i < n; i++) topk_push(&t, 0, tmp[i]);
    float r = t.v[0].score;
    free(h);
    return r;
}

static m3_status sparse_candidates(m3_index *idx, MDB_txn *txn, const m3_embedding *q, size_t want, idset *out,
                                   m3_error *err)
{
    m3_status s = M3_STATUS_OK;
    qterm *terms = malloc((q->n_sparse + 1) * sizeof *terms);
    accum acc = {0};
    float *tmp = NULL;
    MDB_cursor *cur = NULL;
    if (!terms || !accum_init(&acc, 1024)) {
        s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    int rc = mdb_cursor_open(txn, idx->post, &cur);
    if (rc) {
        s = m3_index_mdb_error(idx, rc, "sparse", err);
        goto done;
    }
    // Upper bounds from the block maxima (headers only).
    size_t nt = 0;
    for (size_t i = 0; i < q->n_sparse; i++) {
        unsigned char kb[8];
        put_be32(kb, (uint32_t)q->sparse[i].id);
        put_be32(kb + 4, 0);
        MDB_val k = {8, kb}, v;
        float max = 0;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 8 || get_be32(k.mv_data) != (uint32_t)q->sparse[i].id) break;
            posting_block b;
            if (!posting_block_parse(&v, &b)) {
                s = m3_error_set(err, M3_STATUS_FORMAT, 0, "index %s is damaged (postings); run 'm3 index --rebuild'",
                                 idx->dir);
                goto done;
            }
            max = fmaxf(max, b.max);
        }
        if (max > 0) terms[nt++] = (qterm){(uint32_t)q->sparse[i].id, q->sparse[i].weight, q->sparse[i].weight * max};
    }
    qsort(terms, nt, sizeof *terms, cmp_qterm_ub);
    float rest = 0;
    for (size_t i = 0; i < nt; i++) rest += terms[i].ub;
    bool adding = true;
    for (size_t t = 0; t < nt; t++) {
        // MaxScore: once the terms left cannot lift a new document above the k-th best, only the
        // documents already found are updated.
        if (adding && acc.n >= want) {
            float *nt_tmp = realloc(tmp, acc.cap * sizeof *tmp);
            if (!nt_tmp) {
                s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
                goto done;
            }
            tmp = nt_tmp;
            if (rest < kth_best(&acc, want, tmp)) adding = false;
        }
        unsigned char kb[8];
        put_be32(kb, terms[t].id);
        put_be32(kb + 4, 0);
        MDB_val k = {8, kb}, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 8 || get_be32(k.mv_data) != terms[t].id) break;
            posting_block b;
            if (!posting_block_parse(&v, &b)) {
                s = m3_error_set(err, M3_STATUS_FORMAT, 0, "index %s is damaged (postings); run 'm3 index --rebuild'",
                                 idx->dir);
                goto done;
            }
            float f = terms[t].w * b.max / 255.0f;
            for (size_t i = 0; i < b.count; i++) {
                float *a = accum_find(&acc, posting_id(&b, i), adding);
                if (a) *a += f * b.q[i];
                else if (adding) {
                    s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
                    goto done;
                }
            }
        }
        rest -= terms[t].ub;
    }
    {
        scored *h = malloc((want + 1) * sizeof *h);
        if (!h) {
            s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
            goto done;
        }
        topk top = {h, 0, want};
        for (size_t i = 0; i < acc.cap; i++)
            if (acc.keys[i] != UINT32_MAX) topk_push(&top, acc.keys[i], acc.vals[i]);
        for (size_t i = 0; i < top.n; i++)
            if (!idset_add(out, top.v[i].id)) s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        free(h);
    }
done:
    if (cur) mdb_cursor_close(cur);
    free(terms);
    free(acc.keys);
    free(acc.vals);
    free(tmp);
    return s;
}

// ---- exact scores --------------------------------------------------------------------------------

static double dot(const float *a, const float *b, size_t d)
{
    float s = 0;
    for (size_t i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

// MaxSim; when best_row is non-NULL it receives, per query vector, the best passage row.
static float colbert_score(const m3_embedding *q, const m3_embedding *p, size_t *best_row, float *best_val)
{
    if (!q->n_colbert || !p->n_colbert) return 0;
    size_t d = q->dim;
    double total = 0;
    for (size_t i = 0; i < q->n_colbert; i++) {
        double best = -INFINITY;
        size_t arg = 0;
        for (size_t j = 0; j < p->n_colbert; j++) {
            double s = dot(q->colbert + i * d, p->colbert + j * d, d);
            if (s > best) {
                best = s;
                arg = j;
            }
        }
        if (best_row) best_row[i] = arg;
        if (best_val) best_val[i] = (float)best;
        total += best;
    }
    return (float)(total / (double)q->n_colbert);
}

static float sparse_score(const m3_embedding *q, const m3_embedding *p)
{
    double s = 0;
    size_t i = 0, j = 0;
    while (i < q->n_sparse && j < p->n_sparse) {
        if (q->sparse[i].id < p->sparse[j].id) i++;
        else if (q->sparse[i].id > p->sparse[j].id) j++;
        else s += (double)q->sparse[i++].weight * p->sparse[j++].weight;
    }
    return (float)s;
}

typedef struct cand {
    uint32_t id, file_id;
    float dense, sparse, colbert, partial, proxy, score;
} cand;

static int cmp_cand_partial(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->proxy != y->proxy) return x->proxy > y->proxy ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_cand_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

// ---- snippets ------------------------------------------------------------------------------------

typedef struct word {
    size_t start, end;       // bytes in the chunk text
    size_t piece0, pieces;   // token positions
    float weight;
} word;

static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Splits text into whitespace-separated words, long runs (scripts without spaces) cut into pieces
// of at most SNIPPET_PIECE bytes at character boundaries.
static size_t split_words(const char *text, size_t len, word **out)
{
    size_t cap = 64, n = 0;
    word *w = malloc(cap * sizeof *w);
    if (!w) return 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space((unsigned char)text[i])) i++;
        if (i >= len) break;
        size_t start = i;
        while (i < len && !is_space((unsigned char)text[i]) && i - start < SNIPPET_PIECE) i++;
        while (i < len && ((unsigned char)text[i] & 0xc0) == 0x80) i++;  // finish the character
        if (n == cap) {
            word *nw = realloc(w, 2 * cap * sizeof *w);
            if (!nw) break;
            w = nw;
            cap *= 2;
        }
        w[n++] = (word){start, i, 0, 0, 0};
    }
    *out = w;
    return n;
}

static char *make_snippet(const char *text, size_t len, const m3_embedding *q, const m3_embedding *p,
                          const m3_tokenizer *tok, size_t max_bytes)
{
    word *words = NULL;
    size_t nw = split_words(text, len, &words);
    size_t best_start = 0, best_end = nw;
    if (tok && nw && q->n_colbert && p->n_colbert) {
        size_t *rows = malloc(q->n_colbert * sizeof *rows);
        float *vals = malloc(q->n_colbert * sizeof *vals);
        float *row_weight = calloc(p->n_colbert, sizeof *row_weight);
        if (rows && vals && row_weight) {
            colbert_score(q, p, rows, vals);
            for (size_t i = 0; i < q->n_colbert; i++) row_weight[rows[i]] += vals[i] > 0 ? vals[i] : 0;
            // Token positions of each word (the pieces of a word do not depend on its neighbours).
            size_t pos = 0;
            for (size_t i = 0; i < nw; i++) {
                int32_t *ids = NULL;
                size_t n = 0;
                if (m3_tokenizer_encode(tok, text + words[i].start, words[i].end - words[i].start, 1024, &ids,
                                        &n, NULL) == M3_STATUS_OK && n >= 2)
                    n -= 2;
                else
                    n = 1;
                free(ids);
                words[i].piece0 = pos;
                words[i].pieces = n;
                for (size_t j = pos; j < pos + n && j < p->n_colbert; j++) words[i].weight += row_weight[j];
                pos += n;
            }
            // The window of words within max_bytes with the largest aligned weight.
            float best = -1, cur = 0;
            size_t lo = 0;
            for (size_t hi = 0; hi < nw; hi++) {
                cur += words[hi].weight;
                while (words[hi].end - words[lo].start > max_bytes && lo < hi) cur -= words[lo++].weight;
                if (cur > best) {
                    best = cur;
                    best_start = lo;
                    best_end = hi + 1;
                }
            }
        }
        free(rows);
        free(vals);
        free(row_weight);
    }
    // Without alignment: the head of the chunk.
    if (best_end > best_start && best_end == nw && best_start == 0) {
        best_end = 0;
        while (best_end < nw && words[best_end].end - words[0].start <= max_bytes) best_end++;
        if (best_end == 0 && nw) best_end = 1;
    }
    // Fill the rest of the budget with context on both sides, right first.
    for (bool grew = true; grew && best_end > best_start;) {
        grew = false;
        if (best_end < nw && words[best_end].end - words[best_start].start <= max_bytes) best_end++, grew = true;
        if (best_start > 0 && words[best_end - 1].end - words[best_start - 1].start <= max_bytes) best_start--, grew = true;
    }
    size_t cap = max_bytes + 3 * SNIPPET_PIECE + 16, n = 0;
    char *out = malloc(cap);
    if (!out) {
        free(words);
        return NULL;
    }
    if (best_start > 0) n += (size_t)snprintf(out + n, cap - n, "…");
    for (size_t i = best_start; i < best_end && n + (words[i].end - words[i].start) + 8 < cap; i++) {
        if (i > best_start) out[n++] = ' ';
        for (size_t b = words[i].start; b < words[i].end; b++) {
            unsigned char c = (unsigned char)text[b];
            out[n++] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
        }
    }
    if (best_end < nw) n += (size_t)snprintf(out + n, cap - n, "…");
    out[n] = 0;
    free(words);
    return out;
}

// ---- the search --------------------------------------------------------------------------------

static m3_status collect_all(m3_index *idx, MDB_txn *txn, idset *ids, m3_error *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, idx->chunks, &cur);
    if (rc) return m3_index_mdb_error(idx, rc, "chunks", err);
    MDB_val k, v;
    m3_status s = M3_STATUS_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 4) {
            s = m3_error_set(err, M3_STATUS_FORMAT, 0, "index %s is damaged (chunk key)", idx->dir);
            break;
        }
        if (!idset_add(ids, get_be32(k.mv_data))) {
            s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
            break;
        }
    }
    mdb_cursor_close(cur);
    return s;
}

static m3_status search_txn(m3_index *idx, MDB_txn *txn, const m3_embedding *q, const m3_search_options *o,
                            m3_search_hit **hits, size_t *n_hits, m3_error *err)
{
    const float wd = o->weights[0], ws = o->weights[1], wc = o->weights[2];
    const float wsum = wd + ws + wc;
    if (!(wd >= 0 && ws >= 0 && wc >= 0 && wsum > 0))
        return m3_error_set(err, M3_STATUS_INVALID, 0, "search weights must be non-negative with a positive sum");
    if (q->dim != idx->dim || !q->dense)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "query of dimension %zu for an index of dimension %zu", q->dim,
                            idx->dim);
    idset ids = {0};
    cand *cands = NULL;
    m3_status s = M3_STATUS_OK;
    if (o->exhaustive) {
        s = collect_all(idx, txn, &ids, err);
    } else {
        if (wd > 0 || wc > 0) s = dense_candidates(idx, txn, q->dense, o->dense_candidates ? o->dense_candidates : 1, &ids, err);
        if (s == M3_STATUS_OK && (ws > 0 || wc > 0) && q->n_sparse)
            s = sparse_candidates(idx, txn, q, o->sparse_candidates ? o->sparse_candidates : 1, &ids, err);
    }
    if (s != M3_STATUS_OK) goto done;
    idset_unique(&ids);
    if (ids.n && !(cands = calloc(ids.n, sizeof *cands))) {
        s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    // Dense and sparse for every candidate, ColBERT for the best RERANK of them.
    size_t nc = 0;
    for (size_t i = 0; i < ids.n; i++) {
        chunk_rec r;
        if ((s = m3_index_read_chunk(idx, txn, ids.v[i], &r, err)) != M3_STATUS_OK) goto done;
        if (o->exclude_file_id >= 0 && r.file_id == (uint32_t)o->exclude_file_id) continue;
        m3_embedding e;
        if ((s = m3_index_read_embedding(idx, txn, ids.v[i], M3_OUTPUT_DENSE | M3_OUTPUT_SPARSE, &e, err)) !=
            M3_STATUS_OK)
            goto done;
        cand *c = &cands[nc++];
        c->id = ids.v[i];
        c->file_id = r.file_id;
        c->dense = (float)dot(q->dense, e.dense, idx->dim);
        c->sparse = sparse_score(q, &e);
        c->partial = wd * c->dense + ws * c->sparse;
        c->proxy = c->partial + wc * c->dense;  // dense stands in for ColBERT when choosing what to re-rank
        m3_embedding_clear(&e);
    }
    size_t rerank = nc;
    // ColBERT alone: no cheaper score to pre-rank by, so every candidate is re-ranked.
    if (!o->exhaustive && wc > 0 && (wd > 0 || ws > 0)) {
        if (nc) qsort(cands, nc, sizeof *cands, cmp_cand_partial);
        size_t want = o->rerank ? o->rerank : o->limit * 4 > RERANK ? o->limit * 4 : RERANK;
        if (rerank > want) rerank = want;
    }
    for (size_t i = 0; i < rerank; i++) {
        m3_embedding e;
        if ((s = m3_index_read_embedding(idx, txn, cands[i].id, M3_OUTPUT_COLBERT, &e, err)) != M3_STATUS_OK) goto done;
        cands[i].colbert = colbert_score(q, &e, NULL, NULL);
        cands[i].score = (cands[i].partial + wc * cands[i].colbert) / wsum;
        m3_embedding_clear(&e);
    }
    nc = rerank;
    if (nc) qsort(cands, nc, sizeof *cands, cmp_cand_score);
    // One best chunk per file.
    size_t limit = o->limit ? o->limit : 10, nh = 0;
    m3_search_hit *out = calloc(limit, sizeof *out);
    if (!out) {
        s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nc && nh < limit; i++) {
        bool seen = false;
        if (o->group_by_file)
            for (size_t j = 0; j < i && !seen; j++) seen = cands[j].file_id == cands[i].file_id;
        if (seen) continue;
        m3_search_hit *h = &out[nh];
        chunk_rec r;
        if ((s = m3_index_read_chunk(idx, txn, cands[i].id, &r, err)) != M3_STATUS_OK ||
            (s = m3_index_read_path(idx, txn, r.file_id, &h->path, err)) != M3_STATUS_OK) {
            m3_search_hits_free(out, nh + 1);
            goto done;
        }
        nh++;
        h->chunk_id = cands[i].id;
        h->start = r.start;
        h->end = r.end;
        h->score = cands[i].score;
        h->dense = cands[i].dense;
        h->sparse = cands[i].sparse;
        h->colbert = cands[i].colbert;
        char *text;
        size_t len;
        if ((s = m3_index_read_text(idx, txn, cands[i].id, &text, &len, err)) != M3_STATUS_OK) {
            m3_search_hits_free(out, nh);
            goto done;
        }
        m3_embedding e = {0};
        if (o->tokenizer) m3_index_read_embedding(idx, txn, cands[i].id, M3_OUTPUT_COLBERT, &e, NULL);
        h->snippet = make_snippet(text, len, q, &e, o->tokenizer, o->snippet_bytes ? o->snippet_bytes : 240);
        m3_embedding_clear(&e);
        free(text);
    }
    *hits = out;
    *n_hits = nh;
done:
    free(ids.v);
    free(cands);
    return s;
}

m3_status m3_index_search(m3_index *idx, const m3_embedding *query, const m3_search_options *opt,
                          m3_search_hit **hits, size_t *n_hits, m3_error *err)
{
    *hits = NULL;
    *n_hits = 0;
    m3_search_options o = opt ? *opt : m3_search_options_default();
    MDB_txn *txn;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    m3_status s = search_txn(idx, txn, query, &o, hits, n_hits, err);
    mdb_txn_abort(txn);
    return s;
}

static int cmp_hit_score(const void *a, const void *b)
{
    const m3_search_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return strcmp(x->path, y->path);
}

// Searches with each query and keeps the best hit per file (similar files).
static m3_status similar_txn(m3_index *idx, MDB_txn *txn, const m3_embedding *queries, size_t n_queries,
                             const m3_search_options *opt, m3_search_hit **hits, size_t *n_hits, m3_error *err)
{
    m3_search_options o = *opt;
    o.group_by_file = true;
    o.tokenizer = NULL;
    m3_search_hit *all = NULL;
    size_t n_all = 0;
    m3_status s = M3_STATUS_OK;
    for (size_t i = 0; i < n_queries; i++) {
        m3_search_hit *h;
        size_t nh;
        if ((s = search_txn(idx, txn, &queries[i], &o, &h, &nh, err)) != M3_STATUS_OK) goto done;
        for (size_t j = 0; j < nh; j++) {
            size_t k = 0;
            while (k < n_all && strcmp(all[k].path, h[j].path)) k++;
            if (k < n_all) {
                if (h[j].score > all[k].score) {
                    free(all[k].path);
                    free(all[k].snippet);
                    all[k] = h[j];
                } else {
                    free(h[j].path);
                    free(h[j].snippet);
                }
                continue;
            }
            m3_search_hit *na = realloc(all, (n_all + 1) * sizeof *all);
            if (!na) {
                m3_search_hits_free(h + j, nh - j);
                s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
                goto done;
            }
            all = na;
            all[n_all++] = h[j];
        }
        free(h);
    }
    if (n_all) qsort(all, n_all, sizeof *all, cmp_hit_score);
    size_t limit = o.limit ? o.limit : 10;
    for (size_t j = limit; j < n_all; j++) {
        free(all[j].path);
        free(all[j].snippet);
    }
    if (n_all > limit) n_all = limit;
    *hits = all;
    *n_hits = n_all;
    all = NULL;
    n_all = 0;
done:
    m3_search_hits_free(all, n_all);
    return s;
}

m3_status m3_index_similar(m3_index *idx, const char *path, const m3_search_options *opt, m3_search_hit **hits,
                           size_t *n_hits, m3_error *err)
{
    *hits = NULL;
    *n_hits = 0;
    m3_search_options o = opt ? *opt : m3_search_options_default();
    MDB_txn *txn;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    m3_index_file f;
    m3_embedding q[M3_SIMILAR_QUERY_CHUNKS] = {0};
    uint32_t n = 0;
    m3_status s = m3_index_read_file(idx, txn, path, &f, err);
    if (s != M3_STATUS_OK) goto done;
    o.exclude_file_id = f.file_id;
    for (; n < f.n_chunks && n < M3_SIMILAR_QUERY_CHUNKS; n++)
        if ((s = m3_index_read_embedding(idx, txn, f.first_chunk + n, M3_OUTPUT_ALL, &q[n], err)) != M3_STATUS_OK)
            goto done;
    s = similar_txn(idx, txn, q, n, &o, hits, n_hits, err);
done:
    for (uint32_t i = 0; i < n; i++) m3_embedding_clear(&q[i]);
    mdb_txn_abort(txn);
    return s;
}

m3_status m3_index_similar_to(m3_index *idx, const m3_embedding *chunks, size_t n, const m3_search_options *opt,
                              m3_search_hit **hits, size_t *n_hits, m3_error *err)
{
    *hits = NULL;
    *n_hits = 0;
    m3_search_options o = opt ? *opt : m3_search_options_default();
    MDB_txn *txn;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    m3_status s = similar_txn(idx, txn, chunks, n < M3_SIMILAR_QUERY_CHUNKS ? n : M3_SIMILAR_QUERY_CHUNKS, &o,
                              hits, n_hits, err);
    mdb_txn_abort(txn);
    return s;
}
