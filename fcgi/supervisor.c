/* fcgi/supervisor.c — worker processes on one socket, restarted when they die. */
#include "fcgi/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

struct worker {
    pid_t pid; /* 0: none (to be started) */
    int slot;
    time_t started;
};

static pid_t start_worker(const struct supervisor_config *cfg, struct worker *w,
                          const sigset_t *oldmask)
{
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
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        _exit(cfg->serve(cfg->arg, slot));
    }
    w->started = time(NULL);
    if (pid < 0) {
        sf_error("fork failed: %s; trying again in a second", strerror(errno));
        return w->pid = 0; /* the supervisor retries it */
    }
    w->slot = slot;
    if (cfg->started)
        cfg->started(cfg->arg, slot, pid);
    return w->pid = pid;
}

int supervisor_run(const struct supervisor_config *cfg)
{
    struct worker *ws = calloc(cfg->workers, sizeof *ws);
    sigset_t mask, oldmask;
    int stopping = 0, rc = 0;
    time_t deadline = 0;
    unsigned i, alive;

    if (!ws) {
        sf_error("out of memory");
        return 1;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &oldmask);
    for (i = 0; i < cfg->workers; i++)
        start_worker(cfg, &ws[i], &oldmask);
    sf_info("supervising %u worker processes", cfg->workers);
    for (;;) {
        struct timespec tick = {1, 0};
        siginfo_t si;
        int sig = sigtimedwait(&mask, &si, &tick);
        pid_t pid;
        int status;

        if (sig == SIGHUP)
            sf_info("SIGHUP: ignored (springfield has no reload; restart it to apply changes)");
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                sf_info("signal %d: stopping the workers", sig);
                stopping = 1;
                /* The workers close their copies; this one must go too, or
                 * the kernel keeps queueing connections nobody will accept. */
                close(cfg->listen_fd);
                deadline = time(NULL) + (time_t)cfg->shutdown_timeout + 2;
                for (i = 0; i < cfg->workers; i++)
                    if (ws[i].pid > 0)
                        kill(ws[i].pid, SIGTERM);
            }
        }
        if (!stopping && cfg->file)
            listen_file_check(cfg->file);
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (i = 0; i < cfg->workers; i++) {
                if (ws[i].pid != pid)
                    continue;
                ws[i].pid = 0;
                if (cfg->ended)
                    cfg->ended(cfg->arg, ws[i].slot, pid, !stopping);
                if (stopping) {
                    /* A worker that dropped requests, or had to be killed,
                     * makes the whole stop one that dropped requests. */
                    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        rc = EXIT_DROPPED;
                } else if (WIFSIGNALED(status)) {
                    sf_error("worker %d killed by signal %d; restarting it", (int)pid,
                             WTERMSIG(status));
                } else {
                    sf_error("worker %d exited with status %d; restarting it", (int)pid,
                             WEXITSTATUS(status));
                }
            }
        }
        alive = 0;
        for (i = 0; i < cfg->workers; i++) {
            if (ws[i].pid == 0 && !stopping) {
                /* A worker that dies at once is restarted at most once a second. */
                if (time(NULL) - ws[i].started < 1)
                    continue;
                start_worker(cfg, &ws[i], &oldmask);
            }
            alive += ws[i].pid > 0;
        }
        if (stopping && alive == 0)
            break;
        if (stopping && time(NULL) > deadline) {
            sf_warn("workers did not stop in time; killing them");
            for (i = 0; i < cfg->workers; i++)
                if (ws[i].pid > 0)
                    kill(ws[i].pid, SIGKILL);
            deadline = time(NULL) + 60;
        }
    }
    free(ws);
    sf_info("all workers stopped");
    return rc;
}

