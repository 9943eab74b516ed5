/* fcgi/response.c — response formatting into STDOUT/END_REQUEST records. */
#include "fcgi/response.h"

#include <stdio.h>
#include <string.h>

#include "common/fmt.h"
#include "fcgi/codec.h"

bool fcgi_status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

const char *fcgi_reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

size_t fcgi_format_error_v(char *out, size_t size, int status, const char *fmt, va_list ap)
{
    const char *reason = fcgi_reason_phrase(status);
    size_t reason_len = strlen(reason);
    char digits[FMT_U64_MAX + 1];
    size_t ndigits;
    int n, m;

    /* "<status> <reason>: " by hand; only the message needs printf */
    ndigits = fmt_i64(digits, status);
    if (ndigits + 1 + reason_len + 2 + 2 > size)
        return 0;
    memcpy(out, digits, ndigits);
    out[ndigits] = ' ';
    memcpy(out + ndigits + 1, reason, reason_len);
    memcpy(out + ndigits + 1 + reason_len, ": ", 2);
    n = (int)(ndigits + 1 + reason_len + 2);
    m = vsnprintf(out + n, size - (size_t)n - 1, fmt, ap);
    if (m < 0)
        return 0;
    if ((size_t)(n + m) > size - 2)
        m = (int)(size - 2) - n; /* truncated message */
    out[n + m] = '\n';
    return (size_t)(n + m + 1);
}

size_t fcgi_format_error(char *out, size_t size, int status, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    n = fcgi_format_error_v(out, size, status, fmt, ap);
    va_end(ap);
    return n;
}

int fcgi_format_record(struct buf *out, uint8_t type, uint16_t request_id, const void *content,
                       size_t len)
{
    if (len > FCGI_MAX_LENGTH || buf_reserve(out, FCGI_HEADER_LEN + len) < 0)
        return -1;
    fcgi_header_encode(out->data + out->len, type, request_id, (uint16_t)len, 0);
    out->len += FCGI_HEADER_LEN;
    if (len)
        memcpy(out->data + out->len, content, len);
    out->len += len;
    return 0;
}

int fcgi_format_end_request(struct buf *out, uint16_t request_id, uint32_t app_status,
                            uint8_t protocol_status)
{
    uint8_t body[8] = {(uint8_t)(app_status >> 24), (uint8_t)(app_status >> 16),
                       (uint8_t)(app_status >> 8), (uint8_t)app_status, protocol_status, 0, 0, 0};

    return fcgi_format_record(out, FCGI_END_REQUEST, request_id, body, sizeof body);
}

/* Copies n bytes of the logical stream head+body starting at offset. */
static void copy_stream(uint8_t *dst, const char *head, size_t head_len, const uint8_t *body,
                        size_t offset, size_t n)
{
    if (offset < head_len) {
        size_t h = head_len - offset < n ? head_len - offset : n;
        memcpy(dst, head + offset, h);
        dst += h;
        n -= h;
        offset = head_len;
    }
    if (n)
        memcpy(dst, body + (offset - head_len), n);
}

/* The header block is at most 512 bytes before the extra headers. */
#define HEAD_MAX 512

size_t fcgi_response_bound(const struct fcgi_response *r)
{
    size_t body = r->head_only || !fcgi_status_has_body(r->status) ? 0 : r->body_len;
    size_t stream = HEAD_MAX + r->extra_headers_len + 2 + body;

    /* STDOUT records of the stream, the empty STDOUT, END_REQUEST (8 + 8) */
    return stream + (stream / FCGI_MAX_LENGTH + 1) * FCGI_HEADER_LEN + 3 * FCGI_HEADER_LEN + 8;
}

/*
 * "Status: 200 OK\r\n", then for a status with a body its Content-Type
 * (when there is one) and Content-Length lines, into head (HEAD_MAX
 * bytes), by hand: snprintf here cost more than the rest of an answer.
 * Returns the length, or 0 when it would not fit (an absurd content type).
 */
static size_t format_head(char *head, const struct fcgi_response *r)
{
    const char *reason = fcgi_reason_phrase(r->status);
    size_t reason_len = strlen(reason), ct_len = 0, need;
    char digits[FMT_U64_MAX];
    size_t ndigits = 0;
    bool body = fcgi_status_has_body(r->status);
    char *p = head;

    need = sizeof "Status: 200 \r\n" - 1 + reason_len;
    if (body) {
        if (r->content_type) {
            ct_len = strlen(r->content_type);
            need += sizeof "Content-Type: \r\n" - 1 + ct_len;
        }
        ndigits = fmt_u64(digits, r->body_len);
        need += sizeof "Content-Length: \r\n" - 1 + ndigits;
    }
    if (need >= HEAD_MAX)
        return 0;
    p = FMT_PUT_LIT(p, "Status: ");
    p += fmt_u64(p, (unsigned)r->status);
    *p++ = ' ';
    p = fmt_put(p, reason, reason_len);
    p = FMT_PUT_LIT(p, "\r\n");
    if (body) {
        if (r->content_type) {
            p = FMT_PUT_LIT(p, "Content-Type: ");
            p = fmt_put(p, r->content_type, ct_len);
            p = FMT_PUT_LIT(p, "\r\n");
        }
        p = FMT_PUT_LIT(p, "Content-Length: ");
        p = fmt_put(p, digits, ndigits);
        p = FMT_PUT_LIT(p, "\r\n");
    }
    return (size_t)(p - head);
}

long fcgi_format_response(struct buf *out, uint16_t request_id, const struct fcgi_response *r)
{
    char head[HEAD_MAX + FCGI_MAX_EXTRA_HEADERS + 2]; /* + the blank line */
    size_t head_len, body_len, total, records, off;

    if (r->status < 100 || r->status > 599 || r->extra_headers_len > FCGI_MAX_EXTRA_HEADERS)
        return -1;
    head_len = format_head(head, r);
    if (head_len == 0)
        return -1; /* an absurd content type */
    if (r->extra_headers_len) {
        memcpy(head + head_len, r->extra_headers, r->extra_headers_len);
        head_len += r->extra_headers_len;
    }
    head[head_len++] = '\r';
    head[head_len++] = '\n';

    body_len = r->head_only || !fcgi_status_has_body(r->status) ? 0 : r->body_len;
    total = head_len + body_len;
    records = (total + FCGI_MAX_LENGTH - 1) / FCGI_MAX_LENGTH;
    if (buf_reserve(out, total + records * FCGI_HEADER_LEN + 2 * FCGI_HEADER_LEN + 8) < 0)
        return -1;

    for (off = 0; off < total;) {
        size_t chunk = total - off < FCGI_MAX_LENGTH ? total - off : FCGI_MAX_LENGTH;

        fcgi_header_encode(out->data + out->len, FCGI_STDOUT, request_id, (uint16_t)chunk, 0);
        out->len += FCGI_HEADER_LEN;
        copy_stream(out->data + out->len, head, head_len, r->body, off, chunk);
        out->len += chunk;
        off += chunk;
    }
    /* the empty STDOUT, and END_REQUEST (appStatus 0, REQUEST_COMPLETE),
     * in the room reserved above */
    fcgi_header_encode(out->data + out->len, FCGI_STDOUT, request_id, 0, 0);
    fcgi_header_encode(out->data + out->len + 8, FCGI_END_REQUEST, request_id, 8, 0);
    memset(out->data + out->len + 16, 0, 8);
    out->data[out->len + 20] = FCGI_REQUEST_COMPLETE;
    out->len += 24;
    return (long)body_len;
}
