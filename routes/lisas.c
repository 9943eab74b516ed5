/*
 * routes/lisas.c — /api/v1/lisas/NAME: a short text in MySQL (or embedded).
 *
 * The table is lisa(name VARCHAR(32), content VARCHAR(1000)) in utf8mb4,
 * so names and contents are counted in characters (UTF-8 code points), and
 * a value over its column is refused with 413, never silently cut.
 */
#include "routes/kv_route.h"
#include "common/utf8.h"
#include "store/mysql.h" /* the table's limits, defined once */

#define LISA_MAX_NAME_CHARS MYSQL_STORE_NAME_MAX_CHARS
#define LISA_MAX_CONTENT_CHARS MYSQL_STORE_CONTENT_MAX_CHARS

/* The name, for GET and POST alike: every backend answers the same. */
static int check_lisa_name(struct fcgi_request *r, const char *name, size_t name_len)
{
    long nc = utf8_chars((const uint8_t *)name, name_len);

    if (nc < 0) {
        fcgi_respond_error(r, 400, "the name is not valid UTF-8");
        return -1;
    }
    if (nc > LISA_MAX_NAME_CHARS) {
        fcgi_respond_error(r, 413, "name is %ld characters; the limit is %d", nc,
                           LISA_MAX_NAME_CHARS);
        return -1;
    }
    return 0;
}

static int check_lisa(struct fcgi_request *r, const char *name, size_t name_len,
                      const uint8_t *body, size_t len)
{
    long bc;

    if (check_lisa_name(r, name, name_len) < 0)
        return -1;
    bc = utf8_chars(body, len);
    if (bc < 0) {
        fcgi_respond_error(r, 400, "the content is not valid UTF-8");
        return -1;
    }
    if (bc > LISA_MAX_CONTENT_CHARS) {
        fcgi_respond_error(r, 413, "content is %ld characters; the limit is %d", bc,
                           LISA_MAX_CONTENT_CHARS);
        return -1;
    }
    return 0;
}

const struct kv_route lisas_route = {
    .what = "lisa",
    .backend = BACKEND_LISAS,
    .content_type = "text/plain; charset=utf-8",
    .check = check_lisa,
    .check_name = check_lisa_name,
};
