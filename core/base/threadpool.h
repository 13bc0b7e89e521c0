// SPDX-License-Identifier: MIT
//
// A small persistent pool of worker threads for data-parallel loops (GEMM tiles, attention heads).
// Workers are created once and wait between jobs, because creating threads per layer would cost
// more than a query's whole forward pass.
//
//     m3_threadpool *pool;
//     m3_threadpool_new(0, &pool, &err);            // 0: one thread per online CPU
//     m3_threadpool_run(pool, n_tasks, task_fn, ctx); // task_fn(ctx, task, thread) for each task
//     m3_threadpool_free(pool);
//
// m3_threadpool_run returns when every task has run; the calling thread takes part as thread 0.
// Tasks are handed out dynamically (an atomic counter), so uneven tasks balance.
// Threads: one m3_threadpool_run at a time per pool (a pool belongs to one encoder).
#ifndef M3_BASE_THREADPOOL_H
#define M3_BASE_THREADPOOL_H

#include <stddef.h>

#include "base/status.h"

typedef struct m3_threadpool m3_threadpool;

typedef void (*m3_task_fn)(void *ctx, size_t task, int thread);

// n_threads 0 = one per online CPU (sched_getaffinity). Errors: M3_STATUS_NOMEM, M3_STATUS_IO.
m3_status m3_threadpool_new(int n_threads, m3_threadpool **out, m3_error *err);

int m3_threadpool_size(const m3_threadpool *pool);

void m3_threadpool_run(m3_threadpool *pool, size_t n_tasks, m3_task_fn fn, void *ctx);

// Joins the workers. NULL is a no-op.
void m3_threadpool_free(m3_threadpool *pool);

#endif
