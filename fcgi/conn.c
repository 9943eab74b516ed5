/*
 * fcgi/conn.c — one FastCGI connection: reading records, keeping the
 * table of live requests, management records, writing with back-pressure.
 *
 * Reads go into one buffer shared by every connection of the process (the
 * loop is single-threaded), so an idle connection holds no read buffer.
 * Answers produced while records are being processed are written together
 * once the read is done: one write() for many responses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi/internal.h"
#include "fcgi/log.h"
#include "fcgi/response.h"

#define READ_BUF_SIZE (64 * 1024)
/* An output buffer larger than this is released once empty, so that a
 * connection that once sent a big body does not keep its memory. */
#define OUT_KEEP_BYTES (16 * 1024)
/* How long a closing connection waits for records still on their way. */
#define LINGER_S 5

static uint8_t read_buf[READ_BUF_SIZE];

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void conn_resume(struct fcgi_conn *c);
static void on_linger(struct ev_loop *loop, ev_timer *w, int revents);

/* --- the server's activity list ------------------------------------------ */

static void list_unlink(struct fcgi_conn *c)
{
    struct fcgi_server *s = c->srv;

    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->tail = c->prev;
    c->prev = c->next = NULL;
}

static void list_append(struct fcgi_conn *c)
{
    struct fcgi_server *s = c->srv;

    c->prev = s->tail;
    c->next = NULL;
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
}

void conn_touch(struct fcgi_conn *c)
{
    c->last_active = ev_now(c->srv->loop);
    if (c->srv->tail != c) {
        list_unlink(c);
        list_append(c);
    }
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
    ev_timer_init(&c->linger, on_linger, LINGER_S, LINGER_S);
    ev_io_start(s->loop, &c->rio);
    s->nconns++;
    list_append(c);
    c->last_active = ev_now(s->loop);
}

void conn_destroy(struct fcgi_conn *c)
{
    struct fcgi_server *s = c->srv;

    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->linger);
    close(c->fd);
    /* Requests still being handled stay valid for their handlers. */
    while (c->nreqs > 0)
        request_detach(c->reqs[c->nreqs - 1]);
    free(c->reqs);
    buf_free(&c->rec);
    buf_free(&c->in);
    buf_free(&c->out);
    list_unlink(c);
    s->nconns--;
    free(c);
    if (s->shutting_down && s->nconns == 0 && s->done) {
        void (*done)(void *) = s->done;

        s->done = NULL;
        done(s->done_arg);
    }
}

/* Requests whose records the peer is still sending (refusals at BEGIN do
 * not count: the spec has the application close after those at once). */
static bool still_arriving(const struct fcgi_conn *c)
{
    unsigned i;

    for (i = 0; i < c->nreqs; i++) {
        const struct fcgi_request *r = c->reqs[i];

        if (r->state == REQ_PARAMS || r->state == REQ_STDIN ||
            (r->state == REQ_DRAIN && r->linger))
            return true;
    }
    return false;
}

static void on_linger(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_conn *c = (struct fcgi_conn *)((char *)w - offsetof(struct fcgi_conn, linger));

    (void)loop;
    (void)revents;
    sf_debug("closing FastCGI connection (fd %d): nothing more arrived for %d s", c->fd, LINGER_S);
    conn_destroy(c);
}

/* Closes the connection if it is finished, unless the read callback is
 * still working on it (it calls this again when it is done). */
void conn_maybe_close(struct fcgi_conn *c)
{
    if (c->busy)
        return;
    if (c->dead) {
        conn_destroy(c);
        return;
    }
    if (!c->closing || c->out.len != c->out_off || c->handling > 0)
        return;
    /* A closing connection lingers while requests are still arriving (a
     * body after an early 413, a request in flight at shutdown), so the
     * peer is not cut off mid-send (nginx would answer 502), but not for
     * ever: LINGER_S without input ends it. */
    if (!c->eof && still_arriving(c)) {
        if (!ev_is_active(&c->linger))
            ev_timer_start(c->srv->loop, &c->linger);
        return;
    }
    conn_destroy(c);
}

static void protocol_error(struct fcgi_conn *c, const char *why)
{
    sf_warn("closing FastCGI connection (fd %d): %s", c->fd, why);
    c->dead = true;
}

/* --- writing ------------------------------------------------------------- */

/* Writes what the socket takes; true once everything is written. */
static bool write_out(struct fcgi_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return false;
            sf_info("FastCGI connection (fd %d) write failed: %s", c->fd, strerror(errno));
            c->dead = true;
            return false;
        }
        c->out_off += (size_t)n;
        conn_touch(c); /* progress: a slow reader that reads is not idle */
    }
    c->out.len = c->out_off = 0;
    if (c->out.cap > OUT_KEEP_BYTES)
        buf_free(&c->out);
    return true;
}

static bool output_over_mark(const struct fcgi_conn *c)
{
    return c->out.len - c->out_off > c->srv->cfg.limits.out_high_water;
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
    if (c->paused)
        conn_resume(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fcgi_conn *c = (struct fcgi_conn *)((char *)w - offsetof(struct fcgi_conn, wio));

    (void)loop;
    (void)revents;
    conn_flush(c);
    conn_maybe_close(c);
}

/* --- the request table --------------------------------------------------- */

static struct fcgi_request *find_request(struct fcgi_conn *c, uint16_t id)
{
    unsigned i;

    for (i = 0; i < c->nreqs; i++)
        if (c->reqs[i]->id == id)
            return c->reqs[i];
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
    c->reqs[c->nreqs++] = r;
    return 0;
}

static void end_request(struct fcgi_conn *c, uint16_t id, uint8_t protocol_status)
{
    if (fcgi_format_end_request(&c->out, id, 0, protocol_status) < 0)
        protocol_error(c, "out of memory for END_REQUEST");
}

/* --- records ------------------------------------------------------------- */

static void begin_request(struct fcgi_conn *c, uint16_t id)
{
    const struct fcgi_limits *lim = &c->srv->cfg.limits;
    const uint8_t *b = c->rec.data;
    unsigned role = (unsigned)b[0] << 8 | b[1];
    bool keep = b[2] & FCGI_KEEP_CONN;
    struct fcgi_request *r = find_request(c, id);

    if (r) {
        if (r->state != REQ_DRAIN) {
            protocol_error(c, "BEGIN_REQUEST for a request id already live");
            return;
        }
        request_detach(r); /* an answered id may be begun again */
    }
    if (c->nreqs >= 2 * lim->max_reqs) {
        protocol_error(c, "too many requests begun and not finished on one connection");
        return;
    }
    r = request_new(c, id, keep);
    if (!r || add_request(c, r) < 0) {
        if (r)
            request_unref(r);
        protocol_error(c, "out of memory for a new request");
        return;
    }
    if (role != FCGI_RESPONDER) {
        sf_info("request %u: role %u refused (only the responder role is served)", id, role);
        r->state = REQ_DRAIN;
        r->answered = true;
        end_request(c, id, FCGI_UNKNOWN_ROLE);
        if (!keep)
            c->closing = true;
    } else if (live_requests(c) > lim->max_reqs) {
        sf_warn("request %u: over %u live requests on one connection; refused", id,
                lim->max_reqs);
        r->state = REQ_DRAIN;
        r->answered = true;
        end_request(c, id, FCGI_OVERLOADED);
        if (!keep)
            c->closing = true;
    }
}

static void abort_request(struct fcgi_conn *c, uint16_t id)
{
    struct fcgi_request *r = find_request(c, id);

    if (!r)
        return; /* it may have ended just before the abort crossed it */
    if (!r->answered) {
        r->answered = true;
        end_request(c, id, FCGI_REQUEST_COMPLETE);
        if (!r->keep_conn)
            c->closing = true;
    }
    request_detach(r);
}

static void answer_get_values(struct fcgi_conn *c)
{
    const struct fcgi_limits *lim = &c->srv->cfg.limits;
    uint8_t out[256];
    size_t pos = 0, n = 0;
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
    if (rc < 0) {
        protocol_error(c, why);
        return;
    }
    if (fcgi_format_record(&c->out, FCGI_GET_VALUES_RESULT, 0, out, n) < 0)
        protocol_error(c, "out of memory for GET_VALUES_RESULT");
}

static void answer_unknown_type(struct fcgi_conn *c, uint8_t type)
{
    uint8_t body[8] = {type, 0, 0, 0, 0, 0, 0, 0};

    if (fcgi_format_record(&c->out, FCGI_UNKNOWN_TYPE, 0, body, sizeof body) < 0)
        protocol_error(c, "out of memory for UNKNOWN_TYPE");
}

/*
 * r was answered before its streams ended: its remaining records are read
 * and dropped.  Its body and its share of the body budget go back now, not
 * when the peer finishes sending; the connection lingers for the rest
 * (still_arriving) before a close the answer asked for.
 */
static void drain_request(struct fcgi_conn *c, struct fcgi_request *r)
{
    r->state = REQ_DRAIN;
    r->linger = true;
    c->srv->buffered_bytes -= r->charged;
    r->charged = 0;
    buf_free(&r->body);
}

/*
 * Counts `total` body bytes of r against the budget of all connections
 * (--max-buffered-bytes): many large bodies arriving at once must not
 * take all the memory.  Refused: answered 503 and drained.
 */
static bool charge_body(struct fcgi_conn *c, struct fcgi_request *r, size_t total)
{
    struct fcgi_server *s = c->srv;
    size_t more = total > r->charged ? total - r->charged : 0;

    if (s->buffered_bytes + more > s->cfg.limits.max_buffered_bytes) {
        request_answer(r, 503, "busy: %zu bytes of request bodies are held already (limit %zu)",
                       s->buffered_bytes, s->cfg.limits.max_buffered_bytes);
        sf_warn("request %u: body refused, %zu bytes of bodies held already", r->id,
                s->buffered_bytes);
        drain_request(c, r);
        return false;
    }
    s->buffered_bytes += more;
    r->charged += more;
    return true;
}

/* Params complete: decode them and check the announced body length. */
static void params_done(struct fcgi_conn *c, struct fcgi_request *r)
{
    const struct fcgi_limits *lim = &c->srv->cfg.limits;
    const char *why;

    if (request_decode_params(r, &why) < 0) {
        protocol_error(c, why);
        return;
    }
    r->state = REQ_STDIN;
    if (r->content_length > lim->max_body_bytes) {
        request_answer(r, 413, "request body of %zu bytes is over the limit of %zu bytes",
                       r->content_length, lim->max_body_bytes);
        drain_request(c, r);
        return;
    }
    if (r->content_length && !charge_body(c, r, r->content_length))
        return;
    if (r->content_length && buf_reserve(&r->body, r->content_length) < 0) {
        request_answer(r, 503, "no memory for a body of %zu bytes", r->content_length);
        drain_request(c, r);
    }
}

static void dispatch(struct fcgi_conn *c, struct fcgi_request *r)
{
    r->state = REQ_HANDLER;
    r->refs++; /* the handler's reference, dropped by its answer */
    c->handling++;
    c->srv->cfg.handler(r);
}

static void on_content(struct fcgi_conn *c, const uint8_t *data, size_t len)
{
    const struct fcgi_limits *lim = &c->srv->cfg.limits;
    const struct fcgi_record *rec = &c->parser.record;
    struct fcgi_request *r = c->cur;

    if (!r && (rec->type == FCGI_PARAMS || rec->type == FCGI_STDIN))
        return; /* its request ended while this record was arriving */
    switch (rec->type) {
    case FCGI_BEGIN_REQUEST:
    case FCGI_GET_VALUES:
        if (buf_append(&c->rec, data, len) < 0)
            protocol_error(c, "out of memory for a record");
        return;
    case FCGI_PARAMS:
        if (r->state == REQ_DRAIN)
            return;
        if (r->state != REQ_PARAMS) {
            protocol_error(c, "PARAMS after the end of the params stream");
            return;
        }
        if (r->params.len + len > lim->max_params_bytes) {
            request_answer(r, 431, "request params are over the limit of %zu bytes",
                           lim->max_params_bytes);
            sf_warn("request %u: params over %zu bytes", r->id, lim->max_params_bytes);
            drain_request(c, r);
            return;
        }
        if (buf_append(&r->params, data, len) < 0)
            protocol_error(c, "out of memory for params");
        return;
    case FCGI_STDIN:
        if (r->state == REQ_DRAIN)
            return;
        if (r->state != REQ_STDIN) {
            protocol_error(c, r->state == REQ_PARAMS ? "STDIN before the end of PARAMS"
                                                     : "STDIN after the end of the body");
            return;
        }
        if (r->body.len + len > lim->max_body_bytes) {
            request_answer(r, 413, "request body is over the limit of %zu bytes",
                           lim->max_body_bytes);
            drain_request(c, r);
            return;
        }
        if (!charge_body(c, r, r->body.len + len))
            return;
        if (buf_append(&r->body, data, len) < 0) {
            request_answer(r, 503, "no memory for the request body");
            drain_request(c, r);
        }
        return;
    default:
        return; /* DATA (not used by responders) and unknown types: content ignored */
    }
}

static void on_header(struct fcgi_conn *c)
{
    const struct fcgi_record *rec = &c->parser.record;
    const char *why = fcgi_record_check(rec);
    char msg[96];

    if (why) {
        protocol_error(c, why);
        return;
    }
    c->rec.len = 0;
    c->cur = NULL;
    if (rec->type == FCGI_PARAMS || rec->type == FCGI_STDIN || rec->type == FCGI_DATA) {
        c->cur = find_request(c, rec->request_id);
        if (!c->cur) {
            snprintf(msg, sizeof msg, "record type %u for request id %u that was never begun",
                     rec->type, rec->request_id);
            protocol_error(c, msg);
        } else if (c->cur->state == REQ_HANDLER && rec->type != FCGI_DATA) {
            /* Its streams ended; the handler may answer (and the request
             * go) before this record's content arrives. */
            snprintf(msg, sizeof msg, "record type %u for request id %u after its end of stream",
                     rec->type, rec->request_id);
            protocol_error(c, msg);
        }
    }
}

static void on_record_end(struct fcgi_conn *c)
{
    const struct fcgi_record *rec = &c->parser.record;
    struct fcgi_request *r = c->cur;

    if (!r && (rec->type == FCGI_PARAMS || rec->type == FCGI_STDIN)) {
        c->cur = NULL; /* its request ended while this record was arriving */
        return;
    }
    switch (rec->type) {
    case FCGI_BEGIN_REQUEST:
        begin_request(c, rec->request_id);
        break;
    case FCGI_ABORT_REQUEST:
        abort_request(c, rec->request_id);
        break;
    case FCGI_PARAMS:
        if (rec->content_length == 0 && r->state == REQ_PARAMS)
            params_done(c, r);
        else if (rec->content_length == 0 && r->state != REQ_DRAIN)
            protocol_error(c, "second end of the params stream");
        break;
    case FCGI_STDIN:
        if (rec->content_length != 0)
            break;
        if (r->state == REQ_STDIN && r->has_content_length && r->body.len != r->content_length) {
            request_answer(r, 400, "body of %zu bytes, but CONTENT_LENGTH said %zu", r->body.len,
                           r->content_length);
            request_detach(r); /* answered, and nothing more of it will come */
        } else if (r->state == REQ_STDIN)
            dispatch(c, r);
        else if (r->state == REQ_DRAIN)
            request_detach(r); /* everything of an answered request has been read */
        else
            protocol_error(c, "end of STDIN in the wrong state");
        break;
    case FCGI_DATA:
        break;
    case FCGI_GET_VALUES:
        answer_get_values(c);
        break;
    default:
        answer_unknown_type(c, rec->type);
        break;
    }
    c->cur = NULL;
}

/* Stops reading; what is left of the input waits in c->in until the
 * output has drained (conn_flush then calls conn_resume). */
static void hold_input(struct fcgi_conn *c, const uint8_t *data, size_t len)
{
    if (buf_append(&c->in, data, len) < 0) {
        protocol_error(c, "out of memory for pending input");
        return;
    }
    if (!c->paused) {
        c->paused = true;
        ev_io_stop(c->srv->loop, &c->rio);
    }
}

/*
 * Feeds bytes to the parser.  Pipelined requests answered at once could
 * pile up answers without bound (64 KiB of small GETs of a 1 MiB value is
 * 700 MiB of output), so past a record's end with the output over its
 * high-water mark, the rest of the input is held back until it drains.
 */
static void process(struct fcgi_conn *c, const uint8_t *data, size_t len)
{
    struct fcgi_event ev;

    while (!c->dead) {
        switch (fcgi_parser_next(&c->parser, &data, &len, &ev)) {
        case FCGI_EV_NEED_MORE:
            return;
        case FCGI_EV_HEADER:
            on_header(c);
            break;
        case FCGI_EV_CONTENT:
            on_content(c, ev.data, ev.len);
            break;
        case FCGI_EV_END:
            on_record_end(c);
            if (len > 0 && output_over_mark(c)) {
                hold_input(c, data, len);
                return;
            }
            break;
        case FCGI_EV_ERROR:
            protocol_error(c, c->parser.error);
            return;
        }
    }
}

/*
 * The output has drained: process the input held back, as long as the
 * output keeps draining (a loop, not recursion: the held input may hold
 * thousands of requests), then read again.
 */
static void conn_resume(struct fcgi_conn *c)
{
    while (c->paused && !c->dead) {
        struct buf held = c->in;

        memset(&c->in, 0, sizeof c->in);
        c->paused = false;
        if (held.len) {
            c->busy++;
            process(c, held.data, held.len); /* may hold input again */
            c->busy--;
            buf_free(&held);
            if (c->srv->shutting_down && c->nreqs == 0)
                c->closing = true;
        }
        if (c->dead)
            return;
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

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fcgi_conn *c = (struct fcgi_conn *)((char *)w - offsetof(struct fcgi_conn, rio));
    ssize_t n;

    (void)revents;
    n = read(c->fd, read_buf, sizeof read_buf);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        sf_info("FastCGI connection (fd %d) read failed: %s", c->fd, strerror(errno));
        c->dead = true;
    } else if (n == 0) {
        /* The peer sends nothing more; answers in progress may still go out. */
        ev_io_stop(loop, &c->rio);
        c->eof = true;
        c->closing = true;
    } else {
        conn_touch(c);
        if (ev_is_active(&c->linger))
            ev_timer_again(loop, &c->linger); /* still arriving: wait LINGER_S more */
        c->busy++;
        process(c, read_buf, (size_t)n);
        c->busy--;
        if (c->srv->shutting_down && c->nreqs == 0)
            c->closing = true;
    }
    conn_flush(c);
    conn_maybe_close(c);
}
