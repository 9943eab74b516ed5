/*
 * store/kv.h — the key-value face every storage shim shows the routes.
 *
 * marges (Redis), homers (MongoDB), lisas (MySQL), bart (S3) and the
 * embedded in-process store all implement this interface, so a route does
 * not know which backend it talks to and the health check can ping them
 * all the same way.  A shim embeds struct kv_store as its first member.
 *
 * Every operation follows the shim contract of store/result.h: cb runs on
 * the loop thread exactly once (possibly before the call returns, for the
 * embedded store), with the key and value copied by the shim as needed —
 * the caller's buffers need only live until the call returns.
 *
 *   get:  STORE_OK with data/len = the value, or STORE_NOT_FOUND, or an error
 *   put:  STORE_OK once the value is durably acknowledged by the backend
 *   ping: STORE_OK when the backend answers
 */
#ifndef SPRINGFIELD_STORE_KV_H
#define SPRINGFIELD_STORE_KV_H

#include <stddef.h>

#include "store/result.h"

struct kv_store;

struct kv_ops {
    void (*get)(struct kv_store *kv, const char *key, size_t key_len, store_cb cb,
                void *privdata);
    void (*put)(struct kv_store *kv, const char *key, size_t key_len, const void *value,
                size_t value_len, store_cb cb, void *privdata);
    void (*ping)(struct kv_store *kv, store_cb cb, void *privdata);
    /* Releases everything; pending operations get their callback first. */
    void (*free)(struct kv_store *kv);
};

struct kv_store {
    const struct kv_ops *ops;
    const char *backend; /* "redis", "mongodb", "mysql", "s3", "embedded" */
    const char *where;   /* e.g. "127.0.0.1:6379", for the start-up log */
};

static inline void kv_get(struct kv_store *kv, const char *key, size_t key_len, store_cb cb,
                          void *privdata)
{
    kv->ops->get(kv, key, key_len, cb, privdata);
}

static inline void kv_put(struct kv_store *kv, const char *key, size_t key_len,
                          const void *value, size_t value_len, store_cb cb, void *privdata)
{
    kv->ops->put(kv, key, key_len, value, value_len, cb, privdata);
}

static inline void kv_ping(struct kv_store *kv, store_cb cb, void *privdata)
{
    kv->ops->ping(kv, cb, privdata);
}

static inline void kv_free(struct kv_store *kv)
{
    if (kv)
        kv->ops->free(kv);
}

#endif
