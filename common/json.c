/* common/json.c — JSON string escaping (see json.h). */
#include "common/json.h"

#include <stdbool.h>

#include "common/utf8.h"

/* The short escape of c ('n' for a line feed), or 0 when it has none. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return 0;
    }
}

static bool plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

int json_append_escaped(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, start = 0;
    int rc = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t k;

        if (plain(c)) {
            i++;
            continue;
        }
        if (c >= 0x80 && (k = utf8_next(s + i, len - i)) > 0) {
            i += k; /* a whole valid character, copied as it is */
            continue;
        }
        rc |= buf_append(b, s + start, i - start); /* what was plain so far */
        if (c >= 0x80) {
            rc |= buf_append(b, "\\ufffd", 6); /* a byte that is not UTF-8 */
        } else if ((esc[1] = short_escape(c)) != 0) {
            rc |= buf_append(b, esc, 2);
        } else {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            rc |= buf_append(b, esc, 6);
        }
        start = ++i;
    }
    rc |= buf_append(b, s + start, i - start);
    return rc ? -1 : 0;
}

int json_append_string(struct buf *b, const char *s, size_t len)
{
    int rc = 0;

    if (!s)
        return buf_append(b, "null", 4);
    rc |= buf_append(b, "\"", 1);
    rc |= json_append_escaped(b, s, len);
    rc |= buf_append(b, "\"", 1);
    return rc ? -1 : 0;
}
