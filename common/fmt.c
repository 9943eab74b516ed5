/* common/fmt.c — decimal numbers without printf (fmt.h). */
#include "common/fmt.h"

size_t fmt_u64(char *out, uint64_t v)
{
    size_t n = 1;

    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    /* least significant first, from the end (divisions by 10 are
     * multiplications: cheaper than a copy through a scratch buffer) */
    for (char *p = out + n; p > out; v /= 10)
        *--p = (char)('0' + v % 10);
    return n;
}

size_t fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fmt_u64(out + 1, -(uint64_t)v); /* INT64_MIN too */
}
