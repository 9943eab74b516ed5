/*
 * store/op.h — the operation core every storage shim is built on.
 *
 * A shim's operation embeds a struct store_op; its backend embeds a
 * struct store_backend (in struct kv_store, or on its own for the weather
 * client).  The core keeps the promise of the shim contract once, for all
 * of them:
 *
 *   - the callback runs on the loop thread exactly once, with a result;
 *   - never before the starting call has returned: a result known at once
 *     (a refusal, a breaker that is open, an answer from memory) is kept
 *     and delivered from the loop, in the same iteration, after the
 *     caller's code has run (ev_feed_event on a watcher of the backend:
 *     no system call, no timer);
 *   - every operation has a deadline: past it the callback gets
 *     STORE_TIMEOUT, and an answer that comes later is dropped;
 *   - closing a backend answers everything it has pending.
 *
 * Lifetime.  An operation is held by the core until its result is
 * delivered, and by the shim as long as a client library still points at
 * it (hiredis' privdata, a worker-pool job): store_op_hold / release.  The
 * shim's free function runs when the last hold goes.
 *
 * Loop thread only, all of it.
 */
#ifndef SPRINGFIELD_STORE_OP_H
#define SPRINGFIELD_STORE_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "common/histogram.h"
#include "common/list.h"
#include "common/log.h"
#include "store/breaker.h"
#include "store/result.h"

/*
 * What a backend counts: operations by result and their latency,
 * reconnects, and (gauges the owner publishes) its breaker state and what
 * waits.  One writer; with --workers it lives in the shared scoreboard.
 */
struct store_counters {
    uint64_t results[STORE_ERROR + 1];
    uint64_t reconnects;
    struct histogram latency;
    uint64_t breaker_state; /* gauge: enum store_breaker_state */
    uint64_t pending;       /* gauge: operations waiting for their result */
    uint64_t queued;        /* gauge: jobs waiting in its worker pool (0: none) */
};

struct store_backend {
    const char *kind;          /* "redis", "mongodb", "mysql", "s3", "weather", "embedded" */
    const char *where;         /* "127.0.0.1:6379", for logs (no credentials) */
    struct ev_loop *loop;
    long timeout_ms;           /* each operation's deadline (0: none) */
    unsigned starting;         /* >0 inside a starting call: results wait for the loop */
    unsigned delivering;       /* >0 while a callback runs */
    unsigned carried;          /* operations a carrier (a worker job, a transfer) has */
    bool closing;
    void (*destroy_idle)(struct store_backend *b); /* closed, waiting for the carriers */
    void (*destroy)(struct store_backend *b); /* a close asked for from inside a callback */
    char close_reason[160];
    struct list_node pending;  /* operations started, no result yet */
    struct list_node ready;    /* results (or deferred work) waiting for the loop */
    struct list_node kick_mark; /* where one pass over ready stops */
    ev_idle kick;              /* fed when ready gets its first entry; never started */
    struct store_breaker breaker;
    /* Shims with no connection of their own (MongoDB, S3, the weather
     * service) test the server with a probe of their own while the breaker
     * is open, and report it with store_backend_answered/failed; user
     * operations fail fast meanwhile, never wait on a probe. */
    void (*probe)(struct store_backend *b);
    ev_timer probe_timer;
    unsigned npending;          /* on the pending list */
    struct store_counters own_stats;
    struct store_counters *stats; /* where to count: own_stats, or a scoreboard row */
};

struct store_op;

/* Turns a result into the caller's callback (the default calls the
 * store_cb given at start); the HTTP client passes richer answers. */
typedef void (*store_deliver_fn)(struct store_op *op, const struct store_result *res);

struct store_op {
    struct list_node link; /* on the backend's pending list, then ready */
    struct store_backend *be;
    store_cb cb;
    void *privdata;
    store_deliver_fn deliver;
    void (*on_deadline)(struct store_op *op); /* optional: the shim's look before the timeout */
    void (*later)(struct store_op *op);       /* work deferred with store_op_later */
    void (*free)(struct store_op *op);        /* frees the shim's operation */
    ev_timer deadline;
    long timeout_ms; /* the deadline, for its message */
    double started;  /* ev_now() at start */
    uint8_t state;   /* STORE_OP_* */
    uint8_t holds;
    /* a result kept for delivery from the loop */
    enum store_status status;
    char *message;
    void *data;
    size_t len;
};

enum { STORE_OP_RUNNING, STORE_OP_READY, STORE_OP_DONE };

/* Sets up b (closing == false, empty lists); kind and where are borrowed. */
void store_backend_init(struct store_backend *b, struct ev_loop *loop, const char *kind,
                        const char *where, long timeout_ms);

/*
 * Closes b: answers everything pending with STORE_UNAVAILABLE ("<kind>
 * unavailable: why"), delivers what was waiting for the loop, stops the
 * backend's watchers, then calls destroy(b), where the shim frees itself.
 * Called from inside one of b's callbacks, all of that happens once the
 * loop is back in the core (the callback may still read its result).
 * Operations a client library still holds stay allocated until the shim
 * releases them: store_op_complete and store_op_release on them never
 * touch the backend again.
 */
void store_backend_close(struct store_backend *b, const char *why,
                         void (*destroy)(struct store_backend *b));

/*
 * The server could not be reached: the breaker opens (or stays open), and
 * when b has a probe it runs once the back-off has passed.
 */
void store_backend_failed(struct store_backend *b, const char *reason);

/* The server answered: the breaker closes. */
void store_backend_answered(struct store_backend *b);

/* May a user operation go to the server (not closing, breaker closed)?
 * Else it fails fast with store_breaker_reason(&b->breaker). */
static inline bool store_backend_usable(const struct store_backend *b)
{
    return !b->closing && b->breaker.state == BREAKER_CLOSED;
}

/* Answers every pending operation of b with status and message (a
 * backend found gone: nobody waits out a deadline for it). */
void store_backend_fail_pending(struct store_backend *b, enum store_status status,
                                const char *message);

/*
 * A starting call: everything the shim does between begin and end that
 * completes an operation is delivered from the loop afterwards.  The
 * kv_get/kv_put/kv_ping wrappers and weather_fetch bracket each call.
 */
static inline void store_backend_begin(struct store_backend *b)
{
    b->starting++;
}

static inline void store_backend_end(struct store_backend *b)
{
    b->starting--;
}

/*
 * Starts op on b: the core's hold, the pending list, the deadline
 * (b->timeout_ms; timeout_ms when > 0; none when < 0).  free_op runs when op is
 * delivered and every hold is released (NULL: nothing to free).
 */
void store_op_start(struct store_backend *b, struct store_op *op, store_cb cb, void *privdata,
                    long timeout_ms, void (*free_op)(struct store_op *op));

/*
 * The one result of op.  Delivered now when no starting call is under
 * way, else kept (message and data copied) and delivered from the loop.
 * Returns false, and does nothing, when op already has its result (a late
 * answer after its deadline, or after the backend failed it).
 */
bool store_op_complete(struct store_op *op, enum store_status status, const char *message,
                       const void *data, size_t len);

/* store_op_complete with a formatted message. */
bool store_op_fail(struct store_op *op, enum store_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Answers cb with status and message without an operation of the shim's
 * own (a refusal before anything is allocated): delivered from the loop
 * like any result.  Only when even that memory is short does cb run at
 * once (logged).
 */
void store_refuse(struct store_backend *b, store_cb cb, void *privdata, enum store_status status,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Runs fn(op) from the loop, after the starting call returned (the
 * embedded store answers from there, with its own data). */
void store_op_later(struct store_op *op, void (*fn)(struct store_op *op));

/* True while op waits for its result (not past its deadline, not failed). */
static inline bool store_op_running(const struct store_op *op)
{
    return op->state == STORE_OP_RUNNING;
}

void store_op_hold(struct store_op *op);
void store_op_release(struct store_op *op);

/*
 * A carrier that works on its own time (a worker-pool job, an HTTP
 * transfer) takes op along: a hold, and the backend is not destroyed by a
 * close before every carrier has brought its operation back with
 * store_op_carried (after which, if the backend was closed and this was
 * the last, it is gone: touch it no more).
 */
void store_op_carry(struct store_op *op);
void store_op_carried(struct store_op *op);

#endif
