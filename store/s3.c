/*
 * store/s3.c — the bart store on S3 (see s3.h).
 *
 * Every operation is one struct s3_op on the operation core (store/op.h):
 * the core holds it until its result is delivered (exactly once; a result
 * that comes late, after a v2 deadline or after kv_free, is dropped), and
 * the thing carrying it (an http request, or a worker job) holds it until
 * it has completed.  A closed store is destroyed with its last carried op.
 * The breaker (store/breaker.h) opens when S3 cannot be reached, and
 * operations fail fast until a half-open probe gets through.
 *
 * Signature V4 ops travel: (hash the body, on the pool when big) ->
 * http_request_start -> on_http (loop).  Signature V2 ops travel: worker
 * job running libs3's blocking call -> v2_done (loop), with an ev_timer on
 * the loop for the deadline.  Worker threads touch only the op's request
 * and result fields and the store's read-only configuration.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* vasprintf */
#endif
#include "store/s3.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libs3.h>
#include <openssl/evp.h>

#include "common/buf.h"
#include "common/log.h"
#include "store/s3_error.h"

/* SHA-256 of nothing: the payload hash of GET and HEAD. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Error documents and HEAD answers are small; more is not S3 talking. */
#define S3_MAX_ERROR_BYTES (64 * 1024)
/* S3's limit on key length. */
#define S3_MAX_KEY_BYTES 1024
/* The same refusal is logged at most this often per store. */
#define S3_REFUSAL_LOG_INTERVAL_S 10.0
/* libs3 sets curl's low-speed limit to 1 KiB/s for this long. */
#define LIBS3_LOW_SPEED_TIME_MS 15000

enum s3_kind { OP_GET, OP_PUT, OP_PING };

struct s3_store;

struct s3_op {
    struct store_op sop;
    struct s3_store *st;
    enum s3_kind kind;

    /* put: our copy of the value */
    char *body;
    size_t body_len;
    char sha256[65]; /* v4 put: hex digest of body */

    /* v2 job: request progress and result, written by the worker */
    size_t sent;
    struct buf data; /* a get's object, at most st->max_object_bytes */
    int too_large;
    int past_deadline;
    struct timespec deadline_at; /* CLOCK_MONOTONIC */
    struct timespec started_at;
    S3Status s3status;
    char s3message[256];
};

struct s3_store {
    struct kv_store kv; /* first: kv_store * <-> s3_store * */
    struct ev_loop *loop;
    struct http_client *http;
    struct worker_pool *pool;
    int signature;
    int timeout_ms;
    size_t max_object_bytes;
    char *bucket, *object, *region;
    char *access_key, *secret_key; /* NULL: anonymous (v4) */
    char *where;

    /* v4 */
    char *object_url, *bucket_url;
    char *sigv4;   /* "aws:amz:REGION:s3" */
    char *userpwd; /* "access:secret" */

    /* v2 */
    char *host; /* libs3 hostName, NULL for AWS's default */
    S3Protocol protocol;
    S3UriStyle uri_style;

    char name[320];       /* "s3 ENDPOINT/BUCKET/OBJECT", for the log */

    char last_refusal[64]; /* for the log's rate limit */
    ev_tstamp last_refusal_at;
};

/* ---- small helpers ---------------------------------------------------- */

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* S3's URI encoding of a key or bucket: every byte but the unreserved
 * characters (and '/', which separates the key's "folders"). */
static char *uri_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *p = out;

    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
        return -1;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int64_t ms_between(const struct timespec *a, const struct timespec *b)
{
    return (int64_t)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* ---- answering and finishing ------------------------------------------ */

/* The one result of op; an answer from S3 (or not) is news for the breaker. */
static void answer(struct s3_op *op, enum store_status status, const char *message,
                   const void *data, size_t len)
{
    struct s3_store *st = op->st;

    if (!st->kv.be.closing && store_op_running(&op->sop)) {
        if (status == STORE_UNAVAILABLE)
            store_backend_failed(&st->kv.be, message);
        else if (status != STORE_TIMEOUT && status != STORE_ERROR)
            store_backend_answered(&st->kv.be);
    }
    store_op_complete(&op->sop, status, status == STORE_OK ? "" : message,
                      status == STORE_OK ? data : NULL, status == STORE_OK ? len : 0);
}

/* The op's carrier is done with it: its hold goes, and a closed store
 * goes with its last op. */
static void op_finish(struct s3_op *op)
{
    store_op_carried(&op->sop);
}

static void free_op(struct store_op *sop)
{
    struct s3_op *op = container_of(sop, struct s3_op, sop);

    free(op->body);
    buf_free(&op->data);
    free(op);
}

/* S3 said no: a message for the caller, and a log line for the operator
 * (rate-limited: a misconfigured service would otherwise log every hit). */
static enum store_status refused(struct s3_store *st, const char *code, const char *detail,
                                 char *msg, size_t msgsz)
{
    ev_tstamp now = ev_now(st->loop);

    snprintf(msg, msgsz, "s3 refused the request: %s%s%s%s", code, *detail ? " (" : "",
             detail, *detail ? ")" : "");
    if (strcmp(code, st->last_refusal) != 0 ||
        now - st->last_refusal_at >= S3_REFUSAL_LOG_INTERVAL_S) {
        snprintf(st->last_refusal, sizeof st->last_refusal, "%s", code);
        st->last_refusal_at = now;
        sf_warn("%s [%s]", msg, st->where);
    }
    return STORE_BAD_UPSTREAM;
}

static enum store_status no_bucket(struct s3_store *st, char *msg, size_t msgsz)
{
    snprintf(msg, msgsz, "bucket %s does not exist", st->bucket);
    return STORE_BAD_UPSTREAM;
}

/* ---- Signature V4: libcurl on the loop -------------------------------- */

static void on_http(void *privdata, const struct http_response *res)
{
    struct s3_op *op = privdata;
    struct s3_store *st = op->st;
    char code[64], detail[256], msg[512];
    enum store_status status;
    long http = res->http_code;

    if (res->status != STORE_OK) {
        snprintf(msg, sizeof msg, "s3 %s: %s",
                 res->status == STORE_UNAVAILABLE ? "unavailable"
                 : res->status == STORE_TIMEOUT   ? "timeout"
                                                  : "error",
                 res->message);
        answer(op, res->status, msg, NULL, 0);
        op_finish(op);
        return;
    }
    if (http == 200) {
        answer(op, STORE_OK, "", res->body, op->kind == OP_GET ? res->body_len : 0);
        op_finish(op);
        return;
    }
    s3_xml_text(res->body, res->body_len, "Code", code, sizeof code);
    s3_xml_text(res->body, res->body_len, "Message", detail, sizeof detail);
    if (http == 404 && (!strcmp(code, "NoSuchBucket") || op->kind == OP_PING)) {
        status = no_bucket(st, msg, sizeof msg);
    } else if (http == 404 && op->kind == OP_GET && (!*code || !strcmp(code, "NoSuchKey"))) {
        status = STORE_NOT_FOUND;
        snprintf(msg, sizeof msg, "no object %s in bucket %s", st->object, st->bucket);
    } else if (http == 500 || http == 502 || http == 503 || http == 504) {
        status = STORE_UNAVAILABLE;
        snprintf(msg, sizeof msg, "s3 unavailable: HTTP %ld%s%s", http, *code ? " " : "", code);
    } else if (http >= 400 && http < 500) {
        char fallback[32];

        if (!*code) { /* HEAD answers carry no document */
            snprintf(fallback, sizeof fallback, "HTTP %ld", http);
            if (op->kind == OP_PING && http == 403)
                snprintf(detail, sizeof detail,
                         "bad credentials, or no s3:ListBucket permission on %s", st->bucket);
        }
        status = refused(st, *code ? code : fallback, detail, msg, sizeof msg);
    } else {
        status = STORE_BAD_UPSTREAM;
        snprintf(msg, sizeof msg, "s3 answered HTTP %ld%s%s", http, *code ? " " : "", code);
    }
    answer(op, status, msg, NULL, 0);
    op_finish(op);
}

static void v4_start(struct s3_op *op)
{
    struct s3_store *st = op->st;
    char hash_header[96];
    const char *headers[] = {hash_header, NULL};
    struct http_request req = {
        .url = op->kind == OP_PING ? st->bucket_url : st->object_url,
        .method = op->kind == OP_GET ? "GET" : op->kind == OP_PUT ? "PUT" : "HEAD",
        .headers = headers,
        .aws_sigv4 = st->sigv4,
        .userpwd = st->userpwd,
        .timeout_ms = st->timeout_ms,
        .max_response_bytes = op->kind == OP_GET ? st->max_object_bytes : S3_MAX_ERROR_BYTES,
    };

    /* curl signs every header we add, and curl 7.88 does not add this one,
     * which S3 requires with SigV4. */
    snprintf(hash_header, sizeof hash_header, "x-amz-content-sha256: %s",
             op->kind == OP_PUT ? op->sha256 : EMPTY_SHA256);
    if (op->kind == OP_PUT) {
        req.body = op->body;
        req.body_len = op->body_len;
    }
    http_request_start(st->http, &req, on_http, op); /* answers on_http, whatever happens */
    /* http_request_start copied the body */
    free(op->body);
    op->body = NULL;
}

static void hash_run(void *arg)
{
    struct s3_op *op = arg;

    if (sha256_hex(op->body, op->body_len, op->sha256) < 0)
        op->sha256[0] = '\0';
}

static void hash_done(void *arg)
{
    struct s3_op *op = arg;

    if (!store_op_running(&op->sop)) { /* answered meanwhile (kv_free) */
        op_finish(op);
        return;
    }
    if (!op->sha256[0]) {
        answer(op, STORE_ERROR, "s3: SHA-256 failed", NULL, 0);
        op_finish(op);
        return;
    }
    v4_start(op);
}

static void v4_put(struct s3_op *op)
{
    struct s3_store *st = op->st;

    if (op->body_len > S3_HASH_ON_LOOP_MAX_BYTES && st->pool &&
        worker_pool_submit(st->pool, hash_run, hash_done, op) == 0)
        return;
    hash_run(op);
    hash_done(op);
}

/* ---- Signature V2: libs3 on the worker pool --------------------------- */

static int past_deadline(struct s3_op *op)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ms_between(&op->deadline_at, &now) >= 0)
        op->past_deadline = 1;
    return op->past_deadline;
}

static S3Status v2_properties(const S3ResponseProperties *p, void *cbdata)
{
    struct s3_op *op = cbdata;

    if (op->kind == OP_GET && p->contentLength > op->st->max_object_bytes) {
        op->too_large = 1;
        return S3StatusAbortedByCallback;
    }
    return S3StatusOK;
}

static void v2_complete(S3Status status, const S3ErrorDetails *e, void *cbdata)
{
    struct s3_op *op = cbdata;

    op->s3status = status;
    op->s3message[0] = '\0';
    if (e && e->message)
        snprintf(op->s3message, sizeof op->s3message, "%s", e->message);
}

static S3Status v2_get_data(int size, const char *buf, void *cbdata)
{
    struct s3_op *op = cbdata;
    size_t n = size > 0 ? (size_t)size : 0, cap;

    if (past_deadline(op))
        return S3StatusAbortedByCallback;
    if (n > op->st->max_object_bytes - op->data.len) {
        op->too_large = 1;
        return S3StatusAbortedByCallback;
    }
    if (n == 0)
        return S3StatusOK;
    /* the doubling stops at the object limit: a large object is not
     * held in up to twice the space the limit allows */
    cap = buf_next_cap(&op->data, n, op->st->max_object_bytes);
    if (cap == 0 || buf_grow_to(&op->data, cap) < 0)
        return S3StatusOutOfMemory;
    memcpy(op->data.data + op->data.len, buf, n);
    op->data.len += n;
    return S3StatusOK;
}

static int v2_put_data(int size, char *buf, void *cbdata)
{
    struct s3_op *op = cbdata;
    size_t n = op->body_len - op->sent;

    if (past_deadline(op))
        return -1; /* libs3: abort */
    if (size <= 0)
        return 0;
    if (n > (size_t)size)
        n = (size_t)size;
    memcpy(buf, op->body + op->sent, n);
    op->sent += n;
    return (int)n;
}

static void v2_run(void *arg)
{
    struct s3_op *op = arg;
    struct s3_store *st = op->st;
    S3BucketContext ctx = {
        .hostName = st->host,
        .bucketName = st->bucket,
        .protocol = st->protocol,
        .uriStyle = st->uri_style,
        .accessKeyId = st->access_key,
        .secretAccessKey = st->secret_key,
    };
    S3ResponseHandler rh = {.propertiesCallback = v2_properties,
                            .completeCallback = v2_complete};

    clock_gettime(CLOCK_MONOTONIC, &op->started_at);
    if (past_deadline(op)) { /* waited in the queue too long */
        op->s3status = S3StatusAbortedByCallback;
        return;
    }
    op->s3status = S3StatusInternalError; /* unless libs3 says otherwise */
    switch (op->kind) {
    case OP_GET: {
        S3GetObjectHandler h = {.responseHandler = rh, .getObjectDataCallback = v2_get_data};

        /* NULL request context: libs3's blocking call on this thread */
        S3_get_object(&ctx, st->object, NULL, 0, 0, NULL, &h, op);
        break;
    }
    case OP_PUT: {
        S3PutObjectHandler h = {.responseHandler = rh, .putObjectDataCallback = v2_put_data};

        S3_put_object(&ctx, st->object, op->body_len, NULL, NULL, &h, op);
        break;
    }
    case OP_PING: {
        char location[128];

        S3_test_bucket(st->protocol, st->uri_style, st->access_key, st->secret_key, st->host,
                       st->bucket, sizeof location, location, NULL, &rh, op);
        break;
    }
    }
}

/* S3's error code for a libs3 status: "ErrorNoSuchKey" -> "NoSuchKey". */
static const char *v2_code(S3Status s)
{
    const char *name = S3_get_status_name(s);

    if (!name)
        return "unknown";
    return strncmp(name, "Error", 5) == 0 ? name + 5 : name;
}

static void v2_done(void *arg)
{
    struct s3_op *op = arg;
    struct s3_store *st = op->st;
    enum store_status status;
    char msg[512];

    if (!store_op_running(&op->sop)) { /* answered already: deadline, or kv_free */
        op_finish(op);
        return;
    }
    switch (op->s3status) {
    case S3StatusOK:
        status = STORE_OK;
        msg[0] = '\0';
        break;
    case S3StatusAbortedByCallback:
    case S3StatusInterrupted:
        if (op->too_large) {
            status = STORE_BAD_UPSTREAM;
            snprintf(msg, sizeof msg, "s3: object larger than %zu bytes", st->max_object_bytes);
        } else {
            status = STORE_TIMEOUT;
            snprintf(msg, sizeof msg, "s3 timeout: no answer within %d ms", st->timeout_ms);
        }
        break;
    case S3StatusErrorNoSuchKey:
    case S3StatusHttpErrorNotFound:
        if (op->kind == OP_GET) {
            status = STORE_NOT_FOUND;
            snprintf(msg, sizeof msg, "no object %s in bucket %s", st->object, st->bucket);
        } else {
            status = no_bucket(st, msg, sizeof msg);
        }
        break;
    case S3StatusErrorNoSuchBucket:
        status = no_bucket(st, msg, sizeof msg);
        break;
    case S3StatusConnectionFailed: {
        /* libs3 maps curl's timeout (its low-speed limit) here, too */
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ms_between(&op->started_at, &now) >= LIBS3_LOW_SPEED_TIME_MS - 1000) {
            status = STORE_TIMEOUT;
            snprintf(msg, sizeof msg, "s3 timeout: the server stopped sending");
            break;
        }
    }
        /* fall through */
    case S3StatusNameLookupError:
    case S3StatusFailedToConnect:
    case S3StatusServerFailedVerification:
    case S3StatusInternalError: /* mostly curl failures: reset, nothing received */
    case S3StatusErrorInternalError:
    case S3StatusErrorSlowDown:
        status = STORE_UNAVAILABLE;
        snprintf(msg, sizeof msg, "s3 unavailable: %s", v2_code(op->s3status));
        break;
    case S3StatusOutOfMemory:
        status = STORE_ERROR;
        snprintf(msg, sizeof msg, "s3: out of memory");
        break;
    case S3StatusXmlParseFailure:
    case S3StatusErrorUnknown:
    case S3StatusHttpErrorUnknown:
    case S3StatusErrorPermanentRedirect:
    case S3StatusErrorTemporaryRedirect:
    case S3StatusErrorRedirect:
    case S3StatusHttpErrorMovedTemporarily:
    case S3StatusErrorNotImplemented:
        status = STORE_BAD_UPSTREAM;
        snprintf(msg, sizeof msg, "s3 answered %s", v2_code(op->s3status));
        break;
    default:
        if (op->s3status < S3StatusErrorAccessDenied) {
            /* libs3 refused to build the request: our configuration */
            status = STORE_ERROR;
            snprintf(msg, sizeof msg, "s3: libs3 cannot make the request: %s",
                     v2_code(op->s3status));
        } else {
            /* AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId,
             * RequestTimeTooSkewed, HttpErrorForbidden, ... */
            status = refused(st, v2_code(op->s3status), op->s3message, msg, sizeof msg);
        }
        break;
    }
    answer(op, status, msg, op->data.data ? (const char *)op->data.data : "", op->data.len);
    op_finish(op);
}

static void v2_submit(struct s3_op *op)
{
    struct s3_store *st = op->st;

    clock_gettime(CLOCK_MONOTONIC, &op->deadline_at);
    op->deadline_at.tv_sec += st->timeout_ms / 1000;
    op->deadline_at.tv_nsec += (long)(st->timeout_ms % 1000) * 1000000L;
    if (op->deadline_at.tv_nsec >= 1000000000L) {
        op->deadline_at.tv_sec++;
        op->deadline_at.tv_nsec -= 1000000000L;
    }
    /* The worker carries on past the deadline until libs3 returns (it
     * aborts at its next callback); v2_done then finds it answered. */
    if (worker_pool_submit(st->pool, v2_run, v2_done, op) < 0) {
        answer(op, STORE_UNAVAILABLE, "s3 unavailable: worker queue full", NULL, 0);
        op_finish(op);
    }
}

/* ---- kv_store --------------------------------------------------------- */

static void start(struct s3_store *st, enum s3_kind kind, const void *value, size_t len,
                  store_cb cb, void *privdata, bool probing)
{
    struct store_backend *be = &st->kv.be;
    struct s3_op *op;

    if (!probing && !store_backend_usable(be)) {
        store_refuse(be, cb, privdata, STORE_UNAVAILABLE, "s3 unavailable: %s",
                     be->closing ? "store closed" : store_breaker_reason(&be->breaker));
        return;
    }
    if (kind == OP_PUT && len > st->max_object_bytes) {
        store_refuse(be, cb, privdata, STORE_TOO_LARGE, "value larger than %zu bytes",
                     st->max_object_bytes);
        return;
    }
    op = calloc(1, sizeof *op);
    if (op && kind == OP_PUT) {
        op->body = malloc(len ? len : 1);
        if (!op->body) {
            free(op);
            op = NULL;
        } else if (len) {
            memcpy(op->body, value, len);
        }
    }
    if (!op) {
        store_refuse(be, cb, privdata, STORE_ERROR, "s3: out of memory");
        return;
    }
    op->st = st;
    op->kind = kind;
    op->body_len = kind == OP_PUT ? len : 0;
    /* v4: curl's timeout bounds the request (and stops it); v2: the core's
     * deadline answers, and libs3 is told to stop at its next callback. */
    store_op_start(be, &op->sop, cb, privdata, st->signature == 2 ? st->timeout_ms : -1,
                   free_op);
    store_op_carry(&op->sop);

    if (st->signature == 2)
        v2_submit(op);
    else if (kind == OP_PUT)
        v4_put(op);
    else
        v4_start(op);
}

/* One object: the key is the configuration's (AWS_S3_OBJECT). */
static void s3_start(struct kv_store *kv, const struct kv_request *req, store_cb cb,
                     void *privdata)
{
    static const enum s3_kind kinds[] = {[KV_GET] = OP_GET, [KV_PUT] = OP_PUT, [KV_PING] = OP_PING};

    start((struct s3_store *)kv, kinds[req->verb], req->value, req->value_len, cb, privdata,
          false);
}

/* The probe while the breaker is open: a HEAD of the bucket, as ping. */
static void on_probe(void *privdata, const struct store_result *res)
{
    (void)privdata;
    (void)res; /* answer() told the breaker */
}

static void probe(struct store_backend *be)
{
    start(container_of(be, struct s3_store, kv.be), OP_PING, NULL, 0, on_probe, NULL, true);
}

/* ---- libs3 lifetime --------------------------------------------------- */

static pthread_mutex_t libs3_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned libs3_users;

static int libs3_acquire(void)
{
    int rc = 0;

    pthread_mutex_lock(&libs3_mutex);
    if (libs3_users == 0) {
        /* S3_INIT_ALL is S3_INIT_WINSOCK: nothing on Linux.  libs3 always
         * calls curl_global_init() of libcurl-gnutls, its own libcurl. */
        S3Status s = S3_initialize("springfield", S3_INIT_ALL, NULL);

        if (s != S3StatusOK) {
            sf_error("s3: S3_initialize failed: %s", S3_get_status_name(s));
            rc = -1;
        }
    }
    if (rc == 0)
        libs3_users++;
    pthread_mutex_unlock(&libs3_mutex);
    return rc;
}

static void libs3_release(void)
{
    pthread_mutex_lock(&libs3_mutex);
    if (--libs3_users == 0)
        S3_deinitialize();
    pthread_mutex_unlock(&libs3_mutex);
}

static void store_destroy(struct s3_store *st)
{
    if (st->signature == 2)
        libs3_release();
    free(st->bucket);
    free(st->object);
    free(st->region);
    free(st->access_key);
    if (st->secret_key) /* do not leave it in freed memory */
        memset(st->secret_key, 0, strlen(st->secret_key));
    free(st->secret_key);
    if (st->userpwd)
        memset(st->userpwd, 0, strlen(st->userpwd));
    free(st->userpwd);
    free(st->where);
    free(st->object_url);
    free(st->bucket_url);
    free(st->sigv4);
    free(st->host);
    free(st);
}

/* The core answered everything, and the last carried op came back. */
static void destroy(struct store_backend *be)
{
    store_destroy(container_of(be, struct s3_store, kv.be));
}

static const struct kv_ops s3_ops = {s3_start, destroy};

/* http(s)://host[:port][/] -> *https, host[:port] (malloc'd); -1 if not. */
static int parse_endpoint(const char *url, int *https, char **hostport)
{
    const char *p, *end;
    size_t n;

    if (!strncasecmp(url, "http://", 7)) {
        *https = 0;
        p = url + 7;
    } else if (!strncasecmp(url, "https://", 8)) {
        *https = 1;
        p = url + 8;
    } else {
        return -1;
    }
    end = strchr(p, '/');
    n = end ? (size_t)(end - p) : strlen(p);
    if (end && strcmp(end, "/") != 0)
        return -1; /* a path prefix: not supported (libs3 cannot do it) */
    if (n == 0 || memchr(p, '@', n) || memchr(p, '?', n) || memchr(p, '#', n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)p[i]) || iscntrl((unsigned char)p[i]))
            return -1;
    *hostport = strndup(p, n);
    return *hostport ? 0 : -1;
}

/* ---- configuration ---------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

int s3_config_from_env(struct s3_config *cfg)
{
    const char *sig = env("AWS_S3_SIGNATURE");

    memset(cfg, 0, sizeof *cfg);
    cfg->bucket = env("AWS_S3_BUCKET");
    if (!cfg->bucket)
        return 0;
    cfg->object = env("AWS_S3_OBJECT");
    if (!cfg->object)
        cfg->object = S3_DEFAULT_OBJECT;
    cfg->access_key = env("AWS_ACCESS_KEY_ID");
    cfg->secret_key = env("AWS_SECRET_ACCESS_KEY");
    cfg->region = env("AWS_REGION");
    if (!cfg->region)
        cfg->region = S3_DEFAULT_REGION;
    cfg->endpoint = env("AWS_ENDPOINT_URL_S3");
    cfg->timeout_ms = S3_DEFAULT_TIMEOUT_MS;
    cfg->max_object_bytes = S3_DEFAULT_MAX_OBJECT_BYTES;
    if (!sig || !strcasecmp(sig, "v4") || !strcmp(sig, "4")) {
        cfg->signature = 4;
    } else if (!strcasecmp(sig, "v2") || !strcmp(sig, "2")) {
        cfg->signature = 2;
    } else {
        sf_error("AWS_S3_SIGNATURE=%s: expected v4 (the default) or v2", sig);
        return -1;
    }
    if (cfg->endpoint) {
        char *hostport = NULL;
        int https;

        if (parse_endpoint(cfg->endpoint, &https, &hostport) < 0) {
            sf_error("AWS_ENDPOINT_URL_S3=%s: expected http(s)://host[:port]", cfg->endpoint);
            return -1;
        }
        free(hostport);
    }
    if (!cfg->access_key != !cfg->secret_key) {
        sf_error("%s is set without %s: set both, or neither for anonymous access",
                 cfg->access_key ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                 cfg->access_key ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return -1;
    }
    return 1;
}

static int setup_v4(struct s3_store *st, const char *endpoint)
{
    char *base, *eb = uri_encode(st->bucket), *eo = uri_encode(st->object);
    int https = 1;
    char *hostport = NULL;

    if (!eb || !eo)
        goto oom;
    if (endpoint) {
        if (parse_endpoint(endpoint, &https, &hostport) < 0) {
            sf_error("s3: AWS_ENDPOINT_URL_S3=%s: expected http(s)://host[:port]", endpoint);
            free(eb);
            free(eo);
            return -1;
        }
        base = xprintf("%s://%s", https ? "https" : "http", hostport);
    } else {
        base = xprintf("https://s3.%s.amazonaws.com", st->region);
    }
    if (!base)
        goto oom;
    st->object_url = xprintf("%s/%s/%s", base, eb, eo);
    st->bucket_url = xprintf("%s/%s", base, eb);
    st->sigv4 = xprintf("aws:amz:%s:s3", st->region);
    st->where = xprintf("%s/%s/%s (sigv4)", base, st->bucket, st->object);
    if (st->access_key)
        st->userpwd = xprintf("%s:%s", st->access_key, st->secret_key);
    free(base);
    free(hostport);
    free(eb);
    free(eo);
    if (!st->object_url || !st->bucket_url || !st->sigv4 || !st->where ||
        (st->access_key && !st->userpwd)) {
        sf_error("s3: out of memory");
        return -1;
    }
    if (!st->access_key) {
        free(st->sigv4); /* anonymous: nothing to sign with */
        st->sigv4 = NULL;
        sf_info("s3: no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: requests to %s are unsigned",
                st->where);
    }
    return 0;
oom:
    sf_error("s3: out of memory");
    free(eb);
    free(eo);
    return -1;
}

static int setup_v2(struct s3_store *st, const char *endpoint)
{
    int https = 1;
    S3Status s;

    if (!st->access_key) {
        sf_error("s3: Signature V2 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
        return -1;
    }
    if (endpoint) {
        if (parse_endpoint(endpoint, &https, &st->host) < 0) {
            sf_error("s3: AWS_ENDPOINT_URL_S3=%s: expected http(s)://host[:port]", endpoint);
            return -1;
        }
        st->uri_style = S3UriStylePath;
        st->where = xprintf("%s://%s/%s/%s (sigv2, libs3)", https ? "https" : "http", st->host,
                            st->bucket, st->object);
    } else {
        st->uri_style = S3UriStyleVirtualHost;
        st->where = xprintf("https://%s.s3.amazonaws.com/%s (sigv2, libs3)", st->bucket,
                            st->object);
    }
    st->protocol = https ? S3ProtocolHTTPS : S3ProtocolHTTP;
    if (!st->where) {
        sf_error("s3: out of memory");
        return -1;
    }
    s = S3_validate_bucket_name(st->bucket, st->uri_style);
    if (s != S3StatusOK) {
        sf_error("s3: libs3 refuses the bucket name %s: %s", st->bucket, S3_get_status_name(s));
        return -1;
    }
    return 0;
}

struct kv_store *s3_store_new(struct ev_loop *loop, struct http_client *http,
                              struct worker_pool *pool, const struct s3_config *cfg)
{
    struct s3_store *st;
    const char *object, *region, *endpoint;
    int have_access, have_secret;

    if (!loop || !cfg || !cfg->bucket || !*cfg->bucket) {
        sf_error("s3: no bucket configured");
        return NULL;
    }
    if (cfg->signature != 4 && cfg->signature != 2) {
        sf_error("s3: signature version %d: expected 4 or 2", cfg->signature);
        return NULL;
    }
    if (cfg->signature == 4 && !http) {
        sf_error("s3: Signature V4 needs the HTTP client");
        return NULL;
    }
    if (cfg->signature == 2 && !pool) {
        sf_error("s3: Signature V2 (libs3) needs the worker pool");
        return NULL;
    }
    object = cfg->object && *cfg->object ? cfg->object : S3_DEFAULT_OBJECT;
    region = cfg->region && *cfg->region ? cfg->region : S3_DEFAULT_REGION;
    endpoint = cfg->endpoint && *cfg->endpoint ? cfg->endpoint : NULL;
    if (strlen(object) > S3_MAX_KEY_BYTES) {
        sf_error("s3: object name longer than %d bytes", S3_MAX_KEY_BYTES);
        return NULL;
    }
    have_access = cfg->access_key && *cfg->access_key;
    have_secret = cfg->secret_key && *cfg->secret_key;
    if (have_access != have_secret) {
        sf_error("s3: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither");
        return NULL;
    }
    for (const char *p = region; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-') {
            sf_error("s3: AWS_REGION=%s is not a region name", region);
            return NULL;
        }

    st = calloc(1, sizeof *st);
    if (!st)
        goto oom;
    st->kv.ops = &s3_ops;
    st->loop = loop;
    st->http = http;
    st->pool = pool;
    st->signature = cfg->signature;
    st->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : S3_DEFAULT_TIMEOUT_MS;
    st->max_object_bytes = cfg->max_object_bytes ? cfg->max_object_bytes
                                                 : S3_DEFAULT_MAX_OBJECT_BYTES;
    if (st->max_object_bytes > INT32_MAX) /* libs3 counts in int */
        st->max_object_bytes = INT32_MAX;
    st->bucket = strdup(cfg->bucket);
    st->object = strdup(object);
    st->region = strdup(region);
    st->access_key = have_access ? strdup(cfg->access_key) : NULL;
    st->secret_key = have_secret ? strdup(cfg->secret_key) : NULL;
    if (!st->bucket || !st->object || !st->region || (have_access && !st->access_key) ||
        (have_secret && !st->secret_key))
        goto oom_st;

    if (st->signature == 4) {
        if (setup_v4(st, endpoint) < 0)
            goto fail_st;
    } else {
        if (setup_v2(st, endpoint) < 0)
            goto fail_st;
        if (libs3_acquire() < 0)
            goto fail_st;
    }
    store_backend_init(&st->kv.be, loop, "s3", st->where, st->timeout_ms);
    snprintf(st->name, sizeof st->name, "s3 %s", st->where);
    store_breaker_init(&st->kv.be.breaker, st->name, 1, false);
    st->kv.be.probe = probe;
    return &st->kv;

oom_st:
    sf_error("s3: out of memory");
fail_st:
    st->signature = 4; /* libs3 not acquired: store_destroy must not release it */
    store_destroy(st);
    return NULL;
oom:
    sf_error("s3: out of memory");
    return NULL;
}
