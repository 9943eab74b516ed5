/* routes/bart.c — /api/v1/bart: the one S3 object AWS_S3_BUCKET/AWS_S3_OBJECT (or embedded). */
#include "routes/kv_route.h"

static struct kv_store *bart_store(const struct app *app)
{
    return app->bart;
}

const struct kv_route bart_route = {
    .what = "bart object",
    .store = bart_store,
    .content_type = "application/octet-stream",
    .check = NULL,
};
