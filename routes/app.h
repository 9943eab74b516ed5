/*
 * routes/app.h — what the routes share: the backends chosen at start-up.
 *
 * main.c fills it (a real backend when configured, the embedded store
 * otherwise) and hands it to the server; handlers reach it through
 * fcgi_request_app().
 */
#ifndef SPRINGFIELD_ROUTES_APP_H
#define SPRINGFIELD_ROUTES_APP_H

#include "store/http.h"
#include "store/kv.h"

struct worker_pool;
struct ev_loop;

struct app {
    struct ev_loop *loop;
    struct worker_pool *pool;    /* threads for mongo-c-driver; NULL until needed */
    struct worker_pool *s3_pool; /* threads for libs3 (Signature V2) and hashing S3 bodies:
                                  * apart, so a hung S3 cannot starve MongoDB */
    struct kv_store *marges; /* Redis or embedded */
    struct kv_store *homers; /* MongoDB or embedded */
    struct kv_store *lisas;  /* MySQL or embedded */
    struct kv_store *bart;   /* S3 or embedded */
    struct http_client *http; /* libcurl multi on the loop: weather, S3 */
    const char *weather_uri;  /* WEATHER_URI; NULL: canned forecast */
    long backend_timeout_ms;
};

#endif
