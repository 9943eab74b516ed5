/*
 * fcgi/server.c — accepting connections, the limits on them, the idle
 * sweep and the graceful stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fcgi/internal.h"
#include "fcgi/log.h"

#define ACCEPTS_PER_WAKEUP 64

void fcgi_limits_default(struct fcgi_limits *l)
{
    l->max_conns = 10000;
    l->max_reqs = 128;
    l->max_params_bytes = 64 * 1024;
    l->max_body_bytes = 8 * 1024 * 1024;
    l->max_buffered_bytes = 256 * 1024 * 1024;
    l->idle_timeout = 300;
    l->out_high_water = 256 * 1024;
}

/* Logs a refused connection at most once a second, so a flood of them
 * cannot flood the log. */
static void log_refusal(struct fcgi_server *s, const char *why)
{
    double now = ev_now(s->loop);

    if (now - s->last_refusal_log >= 1.0) {
        s->last_refusal_log = now;
        sf_warn("refusing connection: %s", why);
    }
}

static bool peer_allowed(struct fcgi_server *s, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    struct in6_addr a;
    unsigned i;

    if (s->nallowed == 0)
        return true;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return false;
    if (ss.ss_family == AF_INET) {
        memset(&a, 0, sizeof a);
        a.s6_addr[10] = a.s6_addr[11] = 0xff;
        memcpy(&a.s6_addr[12], &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        a = ((struct sockaddr_in6 *)&ss)->sin6_addr;
    } else {
        return true; /* unix sockets: the file mode decides, as in libfcgi */
    }
    for (i = 0; i < s->nallowed; i++)
        if (!memcmp(&a, &s->allowed[i], sizeof a))
            return true;
    return false;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fcgi_server *s = (struct fcgi_server *)((char *)w - offsetof(struct fcgi_server, accept_w));
    int i, fd, one = 1;

    (void)revents;
    for (i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: pause accepting instead of spinning. */
                log_refusal(s, strerror(errno));
                ev_io_stop(loop, &s->accept_w);
                ev_timer_start(loop, &s->accept_retry);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                sf_error("accept failed: %s", strerror(errno));
            }
            return;
        }
        if (s->nconns >= s->cfg.limits.max_conns) {
            log_refusal(s, "max-conns reached");
            close(fd);
            continue;
        }
        if (!peer_allowed(s, fd)) {
            log_refusal(s, "peer not in FCGI_WEB_SERVER_ADDRS");
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on unix sockets */
        conn_accepted(s, fd);
    }
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_server *s = (struct fcgi_server *)((char *)w - offsetof(struct fcgi_server, accept_retry));

    (void)revents;
    ev_timer_stop(loop, w);
    if (!s->shutting_down)
        ev_io_start(loop, &s->accept_w);
}

/* Closes connections idle for longer than idle_timeout.  The list is in
 * order of last activity, so the sweep stops at the first recent one. */
static void on_idle_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_server *s = (struct fcgi_server *)((char *)w - offsetof(struct fcgi_server, idle_sweep));
    double now = ev_now(loop);
    struct fcgi_conn *c;

    (void)revents;
    while ((c = s->head) && now - c->last_active >= s->cfg.limits.idle_timeout) {
        /* Waiting for our own answers is not idle: the backends' timeouts
         * apply.  A peer that stopped sending mid-request, or stopped
         * reading our output, is. */
        if (c->handling > 0) {
            conn_touch(c);
            if (s->head == c)
                break;
            continue;
        }
        sf_debug("closing FastCGI connection (fd %d) idle for %.0f s", c->fd,
                 now - c->last_active);
        conn_destroy(c);
    }
}

static void on_log_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct fcgi_server *s = (struct fcgi_server *)((char *)w - offsetof(struct fcgi_server, log_flush));

    (void)loop;
    (void)revents;
    access_log_flush(s);
}

static int parse_allowed(struct fcgi_server *s, const char *list)
{
    char *copy = strdup(list), *tok, *save = NULL;
    unsigned n = 1;
    const char *p;

    if (!copy)
        return -1;
    for (p = list; *p; p++)
        n += *p == ',';
    s->allowed = calloc(n, sizeof *s->allowed);
    if (!s->allowed) {
        free(copy);
        return -1;
    }
    for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        struct in6_addr *a = &s->allowed[s->nallowed];
        struct in_addr v4;

        if (inet_pton(AF_INET, tok, &v4) == 1) {
            memset(a, 0, sizeof *a);
            a->s6_addr[10] = a->s6_addr[11] = 0xff;
            memcpy(&a->s6_addr[12], &v4, 4);
        } else if (inet_pton(AF_INET6, tok, a) != 1) {
            sf_error("FCGI_WEB_SERVER_ADDRS: '%s' is not an IP address", tok);
            free(copy);
            return -1;
        }
        s->nallowed++;
    }
    free(copy);
    return 0;
}

struct fcgi_server *fcgi_server_new(struct ev_loop *loop, int listen_fd,
                                    const struct fcgi_server_config *cfg)
{
    struct fcgi_server *s = calloc(1, sizeof *s);
    double sweep;
    int fl;

    if (!s) {
        sf_error("out of memory for the server");
        return NULL;
    }
    s->loop = loop;
    s->cfg = *cfg;
    s->listen_fd = listen_fd;
    if (cfg->allowed_addrs && *cfg->allowed_addrs && parse_allowed(s, cfg->allowed_addrs) < 0) {
        free(s->allowed);
        free(s);
        return NULL;
    }
    fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        sf_error("cannot make the listening socket non-blocking: %s", strerror(errno));
        free(s->allowed);
        free(s);
        return NULL;
    }
    fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
    ev_io_init(&s->accept_w, on_accept, listen_fd, EV_READ);
    ev_io_start(loop, &s->accept_w);
    ev_timer_init(&s->accept_retry, on_accept_retry, 0.1, 0.1);
    sweep = cfg->limits.idle_timeout / 4;
    if (sweep < 0.25)
        sweep = 0.25;
    if (sweep > 5)
        sweep = 5;
    ev_timer_init(&s->idle_sweep, on_idle_sweep, sweep, sweep);
    ev_timer_start(loop, &s->idle_sweep);
    ev_prepare_init(&s->log_flush, on_log_flush);
    ev_prepare_start(loop, &s->log_flush);
    ev_unref(loop); /* the prepare watcher alone must not keep the loop running */
    return s;
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_server *s = (struct fcgi_server *)((char *)w - offsetof(struct fcgi_server, deadline));

    (void)loop;
    (void)revents;
    if (s->nconns)
        sf_warn("shutdown deadline reached: closing %u connection(s) with requests in flight",
                s->nconns);
    while (s->head)
        conn_destroy(s->head); /* calls done when the last one goes */
}

void fcgi_server_shutdown(struct fcgi_server *s, double deadline, void (*done)(void *arg),
                          void *arg)
{
    struct fcgi_conn *c, *next;

    if (s->shutting_down)
        return;
    s->shutting_down = true;
    s->done = done;
    s->done_arg = arg;
    ev_io_stop(s->loop, &s->accept_w);
    ev_timer_stop(s->loop, &s->accept_retry);
    close(s->listen_fd);
    s->listen_fd = -1;
    for (c = s->head; c; c = next) {
        next = c->next;
        c->closing = true;
        if (c->nreqs == 0)
            conn_maybe_close(c);
    }
    if (s->nconns == 0) {
        if (s->done) { /* not already called by the last conn_destroy above */
            s->done = NULL;
            done(arg);
        }
        return;
    }
    sf_info("shutting down: waiting up to %.0f s for %u connection(s)", deadline, s->nconns);
    ev_timer_init(&s->deadline, on_deadline, deadline, 0);
    ev_timer_start(s->loop, &s->deadline);
}

void fcgi_server_free(struct fcgi_server *s)
{
    if (!s)
        return;
    s->done = NULL;
    while (s->head)
        conn_destroy(s->head);
    ev_io_stop(s->loop, &s->accept_w);
    ev_timer_stop(s->loop, &s->accept_retry);
    ev_timer_stop(s->loop, &s->idle_sweep);
    ev_timer_stop(s->loop, &s->deadline);
    ev_ref(s->loop);
    ev_prepare_stop(s->loop, &s->log_flush);
    access_log_flush(s);
    buf_free(&s->access);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s->allowed);
    free(s);
}

unsigned fcgi_server_connections(const struct fcgi_server *s)
{
    return s->nconns;
}
