/*
 * fcgi/notify.c — systemd's notify protocol, and the workers' reports to
 * their supervisor (see notify.h for who calls what, and when).
 */
#include "fcgi/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* One worker report: "<generation> <pid> <in flight> <backends down|->\n",
 * written whole (under PIPE_BUF, so reports of several workers never mix). */
#define REPORT_MAX 512

enum notify_state { NT_STARTING, NT_READY, NT_RELOADING, NT_STOPPING, NT_HANDED_OVER };

struct pool_entry {
    pid_t pid;
    unsigned generation; /* the reload it was forked after (0: none yet) */
    unsigned long in_flight;
    char down[REPORT_MAX];
};

static struct {
    int fd; /* the datagram socket to systemd; -1: nobody listens */
    struct sockaddr_un addr;
    socklen_t addr_len;
    char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; /* for the log */
    bool failure_logged;
    bool successor; /* started by a reload: the predecessor announces it */
    enum notify_state state;
    char status[REPORT_MAX]; /* the last STATUS= sent */
    double status_at;        /* when (monotonic seconds) */
    /* --workers */
    bool worker;   /* this process is a worker: it reports, never notifies */
    int pool_rd, pool_wr;
    unsigned generation, expected;
    struct pool_entry *entries;
    unsigned n, cap;
    char in[8192];  /* reports read, the last maybe in part */
    size_t in_len;
    char last_report[REPORT_MAX];
} nt = {.fd = -1, .pool_rd = -1, .pool_wr = -1};

static double monotonic(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void sf_notify_init(void)
{
    const char *v = getenv("NOTIFY_SOCKET");
    size_t len;
    int fd;

    /* NOTIFY_SOCKET stays in the environment: the one program springfield
     * executes is itself, at a reload, and that successor speaks to systemd
     * once it is the main process.  Forked workers are muted instead
     * (sf_notify_pool_child). */
    if (!v || !*v)
        return;
    len = strlen(v);
    if ((v[0] != '/' && v[0] != '@') || len < 2 || len >= sizeof nt.addr.sun_path) {
        sf_warn("NOTIFY_SOCKET '%.120s' is neither a socket path nor an abstract name; "
                "systemd is not told how springfield is doing", v);
        return;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        sf_warn("cannot make a socket to notify systemd: %s", strerror(errno));
        return;
    }
    memset(&nt.addr, 0, sizeof nt.addr);
    nt.addr.sun_family = AF_UNIX;
    memcpy(nt.addr.sun_path, v, len);
    if (v[0] == '@')
        nt.addr.sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL */
    nt.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                              (v[0] == '@' ? 0 : 1));
    snprintf(nt.name, sizeof nt.name, "%s", v);
    nt.fd = fd;
}

bool sf_notify_enabled(void)
{
    return nt.worker ? nt.pool_wr >= 0 : nt.fd >= 0;
}

/* One datagram; false when it could not go (the first failure logged). */
static bool send_message(const char *msg)
{
    if (nt.fd < 0 || nt.worker || nt.state == NT_HANDED_OVER)
        return false;
    if (sendto(nt.fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
               (const struct sockaddr *)&nt.addr, nt.addr_len) >= 0)
        return true;
    if (!nt.failure_logged) {
        nt.failure_logged = true;
        sf_warn("cannot notify systemd through %s: %s (springfield goes on; further "
                "failures are not logged)", nt.name, strerror(errno));
    }
    return false;
}

static void send_ready(const char *status)
{
    char msg[REPORT_MAX + 64];

    if (nt.fd < 0 || nt.worker || nt.state == NT_STOPPING || nt.state == NT_HANDED_OVER)
        return;
    if (status)
        snprintf(nt.status, sizeof nt.status, "%s", status);
    if (nt.successor && nt.state == NT_STARTING) {
        /* not the main process yet: the predecessor says READY=1 for it */
        nt.state = NT_READY;
        nt.status_at = monotonic();
        return;
    }
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s\nMAINPID=%d", nt.status[0] ? nt.status :
             "serving", (int)getpid());
    if (send_message(msg)) { /* else tried again on the next turn */
        nt.state = NT_READY;
        nt.status_at = monotonic();
    }
}

/* STATUS=text when it changed, or when the last one is STATUS_REFRESH_S old. */
static void update_status(const char *text)
{
    char msg[REPORT_MAX + 16];
    double now = monotonic();

    if (!strcmp(text, nt.status) && now - nt.status_at < STATUS_REFRESH_S)
        return;
    snprintf(msg, sizeof msg, "STATUS=%s", text);
    if (send_message(msg)) {
        snprintf(nt.status, sizeof nt.status, "%s", text);
        nt.status_at = now;
    }
}

void sf_notify_ready(void)
{
    send_ready(NULL);
}

void sf_notify_reloading(void)
{
    char msg[128];
    struct timespec ts;

    if (nt.fd < 0 || nt.worker || nt.state == NT_STOPPING || nt.state == NT_HANDED_OVER)
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    nt.generation++; /* the pool is ready again once the new workers serve */
    nt.state = NT_RELOADING;
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    send_message(msg);
}

void sf_notify_stopping(void)
{
    if (nt.fd < 0 || nt.worker || nt.state == NT_STOPPING || nt.state == NT_HANDED_OVER)
        return;
    nt.state = NT_STOPPING;
    send_message("STOPPING=1\nSTATUS=stopping: finishing the requests in flight");
    snprintf(nt.status, sizeof nt.status, "stopping: finishing the requests in flight");
    nt.status_at = monotonic();
}

void sf_notify_successor(void)
{
    nt.successor = true;
}

void sf_notify_handed_over(pid_t successor)
{
    char msg[128];

    if (nt.fd < 0 || nt.worker || nt.state == NT_HANDED_OVER)
        return;
    snprintf(msg, sizeof msg, "MAINPID=%d\nREADY=1\nSTATUS=reloaded: process %d serves",
             (int)successor, (int)successor);
    send_message(msg);
    nt.state = NT_HANDED_OVER; /* silent from now on: its drain is not the service's stop */
}

void sf_notify_mainpid(pid_t pid)
{
    char msg[64];

    snprintf(msg, sizeof msg, "MAINPID=%d", (int)pid);
    send_message(msg);
}

void sf_notify_status(const char *fmt, ...)
{
    char text[REPORT_MAX], msg[REPORT_MAX + 16];
    va_list ap;

    if (nt.fd < 0 || nt.worker)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "STATUS=%s", text);
    if (send_message(msg)) {
        snprintf(nt.status, sizeof nt.status, "%s", text);
        nt.status_at = monotonic();
    }
}

/* "serving; 1 request in flight; backends down: none", or with the pool
 * "2 of 2 workers serving; ..."; "stopping; ..." once stopping. */
static void say_status(char *out, size_t size, const char *workers, unsigned long in_flight,
                       const char *down)
{
    char who[96];

    if (nt.state == NT_STOPPING)
        snprintf(who, sizeof who, "stopping%s%s%s", workers ? "; " : "", workers ? workers : "",
                 workers ? " left" : "");
    else
        snprintf(who, sizeof who, "%s%sserving", workers ? workers : "", workers ? " " : "");
    snprintf(out, size, "%s; %lu request%s in flight; backends down: %s", who, in_flight,
             in_flight == 1 ? "" : "s", down && *down ? down : "none");
}

/* A worker's report, when it says something new (a report the pipe had
 * no room for is tried again on the next call). */
static void report(unsigned long in_flight, const char *down)
{
    char line[REPORT_MAX];
    int n = snprintf(line, sizeof line, "%u %d %lu %.400s\n", nt.generation, (int)getpid(),
                     in_flight, down && *down ? down : "-");

    if (nt.pool_wr < 0 || n <= 0 || (size_t)n >= sizeof line || !strcmp(line, nt.last_report))
        return;
    if (write(nt.pool_wr, line, (size_t)n) == n)
        memcpy(nt.last_report, line, (size_t)n + 1);
}

void sf_notify_serving(unsigned long in_flight, const char *backends_down)
{
    char text[REPORT_MAX];

    if (nt.worker) {
        report(in_flight, backends_down);
        return;
    }
    if (nt.fd < 0)
        return;
    say_status(text, sizeof text, NULL, in_flight, backends_down);
    if (nt.state == NT_STARTING)
        send_ready(text);
    else
        update_status(text);
}

/* --- the pool (supervisor) ----------------------------------------------- */

void sf_notify_pool_open(unsigned workers)
{
    int p[2];

    nt.expected = workers;
    if (nt.fd < 0 || nt.pool_rd >= 0)
        return;
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        sf_warn("cannot make the workers' report pipe (%s): systemd is told READY=1 at once",
                strerror(errno));
        send_ready("supervising workers");
        return;
    }
    /* a report wakes the supervisor: SIGIO, which it waits for */
    if (fcntl(p[0], F_SETOWN, getpid()) < 0 ||
        fcntl(p[0], F_SETFL, O_NONBLOCK | O_ASYNC) < 0)
        sf_warn("the workers' reports will be read once a second: %s", strerror(errno));
    nt.pool_rd = p[0];
    nt.pool_wr = p[1];
}

void sf_notify_pool_expect(unsigned workers)
{
    nt.expected = workers;
}

int sf_notify_pool_fd(void)
{
    return nt.pool_rd;
}

void sf_notify_pool_child(void)
{
    nt.worker = true;
    if (nt.fd >= 0)
        close(nt.fd);
    nt.fd = -1;
    if (nt.pool_rd >= 0)
        close(nt.pool_rd);
    nt.pool_rd = -1;
    free(nt.entries);
    nt.entries = NULL;
    nt.n = nt.cap = 0;
    nt.last_report[0] = '\0';
}

static struct pool_entry *entry(pid_t pid)
{
    unsigned i;

    for (i = 0; i < nt.n; i++)
        if (nt.entries[i].pid == pid)
            return &nt.entries[i];
    if (nt.n == nt.cap) {
        unsigned cap = nt.cap ? nt.cap * 2 : 8;
        struct pool_entry *grown = realloc(nt.entries, cap * sizeof *grown);

        if (!grown)
            return NULL;
        nt.entries = grown;
        nt.cap = cap;
    }
    memset(&nt.entries[nt.n], 0, sizeof nt.entries[nt.n]);
    nt.entries[nt.n].pid = pid;
    return &nt.entries[nt.n++];
}

static void take_report(const char *line)
{
    unsigned generation;
    int pid, used = 0;
    unsigned long in_flight;
    struct pool_entry *e;

    if (sscanf(line, "%u %d %lu %n", &generation, &pid, &in_flight, &used) != 3 || used == 0 ||
        pid <= 0)
        return;
    e = entry(pid);
    if (!e)
        return;
    e->generation = generation;
    e->in_flight = in_flight;
    snprintf(e->down, sizeof e->down, "%s", strcmp(line + used, "-") ? line + used : "");
}

/* Appends the backends of list ("a, b") that out does not name yet. */
static void merge_down(char *out, size_t size, const char *list)
{
    const char *p = list;

    while (*p) {
        const char *end = strstr(p, ", ");
        size_t len = end ? (size_t)(end - p) : strlen(p), used = strlen(out);
        const char *q = out;
        bool known = false;

        while (*q && !known) {
            const char *qe = strstr(q, ", ");
            size_t ql = qe ? (size_t)(qe - q) : strlen(q);

            known = ql == len && !memcmp(q, p, len);
            q = qe ? qe + 2 : q + ql;
        }
        if (!known && used + len + 3 < size)
            snprintf(out + used, size - used, "%s%.*s", used ? ", " : "", (int)len, p);
        p = end ? end + 2 : p + len;
    }
}

/* Reads every report that arrived; a report read in part waits in nt.in. */
static void read_reports(void)
{
    for (;;) {
        ssize_t got = read(nt.pool_rd, nt.in + nt.in_len, sizeof nt.in - 1 - nt.in_len);
        char *line, *nl;

        if (got <= 0)
            return; /* EAGAIN: all read */
        nt.in_len += (size_t)got;
        nt.in[nt.in_len] = '\0';
        for (line = nt.in; (nl = strchr(line, '\n')); line = nl + 1) {
            *nl = '\0';
            take_report(line);
        }
        nt.in_len -= (size_t)(line - nt.in);
        memmove(nt.in, line, nt.in_len);
        if (nt.in_len == sizeof nt.in - 1)
            nt.in_len = 0; /* no report is that long: not a report */
    }
}

void sf_notify_pool_read(void)
{
    char text[REPORT_MAX], down[REPORT_MAX] = "", workers[64];
    unsigned long in_flight = 0;
    unsigned i, current = 0;

    if (nt.pool_rd < 0)
        return;
    read_reports();
    for (i = 0; i < nt.n; i++) {
        in_flight += nt.entries[i].in_flight;
        current += nt.entries[i].generation == nt.generation;
        merge_down(down, sizeof down, nt.entries[i].down);
    }
    snprintf(workers, sizeof workers, "%u of %u workers", nt.n, nt.expected);
    say_status(text, sizeof text, workers, in_flight, down);
    if ((nt.state == NT_STARTING || nt.state == NT_RELOADING) && current >= nt.expected)
        send_ready(text);
    else
        update_status(text);
}

void sf_notify_pool_gone(pid_t pid)
{
    unsigned i;

    for (i = 0; i < nt.n; i++) {
        if (nt.entries[i].pid == pid) {
            nt.entries[i] = nt.entries[--nt.n];
            return;
        }
    }
}
