/*
 * tests/unit/test_router.c — path and method matching (routes/router.c)
 * against a table of the test's own and against the service's real table
 * (routes/table.c), and percent-decoding.
 *
 * router_path() and router_dispatch() need a live request: the
 * integration tests cover them.
 */
#include "tests/unit/unit.h"
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "routes/handlers.h"
#include "routes/kv_route.h"
#include "routes/router.h"
#include "routes/table.h"

/* ---- a table of the test's own ---------------------------------------- */

/* Never called: matching is compared by function pointer. */
static void h_get(struct fcgi_request *r, const struct route_match *m) { (void)r, (void)m; }
static void h_post(struct fcgi_request *r, const struct route_match *m) { (void)r, (void)m; }
static void h_get2(struct fcgi_request *r, const struct route_match *m) { (void)r, (void)m; }
static void h_post2(struct fcgi_request *r, const struct route_match *m) { (void)r, (void)m; }

static const int arg_exact, arg_both, arg_tail, arg_post_only, arg_prefix, arg_prefix_tail,
    arg_special, arg_get_tail;

static const struct route_method get_only[] = {METHOD("GET", h_get), METHODS_END};
static const struct route_method get2_only[] = {METHOD("GET", h_get2), METHODS_END};
static const struct route_method get_post[] = {METHOD("GET", h_get), METHOD("POST", h_post), METHODS_END};
static const struct route_method post_only[] = {METHOD("POST", h_post), METHODS_END};
static const struct route_method get2_post2[] = {
    METHOD("GET", h_get2), METHOD("POST", h_post2), METHODS_END};
/* a method beyond GET/POST is one more row; its own HEAD replaces GET's */
static const struct route_method many[] = {
    METHOD("PUT", h_post2), METHOD("GET", h_get), METHOD("DELETE", h_post), METHOD("HEAD", h_get2), METHODS_END};

static const int arg_exact, arg_both, arg_tail, arg_post_only, arg_prefix, arg_prefix_tail,
    arg_special, arg_get_tail, arg_many;

static const struct route table[] = {
    ROUTE("/t/exact", false, get_only, &arg_exact),
    ROUTE("/t/both", false, get_post, &arg_both),
    /* an exact route before a tail route that also covers it: first wins */
    ROUTE("/t/items/special", false, get2_only, &arg_special),
    ROUTE("/t/items/", true, get_post, &arg_tail),
    ROUTE("/t/postonly/", true, post_only, &arg_post_only),
    ROUTE("/t/gettail/", true, get2_only, &arg_get_tail),
    /* a route defining the prefix itself, beside its tail route */
    ROUTE("/t/dir", false, get2_post2, &arg_prefix),
    ROUTE("/t/dir/", true, get_only, &arg_prefix_tail),
    ROUTE("/t/many", false, many, &arg_many),
};
#define NTABLE (sizeof table / sizeof table[0])

struct rcase {
    const char *method;
    const char *path;
    size_t path_len;        /* 0: strlen(path) */
    int status;             /* 0, 404, 405 */
    route_handler handler;  /* when 0 */
    const void *arg;        /* when 0 or 405 */
    bool head;
    const char *tail;       /* when the route has one; NULL: none */
    size_t tail_len;        /* 0: strlen(tail) */
    const char *allow;      /* when 405 */
};

#define OK(m, p, h, a, hd, t) {m, p, 0, 0, h, a, hd, t, 0, NULL}
#define NF(m, p) {m, p, 0, 404, NULL, NULL, false, NULL, 0, NULL}
#define NA(m, p, a, allow) {m, p, 0, 405, NULL, a, false, NULL, 0, allow}

static const struct rcase own_cases[] = {
    /* exact */
    OK("GET", "/t/exact", h_get, &arg_exact, false, NULL),
    OK("HEAD", "/t/exact", h_get, &arg_exact, true, NULL),
    OK("GET", "/t/both", h_get, &arg_both, false, NULL),
    OK("HEAD", "/t/both", h_get, &arg_both, true, NULL),
    OK("POST", "/t/both", h_post, &arg_both, false, NULL),
    NF("GET", "/t/exact/"),
    NF("GET", "/t/exac"),
    NF("GET", "/t/exactly"),
    NF("GET", "/t/EXACT"),
    NF("GET", "/t/exact?x=1"), /* the router sees paths, never queries */
    NF("GET", "t/exact"),
    NF("GET", "//t/exact"),
    NF("GET", "/t/exact%00"),
    NF("GET", ""),
    NF("GET", "/"),
    /* 405 with Allow */
    NA("POST", "/t/exact", &arg_exact, "GET, HEAD"),
    NA("PUT", "/t/exact", &arg_exact, "GET, HEAD"),
    NA("PUT", "/t/both", &arg_both, "GET, HEAD, POST"),
    NA("DELETE", "/t/both", &arg_both, "GET, HEAD, POST"),
    NA("OPTIONS", "/t/both", &arg_both, "GET, HEAD, POST"),
    NA("get", "/t/both", &arg_both, "GET, HEAD, POST"), /* methods are case-sensitive */
    NA("GETX", "/t/both", &arg_both, "GET, HEAD, POST"),
    NA("", "/t/both", &arg_both, "GET, HEAD, POST"),
    NA("GET", "/t/postonly/x", &arg_post_only, "POST"),
    NA("HEAD", "/t/postonly/x", &arg_post_only, "POST"),
    NA("POST", "/t/gettail/x", &arg_get_tail, "GET, HEAD"),
    /* tails */
    OK("GET", "/t/items/a", h_get, &arg_tail, false, "a"),
    OK("HEAD", "/t/items/a", h_get, &arg_tail, true, "a"),
    OK("POST", "/t/items/bob", h_post, &arg_tail, false, "bob"),
    OK("GET", "/t/items/a/b/c", h_get, &arg_tail, false, "a/b/c"),
    OK("GET", "/t/items//", h_get, &arg_tail, false, "/"),
    OK("GET", "/t/items/ spaces and\ttabs ", h_get, &arg_tail, false, " spaces and\ttabs "),
    OK("GET", "/t/items/100%", h_get, &arg_tail, false, "100%"),
    OK("GET", "/t/items/%41%2F", h_get, &arg_tail, false, "%41%2F"), /* not decoded again */
    OK("GET", "/t/items/a+b", h_get, &arg_tail, false, "a+b"),
    OK("GET", "/t/items/\"quoted\" 'single'", h_get, &arg_tail, false, "\"quoted\" 'single'"),
    OK("GET", "/t/items/homer-\xc3\xa9\xe2\x82\xac\xf0\x9f\x8d\xa9", h_get, &arg_tail, false,
       "homer-\xc3\xa9\xe2\x82\xac\xf0\x9f\x8d\xa9"),
    OK("GET", "/t/items/\x01\x7f\x80\xff\r\n", h_get, &arg_tail, false, "\x01\x7f\x80\xff\r\n"),
    OK("GET", "/t/items/..", h_get, &arg_tail, false, ".."),
    OK("GET", "/t/items/special", h_get2, &arg_special, false, NULL), /* first match wins */
    OK("GET", "/t/items/special/", h_get, &arg_tail, false, "special/"),
    OK("POST", "/t/items/specialx", h_post, &arg_tail, false, "specialx"),
    NF("GET", "/t/items/"),  /* empty tail */
    NF("POST", "/t/items/"),
    NF("GET", "/t/items"),   /* prefix without the slash */
    NF("PUT", "/t/items"),
    NF("GET", "/t/item/a"),
    NF("GET", "/T/items/a"),
    /* ... unless a route defines it */
    OK("GET", "/t/dir", h_get2, &arg_prefix, false, NULL),
    OK("POST", "/t/dir", h_post2, &arg_prefix, false, NULL),
    OK("GET", "/t/dir/x", h_get, &arg_prefix_tail, false, "x"),
    NA("POST", "/t/dir/x", &arg_prefix_tail, "GET, HEAD"),
    /* a table of four methods, one of them HEAD of its own */
    OK("PUT", "/t/many", h_post2, &arg_many, false, NULL),
    OK("DELETE", "/t/many", h_post, &arg_many, false, NULL),
    OK("GET", "/t/many", h_get, &arg_many, false, NULL),
    OK("HEAD", "/t/many", h_get2, &arg_many, false, NULL),
    NA("POST", "/t/many", &arg_many, "PUT, GET, DELETE, HEAD"),
    NF("GET", "/t/dir/"),
    /* unknown method on an unknown path: 404, not 405 */
    NF("BREW", "/coffee"),
    NF("DELETE", "/t/nothing"),
    NF("PUT", "/t/items/"),
};

/* A path with bytes after path_len: they must not take part. */
static const struct rcase own_len_cases[] = {
    {"GET", "/t/exactXYZ", 8, 0, h_get, &arg_exact, false, NULL, 0, NULL},
    {"GET", "/t/items/aXYZ", 10, 0, h_get, &arg_tail, false, "a", 1, NULL},
    {"GET", "/t/items/XYZ", 9, 404, NULL, NULL, false, NULL, 0, NULL},
    {"GET", "/t/exact", 7, 404, NULL, NULL, false, NULL, 0, NULL},
};

static void check_case(const struct route *tbl, size_t n, const struct rcase *c)
{
    struct route_match m;
    size_t plen = c->path_len ? c->path_len : strlen(c->path);
    size_t tlen = c->tail ? (c->tail_len ? c->tail_len : strlen(c->tail)) : 0;
    char msg[300];
    bool ok;

    memset(&m, 0x5a, sizeof m); /* garbage: router_match must set everything */
    router_match(tbl, n, c->method, strlen(c->method), c->path, plen, &m);
    ok = m.status == c->status;
    if (c->status == 0) {
        ok = ok && m.handler == c->handler && m.arg == c->arg && m.route && m.head == c->head;
        if (c->tail)
            ok = ok && m.tail == c->path + (plen - tlen) && m.tail_len == tlen &&
                 memcmp(m.tail, c->tail, tlen) == 0 && m.route->has_tail;
        else
            ok = ok && !m.route->has_tail;
    } else if (c->status == 405) {
        ok = ok && m.route && m.arg == c->arg && !strcmp(m.allow, c->allow);
    } else {
        ok = ok && m.route == NULL && m.handler == NULL;
    }
    snprintf(msg, sizeof msg, "%s %.*s: status %d (expected %d), allow \"%.32s\", tail_len %zu",
             c->method, (int)plen, c->path, m.status, c->status,
             m.status == 405 ? m.allow : "", m.status == 0 ? m.tail_len : (size_t)0);
    CU_assertImplementation(ok, __LINE__, msg, __FILE__, "", CU_FALSE);
}

static void test_own_table(void)
{
    for (size_t i = 0; i < sizeof own_cases / sizeof own_cases[0]; i++)
        check_case(table, NTABLE, &own_cases[i]);
    for (size_t i = 0; i < sizeof own_len_cases / sizeof own_len_cases[0]; i++)
        check_case(table, NTABLE, &own_len_cases[i]);
}

/* A path with a NUL inside (only possible through path_len): matched by
 * length, never by C string. */
static void test_nul_in_path(void)
{
    static const char p1[] = "/t/items/a\0b";
    static const char p2[] = "/t/exact\0";
    static const char p3[] = "/t/exa\0ct";
    struct route_match m;

    router_match(table, NTABLE, "GET", 3, p1, sizeof p1 - 1, &m);
    CU_ASSERT_EQUAL(m.status, 0);
    CU_ASSERT_EQUAL(m.tail_len, 3);
    router_match(table, NTABLE, "GET", 3, p2, sizeof p2 - 1, &m);
    CU_ASSERT_EQUAL(m.status, 404);
    router_match(table, NTABLE, "GET", 3, p3, sizeof p3 - 1, &m);
    CU_ASSERT_EQUAL(m.status, 404);
}

/* The method is its length's bytes: what follows does not take part, and
 * neither a prefix of a method nor one longer is that method. */
static void test_method_lengths(void)
{
    static const struct {
        const char *method;
        size_t len;
        int status;
        bool head;
    } cases[] = {
        {"GETX", 3, 0, false}, {"HEADER", 4, 0, true}, {"POST", 4, 0, false},
        {"GET", 2, 405, false}, {"HEAD", 3, 405, false}, {"POS", 3, 405, false},
        {"POSTS", 5, 405, false}, {"GET", 0, 405, false},
    };
    struct route_match m;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&m, 0x5a, sizeof m);
        router_match(table, NTABLE, cases[i].method, cases[i].len, "/t/both", 7, &m);
        CU_ASSERT_EQUAL(m.status, cases[i].status);
        if (cases[i].status == 0) {
            CU_ASSERT_EQUAL(m.head, cases[i].head);
        } else {
            CU_ASSERT_STRING_EQUAL(m.allow, "GET, HEAD, POST");
        }
    }
}

static void test_empty_table(void)
{
    struct route_match m;

    router_match(table, 0, "GET", 3, "/t/exact", 8, &m);
    CU_ASSERT_EQUAL(m.status, 404);
    CU_ASSERT_PTR_NULL(m.route);
}

/* Every binary byte but NUL after a tail prefix: the tail comes back
 * intact; after an exact route: 404. */
static void test_binary_paths(void)
{
    char path[64];
    struct route_match m;
    int bad = 0;

    for (int c = 1; c < 256; c++) {
        int n = snprintf(path, sizeof path, "/t/items/%c%cz", c, c);

        router_match(table, NTABLE, "GET", 3, path, (size_t)n, &m);
        if (m.status != 0 || m.tail_len != 3 || m.tail != path + 9 || (uint8_t)m.tail[0] != c)
            bad++;
        n = snprintf(path, sizeof path, "/t/exact%c", c);
        router_match(table, NTABLE, "GET", 3, path, (size_t)n, &m);
        if (m.status != 404)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* ---- the service's real table ------------------------------------------ */

static const struct rcase real_cases[] = {
    OK("GET", "/api/v1/flanders", flanders_get, NULL, false, NULL),
    OK("HEAD", "/api/v1/flanders", flanders_get, NULL, true, NULL),
    NA("POST", "/api/v1/flanders", NULL, "GET, HEAD"),
    NA("PUT", "/api/v1/flanders", NULL, "GET, HEAD"),
    NF("GET", "/api/v1/flanders/"),
    NF("GET", "/api/v1/flanders/x"),
    NF("GET", "/api/v1/Flanders"),

    OK("GET", "/api/v1/homers/bart", kv_route_get, &homers_route, false, "bart"),
    OK("HEAD", "/api/v1/homers/bart", kv_route_get, &homers_route, true, "bart"),
    OK("POST", "/api/v1/homers/bart", kv_route_post, &homers_route, false, "bart"),
    OK("GET", "/api/v1/homers/a/b", kv_route_get, &homers_route, false, "a/b"),
    OK("GET", "/api/v1/homers/Mr. Plow", kv_route_get, &homers_route, false, "Mr. Plow"),
    OK("GET", "/api/v1/homers/d'oh \"doh\" 50%+", kv_route_get, &homers_route, false,
       "d'oh \"doh\" 50%+"),
    OK("GET", "/api/v1/homers/\xc3\xa9t\xc3\xa9", kv_route_get, &homers_route, false,
       "\xc3\xa9t\xc3\xa9"),
    NA("PUT", "/api/v1/homers/bart", &homers_route, "GET, HEAD, POST"),
    NA("DELETE", "/api/v1/homers/bart", &homers_route, "GET, HEAD, POST"),
    NF("GET", "/api/v1/homers/"),
    NF("POST", "/api/v1/homers/"),
    NF("GET", "/api/v1/homers"),
    NF("DELETE", "/api/v1/homers"),

    OK("GET", "/api/v1/marges/key", kv_route_get, &marges_route, false, "key"),
    OK("POST", "/api/v1/marges/\x01\xff", kv_route_post, &marges_route, false, "\x01\xff"),
    NA("PUT", "/api/v1/marges/key", &marges_route, "GET, HEAD, POST"),
    NF("GET", "/api/v1/marges/"),
    NF("GET", "/api/v1/marges"),

    OK("GET", "/api/v1/lisas/lisa", kv_route_get, &lisas_route, false, "lisa"),
    OK("POST", "/api/v1/lisas/lisa", kv_route_post, &lisas_route, false, "lisa"),
    NA("DELETE", "/api/v1/lisas/lisa", &lisas_route, "GET, HEAD, POST"),
    NF("GET", "/api/v1/lisas/"),
    NF("GET", "/api/v1/lisas"),

    OK("GET", "/api/v1/bart", kv_route_get, &bart_route, false, NULL),
    OK("HEAD", "/api/v1/bart", kv_route_get, &bart_route, true, NULL),
    OK("POST", "/api/v1/bart", kv_route_post, &bart_route, false, NULL),
    NA("PUT", "/api/v1/bart", &bart_route, "GET, HEAD, POST"),
    NA("DELETE", "/api/v1/bart", &bart_route, "GET, HEAD, POST"),
    NF("GET", "/api/v1/bart/"),
    NF("GET", "/api/v1/bart/x"),
    NF("GET", "/api/v1/barts"),

    OK("GET", "/api/v1/maggie", maggie_get, NULL, false, NULL),
    OK("HEAD", "/api/v1/maggie", maggie_get, NULL, true, NULL),
    NA("POST", "/api/v1/maggie", NULL, "GET, HEAD"),
    NF("GET", "/api/v1/maggie/"),
    NF("GET", "/api/v1/maggie/x"),

    OK("GET", "/api/v1/healthcheck", healthcheck_get, NULL, false, NULL),
    OK("HEAD", "/api/v1/healthcheck", healthcheck_get, NULL, true, NULL),
    NA("POST", "/api/v1/healthcheck", NULL, "GET, HEAD"),
    NA("DELETE", "/api/v1/healthcheck", NULL, "GET, HEAD"),
    NF("GET", "/api/v1/healthcheck/"),
    NF("GET", "/api/v1/healthchecks"),

    NF("GET", "/"),
    NF("GET", ""),
    NF("GET", "/api"),
    NF("GET", "/api/v1"),
    NF("GET", "/api/v1/"),
    NF("GET", "/api/v2/flanders"),
    NF("GET", "/API/V1/FLANDERS"),
    NF("BREW", "/api/v1/coffee"),
    NF("POST", "/api/v1/unknown/x"),
};

static void test_real_table(void)
{
    size_t n = 0;
    const struct route *t = route_table(&n);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_FATAL(n >= 7);
    for (size_t i = 0; i < sizeof real_cases / sizeof real_cases[0]; i++)
        check_case(t, n, &real_cases[i]);
}

/* Sanity of the real table itself: every route serves something, tail
 * routes end with '/', exact ones do not, and no route hides a later one
 * entirely (same path and kind twice). */
static void test_real_table_shape(void)
{
    size_t n = 0;
    const struct route *t = route_table(&n);

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(t[i].path);

        CU_ASSERT(t[i].methods && t[i].methods[0].method && t[i].methods[0].handler);
        CU_ASSERT_EQUAL(t[i].path_len, len);
        CU_ASSERT(len > 0 && t[i].path[0] == '/');
        CU_ASSERT_EQUAL(t[i].has_tail, len > 0 && t[i].path[len - 1] == '/');
        for (size_t j = i + 1; j < n; j++)
            CU_ASSERT(strcmp(t[i].path, t[j].path) != 0 || t[i].has_tail != t[j].has_tail);
    }
}

/* ---- percent-decoding ------------------------------------------------- */

struct pcase {
    const char *in;
    size_t in_len; /* 0: strlen */
    const char *out;
    size_t out_len; /* 0: strlen */
};

static const struct pcase pcases[] = {
    {"", 0, "", 0},
    {"plain", 0, "plain", 0},
    {"%41", 0, "A", 0},
    {"%2F", 0, "/", 0},
    {"%2f", 0, "/", 0},
    {"a%2Fb%2fc", 0, "a/b/c", 0},
    {"%4a%4A", 0, "JJ", 0},
    {"%e2%82%AC", 0, "\xe2\x82\xac", 0},
    {"%ff%FF%Ff", 0, "\xff\xff\xff", 0},
    {"%", 0, "%", 0},
    {"%4", 0, "%4", 0},
    {"%zz", 0, "%zz", 0},
    {"%4z", 0, "%4z", 0},
    {"%z4", 0, "%z4", 0},
    {"%g0", 0, "%g0", 0},
    {"%G0", 0, "%G0", 0},
    {"% 41", 0, "% 41", 0},
    {"100%", 0, "100%", 0},
    {"100%%", 0, "100%%", 0},
    {"%%41", 0, "%A", 0},
    {"%41%", 0, "A%", 0},
    {"%2541", 0, "%41", 0}, /* decoded once, not twice */
    {"a+b", 0, "a+b", 0},   /* '+' is not a space in a path */
    {"%20", 0, " ", 0},
    {"%00", 0, "\0", 1},
    {"a%00b", 0, "a\0b", 3},
    {"%41%42%43", 0, "ABC", 0},
    /* in_len shorter than the string: the escape is cut, kept as is */
    {"%41", 2, "%4", 0},
    {"%41", 1, "%", 0},
    {"ab%41", 4, "ab%4", 0},
};

static void test_percent_decode(void)
{
    for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
        const struct pcase *c = &pcases[i];
        size_t in_len = c->in_len ? c->in_len : strlen(c->in);
        size_t want_len = c->out_len ? c->out_len : strlen(c->out);
        char out[64];
        size_t n;
        bool ok;
        char msg[160];

        memset(out, 'X', sizeof out);
        n = router_percent_decode(c->in, in_len, out);
        ok = n == want_len && memcmp(out, c->out, want_len) == 0 && out[n] == '\0';
        snprintf(msg, sizeof msg, "percent_decode(\"%.*s\") gave %zu bytes \"%.*s\"",
                 (int)in_len, c->in, n, (int)(n < 60 ? n : 60), out);
        CU_assertImplementation(ok, __LINE__, msg, __FILE__, "", CU_FALSE);
    }
}

static int hexdigit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* All 256 byte values in the two places after '%'. */
/* route_label: the path, with NAME for a tail; the same string each time. */
static void test_route_labels(void)
{
    size_t n, i;
    const struct route *real = route_table(&n);
    const char *marges = NULL;

    CU_ASSERT_STRING_EQUAL(route_label(&table[0]), "/t/exact");
    CU_ASSERT_STRING_EQUAL(route_label(&table[3]), "/t/items/NAME");
    CU_ASSERT_PTR_EQUAL(route_label(&table[3]), route_label(&table[3]));
    CU_ASSERT_STRING_EQUAL(route_label(&table[7]), "/t/dir/NAME");
    CU_ASSERT_STRING_EQUAL(route_label(&table[6]), "/t/dir");
    for (i = 0; i < n; i++)
        if (!strcmp(real[i].path, "/api/v1/marges/"))
            marges = route_label(&real[i]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(marges);
    CU_ASSERT_STRING_EQUAL(marges, "/api/v1/marges/NAME");
}

static void test_percent_decode_exhaustive(void)
{
    int bad = 0;

    for (int hi = 0; hi < 256; hi++) {
        for (int lo = 0; lo < 256; lo++) {
            char in[3] = {'%', (char)hi, (char)lo}, out[4];
            size_t n = router_percent_decode(in, 3, out);
            int h = hexdigit(hi), l = hexdigit(lo);

            if (h >= 0 && l >= 0) {
                if (n != 1 || (uint8_t)out[0] != h * 16 + l || out[1] != '\0')
                    bad++;
            } else if (n != 3 || memcmp(out, in, 3) != 0 || out[3] != '\0') {
                bad++;
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Methods of 1 to 9 bytes: every byte counts (they are compared a word
 * at a time, the words overlapping), and so does the length. */
static void h_m(struct fcgi_request *r, const struct route_match *m) { (void)r, (void)m; }
static const struct route_method by_length[] = {
    METHOD("A", h_m),      METHOD("AB", h_m),      METHOD("ABC", h_m),
    METHOD("ABCD", h_m),   METHOD("ABCDE", h_m),   METHOD("ABCDEF", h_m),
    METHOD("ABCDEFG", h_m), METHOD("ABCDEFGH", h_m), METHOD("ABCDEFGHI", h_m),
    METHODS_END};

static void test_method_bytes(void)
{
    static const struct route t[] = {ROUTE("/m", false, by_length, NULL)};
    struct route_match m;
    char method[16];

    for (size_t len = 1; len <= 9; len++) {
        memcpy(method, "ABCDEFGHI", len);
        method[len] = '\0';
        router_match(t, 1, method, len, "/m", 2, &m);
        CU_ASSERT_EQUAL(m.status, 0);
        for (size_t i = 0; i < len; i++) {
            method[i] = 'x';
            router_match(t, 1, method, len, "/m", 2, &m);
            CU_ASSERT_EQUAL(m.status, 405);
            method[i] = (char)('A' + i);
        }
    }
    router_match(t, 1, "ABCDEFGHIJ", 10, "/m", 2, &m);
    CU_ASSERT_EQUAL(m.status, 405);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"own table", test_own_table},
        {"NUL inside a path", test_nul_in_path},
        {"methods by their length", test_method_lengths},
        {"methods of 1 to 9 bytes, every byte", test_method_bytes},
        {"empty table", test_empty_table},
        {"binary bytes in paths", test_binary_paths},
        {"real table", test_real_table},
        {"real table shape", test_real_table_shape},
        {"percent decode", test_percent_decode},
        {"route labels", test_route_labels},
        {"percent decode, every byte", test_percent_decode_exhaustive},
        {NULL, NULL},
    };

    return unit_run("router", tests, 120);
}
