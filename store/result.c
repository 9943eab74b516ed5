/* store/result.c — the names of shim result statuses. */
#include "store/result.h"

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
