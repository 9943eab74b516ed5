/*
 * store/mongo.c — the homers store on mongo-c-driver (see mongo.h).
 *
 * Every operation is one job on the worker pool: allocated on the loop
 * thread with copies of the name and value, run() on a worker thread pops
 * a client from the mongoc_client_pool_t, talks to the server, pushes the
 * client back and leaves status/message/data in the job; done() on the loop
 * thread hands them to the operation core (store/op.h), which delivers them
 * unless the deadline or the breaker answered first.  Nothing of the store
 * is touched by two threads except the client pool (which is made for it),
 * read-only configuration and each job's cancel flag.
 *
 * The breaker (store/breaker.h) opens on the first job that cannot reach
 * the server: every operation whose job is still queued is answered at
 * once and its job cancelled (it is not run, so a refused write never lands
 * later), and so is a read already running; a write already running on a
 * worker is answered when it ends (the driver may yet reach the server with
 * it: a write is not refused before its outcome is known).  New ones fail fast until a half-open
 * probe gets through.
 */
#include "store/mongo.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/utf8.h"
#include "store/json_bson.h"

struct mongo_store {
    struct kv_store kv; /* first: kv_store * <-> mongo_store * */
    struct worker_pool *workers;
    mongoc_uri_t *uri;
    mongoc_client_pool_t *clients;
    char *database;
    char *where;
    char name[300];        /* "mongodb host:port/db", for the log */
    int socket_timeout_ms; /* the URI's (0: none) */
    int select_timeout_ms; /* serverSelectionTimeoutMS, the URI's or ours */
    int timeout_ms;        /* each operation's */
    /* The unique index on name, which makes concurrent upserts of one new
     * name one document: made once the server first answers. */
    bool index_ready;
    bool index_in_flight;
};

enum mongo_op { OP_GET, OP_PUT, OP_PING, OP_INDEX, OP_PROBE };

struct mongo_job {
    struct store_op sop;
    struct mongo_store *store;
    enum mongo_op op;
    atomic_int state;      /* JOB_QUEUED -> JOB_RUNNING (a worker took it) or
                            * JOB_CANCELLED (answered while queued: not run) */
    const char *name; /* points into bytes[] */
    size_t name_len;
    const char *value; /* put: the JSON text, in bytes[] */
    size_t value_len;
    /* result, written by run() */
    enum store_status status;
    char message[512];
    char *data; /* get: malloc'd JSON */
    size_t data_len;
    int64_t deadline_us; /* past it, a job still queued is not run */
    char bytes[]; /* name, then value */
};

/* ---- driver lifetime -------------------------------------------------- */

static pthread_mutex_t driver_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned driver_users; /* live mongo stores */
static int driver_cleaned;    /* mongoc_cleanup() has run: no way back */

static void driver_log(mongoc_log_level_t level, const char *domain, const char *message,
                       void *user_data)
{
    (void)user_data;
    switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
        sf_error("mongoc %s: %s", domain, message);
        break;
    case MONGOC_LOG_LEVEL_WARNING:
        sf_warn("mongoc %s: %s", domain, message);
        break;
    default:
        break; /* message/info/debug/trace: too chatty for the service log */
    }
}

static int driver_acquire(void)
{
    int ok;

    pthread_mutex_lock(&driver_mutex);
    ok = !driver_cleaned;
    if (ok && driver_users++ == 0) {
        mongoc_log_set_handler(driver_log, NULL);
        mongoc_init(); /* once-guarded inside the driver, too */
    }
    pthread_mutex_unlock(&driver_mutex);
    return ok ? 0 : -1;
}

static void driver_release(void)
{
    pthread_mutex_lock(&driver_mutex);
    if (--driver_users == 0) {
        mongoc_cleanup();
        driver_cleaned = 1;
    }
    pthread_mutex_unlock(&driver_mutex);
}

/* ---- results ---------------------------------------------------------- */

static void job_set(struct mongo_job *job, enum store_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void job_set(struct mongo_job *job, enum store_status status, const char *fmt, ...)
{
    va_list ap;

    job->status = status;
    va_start(ap, fmt);
    vsnprintf(job->message, sizeof job->message, fmt, ap);
    va_end(ap);
}

/* Maps a driver error to a store status.  The driver reports a read that
 * hit socketTimeoutMS and a connection the server closed with the same
 * code (MONGOC_ERROR_STREAM_SOCKET); the time the operation took tells
 * them apart. */
static void job_set_error(struct mongo_job *job, const bson_error_t *e, int64_t started_us)
{
    int64_t elapsed_ms = (bson_get_monotonic_time() - started_us) / 1000;
    int timeout_ms = job->store->socket_timeout_ms;

    switch (e->domain) {
    case MONGOC_ERROR_SERVER_SELECTION:
        job_set(job, STORE_UNAVAILABLE, "mongodb unavailable: %s", e->message);
        return;
    case MONGOC_ERROR_STREAM:
        if (e->code == MONGOC_ERROR_STREAM_SOCKET && timeout_ms > 0 &&
            elapsed_ms >= timeout_ms - timeout_ms / 10)
            job_set(job, STORE_TIMEOUT, "mongodb timeout: no answer within %d ms: %s", timeout_ms,
                    e->message);
        else
            job_set(job, STORE_UNAVAILABLE, "mongodb unavailable: %s", e->message);
        return;
    case MONGOC_ERROR_PROTOCOL:
        job_set(job, STORE_BAD_UPSTREAM, "mongodb protocol error: %s", e->message);
        return;
    case MONGOC_ERROR_CLIENT:
        if (e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE) {
            job_set(job, STORE_BAD_UPSTREAM, "mongodb refused us: %s", e->message);
            return;
        }
        break;
    case MONGOC_ERROR_SERVER:
        switch (e->code) {
        case 10334: /* BSONObjectTooLarge */
        case 17419: /* document would exceed the size limit */
            job_set(job, STORE_TOO_LARGE, "mongodb: %s", e->message);
            return;
        case 2:  /* BadValue */
        case 52: /* DollarPrefixedFieldName (servers before 5.0) */
        case 57: /* DottedFieldName */
            job_set(job, STORE_BAD_INPUT, "mongodb refused the document: %s", e->message);
            return;
        }
        break;
    case MONGOC_ERROR_COMMAND:
        if (e->code == MONGOC_ERROR_COMMAND_INVALID_ARG) {
            job_set(job, STORE_BAD_INPUT, "mongodb: %s", e->message);
            return;
        }
        break;
    case MONGOC_ERROR_BSON:
        job_set(job, strstr(e->message, "too large") ? STORE_TOO_LARGE : STORE_BAD_INPUT,
                "mongodb: %s", e->message);
        return;
    default:
        break;
    }
    job_set(job, STORE_ERROR, "mongodb error: %s (%u.%u)", e->message, e->domain, e->code);
}

/* ---- operations (worker threads) -------------------------------------- */

/* A pooled connection that died while idle (server restarted) fails its
 * next use at once.  The driver retries reads itself; writes it retries
 * only on replica sets, so put and ping try once more here — but only
 * after a failure that came fast: one after a timeout, or after the
 * driver waited for a server (a stream error can end a wait of the whole
 * serverSelectionTimeoutMS when the server is down), would double the
 * wait (seen: a POST with mongo stopped took 4 s, twice the selection). */
static int worth_retry(const struct mongo_store *st, const bson_error_t *e,
                       int64_t attempt_started_us)
{
    int64_t elapsed_ms = (bson_get_monotonic_time() - attempt_started_us) / 1000;

    if (e->domain != MONGOC_ERROR_STREAM)
        return 0;
    if (st->select_timeout_ms > 0 && elapsed_ms >= st->select_timeout_ms / 4)
        return 0;
    /* socketTimeoutMS=0 in the URI means no timeout at all */
    return st->socket_timeout_ms <= 0 ||
           elapsed_ms < st->socket_timeout_ms - st->socket_timeout_ms / 10;
}

static void op_get(struct mongo_job *job, mongoc_client_t *client, int64_t started_us)
{
    mongoc_collection_t *coll;
    mongoc_cursor_t *cursor;
    const bson_t *doc;
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
    bson_error_t error;
    bson_iter_t it;

    bson_append_utf8(&filter, "name", 4, job->name, (int)job->name_len);
    BSON_APPEND_INT64(&opts, "limit", 1);
    BSON_APPEND_BOOL(&opts, "singleBatch", true);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 0);
    BSON_APPEND_INT32(&proj, "content", 1);
    bson_append_document_end(&opts, &proj);

    coll = mongoc_client_get_collection(client, job->store->database, MONGO_COLLECTION);
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    if (mongoc_cursor_next(cursor, &doc)) {
        if (!bson_iter_init_find(&it, doc, "content")) {
            job_set(job, STORE_BAD_UPSTREAM, "mongodb: the document has no content");
        } else {
            job->data = bson_value_to_json(&it, &job->data_len);
            if (job->data)
                job->status = STORE_OK;
            else
                job_set(job, STORE_BAD_UPSTREAM,
                        "mongodb: stored content cannot be rendered as JSON");
        }
    } else if (mongoc_cursor_error(cursor, &error)) {
        job_set_error(job, &error, started_us);
    } else {
        job_set(job, STORE_NOT_FOUND, "no document with that name");
    }
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    bson_destroy(&opts);
    bson_destroy(&filter);
}

static void op_put(struct mongo_job *job, mongoc_client_t *client, bson_t *replacement,
                   int64_t started_us)
{
    mongoc_collection_t *coll;
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    bson_error_t error;

    bson_append_utf8(&filter, "name", 4, job->name, (int)job->name_len);
    BSON_APPEND_BOOL(&opts, "upsert", true);
    /* The driver would refuse empty, dotted and $-prefixed keys anywhere in
     * content; JSON allows them and so does the server (5.0+) below the top
     * level, whose keys (name, content) are ours.  Leave it to the server. */
    BSON_APPEND_BOOL(&opts, "validate", false);
    coll = mongoc_client_get_collection(client, job->store->database, MONGO_COLLECTION);
    for (int attempt = 0;; attempt++) {
        int64_t attempt_us = bson_get_monotonic_time();

        if (mongoc_collection_replace_one(coll, &filter, replacement, &opts, NULL, &error)) {
            job->status = STORE_OK;
            break;
        }
        /* replace-by-name is idempotent, so once more is safe */
        if (attempt == 0 && worth_retry(job->store, &error, attempt_us))
            continue;
        job_set_error(job, &error, started_us);
        break;
    }
    mongoc_collection_destroy(coll);
    bson_destroy(&opts);
    bson_destroy(&filter);
}

static void op_ping(struct mongo_job *job, mongoc_client_t *client, int64_t started_us)
{
    bson_t cmd = BSON_INITIALIZER;
    bson_error_t error;

    BSON_APPEND_INT32(&cmd, "ping", 1);
    for (int attempt = 0;; attempt++) {
        int64_t attempt_us = bson_get_monotonic_time();

        if (mongoc_client_command_simple(client, "admin", &cmd, NULL, NULL, &error)) {
            job->status = STORE_OK;
            break;
        }
        if (attempt == 0 && worth_retry(job->store, &error, attempt_us))
            continue;
        job_set_error(job, &error, started_us);
        break;
    }
    bson_destroy(&cmd);
}

/* createIndexes {name: 1} unique: without it two first PUTs of a name on
 * two threads can both insert, and a later read may find the stale one. */
static void op_index(struct mongo_job *job, mongoc_client_t *client, int64_t started_us)
{
    bson_t cmd = BSON_INITIALIZER, indexes, index, key;
    bson_error_t error;

    BSON_APPEND_UTF8(&cmd, "createIndexes", MONGO_COLLECTION);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
    BSON_APPEND_INT32(&key, "name", 1);
    bson_append_document_end(&index, &key);
    BSON_APPEND_UTF8(&index, "name", "name_unique");
    BSON_APPEND_BOOL(&index, "unique", true);
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&cmd, &indexes);
    if (mongoc_client_command_simple(client, job->store->database, &cmd, NULL, NULL, &error))
        job->status = STORE_OK;
    else
        job_set_error(job, &error, started_us);
    bson_destroy(&cmd);
}

enum { JOB_QUEUED, JOB_RUNNING, JOB_CANCELLED };

/* Queued -> to; false when it has left the queue already. */
static bool job_leave_queue(struct mongo_job *job, int to)
{
    int queued = JOB_QUEUED;

    return atomic_compare_exchange_strong(&job->state, &queued, to);
}

static void job_run(void *arg)
{
    struct mongo_job *job = arg;
    int64_t started_us = bson_get_monotonic_time();
    mongoc_client_t *client;
    bson_t replacement = BSON_INITIALIZER;

    /* A job already answered (its deadline, or the breaker opening) is
     * not run: nobody waits for it, and a write refused must not land
     * later.  Nor one that waited out its whole timeout in the queue: a
     * stalled server must not take every queued job's full timeout in turn. */
    if (!job_leave_queue(job, JOB_RUNNING)) {
        job_set(job, STORE_UNAVAILABLE, "mongodb: answered before it ran");
        return;
    }
    if (started_us > job->deadline_us) {
        job_set(job, STORE_TIMEOUT, "mongodb: no worker free within %d ms",
                job->store->timeout_ms);
        return;
    }
    /* Convert before taking a client: bad input never costs a round trip. */
    if (job->op == OP_PUT) {
        char err[256];

        bson_append_utf8(&replacement, "name", 4, job->name, (int)job->name_len);
        if (json_to_bson_value(job->value, job->value_len, &replacement, "content", err,
                               sizeof err) < 0) {
            job_set(job, STORE_BAD_INPUT, "%s", err);
            bson_destroy(&replacement);
            return;
        }
    }
    client = mongoc_client_pool_pop(job->store->clients);
    if (!client) {
        job_set(job, STORE_ERROR, "mongodb: no client available");
    } else {
        switch (job->op) {
        case OP_GET: op_get(job, client, started_us); break;
        case OP_PUT: op_put(job, client, &replacement, started_us); break;
        case OP_PING:
        case OP_PROBE: op_ping(job, client, started_us); break;
        case OP_INDEX: op_index(job, client, started_us); break;
        }
        mongoc_client_pool_push(job->store->clients, client);
    }
    bson_destroy(&replacement);
}

/* ---- loop thread ------------------------------------------------------ */

static void store_destroy(struct mongo_store *st)
{
    if (st->clients)
        mongoc_client_pool_destroy(st->clients);
    mongoc_uri_destroy(st->uri);
    free(st->database);
    free(st->where);
    free(st);
    driver_release();
}

static void make_index(struct mongo_store *st);

/* The deadline answered it: a job still queued is not run. */
static void cancel_job(struct store_op *op)
{
    job_leave_queue(container_of(op, struct mongo_job, sop), JOB_CANCELLED);
}

/* The server cannot be reached: the breaker opens, and every operation
 * whose job is still queued is answered now (and its job cancelled), not
 * at its deadline; so is a read already running (nothing of it can land).
 * A write already running is answered as it ends: the driver may yet get
 * it to the server, and a write is not refused before its outcome is known. */
/* Whether op is answered at once when the server is found gone. */
static bool answer_now(struct mongo_job *job)
{
    if (job_leave_queue(job, JOB_CANCELLED))
        return true; /* not run at all */
    return job->op == OP_GET || job->op == OP_PING || job->op == OP_PROBE;
}

static void server_gone(struct mongo_store *st, const char *why)
{
    struct store_backend *be = &st->kv.be;
    struct store_op *op, **now = NULL;
    size_t n = 0, i;

    store_backend_failed(be, why);
    if (be->npending)
        now = malloc(be->npending * sizeof *now);
    for (op = list_first(&be->pending, struct store_op, link); op && now;
         op = list_next(&be->pending, op, struct store_op, link))
        if (answer_now(container_of(op, struct mongo_job, sop)))
            now[n++] = op;
    /* answered in a pass of their own: an answer's callback may start
     * operations, which change the pending list (they fail fast now) */
    for (i = 0; i < n; i++)
        store_op_complete(now[i], STORE_UNAVAILABLE, why, NULL, 0);
    free(now); /* out of memory for it: they are answered at their deadlines */
}

static void job_done(void *arg)
{
    struct mongo_job *job = arg;
    struct mongo_store *st = job->store;
    bool cancelled = atomic_load(&job->state) == JOB_CANCELLED;

    if (!st->kv.be.closing && !cancelled) {
        if (job->status == STORE_UNAVAILABLE)
            server_gone(st, job->message);
        else if (job->status != STORE_TIMEOUT && job->status != STORE_ERROR)
            store_backend_answered(&st->kv.be);
        if (job->status == STORE_OK && job->op != OP_INDEX)
            make_index(st);
    }
    /* The core drops a result for an operation already answered. */
    store_op_complete(&job->sop, job->status, job->status == STORE_OK ? "" : job->message,
                      job->status == STORE_OK ? job->data : NULL,
                      job->status == STORE_OK ? job->data_len : 0);
    store_op_carried(&job->sop); /* the pool is done with it: st may be gone */
}

static void free_job(struct store_op *op)
{
    struct mongo_job *job = container_of(op, struct mongo_job, sop);

    free(job->data);
    free(job);
}

static void submit(struct mongo_store *st, enum mongo_op op, const char *name,
                   size_t name_len, const void *value, size_t value_len, store_cb cb,
                   void *privdata);

/* A ping of our own tests the server while the breaker is open (its
 * result is news for the breaker in job_done, like any job's). */
static void on_probe(void *privdata, const struct store_result *res)
{
    (void)privdata;
    (void)res;
}

static void probe(struct store_backend *be)
{
    submit(container_of(be, struct mongo_store, kv.be), OP_PROBE, NULL, 0, NULL, 0, on_probe,
           NULL);
}

static void on_index(void *privdata, const struct store_result *res)
{
    struct mongo_store *st = privdata;

    st->index_in_flight = false;
    if (res->status == STORE_OK) {
        st->index_ready = true;
        sf_info("%s: unique index on %s.name in place", st->where, MONGO_COLLECTION);
    } else if (!st->kv.be.closing) {
        sf_warn("%s: cannot create the unique index on %s.name (%s); trying again later",
                st->where, MONGO_COLLECTION, res->message);
    }
}

/* Creates the unique index on name once the server answers, once. */
static void make_index(struct mongo_store *st)
{
    if (st->index_ready || st->index_in_flight || st->kv.be.closing)
        return;
    st->index_in_flight = true;
    store_backend_begin(&st->kv.be);
    submit(st, OP_INDEX, NULL, 0, NULL, 0, on_index, st);
    store_backend_end(&st->kv.be);
}

static void submit(struct mongo_store *st, enum mongo_op op, const char *name,
                   size_t name_len, const void *value, size_t value_len, store_cb cb,
                   void *privdata)
{
    struct store_backend *be = &st->kv.be;
    struct mongo_job *job;

    if (name_len > MONGO_MAX_NAME_BYTES) {
        store_refuse(be, cb, privdata, STORE_BAD_INPUT, "name longer than 1024 bytes");
        return;
    }
    /* (not bson_utf8_validate, which lets the overlong NUL C0 80 by) */
    if (name_len > 0 && utf8_chars(name, name_len) < 0) {
        store_refuse(be, cb, privdata, STORE_BAD_INPUT, "name is not valid UTF-8");
        return;
    }
    if (value_len > (size_t)INT32_MAX) { /* BSON cannot hold it anyway */
        store_refuse(be, cb, privdata, STORE_TOO_LARGE, "value too large for MongoDB");
        return;
    }
    if (op != OP_PROBE && !store_backend_usable(be)) {
        store_refuse(be, cb, privdata, STORE_UNAVAILABLE, "%s",
                     be->closing ? "mongodb unavailable: store closed"
                                 : store_breaker_reason(&be->breaker));
        return;
    }
    job = calloc(1, sizeof *job + name_len + value_len);
    if (!job) {
        store_refuse(be, cb, privdata, STORE_ERROR, "mongodb: out of memory");
        return;
    }
    job->store = st;
    job->op = op;
    job->status = STORE_ERROR;
    atomic_init(&job->state, JOB_QUEUED);
    if (name_len)
        memcpy(job->bytes, name, name_len);
    if (value_len)
        memcpy(job->bytes + name_len, value, value_len);
    job->name = job->bytes;
    job->name_len = name_len;
    job->value = job->bytes + name_len;
    job->value_len = value_len;
    /* socketTimeoutMS=0 in the URI means no socket timeout: the operation's
     * own deadline still bounds the wait in the queue. */
    job->deadline_us = bson_get_monotonic_time() + (int64_t)st->timeout_ms * 1000;
    job->sop.on_deadline = cancel_job;
    store_op_start(be, &job->sop, cb, privdata, 0, free_job);
    if (worker_pool_submit(st->workers, job_run, job_done, job) < 0) {
        store_op_fail(&job->sop, STORE_UNAVAILABLE, "mongodb unavailable: worker queue full");
        return;
    }
    store_op_carry(&job->sop); /* until done() */
}

static void mongo_start(struct kv_store *kv, const struct kv_request *req, store_cb cb,
                        void *privdata)
{
    static const enum mongo_op ops[] = {[KV_GET] = OP_GET, [KV_PUT] = OP_PUT, [KV_PING] = OP_PING};

    submit((struct mongo_store *)kv, ops[req->verb], req->key, req->key_len, req->value,
           req->value_len, cb, privdata);
}

/* The core answered everything, and the last job came back. */
static void destroy(struct store_backend *be)
{
    store_destroy(container_of(be, struct mongo_store, kv.be));
}

static const struct kv_ops mongo_ops = {mongo_start, destroy};

/* ---- construction ----------------------------------------------------- */

int mongo_config_from_env(struct mongo_config *cfg)
{
    const char *uri = getenv("MONGODB_URI");

    if (!uri || !*uri)
        return 0;
    cfg->uri = uri;
    return 1;
}

/* Sets an int32 URI option unless the user's URI already has it. */
static void default_option(mongoc_uri_t *uri, const char *option, int32_t value)
{
    if (!mongoc_uri_has_option(uri, option))
        mongoc_uri_set_option_as_int32(uri, option, value);
}

/* "host:port[,host:port...]/database", without credentials or options. */
static char *describe(const mongoc_uri_t *uri, const char *database)
{
    const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri);
    size_t cap = strlen(database) + 2, len = 0;
    char *s;

    for (const mongoc_host_list_t *p = h; p; p = p->next)
        cap += strlen(p->host_and_port) + 1;
    if (!h && mongoc_uri_get_srv_hostname(uri))
        cap += strlen(mongoc_uri_get_srv_hostname(uri)) + 4;
    s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (const mongoc_host_list_t *p = h; p; p = p->next)
        len += (size_t)snprintf(s + len, cap - len, "%s%s", p == h ? "" : ",",
                                p->host_and_port);
    if (!h && mongoc_uri_get_srv_hostname(uri))
        len += (size_t)snprintf(s + len, cap - len, "srv:%s", mongoc_uri_get_srv_hostname(uri));
    snprintf(s + len, cap - len, "/%s", database);
    return s;
}

struct kv_store *mongo_store_new(struct ev_loop *loop, struct worker_pool *pool,
                                 const struct mongo_config *cfg)
{
    struct mongo_store *st;
    bson_error_t error;
    const char *db;
    int timeout_ms, select_ms;

    if (!pool || !cfg || !cfg->uri) {
        sf_error("mongodb: no worker pool or no URI");
        return NULL;
    }
    if (driver_acquire() < 0) {
        sf_error("mongodb: the driver was already cleaned up in this process");
        return NULL;
    }
    st = calloc(1, sizeof *st);
    if (!st) {
        sf_error("mongodb: out of memory");
        driver_release();
        return NULL;
    }
    st->kv.ops = &mongo_ops;
    st->workers = pool;

    timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : MONGO_DEFAULT_TIMEOUT_MS;
    st->timeout_ms = timeout_ms;
    store_backend_init(&st->kv.be, loop, "mongodb", "?", timeout_ms);
    select_ms = timeout_ms < MONGO_SELECTION_TIMEOUT_MS ? timeout_ms : MONGO_SELECTION_TIMEOUT_MS;
    st->uri = mongoc_uri_new_with_error(cfg->uri, &error);
    if (!st->uri) {
        /* the driver's message does not repeat the URI (it may hold a password) */
        sf_error("mongodb: MONGODB_URI is not valid: %s", error.message);
        goto fail;
    }
    default_option(st->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, select_ms);
    default_option(st->uri, MONGOC_URI_CONNECTTIMEOUTMS, select_ms);
    default_option(st->uri, MONGOC_URI_SOCKETTIMEOUTMS, timeout_ms);
    st->socket_timeout_ms =
        mongoc_uri_get_option_as_int32(st->uri, MONGOC_URI_SOCKETTIMEOUTMS, timeout_ms);
    if (st->socket_timeout_ms < 0)
        st->socket_timeout_ms = 0;
    st->select_timeout_ms =
        mongoc_uri_get_option_as_int32(st->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, select_ms);

    db = mongoc_uri_get_database(st->uri);
    st->database = strdup(db && *db ? db : MONGO_DEFAULT_DATABASE);
    st->where = st->database ? describe(st->uri, st->database) : NULL;
    if (!st->database || !st->where) {
        sf_error("mongodb: out of memory");
        goto fail;
    }
    st->kv.be.where = st->where;
    snprintf(st->name, sizeof st->name, "mongodb %s", st->where);
    store_breaker_init(&st->kv.be.breaker, st->name, 1, false);
    st->kv.be.probe = probe;

    st->clients = mongoc_client_pool_new_with_error(st->uri, &error);
    if (!st->clients) {
        sf_error("mongodb: cannot make a client pool: %s", error.message);
        goto fail;
    }
    /* error API 2: server errors in MONGOC_ERROR_SERVER, not QUERY */
    mongoc_client_pool_set_error_api(st->clients, MONGOC_ERROR_API_VERSION_2);
    if (!mongoc_uri_get_appname(st->uri))
        mongoc_client_pool_set_appname(st->clients, "springfield");
    make_index(st); /* if the server is down now, the first answer retries it */
    return &st->kv;

fail:
    store_destroy(st); /* releases the driver too */
    return NULL;
}
