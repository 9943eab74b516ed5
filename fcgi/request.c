/*
 * fcgi/request.c — one request: its params and body, its lifetime, and
 * the answer API handlers use (fcgi/request.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/internal.h"
#include "common/log.h"
#include "fcgi/response.h"

/* The server's list of requests being received is in order of
 * BEGIN_REQUEST: every request has the same receive timeout, so the sweep
 * looks only at its head. */
void request_receiving_end(struct fcgi_request *r)
{
    if (list_linked(&r->receiving))
        list_remove(&r->receiving);
}

struct fcgi_request *request_new(struct fcgi_conn *c, uint16_t id, bool keep_conn)
{
    struct fcgi_server *s = c->srv;
    struct fcgi_request *r;

    /* The request itself counts against the params budget: it bounds how
     * many requests all peers together can keep begun. */
    if (s->params_bytes + sizeof *r > s->cfg.limits.max_buffered_params_bytes)
        return NULL;
    r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    s->params_bytes += sizeof *r;
    STAT(s, requests);
    STAT(s, in_flight);
    r->conn = c;
    r->srv = c->srv;
    r->id = id;
    r->state = REQ_PARAMS;
    r->refs = 1;
    r->keep_conn = keep_conn;
    r->started = ev_now(c->srv->loop);
    list_insert_tail(&s->receiving, &r->receiving);
    if (s->cfg.limits.request_timeout > 0) {
        list_insert_tail(&s->timing, &r->timing);
        if (!ev_is_active(&s->request_timer)) {
            ev_timer_set(&s->request_timer, s->cfg.limits.request_timeout, 0);
            ev_timer_start(s->loop, &s->request_timer);
        }
    }
    return r;
}

void request_timing_end(struct fcgi_request *r)
{
    if (list_linked(&r->timing))
        list_remove(&r->timing);
}

/* Every request has the same timeout, so the list is in order of
 * deadline: the work stops at the first one still in time, and the timer
 * is set again for it.  (An answered request leaves the list at once; the
 * timer is not moved for it, and at worst fires once for nothing.) */
void request_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_server *s = container_of(w, struct fcgi_server, request_timer);
    double timeout = s->cfg.limits.request_timeout, now = ev_now(loop);
    struct fcgi_request *r;

    (void)revents;
    while ((r = list_first(&s->timing, struct fcgi_request, timing)) &&
           now - r->started >= timeout) {
        request_timing_end(r);
        if (r->conn && !r->answered)
            conn_request_timed_out(r);
    }
    if (r) {
        ev_timer_set(w, r->started + timeout - now, 0);
        ev_timer_start(loop, w);
    }
}

void request_release_input(struct fcgi_request *r)
{
    request_receiving_end(r);
    r->srv->buffered_bytes -= r->body_charged;
    r->srv->params_bytes -= r->params_charged;
    r->body_charged = r->params_charged = 0;
    buf_free(&r->body);
    buf_free(&r->params);
    r->method = r->script_name = r->path_info = r->request_uri = NULL;
}

void request_unref(struct fcgi_request *r)
{
    if (--r->refs > 0)
        return;
    request_release_input(r);
    request_timing_end(r);
    r->srv->params_bytes -= sizeof *r;
    if (!r->answered)
        STAT_DEC(r->srv, in_flight);
    buf_free(&r->headers);
    free(r->notes);
    free(r);
}

/* CONTENT_LENGTH: decimal digits; empty means no body, as CGI has it, and
 * -1 (Caddy's word for a chunked body) a body of unknown length, bounded
 * by --max-body-bytes like any. */
static void note_content_length(struct fcgi_request *r, const char *value)
{
    size_t n = 0;
    const char *p;

    if (!*value || !strcmp(value, "-1"))
        return;
    r->has_content_length = true;
    for (p = value; *p; p++) {
        if (*p < '0' || *p > '9' || n > (SIZE_MAX - 9) / 10) {
            r->content_length_bad = true;
            return;
        }
        n = n * 10 + (size_t)(*p - '0');
    }
    r->content_length = n;
}

/* Remembers the parameters the engine and router read on every request. */
static void note_param(struct fcgi_request *r, const char *name, size_t name_len,
                       const char *value)
{
    switch (name_len) {
    case 9:
        if (!memcmp(name, "PATH_INFO", 9))
            r->path_info = value;
        break;
    case 11:
        if (!memcmp(name, "SCRIPT_NAME", 11))
            r->script_name = value;
        else if (!memcmp(name, "REQUEST_URI", 11))
            r->request_uri = value;
        break;
    case 14:
        if (!memcmp(name, "REQUEST_METHOD", 14))
            r->method = value;
        else if (!memcmp(name, "CONTENT_LENGTH", 14))
            note_content_length(r, value);
        break;
    }
}

/*
 * Rewrites the raw pairs in place as "name\0value\0"...: each pair has at
 * least two length bytes, so the output never overtakes the input.
 */
int request_decode_params(struct fcgi_request *r, const char **why)
{
    uint8_t *p = r->params.data;
    size_t pos = 0, w = 0, len = r->params.len;
    struct fcgi_nv nv;
    int rc;

    while ((rc = fcgi_nv_next(p, len, &pos, &nv, why)) == 1) {
        const char *name = (const char *)p + w;

        /* Names and values become C strings: a NUL inside would cut one
         * and shift every pair after it. */
        if (memchr(nv.name, 0, nv.name_len) || memchr(nv.value, 0, nv.value_len)) {
            *why = "NUL byte inside a param name or value";
            return -1;
        }

        memmove(p + w, nv.name, nv.name_len);
        w += nv.name_len;
        p[w++] = '\0';
        memmove(p + w, nv.value, nv.value_len);
        p[w + nv.value_len] = '\0'; /* before note_param reads the value as a string */
        note_param(r, name, nv.name_len, (const char *)p + w);
        w += nv.value_len + 1;
    }
    if (rc < 0)
        return -1;
    r->params.len = w;
    return 0;
}

const char *fcgi_param(const struct fcgi_request *r, const char *name)
{
    const char *p = (const char *)r->params.data, *end;

    /* The parameters every request asks for were noted while decoding:
     * no scan (a NULL noted means absent). */
    if (!strcmp(name, "SCRIPT_NAME"))
        return r->script_name;
    if (!strcmp(name, "PATH_INFO"))
        return r->path_info;
    if (!strcmp(name, "REQUEST_METHOD"))
        return r->method;
    if (!strcmp(name, "REQUEST_URI"))
        return r->request_uri;

    if (!p) /* no params at all (and NULL + 0 would be undefined) */
        return NULL;
    end = p + r->params.len;
    while (p < end) {
        const char *value = p + strlen(p) + 1;

        if (!strcmp(p, name))
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

void fcgi_param_each(const struct fcgi_request *r,
                     void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    const char *p = (const char *)r->params.data, *end;

    if (!p) /* no params at all (and NULL + 0 would be undefined) */
        return;
    end = p + r->params.len;
    while (p < end) {
        const char *value = p + strlen(p) + 1;

        fn(arg, p, value);
        p = value + strlen(value) + 1;
    }
}

const uint8_t *fcgi_body(const struct fcgi_request *r, size_t *len)
{
    *len = r->body.len;
    return r->body.data ? r->body.data : (const uint8_t *)"";
}

bool fcgi_request_alive(const struct fcgi_request *r)
{
    return r->conn && !r->answered;
}

struct ev_loop *fcgi_request_loop(const struct fcgi_request *r)
{
    return r->srv->loop;
}

void fcgi_request_set_head_only(struct fcgi_request *r, bool head_only)
{
    r->head_only = head_only;
}

void *fcgi_request_app(const struct fcgi_request *r)
{
    return r->srv->cfg.app;
}

void fcgi_request_set_tag(struct fcgi_request *r, unsigned tag)
{
    r->tag = (uint8_t)tag;
}

unsigned fcgi_request_tag(const struct fcgi_request *r)
{
    return r->tag;
}

double fcgi_request_elapsed(const struct fcgi_request *r)
{
    return ev_time() - r->started;
}

void fcgi_request_set_user(struct fcgi_request *r, void *user)
{
    r->user = user;
}

void *fcgi_request_user(const struct fcgi_request *r)
{
    return r->user;
}

void fcgi_request_set_label(struct fcgi_request *r, const char *label)
{
    r->label = label;
}

const char *fcgi_request_label(const struct fcgi_request *r)
{
    return r->label;
}

void fcgi_request_add_backend_time(struct fcgi_request *r, double seconds)
{
    double us = seconds > 0 ? seconds * 1e6 + 0.5 : 0;
    uint64_t sum = (uint64_t)r->backend_us + (us < (double)UINT32_MAX ? (uint64_t)us : UINT32_MAX);

    r->backend_us = sum < UINT32_MAX ? (uint32_t)sum : UINT32_MAX;
    if (r->backend_waits < UINT16_MAX)
        r->backend_waits++;
}

void fcgi_request_note_backend(struct fcgi_request *r, const char *what, double seconds)
{
    if (r->srv->cfg.limits.slow_request <= 0 || r->nnotes >= BACKEND_NOTES_MAX)
        return;
    if (!r->notes) {
        r->notes = malloc(BACKEND_NOTES_MAX * sizeof *r->notes);
        if (!r->notes)
            return; /* the log line says less */
    }
    r->notes[r->nnotes].what = what;
    r->notes[r->nnotes].seconds = seconds;
    r->nnotes++;
}

double fcgi_request_backend_time(const struct fcgi_request *r, unsigned *waits)
{
    if (waits)
        *waits = r->backend_waits;
    return r->backend_us / 1e6;
}

/* A header name is an HTTP token; a value holds no line break (which
 * would let it add headers of its own) and no other control byte but tab. */
static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s == ':' || *s == 0x7f || (unsigned char)*s >= 0x80)
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < ' ' && *s != '\t') || *s == 0x7f)
            return false;
    return true;
}

int fcgi_response_header(struct fcgi_request *r, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    if (!header_name_ok(name) || !header_value_ok(value)) {
        sf_error("request %u: response header refused (bad name or a control byte in its "
                 "value): %.64s", r->id, name);
        return -1;
    }
    if (r->headers.len + nl + vl + 4 > FCGI_MAX_EXTRA_HEADERS)
        return -1;
    if (buf_reserve(&r->headers, nl + vl + 4) < 0)
        return -1;
    buf_append(&r->headers, name, nl);
    buf_append(&r->headers, ": ", 2);
    buf_append(&r->headers, value, vl);
    buf_append(&r->headers, "\r\n", 2);
    return 0;
}

/* Queues the answer on the connection (which may swap it for a 503 when
 * its output is full, or a 500 when memory is), and logs it. */
static void send_answer(struct fcgi_request *r, int status, const char *content_type,
                        const void *body, size_t len)
{
    struct fcgi_response resp = {
        .status = status,
        .content_type = content_type,
        .extra_headers = (const char *)r->headers.data,
        .extra_headers_len = r->headers.len,
        .body = body,
        .body_len = len,
        .head_only = r->head_only,
    };
    long sent = conn_queue_response(r->conn, r->id, &resp);

    r->answered = true;
    request_timing_end(r);
    STAT(r->srv, answered);
    STAT_DEC(r->srv, in_flight);
    if (sent >= 0 && r->srv->cfg.access_log)
        access_log_add(r->srv, r, resp.status, (size_t)sent);
    if (r->srv->cfg.on_answer || r->srv->cfg.limits.slow_request > 0) {
        double seconds = fcgi_request_elapsed(r);

        if (r->srv->cfg.on_answer)
            r->srv->cfg.on_answer(r->srv->cfg.app, r, resp.status, seconds);
        if (seconds >= r->srv->cfg.limits.slow_request && r->srv->cfg.limits.slow_request > 0)
            slow_log_check(r->srv, r, resp.status, seconds);
    }
    if (!r->keep_conn)
        conn_close_when_done(r->conn);
}

void fcgi_respond(struct fcgi_request *r, int status, const char *content_type,
                  const void *body, size_t len)
{
    struct fcgi_conn *c = r->conn;

    if (r->state != REQ_HANDLER) {
        sf_error("request %u answered twice or before it was handed over; ignored", r->id);
        return;
    }
    if (c && !r->answered) {
        send_answer(r, status, content_type, body, len);
        conn_detach_request(c, r); /* drops the connection's reference */
        conn_flush(c);
        conn_maybe_close(c);
    }
    r->state = REQ_DRAIN; /* any further answer is a bug and is refused above */
    request_unref(r);     /* the handler's reference */
}

/* The one error shape, from a handler (fcgi_respond_error) or from the
 * engine itself for a request no handler holds (request_answer). */
static void answer_error(struct fcgi_request *r, bool by_handler, int status, const char *fmt,
                         va_list ap)
{
    char body[1024];
    size_t n = fcgi_format_error_v(body, sizeof body, status, fmt, ap);

    if (by_handler)
        fcgi_respond(r, status, FCGI_TEXT_PLAIN, body, n);
    else if (r->conn && !r->answered)
        send_answer(r, status, FCGI_TEXT_PLAIN, body, n);
}

void fcgi_respond_error(struct fcgi_request *r, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    answer_error(r, true, status, fmt, ap);
    va_end(ap);
}

void request_answer(struct fcgi_request *r, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    answer_error(r, false, status, fmt, ap);
    va_end(ap);
}
