/* routes/backends.c — each route's backend, from the environment, by the registry. */
#include "routes/backends.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/setting.h"
#include "routes/registry.h"
#include "store/embedded.h"
#include "store/http.h"
#include "store/resolver.h"
#include "store/weather.h"
#include "store/workers.h"

static void say(const struct backend_entry *e, const struct kv_store *kv, unsigned workers)
{
    if (!strcmp(kv->be.kind, "embedded") && workers > 1)
        sf_warn("route %-20s -> embedded store, one per worker process: with --workers %u a "
                "value stored by one worker is not seen by the others; set %s",
                e->path, workers, e->env);
    else if (!strcmp(kv->be.kind, "embedded"))
        sf_info("route %-20s -> embedded in-process store (not persistent; set %s for the "
                "real backend)", e->path, e->env);
    else
        sf_info("route %-20s -> %s at %s", e->path, kv->be.kind,
                kv->be.where ? kv->be.where : "?");
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
    const char *weather = setting_env("WEATHER_URI");
    int rc = 0;

    for (size_t i = 0; i < BACKEND_KV_COUNT; i++)
        if (backend_registry[i].open(NULL, NULL, NULL) < 0)
            rc = -1;
    if (weather && !is_http_url(weather)) {
        sf_error("WEATHER_URI: '%.128s' is not an http:// or https:// URL", weather);
        rc = -1;
    }
    return rc;
}

void backends_help(FILE *out)
{
    for (size_t i = 0; i < BACKEND_KV_COUNT; i++)
        fprintf(out, "  %-8s %s\n", backend_registry[i].route, backend_registry[i].env_all);
    fprintf(out, "  %-8s %s\n", "maggie", "WEATHER_URI");
}

int backends_open(struct app *app, struct ev_loop *loop, const struct backend_options *o)
{
    const char *weather = setting_env("WEATHER_URI");

    memset(app, 0, sizeof *app);
    app->loop = loop;
    app->backend_timeout_ms = o->timeout_ms;
    app->http = http_client_new(loop);
    app->resolver = resolver_new(loop);
    if (!app->http || !app->resolver) {
        sf_error("cannot create the HTTP client (libcurl multi) or the resolver thread");
        backends_close(app);
        return -1;
    }
    for (size_t i = 0; i < BACKEND_KV_COUNT; i++) {
        const struct backend_entry *e = &backend_registry[i];
        int rc = e->open(app, o, &app->kv[i]);

        if (rc == 0) {
            app->kv[i] = embedded_store_new(loop, e->route);
            if (!app->kv[i])
                sf_error("out of memory for the embedded %s store", e->route);
        }
        if (rc < 0 || !app->kv[i]) {
            sf_error("cannot open the backend of %s (see above)", e->path);
            backends_close(app);
            return -1;
        }
        say(e, app->kv[i], o->workers);
    }
    if (weather) {
        app->weather = weather_client_new(loop, app->http, weather);
        if (!app->weather) {
            sf_error("out of memory for the weather client");
            backends_close(app);
            return -1;
        }
        sf_info("route %-20s -> weather service at %s", "/api/v1/maggie", weather);
    } else {
        sf_info("route %-20s -> embedded canned forecast (set WEATHER_URI for the real one)",
                "/api/v1/maggie");
    }
    return 0;
}

void backends_close(struct app *app)
{
    /* Stores first: their pending operations are answered, and the jobs
     * they still have in the worker pools come back as the pools stop
     * (running what is queued) afterwards. */
    for (size_t i = 0; i < BACKEND_KV_COUNT; i++)
        kv_free(app->kv[i]);
    weather_client_free(app->weather);
    if (app->pool)
        worker_pool_free(app->pool);
    if (app->s3_pool)
        worker_pool_free(app->s3_pool);
    if (app->http)
        http_client_free(app->http);
    resolver_free(app->resolver);
    memset(app, 0, sizeof *app);
}
