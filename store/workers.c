/*
 * store/workers.c — a bounded job queue served by a fixed set of pthreads,
 * with completions handed back to the loop thread through one ev_async.
 *
 * A job travels: submit (loop thread) -> queue -> a worker runs it ->
 * completed list -> the async callback (loop thread) calls done().  One
 * mutex guards both lists and the counters; run() and done() are always
 * called without it held, so they may take as long as they like and done()
 * may submit again.
 *
 * Wake-ups coalesce: a worker signals the loop only when it puts a job on
 * an empty completed list; the callback takes the whole list at once, so a
 * burst of completions costs one wake-up.
 *
 * Loop liveness: the async watcher alone does not keep ev_run() going (it
 * is unref'd); every accepted job holds one ev_ref() until its done() has
 * run.  An idle pool therefore never stops the loop from ending, and the
 * loop never ends while a job's done() is still owed.
 *
 * worker_pool_submit() and worker_pool_free() belong to the loop thread
 * (they touch the loop's reference count); worker_pool_pending() may be
 * called from any thread.  Do not free the pool from inside a done().
 */
#include "store/workers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>

struct job_node {
    struct job_node *next;
    worker_run_fn run;
    worker_done_fn done;
    void *job;
};

struct job_list {
    struct job_node *head, *tail;
};

struct worker_pool {
    struct ev_loop *loop;
    ev_async async; /* completions -> loop thread */

    pthread_mutex_t mutex;
    pthread_cond_t cond; /* work queued, or stopping */
    struct job_list queue;
    struct job_list completed;
    unsigned queued;  /* jobs in queue */
    unsigned running; /* jobs inside run() */
    unsigned queue_max;
    int stopping;

    unsigned nthreads;
    pthread_t *threads;
};

static void list_push(struct job_list *l, struct job_node *n)
{
    n->next = NULL;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static struct job_node *list_pop(struct job_list *l)
{
    struct job_node *n = l->head;

    if (n) {
        l->head = n->next;
        if (!l->head)
            l->tail = NULL;
    }
    return n;
}

static void *worker_main(void *arg)
{
    struct worker_pool *pool = arg;

    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        struct job_node *n;
        int was_empty;

        while (!pool->queue.head && !pool->stopping)
            pthread_cond_wait(&pool->cond, &pool->mutex);
        n = list_pop(&pool->queue);
        if (!n)
            break; /* stopping and nothing left to run */
        pool->queued--;
        pool->running++;
        pthread_mutex_unlock(&pool->mutex);

        n->run(n->job);

        pthread_mutex_lock(&pool->mutex);
        pool->running--;
        was_empty = pool->completed.head == NULL;
        list_push(&pool->completed, n);
        /* ev_async_send is thread-safe; if the list was not empty a wake-up
         * is already owed and the callback has not yet taken the list. */
        if (was_empty)
            ev_async_send(pool->loop, &pool->async);
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

/* Calls done() for every completed job, on the calling (loop) thread. */
static void drain_completed(struct worker_pool *pool)
{
    struct job_node *n;

    pthread_mutex_lock(&pool->mutex);
    n = pool->completed.head;
    pool->completed.head = pool->completed.tail = NULL;
    pthread_mutex_unlock(&pool->mutex);

    while (n) {
        struct job_node *next = n->next;
        worker_done_fn done = n->done;
        void *job = n->job;

        free(n);
        ev_unref(pool->loop); /* the reference this job took in submit */
        done(job);
        n = next;
    }
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct worker_pool *pool = (struct worker_pool *)((char *)w - offsetof(struct worker_pool, async));

    (void)loop;
    (void)revents;
    drain_completed(pool);
}

/* Tells the threads to finish the queue and exit, then joins them. */
static void stop_threads(struct worker_pool *pool, unsigned started)
{
    pthread_mutex_lock(&pool->mutex);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
    for (unsigned i = 0; i < started; i++)
        pthread_join(pool->threads[i], NULL);
}

struct worker_pool *worker_pool_new(struct ev_loop *loop, unsigned threads,
                                    unsigned queue_max)
{
    struct worker_pool *pool;
    sigset_t all, old;
    unsigned started = 0;
    int rc = 0;

    if (!loop || threads < 1 || queue_max < 1) {
        errno = EINVAL;
        return NULL;
    }
    pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->threads = calloc(threads, sizeof *pool->threads);
    if (!pool->threads) {
        free(pool);
        errno = ENOMEM;
        return NULL;
    }
    pool->loop = loop;
    pool->queue_max = queue_max;
    pool->nthreads = threads;
    if ((rc = pthread_mutex_init(&pool->mutex, NULL)) != 0)
        goto fail_mutex;
    if ((rc = pthread_cond_init(&pool->cond, NULL)) != 0)
        goto fail_cond;

    /* The async watcher must be active before any thread could send. */
    ev_async_init(&pool->async, async_cb);
    ev_async_start(loop, &pool->async);
    ev_unref(loop);

    /* Workers block every signal, so SIGTERM, SIGCHLD, SIGPIPE ... reach
     * the loop thread (and libev's signal watchers) only. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; started < threads; started++) {
        rc = pthread_create(&pool->threads[started], NULL, worker_main, pool);
        if (rc != 0)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        stop_threads(pool, started); /* no jobs yet: they exit at once */
        ev_ref(loop);
        ev_async_stop(loop, &pool->async);
        pthread_cond_destroy(&pool->cond);
        goto fail_cond;
    }
    return pool;

fail_cond:
    pthread_mutex_destroy(&pool->mutex);
fail_mutex:
    free(pool->threads);
    free(pool);
    errno = rc;
    return NULL;
}

int worker_pool_submit(struct worker_pool *pool, worker_run_fn run,
                       worker_done_fn done, void *job)
{
    struct job_node *n;

    if (!pool || !run || !done)
        return -1;
    /* Allocate outside the lock; a refused job costs one malloc/free. */
    n = malloc(sizeof *n);
    if (!n)
        return -1;
    n->run = run;
    n->done = done;
    n->job = job;

    pthread_mutex_lock(&pool->mutex);
    if (pool->stopping || pool->queued + pool->running >= pool->queue_max) {
        pthread_mutex_unlock(&pool->mutex);
        free(n);
        return -1;
    }
    list_push(&pool->queue, n);
    pool->queued++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);

    ev_ref(pool->loop); /* released after done() — see the top comment */
    return 0;
}

unsigned worker_pool_pending(const struct worker_pool *pool)
{
    /* The mutex is not part of the pool's logical state. */
    struct worker_pool *p = (struct worker_pool *)pool;
    unsigned n;

    if (!p)
        return 0;
    pthread_mutex_lock(&p->mutex);
    n = p->queued + p->running;
    pthread_mutex_unlock(&p->mutex);
    return n;
}

void worker_pool_free(struct worker_pool *pool)
{
    if (!pool)
        return;
    /* Refuse new jobs, let the queued ones run, then hand every remaining
     * completion to its done() here.  done() may call submit: it gets -1. */
    stop_threads(pool, pool->nthreads);
    drain_completed(pool);

    ev_ref(pool->loop); /* undo the unref of worker_pool_new */
    ev_async_stop(pool->loop, &pool->async);
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->threads);
    free(pool);
}
