/*
 * common/log.h — the process log, on stderr or in the --log-file.
 *
 * One line per event: "2026-11-26T03:24:00Z springfield[pid] level: text".
 * Every layer (fcgi, routes, store) logs through it.  The access log (one
 * line per request) is separate (fcgi/access_log.c) but goes out through
 * the same sf_log_output.  Logging never blocks the loop: see log.c.
 */
#ifndef SPRINGFIELD_COMMON_LOG_H
#define SPRINGFIELD_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum sf_log_level { SF_LOG_DEBUG, SF_LOG_INFO, SF_LOG_WARN, SF_LOG_ERROR };

/* Messages below this level are dropped (default SF_LOG_INFO). */
void sf_log_set_level(enum sf_log_level level);

void sf_log(enum sf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * --log-file: path (opened O_APPEND, created mode 0640 less the umask)
 * becomes standard error, written by a thread of its own from then on.
 * 0, or -1 with errno (nothing changed).  Before the loop starts.
 */
int sf_log_open_file(const char *path);

/* True once sf_log_open_file succeeded. */
bool sf_log_to_file(void);

/*
 * SIGUSR1: the writer opens the file's path again once the lines queued so
 * far are written (logrotate moved the file away: a new one is created).
 * Returns at once; the reopen is logged, into the new file.  Nothing
 * without --log-file.
 */
void sf_log_reopen(void);

/* Waits up to timeout_s until every line queued for the file is written:
 * before a process ends with _exit (the main process does it at exit). */
void sf_log_drain(double timeout_s);

/*
 * Hands whole lines (len bytes, at most PIPE_BUF for lines of several
 * processes never to interleave) to the log's destination, never blocking:
 * returns the bytes taken (maybe fewer, for stderr), 0 when there is no
 * room now (try later, or drop), -1 when the destination is gone.
 */
long sf_log_output(const void *data, size_t len);

/*
 * At most one line a second for one kind of event, so a flood of the same
 * refusal or failure cannot flood the log:
 *
 *   static struct log_limit refused;
 *   unsigned long more;
 *   if (log_limit_pass(&refused, ev_now(loop), &more))
 *       sf_warn("... (%lu more since the last line)", more);
 *
 * now is any clock in seconds (the loop's time is the cheap one).  A
 * struct log_limit is not locked: it belongs to one thread (every one
 * today is the loop's).  sf_log itself may be called from any thread.
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
