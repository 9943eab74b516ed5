/* store/result.c — mapping of shim results to HTTP statuses and names. */
#include "store/result.h"

int store_status_http(enum store_status status)
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

const char *store_status_name(enum store_status status)
{
    switch (status) {
    case STORE_OK: return "ok";
    case STORE_NOT_FOUND: return "not found";
    case STORE_BAD_INPUT: return "bad input";
    case STORE_TOO_LARGE: return "too large";
    case STORE_UNAVAILABLE: return "unavailable";
    case STORE_TIMEOUT: return "timeout";
    case STORE_BAD_UPSTREAM: return "bad upstream";
    case STORE_ERROR: return "error";
    }
    return "error";
}
