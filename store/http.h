/*
 * store/http.h — an asynchronous HTTP client on the caller's libev loop.
 *
 * libcurl's multi interface does the HTTP; this module only glues it to
 * libev (one ev_io per socket curl asks us to watch, one ev_timer for
 * curl's timeout) and turns curl's outcome into a store_status.  Nothing
 * here ever blocks the loop: name resolution runs on curl's resolver
 * thread (Debian's libcurl is built with AsynchDNS), connects, TLS and
 * transfers are all non-blocking.
 *
 * Connections are kept in the multi handle's connection cache and reused
 * by later requests to the same host (keep-alive), for the life of the
 * client.  Create one client per loop (per worker process) and keep it.
 *
 * Who initialises libcurl: main() calls http_global_init() once at
 * start-up, before it forks workers or starts any thread (curl's own rule
 * for curl_global_init).  libcurl counts init/cleanup calls, so libs3's
 * S3_initialize(), which also calls curl_global_init(), does not clash.
 *
 * Callback promise (the operation core's, store/op.h): cb runs on the loop
 * thread exactly once, never before http_request_start() returns — also
 * when the request could not even start (bad URL, out of memory: delivered
 * from the loop) and when the client is freed with the request in flight.
 *
 * Outcome mapping (res->status):
 *   STORE_OK           an HTTP answer arrived, whatever its code: the
 *                      caller decides what 404 or 500 means (http_code)
 *   STORE_UNAVAILABLE  DNS failure, connection refused, TLS handshake or
 *                      connection dropped before an answer, client freed
 *   STORE_TIMEOUT      no complete answer within timeout_ms
 *   STORE_BAD_UPSTREAM answer over max_response_bytes ("response larger
 *                      than N bytes", transfer aborted), or not HTTP
 *   STORE_ERROR        bad URL / unsupported scheme, out of memory, or a
 *                      curl failure we did not expect (message says which)
 */
#ifndef SPRINGFIELD_STORE_HTTP_H
#define SPRINGFIELD_STORE_HTTP_H

#include <stddef.h>

#include <ev.h>

#include "store/result.h"

/* Defaults applied when a request leaves the field 0. */
#define HTTP_DEFAULT_TIMEOUT_MS 30000L
#define HTTP_DEFAULT_MAX_RESPONSE_BYTES (8u * 1024 * 1024)
/* Connections kept open for reuse after their transfer is done, per client:
 * enough for a few hundred requests in flight to one host to reuse theirs. */
#define HTTP_MAX_IDLE_CONNECTIONS 256

struct http_client;

struct http_request {
    const char *method;          /* "GET", "PUT", "POST", "HEAD", "DELETE"...;
                                    NULL means "GET" */
    const char *url;             /* http:// or https:// only */
    const char *const *headers;  /* NULL-terminated "Name: value" list, or NULL.
                                    "Name:" (empty) removes a header curl would add,
                                    but not with aws_sigv4: curl signs it as sent.
                                    A body without Content-Type is sent as
                                    application/octet-stream */
    const void *body;            /* copied by http_request_start; may be NULL */
    size_t body_len;
    const char *aws_sigv4;       /* e.g. "aws:amz:us-east-1:s3" -> CURLOPT_AWS_SIGV4 */
    const char *userpwd;         /* "access:secret" for SigV4, or NULL */
    long timeout_ms;             /* whole request; 0 -> HTTP_DEFAULT_TIMEOUT_MS */
    size_t max_response_bytes;   /* body cap; 0 -> HTTP_DEFAULT_MAX_RESPONSE_BYTES */
};

struct http_header {
    const char *name;  /* as the server spelled it */
    const char *value; /* leading/trailing blanks removed */
};

/* Everything here is valid only during the callback: copy what you keep. */
struct http_response {
    enum store_status status;
    const char *message;      /* "" when STORE_OK, else what went wrong */
    long http_code;           /* 0 when no answer arrived */
    const char *body;         /* NUL-terminated for convenience; may hold NULs */
    size_t body_len;
    const char *content_type; /* Content-Type value or NULL */
    const struct http_header *headers; /* the final answer's headers */
    size_t header_count;
    long num_connects;        /* new connections this request made (0 = reused) */
};

typedef void (*http_cb)(void *privdata, const struct http_response *res);

/* curl_global_init(CURL_GLOBAL_DEFAULT); 0 or -1.  See the note above. */
int http_global_init(void);
void http_global_cleanup(void);

/* NULL on failure. */
struct http_client *http_client_new(struct ev_loop *loop);

/* Requests still in flight get their callback first (STORE_UNAVAILABLE,
 * "http unavailable: HTTP client is shutting down").  NULL is allowed. */
void http_client_free(struct http_client *c);

/* Copies everything it needs from req (url, headers, body, credentials):
 * the caller's buffers need only live until the call returns.  A request
 * that cannot start (no URL, a method that is not a token, out of memory,
 * the client shutting down) is answered like any other: STORE_ERROR or
 * STORE_UNAVAILABLE, from the loop. */
void http_request_start(struct http_client *c, const struct http_request *req, http_cb cb,
                        void *privdata);

/* Value of the first header called name (case-insensitive), or NULL. */
const char *http_response_header(const struct http_response *res, const char *name);

/* Requests started and not yet completed (for logs and tests). */
unsigned http_client_pending(const struct http_client *c);

#endif
