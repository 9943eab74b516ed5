/* store/resp.c — Redis commands as RESP bytes (resp.h). */
#include "store/resp.h"

#include <string.h>

/* Decimal digits of v. */
static size_t digits(size_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Writes c, v in decimal, "\r\n"; returns the bytes written. */
static size_t header(char *out, char c, size_t v)
{
    size_t n = digits(v), i;

    out[0] = c;
    for (i = n; i > 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    out[n + 1] = '\r';
    out[n + 2] = '\n';
    return n + 3;
}

size_t resp_command_len(const struct resp_arg *args, unsigned n)
{
    size_t len = 3 + digits(n);

    for (unsigned i = 0; i < n; i++)
        len += 3 + digits(args[i].len) + args[i].len + 2;
    return len;
}

size_t resp_command(char *out, const struct resp_arg *args, unsigned n)
{
    size_t pos = header(out, '*', n);

    for (unsigned i = 0; i < n; i++) {
        pos += header(out + pos, '$', args[i].len);
        if (args[i].len)
            memcpy(out + pos, args[i].data, args[i].len);
        pos += args[i].len;
        out[pos++] = '\r';
        out[pos++] = '\n';
    }
    return pos;
}
