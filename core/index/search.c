// SPDX-License-Identifier: MIT
//
// Hybrid search: dense candidates (popcount scan of sign codes, int8 rescore) ∪ sparse candidates
// (term-at-a-time over the postings with MaxScore's early termination), then the three exact scores
// from the stored vectors per candidate (ColBERT MaxSim, colbert.c, for the best `rerank` by
// dense+sparse; none without multi-vectors), the weighted sum, one best chunk per file, and a
// snippet where the query's vectors and terms align best.
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "index/index-private.h"
#include "index/scan.h"

enum { RERANK = 100, SNIPPET_PIECE = 48 };
// A snippet word is highlighted when it carries at least this part of the best word's weight.
#define SNIPPET_HIGHLIGHT 0.4f

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

static void hit_clear(m3_search_hit *h)
{
    free(h->path);
    free(h->snippet);
    free(h->highlights);
    free(h->location);
}

void m3_search_hits_free(m3_search_hit *hits, size_t n)
{
    if (!hits) return;
    for (size_t i = 0; i < n; i++) hit_clear(&hits[i]);
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

// Stage 1 reads every sign-code block once, zero-copy, and keeps the best 8 × want by Hamming
// distance. Helper threads (one per CPU but one) take runs of SCAN_STEP blocks from a shared
// counter while the calling thread finds the sparse candidates, then the calling thread joins in:
// the scan, bound by memory bandwidth, overlaps the postings' pointer chasing. Each participant
// keeps its best by (Hamming distance, chunk id), a total order, so the merged set does not
// depend on the threads or their timing: hits under the current bar are appended, and cut back
// to the best k through a histogram of the distances whenever they pass 2k. Stage 2 keeps the
// best 4 × want of those by the float query against their signs (asymmetric estimate); stage 3
// rescores these with the int8 vectors and keeps the best `want`. (At 1 M chunks, keeping 2 × want
// at stage 2 lost recall; 4 × did not: docs/index.md.)
enum { SCAN_STEP = 8, SCAN_MIN_BLOCKS = 32, SCAN_MAX_THREADS = 8, COARSE = 8, ASYM = 4 };

typedef struct code_block {
    uint32_t base;
    const unsigned char *live, *codes;  // in the map: valid during the read transaction
} code_block;

typedef struct hamming_hit {
    uint32_t ham, id;
} hamming_hit;

typedef struct scan_part {
    struct dense_scan *scan;
    hamming_hit *buf;   // the hits kept, in id order: at most 2k + BITS_BLOCK, cut to k when over 2k
    uint32_t *hist;     // 8·cb + 1 counts of distances, for the cuts
    size_t n;
    uint32_t worst;     // hits at this distance or more cannot be kept (once k were kept)
} scan_part;

typedef struct dense_scan {
    const float *q;
    size_t want, k, d, cb, n_blocks, n_helpers;
    unsigned char *qcode;
    code_block *blocks;
    hamming_hit *hits;      // (n_helpers + 1) × (2k + BITS_BLOCK)
    uint32_t *hist;         // (n_helpers + 1) × (8·cb + 1)
    atomic_size_t next;     // the next block to take
    scan_part parts[SCAN_MAX_THREADS];
    pthread_t tids[SCAN_MAX_THREADS];
    bool started[SCAN_MAX_THREADS];
} dense_scan;

static bool hamming_worse(hamming_hit a, hamming_hit b)
{
    return a.ham > b.ham || (a.ham == b.ham && a.id > b.id);
}

static int cmp_hamming_hit(const void *a, const void *b)
{
    const hamming_hit *x = a, *y = b;
    return hamming_worse(*x, *y) - hamming_worse(*y, *x);
}

// Keeps the best k of p->buf (in id order) by (distance, id): those under the k-th distance t and
// the first of those at t; t is then the bar for the hits to come (later ids at t are worse).
static void scan_part_cut(scan_part *p, size_t k, size_t bins)
{
    if (p->n <= k) return;
    memset(p->hist, 0, bins * sizeof *p->hist);
    for (size_t i = 0; i < p->n; i++) p->hist[p->buf[i].ham]++;
    size_t below = 0;
    uint32_t t = 0;
    while (below + p->hist[t] < k) below += p->hist[t++];
    size_t ties = k - below, m = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->buf[i].ham > t) continue;
        if (p->buf[i].ham == t) {
            if (!ties) continue;
            ties--;
        }
        p->buf[m++] = p->buf[i];
    }
    p->n = m;
    p->worst = t;
}

static void *scan_part_run(void *arg)
{
    scan_part *p = arg;
    dense_scan *ds = p->scan;
    const m3_scan_kernels *kern = m3_scan_kernels_get();
    uint32_t dist[BITS_BLOCK], slots[BITS_BLOCK + 16];
    size_t k = ds->k, bins = 8 * ds->cb + 1;
    for (;;) {
        size_t b0 = atomic_fetch_add(&ds->next, SCAN_STEP);
        if (b0 >= ds->n_blocks) break;
        size_t b1 = b0 + SCAN_STEP < ds->n_blocks ? b0 + SCAN_STEP : ds->n_blocks;
        for (size_t b = b0; b < b1; b++) {
            const code_block *blk = &ds->blocks[b];
            kern->hamming(blk->codes, BITS_BLOCK, ds->cb, ds->qcode, dist);
            // The live slots under the bar, appended (ids only grow along a participant's runs).
            size_t n_slots = kern->below(dist, blk->live, BITS_BLOCK, p->worst, slots);
            for (size_t j = 0; j < n_slots; j++) p->buf[p->n++] = (hamming_hit){dist[slots[j]], blk->base + slots[j]};
            if (p->n > 2 * k) scan_part_cut(p, k, bins);
        }
    }
    scan_part_cut(p, k, bins);
    return NULL;
}

static size_t online_cpus(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 ? (size_t)CPU_COUNT(&set) : 1;
}

// Collects the blocks and starts the helpers. dense_scan_finish must follow, even on error.
static m3_status dense_scan_start(m3_index *idx, MDB_txn *txn, const float *q, size_t want, dense_scan *ds,
                                  m3_error *err)
{
    size_t cb = idx->code_bytes, d = idx->dim, n_cap = 0;
    memset(ds, 0, sizeof *ds);
    ds->q = q;
    ds->want = want;
    ds->k = want * COARSE;
    ds->d = d;
    ds->cb = cb;
    atomic_init(&ds->next, 0);
    if (!(ds->qcode = calloc(1, cb + 8))) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < d; i++)
        if (q[i] > 0) ds->qcode[i / 8] |= (unsigned char)(1u << (i % 8));
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, idx->bits, &cur);
    if (rc) return m3_index_mdb_error(idx, rc, "bits", err);
    m3_status s = M3_STATUS_OK;
    size_t block_bytes = BITS_LIVE_BYTES + (size_t)BITS_BLOCK * cb;
    MDB_val key, v;
    for (rc = mdb_cursor_get(cur, &key, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
        if (key.mv_size != 4 || v.mv_size != block_bytes) {
            s = m3_error_set(err, M3_STATUS_FORMAT, 0, "index %s is damaged (sign-code block); run 'm3 index --rebuild'",
                             idx->dir);
            break;
        }
        if (ds->n_blocks == n_cap) {
            code_block *nb = realloc(ds->blocks, (n_cap = n_cap ? 2 * n_cap : 64) * sizeof *nb);
            if (!nb) {
                s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
                break;
            }
            ds->blocks = nb;
        }
        const unsigned char *live = v.mv_data;
        if (get_be32(key.mv_data) > UINT32_MAX / BITS_BLOCK) {
            // Block bases must not wrap: the blocks' order is what the candidate lookup relies on.
            s = m3_error_set(err, M3_STATUS_FORMAT, 0, "index %s is damaged (sign-code block key); run 'm3 index --rebuild'",
                             idx->dir);
            break;
        }
        ds->blocks[ds->n_blocks++] = (code_block){get_be32(key.mv_data) * BITS_BLOCK, live, live + BITS_LIVE_BYTES};
    }
    if (rc && rc != MDB_NOTFOUND && s == M3_STATUS_OK) s = m3_index_mdb_error(idx, rc, "bits", err);
    mdb_cursor_close(cur);
    if (s != M3_STATUS_OK) return s;
    size_t helpers = online_cpus() - 1, by_size = ds->n_blocks / SCAN_MIN_BLOCKS;
    if (helpers > by_size) helpers = by_size;
    if (helpers > SCAN_MAX_THREADS - 1) helpers = SCAN_MAX_THREADS - 1;
    size_t cap = 2 * ds->k + BITS_BLOCK, bins = 8 * cb + 1;
    if (!(ds->hits = malloc((helpers + 1) * cap * sizeof *ds->hits)) ||
        !(ds->hist = malloc((helpers + 1) * bins * sizeof *ds->hist)))
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    ds->n_helpers = helpers;
    for (size_t t = 0; t <= helpers; t++)
        ds->parts[t] = (scan_part){ds, ds->hits + t * cap, ds->hist + t * bins, 0, UINT32_MAX};
    // A helper that cannot start leaves its share to the others.
    for (size_t t = 1; t <= helpers; t++)
        ds->started[t] = pthread_create(&ds->tids[t], NULL, scan_part_run, &ds->parts[t]) == 0;
    return M3_STATUS_OK;
}

// Keeps the best keep of hits[0, *n) by the float query against their sign codes, Σ q[i]·(±1),
// ranked by its variable part Σ q over the set bits, read from one table per code byte of the
// sums for its 256 values. A much finer estimate than the Hamming distance, on codes just scanned
// (no page of the map is new), so that the int8 stage reads half as many vectors.
static m3_status asymmetric_select(const dense_scan *ds, hamming_hit *hits, size_t *n, size_t keep)
{
    if (*n <= keep) return M3_STATUS_OK;
    size_t cb = ds->cb, d = ds->d;
    float *lut = malloc(cb * 256 * sizeof *lut);
    scored *best = malloc(keep * sizeof *best);
    if (!lut || !best) {
        free(lut);
        free(best);
        return M3_STATUS_NOMEM;
    }
    for (size_t b = 0; b < cb; b++) {
        float *t = lut + b * 256;
        t[0] = 0;
        for (unsigned v = 1; v < 256; v++) {
            size_t j = 8 * b + (size_t)__builtin_ctz(v);
            t[v] = t[v & (v - 1)] + (j < d ? ds->q[j] : 0);
        }
    }
    topk top = {best, 0, keep};
    for (size_t i = 0; i < *n; i++) {
        uint32_t id = hits[i].id;
        size_t lo = 0, hi = ds->n_blocks;  // the block of id: the last with base ≤ id
        while (hi - lo > 1) {
            size_t m = lo + (hi - lo) / 2;
            if (ds->blocks[m].base <= id) lo = m;
            else hi = m;
        }
        const unsigned char *c = ds->blocks[lo].codes + (size_t)(id - ds->blocks[lo].base) * cb;
        float score = 0;
        for (size_t b = 0; b < cb; b++) score += lut[b * 256 + c[b]];
        topk_push(&top, id, score);
    }
    for (size_t i = 0; i < top.n; i++) hits[i] = (hamming_hit){0, top.v[i].id};
    *n = top.n;
    free(lut);
    free(best);
    return M3_STATUS_OK;
}

// Joins the scan (the calling thread takes what is left), merges the participants' best, keeps
// the best 4 × want of them by the asymmetric estimate and rescores those with the int8 vectors,
// zero-copy; adds the best `want` to out. With ok false (an earlier error) it only stops and
// waits for the helpers, and frees.
static m3_status dense_scan_finish(m3_index *idx, MDB_txn *txn, dense_scan *ds, bool ok, idset *out, m3_error *err)
{
    m3_status s = M3_STATUS_OK;
    scored *fine = NULL;
    if (ok && ds->hits) scan_part_run(&ds->parts[0]);
    else atomic_store(&ds->next, ds->n_blocks);  // the helpers stop after their current run
    for (size_t t = 1; t <= ds->n_helpers; t++)
        if (ds->started[t]) pthread_join(ds->tids[t], NULL);
    if (!ok || !ds->hits) goto done;
    size_t n_hits = 0, k = ds->k, d = idx->dim;
    for (size_t t = 0; t <= ds->n_helpers; t++) {
        memmove(ds->hits + n_hits, ds->parts[t].buf, ds->parts[t].n * sizeof *ds->hits);
        n_hits += ds->parts[t].n;
    }
    if (n_hits > k) {
        qsort(ds->hits, n_hits, sizeof *ds->hits, cmp_hamming_hit);
        n_hits = k;
    }
    if (!(fine = malloc(ds->want * sizeof *fine))) {
        s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    const m3_scan_kernels *kern = m3_scan_kernels_get();
    if ((s = asymmetric_select(ds, ds->hits, &n_hits, ds->want * ASYM)) != M3_STATUS_OK) {
        m3_error_set(err, s, 0, "out of memory");
        goto done;
    }
    topk top = {fine, 0, ds->want};
    for (size_t i = 0; i < n_hits; i++) {
        unsigned char kb[4];
        MDB_val key, v;
        key_be32(&key, kb, ds->hits[i].id);
        int rc = mdb_get(txn, idx->dense, &key, &v);
        if (rc || v.mv_size != idx->dense_bytes) {
            s = rc && rc != MDB_NOTFOUND ? m3_index_mdb_error(idx, rc, "dense", err)
                                         : m3_error_set(err, M3_STATUS_FORMAT, 0,
                                                        "index %s is damaged (dense vector %u); run 'm3 index --rebuild'",
                                                        idx->dir, ds->hits[i].id);
            goto done;
        }
        float scale;
        memcpy(&scale, (const char *)v.mv_data + d, 4);
        topk_push(&top, ds->hits[i].id, kern->dot_i8(ds->q, v.mv_data, d) * scale);
    }
    for (size_t i = 0; i < top.n; i++)
        if (!idset_add(out, top.v[i].id)) {
            s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
            break;
        }
done:
    free(fine);
    free(ds->qcode);
    free(ds->blocks);
    free(ds->hits);
    free(ds->hist);
    memset(ds, 0, sizeof *ds);
    return s;
}

// ---- sparse candidates -------------------------------------------------------------------------

// MaxScore, term at a time. Terms go by upper bound (query weight × their largest block maximum),
// highest first. While a chunk not seen yet could still reach the best `want`, every posting adds
// to an accumulator (a hash table). Once the bounds of the terms left sum below θ, the want-th best
// accumulated score, no new chunk can: the accumulators that can still reach θ become a candidate
// list sorted by id, and each remaining term is only looked up for them — its block by galloping
// over the blocks' first ids, the id inside the block (ids are sorted) by galloping from the
// previous one — so a frequent term's long list costs a lookup per candidate, not an update per
// posting.
// After each term θ is raised and the candidates that can no longer reach it are dropped. The
// result is the exact best `want` by the stored (quantised) posting weights.

// Accumulators: (id, score) pairs in insertion order, found through an open-addressing table of
// (id, index) entries, rebuilt twice as large when half full.
typedef struct accum_slot {
    uint32_t id, index;  // index + 1 into v; 0 = empty
} accum_slot;

typedef struct accum {
    scored *v;
    accum_slot *table;
    size_t n, cap_v, cap;  // cap: table entries, a power of two
} accum;

static bool accum_rebuild(accum *a, size_t cap)
{
    accum_slot *t = calloc(cap, sizeof *t);
    if (!t) return false;
    for (size_t j = 0; j < a->n; j++) {
        size_t i = (a->v[j].id * 2654435761u) & (cap - 1);
        while (t[i].index) i = (i + 1) & (cap - 1);
        t[i] = (accum_slot){a->v[j].id, (uint32_t)j + 1};
    }
    free(a->table);
    a->table = t;
    a->cap = cap;
    return true;
}

static bool accum_init(accum *a, size_t expected)
{
    size_t cap = 1024;
    while (cap < 2 * expected && cap < ((size_t)1 << 26)) cap *= 2;
    *a = (accum){0};
    a->cap_v = cap / 2;
    return (a->v = malloc(a->cap_v * sizeof *a->v)) && accum_rebuild(a, cap);
}

// The accumulator of id, inserted (0) when missing; NULL when out of memory.
static float *accum_get(accum *a, uint32_t id)
{
    size_t m = a->cap - 1, i = (id * 2654435761u) & m;
    for (; a->table[i].index; i = (i + 1) & m)
        if (a->table[i].id == id) return &a->v[a->table[i].index - 1].score;
    if (a->n + 1 > a->cap / 2) {
        if (!accum_rebuild(a, 2 * a->cap)) return NULL;
        return accum_get(a, id);
    }
    if (a->n == a->cap_v) {
        scored *v = realloc(a->v, 2 * a->cap_v * sizeof *v);
        if (!v) return NULL;
        a->v = v;
        a->cap_v *= 2;
    }
    a->v[a->n] = (scored){id, 0};
    a->table[i] = (accum_slot){id, (uint32_t)++a->n};
    return &a->v[a->n - 1].score;
}

static void accum_free(accum *a)
{
    free(a->v);
    free(a->table);
}

// A block of a query term's postings, in the map (valid during the read transaction). A term's
// blocks hold disjoint, increasing id ranges (ids only grow), so a block holds the ids from its
// first to the next block's first.
typedef struct term_block {
    uint32_t first;  // its smallest chunk id (from the key: the value's ids are not read here)
    posting_block b;
} term_block;

typedef struct qterm {
    uint32_t id;
    float w, ub;             // query weight, upper bound w·max over the term's blocks
    size_t block0, n_blocks; // its blocks, in id order
} qterm;

static int cmp_qterm_ub(const void *a, const void *b)
{
    const qterm *x = a, *y = b;
    return x->ub > y->ub ? -1 : x->ub < y->ub;
}

// The k-th largest of v[0, n) (1 ≤ k ≤ n); reorders v (Hoare's quickselect).
static float kth_largest(float *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, t = (ptrdiff_t)k - 1;
    while (lo < hi) {
        float p = v[lo + (hi - lo) / 2];
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > p) i++;
            while (v[j] < p) j--;
            if (i <= j) {
                float x = v[i];
                v[i++] = v[j];
                v[j--] = x;
            }
        }
        if (t <= j) hi = j;
        else if (t >= i) lo = i;
        else return v[t];
    }
    return v[t];
}

// The block of tb[from, n) that may hold id: the last one whose first id is ≤ id, found by
// galloping from `from` (from itself when its first id is already larger: no block holds id).
static size_t block_seek(const term_block *tb, size_t from, size_t n, uint32_t id)
{
    size_t lo = from, step = 1;  // the answer is ≥ lo
    while (lo + step < n && tb[lo + step].first <= id) {
        lo += step;
        step *= 2;
    }
    size_t a = lo, e = lo + step < n ? lo + step : n;  // tb[e].first > id (or e = n)
    while (e - a > 1) {
        size_t m = a + (e - a) / 2;
        if (tb[m].first <= id) a = m;
        else e = m;
    }
    return a;
}

// Sorts v[0, n) by id (LSD radix, 11 bits a pass, only as many passes as the largest id needs);
// tmp holds n entries.
static void sort_by_id(scored *v, scored *tmp, size_t n)
{
    uint32_t max = 0;
    for (size_t i = 0; i < n; i++) max |= v[i].id;
    for (unsigned shift = 0; shift < 32 && (max >> shift); shift += 11) {
        size_t count[2049] = {0};
        for (size_t i = 0; i < n; i++) count[(v[i].id >> shift & 0x7ff) + 1]++;
        for (size_t d = 1; d <= 2048; d++) count[d] += count[d - 1];
        for (size_t i = 0; i < n; i++) tmp[count[v[i].id >> shift & 0x7ff]++] = v[i];
        memcpy(v, tmp, n * sizeof *v);
    }
}

// The first position in a posting block at or after from whose id is ≥ id (count when none).
static size_t posting_seek(const posting_block *b, size_t from, uint32_t id)
{
    if (from >= b->count || posting_id(b, from) >= id) return from;
    size_t lo = from, step = 1;  // posting_id(lo) < id
    while (lo + step < b->count && posting_id(b, lo + step) < id) {
        lo += step;
        step *= 2;
    }
    size_t a = lo + 1, e = lo + step < b->count ? lo + step : b->count;
    while (a < e) {
        size_t m = a + (e - a) / 2;
        if (posting_id(b, m) < id) a = m + 1;
        else e = m;
    }
    return a;
}

static m3_status sparse_candidates(m3_index *idx, MDB_txn *txn, const m3_embedding *q, size_t want, idset *out,
                                   m3_error *err)
{
    m3_status s = M3_STATUS_OK;
    qterm *terms = malloc((q->n_sparse + 1) * sizeof *terms);
    term_block *blocks = NULL;
    size_t n_blocks = 0, cap_blocks = 0, nt = 0, nc = 0;
    accum acc = {0};
    float *tmp = NULL;
    scored *cands = NULL, *sort_tmp = NULL;
    MDB_cursor *cur = NULL;
    if (!terms) goto nomem;
    int rc = mdb_cursor_open(txn, idx->post, &cur);
    if (rc) {
        s = m3_index_mdb_error(idx, rc, "sparse", err);
        goto done;
    }
    // Each term's blocks (zero-copy) and its upper bound from their maxima.
    for (size_t i = 0; i < q->n_sparse; i++) {
        uint32_t term = (uint32_t)q->sparse[i].id;
        unsigned char kb[8];
        put_be32(kb, term);
        put_be32(kb + 4, 0);
        MDB_val k = {8, kb}, v;
        float max = 0;
        size_t b0 = n_blocks;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 8 || get_be32(k.mv_data) != term) break;
            if (n_blocks == cap_blocks) {
                size_t cap = cap_blocks ? 2 * cap_blocks : 256;
                term_block *nb = realloc(blocks, cap * sizeof *nb);
                if (!nb) goto nomem;
                blocks = nb;
                cap_blocks = cap;
            }
            term_block *tb = &blocks[n_blocks];
            if (!posting_block_parse(&v, &tb->b)) {
                s = m3_error_set(err, M3_STATUS_FORMAT, 0, "index %s is damaged (postings); run 'm3 index --rebuild'",
                                 idx->dir);
                goto done;
            }
            tb->first = get_be32((const unsigned char *)k.mv_data + 4);
            n_blocks++;
            max = fmaxf(max, tb->b.max);
        }
        if (rc && rc != MDB_NOTFOUND) {
            s = m3_index_mdb_error(idx, rc, "sparse", err);
            goto done;
        }
        if (max > 0 && q->sparse[i].weight > 0)
            terms[nt++] = (qterm){term, q->sparse[i].weight, q->sparse[i].weight * max, b0, n_blocks - b0};
    }
    qsort(terms, nt, sizeof *terms, cmp_qterm_ub);
    float rest = 0, theta = 0;
    for (size_t i = 0; i < nt; i++) rest += terms[i].ub;
    if (!accum_init(&acc, nt ? terms[0].n_blocks * POSTING_BLOCK : 0)) goto nomem;
    // Every posting of the leading terms, while a new chunk could still enter the best `want`.
    size_t t = 0;
    float best = 0;  // the best accumulated score: θ ≤ best, so no stop while rest ≥ best
    for (; t < nt; t++) {
        if (acc.n >= want && rest < best) {
            float *nt_tmp = realloc(tmp, acc.n * sizeof *tmp);
            if (!nt_tmp) goto nomem;
            tmp = nt_tmp;
            for (size_t i = 0; i < acc.n; i++) tmp[i] = acc.v[i].score;
            theta = kth_largest(tmp, acc.n, want);
            if (rest < theta) break;
        }
        const term_block *tb = blocks + terms[t].block0;
        for (size_t b = 0; b < terms[t].n_blocks; b++) {
            float f = terms[t].w * tb[b].b.max / 255.0f;
            for (size_t i = 0; i < tb[b].b.count; i++) {
                float *a = accum_get(&acc, posting_id(&tb[b].b, i));
                if (!a) goto nomem;
                *a += f * tb[b].b.q[i];
                best = fmaxf(best, *a);
            }
        }
        rest -= terms[t].ub;
    }
    // The accumulators that can still reach θ, by id; the remaining terms are looked up for them:
    // blocks by galloping over their id ranges, ids inside a block by galloping from the last one.
    if (!(cands = malloc((acc.n + 1) * sizeof *cands))) goto nomem;
    for (size_t i = 0; i < acc.n; i++)
        if (t == nt || acc.v[i].score + rest >= theta) cands[nc++] = acc.v[i];
    if (t < nt) {
        if (!(sort_tmp = malloc((nc + 1) * sizeof *sort_tmp))) goto nomem;
        sort_by_id(cands, sort_tmp, nc);
    }
    for (; t < nt && nc; t++) {
        const term_block *tb = blocks + terms[t].block0;
        size_t nb = terms[t].n_blocks, bi = 0, pos = 0;
        for (size_t c = 0; c < nc; c++) {
            uint32_t id = cands[c].id;
            size_t nbi = block_seek(tb, bi, nb, id);
            if (nbi != bi) pos = 0;
            bi = nbi;
            const posting_block *pb = &tb[bi].b;
            if (tb[bi].first > id) continue;
            pos = posting_seek(pb, pos, id);
            if (pos < pb->count && posting_id(pb, pos) == id) cands[c].score += terms[t].w * pb->max / 255.0f * pb->q[pos];
        }
        rest -= terms[t].ub;
        if (nc >= want) {
            float *nt_tmp = realloc(tmp, nc * sizeof *tmp);
            if (!nt_tmp) goto nomem;
            tmp = nt_tmp;
            for (size_t c = 0; c < nc; c++) tmp[c] = cands[c].score;
            float k = kth_largest(tmp, nc, want);
            if (k > theta) theta = k;
        }
        size_t m = 0;
        for (size_t c = 0; c < nc; c++)
            if (cands[c].score + rest >= theta) cands[m++] = cands[c];
        nc = m;
    }
    {
        scored *h = malloc((want + 1) * sizeof *h);
        if (!h) goto nomem;
        topk top = {h, 0, want};
        for (size_t c = 0; c < nc; c++) topk_push(&top, cands[c].id, cands[c].score);
        for (size_t i = 0; i < top.n && s == M3_STATUS_OK; i++)
            if (!idset_add(out, top.v[i].id)) s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        free(h);
    }
    goto done;
nomem:
    s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
done:
    if (cur) mdb_cursor_close(cur);
    free(terms);
    free(blocks);
    accum_free(&acc);
    free(tmp);
    free(cands);
    free(sort_tmp);
    return s;
}

// ---- exact scores --------------------------------------------------------------------------------

// A candidate's exact dense score (fp32 in an exact index, else the int8 vector times its scale)
// and exact sparse score (its forward vector: (u32 term, f32 weight) sorted by term), read in
// place from the map.
static m3_status exact_scores(m3_index *idx, MDB_txn *txn, const m3_embedding *q, uint32_t id, float *dense,
                              float *sparse, m3_error *err)
{
    const m3_scan_kernels *kern = m3_scan_kernels_get();
    size_t d = idx->dim;
    unsigned char kb[4];
    MDB_val k, v;
    key_be32(&k, kb, id);
    int rc = mdb_get(txn, idx->dense, &k, &v);
    if (rc == 0 && v.mv_size == idx->dense_bytes) {
        const unsigned char *p = v.mv_data;
        float scale;
        memcpy(&scale, p + d, 4);
        *dense = idx->exact ? kern->dot_f32(q->dense, p + d + 4, d) : kern->dot_i8(q->dense, p, d) * scale;
        rc = mdb_get(txn, idx->fwd, &k, &v);
    }
    if (rc == 0 && v.mv_size % 8 == 0) {
        const unsigned char *p = v.mv_data;
        size_t n = v.mv_size / 8, i = 0, j = 0;
        double s = 0;
        while (i < q->n_sparse && j < n) {
            uint32_t term;
            memcpy(&term, p + 8 * j, 4);
            if ((uint32_t)q->sparse[i].id < term) {
                i++;
            } else if ((uint32_t)q->sparse[i].id > term) {
                j++;
            } else {
                float w;
                memcpy(&w, p + 8 * j + 4, 4);
                s += (double)q->sparse[i++].weight * w;
                j++;
            }
        }
        *sparse = (float)s;
        return M3_STATUS_OK;
    }
    if (rc && rc != MDB_NOTFOUND) return m3_index_mdb_error(idx, rc, "vectors", err);
    return m3_error_set(err, M3_STATUS_FORMAT, MDB_CORRUPTED,
                        "index %s is damaged (vectors of chunk %u); remove it or run 'm3 index --rebuild'", idx->dir,
                        id);
}

// MaxSim of the query (prepared in sc) against a candidate's stored multi-vectors, read zero-copy.
static m3_status colbert_candidate(m3_index *idx, MDB_txn *txn, colbert_scorer *sc, uint32_t id, float *score,
                                   m3_error *err)
{
    colbert_view v;
    m3_status s = m3_index_read_colbert(idx, txn, id, &v, err);
    if (s != M3_STATUS_OK) return s;
    if (!m3_index_colbert_score(sc, &v, score, NULL, NULL))
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    return M3_STATUS_OK;
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

// Per token position of a chunk (after <s>), the weight the query's vectors align on it: each
// query vector adds its best MaxSim score (when positive) to its best stored row. A pooled row
// stands for several tokens, possibly far apart, and which of them the query matched is lost: its
// weight is shared equally among them, so that a window holding all of them gets the whole weight,
// as an unpooled index would give it to the one matching token. NULL when the index keeps no
// multi-vectors (the snippet then aligns the query's sparse terms).
static float *snippet_weights(m3_index *idx, MDB_txn *txn, colbert_scorer *sc, size_t nq, uint32_t id,
                              size_t *n_tokens)
{
    colbert_view v;
    *n_tokens = 0;
    if (!sc || !nq || m3_index_read_colbert(idx, txn, id, &v, NULL) != M3_STATUS_OK || !v.n) return NULL;
    uint32_t *rows = malloc(nq * sizeof *rows), *members = calloc(v.n, sizeof *members);
    float *vals = malloc(nq * sizeof *vals), *row_w = calloc(v.n, sizeof *row_w);
    float *tok_w = calloc((size_t)v.tokens + 1, sizeof *tok_w), score;
    if (rows && members && vals && row_w && tok_w && m3_index_colbert_score(sc, &v, &score, rows, vals)) {
        for (size_t i = 0; i < nq; i++) row_w[rows[i]] += vals[i] > 0 ? vals[i] : 0;
        for (uint32_t t = 0; t < v.tokens; t++) members[m3_index_colbert_row_of(&v, t)]++;
        for (uint32_t t = 0; t < v.tokens; t++) {
            uint32_t r = m3_index_colbert_row_of(&v, t);
            tok_w[t] = row_w[r] / (float)members[r];
        }
        *n_tokens = v.tokens;
    } else {
        free(tok_w);
        tok_w = NULL;
    }
    free(rows);
    free(members);
    free(vals);
    free(row_w);
    return tok_w;
}

// The query's sparse weight of token id (0 when absent); q->sparse is sorted by id.
static float query_term_weight(const m3_embedding *q, int32_t id)
{
    size_t lo = 0, hi = q->n_sparse;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (q->sparse[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < q->n_sparse && q->sparse[lo].id == id ? q->sparse[lo].weight : 0;
}

// A word weighs the MaxSim alignment of its tokens (token_w from snippet_weights; NULL without
// multi-vectors) plus the query's sparse weights of its pieces: the words of the query show in the
// snippet when the chunk holds them, even where compressed vectors (sign bits, pooling) align
// loosely, and an index without multi-vectors still aligns lexically.
static char *make_snippet(const char *text, size_t len, const m3_embedding *q, const float *token_w, size_t n_tokens,
                          const m3_tokenizer *tok, size_t max_bytes, m3_search_hit *hit)
{
    word *words = NULL;
    size_t nw = split_words(text, len, &words);
    size_t best_start = 0, best_end = nw;
    if (tok && nw && (token_w || q->n_sparse)) {
        // Token positions of each word (the pieces of a word do not depend on its neighbours).
        size_t pos = 0;
        for (size_t i = 0; i < nw; i++) {
            int32_t *ids = NULL;
            size_t n = 0;
            bool ok = m3_tokenizer_encode(tok, text + words[i].start, words[i].end - words[i].start, 1024, &ids,
                                          &n, NULL) == M3_STATUS_OK && n >= 2;
            n = ok ? n - 2 : 1;
            words[i].piece0 = pos;
            words[i].pieces = n;
            if (token_w)
                for (size_t j = pos; j < pos + n && j < n_tokens; j++) words[i].weight += token_w[j];
            if (ok)
                for (size_t j = 1; j <= n; j++) words[i].weight += query_term_weight(q, ids[j]);
            free(ids);
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
    // Highlights: the words of the window that carry a good part of the best word's weight.
    float top = 0;
    for (size_t i = best_start; i < best_end; i++) top = words[i].weight > top ? words[i].weight : top;
    uint32_t(*hl)[2] = top > 0 ? malloc((best_end - best_start) * sizeof *hl) : NULL;
    size_t nh = 0;
    if (best_start > 0) n += (size_t)snprintf(out + n, cap - n, "…");
    for (size_t i = best_start; i < best_end && n + (words[i].end - words[i].start) + 8 < cap; i++) {
        // A space where the text had whitespace; pieces of one long run (scripts without spaces)
        // join as they were, so the snippet is the text's words as written.
        if (i > best_start && words[i].start > words[i - 1].end) out[n++] = ' ';
        size_t w0 = n;
        for (size_t b = words[i].start; b < words[i].end; b++) {
            unsigned char c = (unsigned char)text[b];
            out[n++] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
        }
        if (hl && words[i].weight >= SNIPPET_HIGHLIGHT * top) {
            if (nh && w0 - hl[nh - 1][1] <= 1) hl[nh - 1][1] = (uint32_t)n;  // joins neighbours
            else hl[nh][0] = (uint32_t)w0, hl[nh][1] = (uint32_t)n, nh++;
        }
    }
    hit->highlights = hl;
    hit->n_highlights = hl ? nh : 0;
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
    // Without multi-vectors the ColBERT weight drops out: the hybrid renormalises over dense + sparse.
    const bool no_colbert = idx->colbert_kind == COLBERT_NONE;
    if (no_colbert && o->weights[2] > 0 && o->weights[0] == 0 && o->weights[1] == 0)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                            "index %s keeps no multi-vectors (created with '--colbert none'): search it with dense "
                            "or sparse weights, or rebuild it with 'm3 index --rebuild --colbert bits'",
                            idx->dir);
    const float wd = o->weights[0], ws = o->weights[1], wc = no_colbert ? 0 : o->weights[2];
    const float wsum = wd + ws + wc;
    if (!(wd >= 0 && ws >= 0 && wc >= 0 && wsum > 0))
        return m3_error_set(err, M3_STATUS_INVALID, 0, "search weights must be non-negative with a positive sum");
    if (q->dim != idx->dim || !q->dense)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "query of dimension %zu for an index of dimension %zu", q->dim,
                            idx->dim);
    idset ids = {0};
    cand *cands = NULL;
    colbert_scorer *sc = NULL;
    m3_status s = M3_STATUS_OK;
    if (o->exhaustive) {
        s = collect_all(idx, txn, &ids, err);
    } else {
        // The dense scan runs on helper threads while this one follows the postings.
        dense_scan ds;
        bool dense = wd > 0 || wc > 0;
        if (dense) s = dense_scan_start(idx, txn, q->dense, o->dense_candidates ? o->dense_candidates : 1, &ds, err);
        if (s == M3_STATUS_OK && (ws > 0 || wc > 0) && q->n_sparse)
            s = sparse_candidates(idx, txn, q, o->sparse_candidates ? o->sparse_candidates : 1, &ids, err);
        if (dense) {
            m3_status s2 = dense_scan_finish(idx, txn, &ds, s == M3_STATUS_OK, &ids, err);
            if (s == M3_STATUS_OK) s = s2;
        }
    }
    if (s != M3_STATUS_OK) goto done;
    idset_unique(&ids);
    if (ids.n && !(cands = calloc(ids.n, sizeof *cands))) {
        s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    // Dense and sparse for every candidate (in place, from the map), ColBERT for the best RERANK
    // of them. A candidate's file is read here only to exclude one; else for those re-ranked.
    size_t nc = 0;
    for (size_t i = 0; i < ids.n; i++) {
        cand *c = &cands[nc];
        c->id = ids.v[i];
        c->file_id = UINT32_MAX;
        if (o->exclude_file_id >= 0) {
            chunk_rec r;
            if ((s = m3_index_read_chunk(idx, txn, ids.v[i], &r, err)) != M3_STATUS_OK) goto done;
            if (r.file_id == (uint32_t)o->exclude_file_id) continue;
            c->file_id = r.file_id;
        }
        if ((s = exact_scores(idx, txn, q, ids.v[i], &c->dense, &c->sparse, err)) != M3_STATUS_OK) goto done;
        c->partial = wd * c->dense + ws * c->sparse;
        c->proxy = c->partial + wc * c->dense;  // dense stands in for ColBERT when choosing what to re-rank
        nc++;
    }
    size_t rerank = nc;
    // ColBERT alone: no cheaper score to pre-rank by, so every candidate is re-ranked.
    if (!o->exhaustive && wc > 0 && (wd > 0 || ws > 0)) {
        if (nc) qsort(cands, nc, sizeof *cands, cmp_cand_partial);
        size_t want = o->rerank ? o->rerank : o->limit * 4 > RERANK ? o->limit * 4 : RERANK;
        if (rerank > want) rerank = want;
    }
    // The query prepared once (sign bits: lookup tables), then MaxSim over each candidate's rows.
    if (!no_colbert && q->n_colbert && q->colbert &&
        (s = m3_index_colbert_scorer_new(idx, q, &sc, err)) != M3_STATUS_OK)
        goto done;
    for (size_t i = 0; i < rerank; i++) {
        if (sc && (s = colbert_candidate(idx, txn, sc, cands[i].id, &cands[i].colbert, err)) != M3_STATUS_OK) goto done;
        cands[i].score = (cands[i].partial + wc * cands[i].colbert) / wsum;
    }
    nc = rerank;
    for (size_t i = 0; i < nc && o->exclude_file_id < 0; i++) {
        chunk_rec r;
        if ((s = m3_index_read_chunk(idx, txn, cands[i].id, &r, err)) != M3_STATUS_OK) goto done;
        cands[i].file_id = r.file_id;
    }
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
        char where[M3_INDEX_LOCATION_MAX];
        if (m3_index_read_location(idx, txn, cands[i].id, where, sizeof where) && !(h->location = strdup(where))) {
            m3_search_hits_free(out, nh);
            s = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
            goto done;
        }
        char *text;
        size_t len;
        if ((s = m3_index_read_text(idx, txn, cands[i].id, &text, &len, err)) != M3_STATUS_OK) {
            m3_search_hits_free(out, nh);
            goto done;
        }
        size_t n_tok = 0;
        float *tok_w = o->tokenizer ? snippet_weights(idx, txn, sc, q->n_colbert, cands[i].id, &n_tok) : NULL;
        h->snippet =
            make_snippet(text, len, q, tok_w, n_tok, o->tokenizer, o->snippet_bytes ? o->snippet_bytes : 240, h);
        free(tok_w);
        free(text);
    }
    *hits = out;
    *n_hits = nh;
done:
    m3_index_colbert_scorer_free(sc);
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
                    hit_clear(&all[k]);
                    all[k] = h[j];
                } else {
                    hit_clear(&h[j]);
                }
                continue;
            }
            m3_search_hit *na = realloc(all, (n_all + 1) * sizeof *all);
            if (!na) {
                // h[0..j) moved into all or were freed: free the rest and the array itself.
                for (size_t r = j; r < nh; r++) hit_clear(&h[r]);
                free(h);
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
    for (size_t j = limit; j < n_all; j++) hit_clear(&all[j]);
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
