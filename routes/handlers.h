/* routes/handlers.h — the handlers the route table points at, one file each. */
#ifndef SPRINGFIELD_ROUTES_HANDLERS_H
#define SPRINGFIELD_ROUTES_HANDLERS_H

#include <stddef.h>

#include "routes/router.h"

void flanders_get(struct fcgi_request *r, const struct route_match *m);
void healthcheck_get(struct fcgi_request *r, const struct route_match *m);
void maggie_get(struct fcgi_request *r, const struct route_match *m);

struct weather_report;
/* "Currently 72 degrees and Sunny in Austin, TX" into out (NUL-terminated);
 * returns its length. */
size_t maggie_sentence(const struct weather_report *w, char *out, size_t size);

/* routes/kv_route.c: GET and POST of a value in one of the app's stores;
 * route.arg is a const struct kv_route *. */
void kv_route_get(struct fcgi_request *r, const struct route_match *m);
void kv_route_post(struct fcgi_request *r, const struct route_match *m);

#endif
