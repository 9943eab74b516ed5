/*
 * tests/fuzz/fuzz_conn.c — libFuzzer target for a whole FastCGI connection:
 * the real connection state machine (fcgi/conn.c), requests
 * (fcgi/request.c), response formatting and the server around them, on a
 * real libev loop, in-process.
 *
 * Every input builds a fresh struct fcgi_server (fcgi_server_new on a
 * throwaway listening socket nobody connects to) and hands it one end of
 * a socketpair (conn_accepted), a second one when the input asks.  The
 * fuzzer plays the front server on the other ends, and a stub handler
 * (not the router: no backends) plays the application.
 *
 * Input layout:
 *   byte 0   limits: out_high_water (bits 0-2), max_reqs (bits 3-4),
 *            params/body/buffered budgets (bits 5-7)
 *   byte 1   bits 0-1: springfield's socket send buffer (small or not);
 *            bits 2-3: max_conn_output_bytes, bits 4-5: max_output_bytes,
 *            bit 6: a small max_buffered_params_bytes (the budgets whose
 *            refusals are 503s); bit 7: lend_params (the params of a
 *            request whole in one read lent to the handler, which keeps
 *            them, fcgi_request_keep_params, for an answer later when bit 3
 *            of its choice is clear, and leaves that to the engine else)
 *   byte 2   n, then n "choice" bytes: each call of the handler takes the
 *            next one (cyclically; none: answer at once, 200, small body).
 *            A choice is how (bits 0-2: at once, at once as an error, later
 *            from an ev_timer, later from an ev_idle after some loop
 *            iterations, held until an ANSWER command or the end, HEAD at
 *            once, answer the oldest held request first and then this one at
 *            once, at once with an invalid status) and how much (bits 3-5:
 *            0 .. 1 MiB, the big ones over the output high-water mark) and
 *            the status (bits 6-7).
 *   then     commands, one byte each (bit 7: which connection, bits 4-6:
 *            an argument, bits 0-3: the command) and their operands:
 *     0 DATA n      n+1 raw bytes from the input appended to the send queue
 *     1 REQUEST     3 operand bytes -> a well-formed request (BEGIN, PARAMS,
 *                   empty PARAMS, STDIN records, empty STDIN) with variants:
 *                   keep-conn, role, CONTENT_LENGTH right/wrong/absent/junk,
 *                   body size and pieces, padding, end of STDIN left out
 *     2 MGMT        1-2 operand bytes -> GET_VALUES, an unknown type,
 *                   ABORT_REQUEST, or a stray PARAMS/STDIN/DATA record
 *     3 PUSH n      one write() of up to (n+1) << (arg & 3) bytes of the
 *                   queue, then one loop iteration unless arg & 4: the
 *                   split points of the byte stream
 *     4 FLUSH       write the whole queue (as far as the socket takes it)
 *     5 RUN         arg+1 loop iterations (ev_run EVRUN_NOWAIT)
 *     6 READ        arg 0: stop reading springfield's output (back-pressure),
 *                   1: read it again, else: read once now
 *     7 SHUT        arg odd: shutdown(SHUT_WR) (EOF); even: close our end
 *     8 ANSWER      answer the arg-th held request now
 *     9 CONNECT     open the second connection
 *   A loop iteration is followed by reading what springfield wrote (while
 *   reading is on).  Other command numbers run one loop iteration.
 *
 * At the end every held request is answered, the loop is run until
 * nothing moves, the server is freed (fcgi_server_free) and LeakSanitizer
 * (libFuzzer's -detect_leaks) checks that nothing is left.
 *
 * Checked, abort() on violation, on everything springfield writes:
 *   - every record is version 1 and of a type an application sends
 *     (STDOUT, STDERR, END_REQUEST, GET_VALUES_RESULT, UNKNOWN_TYPE), with
 *     the request id 0 exactly for the management ones;
 *   - END_REQUEST (8 bytes, a known protocolStatus) only for a request id
 *     the peer has begun more often than it was ended: never for an id
 *     never begun, never twice for one request;
 *   - STDOUT only for an active id; an answered request is STDOUT with a
 *     complete CGI header block ("Status: NNN ..."), the empty STDOUT,
 *     then END_REQUEST (REQUEST_COMPLETE) — cut short only after the peer
 *     aborted it; a refusal (UNKNOWN_ROLE, OVERLOADED) comes without
 *     STDOUT;
 *   - the body matches Content-Length; for the handler's answers (marked
 *     with an X-Fuzz header) status, length and bytes are what it answered,
 *     HEAD answers carry no body, and no answer arrives twice;
 *   - GET_VALUES_RESULT holds well-formed name-value pairs;
 *   - while every connection is still open at the end (and no request was
 *     aborted), every answer the handler gave to a live request has
 *     arrived in full, or as a 503 in its place (an answer that would put
 *     too much unread output on the connection or the process is swapped
 *     for one: at least as many 503s without the handler's mark arrived as
 *     answers are missing);
 *   - after fcgi_server_free, springfield's ends are closed (EOF) and no
 *     watcher holding a loop reference is left (ev_run says so).
 * The handler checks what it is handed: the app and loop pointers, the
 * user pointer, a body no longer than the limit and as long as an
 * all-digits CONTENT_LENGTH says, params within their budget, fcgi_param
 * agreeing with fcgi_param_each.
 *
 * Not reached: anything that needs time to pass (the idle sweep, the
 * linger timer: the loop never waits), the graceful shutdown, allocation
 * failures.  FUZZ_CONN_TRACE=1 prints what happens (records, answers).
 *
 * Whether springfield closes the connection on a record for a request id
 * it does not know (or one already ended) or ignores it (FastCGI 1.0
 * §3.3) is not checked: both pass.
 *
 * Build: tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>
#include <fastcgi.h>

#include "fcgi/internal.h"
#include "common/log.h"
#include "fcgi/request.h"
#include "fcgi/response.h"
#include "fcgi/server.h"

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_conn: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#define MAX_PEERS 2
#define PATTERN_BYTES (1u << 20)
/* The handler's answers of one input add up to at most this many bytes
 * (bigger ones are cut to 100 bytes), so an input cannot take minutes. */
#define ANSWER_BUDGET (4u << 20)
/* The same for the bodies of generated requests (bigger ones are cut to
 * under 200 bytes): big bodies are worth having, thousands of them are
 * only slow. */
#define BODY_BUDGET (1u << 20)
#define HEAD_MAX 16384

static struct ev_loop *loop;
static bool trace; /* FUZZ_CONN_TRACE=1: say what happens, on stderr */
static uint8_t *pattern; /* the bytes every body (ours and the handler's) is cut from */
static int app_marker;

/* ---- a growable byte queue ---------------------------------------------- */

struct bytes {
    uint8_t *p;
    size_t len, off, cap;
};

static void bytes_put(struct bytes *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;

        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        CHECK(b->p != NULL);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- record framing (the spec's, written here independently) ------------ */

struct framer {
    uint8_t head[8];
    unsigned have;
    uint32_t content_left, padding_left;
    uint8_t content[65536];
    uint32_t content_len;
};

/* ---- what the handler answered ------------------------------------------ */

struct expect {
    int status;
    size_t len;       /* the body handed to fcgi_respond */
    bool head_only;
    bool error_shape; /* fcgi_respond_error: body not from the pattern */
    bool delivered;
};

static struct expect *expects;
static size_t nexpects, expects_cap;
/* Complete answers without the handler's X-Fuzz header and status 503:
 * springfield's own refusals, or a handler's answer it swapped for a 503
 * because too much output was unread (max_conn_output_bytes,
 * max_output_bytes). */
static size_t anonymous_503s;
static size_t answer_bytes; /* spent of ANSWER_BUDGET */
static size_t body_bytes;   /* spent of BODY_BUDGET */

/* ---- the peer (front server) side of a connection ---------------------- */

struct resp {
    char head[HEAD_MAX];
    size_t head_len;
    bool head_done;
    int status;
    long content_length; /* -1: absent */
    long serial;         /* X-Fuzz, -1: absent */
    size_t body;
};

struct idstate {
    uint32_t begins, ends;
    uint8_t stdout_state; /* 0 none, 1 STDOUT content seen, 2 empty STDOUT seen */
    bool aborted;         /* the peer sent ABORT_REQUEST since the last BEGIN */
    bool touched;
    struct resp *resp;
};

struct peer {
    int fd;         /* ours; -1 when closed by us or never opened */
    bool open;      /* connected once */
    bool shut_wr;
    bool closed;    /* we closed our end */
    bool eof;       /* springfield closed its end (or reset it) */
    bool reading;
    bool write_broken;
    struct bytes q; /* to send */
    struct framer sent, recv;
    struct idstate ids[65536];
    uint16_t *touched;
    size_t ntouched, touched_cap;
};

static struct peer peers[MAX_PEERS];
static struct fcgi_server *server;

static struct idstate *id_of(struct peer *p, uint16_t id)
{
    struct idstate *s = &p->ids[id];

    if (!s->touched) {
        if (p->ntouched == p->touched_cap) {
            p->touched_cap = p->touched_cap ? 2 * p->touched_cap : 64;
            p->touched = realloc(p->touched, p->touched_cap * sizeof *p->touched);
            CHECK(p->touched != NULL);
        }
        p->touched[p->ntouched++] = id;
        s->touched = true;
    }
    return s;
}

/* Feeds bytes to a framer; on_record(p, type, id, content, len) per record. */
static void frame(struct peer *p, struct framer *f, const uint8_t *d, size_t n,
                  void (*on_header)(struct peer *, const uint8_t *),
                  void (*on_record)(struct peer *, const uint8_t *, const uint8_t *, size_t))
{
    while (n > 0) {
        if (f->have < 8) {
            f->head[f->have++] = *d++;
            n--;
            if (f->have == 8) {
                f->content_left = (uint32_t)f->head[4] << 8 | f->head[5];
                f->padding_left = f->head[6];
                f->content_len = 0;
                if (on_header)
                    on_header(p, f->head);
            }
        } else if (f->content_left > 0) {
            size_t k = n < f->content_left ? n : f->content_left;

            if (on_record)
                memcpy(f->content + f->content_len, d, k);
            f->content_len += (uint32_t)k;
            f->content_left -= (uint32_t)k;
            d += k;
            n -= k;
        } else if (f->padding_left > 0) {
            size_t k = n < f->padding_left ? n : f->padding_left;

            f->padding_left -= (uint32_t)k;
            d += k;
            n -= k;
        }
        if (f->have == 8 && f->content_left == 0 && f->padding_left == 0) {
            if (on_record)
                on_record(p, f->head, f->content, f->content_len);
            f->have = 0;
        }
    }
}

/* What the peer sends: counts the BEGIN_REQUESTs per id (at the header,
 * whether or not springfield will take it: permissive on purpose). */
static bool any_abort; /* some peer sent an ABORT_REQUEST */

static void sent_header(struct peer *p, const uint8_t *h)
{
    struct idstate *s;

    if (h[1] != FCGI_BEGIN_REQUEST && h[1] != FCGI_ABORT_REQUEST)
        return;
    s = id_of(p, (uint16_t)(h[2] << 8 | h[3]));
    if (h[1] == FCGI_BEGIN_REQUEST) {
        s->begins++;
        s->aborted = false;
    } else {
        s->aborted = true;
        any_abort = true;
    }
}

/* ---- checking what springfield writes ---------------------------------- */

static long header_value(const struct resp *r, const char *name)
{
    size_t nl = strlen(name);
    const char *p = r->head, *end = r->head + r->head_len;

    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

        CHECK(eol != NULL);
        if ((size_t)(eol - p) > nl + 2 && !memcmp(p, name, nl) && p[nl] == ':' &&
            p[nl + 1] == ' ') {
            char num[24];
            size_t k = (size_t)(eol - p) - nl - 2;
            char *e;
            long v;

            CHECK(k > 0 && k < sizeof num);
            memcpy(num, p + nl + 2, k);
            num[k] = '\0';
            v = strtol(num, &e, 10);
            CHECK(*e == '\0' && v >= 0);
            return v;
        }
        p = eol + 2;
    }
    return -1;
}

static void resp_head_done(struct resp *r)
{
    CHECK(r->head_len >= 14 && !memcmp(r->head, "Status: ", 8));
    CHECK(r->head[8] >= '1' && r->head[8] <= '5' && r->head[9] >= '0' && r->head[9] <= '9' &&
          r->head[10] >= '0' && r->head[10] <= '9' && r->head[11] == ' ');
    r->status = (r->head[8] - '0') * 100 + (r->head[9] - '0') * 10 + (r->head[10] - '0');
    r->content_length = header_value(r, "Content-Length");
    r->serial = header_value(r, "X-Fuzz");
    if (r->serial >= 0)
        CHECK((size_t)r->serial < nexpects);
}

static void resp_feed(struct resp *r, const uint8_t *d, size_t n)
{
    while (n > 0 && !r->head_done) {
        CHECK(r->head_len < HEAD_MAX);
        r->head[r->head_len++] = (char)*d++;
        n--;
        if (r->head_len >= 4 && !memcmp(r->head + r->head_len - 4, "\r\n\r\n", 4)) {
            r->head_len -= 2; /* keep the last header's CRLF, drop the blank line */
            r->head_done = true;
            resp_head_done(r);
        }
    }
    if (n == 0)
        return;
    if (r->serial >= 0) {
        const struct expect *e = &expects[r->serial];

        CHECK(!e->head_only);
        CHECK(r->body + n <= e->len);
        if (!e->error_shape)
            CHECK(memcmp(d, pattern + r->body, n) == 0);
    }
    r->body += n;
}

static void resp_end(struct resp *r)
{
    CHECK(r->head_done);
    /* without the handler's mark: springfield's own answer, or the 503 it
     * put in place of the handler's, which for HEAD has no body either */
    if (r->content_length >= 0 && r->serial < 0)
        CHECK(r->body == (size_t)r->content_length || r->body == 0);
    if (r->serial < 0 && r->status == 503)
        anonymous_503s++;
    if (r->serial >= 0) {
        struct expect *e = &expects[r->serial];
        bool has_body = e->status >= 200 && e->status != 204 && e->status != 304;

        CHECK(!e->delivered);
        e->delivered = true;
        CHECK(r->status == e->status);
        CHECK(r->body == (has_body && !e->head_only ? e->len : 0));
        if (has_body)
            CHECK(r->content_length == (long)e->len);
        else
            CHECK(r->content_length == -1);
    }
}

static void check_pairs(const uint8_t *d, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        uint32_t len[2];

        for (int k = 0; k < 2; k++) {
            CHECK(pos < n);
            if (d[pos] & 0x80) {
                CHECK(n - pos >= 4);
                len[k] = ((uint32_t)(d[pos] & 0x7f) << 24) | (uint32_t)d[pos + 1] << 16 |
                         (uint32_t)d[pos + 2] << 8 | d[pos + 3];
                pos += 4;
            } else {
                len[k] = d[pos++];
            }
        }
        CHECK(len[0] + (size_t)len[1] <= n - pos);
        pos += len[0] + (size_t)len[1];
    }
}

static void recv_record(struct peer *p, const uint8_t *h, const uint8_t *c, size_t n)
{
    uint8_t type = h[1];
    uint16_t id = (uint16_t)(h[2] << 8 | h[3]);
    struct idstate *s;

    if (trace)
        fprintf(stderr, "  <- conn %d: type %u id %u, %zu bytes%s\n", (int)(p - peers), type, id,
                n, type == FCGI_END_REQUEST && n == 8 ? (c[4] ? ", refused" : ", complete") : "");
    CHECK(h[0] == FCGI_VERSION_1);
    switch (type) {
    case FCGI_GET_VALUES_RESULT:
        CHECK(id == 0);
        check_pairs(c, n);
        return;
    case FCGI_UNKNOWN_TYPE:
        CHECK(id == 0);
        CHECK(n == 8);
        /* never for a type the responder role knows */
        CHECK(c[0] != FCGI_BEGIN_REQUEST && c[0] != FCGI_ABORT_REQUEST && c[0] != FCGI_PARAMS &&
              c[0] != FCGI_STDIN && c[0] != FCGI_DATA && c[0] != FCGI_GET_VALUES);
        return;
    case FCGI_STDOUT:
    case FCGI_STDERR:
    case FCGI_END_REQUEST:
        break;
    default:
        CHECK(!"springfield wrote a record type an application does not send");
    }
    CHECK(id != 0);
    s = id_of(p, id);
    /* the request is active: begun more often than ended */
    CHECK(s->begins > s->ends);
    if (type == FCGI_STDERR)
        return;
    if (type == FCGI_STDOUT) {
        CHECK(s->stdout_state != 2); /* nothing after the end of the stream */
        if (n == 0) {
            CHECK(s->stdout_state == 1 && s->resp != NULL && s->resp->head_done);
            s->stdout_state = 2;
            return;
        }
        if (!s->resp) {
            s->resp = calloc(1, sizeof *s->resp);
            CHECK(s->resp != NULL);
        }
        s->stdout_state = 1;
        resp_feed(s->resp, c, n);
        return;
    }
    /* END_REQUEST */
    CHECK(n == 8);
    CHECK(c[4] <= FCGI_UNKNOWN_ROLE);
    CHECK(c[4] != FCGI_CANT_MPX_CONN); /* it multiplexes */
    /* STDOUT, then the empty STDOUT, then END; only an abort may cut an
     * answer short (§5.4 asks for END_REQUEST, not for the stream's end) */
    CHECK(s->stdout_state != 1 || (s->aborted && c[4] == FCGI_REQUEST_COMPLETE));
    if (s->stdout_state == 2) {
        CHECK(c[4] == FCGI_REQUEST_COMPLETE);
        resp_end(s->resp);
    }
    free(s->resp);
    s->resp = NULL;
    s->stdout_state = 0;
    s->ends++;
}

/* ---- the peer's socket ---------------------------------------------------- */

static size_t drain(struct peer *p)
{
    uint8_t buf[65536];
    size_t total = 0;

    if (p->fd < 0 || p->eof)
        return 0;
    for (;;) {
        ssize_t n = read(p->fd, buf, sizeof buf);

        if (n > 0) {
            frame(p, &p->recv, buf, (size_t)n, NULL, recv_record);
            total += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            p->eof = true; /* closed, or reset (ECONNRESET) */
        }
        if (n < 0 && errno == EINTR)
            continue;
        return total;
    }
}

/* Handler calls and answers so far: progress the peers cannot see. */
static unsigned long activity;

/* One loop iteration, then what springfield wrote is read.  Returns
 * whether anything moved: bytes read, the handler called or answering,
 * or springfield taking bytes we sent (SIOCOUTQ: bytes not yet read by
 * the other end). */
static bool pump(void)
{
    unsigned long before = activity;
    int unread[MAX_PEERS];
    bool moved = false;

    for (int i = 0; i < MAX_PEERS; i++)
        if (peers[i].fd < 0 || ioctl(peers[i].fd, SIOCOUTQ, &unread[i]) < 0)
            unread[i] = -1;
    ev_run(loop, EVRUN_NOWAIT);
    for (int i = 0; i < MAX_PEERS; i++) {
        int now;

        if (peers[i].reading && drain(&peers[i]) > 0)
            moved = true;
        if (peers[i].fd >= 0 && ioctl(peers[i].fd, SIOCOUTQ, &now) == 0 && now != unread[i])
            moved = true;
    }
    return moved || activity != before;
}

/* One write() of up to max bytes of the queue. */
static void push(struct peer *p, size_t max)
{
    size_t n = p->q.len - p->q.off;
    ssize_t w;

    if (p->fd < 0 || p->shut_wr || p->write_broken || n == 0)
        return;
    if (n > max)
        n = max;
    w = write(p->fd, p->q.p + p->q.off, n);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR)
            p->write_broken = true; /* EPIPE: springfield closed */
        return;
    }
    frame(p, &p->sent, p->q.p + p->q.off, (size_t)w, sent_header, NULL);
    p->q.off += (size_t)w;
    if (p->q.off == p->q.len)
        p->q.off = p->q.len = 0;
}

static void peer_open(struct peer *p, int sndbuf_choice)
{
    int sv[2];

    if (p->open)
        return;
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    if (sndbuf_choice) {
        int sz = sndbuf_choice == 1 ? 4096 : sndbuf_choice == 2 ? 16384 : 65536;

        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
    p->fd = sv[0];
    p->open = true;
    p->reading = true;
    conn_accepted(server, sv[1]);
}

/* ---- the stub handler ----------------------------------------------------- */

enum how { AT_ONCE, AT_ONCE_ERROR, LATER_TIMER, LATER_IDLE, HOLD, AT_ONCE_HEAD, OLDEST_FIRST,
           AT_ONCE_BAD_STATUS };

struct held {
    struct fcgi_request *r;
    struct held *prev, *next;
    ev_timer timer;
    ev_idle idle;
    int idle_left;
    int status;
    size_t len;
    bool error_shape;
    char *script; /* SCRIPT_NAME when the handler was called (NULL: none) */
};

static struct held *held_head, *held_tail;
static unsigned nheld;
static const uint8_t *choices;
static size_t nchoices, next_choice;
static struct fcgi_limits limits;

static const size_t answer_sizes[8] = {0, 1, 100, 4000, 65535, 70000, 300000, 1u << 20};
static const int statuses[4] = {200, 204, 404, 503};

static size_t budget_size(size_t want)
{
    if (answer_bytes + want > ANSWER_BUDGET)
        want = want > 100 ? 100 : want;
    answer_bytes += want;
    return want;
}

/* Answers r (and records what the checker must see, if it is live). */
static void answer(struct fcgi_request *r, int status, size_t len, bool error_shape, bool head)
{
    char serial[24];
    int st = status;

    if (status < 100 || status > 599)
        st = 500; /* what springfield sends instead (and without our header) */
    if (fcgi_request_alive(r) && st == status) {
        struct expect *e;

        if (nexpects == expects_cap) {
            expects_cap = expects_cap ? 2 * expects_cap : 64;
            expects = realloc(expects, expects_cap * sizeof *expects);
            CHECK(expects != NULL);
        }
        e = &expects[nexpects];
        memset(e, 0, sizeof *e);
        e->status = status;
        e->head_only = head;
        e->error_shape = error_shape;
        if (trace)
            fprintf(stderr, "  answer %zu: status %d, %zu bytes%s%s\n", nexpects, status, len,
                    head ? ", HEAD" : "", error_shape ? ", error shape" : "");
        snprintf(serial, sizeof serial, "%zu", nexpects++);
        CHECK(fcgi_response_header(r, "X-Fuzz", serial) == 0);
        if (error_shape) {
            /* the error shape is "<status> <reason>: <message>\n" */
            char msg[96];
            int n = snprintf(msg, sizeof msg, "%d %s: fuzz %zu\n", status,
                             fcgi_reason_phrase(status), len);

            e->len = (size_t)n;
        } else {
            e->len = len;
        }
    }
    if (head)
        fcgi_request_set_head_only(r, true);
    if (error_shape)
        fcgi_respond_error(r, status, "fuzz %zu", len);
    else
        fcgi_respond(r, status, len % 2 ? "text/plain" : NULL, pattern, len);
}

static void held_unlink(struct held *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        held_head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        held_tail = h->prev;
    nheld--;
}

static void held_answer(struct held *h)
{
    ev_timer_stop(loop, &h->timer);
    ev_idle_stop(loop, &h->idle);
    held_unlink(h);
    CHECK(fcgi_request_user(h->r) == h);
    activity++;
    /* its params are its own still, lent or not (unless springfield
     * answered it for want of room to keep them: then it is not alive) */
    if (fcgi_request_alive(h->r)) {
        const char *script = fcgi_param(h->r, "SCRIPT_NAME");

        CHECK(h->script ? script && !strcmp(script, h->script) : !script);
    }
    free(h->script);
    answer(h->r, h->status, h->len, h->error_shape, false);
    free(h);
}

static void on_timer(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)revents;
    held_answer((struct held *)((char *)w - offsetof(struct held, timer)));
}

static void on_idle(struct ev_loop *l, ev_idle *w, int revents)
{
    struct held *h = (struct held *)((char *)w - offsetof(struct held, idle));

    (void)l;
    (void)revents;
    if (--h->idle_left <= 0)
        held_answer(h);
}

static const char *const noted[5] = {"SCRIPT_NAME", "PATH_INFO", "REQUEST_METHOD",
                                     "REQUEST_URI", "HTTP_X_LONG"};

struct param_walk {
    size_t bytes;
    unsigned n;
    const struct fcgi_request *r;
    unsigned seen[5]; /* occurrences of the noted names */
    bool matched[5];  /* fcgi_param's value is one of them */
};

static void each_param(void *arg, const char *name, size_t name_len, const char *value)
{
    struct param_walk *w = arg;

    w->bytes += name_len + strlen(value) + 2;
    w->n++;
    for (int i = 0; i < 5; i++) {
        if (name_len == strlen(noted[i]) && !memcmp(name, noted[i], name_len)) {
            w->seen[i]++;
            if (fcgi_param(w->r, noted[i]) == value)
                w->matched[i] = true;
        }
    }
}

static void handler(struct fcgi_request *r)
{
    uint8_t ch = nchoices ? choices[next_choice++ % nchoices] : 0;
    enum how how = (enum how)(ch & 7);
    size_t len = budget_size(answer_sizes[(ch >> 3) & 7]);
    int status = statuses[ch >> 6];
    const char *cl = fcgi_param(r, "CONTENT_LENGTH");
    struct param_walk walk = {.r = r};
    size_t body_len;
    struct held *h;

    activity++;
    if (trace)
        fprintf(stderr, "  handler: how %d, status %d, %zu bytes, %zu body bytes in\n", how,
                status, len, fcgi_body(r, &body_len) ? body_len : 0);
    CHECK(fcgi_request_alive(r));
    CHECK(fcgi_request_app(r) == &app_marker);
    CHECK(fcgi_request_loop(r) == loop);
    CHECK(fcgi_request_user(r) == NULL);
    (void)fcgi_body(r, &body_len);
    CHECK(body_len <= limits.max_body_bytes);
    if (cl && *cl && strlen(cl) < 19 && strspn(cl, "0123456789") == strlen(cl))
        CHECK(body_len == (size_t)strtoull(cl, NULL, 10));
    fcgi_param_each(r, each_param, &walk);
    CHECK(walk.bytes <= limits.max_params_bytes);
    /* fcgi_param gives one of the values sent under that name (which one,
     * for a name sent twice, is not promised), NULL for a name not sent */
    for (int i = 0; i < 5; i++)
        CHECK(walk.seen[i] ? walk.matched[i] : fcgi_param(r, noted[i]) == NULL);

    switch (how) {
    case AT_ONCE:
        answer(r, status, len, false, false);
        return;
    case AT_ONCE_ERROR:
        answer(r, status, len, true, false);
        return;
    case AT_ONCE_HEAD:
        answer(r, status, len, false, true);
        return;
    case AT_ONCE_BAD_STATUS:
        /* rare (springfield logs each at error level): the 500 fallback */
        if ((ch & 0xc0) == 0xc0)
            answer(r, ch & 0x20 ? 99 : 600, len, false, false);
        else
            answer(r, status, len, false, false);
        return;
    case OLDEST_FIRST:
        if (held_head)
            held_answer(held_head); /* re-entrant: another request, from this handler */
        answer(r, status, len, false, false);
        return;
    case LATER_TIMER:
    case LATER_IDLE:
    case HOLD:
        break;
    }
    if (!(ch & 0x08) && fcgi_request_keep_params(r) < 0) {
        answer(r, 503, len, false, false); /* as the router does */
        return;
    }
    h = calloc(1, sizeof *h);
    CHECK(h != NULL);
    h->r = r;
    if (fcgi_param(r, "SCRIPT_NAME")) {
        h->script = strdup(fcgi_param(r, "SCRIPT_NAME"));
        CHECK(h->script != NULL);
    }
    h->status = status;
    h->len = len;
    h->error_shape = (ch & 0x20) != 0 && how == HOLD;
    ev_timer_init(&h->timer, on_timer, 0., 0.);
    ev_idle_init(&h->idle, on_idle);
    h->prev = held_tail;
    if (held_tail)
        held_tail->next = h;
    else
        held_head = h;
    held_tail = h;
    nheld++;
    fcgi_request_set_user(r, h);
    if (how == LATER_TIMER) {
        ev_timer_start(loop, &h->timer);
    } else if (how == LATER_IDLE) {
        h->idle_left = 1 + (ch >> 3 & 7);
        ev_idle_start(loop, &h->idle);
    }
}

/* ---- building records ------------------------------------------------------ */

static void put_record(struct bytes *q, uint8_t type, uint16_t id, const void *content,
                       size_t len, uint8_t padding)
{
    uint8_t h[8] = {FCGI_VERSION_1, type, (uint8_t)(id >> 8), (uint8_t)id,
                    (uint8_t)(len >> 8), (uint8_t)len, padding, 0};
    static const uint8_t zeros[256];

    bytes_put(q, h, 8);
    if (len)
        bytes_put(q, content, len);
    if (padding)
        bytes_put(q, zeros, padding);
}

static size_t put_pair(uint8_t *out, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), n = 0;

    out[n++] = (uint8_t)nl; /* names and values here are under 128 bytes */
    out[n++] = (uint8_t)vl;
    memcpy(out + n, name, nl);
    n += nl;
    memcpy(out + n, value, vl);
    return n + vl;
}

static uint16_t pick_id(uint8_t b)
{
    return b & 0x80 ? (uint16_t)(b << 8 | b) : (uint16_t)(1 + (b & 7));
}

/* A request: operands id, flags, size. */
static void build_request(struct bytes *q, uint8_t idb, uint8_t f, uint8_t s)
{
    static const char *const methods[4] = {"GET", "HEAD", "POST", "PUT"};
    uint16_t id = pick_id(idb);
    size_t body = s < 200 ? s : (size_t)(s - 200) * 4096 + 1;
    uint8_t begin[8] = {0, FCGI_RESPONDER, f & 1, 0, 0, 0, 0, 0};
    uint8_t params[600];
    size_t n = 0;
    uint8_t pad = f & 0x80 ? (uint8_t)(s % 8) : 0;
    char cl[32];

    if (body_bytes + body > BODY_BUDGET)
        body %= 200;
    body_bytes += body;

    if ((f >> 1 & 3) == 3)
        begin[1] = s & 1 ? FCGI_AUTHORIZER : 77;
    put_record(q, FCGI_BEGIN_REQUEST, id, begin, 8, pad);
    n += put_pair(params + n, "REQUEST_METHOD", methods[idb >> 3 & 3]);
    n += put_pair(params + n, "SCRIPT_NAME", "/api/v1/flanders");
    switch (f >> 3 & 3) {
    case 1:
        snprintf(cl, sizeof cl, "%zu", body);
        n += put_pair(params + n, "CONTENT_LENGTH", cl);
        break;
    case 2:
        snprintf(cl, sizeof cl, "%zu", body + 1 + (s & 3));
        n += put_pair(params + n, "CONTENT_LENGTH", cl);
        break;
    case 3:
        n += put_pair(params + n, "CONTENT_LENGTH", s & 1 ? "junk" : "");
        break;
    default:
        break;
    }
    if (idb & 0x40)
        n += put_pair(params + n, "HTTP_X_LONG",
                      "0123456789012345678901234567890123456789012345678901234567890123456789"
                      "012345678901234567890123456789012345678901234567");
    /* the params in two records when the flag says so */
    if (f & 0x20 && n > 1) {
        put_record(q, FCGI_PARAMS, id, params, n / 2, pad);
        put_record(q, FCGI_PARAMS, id, params + n / 2, n - n / 2, 0);
    } else {
        put_record(q, FCGI_PARAMS, id, params, n, pad);
    }
    put_record(q, FCGI_PARAMS, id, NULL, 0, 0);
    {
        size_t piece = f & 0x20 ? 1 + s % 700 : 65535, off = 0;

        while (off < body) {
            size_t k = body - off < piece ? body - off : piece;

            put_record(q, FCGI_STDIN, id, pattern + off, k, pad);
            off += k;
        }
    }
    if (!(f & 0x40))
        put_record(q, FCGI_STDIN, id, NULL, 0, 0);
}

/* A management or stray record: operand m (and an id byte for some). */
static void build_mgmt(struct bytes *q, uint8_t m, uint8_t idb)
{
    uint8_t c[128];
    size_t n = 0;

    switch (m & 3) {
    case 0:
        n += put_pair(c + n, FCGI_MAX_CONNS, "");
        if (m & 4)
            n += put_pair(c + n, FCGI_MAX_REQS, "");
        if (m & 8)
            n += put_pair(c + n, FCGI_MPXS_CONNS, "");
        if (m & 16)
            n += put_pair(c + n, "SOMETHING_ELSE", "x");
        put_record(q, FCGI_GET_VALUES, 0, c, n, 0);
        break;
    case 1:
        memset(c, (int)m, 5);
        put_record(q, (uint8_t)(12 + (m >> 2)), 0, c, m & 4 ? 5 : 0, 0);
        break;
    case 2:
        put_record(q, FCGI_ABORT_REQUEST, pick_id(idb), NULL, 0, 0);
        break;
    default: {
        static const uint8_t types[4] = {FCGI_PARAMS, FCGI_STDIN, FCGI_DATA, FCGI_PARAMS};

        put_record(q, types[m >> 2 & 3], pick_id(idb), pattern, m >> 4, 0);
        break;
    }
    }
}

/* ---- one input --------------------------------------------------------------- */

static void reset_peer(struct peer *p)
{
    for (size_t i = 0; i < p->ntouched; i++) {
        struct idstate *s = &p->ids[p->touched[i]];

        free(s->resp);
        memset(s, 0, sizeof *s);
    }
    p->ntouched = 0;
    bytes_free(&p->q);
    memset(&p->sent, 0, offsetof(struct framer, content));
    memset(&p->recv, 0, offsetof(struct framer, content));
    p->fd = -1;
    p->open = p->shut_wr = p->closed = p->eof = p->reading = p->write_broken = false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN); /* as main.c: a peer gone is an EPIPE, not a signal */
    trace = getenv("FUZZ_CONN_TRACE") && *getenv("FUZZ_CONN_TRACE") == '1';
    sf_log_set_level(SF_LOG_ERROR); /* protocol errors are the daily bread here */
    loop = ev_loop_new(EVFLAG_AUTO);
    CHECK(loop != NULL);
    pattern = malloc(PATTERN_BYTES);
    CHECK(pattern != NULL);
    for (size_t i = 0; i < PATTERN_BYTES; i++)
        pattern[i] = (uint8_t)(i * 7 + (i >> 8));
    for (int i = 0; i < MAX_PEERS; i++)
        peers[i].fd = -1;
    return 0;
}

static int listening_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};

    CHECK(fd >= 0);
    /* an address length of just the family: the kernel picks an abstract
     * name, so nothing appears in the file system */
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(sa_family_t)) == 0);
    CHECK(listen(fd, 1) == 0);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t high_waters[8] = {256 * 1024, 1, 64, 1000, 8192, 65536, 200000,
                                          1u << 20};
    static const unsigned max_reqs[4] = {128, 1, 2, 3};
    struct fcgi_server_config cfg;
    size_t pos = 3;
    bool all_open;

    if (size < 3)
        return 0;
    memset(&cfg, 0, sizeof cfg);
    fcgi_limits_default(&cfg.limits);
    cfg.limits.out_high_water = high_waters[data[0] & 7];
    cfg.limits.max_reqs = max_reqs[data[0] >> 3 & 3];
    switch (data[0] >> 5) {
    case 1: cfg.limits.max_params_bytes = 64; break;
    case 2: cfg.limits.max_body_bytes = 100; break;
    case 3: cfg.limits.max_buffered_bytes = 300; break;
    case 4: cfg.limits.max_body_bytes = 0; break;
    case 5: cfg.limits.max_buffered_bytes = 70000; cfg.limits.max_params_bytes = 200; break;
    default: break;
    }
    {
        static const size_t conn_out[4] = {0, 600, 70000, 1u << 20};
        static const size_t all_out[4] = {0, 1000, 100000, 2u << 20};

        if (data[1] >> 2 & 3)
            cfg.limits.max_conn_output_bytes = conn_out[data[1] >> 2 & 3];
        if (data[1] >> 4 & 3)
            cfg.limits.max_output_bytes = all_out[data[1] >> 4 & 3];
        if (data[1] & 0x40)
            cfg.limits.max_buffered_params_bytes = 2000;
        cfg.lend_params = data[1] & 0x80;
    }
    cfg.handler = handler;
    cfg.app = &app_marker;
    cfg.access_log = false;
    limits = cfg.limits;
    nchoices = data[2];
    if (nchoices > size - pos)
        nchoices = size - pos;
    choices = data + pos;
    pos += nchoices;
    next_choice = 0;
    nexpects = 0;
    answer_bytes = 0;
    body_bytes = 0;
    any_abort = false;
    anonymous_503s = 0;

    server = fcgi_server_new(loop, listening_socket(), &cfg);
    CHECK(server != NULL);
    peer_open(&peers[0], data[1] & 3);

    while (pos < size) {
        uint8_t c = data[pos++];
        struct peer *p = &peers[c >> 7];
        unsigned arg = c >> 4 & 7;

        if (!p->open && (c & 15) != 9)
            p = &peers[0];
        switch (c & 15) {
        case 0: {
            size_t n = pos < size ? (size_t)data[pos++] + 1 : 0;

            if (n > size - pos)
                n = size - pos;
            bytes_put(&p->q, data + pos, n);
            pos += n;
            break;
        }
        case 1:
            if (size - pos < 3) {
                pos = size;
                break;
            }
            build_request(&p->q, data[pos], data[pos + 1], data[pos + 2]);
            pos += 3;
            break;
        case 2: {
            uint8_t m = pos < size ? data[pos++] : 0;
            uint8_t idb = (m & 3) >= 2 && pos < size ? data[pos++] : 0;

            build_mgmt(&p->q, m, idb);
            break;
        }
        case 3: {
            size_t n = pos < size ? (size_t)data[pos++] + 1 : 1;

            push(p, n << (arg & 3));
            if (!(arg & 4))
                pump();
            break;
        }
        case 4:
            for (int k = 0; k < 1000 && p->q.len > p->q.off && !p->write_broken && p->fd >= 0 &&
                            !p->shut_wr;
                 k++) {
                size_t before = p->q.off;

                push(p, SIZE_MAX);
                pump();
                if (p->q.off == before && p->q.len != 0 && !pump())
                    break; /* springfield is not reading: back-pressure */
            }
            break;
        case 5:
            for (unsigned i = 0; i <= arg; i++)
                pump();
            break;
        case 6:
            if (arg == 0)
                p->reading = false;
            else if (arg == 1)
                p->reading = true;
            else
                drain(p);
            break;
        case 7:
            if (p->fd < 0)
                break;
            if (arg & 1) {
                if (!p->shut_wr) {
                    shutdown(p->fd, SHUT_WR);
                    p->shut_wr = true;
                }
            } else {
                close(p->fd);
                p->fd = -1;
                p->closed = true;
            }
            pump();
            break;
        case 8: {
            struct held *h = held_head;

            for (unsigned i = 0; h && i < arg; i++)
                h = h->next;
            if (h)
                held_answer(h);
            pump();
            break;
        }
        case 9:
            peer_open(&peers[1], data[1] & 3);
            break;
        default:
            pump();
            break;
        }
    }

    /* The end: every held request is answered, and the loop runs until
     * nothing moves any more. */
    for (int i = 0; i < MAX_PEERS; i++)
        peers[i].reading = true;
    for (int quiet = 0, rounds = 0; quiet < 3 && rounds < 10000; rounds++) {
        bool answered = held_head != NULL;

        /* held input may bring more requests while the output drains */
        while (held_head)
            held_answer(held_head);
        quiet = pump() || answered ? 0 : quiet + 1;
    }
    while (held_head) /* only if the rounds ran out */
        held_answer(held_head);

    all_open = true;
    for (int i = 0; i < MAX_PEERS; i++)
        if (peers[i].open && (peers[i].closed || peers[i].eof || peers[i].shut_wr ||
                              peers[i].write_broken))
            all_open = false;
    if (trace)
        fprintf(stderr, "  end: %zu answer(s) to live requests, connections %s\n", nexpects,
                all_open ? "all open: every answer must have arrived" : "not all open");
    if (all_open && !any_abort) { /* an abort may overtake an answer on its way */
        size_t missing = 0;

        for (size_t i = 0; i < nexpects; i++)
            missing += !expects[i].delivered;
        /* each one that did not arrive as given was swapped for a 503 */
        CHECK(missing <= anonymous_503s);
    }

    fcgi_server_free(server);
    server = NULL;
    for (int i = 0; i < MAX_PEERS; i++) {
        struct peer *p = &peers[i];

        if (p->fd >= 0) {
            /* springfield's end is closed: what is left, then EOF */
            for (int k = 0; k < 1000 && !p->eof; k++)
                drain(p);
            CHECK(p->eof);
            close(p->fd);
        }
        reset_peer(p);
    }
    /* ev_run returns whether watchers holding a reference are left */
    CHECK(ev_run(loop, EVRUN_NOWAIT) == 0);
    CHECK(nheld == 0);
    return 0;
}
