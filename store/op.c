/* store/op.c — exactly-once delivery, deadlines and deferral (see op.h). */
#include "store/op.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_kick(struct ev_loop *loop, ev_idle *w, int revents);
static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents);
static void on_probe_time(struct ev_loop *loop, ev_timer *w, int revents);

void store_backend_init(struct store_backend *b, struct ev_loop *loop, const char *kind,
                        const char *where, long timeout_ms)
{
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->where = where;
    b->loop = loop;
    b->timeout_ms = timeout_ms;
    b->stats = &b->own_stats;
    list_init(&b->pending);
    list_init(&b->ready);
    ev_idle_init(&b->kick, on_kick);
    /* Above everything else that is pending: the answers decided in a
     * loop iteration go out before the engine reads the next request. */
    ev_set_priority(&b->kick, EV_MAXPRI);
    store_breaker_init(&b->breaker, kind, 1, false);
    ev_timer_init(&b->probe_timer, on_probe_time, 0, 0);
}

void store_backend_failed(struct store_backend *b, const char *reason)
{
    double now = ev_now(b->loop);

    store_breaker_failure(&b->breaker, now, reason);
    if (b->probe && !b->closing && b->breaker.state == BREAKER_OPEN &&
        !ev_is_active(&b->probe_timer)) {
        ev_timer_set(&b->probe_timer, store_breaker_retry_in(&b->breaker, now), 0);
        ev_timer_start(b->loop, &b->probe_timer);
    }
}

void store_backend_answered(struct store_backend *b)
{
    ev_timer_stop(b->loop, &b->probe_timer);
    store_breaker_success(&b->breaker, ev_now(b->loop));
}

/* The back-off passed: half-open, and the shim's probe goes. */
static void on_probe_time(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct store_backend *b = container_of(w, struct store_backend, probe_timer);
    double wait = store_breaker_retry_in(&b->breaker, ev_now(loop));

    (void)revents;
    if (b->closing || b->breaker.state != BREAKER_OPEN)
        return;
    if (wait > 0) { /* failures since pushed the next probe further */
        ev_timer_set(w, wait, 0);
        ev_timer_start(loop, w);
        return;
    }
    if (!store_breaker_allow(&b->breaker, ev_now(loop)))
        return;
    store_backend_begin(b);
    b->probe(b);
    store_backend_end(b);
}

static void default_deliver(struct store_op *op, const struct store_result *res)
{
    if (op->cb) /* NULL: started for its effect alone */
        op->cb(op->privdata, res);
}

void store_op_start(struct store_backend *b, struct store_op *op, store_cb cb, void *privdata,
                    long timeout_ms, void (*free_op)(struct store_op *op))
{
    long ms = timeout_ms > 0 ? timeout_ms : timeout_ms < 0 ? 0 : b->timeout_ms;

    op->be = b;
    op->cb = cb;
    op->privdata = privdata;
    if (!op->deliver)
        op->deliver = default_deliver;
    op->free = free_op;
    op->started = ev_now(b->loop);
    op->state = STORE_OP_RUNNING;
    op->holds = 1;
    op->message = NULL;
    op->data = NULL;
    op->later = NULL;
    op->timeout_ms = ms;
    list_insert_tail(&b->pending, &op->link);
    b->npending++;
    ev_timer_init(&op->deadline, on_deadline, ms / 1000.0, 0);
    if (ms > 0)
        ev_timer_start(b->loop, &op->deadline);
}

void store_op_hold(struct store_op *op)
{
    op->holds++;
}

void store_op_release(struct store_op *op)
{
    if (--op->holds > 0)
        return;
    free(op->message);
    free(op->data);
    op->message = op->data = NULL;
    if (op->free)
        op->free(op);
}

void store_op_carry(struct store_op *op)
{
    op->be->carried++;
    store_op_hold(op);
}

void store_op_carried(struct store_op *op)
{
    struct store_backend *b = op->be;

    store_op_release(op);
    if (--b->carried == 0 && b->destroy_idle) {
        void (*destroy)(struct store_backend *) = b->destroy_idle;

        b->destroy_idle = NULL;
        destroy(b);
    }
}

/* The result goes to the caller now; the core's hold goes after it.  A
 * close the callback asks for is carried out from the kick, where no
 * shim code is on the stack. */
static void deliver(struct store_op *op, enum store_status status, const char *message,
                    const void *data, size_t len)
{
    struct store_backend *b = op->be;
    struct store_result res = {status, message ? message : "", data, len,
                               ev_now(b->loop) - op->started};

    op->state = STORE_OP_DONE;
    b->delivering++;
    op->deliver(op, &res);
    b->delivering--;
    store_op_release(op);
    if (b->destroy && b->delivering == 0)
        ev_feed_event(b->loop, &b->kick, EV_CUSTOM);
}

/* Puts op on the ready list; the first entry feeds the kick watcher, so
 * the list is worked through once the callbacks of this loop iteration
 * (the starting call among them) have returned. */
static void make_ready(struct store_op *op)
{
    struct store_backend *b = op->be;

    if (list_empty(&b->ready))
        ev_feed_event(b->loop, &b->kick, EV_CUSTOM);
    op->state = STORE_OP_READY;
    list_insert_tail(&b->ready, &op->link);
}

bool store_op_complete(struct store_op *op, enum store_status status, const char *message,
                       const void *data, size_t len)
{
    struct store_backend *b = op->be;

    if (op->state != STORE_OP_RUNNING)
        return false;
    ev_timer_stop(b->loop, &op->deadline);
    list_remove(&op->link);
    b->npending--;
    if (status <= STORE_ERROR)
        stat_add(&b->stats->results[status], 1);
    histogram_add(&b->stats->latency, ev_now(b->loop) - op->started);
    if (!b->starting) {
        deliver(op, status, message, data, len);
        return true;
    }
    /* Inside the starting call: keep a copy of what the shim may free. */
    op->status = status;
    op->message = message && *message ? strdup(message) : NULL;
    op->len = 0;
    if (data && len) {
        op->data = malloc(len);
        if (op->data) {
            memcpy(op->data, data, len);
            op->len = len;
        } else {
            free(op->message);
            op->status = STORE_ERROR;
            op->message = strdup("out of memory for a result");
        }
    }
    make_ready(op);
    return true;
}

bool store_op_fail(struct store_op *op, enum store_status status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return store_op_complete(op, status, msg, NULL, 0);
}

void store_op_later(struct store_op *op, void (*fn)(struct store_op *op))
{
    ev_timer_stop(op->be->loop, &op->deadline);
    list_remove(&op->link);
    op->be->npending--;
    op->later = fn;
    make_ready(op);
}

static void close_now(struct store_backend *b);

/* The shim frees itself now, or when its last carrier comes back. */
static void destroy_or_wait(struct store_backend *b, void (*destroy)(struct store_backend *))
{
    if (b->carried > 0)
        b->destroy_idle = destroy;
    else
        destroy(b);
}

/* Works through the ready list: deferred results are delivered, deferred
 * work is run (it completes its operation, now outside any starting call).
 * What the callbacks add meanwhile waits behind a marker for the next
 * kick.  A close asked for by a callback happens here, at the end. */
static void on_kick(struct ev_loop *loop, ev_idle *w, int revents)
{
    struct store_backend *b = container_of(w, struct store_backend, kick);
    void (*destroy)(struct store_backend *);
    struct list_node *mark = &b->kick_mark;

    (void)loop;
    (void)revents;
    /* Counted as a callback: a close asked for by what runs here waits
     * until the list is left alone. */
    b->delivering++;
    list_insert_tail(&b->ready, mark);
    while (b->ready.next != mark && !b->destroy) {
        struct store_op *op = container_of(b->ready.next, struct store_op, link);

        list_remove(&op->link);
        if (op->later) {
            void (*fn)(struct store_op *) = op->later;

            op->later = NULL;
            op->state = STORE_OP_RUNNING;
            list_insert_tail(&b->pending, &op->link);
            b->npending++;
            fn(op);
        } else {
            char *message = op->message;
            void *data = op->data;

            op->message = NULL;
            op->data = NULL;
            deliver(op, op->status, message, data, op->len);
            free(message);
            free(data);
        }
    }
    list_remove(mark);
    b->delivering--;
    destroy = b->destroy;
    if (destroy) {
        b->destroy = NULL;
        close_now(b);
        destroy_or_wait(b, destroy); /* b may be gone */
        return;
    }
    if (!list_empty(&b->ready))
        ev_feed_event(b->loop, &b->kick, EV_CUSTOM);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct store_op *op = container_of(w, struct store_op, deadline);

    (void)loop;
    (void)revents;
    if (op->state != STORE_OP_RUNNING)
        return;
    store_op_hold(op); /* the shim's look may answer it, and let go of it */
    if (op->on_deadline)
        op->on_deadline(op); /* e.g. Redis: a silent server drops the connection */
    store_op_fail(op, STORE_TIMEOUT, "%s timeout: no answer within %ld ms", op->be->kind,
                  op->timeout_ms);
    store_op_release(op);
}

void store_backend_fail_pending(struct store_backend *b, enum store_status status,
                                const char *message)
{
    struct store_op *op;

    while ((op = list_first(&b->pending, struct store_op, link)))
        store_op_complete(op, status, message, NULL, 0);
}

/* Answers all that is left, from the ready list and the pending one. */
static void close_now(struct store_backend *b)
{
    char msg[512];

    snprintf(msg, sizeof msg, "%s unavailable: %s", b->kind, b->close_reason);
    while (!list_empty(&b->ready) || !list_empty(&b->pending)) {
        struct store_op *op;

        while ((op = list_first(&b->ready, struct store_op, link))) {
            list_remove(&op->link);
            if (op->later) { /* work not done: it is answered as pending */
                op->later = NULL;
                op->state = STORE_OP_RUNNING;
                list_insert_tail(&b->pending, &op->link);
                b->npending++;
                continue;
            }
            deliver(op, op->status, op->message, op->data, op->len);
        }
        store_backend_fail_pending(b, STORE_UNAVAILABLE, msg);
    }
    ev_clear_pending(b->loop, &b->kick);
    ev_timer_stop(b->loop, &b->probe_timer);
    b->destroy = NULL;
}

void store_backend_close(struct store_backend *b, const char *why,
                         void (*destroy)(struct store_backend *b))
{
    if (b->closing)
        return;
    b->closing = true;
    snprintf(b->close_reason, sizeof b->close_reason, "%s", why);
    if (b->delivering > 0) {
        b->destroy = destroy; /* from the kick, once the callback returned */
        ev_feed_event(b->loop, &b->kick, EV_CUSTOM);
        return;
    }
    close_now(b);
    destroy_or_wait(b, destroy);
}

static void free_refusal(struct store_op *op)
{
    free(op);
}

void store_refuse(struct store_backend *b, store_cb cb, void *privdata, enum store_status status,
                  const char *fmt, ...)
{
    struct store_op *op = calloc(1, sizeof *op);
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!op) {
        struct store_result res = {status, msg, NULL, 0, 0};

        sf_error("%s: out of memory: answering \"%s\" at once", b->kind, msg);
        if (cb)
            cb(privdata, &res);
        return;
    }
    store_op_start(b, op, cb, privdata, -1, free_refusal);
    store_op_complete(op, status, msg, NULL, 0);
}
