/*
 * tests/fuzz/fuzz_weather.c — libFuzzer target for the weather answer
 * parser, weather_parse and weather_code_text (store/weather.c): what the
 * weather service sends goes through it.
 *
 * Input layout: byte 0 = flags (bit 0: the first call gets no reason
 * pointer; the others are ignored); the rest is the answer, handed over as
 * an exact-size heap copy without a NUL (ASan catches a read past it; the
 * report is a heap copy of its exact size too).
 * Checked, abort() on violation:
 *   - success: the temperature a plain number within +-1000, printed
 *     without trailing zeros in its fraction and without a sign on zero;
 *     the conditions non-blank, printable, at most WEATHER_MAX_TEXT_BYTES;
 *     both NUL-terminated inside their fields;
 *   - failure: -1 with a non-empty reason, and the report all zero;
 *   - the same answer gives the same result again (report and reason), and
 *     a NULL reason pointer is accepted;
 *   - weather_code_text gives NULL or a non-empty string for any code, and
 *     NULL outside 0..99.
 * The rest of store/weather.c (the backend) is not called, but it is linked
 * with what it needs (store/op.c, breaker.c, http.c, result.c; libcurl,
 * libev): see run.sh.
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

static void check_report(const struct weather_report *w)
{
    const char *t = w->temperature, *c = w->conditions;
    size_t tl, cl;
    char *end;
    double v;

    CHECK(memchr(t, '\0', sizeof w->temperature) != NULL);
    CHECK(memchr(c, '\0', sizeof w->conditions) != NULL);
    tl = strlen(t);
    cl = strlen(c);
    CHECK(tl > 0 && strspn(t, "-0123456789.e+") == tl);
    v = strtod(t, &end);
    CHECK(*end == '\0');
    CHECK(isfinite(v) && fabs(v) <= 1000.0);
    CHECK(t[0] != '+' && !(t[0] == '-' && v == 0.0)); /* -0 prints as 0 */
    if (strchr(t, '.') && !strchr(t, 'e'))
        CHECK(t[tl - 1] != '0' && t[tl - 1] != '.');
    CHECK(cl > 0 && cl <= WEATHER_MAX_TEXT_BYTES);
    CHECK(strspn(c, " ") < cl);
    for (size_t i = 0; i < cl; i++)
        CHECK((unsigned char)c[i] >= 0x20 && c[i] != 0x7f);
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct weather_report *w, again;
    char why_copy[256] = "";
    const char *why = NULL, *why2 = NULL;
    size_t len;
    char *json;
    int rc, rc2;

    if (size < 1)
        return 0;
    len = size - 1;
    json = malloc(len ? len : 1);
    w = malloc(sizeof *w);
    CHECK(json && w);
    memcpy(json, data + 1, len);
    memset(w, 0xa5, sizeof *w);

    rc = weather_parse(json, len, w, data[0] & 1 ? NULL : &why);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        check_report(w);
    } else {
        CHECK(all_zero(w, sizeof *w));
        if (!(data[0] & 1)) {
            CHECK(why != NULL && why[0] != '\0');
            /* the reason may live in a buffer the next call reuses */
            snprintf(why_copy, sizeof why_copy, "%s", why);
        }
    }

    rc2 = weather_parse(json, len, &again, &why2);
    CHECK(rc2 == rc);
    if (rc == 0)
        CHECK(memcmp(&again, w, sizeof again) == 0);
    else if (!(data[0] & 1))
        CHECK(strcmp(why_copy, why2) == 0);

    /* a code taken from the input, and its neighbours */
    if (len >= 2) {
        int code = (int)((unsigned)data[1] | (unsigned)data[2] << 8) - 1000;

        for (int c = code - 1; c <= code + 1; c++) {
            const char *text = weather_code_text(c);

            CHECK(text == NULL || text[0] != '\0');
            if (c < 0 || c > 99)
                CHECK(text == NULL);
        }
    }

    free(w);
    free(json);
    return 0;
}
