/*
 * store/breaker.h — the one back-off policy and the one circuit breaker
 * every network shim uses.
 *
 * Back-off: the wait before the next attempt starts at STORE_BACKOFF_MIN_MS
 * and doubles after each failed one, up to STORE_BACKOFF_MAX_MS; a success
 * starts it again from the minimum.
 *
 * Breaker: `threshold` consecutive failures open it; while it is open,
 * operations fail at once (STORE_UNAVAILABLE with the reason) instead of
 * each waiting for a server that is gone.  When the back-off has passed it
 * is half-open: one attempt (a reconnect, or one operation) goes through
 * as the probe, the others still fail fast; the probe's success closes it,
 * its failure opens it again for the next, longer back-off.
 *
 * A shim that keeps a connection (Redis, MySQL) makes its reconnects the
 * probes: connect failed or lost -> store_breaker_failure, reconnect
 * when store_breaker_retry_in says, connected -> store_breaker_success.
 * A shim that has no connection of its own (MongoDB through the driver's
 * pool, S3 and the weather service through libcurl) asks
 * store_breaker_allow before each operation and reports its outcome.
 *
 * The log says when it opens (once), every minute while it stays open, and
 * when it closes again.  Times are the loop's (ev_now), in seconds.
 */
#ifndef SPRINGFIELD_STORE_BREAKER_H
#define SPRINGFIELD_STORE_BREAKER_H

#include <stdbool.h>

#define STORE_BACKOFF_MIN_MS 100
#define STORE_BACKOFF_MAX_MS 2000

/* The wait before attempt n + 1 after n consecutive failures (n >= 1):
 * STORE_BACKOFF_MIN_MS doubled n - 1 times, at most STORE_BACKOFF_MAX_MS. */
unsigned store_backoff_ms(unsigned failures);

enum store_breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct store_breaker {
    enum store_breaker_state state;
    const char *name;        /* "redis 127.0.0.1:6379", for the log (borrowed) */
    unsigned threshold;      /* consecutive failures that open it (>= 1) */
    unsigned failures;       /* consecutive, while closed */
    unsigned attempts;       /* failed probes since it opened */
    double opened_at, retry_at, logged_at;
    bool ever_closed;        /* it has seen a success (else: "cannot connect") */
    bool connection;         /* it guards a connection (else: independent requests) */
    char reason[256];        /* why it is open */
};

/* connection: the shim keeps a connection, and the log speaks of losing
 * and regaining it; else of the server being unavailable and back. */
void store_breaker_init(struct store_breaker *b, const char *name, unsigned threshold,
                        bool connection);

/*
 * May an operation (or a connect) go to the server now?  Closed: yes.
 * Open and its back-off passed: it turns half-open and this one is the
 * probe: yes.  Otherwise no: fail fast with store_breaker_reason.
 */
bool store_breaker_allow(struct store_breaker *b, double now);

/* The server answered: closes the breaker, resets the back-off. */
void store_breaker_success(struct store_breaker *b, double now);

/* The server could not be reached (refused, reset, no answer in time). */
void store_breaker_failure(struct store_breaker *b, double now, const char *reason);

/* Seconds until the next probe is due (0 when it may go now). */
double store_breaker_retry_in(const struct store_breaker *b, double now);

static inline bool store_breaker_open(const struct store_breaker *b)
{
    return b->state != BREAKER_CLOSED;
}

/* "connection refused" — why it is open ("" when closed). */
static inline const char *store_breaker_reason(const struct store_breaker *b)
{
    return b->reason;
}

/* "closed", "open", "half-open" */
const char *store_breaker_state_name(enum store_breaker_state s);

#endif
