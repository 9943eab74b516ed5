/* routes/backends.c — each route's backend, from the environment. */
#include "routes/backends.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/setting.h"
#include "common/log.h"
#include "store/embedded.h"
#include "store/http.h"
#include "store/mongo.h"
#include "store/mysql.h"
#include "store/redis.h"
#include "store/s3.h"
#include "store/workers.h"

/* Jobs waiting for the worker pool before new ones are refused (503). */
#define WORKER_QUEUE_MAX 1024

static void say(const char *route, const struct kv_store *kv, const char *unset,
                unsigned workers)
{
    if (!strcmp(kv->backend, "embedded") && workers > 1)
        sf_warn("route %-20s -> embedded store, one per worker process: with --workers %u a "
                "value stored by one worker is not seen by the others; set %s",
                route, workers, unset);
    else if (!strcmp(kv->backend, "embedded"))
        sf_info("route %-20s -> embedded in-process store (not persistent; set %s for the real backend)",
                route, unset);
    else
        sf_info("route %-20s -> %s at %s", route, kv->backend, kv->where ? kv->where : "?");
}

/* The embedded store named `name`, logging on failure. */
static struct kv_store *embedded(const char *name)
{
    struct kv_store *kv = embedded_store_new(name);

    if (!kv)
        sf_error("out of memory for the embedded %s store", name);
    return kv;
}

static struct kv_store *open_marges(struct ev_loop *loop, long timeout_ms)
{
    struct redis_config cfg;
    int set = redis_config_from_env(&cfg);

    if (set < 0)
        return NULL;
    if (!set)
        return embedded("marges");
    cfg.timeout_ms = (int)timeout_ms;
    cfg.connect_timeout_ms = (int)timeout_ms;
    return redis_store_new(loop, &cfg);
}

static struct kv_store *open_homers(struct app *app, long timeout_ms, unsigned threads)
{
    struct mongo_config cfg;

    if (!mongo_config_from_env(&cfg))
        return embedded("homers");
    cfg.timeout_ms = (int)timeout_ms;
    if (!app->pool) {
        app->pool = worker_pool_new(app->loop, threads, WORKER_QUEUE_MAX);
        if (!app->pool) {
            sf_error("cannot start %u worker threads", threads);
            return NULL;
        }
    }
    return mongo_store_new(app->pool, &cfg);
}

static struct kv_store *open_lisas(struct ev_loop *loop, long timeout_ms)
{
    struct mysql_config cfg;

    if (!mysql_config_from_env(&cfg))
        return embedded("lisas");
    cfg.timeout_ms = (int)timeout_ms;
    return mysql_store_new(loop, &cfg);
}

static struct kv_store *open_bart(struct app *app, long timeout_ms, unsigned threads)
{
    struct s3_config cfg;
    int set = s3_config_from_env(&cfg);

    if (set < 0)
        return NULL;
    if (!set)
        return embedded("bart");
    cfg.timeout_ms = (int)timeout_ms;
    app->s3_pool = worker_pool_new(app->loop, threads, WORKER_QUEUE_MAX);
    if (!app->s3_pool) {
        sf_error("cannot start %u worker threads for S3", threads);
        return NULL;
    }
    return s3_store_new(app->loop, app->http, app->s3_pool, &cfg);
}

/* "http://..." or "https://..." with a host: what libcurl is given. */
static bool is_http_url(const char *u)
{
    const char *rest = !strncasecmp(u, "http://", 7)    ? u + 7
                       : !strncasecmp(u, "https://", 8) ? u + 8
                                                        : NULL;

    return rest && *rest && *rest != '/' && !strpbrk(u, " \t\r\n");
}

int backends_check_env(void)
{
    struct redis_config redis;
    struct mysql_config mysql;
    struct s3_config s3;
    const char *mongo = setting_env("MONGODB_URI"), *weather = setting_env("WEATHER_URI");
    int rc = 0;

    if (redis_config_from_env(&redis) < 0 || mysql_config_from_env(&mysql) < 0 ||
        s3_config_from_env(&s3) < 0)
        rc = -1;
    /* The driver parses the rest of the URI when the store opens. */
    if (mongo && strncmp(mongo, "mongodb://", 10) && strncmp(mongo, "mongodb+srv://", 14)) {
        sf_error("MONGODB_URI: expected mongodb://... or mongodb+srv://...");
        rc = -1;
    }
    if (weather && !is_http_url(weather)) {
        sf_error("WEATHER_URI: '%.128s' is not an http:// or https:// URL", weather);
        rc = -1;
    }
    return rc;
}

int backends_open(struct app *app, struct ev_loop *loop, const struct backend_options *o)
{
    const char *weather = setting_env("WEATHER_URI");

    memset(app, 0, sizeof *app);
    app->loop = loop;
    app->backend_timeout_ms = o->timeout_ms;
    app->http = http_client_new(loop);
    if (!app->http) {
        sf_error("cannot create the HTTP client (libcurl multi)");
        return -1;
    }
    app->weather_uri = weather;

    app->marges = open_marges(loop, o->timeout_ms);
    app->homers = open_homers(app, o->timeout_ms, o->threads);
    app->lisas = open_lisas(loop, o->timeout_ms);
    app->bart = open_bart(app, o->timeout_ms, o->threads);
    if (!app->marges || !app->homers || !app->lisas || !app->bart) {
        sf_error("cannot open the backends (see above)");
        backends_close(app);
        return -1;
    }
    say("/api/v1/marges/NAME", app->marges, "REDIS_HOST", o->workers);
    say("/api/v1/homers/NAME", app->homers, "MONGODB_URI", o->workers);
    say("/api/v1/lisas/NAME", app->lisas, "MYSQL_HOST", o->workers);
    say("/api/v1/bart", app->bart, "AWS_S3_BUCKET", o->workers);
    if (app->weather_uri)
        sf_info("route %-20s -> weather service at %s", "/api/v1/maggie", app->weather_uri);
    else
        sf_info("route %-20s -> embedded canned forecast (set WEATHER_URI for the real one)",
                "/api/v1/maggie");
    return 0;
}

void backends_close(struct app *app)
{
    /* Stores first: their pending operations still complete through the
     * worker pool, which is stopped (running what is queued) afterwards. */
    kv_free(app->marges);
    kv_free(app->homers);
    kv_free(app->lisas);
    kv_free(app->bart);
    if (app->pool)
        worker_pool_free(app->pool);
    if (app->s3_pool)
        worker_pool_free(app->s3_pool);
    if (app->http)
        http_client_free(app->http);
    memset(app, 0, sizeof *app);
}
