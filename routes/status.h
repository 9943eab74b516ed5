/*
 * routes/status.h — how a store's result becomes an HTTP answer, the same
 * way on every route: bad input 400, over a limit 413, not reachable 503,
 * too slow 504, garbage from upstream 502, our own bug 500, missing 404.
 * (store/ knows nothing of HTTP; this is the one place that maps it.)
 */
#ifndef SPRINGFIELD_ROUTES_STATUS_H
#define SPRINGFIELD_ROUTES_STATUS_H

#include "fcgi/request.h"
#include "store/result.h"

/* 200, 404, 400, 413, 503, 504, 502 or 500. */
int route_status_http(enum store_status status);

/* Answers r with the error shape for a failed result: its status's HTTP
 * code, and the store's message (else the status's name). */
void route_answer_failure(struct fcgi_request *r, const struct store_result *res);

#endif
