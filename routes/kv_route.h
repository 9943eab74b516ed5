/*
 * routes/kv_route.h — the shape shared by marges, homers, lisas and bart:
 * GET reads a value from the route's store (200 with it, 404 when
 * missing), POST stores the request body (204 once the backend has
 * acknowledged it).  What differs per resource is described by a
 * struct kv_route: which store, which content type, how the body and
 * name are checked.
 */
#ifndef SPRINGFIELD_ROUTES_KV_ROUTE_H
#define SPRINGFIELD_ROUTES_KV_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "fcgi/request.h"
#include "routes/app.h"
#include "routes/router.h"

/* The longest NAME a route accepts, in bytes (longer: 400). */
#define KV_MAX_NAME_BYTES 1024

struct kv_route {
    const char *what;         /* "marge": used in messages */
    enum backend_id backend;  /* its row in routes/registry.h: app->kv[backend] */
    const char *content_type; /* of GET answers */
    /* Checks name and body before anything is stored; on refusal answers
     * the request itself and returns -1.  NULL: anything goes. */
    int (*check)(struct fcgi_request *r, const char *name, size_t name_len,
                 const uint8_t *body, size_t body_len);
    /* Checks the name of a GET the same way, so every backend refuses
     * the same names alike (a name no store can hold is 413 on each).
     * NULL: the common length limit only. */
    int (*check_name)(struct fcgi_request *r, const char *name, size_t name_len);
};

/* The method table of every key-value route: GET (and HEAD), POST. */
extern const struct route_method kv_methods[];

extern const struct kv_route marges_route, homers_route, lisas_route, bart_route;

#endif
