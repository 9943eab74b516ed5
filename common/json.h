/*
 * common/json.h — JSON strings written by hand, for lines that are made
 * often (the access log) where a cJSON tree would cost allocations per
 * line.
 *
 * The output is always valid JSON and valid UTF-8, whatever the input:
 * '"' and '\' are escaped, control characters (U+0000 to U+001F, and DEL)
 * become \n, \t... or \u00XX, and every byte that is not part of a valid
 * UTF-8 character (common/utf8.h) becomes U+FFFD, written \ufffd.  Valid
 * UTF-8 is copied as it is.
 */
#ifndef SPRINGFIELD_COMMON_JSON_H
#define SPRINGFIELD_COMMON_JSON_H

#include <stddef.h>

#include "common/buf.h"

/* Appends s[0..len) as a quoted JSON string; NULL appends null.  0, or -1
 * when memory ran out (the buffer may then hold part of the string). */
int json_append_string(struct buf *b, const char *s, size_t len);

/* The same without the quotes: the inside of a string, so that a string
 * can be written in parts. */
int json_append_escaped(struct buf *b, const char *s, size_t len);

#endif
