/* common/fmt.c — decimal numbers without printf (fmt.h). */
#include "common/fmt.h"

#include <string.h>

size_t fmt_u64(char *out, uint64_t v)
{
    char digits[FMT_U64_MAX];
    size_t n = 0;

    /* least significant first, from the end of digits */
    do {
        digits[sizeof digits - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, digits + sizeof digits - n, n);
    return n;
}
