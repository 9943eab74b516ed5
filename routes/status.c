/* routes/status.c — store results as HTTP answers (see status.h). */
#include "routes/status.h"

int route_status_http(enum store_status status)
{
    switch (status) {
    case STORE_OK: return 200;
    case STORE_NOT_FOUND: return 404;
    case STORE_BAD_INPUT: return 400;
    case STORE_TOO_LARGE: return 413;
    case STORE_UNAVAILABLE: return 503;
    case STORE_TIMEOUT: return 504;
    case STORE_BAD_UPSTREAM: return 502;
    case STORE_ERROR: return 500;
    }
    return 500;
}

void route_answer_failure(struct fcgi_request *r, const struct store_result *res)
{
    fcgi_respond_error(r, route_status_http(res->status), "%s",
                       res->message && *res->message ? res->message
                                                     : store_status_name(res->status));
}
