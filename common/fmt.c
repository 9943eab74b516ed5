/* common/fmt.c — decimal numbers without printf (fmt.h). */
#include "common/fmt.h"

#include <string.h>

/* "00".."99": two digits a division */
static const char two_digits[201] = "00010203040506070809101112131415161718192021222324"
                                    "25262728293031323334353637383940414243444546474849"
                                    "50515253545556575859606162636465666768697071727374"
                                    "75767778798081828384858687888990919293949596979899";

size_t fmt_u64_long(char *out, uint64_t v)
{
    size_t n = 1;

    if (v < 100) /* (fmt_u64 writes these itself) */
        return fmt_u64(out, v);
    if (v < 1000) {
        out[0] = (char)('0' + v / 100);
        memcpy(out + 1, two_digits + 2 * (v % 100), 2);
        return 3;
    }

    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    /* least significant first, from the end (divisions by 10 are
     * multiplications: cheaper than a copy through a scratch buffer) */
    for (char *p = out + n; p > out; v /= 10)
        *--p = (char)('0' + v % 10);
    return n;
}
