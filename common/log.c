/*
 * common/log.c — timestamped, leveled lines, one write() each, and where
 * every log line goes: standard error, or the --log-file.
 *
 * Logging never blocks the loop, whatever the destination:
 *   - standard error may be a pipe nobody drains (it stays blocking: it
 *     is shared with other processes).  Lines are written only when poll()
 *     says there is room, otherwise they are refused (the callers count and
 *     drop them, or keep them for later).
 *   - a regular file is always "ready" to poll(), yet a write() to it can
 *     stall (a disk that is slow to write back, a hung network file
 *     system).  So the --log-file is written by a thread of its own: the
 *     loop only copies lines into a queue of at most FILE_QUEUE_MAX bytes
 *     under a mutex the writer never holds while it writes or opens; when
 *     the queue is full, lines are refused as for a full pipe.  Reopening
 *     (SIGUSR1) is the writer's work too, between two batches, so a line
 *     queued before the signal goes to the old file and the lines after it
 *     to the new one.
 * The file is open on fd 2 (dup2), so what the libraries and sanitizers
 * write to standard error lands there as well.
 *
 * Forking: a child has no writer thread (threads do not survive fork), so
 * the first line it logs starts its own; the queue it inherited is the
 * parent's to write and is emptied in the child.
 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"

#define FILE_QUEUE_MAX (1024 * 1024)

/* Any thread may log (mongo-c-driver logs from its own threads): the
 * level and the count of dropped lines are atomic, the file's queue has
 * its mutex, the rest is on the caller's stack. */
static _Atomic int min_level = SF_LOG_INFO;
static atomic_ulong dropped; /* lines not written: the log had no room */

/* The --log-file and its writer thread; mu guards all but path. */
static struct {
    char *path;          /* NULL: standard error as it was given */
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* lines queued, or a reopen asked for */
    pthread_cond_t drained; /* the writer finished a batch */
    struct buf queue;       /* lines waiting for the writer */
    struct buf batch;       /* the lines the writer is writing (its own) */
    bool running;           /* this process has its writer thread */
    bool writing;           /* it holds a batch */
    bool reopen;
    bool fork_handlers;
} lf = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .wake = PTHREAD_COND_INITIALIZER,
        .drained = PTHREAD_COND_INITIALIZER};

void sf_log_set_level(enum sf_log_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

/* The file at path becomes fd 2; the old one is closed by dup2. */
static int switch_to(const char *path)
{
    int fd = open_file(path), err;

    if (fd < 0)
        return -1;
    if (fd != STDERR_FILENO && dup2(fd, STDERR_FILENO) < 0) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    if (fd != STDERR_FILENO)
        close(fd);
    return 0;
}

static void write_all(const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* a full disk, a file gone: these lines are lost */
        p += n;
        len -= (size_t)n;
    }
}

static void *writer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lf.mu);
    for (;;) {
        struct buf swap;
        bool reopen;

        while (lf.queue.len == 0 && !lf.reopen)
            pthread_cond_wait(&lf.wake, &lf.mu);
        swap = lf.batch;
        lf.batch = lf.queue;
        lf.queue = swap;
        lf.queue.len = 0;
        reopen = lf.reopen;
        lf.reopen = false;
        lf.writing = true;
        pthread_mutex_unlock(&lf.mu);

        write_all(lf.batch.data, lf.batch.len);
        lf.batch.len = 0;
        if (reopen) {
            int rc = switch_to(lf.path), err = errno;

            /* (logged from here, unlocked: into the queue, for the next batch) */
            if (rc < 0)
                sf_error("cannot reopen the log file %s: %s; still writing to the old one",
                         lf.path, strerror(err));
            else
                sf_info("log file %s reopened", lf.path);
        }

        pthread_mutex_lock(&lf.mu);
        lf.writing = false;
        pthread_cond_broadcast(&lf.drained);
    }
    return NULL;
}

/* With lf.mu held.  Signals are left to the other threads: the loop's
 * ev_signal and the supervisor's sigtimedwait. */
static void start_writer(void)
{
    sigset_t all, old;
    pthread_t t;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&t, NULL, writer, NULL) == 0) {
        pthread_detach(t);
        lf.running = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void before_fork(void)
{
    pthread_mutex_lock(&lf.mu);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&lf.mu);
}

static void after_fork_child(void)
{
    /* The parent's writer writes what was queued; this process starts a
     * writer of its own with its first line. */
    lf.queue.len = 0;
    lf.batch.len = 0;
    lf.running = false;
    lf.writing = false;
    lf.reopen = false;
    pthread_cond_init(&lf.wake, NULL);
    pthread_cond_init(&lf.drained, NULL);
    pthread_mutex_unlock(&lf.mu);
}

static void drain_at_exit(void)
{
    sf_log_drain(2.0);
}

int sf_log_open_file(const char *path)
{
    char *copy = strdup(path);

    if (!copy)
        return -1;
    if (switch_to(path) < 0) {
        int err = errno;

        free(copy);
        errno = err;
        return -1;
    }
    pthread_mutex_lock(&lf.mu);
    free(lf.path);
    lf.path = copy;
    if (!lf.fork_handlers) {
        pthread_atfork(before_fork, after_fork_parent, after_fork_child);
        atexit(drain_at_exit);
        lf.fork_handlers = true;
    }
    pthread_mutex_unlock(&lf.mu);
    return 0;
}

bool sf_log_to_file(void)
{
    return lf.path != NULL;
}

void sf_log_reopen(void)
{
    if (!lf.path)
        return;
    pthread_mutex_lock(&lf.mu);
    if (!lf.running)
        start_writer();
    lf.reopen = true;
    pthread_cond_signal(&lf.wake);
    pthread_mutex_unlock(&lf.mu);
}

void sf_log_drain(double timeout_s)
{
    struct timespec until;

    if (!lf.path)
        return;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)timeout_s;
    until.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&lf.mu);
    while (lf.running && (lf.queue.len > 0 || lf.writing || lf.reopen))
        if (pthread_cond_timedwait(&lf.drained, &lf.mu, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&lf.mu);
}

long sf_log_output(const void *data, size_t len)
{
    struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};
    ssize_t n;

    if (len == 0)
        return 0;
    if (lf.path) {
        long taken = 0;

        bool direct;

        pthread_mutex_lock(&lf.mu);
        if (!lf.running)
            start_writer();
        direct = !lf.running; /* no thread could be started: write as for stderr */
        if (!direct && lf.queue.len + len <= FILE_QUEUE_MAX &&
            buf_append(&lf.queue, data, len) == 0) {
            taken = (long)len;
            pthread_cond_signal(&lf.wake);
        }
        pthread_mutex_unlock(&lf.mu);
        if (!direct)
            return taken;
    }
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
        return 0;
    n = write(STDERR_FILENO, data, len);
    return n < 0 ? (errno == EAGAIN || errno == EINTR ? 0 : -1) : (long)n;
}

void sf_log(enum sf_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct tm tm;
    time_t now;
    unsigned long told;
    va_list ap;
    int n, m;

    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;
    now = time(NULL);
    gmtime_r(&now, &tm);
    n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02dZ springfield[%d] %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (int)getpid(), names[level]);
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    if ((size_t)(n + m) > sizeof line - 2)
        m = (int)(sizeof line - 2) - n; /* truncated: keep the line whole */
    line[n + m] = '\n';
    /* One write of under PIPE_BUF bytes per line, so lines from several
     * workers never interleave; a line the log has no room for is dropped
     * and counted, and the count said with the next line that fits. */
    told = atomic_exchange_explicit(&dropped, 0, memory_order_relaxed);
    if (told) { /* said in the same write: one write never blocks */
        char out[sizeof line + 96];
        int k = snprintf(out, 96, "(%lu log line(s) dropped: the log had no room)\n", told);

        memcpy(out + k, line, (size_t)(n + m + 1));
        if (sf_log_output(out, (size_t)k + (size_t)(n + m + 1)) <= 0) /* told later */
            atomic_fetch_add_explicit(&dropped, told + 1, memory_order_relaxed);
        return;
    }
    if (sf_log_output(line, (size_t)(n + m + 1)) == 0)
        atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
}

bool log_limit_pass(struct log_limit *l, double now, unsigned long *suppressed)
{
    if (l->last != 0 && now - l->last < 1.0) {
        l->suppressed++;
        return false;
    }
    l->last = now;
    *suppressed = l->suppressed;
    l->suppressed = 0;
    return true;
}
