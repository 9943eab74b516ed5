/* fcgi/codec.c — incremental FastCGI record parser and pair codec. */
#include "fcgi/codec.h"

#include <string.h>

void fcgi_parser_init(struct fcgi_parser *p)
{
    memset(p, 0, sizeof *p);
    p->state = FCGI_ST_HEADER;
}

const char *fcgi_record_check_type(const struct fcgi_record *r)
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
