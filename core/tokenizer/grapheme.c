// SPDX-License-Identifier: MIT
#include "tokenizer/grapheme-private.h"

static bool grapheme_breaks(const m3_grapheme_state *st, uint8_t next, bool next_pict)
{
    uint8_t prev = st->prev;
    if (prev == M3_GCB_NONE) return true;                                        // GB1
    if (prev == M3_GCB_CR && next == M3_GCB_LF) return false;                    // GB3
    if (prev == M3_GCB_CR || prev == M3_GCB_LF || prev == M3_GCB_CONTROL) return true;  // GB4
    if (next == M3_GCB_CR || next == M3_GCB_LF || next == M3_GCB_CONTROL) return true;  // GB5
    if (prev == M3_GCB_L &&
        (next == M3_GCB_L || next == M3_GCB_V || next == M3_GCB_LV || next == M3_GCB_LVT))
        return false;                                                            // GB6
    if ((prev == M3_GCB_LV || prev == M3_GCB_V) && (next == M3_GCB_V || next == M3_GCB_T))
        return false;                                                            // GB7
    if ((prev == M3_GCB_LVT || prev == M3_GCB_T) && next == M3_GCB_T) return false;  // GB8
    if (next == M3_GCB_EXTEND || next == M3_GCB_ZWJ) return false;              // GB9
    if (next == M3_GCB_SPACING_MARK) return false;                               // GB9a
    if (prev == M3_GCB_PREPEND) return false;                                    // GB9b
    if (st->pict_zwj && next_pict) return false;                                 // GB11
    if (prev == M3_GCB_REGIONAL_INDICATOR && next == M3_GCB_REGIONAL_INDICATOR)
        return st->ri_run % 2 == 0;                                              // GB12, GB13
    return true;                                                                 // GB999
}

bool m3_grapheme_step(m3_grapheme_state *st, uint8_t property)
{
    uint8_t next = property & 0x0f;
    bool next_pict = (property & M3_GCB_EXT_PICT) != 0;
    bool brk = grapheme_breaks(st, next, next_pict);
    bool was_pict = st->pict;
    st->pict = next_pict || (next == M3_GCB_EXTEND && was_pict);
    st->pict_zwj = next == M3_GCB_ZWJ && was_pict;
    st->ri_run = next == M3_GCB_REGIONAL_INDICATOR ? st->ri_run + 1 : 0;
    st->prev = next;
    return brk;
}
