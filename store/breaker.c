/* store/breaker.c — back-off and circuit breaker (see breaker.h). */
#include "store/breaker.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

/* While it stays open, a line at most this often. */
#define STILL_DOWN_LOG_S 60.0

unsigned store_backoff_ms(unsigned failures)
{
    unsigned ms = STORE_BACKOFF_MIN_MS;

    while (failures-- > 1 && ms < STORE_BACKOFF_MAX_MS)
        ms *= 2;
    return ms < STORE_BACKOFF_MAX_MS ? ms : STORE_BACKOFF_MAX_MS;
}

void store_breaker_init(struct store_breaker *b, const char *name, unsigned threshold,
                        bool connection)
{
    memset(b, 0, sizeof *b);
    b->name = name;
    b->connection = connection;
    b->threshold = threshold ? threshold : 1;
}

const char *store_breaker_state_name(enum store_breaker_state s)
{
    switch (s) {
    case BREAKER_CLOSED: return "closed";
    case BREAKER_OPEN: return "open";
    case BREAKER_HALF_OPEN: return "half-open";
    }
    return "?";
}

bool store_breaker_allow(struct store_breaker *b, double now)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return true;
    case BREAKER_OPEN:
        if (now < b->retry_at)
            return false;
        b->state = BREAKER_HALF_OPEN; /* this caller is the probe */
        return true;
    case BREAKER_HALF_OPEN:
        return false; /* one probe at a time */
    }
    return false;
}

void store_breaker_success(struct store_breaker *b, double now)
{
    if (b->state != BREAKER_CLOSED) {
        if (b->ever_closed)
            sf_info("%s: %s after %.1f s and %u failed attempt(s)", b->name,
                    b->connection ? "reconnected" : "reachable again", now - b->opened_at,
                    b->attempts);
        else
            sf_info("%s: connected after %u failed attempt(s)", b->name, b->attempts + 1);
    }
    b->state = BREAKER_CLOSED;
    b->ever_closed = true;
    b->failures = b->attempts = 0;
    b->reason[0] = '\0';
}

void store_breaker_failure(struct store_breaker *b, double now, const char *reason)
{
    snprintf(b->reason, sizeof b->reason, "%s", reason && *reason ? reason : "unreachable");
    if (b->state == BREAKER_CLOSED && ++b->failures < b->threshold)
        return;
    if (b->state == BREAKER_CLOSED) {
        b->opened_at = b->logged_at = now;
        b->attempts = 0;
        if (!b->ever_closed)
            sf_warn("%s: cannot connect (%s); failing fast, retrying with back-off up to %d ms",
                    b->name, b->reason, STORE_BACKOFF_MAX_MS);
        else if (b->connection)
            sf_warn("%s: connection lost (%s); failing fast, reconnecting with back-off up to "
                    "%d ms", b->name, b->reason, STORE_BACKOFF_MAX_MS);
        else
            sf_warn("%s unavailable: %s; failing fast, probing with back-off up to %d ms",
                    b->name, b->reason, STORE_BACKOFF_MAX_MS);
    } else {
        b->attempts++;
        if (now - b->logged_at >= STILL_DOWN_LOG_S) {
            b->logged_at = now;
            sf_warn("%s: still unavailable after %u attempts in %.0f s: %s", b->name,
                    b->attempts, now - b->opened_at, b->reason);
        }
    }
    b->state = BREAKER_OPEN;
    b->retry_at = now + store_backoff_ms(b->attempts + 1) / 1000.0;
}

double store_breaker_retry_in(const struct store_breaker *b, double now)
{
    if (b->state != BREAKER_OPEN || now >= b->retry_at)
        return 0;
    return b->retry_at - now;
}
