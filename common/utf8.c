/* common/utf8.c — UTF-8 validation and character counting. */
#include "common/utf8.h"

#include <stdint.h>

size_t utf8_next(const void *s, size_t len)
{
    const unsigned char *p = s;
    uint32_t cp;
    size_t more, i;

    if (len == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        cp = p[0] & 0x1F;
        more = 1;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        cp = p[0] & 0x0F;
        more = 2;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        cp = p[0] & 0x07;
        more = 3;
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
    }
    if (len <= more)
        return 0;
    for (i = 1; i <= more; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return more + 1;
}

long utf8_chars(const void *s, size_t len)
{
    const unsigned char *p = s;
    size_t pos = 0;
    long n = 0;

    while (pos < len) {
        size_t k = utf8_next(p + pos, len - pos);

        if (k == 0)
            return -1;
        pos += k;
        n++;
    }
    return n;
}
