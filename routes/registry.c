/*
 * routes/registry.c — the table of key-value backends: for each, how its
 * environment is read and how its real store is opened.
 */
#include "routes/registry.h"

#include <string.h>

#include "common/log.h"
#include "routes/app.h"
#include "routes/backends.h"
#include "store/mongo.h"
#include "store/mysql.h"
#include "store/redis.h"
#include "store/s3.h"
#include "store/workers.h"

/* Jobs waiting for a worker pool before new ones are refused (503). */
#define WORKER_QUEUE_MAX 1024

/* *pool, made the first time a store needs it. */
static int need_pool(struct app *app, struct worker_pool **pool, unsigned threads,
                     const char *what)
{
    if (!*pool)
        *pool = worker_pool_new(app->loop, threads, WORKER_QUEUE_MAX);
    if (!*pool)
        sf_error("cannot start %u worker threads for %s", threads, what);
    return *pool ? 0 : -1;
}

/* Each open: the environment's settings (set: 1, unset: 0, invalid: -1,
 * logged); with no app that is all (the check before fork); else the
 * store, into *out. */

static int redis_open(struct app *app, const struct backend_options *o, struct kv_store **out)
{
    struct redis_config cfg;
    int set = redis_config_from_env(&cfg);

    if (set <= 0 || !app)
        return set;
    cfg.timeout_ms = cfg.connect_timeout_ms = (int)o->timeout_ms;
    *out = redis_store_new(app->loop, app->resolver, &cfg);
    return *out ? 1 : -1;
}

static int mongo_open(struct app *app, const struct backend_options *o, struct kv_store **out)
{
    struct mongo_config cfg;

    if (!mongo_config_from_env(&cfg))
        return 0;
    /* the driver parses the rest of the URI when the store opens */
    if (strncmp(cfg.uri, "mongodb://", 10) && strncmp(cfg.uri, "mongodb+srv://", 14)) {
        sf_error("MONGODB_URI: expected mongodb://... or mongodb+srv://...");
        return -1;
    }
    if (!app)
        return 1;
    cfg.timeout_ms = (int)o->timeout_ms;
    if (need_pool(app, &app->pool, o->threads, "MongoDB") < 0)
        return -1;
    *out = mongo_store_new(app->loop, app->pool, &cfg);
    return *out ? 1 : -1;
}

static int mysql_open(struct app *app, const struct backend_options *o, struct kv_store **out)
{
    struct mysql_config cfg;
    int set = mysql_config_from_env(&cfg);

    if (set <= 0 || !app)
        return set;
    cfg.timeout_ms = (int)o->timeout_ms;
    if (o->mysql_connections)
        cfg.pool_size = (int)o->mysql_connections;
    *out = mysql_store_new(app->loop, app->resolver, &cfg);
    return *out ? 1 : -1;
}

static int s3_open(struct app *app, const struct backend_options *o, struct kv_store **out)
{
    struct s3_config cfg;
    int set = s3_config_from_env(&cfg);

    if (set <= 0 || !app)
        return set;
    cfg.timeout_ms = (int)o->timeout_ms;
    if (need_pool(app, &app->s3_pool, o->threads, "S3") < 0)
        return -1;
    *out = s3_store_new(app->loop, app->http, app->s3_pool, &cfg);
    return *out ? 1 : -1;
}

const struct backend_entry backend_registry[BACKEND_KV_COUNT] = {
    [BACKEND_MARGES] = {"marges", "/api/v1/marges/NAME", "REDIS_HOST",
                        "REDIS_HOST REDIS_PORT REDIS_PASSWORD REDIS_DB", redis_open},
    [BACKEND_HOMERS] = {"homers", "/api/v1/homers/NAME", "MONGODB_URI", "MONGODB_URI",
                        mongo_open},
    [BACKEND_LISAS] = {"lisas", "/api/v1/lisas/NAME", "MYSQL_HOST",
                       "MYSQL_HOST MYSQL_PORT MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD",
                       mysql_open},
    [BACKEND_BART] = {"bart", "/api/v1/bart", "AWS_S3_BUCKET",
                      "AWS_S3_BUCKET AWS_S3_OBJECT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY "
                      "AWS_REGION AWS_ENDPOINT_URL_S3 AWS_S3_SIGNATURE",
                      s3_open},
};
