/*
 * store/redis.c — the Redis shim: hiredis async context on the caller's
 * libev loop, reconnection with back-off, a deadline per operation.
 *
 * Ownership of an operation record (struct redis_op): hiredis holds it as
 * privdata until it calls reply_cb (with a reply, or with NULL when the
 * context goes away); our ev_timer may complete it earlier with
 * STORE_TIMEOUT.  "done" makes the user callback run exactly once; the
 * record is freed only when hiredis has let go of it, it is done, and no
 * user callback on it is running.  The store keeps every live record on a
 * list so that free() can answer and orphan them (op->store = NULL).
 *
 * The rule that keeps re-entrancy safe: user callbacks may do anything,
 * including freeing the store, so after calling one (directly, or through
 * redisAsyncFree(), which runs the pending callbacks) our code touches
 * neither the store nor the context again.  Whenever the store lets go of
 * its context, ac->data is cleared so later hiredis callbacks on that
 * context find no store.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getaddrinfo_a */
#endif
#include "store/redis.h"

#include "common/setting.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "common/log.h"

#define BACKOFF_MIN_S 0.1
#define BACKOFF_MAX_S 5.0
#define LOG_EVERY_N_AT_CAP 60     /* at 5 s per attempt: one line per 5 minutes */
#define RESOLVE_POLL_S 0.005      /* how often the loop looks for a finished lookup */
#define MAX_BULK_BYTES (512u << 20) /* Redis' proto-max-bulk-len default */

enum op_kind { OP_GET, OP_PUT, OP_PING };

enum conn_state {
    ST_WAITING,    /* back-off timer armed, no context */
    ST_RESOLVING,  /* host name lookup running */
    ST_CONNECTING, /* context exists, TCP connect or AUTH/SELECT/PING in flight */
    ST_READY,      /* handshake answered: operations go to the server */
    ST_CLOSED
};

struct redis_store;

struct redis_op {
    struct redis_op *prev, *next; /* on store->ops while store != NULL */
    struct redis_store *store;    /* NULL once orphaned by free() */
    struct ev_loop *loop;
    ev_timer timer;
    ev_tstamp sent_at;
    enum op_kind kind;
    store_cb cb;
    void *privdata;
    unsigned done : 1;       /* the user callback has run (or is running) */
    unsigned in_hiredis : 1; /* hiredis will still call reply_cb */
    unsigned busy : 1;       /* inside the user callback */
};

/* A getaddrinfo_a lookup.  Its last owner frees it: the loop when it has
 * taken the result, or the notification thread when the store was freed
 * before the lookup finished (state ORPHANED). */
enum { RES_PENDING, RES_DONE, RES_ORPHANED };
struct resolve {
    atomic_int state;
    struct gaicb req;
    struct addrinfo hints;
    char name[];
};

struct redis_store {
    struct kv_store kv; /* first member */
    struct ev_loop *loop;
    char *host, *password;
    int port, db, unix_socket, numeric_host;
    double timeout_s, connect_timeout_s;
    char where[300];

    enum conn_state state;
    redisAsyncContext *ac;
    struct resolve *res;
    ev_timer retry_timer;   /* back-off between attempts */
    ev_timer connect_timer; /* deadline for connect + handshake */
    ev_timer resolve_timer; /* polls the running lookup */
    double backoff_s;
    unsigned failures;      /* consecutive failed attempts */
    unsigned cap_logged_at; /* failures count when "still down" was logged */
    int ever_ready;
    ev_tstamp down_since;
    ev_tstamp last_reply;   /* when the current connection last answered */
    char reason[256];       /* why we are not connected */

    struct redis_op *ops;
};

static const char STEP_AUTH[] = "AUTH", STEP_SELECT[] = "SELECT", STEP_PING[] = "PING";

static void attempt_start(struct redis_store *self);

/* ---------------------------------------------------------------- ops */

static void op_unlink(struct redis_op *op)
{
    struct redis_store *s = op->store;

    if (!s)
        return;
    if (op->prev)
        op->prev->next = op->next;
    else
        s->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    op->store = NULL;
}

static void op_maybe_free(struct redis_op *op)
{
    if (op->in_hiredis || op->busy || !op->done)
        return;
    op_unlink(op);
    free(op);
}

/* Runs the user callback unless it already ran.  May free the store. */
static void op_finish(struct redis_op *op, enum store_status status, const char *message,
                      const void *data, size_t len)
{
    struct store_result res = {status, message, data, len};

    if (op->done)
        return;
    op->done = 1;
    ev_timer_stop(op->loop, &op->timer);
    op->busy = 1;
    op->cb(op->privdata, &res);
    op->busy = 0;
}

static void fail_now(store_cb cb, void *privdata, enum store_status status, const char *message)
{
    struct store_result res = {status, message, NULL, 0};

    cb(privdata, &res);
}

static void fail_unavailable(struct redis_store *self, store_cb cb, void *privdata)
{
    char msg[300];

    snprintf(msg, sizeof msg, "redis unavailable: %s", self->reason);
    fail_now(cb, privdata, STORE_UNAVAILABLE, msg);
}

/* ------------------------------------------------------- connection */

/* The store lets go of its context; returns it (or NULL). */
static redisAsyncContext *conn_detach(struct redis_store *self)
{
    redisAsyncContext *ac = self->ac;

    self->ac = NULL;
    if (ac)
        ac->data = NULL;
    return ac;
}


/* The attempt failed or the connection is gone (the context is already
 * detached): log the change, arm the back-off timer.  Calls no user code. */
static void conn_failed(struct redis_store *self, const char *reason)
{
    int was_ready = self->state == ST_READY;
    double delay_s = self->backoff_s;

    ev_timer_stop(self->loop, &self->connect_timer);
    snprintf(self->reason, sizeof self->reason, "%s",
             reason && *reason ? reason : "connection lost");
    self->state = ST_WAITING;

    if (was_ready) {
        self->down_since = ev_now(self->loop);
        sf_warn("redis %s: connection lost (%s); reconnecting", self->where, self->reason);
    } else if (++self->failures == 1) {
        sf_warn("redis %s: cannot connect (%s); retrying with back-off up to %d ms",
                self->where, self->reason, (int)(BACKOFF_MAX_S * 1000));
    } else if (delay_s >= BACKOFF_MAX_S &&
               (!self->cap_logged_at ||
                (self->failures - self->cap_logged_at) % LOG_EVERY_N_AT_CAP == 0)) {
        if (!self->cap_logged_at)
            self->cap_logged_at = self->failures;
        sf_warn("redis %s: still unavailable after %u attempts in %.0f s (%s); "
                "retrying every %d ms",
                self->where, self->failures, ev_now(self->loop) - self->down_since,
                self->reason, (int)(BACKOFF_MAX_S * 1000));
    }

    ev_timer_set(&self->retry_timer, delay_s, 0.);
    ev_timer_start(self->loop, &self->retry_timer);
    self->backoff_s = delay_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : delay_s * 2;
}

/* We give up on the current context ourselves.  redisAsyncFree() answers
 * the operations still pending in hiredis (NULL replies -> UNAVAILABLE with
 * self->reason), so it comes last: the store may be gone after it.  Inside
 * a hiredis callback the free is deferred by hiredis until it returns. */
static void conn_drop(struct redis_store *self, const char *reason)
{
    redisAsyncContext *ac = conn_detach(self);

    conn_failed(self, reason);
    if (ac)
        redisAsyncFree(ac);
}

static void became_ready(struct redis_store *self)
{
    ev_tstamp now = ev_now(self->loop);

    ev_timer_stop(self->loop, &self->connect_timer);
    self->state = ST_READY;
    self->last_reply = now;
    self->reason[0] = '\0';
    if (self->ever_ready)
        sf_info("redis %s: reconnected after %u failed attempts, down %.1f s", self->where,
                self->failures, now - self->down_since);
    else if (self->failures)
        sf_info("redis %s: connected (db %d) after %u failed attempts", self->where, self->db,
                self->failures);
    else
        sf_info("redis %s: connected (db %d)", self->where, self->db);
    self->ever_ready = 1;
    self->failures = 0;
    self->cap_logged_at = 0;
    self->backoff_s = BACKOFF_MIN_S;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_store *self = ac->data;

    /* On failure hiredis frees the context right after this returns, and
     * onDisconnect is not called: this is where we learn about it. */
    if (status == REDIS_OK || !self || self->ac != ac)
        return;
    conn_detach(self);
    conn_failed(self, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_store *self = ac->data;

    (void)status;
    if (!self || self->ac != ac)
        return;
    conn_detach(self);
    conn_failed(self, ac->err ? ac->errstr : "connection closed");
}

/* Replies to AUTH, SELECT and PING sent right after connect. */
static void handshake_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_store *self = ac->data;
    const redisReply *reply = r;
    const char *step = privdata;
    char reason[256];

    if (!self || self->ac != ac)
        return; /* a context we already let go of */
    if (!reply) { /* hiredis is freeing the context */
        conn_detach(self);
        conn_failed(self, ac->err ? ac->errstr : "connection closed");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(reason, sizeof reason, "%s refused: %.*s", step,
                 reply->len > 200 ? 200 : (int)reply->len, reply->str);
        conn_drop(self, reason);
        return;
    }
    if (step == STEP_PING)
        became_ready(self);
}

static void on_connect_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct redis_store *self = (struct redis_store *)((char *)w -
                                                      offsetof(struct redis_store, connect_timer));
    char reason[128];

    (void)loop;
    (void)revents;
    snprintf(reason, sizeof reason, "no answer within %d ms of connecting",
             (int)(self->connect_timeout_s * 1000 + 0.5));
    conn_drop(self, reason);
}

static void attempt_connect(struct redis_store *self, const char *addr)
{
    redisAsyncContext *ac;
    char reason[256];
    int ok;

    self->state = ST_CONNECTING;
    ac = self->unix_socket ? redisAsyncConnectUnix(self->host)
                           : redisAsyncConnect(addr, self->port);
    if (!ac) {
        conn_failed(self, "out of memory");
        return;
    }
    if (ac->err) { /* e.g. ECONNREFUSED reported by connect() at once */
        snprintf(reason, sizeof reason, "%s", ac->errstr);
        redisAsyncFree(ac);
        conn_failed(self, reason);
        return;
    }
    ac->data = self;
    if (redisLibevAttach(self->loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        conn_failed(self, "cannot attach to the event loop");
        return;
    }
    /* hiredis 0.14 arms the write watcher here to notice the connect. */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    self->ac = ac;

    /* Queued now, sent once connected; PING's answer means "ready". */
    ok = 1;
    if (self->password && *self->password)
        ok = redisAsyncCommand(ac, handshake_cb, (void *)STEP_AUTH, "AUTH %b", self->password,
                               strlen(self->password)) == REDIS_OK;
    if (ok && self->db)
        ok = redisAsyncCommand(ac, handshake_cb, (void *)STEP_SELECT, "SELECT %d",
                               self->db) == REDIS_OK;
    if (ok)
        ok = redisAsyncCommand(ac, handshake_cb, (void *)STEP_PING, "PING") == REDIS_OK;
    if (!ok) {
        conn_drop(self, "cannot queue the handshake");
        return;
    }
    ev_timer_set(&self->connect_timer, self->connect_timeout_s, 0.);
    ev_timer_start(self->loop, &self->connect_timer);
}

/* --------------------------------------------------- name resolution */

static void resolve_notify(union sigval sv)
{
    struct resolve *r = sv.sival_ptr;

    /* On a glibc thread: hand the result to the loop, or clean up when the
     * store is already gone. */
    if (atomic_exchange(&r->state, RES_DONE) == RES_ORPHANED) {
        if (r->req.ar_result)
            freeaddrinfo(r->req.ar_result);
        free(r);
    }
}

static void resolve_release(struct resolve *r)
{
    if (r->req.ar_result)
        freeaddrinfo(r->req.ar_result);
    free(r);
}

/* Forget a running lookup (free() only). */
static void resolve_abandon(struct redis_store *self)
{
    struct resolve *r = self->res;

    if (!r)
        return;
    self->res = NULL;
    ev_timer_stop(self->loop, &self->resolve_timer);
    /* A lookup cancelled before it ran sends no notification: nobody else
     * would free it. */
    if (gai_cancel(&r->req) == EAI_CANCELED ||
        atomic_exchange(&r->state, RES_ORPHANED) == RES_DONE)
        resolve_release(r);
}

static void on_resolve_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct redis_store *self = (struct redis_store *)((char *)w -
                                                      offsetof(struct redis_store, resolve_timer));
    struct resolve *r = self->res;
    char addr[INET6_ADDRSTRLEN] = "";
    char reason[256];
    const struct addrinfo *ai;
    unsigned n, pick;
    int rc;

    (void)revents;
    if (!r || atomic_load(&r->state) != RES_DONE)
        return;
    ev_timer_stop(loop, w);
    self->res = NULL;
    rc = gai_error(&r->req);
    if (rc != 0) {
        snprintf(reason, sizeof reason, "cannot resolve %s: %s", self->host, gai_strerror(rc));
        resolve_release(r);
        conn_failed(self, reason);
        return;
    }
    /* Several addresses (e.g. ::1 and 127.0.0.1): move on to the next one
     * after each failed attempt. */
    for (ai = r->req.ar_result, n = 0; ai; ai = ai->ai_next)
        n += ai->ai_family == AF_INET || ai->ai_family == AF_INET6;
    pick = n ? self->failures % n : 0;
    for (ai = r->req.ar_result; ai && !addr[0]; ai = ai->ai_next) {
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && pick-- > 0)
            continue;
        if (ai->ai_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ai->ai_addr)->sin_addr, addr,
                      sizeof addr);
        else if (ai->ai_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, addr,
                      sizeof addr);
    }
    resolve_release(r);
    if (!addr[0]) {
        snprintf(reason, sizeof reason, "cannot resolve %s: no address", self->host);
        conn_failed(self, reason);
        return;
    }
    attempt_connect(self, addr);
}

/* hiredis would call getaddrinfo() itself, on the loop thread, and a DNS
 * query can block for seconds: names are looked up with getaddrinfo_a. */
static void resolve_start(struct redis_store *self)
{
    size_t n = strlen(self->host) + 1;
    struct resolve *r = calloc(1, sizeof *r + n);
    struct gaicb *list[1];
    struct sigevent sev;
    char reason[256];
    int rc;

    if (!r) {
        conn_failed(self, "out of memory");
        return;
    }
    memcpy(r->name, self->host, n);
    atomic_init(&r->state, RES_PENDING);
    r->hints.ai_family = AF_UNSPEC;
    r->hints.ai_socktype = SOCK_STREAM;
    r->hints.ai_flags = AI_ADDRCONFIG;
    r->req.ar_name = r->name;
    r->req.ar_request = &r->hints;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = resolve_notify;
    sev.sigev_value.sival_ptr = r;
    list[0] = &r->req;
    rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
    if (rc != 0) {
        snprintf(reason, sizeof reason, "cannot resolve %s: %s", self->host, gai_strerror(rc));
        free(r);
        conn_failed(self, reason);
        return;
    }
    self->res = r;
    self->state = ST_RESOLVING;
    ev_timer_set(&self->resolve_timer, RESOLVE_POLL_S, RESOLVE_POLL_S);
    ev_timer_start(self->loop, &self->resolve_timer);
}

static void attempt_start(struct redis_store *self)
{
    if (self->unix_socket || self->numeric_host)
        attempt_connect(self, self->host);
    else
        resolve_start(self);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    attempt_start((struct redis_store *)((char *)w - offsetof(struct redis_store, retry_timer)));
}

/* ------------------------------------------------------- operations */

static void map_error_reply(const redisReply *reply, enum store_status *status, char *msg,
                            size_t size)
{
    static const char *const transient[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN",
                                            "CLUSTERDOWN", "OOM"};
    size_t i, n;

    *status = STORE_BAD_UPSTREAM;
    for (i = 0; i < sizeof transient / sizeof transient[0]; i++) {
        n = strlen(transient[i]);
        if ((size_t)reply->len >= n && memcmp(reply->str, transient[i], n) == 0 &&
            ((size_t)reply->len == n || reply->str[n] == ' '))
            *status = STORE_UNAVAILABLE;
    }
    snprintf(msg, size, "redis error: %.*s", reply->len > 200 ? 200 : (int)reply->len,
             reply->str);
}

static int status_is(const redisReply *reply, const char *text)
{
    size_t n = strlen(text);

    return reply->type == REDIS_REPLY_STATUS && (size_t)reply->len == n &&
           memcmp(reply->str, text, n) == 0;
}

static void reply_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_op *op = privdata;
    struct redis_store *store = op->store;
    const redisReply *reply = r;
    enum store_status status;
    char msg[320];

    op->in_hiredis = 0;
    if (!reply) {
        /* The context is going away: hiredis' error, or our own free. */
        if (store && store->ac == ac) {
            conn_detach(store);
            conn_failed(store, ac->err ? ac->errstr : "connection closed");
        }
        snprintf(msg, sizeof msg, "redis unavailable: %s",
                 store ? store->reason : ac->err ? ac->errstr : "connection closed");
        op_finish(op, STORE_UNAVAILABLE, msg, NULL, 0);
    } else {
        if (store)
            store->last_reply = ev_now(store->loop);
        if (op->done) {
            /* a late reply after STORE_TIMEOUT: dropped */
        } else if (reply->type == REDIS_REPLY_ERROR) {
            map_error_reply(reply, &status, msg, sizeof msg);
            op_finish(op, status, msg, NULL, 0);
        } else if (op->kind == OP_GET && reply->type == REDIS_REPLY_STRING) {
            op_finish(op, STORE_OK, "", reply->str, (size_t)reply->len);
        } else if (op->kind == OP_GET && reply->type == REDIS_REPLY_NIL) {
            op_finish(op, STORE_NOT_FOUND, "redis: no such key", NULL, 0);
        } else if ((op->kind == OP_PUT && status_is(reply, "OK")) ||
                   (op->kind == OP_PING && status_is(reply, "PONG"))) {
            op_finish(op, STORE_OK, "", NULL, 0);
        } else {
            snprintf(msg, sizeof msg, "redis: unexpected reply type %d to %s", reply->type,
                     op->kind == OP_GET ? "GET" : op->kind == OP_PUT ? "SET" : "PING");
            op_finish(op, STORE_BAD_UPSTREAM, msg, NULL, 0);
        }
    }
    op_maybe_free(op);
}

/* Is the server not answering at all (stopped, network black hole)?  Then
 * the connection is dropped, so that the next operations fail fast and the
 * pending ones are answered instead of piling up in hiredis' buffers.
 * Nothing came back since the timed-out operation was sent, and either
 * hiredis has nothing left to send and nothing half received (a server
 * busy with a huge value of ours is not stalled), or the silence has
 * lasted three deadlines whatever the buffers hold. */
static int conn_stalled(const struct redis_store *store, const struct redis_op *op)
{
    const redisContext *c = &store->ac->c;
    ev_tstamp quiet_s = ev_now(store->loop) - store->last_reply;

    if (store->last_reply > op->sent_at)
        return 0;
    if (quiet_s >= 3 * store->timeout_s)
        return 1;
    return sdslen(c->obuf) == 0 && c->reader->len <= c->reader->pos;
}

static void on_op_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct redis_op *op = (struct redis_op *)((char *)w - offsetof(struct redis_op, timer));
    struct redis_store *store = op->store;
    redisAsyncContext *stalled = NULL;
    char msg[128];
    int timeout_ms;

    (void)loop;
    (void)revents;
    if (!store)
        return; /* cannot happen: orphans are done and their timer stopped */
    timeout_ms = (int)(store->timeout_s * 1000 + 0.5);
    if (store->state == ST_READY && store->ac && conn_stalled(store, op)) {
        snprintf(msg, sizeof msg, "no reply from the server for %d ms", timeout_ms);
        stalled = conn_detach(store);
        conn_failed(store, msg);
    }
    snprintf(msg, sizeof msg, "redis timeout: no reply within %d ms", timeout_ms);
    op_finish(op, STORE_TIMEOUT, msg, NULL, 0); /* may free the store */
    op_maybe_free(op);                          /* not while hiredis holds it */
    if (stalled)
        redisAsyncFree(stalled); /* answers the others, releases op */
}

/* Starts an operation; on any failure the callback runs before return. */
static void op_start(struct redis_store *self, enum op_kind kind, const char *key,
                     size_t key_len, const void *value, size_t value_len, store_cb cb,
                     void *privdata)
{
    struct redis_op *op;
    int rc;

    if (self->state != ST_READY || !self->ac) {
        fail_unavailable(self, cb, privdata);
        return;
    }
    if (key_len > MAX_BULK_BYTES || value_len > MAX_BULK_BYTES) {
        fail_now(cb, privdata, STORE_TOO_LARGE, "redis: key or value over 512 MiB");
        return;
    }
    op = calloc(1, sizeof *op);
    if (!op) {
        fail_now(cb, privdata, STORE_ERROR, "redis: out of memory");
        return;
    }
    op->loop = self->loop;
    op->kind = kind;
    op->cb = cb;
    op->privdata = privdata;
    op->sent_at = ev_now(self->loop);
    if (!key)
        key = "";
    if (!value)
        value = "";
    if (kind == OP_GET)
        rc = redisAsyncCommand(self->ac, reply_cb, op, "GET %b", key, key_len);
    else if (kind == OP_PUT)
        rc = redisAsyncCommand(self->ac, reply_cb, op, "SET %b %b", key, key_len, value,
                               value_len);
    else
        rc = redisAsyncCommand(self->ac, reply_cb, op, "PING");
    if (rc != REDIS_OK) {
        /* hiredis refuses new commands while its context is being torn
         * down (or when out of memory): the connection is as good as gone. */
        free(op);
        fail_unavailable(self, cb, privdata);
        return;
    }
    op->in_hiredis = 1;
    op->store = self;
    op->next = self->ops;
    if (self->ops)
        self->ops->prev = op;
    self->ops = op;
    ev_timer_init(&op->timer, on_op_timeout, self->timeout_s, 0.);
    ev_timer_start(self->loop, &op->timer);
}

static void rs_get(struct kv_store *kv, const char *key, size_t key_len, store_cb cb,
                   void *privdata)
{
    op_start((struct redis_store *)kv, OP_GET, key, key_len, NULL, 0, cb, privdata);
}

static void rs_put(struct kv_store *kv, const char *key, size_t key_len, const void *value,
                   size_t value_len, store_cb cb, void *privdata)
{
    op_start((struct redis_store *)kv, OP_PUT, key, key_len, value, value_len, cb, privdata);
}

static void rs_ping(struct kv_store *kv, store_cb cb, void *privdata)
{
    op_start((struct redis_store *)kv, OP_PING, NULL, 0, NULL, 0, cb, privdata);
}

static void rs_free(struct kv_store *kv)
{
    struct redis_store *self = (struct redis_store *)kv;
    redisAsyncContext *ac;
    struct redis_op *op;

    self->state = ST_CLOSED;
    snprintf(self->reason, sizeof self->reason, "store closed");
    ev_timer_stop(self->loop, &self->retry_timer);
    ev_timer_stop(self->loop, &self->connect_timer);
    resolve_abandon(self);
    ac = conn_detach(self);

    /* Answer everything still open; records hiredis still holds stay
     * allocated (orphaned) until redisAsyncFree() hands them back. */
    while ((op = self->ops) != NULL) {
        op_unlink(op);
        op_finish(op, STORE_UNAVAILABLE, "redis unavailable: store closed", NULL, 0);
        op_maybe_free(op);
    }
    free(self->host);
    free(self->password);
    free(self);
    if (ac)
        redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
}

static const struct kv_ops redis_ops = {rs_get, rs_put, rs_ping, rs_free};

/* ---------------------------------------------------------- public */

int redis_config_from_env(struct redis_config *cfg)
{
    const char *port = setting_env("REDIS_PORT"), *db = setting_env("REDIS_DB");
    char why[SETTING_WHY_MAX];
    unsigned long long n;

    memset(cfg, 0, sizeof *cfg);
    cfg->host = setting_env("REDIS_HOST");
    cfg->password = getenv("REDIS_PASSWORD");
    cfg->port = 6379;
    cfg->timeout_ms = 5000;
    cfg->connect_timeout_ms = 5000;
    if (port && setting_port("REDIS_PORT", port, &cfg->port, why) < 0) {
        sf_error("%s", why);
        return -1;
    }
    if (db) {
        if (setting_number("REDIS_DB", db, 10, 0, INT_MAX, &n, why) < 0) {
            sf_error("%s", why);
            return -1;
        }
        cfg->db = (int)n;
    }
    return cfg->host ? 1 : 0;
}

static int is_numeric_host(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

struct kv_store *redis_store_new(struct ev_loop *loop, const struct redis_config *cfg)
{
    struct redis_store *self;
    struct sigaction sa;
    int timeout_ms, connect_timeout_ms;

    if (!cfg->host || !*cfg->host || cfg->db < 0 ||
        (cfg->host[0] != '/' && (cfg->port < 1 || cfg->port > 65535))) {
        sf_error("redis: invalid configuration (host \"%s\", port %d, db %d)",
                 cfg->host ? cfg->host : "", cfg->port, cfg->db);
        return NULL;
    }
    self = calloc(1, sizeof *self);
    if (!self || !(self->host = strdup(cfg->host)) ||
        (cfg->password && *cfg->password && !(self->password = strdup(cfg->password)))) {
        sf_error("redis: out of memory");
        if (self)
            free(self->host);
        free(self);
        return NULL;
    }
    timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : timeout_ms;
    self->kv.ops = &redis_ops;
    self->kv.backend = "redis";
    self->kv.where = self->where;
    self->loop = loop;
    self->port = cfg->port;
    self->db = cfg->db;
    self->unix_socket = cfg->host[0] == '/';
    self->numeric_host = is_numeric_host(cfg->host);
    self->timeout_s = timeout_ms / 1000.0;
    self->connect_timeout_s = connect_timeout_ms / 1000.0;
    self->backoff_s = BACKOFF_MIN_S;
    self->down_since = ev_now(loop);
    if (self->unix_socket)
        snprintf(self->where, sizeof self->where, "unix:%s", self->host);
    else if (strchr(self->host, ':'))
        snprintf(self->where, sizeof self->where, "[%s]:%d", self->host, self->port);
    else
        snprintf(self->where, sizeof self->where, "%s:%d", self->host, self->port);
    snprintf(self->reason, sizeof self->reason, "not connected yet");
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        sf_warn("redis: SIGPIPE is not ignored; a write to a closed connection "
                "would kill the process");
    ev_timer_init(&self->retry_timer, on_retry, 0., 0.);
    ev_timer_init(&self->connect_timer, on_connect_timeout, 0., 0.);
    ev_timer_init(&self->resolve_timer, on_resolve_poll, 0., 0.);
    attempt_start(self);
    return &self->kv;
}
