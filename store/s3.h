/*
 * store/s3.h — the bart store: one S3 object, AWS_S3_BUCKET/AWS_S3_OBJECT.
 *
 * struct kv_store over S3.  The key argument of get/put is ignored: the
 * object is fixed by configuration (the route /api/v1/bart has no name).
 *
 *   get:  GET of the object  -> STORE_OK with its bytes, or STORE_NOT_FOUND
 *   put:  PUT of the object  -> STORE_OK only when S3 answers 200
 *   ping: HEAD of the bucket (Signature V4), "GET ?location" of the bucket
 *         (Signature V2, libs3's S3_test_bucket) -> STORE_OK on 200
 * Bodies are binary safe.
 *
 * Two ways to sign, chosen by AWS_S3_SIGNATURE:
 *
 *  v4 (default)  libcurl signs (CURLOPT_AWS_SIGV4, "aws:amz:REGION:s3")
 *                and store/http.h carries the request on the loop thread,
 *                non-blocking.  URL: ENDPOINT/BUCKET/OBJECT (path style;
 *                the object key URL-encoded as S3 does: all but
 *                A-Z a-z 0-9 - _ . ~ and '/'), or without an endpoint
 *                https://s3.REGION.amazonaws.com/BUCKET/OBJECT.  We send
 *                x-amz-content-sha256 (curl 7.88 does not), computed with
 *                OpenSSL's libcrypto: on the loop thread for bodies up to
 *                S3_HASH_ON_LOOP_MAX_BYTES, on the worker pool above that
 *                (on the loop when there is no pool or its queue is full).
 *                No credentials at all -> unsigned (anonymous) requests.
 *  v2            libs3 (Debian's libs3 2.0 signs with Signature V2 only),
 *                its blocking calls on the worker pool (never libs3's
 *                fd_set request contexts: they corrupt memory for
 *                descriptors >= 1024).  Endpoint http(s)://host[:port] ->
 *                libs3 hostName "host[:port]", path style; without an
 *                endpoint: https://BUCKET.s3.amazonaws.com (virtual host).
 *                Both keys are required.  AWS refuses V2 for buckets made
 *                since 2020: v2 is for S3-compatible servers and old buckets.
 *
 * Results:
 *   200                                -> STORE_OK
 *   404 NoSuchKey (or 404 w/o a code)  -> STORE_NOT_FOUND
 *   NoSuchBucket (ping: HEAD 404)      -> STORE_BAD_UPSTREAM "bucket X does not exist"
 *   401/403 (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied...)
 *     and other 4xx                    -> STORE_BAD_UPSTREAM "s3 refused the
 *                                         request: CODE (message)", also
 *                                         logged with sf_warn (once per 10 s
 *                                         per code and store)
 *   500, 502, 503, 504 (InternalError, SlowDown...) -> STORE_UNAVAILABLE
 *   other answers (3xx, 501...)        -> STORE_BAD_UPSTREAM
 *   connection refused, DNS, reset     -> STORE_UNAVAILABLE (no retry here:
 *                                         the next operation connects anew)
 *   no answer within timeout_ms        -> STORE_TIMEOUT
 *   get of an object over max_object_bytes -> STORE_BAD_UPSTREAM ("object
 *                                         larger than N bytes": the stored
 *                                         object is the problem, not the
 *                                         client's request)
 *   put of a value over max_object_bytes -> STORE_TOO_LARGE, at once
 * A 403 on the ping's HEAD has no error code: it means bad credentials or
 * no s3:ListBucket permission, and counts as unhealthy (BAD_UPSTREAM).
 *
 * Timeouts with libs3 (v2): libs3 2.0 has no timeout parameter.  A timer
 * on the loop answers STORE_TIMEOUT after timeout_ms and the worker's late
 * result is dropped; the worker thread itself stays busy until libs3 gives
 * up (its transfer aborts data callbacks past the deadline, and curl's
 * low-speed limit, 1 KiB/s for 15 s, set by libs3, ends a silent server).
 *
 * libs3 lifetime (v2): the first v2 store calls S3_initialize(...,
 * S3_INIT_ALL, ...) (on Linux the flag initialises nothing; libs3 calls
 * curl_global_init() of its own libcurl: Debian's libs3 is linked against
 * libcurl-gnutls, a separate library from the libcurl (OpenSSL) that
 * store/http.c uses, so it does not interfere with http_global_init());
 * freeing the last v2 store calls S3_deinitialize().  Not thread-safe:
 * create and free stores on the loop thread, after fork().
 *
 * Callbacks: as store/kv.h; a failure found before any I/O (value too
 * large, worker queue full, out of memory) is answered before the call
 * returns.  kv_free() answers every operation still in flight at once
 * (STORE_UNAVAILABLE "s3 store is shutting down"); the memory is released
 * when the last of them completes inside the http client / worker pool, so
 * free the store before the pool and the http client (backends_close()
 * does).  kv_free() may be called from inside a store callback.
 */
#ifndef SPRINGFIELD_STORE_S3_H
#define SPRINGFIELD_STORE_S3_H

#include <stddef.h>

#include <ev.h>

#include "store/http.h"
#include "store/kv.h"
#include "store/workers.h"

#define S3_DEFAULT_OBJECT "bart"
#define S3_DEFAULT_REGION "us-east-1"
#define S3_DEFAULT_TIMEOUT_MS 5000
#define S3_DEFAULT_MAX_OBJECT_BYTES (16u * 1024 * 1024)
/* Bodies up to this size are hashed on the loop thread (~0.1 ms). */
#define S3_HASH_ON_LOOP_MAX_BYTES (256u * 1024)

struct s3_config {
    const char *bucket;     /* required */
    const char *object;     /* NULL or "": S3_DEFAULT_OBJECT */
    const char *access_key; /* NULL/"" with secret_key NULL/"": anonymous (v4 only) */
    const char *secret_key;
    const char *region;     /* NULL or "": S3_DEFAULT_REGION */
    const char *endpoint;   /* NULL or "": AWS; else http(s)://host[:port][/] */
    int signature;          /* 4 or 2 */
    int timeout_ms;         /* per operation; <= 0: S3_DEFAULT_TIMEOUT_MS */
    size_t max_object_bytes; /* 0: S3_DEFAULT_MAX_OBJECT_BYTES */
};

/* Fills cfg from AWS_S3_BUCKET, AWS_S3_OBJECT (default "bart", the route's
 * name), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (default
 * us-east-1), AWS_ENDPOINT_URL_S3 and AWS_S3_SIGNATURE (v4 or v2, also "4"
 * and "2"; default v4); timeout_ms = S3_DEFAULT_TIMEOUT_MS and
 * max_object_bytes = S3_DEFAULT_MAX_OBJECT_BYTES, for the caller to
 * override.  The strings point into the environment.
 * Returns 1 when AWS_S3_BUCKET is set and not empty, 0 when it is not
 * (cfg zeroed), -1 (logged) when AWS_S3_SIGNATURE is something else,
 * AWS_ENDPOINT_URL_S3 is not http(s)://host[:port] or only one of the two
 * keys is set. */
int s3_config_from_env(struct s3_config *cfg);

/* A store for cfg (copied).  v4 needs http (and uses pool, which may be
 * NULL, for hashing big bodies); v2 needs pool.  NULL, with the reason
 * logged, when cfg is invalid (no bucket, a bad endpoint, signature not 4
 * or 2, only one of the two keys, v2 without keys, a bucket name libs3
 * refuses), a needed client is missing, S3_initialize fails or memory runs
 * out.  kv->backend = "s3", kv->where = "ENDPOINT/BUCKET/OBJECT (sigv4)"
 * or "... (sigv2, libs3)", without credentials. */
struct kv_store *s3_store_new(struct ev_loop *loop, struct http_client *http,
                              struct worker_pool *pool, const struct s3_config *cfg);

#endif
