/* fcgi/recycle.c — retiring a process that has served enough (recycle.h). */
#include "fcgi/recycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define RSS_CHECK_S 1.0

unsigned long process_rss_kib(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    int n;

    if (!f)
        return 0;
    n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? resident * (unsigned long)(sysconf(_SC_PAGESIZE) / 1024) : 0;
}

static void on_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_recycle *rc = w->data;
    unsigned long rss = process_rss_kib();
    char why[96];

    (void)loop;
    (void)revents;
    if (rss <= rc->max_rss_kib)
        return;
    snprintf(why, sizeof why, "resident memory %lu MiB is over --max-rss-mib %lu", rss / 1024,
             rc->max_rss_kib / 1024);
    fcgi_process_retire(rc->proc, why);
}

void recycle_start(struct fcgi_recycle *rc, struct fcgi_process *proc,
                   unsigned long max_requests, unsigned long max_rss_mib)
{
    rc->proc = proc;
    rc->served = 0;
    rc->limit = 0;
    if (max_requests) {
        /* a jitter of up to 10 %, drawn per process */
        unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);

        rc->limit = max_requests + (unsigned long)rand_r(&seed) % (max_requests / 10 + 1);
    }
    rc->max_rss_kib = max_rss_mib * 1024;
    ev_timer_init(&rc->check, on_check, RSS_CHECK_S, RSS_CHECK_S);
    rc->check.data = rc;
    if (rc->max_rss_kib) {
        ev_timer_start(proc->loop, &rc->check);
        ev_unref(proc->loop); /* the check alone must not keep the loop running */
    }
}

void recycle_limit_reached(struct fcgi_recycle *rc)
{
    char why[96];

    if (rc->served != rc->limit && rc->served % 1000 != 0)
        return; /* asked already; again every thousand, in case that failed */
    snprintf(why, sizeof why, "served %lu requests (--max-requests, with its jitter)",
             rc->served);
    fcgi_process_retire(rc->proc, why);
}

void recycle_stop(struct fcgi_recycle *rc)
{
    if (!ev_is_active(&rc->check))
        return;
    ev_ref(rc->proc->loop);
    ev_timer_stop(rc->proc->loop, &rc->check);
}
