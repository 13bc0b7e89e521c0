// SPDX-License-Identifier: MIT
//
// The thread pool: persistent workers that wait on a job generation counter. A run publishes the
// job (function, context, task count), bumps the generation and wakes the sleepers; every thread,
// the caller included, then takes tasks from one atomic counter until none are left. Waiting is a
// short spin (a GEMM follows a GEMM within microseconds in a forward pass) and then a futex sleep,
// so idle pools cost no CPU.
#include "base/threadpool.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

// Waiting before sleeping: SPIN_PAUSES pauses (~25 ns each on the dev machine's Zen: 50 µs, more
// than the gap between two steps of a forward pass), then yields of the CPU up to SPIN_ITERATIONS
// (0.3-2 µs each): on a machine busier than its cores (the indexer runs at idle priority beside
// everything else), the thread this one waits for may be waiting for this very CPU, and pausing
// would burn the time slice it needs. (Before: 20,000 pauses, 0.5 ms, and no yield.)
enum { SPIN_PAUSES = 2000, SPIN_ITERATIONS = SPIN_PAUSES + 200 };

static void spin_once(int spins) {
    if (spins < SPIN_PAUSES)
        cpu_relax();
    else
        sched_yield();
}

typedef struct worker {
    m3_threadpool *pool;
    int index;
    pthread_t thread;
} worker;

struct m3_threadpool {
    int n_threads;  // the caller included
    worker *workers;  // n_threads - 1

    // The published job; written by the caller before the generation is bumped.
    m3_task_fn fn;
    void *ctx;
    size_t n_tasks;

    _Alignas(64) atomic_uint generation;  // bumped once per run (and once to stop)
    atomic_int sleepers;                  // workers blocked (or about to block) on generation
    _Alignas(64) atomic_size_t next_task;
    _Alignas(64) atomic_uint pending;  // workers still inside the current run
    atomic_int caller_sleeping;
    bool stop;
};

static void futex_wait(atomic_uint *addr, unsigned expected) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *addr, int n) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static void run_tasks(m3_threadpool *pool, int thread) {
    m3_task_fn fn = pool->fn;
    void *ctx = pool->ctx;
    size_t n = pool->n_tasks;
    for (;;) {
        size_t task = atomic_fetch_add_explicit(&pool->next_task, 1, memory_order_relaxed);
        if (task >= n)
            break;
        fn(ctx, task, thread);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    m3_threadpool *pool = w->pool;
    // Generation 0 is the one before the first run: no run can start before m3_threadpool_new
    // returns, but this thread may first get here after one has.
    unsigned seen = 0;
    for (;;) {
        // Wait for a new generation: spin briefly, then sleep on the futex.
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen) {
            if (spins < SPIN_ITERATIONS) {
                spin_once(spins++);
                continue;
            }
            atomic_fetch_add_explicit(&pool->sleepers, 1, memory_order_seq_cst);
            // Recheck after announcing the sleep, so a run that bumped the generation before
            // seeing the sleeper cannot be missed (the futex itself also rechecks the value).
            if (atomic_load_explicit(&pool->generation, memory_order_seq_cst) == seen)
                futex_wait(&pool->generation, seen);
            atomic_fetch_sub_explicit(&pool->sleepers, 1, memory_order_relaxed);
        }
        seen = gen;
        if (pool->stop)
            return NULL;
        run_tasks(pool, w->index);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_seq_cst) == 1 &&
            atomic_load_explicit(&pool->caller_sleeping, memory_order_seq_cst))
            futex_wake(&pool->pending, 1);
    }
}

static int online_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

m3_status m3_threadpool_new(int n_threads, m3_threadpool **out, m3_error *err) {
    *out = NULL;
    if (n_threads < 0)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "thread pool: %d threads asked", n_threads);
    if (n_threads == 0)
        n_threads = online_cpus();
    m3_threadpool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return m3_error_set(err, M3_STATUS_NOMEM, ENOMEM, "thread pool: out of memory");
    pool->n_threads = 1;
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->next_task, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->caller_sleeping, 0);
    if (n_threads > 1) {
        pool->workers = calloc((size_t)n_threads - 1, sizeof *pool->workers);
        if (!pool->workers) {
            free(pool);
            return m3_error_set(err, M3_STATUS_NOMEM, ENOMEM, "thread pool: out of memory");
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker *w = &pool->workers[i - 1];
        w->pool = pool;
        w->index = i;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            m3_threadpool_free(pool);
            return m3_error_set(err, M3_STATUS_IO, rc, "thread pool: cannot start thread %d of %d: %s",
                                i + 1, n_threads, strerror(rc));
        }
        pool->n_threads = i + 1;
    }
    *out = pool;
    return M3_STATUS_OK;
}

int m3_threadpool_size(const m3_threadpool *pool) {
    return pool ? pool->n_threads : 1;
}

void m3_threadpool_run(m3_threadpool *pool, size_t n_tasks, m3_task_fn fn, void *ctx) {
    if (n_tasks == 0)
        return;
    if (!pool || pool->n_threads == 1 || n_tasks == 1) {
        for (size_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->pending, (unsigned)pool->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&pool->sleepers, memory_order_seq_cst) > 0)
        futex_wake(&pool->generation, INT_MAX);

    run_tasks(pool, 0);

    // Wait for the workers to leave the run, so that the next run starts from a clean state.
    int spins = 0;
    unsigned left;
    while ((left = atomic_load_explicit(&pool->pending, memory_order_acquire)) != 0) {
        if (spins < SPIN_ITERATIONS) {
            spin_once(spins++);
            continue;
        }
        atomic_store_explicit(&pool->caller_sleeping, 1, memory_order_seq_cst);
        left = atomic_load_explicit(&pool->pending, memory_order_seq_cst);
        if (left != 0)
            futex_wait(&pool->pending, left);
        atomic_store_explicit(&pool->caller_sleeping, 0, memory_order_relaxed);
    }
}

void m3_threadpool_free(m3_threadpool *pool) {
    if (!pool)
        return;
    if (pool->n_threads > 1) {
        pool->stop = true;
        atomic_fetch_add_explicit(&pool->generation, 1, memory_order_seq_cst);
        futex_wake(&pool->generation, INT_MAX);
        for (int i = 1; i < pool->n_threads; i++)
            pthread_join(pool->workers[i - 1].thread, NULL);
    }
    free(pool->workers);
    free(pool);
}
