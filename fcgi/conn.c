/*
 * fcgi/conn.c — one FastCGI connection: reading records, keeping the
 * table of live requests, management records, writing with back-pressure.
 *
 * Reads go into one buffer shared by every connection of the process (the
 * loop is single-threaded), so an idle connection holds no read buffer.
 * Answers produced while records are being processed are written together
 * once the read is done: one write() for many responses.
 *
 * What a peer can make a connection hold, and what bounds it:
 *   - requests: at most max_reqs live ones (more are refused with
 *     FCGI_OVERLOADED and leave the table at once), each received within
 *     receive_timeout of its BEGIN_REQUEST (else 408);
 *   - params and bodies: per request max_params_bytes / max_body_bytes,
 *     and for all connections together the budgets max_buffered_params_bytes
 *     / max_buffered_bytes, charged for the memory actually allocated as
 *     bytes arrive (else 503);
 *   - unsent answers: reading stops at out_high_water; an answer that would
 *     take the connection past max_conn_output_bytes, or the process past
 *     max_output_bytes, is replaced by a short 503 (see request.c);
 *   - scratch buffers: released when a large record is done or the
 *     connection has nothing left to do.
 *
 * Records for a request id that is not active (never begun, answered,
 * refused or aborted) are ignored, as FastCGI 1.0 §3.3 says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "fcgi/internal.h"
#include "common/log.h"
#include "common/sysio.h"
#include "common/word.h"
#include "fcgi/response.h"

#define READ_BUF_SIZE (64 * 1024)
/* A connection whose peer has not read all its answers reads this much at
 * a time: what it may have to hold back (c->in) stays small. */
#define READ_SLOW_PEER (4 * 1024)
/* The part of a GET_VALUES record kept: a front server asks for three
 * short names; pairs past this are not answered. */
#define GET_VALUES_KEEP 4096
/* An output buffer larger than this is released once written, so that a
 * connection that once sent a big answer does not keep its memory; one
 * larger than OUT_IDLE_KEEP_BYTES is released when nothing else is going
 * on (an idle connection holds well under 1 KiB). */
#define OUT_KEEP_BYTES (16 * 1024)
#define OUT_IDLE_KEEP_BYTES 1024

/* A released output buffer (up to OUT_KEEP_BYTES) is kept by the server,
 * one at a time, for the next connection that has answers to write: a
 * batch of multiplexed answers then costs no reallocs and no free. */
static void out_release(struct fcgi_conn *c)
{
    struct buf *spare = &c->srv->out_spare;

    if (!spare->data && c->out.cap <= OUT_KEEP_BYTES) {
        *spare = c->out;
        spare->len = 0;
        c->out = (struct buf){NULL, 0, 0};
        return;
    }
    buf_free(&c->out);
}
/* How long a closing connection waits for the records of a request it
 * answered early (a body after a 413), or for the rest of what the peer
 * sends after a refusal, before it closes anyway. */
#define LINGER_S 5
/* How long a connection closed before its first record waits for it. */
#define FIRST_RECORD_S 1.0

static uint8_t read_buf[READ_BUF_SIZE];

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void conn_resume(struct fcgi_conn *c);
static void on_linger(struct ev_loop *loop, ev_timer *w, int revents);

void conn_touch(struct fcgi_conn *c)
{
    c->last_active = ev_now(c->srv->loop);
    list_move_tail(&c->srv->conns, &c->link);
}

void conn_accepted(struct fcgi_server *s, int fd)
{
    struct fcgi_conn *c = calloc(1, sizeof *c);

    if (!c) {
        sf_error("out of memory for a new connection; closing it");
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    fcgi_parser_init(&c->parser);
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_timer_init(&c->linger, on_linger, 0, LINGER_S);
    ev_io_start(s->loop, &c->rio);
    s->nconns++;
    STAT(s, connections);
    list_insert_tail(&s->conns, &c->link);
    c->last_active = ev_now(s->loop);
}

void conn_destroy(struct fcgi_conn *c)
{
    struct fcgi_server *s = c->srv;

    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->linger);
    close(c->fd);
    s->output_bytes -= conn_unsent(c);
    if (list_linked(&c->resume_link))
        list_remove(&c->resume_link);
    /* Requests still being handled stay valid for their handlers. */
    while (c->nreqs > 0)
        conn_detach_request(c, c->reqs[c->nreqs - 1]);
    free(c->reqs);
    buf_free(&c->rec);
    buf_free(&c->in);
    out_release(c);
    list_remove(&c->link);
    s->nconns--;
    STAT_DEC(s, connections);
    free(c);
    if (s->shutting_down && s->nconns == 0 && s->done) {
        void (*done)(void *) = s->done;

        s->done = NULL;
        done(s->done_arg);
    }
}

/* Requests whose params or body are still arriving: bounded by the
 * receive timeout, so a closing connection waits for them. */
static bool receiving(const struct fcgi_conn *c)
{
    unsigned i;

    for (i = 0; i < c->nreqs; i++)
        if (list_linked(&c->reqs[i]->receiving))
            return true;
    return false;
}

/* Bytes the peer sent that are not read yet. */
static bool input_waiting(const struct fcgi_conn *c)
{
    char b;

    return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Requests answered early whose records the peer may still be sending:
 * a closing connection waits for them at most LINGER_S without input. */
static bool lingering(const struct fcgi_conn *c)
{
    unsigned i;

    for (i = 0; i < c->nreqs; i++)
        if (c->reqs[i]->state == REQ_DRAIN && c->reqs[i]->linger)
            return true;
    return false;
}

/* Writes what the socket takes; true once everything is written. */
static bool write_out(struct fcgi_conn *c)
{
    struct fcgi_server *s = c->srv;

    while (c->out_off < c->out.len) {
        ssize_t n = sys_write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* Answers may keep arriving while the peer reads slowly:
                 * without moving the unsent part down, the written part
                 * in front of it would grow for ever. */
                if (c->out_off >= c->out.len / 2) {
                    buf_consume(&c->out, c->out_off);
                    c->out_off = 0;
                }
                return false;
            }
            sf_info("FastCGI connection (fd %d) write failed: %s", c->fd, strerror(errno));
            c->dead = c->broken = true;
            return false;
        }
        c->out_off += (size_t)n;
        s->output_bytes -= (size_t)n;
        STAT_N(s, bytes_out, (uint64_t)n);
        conn_touch(c); /* progress: a slow reader that reads is not idle */
    }
    c->out.len = c->out_off = 0;
    if (c->out.cap > OUT_KEEP_BYTES || (c->nreqs == 0 && c->out.cap > OUT_IDLE_KEEP_BYTES))
        out_release(c);
    return true;
}

/*
 * After a refusal or a timeout, with everything written: the peer may be
 * in the middle of sending the records that go with it (a body of
 * megabytes, in segments).  Closed now, its next write would fail (EPIPE,
 * or a reset over TCP that can also destroy the answer in flight), so the
 * connection is shut for writing, which tells the peer no more answers
 * come, and what it still sends is read and dropped until it closes, or
 * for LINGER_S without input.  An idle peer that trickles bytes is ended
 * by the idle sweep, as no record completes.  What input was held back
 * goes too: nothing read now can be answered.
 */
static void start_discarding(struct fcgi_conn *c)
{
    struct fcgi_server *s = c->srv;

    c->discarding = true;
    if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        sf_debug("FastCGI connection (fd %d): shutdown for writing failed: %s", c->fd,
                 strerror(errno));
    buf_free(&c->in);
    c->in_off = 0;
    c->paused = c->yielded = false;
    if (list_linked(&c->resume_link))
        list_remove(&c->resume_link);
    ev_io_stop(s->loop, &c->wio);
    ev_io_start(s->loop, &c->rio);
    ev_timer_set(&c->linger, 0, LINGER_S);
    ev_timer_again(s->loop, &c->linger);
}

/*
 * Closes the connection if it is finished, unless the read callback is
 * still working on it (it calls this again when it is done).  A connection
 * closed for an error first writes what is queued for it, as far as the
 * socket takes it without waiting: the END_REQUEST of a refusal, say.
 */
void conn_maybe_close(struct fcgi_conn *c)
{
    if (c->busy)
        return;
    if (c->dead) {
        if (!c->broken)
            write_out(c);
        conn_destroy(c);
        return;
    }
    if (c->discarding || !c->closing || conn_unsent(c) > 0 || c->handling > 0)
        return; /* (a discarding one closes on EOF or on_linger) */
    if (!c->eof && receiving(c))
        return; /* the receive timeout (or the shutdown deadline) bounds the wait */
    /* A closing connection lingers while the records of an early answer
     * are still arriving (a body after a 413), so the peer is not cut off
     * mid-send (nginx would answer 502), but not for ever: LINGER_S
     * without input ends it. */
    if (!c->eof && lingering(c)) {
        if (!ev_is_active(&c->linger))
            ev_timer_again(c->srv->loop, &c->linger);
        return;
    }
    /* A connection closed while a request may be on its way on it (the
     * server is stopping, or handing over to a reload's successor) would
     * fail that request at the front server: a request already in the
     * socket is read and answered first; a connection that has carried no
     * record yet (accepted just before the stop: the front server sends its
     * first request right after connecting) waits FIRST_RECORD_S for it.
     * So is what may follow a refusal or a timeout: closed with it unread,
     * a TCP socket resets, and the peer can lose the answer before it.
     * After a request without FCGI_KEEP_CONN received whole, the peer
     * sends nothing more: closed at once, without a system call to look. */
    if (c->eof || (!c->srv->shutting_down && !c->peer_may_send)) {
        conn_destroy(c);
        return;
    }
    if (!c->srv->shutting_down) { /* a refusal or a timeout: the rest is not wanted */
        start_discarding(c);
        return;
    }
    if (input_waiting(c))
        return;
    if (c->records == 0 && !c->first_wait) {
        c->first_wait = true;
        ev_timer_set(&c->linger, 0, FIRST_RECORD_S);
        ev_timer_again(c->srv->loop, &c->linger);
        return;
    }
    conn_destroy(c);
}

static void on_linger(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_conn *c = container_of(w, struct fcgi_conn, linger);

    (void)revents;
    ev_timer_stop(loop, w);
    if (c->discarding) {
        sf_debug("closing FastCGI connection (fd %d): nothing more arrived for %d s after "
                 "its last answer", c->fd, LINGER_S);
        conn_destroy(c);
        return;
    }
    if (c->first_wait && c->records == 0) {
        conn_maybe_close(c); /* waited once: it goes now */
        return;
    }
    /* Only the lingering requests may be given up on: anything else that
     * keeps the connection (an answer being made or written, a request
     * still arriving) is waited for, and conn_maybe_close comes back. */
    if (!c->closing || conn_unsent(c) > 0 || c->handling > 0 || receiving(c))
        return;
    sf_debug("closing FastCGI connection (fd %d): nothing more arrived for %d s", c->fd,
             LINGER_S);
    conn_destroy(c);
}

static void protocol_error(struct fcgi_conn *c, const char *why)
{
    sf_warn("closing FastCGI connection (fd %d): %s", c->fd, why);
    if (!c->dead)
        STAT(c->srv, protocol_errors);
    c->dead = true;
}

/* --- writing ------------------------------------------------------------- */

/*
 * Whether c must stop taking input until its output drains: its unsent
 * answers are over the high-water mark, or its peer has not read all of
 * them while all connections together hold more than max_output_bytes
 * unsent.  A peer that reads everything is never held back by the others.
 */
static bool output_over_mark(const struct fcgi_conn *c)
{
    size_t unsent = conn_unsent(c);

    return unsent > c->srv->cfg.limits.out_high_water ||
           (unsent > 0 && c->srv->output_bytes > c->srv->cfg.limits.max_output_bytes);
}

/* Unsent output: wait for the socket, and stop reading if it is too much. */
static void wait_writable(struct fcgi_conn *c)
{
    ev_io_start(c->srv->loop, &c->wio);
    if (!c->paused && output_over_mark(c)) {
        c->paused = true;
        ev_io_stop(c->srv->loop, &c->rio);
    }
}

void conn_flush(struct fcgi_conn *c)
{
    if (c->busy || c->dead)
        return;
    if (!write_out(c)) {
        if (!c->dead)
            wait_writable(c);
        return;
    }
    ev_io_stop(c->srv->loop, &c->wio);
    if (c->paused && !c->yielded) /* a yielded one waits for its turn */
        conn_resume(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fcgi_conn *c = container_of(w, struct fcgi_conn, wio);

    (void)loop;
    (void)revents;
    conn_flush(c);
    conn_maybe_close(c);
}

/* --- the request table --------------------------------------------------- */

static struct fcgi_request *find_request(struct fcgi_conn *c, uint16_t id)
{
    unsigned i;

    if (c->found && c->found->id == id)
        return c->found;
    for (i = 0; i < c->nreqs; i++)
        if (c->reqs[i]->id == id)
            return c->found = c->reqs[i];
    return NULL;
}

static unsigned live_requests(const struct fcgi_conn *c)
{
    unsigned i, n = 0;

    for (i = 0; i < c->nreqs; i++)
        if (c->reqs[i]->state != REQ_DRAIN)
            n++;
    return n;
}

static int add_request(struct fcgi_conn *c, struct fcgi_request *r)
{
    if (c->nreqs == c->reqs_cap) {
        unsigned cap = c->reqs_cap ? c->reqs_cap * 2 : 2;
        struct fcgi_request **p = realloc(c->reqs, cap * sizeof *p);

        if (!p)
            return -1;
        c->reqs = p;
        c->reqs_cap = cap;
    }
    r->slot = c->nreqs;
    c->reqs[c->nreqs++] = r;
    return 0;
}

void conn_detach_request(struct fcgi_conn *c, struct fcgi_request *r)
{
    /* r's place goes to the last one (the table has no order) */
    if (r->slot < c->nreqs && c->reqs[r->slot] == r) {
        c->reqs[r->slot] = c->reqs[--c->nreqs];
        c->reqs[r->slot]->slot = r->slot;
    }
    if (c->nreqs == 0 && c->reqs_cap > 4) {
        /* a burst of multiplexed requests is over: give the table back */
        free(c->reqs);
        c->reqs = NULL;
        c->reqs_cap = 0;
    }
    if (c->cur == r)
        c->cur = NULL;
    if (c->found == r)
        c->found = NULL;
    if (r->state == REQ_HANDLER)
        c->handling--;
    request_receiving_end(r);
    r->conn = NULL;
    request_unref(r);
}

void conn_close_when_done(struct fcgi_conn *c, bool received_whole)
{
    c->closing = true;
    if (!received_whole)
        c->peer_may_send = true;
}

/* --- the output queue ----------------------------------------------------- */

/*
 * Whether an answer of `size` bytes fits what c and the process may hold
 * unsent.  One answer always fits when nothing else is waiting (else a
 * value larger than a limit could never be served); otherwise the
 * connection's unsent answers stay within max_conn_output_bytes and all
 * connections' within max_output_bytes.  Writes the refusal into why.
 */
static bool output_room(const struct fcgi_conn *c, size_t size, char *why, size_t why_len)
{
    const struct fcgi_server *s = c->srv;
    const struct fcgi_limits *lim = &s->cfg.limits;
    size_t unsent = conn_unsent(c);

    if (size <= SMALL_ANSWER_BYTES)
        return true;
    if (unsent > 0 && unsent + size > lim->max_conn_output_bytes) {
        snprintf(why, why_len,
                 "busy: %zu bytes of answers on this connection are unread (limit %zu)", unsent,
                 lim->max_conn_output_bytes);
        return false;
    }
    if (s->output_bytes > 0 && s->output_bytes + size > lim->max_output_bytes) {
        snprintf(why, why_len, "busy: %zu bytes of answers wait for their readers (limit %zu)",
                 s->output_bytes, lim->max_output_bytes);
        return false;
    }
    return true;
}

/* resp could not be formatted (out of memory?): a 500 without a body
 * still ends the request, so the front server is not left waiting.
 * Apart, like the 503 below, to keep the common path's frame small. */
static __attribute__((noinline)) long queue_500(struct fcgi_conn *c, uint16_t id,
                                                struct fcgi_response *resp)
{
    long sent;

    sf_error("request %u: cannot format a %d answer of %zu bytes (out of memory?)", id,
             resp->status, resp->body_len);
    resp->status = 500;
    resp->content_type = NULL;
    resp->extra_headers_len = 0;
    resp->body_len = 0;
    sent = fcgi_format_response(&c->out, id, resp);
    if (sent < 0)
        c->dead = true;
    return sent;
}

/* The answer in resp would take c past an output limit (why): a short 503
 * saying so goes instead. */
static __attribute__((noinline)) long queue_refusal(struct fcgi_conn *c, uint16_t id,
                                                    struct fcgi_response *resp, const char *why)
{
    struct fcgi_server *s = c->srv;
    char refusal[256];
    unsigned long more;
    long sent;

    STAT(s, limits[FCGI_LIMIT_OUTPUT]);
    if (log_limit_pass(&s->output_log, ev_now(s->loop), &more))
        sf_warn("request %u: a %d answer of %zu bytes replaced by 503: %s (%lu more "
                "since the last line)", id, resp->status, resp->body_len, why, more);
    resp->status = 503;
    resp->content_type = FCGI_TEXT_PLAIN;
    resp->extra_headers_len = 0;
    resp->body = refusal;
    resp->body_len = fcgi_format_error(refusal, sizeof refusal, 503, "%s", why);
    sent = fcgi_format_response(&c->out, id, resp);
    return sent < 0 ? queue_500(c, id, resp) : sent;
}

long conn_queue_failed(struct fcgi_conn *c, uint16_t id, struct fcgi_response *resp,
                       size_t before)
{
    long sent = queue_500(c, id, resp);

    conn_out_grew(c, before);
    return sent;
}

long conn_queue_checked(struct fcgi_conn *c, uint16_t id, struct fcgi_response *resp)
{
    size_t before = c->out.len;
    char why[160];
    long sent;

    if (!output_room(c, fcgi_response_bound(resp), why, sizeof why))
        sent = queue_refusal(c, id, resp, why);
    else if ((sent = fcgi_format_response(&c->out, id, resp)) < 0)
        sent = queue_500(c, id, resp);
    conn_out_grew(c, before);
    return sent;
}

static void end_request(struct fcgi_conn *c, uint16_t id, uint8_t protocol_status)
{
    size_t before = c->out.len;

    if (fcgi_format_end_request(&c->out, id, 0, protocol_status) < 0)
        protocol_error(c, "out of memory for END_REQUEST");
    conn_out_grew(c, before);
}

/* --- records ------------------------------------------------------------- */

/* Logs a refusal by a budget, at most once a second. */
static void log_budget(struct fcgi_server *s, const char *what, uint16_t id, size_t held,
                       size_t limit)
{
    unsigned long more;

    if (log_limit_pass(&s->budget_log, ev_now(s->loop), &more))
        sf_warn("request %u refused: %zu bytes of request %s are held already (limit %zu; "
                "%lu more refusals since the last line)", id, held, what, limit, more);
}

/* A BEGIN_REQUEST that is not taken: END_REQUEST with the reason, and the
 * id stays inactive (whatever the peer sends for it is ignored). */
static void refuse_request(struct fcgi_conn *c, uint16_t id, bool keep, uint8_t why)
{
    end_request(c, id, why);
    if (!keep)
        conn_close_when_done(c, false); /* its params and body may follow */
}

/* Begins request id (c->begin holds its BEGIN_REQUEST body): the new
 * request, or NULL when it is refused or the connection fails. */
static struct fcgi_request *begin_request(struct fcgi_conn *c, uint16_t id)
{
    const struct fcgi_limits *lim = &c->srv->cfg.limits;
    unsigned role = (unsigned)c->begin[0] << 8 | c->begin[1];
    bool keep = c->begin[2] & FCGI_KEEP_CONN;
    struct fcgi_request *r = find_request(c, id);

    if (r) {
        if (r->state != REQ_DRAIN) {
            protocol_error(c, "BEGIN_REQUEST for a request id already live");
            return NULL;
        }
        conn_detach_request(c, r); /* an answered id may be begun again */
    }
    if (role != FCGI_RESPONDER) {
        sf_info("request %u: role %u refused (only the responder role is served)", id, role);
        refuse_request(c, id, keep, FCGI_UNKNOWN_ROLE);
        return NULL;
    }
    if (c->nreqs >= lim->max_reqs && live_requests(c) >= lim->max_reqs) { /* (live <= nreqs) */
        unsigned long more;

        STAT(c->srv, limits[FCGI_LIMIT_MAX_REQS]);
        if (log_limit_pass(&c->srv->budget_log, ev_now(c->srv->loop), &more))
            sf_warn("request %u: over %u live requests on one connection; refused "
                    "(%lu more such lines suppressed)", id, lim->max_reqs, more);
        refuse_request(c, id, keep, FCGI_OVERLOADED);
        return NULL;
    }
    /* Only requests answered early can pile up beside the live ones, and
     * only while the peer keeps sending their records. */
    if (c->nreqs >= 2 * lim->max_reqs) {
        protocol_error(c, "too many requests begun and not finished on one connection");
        return NULL;
    }
    r = request_new(c, id, keep);
    if (!r) {
        struct fcgi_server *s = c->srv;

        STAT(s, limits[FCGI_LIMIT_PARAMS_BUDGET]);
        log_budget(s, "params (and requests begun)", id, s->params_bytes,
                   lim->max_buffered_params_bytes);
        refuse_request(c, id, keep, FCGI_OVERLOADED);
        return NULL;
    }
    if (add_request(c, r) < 0) {
        request_unref(r);
        protocol_error(c, "out of memory for a new request");
        return NULL;
    }
    return c->found = r; /* its records come next */
}

static void abort_request(struct fcgi_conn *c, uint16_t id)
{
    struct fcgi_request *r = find_request(c, id);

    if (!r)
        return; /* it may have ended just before the abort crossed it */
    STAT(c->srv, aborted);
    if (!r->answered) {
        r->answered = true; /* ended by the peer: no longer in flight */
        STAT_DEC(c->srv, in_flight);
        end_request(c, id, FCGI_REQUEST_COMPLETE);
        if (!r->keep_conn)
            conn_close_when_done(c, false);
    }
    conn_detach_request(c, r);
}

static void answer_get_values(struct fcgi_conn *c)
{
    const struct fcgi_limits *lim = &c->srv->cfg.limits;
    uint8_t out[256];
    size_t pos = 0, n = 0, before;
    struct fcgi_nv nv;
    const char *why;
    char value[32];
    int rc;

    while ((rc = fcgi_nv_next(c->rec.data, c->rec.len, &pos, &nv, &why)) == 1) {
        const char *name = (const char *)nv.name;

        if (nv.name_len == 14 && !memcmp(name, FCGI_MAX_CONNS, 14))
            snprintf(value, sizeof value, "%u", lim->max_conns);
        else if (nv.name_len == 13 && !memcmp(name, FCGI_MAX_REQS, 13))
            snprintf(value, sizeof value, "%llu",
                     (unsigned long long)lim->max_conns * lim->max_reqs);
        else if (nv.name_len == 15 && !memcmp(name, FCGI_MPXS_CONNS, 15))
            snprintf(value, sizeof value, "1");
        else
            continue; /* unknown names are left out of the answer */
        if (n + fcgi_nv_size(nv.name_len, strlen(value)) > sizeof out)
            break;
        n += fcgi_nv_encode(out + n, name, nv.name_len, value, strlen(value));
    }
    /* A pair cut by GET_VALUES_KEEP is not an error: the names after it
     * are not answered, as names the application does not know. */
    if (rc < 0 && c->parser.record.content_length <= GET_VALUES_KEEP) {
        protocol_error(c, why);
        return;
    }
    before = c->out.len;
    if (fcgi_format_record(&c->out, FCGI_GET_VALUES_RESULT, 0, out, n) < 0)
        protocol_error(c, "out of memory for GET_VALUES_RESULT");
    conn_out_grew(c, before);
}

static void answer_unknown_type(struct fcgi_conn *c, uint8_t type)
{
    uint8_t body[8] = {type, 0, 0, 0, 0, 0, 0, 0};
    size_t before = c->out.len;

    if (fcgi_format_record(&c->out, FCGI_UNKNOWN_TYPE, 0, body, sizeof body) < 0)
        protocol_error(c, "out of memory for UNKNOWN_TYPE");
    conn_out_grew(c, before);
}

/*
 * r was answered before its streams ended: its remaining records are read
 * and dropped.  Its params, body and their budgets go back now, not when
 * the peer finishes sending; the connection lingers for the rest
 * (lingering) before a close the answer asked for.
 */
static void drain_request(struct fcgi_request *r)
{
    r->state = REQ_DRAIN;
    r->linger = true;
    request_release_input(r);
}

/* What a request's params and its body are each held to. */
struct input_limits {
    const char *what;    /* "params", "body" */
    const char *all;     /* "params", "bodies": what the budget counts */
    enum fcgi_limit over, short_budget; /* what each refusal counts as */
    int too_large;       /* the status over the per-request limit: 431, 413 */
    size_t max;          /* per request */
    size_t grow_limit;   /* the most the buffer needs (a known CONTENT_LENGTH) */
    size_t *held;        /* the server's count for all requests */
    size_t budget;       /* the limit of that count */
    struct buf_spares *spares; /* buffers to take, or NULL */
};

/* The budget l counts is short for r: 503, and r is drained. */
static void refuse_over_budget(struct fcgi_request *r, const struct input_limits *l)
{
    STAT(r->srv, limits[l->short_budget]);
    request_answer(r, 503, "busy: %zu bytes of request %s are held already (limit %zu)",
                   *l->held, l->all, l->budget);
    log_budget(r->srv, l->all, r->id, *l->held, l->budget);
    drain_request(r);
}

/* What r's params (params) or its body are held to. */
static inline __attribute__((always_inline)) struct input_limits input_limits(
    struct fcgi_request *r, bool params)
{
    struct fcgi_server *s = r->srv;
    const struct fcgi_limits *lim = &s->cfg.limits;

    if (params)
        return (struct input_limits){"params", "params", FCGI_LIMIT_PARAMS,
                                     FCGI_LIMIT_PARAMS_BUDGET, 431, lim->max_params_bytes,
                                     lim->max_params_bytes, &s->params_bytes,
                                     lim->max_buffered_params_bytes, &s->params_spares};
    return (struct input_limits){"body", "bodies", FCGI_LIMIT_BODY, FCGI_LIMIT_BODY_BUDGET, 413,
                                 lim->max_body_bytes,
                                 r->has_content_length ? r->content_length : lim->max_body_bytes,
                                 &s->buffered_bytes, lim->max_buffered_bytes, NULL};
}

/* r's params (params) or body are over the per-request limit (431, 413),
 * or over_budget (503): r is answered and drained.  (Apart: the limits'
 * texts are built only here, not on every record taken.) */
static __attribute__((noinline, cold)) void refuse_input(struct fcgi_request *r, bool params,
                                                         bool over_budget)
{
    struct input_limits l = input_limits(r, params);

    if (over_budget) {
        refuse_over_budget(r, &l);
        return;
    }
    STAT(r->srv, limits[l.over]);
    request_answer(r, l.too_large, "the request's %s is over the limit of %zu bytes", l.what,
                   l.max);
    sf_warn("request %u: %s over %zu bytes", r->id, l.what, l.max);
    drain_request(r);
}

/*
 * Appends data to r's params (params) or body, charged as it arrives for
 * what is allocated (a peer that announces a large CONTENT_LENGTH and
 * sends nothing holds nothing).  Over the per-request limit or the
 * budget, r is answered (431 or 413, 503) and drained.
 */
static inline __attribute__((always_inline)) void take_input(struct fcgi_request *r, bool params,
                                                             const uint8_t *data, size_t len)
{
    struct input_limits l = input_limits(r, params);
    struct buf *b = params ? &r->params : &r->body;

    if (b->len + len > l.max) {
        refuse_input(r, params, false);
        return;
    }
    if (!request_grow_charged(b, len, l.grow_limit, l.held, l.budget,
                              params ? &r->params_charged : &r->body_charged, l.spares)) {
        refuse_input(r, params, true);
        return;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void on_params_content(struct fcgi_conn *c, struct fcgi_request *r, const uint8_t *data,
                              size_t len)
{
    if (r->state == REQ_DRAIN)
        return;
    if (r->state != REQ_PARAMS) {
        protocol_error(c, "PARAMS after the end of the params stream");
        return;
    }
    take_input(r, true, data, len);
}

static void on_stdin_content(struct fcgi_conn *c, struct fcgi_request *r, const uint8_t *data,
                             size_t len)
{
    if (r->state == REQ_DRAIN)
        return;
    if (r->state != REQ_STDIN) {
        protocol_error(c, r->state == REQ_PARAMS ? "STDIN before the end of PARAMS"
                                                 : "STDIN after the end of the body");
        return;
    }
    take_input(r, false, data, len);
}

/* Params complete: decode them and check the announced body length. */
static inline __attribute__((always_inline)) void params_done(struct fcgi_conn *c,
                                                              struct fcgi_request *r)
{
    const struct fcgi_limits *lim = &c->srv->cfg.limits;
    const char *why;
    int rc = request_decode_params(r, &why);

    if (rc == -1) {
        protocol_error(c, why);
        return;
    }
    r->state = REQ_STDIN;
    if (rc == -2) { /* the index of many params did not fit the budget */
        refuse_input(r, true, true);
        return;
    }
    if (r->content_length_bad) {
        request_answer(r, 400, "CONTENT_LENGTH is not a number of bytes");
        drain_request(r);
    } else if (r->content_length > lim->max_body_bytes) {
        STAT(c->srv, limits[FCGI_LIMIT_BODY]);
        request_answer(r, 413, "request body of %zu bytes is over the limit of %zu bytes",
                       r->content_length, lim->max_body_bytes);
        drain_request(r);
    }
}

/* r's handler returned unanswered with its params still lent, which the
 * input they are in will not outlive: they are copied now, or r is
 * answered 503, as a timed-out request is, and its params forgotten
 * (what its handler kept of them reads the old place; lookups find
 * nothing; its answer is dropped). */
static __attribute__((noinline, cold)) void keep_lent_params(struct fcgi_conn *c,
                                                            struct fcgi_request *r)
{
    static bool logged;

    if (!logged) {
        logged = true;
        sf_error("request %u: its handler kept it without fcgi_request_keep_params (a bug: "
                 "logged once); its params are copied now", r->id);
    }
    if (fcgi_request_keep_params(r) == 0)
        return;
    STAT(r->srv, limits[FCGI_LIMIT_PARAMS_BUDGET]);
    request_answer(r, 503, "busy: no room to keep the request's params");
    r->npairs = 0;
    memset(r->known, 0, sizeof r->known);
    conn_detach_request(c, r);
}

static void dispatch(struct fcgi_conn *c, struct fcgi_request *r)
{
    request_receiving_end(r);
    r->state = REQ_HANDLER;
    r->refs++; /* the handler's reference, dropped by its answer */
    c->handling++;
    r->refs++; /* a look after the handler: did it answer at once? */
    c->srv->cfg.handler(r);
    if (r->state == REQ_HANDLER) {
        c->answer_due = true; /* it answers from the loop: let that come first */
        if (r->params_lent)
            keep_lent_params(c, r);
    }
    request_unref(r);
}

/* (The hot types are tested first, in if statements: a switch here is an
 * indirect jump, a dozen instructions a record.) */
static inline __attribute__((always_inline)) void on_content(struct fcgi_conn *c,
                                                            const uint8_t *data, size_t len)
{
    const struct fcgi_record *rec = &c->parser.record;
    struct fcgi_request *r = c->cur;

    if (rec->type == FCGI_PARAMS) {
        if (r)
            on_params_content(c, r, data, len);
    } else if (rec->type == FCGI_BEGIN_REQUEST) {
        /* fcgi_record_check made sure the content is 8 bytes; whole, it
         * is one move */
        if (len == sizeof c->begin)
            memcpy(c->begin, data, sizeof c->begin);
        else
            memcpy(c->begin + (rec->content_length - c->parser.content_left - len), data, len);
    } else if (rec->type == FCGI_STDIN) {
        if (r)
            on_stdin_content(c, r, data, len);
    } else if (rec->type == FCGI_GET_VALUES) {
        if (c->rec.len < GET_VALUES_KEEP &&
            buf_append(&c->rec, data,
                       len < GET_VALUES_KEEP - c->rec.len ? len : GET_VALUES_KEEP - c->rec.len) < 0)
            protocol_error(c, "out of memory for a record");
    }
    /* DATA (not used by responders), unknown types, inactive ids: ignored */
}

/* A stream record for a request whose streams ended: the handler may
 * answer (and the request go) before this record's content arrives.
 * (Apart from on_header, whose every call would otherwise pay for msg.) */
static __attribute__((noinline, cold)) void stream_after_end(struct fcgi_conn *c,
                                                            const struct fcgi_record *rec)
{
    char msg[96];

    snprintf(msg, sizeof msg, "record type %u for request id %u after its end of stream",
             rec->type, rec->request_id);
    protocol_error(c, msg);
}

static inline __attribute__((always_inline)) void on_header(struct fcgi_conn *c)
{
    const struct fcgi_record *rec = &c->parser.record;
    const char *why = fcgi_record_check(rec);

    if (why) {
        protocol_error(c, why);
        return;
    }
    c->cur = NULL;
    if (rec->type == FCGI_PARAMS || rec->type == FCGI_STDIN || rec->type == FCGI_DATA) {
        c->cur = find_request(c, rec->request_id);
        if (!c->cur) {
            /* Never begun, or already ended (answered, refused, aborted):
             * an inactive id, whose records are ignored (FastCGI 1.0 §3.3). */
            sf_debug("record type %u for inactive request id %u ignored", rec->type,
                     rec->request_id);
        } else if (c->cur->state == REQ_HANDLER && rec->type != FCGI_DATA) {
            stream_after_end(c, rec);
        }
    }
}

/* The end of a PARAMS or STDIN record for r (NULL: an inactive id). */
static void params_record_end(struct fcgi_conn *c, struct fcgi_request *r)
{
    if (!r || c->parser.record.content_length != 0)
        return;
    if (r->state == REQ_PARAMS)
        params_done(c, r);
    else if (r->state != REQ_DRAIN)
        protocol_error(c, "second end of the params stream");
}

/* The end of r's body stream (an empty STDIN record). */
static inline __attribute__((always_inline)) void stdin_ended(struct fcgi_conn *c,
                                                              struct fcgi_request *r)
{
    if (r->state == REQ_STDIN && r->has_content_length && r->body.len != r->content_length) {
        request_answer(r, 400, "body of %zu bytes, but CONTENT_LENGTH said %zu", r->body.len,
                       r->content_length);
        conn_detach_request(c, r); /* answered, and nothing more of it will come */
    } else if (r->state == REQ_STDIN) {
        dispatch(c, r);
    } else if (r->state == REQ_DRAIN) {
        conn_detach_request(c, r); /* everything of an answered request has been read */
    } else {
        protocol_error(c, "end of STDIN in the wrong state");
    }
}

static void stdin_record_end(struct fcgi_conn *c, struct fcgi_request *r)
{
    if (r && c->parser.record.content_length == 0)
        stdin_ended(c, r);
}

static void on_record_end(struct fcgi_conn *c)
{
    const struct fcgi_record *rec = &c->parser.record;
    struct fcgi_request *r = c->cur;

    c->records++;
    c->cur = NULL;
    if (rec->type == FCGI_PARAMS) /* the hot ones first, as in on_content */
        params_record_end(c, r);
    else if (rec->type == FCGI_STDIN)
        stdin_record_end(c, r);
    else if (rec->type == FCGI_BEGIN_REQUEST)
        begin_request(c, rec->request_id);
    else if (rec->type == FCGI_ABORT_REQUEST)
        abort_request(c, rec->request_id);
    else if (rec->type == FCGI_GET_VALUES) {
        answer_get_values(c);
        buf_free(&c->rec); /* up to 64 KiB: not kept for the connection's life */
    } else if (rec->type != FCGI_DATA) {
        answer_unknown_type(c, rec->type);
    }
}

/* on_request_record for a PARAMS (params) or STDIN record of request id. */
static inline __attribute__((always_inline)) bool stream_record(struct fcgi_conn *c, uint16_t id,
                                                               bool params, const uint8_t *content,
                                                               uint16_t len)
{
    struct fcgi_request *r = find_request(c, id);

    if (!r || r->state != (params ? REQ_PARAMS : REQ_STDIN))
        return false;
    if (len > 0) {
        take_input(r, params, content, len); /* (the state is the one for it: no second look) */
        c->records++;
    } else {
        c->records++; /* the end of the stream */
        if (params)
            params_done(c, r);
        else
            stdin_ended(c, r);
    }
    return true;
}

/* Whether the 8 bytes at p are an empty record of type for the request
 * whose id is id_be in network order, with no padding and the reserved
 * byte 0 (what front servers send): three compares, the first with a
 * constant. */
static inline bool is_empty_record(const uint8_t *p, uint8_t type, uint16_t id_be)
{
    const uint8_t head[2] = {FCGI_VERSION_1, type};

    return word2(p) == word2(head) && word2(p + 2) == id_be && word4(p + 4) == 0;
}

/* The end of r, a request without a body, once its params and the
 * empty PARAMS and STDIN after them are taken (the two counted here). */
static inline __attribute__((always_inline)) void bodiless_request_taken(struct fcgi_conn *c,
                                                                        struct fcgi_request *r)
{
    c->records += 2;
    params_done(c, r);
    if (!c->dead)
        stdin_ended(c, r); /* (in REQ_DRAIN too: an answered request ends) */
}

/*
 * lend_params: r, just begun, when one PARAMS record holds all of its
 * params and the empty PARAMS and STDIN of a request without a body
 * follow, whole in the input at *data: its params are lent, not copied,
 * a view of those bytes (and of the one after them, the next record's or
 * padding's, where decoding puts the NUL after the last value), and r is
 * handled.  The input stays where it is until the handler returns (the
 * next read is after it; held input is not moved while it is processed),
 * and dispatch sees that r's params are kept if the handler keeps r.
 * True when r was taken so (*data and *len past its records); false,
 * with nothing done, for the way that copies.
 */
static inline __attribute__((always_inline)) bool lend_whole_request(struct fcgi_conn *c,
                                                                     struct fcgi_request *r,
                                                                     const uint8_t **data,
                                                                     size_t *len)
{
    const uint8_t *p = *data;
    uint16_t id = r->id;
    struct fcgi_record rec;
    size_t total;

    if (!fcgi_parser_peek_record(&c->parser, p, *len, &rec, &total) ||
        rec.type != FCGI_PARAMS || rec.request_id != id || rec.content_length == 0 ||
        rec.content_length > c->srv->cfg.limits.max_params_bytes ||
        *len - total < 2 * FCGI_HEADER_LEN ||
        !is_empty_record(p + total, FCGI_PARAMS, htons(id)) ||
        !is_empty_record(p + total + FCGI_HEADER_LEN, FCGI_STDIN, htons(id)))
        return false;
    /* (the input is read_buf or c->in, both writable) */
    request_lend_params(r, (uint8_t *)(uintptr_t)(p + FCGI_HEADER_LEN), rec.content_length);
    *data = p + total + 2 * FCGI_HEADER_LEN;
    *len -= total + 2 * FCGI_HEADER_LEN;
    c->records++;
    bodiless_request_taken(c, r);
    return true;
}

/*
 * The rest of r, just begun, when it follows whole in the input as a
 * request without a body comes: its PARAMS records, then an empty PARAMS
 * and an empty STDIN, 16 bytes whose every bit is known but for the id.
 * Those are taken here in one step (each PARAMS header read as the record
 * loop reads one, fcgi_parser_peek_record), as stream_record would take
 * them but without looking r up again, nor at the output after each (they
 * answer nothing, but for an error).  What comes otherwise (a body, a
 * record cut short, padding on an empty record, another request's) is
 * left in *data for the record-by-record way, as is everything after r's
 * end; so is what follows once r is refused (its state is no longer
 * REQ_PARAMS) or the connection fails.
 */
static inline __attribute__((always_inline)) void take_rest_of_request(
    struct fcgi_conn *c, struct fcgi_request *r, const uint8_t **data, size_t *len)
{
    const uint8_t *p = *data;
    size_t left = *len, total;
    uint16_t id = r->id;
    struct fcgi_record rec;

    if (c->srv->cfg.lend_params && lend_whole_request(c, r, &p, &left))
        goto out;
    while (fcgi_parser_peek_record(&c->parser, p, left, &rec, &total) &&
           rec.type == FCGI_PARAMS && rec.request_id == id && rec.content_length > 0) {
        take_input(r, true, p + FCGI_HEADER_LEN, rec.content_length);
        c->records++;
        p += total;
        left -= total;
        if (r->state != REQ_PARAMS)
            goto out; /* refused: the rest goes the general way, which drains */
    }
    if (left >= 2 * FCGI_HEADER_LEN && is_empty_record(p, FCGI_PARAMS, htons(id)) &&
        is_empty_record(p + FCGI_HEADER_LEN, FCGI_STDIN, htons(id))) {
        p += 2 * FCGI_HEADER_LEN;
        left -= 2 * FCGI_HEADER_LEN;
        bodiless_request_taken(c, r);
    }
out:
    *data = p;
    *len = left;
}

/*
 * A whole record of a request in the state it expects (what nearly every
 * record is), handled in one step: what on_header, on_content and
 * on_record_end do for it, without asking the type three times; after a
 * BEGIN_REQUEST, the records of the request that follow whole in the
 * input too (take_rest_of_request: *data and *len, the input after the
 * record, move past them).  False, with nothing done, for any other
 * record, which goes that general way.  rec is the record's header:
 * c->parser.record is not set for it.  (c->cur is NULL here, at a
 * record's start, as on_record_end leaves it.)
 */
static inline __attribute__((always_inline)) bool on_request_record(struct fcgi_conn *c,
                                                                    const struct fcgi_record *rec,
                                                                    const uint8_t *content,
                                                                    const uint8_t **data,
                                                                    size_t *len_left)
{
    uint16_t id = rec->request_id, len = rec->content_length;

    if (id == FCGI_NULL_REQUEST_ID)
        return false;
    if (rec->type == FCGI_BEGIN_REQUEST) {
        struct fcgi_request *r;

        if (len != sizeof c->begin)
            return false;
        memcpy(c->begin, content, sizeof c->begin);
        c->records++;
        r = begin_request(c, id);
        if (r)
            take_rest_of_request(c, r, data, len_left);
        return true;
    }
    if (rec->type == FCGI_PARAMS)
        return stream_record(c, id, true, content, len);
    if (rec->type == FCGI_STDIN)
        return stream_record(c, id, false, content, len);
    return false;
}

/*
 * The request timeout passed for r (called by the server's request timer):
 * 504, whatever its handler or backends are doing.  A handler that answers
 * later finds the request answered (its answer is dropped, as after an
 * ABORT_REQUEST); a request still being received is ended as a slow one is.
 */
void conn_request_timed_out(struct fcgi_request *r)
{
    struct fcgi_conn *c = r->conn;
    long ms = (long)(r->srv->cfg.limits.request_timeout * 1000 + 0.5);
    bool receiving_it = r->state == REQ_PARAMS || r->state == REQ_STDIN;
    unsigned long more;

    STAT(r->srv, limits[FCGI_LIMIT_REQUEST_TIMEOUT]);
    if (log_limit_pass(&r->srv->budget_log, ev_now(r->srv->loop), &more))
        sf_warn("request %u: not answered within %ld ms of its BEGIN_REQUEST "
                "(--request-timeout-ms); answered 504 (%lu more such lines suppressed)",
                r->id, ms, more);
    request_answer(r, 504, "request not answered within %ld ms", ms);
    if (receiving_it) {
        request_release_input(r);
        conn_close_when_done(c, false); /* what the peer still sends for it is not waited for */
    }
    conn_detach_request(c, r);
    conn_flush(c);
    conn_maybe_close(c);
}

/* The receive timeout passed for r (called by the server's sweep). */
void conn_request_too_slow(struct fcgi_request *r)
{
    struct fcgi_conn *c = r->conn;
    double timeout = r->srv->cfg.limits.receive_timeout;
    unsigned long more;

    STAT(r->srv, limits[FCGI_LIMIT_RECEIVE_TIMEOUT]);
    if (log_limit_pass(&r->srv->budget_log, ev_now(r->srv->loop), &more))
        sf_warn("request %u: not received whole within %.0f s of its BEGIN_REQUEST; answered "
                "408 and closing its connection (%lu more such lines suppressed)", r->id,
                timeout, more);
    request_answer(r, 408, "request not received whole within %.0f s", timeout);
    request_release_input(r);
    /* A peer this slow is not waited for: the id goes inactive (what it
     * still sends is ignored) and the connection is closed once what is
     * in flight on it is done. */
    conn_detach_request(c, r);
    conn_close_when_done(c, false);
    conn_flush(c);
    conn_maybe_close(c);
}

static void on_resume(struct ev_loop *loop, ev_idle *w, int revents);

/* c goes on the server's list of connections to resume, worked through
 * once the answers made from the loop meanwhile have been delivered (the
 * operation core's kick has a higher priority than the resume watcher). */
static void schedule_resume(struct fcgi_conn *c)
{
    struct fcgi_server *s = c->srv;

    c->yielded = true;
    if (list_linked(&c->resume_link))
        return;
    if (list_empty(&s->resume)) {
        if (!s->resume_w.cb) {
            ev_idle_init(&s->resume_w, on_resume);
            ev_set_priority(&s->resume_w, EV_MINPRI);
        }
        ev_feed_event(s->loop, &s->resume_w, EV_CUSTOM);
    }
    list_insert_tail(&s->resume, &c->resume_link);
}

/*
 * Stops reading; what is left of the input waits in c->in (copied once
 * from the shared read buffer; when it came from c->in already, only where
 * to go on is noted) until the output has drained (conn_flush then calls
 * conn_resume), or, when yield, until the loop comes back to it.
 */
static void hold_input(struct fcgi_conn *c, const uint8_t *data, size_t len, bool yield)
{
    if (c->in.data && data >= c->in.data && data <= c->in.data + c->in.len) {
        c->in_off = (size_t)(data - c->in.data);
    } else if (buf_append(&c->in, data, len) < 0) {
        protocol_error(c, "out of memory for pending input");
        return;
    } else {
        c->in_off = c->in.len - len;
    }
    if (!c->paused) {
        c->paused = true;
        ev_io_stop(c->srv->loop, &c->rio);
    }
    if (yield)
        schedule_resume(c);
}

/*
 * Feeds bytes to the parser.  Pipelined requests answered at once could
 * pile up answers without bound (64 KiB of small GETs of a 1 MiB value is
 * 700 MiB of output), so past a record's end with the output over its
 * high-water mark, the rest of the input is held back until it drains.
 * A request whose handler answers later (from the loop: a backend's
 * callback) makes the parser yield: the answers due in this loop iteration
 * come first, and only then is the next request read, with the output as
 * they left it.
 */
static void process(struct fcgi_conn *c, const uint8_t *data, size_t len)
{
    struct fcgi_event ev;
    const uint8_t *content;
    /* The output's length when it was last looked at: a record that
     * answers nothing (three of a request's four) leaves it as it was,
     * and under its mark (output beside others' is looked at again with
     * this connection's next answer). */
    size_t out_seen = c->out.len;

    while (!c->dead) {
        struct fcgi_record rec;
        size_t total;

        if (fcgi_parser_peek_record(&c->parser, data, len, &rec, &total)) {
            /* a whole record in the input (most are): its events at once,
             * and for a request's own records in one step, which needs no
             * c->parser.record (the general way reads it there) */
            content = data + FCGI_HEADER_LEN;
            data += total;
            len -= total;
            if (on_request_record(c, &rec, content, &data, &len))
                goto next;
            c->parser.record = rec;
            on_header(c);
            if (c->dead)
                return;
            if (c->parser.record.content_length > 0) {
                on_content(c, content, c->parser.record.content_length);
                if (c->dead)
                    return;
            }
        } else {
            switch (fcgi_parser_next(&c->parser, &data, &len, &ev)) {
            case FCGI_EV_NEED_MORE:
                return;
            case FCGI_EV_HEADER:
                on_header(c);
                continue;
            case FCGI_EV_CONTENT:
                on_content(c, ev.data, ev.len);
                continue;
            case FCGI_EV_END:
                break;
            case FCGI_EV_ERROR:
                protocol_error(c, c->parser.error);
                return;
            }
        }
        on_record_end(c);
    next:
        if (len > 0 && (c->answer_due || (c->out.len != out_seen &&
                                          (out_seen = c->out.len, output_over_mark(c))))) {
            c->answer_due = false;
            hold_input(c, data, len, !output_over_mark(c));
            return;
        }
    }
}

/* Input was processed: a record completed is activity (a peer trickling
 * bytes that complete nothing is idle), and so is input while lingering. */
static void after_input(struct fcgi_conn *c, unsigned records_before)
{
    if (c->records != records_before)
        conn_touch(c);
    if (c->srv->shutting_down && c->nreqs == 0)
        c->closing = true;
}

/*
 * The output has drained, or the loop came back to a connection that
 * yielded: process the input held back, as long as the output keeps
 * draining (a loop, not recursion: the held input may hold thousands of
 * requests), then read again.
 */
static void conn_resume(struct fcgi_conn *c)
{
    c->yielded = false;
    while (c->paused && !c->dead) {
        if (output_over_mark(c)) {
            wait_writable(c); /* conn_flush comes back once it drained */
            return;
        }
        c->paused = false;
        if (c->in_off < c->in.len) {
            unsigned records = c->records;

            c->busy++;
            process(c, c->in.data + c->in_off, c->in.len - c->in_off); /* may hold again */
            c->busy--;
            after_input(c, records);
        }
        if (!c->paused) { /* all of it was taken */
            buf_free(&c->in);
            c->in_off = 0;
        }
        if (c->dead || c->yielded)
            return; /* a yield: the resume watcher comes back */
        if (!write_out(c)) {
            if (!c->dead)
                wait_writable(c); /* pauses again if over the mark */
            break;
        }
        ev_io_stop(c->srv->loop, &c->wio);
    }
    /* Not paused any more: read again (the output left, if any, is under
     * its mark and goes out when the socket takes it). */
    if (!c->dead && !c->eof && !c->paused)
        ev_io_start(c->srv->loop, &c->rio);
}

/* The connections that yielded, once the answers of this iteration were
 * delivered (the resume watcher has the lowest priority). */
static void on_resume(struct ev_loop *loop, ev_idle *w, int revents)
{
    struct fcgi_server *s = container_of(w, struct fcgi_server, resume_w);
    struct list_node *mark = &s->resume_mark;

    (void)revents;
    list_insert_tail(&s->resume, mark);
    while (s->resume.next != mark) {
        struct fcgi_conn *c = container_of(s->resume.next, struct fcgi_conn, resume_link);

        list_remove(&c->resume_link);
        conn_resume(c);
        conn_flush(c);
        conn_maybe_close(c); /* may destroy c: it is off the list */
    }
    list_remove(mark);
    if (!list_empty(&s->resume))
        ev_feed_event(loop, &s->resume_w, EV_CUSTOM);
}

/* A discarding connection is readable: what came is dropped; at EOF or on
 * an error, the connection goes. */
static void discard_input(struct fcgi_conn *c)
{
    ssize_t n = sys_read(c->fd, read_buf, sizeof read_buf);

    if (n > 0) {
        STAT_N(c->srv, bytes_in, (uint64_t)n);
        ev_timer_again(c->srv->loop, &c->linger); /* still arriving: wait LINGER_S more */
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    conn_destroy(c);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fcgi_conn *c = container_of(w, struct fcgi_conn, rio);
    ssize_t n;

    (void)revents;
    if (c->discarding) {
        discard_input(c);
        return;
    }
    n = sys_read(c->fd, read_buf, conn_unsent(c) > 0 ? READ_SLOW_PEER : sizeof read_buf);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        sf_info("FastCGI connection (fd %d) read failed: %s", c->fd, strerror(errno));
        c->dead = c->broken = true;
    } else if (n == 0) {
        /* The peer sends nothing more; answers in progress may still go out. */
        ev_io_stop(loop, &c->rio);
        c->eof = true;
        c->closing = true;
    } else {
        unsigned records = c->records;

        STAT_N(c->srv, bytes_in, (uint64_t)n);
        if (ev_is_active(&c->linger))
            ev_timer_again(loop, &c->linger); /* still arriving: wait LINGER_S more */
        c->busy++;
        process(c, read_buf, (size_t)n);
        c->busy--;
        after_input(c, records);
    }
    conn_flush(c);
    conn_maybe_close(c);
}
