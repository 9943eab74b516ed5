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

/* The most digits fmt_u64 writes (UINT64_MAX has 20). */
#define FMT_U64_MAX 20

/* Writes v in decimal (no sign, no leading zeros, no NUL) to out, which
 * has room for FMT_U64_MAX bytes; returns the number of digits. */
size_t fmt_u64(char *out, uint64_t v);

#endif
