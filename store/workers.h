/*
 * store/workers.h — a pool of threads that runs blocking client libraries
 * (mongo-c-driver, libs3) off the loop thread.
 *
 * A job is submitted with two functions: run() executes on a worker
 * thread and may block; done() executes afterwards on the loop thread
 * (handed back through ev_async) and must free the job.  done() is called
 * exactly once for every accepted job, also when the request that started
 * it has died meanwhile, so nothing leaks.  The queue is bounded: when it
 * is full, submit fails at once and the caller answers 503.
 *
 * Create the pool after fork(): threads do not survive it.
 */
#ifndef SPRINGFIELD_STORE_WORKERS_H
#define SPRINGFIELD_STORE_WORKERS_H

#include <ev.h>

struct worker_pool;

typedef void (*worker_run_fn)(void *job);  /* on a worker thread */
typedef void (*worker_done_fn)(void *job); /* on the loop thread */

/* NULL on failure (errno set).  threads >= 1, queue_max >= 1. */
struct worker_pool *worker_pool_new(struct ev_loop *loop, unsigned threads,
                                    unsigned queue_max);

/* 0 when queued; -1 when the queue is full or the pool is stopping. */
int worker_pool_submit(struct worker_pool *pool, worker_run_fn run,
                       worker_done_fn done, void *job);

/* Jobs queued or running right now (for logs and tests). */
unsigned worker_pool_pending(const struct worker_pool *pool);

/* Stops the threads after the jobs already queued have run, calls their
 * done() on the calling (loop) thread, and frees the pool. */
void worker_pool_free(struct worker_pool *pool);

#endif
