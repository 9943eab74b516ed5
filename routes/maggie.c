/*
 * routes/maggie.c — GET /api/v1/maggie: the weather in Austin, TX, from
 * WEATHER_URI (store/weather.c fetches and parses it; the sentence is said
 * here).
 *
 * Without WEATHER_URI the route answers from a canned forecast kept in
 * this file, through the same parser, so it works out of the box; the
 * start-up log says so.
 */
#include <stdio.h>
#include <string.h>

#include "routes/app.h"
#include "routes/handlers.h"
#include "routes/status.h"
#include "store/weather.h"

static const char canned_forecast[] =
    "{\"query\":{\"results\":{\"channel\":{\"item\":{\"condition\":"
    "{\"temp\":\"72\",\"text\":\"Sunny\"}}}}}}";

size_t maggie_sentence(const struct weather_report *w, char *out, size_t size)
{
    int n = snprintf(out, size, "Currently %s degrees and %s in Austin, TX", w->temperature,
                     w->conditions);

    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

static void answer(struct fcgi_request *r, const struct weather_report *w)
{
    char sentence[sizeof w->temperature + sizeof w->conditions + 64];
    size_t n = maggie_sentence(w, sentence, sizeof sentence);

    fcgi_respond(r, 200, FCGI_TEXT_PLAIN, sentence, n);
}

static void on_weather(void *privdata, const struct store_result *res)
{
    struct fcgi_request *r = privdata;

    fcgi_request_add_backend_time(r, res->elapsed);
    fcgi_request_note_backend(r, "weather", res->elapsed);
    if (res->status == STORE_OK && res->len == sizeof(struct weather_report))
        answer(r, res->data);
    else if (res->status == STORE_OK)
        fcgi_respond_error(r, 500, "weather report of the wrong size");
    else
        route_answer_failure(r, res);
}

void maggie_get(struct fcgi_request *r, const struct route_match *m)
{
    const struct app *app = fcgi_request_app(r);
    struct weather_report w;
    const char *why = NULL;

    (void)m;
    if (app->weather) {
        weather_fetch(app->weather, app->backend_timeout_ms, on_weather, r);
        return;
    }
    if (weather_parse(canned_forecast, sizeof canned_forecast - 1, &w, &why) < 0) {
        fcgi_respond_error(r, 500, "canned forecast unreadable: %s", why ? why : "?");
        return;
    }
    answer(r, &w);
}
