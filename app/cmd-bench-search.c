// SPDX-License-Identifier: MIT
//
// m3 bench search [--chunks N,...] [--queries Q] [--dim D] [--colbert-tokens T] [--seed S]
//                 [--weights D,S,C] [--index DIR] [--keep] [--no-brute] [--json]
// Latency of the hybrid index search (m3_index_search, default options) on synthetic indexes of
// 100 k and 1 M chunks, built through the public writer (so the real on-disk format, with the
// index's default ColBERT storage), against a brute-force fp32 scan of the same data held in
// memory, in the same run.
//
// The data is deterministic from the seed, generated file by file (8 chunks per file), and
// generated again for the baseline instead of being kept while the index is measured:
//   dense   normalize(0.35·g + 0.55·topic + 0.45·f + 0.6·n): g shared by all chunks (BGE-M3's vectors
//           are anisotropic), one of √N random topics per file, a random direction per file and
//           per-chunk noise n (each term a random unit vector): near neighbours mean something at
//           every size.
//   sparse  30–80 terms per chunk, 40 % drawn from the 64 terms of the file's topic (ranks
//           log-uniform in 200–200 000), the rest Zipf (s = 1.07) over the 250 002 ids (ids 0–3,
//           special tokens, never); weight 0.35·idf(rank)·U(0.5, 1) ∈ (0, 0.35], frequent terms
//           lighter, as BGE-M3's lexical weights are.
//   colbert T rows per chunk (default 16), each a vector of a pool of 16 384 random unit vectors
//           (half from the topic's 32): a real model's token vectors also repeat per token. The
//           writer's default sign bits take dim / 8 B per row (128 B at 1024-d): 16 rows fill one
//           4 KiB LMDB page per chunk, 4 GiB at 1 M chunks. (int8 rows take dim + 4 B: at 1024-d,
//           keep T ≤ 7 for two pages per chunk.)
// Queries: a random target chunk; dense normalize(x + 0.7·n) (cosine ≈ 0.82 to the target),
// 5–15 terms (60 % of them the target's, the rest Zipf), 8–16 ColBERT rows (60 % near one of
// the target's rows: normalize(row + 0.5·n), the rest near random pool vectors).
//
// The index search: 10 untimed queries, then each timed query twice in a row. The first run
// reads pages of the map this process never touched (page faults, as in a fresh `m3 search`);
// the repeat finds them mapped (as a long-running process does). Peak RSS counts the index pages
// mapped; "heap" is the anonymous memory alone.
//
// The baseline, timed per query with the same threads (one per CPU): fp32 dense dot against
// every chunk and the exact sparse dot against every chunk's (term, weight) list (through a
// vocabulary-sized table of the query's weights), both for all N chunks; the best R = 100 by
// (wd + wc)·dense + ws·sparse (the index's own re-ranking rule and count); fp32 ColBERT MaxSim
// for those R; the hybrid (wd·d + ws·s + wc·c)/(wd + ws + wc) with the default weights; the best
// chunk per file; the top 10 (with the sparse weight alone, a chunk without any query term is no
// result, as in the index). recall@10 is the share of the baseline's 10 chunk ids that the index
// search returns.
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/threadpool.h"
#include "cli.h"
#include "index/index.h"

static const char usage_text[] =
    "usage: m3 bench search [--chunks N,...] [--queries Q] [--dim D] [--colbert-tokens T] [--seed S]\n"
    "                       [--weights D,S,C] [--index DIR] [--keep] [--no-brute] [--json]\n\n"
    "Builds a synthetic index of N chunks (8 per file; clustered unit dense vectors, Zipf sparse\n"
    "terms, T ColBERT rows per chunk) through the index writer, then measures m3_index_search with\n"
    "the default options (hybrid) on Q synthetic query embeddings, and in the same run a brute-force\n"
    "fp32 scan of the same data held in memory. Reports p50/p99 latency of both (the index search\n"
    "also repeated, its pages then mapped), their ratio, recall@10 of the index against the brute\n"
    "force, peak memory, the index size and the build time. Needs about dim × 4.4 B per chunk of\n"
    "memory for the brute force (4.3 GiB at 1 M chunks of 1024-d).\n\n"
    "  --chunks LIST        index sizes (default 100000,1000000)\n"
    "  --queries Q          queries per size (default 200; 10 more run first, untimed)\n"
    "  --dim D              vector dimension (default 1024, BGE-M3's)\n"
    "  --colbert-tokens T   ColBERT rows per chunk (default 16)\n"
    "  --seed S             data seed (default 1)\n"
    "  --weights D,S,C      hybrid weights of both sides (default the search's: 0.4,0.2,0.4)\n"
    "  --index DIR          build the indexes in DIR/n<N>-d<D>-t<T> (default: a temporary folder);\n"
    "                       an index kept there by --keep with the same parameters is reused\n"
    "  --keep               keep the indexes\n"
    "  --no-brute           measure the index search only (no baseline, no recall)\n"
    "  --json               one JSON object per size instead of a table\n";

enum {
    VOCAB = 250002,
    FIRST_TERM = 4,          // ids 0–3 are special tokens, never in a sparse vector
    RANKS = VOCAB - FIRST_TERM,
    CHUNKS_PER_FILE = 8,
    POOL = 16384,            // ColBERT token vectors
    TOPIC_TERMS = 64,
    TOPIC_TOKENS = 32,
    MAX_CHUNK_TERMS = 80,
    MAX_QUERY_TERMS = 15,
    MAX_QUERY_ROWS = 16,
    MAX_SIZES = 16,
    TOP = 10,                // results compared (the default search limit)
    RERANK = 100,            // the index's default ColBERT re-ranking count for limit 10
    WARMUP = 10,
    GEN_VERSION = 1,         // part of the index's model identity: a generator change rebuilds
};
#define COMMIT_BYTES ((size_t)256 << 20)

// CPU time of the whole process (every thread), seconds: the work, whatever else runs.
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// ---- memory ------------------------------------------------------------------------------------

// Resets the peak RSS (VmHWM) of this process; false where the kernel does not allow it.
static bool peak_rss_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

// The process's anonymous memory now (heap, not the index's mapped pages), MiB.
static double anon_rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8)) kib = strtod(line + 8, NULL);
    if (f) fclose(f);
    return kib / 1024.0;
}

static double peak_rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kib = strtod(line + 6, NULL);
    if (f) fclose(f);
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = (double)ru.ru_maxrss;
    }
    return kib / 1024.0;
}

// ---- random numbers ----------------------------------------------------------------------------

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9u;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

typedef struct rng {
    uint64_t s;
} rng;

static rng rng_for(uint64_t seed, uint64_t stream, uint64_t i)
{
    return (rng){mix64(seed ^ mix64(stream * 0x9E3779B97F4A7C15u + i))};
}

static uint64_t rng_next(rng *r)
{
    r->s += 0x9E3779B97F4A7C15u;
    return mix64(r->s);
}

static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

// Irwin–Hall of four 16-bit uniforms: close enough to a normal deviate, and cheap (1 G of them
// are drawn for 1 M chunks of 1024-d).
static float rng_gauss(rng *r)
{
    uint64_t x = rng_next(r);
    uint32_t s = (uint32_t)(x & 0xffff) + (uint32_t)(x >> 16 & 0xffff) + (uint32_t)(x >> 32 & 0xffff) +
                 (uint32_t)(x >> 48);
    return ((float)s - 131070.0f) * (1.0f / 37837.2f);
}

static void normalize(float *x, size_t d)
{
    double ss = 0;
    for (size_t i = 0; i < d; i++) ss += (double)x[i] * x[i];
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0;
    for (size_t i = 0; i < d; i++) x[i] *= inv;
}

static void random_unit(rng *r, float *x, size_t d)
{
    for (size_t i = 0; i < d; i++) x[i] = rng_gauss(r);
    normalize(x, d);
}

// ---- the synthetic corpus ----------------------------------------------------------------------

typedef struct synth {
    size_t n, dim, rows, topics, files;
    uint64_t seed;
    float *g, *topic_vec, *pool;   // [dim], [topics][dim], [POOL][dim]
    uint32_t *topic_rank;          // [topics][TOPIC_TERMS]
    uint32_t *topic_token;         // [topics][TOPIC_TOKENS]
    double *zipf_cdf;              // [RANKS]
    int32_t *rank_term;            // rank → term id (a fixed permutation)
    uint32_t *term_rank;           // term id → rank
    float *rank_weight;            // idf-like weight of a rank, 0.35 at most
} synth;

// One file's chunks as generated (buffers for CHUNKS_PER_FILE chunks).
typedef struct synth_file {
    size_t n;
    float *dense;                  // [n][dim]
    m3_sparse_weight *sparse;      // [n][MAX_CHUNK_TERMS]
    size_t n_sparse[CHUNKS_PER_FILE];
    uint32_t *tokens;              // [n][rows], pool indexes
    float *fvec;                   // [dim], scratch
} synth_file;

static void synth_free(synth *s)
{
    free(s->g);
    free(s->topic_vec);
    free(s->pool);
    free(s->topic_rank);
    free(s->topic_token);
    free(s->zipf_cdf);
    free(s->rank_term);
    free(s->term_rank);
    free(s->rank_weight);
}

static bool synth_init(synth *s, size_t n, size_t dim, size_t rows, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->dim = dim;
    s->rows = rows;
    s->seed = seed;
    s->files = (n + CHUNKS_PER_FILE - 1) / CHUNKS_PER_FILE;
    s->topics = (size_t)sqrt((double)n);
    if (s->topics < 4) s->topics = 4;
    s->g = malloc(dim * sizeof *s->g);
    s->topic_vec = malloc(s->topics * dim * sizeof *s->topic_vec);
    s->pool = malloc((size_t)POOL * dim * sizeof *s->pool);
    s->topic_rank = malloc(s->topics * TOPIC_TERMS * sizeof *s->topic_rank);
    s->topic_token = malloc(s->topics * TOPIC_TOKENS * sizeof *s->topic_token);
    s->zipf_cdf = malloc(RANKS * sizeof *s->zipf_cdf);
    s->rank_term = malloc(RANKS * sizeof *s->rank_term);
    s->term_rank = calloc(VOCAB, sizeof *s->term_rank);
    s->rank_weight = malloc(RANKS * sizeof *s->rank_weight);
    if (!s->g || !s->topic_vec || !s->pool || !s->topic_rank || !s->topic_token || !s->zipf_cdf || !s->rank_term ||
        !s->term_rank || !s->rank_weight) {
        synth_free(s);
        return false;
    }
    rng r = rng_for(seed, 1, 0);
    random_unit(&r, s->g, dim);
    for (size_t t = 0; t < s->topics; t++) {
        random_unit(&r, s->topic_vec + t * dim, dim);
        for (size_t k = 0; k < TOPIC_TERMS; k++)
            s->topic_rank[t * TOPIC_TERMS + k] = (uint32_t)(200.0 * exp(rng_unit(&r) * log(1000.0)));
        for (size_t k = 0; k < TOPIC_TOKENS; k++) s->topic_token[t * TOPIC_TOKENS + k] = (uint32_t)(rng_next(&r) % POOL);
    }
    for (size_t p = 0; p < POOL; p++) random_unit(&r, s->pool + p * dim, dim);
    double h = 0;
    for (size_t k = 0; k < RANKS; k++) s->zipf_cdf[k] = h += pow((double)(k + 1), -1.07);
    for (size_t k = 0; k < RANKS; k++) s->zipf_cdf[k] /= h;
    for (size_t k = 0; k < RANKS; k++) s->rank_term[k] = (int32_t)(FIRST_TERM + k);
    for (size_t k = RANKS - 1; k > 0; k--) {
        size_t j = (size_t)(rng_next(&r) % (k + 1));
        int32_t t = s->rank_term[k];
        s->rank_term[k] = s->rank_term[j];
        s->rank_term[j] = t;
    }
    for (size_t k = 0; k < RANKS; k++) {
        s->term_rank[s->rank_term[k]] = (uint32_t)k;
        double idf = 0.15 + 0.85 * log((double)(k + 1)) / log(50000.0);
        s->rank_weight[k] = (float)(0.35 * (idf < 1 ? idf : 1));
    }
    return true;
}

static uint32_t zipf_rank(const synth *s, rng *r)
{
    double u = rng_unit(r);
    size_t lo = 0, hi = RANKS - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->zipf_cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return (uint32_t)lo;
}

static int cmp_sparse_id(const void *a, const void *b)
{
    const m3_sparse_weight *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

// Sorts by id and merges repeated ids (keeping the larger weight). Returns the new count.
static size_t sparse_unique(m3_sparse_weight *v, size_t n)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_sparse_id);
    size_t m = 1;
    for (size_t i = 1; i < n; i++) {
        if (v[i].id == v[m - 1].id) {
            if (v[i].weight > v[m - 1].weight) v[m - 1].weight = v[i].weight;
        } else {
            v[m++] = v[i];
        }
    }
    return m;
}

static bool synth_file_alloc(const synth *s, synth_file *f)
{
    memset(f, 0, sizeof *f);
    f->dense = malloc(CHUNKS_PER_FILE * s->dim * sizeof *f->dense);
    f->sparse = malloc(CHUNKS_PER_FILE * MAX_CHUNK_TERMS * sizeof *f->sparse);
    f->tokens = malloc(CHUNKS_PER_FILE * (s->rows ? s->rows : 1) * sizeof *f->tokens);
    f->fvec = malloc(s->dim * sizeof *f->fvec);
    return f->dense && f->sparse && f->tokens && f->fvec;
}

static void synth_file_free(synth_file *f)
{
    free(f->dense);
    free(f->sparse);
    free(f->tokens);
    free(f->fvec);
}

// Generates the chunks of file no (chunk ids no·8 …).
static void synth_file_make(const synth *s, size_t no, synth_file *f)
{
    size_t d = s->dim, first = no * CHUNKS_PER_FILE;
    f->n = s->n - first < CHUNKS_PER_FILE ? s->n - first : CHUNKS_PER_FILE;
    rng r = rng_for(s->seed, 2, no);
    size_t topic = (size_t)(rng_next(&r) % s->topics);
    const float *tv = s->topic_vec + topic * d;
    random_unit(&r, f->fvec, d);
    float noise = 0.6f / sqrtf((float)d);
    for (size_t c = 0; c < f->n; c++) {
        float *x = f->dense + c * d;
        for (size_t i = 0; i < d; i++) x[i] = 0.35f * s->g[i] + 0.55f * tv[i] + 0.45f * f->fvec[i] + noise * rng_gauss(&r);
        normalize(x, d);
        m3_sparse_weight *sp = f->sparse + c * MAX_CHUNK_TERMS;
        size_t nt = 30 + (size_t)(rng_next(&r) % 51), n_topic = nt * 2 / 5;
        for (size_t k = 0; k < nt; k++) {
            uint32_t rank = k < n_topic ? s->topic_rank[topic * TOPIC_TERMS + rng_next(&r) % TOPIC_TERMS]
                                        : zipf_rank(s, &r);
            sp[k] = (m3_sparse_weight){s->rank_term[rank], s->rank_weight[rank] * (float)(0.5 + 0.5 * rng_unit(&r))};
        }
        f->n_sparse[c] = sparse_unique(sp, nt);
        for (size_t k = 0; k < s->rows; k++)
            f->tokens[c * s->rows + k] = k % 2 == 0 ? s->topic_token[topic * TOPIC_TOKENS + rng_next(&r) % TOPIC_TOKENS]
                                                    : (uint32_t)(rng_next(&r) % POOL);
    }
}

// ---- queries -----------------------------------------------------------------------------------

typedef struct query {
    m3_embedding emb;
    m3_sparse_weight sparse[MAX_QUERY_TERMS];
    uint32_t target;
} query;

static void queries_free(query *q, size_t n)
{
    for (size_t i = 0; q && i < n; i++) {
        free(q[i].emb.dense);
        free(q[i].emb.colbert);
    }
    free(q);
}

static query *queries_make(const synth *s, size_t n)
{
    size_t d = s->dim;
    query *q = calloc(n, sizeof *q);
    synth_file f;
    bool ok = q && synth_file_alloc(s, &f);
    for (size_t i = 0; ok && i < n; i++) {
        rng r = rng_for(s->seed, 3, i);
        uint32_t target = (uint32_t)(rng_next(&r) % s->n);
        synth_file_make(s, target / CHUNKS_PER_FILE, &f);
        size_t c = target % CHUNKS_PER_FILE;
        m3_embedding *e = &q[i].emb;
        q[i].target = target;
        e->dim = d;
        e->dense = malloc(d * sizeof *e->dense);
        e->colbert = malloc(MAX_QUERY_ROWS * d * sizeof *e->colbert);
        if (!e->dense || !e->colbert) {
            ok = false;
            break;
        }
        float noise = 0.7f / sqrtf((float)d);
        for (size_t j = 0; j < d; j++) e->dense[j] = f.dense[c * d + j] + noise * rng_gauss(&r);
        normalize(e->dense, d);
        const m3_sparse_weight *tsp = f.sparse + c * MAX_CHUNK_TERMS;
        size_t nt = 5 + (size_t)(rng_next(&r) % 11);
        for (size_t k = 0; k < nt; k++) {
            uint32_t rank = rng_unit(&r) < 0.6 ? s->term_rank[tsp[rng_next(&r) % f.n_sparse[c]].id] : zipf_rank(s, &r);
            q[i].sparse[k] = (m3_sparse_weight){s->rank_term[rank], s->rank_weight[rank] * (float)(0.7 + 0.3 * rng_unit(&r))};
        }
        e->sparse = q[i].sparse;
        e->n_sparse = sparse_unique(q[i].sparse, nt);
        e->n_colbert = 8 + (size_t)(rng_next(&r) % 9);
        e->tokens = e->n_colbert + 1;
        for (size_t k = 0; k < e->n_colbert; k++) {
            uint32_t tok = s->rows && rng_unit(&r) < 0.6 ? f.tokens[c * s->rows + rng_next(&r) % s->rows]
                                                         : (uint32_t)(rng_next(&r) % POOL);
            float *row = e->colbert + k * d;
            noise = 0.5f / sqrtf((float)d);
            for (size_t j = 0; j < d; j++) row[j] = s->pool[(size_t)tok * d + j] + noise * rng_gauss(&r);
            normalize(row, d);
        }
    }
    if (q) synth_file_free(&f);
    if (!ok) {
        queries_free(q, n);
        return NULL;
    }
    return q;
}

// ---- building the index ------------------------------------------------------------------------

static const char *const words[] = {
    "index", "search", "letter", "tax",   "office", "river", "garden", "window", "compiler", "music",
    "train", "winter", "bread",  "paper", "market", "cloud", "engine", "summer", "village",  "number",
    "light", "forest", "silver", "table", "mirror", "story", "bridge", "doctor", "harbour",  "signal",
};

// A short synthetic text for chunk id (snippets are cut from it). Returns its length.
static size_t chunk_text(uint64_t seed, size_t id, char *buf, size_t cap)
{
    rng r = rng_for(seed, 4, id);
    size_t n = 0, nw = 20 + (size_t)(rng_next(&r) % 20);
    for (size_t i = 0; i < nw && n + 16 < cap; i++) {
        const char *w = words[rng_next(&r) % (sizeof words / sizeof words[0])];
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", w);
    }
    n += (size_t)snprintf(buf + n, cap - n, " %zu.", id);
    return n;
}

static void file_path(size_t no, char *buf, size_t cap)
{
    snprintf(buf, cap, "/bench/%03zu/%07zu.txt", no % 1000, no);
}

static void model_for(const synth *s, m3_index_model *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "m3 bench search gen=%d n=%zu dim=%zu rows=%zu seed=%" PRIu64, GEN_VERSION, s->n,
             s->dim, s->rows, s->seed);
    snprintf(m->checksum, sizeof m->checksum, "%016" PRIx64, m3_index_hash(m->id, strlen(m->id), 0));
    m->dim = (int)s->dim;
    m->vocab = VOCAB;
}

static m3_status build_index(const synth *s, const char *dir, bool progress, double *anon_peak, m3_error *err)
{
    m3_index_model model;
    model_for(s, &model);
    // The map is sized once from an estimate (about 2.2 × the payload) so that no batch is redone
    // after MDB_MAP_FULL; the writer still grows it if the estimate is short.
    size_t per_chunk = 2 * (s->dim + 4) + s->rows * (s->dim + 4) * 5 / 4 + 1024;
    char map[32];
    snprintf(map, sizeof map, "%zu", per_chunk * s->n + ((size_t)256 << 20));
    setenv("M3_INDEX_MAP_SIZE", map, 0);
    m3_index_options opt = {.flags = M3_INDEX_CREATE, .model = &model};
    m3_index *idx = NULL;
    m3_index_writer *w = NULL;
    synth_file f;
    size_t d = s->dim;
    float *colbert = malloc(CHUNKS_PER_FILE * (s->rows ? s->rows : 1) * d * sizeof *colbert);
    char (*text)[512] = malloc(CHUNKS_PER_FILE * sizeof *text);
    m3_status st = M3_STATUS_OK;
    if (!synth_file_alloc(s, &f) || !colbert || !text) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    if ((st = m3_index_open(dir, &opt, &idx, err)) != M3_STATUS_OK ||
        (st = m3_index_writer_new(idx, &w, err)) != M3_STATUS_OK)
        goto done;
    for (size_t no = 0; no < s->files; no++) {
        synth_file_make(s, no, &f);
        m3_embedding emb[CHUNKS_PER_FILE];
        m3_index_chunk_input in[CHUNKS_PER_FILE];
        m3_index_file info = {.state = M3_FILE_DONE, .extractor = "text", .extractor_version = 1, .hash = no};
        for (size_t c = 0; c < f.n; c++) {
            size_t id = no * CHUNKS_PER_FILE + c;
            for (size_t k = 0; k < s->rows; k++)
                memcpy(colbert + (c * s->rows + k) * d, s->pool + (size_t)f.tokens[c * s->rows + k] * d, d * sizeof *colbert);
            emb[c] = (m3_embedding){.tokens = s->rows + 1, .dim = d, .dense = f.dense + c * d,
                                    .sparse = f.sparse + c * MAX_CHUNK_TERMS, .n_sparse = f.n_sparse[c],
                                    .colbert = colbert + c * s->rows * d, .n_colbert = s->rows};
            size_t len = chunk_text(s->seed, id, text[c], sizeof text[c]);
            in[c] = (m3_index_chunk_input){info.size, info.size + len, text[c], len, &emb[c], NULL};
            info.size += len + 1;
            info.tokens += s->rows + 1;
        }
        char path[64];
        file_path(no, path, sizeof path);
        if ((st = m3_index_writer_put_file(w, path, &info, in, f.n, err)) != M3_STATUS_OK) goto done;
        if (m3_index_writer_pending_bytes(w) >= COMMIT_BYTES || no + 1 == s->files) {
            double anon = anon_rss_mib();  // the batch in memory, before its commit
            if (anon > *anon_peak) *anon_peak = anon;
            if ((st = m3_index_writer_commit(w, err)) != M3_STATUS_OK) goto done;
            if (progress)
                fprintf(stderr, "\r\033[Kbuilding: %zu/%zu chunks", (no + 1) * CHUNKS_PER_FILE < s->n ? (no + 1) * CHUNKS_PER_FILE : s->n,
                        s->n);
        }
    }
    if (progress) fputs("\r\033[K", stderr);
done:
    m3_index_writer_free(w);
    m3_index_close(idx);
    synth_file_free(&f);
    free(colbert);
    free(text);
    return st;
}

static void remove_index(const char *dir)
{
    char lock[4300];
    snprintf(lock, sizeof lock, "%s/writer.lock", dir);
    m3_index_remove(dir, NULL);
    unlink(lock);
    rmdir(dir);
}

// ---- the brute-force baseline ------------------------------------------------------------------

typedef struct scored {
    uint32_t id;
    float score;
} scored;

typedef struct brute {
    size_t n, dim, rows;
    float *dense;        // [n][dim]
    uint64_t *off;       // [n + 1] into term / weight
    int32_t *term;
    float *weight;
    uint32_t *tokens;    // [n][rows]
    const float *pool;   // [POOL][dim] (the generator's)
} brute;

static void brute_free(brute *b)
{
    free(b->dense);
    free(b->off);
    free(b->term);
    free(b->weight);
    free(b->tokens);
    memset(b, 0, sizeof *b);
}

static size_t brute_bytes(const brute *b)
{
    return b->n * b->dim * sizeof(float) + (b->n + 1) * 8 + b->off[b->n] * 8 + b->n * b->rows * 4 +
           (size_t)POOL * b->dim * sizeof(float) + VOCAB * sizeof(float);
}

static bool brute_load(const synth *s, brute *b)
{
    memset(b, 0, sizeof *b);
    b->n = s->n;
    b->dim = s->dim;
    b->rows = s->rows;
    b->pool = s->pool;
    size_t cap = s->n * 56;
    b->dense = malloc(s->n * s->dim * sizeof *b->dense);
    b->off = malloc((s->n + 1) * sizeof *b->off);
    b->term = malloc(cap * sizeof *b->term);
    b->weight = malloc(cap * sizeof *b->weight);
    b->tokens = malloc(s->n * (s->rows ? s->rows : 1) * sizeof *b->tokens);
    synth_file f;
    bool ok = synth_file_alloc(s, &f) && b->dense && b->off && b->term && b->weight && b->tokens;
    size_t nnz = 0;
    b->off[0] = 0;
    for (size_t no = 0; ok && no < s->files; no++) {
        synth_file_make(s, no, &f);
        for (size_t c = 0; c < f.n; c++) {
            size_t id = no * CHUNKS_PER_FILE + c;
            memcpy(b->dense + id * s->dim, f.dense + c * s->dim, s->dim * sizeof *b->dense);
            memcpy(b->tokens + id * s->rows, f.tokens + c * s->rows, s->rows * sizeof *b->tokens);
            if (nnz + f.n_sparse[c] > cap) {
                cap = cap * 3 / 2 + MAX_CHUNK_TERMS;
                int32_t *t = realloc(b->term, cap * sizeof *t);
                if (t) b->term = t;
                float *w = realloc(b->weight, cap * sizeof *w);
                if (w) b->weight = w;
                if (!t || !w) {
                    ok = false;
                    break;
                }
            }
            for (size_t k = 0; k < f.n_sparse[c]; k++, nnz++) {
                b->term[nnz] = f.sparse[c * MAX_CHUNK_TERMS + k].id;
                b->weight[nnz] = f.sparse[c * MAX_CHUNK_TERMS + k].weight;
            }
            b->off[id + 1] = nnz;
        }
    }
    synth_file_free(&f);
    if (!ok) brute_free(b);
    return ok;
}

// fp32 dot product with 16 independent lanes (the compiler vectorises it without reassociating).
static float dot16(const float *a, const float *b, size_t d)
{
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= d; i += 16)
        for (size_t l = 0; l < 16; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0;
    for (size_t l = 0; l < 16; l++) s += acc[l];
    for (; i < d; i++) s += a[i] * b[i];
    return s;
}

static void heap_push(scored *h, size_t *n, size_t k, uint32_t id, float score)
{
    if (*n < k) {
        size_t i = (*n)++;
        h[i] = (scored){id, score};
        while (i && h[(i - 1) / 2].score > h[i].score) {
            scored t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
        return;
    }
    if (!(score > h[0].score)) return;
    h[0] = (scored){id, score};
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l].score < h[m].score) m = l;
        if (r < *n && h[r].score < h[m].score) m = r;
        if (m == i) break;
        scored t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

enum { BRUTE_TASK = 8192 };

typedef struct brute_ctx {
    const brute *b;
    const m3_embedding *q;
    const float *qw;     // [VOCAB] query weight per term
    float wdc, ws;
    float *dense, *sparse;  // [n] scores
    scored *top;         // [tasks][RERANK]
    size_t *n_top;       // [tasks]
} brute_ctx;

static void brute_task(void *arg, size_t task, int thread)
{
    (void)thread;
    brute_ctx *c = arg;
    const brute *b = c->b;
    size_t lo = task * BRUTE_TASK, hi = lo + BRUTE_TASK < b->n ? lo + BRUTE_TASK : b->n;
    scored *h = c->top + task * RERANK;
    size_t nh = 0;
    for (size_t i = lo; i < hi; i++) {
        float d = dot16(c->q->dense, b->dense + i * b->dim, b->dim);
        float s = 0;
        for (uint64_t k = b->off[i]; k < b->off[i + 1]; k++) s += c->qw[b->term[k]] * b->weight[k];
        c->dense[i] = d;
        c->sparse[i] = s;
        // Sparse alone: a chunk without any query term is no result (as in the index).
        if (c->wdc > 0 || s > 0) heap_push(h, &nh, RERANK, (uint32_t)i, c->wdc * d + c->ws * s);
    }
    c->n_top[task] = nh;
}

static int cmp_scored_desc(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

// The baseline for one query: its top ids (best chunk per file) in out; returns how many.
static size_t brute_search(const brute *b, m3_threadpool *pool, const m3_embedding *q, const float w[3], float *qw,
                           float *dense, float *sparse, scored *top, size_t *n_top, uint32_t out[TOP])
{
    size_t tasks = (b->n + BRUTE_TASK - 1) / BRUTE_TASK;
    for (size_t i = 0; i < q->n_sparse; i++) qw[q->sparse[i].id] = q->sparse[i].weight;
    brute_ctx c = {b, q, qw, w[0] + w[2], w[1], dense, sparse, top, n_top};
    m3_threadpool_run(pool, tasks, brute_task, &c);
    for (size_t i = 0; i < q->n_sparse; i++) qw[q->sparse[i].id] = 0;
    // Merge the per-task candidates into the best RERANK (the first task's array holds them).
    scored best[RERANK];
    size_t nb = 0;
    for (size_t t = 0; t < tasks; t++)
        for (size_t i = 0; i < n_top[t]; i++) heap_push(best, &nb, RERANK, top[t * RERANK + i].id, top[t * RERANK + i].score);
    // ColBERT MaxSim (fp32) for those, then the hybrid score.
    float wsum = w[0] + w[1] + w[2];
    for (size_t i = 0; i < nb; i++) {
        uint32_t id = best[i].id;
        double total = 0;
        for (size_t r = 0; r < q->n_colbert; r++) {
            float m = -INFINITY;
            for (size_t k = 0; k < b->rows; k++) {
                float s = dot16(q->colbert + r * b->dim, b->pool + (size_t)b->tokens[id * b->rows + k] * b->dim, b->dim);
                if (s > m) m = s;
            }
            total += m;
        }
        float col = q->n_colbert && b->rows ? (float)(total / (double)q->n_colbert) : 0;
        best[i].score = (w[0] * dense[id] + w[1] * sparse[id] + w[2] * col) / wsum;
    }
    qsort(best, nb, sizeof *best, cmp_scored_desc);
    size_t n = 0;
    for (size_t i = 0; i < nb && n < TOP; i++) {
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++) seen = out[j] / CHUNKS_PER_FILE == best[i].id / CHUNKS_PER_FILE;
        if (!seen) out[n++] = best[i].id;
    }
    return n;
}

// ---- one size ----------------------------------------------------------------------------------

typedef struct result {
    size_t n, files, queries;
    bool reused, rss_reset;
    double build_s, build_rss_mib, build_anon_mib, search_rss_mib, search_anon_mib, brute_mib;
    const char *colbert;  // the index's ColBERT storage
    float weights[3];
    double cpu, brute_cpu;  // mean CPU ms per query, all threads
    double p50, p99, mean, again_p50, again_p99, again_mean, brute_p50, brute_p99, brute_mean, recall;
    uint64_t disk_bytes;
    m3_index_stats stats;
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void percentiles(double *v, size_t n, double *p50, double *p99, double *mean)
{
    qsort(v, n, sizeof *v, cmp_double);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += v[i];
    *mean = s / (double)n;
    *p50 = v[(size_t)ceil(0.50 * (double)n) - 1];
    *p99 = v[(size_t)ceil(0.99 * (double)n) - 1];
}

static bool index_matches(const char *dir, const synth *s)
{
    m3_index_model model;
    model_for(s, &model);
    m3_index_options opt = {.flags = M3_INDEX_READONLY, .model = &model};
    m3_index *idx;
    if (m3_index_open(dir, &opt, &idx, NULL) != M3_STATUS_OK) return false;
    // Files are committed in order: the last one present means the build finished.
    char path[64];
    file_path(s->files - 1, path, sizeof path);
    m3_index_file f;
    bool ok = m3_index_get_file(idx, path, &f, NULL) == M3_STATUS_OK &&
              (size_t)f.first_chunk + f.n_chunks == s->n;
    m3_index_close(idx);
    return ok;
}

static int run_size(const synth *s, const char *dir, size_t n_queries, const float weights[3], bool progress,
                    bool brute_force, result *res, m3_error *err)
{
    memset(res, 0, sizeof *res);
    res->n = s->n;
    res->files = s->files;
    res->queries = n_queries;
    memcpy(res->weights, weights, sizeof res->weights);
    res->rss_reset = peak_rss_reset();
    // 1. The index, through the writer.
    if (index_matches(dir, s)) {
        res->reused = true;
    } else {
        remove_index(dir);
        double t0 = m3_cli_now();
        if (build_index(s, dir, progress, &res->build_anon_mib, err) != M3_STATUS_OK) return -1;
        res->build_s = m3_cli_now() - t0;
    }
    res->build_rss_mib = peak_rss_mib();
#ifdef __GLIBC__
    malloc_trim(0);  // the build's freed batches, so that the search's heap is its own
#endif
    char path[4300];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat sb;
    if (stat(path, &sb) == 0) res->disk_bytes = (uint64_t)sb.st_blocks * 512;
    query *q = queries_make(s, n_queries + WARMUP);
    uint32_t(*found)[TOP] = calloc(n_queries, sizeof *found);
    size_t *n_found = calloc(n_queries, sizeof *n_found);
    double *lat = malloc(n_queries * sizeof *lat), *lat_again = malloc(n_queries * sizeof *lat_again);
    int rc = -1;
    m3_index *idx = NULL;
    m3_threadpool *pool = NULL;
    brute b = {0};
    float *qw = NULL, *dense = NULL, *sparse = NULL;
    scored *top = NULL;
    size_t *n_top = NULL;
    if (!q || !found || !n_found || !lat || !lat_again) {
        m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    // 2. The index search: warm-up queries (the first touch of the map's pages is not the steady
    // state), then the timed ones. The peak RSS is measured from here, before the baseline's data.
    m3_index_options opt = {.flags = M3_INDEX_READONLY};
    if (m3_index_open(dir, &opt, &idx, err) != M3_STATUS_OK) goto done;
    res->colbert = m3_colbert_storage_name(m3_index_get_colbert(idx, NULL));
    res->rss_reset = peak_rss_reset() && res->rss_reset;
    m3_search_options so = m3_search_options_default();
    memcpy(so.weights, weights, sizeof so.weights);
    // Each timed query runs twice in a row: the first run maps the pages it reads for the first
    // time in this process (as a fresh `m3 search` does), the repeat finds them mapped (as a
    // long-running process searching again does).
    for (size_t i = 0; i < n_queries + WARMUP; i++) {
        for (int again = 0; again < (i >= WARMUP ? 2 : 1); again++) {
            m3_search_hit *hits;
            size_t nh;
            double c0 = cpu_seconds(), t0 = m3_cli_now();
            if (m3_index_search(idx, &q[i].emb, &so, &hits, &nh, err) != M3_STATUS_OK) goto done;
            double t1 = m3_cli_now(), c1 = cpu_seconds();
            if (i >= WARMUP) {
                size_t j = i - WARMUP;
                (again ? lat_again : lat)[j] = (t1 - t0) * 1e3;
                if (!again) res->cpu += (c1 - c0) * 1e3 / (double)n_queries;
                for (size_t k = 0; !again && k < nh && k < TOP; k++) found[j][n_found[j]++] = hits[k].chunk_id;
            }
            m3_search_hits_free(hits, nh);
        }
        double anon = anon_rss_mib();
        if (anon > res->search_anon_mib) res->search_anon_mib = anon;
    }
    res->search_rss_mib = peak_rss_mib();
    // After the peak is read: the statistics read every ColBERT value.
    if (m3_index_get_stats(idx, &res->stats, err) != M3_STATUS_OK) goto done;
    m3_index_close(idx);
    idx = NULL;
    percentiles(lat, n_queries, &res->p50, &res->p99, &res->mean);
    percentiles(lat_again, n_queries, &res->again_p50, &res->again_p99, &res->again_mean);
    if (!brute_force) {
        rc = 0;
        goto done;
    }
    // 3. The baseline, on the same data regenerated into memory.
    if (!brute_load(s, &b)) {
        m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory for the brute-force data (%zu chunks)", s->n);
        goto done;
    }
    res->brute_mib = (double)brute_bytes(&b) / (1 << 20);
    size_t tasks = (s->n + BRUTE_TASK - 1) / BRUTE_TASK;
    qw = calloc(VOCAB, sizeof *qw);
    dense = malloc(s->n * sizeof *dense);
    sparse = malloc(s->n * sizeof *sparse);
    top = malloc(tasks * RERANK * sizeof *top);
    n_top = malloc(tasks * sizeof *n_top);
    if (!qw || !dense || !sparse || !top || !n_top || m3_threadpool_new(0, &pool, err) != M3_STATUS_OK) {
        if (!pool) m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto done;
    }
    double hits_total = 0, expected_total = 0;
    for (size_t i = 0; i < n_queries + WARMUP; i++) {
        uint32_t best[TOP];
        double c0 = cpu_seconds(), t0 = m3_cli_now();
        size_t nb = brute_search(&b, pool, &q[i].emb, so.weights, qw, dense, sparse, top, n_top, best);
        double t1 = m3_cli_now(), c1 = cpu_seconds();
        if (i < WARMUP) continue;
        size_t j = i - WARMUP;
        lat[j] = (t1 - t0) * 1e3;
        res->brute_cpu += (c1 - c0) * 1e3 / (double)n_queries;
        for (size_t k = 0; k < nb; k++)
            for (size_t m = 0; m < n_found[j]; m++)
                if (found[j][m] == best[k]) {
                    hits_total++;
                    break;
                }
        expected_total += (double)nb;
    }
    percentiles(lat, n_queries, &res->brute_p50, &res->brute_p99, &res->brute_mean);
    res->recall = expected_total > 0 ? hits_total / expected_total : 0;
    rc = 0;
done:
    m3_index_close(idx);
    m3_threadpool_free(pool);
    brute_free(&b);
    free(qw);
    free(dense);
    free(sparse);
    free(top);
    free(n_top);
    queries_free(q, n_queries + WARMUP);
    free(found);
    free(n_found);
    free(lat);
    free(lat_again);
    return rc;
}

// ---- the command -------------------------------------------------------------------------------

static bool parse_sizes(const char *list, size_t *sizes, size_t *n)
{
    *n = 0;
    for (const char *p = list; *p;) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p || (*end && *end != ',') || v < 1 || v > 100000000 || *n == MAX_SIZES) return false;
        sizes[(*n)++] = (size_t)v;
        p = *end ? end + 1 : end;
    }
    return *n > 0;
}

// "key": value with the format, or null when the figure was not measured.
static void json_num(const char *key, const char *fmt, double v, bool valid)
{
    printf(", \"%s\": ", key);
    if (valid) printf(fmt, v);
    else fputs("null", stdout);
}

static void print_json(const result *r, const synth *s, int threads)
{
    const m3_index_stats *st = &r->stats;
    bool built = !r->reused, measured = r->brute_p50 > 0;
    printf("{\"chunks\": %zu, \"files\": %zu, \"dim\": %zu, \"colbert_tokens\": %zu, \"colbert_storage\": \"%s\", "
           "\"weights\": [%g, %g, %g], \"queries\": %zu, \"threads\": %d, \"reused_index\": %s",
           r->n, r->files, s->dim, s->rows, r->colbert ? r->colbert : "?", r->weights[0], r->weights[1],
           r->weights[2], r->queries, threads, r->reused ? "true" : "false");
    json_num("build_s", "%.2f", r->build_s, built);
    json_num("build_peak_rss_mib", "%.0f", r->build_rss_mib, built);
    json_num("build_peak_anon_mib", "%.0f", r->build_anon_mib, built);
    json_num("index_disk_mib", "%.1f", (double)r->disk_bytes / (1 << 20), true);
    json_num("index_bytes_per_chunk", "%.0f", (double)r->disk_bytes / (double)r->n, true);
    json_num("colbert_bytes_per_token", "%.1f",
             st->colbert_tokens ? (double)st->colbert_value_bytes / (double)st->colbert_tokens : 0, st->colbert_tokens);
    json_num("search_p50_ms", "%.3f", r->p50, true);
    json_num("search_p99_ms", "%.3f", r->p99, true);
    json_num("search_mean_ms", "%.3f", r->mean, true);
    json_num("search_cpu_ms", "%.3f", r->cpu, true);
    json_num("repeat_p50_ms", "%.3f", r->again_p50, true);
    json_num("repeat_p99_ms", "%.3f", r->again_p99, true);
    json_num("search_peak_rss_mib", "%.0f", r->search_rss_mib, true);
    json_num("search_peak_anon_mib", "%.0f", r->search_anon_mib, true);
    printf(", \"rss_peak_reset\": %s", r->rss_reset ? "true" : "false");
    json_num("brute_p50_ms", "%.3f", r->brute_p50, measured);
    json_num("brute_p99_ms", "%.3f", r->brute_p99, measured);
    json_num("brute_mean_ms", "%.3f", r->brute_mean, measured);
    json_num("brute_cpu_ms", "%.3f", r->brute_cpu, measured);
    json_num("brute_data_mib", "%.0f", r->brute_mib, measured);
    json_num("speedup_p50", "%.2f", r->brute_p50 / r->p50, measured);
    json_num("speedup_p99", "%.2f", r->brute_p99 / r->p99, measured);
    json_num("recall_at_10", "%.4f", r->recall, measured);
    puts("}");
}

static void print_table(const result *r, const synth *s, int threads)
{
    const m3_index_stats *st = &r->stats;
    printf("%zu chunks (%zu files), dim %zu, %zu ColBERT rows per chunk (%s), %zu queries, %d threads\n", r->n,
           r->files, s->dim, s->rows, r->colbert ? r->colbert : "?", r->queries, threads);
    if (r->reused)
        printf("  build      reused (built by an earlier --keep run)\n");
    else
        printf("  build      %.1f s (%.0f chunks/s), peak RSS %.0f MiB (heap %.0f MiB)\n", r->build_s,
               (double)r->n / r->build_s, r->build_rss_mib, r->build_anon_mib);
    printf("  disk       %.2f GiB (%.0f B per chunk; ColBERT %.1f B per token)\n", (double)r->disk_bytes / (1 << 30),
           (double)r->disk_bytes / (double)r->n,
           st->colbert_tokens ? (double)st->colbert_value_bytes / (double)st->colbert_tokens : 0.0);
    printf("  index      p50 %8.2f ms   p99 %8.2f ms   mean %8.2f ms   CPU %.2f ms   peak RSS %.0f MiB%s, heap %.0f MiB\n",
           r->p50, r->p99, r->mean, r->cpu, r->search_rss_mib, r->rss_reset ? "" : " (whole process)",
           r->search_anon_mib);
    printf("  repeated   p50 %8.2f ms   p99 %8.2f ms   mean %8.2f ms   (the same query again: its pages mapped)\n",
           r->again_p50, r->again_p99, r->again_mean);
    if (r->brute_p50 > 0) {
        printf("  brute      p50 %8.2f ms   p99 %8.2f ms   mean %8.2f ms   CPU %.2f ms   data %.0f MiB\n",
               r->brute_p50, r->brute_p99, r->brute_mean, r->brute_cpu, r->brute_mib);
        printf("  ratio      %.1f× at p50, %.1f× at p99; recall@10 %.3f\n", r->brute_p50 / r->p50,
               r->brute_p99 / r->p99, r->recall);
    }
    fflush(stdout);
}

int m3_cmd_bench_search(int argc, char **argv)
{
    static const struct option options[] = {
        {"chunks", required_argument, NULL, 'n'},
        {"queries", required_argument, NULL, 'q'},
        {"dim", required_argument, NULL, 'd'},
        {"colbert-tokens", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},
        {"index", required_argument, NULL, 'i'},
        {"keep", no_argument, NULL, 'k'},
        {"no-brute", no_argument, NULL, 'B'},
        {"weights", required_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    size_t sizes[MAX_SIZES], n_sizes = 0, n_queries = 200, dim = 1024, rows = 16, seed = 1;
    const char *index_dir = NULL;
    bool keep = false, json = false, brute_force = true;
    float weights[3];
    memcpy(weights, m3_search_options_default().weights, sizeof weights);
    parse_sizes("100000,1000000", sizes, &n_sizes);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!parse_sizes(optarg, sizes, &n_sizes)) {
                m3_cli_fail("bench search", "--chunks: expected N,... with 1 <= N <= 100000000");
                return M3_EXIT_USAGE;
            }
            break;
        case 'q':
            if (!m3_cli_parse_size("bench search", "--queries", optarg, 1, 1000000, &n_queries)) return M3_EXIT_USAGE;
            break;
        case 'd':
            if (!m3_cli_parse_size("bench search", "--dim", optarg, 8, 8192, &dim)) return M3_EXIT_USAGE;
            break;
        case 't':
            if (!m3_cli_parse_size("bench search", "--colbert-tokens", optarg, 1, 512, &rows)) return M3_EXIT_USAGE;
            break;
        case 's':
            if (!m3_cli_parse_size("bench search", "--seed", optarg, 0, SIZE_MAX, &seed)) return M3_EXIT_USAGE;
            break;
        case 'i': index_dir = optarg; break;
        case 'k': keep = true; break;
        case 'B': brute_force = false; break;
        case 'w':
            if (!m3_cli_parse_weights("bench search", optarg, weights)) return M3_EXIT_USAGE;
            break;
        case 'j': json = true; break;
        case 'h': fputs(usage_text, stdout); return M3_EXIT_OK;
        default: fputs(usage_text, stderr); return M3_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(usage_text, stderr);
        return M3_EXIT_USAGE;
    }
    char tmp[4096] = "";
    if (!index_dir) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/m3-bench-search-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp)) return m3_cli_fail("bench search", "cannot create a folder in %s: %s", t && *t ? t : "/tmp",
                                              strerror(errno));
        index_dir = tmp;
    } else if (mkdir(index_dir, 0700) != 0 && errno != EEXIST) {
        return m3_cli_fail("bench search", "cannot create %s: %s", index_dir, strerror(errno));
    }
    int threads = 1;
    {
        m3_threadpool *p;
        if (m3_threadpool_new(0, &p, NULL) == M3_STATUS_OK) threads = m3_threadpool_size(p);
        m3_threadpool_free(p);
    }
    int status = M3_EXIT_OK;
    bool progress = !json && isatty(2);
    for (size_t i = 0; i < n_sizes && status == M3_EXIT_OK; i++) {
        synth s;
        if (!synth_init(&s, sizes[i], dim, rows, seed)) {
            status = m3_cli_fail("bench search", "out of memory");
            break;
        }
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/n%zu-d%zu-t%zu", index_dir, sizes[i], dim, rows);
        result r;
        m3_error err = {0};
        if (run_size(&s, dir, n_queries, weights, progress, brute_force, &r, &err) != 0) status = m3_cli_fail_error("bench search", &err);
        else if (json) print_json(&r, &s, threads), fflush(stdout);
        else print_table(&r, &s, threads);
        if (!keep) remove_index(dir);
        synth_free(&s);
    }
    if (tmp[0] && !keep) rmdir(tmp);
    return status;
}
