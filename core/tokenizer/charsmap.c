// SPDX-License-Identifier: MIT
#include "tokenizer/charsmap-private.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/grapheme-private.h"

// darts-clone unit layout: bits 0-7 label, bit 8 has_leaf, bit 9 offset scale, bits 10-31 offset;
// a leaf unit (reached through the has_leaf flag) holds a 31-bit value.
static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static inline uint32_t unit_label(uint32_t u) { return u & ((1u << 31) | 0xffu); }
static inline bool unit_has_leaf(uint32_t u) { return (u >> 8) & 1u; }
static inline uint32_t unit_value(uint32_t u) { return u & ((1u << 31) - 1); }

static uint32_t read_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

m3_status m3_charsmap_init(m3_charsmap *map, const unsigned char *blob, size_t size, const char *name,
                           m3_error *err)
{
    memset(map, 0, sizeof *map);
    if (size == 0) return M3_STATUS_OK;
    if (size < 4)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: precompiled charsmap is truncated (%zu bytes)", name, size);
    uint32_t trie_size = read_le32(blob);
    if (trie_size % 4 != 0 || trie_size == 0 || trie_size > size - 4)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "%s: precompiled charsmap has a bad trie size %u (blob of %zu bytes)",
                            name, trie_size, size);
    map->n_units = trie_size / 4;
    map->pool_size = size - 4 - trie_size;
    map->units = malloc(map->n_units * sizeof *map->units);
    map->pool = malloc(map->pool_size + 1);
    map->char_start = malloc(map->pool_size + 1);
    if (!map->units || !map->pool || !map->char_start) {
        m3_charsmap_destroy(map);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory for the charsmap", name);
    }
    for (size_t i = 0; i < map->n_units; i++) map->units[i] = read_le32(blob + 4 + 4 * i);
    memcpy(map->pool, blob + 4 + trie_size, map->pool_size);
    map->pool[map->pool_size] = 0;

    // The reference refuses a pool that is not UTF-8; marking where characters start lets a lookup
    // reject a value that points into the middle of one instead of emitting a broken sequence.
    const unsigned char *pool = (const unsigned char *)map->pool;
    memset(map->char_start, 0, map->pool_size + 1);
    for (size_t i = 0; i < map->pool_size;) {
        uint32_t cp;
        size_t l = m3_utf8_decode(pool + i, map->pool_size - i, &cp);
        if (l == 0) {
            m3_charsmap_destroy(map);
            return m3_error_set(err, M3_STATUS_FORMAT, 0,
                                "%s: precompiled charsmap replacement pool is not UTF-8 at byte %zu",
                                name, i);
        }
        map->char_start[i] = 1;
        i += l;
    }
    map->char_start[map->pool_size] = 1;
    return M3_STATUS_OK;
}

void m3_charsmap_destroy(m3_charsmap *map)
{
    free(map->units);
    free(map->pool);
    free(map->char_start);
    memset(map, 0, sizeof *map);
}

bool m3_charsmap_first_match(const m3_charsmap *map, const unsigned char *key, size_t n,
                             const char **rep, size_t *rep_len)
{
    if (!map->units) return false;
    const uint32_t *units = map->units;
    size_t count = map->n_units;
    size_t pos = unit_offset(units[0]);
    for (size_t i = 0; i < n; i++) {
        unsigned c = key[i];
        if (c == 0) return false;
        pos ^= c;
        if (pos >= count) return false;
        uint32_t u = units[pos];
        if (unit_label(u) != c) return false;
        pos ^= unit_offset(u);
        if (unit_has_leaf(u)) {
            if (pos >= count) return false;
            size_t v = unit_value(units[pos]);
            // A value outside the pool or inside a character would make the reference fail;
            // treating it as "no match" keeps damaged models harmless and deterministic.
            if (v > map->pool_size || !map->char_start[v]) return false;
            *rep = map->pool + v;
            *rep_len = strlen(map->pool + v);
            return true;
        }
    }
    return false;
}

// One character: its own replacement, or itself.
static bool emit_char(const m3_charsmap *map, const unsigned char *s, size_t l, m3_bytes *out)
{
    const char *rep;
    size_t rep_len;
    if (m3_charsmap_first_match(map, s, l, &rep, &rep_len)) return m3_bytes_append(out, rep, rep_len);
    return m3_bytes_append(out, s, l);
}

static bool emit_cluster(const m3_charsmap *map, const unsigned char *s, size_t n, size_t first_len,
                         m3_bytes *out)
{
    if (n == first_len) return emit_char(map, s, n, out);
    // The reference looks a short cluster up as a whole and, on any prefix match, replaces the
    // whole cluster by the shortest matching prefix's replacement (even when that drops the
    // cluster's tail); long clusters and misses go character by character.
    const char *rep;
    size_t rep_len;
    if (n < 6 && m3_charsmap_first_match(map, s, n, &rep, &rep_len))
        return m3_bytes_append(out, rep, rep_len);
    for (size_t i = 0; i < n;) {
        size_t l = m3_utf8_len(s[i]);
        if (l > n - i) l = n - i;
        if (!emit_char(map, s + i, l, out)) return false;
        i += l;
    }
    return true;
}

bool m3_charsmap_normalize(const m3_charsmap *map, const unsigned char *s, size_t n, m3_bytes *out)
{
    if (!m3_bytes_reserve(out, n + n / 4 + 16)) return false;
    if (!map->units) return m3_bytes_append(out, s, n);
    m3_grapheme_state st;
    m3_grapheme_reset(&st);
    size_t start = 0, first_len = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = m3_utf8_decode(s + i, n - i, &cp);
        if (l == 0) { // callers pass valid text; never loop forever on a bug
            cp = 0xfffd;
            l = 1;
        }
        if (m3_grapheme_step(&st, m3_grapheme_property(cp))) {
            if (i > start && !emit_cluster(map, s + start, i - start, first_len, out)) return false;
            start = i;
            first_len = l;
        }
        i += l;
    }
    if (n > start) return emit_cluster(map, s + start, n - start, first_len, out);
    return true;
}
