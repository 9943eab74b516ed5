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
 * Callbacks run synchronously.  While one is running, an item that gets
 * replaced is parked on a "graveyard" list and a kv_free() is only noted;
 * both happen when the outermost callback returns.  That keeps the
 * get-result's data valid for the whole callback, as result.h promises.
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
    struct item *next_dead; /* graveyard link */
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
    int depth;          /* callbacks in progress */
    int free_requested; /* kv_free() during a callback */
    struct item *graveyard;
    char name[];
};

static const struct kv_ops embedded_ops;

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

static void bury(struct item *it)
{
    while (it) {
        struct item *next = it->next_dead;

        free(it);
        it = next;
    }
}

static void destroy(struct embedded_store *es)
{
    for (size_t i = 0; i < es->nslots; i++)
        free(es->slots[i]);
    bury(es->graveyard);
    free(es->slots);
    free(es);
}

/* Calls cb and afterwards does what was deferred while callbacks ran.
 * Touches nothing of es after that: it may be gone. */
static void deliver(struct embedded_store *es, store_cb cb, void *privdata,
                    const struct store_result *res)
{
    es->depth++;
    if (cb)
        cb(privdata, res);
    if (--es->depth > 0)
        return;
    bury(es->graveyard);
    es->graveyard = NULL;
    if (es->free_requested)
        destroy(es);
}

static void fail(struct embedded_store *es, store_cb cb, void *privdata,
                 enum store_status status, const char *why)
{
    char msg[160];
    struct store_result res = {status, msg, NULL, 0};

    snprintf(msg, sizeof msg, "embedded store %s: %s", es->name, why);
    deliver(es, cb, privdata, &res);
}

static void embedded_get(struct kv_store *kv, const char *key, size_t key_len, store_cb cb,
                         void *privdata)
{
    struct embedded_store *es = (struct embedded_store *)kv;
    struct store_result res = {STORE_NOT_FOUND, "not found", NULL, 0};
    struct item *it;

    if (!key && key_len) {
        fail(es, cb, privdata, STORE_BAD_INPUT, "NULL key");
        return;
    }
    it = *find_slot(es->slots, es->nslots, hash_key(es->seed, key, key_len), key, key_len);
    if (it) {
        res.status = STORE_OK;
        res.message = "";
        res.data = it->bytes + it->key_len; /* non-NULL even for "" */
        res.len = it->value_len;
    }
    deliver(es, cb, privdata, &res);
}

static void embedded_put(struct kv_store *kv, const char *key, size_t key_len,
                         const void *value, size_t value_len, store_cb cb, void *privdata)
{
    struct embedded_store *es = (struct embedded_store *)kv;
    struct store_result ok = {STORE_OK, "", NULL, 0};
    struct item **slot, *it;
    uint64_t hash;

    if ((!key && key_len) || (!value && value_len)) {
        fail(es, cb, privdata, STORE_BAD_INPUT, "NULL key or value");
        return;
    }
    if (key_len > SIZE_MAX - sizeof *it || value_len > SIZE_MAX - sizeof *it - key_len) {
        fail(es, cb, privdata, STORE_TOO_LARGE, "key and value too large");
        return;
    }
    hash = hash_key(es->seed, key, key_len);
    slot = find_slot(es->slots, es->nslots, hash, key, key_len);
    if (!*slot && (es->count + 1) * 4 > es->nslots * 3) { /* keep load <= 3/4 */
        if (grow(es) != 0) {
            fail(es, cb, privdata, STORE_ERROR, "out of memory growing the table");
            return;
        }
        slot = find_slot(es->slots, es->nslots, hash, key, key_len);
    }

    it = malloc(sizeof *it + key_len + value_len);
    if (!it) {
        fail(es, cb, privdata, STORE_ERROR, "out of memory storing the value");
        return;
    }
    it->next_dead = NULL;
    it->hash = hash;
    it->key_len = key_len;
    it->value_len = value_len;
    if (key_len)
        memcpy(it->bytes, key, key_len);
    if (value_len)
        memcpy(it->bytes + key_len, value, value_len);

    if (*slot) {
        /* A running callback may still be reading the old value. */
        if (es->depth > 0) {
            (*slot)->next_dead = es->graveyard;
            es->graveyard = *slot;
        } else {
            free(*slot);
        }
    } else {
        es->count++;
    }
    *slot = it;
    deliver(es, cb, privdata, &ok);
}

static void embedded_ping(struct kv_store *kv, store_cb cb, void *privdata)
{
    struct store_result ok = {STORE_OK, "", NULL, 0};

    deliver((struct embedded_store *)kv, cb, privdata, &ok);
}

static void embedded_free(struct kv_store *kv)
{
    struct embedded_store *es = (struct embedded_store *)kv;

    /* No operation is ever pending: callbacks are synchronous. */
    if (es->depth > 0)
        es->free_requested = 1; /* done when the callback returns */
    else
        destroy(es);
}

static const struct kv_ops embedded_ops = {
    .get = embedded_get,
    .put = embedded_put,
    .ping = embedded_ping,
    .free = embedded_free,
};

struct kv_store *embedded_store_new(const char *name)
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
    es->kv.backend = "embedded";
    es->kv.where = "in-process";
    return (struct kv_store *)es; /* kv is the first member */
}
