/*
 * store/weather.c — weather answer parsing (Yahoo and Open-Meteo shapes)
 * and the fetch that feeds it through the HTTP client.
 */
#include "store/weather.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define WEATHER_MAX_TEXT_BYTES 200

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

int weather_parse(const char *json, size_t len, char *out, size_t out_size, const char **why)
{
    const char *end = NULL;
    const cJSON *cur, *cw;
    const char *text = NULL;
    char code_buf[32], temp_buf[40];
    double t = 0;
    cJSON *root;
    int rc, n;

    if (out && out_size)
        out[0] = '\0';
    if (!out || out_size == 0)
        return fail(why, "no room for the answer");
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

    format_number(t, temp_buf, sizeof temp_buf);
    n = snprintf(out, out_size, "Currently %s degrees and %s in Austin, TX", temp_buf, text);
    if (n < 0 || (size_t)n >= out_size) {
        out[0] = '\0';
        rc = fail(why, "answer does not fit the output buffer");
    }
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- fetch ------------------------------------------------------------- */

struct weather_fetch {
    store_cb cb;
    void *privdata;
    long timeout_ms;
};

static void report(store_cb cb, void *privdata, enum store_status status, const char *message,
                   const char *data)
{
    struct store_result r;

    r.status = status;
    r.message = message;
    r.data = data;
    r.len = data ? strlen(data) : 0;
    cb(privdata, &r);
}

static void on_weather(void *privdata, const struct http_response *res)
{
    struct weather_fetch *f = privdata;
    char sentence[WEATHER_MAX_TEXT_BYTES + 96];
    char msg[512];
    const char *why = NULL;

    switch (res->status) {
    case STORE_OK:
        if (res->http_code < 200 || res->http_code >= 300) {
            snprintf(msg, sizeof msg, "weather service answered HTTP %ld", res->http_code);
            report(f->cb, f->privdata, STORE_BAD_UPSTREAM, msg, NULL);
        } else if (weather_parse(res->body, res->body_len, sentence, sizeof sentence, &why) <
                   0) {
            snprintf(msg, sizeof msg, "bad weather answer: %s", why);
            report(f->cb, f->privdata, STORE_BAD_UPSTREAM, msg, NULL);
        } else {
            report(f->cb, f->privdata, STORE_OK, "", sentence);
        }
        break;
    case STORE_TIMEOUT:
        snprintf(msg, sizeof msg, "weather service did not answer within %ld ms",
                 f->timeout_ms);
        report(f->cb, f->privdata, STORE_TIMEOUT, msg, NULL);
        break;
    case STORE_UNAVAILABLE:
        snprintf(msg, sizeof msg, "cannot reach weather service: %s", res->message);
        report(f->cb, f->privdata, STORE_UNAVAILABLE, msg, NULL);
        break;
    case STORE_BAD_UPSTREAM:
        snprintf(msg, sizeof msg, "bad weather answer: %s", res->message);
        report(f->cb, f->privdata, STORE_BAD_UPSTREAM, msg, NULL);
        break;
    default:
        snprintf(msg, sizeof msg, "weather request failed: %s", res->message);
        report(f->cb, f->privdata, res->status, msg, NULL);
        break;
    }
    free(f);
}

void weather_fetch(struct http_client *c, const char *uri, long timeout_ms, store_cb cb,
                   void *privdata)
{
    static const char *const headers[] = {"Accept: application/json", NULL};
    struct http_request req;
    struct weather_fetch *f;

    if (!uri || !*uri) {
        report(cb, privdata, STORE_ERROR, "no weather URI configured", NULL);
        return;
    }
    f = malloc(sizeof *f);
    if (!f) {
        report(cb, privdata, STORE_ERROR, "out of memory", NULL);
        return;
    }
    f->cb = cb;
    f->privdata = privdata;
    f->timeout_ms = timeout_ms > 0 ? timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.url = uri;
    req.headers = headers;
    req.timeout_ms = f->timeout_ms;
    req.max_response_bytes = WEATHER_MAX_RESPONSE_BYTES;
    if (http_request_start(c, &req, on_weather, f) < 0) {
        free(f);
        report(cb, privdata, STORE_ERROR, "could not start the weather request", NULL);
    }
}
