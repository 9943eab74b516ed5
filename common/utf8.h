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

#endif
