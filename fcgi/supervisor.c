/* fcgi/supervisor.c — worker processes on one socket: restarted when they
 * die, replaced when they retire, handed over at a reload (supervisor.h). */
#include "fcgi/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "fcgi/handover.h"
#include "fcgi/notify.h"
#include "fcgi/process.h"

/* How long a reload's new supervisor may take until all its workers serve. */
#define RELOAD_TIMEOUT_S 30
/* The loop's tick: restarts, deadlines and the socket file check. */
#define TICK_MS 250

/* What a worker tells the supervisor, on a pipe: a message is written
 * whole (it is far below PIPE_BUF). */
enum { MSG_SERVING = 1, MSG_RETIRE = 2 };
struct message {
    int32_t pid;
    int32_t what;
};

static int worker_pipe = -1; /* in a worker: the pipe's write end */

struct worker {
    pid_t pid; /* 0: none */
    int slot;
    time_t started;
    bool serving;
    bool retire; /* asked to be replaced */
};

/* One of the N places: the worker in it, and its replacement while one
 * starts. */
struct place {
    struct worker now, next;
};

struct supervisor {
    const struct supervisor_config *cfg;
    struct place *places;
    struct worker *draining; /* replaced or handed over; finishing their requests */
    unsigned ndraining, draining_cap;
    sigset_t oldmask;
    int msg[2];
    int sigfd;
    bool stopping, handed_over, generation_ready, successor_given_up;
    time_t deadline;
    pid_t successor;
    int ready_fd;
    time_t successor_deadline;
    int rc;
};

static void send_message(int what)
{
    struct message m = {(int32_t)getpid(), what};

    if (worker_pipe >= 0 && write(worker_pipe, &m, sizeof m) != (ssize_t)sizeof m)
        sf_warn("cannot tell the supervisor (%s)", strerror(errno));
}

void supervisor_worker_serving(void)
{
    send_message(MSG_SERVING);
}

void supervisor_worker_retire(void)
{
    send_message(MSG_RETIRE);
}

static void spawn(struct supervisor *s, struct worker *w)
{
    const struct supervisor_config *cfg = s->cfg;
    pid_t parent = getpid();
    int slot = cfg->pick_slot ? cfg->pick_slot(cfg->arg) : -1;
    pid_t pid = fork();

    if (pid == 0) {
        /* A supervisor killed outright (SIGKILL, OOM) cannot stop its
         * workers: they stop themselves, gracefully, when it dies. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
            sf_warn("cannot ask to be told of the supervisor's death: %s", strerror(errno));
        if (getppid() != parent)
            _exit(0); /* it died before the request took effect */
        close(s->msg[0]);
        close(s->sigfd);
        if (s->ready_fd >= 0)
            close(s->ready_fd);
        worker_pipe = s->msg[1];
        sf_notify_pool_child(); /* it reports to this supervisor, never to systemd */
        sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
        _exit(cfg->serve(cfg->arg, slot));
    }
    memset(w, 0, sizeof *w);
    w->started = time(NULL);
    if (pid < 0) {
        sf_error("fork failed: %s; trying again in a second", strerror(errno));
        if (slot >= 0 && cfg->ended)
            cfg->ended(cfg->arg, slot, 0, false); /* gives the slot back */
        return;
    }
    w->pid = pid;
    w->slot = slot;
    if (cfg->started)
        cfg->started(cfg->arg, slot, pid);
}

static void signal_all(struct supervisor *s, int sig)
{
    for (unsigned i = 0; i < s->cfg->workers; i++) {
        if (s->places[i].now.pid > 0)
            kill(s->places[i].now.pid, sig);
        if (s->places[i].next.pid > 0)
            kill(s->places[i].next.pid, sig);
    }
    for (unsigned i = 0; i < s->ndraining; i++)
        kill(s->draining[i].pid, sig);
}

static void stop_all(struct supervisor *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    if (!s->handed_over)
        sf_notify_stopping();
    /* The workers close their copies; this one must go too, or the kernel
     * keeps queueing connections nobody will accept. */
    close(s->cfg->listen_fd);
    s->deadline = time(NULL) + (time_t)s->cfg->shutdown_timeout + 2;
    signal_all(s, SIGTERM);
}

/* The worker in place p drains: its replacement serves in its stead. */
static void drain(struct supervisor *s, struct worker *w)
{
    if (s->ndraining == s->draining_cap) { /* cannot happen: one per place at a time */
        kill(w->pid, SIGKILL);
        return;
    }
    kill(w->pid, SIGTERM);
    s->draining[s->ndraining++] = *w;
    memset(w, 0, sizeof *w);
}

static void successor_failed(struct supervisor *s, const char *why)
{
    sf_error("reload failed: the new supervisor %d %s; this generation serves on",
             (int)s->successor, why);
    sf_notify_ready(); /* readiness was owed since RELOADING=1: this one serves on */
    if (s->ready_fd >= 0)
        close(s->ready_fd);
    s->ready_fd = -1;
}

/* ---- events ----------------------------------------------------------- */

static void ended(struct supervisor *s, struct worker *w, int status, bool restarting)
{
    if (s->cfg->ended)
        s->cfg->ended(s->cfg->arg, w->slot, w->pid, restarting);
    if (s->stopping && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        s->rc = EXIT_DROPPED; /* it dropped requests, or had to be killed */
}

static void describe(pid_t pid, int status, const char *what)
{
    if (WIFSIGNALED(status))
        sf_error("worker %d killed by signal %d; %s", (int)pid, WTERMSIG(status), what);
    else
        sf_error("worker %d exited with status %d; %s", (int)pid, WEXITSTATUS(status), what);
}

static void reaped(struct supervisor *s, pid_t pid, int status)
{
    if (pid == s->successor) {
        s->successor = 0;
        if (s->successor_given_up) {
            s->successor_given_up = false; /* said when it was given up */
        } else if (!s->handed_over && WIFEXITED(status)) {
            char why[64];

            snprintf(why, sizeof why, "exited with status %d before it served",
                     WEXITSTATUS(status));
            successor_failed(s, why);
        } else if (!s->handed_over) {
            successor_failed(s, "was killed before it served");
        }
        return;
    }
    for (unsigned i = 0; i < s->ndraining; i++)
        if (s->draining[i].pid == pid) {
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                describe(pid, status, "it was draining");
            ended(s, &s->draining[i], status, false);
            s->draining[i] = s->draining[--s->ndraining];
            return;
        }
    for (unsigned i = 0; i < s->cfg->workers; i++) {
        struct place *p = &s->places[i];

        if (p->next.pid == pid) {
            if (!s->stopping)
                describe(pid, status, "it was to replace another, which serves on");
            ended(s, &p->next, status, false);
            p->next.pid = 0;
            return;
        }
        if (p->now.pid != pid)
            continue;
        ended(s, &p->now, status, !s->stopping);
        p->now.pid = 0;
        if (s->stopping)
            return;
        if (s->cfg->successor && !s->generation_ready) {
            describe(pid, status, "a new generation that cannot serve gives the reload up");
            s->rc = 1;
            stop_all(s);
        } else if (p->next.pid) {
            describe(pid, status, "its replacement takes its place");
            p->now = p->next;
            p->next.pid = 0;
        } else {
            describe(pid, status, "restarting it");
        }
        return;
    }
}

static void message(struct supervisor *s, const struct message *m)
{
    for (unsigned i = 0; i < s->cfg->workers; i++) {
        struct place *p = &s->places[i];

        if (p->now.pid == m->pid) {
            if (m->what == MSG_SERVING)
                p->now.serving = true;
            else if (m->what == MSG_RETIRE)
                p->now.retire = true;
            return;
        }
        if (p->next.pid == m->pid && m->what == MSG_SERVING && !s->stopping) {
            sf_info("worker %d serves in place of worker %d, which finishes its requests",
                    (int)p->next.pid, (int)p->now.pid);
            p->next.serving = true;
            if (s->cfg->replaced)
                s->cfg->replaced(s->cfg->arg, p->now.pid, p->next.pid);
            drain(s, &p->now);
            p->now = p->next;
            memset(&p->next, 0, sizeof p->next);
            return;
        }
    }
}

static void reload(struct supervisor *s)
{
    if (s->stopping)
        return;
    if (s->successor) {
        sf_info("SIGHUP: a reload is already under way (supervisor %d)", (int)s->successor);
        return;
    }
    if (s->cfg->successor && !s->generation_ready) {
        sf_info("SIGHUP: this generation is still starting; ignored");
        return;
    }
    sf_info("SIGHUP: reloading: a new supervisor from the binary on disk");
    s->successor = handover_start(s->cfg->listen_fd, s->cfg->keep_fd, &s->ready_fd);
    if (s->successor < 0) {
        s->successor = 0;
        return;
    }
    s->successor_deadline = time(NULL) + RELOAD_TIMEOUT_S;
    sf_notify_reloading();
    if (s->cfg->on_reload)
        s->cfg->on_reload(s->cfg->arg, s->successor);
}

static void successor_readable(struct supervisor *s)
{
    int r = handover_poll(&s->ready_fd);

    if (r != 1)
        return; /* nothing yet, or it ended first: reaped() says how */
    sf_info("reload: the new supervisor %d serves; this generation finishes its requests",
            (int)s->successor);
    s->handed_over = true;
    sf_notify_handed_over(s->successor);
    if (s->cfg->file)
        listen_file_forget(s->cfg->file); /* the successor's now */
    if (s->cfg->on_handed_over)
        s->cfg->on_handed_over(s->cfg->arg, s->successor);
    stop_all(s);
}

/* What the clock decides: restarts, replacements, deadlines. */
static void tick(struct supervisor *s)
{
    time_t now = time(NULL);
    bool all_serving = true;

    for (unsigned i = 0; i < s->cfg->workers && !s->stopping; i++) {
        struct place *p = &s->places[i];

        /* A worker that dies at once is restarted at most once a second. */
        if (p->now.pid == 0 && now - p->now.started >= 1)
            spawn(s, &p->now);
        else if (p->now.retire && p->next.pid == 0 && !s->successor &&
                 now - p->next.started >= 1)
            spawn(s, &p->next);
        all_serving = all_serving && p->now.pid > 0 && p->now.serving;
    }
    if (!s->stopping && all_serving && !s->generation_ready) {
        s->generation_ready = true;
        sf_info("%u workers serving", s->cfg->workers);
        if (s->cfg->successor)
            handover_ready();
    }
    if (s->successor && s->ready_fd >= 0 && now > s->successor_deadline) {
        successor_failed(s, "did not serve in time; stopping it");
        s->successor_given_up = true;
        kill(s->successor, SIGTERM);
    }
    if (!s->stopping && s->cfg->file)
        listen_file_check(s->cfg->file);
    if (s->stopping && now > s->deadline) {
        sf_warn("workers did not stop in time; killing them");
        signal_all(s, SIGKILL);
        s->rc = EXIT_DROPPED;
        s->deadline = now + 60;
    }
}

static unsigned alive(const struct supervisor *s)
{
    unsigned n = s->ndraining;

    for (unsigned i = 0; i < s->cfg->workers; i++)
        n += (s->places[i].now.pid > 0) + (s->places[i].next.pid > 0);
    return n;
}

/* SIGUSR1: each worker has the log file open on its own, and reopens it
 * itself (a signal to the whole group reaches it twice: harmless). */
static void reopen_logs(struct supervisor *s)
{
    if (!sf_log_to_file()) {
        sf_info("SIGUSR1: ignored (no --log-file to reopen)");
        return;
    }
    sf_log_reopen();
    signal_all(s, SIGUSR1);
}

static void read_signals(struct supervisor *s)
{
    struct signalfd_siginfo si;

    while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            if (!s->stopping)
                sf_info("signal %d: stopping the workers", (int)si.ssi_signo);
            stop_all(s);
        } else if (si.ssi_signo == SIGHUP) {
            reload(s);
        } else if (si.ssi_signo == SIGUSR1) {
            reopen_logs(s);
        }
    }
}

static void read_messages(struct supervisor *s)
{
    struct message m;

    while (read(s->msg[0], &m, sizeof m) == (ssize_t)sizeof m)
        message(s, &m);
}

int supervisor_run(const struct supervisor_config *cfg)
{
    struct supervisor s = {.cfg = cfg, .ready_fd = -1, .sigfd = -1, .msg = {-1, -1}};
    sigset_t mask;
    pid_t pid;
    int status;

    s.places = calloc(cfg->workers, sizeof *s.places);
    s.draining_cap = 2 * cfg->workers;
    s.draining = calloc(s.draining_cap, sizeof *s.draining);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGIO); /* a worker's report (fcgi/notify.h): polled, the signal unused */
    sigprocmask(SIG_BLOCK, &mask, &s.oldmask);
    if (s.places && s.draining)
        s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (!s.places || !s.draining || s.sigfd < 0 || pipe2(s.msg, O_CLOEXEC | O_NONBLOCK) < 0) {
        sf_error("cannot start the supervisor: %s", s.places ? strerror(errno) : "out of memory");
        free(s.places);
        free(s.draining);
        if (s.sigfd >= 0)
            close(s.sigfd);
        sigprocmask(SIG_SETMASK, &s.oldmask, NULL);
        return 1;
    }
    sf_notify_pool_open(cfg->workers);
    for (unsigned i = 0; i < cfg->workers; i++)
        spawn(&s, &s.places[i].now);
    sf_info("supervising %u worker processes", cfg->workers);
    for (int sig; (sig = fcgi_signal_early_take()) != 0;) { /* came during start-up */
        if (sig != SIGHUP) {
            sf_info("signal %d (during start-up): stopping the workers", sig);
            stop_all(&s);
            break;
        }
        sf_info("SIGHUP during start-up: ignored (this generation is still starting)");
    }
    while (!s.stopping || alive(&s) > 0) {
        struct pollfd fds[4] = {{s.sigfd, POLLIN, 0}, {s.msg[0], POLLIN, 0},
                                {sf_notify_pool_fd(), POLLIN, 0}, {s.ready_fd, POLLIN, 0}};

        if (poll(fds, s.ready_fd >= 0 ? 4 : 3, TICK_MS) < 0 && errno != EINTR) {
            sf_error("poll: %s", strerror(errno));
            break;
        }
        read_signals(&s);
        read_messages(&s);
        sf_notify_pool_read(); /* READY=1 once every worker serves; STATUS= */
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            sf_notify_pool_gone(pid);
            reaped(&s, pid, status);
        }
        if (s.ready_fd >= 0 && (fds[3].revents & (POLLIN | POLLHUP)))
            successor_readable(&s);
        tick(&s);
    }
    free(s.places);
    free(s.draining);
    close(s.sigfd);
    close(s.msg[0]);
    close(s.msg[1]);
    sigprocmask(SIG_SETMASK, &s.oldmask, NULL);
    sf_info(s.handed_over ? "all workers of this generation stopped; the new one serves"
                          : "all workers stopped");
    return s.rc;
}
