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
 * The sentence: "Currently 21.3 degrees and Overcast in Austin, TX".
 * Temperatures print without trailing zeros (20.0 -> "20").
 */
#ifndef SPRINGFIELD_STORE_WEATHER_H
#define SPRINGFIELD_STORE_WEATHER_H

#include <stddef.h>

#include "store/http.h"
#include "store/result.h"

/* Responses over this are refused as STORE_BAD_UPSTREAM. */
#define WEATHER_MAX_RESPONSE_BYTES (1024u * 1024u)

/* Parses len bytes of JSON (no NUL needed) and writes the sentence into
 * out (always NUL-terminated when out_size > 0).  0 on success; -1 with
 * *why (a constant or thread-local string, valid until the next call on
 * this thread) saying what was wrong: "not JSON at byte N", "no
 * temperature in the answer (query.results.channel.item.condition.temp)",
 * "temperature is not a number", ... */
int weather_parse(const char *json, size_t len, char *out, size_t out_size, const char **why);

/* Words for a WMO weather code as Open-Meteo documents them, or NULL. */
const char *weather_code_text(int code);

/* GETs uri and calls cb on the loop thread exactly once:
 *   STORE_OK            data/len = the sentence
 *   STORE_BAD_UPSTREAM  "weather service answered HTTP 500", malformed JSON
 *                       or missing fields (the message says which), a
 *                       response over WEATHER_MAX_RESPONSE_BYTES
 *   STORE_TIMEOUT       "weather service did not answer within N ms"
 *   STORE_UNAVAILABLE   cannot connect (message has curl's reason)
 *   STORE_ERROR         bad URI, out of memory
 * cb runs before weather_fetch returns only when the request could not
 * even be started (no memory, bad URI, client shutting down). */
void weather_fetch(struct http_client *c, const char *uri, long timeout_ms, store_cb cb,
                   void *privdata);

#endif
