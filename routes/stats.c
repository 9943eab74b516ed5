/* routes/stats.c — one process's counting into its scoreboard row (stats.h). */
#include "routes/stats.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "fcgi/recycle.h"
#include "routes/scoreboard.h"
#include "store/weather.h"
#include "store/workers.h"

#define PUBLISH_S 1.0

static struct {
    ev_timer timer;
    struct app *app;
} publisher;

static struct store_backend *backend_of(struct app *app, unsigned i)
{
    if (i < BACKEND_KV_COUNT)
        return app->kv[i] ? &app->kv[i]->be : NULL;
    return app->weather ? weather_backend(app->weather) : NULL;
}

/* The worker pool a backend's jobs wait in (MongoDB's, S3's), or NULL. */
static struct worker_pool *pool_of(struct app *app, const struct store_backend *be)
{
    if (!strcmp(be->kind, "mongodb"))
        return app->pool;
    if (!strcmp(be->kind, "s3"))
        return app->s3_pool;
    return NULL;
}

static void publish(struct app *app)
{
    struct sb_row *row = app->row;

    for (unsigned i = 0; i < SB_BACKENDS; i++) {
        struct store_backend *be = backend_of(app, i);
        struct worker_pool *pool;

        if (!be)
            continue;
        pool = pool_of(app, be);
        __atomic_store_n(&be->stats->breaker_state, (uint64_t)be->breaker.state,
                         __ATOMIC_RELAXED);
        __atomic_store_n(&be->stats->pending, (uint64_t)be->npending, __ATOMIC_RELAXED);
        __atomic_store_n(&be->stats->queued, pool ? (uint64_t)worker_pool_pending(pool) : 0,
                         __ATOMIC_RELAXED);
    }
    if (row)
        __atomic_store_n(&row->rss_kib, (uint64_t)process_rss_kib(), __ATOMIC_RELAXED);
}

static void on_publish(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    publish(publisher.app);
}

void stats_attach(struct app *app, struct scoreboard *sb, struct sb_row *row)
{
    app->scoreboard = sb;
    app->row = row;
    if (row)
        for (unsigned i = 0; i < SB_BACKENDS; i++) {
            struct store_backend *be = backend_of(app, i);

            if (be)
                be->stats = &row->backends[i];
        }
    publisher.app = app;
    ev_timer_init(&publisher.timer, on_publish, 0, PUBLISH_S);
    ev_timer_start(app->loop, &publisher.timer);
    ev_unref(app->loop); /* the publisher alone does not keep the loop running */
    publish(app);
}

void stats_detach(struct app *app)
{
    if (publisher.app != app || !ev_is_active(&publisher.timer))
        return;
    ev_ref(app->loop);
    ev_timer_stop(app->loop, &publisher.timer);
    publisher.app = NULL;
}
