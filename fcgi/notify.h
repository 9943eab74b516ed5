/*
 * fcgi/notify.h — telling systemd how the service is doing, through its
 * notify protocol (sd_notify(3); written here, without libsystemd).
 *
 * $NOTIFY_SOCKET names a unix datagram socket: a path, or an abstract
 * socket when it starts with '@'.  A message is one datagram of
 * "NAME=value" lines ("READY=1\nSTATUS=...\nMAINPID=123").  Without
 * NOTIFY_SOCKET every function here does nothing.  Sending never blocks
 * (a non-blocking socket, MSG_DONTWAIT) and never fails the service: a
 * message that cannot be sent is dropped, and the first failure is logged,
 * once.  (READY=1 alone is tried again until it goes: without it systemd
 * would give up on the start.)
 *
 * Who talks to systemd: only the main process, the one systemd started.
 * The unit says NotifyAccess=main, so systemd would ignore (and log) a
 * message from any other process.  Without --workers the main process is
 * the one serving; with --workers it is the supervisor, and the workers
 * report to it through a pipe instead (sf_notify_pool_*): the supervisor
 * sends READY=1 once every worker serves, and STATUS= summed over them.
 *
 * The state systemd is told, and who moves it (all on the main process's
 * loop thread, or the supervisor's one thread):
 *
 *   starting --READY=1--> ready --RELOADING=1--> reloading --READY=1--> ready
 *      \______________________\______STOPPING=1_____\____________> stopping
 *                                                   \--MAINPID=,READY=1--> handed over
 *
 *   sf_notify_init()        main(), first thing, before any thread or fork.
 *                           NOTIFY_SOCKET stays in the environment: a
 *                           reload's successor (the one program springfield
 *                           executes: itself) needs it once it is the main
 *                           process.  Forked workers are muted instead.
 *   READY=1, at start       sent by itself: without --workers, at the first
 *                           sf_notify_serving() (the server accepts and the
 *                           backends are open); with --workers, once every
 *                           worker has called sf_notify_serving().
 *   sf_notify_reloading()   whoever begins a reload (SIGHUP), in the main
 *                           process, before the new workers are forked.
 *   READY=1, after a reload in the same supervisor: sent by itself once as
 *                           many workers forked after sf_notify_reloading()
 *                           as sf_notify_pool_expect() says serve.  A reload
 *                           within one serving process calls
 *                           sf_notify_ready() when it is done; so does a
 *                           reload that failed (the old process serves on).
 *   A reload that replaces the main process (a successor executed from the
 *   binary on disk takes the socket over, then the predecessor drains):
 *     predecessor, at SIGHUP           sf_notify_reloading()
 *     successor, at start, before it serves   sf_notify_successor(): it does
 *                           not say READY=1 itself (systemd would refuse it
 *                           from a process that is not the main one yet)
 *     predecessor, once the successor serves  sf_notify_handed_over(pid):
 *                           "MAINPID=pid\nREADY=1" in one message, then
 *                           silence (its drain is not the service stopping;
 *                           STOPPING=1 is the successor's to say, later).
 *   sf_notify_stopping()    SIGTERM/SIGINT, when the stop begins.  Final:
 *                           nothing but STATUS= is sent after it.
 *   sf_notify_mainpid(pid)  MAINPID=pid alone: systemd takes pid as the main
 *                           PID, the only one it hears from then on
 *                           (NotifyAccess=main); pid must be in the unit's
 *                           cgroup (a process springfield started).
 *   sf_notify_status(...)   any time; a free-form STATUS= line ("reloading:
 *                           1 of 2 new workers serving"), which the next
 *                           sample of sf_notify_serving() may replace.
 *
 * In a worker (after sf_notify_pool_child()), every function that speaks
 * to systemd does nothing: the supervisor speaks for the pool.
 */
#ifndef SPRINGFIELD_FCGI_NOTIFY_H
#define SPRINGFIELD_FCGI_NOTIFY_H

#include <stdbool.h>
#include <sys/types.h>

/* Reads NOTIFY_SOCKET.  A value that is not a path or an abstract name
 * is logged and ignored. */
void sf_notify_init(void);

/* True when somebody listens: systemd (the main process, NOTIFY_SOCKET
 * set) or the supervisor (a worker of a pool).  Serving processes sample
 * their status only then. */
bool sf_notify_enabled(void);

/* READY=1, with the last STATUS= and MAINPID=.  Ignored once stopping. */
void sf_notify_ready(void);

/* RELOADING=1 with MONOTONIC_USEC= (what Type=notify-reload asks for too);
 * readiness is owed again (see above). */
void sf_notify_reloading(void);

/* STOPPING=1, once. */
void sf_notify_stopping(void);

/* MAINPID=pid. */
void sf_notify_mainpid(pid_t pid);

/* A reload's successor, at start: see above. */
void sf_notify_successor(void);

/* A reload's predecessor, once its successor serves: MAINPID=successor and
 * READY=1, then nothing more from this process. */
void sf_notify_handed_over(pid_t successor);

/* STATUS=<printf>, sent as it is (a line of its own). */
void sf_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * What a serving process (the single one, or a worker) reports every few
 * seconds: it serves, it has in_flight requests begun and not answered,
 * and these backends are down ("redis (marges), weather (maggie)", or ""
 * for none).  The first call is its readiness.  In the main process it
 * becomes READY=1 (the first time) and STATUS= ("serving; 2 requests in
 * flight; backends down: none"), sent when it changed and at least every
 * STATUS_REFRESH_S; in a worker, a report to the supervisor.
 */
void sf_notify_serving(unsigned long in_flight, const char *backends_down);

/* Seconds between two STATUS= lines that say the same. */
#define STATUS_REFRESH_S 10

/*
 * The supervisor's side of --workers.  sf_notify_pool_open(n): before the
 * first fork, the pipe the workers report through (nothing without
 * NOTIFY_SOCKET); n workers make the pool ready.  Its read end raises SIGIO
 * in the supervisor when a report arrives (block it and wait for it with
 * the others), and sf_notify_pool_read() reads what came, sends READY=1 and
 * STATUS= as they become due; call it on every turn (also on the timeout:
 * the status is refreshed from there).  sf_notify_pool_gone(pid): a
 * worker was reaped (its numbers no longer count); call after
 * sf_notify_pool_read() on the same turn, so its last report is read first.
 * sf_notify_pool_expect(n): the pool's size changed (a reload).
 */
void sf_notify_pool_open(unsigned workers);
void sf_notify_pool_expect(unsigned workers);
void sf_notify_pool_read(void);
void sf_notify_pool_gone(pid_t pid);
/* The read end (for a loop that would rather poll it), or -1. */
int sf_notify_pool_fd(void);

/* In a worker, right after fork: from now on this process reports to the
 * supervisor and never speaks to systemd. */
void sf_notify_pool_child(void);

#endif
