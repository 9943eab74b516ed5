/* tests/unit/test_resp.c — RESP commands: the bytes, and the same bytes
 * hiredis' own formatter makes of the same arguments. */
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store/resp.h"

/* resp_command of args[0..n-1] equals want (want_len bytes), and its
 * announced length too; nothing is written past it. */
static void check(const struct resp_arg *args, unsigned n, const char *want, size_t want_len)
{
    size_t len = resp_command_len(args, n);
    char *out = malloc(len + 1);

    CU_ASSERT_FATAL(out != NULL);
    out[len] = '#';
    CU_ASSERT_EQUAL(len, want_len);
    CU_ASSERT_EQUAL(resp_command(out, args, n), len);
    CU_ASSERT(len == want_len && memcmp(out, want, len) == 0);
    CU_ASSERT_EQUAL(out[len], '#');
    free(out);
}

static void test_known_bytes(void)
{
    static const struct resp_arg ping[] = {{"PING", 4}};
    static const struct resp_arg get[] = {{"GET", 3}, {"bench", 5}};
    static const struct resp_arg set[] = {{"SET", 3}, {"k", 1}, {"a\0\r\nb", 5}};
    static const struct resp_arg empty[] = {{"GET", 3}, {NULL, 0}};

#define BYTES(s) s, sizeof s - 1
    check(ping, 1, BYTES("*1\r\n$4\r\nPING\r\n"));
    check(get, 2, BYTES("*2\r\n$3\r\nGET\r\n$5\r\nbench\r\n"));
    check(set, 3, BYTES("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0\r\nb\r\n"));
    check(empty, 2, BYTES("*2\r\n$3\r\nGET\r\n$0\r\n\r\n"));
#undef BYTES
}

/* Arguments of lengths around every power of ten up to 10^6, one to ten
 * of them (two digits in the array header): the bytes hiredis'
 * redisFormatCommandArgv makes of them. */
static void test_same_as_hiredis(void)
{
    static const size_t lengths[] = {0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 9999, 10000,
                                     99999, 100000, 999999, 1000000};
    static const unsigned counts[] = {1, 2, 3, 10};
    size_t value_len = 1000000 + 10;
    char *value = malloc(value_len);

    CU_ASSERT_FATAL(value != NULL);
    for (size_t i = 0; i < value_len; i++)
        value[i] = (char)(i * 7 + 3); /* every byte value, NUL, CR and LF among them */
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        const char *argv[10];
        size_t argvlen[10];
        struct resp_arg args[10];

        for (unsigned a = 0; a < 10; a++) {
            argv[a] = a == 0 ? "SET" : value + a;
            argvlen[a] = a == 0 ? 3 : lengths[i];
            args[a] = (struct resp_arg){argv[a], argvlen[a]};
        }
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            char *want = NULL;
            long long want_len = redisFormatCommandArgv(&want, (int)counts[c], argv, argvlen);

            CU_ASSERT_FATAL(want_len > 0);
            check(args, counts[c], want, (size_t)want_len);
            free(want);
        }
    }
    free(value);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"PING, GET, SET with a binary value, an empty key", test_known_bytes},
        {"the bytes hiredis' formatter makes, at every number of digits", test_same_as_hiredis},
        {NULL, NULL},
    };
    return unit_run("resp", tests, 60);
}
