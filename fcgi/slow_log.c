/*
 * fcgi/slow_log.c — --slow-request-ms: a request answered slower than that
 * is logged, with its route and each backend operation it waited for:
 *
 *   slow request: GET /api/v1/healthcheck 503 after 2003 ms (route
 *   /api/v1/healthcheck); backends: marges redis 1 ms, homers mongodb
 *   2001 ms, lisas embedded 0 ms
 *
 * At most SLOW_LINES_PER_S lines a second: past that they are counted and
 * the count is told with the next line that passes, so a backend that
 * slows every request down cannot flood the log.
 */
#include <stdio.h>
#include <string.h>

#include "fcgi/internal.h"

#define SLOW_LINES_PER_S 20

static bool room_for_a_line(struct fcgi_server *s, unsigned long *suppressed)
{
    double now = ev_now(s->loop);

    if (now - s->slow_window >= 1.0) {
        s->slow_window = now;
        s->slow_in_window = 0;
    }
    *suppressed = s->slow_log.suppressed;
    if (s->slow_in_window >= SLOW_LINES_PER_S) {
        s->slow_log.suppressed++;
        return false;
    }
    s->slow_in_window++;
    s->slow_log.suppressed = 0;
    return true;
}

void slow_log_check(struct fcgi_server *s, const struct fcgi_request *r, int status,
                    double seconds)
{
    char backends[512] = "", more[64] = "";
    size_t used = 0;
    unsigned long suppressed;

    if (!room_for_a_line(s, &suppressed))
        return;
    for (unsigned i = 0; i < r->nnotes && used < sizeof backends; i++)
        used += (size_t)snprintf(backends + used, sizeof backends - used, "%s%s %.0f ms",
                                 i ? ", " : "; backends: ", r->notes[i].what,
                                 r->notes[i].seconds * 1000);
    if (!r->nnotes) {
        unsigned waits;
        double waited = fcgi_request_backend_time(r, &waits);

        snprintf(backends, sizeof backends, waits ? "; backends: %.0f ms in all" : "; no backend",
                 waited * 1000);
    }
    if (suppressed)
        snprintf(more, sizeof more, " (%lu more slow requests not logged)", suppressed);
    sf_warn("slow request: %.16s %.256s%.256s %d after %.0f ms (route %s)%s%s",
            r->known[KNOWN_REQUEST_METHOD].s ? r->known[KNOWN_REQUEST_METHOD].s : "-",
            r->known[KNOWN_SCRIPT_NAME].s ? r->known[KNOWN_SCRIPT_NAME].s : "",
            r->known[KNOWN_PATH_INFO].s ? r->known[KNOWN_PATH_INFO].s : "", status,
            seconds * 1000,
            r->label ? r->label : "none", backends, more);
}
