// SPDX-License-Identifier: MIT
//
// m3_index_check: every invariant between the tables, in one read transaction.
//   files[path] ↔ fileids[file_id]; each file's chunk range has a chunk record pointing back to it,
//   text that decompresses, a dense value, a ColBERT value (of the index's storage kind and
//   pooling, covering the chunk's tokens; none without multi-vectors) and a forward sparse vector;
//   its live bit is set; every chunk record belongs to a file; the postings hold exactly the
//   forward vectors' (term, chunk) pairs; chunk ids are below next_chunk. A file's chunks go
//   forward (their starts and ends never decrease) and each range is what its kind of text allows
//   (offsets_are_bytes).
#include <stdarg.h>
#include <stdlib.h>

#include "index/index-private.h"

typedef struct checker {
    m3_index *idx;
    MDB_txn *txn;
    void (*report)(const char *, void *);
    void *user;
    uint64_t problems;
} checker;

__attribute__((format(printf, 2, 3))) static void problem(checker *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->problems++;
    if (c->report && c->problems <= 100) c->report(buf, c->user);
}

static bool has_key(checker *c, MDB_dbi dbi, uint32_t id, MDB_val *v)
{
    unsigned char kb[4];
    MDB_val k, tmp;
    key_be32(&k, kb, id);
    return mdb_get(c->txn, dbi, &k, v ? v : &tmp) == 0;
}

// Whether a file's chunk offsets are bytes of the file. The index keeps the name of the extractor
// that read a file, not the kind of its text, so the kind comes from that name: core/extract's own
// extractors ("text", "markdown", "code") decode the file as text and map each chunk back to the
// file's bytes, so a range lies within the file's size; every document extractor (PDF, office,
// EPUB, HTML, mail, RTF, gzip: app/extract, registered on top) builds its text (derived text,
// m3_extracted.derived), and its offsets are positions in that text, which may be longer than the
// file (gzip) or shorter (PDF). A derived chunk's stored text is exactly the text between its
// offsets, so its range must be as long as that text (the index does not keep the whole text's
// length). A file written without an extractor name (the index's own tests, benchmarks) gave file
// offsets.
static bool offsets_are_bytes(const char *extractor)
{
    return !extractor[0] || !strcmp(extractor, "text") || !strcmp(extractor, "markdown") || !strcmp(extractor, "code");
}

static bool live_bit(checker *c, uint32_t id)
{
    MDB_val v;
    if (!has_key(c, c->idx->bits, id / BITS_BLOCK, &v)) return false;
    if (v.mv_size != BITS_LIVE_BYTES + (size_t)BITS_BLOCK * c->idx->code_bytes) return false;
    size_t slot = id % BITS_BLOCK;
    return ((const unsigned char *)v.mv_data)[slot / 8] >> (slot % 8) & 1;
}

m3_status m3_index_check(m3_index *idx, void (*report)(const char *, void *), void *user, uint64_t *problems,
                         m3_error *err)
{
    checker c = {idx, NULL, report, user, 0};
    int rc = m3_index_begin_read(idx, &c.txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    uint32_t next_chunk = 0;
    {
        MDB_val k = {10, "next_chunk"}, v;
        if (mdb_get(c.txn, idx->meta, &k, &v) || v.mv_size != 4) problem(&c, "header: next_chunk missing");
        else memcpy(&next_chunk, v.mv_data, 4);
    }
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t chunks_of_files = 0, files = 0;
    m3_status s = M3_STATUS_OK;
    // Files.
    if ((rc = mdb_cursor_open(c.txn, idx->files, &cur))) goto mdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        files++;
        char path[512];
        size_t pl = k.mv_size < sizeof path - 1 ? k.mv_size : sizeof path - 1;
        memcpy(path, k.mv_data, pl);
        path[pl] = 0;
        m3_index_file f;
        if (m3_index_read_file(idx, c.txn, path, &f, NULL) != M3_STATUS_OK) {
            problem(&c, "%s: bad file record", path);
            continue;
        }
        MDB_val pv;
        if (!has_key(&c, idx->fileids, f.file_id, &pv) || pv.mv_size != k.mv_size ||
            memcmp(pv.mv_data, k.mv_data, k.mv_size))
            problem(&c, "%s: file id %u does not map back to it", path, f.file_id);
        if ((uint64_t)f.first_chunk + f.n_chunks > next_chunk)
            problem(&c, "%s: chunks %u..%u beyond the next chunk id %u", path, f.first_chunk,
                    f.first_chunk + f.n_chunks, next_chunk);
        chunks_of_files += f.n_chunks;
        bool bytes = offsets_are_bytes(f.extractor);
        uint64_t prev_start = 0, prev_end = 0;
        for (uint32_t i = 0; i < f.n_chunks; i++) {
            uint32_t id = f.first_chunk + i;
            chunk_rec r;
            if (m3_index_read_chunk(idx, c.txn, id, &r, NULL) != M3_STATUS_OK) {
                problem(&c, "%s: chunk %u missing", path, id);
                continue;
            }
            if (r.file_id != f.file_id) problem(&c, "%s: chunk %u belongs to file %u", path, id, r.file_id);
            char *text;
            size_t len;
            bool has_text = m3_index_read_text(idx, c.txn, id, &text, &len, NULL) == M3_STATUS_OK;
            if (!has_text) problem(&c, "%s: chunk %u: bad text", path, id);
            else free(text);
            if (r.start > r.end) {
                problem(&c, "%s: chunk %u has the range %llu..%llu, which ends before it starts", path, id,
                        (unsigned long long)r.start, (unsigned long long)r.end);
            } else if (bytes && r.end > f.size) {
                problem(&c, "%s: chunk %u has byte range %llu..%llu, past the file's %llu bytes", path, id,
                        (unsigned long long)r.start, (unsigned long long)r.end, (unsigned long long)f.size);
            } else if (!bytes && has_text && r.end - r.start != len) {
                problem(&c, "%s: chunk %u has text range %llu..%llu of the %s extractor's text, but %zu bytes of text",
                        path, id, (unsigned long long)r.start, (unsigned long long)r.end, f.extractor, len);
            }
            // Chunks are cut from the text front to back; a later one never starts or ends before
            // an earlier one (they may overlap: the chunker repeats sentences).
            if (i && (r.start < prev_start || r.end < prev_end))
                problem(&c, "%s: chunk %u (%llu..%llu) goes back before chunk %u (%llu..%llu)", path, id,
                        (unsigned long long)r.start, (unsigned long long)r.end, id - 1, (unsigned long long)prev_start,
                        (unsigned long long)prev_end);
            prev_start = r.start;
            prev_end = r.end;
            m3_embedding e;
            if (m3_index_read_embedding(idx, c.txn, id, M3_OUTPUT_ALL, &e, NULL) != M3_STATUS_OK) {
                problem(&c, "%s: chunk %u: vectors missing or bad", path, id);
            } else {
                if (idx->colbert_kind != COLBERT_NONE && e.tokens != r.tokens)
                    problem(&c, "%s: chunk %u: multi-vectors for %zu tokens, the chunk has %u", path, id,
                            e.tokens, r.tokens);
                for (size_t t = 1; t < e.n_sparse; t++)
                    if (e.sparse[t].id <= e.sparse[t - 1].id) {
                        problem(&c, "%s: chunk %u: forward sparse vector unsorted", path, id);
                        break;
                    }
                m3_embedding_clear(&e);
            }
            if (!live_bit(&c, id)) problem(&c, "%s: chunk %u: no sign code", path, id);
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) goto mdb_fail;
    // Chunks that no file owns, and the tables' sizes.
    MDB_stat st;
    MDB_dbi per_chunk[] = {idx->chunks, idx->text, idx->dense, idx->colbert, idx->fwd};
    const char *names[] = {"chunks", "text", "dense", "colbert", "forward"};
    for (size_t t = 0; t < 5; t++) {
        if ((rc = mdb_stat(c.txn, per_chunk[t], &st))) goto mdb_fail;
        // An index without multi-vectors keeps its colbert table empty.
        uint64_t want = t == 3 && idx->colbert_kind == COLBERT_NONE ? 0 : chunks_of_files;
        if (st.ms_entries != want)
            problem(&c, "table %s has %zu entries, the files own %llu chunks", names[t], st.ms_entries,
                    (unsigned long long)want);
    }
    if ((rc = mdb_stat(c.txn, idx->fileids, &st))) goto mdb_fail;
    if (st.ms_entries != files) problem(&c, "%zu file ids for %llu files", st.ms_entries, (unsigned long long)files);
    // Live bits.
    uint64_t live = 0;
    if ((rc = mdb_cursor_open(c.txn, idx->bits, &cur))) goto mdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 4 || v.mv_size != BITS_LIVE_BYTES + (size_t)BITS_BLOCK * idx->code_bytes) {
            problem(&c, "bad sign-code block");
            continue;
        }
        uint32_t base = get_be32(k.mv_data) * BITS_BLOCK;
        const unsigned char *lb = v.mv_data;
        for (uint32_t slot = 0; slot < BITS_BLOCK; slot++)
            if (lb[slot / 8] >> (slot % 8) & 1) {
                live++;
                if (!has_key(&c, idx->chunks, base + slot, NULL)) problem(&c, "sign code of a missing chunk %u", base + slot);
            }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) goto mdb_fail;
    if (live != chunks_of_files) problem(&c, "%llu sign codes for %llu chunks", (unsigned long long)live,
                                         (unsigned long long)chunks_of_files);
    // Postings: each (term, chunk) must be in that chunk's forward vector; counts must match.
    uint64_t postings = 0, forward = 0;
    if ((rc = mdb_cursor_open(c.txn, idx->post, &cur))) goto mdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        posting_block b;
        if (k.mv_size != 8 || !posting_block_parse(&v, &b)) {
            problem(&c, "bad postings block");
            continue;
        }
        uint32_t term = get_be32(k.mv_data), first = get_be32((unsigned char *)k.mv_data + 4);
        if (posting_id(&b, 0) != first) problem(&c, "postings block of term %u keyed %u starts at %u", term, first, posting_id(&b, 0));
        for (size_t i = 0; i < b.count; i++) {
            uint32_t id = posting_id(&b, i);
            if (i && id <= posting_id(&b, i - 1)) problem(&c, "postings of term %u unsorted", term);
            MDB_val fv;
            bool found = false;
            if (has_key(&c, idx->fwd, id, &fv))
                for (size_t t = 0; t + 8 <= fv.mv_size && !found; t += 8) {
                    uint32_t x;
                    memcpy(&x, (const char *)fv.mv_data + t, 4);
                    found = x == term;
                }
            if (!found) problem(&c, "posting (term %u, chunk %u) without a forward entry", term, id);
            postings++;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) goto mdb_fail;
    if ((rc = mdb_cursor_open(c.txn, idx->fwd, &cur))) goto mdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        forward += v.mv_size / 8;
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) goto mdb_fail;
    if (postings != forward) problem(&c, "%llu postings for %llu forward entries", (unsigned long long)postings,
                                     (unsigned long long)forward);
    mdb_txn_abort(c.txn);
    *problems = c.problems;
    return s;
mdb_fail:
    mdb_txn_abort(c.txn);
    *problems = c.problems + 1;
    return m3_index_mdb_error(idx, rc, "check", err);
}
