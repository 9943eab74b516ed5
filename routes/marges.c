/* routes/marges.c — /api/v1/marges/NAME: raw bytes in Redis (or embedded). */
#include "routes/kv_route.h"

const struct kv_route marges_route = {
    .what = "marge",
    .backend = BACKEND_MARGES,
    .content_type = "application/octet-stream",
    .check = NULL, /* binary safe: any bytes, up to the body limit */
};
