/*
 * common/fmt.h — decimal numbers without printf, for the answer path.
 *
 * snprintf costs about two thousand instructions per call (locale, format
 * parsing, the FILE machinery): more than answering a request.  The answer
 * path (response headers, the access log) formats only unsigned integers,
 * and does it here.
 */
#ifndef SPRINGFIELD_COMMON_FMT_H
#define SPRINGFIELD_COMMON_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The most digits fmt_u64 writes (UINT64_MAX has 20). */
#define FMT_U64_MAX 20

/* fmt_u64 of a number of three digits or more. */
size_t fmt_u64_long(char *out, uint64_t v);

/* Writes v in decimal (no sign, no leading zeros, no NUL) to out, which
 * has room for FMT_U64_MAX bytes; returns the number of digits.  What the
 * answer path writes most (short lengths, times) costs no call. */
static inline size_t fmt_u64(char *out, uint64_t v)
{
    if (v < 10) {
        out[0] = (char)('0' + v);
        return 1;
    }
    if (v < 100) {
        out[0] = (char)('0' + v / 10);
        out[1] = (char)('0' + v % 10);
        return 2;
    }
    return fmt_u64_long(out, v);
}

/* The same for a signed number: a '-' first when it is negative
 * (FMT_U64_MAX + 1 bytes of room). */
static inline size_t fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fmt_u64(out + 1, -(uint64_t)v); /* INT64_MIN too */
}

/* Copies n bytes to p and returns the end: pieces of a line or a header
 * block written one after the other. */
static inline char *fmt_put(char *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* fmt_put of a string literal (its length known when compiling). */
#define FMT_PUT_LIT(p, lit) fmt_put((p), (lit), sizeof(lit) - 1)

#endif
