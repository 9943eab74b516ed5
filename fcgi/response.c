/* fcgi/response.c — response formatting into STDOUT/END_REQUEST records. */
#include "fcgi/response.h"

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "common/fmt.h"
#include "fcgi/codec.h"
#include "fcgi/request.h"

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

#define HEAD_MAX FCGI_HEAD_MAX

/*
 * The header block up to the digits of its Content-Length ("Status: 200
 * OK\r\n", then for a status with a body its Content-Type line when there
 * is one, and "Content-Length: ") depends only on the status and the
 * content type: it is formatted once and kept, in a small table indexed
 * by both (the loop's thread is the only one to answer).  A slot is found
 * by the content type's pointer; but a handler may pass a buffer that
 * later holds another type, so the text is compared too, unless the
 * pointer is one of the literals below: a literal's text cannot change
 * (and the linker keeps one copy of equal literals, so a handler's
 * FCGI_TEXT_PLAIN is this very pointer).  The pointer is the one passed,
 * also for a status without a body (whose block has no Content-Type, so
 * nothing to compare): the slot says whether the status has a body, and
 * a hit asks no more of the status than its range.
 */
#define PREFIX_SLOT_BITS 4
#define PREFIX_SLOTS (1 << PREFIX_SLOT_BITS)
#define PREFIX_MAX 112 /* longer ones are formatted every time */

static const char *const literal_types[] = {
    FCGI_TEXT_PLAIN,
    "application/json",
    "application/octet-stream",
};

struct prefix { /* 128 bytes */
    uint16_t status; /* 0: an empty slot */
    uint8_t len, ct_off, ct_len;
    bool length;     /* the status has a body: Content-Length (fcgi_status_has_body) */
    bool check_text; /* the text holds the content type, which is not a literal of ours */
    const char *content_type; /* as the handler passed it (a bodiless status ignores it) */
    char text[PREFIX_MAX];
};

static struct prefix prefixes[PREFIX_SLOTS];
_Static_assert(sizeof(struct prefix) == 128, "a slot is two cache lines' halves no more");

static bool literal_type(const char *content_type)
{
    for (size_t i = 0; i < sizeof literal_types / sizeof literal_types[0]; i++)
        if (content_type == literal_types[i])
            return true;
    return false;
}

static struct prefix *prefix_slot(int status, const char *content_type)
{
    /* a multiply mixes both into the top bits (the pointer's low three
     * are mostly zero) */
    uint32_t key = (uint32_t)((uintptr_t)content_type >> 3) + (uint32_t)status;

    return &prefixes[key * 0x9e3779b1u >> (32 - PREFIX_SLOT_BITS)];
}

static bool prefix_is(const struct prefix *p, int status, const char *content_type)
{
    if (p->status != status || p->content_type != content_type)
        return false;
    return !p->check_text || (strncmp(content_type, p->text + p->ct_off, p->ct_len) == 0 &&
                              content_type[p->ct_len] == '\0');
}

/* The empty STDOUT and END_REQUEST (appStatus 0, REQUEST_COMPLETE) after
 * every answer, but for the request id (bytes 2-3 and 10-11). */
static const uint8_t answer_end[3 * FCGI_HEADER_LEN] = {
    FCGI_VERSION_1, FCGI_STDOUT,      0, 0, 0, 0, 0, 0,
    FCGI_VERSION_1, FCGI_END_REQUEST, 0, 0, 0, 8, 0, 0,
    0,              0,                0, 0, FCGI_REQUEST_COMPLETE, 0, 0, 0,
};

/* A STDOUT record's header; id_be is the request id in network order
 * (two stores of big-endian halves: byte by byte, the compiler spends
 * a dozen instructions merging them). */
static inline void stdout_header(uint8_t *rec, uint16_t id_be, size_t len)
{
    uint16_t len_be = htons((uint16_t)len);

    rec[0] = FCGI_VERSION_1;
    rec[1] = FCGI_STDOUT;
    memcpy(rec + 2, &id_be, 2);
    memcpy(rec + 4, &len_be, 2);
    rec[6] = rec[7] = 0;
}

/* memcpy, but a body of 8 to 32 bytes (a short answer's) costs no call:
 * two moves of 8 or 16 bytes, overlapping in the middle. */
static inline void copy_body(uint8_t *to, const uint8_t *from, size_t n)
{
    if (n - 8 > 24) {
        memcpy(to, from, n);
    } else if (n >= 16) {
        memcpy(to, from, 16);
        memcpy(to + n - 16, from + n - 16, 16);
    } else {
        memcpy(to, from, 8);
        memcpy(to + n - 8, from + n - 8, 8);
    }
}

/* What of a response the records are made of, read once: the stores
 * into the output buffer (bytes, which may alias anything) would have
 * the compiler read the response again after each. */
struct answer {
    bool length; /* the status has a body: Content-Length */
    size_t content_length;
    const char *extra;
    size_t extra_len;
    const uint8_t *body;
    size_t body_len; /* the bytes sent: none for HEAD and bodiless statuses */
};

static inline struct answer answer_of(const struct fcgi_response *r, bool length)
{
    struct answer a = {length, r->body_len, r->extra_headers, r->extra_headers_len, r->body,
                       r->body_len};

    if (r->head_only || !length)
        a.body_len = 0;
    return a;
}

/*
 * Room in out for the whole answer, its prefix counted as prefix_len
 * (the length's digits are not known yet: their most), reserved once.
 */
static inline int reserve_answer(struct buf *out, const struct answer *a, size_t prefix_len)
{
    size_t stream = prefix_len + FMT_U64_MAX + 2 + a->extra_len + 2 + a->body_len;
    /* (a record header per 32 KiB of the stream: a shift, and enough) */
    size_t room = stream + ((stream >> 15) + 1) * FCGI_HEADER_LEN + sizeof answer_end;

    return room > out->cap - out->len ? buf_reserve(out, room) : 0;
}

/*
 * The rest of the answer after its prefix, which is in place (in the first
 * STDOUT record, whose header starts at rec) and ends at p: the length,
 * the extra headers, the blank line, the body in STDOUT records of at most
 * 65535 bytes, then the end.  The first record's header is written once
 * the length of the header block is known.  Returns the bytes from rec to
 * the end.  (Inline: a call here costs a tenth of the answer.  Positions
 * are pointers, not the buffer's fields: each byte stored may alias
 * those, and they would be read again after it.)
 */
static inline __attribute__((always_inline)) size_t finish_answer(uint8_t *rec, uint16_t id_be,
                                                                  const struct answer *a,
                                                                  char *p)
{
    uint8_t *end;
    size_t head_len, first;

    if (a->length) {
        p += fmt_u64(p, a->content_length);
        p = FMT_PUT_LIT(p, "\r\n");
    }
    if (a->extra_len)
        p = fmt_put(p, a->extra, a->extra_len);
    p = FMT_PUT_LIT(p, "\r\n");
    head_len = (size_t)((uint8_t *)p - rec) - FCGI_HEADER_LEN; /* < HEAD_MAX + 8194 */

    /* the body: what fits after the header block, then records of 65535 */
    first = a->body_len < FCGI_MAX_LENGTH - head_len ? a->body_len : FCGI_MAX_LENGTH - head_len;
    stdout_header(rec, id_be, head_len + first);
    if (first)
        copy_body((uint8_t *)p, a->body, first);
    end = (uint8_t *)p + first;
    for (size_t off = first; off < a->body_len;) {
        size_t chunk = a->body_len - off < FCGI_MAX_LENGTH ? a->body_len - off : FCGI_MAX_LENGTH;

        stdout_header(end, id_be, chunk);
        memcpy(end + FCGI_HEADER_LEN, a->body + off, chunk);
        end += FCGI_HEADER_LEN + chunk;
        off += chunk;
    }

    memcpy(end, answer_end, sizeof answer_end);
    memcpy(end + 2, &id_be, 2);
    memcpy(end + 10, &id_be, 2);
    return (size_t)(end + sizeof answer_end - rec);
}

/*
 * Formats the prefix of the header block into text (HEAD_MAX bytes), by
 * hand: snprintf here cost more than the rest of an answer.  Returns its
 * length, or 0 when the whole header block before the extra headers,
 * with length_digits digits of Content-Length, would not fit HEAD_MAX (an
 * absurd content type); *ct_off is where the content type's text is
 * (when there is one).
 */
static size_t format_prefix(char *text, int status, const char *content_type,
                            size_t length_digits, size_t *ct_off)
{
    const char *reason = fcgi_reason_phrase(status);
    size_t reason_len = strlen(reason), need;
    size_t ct_len = content_type ? strlen(content_type) : 0;
    bool body = fcgi_status_has_body(status);
    char *p = text;

    need = sizeof "Status: 200 \r\n" - 1 + reason_len;
    if (body) {
        if (content_type)
            need += sizeof "Content-Type: \r\n" - 1 + ct_len;
        need += sizeof "Content-Length: \r\n" - 1 + length_digits;
    }
    if (need >= HEAD_MAX)
        return 0;
    p = FMT_PUT_LIT(p, "Status: ");
    p += fmt_u64(p, (unsigned)status);
    *p++ = ' ';
    p = fmt_put(p, reason, reason_len);
    p = FMT_PUT_LIT(p, "\r\n");
    *ct_off = (size_t)(p - text) + sizeof "Content-Type: " - 1;
    if (body) {
        if (content_type) {
            p = FMT_PUT_LIT(p, "Content-Type: ");
            p = fmt_put(p, content_type, ct_len);
            p = FMT_PUT_LIT(p, "\r\n");
        }
        p = FMT_PUT_LIT(p, "Content-Length: ");
    }
    return (size_t)(p - text);
}

/* An answer whose prefix is not kept: formatted, kept in slot when it is
 * short enough (PREFIX_MAX and 20 digits are well under HEAD_MAX), and the
 * answer appended. */
static __attribute__((noinline)) long append_new_prefix(struct buf *out, uint16_t request_id,
                                                        const struct fcgi_response *r,
                                                        struct prefix *slot)
{
    struct answer a = answer_of(r, fcgi_status_has_body(r->status));
    /* (a status without a body has no Content-Type either) */
    const char *content_type = a.length ? r->content_type : NULL;
    char text[HEAD_MAX], digits[FMT_U64_MAX];
    size_t len, ct_off;
    uint8_t *rec;

    len = format_prefix(text, r->status, content_type,
                        a.length ? fmt_u64(digits, a.content_length) : 0, &ct_off);
    if (len == 0)
        return -1; /* an absurd content type */
    if (len <= PREFIX_MAX) {
        slot->status = (uint16_t)r->status;
        slot->content_type = r->content_type;
        slot->length = a.length;
        slot->len = (uint8_t)len;
        slot->ct_off = (uint8_t)ct_off;
        slot->ct_len = (uint8_t)(content_type ? strlen(content_type) : 0);
        slot->check_text = content_type && !literal_type(content_type); /* (NULL: bodiless) */
        memcpy(slot->text, text, len);
    }
    if (reserve_answer(out, &a, len) < 0)
        return -1;
    rec = out->data + out->len;
    memcpy(rec + FCGI_HEADER_LEN, text, len);
    out->len += finish_answer(rec, htons(request_id), &a, (char *)rec + FCGI_HEADER_LEN + len);
    return (long)a.body_len;
}

long fcgi_format_response(struct buf *out, uint16_t request_id, const struct fcgi_response *r)
{
    struct answer a;
    struct prefix *slot;
    uint8_t *rec;

    if (r->status < 100 || r->status > 599 || r->extra_headers_len > FCGI_MAX_EXTRA_HEADERS)
        return -1;
    slot = prefix_slot(r->status, r->content_type);
    if (!prefix_is(slot, r->status, r->content_type))
        return append_new_prefix(out, request_id, r, slot);
    a = answer_of(r, slot->length);
    /* the whole of the slot's text: a copy of a constant size is a few
     * moves, no call (what follows the prefix is written over) */
    if (reserve_answer(out, &a, PREFIX_MAX) < 0)
        return -1;
    rec = out->data + out->len;
    memcpy(rec + FCGI_HEADER_LEN, slot->text, PREFIX_MAX);
    out->len += finish_answer(rec, htons(request_id), &a, (char *)rec + FCGI_HEADER_LEN + slot->len);
    return (long)a.body_len;
}
