/*
 * routes/backends.h — choosing and opening each route's backend.
 *
 * For every row of routes/registry.h: the real backend when its
 * environment says where it is (REDIS_HOST, MONGODB_URI, MYSQL_HOST,
 * AWS_S3_BUCKET), the embedded in-process store otherwise; and the weather
 * service when WEATHER_URI is set.  The start-up log says which, per
 * route.  Called in each serving process after fork (threads and
 * connections do not survive fork).
 */
#ifndef SPRINGFIELD_ROUTES_BACKENDS_H
#define SPRINGFIELD_ROUTES_BACKENDS_H

#include <stdio.h>

#include <ev.h>

#include "routes/app.h"

struct backend_options {
    unsigned threads; /* worker-pool threads for blocking client libraries */
    unsigned mysql_connections; /* MySQL/MariaDB connections (0: the shim's default) */
    long timeout_ms;  /* per backend operation */
    unsigned workers; /* serving processes (--workers), for a warning */
};

/*
 * Checks every backend's environment (ports, numbers, URLs, signature)
 * without opening anything, so a mistake stops springfield before it
 * listens or forks.  0, or -1 after logging what is wrong.
 */
int backends_check_env(void);

/* The backends' environment variables, one line per route, for --help. */
void backends_help(FILE *out);

/* 0, or -1 after logging what could not be opened. */
int backends_open(struct app *app, struct ev_loop *loop, const struct backend_options *o);
void backends_close(struct app *app);

#endif
