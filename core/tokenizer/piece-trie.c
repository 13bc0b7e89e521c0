// SPDX-License-Identifier: MIT
#include "tokenizer/piece-trie-private.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_ref {
    const unsigned char *s;
    uint32_t len;
    int32_t id;
} key_ref;

static int key_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

// A node waiting for its children to be placed: keys[lo..hi) share the first depth bytes.
typedef struct pending {
    int32_t node;
    size_t lo, hi;
    uint32_t depth;
} pending;

typedef struct builder {
    m3_piece_trie_unit *units;
    int32_t *ids;
    // Free slots form a doubly linked list so that placing a node visits free slots only.
    int32_t *next_free, *prev_free;
    int32_t free_head;  // -1 when empty
    size_t size;
} builder;

static bool builder_grow(builder *b, size_t want)
{
    if (want <= b->size) return true;
    if (want > (size_t)INT32_MAX - 512) return false;
    size_t ncap = b->size ? b->size : 1024;
    while (ncap < want) ncap *= 2;
    if (ncap > (size_t)INT32_MAX - 512) ncap = (size_t)INT32_MAX - 512;
    m3_piece_trie_unit *u = realloc(b->units, ncap * sizeof *u);
    if (!u) return false;
    b->units = u;
    int32_t *ids = realloc(b->ids, ncap * sizeof *ids);
    if (!ids) return false;
    b->ids = ids;
    int32_t *nf = realloc(b->next_free, ncap * sizeof *nf);
    if (!nf) return false;
    b->next_free = nf;
    int32_t *pf = realloc(b->prev_free, ncap * sizeof *pf);
    if (!pf) return false;
    b->prev_free = pf;
    // Append the new slots to the free list, in order, before the old head's ring end.
    int32_t last = -1;
    if (b->free_head >= 0) {
        last = b->prev_free[b->free_head];  // the ring's tail
    }
    for (size_t i = b->size; i < ncap; i++) {
        b->units[i].base = 0;
        b->units[i].check = -1;
        b->ids[i] = -1;
        int32_t idx = (int32_t)i;
        if (last < 0) {
            b->free_head = idx;
            b->next_free[idx] = b->prev_free[idx] = idx;
        } else {
            int32_t head = b->free_head;
            b->next_free[last] = idx;
            b->prev_free[idx] = last;
            b->next_free[idx] = head;
            b->prev_free[head] = idx;
        }
        last = idx;
    }
    b->size = ncap;
    return true;
}

static void builder_take(builder *b, int32_t slot)
{
    int32_t n = b->next_free[slot], p = b->prev_free[slot];
    if (n == slot) {
        b->free_head = -1;
    } else {
        b->next_free[p] = n;
        b->prev_free[n] = p;
        if (b->free_head == slot) b->free_head = n;
    }
}

// Finds a base at which every label's slot is free, growing the arrays as needed.
static bool builder_place(builder *b, const unsigned char *labels, size_t n_labels, int32_t *base_out)
{
    for (;;) {
        if (b->free_head < 0 && !builder_grow(b, b->size * 2)) return false;
        int32_t slot = b->free_head;
        do {
            int32_t base = slot - labels[0];
            if (base >= 1) {
                bool ok = true;
                for (size_t i = 1; i < n_labels && ok; i++) {
                    size_t t = (size_t)base + labels[i];
                    if (t < b->size && b->units[t].check != -1) ok = false;
                }
                if (ok) {
                    if (!builder_grow(b, (size_t)base + 256 + 1)) return false;
                    *base_out = base;
                    return true;
                }
            }
            slot = b->next_free[slot];
        } while (slot != b->free_head);
        // Every free slot failed: add room at the end and try again from there.
        if (!builder_grow(b, b->size * 2)) return false;
    }
}

m3_status m3_piece_trie_build(m3_piece_trie *trie, size_t n, const unsigned char *const *keys,
                              const uint32_t *lens, const int32_t *ids, const char *name,
                              m3_error *err)
{
    memset(trie, 0, sizeof *trie);
    key_ref *refs = malloc((n ? n : 1) * sizeof *refs);
    size_t q_cap = 1024;
    pending *queue = malloc(q_cap * sizeof *queue);
    builder b = {.free_head = -1};
    m3_status status = M3_STATUS_NOMEM;
    if (!refs || !queue || !builder_grow(&b, 1024)) goto fail;
    for (size_t i = 0; i < n; i++) refs[i] = (key_ref){keys[i], lens[i], ids[i]};
    qsort(refs, n, sizeof *refs, key_cmp);

    builder_take(&b, 0);
    b.units[0].check = -2;  // the root is nobody's child
    size_t q_head = 0, q_tail = 0;
    queue[q_tail++] = (pending){0, 0, n, 0};
    unsigned char labels[256];
    while (q_head < q_tail) {
        pending pn = queue[q_head++];
        size_t lo = pn.lo;
        // Keys that end here (sorted first, largest id last): the node's id.
        while (lo < pn.hi && refs[lo].len == pn.depth) {
            b.ids[pn.node] = refs[lo].id;
            lo++;
        }
        size_t n_labels = 0;
        for (size_t i = lo; i < pn.hi; i++) {
            unsigned char c = refs[i].s[pn.depth];
            if (n_labels == 0 || labels[n_labels - 1] != c) labels[n_labels++] = c;
        }
        if (n_labels == 0) continue;  // a leaf: its base is fixed up below
        int32_t base;
        if (!builder_place(&b, labels, n_labels, &base)) {
            status = b.size > (size_t)INT32_MAX / 2 ? M3_STATUS_LIMIT : M3_STATUS_NOMEM;
            goto fail;
        }
        b.units[pn.node].base = base;
        size_t i = lo;
        for (size_t k = 0; k < n_labels; k++) {
            int32_t child = base + labels[k];
            builder_take(&b, child);
            b.units[child].check = pn.node;
            size_t start = i;
            while (i < pn.hi && refs[i].s[pn.depth] == labels[k]) i++;
            if (q_tail == q_cap) {
                // Entries before q_head are done: slide the live ones down before growing.
                memmove(queue, queue + q_head, (q_tail - q_head) * sizeof *queue);
                q_tail -= q_head;
                q_head = 0;
                if (q_tail > q_cap / 2) {
                    pending *nq = realloc(queue, 2 * q_cap * sizeof *nq);
                    if (!nq) goto fail;
                    queue = nq;
                    q_cap *= 2;
                }
            }
            queue[q_tail++] = (pending){child, start, i, pn.depth + 1};
        }
    }
    // Trim to the used part plus 256 free slots, and point every leaf's base into that padding,
    // where no check can match: lookups need no bounds test.
    size_t used = 1;
    for (size_t i = 0; i < b.size; i++)
        if (b.units[i].check != -1) used = i + 1;
    size_t size = used + 256;
    if (!builder_grow(&b, size)) goto fail;
    for (size_t i = 0; i < size; i++) {
        if (b.units[i].check == -1) continue;
        if (b.units[i].base == 0) b.units[i].base = (int32_t)used;
    }
    m3_piece_trie_unit *units = realloc(b.units, size * sizeof *units);
    int32_t *tids = realloc(b.ids, size * sizeof *tids);
    if (units) b.units = units;
    if (tids) b.ids = tids;
    free(b.next_free);
    free(b.prev_free);
    free(refs);
    free(queue);
    trie->units = b.units;
    trie->ids = b.ids;
    trie->size = size;
    return M3_STATUS_OK;
fail:
    free(b.units);
    free(b.ids);
    free(b.next_free);
    free(b.prev_free);
    free(refs);
    free(queue);
    return m3_error_set(err, status, 0, "%s: cannot build the piece trie: %s", name,
                        status == M3_STATUS_LIMIT ? "too many nodes" : "out of memory");
}

m3_status m3_piece_trie_borrow(m3_piece_trie *trie, const m3_piece_trie_unit *units, const int32_t *ids,
                               size_t size, size_t n_ids, const char *name, m3_error *err)
{
    memset(trie, 0, sizeof *trie);
    if (size < 257 || size > (size_t)INT32_MAX)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: piece trie of %zu nodes (at least 257, at most 2^31)",
                            name, size);
    if (n_ids > (size_t)INT32_MAX)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: piece trie for %zu ids", name, n_ids);
    if (units[0].check >= 0)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: piece trie: the root has a parent (%d)", name,
                            (int)units[0].check);
    // One bit per id: an id on two nodes means two texts for one id.
    unsigned char *seen = calloc(n_ids / 8 + 1, 1);
    if (!seen) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory checking the piece trie", name);
    const int64_t max_base = (int64_t)size - 256, max_id = (int64_t)n_ids;
    m3_status st = M3_STATUS_OK;
    for (size_t i = 0; i < size && st == M3_STATUS_OK; i++) {
        int32_t base = units[i].base, id = ids[i];
        if (base < 0 || base > max_base)
            st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: piece trie: node %zu has base %d, outside [0, %lld]",
                              name, i, (int)base, (long long)max_base);
        else if (id < -1 || id >= max_id)
            st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: piece trie: node %zu has id %d (%zu ids)", name, i,
                              (int)id, n_ids);
        else if (id >= 0 && (seen[id / 8] >> (id % 8) & 1))
            st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: piece trie: id %d is on two nodes", name, (int)id);
        else if (id >= 0)
            seen[id / 8] |= (unsigned char)(1u << (id % 8));
    }
    free(seen);
    if (st != M3_STATUS_OK) return st;
    trie->units = units;
    trie->ids = ids;
    trie->size = size;
    trie->borrowed = true;
    return M3_STATUS_OK;
}

m3_status m3_piece_trie_spot_check(const m3_piece_trie *trie, size_t n, const unsigned char *const *keys,
                                   const uint32_t *lens, size_t stride, const char *name, m3_error *err)
{
    if (stride == 0) stride = 1;
    for (size_t id = 0; id < n; id = id < 8 ? id + 1 : id + stride) {
        int32_t got = m3_piece_trie_find(trie, keys[id], lens[id]);
        if (got == (int32_t)id) continue;
        // Another id may own the node only when it has the same text and comes later (it replaced
        // this one).
        if (got > (int32_t)id && (size_t)got < n && lens[got] == lens[id] &&
            memcmp(keys[got], keys[id], lens[id]) == 0)
            continue;
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: the piece trie maps the text of id %zu to %d: it does not belong to this "
                            "vocabulary", name, id, (int)got);
    }
    return M3_STATUS_OK;
}

void m3_piece_trie_destroy(m3_piece_trie *trie)
{
    if (!trie->borrowed) {
        free((void *)trie->units);
        free((void *)trie->ids);
    }
    memset(trie, 0, sizeof *trie);
}

int32_t m3_piece_trie_find(const m3_piece_trie *trie, const unsigned char *s, size_t n)
{
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        node = m3_piece_trie_next(trie, node, s[i]);
        if (node < 0) return -1;
    }
    return trie->ids[node];
}
