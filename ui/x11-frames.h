// SPDX-License-Identifier: MIT
//
// Keeps the memory that GTK's cairo renderer draws each frame into resident, on X11.
//
// Why: with the cairo renderer on X11 (no usable GPU: a virtual machine, Xvfb, a remote display),
// GTK draws each frame into an image of the damaged area's size that cairo-xlib takes from an
// MIT-SHM pool (and clears), then copies into another image from the pool for the upload. cairo
// destroys a pool as soon as nothing in it is in use, so a frame that redraws most of the window
// (the results replacing the start page) got a fresh pool whose every page faulted on first touch:
// ~1,100–1,300 faults, 20 ms of the main thread's CPU on the test VM (docs/performance.md). Holding
// one window-sized image keeps the pool, and with it the pages earlier frames touched, for the
// window's life (m3_x11_frames_keep_pool); a few more images made and dropped at start-up touch the
// blocks the next frames take, and each is uploaded once to a pixmap of our own, so that the X
// server too maps their pages then: its first read of each page faults as well (~300–900 faults,
// 4–5 ms of the X server's time in the first frame of results, the window waiting, on the test
// VM). The C library likewise keeps freed frame-sized blocks on its heap instead of unmapping them
// (m3_x11_frames_keep_memory).
//
// Threads: main thread only.
#pragma once

#include <gtk/gtk.h>

// Lets the C library keep freed frame-sized blocks for reuse instead of unmapping them. Call once
// at start-up, before any window exists. Keeps at most 64 MiB of free heap mapped.
void m3_x11_frames_keep_memory(void);

// Makes the memory the heap grows into next resident and gives it back to the heap: about twice
// the window's image and 4 MiB more (at most 30 MiB). Why: a frame that draws most of the window
// (results replacing the start page) needs a window-sized image; when earlier small blocks have
// split the last one, it comes from fresh heap, and each page faulted in inside that frame: ~550
// faults, over half of its drawing time on the test VM (docs/performance.md). Call with the window
// realized, when such a frame is coming (a query while another page shows); cheap when the pages
// are resident already.
void m3_x11_frames_touch_heap(GtkWindow *window);

// The same, and each page written once from the process, 1 MiB per main-loop turn at low priority:
// on some virtual machines a page is mapped for the process for good only by its first write from
// user space, and a frame that did that first write into its window-sized image spent ~3 ms in it
// on the test VM (a whole block at once: ~20 ms). Call when start-up has settled (the text
// warm-up's end) and when another page replaces the results (the next results will replace it:
// then with `after_next_frame`, so that the frame drawing that page takes its image before the
// block is taken; the window must be realized). Does nothing while one runs. Holds a reference on
// `window` until done; stops early when it is unrealized.
void m3_x11_frames_touch_heap_in_steps(GtkWindow *window, gboolean after_next_frame);

// Holds a window-sized shared-memory image for `window` from its first frame until it is
// unrealized, when its display is X11 and its renderer is cairo; does nothing otherwise. Costs the
// held image and the pool blocks frames use (~4 window-sized images, resident). Call once, at
// construction.
void m3_x11_frames_keep_pool(GtkWindow *window);
