/*
 * routes/router.h — from a request's path and method to its handler.
 *
 * The path is SCRIPT_NAME followed by PATH_INFO: nginx puts the whole
 * decoded path in SCRIPT_NAME, lighttpd splits it (SCRIPT_NAME=/api,
 * PATH_INFO=/v1/...), and both give the same path here.  Without either,
 * the path part of REQUEST_URI is percent-decoded instead.
 *
 * A route is exact ("/api/v1/flanders") or takes a tail
 * ("/api/v1/homers/" + NAME, NAME non-empty: the rest of the path), and
 * has a table of methods: a new method is one more row, no matcher to
 * change.  A known path with a method it does not serve is 405 with Allow;
 * HEAD is served by the GET handler without a body (unless the route has
 * a HEAD row of its own); anything else is 404.
 */
#ifndef SPRINGFIELD_ROUTES_ROUTER_H
#define SPRINGFIELD_ROUTES_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "fcgi/request.h"

/* The longest path routed; longer paths are answered 414. */
#define ROUTER_MAX_PATH 4096

struct route_match;
typedef void (*route_handler)(struct fcgi_request *r, const struct route_match *m);

struct route_method {
    const char *method;    /* "GET", "POST", ...; NULL ends the table: METHODS_END */
    size_t method_len;     /* strlen(method), counted once: METHOD() */
    route_handler handler;
    /* The handler answers before it returns, always: it may read the
     * request's params where they came in (lent, fcgi/request.h), and
     * the dispatcher keeps them for it only otherwise. */
    bool at_once;
};

/* One row of a method table, its method (a string literal) measured by
 * the compiler: METHOD("GET", flanders_get); METHOD_AT_ONCE for a
 * handler that answers before it returns; and the row that ends it. */
#define METHOD(method, handler) {"" method "", sizeof(method) - 1, handler, false}
#define METHOD_AT_ONCE(method, handler) {"" method "", sizeof(method) - 1, handler, true}
#define METHODS_END {NULL, 0, NULL, false}

struct route {
    const char *path;  /* exact path, or the prefix before the tail */
    size_t path_len;   /* strlen(path), counted once: ROUTE() */
    bool has_tail;     /* path + NAME */
    const struct route_method *methods; /* GET also serves HEAD */
    const void *arg;   /* handed to the handler in route_match.arg */
};

/* One row of a route table, its path (a string literal) measured by the
 * compiler: ROUTE("/api/v1/flanders", false, flanders_methods, NULL). */
#define ROUTE(path, has_tail, methods, arg) {"" path "", sizeof(path) - 1, has_tail, methods, arg}

/*
 * The route as logs and metrics name it (fcgi_request_set_route, which the
 * dispatcher calls for every request a route takes, 405 included): its
 * path, followed by NAME for a route with a tail ("/api/v1/marges/NAME").
 * The string lives as long as the process.  Loop thread only.
 */
const char *route_label(const struct route *rt);


struct route_match {
    int status;                /* 0 when matched; 404, 405 or 414 otherwise */
    const struct route *route; /* the route (also set for 405) */
    route_handler handler;     /* when matched */
    bool at_once;              /* the handler's route_method.at_once */
    bool head;                 /* HEAD: answer without a body */
    const char *tail;          /* NAME for routes with a tail (not NUL-terminated) */
    size_t tail_len;
    const void *arg;
    char allow[96];            /* for 405: "GET, HEAD", "POST", "GET, HEAD, POST", ... */
};

/* Pure matching, for the dispatcher and the unit tests: method is
 * method_len bytes (and NUL-terminated), path is path_len bytes.  Only
 * the fields the status needs are set (allow for 405 alone, else ""). */
void router_match(const struct route *table, size_t n, const char *method, size_t method_len,
                  const char *path, size_t path_len, struct route_match *m);

/*
 * The path of r (NUL-terminated), its length in *len; NULL when it is
 * longer than ROUTER_MAX_PATH.  When SCRIPT_NAME or PATH_INFO is empty
 * the path is the other one where it is, in r; else it is built in buf
 * (ROUTER_MAX_PATH + 1 bytes), as is a decoded REQUEST_URI.
 */
const char *router_path(const struct fcgi_request *r, char *buf, size_t *len);

/* Decodes %XX escapes of in[0..len) into out (len + 1 bytes); returns
 * the decoded length.  A malformed escape is kept as it is. */
size_t router_percent_decode(const char *in, size_t len, char *out);

/* The fcgi handler: routes r through the table of routes/table.c. */
void router_dispatch(struct fcgi_request *r);

#endif
