// SPDX-License-Identifier: MIT
//
// Warms the text caches that the first results need, while the window waits for the first
// keystroke.
//
// Why: the frame that first shows results lays out and draws text in fonts the start page never
// used (the rows' bold names, small captions and snippets with bold matches, the preview's text).
// Each new font costs a fontconfig match and a HarfBuzz shape plan, and each glyph at each size and
// weight its first load (TrueType hinting) and rasterisation: on the 2-vCPU test VM under Xvfb
// that was a quarter of that frame's main-thread time (docs/performance.md, "The window"). Those
// caches are process-wide (the fonts' PangoFont and cairo scaled-font objects), so laying out and
// drawing sample text in the same fonts once, offscreen, makes the first real frame find them warm.
// The samples cover the Latin script with digits and punctuation, then Cyrillic, Greek, Hangul,
// CJK, Arabic, Hebrew, Devanagari and Thai, whose fallback fonts each cost a search and a file to
// open (the first Korean results took 21 ms of the main thread without this); the glyphs of other
// scripts warm on first use.
//
// Threads: main thread only.
#pragma once

#include <gtk/gtk.h>

// Once, at a low priority after `window`'s first frame, one font and script per main-loop turn:
// lays out and draws the samples in the fonts of a result row (a row made for this and dropped)
// and of every text widget in `window` (the preview), regular and bold; then makes the heap's next
// pages resident (m3_x11_frames_touch_heap_in_steps). Call once, at construction. Holds nothing
// afterwards.
void m3_text_warm_up(GtkWindow *window);
