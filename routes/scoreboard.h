/*
 * routes/scoreboard.h — what the whole pool counts, in one shared memory.
 *
 * The scoreboard is made once, before any worker is forked (an anonymous
 * memfd mapped shared, so a worker started later, or a springfield
 * re-executed by a reload, maps the same one through its descriptor).  It
 * has a row per worker slot; each worker counts into its own row only
 * (engine, routes, backends), so no row has two writers, and the status
 * page of any worker reads every row: the pool's figures are the sums, and
 * the rows are the per-worker view.  A slot's counters carry on across the
 * workers that take it in turn, so the sums never go down (Prometheus
 * counters), while its pid and start time say who holds it now.
 */
#ifndef SPRINGFIELD_ROUTES_SCOREBOARD_H
#define SPRINGFIELD_ROUTES_SCOREBOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/histogram.h"
#include "fcgi/server.h"
#include "routes/registry.h"
#include "store/op.h"

/* Route tags: 0 is "no route" (404, 414, the status page); 1 + the row
 * of routes/table.c otherwise. */
#define SB_ROUTES 16
/* The registry's rows, then the weather service. */
#define SB_BACKENDS (BACKEND_KV_COUNT + 1)
#define SB_WEATHER BACKEND_KV_COUNT

struct route_stats {
    uint64_t by_class[6]; /* by status / 100: 1xx .. 5xx; [0] anything else */
    struct histogram latency;
};

struct sb_row {
    uint64_t pid;        /* gauge: the worker in this slot now (0: none) */
    uint64_t used;       /* a worker took this slot once: its counters count */
    uint64_t generation; /* of the worker in it (reloads start a new one) */
    double started;      /* when that worker started (seconds since the epoch) */
    uint64_t rss_kib;    /* gauge */
    uint64_t served;     /* requests answered by the worker in it now */
    struct fcgi_stats engine;
    struct route_stats routes[SB_ROUTES];
    struct store_counters backends[SB_BACKENDS];
};

struct scoreboard {
    uint64_t magic;
    uint64_t layout;     /* the sizes of this struct and of a row: an upgraded binary
                          * whose layout differs starts a scoreboard of its own */
    double start_time;   /* the service's */
    uint64_t workers;    /* --workers (0: one process) */
    uint64_t restarts;   /* workers started again after dying */
    uint64_t replacements; /* workers replaced after retiring (--max-requests, --max-rss-mib) */
    uint64_t reloads;
    uint64_t generation;
    uint64_t nrows;
    struct sb_row rows[];
};

/* A new scoreboard of nrows rows; NULL (logged) on failure.  Its
 * descriptor stays open without close-on-exec: scoreboard_fd(). */
struct scoreboard *scoreboard_create(unsigned nrows);

/* The scoreboard behind an inherited descriptor (a reload's new process);
 * NULL (logged) when it is not one. */
struct scoreboard *scoreboard_attach(int fd);

int scoreboard_fd(const struct scoreboard *sb);

/* Takes a slot no process holds, for holder (the process that starts the
 * one to count in it, or that process itself), atomically: two processes
 * (a supervisor and its reload's successor) never take the same one.  -1
 * when every slot is held. */
int scoreboard_reserve(struct scoreboard *sb, pid_t holder);

/* Slot is held by pid, of generation gen, from now: called by whoever
 * starts that process (the supervisor, or a single process for itself). */
void scoreboard_claim(struct scoreboard *sb, unsigned slot, pid_t pid, uint64_t gen);

/* The row of slot, its gauges zeroed (its counters kept): called by the
 * process that counts into it, before it serves. */
struct sb_row *scoreboard_row_begin(struct scoreboard *sb, unsigned slot);

/* The process in slot is gone: its gauges are zeroed (its counters stay). */
void scoreboard_leave(struct scoreboard *sb, unsigned slot);

#endif
