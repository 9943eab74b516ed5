/*
 * tests/fuzz/fuzz_weather.c — libFuzzer target for the weather answer
 * parser, weather_parse and weather_code_text (store/weather.c): what the
 * weather service sends goes through it.
 *
 * Input layout: byte 0 = the output size (0: the size store/weather.c
 * itself uses, WEATHER_MAX_TEXT_BYTES + 96; else 1..255); the rest is the
 * answer, handed over as an exact-size heap copy without a NUL (ASan
 * catches a read past it; the output buffer is exact-size too).
 * Checked, abort() on violation:
 *   - success: "Currently T degrees and TEXT in Austin, TX", NUL-terminated
 *     in the buffer; T a plain number within +-1000 without trailing zeros
 *     in its fraction; TEXT printable, at most WEATHER_MAX_TEXT_BYTES;
 *   - failure: -1 with a non-empty reason, and the output "";
 *   - the result does not depend on the buffer: parsing again into a big
 *     buffer gives the same sentence, and "does not fit" happens only when
 *     the sentence is longer than the small buffer, never at the size
 *     store/weather.c uses;
 *   - a NULL reason pointer is accepted;
 *   - weather_code_text gives NULL or a non-empty string for any code.
 *
 * weather_fetch needs the HTTP client and is not called: its one call out
 * (http_request_start) is stubbed below.
 *
 * Build: tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/weather.h"

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz_weather: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* weather_fetch (not called here) needs the HTTP client: a stub, weak so
 * that linking the real store/http.c instead also works. */
__attribute__((weak)) int http_request_start(struct http_client *c, const struct http_request *req,
                                             http_cb cb, void *privdata)
{
    (void)c;
    (void)req;
    (void)cb;
    (void)privdata;
    abort();
}

/* store/weather.c's own sentence buffer (on_weather) */
#define SERVICE_OUT (200 + 96)

static void check_sentence(const char *s)
{
    static const char head[] = "Currently ", mid[] = " degrees and ", tail[] = " in Austin, TX";
    size_t n = strlen(s);
    const char *t, *m, *text;
    char *end;
    double v;

    CHECK(n > strlen(head) + strlen(mid) + strlen(tail));
    CHECK(!memcmp(s, head, strlen(head)));
    CHECK(!strcmp(s + n - strlen(tail), tail));
    t = s + strlen(head);
    m = strstr(t, mid);
    CHECK(m != NULL && m > t);
    v = strtod(t, &end);
    CHECK(end == m);
    CHECK(isfinite(v) && fabs(v) <= 1000.0);
    CHECK(t[0] != '+' && !(t[0] == '-' && v == 0.0)); /* -0 prints as 0 */
    if (memchr(t, '.', (size_t)(m - t)) && !memchr(t, 'e', (size_t)(m - t)))
        CHECK(m[-1] != '0' && m[-1] != '.');
    text = m + strlen(mid);
    CHECK(text < s + n - strlen(tail));
    CHECK((size_t)(s + n - strlen(tail) - text) <= 200);
    for (const char *p = text; p < s + n - strlen(tail); p++)
        CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t out_size, len;
    char *json, *out, big[4096], why_copy[256] = "";
    const char *why = NULL, *why_big = NULL;
    int rc, rc_big;

    if (size < 1)
        return 0;
    out_size = data[0] ? data[0] : SERVICE_OUT;
    len = size - 1;
    json = malloc(len ? len : 1);
    out = malloc(out_size);
    CHECK(json && out);
    memcpy(json, data + 1, len);
    memset(out, 0xa5, out_size);

    rc = weather_parse(json, len, out, out_size, &why);
    CHECK(rc == 0 || rc == -1);
    CHECK(memchr(out, '\0', out_size) != NULL);
    if (rc == 0) {
        check_sentence(out);
    } else {
        CHECK(why != NULL && why[0] != '\0');
        CHECK(out[0] == '\0');
        /* the reason may live in a buffer the next call reuses */
        snprintf(why_copy, sizeof why_copy, "%s", why);
    }

    rc_big = weather_parse(json, len, big, sizeof big, &why_big);
    if (rc == 0) {
        CHECK(rc_big == 0 && strcmp(out, big) == 0);
    } else if (!strcmp(why_copy, "answer does not fit the output buffer")) {
        CHECK(out_size != SERVICE_OUT);
        CHECK(rc_big == 0 && strlen(big) >= out_size);
    } else {
        CHECK(rc_big == -1 && strcmp(why_copy, why_big) == 0);
    }
    if (rc_big == 0)
        CHECK(strlen(big) < SERVICE_OUT);
    CHECK(weather_parse(json, len, big, sizeof big, NULL) == rc_big);

    /* a code taken from the input, and its neighbours */
    if (len >= 2) {
        int code = (int)((unsigned)data[1] | (unsigned)data[2 % size] << 8) - 1000;

        for (int c = code - 1; c <= code + 1; c++) {
            const char *text = weather_code_text(c);

            CHECK(text == NULL || text[0] != '\0');
            if (c < 0 || c > 99)
                CHECK(text == NULL);
        }
    }

    free(out);
    free(json);
    return 0;
}
