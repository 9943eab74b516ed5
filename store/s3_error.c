/* store/s3_error.c — the text of an element of an S3 error document (see
 * s3_error.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "store/s3_error.h"

#include <stdio.h>
#include <string.h>

void s3_xml_text(const char *doc, size_t len, const char *tag, char *out, size_t outsz)
{
    char open[32], close[32];
    const char *a, *b;
    size_t n;

    out[0] = '\0';
    if (!doc || !len)
        return;
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    a = memmem(doc, len, open, strlen(open));
    if (!a)
        return;
    a += strlen(open);
    b = memmem(a, len - (size_t)(a - doc), close, strlen(close));
    if (!b)
        return;
    n = (size_t)(b - a);
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, a, n);
    out[n] = '\0';
    /* keep log lines on one line and printable */
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}
