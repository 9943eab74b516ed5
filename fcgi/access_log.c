/*
 * fcgi/access_log.c — one line per answered request on stderr:
 *   "<method> <path> <status> <bytes> <microseconds>us"
 * Lines are gathered and written with one write() before the loop sleeps,
 * so logging costs no system call per request under load.
 *
 * stderr may be a pipe that its reader drains slowly (or not at all), and
 * it is blocking (shared with other processes, so it stays that way): the
 * lines are written only as far as poll() says the pipe has room, at most
 * PIPE_BUF bytes a write, so a write never blocks the loop.  What cannot be
 * written waits, up to HOLD_MAX bytes; beyond that lines are dropped and
 * counted.
 */
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fcgi/internal.h"

#define FLUSH_AT (16 * 1024)
#define HOLD_MAX (1024 * 1024)

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

    if (s->access.len >= HOLD_MAX) {
        s->access_dropped++;
        return;
    }
    if (s->access_dropped) {
        n = snprintf(tail, sizeof tail, "access log: %lu line(s) dropped, stderr was full\n",
                     s->access_dropped);
        if (n > 0)
            buf_append(&s->access, tail, (size_t)n);
        s->access_dropped = 0;
    }
    append_clean(&s->access, r->known[KNOWN_REQUEST_METHOD].s);
    buf_append(&s->access, " ", 1);
    if (r->known[KNOWN_REQUEST_URI].s) {
        append_clean(&s->access, r->known[KNOWN_REQUEST_URI].s);
    } else {
        append_clean(&s->access, r->known[KNOWN_SCRIPT_NAME].s);
        if (r->known[KNOWN_PATH_INFO].s)
            append_clean(&s->access, r->known[KNOWN_PATH_INFO].s);
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
        struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};
        size_t chunk = s->access.len - off < PIPE_BUF ? s->access.len - off : PIPE_BUF;
        const uint8_t *nl;
        ssize_t n;

        /* whole lines only, so lines of several workers do not interleave */
        if (chunk < s->access.len - off &&
            (nl = memrchr(s->access.data + off, '\n', chunk)) != NULL)
            chunk = (size_t)(nl - (s->access.data + off)) + 1;
        if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
            break; /* no room now: keep the rest for the next turn */
        n = write(STDERR_FILENO, s->access.data + off, chunk);
        if (n <= 0) {
            off = s->access.len; /* stderr is gone: drop the lines */
            break;
        }
        off += (size_t)n;
    }
    buf_consume(&s->access, off);
}
