// SPDX-License-Identifier: MIT
//
// See x11-frames.h for why.
#include "x11-frames.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

void m3_x11_frames_keep_memory(void) {
    // Blocks up to 32 MiB come from the heap (not a fresh mapping each), and up to 64 MiB of free
    // heap stays mapped: a 4K window's frame image is 32 MiB.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

// The block the next frames' images will come from: about twice the window's image (a frame's
// drawing and its copy) and room for the rows and text, below the mmap threshold set above, so that
// it comes from the heap (its top, when no free block is as large) and freeing it gives it back
// there, below the trim threshold: the pages stay.
static size_t heap_block_bytes(GtkWindow *window) {
    int width = gtk_widget_get_width(GTK_WIDGET(window)), height = gtk_widget_get_height(GTK_WIDGET(window));
    int scale = gtk_widget_get_scale_factor(GTK_WIDGET(window));
    return MIN((size_t)2 * width * height * scale * scale * 4 + ((size_t)4 << 20), (size_t)30 << 20);
}

// The whole pages of [block, block + bytes).
static bool whole_pages(unsigned char *block, size_t bytes, uintptr_t *from, uintptr_t *to) {
    const uintptr_t page = 4096;
    *from = ((uintptr_t)block + page - 1) & ~(page - 1);
    *to = ((uintptr_t)block + bytes) & ~(page - 1);
    return *to > *from;
}

// Faults the pages of [from, to) in with one call where the kernel can (Linux 5.14 on); pages
// already resident cost nothing. Returns whether it could.
static bool populate(uintptr_t from, uintptr_t to) {
#ifdef MADV_POPULATE_WRITE
    return madvise((void *)from, to - from, MADV_POPULATE_WRITE) == 0;
#else
    (void)from, (void)to;
    return false;
#endif
}

// One write per page from the process (which also faults in pages not resident yet).
static void write_pages(uintptr_t from, uintptr_t to) {
    for (uintptr_t p = from; p < to; p += 4096)
        *(volatile unsigned char *)p = 0;
}

void m3_x11_frames_touch_heap(GtkWindow *window) {
    size_t bytes = heap_block_bytes(window);
    unsigned char *block = malloc(bytes);
    uintptr_t from, to;
    if (block && whole_pages(block, bytes, &from, &to) && !populate(from, to))
        write_pages(from, to);
    free(block);
}

// The touch from the process, a step per main-loop turn: on the test VM each first write to a
// page costs ~7 µs after a populate and ~15 µs without, ~20 ms for a 1200 × 760 window's block at
// once (tools/first-touch.c). The steps populate, then write each page, because on some virtual
// machines (the test VM) the hypervisor maps a page for the process only on its first write from
// user space, which the kernel's populate does not count as (docs/performance.md, "Seventh
// session"); where pages are mapped already both cost next to nothing.
enum { TOUCH_STEP = 1 << 20 };
#define TOUCH_JOB_KEY "m3-x11-frames-touch-job"

typedef struct {
    GtkWidget *window;  // referenced: the steps stop when it is unrealized (closed)
    unsigned char *block;
    size_t bytes;
    uintptr_t next, end;  // the block's whole pages not touched yet
    gint64 spent_us;      // in the steps, for the trace
    bool started;     // the steps run (until then it waits for a frame)
} touch_job;

static void touch_job_free(gpointer data) {
    touch_job *job = data;
    free(job->block);  // back to the heap, which keeps its pages (m3_x11_frames_keep_memory)
    g_object_set_data(G_OBJECT(job->window), TOUCH_JOB_KEY, NULL);
    if (g_getenv("M3SEARCH_TRACE"))
        g_printerr("m3search-trace: heap touched, %zu KiB%s in %.1f ms\n", job->bytes >> 10,
                   job->block && job->next >= job->end ? "" : " (stopped early)", job->spent_us / 1000.0);
    g_object_unref(job->window);
    g_free(job);
}

static gboolean touch_step_cb(gpointer data) {
    touch_job *job = data;
    if (!gtk_widget_get_realized(job->window))
        return G_SOURCE_REMOVE;
    gint64 start = g_get_monotonic_time();
    if (!job->block) {
        job->bytes = heap_block_bytes(GTK_WINDOW(job->window));
        job->block = malloc(job->bytes);
        if (!job->block || !whole_pages(job->block, job->bytes, &job->next, &job->end))
            return G_SOURCE_REMOVE;
    }
    uintptr_t to = MIN(job->next + TOUCH_STEP, job->end);
    populate(job->next, to);  // where it cannot, the writes fault the pages in
    write_pages(job->next, to);
    job->next = to;
    job->spent_us += g_get_monotonic_time() - start;
    return job->next < job->end ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void start_steps(touch_job *job) {
    job->started = true;  // from now on the idle source owns it
    g_idle_add_full(G_PRIORITY_LOW, touch_step_cb, job, touch_job_free);
}

static void start_after_paint_cb(GdkFrameClock *clock, gpointer data) {
    start_steps(data);
    g_signal_handlers_disconnect_by_func(clock, start_after_paint_cb, data);
}

// The handler's end: the job is freed here when no frame came (the window was closed first).
static void waiting_job_done(gpointer data, GClosure *closure) {
    (void)closure;
    touch_job *job = data;
    if (!job->started)
        touch_job_free(job);
}

void m3_x11_frames_touch_heap_in_steps(GtkWindow *window, gboolean after_next_frame) {
    if (g_object_get_data(G_OBJECT(window), TOUCH_JOB_KEY))
        return;  // one at a time
    touch_job *job = g_new0(touch_job, 1);
    job->window = g_object_ref(GTK_WIDGET(window));
    g_object_set_data(G_OBJECT(window), TOUCH_JOB_KEY, job);
    GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(window));
    if (after_next_frame && clock)
        // The frame (often ~10 ms away, the main loop idle meanwhile) takes its image first.
        g_signal_connect_data(clock, "after-paint", G_CALLBACK(start_after_paint_cb), job, waiting_job_done, 0);
    else
        start_steps(job);
}

#if defined(GDK_WINDOWING_X11) && defined(M3_HAVE_CAIRO_XLIB)
#include <cairo-xlib.h>
#include <gdk/x11/gdkx.h>

#define HELD_KEY "m3-x11-frames-held"
enum { WARM_IMAGES = 3 };

// A shared-memory image of the window's size (cairo makes it in a pool eight times as large, where
// every later frame's image and upload fit), made after the first frame (when the renderer exists)
// and again only when the window grows past it.
static void after_paint_cb(GdkFrameClock *clock, gpointer user) {
    (void)clock;
    GtkWidget *window = user;
    GdkSurface *surface = gtk_native_get_surface(GTK_NATIVE(window));
    GskRenderer *renderer = gtk_native_get_renderer(GTK_NATIVE(window));
    if (!surface || !renderer || !GSK_IS_CAIRO_RENDERER(renderer))
        return;
    int scale = gdk_surface_get_scale_factor(surface);
    int width = gdk_surface_get_width(surface) * scale, height = gdk_surface_get_height(surface) * scale;
    cairo_surface_t *held = g_object_get_data(G_OBJECT(window), HELD_KEY);
    if (width <= 0 || height <= 0 ||
        (held && cairo_image_surface_get_width(held) >= width && cairo_image_surface_get_height(held) >= height))
        return;
    Display *xdisplay = gdk_x11_display_get_xdisplay(gdk_surface_get_display(surface));
    cairo_surface_t *target = cairo_xlib_surface_create(xdisplay, gdk_x11_surface_get_xid(surface),
                                                        DefaultVisual(xdisplay, DefaultScreen(xdisplay)), width,
                                                        height);
    held = cairo_surface_create_similar_image(target, CAIRO_FORMAT_ARGB32, width, height);
    // A frame takes two images from the pool (GTK's drawing and cairo's upload), and the X server
    // may still read the last frame's while the next is drawn: blocks that cairo makes (and clears,
    // faulting each page in) now, once, are the ones later frames reuse.
    cairo_surface_t *warm[WARM_IMAGES];
    for (int i = 0; i < WARM_IMAGES; i++)
        warm[i] = cairo_surface_create_similar_image(target, CAIRO_FORMAT_ARGB32, width, height);
    // The X server maps the pool's pages for itself on its first read of each (MIT-SHM): uploading
    // each block once to a pixmap of our own makes it do that now, not in the frame that first
    // uploads a whole window (4–5 ms of the server's time, the window waiting, on the test VM).
    cairo_surface_t *scratch = cairo_surface_create_similar(target, CAIRO_CONTENT_COLOR, width, height);
    cairo_t *cr = cairo_create(scratch);
    cairo_set_operator(cr, CAIRO_OPERATOR_SOURCE);
    for (int i = 0; i < WARM_IMAGES; i++) {
        // Painted first: cairo uploads nothing for an image it knows is clear.
        cairo_t *fill = cairo_create(warm[i]);
        cairo_set_source_rgb(fill, 1, 1, 1);
        cairo_paint(fill);
        cairo_destroy(fill);
        cairo_set_source_surface(cr, warm[i], 0, 0);
        cairo_paint(cr);
    }
    cairo_destroy(cr);
    cairo_surface_flush(scratch);
    cairo_surface_destroy(scratch);
    for (int i = 0; i < WARM_IMAGES; i++)
        cairo_surface_destroy(warm[i]);
    cairo_surface_destroy(target);
    g_object_set_data_full(G_OBJECT(window), HELD_KEY, held, (GDestroyNotify)cairo_surface_destroy);
}

static void realize_cb(GtkWidget *window, gpointer user) {
    (void)user;
    GdkSurface *surface = gtk_native_get_surface(GTK_NATIVE(window));
    if (surface && GDK_IS_X11_SURFACE(surface))
        g_signal_connect_object(gdk_surface_get_frame_clock(surface), "after-paint", G_CALLBACK(after_paint_cb),
                                window, 0);
}

static void unrealize_cb(GtkWidget *window, gpointer user) {
    (void)user;
    g_object_set_data(G_OBJECT(window), HELD_KEY, NULL);
}

void m3_x11_frames_keep_pool(GtkWindow *window) {
    g_signal_connect_after(window, "realize", G_CALLBACK(realize_cb), NULL);
    g_signal_connect(window, "unrealize", G_CALLBACK(unrealize_cb), NULL);
}
#else
void m3_x11_frames_keep_pool(GtkWindow *window) {
    (void)window;
}
#endif
