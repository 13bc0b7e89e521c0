// SPDX-License-Identifier: MIT
//
// Extended grapheme cluster boundaries (UAX #29, rules GB3-GB13 without GB9c: the Unicode 15.0
// data we generate from has no Indic_Conjunct_Break). The precompiled-charsmap normalizer needs
// them because the Hugging Face tokenizer looks whole clusters up in the charsmap first; GB9c only
// joins clusters of three-byte Indic letters, which are at least 9 bytes long and so are looked up
// character by character anyway (see docs/tokenizer.md).
//
//     m3_grapheme_state st = {0};
//     for each code point cp: if (m3_grapheme_step(&st, cp)) { a cluster starts at cp }
//
// The first call always reports a boundary. Threads: the tables are constant.
#ifndef M3_TOKENIZER_GRAPHEME_PRIVATE_H
#define M3_TOKENIZER_GRAPHEME_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

// Grapheme_Cluster_Break values; the order matches tools/gen-grapheme-table.py.
enum m3_grapheme_break {
    M3_GCB_OTHER,
    M3_GCB_CR,
    M3_GCB_LF,
    M3_GCB_CONTROL,
    M3_GCB_EXTEND,
    M3_GCB_ZWJ,
    M3_GCB_REGIONAL_INDICATOR,
    M3_GCB_PREPEND,
    M3_GCB_SPACING_MARK,
    M3_GCB_L,
    M3_GCB_V,
    M3_GCB_T,
    M3_GCB_LV,
    M3_GCB_LVT,
    M3_GCB_NONE = 15,  // the state before the first code point
};
enum { M3_GCB_EXT_PICT = 0x10 };  // flag: Extended_Pictographic

extern const uint16_t m3_grapheme_stage1[0x110000 / 256];
extern const uint8_t m3_grapheme_stage2[][256];

// The property byte of a code point: the break value in the low 4 bits, M3_GCB_EXT_PICT.
static inline uint8_t m3_grapheme_property(uint32_t cp)
{
    if (cp >= 0x110000) return M3_GCB_OTHER;
    return m3_grapheme_stage2[m3_grapheme_stage1[cp >> 8]][cp & 0xff];
}

typedef struct m3_grapheme_state {
    uint8_t prev;       // break value of the previous code point, M3_GCB_NONE at the start
    bool pict;          // the previous code points are ExtPict Extend* (GB11, first half)
    bool pict_zwj;      // ... followed by a ZWJ, which is the previous code point (GB11)
    uint32_t ri_run;    // regional indicators immediately before (GB12, GB13)
} m3_grapheme_state;

static inline void m3_grapheme_reset(m3_grapheme_state *st)
{
    st->prev = M3_GCB_NONE;
    st->pict = st->pict_zwj = false;
    st->ri_run = 0;
}

// Feeds the next code point's property; returns true when a cluster boundary lies before it.
bool m3_grapheme_step(m3_grapheme_state *st, uint8_t property);

#endif
