/* tests/unit/test_json.c — json_append_string: what is copied, what is
 * escaped, and that the output is JSON (cJSON reads back the input, or
 * the input with U+FFFD for its invalid bytes). */
#include "tests/unit/unit.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

struct json_case {
    const char *in;
    size_t len;        /* 0: strlen */
    const char *out;   /* the JSON text written */
    const char *value; /* what a JSON reader gets back (NULL: in itself) */
};

static const struct json_case cases[] = {
    {"", 0, "\"\"", NULL},
    {"/api/v1/flanders", 0, "\"/api/v1/flanders\"", NULL},
    {"a\"b", 0, "\"a\\\"b\"", NULL},
    {"a\\b", 0, "\"a\\\\b\"", NULL},
    {"\n\r\t\b\f", 0, "\"\\n\\r\\t\\b\\f\"", NULL},
    {"\x01\x1f\x7f", 0, "\"\\u0001\\u001f\\u007f\"", NULL},
    {"a\0b", 3, "\"a\\u0000b\"", NULL},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
     NULL},
    /* not UTF-8: each bad byte is U+FFFD, the rest is kept */
    {"a\xff" "b", 0, "\"a\\ufffdb\"", "a\xef\xbf\xbd" "b"},
    {"\xc3", 0, "\"\\ufffd\"", "\xef\xbf\xbd"},                   /* cut at the end */
    {"\xc3(", 0, "\"\\ufffd(\"", "\xef\xbf\xbd("},                /* bad continuation */
    {"\xc0\xaf", 0, "\"\\ufffd\\ufffd\"", "\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong */
    {"\xed\xa0\x80", 0, "\"\\ufffd\\ufffd\\ufffd\"",                /* a surrogate */
     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\x80\xc3\xa9", 0, "\"\\ufffd\xc3\xa9\"", "\xef\xbf\xbd\xc3\xa9"}, /* stray, then é */
};

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct json_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        struct buf b = {NULL, 0, 0};
        cJSON *doc;
        char *text;

        CU_ASSERT_EQUAL_FATAL(json_append_string(&b, c->in, len), 0);
        CU_ASSERT_EQUAL(b.len, strlen(c->out));
        CU_ASSERT(b.len == strlen(c->out) && memcmp(b.data, c->out, b.len) == 0);
        text = strndup((const char *)b.data, b.len);
        doc = cJSON_Parse(text);
        CU_ASSERT_PTR_NOT_NULL(doc);
        if (doc && !c->len) { /* (cJSON's strings end at a NUL) */
            CU_ASSERT(cJSON_IsString(doc));
            CU_ASSERT_STRING_EQUAL(doc->valuestring, c->value ? c->value : c->in);
        }
        cJSON_Delete(doc);
        free(text);
        buf_free(&b);
    }
}

static void test_null_and_appending(void)
{
    struct buf b = {NULL, 0, 0};

    CU_ASSERT_EQUAL(json_append_string(&b, NULL, 0), 0);
    CU_ASSERT_EQUAL(json_append_string(&b, ",", 1), 0);
    CU_ASSERT(b.len == 7 && memcmp(b.data, "null\",\"", 7) == 0);
    buf_free(&b);
}

/* Every byte value, alone and after a valid character: always JSON. */
static void test_every_byte(void)
{
    for (int c = 0; c < 256; c++) {
        char in[3] = {(char)c, 'x', 0};
        struct buf b = {NULL, 0, 0};
        cJSON *doc;
        char *text;

        CU_ASSERT_EQUAL(json_append_string(&b, in, 2), 0);
        text = strndup((const char *)b.data, b.len);
        doc = cJSON_Parse(text);
        CU_ASSERT_PTR_NOT_NULL(doc);
        cJSON_Delete(doc);
        free(text);
        buf_free(&b);
    }
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"escapes, UTF-8 kept, invalid bytes replaced", test_cases},
        {"NULL is null; strings append", test_null_and_appending},
        {"every byte value gives JSON", test_every_byte},
        {NULL, NULL},
    };
    return unit_run("json", tests, 60);
}
