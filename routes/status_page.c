/*
 * routes/status_page.c — --status-path: what the whole pool is doing, from
 * the scoreboard (routes/scoreboard.h), in four forms:
 *
 *   plain text (the default)                          for a person
 *   OpenMetrics 1.0 (Accept: application/openmetrics-text, or
 *     ?format=openmetrics)                            for Prometheus' scrape
 *   Prometheus text 0.0.4 (?format=prometheus, or
 *     Accept: text/plain;version=0.0.4)               for promtool and older tools
 *   JSON (Accept: application/json, or ?format=json)  for scripts
 *
 * Any worker answers for the pool: sums over every row, and a row per
 * worker slot.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "config.h"
#include "routes/app.h"
#include "routes/handlers.h"
#include "routes/scoreboard.h"
#include "routes/status_page.h"
#include "routes/table.h"
#include "store/breaker.h"

enum format { FMT_TEXT, FMT_OPENMETRICS, FMT_PROMETHEUS, FMT_JSON };

/* The pool's figures: the rows summed. */
struct totals {
    struct fcgi_stats engine;
    struct route_stats routes[SB_ROUTES];
    struct store_counters backends[SB_BACKENDS];
    unsigned live_workers;
};

static void sum_engine(struct fcgi_stats *to, const struct fcgi_stats *from)
{
    const uint64_t *f = (const uint64_t *)from;
    uint64_t *t = (uint64_t *)to;

    for (size_t i = 0; i < sizeof *from / sizeof(uint64_t); i++)
        t[i] += stat_read(&f[i]);
}

static void sum_backend(struct store_counters *to, const struct store_counters *from)
{
    for (unsigned i = 0; i <= STORE_ERROR; i++)
        to->results[i] += stat_read(&from->results[i]);
    to->reconnects += stat_read(&from->reconnects);
    histogram_sum(&to->latency, &from->latency);
    to->pending += stat_read(&from->pending);
    to->queued += stat_read(&from->queued);
    /* the worst state any worker sees: open > half-open > closed */
    if (stat_read(&from->breaker_state) != BREAKER_CLOSED &&
        (to->breaker_state == BREAKER_CLOSED ||
         stat_read(&from->breaker_state) == BREAKER_OPEN))
        to->breaker_state = stat_read(&from->breaker_state);
}

static void add_up(const struct scoreboard *sb, struct totals *t)
{
    memset(t, 0, sizeof *t);
    for (uint64_t i = 0; i < sb->nrows; i++) {
        const struct sb_row *row = &sb->rows[i];

        if (!__atomic_load_n(&row->used, __ATOMIC_ACQUIRE))
            continue;
        t->live_workers += __atomic_load_n(&row->pid, __ATOMIC_ACQUIRE) != 0;
        sum_engine(&t->engine, &row->engine);
        for (unsigned r = 0; r < SB_ROUTES; r++) {
            for (unsigned c = 0; c < 6; c++)
                t->routes[r].by_class[c] += stat_read(&row->routes[r].by_class[c]);
            histogram_sum(&t->routes[r].latency, &row->routes[r].latency);
        }
        for (unsigned b = 0; b < SB_BACKENDS; b++)
            sum_backend(&t->backends[b], &row->backends[b]);
    }
}

/* ---- names ------------------------------------------------------------- */

/* The route's label, as the access log has it (router.h: route_label). */
static const char *route_name(const struct app *app, unsigned tag)
{
    size_t n;
    const struct route *table = route_table(&n);

    if (tag > 0 && tag <= n)
        return route_label(&table[tag - 1]);
    return tag == n + 1 && app->status_path ? app->status_path : "none";
}

static bool route_shown(const struct totals *t, unsigned tag)
{
    size_t n;

    route_table(&n);
    return tag <= n + 1 || t->routes[tag].latency.count > 0;
}

static const char *backend_name(unsigned i)
{
    return i < BACKEND_KV_COUNT ? backend_registry[i].route : "maggie";
}

static const char *backend_kind(const struct app *app, unsigned i)
{
    if (i < BACKEND_KV_COUNT)
        return app->kv[i] ? app->kv[i]->be.kind : "?";
    return app->weather ? "weather" : "canned";
}

static const char *const refusal_names[FCGI_REFUSED_COUNT] = {"max_conns", "peer", "no_fds"};
static const char *const limit_names[FCGI_LIMIT_COUNT] = {
    "params", "body", "params_budget", "body_budget", "output",
    "max_reqs", "receive_timeout", "request_timeout"};
static const char *const class_names[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

/* ---- writing ----------------------------------------------------------- */

static void out(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out(struct buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* The metric exposition: OpenMetrics names a counter's family without
 * "_total" and its sample with it; the Prometheus text format names both
 * with it.  Both want a HELP and a TYPE before the samples. */
struct expo {
    struct buf *b;
    enum format fmt;
};

static void family(struct expo *e, const char *name, const char *type, const char *help)
{
    const char *suffix = "";

    if (e->fmt == FMT_PROMETHEUS && !strcmp(type, "counter"))
        suffix = "_total";
    if (e->fmt == FMT_PROMETHEUS && !strcmp(type, "info")) { /* 0.0.4 has no info type */
        suffix = "_info";
        type = "gauge";
    }
    out(e->b, "# HELP %s%s %s\n", name, suffix, help);
    out(e->b, "# TYPE %s%s %s\n", name, suffix, type);
}

static void sample(struct expo *e, const char *name, const char *suffix, const char *labels,
                   double v)
{
    out(e->b, "%s%s%s%s%s %.17g\n", name, suffix, labels && *labels ? "{" : "",
        labels ? labels : "", labels && *labels ? "}" : "", v);
}

static void histogram_samples(struct expo *e, const char *name, const char *labels,
                              const struct histogram *h)
{
    char l[256];
    uint64_t cum = 0;

    for (unsigned i = 0; i <= HISTOGRAM_BOUNDS; i++) {
        cum += h->bucket[i];
        if (i < HISTOGRAM_BOUNDS)
            snprintf(l, sizeof l, "%s%sle=\"%g\"", labels, *labels ? "," : "",
                     histogram_bound(i));
        else
            snprintf(l, sizeof l, "%s%sle=\"+Inf\"", labels, *labels ? "," : "");
        sample(e, name, "_bucket", l, (double)cum);
    }
    sample(e, name, "_sum", labels, h->sum_us / 1e6);
    sample(e, name, "_count", labels, (double)h->count);
}

/* A family with one sample per backend, and one per worker slot in use. */
struct backend_series {
    const char *name, *type, *help;
    double (*value)(const struct store_counters *c);
};

struct worker_series {
    const char *name, *type, *help;
    double (*value)(const struct sb_row *r);
};

static void per_backend(struct expo *e, const struct totals *t, const struct backend_series *bs)
{
    char l[128];

    family(e, bs->name, bs->type, bs->help);
    for (unsigned i = 0; i < SB_BACKENDS; i++) {
        snprintf(l, sizeof l, "backend=\"%s\"", backend_name(i));
        sample(e, bs->name, !strcmp(bs->type, "counter") ? "_total" : "", l,
               bs->value(&t->backends[i]));
    }
}

static void per_worker(struct expo *e, const struct scoreboard *sb, const struct worker_series *ws)
{
    char l[64];

    family(e, ws->name, ws->type, ws->help);
    for (uint64_t i = 0; i < sb->nrows; i++)
        if (stat_read(&sb->rows[i].used)) {
            snprintf(l, sizeof l, "worker=\"%llu\"", (unsigned long long)i);
            sample(e, ws->name, !strcmp(ws->type, "counter") ? "_total" : "", l,
                   ws->value(&sb->rows[i]));
        }
}

static double backend_breaker(const struct store_counters *c) { return (double)c->breaker_state; }
static double backend_reconnects(const struct store_counters *c) { return (double)c->reconnects; }
static double backend_pending(const struct store_counters *c) { return (double)c->pending; }
static double backend_queued(const struct store_counters *c) { return (double)c->queued; }

static const struct backend_series breaker_series = {
    "springfield_backend_breaker_state", "gauge",
    "The backend's breaker: 0 closed, 1 open, 2 half-open (the worst of the workers).",
    backend_breaker};

static const struct backend_series backend_series[] = {
    {"springfield_backend_reconnects", "counter",
     "Connections to the backend made again after it went away.", backend_reconnects},
    {"springfield_backend_pending", "gauge", "Backend operations waiting for a result.",
     backend_pending},
    {"springfield_backend_queued", "gauge",
     "Jobs waiting in the backend's worker pool (MongoDB, S3).", backend_queued},
};

static double worker_pid(const struct sb_row *r) { return (double)stat_read(&r->pid); }
static double worker_started(const struct sb_row *r) { return r->started; }
static double worker_answered(const struct sb_row *r)
{
    return (double)stat_read(&r->engine.answered);
}
static double worker_in_flight(const struct sb_row *r)
{
    return (double)stat_read(&r->engine.in_flight);
}
static double worker_connections(const struct sb_row *r)
{
    return (double)stat_read(&r->engine.connections);
}
static double worker_rss_bytes(const struct sb_row *r)
{
    return (double)stat_read(&r->rss_kib) * 1024;
}

static const struct worker_series worker_series[] = {
    {"springfield_worker_pid", "gauge", "The process in each worker slot (0: none).", worker_pid},
    {"springfield_worker_start_time_seconds", "gauge", "When the process in each slot started.",
     worker_started},
    {"springfield_worker_requests", "counter", "Requests answered, per worker slot.",
     worker_answered},
    {"springfield_worker_requests_in_flight", "gauge", "Requests in flight, per worker slot.",
     worker_in_flight},
    {"springfield_worker_connections", "gauge", "Connections open, per worker slot.",
     worker_connections},
    {"springfield_worker_resident_memory_bytes", "gauge", "Resident memory, per worker slot.",
     worker_rss_bytes},
};

static void exposition(struct buf *b, enum format fmt, const struct scoreboard *sb,
                       const struct app *app, const struct totals *t)
{
    struct expo e = {b, fmt};
    const char *total = "_total";
    char l[256];

    family(&e, "springfield", "info", "The springfield that answers.");
    sample(&e, "springfield", "_info", "version=\"" PACKAGE_VERSION "\"", 1);
    family(&e, "springfield_start_time_seconds", "gauge", "When the service started.");
    sample(&e, "springfield_start_time_seconds", "", "", sb->start_time);
    family(&e, "springfield_workers", "gauge", "Worker processes configured (0: one process).");
    sample(&e, "springfield_workers", "", "", (double)sb->workers);
    family(&e, "springfield_workers_live", "gauge", "Worker processes serving now.");
    sample(&e, "springfield_workers_live", "", "", t->live_workers);
    family(&e, "springfield_worker_restarts", "counter", "Workers started again after dying.");
    sample(&e, "springfield_worker_restarts", total, "", (double)sb->restarts);
    family(&e, "springfield_worker_replacements", "counter",
           "Workers replaced after --max-requests or --max-rss-mib.");
    sample(&e, "springfield_worker_replacements", total, "", (double)sb->replacements);
    family(&e, "springfield_reloads", "counter", "Reloads (new generations of workers).");
    sample(&e, "springfield_reloads", total, "", (double)sb->reloads);

    family(&e, "springfield_connections", "gauge", "FastCGI connections open.");
    sample(&e, "springfield_connections", "", "", (double)t->engine.connections);
    family(&e, "springfield_connections_accepted", "counter", "FastCGI connections accepted.");
    sample(&e, "springfield_connections_accepted", total, "", (double)t->engine.accepted);
    family(&e, "springfield_connections_refused", "counter",
           "FastCGI connections refused at accept, by reason.");
    for (unsigned i = 0; i < FCGI_REFUSED_COUNT; i++) {
        snprintf(l, sizeof l, "reason=\"%s\"", refusal_names[i]);
        sample(&e, "springfield_connections_refused", total, l, (double)t->engine.refused[i]);
    }
    family(&e, "springfield_requests_in_flight", "gauge", "Requests begun and not answered.");
    sample(&e, "springfield_requests_in_flight", "", "", (double)t->engine.in_flight);
    family(&e, "springfield_requests", "counter", "Requests answered, by route and status class.");
    for (unsigned r = 0; r < SB_ROUTES; r++) {
        if (!route_shown(t, r))
            continue;
        for (unsigned c = 2; c < 6; c++) { /* no 1xx: a responder sends none */
            snprintf(l, sizeof l, "route=\"%s\",class=\"%s\"", route_name(app, r), class_names[c]);
            sample(&e, "springfield_requests", total, l, (double)t->routes[r].by_class[c]);
        }
    }
    family(&e, "springfield_request_duration_seconds", "histogram",
           "Time from BEGIN_REQUEST to the answer, by route.");
    for (unsigned r = 0; r < SB_ROUTES; r++) {
        if (!route_shown(t, r))
            continue;
        snprintf(l, sizeof l, "route=\"%s\"", route_name(app, r));
        histogram_samples(&e, "springfield_request_duration_seconds", l, &t->routes[r].latency);
    }
    family(&e, "springfield_requests_aborted", "counter", "Requests the front server aborted.");
    sample(&e, "springfield_requests_aborted", total, "", (double)t->engine.aborted);
    family(&e, "springfield_requests_dropped", "counter",
           "Requests left unanswered at a shutdown deadline.");
    sample(&e, "springfield_requests_dropped", total, "", (double)t->engine.dropped);
    family(&e, "springfield_protocol_errors", "counter",
           "FastCGI connections closed for malformed input.");
    sample(&e, "springfield_protocol_errors", total, "", (double)t->engine.protocol_errors);
    family(&e, "springfield_limit_refusals", "counter", "Requests refused by a limit, by limit.");
    for (unsigned i = 0; i < FCGI_LIMIT_COUNT; i++) {
        snprintf(l, sizeof l, "limit=\"%s\"", limit_names[i]);
        sample(&e, "springfield_limit_refusals", total, l, (double)t->engine.limits[i]);
    }
    family(&e, "springfield_received_bytes", "counter", "Bytes read from front servers.");
    sample(&e, "springfield_received_bytes", total, "", (double)t->engine.bytes_in);
    family(&e, "springfield_sent_bytes", "counter", "Bytes written to front servers.");
    sample(&e, "springfield_sent_bytes", total, "", (double)t->engine.bytes_out);

    family(&e, "springfield_backend_up", "gauge",
           "1 while the backend's breaker is closed in every worker.");
    for (unsigned i = 0; i < SB_BACKENDS; i++) {
        snprintf(l, sizeof l, "backend=\"%s\",kind=\"%s\"", backend_name(i), backend_kind(app, i));
        sample(&e, "springfield_backend_up", "", l,
               t->backends[i].breaker_state == BREAKER_CLOSED);
    }
    per_backend(&e, t, &breaker_series);
    family(&e, "springfield_backend_operations", "counter", "Backend operations, by result.");
    for (unsigned i = 0; i < SB_BACKENDS; i++)
        for (unsigned s = 0; s <= STORE_ERROR; s++) {
            snprintf(l, sizeof l, "backend=\"%s\",result=\"%s\"", backend_name(i),
                     store_status_name((enum store_status)s));
            for (char *p = l; *p; p++)
                if (*p == ' ')
                    *p = '_';
            sample(&e, "springfield_backend_operations", total, l,
                   (double)t->backends[i].results[s]);
        }
    family(&e, "springfield_backend_duration_seconds", "histogram",
           "Backend operations' time to their result.");
    for (unsigned i = 0; i < SB_BACKENDS; i++) {
        snprintf(l, sizeof l, "backend=\"%s\"", backend_name(i));
        histogram_samples(&e, "springfield_backend_duration_seconds", l,
                          &t->backends[i].latency);
    }
    for (size_t i = 0; i < sizeof backend_series / sizeof backend_series[0]; i++)
        per_backend(&e, t, &backend_series[i]);
    for (size_t i = 0; i < sizeof worker_series / sizeof worker_series[0]; i++)
        per_worker(&e, sb, &worker_series[i]);
    if (fmt == FMT_OPENMETRICS)
        out(b, "# EOF\n");
}

static void text(struct buf *b, const struct scoreboard *sb, const struct app *app,
                 const struct totals *t)
{
    time_t start = (time_t)sb->start_time;
    char when[32];
    struct tm tm;

    gmtime_r(&start, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    out(b, "springfield %s, up since %s; this is process %d\n", PACKAGE_VERSION, when,
        (int)getpid());
    out(b, "workers: %u serving of %llu configured; %llu restarted, %llu replaced, "
           "%llu reloads\n",
        t->live_workers, (unsigned long long)sb->workers, (unsigned long long)sb->restarts,
        (unsigned long long)sb->replacements, (unsigned long long)sb->reloads);
    out(b, "connections: %llu open, %llu accepted, refused: %llu max-conns, %llu peer, "
           "%llu no descriptor\n",
        (unsigned long long)t->engine.connections, (unsigned long long)t->engine.accepted,
        (unsigned long long)t->engine.refused[0], (unsigned long long)t->engine.refused[1],
        (unsigned long long)t->engine.refused[2]);
    out(b, "requests: %llu in flight, %llu answered, %llu aborted, %llu dropped; "
           "%llu protocol errors; bytes in %llu, out %llu\n",
        (unsigned long long)t->engine.in_flight, (unsigned long long)t->engine.answered,
        (unsigned long long)t->engine.aborted, (unsigned long long)t->engine.dropped,
        (unsigned long long)t->engine.protocol_errors, (unsigned long long)t->engine.bytes_in,
        (unsigned long long)t->engine.bytes_out);
    out(b, "limits:");
    for (unsigned i = 0; i < FCGI_LIMIT_COUNT; i++)
        out(b, " %s %llu", limit_names[i], (unsigned long long)t->engine.limits[i]);
    out(b, "\nroutes:\n");
    for (unsigned r = 0; r < SB_ROUTES; r++) {
        const struct route_stats *rs = &t->routes[r];

        if (!route_shown(t, r))
            continue;
        out(b, "  %-22s 2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu; mean %.2f ms\n", route_name(app, r),
            (unsigned long long)rs->by_class[2], (unsigned long long)rs->by_class[3],
            (unsigned long long)rs->by_class[4], (unsigned long long)rs->by_class[5],
            rs->latency.count ? rs->latency.sum_us / 1e3 / (double)rs->latency.count : 0.0);
    }
    out(b, "backends:\n");
    for (unsigned i = 0; i < SB_BACKENDS; i++) {
        const struct store_counters *c = &t->backends[i];

        out(b, "  %-7s %-9s breaker %-9s ok %llu, not found %llu, unavailable %llu, "
               "timeout %llu, other %llu; %llu reconnects, %llu pending, %llu queued\n",
            backend_name(i), backend_kind(app, i),
            store_breaker_state_name((enum store_breaker_state)c->breaker_state),
            (unsigned long long)c->results[STORE_OK], (unsigned long long)c->results[STORE_NOT_FOUND],
            (unsigned long long)c->results[STORE_UNAVAILABLE],
            (unsigned long long)c->results[STORE_TIMEOUT],
            (unsigned long long)(c->results[STORE_BAD_INPUT] + c->results[STORE_TOO_LARGE] +
                                 c->results[STORE_BAD_UPSTREAM] + c->results[STORE_ERROR]),
            (unsigned long long)c->reconnects, (unsigned long long)c->pending,
            (unsigned long long)c->queued);
    }
    out(b, "workers:\n");
    for (uint64_t i = 0; i < sb->nrows; i++) {
        const struct sb_row *row = &sb->rows[i];

        if (!row->used)
            continue;
        out(b, "  slot %llu: pid %llu, generation %llu, %llu answered, %llu in flight, "
               "%llu connections, %llu KiB\n",
            (unsigned long long)i, (unsigned long long)stat_read(&row->pid),
            (unsigned long long)row->generation, (unsigned long long)stat_read(&row->engine.answered),
            (unsigned long long)stat_read(&row->engine.in_flight),
            (unsigned long long)stat_read(&row->engine.connections),
            (unsigned long long)stat_read(&row->rss_kib));
    }
}

static char *json(const struct scoreboard *sb, const struct app *app, const struct totals *t)
{
    cJSON *doc = cJSON_CreateObject(), *o, *routes, *backends, *workers, *x;
    char *s;

    cJSON_AddStringToObject(doc, "version", PACKAGE_VERSION);
    cJSON_AddNumberToObject(doc, "start_time", sb->start_time);
    cJSON_AddNumberToObject(doc, "answered_by", (double)getpid());
    cJSON_AddNumberToObject(doc, "workers_configured", (double)sb->workers);
    cJSON_AddNumberToObject(doc, "workers_live", t->live_workers);
    cJSON_AddNumberToObject(doc, "worker_restarts", (double)sb->restarts);
    cJSON_AddNumberToObject(doc, "worker_replacements", (double)sb->replacements);
    cJSON_AddNumberToObject(doc, "reloads", (double)sb->reloads);
    o = cJSON_AddObjectToObject(doc, "connections");
    cJSON_AddNumberToObject(o, "open", (double)t->engine.connections);
    cJSON_AddNumberToObject(o, "accepted", (double)t->engine.accepted);
    x = cJSON_AddObjectToObject(o, "refused");
    for (unsigned i = 0; i < FCGI_REFUSED_COUNT; i++)
        cJSON_AddNumberToObject(x, refusal_names[i], (double)t->engine.refused[i]);
    o = cJSON_AddObjectToObject(doc, "requests");
    cJSON_AddNumberToObject(o, "in_flight", (double)t->engine.in_flight);
    cJSON_AddNumberToObject(o, "answered", (double)t->engine.answered);
    cJSON_AddNumberToObject(o, "aborted", (double)t->engine.aborted);
    cJSON_AddNumberToObject(o, "dropped", (double)t->engine.dropped);
    cJSON_AddNumberToObject(o, "protocol_errors", (double)t->engine.protocol_errors);
    cJSON_AddNumberToObject(o, "bytes_in", (double)t->engine.bytes_in);
    cJSON_AddNumberToObject(o, "bytes_out", (double)t->engine.bytes_out);
    x = cJSON_AddObjectToObject(o, "limit_refusals");
    for (unsigned i = 0; i < FCGI_LIMIT_COUNT; i++)
        cJSON_AddNumberToObject(x, limit_names[i], (double)t->engine.limits[i]);
    routes = cJSON_AddObjectToObject(doc, "routes");
    for (unsigned r = 0; r < SB_ROUTES; r++) {
        const struct route_stats *rs = &t->routes[r];

        if (!route_shown(t, r))
            continue;
        x = cJSON_AddObjectToObject(routes, route_name(app, r));
        for (unsigned c = 0; c < 6; c++)
            cJSON_AddNumberToObject(x, class_names[c], (double)rs->by_class[c]);
        cJSON_AddNumberToObject(x, "count", (double)rs->latency.count);
        cJSON_AddNumberToObject(x, "seconds", rs->latency.sum_us / 1e6);
    }
    backends = cJSON_AddObjectToObject(doc, "backends");
    for (unsigned i = 0; i < SB_BACKENDS; i++) {
        const struct store_counters *c = &t->backends[i];
        cJSON *res;

        x = cJSON_AddObjectToObject(backends, backend_name(i));
        cJSON_AddStringToObject(x, "kind", backend_kind(app, i));
        cJSON_AddStringToObject(x, "breaker",
                                store_breaker_state_name((enum store_breaker_state)c->breaker_state));
        res = cJSON_AddObjectToObject(x, "results");
        for (unsigned s2 = 0; s2 <= STORE_ERROR; s2++)
            cJSON_AddNumberToObject(res, store_status_name((enum store_status)s2),
                                    (double)c->results[s2]);
        cJSON_AddNumberToObject(x, "reconnects", (double)c->reconnects);
        cJSON_AddNumberToObject(x, "pending", (double)c->pending);
        cJSON_AddNumberToObject(x, "queued", (double)c->queued);
        cJSON_AddNumberToObject(x, "seconds", c->latency.sum_us / 1e6);
    }
    workers = cJSON_AddArrayToObject(doc, "workers");
    for (uint64_t i = 0; i < sb->nrows; i++) {
        const struct sb_row *row = &sb->rows[i];

        if (!row->used)
            continue;
        x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "slot", (double)i);
        cJSON_AddNumberToObject(x, "pid", (double)stat_read(&row->pid));
        cJSON_AddNumberToObject(x, "generation", (double)row->generation);
        cJSON_AddNumberToObject(x, "started", row->started);
        cJSON_AddNumberToObject(x, "answered", (double)stat_read(&row->engine.answered));
        cJSON_AddNumberToObject(x, "served", (double)stat_read(&row->served));
        cJSON_AddNumberToObject(x, "in_flight", (double)stat_read(&row->engine.in_flight));
        cJSON_AddNumberToObject(x, "connections", (double)stat_read(&row->engine.connections));
        cJSON_AddNumberToObject(x, "rss_kib", (double)stat_read(&row->rss_kib));
        cJSON_AddItemToArray(workers, x);
    }
    s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return s;
}

/* What was asked for: ?format= wins, then Accept. */
static enum format wanted(struct fcgi_request *r)
{
    const char *q = fcgi_param(r, "QUERY_STRING"), *accept = fcgi_param(r, "HTTP_ACCEPT");
    const char *f = q ? strstr(q, "format=") : NULL;

    if (f && (f == q || f[-1] == '&')) {
        f += 7;
        if (!strncmp(f, "openmetrics", 11))
            return FMT_OPENMETRICS;
        if (!strncmp(f, "prometheus", 10))
            return FMT_PROMETHEUS;
        if (!strncmp(f, "json", 4))
            return FMT_JSON;
        return FMT_TEXT;
    }
    if (accept && strstr(accept, "application/openmetrics-text"))
        return FMT_OPENMETRICS;
    if (accept && strstr(accept, "application/json"))
        return FMT_JSON;
    if (accept && strstr(accept, "version=0.0.4"))
        return FMT_PROMETHEUS;
    return FMT_TEXT;
}

void status_page_get(struct fcgi_request *r)
{
    const struct app *app = fcgi_request_app(r);
    enum format fmt = wanted(r);
    struct totals *t = malloc(sizeof *t);
    struct buf b = {NULL, 0, 0};

    if (!t || !app->scoreboard) {
        free(t);
        fcgi_respond_error(r, 500, "no scoreboard");
        return;
    }
    add_up(app->scoreboard, t);
    if (fmt == FMT_JSON) {
        char *s = json(app->scoreboard, app, t);

        if (s)
            fcgi_respond(r, 200, "application/json", s, strlen(s));
        else
            fcgi_respond_error(r, 500, "out of memory for the status");
        free(s);
        free(t);
        return;
    }
    if (fmt == FMT_TEXT)
        text(&b, app->scoreboard, app, t);
    else
        exposition(&b, fmt, app->scoreboard, app, t);
    free(t);
    fcgi_respond(r, 200,
                 fmt == FMT_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; "
                                          "charset=utf-8"
                 : fmt == FMT_PROMETHEUS ? "text/plain; version=0.0.4; charset=utf-8"
                                         : FCGI_TEXT_PLAIN,
                 b.data ? (const char *)b.data : "", b.len);
    buf_free(&b);
}
