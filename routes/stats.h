/*
 * routes/stats.h — what one serving process counts into its row of the
 * scoreboard (routes/scoreboard.h): each answer by route and status class
 * with its latency, its backends' operations (their counters point into
 * the row), and, once a second, the gauges no event updates (breaker
 * states, operations waiting, worker-pool queues, resident memory).
 */
#ifndef SPRINGFIELD_ROUTES_STATS_H
#define SPRINGFIELD_ROUTES_STATS_H

#include "fcgi/request.h"
#include "routes/app.h"
#include "routes/scoreboard.h"

/* Points app's backends at row and starts the once-a-second publisher.
 * Call after backends_open; row may be NULL (nothing is shared). */
void stats_attach(struct app *app, struct scoreboard *sb, struct sb_row *row);

/* Stops the publisher (before backends_close). */
void stats_detach(struct app *app);

/* fcgi_server_config.on_answer: counts one answer in the row.  (Inline:
 * main.c's answer hook calls it for every answer.) */
static inline void stats_on_answer(void *arg, struct fcgi_request *r, unsigned tag, int status,
                                   double seconds)
{
    struct app *app = arg;
    struct sb_row *row = app->row;
    unsigned class = (unsigned)status / 100; /* (a negative one is huge) */
    struct route_stats *rs;

    (void)r;
    if (!row)
        return;
    rs = &row->routes[tag < SB_ROUTES ? tag : 0];
    stat_add(&rs->by_class[class < 6 ? class : 0], 1);
    histogram_add(&rs->latency, seconds);
    stat_add(&row->served, 1);
}

#endif
