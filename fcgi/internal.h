/*
 * fcgi/internal.h — the structures the engine's files share: server,
 * connection, request.  Not for handlers: they see fcgi/request.h.
 *
 * Ownership.  The server owns its connections (a list kept in order of
 * last activity, so the idle sweep looks only at the oldest).  A
 * connection owns the table of its live requests.  A request is freed when
 * both the connection's reference (dropped when it is answered, aborted
 * or the connection closes) and the handler's reference (dropped by its
 * one answer) are gone, so an answer arriving after the connection died
 * finds a valid request and is dropped quietly.
 */
#ifndef SPRINGFIELD_FCGI_INTERNAL_H
#define SPRINGFIELD_FCGI_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "fcgi/buf.h"
#include "fcgi/codec.h"
#include "fcgi/server.h"

enum request_state {
    REQ_PARAMS,  /* receiving PARAMS */
    REQ_STDIN,   /* params complete, receiving the body */
    REQ_HANDLER, /* handed to the handler, not yet answered */
    REQ_DRAIN    /* answered early (or refused): records for it are read and dropped */
};

struct fcgi_request {
    struct fcgi_conn *conn; /* NULL once the connection is gone */
    struct fcgi_server *srv;
    uint16_t id;
    uint8_t state;
    uint8_t refs;      /* connection + handler */
    bool keep_conn;
    bool head_only;
    bool answered;     /* END_REQUEST written (or aborted) */
    struct buf params; /* raw pairs, then decoded in place as name\0value\0... */
    struct buf body;
    struct buf headers; /* extra response headers */
    const char *method, *script_name, *path_info, *request_uri;
    size_t content_length;
    bool has_content_length;
    bool linger;    /* answered early: the peer may still be sending its records */
    size_t charged; /* body bytes counted in the server's buffered_bytes */
    double started;
    void *user;
};

struct fcgi_conn {
    ev_io rio, wio;
    ev_timer linger; /* closing, but records are still on their way */
    struct fcgi_server *srv;
    struct fcgi_conn *prev, *next; /* in the server's list, oldest activity first */
    int fd;
    double last_active;
    struct fcgi_parser parser;
    struct fcgi_request *cur; /* request the record being parsed belongs to */
    struct fcgi_request **reqs;
    unsigned nreqs, reqs_cap, handling; /* handling: requests in REQ_HANDLER */
    struct buf rec;   /* content of BEGIN_REQUEST / GET_VALUES records */
    struct buf in;    /* input held back while the output is over its mark */
    struct buf out;
    size_t out_off;   /* bytes of out already written */
    unsigned busy;    /* >0 while the read callback runs: defer flush and close */
    bool closing;     /* close once the output is flushed and no request is handled */
    bool dead;        /* close as soon as possible */
    bool paused;      /* reading stopped: too much unsent output */
    bool eof;         /* the peer will send nothing more */
};

struct fcgi_server {
    struct ev_loop *loop;
    struct fcgi_server_config cfg;
    int listen_fd;
    ev_io accept_w;
    ev_timer accept_retry;
    ev_timer idle_sweep;
    ev_timer deadline;
    ev_prepare log_flush;
    struct fcgi_conn *head, *tail;
    unsigned nconns;
    size_t buffered_bytes; /* request bodies held right now, all connections */
    bool shutting_down;
    void (*done)(void *arg);
    void *done_arg;
    struct buf access; /* access-log lines waiting for one write() */
    unsigned long access_dropped; /* lines dropped while stderr was full */
    struct in6_addr *allowed; /* FCGI_WEB_SERVER_ADDRS (IPv4 as mapped) */
    unsigned nallowed;
    double last_refusal_log;
};

/* conn.c */
void conn_accepted(struct fcgi_server *s, int fd);
void conn_destroy(struct fcgi_conn *c);
void conn_flush(struct fcgi_conn *c);
void conn_maybe_close(struct fcgi_conn *c);
void conn_touch(struct fcgi_conn *c);

/* request.c */
struct fcgi_request *request_new(struct fcgi_conn *c, uint16_t id, bool keep_conn);
void request_unref(struct fcgi_request *r);
int request_decode_params(struct fcgi_request *r, const char **why);
/* Writes a complete answer for a request the handler does not hold. */
void request_answer(struct fcgi_request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void request_detach(struct fcgi_request *r); /* drop from the connection's table */

/* access_log.c */
void access_log_add(struct fcgi_server *s, const struct fcgi_request *r, int status,
                    size_t bytes);
void access_log_flush(struct fcgi_server *s);

#endif
