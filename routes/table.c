/*
 * routes/table.c — every route of the service, in one place.
 * Order matters only between routes that could match the same path.
 */
#include "routes/table.h"

#include "routes/handlers.h"
#include "routes/kv_route.h"

static const struct route routes[] = {
    {"/api/v1/flanders", false, flanders_get, NULL, NULL},
    {"/api/v1/marges/", true, kv_route_get, kv_route_post, &marges_route},
    {"/api/v1/homers/", true, kv_route_get, kv_route_post, &homers_route},
    {"/api/v1/lisas/", true, kv_route_get, kv_route_post, &lisas_route},
    {"/api/v1/bart", false, kv_route_get, kv_route_post, &bart_route},
    {"/api/v1/maggie", false, maggie_get, NULL, NULL},
    {"/api/v1/healthcheck", false, healthcheck_get, NULL, NULL},
};

const struct route *route_table(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}
