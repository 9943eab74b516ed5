/*
 * fcgi/supervisor.h — the supervisor of --workers N: N worker processes
 * forked on one listening socket, restarted when they die, replaced when
 * they retire, and all of them replaced by a reload.
 *
 * The supervisor serves nothing itself.
 *  - SIGTERM/SIGINT: it closes its copy of the socket (so the kernel queues
 *    no connection nobody will accept), signals the workers, waits for them
 *    up to the shutdown timeout plus 2 s, then kills the rest.
 *  - SIGHUP: a reload (fcgi/handover.h): a new supervisor from the binary
 *    on disk starts its own workers on the same socket; once every one of
 *    them serves, this supervisor drains its workers as on SIGTERM and
 *    exits, leaving the socket file to the new one.  A new generation that
 *    fails to start leaves this one serving, and the log says why.
 *  - A worker that retires (supervisor_worker_retire: --max-requests,
 *    --max-rss-mib) is replaced: its replacement starts in a slot of its
 *    own, and once it serves the old worker drains.  No request fails and
 *    the pool never has fewer workers than N.
 *  - SIGUSR1 reopens the --log-file, in the supervisor and (passed on) in
 *    every worker.
 * Workers stop gracefully on their own when the supervisor dies (SIGKILL,
 * OOM): they are forked with PR_SET_PDEATHSIG = SIGTERM.
 *
 * systemd (fcgi/notify.h): the supervisor is the main PID and the only
 * process that speaks to systemd.  Each worker reports to it through a
 * pipe once it serves and when its status changes; the supervisor sends
 * READY=1 once every worker serves, STATUS= summed over them, and
 * STOPPING=1 at SIGTERM/SIGINT.  At a reload it says RELOADING=1, and once
 * the new supervisor serves, MAINPID= with READY=1 for it.
 */
#ifndef SPRINGFIELD_FCGI_SUPERVISOR_H
#define SPRINGFIELD_FCGI_SUPERVISOR_H

#include <stdbool.h>
#include <sys/types.h>

#include "fcgi/listen.h"

/* Exit status of a stop that had to drop requests at the deadline. */
#define EXIT_DROPPED 3

struct supervisor_config {
    unsigned workers;
    double shutdown_timeout;  /* seconds, as given to each worker */
    int listen_fd;
    struct listen_file *file; /* checked for removal every second; may be NULL */
    int keep_fd;              /* handed to a reload's successor with the socket; -1: none */
    bool successor;           /* started by a reload: tells the predecessor once every
                               * worker serves; a worker that ends before gives up */
    /* A worker's life, in the child; returns its exit status.  slot is
     * what pick_slot said before the fork (-1 without it). */
    int (*serve)(void *arg, int slot);
    void *arg;
    /* Optional, in the supervisor: the slot (of the caller's scoreboard)
     * the next worker is to count in, -1 for none; then that it started
     * as pid, and that it ended (restarting: it died, and is started
     * again).  A reload began (its new supervisor is successor), and it
     * took over. */
    int (*pick_slot)(void *arg);
    void (*started)(void *arg, int slot, pid_t pid);
    void (*ended)(void *arg, int slot, pid_t pid, bool restarting);
    void (*replaced)(void *arg, pid_t old, pid_t replacement);
    void (*on_reload)(void *arg, pid_t successor);
    void (*on_handed_over)(void *arg, pid_t successor);
};

/* Returns 0 after a clean stop or hand-over, EXIT_DROPPED when a worker
 * dropped requests or had to be killed, 1 when it cannot start. */
int supervisor_run(const struct supervisor_config *cfg);

/* In a worker: it serves now (its server listens). */
void supervisor_worker_serving(void);

/* In a worker: it has served enough; the supervisor starts its
 * replacement and then signals it to stop.  Once per worker. */
void supervisor_worker_retire(void);

#endif
