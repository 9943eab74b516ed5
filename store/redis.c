/*
 * store/redis.c — the Redis shim: hiredis' async context on the caller's
 * libev loop; the operation core (store/op.h) does delivery, deadlines and
 * the breaker, this file only the protocol and the connection.
 *
 * An operation (struct redis_op) is held by the core until its result is
 * delivered, and by hiredis (as privdata) until hiredis calls reply_cb for
 * it — with a reply, or with NULL when the context goes away.  Whichever
 * comes last frees it.  A late reply (after the deadline) finds its
 * operation done and is dropped.
 *
 * The connection: resolve (off the loop), connect, AUTH, SELECT, PING;
 * ready once PING answers.  Connect failed or connection lost: the breaker
 * opens, operations fail fast, and the next attempt waits for the back-off
 * (store/breaker.h).  Whenever the store lets go of a context, ac->data is
 * cleared, so later hiredis callbacks on it find no store.
 */
#include "store/redis.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "common/log.h"
#include "common/setting.h"
#include "store/resolver.h"
#include "store/resp.h"

#define MAX_BULK_BYTES (512u << 20) /* Redis' proto-max-bulk-len default */


enum conn_state {
    ST_WAITING,    /* back-off timer armed, no context */
    ST_RESOLVING,  /* host name lookup running */
    ST_CONNECTING, /* context exists, TCP connect or AUTH/SELECT/PING in flight */
    ST_READY,      /* handshake answered: operations go to the server */
};

struct redis_op {
    struct store_op op;
    struct redis_store *store; /* NULL once the store is gone */
    enum kv_verb kind;
    ev_tstamp sent_at;
};

struct redis_store {
    struct kv_store kv; /* first member */
    struct ev_loop *loop;
    struct resolver *resolver; /* NULL: the host is numeric or a socket path */
    char *host, *password;
    int port, db, unix_socket;
    double connect_timeout_s;
    char where[300], name[320];

    enum conn_state state;
    redisAsyncContext *ac;
    struct resolve *lookup;
    unsigned attempt;       /* picks one of several addresses in turn */
    ev_timer retry_timer;   /* back-off between attempts */
    ev_timer connect_timer; /* deadline for connect + handshake */
    ev_tstamp last_reply;   /* when the current connection last answered */
};

static const char STEP_AUTH[] = "AUTH", STEP_SELECT[] = "SELECT", STEP_PING[] = "PING";

static void attempt_start(struct redis_store *self);

/* ------------------------------------------------------- connection */

static struct store_breaker *breaker(struct redis_store *self)
{
    return &self->kv.be.breaker;
}

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
 * detached): the breaker opens, the next attempt waits for the back-off.
 * Calls no user code. */
static void conn_failed(struct redis_store *self, const char *reason)
{
    ev_tstamp now = ev_now(self->loop);

    ev_timer_stop(self->loop, &self->connect_timer);
    self->state = ST_WAITING;
    self->attempt++;
    store_breaker_failure(breaker(self), now, reason && *reason ? reason : "connection lost");
    ev_timer_set(&self->retry_timer, store_breaker_retry_in(breaker(self), now), 0.);
    ev_timer_start(self->loop, &self->retry_timer);
}

/* We give up on the current context ourselves.  redisAsyncFree() answers
 * the operations still pending in hiredis (NULL replies -> UNAVAILABLE),
 * so it comes last.  Inside a hiredis callback the free is deferred by
 * hiredis until it returns. */
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
    if (breaker(self)->ever_closed)
        stat_add(&self->kv.be.stats->reconnects, 1);
    self->state = ST_READY;
    self->last_reply = now;
    self->attempt = 0;
    if (breaker(self)->state == BREAKER_CLOSED && !breaker(self)->ever_closed)
        sf_info("%s: connected (db %d)", self->name, self->db); /* at the first try */
    store_breaker_success(breaker(self), now);
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
    struct redis_store *self = container_of(w, struct redis_store, connect_timer);
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

/* The name's addresses arrived: connect to one of them (after each failed
 * attempt the next, so ::1 and 127.0.0.1 are both tried). */
static void on_resolved(void *arg, const char *error, const char *const *addrs, unsigned n)
{
    struct redis_store *self = arg;
    char reason[300];

    self->lookup = NULL;
    if (error) {
        snprintf(reason, sizeof reason, "cannot resolve %s: %s", self->host, error);
        conn_failed(self, reason);
        return;
    }
    attempt_connect(self, addrs[self->attempt % n]);
}

static void attempt_start(struct redis_store *self)
{
    if (!self->resolver) {
        attempt_connect(self, self->host);
        return;
    }
    self->state = ST_RESOLVING;
    self->lookup = resolver_lookup(self->resolver, self->host, on_resolved, self);
    if (!self->lookup)
        conn_failed(self, "cannot start a name lookup");
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct redis_store *self = container_of(w, struct redis_store, retry_timer);

    (void)loop;
    (void)revents;
    /* the reconnect is the breaker's probe */
    if (store_breaker_allow(breaker(self), ev_now(self->loop)))
        attempt_start(self);
    else
        conn_failed(self, store_breaker_reason(breaker(self)));
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
    struct redis_op *rop = privdata;
    struct store_op *op = &rop->op;
    struct redis_store *store = ac->data; /* NULL: a context the store let go of */
    const redisReply *reply = r;
    enum store_status status;
    char msg[320];

    if (!reply) {
        /* The context is going away: hiredis' error, or our own drop. */
        if (store && store->ac == ac) {
            conn_detach(store);
            conn_failed(store, ac->err ? ac->errstr : "connection closed");
        }
        store_op_fail(op, STORE_UNAVAILABLE, "redis unavailable: %s",
                      ac->err ? ac->errstr : "connection closed");
    } else {
        if (store)
            store->last_reply = ev_now(store->loop);
        if (!store_op_running(op)) {
            /* a late reply after the deadline: dropped */
        } else if (reply->type == REDIS_REPLY_ERROR) {
            map_error_reply(reply, &status, msg, sizeof msg);
            store_op_complete(op, status, msg, NULL, 0);
        } else if (rop->kind == KV_GET && reply->type == REDIS_REPLY_STRING) {
            store_op_complete(op, STORE_OK, "", reply->str, (size_t)reply->len);
        } else if (rop->kind == KV_GET && reply->type == REDIS_REPLY_NIL) {
            store_op_complete(op, STORE_NOT_FOUND, "redis: no such key", NULL, 0);
        } else if ((rop->kind == KV_PUT && status_is(reply, "OK")) ||
                   (rop->kind == KV_PING && status_is(reply, "PONG"))) {
            store_op_complete(op, STORE_OK, "", NULL, 0);
        } else {
            store_op_fail(op, STORE_BAD_UPSTREAM, "redis: unexpected reply type %d to %s",
                          reply->type,
                          rop->kind == KV_GET ? "GET" : rop->kind == KV_PUT ? "SET" : "PING");
        }
    }
    store_op_release(op); /* hiredis lets go of it */
}

/*
 * Before an operation times out: has the server answered anything at all
 * since the operation was sent?  If not, it is stopped or the network is a
 * black hole, and the connection is dropped, so that the next operations
 * fail fast and the pending ones are answered instead of piling up in
 * hiredis' buffers.  (A single command whose transfer alone takes longer
 * than the timeout drops the connection too; the commands queued behind it
 * on the same connection would time out anyway.)
 */
static void on_op_deadline(struct store_op *op)
{
    struct redis_op *rop = container_of(op, struct redis_op, op);
    struct redis_store *store = rop->store;
    redisAsyncContext *stalled;
    char msg[128];

    if (!store || store->state != ST_READY || !store->ac || store->last_reply > rop->sent_at)
        return;
    snprintf(msg, sizeof msg, "no reply from the server for %ld ms", op->timeout_ms);
    stalled = conn_detach(store);
    conn_failed(store, msg);
    store_op_fail(op, STORE_TIMEOUT, "redis timeout: no reply within %ld ms", op->timeout_ms);
    redisAsyncFree(stalled); /* answers the others: unavailable */
}

static void free_op(struct store_op *op)
{
    free(container_of(op, struct redis_op, op));
}

/* Formats the command (store/resp.h: no format string to parse) and
 * queues it on the connection.  hiredis writes what is queued once the
 * loop comes back to it, so the commands of one loop iteration leave in
 * one write, pipelined: nothing waits for the answer of the one before. */
static int send_command(struct redis_store *self, struct redis_op *rop, enum kv_verb kind,
                        const char *key, size_t key_len, const void *value, size_t value_len)
{
    struct resp_arg args[3] = {{"PING", 4}, {key, key_len}, {value, value_len}};
    unsigned n = 1;
    char small[256], *cmd = small;
    size_t len;
    int rc;

    if (kind == KV_GET) {
        args[0] = (struct resp_arg){"GET", 3};
        n = 2;
    } else if (kind == KV_PUT) {
        args[0] = (struct resp_arg){"SET", 3};
        n = 3;
    }
    len = resp_command_len(args, n);
    if (len > sizeof small && !(cmd = malloc(len)))
        return REDIS_ERR;
    resp_command(cmd, args, n);
    rc = redisAsyncFormattedCommand(self->ac, reply_cb, rop, cmd, len);
    if (cmd != small)
        free(cmd);
    return rc;
}

/* Starts an operation; a failure is answered through the core. */
static void op_start(struct redis_store *self, enum kv_verb kind, const char *key,
                     size_t key_len, const void *value, size_t value_len, store_cb cb,
                     void *privdata)
{
    struct store_backend *be = &self->kv.be;
    struct redis_op *rop;
    int rc;

    if (self->state != ST_READY || !self->ac) {
        store_refuse(be, cb, privdata, STORE_UNAVAILABLE, "redis unavailable: %s",
                     be->closing ? "store closed"
                     : *store_breaker_reason(breaker(self)) ? store_breaker_reason(breaker(self))
                                                            : "not connected yet");
        return;
    }
    if (key_len > MAX_BULK_BYTES || value_len > MAX_BULK_BYTES) {
        store_refuse(be, cb, privdata, STORE_TOO_LARGE, "redis: key or value over 512 MiB");
        return;
    }
    rop = calloc(1, sizeof *rop);
    if (!rop) {
        store_refuse(be, cb, privdata, STORE_ERROR, "redis: out of memory");
        return;
    }
    rop->kind = kind;
    rop->store = self;
    rop->sent_at = ev_now(self->loop);
    rop->op.on_deadline = on_op_deadline;
    store_op_start(be, &rop->op, cb, privdata, 0, free_op);
    rc = send_command(self, rop, kind, key, key_len, value, value_len);
    if (rc != REDIS_OK) {
        /* hiredis refuses new commands while its context is being torn
         * down (or when out of memory): the connection is as good as gone. */
        store_op_fail(&rop->op, STORE_UNAVAILABLE, "redis unavailable: connection closing");
        return;
    }
    store_op_hold(&rop->op); /* hiredis holds it until reply_cb */
}

static void rs_start(struct kv_store *kv, const struct kv_request *req, store_cb cb,
                     void *privdata)
{
    op_start((struct redis_store *)kv, req->verb, req->key, req->key_len, req->value,
             req->value_len, cb, privdata);
}

static void destroy(struct store_backend *be)
{
    struct redis_store *self = container_of(be, struct redis_store, kv.be);
    redisAsyncContext *ac;

    ev_timer_stop(self->loop, &self->retry_timer);
    ev_timer_stop(self->loop, &self->connect_timer);
    resolver_cancel(self->lookup);
    /* Operations hiredis still holds were answered by the close, and find
     * no store through ac->data when hiredis lets go of them. */
    ac = conn_detach(self);
    free(self->host);
    free(self->password);
    free(self);
    if (ac)
        redisAsyncFree(ac); /* releases the operations it holds */
}

static const struct kv_ops redis_ops = {rs_start, destroy};

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

struct kv_store *redis_store_new(struct ev_loop *loop, struct resolver *resolver,
                                 const struct redis_config *cfg)
{
    struct redis_store *self;
    struct sigaction sa;
    int timeout_ms, connect_timeout_ms;

    if (!cfg || !cfg->host || !*cfg->host || cfg->db < 0 ||
        (cfg->host[0] != '/' && (cfg->port < 1 || cfg->port > 65535))) {
        sf_error("redis: invalid configuration (host \"%s\", port %d, db %d)",
                 cfg && cfg->host ? cfg->host : "", cfg ? cfg->port : 0, cfg ? cfg->db : 0);
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
    self->loop = loop;
    self->port = cfg->port;
    self->db = cfg->db;
    self->unix_socket = cfg->host[0] == '/';
    self->resolver = self->unix_socket || resolver_is_numeric(cfg->host) ? NULL : resolver;
    self->connect_timeout_s = connect_timeout_ms / 1000.0;
    if (self->unix_socket)
        snprintf(self->where, sizeof self->where, "unix:%s", self->host);
    else if (strchr(self->host, ':'))
        snprintf(self->where, sizeof self->where, "[%s]:%d", self->host, self->port);
    else
        snprintf(self->where, sizeof self->where, "%s:%d", self->host, self->port);
    snprintf(self->name, sizeof self->name, "redis %s", self->where);
    store_backend_init(&self->kv.be, loop, "redis", self->where, timeout_ms);
    store_breaker_init(breaker(self), self->name, 1, true);
    if (!self->resolver && !self->unix_socket && !resolver_is_numeric(cfg->host)) {
        sf_error("redis: %s is a host name and there is no resolver", cfg->host);
        kv_free(&self->kv);
        return NULL;
    }
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        sf_warn("redis: SIGPIPE is not ignored; a write to a closed connection "
                "would kill the process");
    ev_timer_init(&self->retry_timer, on_retry, 0., 0.);
    ev_timer_init(&self->connect_timer, on_connect_timeout, 0., 0.);
    attempt_start(self);
    return &self->kv;
}
