/*
 * fcgi/response.h — turning a handler's answer into FastCGI records.
 *
 * Pure formatting, no I/O: the connection appends the result to its
 * output buffer.  A response is CGI-style headers ("Status: 200 OK",
 * Content-Type, Content-Length, any extra headers, blank line) and the
 * body, carried in STDOUT records of at most 65535 content bytes, then an
 * empty STDOUT record and END_REQUEST.
 */
#ifndef SPRINGFIELD_FCGI_RESPONSE_H
#define SPRINGFIELD_FCGI_RESPONSE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "fcgi/codec.h"

/* The largest block of extra headers a response may carry. */
#define FCGI_MAX_EXTRA_HEADERS 8192

/* False for the statuses that never carry a body (1xx, 204, 304): their
 * answers have no body and, as RFC 9110 wants, no Content-Length. */
static inline bool fcgi_status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* "OK", "Not Found", ...; "Unknown" for codes it does not know. */
const char *fcgi_reason_phrase(int status);

struct fcgi_response {
    int status;
    const char *content_type; /* NULL: no Content-Type header */
    const char *extra_headers; /* "Name: value\r\n"*, may be NULL */
    size_t extra_headers_len;
    const void *body;
    size_t body_len;
    bool head_only; /* HEAD: Content-Length of the body, but no body */
};

/*
 * Appends the whole response for request_id to out: STDOUT records, the
 * empty STDOUT and END_REQUEST (appStatus 0, REQUEST_COMPLETE).
 * Returns the number of body bytes sent, or -1 (out unchanged) on
 * allocation failure or a status outside 100..599.
 */
long fcgi_format_response(struct buf *out, uint16_t request_id, const struct fcgi_response *r);

/*
 * Formats the one error body every answer shares, "<status> <reason>:
 * <message>\n", into out (truncating the message to fit size); returns
 * its length (0 when size is too small for even the status).
 */
size_t fcgi_format_error_v(char *out, size_t size, int status, const char *fmt, va_list ap);
size_t fcgi_format_error(char *out, size_t size, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The header block is at most this long before the extra headers. */
#define FCGI_HEAD_MAX 512

/* At least the number of bytes fcgi_format_response appends for r (inline:
 * the output limits ask it for every answer). */
static inline size_t fcgi_response_bound(const struct fcgi_response *r)
{
    size_t body = r->head_only || !fcgi_status_has_body(r->status) ? 0 : r->body_len;
    size_t stream = FCGI_HEAD_MAX + r->extra_headers_len + 2 + body;

    /* STDOUT records of the stream, the empty STDOUT, END_REQUEST (8 + 8) */
    return stream + (stream / FCGI_MAX_LENGTH + 1) * FCGI_HEADER_LEN + 3 * FCGI_HEADER_LEN + 8;
}

/* Appends an END_REQUEST record. */
int fcgi_format_end_request(struct buf *out, uint16_t request_id, uint32_t app_status,
                            uint8_t protocol_status);

/* Appends one record of any type with the given content (< 65536 bytes). */
int fcgi_format_record(struct buf *out, uint8_t type, uint16_t request_id, const void *content,
                       size_t len);

#endif
