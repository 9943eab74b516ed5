/*
 * fcgi/request.h — what a handler sees of a FastCGI request, and how it
 * answers.
 *
 * A handler is called once PARAMS and STDIN are complete.  It must answer
 * exactly once, with fcgi_respond() (or fcgi_respond_error()), either
 * before it returns or later from a completion callback on the loop
 * thread.  The request stays valid until that answer, whatever happens to
 * its connection meanwhile: if the front server aborted the request or
 * closed the connection, fcgi_request_alive() turns false and the answer
 * is dropped quietly.  After answering, the request must not be touched.
 * Every call here is for the loop's thread, those that read the request
 * too: the first fcgi_param of a name other than the four known below
 * indexes the params then, in place.
 */
#ifndef SPRINGFIELD_FCGI_REQUEST_H
#define SPRINGFIELD_FCGI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fcgi_request;
struct ev_loop;

/* The value of a CGI parameter (NUL-terminated), or NULL when absent.
 * When a name comes twice, the first counts (the last for the four
 * below). */
const char *fcgi_param(const struct fcgi_request *r, const char *name);

/*
 * The params the engine and the router read on every request, found
 * while decoding: fcgi_known_param() gives one with its length, without
 * a scan or a strlen.  When such a name comes twice, the last counts
 * (for fcgi_param too).
 */
enum fcgi_known_param {
    FCGI_REQUEST_METHOD,
    FCGI_SCRIPT_NAME,
    FCGI_PATH_INFO,
    FCGI_REQUEST_URI,
};

/* The value of one of them (NUL-terminated, as fcgi_param gives it) and
 * in *len its length; NULL and 0 when absent. */
const char *fcgi_known_param(const struct fcgi_request *r, enum fcgi_known_param which,
                             size_t *len);

/* A param's value (NUL-terminated) and its length; NULL and 0 when absent. */
struct fcgi_param_str {
    const char *s;
    size_t len;
};

/*
 * What the router reads of every request, in one call: the four params
 * above, indexed by enum fcgi_known_param (as fcgi_known_param gives
 * them), and the application pointer (fcgi_request_app).  The params stay
 * valid as long as the request.
 */
struct fcgi_request_routing {
    const struct fcgi_param_str *known;
    void *app;
};

struct fcgi_request_routing fcgi_request_routing(const struct fcgi_request *r);

/*
 * Lent params (fcgi_server_config.lend_params): the params of a request
 * that came whole in one read are not copied, the handler reads them
 * where they came in, and they stay valid only until the handler returns
 * (or answers).  A handler that may answer later calls this first,
 * before it looks a param up for keeping: the params are copied into the
 * request's own memory, charged to the params budget, and what
 * fcgi_known_param and fcgi_request_routing give moves with them (look
 * again after the call; a pointer taken before it is to the old place).
 * 0, also when the params were not lent; -1 when the budget or memory is
 * short, the params still lent (answer now: a 503).  A handler that
 * returns unanswered with its params still lent is a bug: the engine
 * copies them then (logged), or answers 503 when it cannot.
 */
int fcgi_request_keep_params(struct fcgi_request *r);

/* Calls fn for every parameter in the order received: the name is
 * name_len bytes, not NUL-terminated; the value is NUL-terminated. */
void fcgi_param_each(const struct fcgi_request *r,
                     void (*fn)(void *arg, const char *name, size_t name_len, const char *value),
                     void *arg);

/* The request body (STDIN); *len is set; never NULL (empty body: ""). */
const uint8_t *fcgi_body(const struct fcgi_request *r, size_t *len);

/* False once the front server aborted the request or the connection is
 * gone: work for it can stop, the answer will be dropped. */
bool fcgi_request_alive(const struct fcgi_request *r);

/* The loop the request lives on. */
struct ev_loop *fcgi_request_loop(const struct fcgi_request *r);

/* Answer HEAD: headers with the body's Content-Length, no body. */
void fcgi_request_set_head_only(struct fcgi_request *r, bool head_only);

/* The application pointer given to the server (fcgi_server_config.app). */
void *fcgi_request_app(const struct fcgi_request *r);

/* One pointer of the handler's own, kept with the request (NULL at first). */
void fcgi_request_set_user(struct fcgi_request *r, void *user);
void *fcgi_request_user(const struct fcgi_request *r);

/* A small number of the caller's own kept with the request (the router
 * puts the route's index there: metrics count by it); 0 at first. */
void fcgi_request_set_tag(struct fcgi_request *r, unsigned tag);
unsigned fcgi_request_tag(const struct fcgi_request *r);

/* Seconds from the request's BEGIN_REQUEST to now, as the answers of this
 * loop iteration see it: the clock is read once, at the first answer of
 * the iteration (later ones are off by the work done since, a few
 * microseconds a request). */
double fcgi_request_elapsed(const struct fcgi_request *r);

/*
 * What the request was, for the access log and for metrics.
 *
 * The label names the route that took the request as the route table
 * spells it, a pattern ("/api/v1/marges/NAME"), never the path that was
 * asked for: there are as many labels as routes, whatever clients send.
 * The string is borrowed and must outlive the request (a constant, the
 * route table).  NULL until set: no route took the request (a 404, a 414,
 * or an answer of the engine's own such as 408, 413 or 431).  Set it
 * before the answer (the answer reads it); the last call wins.  The
 * router sets it; a handler need not.
 */
void fcgi_request_set_label(struct fcgi_request *r, const char *label);
const char *fcgi_request_label(const struct fcgi_request *r);

/* fcgi_request_set_tag, fcgi_request_set_label and
 * fcgi_request_set_head_only in one call: what the router sets of every
 * request a route takes. */
void fcgi_request_set_route(struct fcgi_request *r, unsigned tag, const char *label,
                            bool head_only);

/*
 * Time the request spent waiting for its backends.  A handler adds the
 * duration of each backend operation it waited for, once, when its result
 * arrives (failures and timeouts count too: they were waited for).
 * Operations run in parallel add the wall time of the whole fan-out once,
 * not each duration, so the total never exceeds the request's own time.
 * Add before answering: the answer reads it.  Kept in microseconds,
 * saturating (at about 71 minutes, and 65535 additions).
 */
void fcgi_request_add_backend_time(struct fcgi_request *r, double seconds);

/* The seconds added so far, and in *waits (may be NULL) how many times
 * one was added: 0 when the request used no backend. */
double fcgi_request_backend_time(const struct fcgi_request *r, unsigned *waits);

/*
 * One backend operation the request waited for, by name (borrowed: a
 * constant, or the store's kind, which outlives the request), for the
 * slow-request log (--slow-request-ms): a request slower than that is
 * logged with its route and each operation noted.  Unlike the backend
 * time above, operations run in parallel are each noted.  Does nothing
 * when the slow-request log is off; at most 8 per request are kept.
 */
void fcgi_request_note_backend(struct fcgi_request *r, const char *what, double seconds);

/* Adds a response header ("Allow", "GET, HEAD") before the answer.
 * Returns -1 when the extra headers would exceed their limit, or when the
 * name is not an HTTP token or the value holds CR, LF or another control
 * byte (a header that would add headers of its own is refused, logged). */
int fcgi_response_header(struct fcgi_request *r, const char *name, const char *value);

/* The content type of plain-text answers (and of every error). */
#define FCGI_TEXT_PLAIN "text/plain; charset=utf-8"

/* Answers the request: status, content type (NULL for none), body. */
void fcgi_respond(struct fcgi_request *r, int status, const char *content_type,
                  const void *body, size_t len);

/* Answers with the one error shape every route shares:
 * text/plain "<status> <reason>: <message>\n". */
void fcgi_respond_error(struct fcgi_request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
