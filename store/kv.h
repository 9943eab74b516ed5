/*
 * store/kv.h — the key-value face every storage shim shows the routes.
 *
 * marges (Redis), homers (MongoDB), lisas (MySQL), bart (S3) and the
 * embedded in-process store all implement this interface, so a route does
 * not know which backend it talks to and the health check can ping them
 * all the same way.  A shim embeds struct kv_store as its first member;
 * its struct store_backend (store/op.h) carries what every backend has:
 * its kind and address, its pending operations, its breaker, its counts.
 *
 * Every operation keeps the shim contract of store/op.h: cb runs on the
 * loop thread exactly once, never before the call returns, also when the
 * store is freed first; the key and value are copied by the shim as needed
 * (the caller's buffers need only live until the call returns).
 *
 *   get:  STORE_OK with data/len = the value, or STORE_NOT_FOUND, or an error
 *   put:  STORE_OK once the value is durably acknowledged by the backend
 *   ping: STORE_OK when the backend answers
 */
#ifndef SPRINGFIELD_STORE_KV_H
#define SPRINGFIELD_STORE_KV_H

#include <stddef.h>

#include "store/op.h"
#include "store/result.h"

struct kv_store;

enum kv_verb { KV_GET, KV_PUT, KV_PING };

/* One operation: what, on which key, with which value (put only). */
struct kv_request {
    enum kv_verb verb;
    const char *key; /* may be NULL when key_len is 0 */
    size_t key_len;
    const void *value;
    size_t value_len;
};

struct kv_ops {
    /* Starts req; cb runs once, from the loop (store/op.h). */
    void (*start)(struct kv_store *kv, const struct kv_request *req, store_cb cb,
                  void *privdata);
    /* Frees the shim once the core has answered everything pending (see
     * store_backend_close). */
    void (*destroy)(struct store_backend *be);
};

struct kv_store {
    const struct kv_ops *ops;
    struct store_backend be; /* be.kind: "redis", "mongodb", "mysql", "s3", "embedded" */
};

static inline void kv_start(struct kv_store *kv, const struct kv_request *req, store_cb cb,
                            void *privdata)
{
    store_backend_begin(&kv->be);
    kv->ops->start(kv, req, cb, privdata);
    store_backend_end(&kv->be);
}

static inline void kv_get(struct kv_store *kv, const char *key, size_t key_len, store_cb cb,
                          void *privdata)
{
    struct kv_request req = {KV_GET, key, key_len, NULL, 0};

    kv_start(kv, &req, cb, privdata);
}

static inline void kv_put(struct kv_store *kv, const char *key, size_t key_len,
                          const void *value, size_t value_len, store_cb cb, void *privdata)
{
    struct kv_request req = {KV_PUT, key, key_len, value, value_len};

    kv_start(kv, &req, cb, privdata);
}

static inline void kv_ping(struct kv_store *kv, store_cb cb, void *privdata)
{
    struct kv_request req = {KV_PING, NULL, 0, NULL, 0};

    kv_start(kv, &req, cb, privdata);
}

/* Releases everything; pending operations get their callback first (from
 * inside one of the store's own callbacks: once it has returned). */
static inline void kv_free(struct kv_store *kv)
{
    if (kv)
        store_backend_close(&kv->be, "store closed", kv->ops->destroy);
}

#endif
