/*
 * fcgi/server.h — a FastCGI responder on one libev loop.
 *
 * It accepts connections on a listening socket, parses records, keeps many
 * requests per connection (FCGI_MPXS_CONNS=1), enforces the limits below,
 * and calls the handler for each complete request.  It knows nothing of
 * routes or backends.
 */
#ifndef SPRINGFIELD_FCGI_SERVER_H
#define SPRINGFIELD_FCGI_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include <ev.h>

#include "fcgi/request.h"

struct fcgi_limits {
    unsigned max_conns;        /* open connections; more are closed at accept */
    unsigned max_reqs;         /* live requests on one connection */
    size_t max_params_bytes;   /* all PARAMS of one request; over -> 431 */
    size_t max_body_bytes;     /* STDIN of one request; over -> 413 */
    size_t max_buffered_bytes; /* bodies held by all requests at once; over -> 503 */
    size_t max_buffered_params_bytes; /* params held by all requests at once; over -> 503 */
    size_t max_output_bytes;      /* unsent answers of all connections; over -> 503 */
    size_t max_conn_output_bytes; /* unsent answers of one connection; over -> 503 */
    double receive_timeout;    /* seconds from BEGIN_REQUEST to the end of its body */
    double request_timeout;    /* seconds from BEGIN_REQUEST to the answer (504); 0: none */
    double slow_request;       /* seconds: answers slower are logged; 0: none */
    double idle_timeout;       /* seconds a connection without requests may stay */
    size_t out_high_water;     /* unsent bytes at which a connection stops reading */
};

void fcgi_limits_default(struct fcgi_limits *l);

typedef void (*fcgi_handler_fn)(struct fcgi_request *r);

/* Why a connection was refused at accept. */
enum fcgi_refusal { FCGI_REFUSED_MAX_CONNS, FCGI_REFUSED_PEER, FCGI_REFUSED_NO_FDS,
                    FCGI_REFUSED_COUNT };

/* Which limit refused a request (or cut it short). */
enum fcgi_limit {
    FCGI_LIMIT_PARAMS,          /* 431: --max-params-bytes */
    FCGI_LIMIT_BODY,            /* 413: --max-body-bytes */
    FCGI_LIMIT_PARAMS_BUDGET,   /* 503 / OVERLOADED: --max-buffered-params-bytes */
    FCGI_LIMIT_BODY_BUDGET,     /* 503: --max-buffered-bytes */
    FCGI_LIMIT_OUTPUT,          /* 503: --max-output-bytes, --max-conn-output-bytes */
    FCGI_LIMIT_MAX_REQS,        /* OVERLOADED: --max-reqs */
    FCGI_LIMIT_RECEIVE_TIMEOUT, /* 408: --receive-timeout */
    FCGI_LIMIT_REQUEST_TIMEOUT, /* 504: --request-timeout-ms */
    FCGI_LIMIT_COUNT
};

/*
 * What the engine counts.  One writer (the server's loop); with --workers
 * it lives in the shared scoreboard, where other processes read it: the
 * fields are written with relaxed atomic stores (common/histogram.h).
 */
struct fcgi_stats {
    uint64_t accepted;
    uint64_t refused[FCGI_REFUSED_COUNT];
    uint64_t requests;        /* begun */
    uint64_t answered;
    uint64_t aborted;         /* by the front server (ABORT_REQUEST) */
    uint64_t protocol_errors; /* connections closed for malformed input */
    uint64_t limits[FCGI_LIMIT_COUNT];
    uint64_t bytes_in, bytes_out;
    uint64_t dropped;         /* unanswered at a shutdown deadline */
    uint64_t connections;     /* gauge: open now */
    uint64_t in_flight;       /* gauge: begun, not answered */
};

/* FCGI_WEB_SERVER_ADDRS, parsed: the peers allowed to connect over TCP. */
struct fcgi_addr_list {
    struct in6_addr *addrs; /* IPv4 as IPv4-mapped IPv6 */
    unsigned n;
};

/*
 * Parses "ADDR[,| ]ADDR..." (IPv4 or IPv6, separated by commas and/or
 * blanks) into out.  0, or -1 with why (SETTING_WHY_MAX bytes) naming the
 * entry that is not an address.  fcgi_addr_list_free releases it.
 */
int fcgi_addr_list_parse(const char *name, const char *list, struct fcgi_addr_list *out,
                         char *why);
void fcgi_addr_list_free(struct fcgi_addr_list *l);

/* The shape of an access-log line (fcgi/access_log.c says both). */
enum fcgi_access_log_format { FCGI_ACCESS_LOG_TEXT, FCGI_ACCESS_LOG_JSON };

struct fcgi_server_config {
    struct fcgi_limits limits;
    fcgi_handler_fn handler;
    void *app;                /* returned by fcgi_request_app() */
    bool access_log;          /* one line per request on stderr */
    enum fcgi_access_log_format access_log_format;
    const struct fcgi_addr_list *allowed; /* NULL or empty: any peer */
    struct fcgi_stats *stats; /* where to count (NULL: the server's own) */
    /* Called as each request is answered, with its tag (as
     * fcgi_request_tag says, at no call's cost), the status sent and the
     * seconds since its BEGIN_REQUEST (metrics, slow-request log). */
    void (*on_answer)(void *app, struct fcgi_request *r, unsigned tag, int status,
                      double seconds);
    /* Lend the handler the params of a request that came whole in one
     * read, not copied (fcgi_request_keep_params in fcgi/request.h says
     * the contract): for a handler that calls fcgi_request_keep_params
     * before it answers any request later than its own return. */
    bool lend_params;
};

struct fcgi_server;

/* Takes over listen_fd (made non-blocking).  NULL with a log line on error. */
struct fcgi_server *fcgi_server_new(struct ev_loop *loop, int listen_fd,
                                    const struct fcgi_server_config *cfg);

/*
 * Graceful stop: no more accepts, idle connections closed, connections
 * with requests in flight closed once those are answered.  done(arg) runs
 * when every connection is gone, or after deadline seconds, when the rest
 * are closed by force: the requests that had not been answered by then are
 * logged and counted (fcgi_server_dropped).
 */
void fcgi_server_shutdown(struct fcgi_server *s, double deadline, void (*done)(void *arg),
                          void *arg);

/* Closes the listening socket and every connection, and frees. */
void fcgi_server_free(struct fcgi_server *s);

/* Counters for logs and tests. */
unsigned fcgi_server_connections(const struct fcgi_server *s);

/* What the server counts (cfg.stats, or its own). */
struct fcgi_stats *fcgi_server_stats(struct fcgi_server *s);

/* Requests left unanswered when the shutdown deadline closed their connections. */
unsigned long fcgi_server_dropped(const struct fcgi_server *s);

/* Requests begun (BEGIN_REQUEST) on a live connection and not answered
 * yet: what the status tells systemd.  Counted when asked, over every
 * connection: for a status every few seconds, not for every request. */
unsigned long fcgi_server_in_flight(const struct fcgi_server *s);

#endif
