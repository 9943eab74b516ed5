/* common/log.c — timestamped, leveled lines on stderr, one write() each. */
#include "common/log.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum sf_log_level min_level = SF_LOG_INFO;
static unsigned long dropped; /* lines not written: stderr had no room */

void sf_log_set_level(enum sf_log_level level)
{
    min_level = level;
}

void sf_log(enum sf_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct tm tm;
    time_t now;
    va_list ap;
    int n, m;

    if (level < min_level)
        return;
    now = time(NULL);
    gmtime_r(&now, &tm);
    n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02dZ springfield[%d] %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (int)getpid(), names[level]);
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    if ((size_t)(n + m) > sizeof line - 2)
        m = (int)(sizeof line - 2) - n; /* truncated: keep the line whole */
    line[n + m] = '\n';
    /* stderr may be a pipe nobody drains (it stays blocking: it is shared
     * with other processes): a line is written only when poll() says there
     * is room, so logging never stops the loop; otherwise it is dropped
     * and counted.  One write() of under PIPE_BUF bytes per line, so lines
     * from several workers never interleave. */
    {
        struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};

        if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) {
            dropped++;
            return;
        }
    }
    if (dropped) { /* said in the same write: one write never blocks */
        char out[sizeof line + 96];
        int k = snprintf(out, 96, "(%lu log line(s) dropped: stderr was full)\n", dropped);

        memcpy(out + k, line, (size_t)(n + m + 1));
        if (write(STDERR_FILENO, out, (size_t)k + (size_t)(n + m + 1)) > 0)
            dropped = 0;
        return;
    }
    if (write(STDERR_FILENO, line, (size_t)(n + m + 1)) < 0) {
        /* nowhere left to report it */
    }
}

bool log_limit_pass(struct log_limit *l, double now, unsigned long *suppressed)
{
    if (l->last != 0 && now - l->last < 1.0) {
        l->suppressed++;
        return false;
    }
    l->last = now;
    *suppressed = l->suppressed;
    l->suppressed = 0;
    return true;
}
