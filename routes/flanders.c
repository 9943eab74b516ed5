/* routes/flanders.c — GET /api/v1/flanders: the neighbourly greeting. */
#include "routes/handlers.h"

void flanders_get(struct fcgi_request *r, const struct route_match *m)
{
    static const char greeting[] = "Hi-dilly-ho, neighborino!";

    (void)m;
    fcgi_respond(r, 200, FCGI_TEXT_PLAIN, greeting, sizeof greeting - 1);
}
