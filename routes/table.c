/*
 * routes/table.c — every route of the service, in one place.
 * Order matters only between routes that could match the same path.
 */
#include "routes/table.h"

#include "routes/handlers.h"
#include "routes/kv_route.h"

static const struct route_method flanders_methods[] = {{"GET", flanders_get}, {NULL, NULL}};
static const struct route_method maggie_methods[] = {{"GET", maggie_get}, {NULL, NULL}};
static const struct route_method health_methods[] = {{"GET", healthcheck_get}, {NULL, NULL}};

static const struct route routes[] = {
    ROUTE("/api/v1/flanders", false, flanders_methods, NULL),
    ROUTE("/api/v1/marges/", true, kv_methods, &marges_route),
    ROUTE("/api/v1/homers/", true, kv_methods, &homers_route),
    ROUTE("/api/v1/lisas/", true, kv_methods, &lisas_route),
    ROUTE("/api/v1/bart", false, kv_methods, &bart_route),
    ROUTE("/api/v1/maggie", false, maggie_methods, NULL),
    ROUTE("/api/v1/healthcheck", false, health_methods, NULL),
};

const struct route *route_table(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}
