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
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
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

/* "2026-12-01T17:00:00.123Z" for t (ev_time()); the part up to the
 * seconds is made once a second. */
static void append_time(struct buf *b, double t)
{
    static time_t cached = -1;
    static char date[24];
    time_t sec = (time_t)t;
    char ms[8];
    int millis = (int)((t - (double)sec) * 1000);

    if (sec != cached) {
        struct tm tm;

        gmtime_r(&sec, &tm);
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        cached = sec;
    }
    buf_append(b, date, strlen(date));
    snprintf(ms, sizeof ms, ".%03dZ", millis < 0 ? 0 : millis > 999 ? 999 : millis);
    buf_append(b, ms, 5);
}

static void append_json(struct buf *b, const struct fcgi_request *r, int status, size_t bytes,
                        double now)
{
    char num[96];
    unsigned waits;
    double backend_s = fcgi_request_backend_time(r, &waits);
    int n;

    buf_append(b, "{\"time\":\"", 9);
    append_time(b, now);
    buf_append(b, "\",\"method\":", 11);
    json_append_string(b, r->method, r->method ? strlen(r->method) : 0);
    buf_append(b, ",\"path\":\"", 9);
    if (r->request_uri) {
        json_append_escaped(b, r->request_uri, strlen(r->request_uri));
    } else {
        if (r->script_name)
            json_append_escaped(b, r->script_name, strlen(r->script_name));
        if (r->path_info)
            json_append_escaped(b, r->path_info, strlen(r->path_info));
    }
    buf_append(b, "\"", 1);
    buf_append(b, ",\"route\":", 9);
    json_append_string(b, r->label, r->label ? strlen(r->label) : 0);
    n = snprintf(num, sizeof num, ",\"status\":%d,\"bytes\":%zu,\"us\":%.0f,\"backend_us\":",
                 status, bytes, (now - r->started) * 1e6);
    if (n > 0)
        buf_append(b, num, (size_t)n);
    if (waits)
        n = snprintf(num, sizeof num, "%.0f}\n", backend_s * 1e6);
    else
        n = snprintf(num, sizeof num, "null}\n");
    if (n > 0)
        buf_append(b, num, (size_t)n);
}

void access_log_add(struct fcgi_server *s, const struct fcgi_request *r, int status, size_t bytes)
{
    char tail[80];
    int n;

    if (s->access.len >= HOLD_MAX) {
        s->access_dropped++;
        return;
    }
    if (s->access_dropped && s->cfg.access_log_format == FCGI_ACCESS_LOG_JSON) {
        /* the notice is a JSON line too, so that every line parses */
        buf_append(&s->access, "{\"time\":\"", 9);
        append_time(&s->access, ev_time());
        n = snprintf(tail, sizeof tail, "\",\"access_log_dropped\":%lu}\n", s->access_dropped);
        if (n > 0)
            buf_append(&s->access, tail, (size_t)n);
        s->access_dropped = 0;
    } else if (s->access_dropped) {
        n = snprintf(tail, sizeof tail, "access log: %lu line(s) dropped, the log had no room\n",
                     s->access_dropped);
        if (n > 0)
            buf_append(&s->access, tail, (size_t)n);
        s->access_dropped = 0;
    }
    if (s->cfg.access_log_format == FCGI_ACCESS_LOG_JSON) {
        append_json(&s->access, r, status, bytes, ev_time());
        if (s->access.len >= FLUSH_AT)
            access_log_flush(s);
        return;
    }
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
