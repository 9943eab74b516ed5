/*
 * fcgi/log.h — the process log on stderr.
 *
 * One line per event: "2026-11-26T03:24:00Z springfield[pid] level: text".
 * This is the one utility every layer (fcgi, routes, store) shares.
 * The access log (one line per request) is separate: see fcgi/access_log.h.
 */
#ifndef SPRINGFIELD_FCGI_LOG_H
#define SPRINGFIELD_FCGI_LOG_H

enum sf_log_level { SF_LOG_DEBUG, SF_LOG_INFO, SF_LOG_WARN, SF_LOG_ERROR };

/* Messages below this level are dropped (default SF_LOG_INFO). */
void sf_log_set_level(enum sf_log_level level);

void sf_log(enum sf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define sf_debug(...) sf_log(SF_LOG_DEBUG, __VA_ARGS__)
#define sf_info(...) sf_log(SF_LOG_INFO, __VA_ARGS__)
#define sf_warn(...) sf_log(SF_LOG_WARN, __VA_ARGS__)
#define sf_error(...) sf_log(SF_LOG_ERROR, __VA_ARGS__)

#endif
