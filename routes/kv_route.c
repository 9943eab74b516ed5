/* routes/kv_route.c — GET/POST of a value through a struct kv_route. */
#include "routes/kv_route.h"

#include "routes/handlers.h"
#include "routes/status.h"

const struct route_method kv_methods[] = {
    METHOD("GET", kv_route_get),
    METHOD("POST", kv_route_post),
    METHODS_END,
};

static struct kv_store *store_of(struct fcgi_request *r, const struct kv_route *kr)
{
    const struct app *app = fcgi_request_app(r);

    return app->kv[kr->backend];
}

static void answer(struct fcgi_request *r, const struct store_result *res, int ok_status)
{
    const struct kv_route *kr = fcgi_request_user(r);

    fcgi_request_add_backend_time(r, res->elapsed);
    fcgi_request_note_backend(r, store_of(r, kr)->be.kind, res->elapsed);
    switch (res->status) {
    case STORE_OK:
        if (ok_status == 204)
            fcgi_respond(r, 204, NULL, NULL, 0);
        else
            fcgi_respond(r, 200, kr->content_type, res->data, res->len);
        return;
    case STORE_NOT_FOUND:
        fcgi_respond_error(r, 404, "no %s by that name", kr->what);
        return;
    default:
        route_answer_failure(r, res);
        return;
    }
}

static void on_get(void *privdata, const struct store_result *res)
{
    answer(privdata, res, 200);
}

static void on_put(void *privdata, const struct store_result *res)
{
    answer(privdata, res, 204);
}

static int check_name(struct fcgi_request *r, const struct route_match *m)
{
    if (m->tail_len > KV_MAX_NAME_BYTES) {
        fcgi_respond_error(r, 400, "name is %zu bytes long; the limit is %d bytes", m->tail_len,
                           KV_MAX_NAME_BYTES);
        return -1;
    }
    return 0;
}

void kv_route_get(struct fcgi_request *r, const struct route_match *m)
{
    const struct kv_route *kr = m->arg;

    if (check_name(r, m) < 0 ||
        (kr->check_name && kr->check_name(r, m->tail, m->tail_len) < 0))
        return;
    fcgi_request_set_user(r, (void *)kr);
    kv_get(store_of(r, kr), m->tail ? m->tail : "", m->tail_len, on_get, r);
}

void kv_route_post(struct fcgi_request *r, const struct route_match *m)
{
    const struct kv_route *kr = m->arg;
    const uint8_t *body;
    size_t len;

    if (check_name(r, m) < 0)
        return;
    body = fcgi_body(r, &len);
    if (kr->check && kr->check(r, m->tail, m->tail_len, body, len) < 0)
        return;
    fcgi_request_set_user(r, (void *)kr);
    kv_put(store_of(r, kr), m->tail ? m->tail : "", m->tail_len, body, len, on_put, r);
}
