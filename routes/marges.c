/* routes/marges.c — /api/v1/marges/NAME: raw bytes in Redis (or embedded). */
#include "routes/kv_route.h"

static struct kv_store *marges_store(const struct app *app)
{
    return app->marges;
}

const struct kv_route marges_route = {
    .what = "marge",
    .store = marges_store,
    .content_type = "application/octet-stream",
    .check = NULL, /* binary safe: any bytes, up to the body limit */
};
