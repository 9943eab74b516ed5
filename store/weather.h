/*
 * store/weather.h — the maggie route's backend: fetch the weather, say it
 * in one sentence.
 *
 * The answer may come in either of two shapes, whichever the service holds:
 *   - the original service's Yahoo shape:
 *       {"query":{"results":{"channel":{"item":{"condition":
 *           {"temp":"72","text":"Sunny"}}}}}}      (temp a string or number)
 *   - Open-Meteo's current weather, older or newer form:
 *       {"current_weather":{"temperature":21.3,"weathercode":3,...}}
 *       {"current":{"temperature_2m":21.3,"weather_code":3,...}}
 *     The WMO 4677 code is told in words ("Overcast"); a code Open-Meteo
 *     does not document is told as "weather code N".
 * What it says is a struct weather_report: the temperature as it prints
 * (without trailing zeros: 20.0 -> "20") and the conditions in words; the
 * route (routes/maggie.c) makes the sentence.
 */
#ifndef SPRINGFIELD_STORE_WEATHER_H
#define SPRINGFIELD_STORE_WEATHER_H

#include <stddef.h>

#include <ev.h>

#include "store/http.h"
#include "store/op.h"
#include "store/result.h"

/* Responses over this are refused as STORE_BAD_UPSTREAM. */
#define WEATHER_MAX_RESPONSE_BYTES (1024u * 1024u)

#define WEATHER_MAX_TEXT_BYTES 200

struct weather_report {
    char temperature[40];                     /* "21.3", "72", "-4" */
    char conditions[WEATHER_MAX_TEXT_BYTES + 1]; /* "Sunny", "Overcast", "weather code 4" */
};

/* Parses len bytes of JSON (no NUL needed) into out.  0 on success; -1
 * with *why (a constant or thread-local string, valid until the next call
 * on this thread) saying what was wrong: "not JSON at byte N", "no
 * temperature in the answer (query.results.channel.item.condition.temp)",
 * "temperature is not a number", ... */
int weather_parse(const char *json, size_t len, struct weather_report *out, const char **why);

/* Words for a WMO weather code as Open-Meteo documents them, or NULL. */
const char *weather_code_text(int code);

/* The weather service at uri, fetched through http (which must outlive
 * it); its own breaker opens when the service cannot be reached. */
struct weather_client;
struct weather_client *weather_client_new(struct ev_loop *loop, struct http_client *http,
                                          const char *uri);
/* Pending fetches get their callback (STORE_UNAVAILABLE) first. */
void weather_client_free(struct weather_client *w);
/* Its breaker and counts (health check, logs). */
struct store_backend *weather_backend(struct weather_client *w);

/* GETs the weather; cb runs on the loop thread exactly once, after the
 * call returned (store/op.h):
 *   STORE_OK            data = a struct weather_report, len = its size
 *   STORE_BAD_UPSTREAM  "weather service answered HTTP 500", malformed JSON
 *                       or missing fields (the message says which), a
 *                       response over WEATHER_MAX_RESPONSE_BYTES
 *   STORE_TIMEOUT       "weather service did not answer within N ms"
 *   STORE_UNAVAILABLE   cannot connect (curl's reason), or the breaker is
 *                       open after that
 *   STORE_ERROR         bad URI, out of memory */
void weather_fetch(struct weather_client *w, long timeout_ms, store_cb cb, void *privdata);

#endif
