/* fcgi/process.c — one serving process's stop, reload and recycling (process.h). */
#include "fcgi/process.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "fcgi/handover.h"
#include "fcgi/notify.h"
#include "fcgi/supervisor.h"

/* How often the socket file is checked for removal. */
#define SOCKET_CHECK_S 2.0
/* How long a successor may take to serve before the reload is given up. */
#define RELOAD_TIMEOUT_S 30.0
/* After a failed recycling, the wait before the next attempt. */
#define RETIRE_RETRY_S 10.0

static void on_drained(void *arg)
{
    struct fcgi_process *p = arg;

    p->drained = true;
    ev_break(p->loop, EVBREAK_ALL);
}

static void stop_serving(struct fcgi_process *p)
{
    p->stopping = true;
    if (!p->handed_over)
        sf_notify_stopping();
    if (ev_is_active(&p->socket_check)) {
        ev_ref(p->loop);
        ev_timer_stop(p->loop, &p->socket_check);
    }
    fcgi_server_shutdown(p->server, p->shutdown_timeout, on_drained, p);
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct fcgi_process *p = w->data;

    (void)loop;
    (void)revents;
    /* The watchers stay: a second signal (Ctrl-C, or systemd signalling
     * the whole group, then the supervisor again) must not fall back to
     * the default action and kill the requests being finished. */
    if (p->stopping) {
        sf_info("signal %d: already finishing requests in flight", w->signum);
        return;
    }
    sf_info("signal %d: no new connections; finishing requests in flight", w->signum);
    stop_serving(p);
}

/* ---- a successor ------------------------------------------------------ */

static void forget_successor(struct fcgi_process *p)
{
    if (ev_is_active(&p->ready_w))
        ev_io_stop(p->loop, &p->ready_w);
    if (ev_is_active(&p->ready_timeout))
        ev_timer_stop(p->loop, &p->ready_timeout);
    if (p->ready_fd >= 0)
        close(p->ready_fd);
    p->ready_fd = -1;
}

/* Reaps the successor when it ends (a failed one at once; a serving one
 * only if it ends before this process does). */
static void on_successor_exit(struct ev_loop *loop, ev_child *w, int revents)
{
    struct fcgi_process *p = w->data;
    int status = w->rstatus;

    (void)revents;
    ev_child_stop(loop, w);
    if (p->handed_over)
        return;
    if (WIFEXITED(status))
        sf_error("reload failed: the new process %d exited with status %d before it served "
                 "(its log lines above say why); this one serves on",
                 (int)w->rpid, WEXITSTATUS(status));
    else
        sf_error("reload failed: the new process %d was killed by signal %d before it served; "
                 "this one serves on", (int)w->rpid, WTERMSIG(status));
    forget_successor(p);
    p->successor = 0;
    p->retry_at = ev_now(loop) + RETIRE_RETRY_S;
    sf_notify_ready(); /* readiness was owed since RELOADING=1: this one serves on */
}

static void hand_over(struct fcgi_process *p)
{
    sf_info("reload: process %d serves now; finishing the requests in flight here",
            (int)p->successor);
    p->handed_over = true;
    sf_notify_handed_over(p->successor);
    forget_successor(p);
    if (p->file)
        listen_file_forget(p->file); /* the successor's now */
    if (p->on_handed_over)
        p->on_handed_over(p->arg, p->successor);
    stop_serving(p);
}

static void on_successor_ready(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fcgi_process *p = w->data;
    int r = handover_poll(&p->ready_fd);

    (void)loop;
    (void)revents;
    if (r < 0)
        return;
    ev_io_stop(p->loop, w);
    if (r == 1)
        hand_over(p);
    /* 0: it ended first; on_successor_exit says how */
}

static void on_ready_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_process *p = w->data;

    (void)loop;
    (void)revents;
    sf_error("reload failed: the new process %d did not serve within %.0f s; stopping it",
             (int)p->successor, RELOAD_TIMEOUT_S);
    kill(p->successor, SIGKILL);
    forget_successor(p);
}

static void start_successor(struct fcgi_process *p, const char *why)
{
    pid_t pid;

    if (p->stopping)
        return;
    if (p->successor) {
        sf_info("%s: a reload is already under way (process %d)", why, (int)p->successor);
        return;
    }
    pid = handover_start(p->listen_fd, p->keep_fd, &p->ready_fd);
    if (pid < 0) {
        p->retry_at = ev_now(p->loop) + RETIRE_RETRY_S;
        return;
    }
    p->successor = pid;
    sf_notify_reloading();
    ev_child_init(&p->child_w, on_successor_exit, pid, 0);
    p->child_w.data = p;
    ev_child_start(p->loop, &p->child_w);
    ev_io_init(&p->ready_w, on_successor_ready, p->ready_fd, EV_READ);
    p->ready_w.data = p;
    ev_io_start(p->loop, &p->ready_w);
    ev_timer_init(&p->ready_timeout, on_ready_timeout, RELOAD_TIMEOUT_S, 0);
    p->ready_timeout.data = p;
    ev_timer_start(p->loop, &p->ready_timeout);
    if (p->on_reload)
        p->on_reload(p->arg, pid);
}

static void on_hangup(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct fcgi_process *p = w->data;

    (void)loop;
    (void)revents;
    if (p->worker) {
        sf_info("SIGHUP: ignored in a worker (send it to the supervisor, process %d)",
                (int)getppid());
        return;
    }
    sf_info("SIGHUP: reloading: starting the binary on disk");
    start_successor(p, "SIGHUP");
}

void fcgi_process_retire(struct fcgi_process *p, const char *why)
{
    if (p->stopping || p->successor)
        return;
    if (p->worker) {
        if (!p->retire_asked) {
            sf_info("%s: asking the supervisor for a replacement", why);
            p->retire_asked = true;
            supervisor_worker_retire();
        }
        return;
    }
    if (ev_now(p->loop) < p->retry_at)
        return;
    sf_info("%s: starting a replacement process", why);
    start_successor(p, why);
}

bool fcgi_process_handed_over(const struct fcgi_process *p)
{
    return p->handed_over;
}

/* ---- signals before the loop ------------------------------------------ */

static volatile sig_atomic_t early_stop, early_hangup;

static void remember(int sig)
{
    if (sig == SIGHUP)
        early_hangup = sig;
    else
        early_stop = sig;
}

void fcgi_signals_early(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remember;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int fcgi_signal_early_take(void)
{
    int sig = early_stop ? early_stop : early_hangup;

    if (early_stop)
        early_stop = 0;
    else
        early_hangup = 0;
    return sig;
}

/* ---- the loop --------------------------------------------------------- */

/* SIGUSR1: the --log-file was moved away (logrotate); open it again. */
static void on_reopen_log(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (sf_log_to_file())
        sf_log_reopen();
    else
        sf_info("SIGUSR1: ignored (no --log-file to reopen)");
}

static void on_socket_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_process *p = w->data;

    (void)revents;
    if (!p->file || listen_file_check(p->file) < 0) {
        ev_ref(loop);
        ev_timer_stop(loop, w); /* said once; nothing more to watch */
    }
}

void fcgi_process_run(struct fcgi_process *p)
{
    p->ready_fd = -1;
    ev_signal_init(&p->sigterm, on_stop_signal, SIGTERM);
    ev_signal_init(&p->sigint, on_stop_signal, SIGINT);
    ev_signal_init(&p->sighup, on_hangup, SIGHUP);
    p->sigterm.data = p->sigint.data = p->sighup.data = p;
    ev_signal_start(p->loop, &p->sigterm);
    ev_signal_start(p->loop, &p->sigint);
    ev_signal_start(p->loop, &p->sighup);
    ev_signal_init(&p->sigusr1, on_reopen_log, SIGUSR1);
    ev_signal_start(p->loop, &p->sigusr1);
    ev_timer_init(&p->socket_check, on_socket_check, SOCKET_CHECK_S, SOCKET_CHECK_S);
    p->socket_check.data = p;
    if (p->file && p->file->path) {
        ev_timer_start(p->loop, &p->socket_check);
        ev_unref(p->loop); /* the check alone must not keep the loop running */
    }
    /* the server listens: whoever waits for this process may count on it */
    if (p->worker)
        supervisor_worker_serving();
    else
        handover_ready();
    for (int sig; (sig = fcgi_signal_early_take()) != 0;) {
        if (sig == SIGHUP) {
            on_hangup(p->loop, &p->sighup, 0);
        } else {
            sf_info("signal %d (during start-up): no new connections; finishing requests in "
                    "flight", sig);
            stop_serving(p);
            break;
        }
    }

    /* A stop during start-up with nothing in flight drains at once, before
     * the loop: ev_run would forget that ev_break, and serve on. */
    if (!p->drained)
        ev_run(p->loop, 0);

    if (ev_is_active(&p->socket_check)) {
        ev_ref(p->loop);
        ev_timer_stop(p->loop, &p->socket_check);
    }
    forget_successor(p);
    if (ev_is_active(&p->child_w))
        ev_child_stop(p->loop, &p->child_w);
    /* the signal watchers stay until the loop is destroyed: a signal
     * while the backends close must not kill the process */
}
