/* routes/readiness.c — the serving process's reports (see readiness.h). */
#include "routes/readiness.h"

#include <stdio.h>

#include "fcgi/notify.h"
#include "fcgi/server.h"
#include "routes/app.h"
#include "routes/registry.h"
#include "store/weather.h"

static void add(char *out, size_t size, size_t *used, const struct store_backend *be,
                const char *route)
{
    int n;

    if (*used >= size)
        return;
    n = snprintf(out + *used, size - *used, "%s%s (%s)", *used ? ", " : "", be->kind, route);
    if (n > 0)
        *used += (size_t)n < size - *used ? (size_t)n : size - *used - 1;
}

unsigned backends_down(const struct app *app, char *out, size_t size)
{
    size_t used = 0;
    unsigned i, down = 0;

    if (size)
        out[0] = '\0';
    for (i = 0; i < BACKEND_KV_COUNT; i++) {
        if (app->kv[i] && store_breaker_open(&app->kv[i]->be.breaker)) {
            add(out, size, &used, &app->kv[i]->be, backend_registry[i].route);
            down++;
        }
    }
    if (app->weather && store_breaker_open(&weather_backend(app->weather)->breaker)) {
        add(out, size, &used, weather_backend(app->weather), "maggie");
        down++;
    }
    return down;
}

static void say(struct readiness *rd)
{
    char down[256];

    backends_down(rd->app, down, sizeof down);
    sf_notify_serving(fcgi_server_in_flight(rd->server), down);
}

static void on_sample(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    say(w->data);
}

void readiness_start(struct readiness *rd, struct ev_loop *loop, struct fcgi_server *server,
                     const struct app *app)
{
    rd->loop = NULL;
    if (!sf_notify_enabled())
        return;
    rd->loop = loop;
    rd->server = server;
    rd->app = app;
    say(rd); /* serving now: the readiness */
    ev_timer_init(&rd->sample, on_sample, READINESS_SAMPLE_S, READINESS_SAMPLE_S);
    rd->sample.data = rd;
    ev_timer_start(loop, &rd->sample);
    ev_unref(loop); /* the reports alone must not keep the loop running */
}

void readiness_stop(struct readiness *rd)
{
    if (!rd->loop)
        return;
    ev_ref(rd->loop);
    ev_timer_stop(rd->loop, &rd->sample);
    rd->loop = NULL;
}
