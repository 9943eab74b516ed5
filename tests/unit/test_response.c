/*
 * tests/unit/test_response.c — response formatting (fcgi/response.c).
 *
 * The produced bytes are read back with a small record reader written
 * here from the FastCGI 1.0 spec, not with fcgi/codec.c: the parser under
 * test must not be the judge of its sibling.
 */
#include "tests/unit/unit.h"
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "fcgi/request.h"
#include "fcgi/response.h"

/* ---- the test's own record reader -------------------------------------- */

#define T_VERSION 1
#define T_END_REQUEST 3
#define T_STDOUT 6

struct trec {
    uint8_t version, type, padding, reserved;
    uint16_t id;
    const uint8_t *content;
    size_t len;
};

/* Splits bytes into records; returns the count, or -1 if the bytes do not
 * end exactly at a record boundary. */
static long read_records(const uint8_t *b, size_t n, struct trec *out, size_t max)
{
    size_t pos = 0, count = 0;

    while (pos < n) {
        struct trec r;

        if (n - pos < 8 || count == max)
            return -1;
        r.version = b[pos];
        r.type = b[pos + 1];
        r.id = (uint16_t)(b[pos + 2] << 8 | b[pos + 3]);
        r.len = (size_t)(b[pos + 4] << 8 | b[pos + 5]);
        r.padding = b[pos + 6];
        r.reserved = b[pos + 7];
        if (n - pos - 8 < r.len + r.padding)
            return -1;
        r.content = b + pos + 8;
        pos += 8 + r.len + r.padding;
        out[count++] = r;
    }
    return (long)count;
}

/* ---- checking a whole response ----------------------------------------- */

#define MAX_TRECS 64

struct parsed {
    long nrecs;
    struct trec rec[MAX_TRECS];
    uint8_t *stream; /* STDOUT contents concatenated */
    size_t stream_len;
    size_t stdout_records; /* non-empty ones */
    bool shape_ok;         /* STDOUT+, empty STDOUT, END_REQUEST, nothing else */
    bool ids_ok;
    bool versions_ok;
    uint32_t app_status;
    uint8_t protocol_status;
    size_t max_record;
};

static void parse_response(const uint8_t *b, size_t n, uint16_t id, struct parsed *p)
{
    long i;

    memset(p, 0, sizeof *p);
    p->nrecs = read_records(b, n, p->rec, MAX_TRECS);
    if (p->nrecs < 2)
        return;
    p->stream = malloc(n + 1);
    p->shape_ok = true;
    p->ids_ok = true;
    p->versions_ok = true;
    for (i = 0; i < p->nrecs; i++) {
        const struct trec *r = &p->rec[i];

        if (r->id != id)
            p->ids_ok = false;
        if (r->version != T_VERSION || r->reserved != 0)
            p->versions_ok = false;
        if (r->len > p->max_record)
            p->max_record = r->len;
        if (i < p->nrecs - 2) {
            /* body records: STDOUT with content */
            if (r->type != T_STDOUT || r->len == 0)
                p->shape_ok = false;
            memcpy(p->stream + p->stream_len, r->content, r->len);
            p->stream_len += r->len;
            p->stdout_records++;
        } else if (i == p->nrecs - 2) {
            if (r->type != T_STDOUT || r->len != 0)
                p->shape_ok = false;
        } else {
            if (r->type != T_END_REQUEST || r->len != 8)
                p->shape_ok = false;
            else {
                p->app_status = (uint32_t)r->content[0] << 24 | (uint32_t)r->content[1] << 16 |
                                (uint32_t)r->content[2] << 8 | r->content[3];
                p->protocol_status = r->content[4];
                if (r->content[5] || r->content[6] || r->content[7])
                    p->shape_ok = false;
            }
        }
    }
}

/* Formats r for id into a fresh buffer holding `prefix` first, and checks
 * everything: prefix kept, records, header text, body bytes. */
static void check_response(const struct fcgi_response *r, uint16_t id, const char *want_head)
{
    static const char prefix[] = "earlier bytes";
    struct buf out = {0};
    struct parsed p;
    size_t head_len = strlen(want_head);
    size_t body_sent = r->head_only || !fcgi_status_has_body(r->status) ? 0 : r->body_len;
    long rc;

    CU_ASSERT_EQUAL_FATAL(buf_append(&out, prefix, sizeof prefix - 1), 0);
    rc = fcgi_format_response(&out, id, r);
    CU_ASSERT_EQUAL(rc, (long)body_sent);
    CU_ASSERT_FATAL(out.len > sizeof prefix - 1);
    CU_ASSERT_EQUAL(memcmp(out.data, prefix, sizeof prefix - 1), 0);

    parse_response(out.data + sizeof prefix - 1, out.len - (sizeof prefix - 1), id, &p);
    CU_ASSERT_FATAL(p.nrecs >= 2);
    CU_ASSERT(p.shape_ok);
    CU_ASSERT(p.ids_ok);
    CU_ASSERT(p.versions_ok);
    CU_ASSERT_EQUAL(p.app_status, 0);
    CU_ASSERT_EQUAL(p.protocol_status, 0); /* FCGI_REQUEST_COMPLETE */
    CU_ASSERT(p.max_record <= 65535);
    /* No more records than it takes, give or take the header block. */
    CU_ASSERT(p.stdout_records <= (head_len + body_sent + 65534) / 65535 + 1);

    CU_ASSERT_EQUAL_FATAL(p.stream_len, head_len + body_sent);
    CU_ASSERT_EQUAL(memcmp(p.stream, want_head, head_len), 0);
    if (memcmp(p.stream, want_head, head_len) != 0)
        fprintf(stderr, "\nheader block:\n%.*s\nexpected:\n%s\n", (int)head_len, p.stream,
                want_head);
    if (body_sent)
        CU_ASSERT_EQUAL(memcmp(p.stream + head_len, r->body, body_sent), 0);
    free(p.stream);
    buf_free(&out);
}

static uint8_t *make_body(size_t n)
{
    uint8_t *b = malloc(n ? n : 1);

    /* NULs, CR/LF and high bytes in the mix */
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 131u + (i >> 9));
    return b;
}

static void test_bodies(void)
{
    static const size_t sizes[] = {0, 1, 2, 65535 - 60, 65535, 65536, 131070, 200000};

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *body = make_body(sizes[i]);
        struct fcgi_response r = {200, "application/octet-stream", NULL, 0, body, sizes[i], false};
        char head[256];

        snprintf(head, sizeof head,
                 "Status: 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 sizes[i]);
        check_response(&r, (uint16_t)(i + 1), head);
        free(body);
    }
}

/* Every short length, each body the last bytes of its allocation (a copy
 * that read past it would show under the sanitizers), at an odd offset
 * in the output. */
static void test_short_bodies(void)
{
    for (size_t n = 0; n <= 40; n++) {
        uint8_t *pattern = make_body(n + 1);
        uint8_t *body = malloc(n ? n : 1);
        struct fcgi_response r = {200, FCGI_TEXT_PLAIN, NULL, 0, body, n, false};
        char head[256];

        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        memcpy(body, pattern + 1, n);
        snprintf(head, sizeof head,
                 "Status: 200 OK\r\nContent-Type: " FCGI_TEXT_PLAIN "\r\nContent-Length: %zu\r\n\r\n",
                 n);
        check_response(&r, (uint16_t)(n + 1), head);
        r.head_only = true;
        check_response(&r, (uint16_t)(n + 1), head);
        free(body);
        free(pattern);
    }
}

static void test_body_all_nuls(void)
{
    uint8_t *body = calloc(70000, 1);
    struct fcgi_response r = {200, "text/plain", NULL, 0, body, 70000, false};

    check_response(&r, 7,
                   "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 70000\r\n\r\n");
    free(body);
}

static void test_request_ids(void)
{
    static const uint16_t ids[] = {1, 2, 255, 256, 4660, 65535};

    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct fcgi_response r = {404, "text/plain", NULL, 0, "nope\n", 5, false};

        check_response(&r, ids[i],
                       "Status: 404 Not Found\r\nContent-Type: text/plain\r\n"
                       "Content-Length: 5\r\n\r\n");
    }
}

static void test_no_content_type(void)
{
    struct fcgi_response r = {204, NULL, NULL, 0, NULL, 0, false};

    check_response(&r, 3, "Status: 204 No Content\r\n\r\n");
}

static void test_extra_headers(void)
{
    static const char extra[] = "Allow: GET, HEAD\r\nX-Thing: 1\r\n";
    struct fcgi_response r = {405, "text/plain", extra, sizeof extra - 1, "no\n", 3, false};

    check_response(&r, 9,
                   "Status: 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
                   "Content-Length: 3\r\nAllow: GET, HEAD\r\nX-Thing: 1\r\n\r\n");
}

static void test_head_only(void)
{
    uint8_t *body = make_body(100000);
    struct fcgi_response r = {200, "text/plain", NULL, 0, body, 100000, true};
    struct fcgi_response e = {200, "text/plain", NULL, 0, NULL, 0, true};

    /* Content-Length of the body, no body bytes */
    check_response(&r, 5,
                   "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n");
    check_response(&e, 5, "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n");
    free(body);
}

/* A bad request to format leaves the buffer exactly as it was. */
static void expect_refused(const struct fcgi_response *r)
{
    struct buf out = {0};
    uint8_t *before;
    size_t len;

    buf_append(&out, "keep me", 7);
    len = out.len;
    before = malloc(len);
    memcpy(before, out.data, len);
    CU_ASSERT_EQUAL(fcgi_format_response(&out, 1, r), -1);
    CU_ASSERT_EQUAL(out.len, len);
    CU_ASSERT_EQUAL(memcmp(out.data, before, len), 0);
    free(before);
    buf_free(&out);
}

static void test_status_range(void)
{
    static const int bad[] = {INT_MIN, -200, -1, 0, 1, 99, 600, 999, 1000, INT_MAX};
    static const int good[] = {100, 199, 200, 599};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fcgi_response r = {bad[i], "text/plain", NULL, 0, "x", 1, false};

        expect_refused(&r);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct fcgi_response r = {good[i], "text/plain", NULL, 0, "x", 1, false};
        char head[128];

        if (good[i] < 200) /* no body, no Content-Length */
            snprintf(head, sizeof head, "Status: %d %s\r\n\r\n", good[i],
                     fcgi_reason_phrase(good[i]));
        else
            snprintf(head, sizeof head,
                     "Status: %d %s\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\n",
                     good[i], fcgi_reason_phrase(good[i]));
        check_response(&r, 1, head);
    }
}

static void test_extra_headers_limit(void)
{
    size_t n = FCGI_MAX_EXTRA_HEADERS;
    char *extra = malloc(n + 1);
    char *head = malloc(n + 256);
    struct fcgi_response r = {200, "text/plain", extra, n, "b", 1, false};

    /* Exactly the limit: "X-Pad: aaaa...\r\n" of FCGI_MAX_EXTRA_HEADERS bytes. */
    memcpy(extra, "X-Pad: ", 7);
    memset(extra + 7, 'a', n - 9);
    memcpy(extra + n - 2, "\r\n", 2);
    extra[n] = '\0';
    snprintf(head, n + 256, "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n%s\r\n",
             extra);
    check_response(&r, 2, head);

    /* One byte over */
    r.extra_headers_len = n + 1;
    extra = realloc(extra, n + 2);
    r.extra_headers = extra;
    memcpy(extra + n - 2, "a\r\n", 3);
    expect_refused(&r);
    r.extra_headers_len = (size_t)-1;
    expect_refused(&r);
    free(extra);
    free(head);
}

/* The status line and fixed headers at their longest (511 bytes, just
 * under the 512 the formatter allows) together with the largest extra
 * header block: the whole block must still come out intact.  (Under ASan
 * this also proves the header block fits the formatter's stack buffer.) */
static void test_longest_header_block(void)
{
    size_t n = FCGI_MAX_EXTRA_HEADERS;
    char *extra = malloc(n + 1);
    char *want = malloc(512 + n + 3);
    char ctype[512];
    size_t fixed = strlen("Status: 200 OK\r\nContent-Type: \r\nContent-Length: 1\r\n");
    size_t clen = 511 - fixed;
    struct fcgi_response r = {200, ctype, extra, n, "b", 1, false};

    memset(ctype, 't', clen);
    ctype[clen] = '\0';
    memcpy(extra, "X-Pad: ", 7);
    memset(extra + 7, 'a', n - 9);
    memcpy(extra + n - 2, "\r\n", 2);
    extra[n] = '\0';
    snprintf(want, 512 + n + 3, "Status: 200 OK\r\nContent-Type: %s\r\nContent-Length: 1\r\n%s\r\n",
             ctype, extra);
    CU_ASSERT_EQUAL(strlen(want), 511 + n + 2);
    check_response(&r, 2, want);

    /* One more byte of content type: refused, not truncated. */
    memset(ctype, 't', clen + 1);
    ctype[clen + 1] = '\0';
    r.extra_headers_len = 0;
    expect_refused(&r);
    free(extra);
    free(want);
}

static void test_reason_phrase(void)
{
    static const struct {
        int status;
        const char *phrase;
    } known[] = {
        {200, "OK"},           {204, "No Content"},         {400, "Bad Request"},
        {404, "Not Found"},    {405, "Method Not Allowed"}, {413, "Content Too Large"},
        {414, "URI Too Long"}, {500, "Internal Server Error"}, {502, "Bad Gateway"},
        {503, "Service Unavailable"}, {504, "Gateway Timeout"},
    };
    static const int unknown[] = {0, -1, 100, 199, 299, 418, 599, 600, 1000};

    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        CU_ASSERT_STRING_EQUAL(fcgi_reason_phrase(known[i].status), known[i].phrase);
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CU_ASSERT_STRING_EQUAL(fcgi_reason_phrase(unknown[i]), "Unknown");
}

/* The error body as printf would make it: "<status> <reason>: <message>\n",
 * the message cut to fit size (its NUL included), 0 when even the status
 * part does not fit. */
static size_t error_like_printf(char *out, size_t size, int status, const char *msg)
{
    char tmp[2048];
    int n = snprintf(tmp, sizeof tmp, "%d %s: ", status, fcgi_reason_phrase(status));
    size_t m = strlen(msg);

    if ((size_t)n + 2 > size)
        return 0;
    if ((size_t)n + m > size - 2)
        m = size - 2 - (size_t)n;
    memcpy(out, tmp, (size_t)n);
    memcpy(out + n, msg, m);
    out[(size_t)n + m] = '\n';
    return (size_t)n + m + 1;
}

static void test_error_body(void)
{
    static const int statuses[] = {404, 200, 503, 999, 1000, 12345, 0, 7, -1, -404, INT_MIN,
                                   INT_MAX};
    static const char *const msgs[] = {"", "x", "no route for /api/v1/nope"};

    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        for (size_t j = 0; j < sizeof msgs / sizeof msgs[0]; j++)
            for (size_t size = 0; size < 80; size++) {
                char want[96], got[96];
                size_t wn = error_like_printf(want, size, statuses[i], msgs[j]);
                size_t gn;

                memset(got, '#', sizeof got);
                gn = fcgi_format_error(got, size, statuses[i], "%s", msgs[j]);
                CU_ASSERT_EQUAL(gn, wn);
                if (gn == wn && wn > 0)
                    CU_ASSERT_EQUAL(memcmp(got, want, wn), 0);
                CU_ASSERT(gn <= size);
            }
}

static void test_end_request_bytes(void)
{
    static const uint8_t want1[] = {1, 3, 0x00, 0x2a, 0, 8, 0, 0,
                                    0x12, 0x34, 0x56, 0x78, 3, 0, 0, 0};
    static const uint8_t want2[] = {1, 3, 0xff, 0xff, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    struct buf out = {0};

    CU_ASSERT_EQUAL(fcgi_format_end_request(&out, 42, 0x12345678, 3), 0);
    CU_ASSERT_EQUAL_FATAL(out.len, 16);
    CU_ASSERT_EQUAL(memcmp(out.data, want1, 16), 0);
    CU_ASSERT_EQUAL(fcgi_format_end_request(&out, 65535, 0, 0), 0);
    CU_ASSERT_EQUAL_FATAL(out.len, 32);
    CU_ASSERT_EQUAL(memcmp(out.data, want1, 16), 0); /* appended, not overwritten */
    CU_ASSERT_EQUAL(memcmp(out.data + 16, want2, 16), 0);
    buf_free(&out);
}

static void test_format_record(void)
{
    static const uint8_t want[] = {1, 7, 0, 5, 0, 3, 0, 0, 'a', 0, 'c'};
    struct buf out = {0};
    uint8_t *big = calloc(65536, 1);

    CU_ASSERT_EQUAL(fcgi_format_record(&out, 7, 5, "a\0c", 3), 0);
    CU_ASSERT_EQUAL_FATAL(out.len, sizeof want);
    CU_ASSERT_EQUAL(memcmp(out.data, want, sizeof want), 0);
    CU_ASSERT_EQUAL(fcgi_format_record(&out, 6, 1, big, 65535), 0);
    CU_ASSERT_EQUAL(out.len, sizeof want + 8 + 65535);
    CU_ASSERT_EQUAL(out.data[sizeof want + 4], 0xff);
    CU_ASSERT_EQUAL(out.data[sizeof want + 5], 0xff);
    CU_ASSERT_EQUAL(fcgi_format_record(&out, 6, 1, big, 65536), -1);
    CU_ASSERT_EQUAL(out.len, sizeof want + 8 + 65535);
    free(big);
    buf_free(&out);
}

/* Two responses appended one after the other stay separate. */
static void test_two_responses_back_to_back(void)
{
    struct fcgi_response a = {200, "text/plain", NULL, 0, "first", 5, false};
    struct fcgi_response b = {503, "text/plain", NULL, 0, "second", 6, false};
    struct buf out = {0};
    struct trec rec[16];
    long n;

    CU_ASSERT_EQUAL(fcgi_format_response(&out, 1, &a), 5);
    CU_ASSERT_EQUAL(fcgi_format_response(&out, 2, &b), 6);
    n = read_records(out.data, out.len, rec, 16);
    CU_ASSERT_EQUAL_FATAL(n, 6);
    CU_ASSERT(rec[0].type == T_STDOUT && rec[0].id == 1 && rec[0].len > 5);
    CU_ASSERT(rec[1].type == T_STDOUT && rec[1].id == 1 && rec[1].len == 0);
    CU_ASSERT(rec[2].type == T_END_REQUEST && rec[2].id == 1);
    CU_ASSERT(rec[3].type == T_STDOUT && rec[3].id == 2 && rec[3].len > 6);
    CU_ASSERT(memcmp(rec[3].content + rec[3].len - 6, "second", 6) == 0);
    CU_ASSERT(rec[5].type == T_END_REQUEST && rec[5].id == 2);
    buf_free(&out);
}

/* The reader must reject what is not a record sequence, or it proves
 * nothing. */
static void test_reader_self_check(void)
{
    static const uint8_t cut[] = {1, 6, 0, 1, 0, 5, 0, 0, 'a', 'b'};
    static const uint8_t ok[] = {1, 6, 0, 1, 0, 2, 1, 0, 'a', 'b', 0};
    struct trec rec[4];

    CU_ASSERT_EQUAL(read_records(cut, sizeof cut, rec, 4), -1);
    CU_ASSERT_EQUAL(read_records(cut, 5, rec, 4), -1);
    CU_ASSERT_EQUAL(read_records(ok, sizeof ok, rec, 4), 1);
    CU_ASSERT_EQUAL(read_records(ok, sizeof ok - 1, rec, 4), -1);
}

/* The output budgets check an answer's size before formatting it: the
 * bound must never be below what is appended. */
static void test_bound_covers_the_answer(void)
{
    static const size_t sizes[] = {0, 1, 100, 65535 - 100, 65535, 65536, 200000, 1 << 20};
    static const int statuses[] = {200, 204, 404, 503};
    char headers[FCGI_MAX_EXTRA_HEADERS];
    uint8_t *body = calloc(1, 1 << 20);

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    memset(headers, 'h', sizeof headers);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t k = 0; k < sizeof statuses / sizeof statuses[0]; k++)
            for (int extra = 0; extra < 2; extra++)
                for (int head = 0; head < 2; head++) {
                    struct fcgi_response r = {
                        .status = statuses[k],
                        .content_type = "text/plain; charset=utf-8",
                        .extra_headers = headers,
                        .extra_headers_len = extra ? sizeof headers - 100 : 0,
                        .body = body,
                        .body_len = sizes[i],
                        .head_only = head,
                    };
                    struct buf out = {NULL, 0, 0};

                    CU_ASSERT(fcgi_format_response(&out, 1, &r) >= 0);
                    CU_ASSERT(fcgi_response_bound(&r) >= out.len);
                    /* and not wildly above it: it decides refusals */
                    CU_ASSERT(fcgi_response_bound(&r) <= out.len + 600);
                    buf_free(&out);
                }
    free(body);
}

/* The header block of a status with a body, as the spec has it. */
static void head_of(char *out, size_t size, int status, const char *ctype, size_t len)
{
    if (ctype)
        snprintf(out, size, "Status: %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                 status, fcgi_reason_phrase(status), ctype, len);
    else
        snprintf(out, size, "Status: %d %s\r\nContent-Length: %zu\r\n\r\n", status,
                 fcgi_reason_phrase(status), len);
}

/* The header prefix kept for a status is not reused for another content
 * type, nor the one of a content type for another status. */
static void test_kept_prefix_per_status_and_type(void)
{
    static const char *const types[] = {"text/plain; charset=utf-8", "application/json", NULL,
                                        "text/html"};
    static const int statuses[] = {200, 404, 200, 503, 201};
    char head[256];

    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
            for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
                struct fcgi_response r = {statuses[i], types[k], NULL, 0, "body", 4, false};

                head_of(head, sizeof head, statuses[i], types[k], 4);
                check_response(&r, 1, head);
            }
}

/* A content type in a buffer: the same text at another address is the
 * same header, and other text at the same address another one. */
static void test_kept_prefix_content_type_text(void)
{
    static const char *const later[] = {"text/csvx", "text/cs", "text/tsv", "", "text/csv"};
    char a[64], b[64], head[256];
    struct fcgi_response r = {200, a, NULL, 0, "x", 1, false};

    strcpy(a, "text/csv");
    strcpy(b, "text/csv");
    check_response(&r, 1, "Status: 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 1\r\n\r\n");
    r.content_type = b;
    check_response(&r, 1, "Status: 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 1\r\n\r\n");
    /* the buffer now holds another type: longer, shorter, same length */
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        strcpy(a, later[i]);
        r.content_type = a;
        head_of(head, sizeof head, 200, a, 1);
        check_response(&r, 1, head);
    }
}

/* More pairs of status and content type than there are slots: each
 * answer still has its own header block. */
static void test_kept_prefix_many_pairs(void)
{
    static const int statuses[] = {200, 201, 400, 404, 500, 502, 503};
    static char types[40][24];
    char head[1100]; /* (the compiler takes a type for as long as all of types) */

    for (int i = 0; i < 40; i++)
        snprintf(types[i], sizeof types[i], "application/x-%d", i);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 40; i++) {
            int status = statuses[i % 7];
            struct fcgi_response r = {status, types[i], NULL, 0, "abc", 3, false};

            head_of(head, sizeof head, status, types[i], 3);
            check_response(&r, (uint16_t)(i + 1), head);
        }
}

/* Content types around the longest header prefix that is kept, and
 * longer: the same header block either way, every time. */
static void test_kept_prefix_lengths(void)
{
    char ctype[200], head[512];

    for (size_t n = 1; n < sizeof ctype - 1; n++) {
        memset(ctype, 'c', n);
        ctype[n] = '\0';
        for (int round = 0; round < 2; round++) {
            struct fcgi_response r = {200, ctype, NULL, 0, "z", 1, false};

            head_of(head, sizeof head, 200, ctype, 1);
            check_response(&r, 1, head);
        }
    }
}

/* With the prefix kept: a HEAD answer has the length but no body, a 204
 * or 304 neither (nor a Content-Type), a 1xx neither. */
static void test_kept_prefix_head_and_no_body(void)
{
    uint8_t *body = make_body(70000);
    struct fcgi_response get = {200, FCGI_TEXT_PLAIN, NULL, 0, body, 70000, false};
    struct fcgi_response head = get;
    static const int bodiless[] = {204, 304, 100, 204};

    head.head_only = true;
    for (int round = 0; round < 2; round++) {
        check_response(&get, 1,
                       "Status: 200 OK\r\nContent-Type: " FCGI_TEXT_PLAIN
                       "\r\nContent-Length: 70000\r\n\r\n");
        check_response(&head, 1,
                       "Status: 200 OK\r\nContent-Type: " FCGI_TEXT_PLAIN
                       "\r\nContent-Length: 70000\r\n\r\n");
        for (size_t i = 0; i < sizeof bodiless / sizeof bodiless[0]; i++) {
            struct fcgi_response r = {bodiless[i], FCGI_TEXT_PLAIN, NULL, 0, body, 10, false};
            char want[128];

            snprintf(want, sizeof want, "Status: %d %s\r\n\r\n", bodiless[i],
                     fcgi_reason_phrase(bodiless[i]));
            check_response(&r, 1, want);
        }
    }
    free(body);
}

/* A status without a body and one with, the same content type buffer:
 * the bodiless block has no Content-Type, the other the buffer's text
 * as it is at each answer. */
static void test_kept_prefix_bodiless_with_buffer_type(void)
{
    char ctype[32], head[256];

    for (int round = 0; round < 2; round++) {
        struct fcgi_response none = {204, ctype, NULL, 0, "x", 1, false};
        struct fcgi_response some = {200, ctype, NULL, 0, "x", 1, false};

        strcpy(ctype, round ? "text/a" : "text/bb");
        check_response(&none, 1, "Status: 204 No Content\r\n\r\n");
        head_of(head, sizeof head, 200, ctype, 1);
        check_response(&some, 1, head);
        strcpy(ctype, round ? "text/ccc" : "text/d");
        check_response(&none, 1, "Status: 204 No Content\r\n\r\n");
        head_of(head, sizeof head, 200, ctype, 1);
        check_response(&some, 1, head);
    }
}

/* The stream of header block and body is cut into records of exactly
 * 65535 bytes but the last, the header block in the first. */
static void test_records_of_65535(void)
{
    static const size_t sizes[] = {65535, 65536, 131070, 200000, 65535 * 3 - 60};
    static const char extra[] = "X-A: 1\r\n";

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int with_extra = 0; with_extra < 2; with_extra++) {
            uint8_t *body = make_body(sizes[i]);
            struct fcgi_response r = {200, "application/json", with_extra ? extra : NULL,
                                      with_extra ? sizeof extra - 1 : 0, body, sizes[i], false};
            struct buf out = {0};
            struct parsed p;
            char head[256];
            size_t stream, head_len;

            head_of(head, sizeof head, 200, "application/json", sizes[i]);
            head_len = strlen(head) + (with_extra ? sizeof extra - 1 : 0);
            stream = head_len + sizes[i];
            CU_ASSERT_EQUAL(fcgi_format_response(&out, 3, &r), (long)sizes[i]);
            parse_response(out.data, out.len, 3, &p);
            CU_ASSERT(p.shape_ok);
            CU_ASSERT_EQUAL_FATAL(p.stdout_records, (stream + 65534) / 65535);
            for (size_t k = 0; k + 1 < p.stdout_records; k++)
                CU_ASSERT_EQUAL(p.rec[k].len, 65535);
            CU_ASSERT_EQUAL(p.rec[p.stdout_records - 1].len, stream - (p.stdout_records - 1) * 65535);
            CU_ASSERT_EQUAL_FATAL(p.stream_len, stream);
            CU_ASSERT_EQUAL(memcmp(p.stream + head_len, body, sizes[i]), 0);
            free(p.stream);
            buf_free(&out);
            free(body);
        }
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"size bound of an answer", test_bound_covers_the_answer},
        {"reader self-check", test_reader_self_check},
        {"bodies 0..200000 bytes", test_bodies},
        {"short bodies, every length to 40", test_short_bodies},
        {"body of NULs", test_body_all_nuls},
        {"request ids", test_request_ids},
        {"no content type", test_no_content_type},
        {"extra headers", test_extra_headers},
        {"HEAD: length but no body", test_head_only},
        {"status outside 100..599 refused", test_status_range},
        {"extra headers limit", test_extra_headers_limit},
        {"reason phrases", test_reason_phrase},
        {"error bodies as printf made them, cut to fit", test_error_body},
        {"END_REQUEST bytes", test_end_request_bytes},
        {"one record of any type", test_format_record},
        {"two responses back to back", test_two_responses_back_to_back},
        {"longest header block", test_longest_header_block},
        {"kept prefix: per status and content type", test_kept_prefix_per_status_and_type},
        {"kept prefix: content type text decides", test_kept_prefix_content_type_text},
        {"kept prefix: more pairs than slots", test_kept_prefix_many_pairs},
        {"kept prefix: content types of every length", test_kept_prefix_lengths},
        {"kept prefix: HEAD, 204, 304, 1xx", test_kept_prefix_head_and_no_body},
        {"kept prefix: bodiless status, type in a buffer", test_kept_prefix_bodiless_with_buffer_type},
        {"records of 65535 bytes", test_records_of_65535},
        {NULL, NULL},
    };

    return unit_run("response", tests, 300);
}
