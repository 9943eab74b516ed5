/*
 * tests/unit/test_params.c — decoding a request's params and looking them
 * up (fcgi/request.c: request_decode_params, fcgi_param, fcgi_param_each).
 *
 * The pairs are made by a small encoder written here from FastCGI 1.0
 * §3.4, not with fcgi/codec.c, and decoded in a request of a bare server
 * struct: only the limits and the params budget are used.
 */
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/internal.h"
#include "fcgi/request.h"

static struct fcgi_server srv;
static struct fcgi_request req;

/* ---- the test's own pair encoder ---------------------------------------- */

/* Appends a length: 1 byte below 128 unless long4, else 4 bytes. */
static void put_len(struct buf *b, size_t n, int long4)
{
    uint8_t l[4] = {(uint8_t)(0x80 | n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};

    if (n < 128 && !long4) {
        uint8_t one = (uint8_t)n;

        buf_append(b, &one, 1);
    } else {
        buf_append(b, l, 4);
    }
}

static void put_pair_n(struct buf *b, const char *name, size_t nl, const char *value, size_t vl,
                       int long4)
{
    put_len(b, nl, long4);
    put_len(b, vl, long4);
    buf_append(b, name, nl);
    buf_append(b, value, vl);
}

static void put_pair(struct buf *b, const char *name, const char *value)
{
    put_pair_n(b, name, strlen(name), value, strlen(value), 0);
}

/* n pairs HTTP_X_<i> = v<7 i>, i from 0. */
static void put_numbered_pairs(struct buf *b, unsigned n)
{
    char name[32], value[32];

    for (unsigned i = 0; i < n; i++) {
        snprintf(name, sizeof name, "HTTP_X_%u", i);
        snprintf(value, sizeof value, "v%u", i * 7);
        put_pair(b, name, value);
    }
}

/* ---- a request to decode into ------------------------------------------- */

static void reset(void)
{
    buf_free(&req.params);
    memset(&srv, 0, sizeof srv);
    fcgi_limits_default(&srv.cfg.limits);
    memset(&req, 0, sizeof req);
    req.srv = &srv;
}

/* Decodes raw (copied into the request's params, charged as conn.c does). */
static int decode(const struct buf *raw, const char **why)
{
    reset();
    if (raw->len) {
        CU_ASSERT_FATAL(request_grow_charged(&req.params, raw->len, raw->len,
                                             &srv.params_bytes, SIZE_MAX, &req.params_charged,
                                             NULL));
        memcpy(req.params.data, raw->data, raw->len);
        req.params.len = raw->len;
    }
    *why = NULL;
    return request_decode_params(&req, why);
}

/* Decodes raw with a params budget of only `room` bytes more than raw
 * takes. */
static int decode_on_budget(const struct buf *raw, size_t room, const char **why)
{
    size_t raw_charged = 0;

    reset();
    CU_ASSERT_FATAL(request_grow_charged(&req.params, raw->len, raw->len, &raw_charged, SIZE_MAX,
                                         &req.params_charged, NULL));
    memcpy(req.params.data, raw->data, raw->len);
    req.params.len = raw->len;
    srv.params_bytes = raw_charged;
    srv.cfg.limits.max_buffered_params_bytes = raw_charged + room;
    *why = NULL;
    return request_decode_params(&req, why);
}

/* The params nginx's fastcgi_params sends for a GET, in its order. */
static const char *const nginx[][2] = {
    {"QUERY_STRING", ""},          {"REQUEST_METHOD", "GET"},
    {"CONTENT_TYPE", ""},          {"CONTENT_LENGTH", ""},
    {"SCRIPT_NAME", "/api/v1/flanders"}, {"REQUEST_URI", "/api/v1/flanders?x=1"},
    {"DOCUMENT_URI", "/api/v1/flanders"}, {"DOCUMENT_ROOT", "/usr/share/nginx/html"},
    {"SERVER_PROTOCOL", "HTTP/1.1"}, {"REQUEST_SCHEME", "http"},
    {"GATEWAY_INTERFACE", "CGI/1.1"}, {"SERVER_SOFTWARE", "nginx/1.22.1"},
    {"REMOTE_ADDR", "127.0.0.1"},   {"REMOTE_PORT", "54321"},
    {"SERVER_ADDR", "127.0.0.1"},   {"SERVER_PORT", "8080"},
    {"SERVER_NAME", "localhost"},   {"REDIRECT_STATUS", "200"},
    {"HTTP_HOST", "127.0.0.1:8080"}, {"HTTP_USER_AGENT", "curl/7.88.1"},
    {"HTTP_ACCEPT", "*/*"},
};
#define NGINX_N (sizeof nginx / sizeof nginx[0])

struct seen {
    unsigned n;
    char names[64][32];
    const char *values[64];
};

static void collect(void *arg, const char *name, size_t name_len, const char *value)
{
    struct seen *s = arg;

    if (s->n < 64 && name_len < 32) {
        memcpy(s->names[s->n], name, name_len);
        s->names[s->n][name_len] = '\0';
        s->values[s->n] = value;
    }
    s->n++;
}

static void test_nginx_params(void)
{
    struct buf raw = {0};
    struct seen seen = {0};
    const char *why;

    for (size_t i = 0; i < NGINX_N; i++)
        put_pair(&raw, nginx[i][0], nginx[i][1]);
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    for (size_t i = 0; i < NGINX_N; i++) {
        const char *v = fcgi_param(&req, nginx[i][0]);

        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_STRING_EQUAL(v, nginx[i][1]);
    }
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "PATH_INFO"));
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "HTTP_COOKIE"));
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "HTTP_ACCEP")); /* a prefix is not a name */
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "HTTP_ACCEPTX"));
    CU_ASSERT_PTR_NULL(fcgi_param(&req, ""));
    /* the engine's own, with their lengths */
    CU_ASSERT_STRING_EQUAL(req.known[KNOWN_REQUEST_METHOD].s, "GET");
    CU_ASSERT_EQUAL(req.known[KNOWN_REQUEST_METHOD].len, 3);
    CU_ASSERT_EQUAL(req.known[KNOWN_SCRIPT_NAME].len, strlen("/api/v1/flanders"));
    CU_ASSERT_EQUAL(req.known[KNOWN_REQUEST_URI].len, strlen("/api/v1/flanders?x=1"));
    CU_ASSERT_PTR_NULL(req.known[KNOWN_PATH_INFO].s);
    CU_ASSERT_FALSE(req.has_content_length); /* empty: no body */
    /* every pair, in order */
    fcgi_param_each(&req, collect, &seen);
    CU_ASSERT_EQUAL_FATAL(seen.n, NGINX_N);
    for (size_t i = 0; i < NGINX_N; i++) {
        CU_ASSERT_STRING_EQUAL(seen.names[i], nginx[i][0]);
        CU_ASSERT_STRING_EQUAL(seen.values[i], nginx[i][1]);
    }
    buf_free(&raw);
}

/* fcgi_known_param: the four with their lengths, NULL and 0 when absent
 * (or not one of them), the same strings fcgi_param gives. */
static void test_known_param(void)
{
    struct buf raw = {0};
    const char *why, *v;
    size_t len = 99;

    put_pair(&raw, "REQUEST_METHOD", "POST");
    put_pair(&raw, "SCRIPT_NAME", "/api");
    put_pair(&raw, "PATH_INFO", "");
    put_pair(&raw, "SCRIPT_NAME", "/api/v1/marges/x");
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    v = fcgi_known_param(&req, FCGI_REQUEST_METHOD, &len);
    CU_ASSERT_STRING_EQUAL(v, "POST");
    CU_ASSERT_EQUAL(len, 4);
    v = fcgi_known_param(&req, FCGI_SCRIPT_NAME, &len); /* the last one */
    CU_ASSERT_STRING_EQUAL(v, "/api/v1/marges/x");
    CU_ASSERT_EQUAL(len, 16);
    CU_ASSERT_PTR_EQUAL(v, fcgi_param(&req, "SCRIPT_NAME"));
    v = fcgi_known_param(&req, FCGI_PATH_INFO, &len); /* present, empty */
    CU_ASSERT_STRING_EQUAL(v, "");
    CU_ASSERT_EQUAL(len, 0);
    len = 99;
    CU_ASSERT_PTR_NULL(fcgi_known_param(&req, FCGI_REQUEST_URI, &len));
    CU_ASSERT_EQUAL(len, 0);
    len = 99;
    CU_ASSERT_PTR_NULL(fcgi_known_param(&req, (enum fcgi_known_param)4, &len));
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_PTR_NULL(fcgi_known_param(&req, (enum fcgi_known_param)-1, &len));
    buf_free(&raw);
}

/* fcgi_request_routing: the four fcgi_known_param gives, and the app, in
 * one call; fcgi_request_set_route: the tag, label and HEAD in one. */
static void test_routing_in_one_call(void)
{
    struct buf raw = {0};
    const char *why;
    struct fcgi_request_routing in;
    int app;

    put_pair(&raw, "REQUEST_METHOD", "HEAD");
    put_pair(&raw, "PATH_INFO", "/p");
    put_pair(&raw, "REQUEST_URI", "/u?x");
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    srv.cfg.app = &app;
    in = fcgi_request_routing(&req);
    CU_ASSERT_PTR_EQUAL(in.app, &app);
    for (int k = 0; k < KNOWN_COUNT; k++) {
        size_t len;
        const char *v = fcgi_known_param(&req, (enum fcgi_known_param)k, &len);

        CU_ASSERT_PTR_EQUAL(in.known[k].s, v);
        CU_ASSERT_EQUAL(in.known[k].len, len);
    }
    CU_ASSERT_STRING_EQUAL(in.known[FCGI_REQUEST_URI].s, "/u?x");
    CU_ASSERT_PTR_NULL(in.known[FCGI_SCRIPT_NAME].s);

    fcgi_request_set_route(&req, 3, "/label", true);
    CU_ASSERT_EQUAL(fcgi_request_tag(&req), 3);
    CU_ASSERT_STRING_EQUAL(fcgi_request_label(&req), "/label");
    CU_ASSERT_TRUE(req.head_only);
    fcgi_request_set_route(&req, 5, NULL, false);
    CU_ASSERT_EQUAL(fcgi_request_tag(&req), 5);
    CU_ASSERT_PTR_NULL(fcgi_request_label(&req));
    CU_ASSERT_FALSE(req.head_only);
    buf_free(&raw);
}

/* Lengths of 128 and more take 4 bytes, and so may short ones: their zero
 * bytes are not NULs inside a name or value. */
static void test_long_and_padded_lengths(void)
{
    struct buf raw = {0};
    char name[200], value[70000];
    const char *why, *v;

    memset(name, 'N', sizeof name);
    memset(value, 'v', sizeof value);
    put_pair_n(&raw, name, sizeof name, value, 300, 0);
    put_pair_n(&raw, "A", 1, "short", 5, 1); /* 0x80 0 0 1, 0x80 0 0 5 */
    put_pair_n(&raw, "EMPTY", 5, "", 0, 1);
    put_pair_n(&raw, "BIG", 3, value, 65536, 0); /* 0x80 0x01 0x00 0x00 */
    put_pair(&raw, "Z", "z");
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    CU_ASSERT_EQUAL(req.npairs, 5);
    name[199] = '\0';
    CU_ASSERT_PTR_NULL(fcgi_param(&req, name)); /* 199 of the 200 N's */
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "A"), "short");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "EMPTY"), "");
    v = fcgi_param(&req, "BIG");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(strlen(v), 65536);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "Z"), "z");
    buf_free(&raw);
}

/* raw is refused as malformed, for a NUL byte or for something else. */
static void expect_malformed(struct buf *raw, bool for_nul)
{
    const char *why;

    CU_ASSERT_EQUAL(decode(raw, &why), -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_EQUAL(strstr(why, "NUL") != NULL, for_nul);
    buf_free(raw);
}

/* A NUL byte anywhere in a name or value is refused, whichever pair. */
static void test_nul_refused(void)
{
    static const struct {
        const char *name;
        size_t nl;
        const char *value;
        size_t vl;
    } bad[] = {
        {"A\0B", 3, "v", 1}, {"AB", 2, "\0", 1}, {"AB", 2, "x\0", 2},
        {"\0", 1, "", 0},    {"AB", 2, "0123456789abcdef0123456789abcdef\0x", 34},
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (int where = 0; where < 3; where++) { /* first, middle, last pair */
            struct buf raw = {0};

            if (where > 0)
                put_pair(&raw, "REQUEST_METHOD", "GET");
            put_pair_n(&raw, bad[i].name, bad[i].nl, bad[i].value, bad[i].vl, (int)i % 2);
            if (where < 2)
                put_pair(&raw, "QUERY_STRING", "");
            expect_malformed(&raw, true);
        }
}

/* Pairs that do not fit their bytes; a NUL in an earlier pair is what is
 * reported first, as the pairs come. */
static void test_malformed(void)
{
    struct buf raw = {0};
    static const uint8_t cut4[] = {0x80, 0, 0}; /* a 4-byte length cut short */
    static const uint8_t over[] = {5, 1, 'a', 'b'}; /* 6 bytes announced, 2 there */

    put_pair(&raw, "A", "b");
    buf_append(&raw, cut4, sizeof cut4);
    expect_malformed(&raw, false);
    buf_append(&raw, over, sizeof over);
    expect_malformed(&raw, false);
    put_pair_n(&raw, "A", 1, "x\0y", 3, 0);
    buf_append(&raw, over, sizeof over);
    expect_malformed(&raw, true);
}

/* A name given twice: the engine's own four take the last, any other the
 * first (as before the index). */
static void test_duplicates(void)
{
    struct buf raw = {0};
    const char *why;

    put_pair(&raw, "SCRIPT_NAME", "/first");
    put_pair(&raw, "HTTP_ACCEPT", "text/plain");
    put_pair(&raw, "SCRIPT_NAME", "/last");
    put_pair(&raw, "HTTP_ACCEPT", "application/json");
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "SCRIPT_NAME"), "/last");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "HTTP_ACCEPT"), "text/plain");
    buf_free(&raw);
}

/* More pairs than the request holds: the index goes after the raw pairs,
 * charged to the params budget; every pair is still found. */
static void test_many_pairs(void)
{
    struct buf raw = {0};
    struct seen seen = {0};
    char name[32], value[32];
    const char *why;
    unsigned n = 3 * REQUEST_PAIRS_INLINE + 5;

    put_pair(&raw, "SCRIPT_NAME", "/before"); /* noted before the index spills (and moves) */
    put_numbered_pairs(&raw, n);
    put_pair(&raw, "PATH_INFO", "/tail");
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    CU_ASSERT_EQUAL(req.npairs, n + 2);
    for (unsigned i = 0; i < n; i++) {
        snprintf(name, sizeof name, "HTTP_X_%u", i);
        snprintf(value, sizeof value, "v%u", i * 7);
        CU_ASSERT_STRING_EQUAL(fcgi_param(&req, name), value);
    }
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "PATH_INFO"), "/tail");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "SCRIPT_NAME"), "/before");
    /* in the buffer as it is now, moved or not (ASan's realloc always
     * moves it: a pointer into the old one is caught there) */
    CU_ASSERT(req.known[KNOWN_SCRIPT_NAME].s > (const char *)req.params.data &&
              req.known[KNOWN_SCRIPT_NAME].s < (const char *)req.params.data + raw.len);
    fcgi_param_each(&req, collect, &seen);
    CU_ASSERT_EQUAL(seen.n, n + 2);
    CU_ASSERT_STRING_EQUAL(seen.names[63], "HTTP_X_62");
    /* the index is charged: the budget counts all the buffer holds */
    CU_ASSERT(req.params.cap >= raw.len + (n + 2) * sizeof(struct param_ref));
    CU_ASSERT_EQUAL(req.params_charged, req.params.cap);
    CU_ASSERT_EQUAL(srv.params_bytes, req.params_charged);

    /* and refused when the budget has no room for it */
    CU_ASSERT_EQUAL(decode_on_budget(&raw, 100, &why), -2);
    CU_ASSERT(srv.params_bytes <= srv.cfg.limits.max_buffered_params_bytes);
    buf_free(&raw);
}

/* Empty names and values (zero length bytes, which are no NULs), 4-byte
 * lengths among 1-byte ones, and the engine's own params between them. */
static void test_empty_and_mixed_lengths(void)
{
    struct buf raw = {0};
    struct seen seen = {0};
    const char *why;

    put_pair_n(&raw, "", 0, "", 0, 0);             /* 0 0 */
    put_pair_n(&raw, "A", 1, "", 0, 0);            /* 1 0 'A' */
    put_pair_n(&raw, "", 0, "v", 1, 1);            /* 4-byte zeros, then 'v' */
    put_pair_n(&raw, "SCRIPT_NAME", 11, "/s", 2, 1);
    put_pair(&raw, "QUERY_STRING", "");
    put_pair_n(&raw, "REQUEST_METHOD", 14, "", 0, 1);
    put_pair(&raw, "PATH_INFO", "/p");
    put_pair_n(&raw, "B", 1, "", 0, 1);            /* the last value empty, 4-byte lengths */
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    CU_ASSERT_EQUAL(req.npairs, 8);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "A"), "");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, ""), ""); /* the first empty name */
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "SCRIPT_NAME"), "/s");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "QUERY_STRING"), "");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "REQUEST_METHOD"), "");
    CU_ASSERT_EQUAL(req.known[KNOWN_REQUEST_METHOD].len, 0);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "PATH_INFO"), "/p");
    CU_ASSERT_EQUAL(req.known[KNOWN_PATH_INFO].len, 2);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "B"), "");
    fcgi_param_each(&req, collect, &seen);
    CU_ASSERT_EQUAL_FATAL(seen.n, 8);
    CU_ASSERT_STRING_EQUAL(seen.names[2], "");
    CU_ASSERT_STRING_EQUAL(seen.values[2], "v");
    CU_ASSERT_STRING_EQUAL(seen.names[7], "B");
    buf_free(&raw);
}

/* Names like the engine's own but not them (the same length, the same
 * first bytes, 64 bytes longer) are ordinary params, and the engine's
 * own are found whatever their length bytes. */
static void test_names_like_the_known_ones(void)
{
    static const char *const like[] = {
        "REQUEST_SCHEME", "REQUEST_METHOX", "XEQUEST_METHOD", "CONTENT_LENGTX", "CONTENT_TYPE__",
        "REQUEST_URX",    "XEQUEST_URI",    "SCRIPT_NAMX",    "SCRIPX_NAME",    "SERVER_NAME",
        "PATH_INFX",      "XATH_INFO",      "PATH_INF",       "PATH_INFOO",     "REQUEST_UR",
    };
    struct buf raw = {0};
    char long_name[9 + 64 + 1];
    const char *why;

    memset(long_name, 'O', sizeof long_name - 1);
    memcpy(long_name, "PATH_INFO", 9); /* 73 bytes: 9 + 64 */
    long_name[sizeof long_name - 1] = '\0';
    for (size_t i = 0; i < sizeof like / sizeof like[0]; i++)
        put_pair(&raw, like[i], "x");
    put_pair(&raw, long_name, "long");
    put_pair(&raw, "CONTENT_LENGTX", "12a"); /* not CONTENT_LENGTH: not checked */
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    for (int k = 0; k < KNOWN_COUNT; k++)
        CU_ASSERT_PTR_NULL(req.known[k].s);
    CU_ASSERT_FALSE(req.has_content_length);
    CU_ASSERT_FALSE(req.content_length_bad);
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "PATH_INFO"));
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, long_name), "long");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "REQUEST_SCHEME"), "x");
    buf_free(&raw);

    /* and the real ones with 4-byte lengths */
    put_pair_n(&raw, "REQUEST_METHOD", 14, "GET", 3, 1);
    put_pair_n(&raw, "REQUEST_URI", 11, "/u", 2, 1);
    put_pair_n(&raw, "CONTENT_LENGTH", 14, "7", 1, 1);
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    CU_ASSERT_STRING_EQUAL(req.known[KNOWN_REQUEST_METHOD].s, "GET");
    CU_ASSERT_EQUAL(req.known[KNOWN_REQUEST_URI].len, 2);
    CU_ASSERT_EQUAL(req.content_length, 7);
    buf_free(&raw);
}

/* What is left after the last whole pair: one byte (whatever it is) or a
 * length cut short, never a pair. */
static void test_stray_bytes_after_the_pairs(void)
{
    static const uint8_t tails[][3] = {{1, 0}, {0, 0}, {0x7f, 0}, {0x80, 0}, {0xff, 0}};

    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        struct buf raw = {0};
        const char *why;

        put_pair(&raw, "REQUEST_METHOD", "GET");
        buf_append(&raw, tails[i], 1);
        CU_ASSERT_EQUAL(decode(&raw, &why), -1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(why);
        CU_ASSERT_STRING_EQUAL(why, "name-value pair length cut short");
        /* a refused request has no params of the engine's own either */
        CU_ASSERT_PTR_NULL(req.known[KNOWN_REQUEST_METHOD].s);
        buf_free(&raw);
    }
}

/* A NUL comes before a malformed pair: the NUL is reported.  Malformed
 * pairs, a NUL among them, are reported before an index that does not fit
 * the budget: every pair is checked before the index's room is asked for.
 * (Until the index was built lazily, the budget was reported first when
 * the index spilled before the fault was read.) */
static void test_nul_and_what_comes_after(void)
{
    struct buf raw = {0};
    char name[32];
    const char *why;

    put_pair_n(&raw, "A", 1, "x\0y", 3, 0);
    put_pair(&raw, "B", "b");
    buf_append(&raw, "\x05\x01" "ab", 4); /* longer than its record */
    expect_malformed(&raw, true);

    put_pair_n(&raw, "A", 1, "x\0y", 3, 0);
    for (unsigned i = 0; i < 2 * REQUEST_PAIRS_INLINE; i++) {
        snprintf(name, sizeof name, "HTTP_X_%u", i);
        put_pair(&raw, name, "v");
    }
    CU_ASSERT_EQUAL(decode_on_budget(&raw, 16, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "NUL byte inside a param name or value");
    buf_free(&raw);

    /* a pair cut short after more pairs than the request indexes */
    for (unsigned i = 0; i < 2 * REQUEST_PAIRS_INLINE; i++) {
        snprintf(name, sizeof name, "HTTP_X_%u", i);
        put_pair(&raw, name, "v");
    }
    buf_append(&raw, "\x80\x00", 2);
    CU_ASSERT_EQUAL(decode_on_budget(&raw, 16, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "name-value pair length cut short");
    CU_ASSERT_EQUAL(req.npairs, 0);
    buf_free(&raw);
}

/* Zero bytes one after another in length fields (an empty name and value,
 * 4-byte lengths), then a NUL in the very last byte. */
static void test_zero_runs_then_a_last_nul(void)
{
    struct buf raw = {0};
    const char *why;

    put_pair_n(&raw, "", 0, "", 0, 1); /* 0x80 0 0 0, 0x80 0 0 0 */
    put_pair_n(&raw, "", 0, "", 0, 0);
    put_pair_n(&raw, "N", 1, "", 0, 1);
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    CU_ASSERT_EQUAL(req.npairs, 3);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "N"), "");
    put_pair_n(&raw, "L", 1, "last\0", 5, 0);
    expect_malformed(&raw, true);
}

/* Pairs that fill their buffer to the last byte: the last value's NUL
 * needs one more, and gets it. */
static void test_pairs_fill_the_buffer(void)
{
    struct buf raw = {0};
    char value[256];
    const char *why;

    memset(value, 'q', sizeof value);
    put_pair_n(&raw, "SCRIPT_NAME", 11, value, 240, 0); /* 1 + 4 length bytes: 256 in all */
    CU_ASSERT_EQUAL_FATAL(raw.len, 256);
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    CU_ASSERT(req.params.cap > 256);
    CU_ASSERT_EQUAL(strlen(fcgi_param(&req, "SCRIPT_NAME")), 240);
    /* noted before the buffer grew (and moved, under ASan): in it now */
    CU_ASSERT(req.known[KNOWN_SCRIPT_NAME].s == (const char *)req.params.data + 16);
    CU_ASSERT_EQUAL(req.params_charged, req.params.cap);
    buf_free(&raw);
}

/* ---- the index, made by the first lookup that needs it ----------------- */

static void put_nginx(struct buf *raw)
{
    for (size_t i = 0; i < NGINX_N; i++)
        put_pair(raw, nginx[i][0], nginx[i][1]);
}

/* Every pair of nginx's, in order, as fcgi_param_each gives them. */
static void expect_every_nginx_pair(void)
{
    struct seen seen = {0};

    fcgi_param_each(&req, collect, &seen);
    CU_ASSERT_EQUAL_FATAL(seen.n, NGINX_N);
    for (size_t i = 0; i < NGINX_N; i++) {
        CU_ASSERT_STRING_EQUAL(seen.names[i], nginx[i][0]);
        CU_ASSERT_STRING_EQUAL(seen.values[i], nginx[i][1]);
    }
}

/* The engine's own values are NUL-terminated once decoded, before any
 * index (over length bytes of the pairs after them); the first lookup of
 * another name indexes the pairs, and what was given before stays as it
 * was: the same pointers, still NUL-terminated. */
static void test_known_before_the_index(void)
{
    struct buf raw = {0};
    const char *why, *given[KNOWN_COUNT];
    size_t len;

    put_nginx(&raw);
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    CU_ASSERT_FALSE(req.indexed);
    for (int k = 0; k < KNOWN_COUNT; k++) {
        given[k] = fcgi_known_param(&req, (enum fcgi_known_param)k, &len);
        if (given[k])
            CU_ASSERT_EQUAL(strlen(given[k]), len);
    }
    CU_ASSERT_STRING_EQUAL(given[FCGI_REQUEST_METHOD], "GET");
    CU_ASSERT_STRING_EQUAL(given[FCGI_SCRIPT_NAME], "/api/v1/flanders");
    CU_ASSERT_STRING_EQUAL(given[FCGI_REQUEST_URI], "/api/v1/flanders?x=1");
    CU_ASSERT_PTR_EQUAL(fcgi_param(&req, "REQUEST_URI"), given[FCGI_REQUEST_URI]);
    CU_ASSERT_FALSE(req.indexed); /* the engine's own need no index */

    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "SERVER_PORT"), "8080");
    CU_ASSERT_TRUE(req.indexed);
    for (int k = 0; k < KNOWN_COUNT; k++) {
        CU_ASSERT_PTR_EQUAL(fcgi_known_param(&req, (enum fcgi_known_param)k, &len), given[k]);
        if (given[k])
            CU_ASSERT_EQUAL(strlen(given[k]), len);
    }
    /* the pair after each of them (its length bytes were under their NULs) */
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "CONTENT_TYPE"), "");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "DOCUMENT_URI"), "/api/v1/flanders");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "DOCUMENT_ROOT"), "/usr/share/nginx/html");
    expect_every_nginx_pair(); /* after fcgi_param */
    expect_every_nginx_pair(); /* and again: indexed once */
    buf_free(&raw);
}

/* fcgi_param_each before any lookup, then fcgi_param. */
static void test_each_before_any_lookup(void)
{
    struct buf raw = {0};
    const char *why;

    put_nginx(&raw);
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    expect_every_nginx_pair();
    CU_ASSERT_TRUE(req.indexed);
    for (size_t i = 0; i < NGINX_N; i++)
        CU_ASSERT_STRING_EQUAL(fcgi_param(&req, nginx[i][0]), nginx[i][1]);
    buf_free(&raw);
}

/* Pairs past the first 32 are indexed after the raw ones; the room is
 * taken and charged while decoding, so the lookup that indexes them later
 * cannot fail: a budget of just that room is enough, one byte less is not
 * (and then nothing is noted). */
static void test_index_room_on_budget(void)
{
    struct buf raw = {0};
    struct seen seen = {0};
    const char *why;
    unsigned n = REQUEST_PAIRS_INLINE + 9;
    size_t room;

    put_pair(&raw, "SCRIPT_NAME", "/s");
    put_numbered_pairs(&raw, n);
    put_pair(&raw, "REQUEST_URI", "/u");
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    room = req.params_charged - raw.len; /* (decode charges raw.len for the pairs) */
    CU_ASSERT(room >= (n + 2) * sizeof(struct param_ref));

    CU_ASSERT_EQUAL_FATAL(decode_on_budget(&raw, room, &why), 0);
    CU_ASSERT_EQUAL(srv.params_bytes, srv.cfg.limits.max_buffered_params_bytes);
    /* past the last value's NUL, aligned, and all of it in the buffer */
    CU_ASSERT(req.pairs_off > raw.len && req.pairs_off % _Alignof(struct param_ref) == 0);
    CU_ASSERT(req.pairs_off + (n + 2) * sizeof(struct param_ref) <= req.params.cap);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "SCRIPT_NAME"), "/s");
    CU_ASSERT_FALSE(req.indexed);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "HTTP_X_40"), "v280");
    CU_ASSERT_TRUE(req.indexed);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "HTTP_X_0"), "v0");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "REQUEST_URI"), "/u");
    CU_ASSERT_EQUAL(strlen(req.known[KNOWN_REQUEST_URI].s), 2);
    fcgi_param_each(&req, collect, &seen);
    CU_ASSERT_EQUAL(seen.n, n + 2);
    CU_ASSERT_STRING_EQUAL(seen.names[n + 1], "REQUEST_URI");
    CU_ASSERT_STRING_EQUAL(seen.values[33], "v224");
    CU_ASSERT_EQUAL(srv.params_bytes, srv.cfg.limits.max_buffered_params_bytes);

    CU_ASSERT_EQUAL(decode_on_budget(&raw, room - 1, &why), -2);
    CU_ASSERT(srv.params_bytes <= srv.cfg.limits.max_buffered_params_bytes);
    CU_ASSERT_EQUAL(req.npairs, 0);
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "SCRIPT_NAME"));
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "HTTP_X_0"));
    buf_free(&raw);
}

/* A request reused for another keeps the index of the one before
 * (request_alloc clears all but pairs_inline): it is never read. */
static void test_reused_request(void)
{
    struct buf first = {0}, raw = {0};
    struct seen seen = {0};
    const char *why;

    put_nginx(&first);
    CU_ASSERT_EQUAL_FATAL(decode(&first, &why), 0);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "HTTP_ACCEPT"), "*/*"); /* indexed */

    /* cleared as request_alloc clears a spare request, then decoded */
    buf_free(&req.params);
    memset(&req, 0, offsetof(struct fcgi_request, pairs_inline));
    req.srv = &srv;
    put_pair(&raw, "QUERY_STRING", "q=1");
    put_pair(&raw, "HTTP_ACCEPT", "text/html");
    CU_ASSERT_FATAL(request_grow_charged(&req.params, raw.len, raw.len, &srv.params_bytes,
                                         SIZE_MAX, &req.params_charged, NULL));
    memcpy(req.params.data, raw.data, raw.len);
    req.params.len = raw.len;
    CU_ASSERT_EQUAL_FATAL(request_decode_params(&req, &why), 0);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "HTTP_ACCEPT"), "text/html");
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "QUERY_STRING"), "q=1");
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "SERVER_PORT"));
    fcgi_param_each(&req, collect, &seen);
    CU_ASSERT_EQUAL(seen.n, 2);

    /* decoded again (the same request): indexed again */
    raw.data[raw.len - 1] = 'x'; /* text/htmx */
    memcpy(req.params.data, raw.data, raw.len);
    CU_ASSERT_EQUAL_FATAL(request_decode_params(&req, &why), 0);
    CU_ASSERT_FALSE(req.indexed);
    CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "HTTP_ACCEPT"), "text/htmx");
    buf_free(&first);
    buf_free(&raw);
}

/* Once the input is given back (an early answer), nothing is found and
 * nothing is indexed (the buffer is gone). */
static void test_after_the_input_is_given_back(void)
{
    struct buf raw = {0};
    struct seen seen = {0};
    const char *why;
    size_t len;

    put_nginx(&raw);
    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    request_release_input(&req);
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "HTTP_ACCEPT"));
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "REQUEST_METHOD"));
    CU_ASSERT_PTR_NULL(fcgi_known_param(&req, FCGI_SCRIPT_NAME, &len));
    fcgi_param_each(&req, collect, &seen);
    CU_ASSERT_EQUAL(seen.n, 0);
    CU_ASSERT_FALSE(req.indexed);
    request_spares_free(&srv);
    buf_free(&raw);
}

/* ---- the rules written again, the plainest way, to compare with ------- */

struct ref_pair {
    size_t name, nl, vl;
};

/* One length at *pos of b[0..len): false when cut short. */
static bool ref_length(const uint8_t *b, size_t len, size_t *pos, size_t *n)
{
    if (*pos >= len)
        return false;
    if (!(b[*pos] & 0x80)) {
        *n = b[(*pos)++];
        return true;
    }
    if (len - *pos < 4)
        return false;
    *n = (size_t)(b[*pos] & 0x7f) << 24 | (size_t)b[*pos + 1] << 16 | (size_t)b[*pos + 2] << 8 |
         b[*pos + 3];
    *pos += 4;
    return true;
}

/* The pairs of b[0..len) into p (n of them), or -1 and *why: the first
 * fault as the pairs come, a NUL in a name or value before it first. */
static int ref_decode(const uint8_t *b, size_t len, struct ref_pair *p, unsigned *n,
                      const char **why)
{
    size_t pos = 0, nl, vl;
    bool nul = false;

    *n = 0;
    while (pos < len) {
        if (!ref_length(b, len, &pos, &nl) || !ref_length(b, len, &pos, &vl)) {
            *why = nul ? "NUL byte inside a param name or value" : "name-value pair length cut short";
            return -1;
        }
        if (nl + vl > len - pos) {
            *why = nul ? "NUL byte inside a param name or value"
                       : "name-value pair longer than its record";
            return -1;
        }
        for (size_t i = pos; i < pos + nl + vl; i++)
            nul = nul || b[i] == 0;
        p[(*n)++] = (struct ref_pair){pos, nl, vl};
        pos += nl + vl;
    }
    if (nul) {
        *why = "NUL byte inside a param name or value";
        return -1;
    }
    return 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15;

static unsigned rnd(unsigned below)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % below);
}

/* A length as a test of the zero checks likes it: often 0, or around 8
 * and 16 (where the check of a short pair changes), else anything up to 40. */
static size_t some_length(void)
{
    static const size_t near[] = {0, 0, 0, 1, 2, 7, 8, 9, 12, 14, 15, 16, 17, 18};

    return rnd(3) ? near[rnd(sizeof near / sizeof near[0])] : rnd(41);
}

struct call_pairs {
    unsigned n;
    struct {
        const char *name, *value;
        size_t nl;
    } p[16];
};

static void collect_all(void *arg, const char *name, size_t name_len, const char *value)
{
    struct call_pairs *c = arg;

    if (c->n < 16)
        c->p[c->n].name = name, c->p[c->n].nl = name_len, c->p[c->n].value = value;
    c->n++;
}

/* The engine's own params are the last of their names. */
static void check_known_as_the_rules_say(const struct buf *raw, const struct ref_pair *p,
                                         unsigned n)
{
    static const char *const known[] = {
        [FCGI_REQUEST_METHOD] = "REQUEST_METHOD", [FCGI_SCRIPT_NAME] = "SCRIPT_NAME",
        [FCGI_PATH_INFO] = "PATH_INFO", [FCGI_REQUEST_URI] = "REQUEST_URI"};

    for (int k = 0; k < 4; k++) {
        const uint8_t *want = NULL;
        size_t want_len = 0, len;
        const char *v = fcgi_known_param(&req, (enum fcgi_known_param)k, &len);

        for (unsigned i = 0; i < n; i++)
            if (p[i].nl == strlen(known[k]) && !memcmp(raw->data + p[i].name, known[k], p[i].nl)) {
                want = raw->data + p[i].name + p[i].nl;
                want_len = p[i].vl;
            }
        CU_ASSERT_EQUAL_FATAL(v == NULL, want == NULL);
        CU_ASSERT_EQUAL_FATAL(len, want_len);
        if (want)
            CU_ASSERT_FATAL(memcmp(v, want, len) == 0 && v[len] == '\0');
    }
}

/* fcgi_param of the name of pair i: the value of the first pair of that
 * name, of the last for the engine's own four. */
static void check_lookup_as_the_rules_say(const struct buf *raw, const struct ref_pair *p,
                                          unsigned n, unsigned i)
{
    static const char *const known[] = {"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO",
                                        "REQUEST_URI"};
    char name[41]; /* (some_length is 40 at most) */
    bool last = false;
    const char *v;
    unsigned w = n;

    memcpy(name, raw->data + p[i].name, p[i].nl);
    name[p[i].nl] = '\0';
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        last = last || !strcmp(name, known[k]);
    for (unsigned j = 0; j < n; j++)
        if (p[j].nl == p[i].nl && !memcmp(raw->data + p[j].name, name, p[i].nl) &&
            (last || w == n))
            w = j;
    v = fcgi_param(&req, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL_FATAL(strlen(v), p[w].vl);
    CU_ASSERT_FATAL(memcmp(v, raw->data + p[w].name + p[w].nl, p[w].vl) == 0);
}

/* Random pairs (empty names and values, 4-byte lengths, the engine's own
 * names, a NUL here and there, bytes missing or left over at the end)
 * decode as the plain rules say: the same pairs, or the same fault. */
static void test_against_the_rules(void)
{
    static const char *const names[] = {"SCRIPT_NAME", "PATH_INFO", "REQUEST_METHOD",
                                        "REQUEST_URI", "CONTENT_TYPE", "QUERY_STRING"};

    for (unsigned round = 0; round < 30000; round++) {
        struct buf raw = {0};
        struct ref_pair want[16];
        struct call_pairs got = {0};
        unsigned npairs = rnd(9), nwant;
        const char *why, *want_why = NULL;
        int rc, want_rc;
        uint8_t text[2 * 40]; /* (some_length is 40 at most) */

        for (unsigned i = 0; i < npairs; i++) {
            const char *known = rnd(4) ? NULL : names[rnd(sizeof names / sizeof names[0])];
            size_t nl = known ? strlen(known) : some_length(), vl = some_length();

            for (size_t k = 0; k < nl + vl; k++)
                text[k] = (uint8_t)('a' + rnd(26));
            if (known)
                memcpy(text, known, nl);
            if (nl + vl > 0 && !rnd(12)) /* a NUL somewhere in the name or value */
                text[rnd((unsigned)(nl + vl))] = 0;
            put_len(&raw, nl, !rnd(5));
            put_len(&raw, vl, !rnd(5));
            buf_append(&raw, text, nl + vl);
        }
        if (!rnd(8) && raw.len > 0) /* cut short */
            raw.len -= 1 + rnd(raw.len < 3 ? (unsigned)raw.len : 3);
        else if (!rnd(8)) /* bytes left over */
            for (unsigned k = 1 + rnd(3); k > 0; k--) {
                uint8_t junk = rnd(2) ? 0 : (uint8_t)rnd(256);

                buf_append(&raw, &junk, 1);
            }

        want_rc = ref_decode(raw.data, raw.len, want, &nwant, &want_why);
        rc = decode(&raw, &why);
        if (rc != want_rc || (rc < 0 && strcmp(why, want_why) != 0)) {
            fprintf(stderr, "round %u: %d (%s), the rules say %d (%s)\n", round, rc,
                    rc < 0 ? why : "", want_rc, want_rc < 0 ? want_why : "");
            CU_FAIL_FATAL("decoded otherwise than the rules say");
        }
        if (rc == 0) {
            /* the index is made by the first lookup that needs it: before
             * it the engine's own are read, or a name is looked up, or
             * every pair is walked first */
            unsigned order = rnd(3);

            if (order == 1)
                check_known_as_the_rules_say(&raw, want, nwant);
            if (order >= 1 && nwant > 0)
                check_lookup_as_the_rules_say(&raw, want, nwant, rnd(nwant));
            fcgi_param_each(&req, collect_all, &got);
            CU_ASSERT_EQUAL_FATAL(got.n, nwant);
            for (unsigned i = 0; i < nwant; i++) {
                const uint8_t *name = raw.data + want[i].name;

                CU_ASSERT_EQUAL_FATAL(got.p[i].nl, want[i].nl);
                CU_ASSERT_FATAL(memcmp(got.p[i].name, name, want[i].nl) == 0);
                CU_ASSERT_EQUAL_FATAL(strlen(got.p[i].value), want[i].vl);
                CU_ASSERT_FATAL(memcmp(got.p[i].value, name + want[i].nl, want[i].vl) == 0);
            }
            check_known_as_the_rules_say(&raw, want, nwant);
            if (nwant > 0)
                check_lookup_as_the_rules_say(&raw, want, nwant, rnd(nwant));
        }
        buf_free(&raw);
    }
}

static void test_no_params(void)
{
    struct buf raw = {0};
    struct seen seen = {0};
    const char *why;

    CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "SCRIPT_NAME"));
    CU_ASSERT_PTR_NULL(fcgi_param(&req, "QUERY_STRING"));
    fcgi_param_each(&req, collect, &seen);
    CU_ASSERT_EQUAL(seen.n, 0);
}

static void test_content_length(void)
{
    static const struct {
        const char *value;
        int has, bad;
        size_t n;
    } cases[] = {
        {"", 0, 0, 0}, {"-1", 0, 0, 0}, {"0", 1, 0, 0}, {"12345", 1, 0, 12345},
        {"12a", 1, 1, 0}, {"-2", 1, 1, 0}, {" 1", 1, 1, 0},
        {"99999999999999999999999", 1, 1, 0},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf raw = {0};
        const char *why;

        put_pair(&raw, "CONTENT_LENGTH", cases[i].value);
        CU_ASSERT_EQUAL_FATAL(decode(&raw, &why), 0);
        CU_ASSERT_EQUAL(req.has_content_length, cases[i].has);
        CU_ASSERT_EQUAL(req.content_length_bad, cases[i].bad);
        if (!cases[i].bad)
            CU_ASSERT_EQUAL(req.content_length, cases[i].n);
        CU_ASSERT_STRING_EQUAL(fcgi_param(&req, "CONTENT_LENGTH"), cases[i].value);
        buf_free(&raw);
    }
}

/* A request's params buffer goes back to the server's spares and is taken
 * again by a first allocation of exactly its size: charged as a new one. */
static void test_spare_buffers(void)
{
    struct fcgi_request other;
    uint8_t *kept;

    reset();
    CU_ASSERT_FATAL(request_grow_charged(&req.params, 300, 65536, &srv.params_bytes, SIZE_MAX,
                                         &req.params_charged, &srv.params_spares));
    CU_ASSERT_EQUAL(req.params.cap, 512);
    kept = req.params.data;
    request_release_input(&req);
    CU_ASSERT_EQUAL(srv.params_bytes, 0);
    CU_ASSERT_EQUAL(srv.params_spares.n, 1);
    CU_ASSERT_PTR_NULL(req.params.data);

    /* 1000 bytes want 1024: a new buffer, the spare stays */
    memset(&other, 0, sizeof other);
    other.srv = &srv;
    CU_ASSERT_FATAL(request_grow_charged(&other.params, 1000, 65536, &srv.params_bytes, SIZE_MAX,
                                         &other.params_charged, &srv.params_spares));
    CU_ASSERT(other.params.data != kept);
    CU_ASSERT_EQUAL(srv.params_spares.n, 1);
    /* 400 bytes want 512: the spare, charged its 512 bytes */
    CU_ASSERT_FATAL(request_grow_charged(&req.params, 400, 65536, &srv.params_bytes, SIZE_MAX,
                                         &req.params_charged, &srv.params_spares));
    CU_ASSERT_PTR_EQUAL(req.params.data, kept);
    CU_ASSERT_EQUAL(srv.params_spares.n, 0);
    CU_ASSERT_EQUAL(req.params_charged, 512);
    CU_ASSERT_EQUAL(srv.params_bytes, 512 + 1024);
    /* refused by the budget: nothing taken */
    request_release_input(&req);
    request_release_input(&other);
    CU_ASSERT_EQUAL(srv.params_spares.n, 2);
    CU_ASSERT_FALSE(request_grow_charged(&req.params, 400, 65536, &srv.params_bytes, 100,
                                         &req.params_charged, &srv.params_spares));
    CU_ASSERT_EQUAL(srv.params_spares.n, 2);
    CU_ASSERT_EQUAL(srv.params_bytes, 0);
    /* a large buffer is not kept */
    CU_ASSERT_FATAL(request_grow_charged(&req.params, 5000, 65536, &srv.params_bytes, SIZE_MAX,
                                         &req.params_charged, &srv.params_spares));
    request_release_input(&req);
    CU_ASSERT_EQUAL(srv.params_spares.n, 2);
    request_spares_free(&srv);
    CU_ASSERT_EQUAL(srv.params_spares.n, 0);
}

/* A request kept for reuse keeps its (small) params buffer: the next
 * request begun takes it, and it is charged to the budget whole at its
 * first use, and given back when that request goes. */
static void test_spare_request_keeps_its_buffer(void)
{
    struct fcgi_server s = {0};
    struct fcgi_conn c = {0};
    struct fcgi_request *r;
    uint8_t *kept;
    size_t request_bytes;

    s.loop = ev_loop_new(EVFLAG_AUTO);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.loop);
    fcgi_limits_default(&s.cfg.limits);
    s.cfg.limits.request_timeout = 0;
    s.stats = &s.own_stats;
    list_init(&s.receiving);
    list_init(&s.timing);
    c.srv = &s;

    r = request_new(&c, 1, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    request_bytes = s.params_bytes;
    CU_ASSERT_FATAL(request_grow_charged(&r->params, 300, 65536, &s.params_bytes, SIZE_MAX,
                                         &r->params_charged, &s.params_spares));
    CU_ASSERT_EQUAL(r->params.cap, 512);
    CU_ASSERT_EQUAL(s.params_bytes, request_bytes + 512);
    memcpy(r->params.data, "stale", 5);
    r->params.len = 5;
    kept = r->params.data;
    r->answered = true;
    request_unref(r); /* the last reference: kept for reuse, with its buffer */
    CU_ASSERT_EQUAL(s.params_bytes, 0);
    CU_ASSERT_EQUAL(s.nspare, 1);
    CU_ASSERT_EQUAL(s.params_spares.n, 0);

    r = request_new(&c, 2, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_EQUAL(r->params.data, kept);
    CU_ASSERT_EQUAL(r->params.len, 0);
    CU_ASSERT_EQUAL(r->params_charged, 0);
    CU_ASSERT_EQUAL(s.params_bytes, request_bytes); /* not charged before it is used */
    /* a budget short of the whole buffer refuses even a byte */
    CU_ASSERT_FALSE(request_grow_charged(&r->params, 1, 65536, &s.params_bytes,
                                         request_bytes + 511, &r->params_charged,
                                         &s.params_spares));
    CU_ASSERT_EQUAL(s.params_bytes, request_bytes);
    CU_ASSERT_FATAL(request_grow_charged(&r->params, 100, 65536, &s.params_bytes, SIZE_MAX,
                                         &r->params_charged, &s.params_spares));
    CU_ASSERT_PTR_EQUAL(r->params.data, kept);
    CU_ASSERT_EQUAL(r->params_charged, 512);
    CU_ASSERT_EQUAL(s.params_bytes, request_bytes + 512);
    /* growing past it charges only the difference */
    r->params.len = 100;
    CU_ASSERT_FATAL(request_grow_charged(&r->params, 600, 65536, &s.params_bytes, SIZE_MAX,
                                         &r->params_charged, &s.params_spares));
    CU_ASSERT_EQUAL(r->params.cap, 1024);
    CU_ASSERT_EQUAL(r->params_charged, 1024);
    CU_ASSERT_EQUAL(s.params_bytes, request_bytes + 1024);
    r->answered = true;
    request_unref(r);
    CU_ASSERT_EQUAL(s.params_bytes, 0);
    request_spares_free(&s); /* frees the kept buffer too (valgrind, ASan) */
    CU_ASSERT_EQUAL(s.nspare, 0);
    ev_loop_destroy(s.loop);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"nginx's params: every one found, in order", test_nginx_params},
        {"a request kept for reuse keeps its params buffer", test_spare_request_keeps_its_buffer},
        {"the engine's own params, with their lengths", test_known_param},
        {"what the router reads and sets, in one call each", test_routing_in_one_call},
        {"4-byte lengths, short ones too", test_long_and_padded_lengths},
        {"a NUL in a name or value is refused", test_nul_refused},
        {"malformed pairs, and which fault is reported", test_malformed},
        {"a name given twice", test_duplicates},
        {"more pairs than the request indexes", test_many_pairs},
        {"empty names and values, 4-byte lengths among 1-byte ones",
         test_empty_and_mixed_lengths},
        {"names like the engine's own", test_names_like_the_known_ones},
        {"stray bytes after the pairs", test_stray_bytes_after_the_pairs},
        {"a NUL, then a malformed pair or an index over budget", test_nul_and_what_comes_after},
        {"zero length bytes in a row, a NUL in the last byte", test_zero_runs_then_a_last_nul},
        {"pairs filling their buffer", test_pairs_fill_the_buffer},
        {"the engine's own NUL-terminated before the index, the same after",
         test_known_before_the_index},
        {"every pair walked before any lookup", test_each_before_any_lookup},
        {"the index's room taken while decoding: just enough, one byte short",
         test_index_room_on_budget},
        {"a reused request's old index is never read", test_reused_request},
        {"nothing found once the input is given back", test_after_the_input_is_given_back},
        {"random pairs decode as the plain rules say", test_against_the_rules},
        {"no params", test_no_params},
        {"CONTENT_LENGTH", test_content_length},
        {"params buffers kept for reuse, charged as new ones", test_spare_buffers},
        {NULL, NULL},
    };
    int rc = unit_run("params", tests, 60);

    buf_free(&req.params);
    return rc;
}
