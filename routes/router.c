/* routes/router.c — path and method matching, and the dispatcher. */
#include "routes/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The handler for method on rt, or NULL; *head when HEAD goes to GET. */
static route_handler find_method(const struct route *rt, const char *method, bool *head)
{
    const struct route_method *m, *get = NULL;

    *head = false;
    for (m = rt->methods; m->method; m++) {
        if (!strcmp(m->method, method))
            return m->handler;
        if (!strcmp(m->method, "GET"))
            get = m;
    }
    if (get && !strcmp(method, "HEAD")) {
        *head = true;
        return get->handler;
    }
    return NULL;
}

void router_match(const struct route *table, size_t n, const char *method, const char *path,
                  size_t path_len, struct route_match *m)
{
    size_t i;

    memset(m, 0, sizeof *m);
    m->status = 404;
    for (i = 0; i < n; i++) {
        const struct route *rt = &table[i];
        size_t plen = strlen(rt->path);

        if (rt->has_tail) {
            if (path_len <= plen || memcmp(path, rt->path, plen) != 0)
                continue;
            m->tail = path + plen;
            m->tail_len = path_len - plen;
        } else if (path_len != plen || memcmp(path, rt->path, plen) != 0) {
            continue;
        }
        m->route = rt;
        m->arg = rt->arg;
        m->handler = find_method(rt, method, &m->head);
        if (!m->handler) {
            m->status = 405;
            allow_list(rt, m->allow, sizeof m->allow);
            return;
        }
        m->status = 0;
        return;
    }
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

long router_path(const struct fcgi_request *r, char *out)
{
    const char *script = fcgi_param(r, "SCRIPT_NAME");
    const char *info = fcgi_param(r, "PATH_INFO");
    size_t sl = script ? strlen(script) : 0, il = info ? strlen(info) : 0;

    if (sl == 0 && il == 0) {
        const char *uri = fcgi_param(r, "REQUEST_URI");
        size_t ul;

        if (!uri)
            uri = "";
        ul = strcspn(uri, "?");
        if (ul > ROUTER_MAX_PATH)
            return -1;
        return (long)router_percent_decode(uri, ul, out);
    }
    if (sl + il > ROUTER_MAX_PATH)
        return -1;
    if (sl)
        memcpy(out, script, sl);
    if (il)
        memcpy(out + sl, info, il);
    out[sl + il] = '\0';
    return (long)(sl + il);
}

static bool status_path_is(struct fcgi_request *r, const char *path, size_t len)
{
    const struct app *app = fcgi_request_app(r);
    const char *sp = app ? app->status_path : NULL;

    return sp && strlen(sp) == len && memcmp(sp, path, len) == 0;
}

/* The status page is tagged as the row after the table's (metrics). */
static void serve_status(struct fcgi_request *r, const char *method, size_t ntable)
{
    const struct app *app = fcgi_request_app(r);

    fcgi_request_set_tag(r, (unsigned)ntable + 1);
    fcgi_request_set_label(r, app->status_path);
    if (method && !strcmp(method, "HEAD"))
        fcgi_request_set_head_only(r, true);
    else if (!method || strcmp(method, "GET") != 0) {
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
    len = strlen(rt->path);
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

void router_dispatch(struct fcgi_request *r)
{
    char path[ROUTER_MAX_PATH + 1];
    const char *method = fcgi_param(r, "REQUEST_METHOD");
    struct route_match m;
    size_t n;
    const struct route *table = route_table(&n);
    long len = router_path(r, path);

    if (len < 0) {
        fcgi_respond_error(r, 414, "path longer than %d bytes", ROUTER_MAX_PATH);
        return;
    }
    if (status_path_is(r, path, (size_t)len)) {
        serve_status(r, method, n);
        return;
    }
    router_match(table, n, method ? method : "", path, (size_t)len, &m);
    if (m.route) { /* matched, or 405: the route is known either way */
        fcgi_request_set_tag(r, (unsigned)(m.route - table) + 1);
        fcgi_request_set_label(r, route_label(m.route));
    }
    switch (m.status) {
    case 0:
        fcgi_request_set_head_only(r, m.head);
        m.handler(r, &m);
        return;
    case 405:
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
