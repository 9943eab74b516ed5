/*
 * fcgi/internal.h — the structures the engine's files share: server,
 * connection, request.  Not for handlers: they see fcgi/request.h.
 *
 * Ownership.  The server owns its connections (a list kept in order of
 * last activity, so the idle sweep looks only at the oldest).  A
 * connection owns the table of its live requests and its output queue:
 * only conn.c touches them, request.c goes through conn_detach_request()
 * and conn_queue_response().  A request is freed when
 * both the connection's reference (dropped when it is answered, aborted
 * or the connection closes) and the handler's reference (dropped by its
 * one answer) are gone, so an answer arriving after the connection died
 * finds a valid request and is dropped quietly.
 */
#ifndef SPRINGFIELD_FCGI_INTERNAL_H
#define SPRINGFIELD_FCGI_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "common/histogram.h"
#include "common/list.h"
#include "common/log.h"
#include "common/buf.h"
#include "fcgi/codec.h"
#include "fcgi/fd_reserve.h"
#include "fcgi/request.h"
#include "fcgi/response.h"
#include "fcgi/server.h"

enum request_state {
    REQ_PARAMS,  /* receiving PARAMS */
    REQ_STDIN,   /* params complete, receiving the body */
    REQ_HANDLER, /* handed to the handler, not yet answered */
    REQ_DRAIN    /* answered early: records for it are read and dropped */
};

/*
 * The params the engine and the router read on every request, found while
 * decoding: looking them up costs no scan (fcgi_known_param in
 * fcgi/request.h, whose numbers these are).  (When a name comes twice,
 * the last one counts for these; fcgi_param gives the first for others.)
 */
enum request_known {
    KNOWN_REQUEST_METHOD = FCGI_REQUEST_METHOD,
    KNOWN_SCRIPT_NAME = FCGI_SCRIPT_NAME,
    KNOWN_PATH_INFO = FCGI_PATH_INFO,
    KNOWN_REQUEST_URI = FCGI_REQUEST_URI,
    KNOWN_COUNT
};

/* One decoded param: where its name is in params.data (the value follows
 * the name, and is NUL-terminated in place). */
struct param_ref {
    uint32_t name, name_len, value_len;
};

/* Pairs indexed in the request itself: what front servers send (nginx's
 * fastcgi_params and a browser's headers); more go after the raw pairs. */
#define REQUEST_PAIRS_INLINE 32

struct fcgi_request {
    struct fcgi_conn *conn; /* NULL once the connection is gone */
    struct fcgi_server *srv;
    struct list_node receiving; /* on the server's list while PARAMS or STDIN arrive */
    struct list_node timing;    /* on the server's list until answered (request_timeout) */
    uint16_t id;
    uint8_t state;
    unsigned slot;     /* its index in its connection's table (conn.c) */
    uint8_t refs;      /* connection + handler */
    bool keep_conn;
    bool head_only;
    bool answered;     /* END_REQUEST written (or aborted) */
    bool linger;    /* answered early: the peer may still be sending its records */
    bool has_content_length;
    bool content_length_bad; /* CONTENT_LENGTH is not a plain number */
    uint16_t backend_waits; /* fcgi_request_add_backend_time calls (saturating) */
    uint32_t backend_us;    /* their sum, in microseconds (saturating) */
    /* The pairs as received (request.c).  Once decoded, the known values
     * are NUL-terminated in place (over the first length byte of the pair
     * after each: nothing is moved), the bytes they cover kept in
     * known_end.  The first lookup of another name indexes every pair
     * (indexed): every value NUL-terminated so, the index in pairs_inline
     * or, for more pairs than fit there, after the raw pairs at pairs_off
     * (whose room decoding has made).  Lent (params_lent: request_lend_params,
     * for a handler that answers at once), params is a view of the input
     * the pairs came in, until fcgi_request_keep_params copies them into a
     * buffer of the request's own. */
    struct buf params;
    uint32_t npairs, pairs_off;
    uint8_t known_end[KNOWN_COUNT];
    bool indexed;
    bool params_lent;
    struct fcgi_param_str known[KNOWN_COUNT];
    struct buf body;
    struct buf headers; /* extra response headers */
    size_t content_length;
    size_t body_charged;   /* body bytes counted in the server's buffered_bytes */
    size_t params_charged; /* params bytes counted in the server's params_bytes */
    double started;        /* ev_now() at BEGIN_REQUEST */
    void *user;
    const char *label; /* fcgi_request_set_label: the route, borrowed */
    struct backend_note *notes; /* fcgi_request_note_backend, with a slow-request log */
    uint8_t nnotes;
    uint8_t tag;           /* fcgi_request_set_tag (here, by nnotes: no padding) */
    /* last: not cleared when a spare request is reused (indexed and
     * npairs say what is valid) */
    struct param_ref pairs_inline[REQUEST_PAIRS_INLINE];
};

/* Buffers kept for reuse (a server's params buffers): a buffer's first
 * allocation takes one of exactly the size it would allocate, so the
 * budgets count what they counted without them (request.c). */
#define SPARE_BUFS 16
#define SPARE_BUF_MAX_BYTES 2048
struct buf_spares {
    struct buf b[SPARE_BUFS];
    unsigned n;
};

struct fcgi_conn {
    ev_io rio, wio;
    ev_timer linger; /* closing, but records of early answers are still on their way */
    struct fcgi_server *srv;
    struct list_node link; /* on the server's list, oldest activity first */
    int fd;
    double last_active;
    struct fcgi_parser parser;
    struct fcgi_request *cur; /* request the record being parsed belongs to */
    struct fcgi_request *found; /* the last one find_request found: records come in runs */
    struct fcgi_request **reqs;
    unsigned nreqs, reqs_cap, handling; /* handling: requests in REQ_HANDLER */
    unsigned records;  /* records completed, so a read that completes none is no activity */
    uint8_t begin[8];  /* content of the BEGIN_REQUEST being read */
    struct buf rec;    /* content of a GET_VALUES record (released after it) */
    struct buf in;     /* input held back while the output is over its mark */
    size_t in_off;     /* where processing of in goes on */
    struct list_node resume_link; /* on the server's resume list while yielded */
    struct buf out;
    size_t out_off;   /* bytes of out already written */
    unsigned busy;    /* >0 while the read callback runs: defer flush and close */
    bool closing;     /* close once the output is flushed and no request is handled */
    bool peer_may_send; /* closing before the peer sent all it meant to (a refusal, a
                         * timeout): records may be on their way */
    bool dead;        /* close as soon as possible (after a last flush, if it can write) */
    bool broken;      /* the socket failed: nothing more can be written */
    bool paused;      /* reading stopped: too much unsent output, or yielded */
    bool yielded;     /* paused until the loop comes back to it (on_resume) */
    bool answer_due;  /* the last request dispatched answers from the loop */
    bool eof;         /* the peer will send nothing more */
    bool first_wait;  /* closing before its first record: waiting for it once */
    bool discarding;  /* answered and shut for writing: what the peer still sends is
                       * read and dropped until it closes (or LINGER_S without input) */
};

struct fcgi_server {
    struct ev_loop *loop;
    struct fcgi_server_config cfg;
    int listen_fd;
    bool listen_tcp; /* TCP, not a unix socket: TCP_NODELAY on each connection */
    ev_io accept_w;
    ev_timer accept_retry;
    ev_timer sweep;     /* idle connections and requests received too slowly */
    ev_timer deadline;
    ev_prepare log_flush;
    struct list_node conns;     /* struct fcgi_conn, oldest activity first */
    struct list_node receiving; /* struct fcgi_request being received, oldest BEGIN first */
    struct list_node timing;    /* struct fcgi_request not answered, oldest BEGIN first */
    ev_timer request_timer;     /* at the oldest one's request_timeout */
    struct list_node resume;    /* struct fcgi_conn that yielded (conn.c) */
    struct list_node resume_mark; /* where one pass over resume stops */
    ev_idle resume_w;           /* fed when resume gets its first entry */
    unsigned nconns;
    size_t buffered_bytes; /* request bodies held right now, all connections */
    size_t params_bytes;   /* request params held right now, all connections */
    size_t output_bytes;   /* answers not yet written, all connections */
    bool shutting_down;
    unsigned long dropped; /* requests unanswered at the shutdown deadline */
    void (*done)(void *arg);
    void *done_arg;
    struct buf access; /* access-log lines waiting for one write() */
    unsigned long access_dropped; /* lines dropped while stderr was full */
    struct fcgi_addr_list allowed; /* FCGI_WEB_SERVER_ADDRS (a copy) */
    struct log_limit refusal_log, budget_log, output_log, no_fds_log;
    struct fd_reserve reserve;  /* for refusing at the open-file limit (server.c) */
    double answer_clock;        /* the clock at the first answer of... */
    unsigned answer_iteration;  /* ...this loop iteration + 1 (0: none yet) */
    struct fcgi_request *spare;  /* requests kept for reuse (request.c), linked by user */
    unsigned nspare;
    struct buf_spares params_spares;
    struct buf out_spare;       /* an output buffer kept for the next connection (conn.c) */
    struct fcgi_stats own_stats;
    struct log_limit slow_log; /* its "N more slow requests" summary */
    double slow_window;        /* the second the slow-request log counts lines in */
    unsigned slow_in_window;
    struct fcgi_stats *stats; /* cfg.stats, or own_stats */
};

/* Counting into the server's stats (common/histogram.h's stat_add). */
#define STAT(s, field) stat_add(&(s)->stats->field, 1)
#define STAT_N(s, field, n) stat_add(&(s)->stats->field, (n))
#define STAT_DEC(s, field) stat_add(&(s)->stats->field, (uint64_t)-1)

/* conn.c */
void conn_accepted(struct fcgi_server *s, int fd);
void conn_destroy(struct fcgi_conn *c);
void conn_flush(struct fcgi_conn *c);
void conn_maybe_close(struct fcgi_conn *c);
void conn_touch(struct fcgi_conn *c);
/* Unsent output of c, and the accounting after appending to c->out. */
static inline size_t conn_unsent(const struct fcgi_conn *c)
{
    return c->out.len - c->out_off;
}
static inline void conn_out_grew(struct fcgi_conn *c, size_t before)
{
    c->srv->output_bytes += c->out.len - before;
}
/* Takes r off c's table (the connection's reference goes). */
void conn_detach_request(struct fcgi_conn *c, struct fcgi_request *r);
/* Answers whose bound (fcgi_response_bound, header room included) is no
 * more than this are never refused for want of room: the refusal, a
 * body of up to 256 bytes, would be as large. */
#define SMALL_ANSWER_BYTES (FCGI_HEAD_MAX + 256 + 64)
/* An answer whose body and extra headers together are at most this long
 * is within SMALL_ANSWER_BYTES, whatever its status: its header room, the
 * blank line, one STDOUT record header and the end (three) take the rest. */
#define SMALL_ANSWER_PAYLOAD (SMALL_ANSWER_BYTES - FCGI_HEAD_MAX - 2 - 4 * FCGI_HEADER_LEN - 8)
/* A connection without an output buffer takes the server's spare one (an
 * empty buffer when there is none). */
static inline void conn_take_spare_out(struct fcgi_conn *c)
{
    c->out = c->srv->out_spare;
    c->srv->out_spare = (struct buf){NULL, 0, 0};
}
/* conn_queue_response but for its common case (conn.c; c has taken the
 * spare output buffer already)... */
long conn_queue_checked(struct fcgi_conn *c, uint16_t id, struct fcgi_response *resp);
/* ...and for resp that could not be formatted; before: c->out.len before */
long conn_queue_failed(struct fcgi_conn *c, uint16_t id, struct fcgi_response *resp,
                       size_t before);
/*
 * Queues the answer for request id on c: swapped for a short 503 when c
 * or the process has too many unsent answers, for a bare 500 when memory
 * is short (resp->status says which went).  Returns the body bytes
 * queued, or -1 when not even that fitted (c is then closed).  Inline for
 * its common case, a small answer (which no limit refuses) on a
 * connection that has an output buffer: formatted at once, no frame of
 * its own around it.
 */
static inline long conn_queue_response(struct fcgi_conn *c, uint16_t id,
                                       struct fcgi_response *resp)
{
    size_t before;
    long sent;

    if (!c->out.data)
        conn_take_spare_out(c);
    if (resp->body_len + resp->extra_headers_len > SMALL_ANSWER_PAYLOAD)
        return conn_queue_checked(c, id, resp);
    before = c->out.len;
    sent = fcgi_format_response(&c->out, id, resp);
    if (sent < 0)
        return conn_queue_failed(c, id, resp, before);
    conn_out_grew(c, before);
    return sent;
}
/* The connection closes once what is in flight on it is done;
 * received_whole: the peer has sent all of what made it close (a request
 * without FCGI_KEEP_CONN answered by its handler), else what is still in
 * the socket is read first. */
void conn_close_when_done(struct fcgi_conn *c, bool received_whole);
/* The request timeout passed for r: answered 504 (conn.c). */
void conn_request_timed_out(struct fcgi_request *r);
/* The receive timeout passed for r: answered 408, its connection closed. */
void conn_request_too_slow(struct fcgi_request *r);

/* request.c */
/* A request in REQ_PARAMS; NULL when out of memory or of params budget. */
struct fcgi_request *request_new(struct fcgi_conn *c, uint16_t id, bool keep_conn);
/* Drops a reference to r; the last one frees it (request_free; inline:
 * every request drops three, and only the last has work). */
void request_free(struct fcgi_request *r);
static inline void request_unref(struct fcgi_request *r)
{
    if (--r->refs == 0)
        request_free(r);
}
/* The time of the answers made now: the clock read at the first answer
 * of this loop iteration, shared by all of them (a clock read per answer
 * cost more than formatting it). */
double request_answer_clock(struct fcgi_server *s);
/* Frees the spare requests and buffers (fcgi_server_free). */
void request_spares_free(struct fcgi_server *s);
/*
 * Makes room for `more` bytes in b, charging its capacity to *held
 * against budget, and to *charged, as it is allocated (the buffer grows
 * to at most `limit` when that is enough; a first allocation takes a
 * buffer of spares when it has one of that size; spares may be NULL).
 * False when the budget or the memory is short.  *charged is b's
 * capacity once anything is taken; a spare request's kept params buffer
 * (request.c) is charged whole at its first use.
 */
bool request_grow_charged_slow(struct buf *b, size_t more, size_t limit, size_t *held,
                               size_t budget, size_t *charged, struct buf_spares *spares);
static inline bool request_grow_charged(struct buf *b, size_t more, size_t limit, size_t *held,
                                        size_t budget, size_t *charged,
                                        struct buf_spares *spares)
{
    /* (inline for what most input is: it fits the buffer, which may be a
     * kept one not charged yet) */
    if (more <= b->cap - b->len) {
        size_t extra = b->cap - *charged;

        if (extra > 0) {
            if (*held + extra > budget)
                return false;
            *held += extra;
            *charged += extra;
        }
        return true;
    }
    return request_grow_charged_slow(b, more, limit, held, budget, charged, spares);
}
/* r's params are the len bytes at data, lent (fcgi_server_config.lend_params),
 * with the byte after them r's to write; its own empty buffer goes to the
 * server's spares (a lent request needs none). */
void request_lend_params(struct fcgi_request *r, uint8_t *data, size_t len);
/* Decodes r's params (request.c): 0, -1 for malformed pairs (*why says
 * which), -2 when the index (or the copy of lent params it needs) would
 * not fit the params budget. */
int request_decode_params(struct fcgi_request *r, const char **why);
/* Writes a complete answer for a request the handler does not hold. */
void request_answer(struct fcgi_request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Gives back the body and params memory and their budgets (early answers). */
void request_release_input(struct fcgi_request *r);
/* r is off the server's list of requests still being received (the
 * receive deadline; the list is in order of BEGIN_REQUEST: every request
 * has the same receive timeout, so the sweep looks only at its head). */
static inline void request_receiving_end(struct fcgi_request *r)
{
    if (list_linked(&r->receiving))
        list_remove(&r->receiving);
}
/* r is answered or gone: off the request_timeout list. */
static inline void request_timing_end(struct fcgi_request *r)
{
    if (list_linked(&r->timing))
        list_remove(&r->timing);
}
/* The server's request_timer: answers 504 to every request past it. */
void request_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* One backend operation a request waited for, for the slow-request log. */
struct backend_note {
    const char *what; /* borrowed: "redis", "weather", "marges redis" */
    double seconds;
};
#define BACKEND_NOTES_MAX 8

/* slow_log.c: logs r (answered with status after seconds) when it was
 * slower than --slow-request-ms. */
void slow_log_check(struct fcgi_server *s, const struct fcgi_request *r, int status,
                    double seconds);

/* access_log.c */
/* One line for r, answered status with bytes of body, seconds after its
 * BEGIN_REQUEST. */
void access_log_add(struct fcgi_server *s, const struct fcgi_request *r, int status,
                    size_t bytes, double seconds);
void access_log_flush(struct fcgi_server *s);

#endif
