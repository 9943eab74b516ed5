/*
 * store/resp.h — a Redis command as RESP bytes, formatted here: an array
 * of bulk strings, "*2\r\n$3\r\nGET\r\n$4\r\nname\r\n", the bytes hiredis'
 * redisFormatCommand makes of "GET %b".  hiredis builds them with its own
 * format-string machinery (sprintf, or sdscatfmt, and an sds per
 * argument), which cost a Redis operation more instructions than the rest
 * of its way through hiredis; the Redis shim formats its commands with
 * this and hands them to redisAsyncFormattedCommand().
 *
 * Pure: no I/O, no allocation; arguments are binary safe.
 */
#ifndef SPRINGFIELD_STORE_RESP_H
#define SPRINGFIELD_STORE_RESP_H

#include <stddef.h>

struct resp_arg {
    const void *data; /* may be NULL when len is 0 */
    size_t len;
};

/* The length of the command made of args[0..n-1]. */
size_t resp_command_len(const struct resp_arg *args, unsigned n);

/* Writes the command into out, which has room for resp_command_len(args,
 * n) bytes (no NUL is added); returns that length. */
size_t resp_command(char *out, const struct resp_arg *args, unsigned n);

#endif
