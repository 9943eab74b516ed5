/* routes/homers.c — /api/v1/homers/NAME: a JSON document in MongoDB (or embedded). */
#include <cjson/cJSON.h>
#include <string.h>

#include "routes/kv_route.h"

/* The body must be one JSON value and nothing after it. */
static int check_json(struct fcgi_request *r, const char *name, size_t name_len,
                      const uint8_t *body, size_t len)
{
    const char *end = NULL;
    cJSON *doc;

    (void)name;
    (void)name_len;
    doc = cJSON_ParseWithLengthOpts((const char *)body, len, &end, 0);
    if (!doc) {
        size_t at = end && end >= (const char *)body ? (size_t)(end - (const char *)body) : 0;

        fcgi_respond_error(r, 400, "body is not JSON: error near byte %zu of %zu", at, len);
        return -1;
    }
    cJSON_Delete(doc);
    /* Whitespace may follow the value; anything else may not. */
    while (end < (const char *)body + len && strchr(" \t\r\n", *end) && *end)
        end++;
    if (end != (const char *)body + len) {
        fcgi_respond_error(r, 400, "body is not JSON: unexpected data at byte %zu",
                           (size_t)(end - (const char *)body));
        return -1;
    }
    return 0;
}

const struct kv_route homers_route = {
    .what = "homer",
    .backend = BACKEND_HOMERS,
    .content_type = "application/json",
    .check = check_json,
};
