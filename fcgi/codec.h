/*
 * fcgi/codec.h — the FastCGI record codec: bytes in, records out, no I/O.
 *
 * The parser is incremental: it is fed whatever bytes arrived and hands
 * back events one at a time (a record's header, pieces of its content, its
 * end).  Any split of the input gives the same sequence of headers, the
 * same content bytes in the same order, and the same ends, so a record cut
 * into 1-byte reads and one that arrives whole are handled alike.  The
 * parser keeps only the 8 header bytes between calls; content is handed
 * out as pointers into the caller's buffer, never copied.
 *
 * Malformed input is rejected with a reason (fcgi_parser.error) and the
 * parser stays in the error state: the caller closes the connection.
 *
 * Also here: name-value pair decoding and encoding (FastCGI 1.0 §3.4) and
 * the record header encoder.  The protocol constants are libfcgi's
 * <fastcgi.h>.
 */
#ifndef SPRINGFIELD_FCGI_CODEC_H
#define SPRINGFIELD_FCGI_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <fastcgi.h>

struct fcgi_record {
    uint8_t type;
    uint16_t request_id;
    uint16_t content_length;
    uint8_t padding_length;
};

enum fcgi_event_kind {
    FCGI_EV_NEED_MORE, /* all input consumed; feed more bytes */
    FCGI_EV_HEADER,    /* a record begins: fcgi_parser.record is valid */
    FCGI_EV_CONTENT,   /* data/len: the next piece of the record's content */
    FCGI_EV_END,       /* the record (and its padding) is complete */
    FCGI_EV_ERROR      /* malformed input; fcgi_parser.error says why */
};

struct fcgi_event {
    enum fcgi_event_kind kind;
    const uint8_t *data; /* FCGI_EV_CONTENT only */
    size_t len;
};

struct fcgi_parser {
    struct fcgi_record record; /* the record being parsed */
    const char *error;         /* reason, once in the error state */
    uint32_t content_left;
    uint16_t padding_left;
    uint8_t header[FCGI_HEADER_LEN];
    uint8_t header_have;
    uint8_t state;
};

void fcgi_parser_init(struct fcgi_parser *p);

/* parser states (fcgi_parser.state) */
enum { FCGI_ST_HEADER, FCGI_ST_CONTENT, FCGI_ST_PADDING, FCGI_ST_END, FCGI_ST_ERROR };

/* Enters the error state with its reason (for fcgi_parser_next). */
static inline enum fcgi_event_kind fcgi_parser_fail(struct fcgi_parser *p, struct fcgi_event *ev,
                                                    const char *why)
{
    p->state = FCGI_ST_ERROR;
    p->error = why;
    ev->kind = FCGI_EV_ERROR;
    return FCGI_EV_ERROR;
}

/*
 * Returns the next event from the bytes *buf .. *buf + *len, advancing
 * *buf and *len past what it consumed.  Call it until it returns
 * FCGI_EV_NEED_MORE (input used up) or FCGI_EV_ERROR.  Inline: a request
 * is about ten events, and a call cost as much as most of them.
 */
static inline enum fcgi_event_kind fcgi_parser_next(struct fcgi_parser *p, const uint8_t **buf,
                                                    size_t *len, struct fcgi_event *ev)
{
    const uint8_t *h;
    size_t n;

    ev->data = NULL;
    ev->len = 0;
    for (;;) {
        switch (p->state) {
        case FCGI_ST_ERROR:
            ev->kind = FCGI_EV_ERROR;
            return FCGI_EV_ERROR;

        case FCGI_ST_HEADER:
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
                return fcgi_parser_fail(p, ev, "unsupported FastCGI version");
            p->record.type = h[1];
            p->record.request_id = (uint16_t)(h[2] << 8 | h[3]);
            p->record.content_length = (uint16_t)(h[4] << 8 | h[5]);
            p->record.padding_length = h[6];
            p->content_left = p->record.content_length;
            p->padding_left = p->record.padding_length;
            p->state = FCGI_ST_CONTENT;
            ev->kind = FCGI_EV_HEADER;
            return FCGI_EV_HEADER;

        case FCGI_ST_CONTENT:
            if (p->content_left == 0) {
                p->state = FCGI_ST_PADDING;
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

        case FCGI_ST_PADDING:
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
            p->state = FCGI_ST_HEADER;
            ev->kind = FCGI_EV_END;
            return FCGI_EV_END;

        default:
            return fcgi_parser_fail(p, ev, "parser state corrupted");
        }
    }
}

/*
 * The shortcut for what arrives most: whether the parser is between
 * records and the len bytes at buf hold a whole record (header, content
 * and padding) of version 1.  If so, *rec describes it (p->record is left
 * as it was) and *total is its size; the content is FCGI_HEADER_LEN bytes
 * on.  0 otherwise (a record split across reads, or a bad version:
 * fcgi_parser_next then reports it).
 */
static inline int fcgi_parser_peek_record(const struct fcgi_parser *p, const uint8_t *buf,
                                          size_t len, struct fcgi_record *rec, size_t *total)
{
    uint16_t content_length;

    if (p->state != FCGI_ST_HEADER || p->header_have != 0 || len < FCGI_HEADER_LEN ||
        buf[0] != FCGI_VERSION_1)
        return 0;
    content_length = (uint16_t)(buf[4] << 8 | buf[5]);
    *total = FCGI_HEADER_LEN + (size_t)content_length + buf[6];
    if (len < *total)
        return 0;
    rec->type = buf[1];
    rec->request_id = (uint16_t)(buf[2] << 8 | buf[3]);
    rec->content_length = content_length;
    rec->padding_length = buf[6];
    return 1;
}

/*
 * fcgi_parser_peek_record, and the record consumed: returns 1 with
 * p->record describing it and *content pointing at its content_length
 * bytes in the input (what the events HEADER, CONTENT, all of it when
 * there is any, and END would have said, in one step); 0, consuming
 * nothing, otherwise.  (content_left and padding_left stay 0, as they
 * are between records.)
 */
static inline int fcgi_parser_take_record(struct fcgi_parser *p, const uint8_t **buf, size_t *len,
                                          const uint8_t **content)
{
    struct fcgi_record rec;
    size_t total;

    if (!fcgi_parser_peek_record(p, *buf, *len, &rec, &total))
        return 0;
    p->record = rec;
    *content = *buf + FCGI_HEADER_LEN;
    *buf += total;
    *len -= total;
    return 1;
}

/*
 * Header checks that depend on the record type: management records
 * (GET_VALUES, unknown types) must use request id 0, application records
 * must not; BEGIN_REQUEST content is 8 bytes, ABORT_REQUEST 0; records only
 * an application sends (STDOUT, END_REQUEST, ...) are refused.  Returns
 * NULL when the header is acceptable, else the reason.
 */
const char *fcgi_record_check_type(const struct fcgi_record *r);
static inline const char *fcgi_record_check(const struct fcgi_record *r)
{
    /* a request's records, most of what arrives, at no call */
    if (r->request_id != FCGI_NULL_REQUEST_ID &&
        (r->type == FCGI_PARAMS || r->type == FCGI_STDIN ||
         (r->type == FCGI_BEGIN_REQUEST && r->content_length == sizeof(FCGI_BeginRequestBody))))
        return NULL;
    return fcgi_record_check_type(r);
}

/* Writes an 8-byte record header (inline: three a response). */
static inline void fcgi_header_encode(uint8_t out[FCGI_HEADER_LEN], uint8_t type,
                                      uint16_t request_id, uint16_t content_length,
                                      uint8_t padding_length)
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

/* --- name-value pairs ---------------------------------------------------- */

struct fcgi_nv {
    const uint8_t *name;
    uint32_t name_len;
    const uint8_t *value;
    uint32_t value_len;
};

/* Reads a 1- or 4-byte length (high bit of the first byte selects); for
 * fcgi_nv_next. */
static inline int fcgi_nv_read_length(const uint8_t *buf, size_t len, size_t *pos, uint32_t *out)
{
    if (*pos >= len)
        return -1;
    if (!(buf[*pos] & 0x80)) {
        *out = buf[*pos];
        *pos += 1;
        return 0;
    }
    if (len - *pos < 4)
        return -1;
    *out = (uint32_t)(buf[*pos] & 0x7f) << 24 | (uint32_t)buf[*pos + 1] << 16 |
           (uint32_t)buf[*pos + 2] << 8 | buf[*pos + 3];
    *pos += 4;
    return 0;
}

/*
 * Decodes the pair at *pos in buf[0..len).  Returns 1 and advances *pos
 * when a pair was decoded, 0 at the end of buf, -1 when the lengths do not
 * fit the buffer (*why says so).  Inline: a request's params call it once
 * a pair, and the call cost as much as the decoding.
 */
static inline int fcgi_nv_next(const uint8_t *buf, size_t len, size_t *pos,
                               struct fcgi_nv *nv, const char **why)
{
    size_t p = *pos;

    if (p >= len)
        return 0;
    if (len - p >= 2 && !((buf[p] | buf[p + 1]) & 0x80)) { /* two 1-byte lengths: most pairs */
        nv->name_len = buf[p];
        nv->value_len = buf[p + 1];
        p += 2;
    } else if (fcgi_nv_read_length(buf, len, &p, &nv->name_len) < 0 ||
               fcgi_nv_read_length(buf, len, &p, &nv->value_len) < 0) {
        *why = "name-value pair length cut short";
        return -1;
    }
    if (nv->name_len > len - p || nv->value_len > len - p - nv->name_len) {
        *why = "name-value pair longer than its record";
        return -1;
    }
    nv->name = buf + p;
    nv->value = buf + p + nv->name_len;
    *pos = p + nv->name_len + nv->value_len;
    return 1;
}

/* Bytes the encoded pair takes. */
size_t fcgi_nv_size(size_t name_len, size_t value_len);

/* Encodes one pair into out (which holds fcgi_nv_size() bytes); returns
 * the bytes written.  Lengths must be < 2^31. */
size_t fcgi_nv_encode(uint8_t *out, const void *name, size_t name_len, const void *value,
                      size_t value_len);

#endif
