/* routes/flanders.c — GET /api/v1/flanders: the neighbourly greeting. */
#include "routes/handlers.h"

void flanders_get(struct fcgi_request *r, const struct route_match *m)
{
    static const char greeting[] = "Hi-dilly-ho, neighborino!";

    (void)m;
    fcgi_respond(r, 200, "text/plain; charset=utf-8", greeting, sizeof greeting - 1);
}
