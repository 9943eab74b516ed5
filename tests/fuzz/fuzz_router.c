/*
 * tests/fuzz/fuzz_router.c — libFuzzer target for router_match and
 * router_percent_decode (routes/router.c), against the service's real
 * route table (routes/table.c) and a small table of its own.
 *
 * Input layout: byte 0 picks the method (GET, HEAD, POST, PUT, DELETE,
 * OPTIONS, "get", "" or — for 8 — the following bytes up to the first
 * space, at most 15); the rest is the path, NULs and all.  Checked,
 * abort() on violation:
 *   - status is 0, 404 or 405; on 0 a handler and a route are set, HEAD
 *     only for HEAD, the path equals the route's path (exact) or starts
 *     with it and the tail is the non-empty rest (tail routes);
 *   - on 405 a route is set and Allow is one of the three forms;
 *   - the real table and the decoded path are matched as well;
 *   - percent-decoding never grows the text, always NUL-terminates, is the
 *     identity on text without '%', and matches a simple reference.
 *
 * router_dispatch and router_path need a live request and are not called:
 * the request API and the handlers are stubbed below (weak, so linking the
 * real library instead also works).  A handler added to routes/table.c
 * needs one more stub line here.
 *
 * Build: tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes/handlers.h"
#include "routes/kv_route.h"
#include "routes/router.h"
#include "routes/status_page.h"
#include "routes/table.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_router: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* ---- stubs: never called by this target ------------------------------- */

#define STUB_HANDLER(name)                                                                \
    __attribute__((weak)) void name(struct fcgi_request *r, const struct route_match *m) \
    {                                                                                     \
        (void)r;                                                                          \
        (void)m;                                                                          \
        abort();                                                                          \
    }

STUB_HANDLER(flanders_get)
STUB_HANDLER(maggie_get)
STUB_HANDLER(healthcheck_get)
STUB_HANDLER(kv_route_get)
STUB_HANDLER(kv_route_post)
__attribute__((weak)) const struct route_method kv_methods[] = {
    METHOD("GET", kv_route_get), METHOD("POST", kv_route_post), METHODS_END};
__attribute__((weak)) const struct kv_route marges_route = {.what = "marge"};
__attribute__((weak)) const struct kv_route homers_route = {.what = "homer"};
__attribute__((weak)) const struct kv_route lisas_route = {.what = "lisa"};
__attribute__((weak)) const struct kv_route bart_route = {.what = "bart"};

__attribute__((weak)) struct fcgi_request_routing fcgi_request_routing(const struct fcgi_request *r)
{
    (void)r;
    abort();
}

__attribute__((weak)) void fcgi_respond_error(struct fcgi_request *r, int status, const char *fmt,
                                              ...)
{
    (void)r;
    (void)status;
    (void)fmt;
    abort();
}

__attribute__((weak)) int fcgi_response_header(struct fcgi_request *r, const char *name,
                                               const char *value)
{
    (void)r;
    (void)name;
    (void)value;
    abort();
}

__attribute__((weak)) void fcgi_request_set_head_only(struct fcgi_request *r, bool head_only)
{
    (void)r;
    (void)head_only;
    abort();
}

__attribute__((weak)) void fcgi_request_set_route(struct fcgi_request *r, unsigned tag,
                                                 const char *label, bool head_only)
{
    (void)r;
    (void)tag;
    (void)label;
    (void)head_only;
    abort();
}

__attribute__((weak)) int fcgi_request_keep_params(struct fcgi_request *r)
{
    (void)r;
    abort();
}

__attribute__((weak)) void status_page_get(struct fcgi_request *r)
{
    (void)r;
    abort();
}

/* ---- the target --------------------------------------------------------- */

static void h_a(struct fcgi_request *r, const struct route_match *m) { (void)r, (void)m; }
static void h_b(struct fcgi_request *r, const struct route_match *m) { (void)r, (void)m; }

static const struct route_method get_a[] = {METHOD("GET", h_a), METHODS_END};
static const struct route_method post_b[] = {METHOD("POST", h_b), METHODS_END};
static const struct route_method get_a_post_b[] = {METHOD("GET", h_a), METHOD("POST", h_b), METHODS_END};
/* a HEAD row of its own replaces GET's for HEAD */
static const struct route_method many[] = {
    METHOD("PUT", h_b), METHOD("GET", h_a), METHOD("HEAD", h_b), METHOD("DELETE", h_a), METHODS_END};

static const struct route own[] = {
    ROUTE("/a", false, get_a, NULL),
    ROUTE("/a/", true, get_a_post_b, NULL),
    ROUTE("/b/", true, post_b, NULL),
    ROUTE("/", false, post_b, NULL),
    ROUTE("/%", true, get_a, NULL),
    ROUTE("/m", false, many, NULL),
};

/* The handler rt's table gives method, by the router's rules written
 * again: its own row, else GET's for HEAD (*head then); NULL when none. */
static route_handler expected(const struct route *rt, const char *method, bool *head)
{
    const struct route_method *m;
    route_handler get = NULL;

    *head = false;
    for (m = rt->methods; m->method; m++) {
        if (!strcmp(m->method, method))
            return m->handler;
        if (!strcmp(m->method, "GET"))
            get = m->handler;
    }
    if (get && !strcmp(method, "HEAD")) {
        *head = true;
        return get;
    }
    return NULL;
}

static void check_match(const struct route *t, size_t n, const char *method, const char *path,
                        size_t len)
{
    struct route_match m;

    memset(&m, 0xa5, sizeof m);
    router_match(t, n, method, strlen(method), path, len, &m);
    CHECK(m.status == 0 || m.status == 404 || m.status == 405);
    if (m.status == 0) {
        size_t plen;
        bool head;

        CHECK(m.route >= t && m.route < t + n);
        CHECK(m.handler != NULL);
        CHECK(m.arg == m.route->arg);
        plen = strlen(m.route->path);
        CHECK(len >= plen && memcmp(path, m.route->path, plen) == 0);
        CHECK(m.handler == expected(m.route, method, &head));
        CHECK(m.head == head);
        if (m.route->has_tail) {
            CHECK(len > plen);
            CHECK(m.tail == path + plen && m.tail_len == len - plen);
        } else {
            CHECK(len == plen);
        }
    } else if (m.status == 405) {
        const struct route_method *row;
        bool head;

        CHECK(m.route >= t && m.route < t + n);
        CHECK(m.handler == NULL);
        CHECK(expected(m.route, method, &head) == NULL);
        /* Allow names every method of the table (and HEAD beside GET) */
        CHECK(memchr(m.allow, '\0', sizeof m.allow) != NULL);
        for (row = m.route->methods; row->method; row++)
            CHECK(strstr(m.allow, row->method) != NULL);
        if (strstr(m.allow, "GET"))
            CHECK(strstr(m.allow, "HEAD") != NULL);
    } else {
        CHECK(m.route == NULL && m.handler == NULL);
        /* No route matches this path (by the router's own rules). */
        for (size_t i = 0; i < n; i++) {
            size_t plen = strlen(t[i].path);

            if (t[i].has_tail)
                CHECK(!(len > plen && memcmp(path, t[i].path, plen) == 0));
            else
                CHECK(!(len == plen && memcmp(path, t[i].path, plen) == 0));
        }
    }
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* A reference decoder written independently: %XX with two hex digits is
 * one byte, anything else is kept. */
static size_t ref_decode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%' && len - i >= 3 && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            out[o++] = (uint8_t)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                          "get", ""};
    char method[16];
    const uint8_t *path;
    size_t len, n, dlen;
    char *copy, *dec;
    uint8_t *ref;
    const struct route *table;

    if (size < 1)
        return 0;
    if (data[0] % 9 < 8) {
        strcpy(method, methods[data[0] % 9]);
        path = data + 1;
        len = size - 1;
    } else {
        size_t m = 0;

        while (m < 15 && 1 + m < size && data[1 + m] != ' ')
            m++;
        memcpy(method, data + 1, m);
        method[m] = '\0'; /* a NUL inside just shortens it */
        path = data + 1 + m;
        len = size - 1 - m;
    }

    /* exact-size copy: a read past len is an ASan error */
    copy = malloc(len ? len : 1);
    memcpy(copy, path, len);

    table = route_table(&n);
    check_match(table, n, method, copy, len);
    check_match(own, sizeof own / sizeof own[0], method, copy, len);

    dec = malloc(len + 1);
    ref = malloc(len + 1);
    dlen = router_percent_decode(copy, len, dec);
    CHECK(dlen <= len);
    CHECK(dec[dlen] == '\0');
    CHECK(ref_decode((const uint8_t *)copy, len, ref) == dlen);
    CHECK(memcmp(ref, dec, dlen) == 0);
    if (!memchr(copy, '%', len))
        CHECK(dlen == len && memcmp(dec, copy, len) == 0);
    check_match(table, n, method, dec, dlen);

    free(ref);
    free(dec);
    free(copy);
    return 0;
}
