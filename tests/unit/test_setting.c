/* tests/unit/test_setting.c — the one parsing policy for flags and environment. */
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

#include "common/setting.h"
#include "common/buf.h"

struct number_case {
    const char *value;
    int base;
    unsigned long long min, max;
    int rc;
    unsigned long long want;
};

static const struct number_case numbers[] = {
    {"0", 10, 0, 10, 0, 0},
    {"10", 10, 0, 10, 0, 10},
    {"007", 10, 0, 10, 0, 7},
    {"0660", 8, 0, 0777, 0, 0660},
    {"18446744073709551615", 10, 0, ~0ULL, 0, ~0ULL},
    {"11", 10, 0, 10, -1, 0},     /* over the range */
    {"4", 10, 5, 10, -1, 0},      /* under it */
    {"", 10, 0, 10, -1, 0},
    {" 5", 10, 0, 10, -1, 0},     /* blank before */
    {"5 ", 10, 0, 10, -1, 0},     /* blank after */
    {"+5", 10, 0, 10, -1, 0},
    {"-1", 10, 0, ~0ULL, -1, 0},  /* strtoull would wrap it */
    {"0x10", 10, 0, 100, -1, 0},
    {"5s", 10, 0, 10, -1, 0},     /* no units */
    {"1e3", 10, 0, 10000, -1, 0},
    {"0668", 8, 0, 0777, -1, 0},  /* 8 is no octal digit */
    {"18446744073709551616", 10, 0, ~0ULL, -1, 0}, /* overflow */
};

static void test_numbers(void)
{
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        const struct number_case *c = &numbers[i];
        unsigned long long out = 12345;
        char why[SETTING_WHY_MAX] = "";
        int rc = setting_number("--n", c->value, c->base, c->min, c->max, &out, why);

        CU_ASSERT_EQUAL(rc, c->rc);
        if (rc == 0) {
            CU_ASSERT_EQUAL(out, c->want);
        } else {
            CU_ASSERT_EQUAL(out, 12345); /* untouched on refusal */
            CU_ASSERT_PTR_NOT_NULL(strstr(why, "--n"));
            CU_ASSERT_PTR_NOT_NULL(strstr(why, c->value));
        }
    }
}

static void test_port_and_bool(void)
{
    char why[SETTING_WHY_MAX];
    bool on = false;
    int port = 0;

    CU_ASSERT_EQUAL(setting_port("P", "6379", &port, why), 0);
    CU_ASSERT_EQUAL(port, 6379);
    CU_ASSERT_EQUAL(setting_port("P", "0", &port, why), -1);
    CU_ASSERT_EQUAL(setting_port("P", "65536", &port, why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not a port"));
    CU_ASSERT_EQUAL(port, 6379);

    CU_ASSERT_EQUAL(setting_bool("B", "yes", &on, why), 0);
    CU_ASSERT_TRUE(on);
    CU_ASSERT_EQUAL(setting_bool("B", "off", &on, why), 0);
    CU_ASSERT_FALSE(on);
    CU_ASSERT_EQUAL(setting_bool("B", "On", &on, why), -1); /* exact words only */
    CU_ASSERT_EQUAL(setting_bool("B", "", &on, why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "B: ''"));
}

static void test_words(void)
{
    static const char *const words[] = {"debug", "info", "warn", "error", NULL};
    char why[SETTING_WHY_MAX];
    int i = -1;

    CU_ASSERT_EQUAL(setting_word("L", "warn", words, &i, why), 0);
    CU_ASSERT_EQUAL(i, 2);
    CU_ASSERT_EQUAL(setting_word("L", "loud", words, &i, why), -1);
    CU_ASSERT_STRING_EQUAL(why, "L: 'loud' is not debug, info, warn or error");
    CU_ASSERT_EQUAL(setting_word("L", "WARN", words, &i, why), -1);
}

static void test_env(void)
{
    setenv("SF_UNIT_SETTING", "", 1);
    CU_ASSERT_PTR_NULL(setting_env("SF_UNIT_SETTING")); /* empty counts as unset */
    setenv("SF_UNIT_SETTING", "x", 1);
    CU_ASSERT_STRING_EQUAL(setting_env("SF_UNIT_SETTING"), "x");
    unsetenv("SF_UNIT_SETTING");
    CU_ASSERT_PTR_NULL(setting_env("SF_UNIT_SETTING"));
}

struct collected {
    char all[512];
    int n;
};

static const char *collect(void *arg, const char *entry)
{
    struct collected *c = arg;

    if (!strcmp(entry, "bad"))
        return "is refused";
    strcat(c->all, "[");
    strcat(c->all, entry);
    strcat(c->all, "]");
    c->n++;
    return NULL;
}

struct list_case {
    const char *value;
    int rc;
    const char *entries; /* what each() saw, for the accepted ones */
    const char *why;     /* a part of the refusal */
};

static const struct list_case lists[] = {
    {"a", 0, "[a]", NULL},
    {"a,b", 0, "[a][b]", NULL},
    {"a b", 0, "[a][b]", NULL},
    {"a, b", 0, "[a][b]", NULL},
    {" a ,\tb  c ", 0, "[a][b][c]", NULL},
    {"::1 127.0.0.1", 0, "[::1][127.0.0.1]", NULL},
    {"a,,b", -1, NULL, "empty entry"},
    {",a", -1, NULL, "empty entry"},
    {"a,", -1, NULL, "empty entry"},
    {"a , ,b", -1, NULL, "empty entry"},
    {"   ", -1, NULL, "empty entry"},
    {"", -1, NULL, "empty entry"},
    {"a bad c", -1, NULL, "'bad' is refused"},
};

static void test_lists(void)
{
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        const struct list_case *c = &lists[i];
        struct collected got = {"", 0};
        char why[SETTING_WHY_MAX] = "";
        int rc = setting_list("LIST", c->value, collect, &got, why);

        CU_ASSERT_EQUAL(rc, c->rc);
        if (rc == 0) {
            CU_ASSERT_STRING_EQUAL(got.all, c->entries);
        } else {
            CU_ASSERT_PTR_NOT_NULL(strstr(why, "LIST"));
            CU_ASSERT_PTR_NOT_NULL(strstr(why, c->why));
        }
    }
}

static void test_list_entry_too_long(void)
{
    char value[600], why[SETTING_WHY_MAX];
    struct collected got = {"", 0};

    memset(value, 'x', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    CU_ASSERT_EQUAL(setting_list("LIST", value, collect, &got, why), -1);
    CU_ASSERT_EQUAL(got.n, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "too long"));
}

/* The growth rule the request budgets charge by. */
static void test_buf_next_cap(void)
{
    struct buf b = {NULL, 0, 0};

    CU_ASSERT_EQUAL(buf_next_cap(&b, 10, 1000), 256);
    CU_ASSERT_EQUAL(buf_next_cap(&b, 300, 1000), 512);
    CU_ASSERT_EQUAL(buf_next_cap(&b, 600, 1000), 1000); /* capped at the known length */
    CU_ASSERT_EQUAL(buf_next_cap(&b, 1001, 1000), 1024); /* the limit is not enough */
    CU_ASSERT_EQUAL(buf_next_cap(&b, 0, 1000), 0);       /* nothing needed, nothing held */
    CU_ASSERT_EQUAL(buf_grow_to(&b, 300), 0);
    CU_ASSERT_EQUAL(b.cap, 300);
    CU_ASSERT_EQUAL(buf_next_cap(&b, 300, 1000), 300);   /* fits already */
    CU_ASSERT_EQUAL(buf_next_cap(&b, 301, 1000), 600);
    CU_ASSERT_EQUAL(buf_next_cap(&b, (size_t)-1, 1000), 0); /* overflow */
    CU_ASSERT_EQUAL(buf_reserve(&b, 0), 0);
    buf_free(&b);
    CU_ASSERT_EQUAL(buf_reserve(&b, 0), 0);              /* empty and nothing asked */
    CU_ASSERT_PTR_NULL(b.data);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"numbers: exact digits, inside the range", test_numbers},
        {"ports and booleans", test_port_and_bool},
        {"one of a list of words", test_words},
        {"an empty environment variable is unset", test_env},
        {"lists split on commas and/or blanks", test_lists},
        {"a list entry too long is refused", test_list_entry_too_long},
        {"buffer growth as the budgets see it", test_buf_next_cap},
        {NULL, NULL},
    };
    return unit_run("setting", tests, 60);
}
