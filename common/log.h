/*
 * common/log.h — the process log on stderr.
 *
 * One line per event: "2026-11-26T03:24:00Z springfield[pid] level: text".
 * Every layer (fcgi, routes, store) logs through it.  The access log (one
 * line per request) is separate: see fcgi/access_log.c.
 */
#ifndef SPRINGFIELD_COMMON_LOG_H
#define SPRINGFIELD_COMMON_LOG_H

#include <stdbool.h>

enum sf_log_level { SF_LOG_DEBUG, SF_LOG_INFO, SF_LOG_WARN, SF_LOG_ERROR };

/* Messages below this level are dropped (default SF_LOG_INFO). */
void sf_log_set_level(enum sf_log_level level);

void sf_log(enum sf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * At most one line a second for one kind of event, so a flood of the same
 * refusal or failure cannot flood the log:
 *
 *   static struct log_limit refused;
 *   unsigned long more;
 *   if (log_limit_pass(&refused, ev_now(loop), &more))
 *       sf_warn("... (%lu more since the last line)", more);
 *
 * now is any clock in seconds (the loop's time is the cheap one).
 */
struct log_limit {
    double last;
    unsigned long suppressed;
};

/* True (and *suppressed set to the lines left out since) when a line may
 * be logged now; false (and counted) otherwise. */
bool log_limit_pass(struct log_limit *l, double now, unsigned long *suppressed);

#define sf_debug(...) sf_log(SF_LOG_DEBUG, __VA_ARGS__)
#define sf_info(...) sf_log(SF_LOG_INFO, __VA_ARGS__)
#define sf_warn(...) sf_log(SF_LOG_WARN, __VA_ARGS__)
#define sf_error(...) sf_log(SF_LOG_ERROR, __VA_ARGS__)

#endif
