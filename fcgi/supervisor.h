/*
 * fcgi/supervisor.h — the supervisor of --workers N: N worker processes
 * forked on one listening socket, each restarted when it dies.
 *
 * The supervisor serves nothing itself.  SIGTERM/SIGINT: it closes its
 * copy of the socket (so the kernel queues no connection nobody will
 * accept), signals the workers, waits for them up to the shutdown timeout
 * plus 2 s, then kills the rest.  SIGHUP is logged and ignored.  SIGUSR1
 * reopens the --log-file, in the supervisor and (passed on) in every
 * worker.  Workers
 * stop gracefully on their own when the supervisor dies (SIGKILL, OOM):
 * they are forked with PR_SET_PDEATHSIG = SIGTERM.
 *
 * systemd (fcgi/notify.h): the supervisor is the main PID and the only
 * process that speaks to systemd.  Each worker reports to it through a
 * pipe once it serves and when its status changes; the supervisor sends
 * READY=1 once every worker serves, STATUS= summed over them, and
 * STOPPING=1 at SIGTERM/SIGINT.
 */
#ifndef SPRINGFIELD_FCGI_SUPERVISOR_H
#define SPRINGFIELD_FCGI_SUPERVISOR_H

#include "fcgi/listen.h"

/* Exit status of a stop that had to drop requests at the deadline. */
#define EXIT_DROPPED 3

struct supervisor_config {
    unsigned workers;
    double shutdown_timeout;  /* seconds, as given to each worker */
    int listen_fd;
    struct listen_file *file; /* checked for removal every second; may be NULL */
    int (*serve)(void *arg);  /* a worker's life, in the child; returns its exit status */
    void *arg;
};

/* Returns 0 after a clean stop, EXIT_DROPPED when a worker dropped
 * requests or had to be killed, 1 when it cannot start. */
int supervisor_run(const struct supervisor_config *cfg);

#endif
