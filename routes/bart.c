/* routes/bart.c — /api/v1/bart: the one S3 object AWS_S3_BUCKET/AWS_S3_OBJECT (or embedded). */
#include "routes/kv_route.h"

const struct kv_route bart_route = {
    .what = "bart object",
    .backend = BACKEND_BART,
    .content_type = "application/octet-stream",
    .check = NULL,
};
