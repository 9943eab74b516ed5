/*
 * tests/unit/test_embedded.c — the embedded in-process store.
 *
 * Link with -Wl,--wrap=malloc -Wl,--wrap=calloc: the wrappers below let a
 * test make the n-th allocation fail, to prove allocation failure becomes
 * STORE_ERROR and leaves the store as it was.
 *
 * Every callback must run after its starting call returned: the helpers
 * check that nothing came back before the loop ran, then run it once.
 */
#include "tests/unit/unit.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "store/embedded.h"

static struct ev_loop *loop;

/* One loop iteration: what the operations started deferred happens. */
static void run_loop(void)
{
    ev_run(loop, EVRUN_NOWAIT);
}

/* ---- allocation failure injection ------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);

static int alloc_countdown = -1; /* fail when it reaches 0; -1: never */
static int alloc_calls;

static int alloc_should_fail(void)
{
    alloc_calls++;
    if (alloc_countdown < 0)
        return 0;
    return alloc_countdown-- == 0;
}

void *__wrap_malloc(size_t size)
{
    return alloc_should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_should_fail() ? NULL : __real_calloc(n, size);
}

/* ---- capturing results ------------------------------------------------- */

struct capture {
    int calls;
    enum store_status status;
    char message[256];
    int data_null;
    unsigned char *data; /* copy */
    size_t len;
};

static void capture_cb(void *privdata, const struct store_result *res)
{
    struct capture *c = privdata;

    c->calls++;
    c->status = res->status;
    snprintf(c->message, sizeof c->message, "%s", res->message ? res->message : "");
    c->data_null = res->data == NULL;
    free(c->data);
    c->data = NULL;
    c->len = res->len;
    if (res->data) {
        c->data = malloc(res->len ? res->len : 1);
        memcpy(c->data, res->data, res->len);
    }
}

static void capture_reset(struct capture *c)
{
    free(c->data);
    memset(c, 0, sizeof *c);
    c->status = (enum store_status)-1;
}

/* Gets key into c; asserts the callback ran once, after returning. */
static void get(struct kv_store *kv, const void *k, size_t kl, struct capture *c)
{
    capture_reset(c);
    kv_get(kv, k, kl, capture_cb, c);
    CU_ASSERT_EQUAL(c->calls, 0);
    run_loop();
    CU_ASSERT_EQUAL(c->calls, 1);
}

/* Puts and returns the status (and the message into msg when given). */
static enum store_status put_status(struct kv_store *kv, const void *k, size_t kl,
                                    const void *v, size_t vl, char *msg, size_t msgsz)
{
    struct capture c = {0};
    enum store_status st;

    capture_reset(&c);
    kv_put(kv, k, kl, v, vl, capture_cb, &c);
    CU_ASSERT_EQUAL(c.calls, 0);
    run_loop();
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT_TRUE(c.data_null);
    st = c.status;
    if (msg)
        snprintf(msg, msgsz, "%s", c.message);
    capture_reset(&c);
    return st;
}

static int value_is(struct kv_store *kv, const void *k, size_t kl, const void *v, size_t vl)
{
    struct capture c = {0};
    int ok;

    get(kv, k, kl, &c);
    ok = c.status == STORE_OK && !c.data_null && c.len == vl &&
         (vl == 0 || memcmp(c.data, v, vl) == 0);
    capture_reset(&c);
    return ok;
}

static int is_missing(struct kv_store *kv, const void *k, size_t kl)
{
    struct capture c = {0};
    int ok;

    get(kv, k, kl, &c);
    ok = c.status == STORE_NOT_FOUND && c.data_null && c.len == 0;
    capture_reset(&c);
    return ok;
}

/* ---- tests ------------------------------------------------------------- */

static void test_new_describes_itself(void)
{
    struct kv_store *kv = embedded_store_new(loop, "marges");
    struct kv_store *anon = embedded_store_new(loop, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(anon);
    CU_ASSERT_STRING_EQUAL(kv->be.kind, "embedded");
    CU_ASSERT_STRING_EQUAL(kv->be.where, "in-process");
    kv_free(kv);
    kv_free(anon);
    kv_free(NULL); /* harmless */
}

static void test_missing_key(void)
{
    struct kv_store *kv = embedded_store_new(loop, "t");

    CU_ASSERT_TRUE(is_missing(kv, "homer", 5));
    CU_ASSERT_EQUAL(put_status(kv, "homer", 5, "doh", 3, NULL, 0), STORE_OK);
    CU_ASSERT_TRUE(is_missing(kv, "home", 4));   /* prefix */
    CU_ASSERT_TRUE(is_missing(kv, "homers", 6)); /* extension */
    CU_ASSERT_TRUE(is_missing(kv, "HOMER", 5));  /* case matters */
    CU_ASSERT_TRUE(value_is(kv, "homer", 5, "doh", 3));
    kv_free(kv);
}

static void test_put_get_and_copies(void)
{
    struct kv_store *kv = embedded_store_new(loop, "t");
    char key[] = "bart", val[] = "eat my shorts";

    CU_ASSERT_EQUAL(put_status(kv, key, 4, val, 13, NULL, 0), STORE_OK);
    /* The caller's buffers need only live until the call returns. */
    memset(key, 'x', 4);
    memset(val, 'y', 13);
    CU_ASSERT_TRUE(value_is(kv, "bart", 4, "eat my shorts", 13));
    CU_ASSERT_FALSE(value_is(kv, "bart", 4, "eat my short", 12));
    CU_ASSERT_TRUE(is_missing(kv, key, 4));
    kv_free(kv);
}

static void test_binary_keys_and_values(void)
{
    struct kv_store *kv = embedded_store_new(loop, "t");
    const char k1[] = {'a', 0, 'b'}, k2[] = {'a', 0, 'c'}, k3[] = {'a'}, k4[] = {0}, k5[] = {0, 0};
    const char v1[] = {0, 1, 0, 2, 0}, v2[] = {(char)0xff, 0, (char)0x80};

    CU_ASSERT_EQUAL(put_status(kv, k1, 3, v1, 5, NULL, 0), STORE_OK);
    CU_ASSERT_EQUAL(put_status(kv, k2, 3, v2, 3, NULL, 0), STORE_OK);
    CU_ASSERT_EQUAL(put_status(kv, k4, 1, "nul", 3, NULL, 0), STORE_OK);
    /* keys differing only after a NUL, or in NUL count, are distinct */
    CU_ASSERT_TRUE(value_is(kv, k1, 3, v1, 5));
    CU_ASSERT_TRUE(value_is(kv, k2, 3, v2, 3));
    CU_ASSERT_TRUE(is_missing(kv, k3, 1));
    CU_ASSERT_TRUE(value_is(kv, k4, 1, "nul", 3));
    CU_ASSERT_TRUE(is_missing(kv, k5, 2));
    CU_ASSERT_TRUE(is_missing(kv, "", 0));

    /* 256 keys of the same length differing only in their last byte */
    int bad = 0;
    for (int b = 0; b < 256; b++) {
        unsigned char k[3] = {'x', 0, (unsigned char)b}, v = (unsigned char)b;

        if (put_status(kv, k, 3, &v, 1, NULL, 0) != STORE_OK)
            bad++;
    }
    for (int b = 0; b < 256; b++) {
        unsigned char k[3] = {'x', 0, (unsigned char)b}, v = (unsigned char)b;

        if (!value_is(kv, k, 3, &v, 1))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    kv_free(kv);
}

static void test_overwrite(void)
{
    struct kv_store *kv = embedded_store_new(loop, "t");

    CU_ASSERT_EQUAL(put_status(kv, "k", 1, "first value", 11, NULL, 0), STORE_OK);
    CU_ASSERT_EQUAL(put_status(kv, "k", 1, "2nd", 3, NULL, 0), STORE_OK); /* shorter */
    CU_ASSERT_TRUE(value_is(kv, "k", 1, "2nd", 3));
    CU_ASSERT_EQUAL(put_status(kv, "k", 1, "a much longer third value", 25, NULL, 0),
                    STORE_OK);
    CU_ASSERT_TRUE(value_is(kv, "k", 1, "a much longer third value", 25));
    CU_ASSERT_EQUAL(put_status(kv, "k", 1, "", 0, NULL, 0), STORE_OK);
    CU_ASSERT_TRUE(value_is(kv, "k", 1, "", 0));
    kv_free(kv);
}

static void test_empty_value_and_empty_key(void)
{
    struct kv_store *kv = embedded_store_new(loop, "t");
    struct capture c = {0};

    /* empty value: found, non-NULL data, length 0 — not the same as missing */
    CU_ASSERT_EQUAL(put_status(kv, "e", 1, "", 0, NULL, 0), STORE_OK);
    CU_ASSERT_EQUAL(put_status(kv, "n", 1, NULL, 0, NULL, 0), STORE_OK);
    get(kv, "e", 1, &c);
    CU_ASSERT_EQUAL(c.status, STORE_OK);
    CU_ASSERT_FALSE(c.data_null);
    CU_ASSERT_EQUAL(c.len, 0);
    CU_ASSERT_TRUE(value_is(kv, "n", 1, "", 0));

    /* empty key, given as "" or as NULL with length 0: the same key */
    CU_ASSERT_TRUE(is_missing(kv, NULL, 0));
    CU_ASSERT_EQUAL(put_status(kv, "", 0, "root", 4, NULL, 0), STORE_OK);
    CU_ASSERT_TRUE(value_is(kv, NULL, 0, "root", 4));
    CU_ASSERT_EQUAL(put_status(kv, NULL, 0, "", 0, NULL, 0), STORE_OK);
    CU_ASSERT_TRUE(value_is(kv, "", 0, "", 0));
    capture_reset(&c);
    kv_free(kv);
}

static void test_bad_input(void)
{
    struct kv_store *kv = embedded_store_new(loop, "marges");
    struct capture c = {0};
    char msg[256];

    CU_ASSERT_EQUAL(put_status(kv, NULL, 3, "v", 1, msg, sizeof msg), STORE_BAD_INPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "marges"));
    CU_ASSERT_EQUAL(put_status(kv, "k", 1, NULL, 5, NULL, 0), STORE_BAD_INPUT);
    CU_ASSERT_TRUE(is_missing(kv, "k", 1));
    get(kv, NULL, 2, &c);
    CU_ASSERT_EQUAL(c.status, STORE_BAD_INPUT);
    /* sizes that cannot be represented are refused before reading a byte */
    CU_ASSERT_EQUAL(put_status(kv, "k", 1, "v", SIZE_MAX, NULL, 0), STORE_TOO_LARGE);
    CU_ASSERT_EQUAL(put_status(kv, "k", SIZE_MAX - 8, "v", 1, NULL, 0), STORE_TOO_LARGE);
    CU_ASSERT_TRUE(is_missing(kv, "k", 1));
    capture_reset(&c);
    kv_free(kv);
}

static void test_ping(void)
{
    struct kv_store *kv = embedded_store_new(loop, "t");
    struct capture c = {0};

    capture_reset(&c);
    kv_ping(kv, capture_cb, &c);
    CU_ASSERT_EQUAL(c.calls, 0);
    run_loop();
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT_EQUAL(c.status, STORE_OK);
    capture_reset(&c);
    kv_free(kv);
}

#define NKEYS 100000

static size_t make_key(char *buf, int i)
{
    /* "key-<i>" then a NUL and a byte, so the NUL is part of every key */
    int n = snprintf(buf, 32, "key-%d", i);

    buf[n] = 0;
    buf[n + 1] = (char)(i & 0xff);
    return (size_t)n + 2;
}

static void test_many_keys(void)
{
    struct kv_store *kv = embedded_store_new(loop, "t");
    char key[32];
    int bad = 0;

    for (int i = 0; i < NKEYS; i++) {
        size_t kl = make_key(key, i);

        if (put_status(kv, key, kl, &i, sizeof i, NULL, 0) != STORE_OK)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int i = 0; i < NKEYS; i++) {
        size_t kl = make_key(key, i);

        if (!value_is(kv, key, kl, &i, sizeof i))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int i = NKEYS; i < NKEYS + 1000; i++) {
        size_t kl = make_key(key, i);

        if (!is_missing(kv, key, kl))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* overwrite every other one after growth */
    for (int i = 0; i < NKEYS; i += 2) {
        size_t kl = make_key(key, i);
        int v = -i;

        if (put_status(kv, key, kl, &v, sizeof v, NULL, 0) != STORE_OK)
            bad++;
    }
    for (int i = 0; i < NKEYS; i++) {
        size_t kl = make_key(key, i);
        int v = i % 2 ? i : -i;

        if (!value_is(kv, key, kl, &v, sizeof v))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    kv_free(kv);
}

static void test_one_mib_value(void)
{
    struct kv_store *kv = embedded_store_new(loop, "t");
    size_t len = 1024 * 1024;
    unsigned char *v = malloc(len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    for (size_t i = 0; i < len; i++)
        v[i] = (unsigned char)(i * 131 + (i >> 11)); /* includes NULs */
    CU_ASSERT_EQUAL(put_status(kv, "big", 3, v, len, NULL, 0), STORE_OK);
    CU_ASSERT_TRUE(value_is(kv, "big", 3, v, len));
    CU_ASSERT_FALSE(value_is(kv, "big", 3, v, len - 1));
    v[len - 1] ^= 1;
    CU_ASSERT_FALSE(value_is(kv, "big", 3, v, len));
    free(v);
    kv_free(kv);
}

static void test_allocation_failure(void)
{
    struct kv_store *kv;
    char msg[256], key[32];
    int i, calls;

    /* new: every allocation it makes can fail, and it says so with NULL */
    alloc_calls = 0;
    kv = embedded_store_new(loop, "t");
    calls = alloc_calls;
    kv_free(kv);
    CU_ASSERT(calls >= 1);
    for (i = 0; i < calls; i++) {
        alloc_countdown = i;
        kv = embedded_store_new(loop, "t");
        alloc_countdown = -1;
        CU_ASSERT_PTR_NULL(kv);
        kv_free(kv);
    }

    kv = embedded_store_new(loop, "marges");
    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    CU_ASSERT_EQUAL(put_status(kv, "k", 1, "old", 3, NULL, 0), STORE_OK);

    /* overwrite fails: the old value stays */
    alloc_countdown = 0;
    CU_ASSERT_EQUAL(put_status(kv, "k", 1, "new", 3, msg, sizeof msg), STORE_ERROR);
    alloc_countdown = -1;
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "marges"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "out of memory"));
    CU_ASSERT_TRUE(value_is(kv, "k", 1, "old", 3));

    /* new keys, with growth along the way: make each allocation of a put
     * fail in turn (growth, then the item); every failure is STORE_ERROR
     * and leaves the key absent, until the put goes through */
    int failures = 0;
    for (i = 0; i < 200; i++) {
        size_t kl = make_key(key, i);
        enum store_status st;
        int f;

        for (f = 0; f < 10; f++) {
            alloc_countdown = f;
            st = put_status(kv, key, kl, &i, sizeof i, NULL, 0);
            alloc_countdown = -1;
            if (st == STORE_OK)
                break;
            if (st != STORE_ERROR || !is_missing(kv, key, kl))
                break;
            failures++;
        }
        if (st != STORE_OK)
            break;
    }
    alloc_countdown = -1;
    CU_ASSERT(failures > 200); /* growth failures happened too */
    CU_ASSERT_EQUAL(i, 200);
    for (i = 0; i < 200; i++) {
        size_t kl = make_key(key, i);

        if (!value_is(kv, key, kl, &i, sizeof i))
            break;
    }
    CU_ASSERT_EQUAL(i, 200);
    CU_ASSERT_TRUE(value_is(kv, "k", 1, "old", 3));
    kv_free(kv);
}

/* ---- re-entrancy: a callback that changes or frees the store ---------- */

struct reenter {
    struct kv_store *kv;
    int calls;
    int data_ok;
    int free_store;
};

static void overwrite_in_get_cb(void *privdata, const struct store_result *res)
{
    struct reenter *r = privdata;
    char other[64];

    r->calls++;
    CU_ASSERT_EQUAL_FATAL(res->status, STORE_OK);
    /* overwrite the very key being read, and grow the table meanwhile */
    kv_put(r->kv, "k", 1, "replacement", 11, NULL, NULL);
    for (int i = 0; i < 100; i++) {
        int n = snprintf(other, sizeof other, "other-%d", i);
        kv_put(r->kv, other, (size_t)n, "x", 1, NULL, NULL);
    }
    /* the result still shows the value as it was when read */
    r->data_ok = res->len == 8 && memcmp(res->data, "original", 8) == 0;
    if (r->free_store)
        kv_free(r->kv);
    /* still readable after kv_free() inside the callback */
    r->data_ok = r->data_ok && memcmp(res->data, "original", 8) == 0;
}

static void test_callback_may_overwrite_and_free(void)
{
    struct reenter r = {0};

    r.kv = embedded_store_new(loop, "t");
    CU_ASSERT_EQUAL(put_status(r.kv, "k", 1, "original", 8, NULL, 0), STORE_OK);
    kv_get(r.kv, "k", 1, overwrite_in_get_cb, &r);
    CU_ASSERT_EQUAL(r.calls, 0);
    run_loop();
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_TRUE(r.data_ok);
    run_loop(); /* the puts the callback started */
    CU_ASSERT_TRUE(value_is(r.kv, "k", 1, "replacement", 11));
    CU_ASSERT_TRUE(value_is(r.kv, "other-99", 8, "x", 1));

    /* now free the store from inside the callback: no crash, no leak */
    CU_ASSERT_EQUAL(put_status(r.kv, "k", 1, "original", 8, NULL, 0), STORE_OK);
    r.calls = 0;
    r.data_ok = 0;
    r.free_store = 1;
    kv_get(r.kv, "k", 1, overwrite_in_get_cb, &r);
    run_loop();
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_TRUE(r.data_ok);
    run_loop(); /* the store goes once the callback returned: no crash, no leak */
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"new describes itself", test_new_describes_itself},
        {"missing key", test_missing_key},
        {"put, get, values are copied", test_put_get_and_copies},
        {"binary keys and values", test_binary_keys_and_values},
        {"overwrite", test_overwrite},
        {"empty value and empty key", test_empty_value_and_empty_key},
        {"bad input", test_bad_input},
        {"ping", test_ping},
        {"100000 keys (growth)", test_many_keys},
        {"1 MiB value", test_one_mib_value},
        {"allocation failure", test_allocation_failure},
        {"callback may overwrite and free", test_callback_may_overwrite_and_free},
        {NULL, NULL},
    };

    int rc;

    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop)
        return 2;
    rc = unit_run("embedded", tests, 300);
    ev_loop_destroy(loop);
    return rc;
}
