/*
 * tests/unit/test_workers.c — the worker pool: jobs run off the loop
 * thread, done() comes back on it exactly once, the queue bound is
 * enforced at once, and freeing the pool settles every accepted job.
 */
#include "tests/unit/unit.h"
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "store/workers.h"

struct tjob {
    pthread_t run_thread;
    pthread_t done_thread;
    atomic_int started;
    atomic_int runs;
    int signals_blocked; /* SIGTERM, SIGCHLD, SIGPIPE blocked in run() */
    int dones;
    int sleep_us;             /* run() sleeps this long */
    sem_t *gate;              /* run() waits on it (bounded) when set */
    struct worker_pool *pool; /* done() tries to submit here when set */
    int resubmit_rc;          /* what that submit returned */
};

static void job_run(void *p)
{
    struct tjob *j = p;
    sigset_t mask;

    j->run_thread = pthread_self();
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    j->signals_blocked = sigismember(&mask, SIGTERM) == 1 && sigismember(&mask, SIGCHLD) == 1 &&
                         sigismember(&mask, SIGPIPE) == 1;
    atomic_store(&j->started, 1);
    if (j->gate) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5; /* a hung test fails instead of hanging */
        while (sem_timedwait(j->gate, &ts) != 0 && errno == EINTR)
            ;
    }
    if (j->sleep_us)
        usleep(j->sleep_us);
    atomic_fetch_add(&j->runs, 1);
}

static void job_done(void *p)
{
    struct tjob *j = p;

    j->done_thread = pthread_self();
    j->dones++;
    if (j->pool)
        j->resubmit_rc = worker_pool_submit(j->pool, job_run, job_done, j);
}

/* ---- bounded loop runs ---------------------------------------------- */

static int guard_fired;

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    guard_fired = 1;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until it has nothing left to do, or seconds pass.
 * Returns 0 when the loop ended by itself, -1 on timeout. */
static int run_loop_bounded(struct ev_loop *loop, double seconds)
{
    ev_timer guard;

    guard_fired = 0;
    ev_timer_init(&guard, guard_cb, seconds, 0.);
    ev_timer_start(loop, &guard);
    ev_unref(loop); /* the guard alone must not keep the loop alive */
    ev_run(loop, 0);
    if (ev_is_active(&guard)) {
        ev_ref(loop);
        ev_timer_stop(loop, &guard);
    }
    return guard_fired ? -1 : 0;
}

/* ---- tests ----------------------------------------------------------- */

static void test_new_rejects_bad_arguments(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);

    errno = 0;
    CU_ASSERT_PTR_NULL(worker_pool_new(loop, 0, 10));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(worker_pool_new(loop, 2, 0));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_PTR_NULL(worker_pool_new(NULL, 2, 10));
    ev_loop_destroy(loop);
}

static void test_submit_rejects_null_functions(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct worker_pool *pool = worker_pool_new(loop, 1, 4);
    struct tjob j = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_EQUAL(worker_pool_submit(pool, NULL, job_done, &j), -1);
    CU_ASSERT_EQUAL(worker_pool_submit(pool, job_run, NULL, &j), -1);
    CU_ASSERT_EQUAL(worker_pool_submit(NULL, job_run, job_done, &j), -1);
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 0);
    worker_pool_free(pool);
    CU_ASSERT_EQUAL(atomic_load(&j.runs), 0);
    CU_ASSERT_EQUAL(j.dones, 0);
    ev_loop_destroy(loop);
}

static void test_idle_pool_does_not_keep_loop_alive(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct worker_pool *pool = worker_pool_new(loop, 2, 4);

    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_EQUAL(run_loop_bounded(loop, 2.0), 0);
    worker_pool_free(pool);
    /* and free() left the loop's reference count balanced */
    CU_ASSERT_EQUAL(run_loop_bounded(loop, 2.0), 0);
    ev_loop_destroy(loop);
}

static void test_run_off_loop_thread_done_on_loop_thread(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct worker_pool *pool = worker_pool_new(loop, 2, 8);
    pthread_t self = pthread_self();
    struct tjob j[3] = {{0}};

    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    for (int i = 0; i < 3; i++) {
        j[i].sleep_us = 10000;
        CU_ASSERT_EQUAL(worker_pool_submit(pool, job_run, job_done, &j[i]), 0);
    }
    /* The loop must stay alive until every done() has run. */
    CU_ASSERT_EQUAL(run_loop_bounded(loop, 10.0), 0);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(atomic_load(&j[i].runs), 1);
        CU_ASSERT_EQUAL(j[i].dones, 1);
        CU_ASSERT_FALSE(pthread_equal(j[i].run_thread, self));
        CU_ASSERT_TRUE(pthread_equal(j[i].done_thread, self));
        /* signals are for the loop thread: workers block them */
        CU_ASSERT_TRUE(j[i].signals_blocked);
    }
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 0);
    /* Nothing more arrives, not even on free. */
    CU_ASSERT_EQUAL(run_loop_bounded(loop, 0.2), 0);
    worker_pool_free(pool);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(j[i].dones, 1);
    ev_loop_destroy(loop);
}

static void test_queue_full_fails_at_once(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct worker_pool *pool = worker_pool_new(loop, 1, 2);
    struct tjob j[4] = {{0}};
    sem_t gate;

    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    sem_init(&gate, 0, 0);
    j[0].gate = &gate; /* holds the only thread */
    j[1].gate = &gate;
    CU_ASSERT_EQUAL(worker_pool_submit(pool, job_run, job_done, &j[0]), 0);
    CU_ASSERT_EQUAL(worker_pool_submit(pool, job_run, job_done, &j[1]), 0);
    for (int n = 0; n < 5000 && !atomic_load(&j[0].started); n++)
        usleep(1000);
    CU_ASSERT_FATAL(atomic_load(&j[0].started));
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 2); /* running ones count */
    /* Full (one running + one queued): refused, without waiting for room —
     * a blocking submit would succeed once the gate times out. */
    CU_ASSERT_EQUAL(worker_pool_submit(pool, job_run, job_done, &j[2]), -1);
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 2);
    CU_ASSERT_EQUAL(atomic_load(&j[2].runs), 0);

    sem_post(&gate);
    sem_post(&gate);
    CU_ASSERT_EQUAL(run_loop_bounded(loop, 10.0), 0);
    CU_ASSERT_EQUAL(j[0].dones, 1);
    CU_ASSERT_EQUAL(j[1].dones, 1);
    CU_ASSERT_EQUAL(j[2].dones, 0); /* a refused job is never called back */
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 0);

    /* Room again once the jobs have finished. */
    CU_ASSERT_EQUAL(worker_pool_submit(pool, job_run, job_done, &j[3]), 0);
    CU_ASSERT_EQUAL(run_loop_bounded(loop, 10.0), 0);
    CU_ASSERT_EQUAL(j[3].dones, 1);
    worker_pool_free(pool);
    sem_destroy(&gate);
    ev_loop_destroy(loop);
}

#define MANY 10000

static void test_many_jobs_all_complete(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct worker_pool *pool = worker_pool_new(loop, 4, MANY);
    struct tjob *j = calloc(MANY, sizeof *j);
    pthread_t self = pthread_self();
    int bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    for (int i = 0; i < MANY; i++)
        if (worker_pool_submit(pool, job_run, job_done, &j[i]) != 0)
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(run_loop_bounded(loop, 60.0), 0);
    for (int i = 0; i < MANY; i++)
        if (atomic_load(&j[i].runs) != 1 || j[i].dones != 1 ||
            !pthread_equal(j[i].done_thread, self) || pthread_equal(j[i].run_thread, self))
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 0);
    worker_pool_free(pool);
    free(j);
    ev_loop_destroy(loop);
}

/* A small queue kept full by done() submitting the next job. */
struct refill {
    struct worker_pool *pool;
    struct tjob *jobs;
    int next, total, max_pending, refused;
};

static struct refill refill;

static void refill_done(void *p)
{
    job_done(p);
    while (refill.next < refill.total) {
        if (worker_pool_submit(refill.pool, job_run, refill_done, &refill.jobs[refill.next]) != 0)
            break;
        refill.next++;
    }
    unsigned pending = worker_pool_pending(refill.pool);
    if ((int)pending > refill.max_pending)
        refill.max_pending = (int)pending;
}

static void test_many_jobs_through_small_queue(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    sem_t gate;
    int bad = 0;

    refill = (struct refill){0};
    refill.pool = worker_pool_new(loop, 4, 16);
    refill.jobs = calloc(MANY, sizeof *refill.jobs);
    refill.total = MANY;
    CU_ASSERT_PTR_NOT_NULL_FATAL(refill.pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(refill.jobs);
    /* The first jobs wait at a gate, so none finishes while we fill. */
    sem_init(&gate, 0, 0);
    for (int i = 0; i < 17; i++)
        refill.jobs[i].gate = &gate;
    while (refill.next < refill.total &&
           worker_pool_submit(refill.pool, job_run, refill_done, &refill.jobs[refill.next]) == 0)
        refill.next++;
    CU_ASSERT_EQUAL(refill.next, 16); /* exactly queue_max accepted */
    for (int i = 0; i < 17; i++)
        sem_post(&gate);
    CU_ASSERT_EQUAL(run_loop_bounded(loop, 60.0), 0);
    CU_ASSERT_EQUAL(refill.next, MANY);
    CU_ASSERT(refill.max_pending <= 16);
    for (int i = 0; i < MANY; i++)
        if (atomic_load(&refill.jobs[i].runs) != 1 || refill.jobs[i].dones != 1)
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    worker_pool_free(refill.pool);
    sem_destroy(&gate);
    free(refill.jobs);
    ev_loop_destroy(loop);
}

static void test_free_settles_pending_jobs(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct worker_pool *pool = worker_pool_new(loop, 2, 100);
    pthread_t self = pthread_self();
    struct tjob j[50] = {{0}};
    int bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    for (int i = 0; i < 50; i++) {
        j[i].sleep_us = 2000;
        j[i].pool = pool; /* done() tries to submit again: must be refused */
        j[i].resubmit_rc = 99;
        CU_ASSERT_EQUAL(worker_pool_submit(pool, job_run, job_done, &j[i]), 0);
    }
    CU_ASSERT(worker_pool_pending(pool) > 0);
    /* No loop iteration at all: free runs the queue and calls every done(). */
    worker_pool_free(pool);
    for (int i = 0; i < 50; i++)
        if (atomic_load(&j[i].runs) != 1 || j[i].dones != 1 ||
            !pthread_equal(j[i].done_thread, self) || j[i].resubmit_rc != -1)
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    /* The loop holds no reference for the settled jobs. */
    CU_ASSERT_EQUAL(run_loop_bounded(loop, 2.0), 0);
    ev_loop_destroy(loop);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"new rejects bad arguments", test_new_rejects_bad_arguments},
        {"submit rejects NULL functions", test_submit_rejects_null_functions},
        {"idle pool does not keep the loop alive", test_idle_pool_does_not_keep_loop_alive},
        {"run off the loop thread, done on it once", test_run_off_loop_thread_done_on_loop_thread},
        {"queue full fails at once", test_queue_full_fails_at_once},
        {"10000 jobs on 4 threads", test_many_jobs_all_complete},
        {"10000 jobs through a queue of 16", test_many_jobs_through_small_queue},
        {"free settles pending jobs", test_free_settles_pending_jobs},
        {NULL, NULL},
    };

    return unit_run("workers", tests, 300);
}
