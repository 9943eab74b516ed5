/* routes/router.c — path and method matching, and the dispatcher. */
#include "routes/router.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/word.h"
#include "routes/app.h"
#include "routes/status_page.h"
#include "routes/table.h"

/* "GET, HEAD, POST": the methods in table order, HEAD after GET unless
 * the table has its own. */
static void allow_list(const struct route *rt, char *out, size_t size)
{
    const struct route_method *m;
    bool own_head = false;
    size_t used = 0;

    for (m = rt->methods; m->method; m++)
        own_head = own_head || !strcmp(m->method, "HEAD");
    out[0] = '\0';
    for (m = rt->methods; m->method && used < size; m++) {
        bool get = !strcmp(m->method, "GET");

        used += (size_t)snprintf(out + used, size - used, "%s%s%s", used ? ", " : "",
                                 m->method, get && !own_head ? ", HEAD" : "");
    }
}

/* memcmp(a, b, n) == 0, inline: a word at a time, the last word
 * overlapping the one before (below 8 bytes, two words of 4 or of 2). */
static inline bool same_bytes(const char *a, const char *b, size_t n)
{
    size_t i;

    if (n < 8) {
        if (n >= 4)
            return word4(a) == word4(b) && word4(a + n - 4) == word4(b + n - 4);
        if (n >= 2)
            return word2(a) == word2(b) && word2(a + n - 2) == word2(b + n - 2);
        return n == 0 || a[0] == b[0];
    }
    for (i = 0; i + 8 < n; i += 8)
        if (word8(a + i) != word8(b + i))
            return false;
    return word8(a + n - 8) == word8(b + n - 8);
}

/* Whether the method row m is method (len bytes). */
static inline bool method_is(const struct route_method *m, const char *method, size_t len)
{
    return m->method_len == len && same_bytes(m->method, method, len);
}

/* The row of method on rt, or NULL; *head when HEAD goes to GET. */
static inline const struct route_method *find_method(const struct route *rt, const char *method,
                                                     size_t len, bool *head)
{
    const struct route_method *m, *get = NULL;

    *head = false;
    for (m = rt->methods; m->method; m++) {
        if (method_is(m, method, len))
            return m;
        if (method_is(m, "GET", 3))
            get = m;
    }
    if (get && len == 4 && same_bytes(method, "HEAD", 4)) {
        *head = true;
        return get;
    }
    return NULL;
}

/* Whether path (len bytes) is rt's, or under it for a route with a tail. */
static bool route_takes(const struct route *rt, const char *path, size_t len)
{
    if (rt->has_tail ? len <= rt->path_len : len != rt->path_len)
        return false;
    return same_bytes(path, rt->path, rt->path_len);
}

/* router_match, inline in the dispatcher (forced: GCC would not, and a
 * call and its frame cost as much as the matching). */
static inline __attribute__((always_inline)) void match(const struct route *table, size_t n,
                                                        const char *method, size_t method_len,
                                                        const char *path, size_t path_len,
                                                        struct route_match *m)
{
    const struct route *rt;
    const struct route_method *row;

    for (rt = table; rt < table + n; rt++)
        if (route_takes(rt, path, path_len))
            break;
    /* field by field, each once: allow[] is only written for a 405 */
    m->allow[0] = '\0';
    if (rt == table + n) {
        m->status = 404;
        m->route = NULL;
        m->handler = NULL;
        m->at_once = false;
        m->head = false;
        m->tail = NULL;
        m->tail_len = 0;
        m->arg = NULL;
        return;
    }
    m->route = rt;
    m->arg = rt->arg;
    m->tail = rt->has_tail ? path + rt->path_len : NULL;
    m->tail_len = rt->has_tail ? path_len - rt->path_len : 0;
    row = find_method(rt, method, method_len, &m->head);
    m->handler = row ? row->handler : NULL;
    m->at_once = row && row->at_once;
    m->status = m->handler ? 0 : 405;
    if (!m->handler)
        allow_list(rt, m->allow, sizeof m->allow);
}

void router_match(const struct route *table, size_t n, const char *method, size_t method_len,
                  const char *path, size_t path_len, struct route_match *m)
{
    match(table, n, method, method_len, path, path_len, m);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t router_percent_decode(const char *in, size_t len, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        int hi, lo;

        if (in[i] == '%' && i + 2 < len && (hi = hexval(in[i + 1])) >= 0 && (lo = hexval(in[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return o;
}

/* router_path, inline in the dispatcher, from the request's known params. */
static inline __attribute__((always_inline)) const char *path_of(const struct fcgi_param_str *known,
                                                                 char *buf, size_t *len)
{
    size_t sl = known[FCGI_SCRIPT_NAME].len, il = known[FCGI_PATH_INFO].len;
    const char *script = known[FCGI_SCRIPT_NAME].s, *info = known[FCGI_PATH_INFO].s;

    /* nginx: the whole path in SCRIPT_NAME, NUL-terminated there (first:
     * the one test for it) */
    if (il == 0 && sl - 1 < ROUTER_MAX_PATH) {
        *len = sl;
        return script;
    }
    if (sl == 0 && il == 0) {
        size_t ul;
        const char *uri = known[FCGI_REQUEST_URI].s;

        if (!uri)
            uri = "";
        ul = strcspn(uri, "?");
        if (ul > ROUTER_MAX_PATH)
            return NULL;
        *len = router_percent_decode(uri, ul, buf);
        return buf;
    }
    if (sl + il > ROUTER_MAX_PATH)
        return NULL;
    *len = sl + il;
    if (sl == 0)
        return info;
    memcpy(buf, script, sl);
    memcpy(buf + sl, info, il);
    buf[sl + il] = '\0';
    return buf;
}

const char *router_path(const struct fcgi_request *r, char *buf, size_t *len)
{
    return path_of(fcgi_request_routing(r).known, buf, len);
}

static bool status_path_is(const struct app *app, const char *path, size_t len)
{
    return app && app->status_path && app->status_path_len == len &&
           memcmp(app->status_path, path, len) == 0;
}

/* The status page is tagged as the row after the table's (metrics). */
static void serve_status(struct fcgi_request *r, const struct app *app, const char *method,
                         size_t ntable)
{
    bool head = method && !strcmp(method, "HEAD");

    fcgi_request_set_route(r, (unsigned)ntable + 1, app->status_path, head);
    if (!head && (!method || strcmp(method, "GET") != 0)) {
        fcgi_response_header(r, "Allow", "GET, HEAD");
        fcgi_respond_error(r, 405, "%.64s is not allowed on the status page (allowed: GET, HEAD)",
                           method ? method : "(none)");
        return;
    }
    status_page_get(r);
}

/* The labels of routes with a tail, made the first time each is asked
 * for and kept for the process's life (a handful: one per route). */
struct tail_label {
    const struct route *route;
    struct tail_label *next;
    char label[];
};

const char *route_label(const struct route *rt)
{
    static struct tail_label *labels;
    struct tail_label *l;
    size_t len;

    if (!rt->has_tail)
        return rt->path;
    for (l = labels; l; l = l->next)
        if (l->route == rt)
            return l->label;
    len = rt->path_len;
    l = malloc(sizeof *l + len + sizeof "NAME");
    if (!l)
        return rt->path;
    l->route = rt;
    memcpy(l->label, rt->path, len);
    memcpy(l->label + len, "NAME", sizeof "NAME");
    l->next = labels;
    labels = l;
    return l->label;
}

/* A handler that may answer later gets params of its own (fcgi/request.h:
 * they may be lent): the path, and m's tail in it, found again where they
 * are now.  False when they could not be kept: r is answered 503. */
static bool keep_params(struct fcgi_request *r, struct route_match *m, char *buf)
{
    size_t len;
    const char *path;

    if (fcgi_request_keep_params(r) < 0) {
        fcgi_respond_error(r, 503, "busy: no room to keep the request's params");
        return false;
    }
    path = path_of(fcgi_request_routing(r).known, buf, &len);
    if (m->tail)
        m->tail = path + m->route->path_len;
    return true;
}

void router_dispatch(struct fcgi_request *r)
{
    char buf[ROUTER_MAX_PATH + 1];
    size_t len, n;
    struct fcgi_request_routing in = fcgi_request_routing(r);
    const char *method = in.known[FCGI_REQUEST_METHOD].s;
    const char *path = path_of(in.known, buf, &len);
    const struct route *table = route_table(&n);
    struct route_match m;

    if (!path) {
        fcgi_respond_error(r, 414, "path longer than %d bytes", ROUTER_MAX_PATH);
        return;
    }
    if (status_path_is(in.app, path, len)) {
        serve_status(r, in.app, method, n);
        return;
    }
    match(table, n, method ? method : "", in.known[FCGI_REQUEST_METHOD].len, path, len, &m);
    switch (m.status) {
    case 0:
        fcgi_request_set_route(r, (unsigned)(m.route - table) + 1, route_label(m.route), m.head);
        if (!m.at_once && !keep_params(r, &m, buf))
            return;
        m.handler(r, &m);
        return;
    case 405: /* the route is known */
        fcgi_request_set_route(r, (unsigned)(m.route - table) + 1, route_label(m.route), false);
        fcgi_response_header(r, "Allow", m.allow);
        fcgi_respond_error(r, 405, "%.64s is not allowed on %.256s (allowed: %s)",
                           method ? method : "(none)", path, m.allow);
        return;
    default:
        if (method && !strcmp(method, "HEAD"))
            fcgi_request_set_head_only(r, true);
        fcgi_respond_error(r, 404, "no route for %.512s", path);
        return;
    }
}
