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
#include "fcgi/notify.h"

static pid_t start_worker(const struct supervisor_config *cfg, const sigset_t *oldmask)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid == 0) {
        /* A supervisor killed outright (SIGKILL, OOM) cannot stop its
         * workers: they stop themselves, gracefully, when it dies. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
            sf_warn("cannot ask to be told of the supervisor's death: %s", strerror(errno));
        if (getppid() != parent)
            _exit(0); /* it died before the request took effect */
        sf_notify_pool_child(); /* it reports to this supervisor, never to systemd */
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        _exit(cfg->serve(cfg->arg));
    }
    if (pid < 0) {
        sf_error("fork failed: %s; trying again in a second", strerror(errno));
        return 0; /* an empty slot: the supervisor retries it */
    }
    return pid;
}

/* SIGUSR1: each worker has the log file open on its own, and reopens it
 * itself (a signal to the whole group reaches it twice: harmless). */
static void reopen_logs(const pid_t *pids, unsigned n)
{
    unsigned i;

    if (!sf_log_to_file()) {
        sf_info("SIGUSR1: ignored (no --log-file to reopen)");
        return;
    }
    sf_log_reopen();
    for (i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGUSR1);
}

int supervisor_run(const struct supervisor_config *cfg)
{
    pid_t *pids = calloc(cfg->workers, sizeof *pids);
    time_t *started = calloc(cfg->workers, sizeof *started);
    sigset_t mask, oldmask;
    int stopping = 0, rc = 0;
    time_t deadline = 0;
    unsigned i, alive;

    if (!pids || !started) {
        sf_error("out of memory");
        free(pids);
        free(started);
        return 1;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGIO); /* a worker's report (fcgi/notify.h) */
    sigprocmask(SIG_BLOCK, &mask, &oldmask);
    sf_notify_pool_open(cfg->workers);
    for (i = 0; i < cfg->workers; i++) {
        pids[i] = start_worker(cfg, &oldmask);
        started[i] = time(NULL);
    }
    sf_info("supervising %u worker processes", cfg->workers);
    for (;;) {
        struct timespec tick = {1, 0};
        siginfo_t si;
        int sig = sigtimedwait(&mask, &si, &tick);
        pid_t pid;
        int status;

        if (sig == SIGHUP)
            sf_info("SIGHUP: ignored (springfield has no reload; restart it to apply changes)");
        if (sig == SIGUSR1) /* the --log-file: reopened here and by every worker */
            reopen_logs(pids, cfg->workers);
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                sf_info("signal %d: stopping the workers", sig);
                sf_notify_stopping();
                stopping = 1;
                /* The workers close their copies; this one must go too, or
                 * the kernel keeps queueing connections nobody will accept. */
                close(cfg->listen_fd);
                deadline = time(NULL) + (time_t)cfg->shutdown_timeout + 2;
                for (i = 0; i < cfg->workers; i++)
                    if (pids[i] > 0)
                        kill(pids[i], SIGTERM);
            }
        }
        if (!stopping && cfg->file)
            listen_file_check(cfg->file);
        sf_notify_pool_read(); /* READY=1 once every worker serves; STATUS= */
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            sf_notify_pool_gone(pid);
            for (i = 0; i < cfg->workers; i++) {
                if (pids[i] != pid)
                    continue;
                pids[i] = 0;
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
            if (pids[i] == 0 && !stopping) {
                /* A worker that dies at once is restarted at most once a second. */
                if (time(NULL) - started[i] < 1)
                    continue;
                pids[i] = start_worker(cfg, &oldmask);
                started[i] = time(NULL);
            }
            alive += pids[i] > 0;
        }
        if (stopping && alive == 0)
            break;
        if (stopping && time(NULL) > deadline) {
            sf_warn("workers did not stop in time; killing them");
            for (i = 0; i < cfg->workers; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGKILL);
            deadline = time(NULL) + 60;
        }
    }
    free(pids);
    free(started);
    sf_info("all workers stopped");
    return rc;
}

