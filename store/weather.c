/*
 * store/weather.c — weather answer parsing (Yahoo and Open-Meteo shapes)
 * and the weather backend: fetches through the HTTP client, on the
 * operation core (store/op.h) with a breaker of its own.
 */
#include "store/weather.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>



static _Thread_local char why_buf[160];

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

__attribute__((format(printf, 2, 3))) static int failf(const char **why, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why_buf, sizeof why_buf, fmt, ap);
    va_end(ap);
    return fail(why, why_buf);
}

const char *weather_code_text(int code)
{
    /* WMO 4677 codes as documented by Open-Meteo's forecast API. */
    switch (code) {
    case 0: return "Clear sky";
    case 1: return "Mainly clear";
    case 2: return "Partly cloudy";
    case 3: return "Overcast";
    case 45: return "Fog";
    case 48: return "Depositing rime fog";
    case 51: return "Light drizzle";
    case 53: return "Moderate drizzle";
    case 55: return "Dense drizzle";
    case 56: return "Light freezing drizzle";
    case 57: return "Dense freezing drizzle";
    case 61: return "Slight rain";
    case 63: return "Moderate rain";
    case 65: return "Heavy rain";
    case 66: return "Light freezing rain";
    case 67: return "Heavy freezing rain";
    case 71: return "Slight snow fall";
    case 73: return "Moderate snow fall";
    case 75: return "Heavy snow fall";
    case 77: return "Snow grains";
    case 80: return "Slight rain showers";
    case 81: return "Moderate rain showers";
    case 82: return "Violent rain showers";
    case 85: return "Slight snow showers";
    case 86: return "Heavy snow showers";
    case 95: return "Thunderstorm";
    case 96: return "Thunderstorm with slight hail";
    case 99: return "Thunderstorm with heavy hail";
    }
    return NULL;
}

/* A number, or a string holding exactly one decimal number (Yahoo sends
 * "72").  0, or -1 when the item is neither. */
static int get_number(const cJSON *item, double *out)
{
    const char *s;
    char *end;

    if (cJSON_IsNumber(item)) {
        *out = item->valuedouble;
        return isfinite(*out) ? 0 : -1;
    }
    if (!cJSON_IsString(item))
        return -1;
    s = item->valuestring;
    while (*s == ' ')
        s++;
    /* only plain decimal notation: no hex, inf, nan */
    if (!*s || strspn(s, "0123456789+-.eE ") != strlen(s))
        return -1;
    *out = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (end == s || *end || !isfinite(*out))
        return -1;
    return 0;
}

/* 21.3 -> "21.3", 20.0 -> "20", -0.0 -> "0". */
static void format_number(double v, char *buf, size_t size)
{
    if (v == 0.0)
        v = 0.0; /* drops the sign of -0 */
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.15g", v);
}

/* Follows a dotted path of objects; NULL (with *why set) when one is
 * missing or not an object. */
static const cJSON *walk(const cJSON *root, const char *const *path, const char **why)
{
    char where[96] = "";
    const cJSON *node = root;

    for (; *path; path++) {
        if (where[0])
            strncat(where, ".", sizeof where - strlen(where) - 1);
        strncat(where, *path, sizeof where - strlen(where) - 1);
        node = cJSON_GetObjectItemCaseSensitive(node, *path);
        if (!node || cJSON_IsNull(node)) {
            failf(why, "no %s in the answer", where);
            return NULL;
        }
        if (!cJSON_IsObject(node)) {
            failf(why, "%s is not an object", where);
            return NULL;
        }
    }
    return node;
}

static int get_temperature(const cJSON *obj, const char *field, const char *where,
                           double *t, const char **why)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);

    if (!item || cJSON_IsNull(item))
        return failf(why, "no temperature in the answer (%s.%s)", where, field);
    if (get_number(item, t) < 0)
        return failf(why, "temperature (%s.%s) is not a number", where, field);
    if (fabs(*t) > 1000.0)
        return failf(why, "temperature (%s.%s) is out of range", where, field);
    return 0;
}

static int parse_yahoo(const cJSON *root, double *t, const char **text, const char **why)
{
    static const char *const path[] = {"query", "results", "channel", "item", "condition",
                                       NULL};
    static const char *const where = "query.results.channel.item.condition";
    const cJSON *cond = walk(root, path, why);
    const cJSON *item;
    const char *p;

    if (!cond)
        return -1;
    if (get_temperature(cond, "temp", where, t, why) < 0)
        return -1;
    item = cJSON_GetObjectItemCaseSensitive(cond, "text");
    if (!item || cJSON_IsNull(item))
        return failf(why, "no condition text in the answer (%s.text)", where);
    if (!cJSON_IsString(item))
        return failf(why, "condition text (%s.text) is not a string", where);
    for (p = item->valuestring; *p == ' '; p++)
        ;
    if (!*p)
        return failf(why, "condition text (%s.text) is empty", where);
    if (strlen(item->valuestring) > WEATHER_MAX_TEXT_BYTES)
        return failf(why, "condition text (%s.text) is longer than %d bytes", where,
                     WEATHER_MAX_TEXT_BYTES);
    for (p = item->valuestring; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return failf(why, "condition text (%s.text) holds control characters", where);
    *text = item->valuestring;
    return 0;
}

static int parse_open_meteo(const cJSON *obj, const char *where, const char *temp_field,
                            const char *code_field, double *t, const char **text,
                            char *code_buf, size_t code_size, const char **why)
{
    const cJSON *item;
    double code;

    if (get_temperature(obj, temp_field, where, t, why) < 0)
        return -1;
    item = cJSON_GetObjectItemCaseSensitive(obj, code_field);
    if (!item || cJSON_IsNull(item))
        return failf(why, "no weather code in the answer (%s.%s)", where, code_field);
    if (get_number(item, &code) < 0)
        return failf(why, "weather code (%s.%s) is not a number", where, code_field);
    if (code != floor(code))
        return failf(why, "weather code (%s.%s) is not an integer", where, code_field);
    if (code < 0 || code > 999)
        return failf(why, "weather code (%s.%s) is out of range", where, code_field);
    *text = weather_code_text((int)code);
    if (!*text) {
        snprintf(code_buf, code_size, "weather code %d", (int)code);
        *text = code_buf;
    }
    return 0;
}

int weather_parse(const char *json, size_t len, struct weather_report *out, const char **why)
{
    const char *end = NULL;
    const cJSON *cur, *cw;
    const char *text = NULL;
    char code_buf[32];
    double t = 0;
    cJSON *root;
    int rc;

    if (!out)
        return fail(why, "no room for the answer");
    memset(out, 0, sizeof *out);
    if (!json || len == 0)
        return fail(why, "empty answer");
    /* cJSON bounds nesting (CJSON_NESTING_LIMIT, 1000), so deep garbage
     * fails cleanly instead of exhausting the stack. */
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = (end && end >= json && end <= json + len) ? (size_t)(end - json) : 0;
        return failf(why, "not JSON at byte %zu", at);
    }
    while (end < json + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != json + len) {
        rc = failf(why, "not JSON at byte %zu (garbage after the value)",
                   (size_t)(end - json));
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = fail(why, "answer is not a JSON object");
        goto out;
    }

    cur = cJSON_GetObjectItemCaseSensitive(root, "current");
    cw = cJSON_GetObjectItemCaseSensitive(root, "current_weather");
    if (cJSON_GetObjectItemCaseSensitive(root, "query")) {
        rc = parse_yahoo(root, &t, &text, why);
    } else if (cJSON_IsObject(cur) &&
               (cJSON_GetObjectItemCaseSensitive(cur, "temperature_2m") || !cJSON_IsObject(cw))) {
        rc = parse_open_meteo(cur, "current", "temperature_2m", "weather_code", &t, &text,
                              code_buf, sizeof code_buf, why);
    } else if (cJSON_IsObject(cw)) {
        rc = parse_open_meteo(cw, "current_weather", "temperature", "weathercode", &t, &text,
                              code_buf, sizeof code_buf, why);
    } else if (cur || cw) {
        rc = failf(why, "%s is not an object", cur ? "current" : "current_weather");
    } else {
        rc = fail(why, "no weather in the answer (expected query.results.channel.item."
                       "condition, current or current_weather)");
    }
    if (rc < 0)
        goto out;

    format_number(t, out->temperature, sizeof out->temperature);
    snprintf(out->conditions, sizeof out->conditions, "%s", text); /* fits: checked above */
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- the backend ------------------------------------------------------- */

/* A probe while the breaker is open is a fetch with this deadline. */
#define WEATHER_PROBE_TIMEOUT_MS 2000

struct weather_client {
    struct store_backend be;
    struct http_client *http;
    char *uri;
};

struct weather_fetch {
    struct store_op op;
    struct weather_client *w;
};

static void on_weather(void *privdata, const struct http_response *res)
{
    struct weather_fetch *f = privdata;
    struct store_op *op = &f->op;
    struct weather_report report;
    const char *why = NULL;

    if (!store_op_running(op)) {
        /* answered already (the client was closed, and may be gone) */
        store_op_release(op);
        return;
    }
    /* Only a service that cannot be reached opens the breaker: a slow one
     * is the deadline's business, and any answer means it is there. */
    if (res->status == STORE_UNAVAILABLE)
        store_backend_failed(&f->w->be, res->message);
    else if (res->status == STORE_OK || res->status == STORE_BAD_UPSTREAM)
        store_backend_answered(&f->w->be);
    switch (res->status) {
    case STORE_OK:
        if (res->http_code < 200 || res->http_code >= 300)
            store_op_fail(op, STORE_BAD_UPSTREAM, "weather service answered HTTP %ld",
                          res->http_code);
        else if (weather_parse(res->body, res->body_len, &report, &why) < 0)
            store_op_fail(op, STORE_BAD_UPSTREAM, "bad weather answer: %s", why);
        else
            store_op_complete(op, STORE_OK, "", &report, sizeof report);
        break;
    case STORE_TIMEOUT:
        store_op_fail(op, STORE_TIMEOUT, "weather service did not answer within %ld ms",
                      op->timeout_ms);
        break;
    case STORE_UNAVAILABLE:
        store_op_fail(op, STORE_UNAVAILABLE, "cannot reach weather service: %s", res->message);
        break;
    case STORE_BAD_UPSTREAM:
        store_op_fail(op, STORE_BAD_UPSTREAM, "bad weather answer: %s", res->message);
        break;
    default:
        store_op_fail(op, res->status, "weather request failed: %s", res->message);
        break;
    }
    store_op_release(op); /* the HTTP client's hold */
}

static void free_fetch(struct store_op *op)
{
    free(container_of(op, struct weather_fetch, op));
}

static void fetch(struct weather_client *w, long timeout_ms, store_cb cb, void *privdata,
                  bool probing)
{
    static const char *const headers[] = {"Accept: application/json", NULL};
    struct store_backend *be = &w->be;
    struct http_request req;
    struct weather_fetch *f;

    store_backend_begin(be);
    if (!probing && !store_backend_usable(be)) {
        store_refuse(be, cb, privdata, STORE_UNAVAILABLE, "cannot reach weather service: %s",
                     be->closing ? "client closed" : store_breaker_reason(&be->breaker));
        store_backend_end(be);
        return;
    }
    f = calloc(1, sizeof *f);
    if (!f) {
        store_refuse(be, cb, privdata, STORE_ERROR, "weather: out of memory");
        store_backend_end(be);
        return;
    }
    f->w = w;
    /* The deadline is curl's (it stops the transfer too): the core's is
     * set just behind it, a safety net that should never fire. */
    timeout_ms = timeout_ms > 0 ? timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    store_op_start(be, &f->op, cb, privdata, timeout_ms + 1000, free_fetch);
    f->op.timeout_ms = timeout_ms;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.url = w->uri;
    req.headers = headers;
    req.timeout_ms = timeout_ms;
    req.max_response_bytes = WEATHER_MAX_RESPONSE_BYTES;
    store_op_hold(&f->op); /* until on_weather */
    http_request_start(w->http, &req, on_weather, f);
    store_backend_end(be);
}

void weather_fetch(struct weather_client *w, long timeout_ms, store_cb cb, void *privdata)
{
    fetch(w, timeout_ms, cb, privdata, false);
}

/* The probe while the breaker is open: a fetch of our own. */
static void on_probe(void *privdata, const struct store_result *res)
{
    (void)privdata;
    (void)res; /* on_weather told the breaker */
}

static void probe(struct store_backend *be)
{
    fetch(container_of(be, struct weather_client, be), WEATHER_PROBE_TIMEOUT_MS, on_probe,
          NULL, true);
}

struct weather_client *weather_client_new(struct ev_loop *loop, struct http_client *http,
                                          const char *uri)
{
    struct weather_client *w = calloc(1, sizeof *w);

    if (!w || !(w->uri = strdup(uri))) {
        free(w);
        return NULL;
    }
    w->http = http;
    store_backend_init(&w->be, loop, "weather", w->uri, 0);
    store_breaker_init(&w->be.breaker, "weather service", 1, false);
    w->be.probe = probe;
    return w;
}

struct store_backend *weather_backend(struct weather_client *w)
{
    return &w->be;
}

static void destroy(struct store_backend *be)
{
    struct weather_client *w = container_of(be, struct weather_client, be);

    free(w->uri);
    free(w);
}

void weather_client_free(struct weather_client *w)
{
    if (w)
        store_backend_close(&w->be, "client closed", destroy);
}
