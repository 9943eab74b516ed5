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
 */
#ifndef SPRINGFIELD_FCGI_REQUEST_H
#define SPRINGFIELD_FCGI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fcgi_request;
struct ev_loop;

/* The value of a CGI parameter (NUL-terminated), or NULL when absent. */
const char *fcgi_param(const struct fcgi_request *r, const char *name);

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
