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
#include <string.h>
#include <unistd.h>

#include "common/fmt.h"
#include "fcgi/internal.h"

#define FLUSH_AT (16 * 1024)
#define HOLD_MAX (1024 * 1024)

/* Copies s (len bytes; "-" when empty or absent) to p, with bytes that
 * would break the line format made '?'; returns the end. */
static char *put_clean(char *p, const char *s, size_t len)
{
    if (!s || !len) {
        *p++ = '-';
        return p;
    }
    for (size_t i = 0; i < len; i++)
        *p++ = (unsigned char)s[i] < 0x21 || s[i] == 0x7f ? '?' : s[i];
    return p;
}

/* Room for the numbers and the blanks of a line, past its text. */
#define LINE_NUMBERS (3 * (FMT_U64_MAX + 1) + 8)

/*
 * Formats by hand: snprintf (its "%.0f" above all) cost more than the
 * rest of the answer.  Lines that do not fit in memory are left out.
 */
void access_log_add(struct fcgi_server *s, const struct fcgi_request *r, int status, size_t bytes,
                    double seconds)
{
    const struct param_str *k = r->known;
    size_t text = k[KNOWN_REQUEST_METHOD].len + k[KNOWN_REQUEST_URI].len +
                  k[KNOWN_SCRIPT_NAME].len + k[KNOWN_PATH_INFO].len + 3;
    double us = seconds * 1e6;
    char *p;

    if (s->access.len >= HOLD_MAX) {
        s->access_dropped++;
        return;
    }
    if (s->access_dropped) {
        if (buf_reserve(&s->access, 64 + FMT_U64_MAX) == 0) {
            p = (char *)s->access.data + s->access.len;
            p = FMT_PUT_LIT(p, "access log: ");
            p += fmt_u64(p, s->access_dropped);
            p = FMT_PUT_LIT(p, " line(s) dropped, stderr was full\n");
            s->access.len = (size_t)((uint8_t *)p - s->access.data);
        }
        s->access_dropped = 0;
    }
    if (buf_reserve(&s->access, text + LINE_NUMBERS) < 0)
        return;
    p = (char *)s->access.data + s->access.len;
    p = put_clean(p, k[KNOWN_REQUEST_METHOD].s, k[KNOWN_REQUEST_METHOD].len);
    *p++ = ' ';
    if (k[KNOWN_REQUEST_URI].s) {
        p = put_clean(p, k[KNOWN_REQUEST_URI].s, k[KNOWN_REQUEST_URI].len);
    } else {
        p = put_clean(p, k[KNOWN_SCRIPT_NAME].s, k[KNOWN_SCRIPT_NAME].len);
        if (k[KNOWN_PATH_INFO].s)
            p = put_clean(p, k[KNOWN_PATH_INFO].s, k[KNOWN_PATH_INFO].len);
    }
    *p++ = ' ';
    p += fmt_i64(p, status);
    *p++ = ' ';
    p += fmt_u64(p, bytes);
    *p++ = ' ';
    p += fmt_i64(p, (int64_t)(us < 0 ? us - 0.5 : us + 0.5)); /* to the nearest microsecond */
    p = FMT_PUT_LIT(p, "us\n");
    s->access.len = (size_t)((uint8_t *)p - s->access.data);
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
