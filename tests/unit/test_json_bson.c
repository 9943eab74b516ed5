/*
 * tests/unit/test_json_bson.c — JSON text <-> BSON conversion (store/json_bson).
 *
 * Most checks store a JSON text under "content", render it back and compare
 * the compact text exactly (stricter than comparing parsed values), and
 * check the BSON type chosen for numbers.
 */
#include "tests/unit/unit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/json_bson.h"

/* Parses json (explicit length) into a fresh doc; 0 or -1, err filled. */
static int parse_len(const char *json, size_t len, bson_t *doc, char *err, size_t err_size)
{
    bson_init(doc);
    return json_to_bson_value(json, len, doc, "content", err, err_size);
}

/* Round trip: returns the rendered text of "content" (malloc'd) or NULL. */
static char *round_trip_len(const char *json, size_t len, bson_type_t *type)
{
    bson_t doc;
    bson_iter_t it;
    char err[128];
    char *out = NULL;
    size_t out_len = 0;

    if (parse_len(json, len, &doc, err, sizeof err) != 0) {
        fprintf(stderr, "\n  unexpected parse error for %s: %s\n", json, err);
        bson_destroy(&doc);
        return NULL;
    }
    if (bson_iter_init_find(&it, &doc, "content")) {
        if (type)
            *type = bson_iter_type(&it);
        out = bson_value_to_json(&it, &out_len);
        if (out && out_len != strlen(out) && !memchr(out, '\0', out_len)) {
            free(out);
            out = NULL;
        }
    }
    bson_destroy(&doc);
    return out;
}

static char *round_trip(const char *json, bson_type_t *type)
{
    return round_trip_len(json, strlen(json), type);
}

/* json must come back as expected (NULL expected: same as input). */
static void check_rt(const char *json, const char *expected, bson_type_t want_type)
{
    bson_type_t type = BSON_TYPE_EOD;
    char *out = round_trip(json, &type);

    if (!expected)
        expected = json;
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    if (strcmp(out, expected) != 0)
        fprintf(stderr, "\n  %s -> %s (expected %s)\n", json, out, expected);
    CU_ASSERT_STRING_EQUAL(out, expected);
    if (want_type != BSON_TYPE_EOD)
        CU_ASSERT_EQUAL(type, want_type);
    free(out);
}

/* json must be refused with exactly this message; doc left empty. */
static void check_err_len(const char *json, size_t len, const char *message)
{
    bson_t doc;
    char err[128];
    int rc = parse_len(json, len, &doc, err, sizeof err);

    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(bson_count_keys(&doc), 0);
    if (rc == -1 && strcmp(err, message) != 0)
        fprintf(stderr, "\n  %s -> \"%s\" (expected \"%s\")\n", json, err, message);
    CU_ASSERT_STRING_EQUAL(err, message);
    bson_destroy(&doc);
}

static void check_err(const char *json, const char *message)
{
    check_err_len(json, strlen(json), message);
}

static void test_every_type(void)
{
    check_rt("{\"s\":\"x\",\"i\":1,\"l\":5000000000,\"d\":1.5,\"t\":true,\"f\":false,\"n\":null,"
             "\"a\":[1,\"two\",3.25,null],\"o\":{\"k\":\"v\"}}",
             NULL, BSON_TYPE_DOCUMENT);
    check_rt("\"just a string\"", NULL, BSON_TYPE_UTF8);
    check_rt("42", NULL, BSON_TYPE_INT32);
    check_rt("true", NULL, BSON_TYPE_BOOL);
    check_rt("false", NULL, BSON_TYPE_BOOL);
    check_rt("null", NULL, BSON_TYPE_NULL);
    check_rt("[]", NULL, BSON_TYPE_ARRAY);
    check_rt("{}", NULL, BSON_TYPE_DOCUMENT);
    /* whitespace is not kept: output is compact */
    check_rt(" { \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } }\r\n", "{\"a\":[1,2],\"b\":{}}",
             BSON_TYPE_DOCUMENT);
}

static void test_nested_and_order(void)
{
    check_rt("{\"z\":1,\"a\":2,\"m\":{\"y\":[{\"q\":[[[]]]},{}],\"b\":{\"c\":{\"d\":\"e\"}}}}", NULL,
             BSON_TYPE_DOCUMENT);
    check_rt("[[1,[2,[3,[4]]]],{\"a\":[{\"b\":[]}]}]", NULL, BSON_TYPE_ARRAY);
    /* duplicate keys: every occurrence, in order */
    check_rt("{\"a\":1,\"a\":2}", NULL, BSON_TYPE_DOCUMENT);
    /* empty key is a key */
    check_rt("{\"\":1}", NULL, BSON_TYPE_DOCUMENT);
    /* keys with escapes are decoded and re-escaped */
    check_rt("{\"a\\\"b\\\\c\\u00e9\":1}", "{\"a\\\"b\\\\c\xc3\xa9\":1}", BSON_TYPE_DOCUMENT);
}

static void test_unicode(void)
{
    /* \u escapes, BMP and astral (surrogate pair), become raw UTF-8 */
    check_rt("\"\\u00e9\\u4E2D\\ud83d\\ude00\"", "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"",
             BSON_TYPE_UTF8);
    /* raw UTF-8 passes unchanged */
    check_rt("\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"", NULL, BSON_TYPE_UTF8);
    /* simple escapes and control characters */
    check_rt("\"\\b\\f\\n\\r\\t\\/\\u0001\\u001f\"", "\"\\b\\f\\n\\r\\t/\\u0001\\u001f\"",
             BSON_TYPE_UTF8);
    /* NUL inside a string survives, with its length */
    {
        bson_t doc;
        bson_iter_t it;
        char err[128];
        uint32_t n = 0;
        const char *s;

        CU_ASSERT_EQUAL_FATAL(parse_len("\"a\\u0000b\"", 10, &doc, err, sizeof err), 0);
        CU_ASSERT_FATAL(bson_iter_init_find(&it, &doc, "content"));
        s = bson_iter_utf8(&it, &n);
        CU_ASSERT_EQUAL(n, 3);
        CU_ASSERT(memcmp(s, "a\0b", 3) == 0);
        bson_destroy(&doc);
    }
    check_rt("{\"k\":\"a\\u0000b\"}", NULL, BSON_TYPE_DOCUMENT);
    /* lone surrogates, bad escapes, invalid raw UTF-8, raw control chars */
    check_err("\"\\ud800\"", "not JSON: error near byte 1");
    check_err("\"\\udc00\"", "not JSON: error near byte 1");
    check_err("\"\\q\"", "not JSON: error near byte 1");
    check_err("\"a\xff\"", "not JSON: invalid UTF-8 near byte 0");
    check_err("[\"ok\",\"\xc3\"]", "not JSON: invalid UTF-8 near byte 6");
    /* the overlong NUL (which libbson's check lets by) and a raw surrogate */
    check_err("\"n\xc0\x80\"", "not JSON: invalid UTF-8 near byte 0");
    check_err("\"\xed\xa0\x80\"", "not JSON: invalid UTF-8 near byte 0");
    check_err("\"a\tb\"", "not JSON: error near byte 2");
    check_err_len("\"a\0b\"", 5, "not JSON: error near byte 2");
    /* a key with NUL cannot be a BSON key */
    check_err("{\"a\\u0000\":1}", "JSON object key with \\u0000 near byte 1 cannot be stored");
}

static void test_integers(void)
{
    check_rt("0", NULL, BSON_TYPE_INT32);
    check_rt("-0", "0", BSON_TYPE_INT32);
    check_rt("2147483647", NULL, BSON_TYPE_INT32);
    check_rt("-2147483648", NULL, BSON_TYPE_INT32);
    check_rt("2147483648", NULL, BSON_TYPE_INT64);
    check_rt("-2147483649", NULL, BSON_TYPE_INT64);
    check_rt("9007199254740993", NULL, BSON_TYPE_INT64); /* 2^53+1: not a double */
    check_rt("-9007199254740993", NULL, BSON_TYPE_INT64);
    check_rt("9223372036854775807", NULL, BSON_TYPE_INT64); /* INT64_MAX */
    check_rt("-9223372036854775808", NULL, BSON_TYPE_INT64); /* INT64_MIN */
    /* beyond int64: doubles */
    check_rt("9223372036854775808", "9.223372036854776e+18", BSON_TYPE_DOUBLE);
    check_rt("-9223372036854775809", "-9.223372036854776e+18", BSON_TYPE_DOUBLE);
    check_rt("18446744073709551616", "1.8446744073709552e+19", BSON_TYPE_DOUBLE); /* 2^64 */
    check_rt("123456789012345678901234567890", "1.2345678901234568e+29", BSON_TYPE_DOUBLE);
    check_rt("[1,-1,2147483648,9007199254740993]", NULL, BSON_TYPE_ARRAY);
}

static void test_doubles(void)
{
    check_rt("0.1", NULL, BSON_TYPE_DOUBLE);
    check_rt("1.5", NULL, BSON_TYPE_DOUBLE);
    check_rt("-2.25", NULL, BSON_TYPE_DOUBLE);
    check_rt("3.141592653589793", NULL, BSON_TYPE_DOUBLE);
    check_rt("0.30000000000000004", NULL, BSON_TYPE_DOUBLE); /* needs 17 digits */
    check_rt("1.0", NULL, BSON_TYPE_DOUBLE);                  /* stays a double */
    check_rt("100.000", "100.0", BSON_TYPE_DOUBLE);
    check_rt("-0.0", NULL, BSON_TYPE_DOUBLE); /* negative zero keeps its sign */
    /* exponents */
    check_rt("1e5", "100000.0", BSON_TYPE_DOUBLE);
    check_rt("2E+3", "2000.0", BSON_TYPE_DOUBLE);
    check_rt("-1.5e-3", "-0.0015", BSON_TYPE_DOUBLE);
    check_rt("1e-7", "1e-07", BSON_TYPE_DOUBLE);
    check_rt("1.7976931348623157e308", "1.7976931348623157e+308", BSON_TYPE_DOUBLE);
    check_rt("5e-324", "4.94065645841247e-324", BSON_TYPE_DOUBLE);
    check_rt("1e22", "1e+22", BSON_TYPE_DOUBLE);
    /* overflow to infinity: stored, rendered as null */
    check_rt("1e999", "null", BSON_TYPE_DOUBLE);
    check_rt("-1e999", "null", BSON_TYPE_DOUBLE);
    /* each rendered double parses back to the same double */
    {
        const char *cases[] = {"0.1", "0.2", "1e-300", "123.456", "2.5e-5", "6.02214076e23"};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char *out = round_trip(cases[i], NULL);
            CU_ASSERT_PTR_NOT_NULL_FATAL(out);
            CU_ASSERT_EQUAL(strtod(out, NULL), strtod(cases[i], NULL));
            free(out);
        }
    }
}

static void test_invalid_json(void)
{
    check_err("", "not JSON: error near byte 0");
    check_err("   ", "not JSON: error near byte 2");
    check_err("[1,2,", "not JSON: error near byte 4");
    check_err("{\"a\" 1}", "not JSON: error near byte 5");
    check_err("{\"a\":}", "not JSON: error near byte 5");
    check_err("[1,]", "not JSON: error near byte 3");
    check_err("nul", "not JSON: error near byte 0");
    check_err("'x'", "not JSON: error near byte 0");
    check_err("\"unterminated", "not JSON: error near byte 1");
    check_err("NaN", "not JSON: error near byte 0");
    check_err("-", "not JSON: error near byte 0");
    check_err(".5", "not JSON: error near byte 0");
    /* what cJSON lets through and JSON does not */
    check_err("01", "not JSON: error near byte 1");
    check_err("[1, -012]", "not JSON: error near byte 6");
    check_err("1.", "not JSON: error near byte 2");
    check_err("[1.e5]", "not JSON: error near byte 3");
    /* control characters between tokens: cJSON skips every byte up to
     * 0x20 as whitespace, JSON allows only space, tab, CR and LF
     * (found by tests/fuzz/fuzz_json_bson.c) */
    check_err("[1,\v2]", "not JSON: error near byte 3");
    check_err("\f{}", "not JSON: error near byte 0");
    check_err("{\"a\":\x01" "1}", "not JSON: error near byte 5");
    check_err_len("[\0 1]", 5, "not JSON: error near byte 1");
    check_err_len("[1\0]", 4, "not JSON: error near byte 2");
    check_rt("[ 1,\t2\r\n]", "[1,2]", BSON_TYPE_ARRAY);
    /* one UTF-8 byte order mark may open the text, however short the
     * value after it (cJSON skipped it only before 2 or more bytes) */
    check_rt("\xef\xbb\xbf{\"a\":1}", "{\"a\":1}", BSON_TYPE_DOCUMENT);
    check_rt("\xef\xbb\xbf" "7", "7", BSON_TYPE_INT32);
    check_rt("\xef\xbb\xbf 7", "7", BSON_TYPE_INT32);
    check_err("\xef\xbb\xbf\xef\xbb\xbf[1]", "not JSON: error near byte 3");
    check_err("\xef\xbb\xbf", "not JSON: error near byte 3");
    check_err("[\xef\xbb\xbf" "1]", "not JSON: error near byte 1");
    /* trailing garbage after a valid value */
    check_err("{} x", "not JSON: error near byte 3");
    check_err("[1] [2]", "not JSON: error near byte 4");
    check_err("true false", "not JSON: error near byte 5");
    check_err_len("{}\0", 3, "not JSON: error near byte 2");
    /* a length shorter than the string: only that prefix is the text */
    check_err_len("[1,2]", 4, "not JSON: error near byte 3");
    /* trailing whitespace is fine */
    check_rt("{}  \n\t\r ", "{}", BSON_TYPE_DOCUMENT);
    /* NULL text */
    {
        bson_t doc;
        char err[64];
        bson_init(&doc);
        CU_ASSERT_EQUAL(json_to_bson_value(NULL, 0, &doc, "content", err, sizeof err), -1);
        bson_destroy(&doc);
    }
}

static char *nested(int levels, char open, char close)
{
    char *s = malloc((size_t)levels * 2 + 1);
    for (int i = 0; i < levels; i++) {
        s[i] = open;
        s[levels * 2 - 1 - i] = close;
    }
    s[levels * 2] = '\0';
    return s;
}

static void test_depth(void)
{
    char *ok = nested(JSON_BSON_MAX_DEPTH, '[', ']');
    char *deep = nested(JSON_BSON_MAX_DEPTH + 1, '[', ']');
    char *hostile = nested(200000, '[', ']');
    char *out;

    out = round_trip(ok, NULL);
    CU_ASSERT_PTR_NOT_NULL(out);
    if (out)
        CU_ASSERT_STRING_EQUAL(out, ok);
    free(out);
    check_err(deep, "JSON nested deeper than 64 levels");
    check_err(hostile, "JSON nested deeper than 64 levels");
    /* objects count too; brackets inside strings do not */
    {
        char buf[1024] = "";
        for (int i = 0; i < JSON_BSON_MAX_DEPTH + 1; i++)
            strcat(buf, "{\"a\":");
        strcat(buf, "1");
        for (int i = 0; i < JSON_BSON_MAX_DEPTH + 1; i++)
            strcat(buf, "}");
        check_err(buf, "JSON nested deeper than 64 levels");
    }
    check_rt("[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[\"]",
             NULL, BSON_TYPE_ARRAY);
    free(ok);
    free(deep);
    free(hostile);
}

static void test_failure_leaves_doc(void)
{
    bson_t doc;
    bson_iter_t it;
    char err[64];

    bson_init(&doc);
    BSON_APPEND_UTF8(&doc, "name", "homer");
    /* fails deep inside, after some content was converted */
    CU_ASSERT_EQUAL(json_to_bson_value("{\"a\":[1,2,{\"b\":01}]}", 20, &doc, "content", err,
                                       sizeof err), -1);
    CU_ASSERT_EQUAL(bson_count_keys(&doc), 1);
    CU_ASSERT_FALSE(bson_iter_init_find(&it, &doc, "content"));
    /* and then a good one appends */
    CU_ASSERT_EQUAL(json_to_bson_value("[1]", 3, &doc, "content", err, sizeof err), 0);
    CU_ASSERT_EQUAL(bson_count_keys(&doc), 2);
    /* a tiny error buffer is not overrun */
    CU_ASSERT_EQUAL(json_to_bson_value("[", 1, &doc, "x", err, 5), -1);
    CU_ASSERT_STRING_EQUAL(err, "not ");
    bson_destroy(&doc);
}

static void test_render_other_types(void)
{
    bson_t doc, child;
    bson_iter_t it;
    bson_oid_t oid;
    char *out;
    size_t n;

    bson_init(&doc);
    bson_oid_init_from_string(&oid, "0123456789abcdef01234567");
    BSON_APPEND_OID(&doc, "oid", &oid);
    BSON_APPEND_DOUBLE(&doc, "nan", NAN);
    BSON_APPEND_DOUBLE(&doc, "inf", INFINITY);
    bson_append_utf8(&doc, "bad", 3, "a\xff", 2); /* libbson does not check */
    bson_append_utf8(&doc, "nul2", 4, "a\xc0\x80", 3); /* the overlong NUL */
    BSON_APPEND_DOCUMENT_BEGIN(&doc, "d", &child);
    BSON_APPEND_INT64(&child, "x", 7);
    bson_append_document_end(&doc, &child);

    CU_ASSERT_FATAL(bson_iter_init_find(&it, &doc, "oid"));
    out = bson_value_to_json(&it, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"$oid\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "0123456789abcdef01234567"));
    CU_ASSERT_EQUAL(out[0], '{');
    CU_ASSERT_EQUAL(out[n - 1], '}');
    free(out);

    CU_ASSERT_FATAL(bson_iter_init_find(&it, &doc, "nan"));
    out = bson_value_to_json(&it, &n);
    CU_ASSERT_STRING_EQUAL(out, "null");
    free(out);
    CU_ASSERT_FATAL(bson_iter_init_find(&it, &doc, "inf"));
    out = bson_value_to_json(&it, &n);
    CU_ASSERT_STRING_EQUAL(out, "null");
    free(out);

    /* invalid UTF-8 stored by someone else: refused, not passed on */
    CU_ASSERT_FATAL(bson_iter_init_find(&it, &doc, "bad"));
    CU_ASSERT_PTR_NULL(bson_value_to_json(&it, &n));
    CU_ASSERT_FATAL(bson_iter_init_find(&it, &doc, "nul2"));
    CU_ASSERT_PTR_NULL(bson_value_to_json(&it, &n));

    CU_ASSERT_FATAL(bson_iter_init_find(&it, &doc, "d"));
    out = bson_value_to_json(&it, &n);
    CU_ASSERT_STRING_EQUAL(out, "{\"x\":7}");
    CU_ASSERT_EQUAL(n, 7);
    free(out);

    /* no iterator */
    CU_ASSERT_PTR_NULL(bson_value_to_json(NULL, &n));
    bson_destroy(&doc);
}

static void test_render_too_deep(void)
{
    /* build BSON nested beyond the render limit directly */
    bson_t docs[JSON_BSON_MAX_RENDER_DEPTH + 2];
    bson_iter_t it;
    size_t n;
    int levels = JSON_BSON_MAX_RENDER_DEPTH + 1;

    bson_init(&docs[0]);
    for (int i = 0; i < levels; i++)
        bson_append_array_begin(&docs[i], "a", 1, &docs[i + 1]);
    for (int i = levels - 1; i >= 0; i--)
        bson_append_array_end(&docs[i], &docs[i + 1]);
    CU_ASSERT_FATAL(bson_iter_init_find(&it, &docs[0], "a"));
    CU_ASSERT_PTR_NULL(bson_value_to_json(&it, &n));
    bson_destroy(&docs[0]);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"every type", test_every_type},
        {"nested, key order, duplicates", test_nested_and_order},
        {"unicode and NUL", test_unicode},
        {"integers exact", test_integers},
        {"doubles round-trip", test_doubles},
        {"invalid JSON with position", test_invalid_json},
        {"depth limit", test_depth},
        {"failure leaves doc", test_failure_leaves_doc},
        {"render other BSON types", test_render_other_types},
        {"render depth limit", test_render_too_deep},
        {NULL, NULL},
    };

    return unit_run("json_bson", tests, 300);
}
