/*
 * routes/readiness.h — what a serving process tells systemd, or its
 * supervisor under --workers (fcgi/notify.h): that it serves, how many
 * requests it has in flight, and which backends are down.
 *
 * Started once the server accepts and the backends are open: the first
 * report is the process's readiness (READY=1 without --workers).  Then a
 * report every READINESS_SAMPLE_S seconds; fcgi/notify.c sends what changed.
 * Nothing at all when nobody listens (no NOTIFY_SOCKET).
 */
#ifndef SPRINGFIELD_ROUTES_READINESS_H
#define SPRINGFIELD_ROUTES_READINESS_H

#include <stddef.h>

#include <ev.h>

struct app;
struct fcgi_server;

#define READINESS_SAMPLE_S 2.0

struct readiness {
    struct ev_loop *loop; /* NULL: not started */
    struct fcgi_server *server;
    const struct app *app;
    ev_timer sample;
};

void readiness_start(struct readiness *rd, struct ev_loop *loop, struct fcgi_server *server,
                     const struct app *app);
void readiness_stop(struct readiness *rd);

/*
 * The backends whose breaker is not closed (store/breaker.h: they fail
 * fast now, or only a probe goes through), as "redis (marges), weather
 * (maggie)" into out; "" when none is.  Returns how many.  An embedded
 * store is never down.
 */
unsigned backends_down(const struct app *app, char *out, size_t size);

#endif
