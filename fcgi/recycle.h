/*
 * fcgi/recycle.h — when a serving process has served enough: after
 * --max-requests answers (each process draws its own limit up to 10 %
 * above, so workers started together do not retire together), or once its
 * resident memory passes --max-rss-mib (checked every second).  Then it
 * retires through fcgi_process_retire: replaced first, drained after.
 */
#ifndef SPRINGFIELD_FCGI_RECYCLE_H
#define SPRINGFIELD_FCGI_RECYCLE_H

#include <ev.h>

#include "fcgi/process.h"

struct fcgi_recycle {
    struct fcgi_process *proc;
    unsigned long limit;       /* answers; 0: no limit */
    unsigned long served;
    unsigned long max_rss_kib; /* 0: no limit */
    ev_timer check;
};

/* max_requests and max_rss_mib 0: that limit is off. */
void recycle_start(struct fcgi_recycle *rc, struct fcgi_process *proc,
                   unsigned long max_requests, unsigned long max_rss_mib);

/* The --max-requests limit is reached (recycle_count). */
void recycle_limit_reached(struct fcgi_recycle *rc);

/* One more request answered (inline: every answer counts). */
static inline void recycle_count(struct fcgi_recycle *rc)
{
    if (rc->limit && ++rc->served >= rc->limit)
        recycle_limit_reached(rc);
}

void recycle_stop(struct fcgi_recycle *rc);

/* This process's resident memory, in KiB (0 when unknown). */
unsigned long process_rss_kib(void);

#endif
