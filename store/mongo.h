/*
 * store/mongo.h — the homers store: MongoDB through mongo-c-driver, on the
 * worker pool (the driver blocks, so it never runs on the loop thread).
 *
 * Documents live in the collection "homers" of the URI's database
 * ("springfield" when the URI names none) with the shape
 *     { name: <string>, content: <any JSON value as BSON> }
 *
 *   get(name):       find_one {name}, projection {_id: 0, content: 1}
 *                    -> STORE_OK, data = `content` rendered as compact JSON
 *                       (store/json_bson.h), or STORE_NOT_FOUND
 *   put(name, json): the value is JSON text; it is converted with
 *                    json_to_bson_value() on the worker thread (refused ->
 *                    STORE_BAD_INPUT with the parser's message), then
 *                    replace_one {name} -> {name, content}, upsert -> STORE_OK
 *   ping:            the "ping" command on "admin"
 *
 * Names are binary safe up to MONGO_MAX_NAME_BYTES but must be valid UTF-8
 * (BSON strings are; NUL bytes are allowed): else STORE_BAD_INPUT at once.
 *
 * Failures: no server selectable within serverSelectionTimeoutMS ->
 * STORE_UNAVAILABLE "mongodb unavailable: ..."; a socket that stays silent
 * for socketTimeoutMS -> STORE_TIMEOUT; a full worker queue ->
 * STORE_UNAVAILABLE; protocol or authentication trouble ->
 * STORE_BAD_UPSTREAM; anything else -> STORE_ERROR with the driver's
 * message.  The first operation that cannot reach the server opens the
 * breaker (store/breaker.h): everything waiting is answered
 * STORE_UNAVAILABLE at once and new operations fail fast, until a
 * half-open probe reaches the server again.
 *
 * Timeouts: unless the URI sets them, serverSelectionTimeoutMS and
 * connectTimeoutMS become min(2000, timeout_ms) and socketTimeoutMS
 * becomes timeout_ms, so a stopped server fails in about 2 s instead of the
 * driver's 30 s, and a hung one in timeout_ms.  Reconnection is the
 * driver's: its monitor threads rediscover a restarted server.  A pooled
 * connection that died while idle fails its next use: the driver retries
 * reads once by itself (so a get may take up to 2 x timeout_ms before
 * STORE_TIMEOUT), and put/ping retry once here (replace-by-name is
 * idempotent), but not after a timeout.
 *
 * Keys inside content are not checked by the driver ("validate": false):
 * empty, dotted and $-prefixed keys are JSON, and MongoDB 5.0+ stores them
 * below the top level; an older server's refusal -> STORE_BAD_INPUT.  A
 * document over the server's maxBsonObjectSize -> STORE_TOO_LARGE.
 *
 * Driver lifetime: mongo_store_new() calls mongoc_init() (once per
 * process); freeing the last live mongo store calls mongoc_cleanup(), after
 * which no new mongo store can be made in that process (mongo_store_new
 * returns NULL) — the driver cannot be initialized twice.  Create stores
 * after fork(), like the worker pool.  The driver's log lines go to
 * common/log.h (warnings and errors only).
 *
 * Threads: get/put/ping/free belong to the loop thread.  kv_free() while
 * operations are in flight answers them (STORE_UNAVAILABLE) and returns;
 * their jobs are cancelled, and the store is destroyed after the last
 * one's done().  The worker pool must
 * outlive the store's pending operations (free the store first, then the
 * pool: worker_pool_free runs the outstanding done()s).
 */
#ifndef SPRINGFIELD_STORE_MONGO_H
#define SPRINGFIELD_STORE_MONGO_H

#include <ev.h>

#include "store/kv.h"
#include "store/workers.h"

#define MONGO_DEFAULT_DATABASE "springfield"
#define MONGO_COLLECTION "homers"
#define MONGO_MAX_NAME_BYTES 1024
#define MONGO_DEFAULT_TIMEOUT_MS 5000
#define MONGO_SELECTION_TIMEOUT_MS 2000

struct mongo_config {
    const char *uri; /* mongodb://... (borrowed; copied by mongo_store_new) */
    int timeout_ms;  /* per operation; <= 0 means MONGO_DEFAULT_TIMEOUT_MS */
};

/* Sets cfg->uri from MONGODB_URI (pointing into the environment) and
 * returns 1 when it is set and not empty; else returns 0 and leaves cfg
 * alone.  cfg->timeout_ms is not touched. */
int mongo_config_from_env(struct mongo_config *cfg);

/* NULL on failure (bad URI, out of memory, driver already cleaned up),
 * with the reason logged.  kv->backend = "mongodb", kv->where =
 * "host:port[,host:port...]/database" (no credentials). */
struct kv_store *mongo_store_new(struct ev_loop *loop, struct worker_pool *pool,
                                 const struct mongo_config *cfg);

#endif
