/* common/utf8.c — UTF-8 validation and character counting. */
#include "common/utf8.h"

#include <stdint.h>

long utf8_chars(const void *s, size_t len)
{
    const unsigned char *p = s, *end = p + len;
    long n = 0;
    while (p < end) {
        unsigned char b = *p;
        uint32_t cp;
        int more;
        if (b < 0x80) {
            p++;
            n++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            cp = b & 0x1F;
            more = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            cp = b & 0x0F;
            more = 2;
        } else if (b >= 0xF0 && b <= 0xF4) {
            cp = b & 0x07;
            more = 3;
        } else {
            return -1; /* continuation byte, C0/C1 overlong lead, F5..FF */
        }
        if (end - p <= more)
            return -1;
        for (int i = 1; i <= more; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        p += more + 1;
        n++;
    }
    return n;
}
