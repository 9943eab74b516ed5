/*
 * tests/unit/test_fmt.c — decimal numbers without printf (common/fmt.c),
 * judged by snprintf's "%llu".
 */
#include "tests/unit/unit.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/fmt.h"

/* n bytes were written to got (size bytes, filled with '#' before): they
 * are want, and nothing past them was touched. */
static void expect_written(const char *want, const char *got, size_t n, size_t size)
{
    CU_ASSERT_EQUAL(n, strlen(want));
    CU_ASSERT_EQUAL(memcmp(got, want, strlen(want)), 0);
    for (size_t i = n; i < size; i++)
        CU_ASSERT_EQUAL(got[i], '#');
}

/* fmt_u64(v) writes what snprintf writes, and not one byte more. */
static void expect_like_printf(uint64_t v)
{
    char want[32], got[FMT_U64_MAX + 4];

    snprintf(want, sizeof want, "%" PRIu64, v);
    memset(got, '#', sizeof got);
    expect_written(want, got, fmt_u64(got, v), sizeof got);
}

static void expect_signed_like_printf(int64_t v)
{
    char want[32], got[FMT_U64_MAX + 5];

    snprintf(want, sizeof want, "%" PRId64, v);
    memset(got, '#', sizeof got);
    expect_written(want, got, fmt_i64(got, v), sizeof got);
}

static void test_signed(void)
{
    for (int64_t v = -100000; v <= 100000; v++)
        expect_signed_like_printf(v);
    expect_signed_like_printf(INT64_MIN);
    expect_signed_like_printf(INT64_MIN + 1);
    expect_signed_like_printf(INT64_MAX);
    expect_signed_like_printf(INT32_MIN);
    expect_signed_like_printf((int64_t)INT32_MIN - 1);
}

static void test_small_numbers(void)
{
    for (uint64_t v = 0; v <= 100000; v++)
        expect_like_printf(v);
}

/* Every count of digits, at its edges: 10^k - 1, 10^k, 10^k + 1. */
static void test_digit_edges(void)
{
    uint64_t p = 1;

    for (int k = 0; k < 20; k++) {
        expect_like_printf(p - 1);
        expect_like_printf(p);
        expect_like_printf(p + 1);
        if (k < 19)
            p *= 10;
    }
    expect_like_printf(UINT64_MAX);
    expect_like_printf(UINT64_MAX - 1);
    expect_like_printf((uint64_t)UINT32_MAX);
    expect_like_printf((uint64_t)UINT32_MAX + 1);
}

/* Numbers of every size from a fixed generator (xorshift64). */
static void test_spread(void)
{
    uint64_t x = 0x9e3779b97f4a7c15u;

    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        expect_like_printf(x >> (i % 64));
    }
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"0..100000 as printf writes them", test_small_numbers},
        {"10^k - 1, 10^k, 10^k + 1 and UINT64_MAX", test_digit_edges},
        {"numbers of every size", test_spread},
        {"signed numbers, INT64_MIN and INT64_MAX", test_signed},
        {NULL, NULL},
    };
    return unit_run("fmt", tests, 60);
}
