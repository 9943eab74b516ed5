/*
 * fcgi/access_log.c — one line per answered request on stderr, in one of
 * two shapes (--access-log-format):
 *   text: "<method> <path> <status> <bytes> <microseconds>us"
 *   json: {"time":"2026-12-01T17:00:00.123Z","method":"GET",
 *          "path":"/api/v1/marges/x","route":"/api/v1/marges/NAME",
 *          "status":200,"bytes":25,"us":180,"backend_us":150}
 *         one object per line: time (UTC, when the answer was queued),
 *         method and path as the front server sent them (REQUEST_URI, or
 *         SCRIPT_NAME + PATH_INFO), route (fcgi_request_set_label; null
 *         when no route took it), status, body bytes, microseconds since
 *         BEGIN_REQUEST, and backend_us, the time spent waiting for
 *         backends (fcgi_request_add_backend_time; null when no backend
 *         was used).  Strings are escaped as common/json.h says.  Lines
 *         dropped for want of room are told as {"time":...,
 *         "access_log_dropped":N}, so every line parses.
 * Lines are gathered and written with one write() before the loop sleeps,
 * so logging costs no system call per request under load.
 *
 * They go out through sf_log_output (common/log.h), to stderr or the
 * --log-file, which never blocks: stderr may be a pipe that its reader
 * drains slowly (or not at all), and it is blocking (shared with other
 * processes, so it stays that way), so lines are written only as far as
 * poll() says the pipe has room, at most PIPE_BUF bytes a write; the file
 * has a writer thread and a bounded queue.  What cannot be written waits,
 * up to HOLD_MAX bytes; beyond that lines are dropped and counted.
 */
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fmt.h"
#include "common/json.h"
#include "common/word.h"
#include "fcgi/internal.h"

#define FLUSH_AT (16 * 1024)
#define HOLD_MAX (1024 * 1024)

/* Room for the numbers and the blanks of a line, past its text (and, in
 * JSON, the names of its fields and the time). */
#define LINE_NUMBERS (4 * (FMT_U64_MAX + 1) + 128)

/* Whether a byte of w would break the line: a control byte, a blank
 * (below 0x21) or DEL (0 once xored with 0x7f). */
static inline bool breaks_line(uint64_t w)
{
    return word8_has_byte_below(w, 0x21) ||
           word8_has_byte_below(w ^ 0x7f7f7f7f7f7f7f7f, 1);
}

/* Copies s (len bytes; "-" when empty or absent) to p, with bytes that
 * would break the line format made '?'; returns the end.  Eight bytes at
 * a time while none of them needs it (a path nearly always), byte by
 * byte from there (below 8 bytes, a word costs more than the bytes). */
static char *put_clean(char *p, const char *s, size_t len)
{
    size_t i = 0;

    if (!s || !len) {
        *p++ = '-';
        return p;
    }
    for (; len - i >= 8 && !breaks_line(word8(s + i)); i += 8)
        memcpy(p + i, s + i, 8);
    for (; i < len; i++)
        p[i] = (unsigned char)s[i] < 0x21 || s[i] == 0x7f ? '?' : s[i];
    return p + len;
}

/* Microseconds, to the nearest one. */
static int64_t microseconds(double seconds)
{
    double us = seconds * 1e6;

    return (int64_t)(us < 0 ? us - 0.5 : us + 0.5);
}

/* Where b's free room starts (after buf_reserve), and the end of what was
 * written there. */
static char *room(struct buf *b)
{
    return (char *)b->data + b->len;
}

static void written(struct buf *b, const char *end)
{
    b->len = (size_t)((const uint8_t *)end - b->data);
}

/* "2026-12-01T17:00:00.123Z" for t (the clock) into p (24 bytes); the part
 * up to the seconds is made once a second. */
static char *put_time(char *p, double t)
{
    static time_t cached = -1;
    static char date[24];
    time_t sec = (time_t)t;
    int millis = (int)((t - (double)sec) * 1000);

    if (sec != cached) {
        struct tm tm;

        gmtime_r(&sec, &tm);
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        cached = sec;
    }
    p = fmt_put(p, date, strlen(date));
    millis = millis < 0 ? 0 : millis > 999 ? 999 : millis;
    *p++ = '.';
    *p++ = (char)('0' + millis / 100);
    *p++ = (char)('0' + millis / 10 % 10);
    *p++ = (char)('0' + millis % 10);
    *p++ = 'Z';
    return p;
}

/* The JSON line of r; numbers and the time by hand, strings escaped by
 * common/json.h.  The time is the answer clock (request_answer_clock). */
static void append_json(struct fcgi_server *s, const struct fcgi_request *r, int status,
                        size_t bytes, double seconds)
{
    const struct fcgi_param_str *k = r->known;
    struct buf *b = &s->access;
    unsigned waits;
    char *p;

    fcgi_request_backend_time(r, &waits);
    if (buf_reserve(b, LINE_NUMBERS) < 0)
        return;
    p = FMT_PUT_LIT(room(b), "{\"time\":\"");
    p = put_time(p, request_answer_clock(s));
    p = FMT_PUT_LIT(p, "\",\"method\":");
    written(b, p);
    json_append_string(b, k[KNOWN_REQUEST_METHOD].s, k[KNOWN_REQUEST_METHOD].len);
    buf_append(b, ",\"path\":\"", 9);
    if (k[KNOWN_REQUEST_URI].s) {
        json_append_escaped(b, k[KNOWN_REQUEST_URI].s, k[KNOWN_REQUEST_URI].len);
    } else {
        if (k[KNOWN_SCRIPT_NAME].s)
            json_append_escaped(b, k[KNOWN_SCRIPT_NAME].s, k[KNOWN_SCRIPT_NAME].len);
        if (k[KNOWN_PATH_INFO].s)
            json_append_escaped(b, k[KNOWN_PATH_INFO].s, k[KNOWN_PATH_INFO].len);
    }
    buf_append(b, "\",\"route\":", 10);
    json_append_string(b, r->label, r->label ? strlen(r->label) : 0);
    if (buf_reserve(b, LINE_NUMBERS) < 0)
        return;
    p = FMT_PUT_LIT(room(b), ",\"status\":");
    p += fmt_i64(p, status);
    p = FMT_PUT_LIT(p, ",\"bytes\":");
    p += fmt_u64(p, bytes);
    p = FMT_PUT_LIT(p, ",\"us\":");
    p += fmt_i64(p, microseconds(seconds));
    p = FMT_PUT_LIT(p, ",\"backend_us\":");
    if (waits)
        p += fmt_u64(p, r->backend_us);
    else
        p = FMT_PUT_LIT(p, "null");
    p = FMT_PUT_LIT(p, "}\n");
    written(b, p);
}

/* Lines dropped while the log had no room, told in the next line's shape. */
static void append_dropped(struct fcgi_server *s)
{
    struct buf *b = &s->access;
    char *p;

    if (buf_reserve(b, LINE_NUMBERS) < 0)
        return;
    p = room(b);
    if (s->cfg.access_log_format == FCGI_ACCESS_LOG_JSON) {
        /* the notice is a JSON line too, so that every line parses */
        p = FMT_PUT_LIT(p, "{\"time\":\"");
        p = put_time(p, ev_time());
        p = FMT_PUT_LIT(p, "\",\"access_log_dropped\":");
        p += fmt_u64(p, s->access_dropped);
        p = FMT_PUT_LIT(p, "}\n");
    } else {
        p = FMT_PUT_LIT(p, "access log: ");
        p += fmt_u64(p, s->access_dropped);
        p = FMT_PUT_LIT(p, " line(s) dropped, the log had no room\n");
    }
    written(b, p);
    s->access_dropped = 0;
}

/*
 * Formats by hand: snprintf (its "%.0f" above all) cost more than the
 * rest of the answer.  Lines that do not fit in memory are left out.
 */
void access_log_add(struct fcgi_server *s, const struct fcgi_request *r, int status, size_t bytes,
                    double seconds)
{
    const struct fcgi_param_str *k = r->known;
    size_t text = k[KNOWN_REQUEST_METHOD].len + k[KNOWN_REQUEST_URI].len +
                  k[KNOWN_SCRIPT_NAME].len + k[KNOWN_PATH_INFO].len + 3;
    char *p;

    if (s->access.len >= HOLD_MAX) {
        s->access_dropped++;
        return;
    }
    if (s->access_dropped)
        append_dropped(s);
    if (s->cfg.access_log_format == FCGI_ACCESS_LOG_JSON) {
        append_json(s, r, status, bytes, seconds);
    } else if (buf_reserve(&s->access, text + LINE_NUMBERS) == 0) {
        p = room(&s->access);
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
        p += fmt_i64(p, microseconds(seconds));
        p = FMT_PUT_LIT(p, "us\n");
        written(&s->access, p);
    }
    if (s->access.len >= FLUSH_AT)
        access_log_flush(s);
}

void access_log_flush(struct fcgi_server *s)
{
    size_t off = 0;

    while (off < s->access.len) {
        size_t chunk = s->access.len - off < PIPE_BUF ? s->access.len - off : PIPE_BUF;
        const uint8_t *nl;
        long n;

        /* whole lines only, so lines of several workers do not interleave */
        if (chunk < s->access.len - off &&
            (nl = memrchr(s->access.data + off, '\n', chunk)) != NULL)
            chunk = (size_t)(nl - (s->access.data + off)) + 1;
        n = sf_log_output(s->access.data + off, chunk);
        if (n == 0)
            break; /* no room now: keep the rest for the next turn */
        if (n < 0) {
            off = s->access.len; /* the log is gone: drop the lines */
            break;
        }
        off += (size_t)n;
    }
    buf_consume(&s->access, off);
}
