/*
 * routes/app.h — what the routes share: the backends chosen at start-up.
 *
 * main.c fills it (a real backend when configured, the embedded store
 * otherwise) and hands it to the server; handlers reach it through
 * fcgi_request_app().
 */
#ifndef SPRINGFIELD_ROUTES_APP_H
#define SPRINGFIELD_ROUTES_APP_H

#include "store/kv.h"

struct app {
    struct kv_store *marges; /* Redis or embedded */
    struct kv_store *homers; /* MongoDB or embedded */
    struct kv_store *lisas;  /* MySQL or embedded */
    struct kv_store *bart;   /* S3 or embedded */
    long backend_timeout_ms;
};

#endif
