/*
 * tests/unit/test_weather.c — weather_parse: both answer shapes, string
 * and number temperatures, every WMO group, and each way an answer can be
 * wrong, each with the reason it must give.  The sentence a good answer
 * makes is maggie's (routes/maggie.c), checked here with it.
 */
#include "tests/unit/unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes/handlers.h"
#include "store/weather.h"

/* Parses s; on success compares the sentence, on failure the reason's
 * beginning (expect_why), so every negative case proves *which* check hit. */
static void check(const char *json, const char *expect_out, const char *expect_why)
{
    struct weather_report report;
    char out[512];
    const char *why = NULL;
    int rc = weather_parse(json, strlen(json), &report, &why);

    if (expect_out) {
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0)
            fprintf(stderr, "\n  unexpected failure for %.80s: %s\n", json, why);
        maggie_sentence(&report, out, sizeof out);
        CU_ASSERT_STRING_EQUAL(out, expect_out);
    } else {
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_STRING_EQUAL(report.temperature, "");
        CU_ASSERT_STRING_EQUAL(report.conditions, "");
        CU_ASSERT_PTR_NOT_NULL_FATAL(why);
        CU_ASSERT_NSTRING_EQUAL(why, expect_why, strlen(expect_why));
        if (strncmp(why, expect_why, strlen(expect_why)) != 0)
            fprintf(stderr, "\n  why = \"%s\", expected \"%s...\"\n", why, expect_why);
    }
}

#define YAHOO(cond) "{\"query\":{\"results\":{\"channel\":{\"item\":{\"condition\":" cond "}}}}}"
#define CW(t, c) "{\"current_weather\":{\"temperature\":" t ",\"weathercode\":" c "}}"
#define CUR(t, c) "{\"current\":{\"temperature_2m\":" t ",\"weather_code\":" c "}}"

static void test_yahoo_shape(void)
{
    check(YAHOO("{\"temp\":\"72\",\"text\":\"Sunny\"}"),
          "Currently 72 degrees and Sunny in Austin, TX", NULL);
    check(YAHOO("{\"temp\":72,\"text\":\"Sunny\"}"),
          "Currently 72 degrees and Sunny in Austin, TX", NULL);
    check(YAHOO("{\"temp\":\"71.5\",\"text\":\"Partly Cloudy\"}"),
          "Currently 71.5 degrees and Partly Cloudy in Austin, TX", NULL);
    check(YAHOO("{\"temp\":\" -3 \",\"text\":\"Snow\"}"),
          "Currently -3 degrees and Snow in Austin, TX", NULL);
    /* extra fields and whitespace around the document are fine */
    check("  {\"query\":{\"count\":1,\"results\":{\"channel\":{\"item\":{\"condition\":"
          "{\"code\":\"32\",\"temp\":\"72\",\"text\":\"Sunny\"}}}}}}\n",
          "Currently 72 degrees and Sunny in Austin, TX", NULL);
}

static void test_open_meteo_shapes(void)
{
    check(CW("21.3", "3"), "Currently 21.3 degrees and Overcast in Austin, TX", NULL);
    check(CW("20.0", "0"), "Currently 20 degrees and Clear sky in Austin, TX", NULL);
    check(CW("-0.0", "1"), "Currently 0 degrees and Mainly clear in Austin, TX", NULL);
    check(CW("-5.5", "2"), "Currently -5.5 degrees and Partly cloudy in Austin, TX", NULL);
    check(CW("\"21.3\"", "\"3\""), "Currently 21.3 degrees and Overcast in Austin, TX",
          NULL);
    check(CUR("18.25", "61"), "Currently 18.25 degrees and Slight rain in Austin, TX", NULL);
    check(CUR("30", "95"), "Currently 30 degrees and Thunderstorm in Austin, TX", NULL);
    /* the real answer carries more fields; both objects present: "current" wins
     * when it has the temperature, else current_weather */
    check("{\"latitude\":30.27,\"current_weather\":{\"time\":\"2026-11-26T09:00\","
          "\"interval\":900,\"temperature\":21.3,\"windspeed\":7.2,\"is_day\":1,"
          "\"weathercode\":3}}",
          "Currently 21.3 degrees and Overcast in Austin, TX", NULL);
    check("{\"current\":{\"temperature_2m\":10,\"weather_code\":45},"
          "\"current_weather\":{\"temperature\":99,\"weathercode\":0}}",
          "Currently 10 degrees and Fog in Austin, TX", NULL);
    check("{\"current\":{\"time\":\"x\"},"
          "\"current_weather\":{\"temperature\":12,\"weathercode\":0}}",
          "Currently 12 degrees and Clear sky in Austin, TX", NULL);
}

static void test_wmo_groups(void)
{
    static const struct {
        int code;
        const char *text;
    } cases[] = {
        {0, "Clear sky"},          {1, "Mainly clear"},
        {2, "Partly cloudy"},      {3, "Overcast"},
        {45, "Fog"},               {48, "Depositing rime fog"},
        {51, "Light drizzle"},     {53, "Moderate drizzle"},
        {55, "Dense drizzle"},     {56, "Light freezing drizzle"},
        {57, "Dense freezing drizzle"}, {61, "Slight rain"},
        {63, "Moderate rain"},     {65, "Heavy rain"},
        {66, "Light freezing rain"}, {67, "Heavy freezing rain"},
        {71, "Slight snow fall"},  {73, "Moderate snow fall"},
        {75, "Heavy snow fall"},   {77, "Snow grains"},
        {80, "Slight rain showers"}, {81, "Moderate rain showers"},
        {82, "Violent rain showers"}, {85, "Slight snow showers"},
        {86, "Heavy snow showers"}, {95, "Thunderstorm"},
        {96, "Thunderstorm with slight hail"}, {99, "Thunderstorm with heavy hail"},
    };
    char json[128], expect[128];
    size_t i;
    int known = 0, code;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *text = weather_code_text(cases[i].code);

        CU_ASSERT_PTR_NOT_NULL(text);
        if (text)
            CU_ASSERT_STRING_EQUAL(text, cases[i].text);
        snprintf(json, sizeof json, CW("15", "%d"), cases[i].code);
        snprintf(expect, sizeof expect, "Currently 15 degrees and %s in Austin, TX",
                 cases[i].text);
        check(json, expect, NULL);
    }
    /* exactly the documented codes are known */
    for (code = -5; code < 300; code++)
        if (weather_code_text(code))
            known++;
    CU_ASSERT_EQUAL(known, (int)(sizeof cases / sizeof cases[0]));
}

static void test_unknown_code(void)
{
    CU_ASSERT_PTR_NULL(weather_code_text(4));
    CU_ASSERT_PTR_NULL(weather_code_text(100));
    check(CW("15", "4"), "Currently 15 degrees and weather code 4 in Austin, TX", NULL);
    check(CUR("15", "100"), "Currently 15 degrees and weather code 100 in Austin, TX", NULL);
    check(CW("15", "3.5"), NULL, "weather code (current_weather.weathercode) is not an integer");
    check(CW("15", "-1"), NULL, "weather code (current_weather.weathercode) is out of range");
    check(CW("15", "1e9"), NULL, "weather code (current_weather.weathercode) is out of range");
}

static void test_garbage(void)
{
    struct weather_report out;
    const char *why = NULL;

    check("<html><body>Service Temporarily Unavailable</body></html>", NULL,
          "not JSON at byte 0");
    check("{\"a\":1} trailing", NULL, "not JSON at byte 8 (garbage after the value)");
    check("   ", NULL, "not JSON at byte");
    check("", NULL, "empty answer");
    check("\"Sunny\"", NULL, "answer is not a JSON object");
    check("[72,\"Sunny\"]", NULL, "answer is not a JSON object");
    check("null", NULL, "answer is not a JSON object");
    /* a NUL inside the counted bytes is not JSON either */
    CU_ASSERT_EQUAL(weather_parse("{}\0{}", 5, &out, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "not JSON at byte 2 (garbage after the value)");
    /* NULL json, no room */
    CU_ASSERT_EQUAL(weather_parse(NULL, 3, &out, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "empty answer");
    CU_ASSERT_EQUAL(weather_parse("{}", 2, NULL, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "no room for the answer");
}

static void test_truncated(void)
{
    const char *full = CW("21.3", "3");
    struct weather_report out;
    const char *why = NULL;
    size_t n;

    /* every proper prefix of a good answer is refused as "not JSON" */
    for (n = 1; n < strlen(full); n++) {
        CU_ASSERT_EQUAL(weather_parse(full, n, &out, &why), -1);
        CU_ASSERT_NSTRING_EQUAL(why, "not JSON at byte ", 17);
    }
    /* and the length is honoured: no read past len (ASan would see it) */
    {
        char *p = malloc(10);

        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        memcpy(p, "{\"temp\":72", 10);
        CU_ASSERT_EQUAL(weather_parse(p, 10, &out, &why), -1);
        CU_ASSERT_NSTRING_EQUAL(why, "not JSON at byte ", 17);
        free(p);
    }
    CU_ASSERT_EQUAL(weather_parse(full, strlen(full), &out, &why), 0);
}

static void test_wrong_types(void)
{
    check(YAHOO("{\"temp\":true,\"text\":\"Sunny\"}"), NULL,
          "temperature (query.results.channel.item.condition.temp) is not a number");
    check(YAHOO("{\"temp\":\"warm\",\"text\":\"Sunny\"}"), NULL,
          "temperature (query.results.channel.item.condition.temp) is not a number");
    check(YAHOO("{\"temp\":\"72F\",\"text\":\"Sunny\"}"), NULL,
          "temperature (query.results.channel.item.condition.temp) is not a number");
    check(YAHOO("{\"temp\":\"nan\",\"text\":\"Sunny\"}"), NULL,
          "temperature (query.results.channel.item.condition.temp) is not a number");
    check(YAHOO("{\"temp\":\"\",\"text\":\"Sunny\"}"), NULL,
          "temperature (query.results.channel.item.condition.temp) is not a number");
    check(YAHOO("{\"temp\":[72],\"text\":\"Sunny\"}"), NULL,
          "temperature (query.results.channel.item.condition.temp) is not a number");
    check(YAHOO("{\"temp\":72,\"text\":5}"), NULL,
          "condition text (query.results.channel.item.condition.text) is not a string");
    check(YAHOO("{\"temp\":72,\"text\":\"  \"}"), NULL,
          "condition text (query.results.channel.item.condition.text) is empty");
    check(YAHOO("{\"temp\":72,\"text\":\"Sun\\r\\nX-Evil: 1\"}"), NULL,
          "condition text (query.results.channel.item.condition.text) holds control");
    check(YAHOO("{\"temp\":1e308,\"text\":\"Sunny\"}"), NULL,
          "temperature (query.results.channel.item.condition.temp) is out of range");
    check("{\"query\":{\"results\":{\"channel\":{\"item\":{\"condition\":\"Sunny\"}}}}}", NULL,
          "query.results.channel.item.condition is not an object");
    check("{\"query\":[]}", NULL, "query is not an object");
    check(CW("{}", "3"), NULL, "temperature (current_weather.temperature) is not a number");
    check(CW("21", "\"cloudy\""), NULL,
          "weather code (current_weather.weathercode) is not a number");
    check(CUR("false", "3"), NULL, "temperature (current.temperature_2m) is not a number");
    check("{\"current_weather\":[21.3,3]}", NULL, "current_weather is not an object");
    check("{\"current\":\"21.3\"}", NULL, "current is not an object");
}

static void test_missing_fields(void)
{
    check("{\"query\":{\"count\":0,\"results\":null}}", NULL, "no query.results in the answer");
    check("{\"query\":{\"results\":{\"channel\":{}}}}", NULL,
          "no query.results.channel.item in the answer");
    check(YAHOO("{\"text\":\"Sunny\"}"), NULL,
          "no temperature in the answer (query.results.channel.item.condition.temp)");
    check(YAHOO("{\"temp\":null,\"text\":\"Sunny\"}"), NULL,
          "no temperature in the answer (query.results.channel.item.condition.temp)");
    check(YAHOO("{\"temp\":\"72\"}"), NULL,
          "no condition text in the answer (query.results.channel.item.condition.text)");
    check("{\"current_weather\":{\"weathercode\":3}}", NULL,
          "no temperature in the answer (current_weather.temperature)");
    check("{\"current_weather\":{\"temperature\":21.3}}", NULL,
          "no weather code in the answer (current_weather.weathercode)");
    check("{\"current\":{\"temperature_2m\":21.3}}", NULL,
          "no weather code in the answer (current.weather_code)");
    check("{\"current\":{\"time\":\"2026-11-26T09:00\"}}", NULL,
          "no temperature in the answer (current.temperature_2m)");
    check("{}", NULL, "no weather in the answer");
    check("{\"error\":true,\"reason\":\"Parameter 'latitude' is missing\"}", NULL,
          "no weather in the answer");
}

static void test_deeply_nested_garbage(void)
{
    const size_t depth = 200000;
    char *deep = malloc(2 * depth + 1);
    struct weather_report out;
    const char *why = NULL;
    size_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(deep);
    for (i = 0; i < depth; i++) {
        deep[i] = '[';
        deep[2 * depth - 1 - i] = ']';
    }
    deep[2 * depth] = '\0';
    CU_ASSERT_EQUAL(weather_parse(deep, 2 * depth, &out, &why), -1);
    CU_ASSERT_NSTRING_EQUAL(why, "not JSON at byte ", 17);
    /* objects nested just as deep, inside a plausible answer */
    for (i = 0; i < depth; i++)
        deep[i] = i % 2 ? '{' : '[';
    CU_ASSERT_EQUAL(weather_parse(deep, 2 * depth, &out, &why), -1);
    CU_ASSERT_NSTRING_EQUAL(why, "not JSON at byte ", 17);
    free(deep);
    /* moderately deep but valid JSON without our fields is "no weather" */
    check("{\"x\":[[[[[[[[[[[[[[[[[[[[{\"y\":{}}]]]]]]]]]]]]]]]]]]]]}", NULL,
          "no weather in the answer");
}

static void test_output_buffer(void)
{
    struct weather_report report;
    char small[20];
    const char *why = NULL;
    const char *json = CW("21.3", "3");
    char longtext[400];

    /* the report always fits; the sentence is cut to the buffer, terminated */
    CU_ASSERT_EQUAL(weather_parse(json, strlen(json), &report, &why), 0);
    CU_ASSERT_EQUAL(maggie_sentence(&report, small, sizeof small), sizeof small - 1);
    CU_ASSERT_STRING_EQUAL(small, "Currently 21.3 degr");
    /* an over-long condition text is refused, not truncated */
    memset(longtext, 'a', sizeof longtext);
    memcpy(longtext, YAHOO("{\"temp\":72,\"text\":\""), strlen(YAHOO("{\"temp\":72,\"text\":\"")));
    snprintf(longtext + 300, sizeof longtext - 300, "\"}}}}}}");
    check(longtext, NULL,
          "condition text (query.results.channel.item.condition.text) is longer than");
    /* why may be NULL */
    CU_ASSERT_EQUAL(weather_parse("x", 1, &report, NULL), -1);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"Yahoo shape, string and number temps", test_yahoo_shape},
        {"Open-Meteo current_weather and current", test_open_meteo_shapes},
        {"every WMO code group", test_wmo_groups},
        {"unknown and invalid weather codes", test_unknown_code},
        {"garbage", test_garbage},
        {"truncated JSON", test_truncated},
        {"wrong types", test_wrong_types},
        {"missing fields", test_missing_fields},
        {"deeply nested garbage", test_deeply_nested_garbage},
        {"output buffer limits", test_output_buffer},
        {NULL, NULL},
    };

    return unit_run("weather", tests, 300);
}
