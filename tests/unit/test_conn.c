/*
 * tests/unit/test_conn.c — the connection state machine (fcgi/conn.c)
 * driven over a socketpair by a stub handler, with no front server.
 *
 * The peer side writes records made with the codec and reads what comes
 * back with the codec's parser; the loop runs in small steps between.  The
 * stub handler's behaviour is chosen by SCRIPT_NAME:
 *   /now          answers 200 "hi" at once
 *   /later        is kept; the test answers it (answer_later) when it likes
 *   /big          answers 200 with BIG_BYTES at once
 *   /later-big    is kept, answered later with BIG_BYTES
 *   /header       tries headers with CR, LF and bad names, then answers
 *   /keep         keeps its params (fcgi_request_keep_params), then is kept
 *                 as /later is, or answers 503 when they cannot be kept
 * With lend (the server's lend_params), a request that comes whole in one
 * read reaches the handler with its params lent: lent_at_entry counts those.
 */
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>

#include "fcgi/codec.h"
#include "fcgi/internal.h"
#include "fcgi/request.h"
#include "fcgi/server.h"

#define BIG_BYTES (100 * 1024)
#define MAX_KEPT 256

static struct ev_loop *loop;
static struct fcgi_server *srv;
static int peer = -1;       /* the front server's end of the socketpair */
static struct fcgi_request *kept[MAX_KEPT];
static unsigned nkept;
static int header_results[4];
static unsigned handled;
static char big[BIG_BYTES];
static bool lend;
static unsigned lent_at_entry;

/* --- the stub handler ----------------------------------------------------- */

static void handler(struct fcgi_request *r)
{
    const char *path = fcgi_param(r, "SCRIPT_NAME");

    handled++;
    lent_at_entry += r->params_lent;
    if (!path)
        path = "";
    if (!strcmp(path, "/keep") && fcgi_request_keep_params(r) < 0) {
        fcgi_respond_error(r, 503, "busy: no room to keep the params");
    } else if (!strcmp(path, "/now")) {
        fcgi_respond(r, 200, FCGI_TEXT_PLAIN, "hi", 2);
    } else if (!strcmp(path, "/big")) {
        fcgi_respond(r, 200, FCGI_TEXT_PLAIN, big, sizeof big);
    } else if (!strcmp(path, "/header")) {
        header_results[0] = fcgi_response_header(r, "X-Ok", "fine\tvalue");
        header_results[1] = fcgi_response_header(r, "X-Split", "a\r\nSet-Cookie: evil=1");
        header_results[2] = fcgi_response_header(r, "X-Bad:Name", "v");
        header_results[3] = fcgi_response_header(r, "X-Lf", "a\nb");
        fcgi_respond(r, 200, FCGI_TEXT_PLAIN, "h", 1);
    } else if (nkept < MAX_KEPT) {
        kept[nkept++] = r; /* /later, /later-big */
    } else {
        fcgi_respond_error(r, 500, "test keeps too many requests");
    }
}

/* Answers the oldest kept request (big or small). */
static void answer_later(void)
{
    struct fcgi_request *r = kept[0];
    const char *path = fcgi_param(r, "SCRIPT_NAME");

    memmove(kept, kept + 1, --nkept * sizeof kept[0]);
    if (path && !strcmp(path, "/later-big"))
        fcgi_respond(r, 200, FCGI_TEXT_PLAIN, big, sizeof big);
    else
        fcgi_respond(r, 200, FCGI_TEXT_PLAIN, "late", 4);
}

/* --- set-up --------------------------------------------------------------- */

static int listening_socket(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    /* an abstract address: nothing on disk */
    snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "sf-test-conn-%d", (int)getpid());
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CU_ASSERT_FATAL(listen(fd, 4) == 0);
    return fd;
}

static void start(const struct fcgi_limits *limits)
{
    struct fcgi_server_config cfg = {.handler = handler, .lend_params = lend};
    int sv[2];

    if (limits)
        cfg.limits = *limits;
    else
        fcgi_limits_default(&cfg.limits);
    loop = ev_loop_new(EVFLAG_AUTO);
    CU_ASSERT_FATAL(loop != NULL);
    srv = fcgi_server_new(loop, listening_socket(), &cfg);
    CU_ASSERT_FATAL(srv != NULL);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    conn_accepted(srv, sv[0]);
    peer = sv[1];
    nkept = 0;
    handled = 0;
    lent_at_entry = 0;
}

static void stop(void)
{
    while (nkept)
        answer_later(); /* the handler's promise: every request answered once */
    fcgi_server_free(srv);
    ev_loop_destroy(loop);
    if (peer >= 0)
        close(peer);
    peer = -1;
}

/* Runs the loop until nothing is left to do right now. */
static void spin(void)
{
    for (int i = 0; i < 50; i++)
        ev_run(loop, EVRUN_NOWAIT);
}

/* --- the peer's side ------------------------------------------------------ */

static void send_bytes(const void *p, size_t n)
{
    const char *b = p;

    while (n > 0) {
        ssize_t k = write(peer, b, n);

        if (k < 0 && errno == EAGAIN) {
            spin();
            continue;
        }
        CU_ASSERT_FATAL(k > 0);
        b += k;
        n -= (size_t)k;
    }
}

static void send_record(uint8_t type, uint16_t id, const void *content, size_t len)
{
    uint8_t h[FCGI_HEADER_LEN];

    fcgi_header_encode(h, type, id, (uint16_t)len, 0);
    send_bytes(h, sizeof h);
    if (len)
        send_bytes(content, len);
}

static void send_begin(uint16_t id, unsigned role, bool keep)
{
    uint8_t b[8] = {(uint8_t)(role >> 8), (uint8_t)role, keep ? FCGI_KEEP_CONN : 0};

    send_record(FCGI_BEGIN_REQUEST, id, b, sizeof b);
}

/* PARAMS for a request to path with a body of body_len announced. */
static void send_params(uint16_t id, const char *path, long content_length)
{
    uint8_t p[512];
    size_t n = 0;
    char cl[32];

    n += fcgi_nv_encode(p + n, "REQUEST_METHOD", 14, "GET", 3);
    n += fcgi_nv_encode(p + n, "SCRIPT_NAME", 11, path, strlen(path));
    if (content_length >= 0) {
        snprintf(cl, sizeof cl, "%ld", content_length);
        n += fcgi_nv_encode(p + n, "CONTENT_LENGTH", 14, cl, strlen(cl));
    }
    send_record(FCGI_PARAMS, id, p, n);
    send_record(FCGI_PARAMS, id, NULL, 0);
}

static void send_request(uint16_t id, const char *path, bool keep)
{
    send_begin(id, FCGI_RESPONDER, keep);
    send_params(id, path, -1);
    send_record(FCGI_STDIN, id, NULL, 0);
}

/* What came back, per request id. */
struct answers {
    struct fcgi_parser parser;
    unsigned ended[65536 / 32];
    uint8_t protocol_status[65536];
    size_t stdout_bytes[65536];
    unsigned nended;
    bool eof;
    char first_stdout[65536][16]; /* "Status: 200 OK\r\n" and more */
};

static struct answers *ans;

static bool ended(uint16_t id)
{
    return ans->ended[id / 32] >> (id % 32) & 1;
}

/* Reads what the socket holds now (non-blocking); true if something came. */
static bool read_some(void)
{
    static uint8_t buf[65536];
    static uint8_t content[65536];
    static size_t content_len;
    ssize_t n = read(peer, buf, sizeof buf);
    const uint8_t *p = buf;
    size_t len;
    struct fcgi_event ev;

    if (n == 0) {
        ans->eof = true;
        return false;
    }
    if (n < 0)
        return false;
    len = (size_t)n;
    for (;;) {
        enum fcgi_event_kind k = fcgi_parser_next(&ans->parser, &p, &len, &ev);
        const struct fcgi_record *rec = &ans->parser.record;

        if (k == FCGI_EV_NEED_MORE)
            break;
        CU_ASSERT_FATAL(k != FCGI_EV_ERROR);
        if (k == FCGI_EV_HEADER) {
            content_len = 0;
        } else if (k == FCGI_EV_CONTENT) {
            memcpy(content + content_len, ev.data, ev.len);
            content_len += ev.len;
            if (rec->type == FCGI_STDOUT) {
                if (ans->stdout_bytes[rec->request_id] == 0)
                    memcpy(ans->first_stdout[rec->request_id], ev.data,
                           ev.len < sizeof ans->first_stdout[0] ? ev.len : sizeof ans->first_stdout[0]);
                ans->stdout_bytes[rec->request_id] += ev.len;
            }
        } else if (k == FCGI_EV_END && rec->type == FCGI_END_REQUEST) {
            CU_ASSERT(!ended(rec->request_id)); /* END_REQUEST once per request */
            ans->ended[rec->request_id / 32] |= 1u << (rec->request_id % 32);
            ans->protocol_status[rec->request_id] = content[4];
            ans->nended++;
        }
    }
    return true;
}

/* Spins the loop and reads until `count` requests have ended (or 2 s). */
static void read_until(unsigned count)
{
    for (int i = 0; i < 2000 && ans->nended < count && !ans->eof; i++) {
        spin();
        if (!read_some())
            usleep(1000);
    }
}

static void reset_answers(void)
{
    memset(ans, 0, sizeof *ans);
    fcgi_parser_init(&ans->parser);
}

static bool peer_closed(void)
{
    for (int i = 0; i < 200 && !ans->eof; i++) {
        spin();
        if (!read_some())
            usleep(1000);
    }
    return ans->eof;
}

/* The one connection of the server. */
static struct fcgi_conn *the_conn(void)
{
    return list_first(&srv->conns, struct fcgi_conn, link);
}

/* Contains "Status: 503" at the start of the answer of id? */
static bool answered_503(uint16_t id)
{
    return !memcmp(ans->first_stdout[id], "Status: 503", 11);
}

/* --- tests ---------------------------------------------------------------- */

/* Pipelined requests whose answers are big and nobody reads: the
 * connection stops reading at its mark, and every answer comes once read. */
static void test_back_pressure(void)
{
    unsigned i, n = 40;

    start(NULL);
    reset_answers();
    for (i = 1; i <= n; i++)
        send_request((uint16_t)i, "/big", true);
    spin();
    CU_ASSERT(the_conn()->paused);
    CU_ASSERT(conn_unsent(the_conn()) <= srv->cfg.limits.out_high_water + BIG_BYTES + 1024);
    CU_ASSERT(handled < n); /* the rest waits in the held input */
    read_until(n);
    CU_ASSERT_EQUAL(ans->nended, n);
    for (i = 1; i <= n; i++)
        CU_ASSERT(ans->stdout_bytes[i] > BIG_BYTES);
    CU_ASSERT_EQUAL(srv->output_bytes, 0);
    stop();
}

/* Late answers that would pass --max-conn-output-bytes become 503s. */
static void test_late_answers_have_a_budget(void)
{
    struct fcgi_limits lim;
    unsigned i, n = 30, big_ok = 0, busy = 0;

    fcgi_limits_default(&lim);
    lim.max_conn_output_bytes = 5 * BIG_BYTES;
    start(&lim);
    reset_answers();
    for (i = 1; i <= n; i++)
        send_request((uint16_t)i, "/later-big", true);
    spin();
    CU_ASSERT_EQUAL(nkept, n);
    while (nkept)
        answer_later(); /* nobody reads meanwhile */
    CU_ASSERT(conn_unsent(the_conn()) <= lim.max_conn_output_bytes + BIG_BYTES + 1024);
    read_until(n);
    for (i = 1; i <= n; i++) {
        if (ans->stdout_bytes[i] > BIG_BYTES)
            big_ok++;
        else if (answered_503((uint16_t)i))
            busy++;
    }
    CU_ASSERT_EQUAL(big_ok + busy, n);
    CU_ASSERT(big_ok >= 5 && busy > 0);
    stop();
}

/* Past --max-conn-output-bytes, a small answer still goes: its 503 would
 * be as large. */
static void test_small_late_answers_are_not_refused(void)
{
    struct fcgi_limits lim;
    unsigned i, nbig = 10, n = 20, small_ok = 0;

    fcgi_limits_default(&lim);
    lim.max_conn_output_bytes = 1000; /* once the socket is full, any big answer is over it */
    start(&lim);
    reset_answers();
    for (i = 1; i <= n; i++)
        send_request((uint16_t)i, i <= nbig ? "/later-big" : "/later", true);
    spin();
    CU_ASSERT_EQUAL(nkept, n);
    while (nkept)
        answer_later(); /* nobody reads meanwhile: the big ones fill the socket */
    read_until(n);
    for (i = nbig + 1; i <= n; i++)
        small_ok += !memcmp(ans->first_stdout[i], "Status: 200", 11);
    CU_ASSERT_EQUAL(small_ok, n - nbig);
    stop();
}

/* An early answer (413 from CONTENT_LENGTH) without KEEP_CONN: the
 * connection stays while the body still arrives, and closes after it. */
static void test_linger_after_an_early_answer(void)
{
    struct fcgi_limits lim;
    char chunk[1000];

    fcgi_limits_default(&lim);
    lim.max_body_bytes = 100;
    start(&lim);
    reset_answers();
    memset(chunk, 'b', sizeof chunk);
    send_begin(1, FCGI_RESPONDER, false);
    send_params(1, "/now", 5000);
    read_until(1);
    CU_ASSERT(ended(1));
    CU_ASSERT(!memcmp(ans->first_stdout[1], "Status: 413", 11));
    for (int i = 0; i < 5; i++)
        send_record(FCGI_STDIN, 1, chunk, sizeof chunk);
    spin();
    CU_ASSERT(!peer_closed() || !"closed while the body was still arriving");
    CU_ASSERT_EQUAL(srv->buffered_bytes, 0); /* nothing of the body is held */
    send_record(FCGI_STDIN, 1, NULL, 0);
    CU_ASSERT(peer_closed());
    stop();
}

/* Shutdown with a request still in the handler: the server waits for its
 * answer, then is done, and nothing is dropped. */
static bool drained;

static void on_drained(void *arg)
{
    (void)arg;
    drained = true;
}

static void test_drain_at_shutdown(void)
{
    start(NULL);
    reset_answers();
    drained = false;
    send_request(1, "/later", true);
    spin();
    CU_ASSERT_EQUAL(nkept, 1);
    fcgi_server_shutdown(srv, 30, on_drained, NULL);
    spin();
    CU_ASSERT(!drained);
    answer_later();
    read_until(1);
    CU_ASSERT(ended(1) && ans->stdout_bytes[1] > 0);
    spin();
    CU_ASSERT(drained);
    CU_ASSERT_EQUAL(fcgi_server_dropped(srv), 0);
    stop();
}

/* ABORT_REQUEST ends a request at once; its late answer is dropped, and
 * the id can be used again. */
static void test_abort_then_late_answer(void)
{
    start(NULL);
    reset_answers();
    send_request(7, "/later", true);
    spin();
    CU_ASSERT_EQUAL(nkept, 1);
    send_record(FCGI_ABORT_REQUEST, 7, NULL, 0);
    read_until(1);
    CU_ASSERT(ended(7));
    CU_ASSERT_EQUAL(ans->stdout_bytes[7], 0);
    CU_ASSERT(!fcgi_request_alive(kept[0]));
    answer_later(); /* dropped: the request is not on the connection any more */
    spin();
    read_some();
    CU_ASSERT_EQUAL(ans->stdout_bytes[7], 0);
    reset_answers();
    send_request(7, "/now", true);
    read_until(1);
    CU_ASSERT(ended(7) && ans->stdout_bytes[7] > 0);
    stop();
}

/* The peer closes while an answer is being made: the answer is dropped. */
static void test_late_answer_after_the_peer_left(void)
{
    start(NULL);
    reset_answers();
    send_request(1, "/later", true);
    spin();
    close(peer);
    peer = -1;
    spin();
    /* EOF: the connection waits for the answer in the making... */
    CU_ASSERT_EQUAL(fcgi_server_connections(srv), 1);
    CU_ASSERT_EQUAL(nkept, 1);
    answer_later(); /* ...which cannot be written (EPIPE): dropped, and it goes */
    spin();
    CU_ASSERT_EQUAL(fcgi_server_connections(srv), 0);
    CU_ASSERT_EQUAL(srv->output_bytes, 0);
    stop();
}

/* Records for ids never begun, answered or refused are ignored. */
static void test_inactive_ids_ignored(void)
{
    start(NULL);
    reset_answers();
    send_record(FCGI_STDIN, 9, "x", 1);
    send_record(FCGI_PARAMS, 10, NULL, 0);
    send_begin(2, FCGI_FILTER, true);
    send_record(FCGI_DATA, 2, "data", 4);
    send_request(1, "/now", true);
    read_until(2);
    CU_ASSERT(ended(1) && ended(2));
    CU_ASSERT_EQUAL(ans->protocol_status[2], FCGI_UNKNOWN_ROLE);
    CU_ASSERT(!ended(9) && !ended(10));
    CU_ASSERT_EQUAL(fcgi_server_connections(srv), 1);
    CU_ASSERT_EQUAL(the_conn()->nreqs, 0); /* the refused one never entered the table */
    stop();
}

/* A request made from a spare one (the last request's, reused) knows
 * nothing of that one: its params, its CONTENT_LENGTH. */
static void test_spare_request_starts_clean(void)
{
    start(NULL);
    reset_answers();
    send_begin(1, FCGI_RESPONDER, true);
    send_params(1, "/now", 5);
    send_record(FCGI_STDIN, 1, "hello", 5);
    send_record(FCGI_STDIN, 1, NULL, 0);
    read_until(1);
    CU_ASSERT(ended(1));
    CU_ASSERT_EQUAL(srv->nspare, 1);
    /* no params at all, no body: kept by the stub (no SCRIPT_NAME) */
    send_begin(2, FCGI_RESPONDER, true);
    send_record(FCGI_PARAMS, 2, NULL, 0);
    send_record(FCGI_STDIN, 2, NULL, 0);
    spin();
    CU_ASSERT_EQUAL(srv->nspare, 0);
    CU_ASSERT_EQUAL(handled, 2);
    CU_ASSERT_EQUAL_FATAL(nkept, 1);
    CU_ASSERT(!ended(2));
    CU_ASSERT_PTR_NULL(fcgi_param(kept[0], "SCRIPT_NAME"));
    CU_ASSERT_PTR_NULL(fcgi_param(kept[0], "REQUEST_METHOD"));
    CU_ASSERT_PTR_NULL(fcgi_param(kept[0], "CONTENT_LENGTH"));
    answer_later();
    read_until(2);
    CU_ASSERT(ended(2));
    stop();
}

/* A batch of answers over 1 KiB: once written, the connection's output
 * buffer goes to the server (an idle connection keeps under 1 KiB), and
 * the next answer is formatted into it. */
static void test_output_buffer_kept_by_the_server(void)
{
    uint8_t *spare;

    start(NULL);
    reset_answers();
    for (uint16_t i = 1; i <= 30; i++)
        send_request(i, "/now", true);
    read_until(30);
    CU_ASSERT_EQUAL(ans->nended, 30);
    CU_ASSERT_PTR_NULL(the_conn()->out.data);
    CU_ASSERT_FATAL(srv->out_spare.cap > 1024);
    spare = srv->out_spare.data;
    /* two kept; answering one leaves a request on the connection, so the
     * buffer it took stays with it */
    send_request(31, "/later", true);
    send_request(32, "/later", true);
    spin();
    CU_ASSERT_EQUAL_FATAL(nkept, 2);
    answer_later();
    read_until(31);
    CU_ASSERT_PTR_EQUAL(the_conn()->out.data, spare);
    CU_ASSERT_PTR_NULL(srv->out_spare.data);
    answer_later();
    read_until(32);
    CU_ASSERT_PTR_EQUAL(srv->out_spare.data, spare); /* back, once idle */
    stop();
}

/* A header that would add headers of its own is refused. */
static void test_response_header_refuses_line_breaks(void)
{
    start(NULL);
    reset_answers();
    send_request(1, "/header", true);
    read_until(1);
    CU_ASSERT_EQUAL(header_results[0], 0);
    CU_ASSERT_EQUAL(header_results[1], -1);
    CU_ASSERT_EQUAL(header_results[2], -1);
    CU_ASSERT_EQUAL(header_results[3], -1);
    stop();
}

/* conn_queue_response takes an answer of SMALL_ANSWER_PAYLOAD bytes of
 * body and extra headers past the output limits unasked: output_room
 * would let it pass too, whatever the status, the split, or HEAD. */
static void test_small_payload_within_small_answer(void)
{
    static const int statuses[] = {100, 200, 204, 304, 404, 503, 599};

    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        for (size_t extra = 0; extra <= SMALL_ANSWER_PAYLOAD; extra += 1 + extra / 2)
            for (int head = 0; head < 2; head++) {
                struct fcgi_response r = {
                    .status = statuses[i],
                    .content_type = FCGI_TEXT_PLAIN,
                    .extra_headers_len = extra,
                    .body_len = SMALL_ANSWER_PAYLOAD - extra,
                    .head_only = head,
                };

                CU_ASSERT(fcgi_response_bound(&r) <= SMALL_ANSWER_BYTES);
            }
}

/* --- a request whole in one read, or a byte at a time ------------------------ */

/* The bytes of one case, built as a front server would send them. */
struct stream {
    uint8_t b[2048];
    size_t n;
};

static void put_record(struct stream *st, uint8_t type, uint16_t id, const void *content,
                       size_t len, uint8_t padding)
{
    CU_ASSERT_FATAL(st->n + FCGI_HEADER_LEN + len + padding <= sizeof st->b);
    fcgi_header_encode(st->b + st->n, type, id, (uint16_t)len, padding);
    st->n += FCGI_HEADER_LEN;
    if (len)
        memcpy(st->b + st->n, content, len);
    memset(st->b + st->n + len, 0, padding);
    st->n += len + padding;
}

static void put_begin(struct stream *st, uint16_t id)
{
    static const uint8_t body[8] = {0, FCGI_RESPONDER, FCGI_KEEP_CONN};

    put_record(st, FCGI_BEGIN_REQUEST, id, body, sizeof body, 0);
}

/* PARAMS content: SCRIPT_NAME /now, and CONTENT_LENGTH unless NULL;
 * value, when not NULL, as the value of X_VALUE (value_len bytes). */
static size_t params_of(uint8_t *out, const char *content_length, const char *value,
                        size_t value_len)
{
    size_t n = fcgi_nv_encode(out, "REQUEST_METHOD", 14, "GET", 3);

    n += fcgi_nv_encode(out + n, "SCRIPT_NAME", 11, "/now", 4);
    if (content_length)
        n += fcgi_nv_encode(out + n, "CONTENT_LENGTH", 14, content_length,
                            strlen(content_length));
    if (value)
        n += fcgi_nv_encode(out + n, "X_VALUE", 7, value, value_len);
    return n;
}

/* A whole request for /now on id, its params in `pieces` records. */
static void put_request(struct stream *st, uint16_t id, const char *content_length,
                        const char *value, size_t value_len, int pieces, uint8_t end_padding)
{
    uint8_t p[1024];
    size_t n = params_of(p, content_length, value, value_len), at = 0;

    put_begin(st, id);
    for (int i = 1; i <= pieces; i++) {
        size_t upto = n * (size_t)i / (size_t)pieces;

        put_record(st, FCGI_PARAMS, id, p + at, upto - at, 0);
        at = upto;
    }
    put_record(st, FCGI_PARAMS, id, NULL, 0, end_padding);
    put_record(st, FCGI_STDIN, id, NULL, 0, end_padding);
}

enum whole_case {
    CASE_PLAIN, CASE_TWO_PARAMS_RECORDS, CASE_PADDED_ENDS, CASE_BODY_SENT,
    CASE_BODY_MISSING, CASE_LENGTH_NOT_A_NUMBER, CASE_BODY_OVER_LIMIT, CASE_PARAMS_OVER_LIMIT,
    CASE_NUL_IN_VALUE, CASE_INTERLEAVED, CASE_OTHER_ID_BETWEEN, CASE_COUNT
};

/* What a case must come to: the status of each of its two ids (0: no
 * answer), and whether the connection is closed. */
static const struct {
    const char *name;
    int status[2];
    bool closed;
} whole_expected[CASE_COUNT] = {
    [CASE_PLAIN] = {"a request without a body", {200, 0}, false},
    [CASE_TWO_PARAMS_RECORDS] = {"params in two records", {200, 0}, false},
    [CASE_PADDED_ENDS] = {"padding on the empty records", {200, 0}, false},
    [CASE_BODY_SENT] = {"a body of CONTENT_LENGTH", {200, 0}, false},
    [CASE_BODY_MISSING] = {"CONTENT_LENGTH 5, no body", {400, 0}, false},
    [CASE_LENGTH_NOT_A_NUMBER] = {"CONTENT_LENGTH not a number", {400, 0}, false},
    [CASE_BODY_OVER_LIMIT] = {"CONTENT_LENGTH over the limit", {413, 0}, false},
    [CASE_PARAMS_OVER_LIMIT] = {"params over the limit", {431, 0}, false},
    [CASE_NUL_IN_VALUE] = {"a NUL inside a value", {0, 0}, true},
    [CASE_INTERLEAVED] = {"two requests interleaved", {200, 200}, false},
    [CASE_OTHER_ID_BETWEEN] = {"an inactive id's end between", {200, 0}, false},
};

static void build_case(struct stream *st, enum whole_case k)
{
    static const char big_value[300] = {'v'};
    uint8_t p[1024];
    size_t n;

    st->n = 0;
    switch (k) {
    case CASE_PLAIN: put_request(st, 1, NULL, NULL, 0, 1, 0); break;
    case CASE_TWO_PARAMS_RECORDS: put_request(st, 1, NULL, "x", 1, 2, 0); break;
    case CASE_PADDED_ENDS: put_request(st, 1, NULL, NULL, 0, 1, 8); break;
    case CASE_BODY_MISSING: put_request(st, 1, "5", NULL, 0, 1, 0); break;
    case CASE_LENGTH_NOT_A_NUMBER: put_request(st, 1, "5x", NULL, 0, 1, 0); break;
    case CASE_BODY_OVER_LIMIT: put_request(st, 1, "5000", NULL, 0, 1, 0); break;
    case CASE_PARAMS_OVER_LIMIT:
        put_request(st, 1, NULL, big_value, sizeof big_value, 1, 0);
        break;
    case CASE_NUL_IN_VALUE: put_request(st, 1, NULL, "a\0b", 3, 1, 0); break;
    case CASE_BODY_SENT:
        n = params_of(p, "2", NULL, 0);
        put_begin(st, 1);
        put_record(st, FCGI_PARAMS, 1, p, n, 0);
        put_record(st, FCGI_PARAMS, 1, NULL, 0, 0);
        put_record(st, FCGI_STDIN, 1, "ab", 2, 6);
        put_record(st, FCGI_STDIN, 1, NULL, 0, 0);
        break;
    case CASE_INTERLEAVED:
        n = params_of(p, NULL, NULL, 0);
        put_begin(st, 1);
        put_begin(st, 2);
        put_record(st, FCGI_PARAMS, 2, p, n, 0);
        put_record(st, FCGI_PARAMS, 1, p, n, 0);
        put_record(st, FCGI_PARAMS, 2, NULL, 0, 0);
        put_record(st, FCGI_PARAMS, 1, NULL, 0, 0);
        put_record(st, FCGI_STDIN, 1, NULL, 0, 0);
        put_record(st, FCGI_STDIN, 2, NULL, 0, 0);
        break;
    case CASE_OTHER_ID_BETWEEN:
        n = params_of(p, NULL, NULL, 0);
        put_begin(st, 1);
        put_record(st, FCGI_PARAMS, 1, p, n, 0);
        put_record(st, FCGI_PARAMS, 3, NULL, 0, 0);
        put_record(st, FCGI_PARAMS, 1, NULL, 0, 0);
        put_record(st, FCGI_STDIN, 1, NULL, 0, 0);
        break;
    case CASE_COUNT: break;
    }
}

/* The status the answer to id starts with ("Status: 200 OK"), 0 for none. */
static int answered_status(uint16_t id)
{
    if (!ended(id) || memcmp(ans->first_stdout[id], "Status: ", 8) != 0)
        return 0;
    return atoi(ans->first_stdout[id] + 8);
}

/* Sends st whole (one write, which the server reads at once: the records
 * of a request taken in one step) or a byte at a time, the loop running
 * between (each record taken as its bytes come); checks what came back. */
static void run_case(enum whole_case k, const struct stream *st, bool bytewise)
{
    struct fcgi_limits lim;
    unsigned want = 0;

    fcgi_limits_default(&lim);
    lim.max_params_bytes = 256;
    lim.max_body_bytes = 1000;
    start(&lim);
    reset_answers();
    if (bytewise) {
        /* (until the server closes: a write then fails) */
        for (size_t i = 0; i < st->n && write(peer, st->b + i, 1) == 1; i++)
            ev_run(loop, EVRUN_NOWAIT);
    } else {
        send_bytes(st->b, st->n);
    }
    for (int i = 0; i < 2; i++)
        want += whole_expected[k].status[i] != 0;
    read_until(want);
    if (whole_expected[k].closed)
        CU_ASSERT(peer_closed());
    for (int i = 0; i < 2; i++) {
        int got = answered_status((uint16_t)(i + 1));

        if (got != whole_expected[k].status[i])
            fprintf(stderr, "\n  %s, %s: id %d answered %d, not %d", whole_expected[k].name,
                    bytewise ? "a byte at a time" : "whole", i + 1, got,
                    whole_expected[k].status[i]);
        CU_ASSERT_EQUAL(got, whole_expected[k].status[i]);
    }
    CU_ASSERT_EQUAL(ans->eof, whole_expected[k].closed);
    if (!whole_expected[k].closed) {
        if (the_conn()->nreqs != 0)
            fprintf(stderr, "\n  %s, %s: %u requests left in the table", whole_expected[k].name,
                    bytewise ? "a byte at a time" : "whole", the_conn()->nreqs);
        CU_ASSERT_EQUAL(the_conn()->nreqs, 0); /* every id ended */
    }
    stop();
}

/* A server that lends params (lend_params). */
static void start_lending(const struct fcgi_limits *limits)
{
    lend = true;
    start(limits);
    lend = false;
}

/* A GET to path with CONTENT_LENGTH 0 (a param found by the index) and
 * no body, its records written at once: one read takes them all. */
static void send_whole_request(uint16_t id, const char *path)
{
    send_begin(id, FCGI_RESPONDER, true);
    send_params(id, path, 0);
    send_record(FCGI_STDIN, id, NULL, 0);
}

/* A request whose params came whole in one read, lent to the handler:
 * its params after the handler returned, another request read into the
 * same input buffer since, are its own, kept by the handler (/keep) or,
 * for a handler that forgot (/later), by the engine.  The other request
 * has the same layout: params still lent would read its bytes. */
static void check_lent_then_kept(const char *path)
{
    size_t len;
    const char *method;

    start_lending(NULL);
    reset_answers();
    send_whole_request(1, path);
    spin();
    CU_ASSERT_EQUAL(handled, 1);
    CU_ASSERT_EQUAL(lent_at_entry, 1);
    CU_ASSERT_EQUAL_FATAL(nkept, 1);
    CU_ASSERT(!kept[0]->params_lent);
    send_begin(1 + 1, FCGI_RESPONDER, true);
    send_params(1 + 1, strlen(path) == 5 ? "/zzzz" : "/zzzzz", 9);
    send_record(FCGI_STDIN, 2, "123456789", 9);
    send_record(FCGI_STDIN, 2, NULL, 0);
    spin();
    CU_ASSERT_EQUAL(handled, 2);
    CU_ASSERT_STRING_EQUAL(fcgi_param(kept[0], "SCRIPT_NAME"), path);
    CU_ASSERT_STRING_EQUAL(fcgi_param(kept[0], "CONTENT_LENGTH"), "0"); /* (by the index) */
    method = fcgi_known_param(kept[0], FCGI_REQUEST_METHOD, &len);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_STRING_EQUAL(method, "GET");
    answer_later();
    read_until(1);
    CU_ASSERT(ended(1));
    CU_ASSERT(!memcmp(ans->first_stdout[1], "Status: 200", 11));
    stop();
}

static void test_lent_params_kept_by_the_handler(void)
{
    check_lent_then_kept("/keep");
}

static void test_lent_params_kept_by_the_engine(void)
{
    check_lent_then_kept("/later");
}

/* More pairs than the request indexes in itself (REQUEST_PAIRS_INLINE):
 * their index goes after them, where lent bytes have no room, so decoding
 * keeps them first; the handler finds them its own, lent no longer, and
 * they stay so after another request reused the input. */
static void test_many_lent_params_kept_for_their_index(void)
{
    uint8_t p[2048];
    char name[32], value[32];
    size_t n = 0;
    const char *v;

    n += fcgi_nv_encode(p + n, "SCRIPT_NAME", 11, "/later", 6);
    for (unsigned i = 0; i < REQUEST_PAIRS_INLINE + 8; i++) {
        snprintf(name, sizeof name, "HTTP_X_%u", i);
        snprintf(value, sizeof value, "v%u", i);
        n += fcgi_nv_encode(p + n, name, strlen(name), value, strlen(value));
    }
    start_lending(NULL);
    reset_answers();
    send_begin(1, FCGI_RESPONDER, true);
    send_record(FCGI_PARAMS, 1, p, n);
    send_record(FCGI_PARAMS, 1, NULL, 0);
    send_record(FCGI_STDIN, 1, NULL, 0);
    spin();
    CU_ASSERT_EQUAL(handled, 1);
    CU_ASSERT_EQUAL(lent_at_entry, 0); /* kept while decoding */
    CU_ASSERT_EQUAL_FATAL(nkept, 1);
    send_whole_request(2, "/zzzzz");
    spin();
    CU_ASSERT_EQUAL(handled, 2);
    CU_ASSERT_EQUAL(lent_at_entry, 1);
    v = fcgi_param(kept[0], "HTTP_X_39");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, "v39");
    CU_ASSERT_STRING_EQUAL(fcgi_param(kept[0], "SCRIPT_NAME"), "/later");
    answer_later();
    read_until(1);
    CU_ASSERT(ended(1));
    stop();
}

/* Lent only with lend_params, and only what came whole: a request whose
 * params come in two reads is copied as before. */
static void test_params_lent_only_when_asked_and_whole(void)
{
    uint8_t pairs[64], h[FCGI_HEADER_LEN];
    size_t n;

    start(NULL);
    reset_answers();
    send_request(1, "/now", true);
    read_until(1);
    CU_ASSERT(ended(1));
    CU_ASSERT_EQUAL(lent_at_entry, 0);
    stop();
    start_lending(NULL);
    reset_answers();
    send_request(1, "/now", true);
    read_until(1);
    CU_ASSERT_EQUAL(lent_at_entry, 1);
    n = fcgi_nv_encode(pairs, "SCRIPT_NAME", 11, "/now", 4);
    fcgi_header_encode(h, FCGI_PARAMS, 2, (uint16_t)n, 0);
    send_begin(2, FCGI_RESPONDER, true);
    send_bytes(h, sizeof h);
    send_bytes(pairs, 5);
    spin(); /* the rest of the record in a second read */
    send_bytes(pairs + 5, n - 5);
    send_record(FCGI_PARAMS, 2, NULL, 0);
    send_record(FCGI_STDIN, 2, NULL, 0);
    read_until(2);
    CU_ASSERT(ended(2));
    CU_ASSERT_EQUAL(handled, 2);
    CU_ASSERT_EQUAL(lent_at_entry, 1);
    stop();
}

/* Params that cannot be kept for want of budget: the handler that asks
 * answers 503 (/keep); for one that forgot (/later), the engine does, and
 * the request's params are gone, its late answer dropped. */
static void test_lent_params_not_kept_over_budget(void)
{
    struct fcgi_limits lim;

    fcgi_limits_default(&lim);
    lim.max_buffered_params_bytes = sizeof(struct fcgi_request) + 8; /* the request, no more */
    start_lending(&lim);
    reset_answers();
    send_whole_request(1, "/keep");
    read_until(1);
    CU_ASSERT(ended(1));
    CU_ASSERT(answered_503(1));
    CU_ASSERT_EQUAL(nkept, 0);
    send_whole_request(2, "/later");
    read_until(2);
    CU_ASSERT(ended(2));
    CU_ASSERT(answered_503(2));
    CU_ASSERT_EQUAL(the_conn()->handling, 0); /* ended, as a timed-out request is */
    CU_ASSERT_EQUAL(the_conn()->nreqs, 0);
    CU_ASSERT_EQUAL_FATAL(nkept, 1);
    CU_ASSERT_PTR_NULL(fcgi_param(kept[0], "SCRIPT_NAME"));
    CU_ASSERT_PTR_NULL(fcgi_param(kept[0], "CONTENT_LENGTH"));
    answer_later(); /* dropped: answered already */
    spin();
    CU_ASSERT_EQUAL(ans->nended, 2);
    CU_ASSERT_EQUAL(lent_at_entry, 2);
    stop();
}

static void test_whole_or_bytewise(void)
{
    for (int k = 0; k < CASE_COUNT; k++) {
        struct stream st;

        build_case(&st, (enum whole_case)k);
        run_case((enum whole_case)k, &st, false);
        run_case((enum whole_case)k, &st, true);
    }
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"back-pressure: reading stops at the mark", test_back_pressure},
        {"late answers within the connection's output budget", test_late_answers_have_a_budget},
        {"small late answers past the budget are not refused", test_small_late_answers_are_not_refused},
        {"linger after an early answer, close after its body", test_linger_after_an_early_answer},
        {"drain at shutdown waits for the handler", test_drain_at_shutdown},
        {"abort, then the late answer is dropped", test_abort_then_late_answer},
        {"the peer leaves before the answer", test_late_answer_after_the_peer_left},
        {"records for inactive ids are ignored", test_inactive_ids_ignored},
        {"response headers with line breaks refused", test_response_header_refuses_line_breaks},
        {"a spare request starts clean", test_spare_request_starts_clean},
        {"an output buffer kept by the server", test_output_buffer_kept_by_the_server},
        {"a small payload is a small answer", test_small_payload_within_small_answer},
        {"a request whole in one read or a byte at a time", test_whole_or_bytewise},
        {"lent params kept by the handler", test_lent_params_kept_by_the_handler},
        {"lent params kept by the engine for a handler that forgot",
         test_lent_params_kept_by_the_engine},
        {"params lent only when asked, and only whole", test_params_lent_only_when_asked_and_whole},
        {"many lent params kept for their index", test_many_lent_params_kept_for_their_index},
        {"lent params that cannot be kept: 503", test_lent_params_not_kept_over_budget},
        {NULL, NULL},
    };
    int rc;

    signal(SIGPIPE, SIG_IGN); /* as main.c: a closed peer is an error return */
    ans = calloc(1, sizeof *ans);
    if (!ans)
        return 2;
    memset(big, 'B', sizeof big);
    rc = unit_run("conn", tests, 120);
    free(ans);
    return rc;
}
