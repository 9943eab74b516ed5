/*
 * routes/app.h — what the routes share: the backends chosen at start-up.
 *
 * routes/backends.c fills it (a real backend when configured, the
 * embedded store otherwise, for every row of routes/registry.h) and main.c
 * hands it to the server; handlers reach it through fcgi_request_app().
 */
#ifndef SPRINGFIELD_ROUTES_APP_H
#define SPRINGFIELD_ROUTES_APP_H

#include "routes/registry.h"
#include "store/http.h"
#include "store/kv.h"
#include "store/weather.h"

struct worker_pool;
struct resolver;
struct ev_loop;
struct scoreboard;
struct sb_row;

struct app {
    struct ev_loop *loop;
    struct worker_pool *pool;    /* threads for mongo-c-driver; NULL until needed */
    struct worker_pool *s3_pool; /* threads for libs3 (Signature V2) and hashing S3 bodies:
                                  * apart, so a hung S3 cannot starve MongoDB */
    struct resolver *resolver;   /* host name lookups for Redis and MySQL */
    struct http_client *http;    /* libcurl multi on the loop: weather, S3 */
    struct weather_client *weather; /* WEATHER_URI; NULL: canned forecast */
    struct kv_store *kv[BACKEND_KV_COUNT]; /* by routes/registry.h row */
    long backend_timeout_ms;
    /* Set by main.c after backends_open (routes/stats.h): */
    struct scoreboard *scoreboard; /* the pool's counters; NULL: none */
    struct sb_row *row;            /* this process's row of it */
    const char *status_path;       /* --status-path; NULL: no status page */
    size_t status_path_len;        /* its strlen, counted once */
};

#endif
