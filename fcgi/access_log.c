/*
 * fcgi/access_log.c — one line per answered request on stderr:
 *   "<method> <path> <status> <bytes> <microseconds>us"
 * Lines are gathered and written with one write() before the loop sleeps,
 * so logging costs no system call per request under load.
 */
#include <stdio.h>
#include <unistd.h>

#include "fcgi/internal.h"

#define FLUSH_AT (16 * 1024)

/* Appends s, with bytes that would break the line format made '?'. */
static void append_clean(struct buf *b, const char *s)
{
    if (!s || !*s)
        s = "-";
    for (; *s; s++) {
        char ch = (unsigned char)*s < 0x21 || *s == 0x7f ? '?' : *s;

        buf_append(b, &ch, 1);
    }
}

void access_log_add(struct fcgi_server *s, const struct fcgi_request *r, int status, size_t bytes)
{
    char tail[80];
    int n;

    append_clean(&s->access, r->method);
    buf_append(&s->access, " ", 1);
    if (r->request_uri) {
        append_clean(&s->access, r->request_uri);
    } else {
        append_clean(&s->access, r->script_name);
        if (r->path_info)
            append_clean(&s->access, r->path_info);
    }
    n = snprintf(tail, sizeof tail, " %d %zu %.0fus\n", status, bytes,
                 (ev_time() - r->started) * 1e6);
    if (n > 0)
        buf_append(&s->access, tail, (size_t)n);
    if (s->access.len >= FLUSH_AT)
        access_log_flush(s);
}

void access_log_flush(struct fcgi_server *s)
{
    size_t off = 0;

    while (off < s->access.len) {
        ssize_t n = write(STDERR_FILENO, s->access.data + off, s->access.len - off);

        if (n <= 0)
            break; /* stderr gone or full: drop the lines rather than block */
        off += (size_t)n;
    }
    s->access.len = 0;
}
