/*
 * tests/unit/test_access_log.c — the access-log line (fcgi/access_log.c)
 * and the clock answers are timed by (request_answer_clock), on a bare
 * server struct: the line is read back from the server's buffer.
 *
 *   "<method> <path> <status> <bytes> <microseconds>us"
 */
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "fcgi/internal.h"

static struct fcgi_server srv;
static struct fcgi_request req;

static void known(enum request_known k, const char *s)
{
    req.known[k].s = s;
    req.known[k].len = s ? strlen(s) : 0;
}

/* The line logged for req (method, uri, script, path info), without
 * its newline. */
static const char *line(const char *method, const char *uri, const char *script,
                        const char *path_info, int status, size_t bytes, double seconds)
{
    static char out[1024];

    buf_free(&srv.access);
    memset(&req, 0, sizeof req);
    known(KNOWN_REQUEST_METHOD, method);
    known(KNOWN_REQUEST_URI, uri);
    known(KNOWN_SCRIPT_NAME, script);
    known(KNOWN_PATH_INFO, path_info);
    access_log_add(&srv, &req, status, bytes, seconds);
    CU_ASSERT_FATAL(srv.access.len > 0 && srv.access.len < sizeof out);
    CU_ASSERT_EQUAL(srv.access.data[srv.access.len - 1], '\n');
    memcpy(out, srv.access.data, srv.access.len - 1);
    out[srv.access.len - 1] = '\0';
    return out;
}

static void test_lines(void)
{
    CU_ASSERT_STRING_EQUAL(line("GET", "/api/v1/flanders?x=1", "/api/v1/flanders", NULL, 200, 25,
                                0.000017),
                           "GET /api/v1/flanders?x=1 200 25 17us");
    /* without REQUEST_URI: SCRIPT_NAME then PATH_INFO */
    CU_ASSERT_STRING_EQUAL(line("POST", NULL, "/api", "/v1/marges/k", 204, 0, 0.0012344),
                           "POST /api/v1/marges/k 204 0 1234us");
    /* empty or absent: "-", each piece on its own (as it always was) */
    CU_ASSERT_STRING_EQUAL(line(NULL, NULL, NULL, NULL, 404, 29, 0), "- - 404 29 0us");
    CU_ASSERT_STRING_EQUAL(line("", "", "/x", NULL, 404, 29, 0), "- - 404 29 0us");
    CU_ASSERT_STRING_EQUAL(line("GET", NULL, "/api/v1/flanders", "", 200, 25, 0.000002),
                           "GET /api/v1/flanders- 200 25 2us");
    CU_ASSERT_STRING_EQUAL(line("GET", NULL, "", "/x", 200, 25, 0.000002), "GET -/x 200 25 2us");
    /* bytes that would break the line: '?' */
    CU_ASSERT_STRING_EQUAL(line("G E\tT", "/a b\x7f\x01\x1f!~", NULL, NULL, 400, 3, 0.0000004),
                           "G?E?T /a?b??" "?!~ 400 3 0us" /* (no trigraph) */);
    /* large numbers, and rounding to the nearest microsecond */
    CU_ASSERT_STRING_EQUAL(line("GET", "/", NULL, NULL, 599, (size_t)1 << 40, 86400.0000006),
                           "GET / 599 1099511627776 86400000001us");
    CU_ASSERT_STRING_EQUAL(line("GET", "/", NULL, NULL, 100, 0, 0.0000014), "GET / 100 0 1us");
    CU_ASSERT_STRING_EQUAL(line("GET", "/", NULL, NULL, 100, 0, 0.0000016), "GET / 100 0 2us");
    buf_free(&srv.access);
}

/* Every byte value at every place of paths of 1 to 24 bytes (the copy
 * goes eight bytes at a time): those below 0x21 and DEL become '?', the
 * others (UTF-8 too) stay. */
static void test_every_byte_cleaned(void)
{
    char path[25], want[64];

    for (size_t len = 1; len <= 24; len++)
        for (size_t at = 0; at < len; at++)
            for (int b = 0; b < 256; b++) {
                memset(path, 'a', len);
                path[len] = '\0';
                path[at] = (char)b;
                memset(&req, 0, sizeof req);
                buf_free(&srv.access);
                known(KNOWN_REQUEST_METHOD, "GET");
                req.known[KNOWN_REQUEST_URI].s = path; /* (a NUL inside: its length says) */
                req.known[KNOWN_REQUEST_URI].len = len;
                access_log_add(&srv, &req, 200, 1, 0);
                memcpy(want, "GET ", 4);
                memcpy(want + 4, path, len);
                want[4 + at] = b < 0x21 || b == 0x7f ? '?' : (char)b;
                memcpy(want + 4 + len, " 200 1 0us\n", 11);
                CU_ASSERT_EQUAL(srv.access.len, 4 + len + 11);
                if (srv.access.len != 4 + len + 11 || memcmp(srv.access.data, want, 4 + len + 11)) {
                    CU_FAIL("byte not cleaned as it should be");
                    fprintf(stderr, "\n  byte 0x%02x at %zu of %zu", b, at, len);
                    buf_free(&srv.access);
                    return;
                }
            }
    buf_free(&srv.access);
}

/* Lines dropped while the log had no room are counted in the next line. */
static void test_dropped_lines_said(void)
{
    buf_free(&srv.access);
    memset(&req, 0, sizeof req);
    known(KNOWN_REQUEST_METHOD, "GET");
    known(KNOWN_REQUEST_URI, "/");
    srv.access_dropped = 12345;
    access_log_add(&srv, &req, 200, 1, 0);
    CU_ASSERT_EQUAL(srv.access_dropped, 0);
    CU_ASSERT_EQUAL(srv.access.len, strlen("access log: 12345 line(s) dropped, the log had no "
                                           "room\nGET / 200 1 0us\n"));
    CU_ASSERT_EQUAL(memcmp(srv.access.data,
                           "access log: 12345 line(s) dropped, the log had no room\n"
                           "GET / 200 1 0us\n",
                           srv.access.len), 0);
    buf_free(&srv.access);
}

/* The JSON line (--access-log-format json) from r as line() sets it up,
 * without its newline; the time (24 bytes) is checked for its shape and
 * replaced by T. */
static const char *json_line(const char *method, const char *uri, const char *label,
                             int status, size_t bytes, double seconds, unsigned backend_us)
{
    static char out[1024];
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    const char *t;
    int y, mo, d, h, mi, sec, ms;
    char z;

    CU_ASSERT_FATAL(loop != NULL);
    srv.loop = loop;
    srv.cfg.access_log_format = FCGI_ACCESS_LOG_JSON;
    buf_free(&srv.access);
    memset(&req, 0, sizeof req);
    known(KNOWN_REQUEST_METHOD, method);
    known(KNOWN_REQUEST_URI, uri);
    req.label = label;
    if (backend_us) {
        req.backend_us = backend_us;
        req.backend_waits = 1;
    }
    access_log_add(&srv, &req, status, bytes, seconds);
    srv.cfg.access_log_format = FCGI_ACCESS_LOG_TEXT;
    srv.loop = NULL;
    ev_loop_destroy(loop);
    CU_ASSERT_FATAL(srv.access.len > 40 && srv.access.len < sizeof out);
    CU_ASSERT_EQUAL(srv.access.data[srv.access.len - 1], '\n');
    memcpy(out, srv.access.data, srv.access.len - 1);
    out[srv.access.len - 1] = '\0';
    buf_free(&srv.access);
    CU_ASSERT_FATAL(!strncmp(out, "{\"time\":\"", 9));
    t = out + 9;
    CU_ASSERT_EQUAL(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &sec, &ms, &z),
                    8);
    CU_ASSERT_EQUAL(z, 'Z');
    CU_ASSERT_EQUAL(t[24], '"');
    CU_ASSERT(y >= 2024);
    memmove(out + 10, t + 24, strlen(t + 24) + 1);
    out[9] = 'T';
    return out;
}

static void test_json_lines(void)
{
    CU_ASSERT_STRING_EQUAL(json_line("GET", "/api/v1/flanders", "/api/v1/flanders", 200, 25,
                                     0.000017, 0),
                           "{\"time\":\"T\",\"method\":\"GET\",\"path\":\"/api/v1/flanders\","
                           "\"route\":\"/api/v1/flanders\",\"status\":200,\"bytes\":25,\"us\":17,"
                           "\"backend_us\":null}");
    CU_ASSERT_STRING_EQUAL(json_line("POST", "/api/v1/marges/a\"b\\c\n", "/api/v1/marges/NAME",
                                     204, 0, 0.0012344, 1150),
                           "{\"time\":\"T\",\"method\":\"POST\",\"path\":\"/api/v1/marges/a\\\"b\\\\c\\n\","
                           "\"route\":\"/api/v1/marges/NAME\",\"status\":204,\"bytes\":0,"
                           "\"us\":1234,\"backend_us\":1150}");
    /* no method, no route */
    CU_ASSERT_STRING_EQUAL(json_line(NULL, "/x", NULL, 404, 29, 0, 0),
                           "{\"time\":\"T\",\"method\":null,\"path\":\"/x\",\"route\":null,"
                           "\"status\":404,\"bytes\":29,\"us\":0,\"backend_us\":null}");
}

/* One clock read per loop iteration: the same time within it, a later
 * one in the next. */
static void test_answer_clock(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    double t1, t2, t3;

    CU_ASSERT_FATAL(loop != NULL);
    srv.loop = loop;
    ev_run(loop, EVRUN_NOWAIT);
    t1 = request_answer_clock(&srv);
    usleep(2000);
    t2 = request_answer_clock(&srv);
    CU_ASSERT_EQUAL(t1, t2);
    /* ev_now is libev's monotonic clock plus an offset it re-reads only
     * now and then: it may run a few microseconds ahead of ev_time() */
    CU_ASSERT(t1 >= ev_now(loop) - 0.001);
    ev_run(loop, EVRUN_NOWAIT);
    t3 = request_answer_clock(&srv);
    CU_ASSERT(t3 >= t1 + 0.0015);
    /* a request's elapsed time is measured against it */
    req.srv = &srv;
    req.started = t3 - 0.25;
    CU_ASSERT_DOUBLE_EQUAL(fcgi_request_elapsed(&req), 0.25, 1e-9);
    srv.loop = NULL;
    ev_loop_destroy(loop);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"lines as they always were", test_lines},
        {"every byte at every place of a path", test_every_byte_cleaned},
        {"dropped lines are said", test_dropped_lines_said},
        {"JSON lines, numbers by hand", test_json_lines},
        {"one clock read per loop iteration", test_answer_clock},
        {NULL, NULL},
    };
    return unit_run("access_log", tests, 60);
}
