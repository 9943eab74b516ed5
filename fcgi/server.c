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
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/setting.h"
#include "fcgi/internal.h"
#include "common/log.h"

#define ACCEPTS_PER_WAKEUP 64

void fcgi_limits_default(struct fcgi_limits *l)
{
    l->max_conns = 10000;
    l->max_reqs = 128;
    l->max_params_bytes = 64 * 1024;
    l->max_body_bytes = 8 * 1024 * 1024;
    l->max_buffered_bytes = 256 * 1024 * 1024;
    l->max_buffered_params_bytes = 64 * 1024 * 1024;
    l->max_output_bytes = 256 * 1024 * 1024;
    l->max_conn_output_bytes = 16 * 1024 * 1024;
    l->receive_timeout = 60;
    l->idle_timeout = 300;
    l->request_timeout = 0; /* none */
    l->slow_request = 0;    /* none */
    l->out_high_water = 256 * 1024;
}

/* Logs a refused connection at most once a second, so a flood of them
 * cannot flood the log. */
static void log_refusal(struct fcgi_server *s, const char *why)
{
    unsigned long more;

    if (log_limit_pass(&s->refusal_log, ev_now(s->loop), &more))
        sf_warn("refusing connection: %s (%lu more refused since the last line)", why, more);
}

/* A connection closed at once for want of a descriptor: logged at most
 * once a second, with the limit that was reached. */
static void log_no_fds(struct fcgi_server *s, int err)
{
    struct rlimit rl;
    unsigned long more;

    if (!log_limit_pass(&s->no_fds_log, ev_now(s->loop), &more))
        return;
    if (err == EMFILE && getrlimit(RLIMIT_NOFILE, &rl) == 0)
        sf_warn("refusing connection: out of file descriptors (the open-file limit, %llu, "
                "is reached); closed at once (%lu more since the last line)",
                (unsigned long long)rl.rlim_cur, more);
    else
        sf_warn("refusing connection: %s; closed at once (%lu more since the last line)",
                strerror(err), more);
}

static bool peer_allowed(struct fcgi_server *s, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    struct in6_addr a;
    unsigned i;

    if (s->allowed.n == 0)
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
    for (i = 0; i < s->allowed.n; i++)
        if (!memcmp(&a, &s->allowed.addrs[i], sizeof a))
            return true;
    return false;
}

/* Whether fd listens on TCP (as opposed to a unix socket, where
 * TCP_NODELAY is a failed system call on every connection).  Inherited
 * sockets (spawn-fcgi, a reload's handover) are asked; when asking fails,
 * TCP is assumed, so that no TCP connection goes without it. */
static bool listens_on_tcp(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    return getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != AF_UNIX;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fcgi_server *s = container_of(w, struct fcgi_server, accept_w);
    int i, fd, one = 1;

    (void)revents;
    for (i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno, rc;

            if (err == EINTR || err == ECONNABORTED || err == EPROTO)
                continue;
            if (err == EMFILE || err == ENFILE) {
                /* Out of descriptors: the one held in reserve lets the
                 * connection be taken and closed at once (a refusal the
                 * front server sees now, not a wait in the backlog). */
                rc = fd_reserve_refuse_one(&s->reserve, s->listen_fd);
                if (rc > 0) {
                    STAT(s, refused[FCGI_REFUSED_NO_FDS]);
                    log_no_fds(s, err);
                    continue;
                }
                if (rc == 0)
                    return; /* no more waiting */
            }
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                /* No reserve, or out of memory: pause accepting instead of
                 * spinning. */
                STAT(s, refused[FCGI_REFUSED_NO_FDS]);
                log_refusal(s, strerror(err));
                ev_io_stop(loop, &s->accept_w);
                ev_timer_start(loop, &s->accept_retry);
            } else if (err != EAGAIN && err != EWOULDBLOCK) {
                sf_error("accept failed: %s", strerror(err));
            }
            return;
        }
        if (s->nconns >= s->cfg.limits.max_conns) {
            STAT(s, refused[FCGI_REFUSED_MAX_CONNS]);
            log_refusal(s, "max-conns reached");
            close(fd);
            continue;
        }
        if (!peer_allowed(s, fd)) {
            STAT(s, refused[FCGI_REFUSED_PEER]);
            log_refusal(s, "peer not in FCGI_WEB_SERVER_ADDRS");
            close(fd);
            continue;
        }
        if (s->listen_tcp)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        STAT(s, accepted);
        conn_accepted(s, fd);
    }
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_server *s = container_of(w, struct fcgi_server, accept_retry);

    (void)revents;
    ev_timer_stop(loop, w);
    fd_reserve_take(&s->reserve); /* lost when the accept had failed */
    if (!s->shutting_down)
        ev_io_start(loop, &s->accept_w);
}

/*
 * The sweep, a few times per timeout:
 *  - connections idle for longer than idle_timeout are closed.  The list is
 *    in order of last activity, so it stops at the first recent one;
 *  - requests not received whole within receive_timeout of their
 *    BEGIN_REQUEST are answered 408.  That list is in order of BEGIN_REQUEST
 *    (every request has the same timeout), so it stops at the first young one.
 */
static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_server *s = container_of(w, struct fcgi_server, sweep);
    double now = ev_now(loop);
    struct fcgi_conn *c;
    struct fcgi_request *r;

    (void)revents;
    while ((r = list_first(&s->receiving, struct fcgi_request, receiving)) &&
           now - r->started >= s->cfg.limits.receive_timeout)
        conn_request_too_slow(r); /* takes it off the list */
    while ((c = list_first(&s->conns, struct fcgi_conn, link)) &&
           now - c->last_active >= s->cfg.limits.idle_timeout) {
        /* Waiting for our own answers is not idle: the backends' timeouts
         * apply.  A peer that stopped sending mid-request, or stopped
         * reading our output, is. */
        if (c->handling > 0) {
            conn_touch(c);
            if (list_first(&s->conns, struct fcgi_conn, link) == c)
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
    struct fcgi_server *s = container_of(w, struct fcgi_server, log_flush);

    (void)loop;
    (void)revents;
    access_log_flush(s);
}

struct addr_parse {
    struct fcgi_addr_list *l;
    bool oom;
};

static const char *add_addr(void *arg, const char *entry)
{
    struct addr_parse *p = arg;
    struct in6_addr a, *grown;
    struct in_addr v4;

    if (inet_pton(AF_INET, entry, &v4) == 1) {
        memset(&a, 0, sizeof a);
        a.s6_addr[10] = a.s6_addr[11] = 0xff;
        memcpy(&a.s6_addr[12], &v4, 4);
    } else if (inet_pton(AF_INET6, entry, &a) != 1) {
        return "is not an IPv4 or IPv6 address";
    }
    grown = realloc(p->l->addrs, (p->l->n + 1) * sizeof *grown);
    if (!grown) {
        p->oom = true;
        return "could not be kept: out of memory";
    }
    p->l->addrs = grown;
    p->l->addrs[p->l->n++] = a;
    return NULL;
}

int fcgi_addr_list_parse(const char *name, const char *list, struct fcgi_addr_list *out,
                         char *why)
{
    struct addr_parse p = {.l = out};

    out->addrs = NULL;
    out->n = 0;
    if (setting_list(name, list, add_addr, &p, why) < 0) {
        fcgi_addr_list_free(out);
        return -1;
    }
    return 0;
}

void fcgi_addr_list_free(struct fcgi_addr_list *l)
{
    free(l->addrs);
    l->addrs = NULL;
    l->n = 0;
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
    s->stats = cfg->stats ? cfg->stats : &s->own_stats;
    list_init(&s->conns);
    list_init(&s->receiving);
    list_init(&s->timing);
    list_init(&s->resume);
    ev_timer_init(&s->request_timer, request_timer_cb, 1, 0);
    s->cfg = *cfg;
    s->listen_fd = listen_fd;
    s->listen_tcp = listens_on_tcp(listen_fd);
    s->cfg.allowed = NULL; /* the copy below is the server's own */
    if (cfg->allowed && cfg->allowed->n) {
        s->allowed.addrs = malloc(cfg->allowed->n * sizeof *s->allowed.addrs);
        if (!s->allowed.addrs) {
            sf_error("out of memory for FCGI_WEB_SERVER_ADDRS");
            free(s);
            return NULL;
        }
        memcpy(s->allowed.addrs, cfg->allowed->addrs, cfg->allowed->n * sizeof *s->allowed.addrs);
        s->allowed.n = cfg->allowed->n;
    }
    fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        sf_error("cannot make the listening socket non-blocking: %s", strerror(errno));
        fcgi_addr_list_free(&s->allowed);
        free(s);
        return NULL;
    }
    fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
    s->reserve.fd = -1;
    if (fd_reserve_take(&s->reserve) < 0)
        sf_warn("no descriptor to keep in reserve (%s): at the open-file limit, new "
                "connections will wait instead of being refused", strerror(errno));
    ev_io_init(&s->accept_w, on_accept, listen_fd, EV_READ);
    ev_io_start(loop, &s->accept_w);
    ev_timer_init(&s->accept_retry, on_accept_retry, 0.1, 0.1);
    sweep = (cfg->limits.idle_timeout < cfg->limits.receive_timeout ? cfg->limits.idle_timeout
                                                                     : cfg->limits.receive_timeout) / 4;
    if (sweep < 0.25)
        sweep = 0.25;
    if (sweep > 5)
        sweep = 5;
    ev_timer_init(&s->sweep, on_sweep, sweep, sweep);
    ev_timer_start(loop, &s->sweep);
    ev_prepare_init(&s->log_flush, on_log_flush);
    ev_prepare_start(loop, &s->log_flush);
    ev_unref(loop); /* the prepare watcher alone must not keep the loop running */
    return s;
}

/* Requests on c that were begun and not answered. */
static unsigned unanswered(const struct fcgi_conn *c)
{
    unsigned i, n = 0;

    for (i = 0; i < c->nreqs; i++)
        n += !c->reqs[i]->answered;
    return n;
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_server *s = container_of(w, struct fcgi_server, deadline);
    struct fcgi_conn *c;
    unsigned long n = 0;

    (void)loop;
    (void)revents;
    for (c = list_first(&s->conns, struct fcgi_conn, link); c;
         c = list_next(&s->conns, c, struct fcgi_conn, link))
        n += unanswered(c);
    s->dropped += n;
    STAT_N(s, dropped, n);
    if (s->nconns)
        sf_warn("shutdown deadline reached: dropping %lu unanswered request(s) on %u "
                "connection(s)", n, s->nconns);
    while ((c = list_first(&s->conns, struct fcgi_conn, link)))
        conn_destroy(c); /* calls done when the last one goes */
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
    for (c = list_first(&s->conns, struct fcgi_conn, link); c; c = next) {
        next = list_next(&s->conns, c, struct fcgi_conn, link);
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
    struct fcgi_conn *c;

    if (!s)
        return;
    s->done = NULL;
    while ((c = list_first(&s->conns, struct fcgi_conn, link)))
        conn_destroy(c);
    if (s->resume_w.cb)
        ev_clear_pending(s->loop, &s->resume_w);
    ev_io_stop(s->loop, &s->accept_w);
    ev_timer_stop(s->loop, &s->accept_retry);
    ev_timer_stop(s->loop, &s->sweep);
    ev_timer_stop(s->loop, &s->deadline);
    ev_timer_stop(s->loop, &s->request_timer);
    ev_ref(s->loop);
    ev_prepare_stop(s->loop, &s->log_flush);
    access_log_flush(s);
    buf_free(&s->access);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    fcgi_addr_list_free(&s->allowed);
    fd_reserve_release(&s->reserve);
    request_spares_free(s);
    free(s);
}

unsigned fcgi_server_connections(const struct fcgi_server *s)
{
    return s->nconns;
}

struct fcgi_stats *fcgi_server_stats(struct fcgi_server *s)
{
    return s->stats;
}

unsigned long fcgi_server_dropped(const struct fcgi_server *s)
{
    return s->dropped;
}

unsigned long fcgi_server_in_flight(const struct fcgi_server *s)
{
    const struct fcgi_conn *c;
    unsigned long n = 0;

    for (c = list_first(&s->conns, struct fcgi_conn, link); c;
         c = list_next(&s->conns, c, struct fcgi_conn, link))
        n += unanswered(c);
    return n;
}
