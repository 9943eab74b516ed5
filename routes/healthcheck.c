/*
 * routes/healthcheck.c — GET /api/v1/healthcheck: every backend pinged at
 * once, each with its own deadline.
 *
 * The backends: every key-value store of routes/registry.h and, when
 * WEATHER_URI is set, the weather service (fetched and parsed as maggie
 * would).
 * 200 "OK" when all answer; 503 naming what failed otherwise.  With
 * "Accept: application/json" the answer is a JSON document with each
 * backend's state and latency.  A route on the embedded store counts as
 * healthy (its ping always answers).
 *
 * Lifetime: the check is answered when every ping has answered or passed
 * its deadline; its memory is freed when the last ping callback has come
 * back (the shims call back exactly once, also late), whichever is later.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "common/log.h"
#include "routes/app.h"
#include "routes/handlers.h"
#include "store/weather.h"

/* A health check should answer quicker than a request's backend timeout. */
#define HEALTH_TIMEOUT_MS 2000

struct health;

struct probe {
    struct health *h;
    const char *route;
    const char *backend;  /* "redis", "embedded", "weather", ... */
    struct kv_store *kv;  /* NULL for the weather probe */
    ev_timer deadline;
    double started, latency;
    enum store_status status;
    char message[160];
    bool settled;  /* answered or past its deadline */
    bool returned; /* the shim's callback has come back */
};

struct health {
    struct fcgi_request *req;
    struct ev_loop *loop;
    bool json;
    unsigned unsettled, outstanding, n;
    struct probe probes[BACKEND_KV_COUNT + 1]; /* the stores, then the weather */
};

static void answer(struct health *h)
{
    char text[1024];
    size_t used = 0;
    unsigned i, failed = 0;
    double waited = 0;

    /* The pings ran side by side: the wait was the longest of them. */
    for (i = 0; i < h->n; i++) {
        failed += h->probes[i].status != STORE_OK;
        if (h->probes[i].latency > waited)
            waited = h->probes[i].latency;
    }
    fcgi_request_add_backend_time(h->req, waited);
    for (i = 0; i < h->n; i++) /* each ping, by its route: "marges 1 ms, homers 2001 ms" */
        fcgi_request_note_backend(h->req, h->probes[i].route, h->probes[i].latency);

    if (h->json) {
        cJSON *doc = cJSON_CreateObject(), *backends = cJSON_AddObjectToObject(doc, "backends");
        char *out;

        cJSON_AddStringToObject(doc, "status", failed ? "unhealthy" : "ok");
        for (i = 0; i < h->n; i++) {
            const struct probe *p = &h->probes[i];
            cJSON *b = cJSON_AddObjectToObject(backends, p->route);

            cJSON_AddStringToObject(b, "backend", p->backend);
            cJSON_AddStringToObject(b, "state", store_status_name(p->status));
            cJSON_AddNumberToObject(b, "latency_ms", (double)(long)(p->latency * 1e5) / 100);
            if (p->status != STORE_OK)
                cJSON_AddStringToObject(b, "error", p->message);
        }
        out = doc ? cJSON_PrintUnformatted(doc) : NULL;
        cJSON_Delete(doc);
        if (!out) {
            fcgi_respond_error(h->req, 500, "out of memory for the health report");
            return;
        }
        fcgi_respond(h->req, failed ? 503 : 200, "application/json", out, strlen(out));
        free(out);
        return;
    }
    if (!failed) {
        fcgi_respond(h->req, 200, FCGI_TEXT_PLAIN, "OK", 2);
        return;
    }
    text[0] = '\0';
    for (i = 0; i < h->n; i++) {
        const struct probe *p = &h->probes[i];
        int k;

        if (p->status == STORE_OK)
            continue;
        k = snprintf(text + used, sizeof text - used, "%s%s (%s): %s", used ? "; " : "",
                     p->backend, p->route, p->message);
        if (k < 0 || (size_t)k >= sizeof text - used)
            break;
        used += (size_t)k;
    }
    fcgi_respond_error(h->req, 503, "%s", text);
}

static void settle(struct probe *p, enum store_status status, const char *message)
{
    struct health *h = p->h;

    if (p->settled)
        return;
    p->settled = true;
    p->status = status;
    p->latency = ev_time() - p->started;
    snprintf(p->message, sizeof p->message, "%s",
             message && *message ? message : store_status_name(status));
    ev_timer_stop(h->loop, &p->deadline);
    if (--h->unsettled == 0)
        answer(h);
}

static void release(struct health *h)
{
    if (h->outstanding == 0 && h->unsettled == 0)
        free(h);
}

static void on_ping(void *privdata, const struct store_result *res)
{
    struct probe *p = privdata;
    struct health *h = p->h;

    p->returned = true;
    h->outstanding--;
    settle(p, res->status, res->message);
    release(h);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct probe *p = w->data;
    char msg[64];

    (void)loop;
    (void)revents;
    snprintf(msg, sizeof msg, "no answer within %d ms", HEALTH_TIMEOUT_MS);
    settle(p, STORE_TIMEOUT, msg);
    release(p->h);
}

void healthcheck_get(struct fcgi_request *r, const struct route_match *m)
{
    const struct app *app = fcgi_request_app(r);
    const char *accept = fcgi_param(r, "HTTP_ACCEPT");
    struct health *h = calloc(1, sizeof *h);
    unsigned i;

    (void)m;
    if (!h) {
        fcgi_respond_error(r, 500, "out of memory for the health check");
        return;
    }
    h->req = r;
    h->loop = fcgi_request_loop(r);
    h->json = accept && strstr(accept, "application/json");
    h->n = BACKEND_KV_COUNT + (app->weather != NULL);
    h->unsettled = h->outstanding = h->n;
    /* One extra count while starting, so that nothing can finish (and free)
     * the check before every probe is started.  (The shims answer from the
     * loop, after the starting call; the deadlines below are the only other
     * way a probe settles.) */
    h->unsettled++;
    for (i = 0; i < h->n; i++) {
        struct probe *p = &h->probes[i];

        p->h = h;
        if (i < BACKEND_KV_COUNT) {
            p->route = backend_registry[i].route;
            p->kv = app->kv[i];
            p->backend = app->kv[i]->be.kind;
        } else {
            p->route = "maggie";
            p->backend = "weather";
        }
        p->started = ev_time();
        ev_timer_init(&p->deadline, on_deadline, HEALTH_TIMEOUT_MS / 1000.0, 0);
        p->deadline.data = p;
        ev_timer_start(h->loop, &p->deadline);
    }
    for (i = 0; i < h->n; i++) {
        struct probe *p = &h->probes[i];

        if (p->kv)
            kv_ping(p->kv, on_ping, p);
        else
            weather_fetch(app->weather, HEALTH_TIMEOUT_MS, on_ping, p);
    }
    if (--h->unsettled == 0)
        answer(h);
    release(h);
}
