/*
 * fcgi/process.h — the life of one serving process on its loop, once its
 * server listens: the graceful stop, the reload, recycling.
 *
 *   SIGTERM, SIGINT  no new connections; requests in flight finish within
 *                    shutdown_timeout; then the loop ends.
 *   SIGHUP           (a process of its own) reload: a successor started
 *                    from the binary on disk takes the socket over
 *                    (fcgi/handover.h); once it serves, this process stops
 *                    as on SIGTERM, leaving the socket file to it.  A
 *                    successor that fails leaves this one serving.
 *                    (a supervisor's worker) ignored: reloads are the
 *                    supervisor's.
 *   SIGUSR1          reopens the --log-file (logrotate moved it).
 *   fcgi_process_retire  the same as SIGHUP, asked by the process itself
 *                    (--max-requests, --max-rss-mib); a worker asks its
 *                    supervisor to replace it instead.
 *
 * The socket file (when it has one to watch) is checked every two seconds.
 */
#ifndef SPRINGFIELD_FCGI_PROCESS_H
#define SPRINGFIELD_FCGI_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

#include <ev.h>

#include "fcgi/listen.h"
#include "fcgi/server.h"

struct fcgi_process {
    /* set by the caller */
    struct ev_loop *loop;     /* the default loop (child watchers need it) */
    struct fcgi_server *server;
    double shutdown_timeout;
    struct listen_file *file; /* checked, and left to a successor; NULL: none to watch */
    int listen_fd;
    int keep_fd;              /* handed to a successor with the socket; -1: none */
    bool worker;              /* a supervisor's worker */
    void (*on_reload)(void *arg, pid_t successor); /* optional: a reload began */
    void (*on_handed_over)(void *arg, pid_t successor); /* optional: it serves now */
    void *arg;

    /* private */
    bool stopping;
    bool drained; /* the server has drained: the loop ends (or is not entered) */
    bool retire_asked;
    bool handed_over;
    pid_t successor;
    int ready_fd;
    double retry_at;
    ev_signal sigterm, sigint, sighup, sigusr1;
    ev_timer socket_check, ready_timeout;
    ev_io ready_w;
    ev_child child_w;
};

/* From the start of main: SIGTERM, SIGINT and SIGHUP that arrive before a
 * loop (or the supervisor) watches them are remembered instead of ending
 * the process half started; fcgi_process_run and supervisor_run act on
 * them as they begin. */
void fcgi_signals_early(void);

/* The signal remembered since fcgi_signals_early (a stop before a reload),
 * and forgotten; 0 for none. */
int fcgi_signal_early_take(void);

/* Says it serves (to the supervisor, or to the predecessor of a reload),
 * runs the loop until the server has drained, and returns. */
void fcgi_process_run(struct fcgi_process *p);

/* Recycling: this process has served enough (why says how, for the log). */
void fcgi_process_retire(struct fcgi_process *p, const char *why);

/* true once a successor serves in this process's place. */
bool fcgi_process_handed_over(const struct fcgi_process *p);

#endif
