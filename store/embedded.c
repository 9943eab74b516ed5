/*
 * store/embedded.c — the in-process store: an open-addressing hash table
 * (linear probing, power-of-two capacity, FNV-1a with a per-store random
 * seed) of binary-safe key/value items.
 *
 * Each item is one allocation holding its key and value.  An overwrite
 * builds the new item first and only then retires the old one, so a failed
 * allocation leaves the old value in place.  There is no delete, hence no
 * tombstones.
 *
 * Every operation runs from the loop, after its starting call returned
 * (store_op_later): a put copies its key and value into the new item at
 * once and puts it in the table then; a get looks its key up then.  So
 * operations keep their order, and a get's data stays valid for its whole
 * callback: whatever the callback starts runs after it returns.
 */
#include "store/embedded.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define INITIAL_SLOTS 16 /* a power of two */

struct item {
    uint64_t hash; /* kept for growing without rehashing */
    size_t key_len;
    size_t value_len;
    unsigned char bytes[]; /* key, then value */
};

struct embedded_store {
    struct kv_store kv; /* first: the kv.h contract */
    struct item **slots;
    size_t nslots; /* a power of two */
    size_t count;
    uint64_t seed;
    char name[];
};

/* One operation: a get's key, or a put's new item. */
struct embedded_op {
    struct store_op op;
    struct embedded_store *es;
    struct item *item; /* put: not in the table yet */
    size_t key_len;
    char key[];        /* get */
};


static uint64_t hash_key(uint64_t seed, const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ULL ^ seed; /* FNV-1a 64 offset basis */

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL; /* FNV-1a 64 prime */
    }
    return h;
}

static uint64_t make_seed(const void *salt)
{
    uint64_t seed;

    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
        return seed;
    /* No entropy yet (early boot): weaker, but still per process. */
    return (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)salt;
}

/* Compares the bytes, not the stored hash: that costs little for short
 * keys, and keeps this comparison exercised by every probe collision
 * rather than only by (untestable) 64-bit hash collisions. */
static int key_equal(const struct item *it, const void *key, size_t key_len)
{
    return it->key_len == key_len && (key_len == 0 || memcmp(it->bytes, key, key_len) == 0);
}

/* The slot holding the key, or the empty slot where it would go.  The load
 * factor stays <= 3/4, so an empty slot always ends the probe. */
static struct item **find_slot(struct item **slots, size_t nslots, uint64_t hash,
                               const void *key, size_t key_len)
{
    size_t mask = nslots - 1;

    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        if (!slots[i] || key_equal(slots[i], key, key_len))
            return &slots[i];
    }
}

/* Doubles the table.  0 on success, -1 when out of memory (table unchanged). */
static int grow(struct embedded_store *es)
{
    size_t nslots = es->nslots * 2;
    struct item **slots;

    if (nslots < es->nslots || nslots > SIZE_MAX / sizeof *slots)
        return -1;
    slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < es->nslots; i++) {
        struct item *it = es->slots[i];

        if (it)
            *find_slot(slots, nslots, it->hash, it->bytes, it->key_len) = it;
    }
    free(es->slots);
    es->slots = slots;
    es->nslots = nslots;
    return 0;
}

static void destroy(struct store_backend *b)
{
    struct embedded_store *es = container_of(b, struct embedded_store, kv.be);

    for (size_t i = 0; i < es->nslots; i++)
        free(es->slots[i]);
    free(es->slots);
    free(es);
}

static void free_op(struct store_op *op)
{
    struct embedded_op *eo = container_of(op, struct embedded_op, op);

    free(eo->item); /* a put that did not go into the table */
    free(eo);
}

/* A new operation of extra bytes, started; NULL (answered) when out of memory. */
static struct embedded_op *op_new(struct embedded_store *es, size_t extra, store_cb cb,
                                  void *privdata)
{
    struct embedded_op *eo = calloc(1, sizeof *eo + extra);

    if (!eo) {
        store_refuse(&es->kv.be, cb, privdata, STORE_ERROR, "embedded store %s: out of memory",
                     es->name);
        return NULL;
    }
    eo->es = es;
    store_op_start(&es->kv.be, &eo->op, cb, privdata, -1, free_op);
    return eo;
}

static void do_get(struct store_op *op)
{
    struct embedded_op *eo = container_of(op, struct embedded_op, op);
    struct embedded_store *es = eo->es;
    struct item *it = *find_slot(es->slots, es->nslots, hash_key(es->seed, eo->key, eo->key_len),
                                 eo->key, eo->key_len);

    if (it) /* data non-NULL even for "" */
        store_op_complete(op, STORE_OK, "", it->bytes + it->key_len, it->value_len);
    else
        store_op_complete(op, STORE_NOT_FOUND, "not found", NULL, 0);
}

/* The new item of a put, made now from the caller's buffers (the old one
 * stays in place until it goes in, and if this fails); NULL when out of
 * memory. */
static struct item *new_item(const struct embedded_store *es, const struct kv_request *req)
{
    struct item *it = malloc(sizeof *it + req->key_len + req->value_len);

    if (!it)
        return NULL;
    it->hash = hash_key(es->seed, req->key, req->key_len);
    it->key_len = req->key_len;
    it->value_len = req->value_len;
    if (req->key_len)
        memcpy(it->bytes, req->key, req->key_len);
    if (req->value_len)
        memcpy(it->bytes + req->key_len, req->value, req->value_len);
    return it;
}

static void do_put(struct store_op *op)
{
    struct embedded_op *eo = container_of(op, struct embedded_op, op);
    struct embedded_store *es = eo->es;
    struct item *it = eo->item, **slot;

    slot = find_slot(es->slots, es->nslots, it->hash, it->bytes, it->key_len);
    if (!*slot && (es->count + 1) * 4 > es->nslots * 3) { /* keep load <= 3/4 */
        if (grow(es) != 0) {
            store_op_fail(op, STORE_ERROR, "embedded store %s: out of memory growing the table",
                          es->name);
            return;
        }
        slot = find_slot(es->slots, es->nslots, it->hash, it->bytes, it->key_len);
    }
    if (*slot)
        free(*slot); /* no callback can be reading it: they all ran */
    else
        es->count++;
    *slot = it;
    eo->item = NULL;
    store_op_complete(op, STORE_OK, "", NULL, 0);
}

static void do_ping(struct store_op *op)
{
    store_op_complete(op, STORE_OK, "", NULL, 0);
}

static void embedded_start(struct kv_store *kv, const struct kv_request *req, store_cb cb,
                           void *privdata)
{
    static void (*const work[])(struct store_op *) = {
        [KV_GET] = do_get, [KV_PUT] = do_put, [KV_PING] = do_ping};
    struct embedded_store *es = (struct embedded_store *)kv;
    struct embedded_op *eo;

    if ((!req->key && req->key_len) || (!req->value && req->value_len)) {
        store_refuse(&kv->be, cb, privdata, STORE_BAD_INPUT,
                     "embedded store %s: NULL key or value", es->name);
        return;
    }
    if (req->key_len > SIZE_MAX / 2 - sizeof(struct item) ||
        req->value_len > SIZE_MAX / 2 - sizeof(struct item) - req->key_len) {
        store_refuse(&kv->be, cb, privdata, STORE_TOO_LARGE,
                     "embedded store %s: key and value too large", es->name);
        return;
    }
    eo = op_new(es, req->verb == KV_GET ? req->key_len : 0, cb, privdata);
    if (!eo)
        return;
    if (req->verb == KV_GET) {
        eo->key_len = req->key_len;
        if (req->key_len)
            memcpy(eo->key, req->key, req->key_len);
    } else if (req->verb == KV_PUT && !(eo->item = new_item(es, req))) {
        store_op_fail(&eo->op, STORE_ERROR, "embedded store %s: out of memory storing the value",
                      es->name);
        return;
    }
    store_op_later(&eo->op, work[req->verb]);
}

static const struct kv_ops embedded_ops = {embedded_start, destroy};

struct kv_store *embedded_store_new(struct ev_loop *loop, const char *name)
{
    struct embedded_store *es;
    size_t name_len;

    if (!name || !*name)
        name = "embedded";
    name_len = strlen(name);
    es = calloc(1, sizeof *es + name_len + 1);
    if (!es)
        return NULL;
    es->slots = calloc(INITIAL_SLOTS, sizeof *es->slots);
    if (!es->slots) {
        free(es);
        return NULL;
    }
    es->nslots = INITIAL_SLOTS;
    es->seed = make_seed(es);
    memcpy(es->name, name, name_len + 1);
    es->kv.ops = &embedded_ops;
    store_backend_init(&es->kv.be, loop, "embedded", "in-process", 0);
    return &es->kv;
}
