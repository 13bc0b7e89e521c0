// SPDX-License-Identifier: MIT
//
// The thread pool: many runs of varied size on pools of several sizes; every task runs exactly
// once, on a thread index inside the pool; runs after idle gaps (workers asleep on the futex) and
// back to back (workers spinning) both complete.
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/threadpool.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            if (++failures > 20)                                                                   \
                exit(1);                                                                           \
        }                                                                                          \
    } while (0)

enum { MAX_TASKS = 1000 };

typedef struct run_ctx {
    atomic_int count[MAX_TASKS];
    atomic_int bad_thread;
    int threads;
    unsigned spin;  // busy work per task, so that tasks overlap across threads
} run_ctx;

static void task_cb(void *ctx, size_t task, int thread) {
    run_ctx *r = ctx;
    if (thread < 0 || thread >= r->threads)
        atomic_fetch_add(&r->bad_thread, 1);
    atomic_fetch_add(&r->count[task], 1);
    volatile unsigned x = 0;
    for (unsigned i = 0; i < r->spin; i++)
        x += i;
}

int main(void) {
    static const int sizes[] = {0, 1, 2, 3, 8};
    static run_ctx r;
    unsigned seed = 12345;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        m3_threadpool *pool = NULL;
        m3_error err = {0};
        if (m3_threadpool_new(sizes[si], &pool, &err) != M3_STATUS_OK) {
            fprintf(stderr, "m3_threadpool_new(%d): %s\n", sizes[si], err.message);
            return 1;
        }
        int threads = m3_threadpool_size(pool);
        CHECK(sizes[si] == 0 ? threads >= 1 : threads == sizes[si], "size %d for %d", threads,
              sizes[si]);
        for (int run = 0; run < 3000; run++) {
            seed = seed * 1103515245u + 12345u;
            size_t n = (seed >> 8) % (run % 10 == 0 ? MAX_TASKS : 40);
            for (size_t t = 0; t < n; t++)
                atomic_store(&r.count[t], 0);
            atomic_store(&r.bad_thread, 0);
            r.threads = threads;
            r.spin = (seed >> 20) % 4 == 0 ? 2000 : 0;
            if (run % 500 == 499) {  // let the workers fall asleep
                struct timespec ts = {0, 5 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            m3_threadpool_run(pool, n, task_cb, &r);
            for (size_t t = 0; t < n; t++)
                CHECK(atomic_load(&r.count[t]) == 1, "pool %d run %d: task %zu ran %d times",
                      threads, run, t, atomic_load(&r.count[t]));
            CHECK(atomic_load(&r.bad_thread) == 0, "pool %d: thread index out of range", threads);
        }
        printf("pool of %d threads: 3000 runs ok\n", threads);
        m3_threadpool_free(pool);
    }
    m3_threadpool_free(NULL);
    m3_threadpool *pool = NULL;
    CHECK(m3_threadpool_new(-1, &pool, NULL) == M3_STATUS_INVALID && !pool, "-1 threads accepted");
    return failures ? 1 : 0;
}
