/* fcgi/codec.c — incremental FastCGI record parser and pair codec. */
#include "fcgi/codec.h"

#include <string.h>

enum { ST_HEADER, ST_CONTENT, ST_PADDING, ST_END, ST_ERROR };

void fcgi_parser_init(struct fcgi_parser *p)
{
    memset(p, 0, sizeof *p);
    p->state = ST_HEADER;
}

static enum fcgi_event_kind fail(struct fcgi_parser *p, struct fcgi_event *ev, const char *why)
{
    p->state = ST_ERROR;
    p->error = why;
    ev->kind = FCGI_EV_ERROR;
    return FCGI_EV_ERROR;
}

enum fcgi_event_kind fcgi_parser_next(struct fcgi_parser *p, const uint8_t **buf, size_t *len,
                                      struct fcgi_event *ev)
{
    const uint8_t *h;
    size_t n;

    ev->data = NULL;
    ev->len = 0;
    for (;;) {
        switch (p->state) {
        case ST_ERROR:
            ev->kind = FCGI_EV_ERROR;
            return FCGI_EV_ERROR;

        case ST_HEADER:
            if (*len == 0) {
                ev->kind = FCGI_EV_NEED_MORE;
                return FCGI_EV_NEED_MORE;
            }
            if (p->header_have == 0 && *len >= FCGI_HEADER_LEN) {
                h = *buf; /* a whole header in the input: read where it is */
                *buf += FCGI_HEADER_LEN;
                *len -= FCGI_HEADER_LEN;
            } else {
                n = FCGI_HEADER_LEN - p->header_have;
                if (n > *len)
                    n = *len;
                memcpy(p->header + p->header_have, *buf, n);
                p->header_have += (uint8_t)n;
                *buf += n;
                *len -= n;
                if (p->header_have < FCGI_HEADER_LEN)
                    continue;
                p->header_have = 0;
                h = p->header;
            }
            if (h[0] != FCGI_VERSION_1)
                return fail(p, ev, "unsupported FastCGI version");
            p->record.type = h[1];
            p->record.request_id = (uint16_t)(h[2] << 8 | h[3]);
            p->record.content_length = (uint16_t)(h[4] << 8 | h[5]);
            p->record.padding_length = h[6];
            p->content_left = p->record.content_length;
            p->padding_left = p->record.padding_length;
            p->state = ST_CONTENT;
            ev->kind = FCGI_EV_HEADER;
            return FCGI_EV_HEADER;

        case ST_CONTENT:
            if (p->content_left == 0) {
                p->state = ST_PADDING;
                continue;
            }
            if (*len == 0) {
                ev->kind = FCGI_EV_NEED_MORE;
                return FCGI_EV_NEED_MORE;
            }
            n = p->content_left < *len ? p->content_left : *len;
            ev->kind = FCGI_EV_CONTENT;
            ev->data = *buf;
            ev->len = n;
            *buf += n;
            *len -= n;
            p->content_left -= (uint32_t)n;
            return FCGI_EV_CONTENT;

        case ST_PADDING:
            if (p->padding_left > 0) {
                if (*len == 0) {
                    ev->kind = FCGI_EV_NEED_MORE;
                    return FCGI_EV_NEED_MORE;
                }
                n = p->padding_left < *len ? p->padding_left : *len;
                *buf += n;
                *len -= n;
                p->padding_left -= (uint16_t)n;
                continue;
            }
            p->state = ST_HEADER;
            ev->kind = FCGI_EV_END;
            return FCGI_EV_END;

        default:
            return fail(p, ev, "parser state corrupted");
        }
    }
}

const char *fcgi_record_check(const struct fcgi_record *r)
{
    switch (r->type) {
    case FCGI_BEGIN_REQUEST:
        if (r->request_id == FCGI_NULL_REQUEST_ID)
            return "BEGIN_REQUEST with request id 0";
        if (r->content_length != sizeof(FCGI_BeginRequestBody))
            return "BEGIN_REQUEST content is not 8 bytes";
        return NULL;
    case FCGI_ABORT_REQUEST:
        if (r->request_id == FCGI_NULL_REQUEST_ID)
            return "ABORT_REQUEST with request id 0";
        if (r->content_length != 0)
            return "ABORT_REQUEST with content";
        return NULL;
    case FCGI_PARAMS:
    case FCGI_STDIN:
    case FCGI_DATA:
        if (r->request_id == FCGI_NULL_REQUEST_ID)
            return "application record with request id 0";
        return NULL;
    case FCGI_GET_VALUES:
        if (r->request_id != FCGI_NULL_REQUEST_ID)
            return "GET_VALUES with a non-zero request id";
        return NULL;
    case FCGI_END_REQUEST:
    case FCGI_STDOUT:
    case FCGI_STDERR:
    case FCGI_GET_VALUES_RESULT:
    case FCGI_UNKNOWN_TYPE:
        return "record type only an application sends";
    default:
        /* Unknown types are answered with UNKNOWN_TYPE, not refused, when
         * they are management records; an unknown application record has
         * no defined meaning. */
        if (r->request_id != FCGI_NULL_REQUEST_ID)
            return "unknown record type for a request";
        return NULL;
    }
}

void fcgi_header_encode(uint8_t out[FCGI_HEADER_LEN], uint8_t type, uint16_t request_id,
                        uint16_t content_length, uint8_t padding_length)
{
    out[0] = FCGI_VERSION_1;
    out[1] = type;
    out[2] = (uint8_t)(request_id >> 8);
    out[3] = (uint8_t)request_id;
    out[4] = (uint8_t)(content_length >> 8);
    out[5] = (uint8_t)content_length;
    out[6] = padding_length;
    out[7] = 0;
}

size_t fcgi_nv_size(size_t name_len, size_t value_len)
{
    return (name_len < 128 ? 1 : 4) + (value_len < 128 ? 1 : 4) + name_len + value_len;
}

static size_t write_length(uint8_t *out, size_t n)
{
    if (n < 128) {
        out[0] = (uint8_t)n;
        return 1;
    }
    out[0] = (uint8_t)(0x80 | (n >> 24));
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    return 4;
}

size_t fcgi_nv_encode(uint8_t *out, const void *name, size_t name_len, const void *value,
                      size_t value_len)
{
    size_t n = write_length(out, name_len);

    n += write_length(out + n, value_len);
    memcpy(out + n, name, name_len);
    n += name_len;
    memcpy(out + n, value, value_len);
    return n + value_len;
}
