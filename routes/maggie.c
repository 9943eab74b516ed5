/*
 * routes/maggie.c — GET /api/v1/maggie: the weather in Austin, TX, from
 * WEATHER_URI (store/weather.c does the fetching and the wording).
 *
 * Without WEATHER_URI the route answers from a canned forecast kept in
 * this file, through the same parser, so it works out of the box; the
 * start-up log says so.
 */
#include <string.h>

#include "routes/app.h"
#include "routes/handlers.h"
#include "store/weather.h"

static const char canned_forecast[] =
    "{\"query\":{\"results\":{\"channel\":{\"item\":{\"condition\":"
    "{\"temp\":\"72\",\"text\":\"Sunny\"}}}}}}";

static void on_weather(void *privdata, const struct store_result *res)
{
    struct fcgi_request *r = privdata;

    if (res->status == STORE_OK)
        fcgi_respond(r, 200, "text/plain; charset=utf-8", res->data, res->len);
    else
        fcgi_respond_error(r, store_status_http(res->status), "%s",
                           res->message && *res->message ? res->message
                                                         : store_status_name(res->status));
}

void maggie_get(struct fcgi_request *r, const struct route_match *m)
{
    const struct app *app = fcgi_request_app(r);
    char sentence[256];
    const char *why = NULL;

    (void)m;
    if (app->weather_uri) {
        weather_fetch(app->http, app->weather_uri, app->backend_timeout_ms, on_weather, r);
        return;
    }
    if (weather_parse(canned_forecast, sizeof canned_forecast - 1, sentence, sizeof sentence,
                      &why) < 0) {
        fcgi_respond_error(r, 500, "canned forecast unreadable: %s", why ? why : "?");
        return;
    }
    fcgi_respond(r, 200, "text/plain; charset=utf-8", sentence, strlen(sentence));
}
