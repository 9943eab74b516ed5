/* tests/unit/test_utf8.c — utf8_chars: counts and refusals. */
#include "tests/unit/unit.h"
#include <string.h>

#include "common/utf8.h"

struct utf8_case {
    const char *bytes;
    size_t len; /* 0: strlen */
    long chars; /* -1: invalid */
};

static const struct utf8_case cases[] = {
    {"", 0, 0},
    {"abc", 0, 3},
    {"\xc3\xa9", 0, 1},                 /* é */
    {"\xe2\x82\xac", 0, 1},             /* € */
    {"\xf0\x9f\x98\x80", 0, 1},         /* 😀 */
    {"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 0, 5},
    {"a\0b", 3, 3},                      /* NUL is a character */
    {"\xf4\x8f\xbf\xbf", 0, 1},         /* U+10FFFF */
    {"\xff", 0, -1},                     /* never valid */
    {"\x80", 0, -1},                     /* stray continuation */
    {"\xc0\xaf", 0, -1},                 /* overlong '/' */
    {"\xe0\x80\xaf", 0, -1},             /* overlong, 3 bytes */
    {"\xf0\x80\x80\xaf", 0, -1},         /* overlong, 4 bytes */
    {"\xed\xa0\x80", 0, -1},             /* surrogate U+D800 */
    {"\xf4\x90\x80\x80", 0, -1},         /* beyond U+10FFFF */
    {"\xe2\x82", 0, -1},                 /* cut short */
    {"\xc3", 0, -1},                     /* cut short at the end */
    {"\xc3\x28", 0, -1},                 /* bad continuation */
};

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct utf8_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->bytes);

        CU_ASSERT_EQUAL(utf8_chars(c->bytes, len), c->chars);
    }
}

static void test_long_text(void)
{
    static char text[4 * 1000 + 1];

    for (int i = 0; i < 1000; i++)
        memcpy(text + 4 * i, "\xf0\x9f\x98\x80", 4);
    CU_ASSERT_EQUAL(utf8_chars(text, 4000), 1000);
    CU_ASSERT_EQUAL(utf8_chars(text, 3999), -1); /* last character cut */
}

/* utf8_next: the length of the first character, 0 when it is not one. */
static void test_next(void)
{
    CU_ASSERT_EQUAL(utf8_next("", 0), 0);
    CU_ASSERT_EQUAL(utf8_next("a", 1), 1);
    CU_ASSERT_EQUAL(utf8_next("\xc3\xa9z", 3), 2);
    CU_ASSERT_EQUAL(utf8_next("\xe2\x82\xac", 3), 3);
    CU_ASSERT_EQUAL(utf8_next("\xf0\x9f\x98\x80", 4), 4);
    CU_ASSERT_EQUAL(utf8_next("\xf0\x9f\x98\x80", 3), 0); /* cut by len */
    CU_ASSERT_EQUAL(utf8_next("\x80", 1), 0);
    CU_ASSERT_EQUAL(utf8_next("\xc0\xaf", 2), 0);
    CU_ASSERT_EQUAL(utf8_next("\xed\xa0\x80", 3), 0);
    CU_ASSERT_EQUAL(utf8_next("\xc3\x28", 2), 0);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"table of valid and invalid sequences", test_cases},
        {"1000 four-byte characters", test_long_text},
        {"utf8_next: one character at a time", test_next},
        {NULL, NULL},
    };

    return unit_run("utf8", tests, 300);
}
