/*
 * common/utf8.h — counting UTF-8 characters the way MariaDB's utf8mb4
 * columns count them (code points), refusing what is not valid UTF-8.
 */
#ifndef SPRINGFIELD_COMMON_UTF8_H
#define SPRINGFIELD_COMMON_UTF8_H

#include <stddef.h>

/* Code points in s[0..len), or -1 when it is not valid UTF-8 (overlong
 * forms, surrogates, code points beyond U+10FFFF, cut sequences). */
long utf8_chars(const void *s, size_t len);

/* The length in bytes (1 to 4) of the valid UTF-8 character s[0..len)
 * begins with, or 0 when it does not begin with one (len 0, a stray
 * continuation byte, an overlong form, a surrogate, beyond U+10FFFF, a
 * sequence cut short). */
size_t utf8_next(const void *s, size_t len);

#endif
