/*
 * routes/table.c — every route of the service, in one place.
 * Order matters only between routes that could match the same path.
 */
#include "routes/table.h"

#include "routes/handlers.h"
#include "routes/kv_route.h"

static const struct route_method flanders_methods[] = {METHOD_AT_ONCE("GET", flanders_get), METHODS_END};
static const struct route_method maggie_methods[] = {METHOD("GET", maggie_get), METHODS_END};
static const struct route_method health_methods[] = {METHOD("GET", healthcheck_get), METHODS_END};

const struct route route_rows[] = {
    ROUTE("/api/v1/flanders", false, flanders_methods, NULL),
    ROUTE("/api/v1/marges/", true, kv_methods, &marges_route),
    ROUTE("/api/v1/homers/", true, kv_methods, &homers_route),
    ROUTE("/api/v1/lisas/", true, kv_methods, &lisas_route),
    ROUTE("/api/v1/bart", false, kv_methods, &bart_route),
    ROUTE("/api/v1/maggie", false, maggie_methods, NULL),
    ROUTE("/api/v1/healthcheck", false, health_methods, NULL),
};

const size_t route_count = sizeof route_rows / sizeof route_rows[0];
