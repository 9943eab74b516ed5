/*
 * tests/fuzz/fuzz_codec.c — libFuzzer target for the FastCGI record parser
 * and the name-value pair codec (fcgi/codec.c).
 *
 * Input layout: byte 0 = k (mod 16), then k piece sizes (one byte each,
 * 0 = an empty piece), then the byte stream.  The stream is fed in pieces
 * of those sizes, cyclically, each piece copied into a buffer of its exact
 * size (ASan catches a read past it), and parsed until NEED_MORE or ERROR.
 * Checked, abort() on violation:
 *   - the same stream fed whole gives the same transcript (headers,
 *     content bytes, ends, error) as fed in pieces;
 *   - CONTENT points into the piece handed over, never more bytes than the
 *     header announced; END comes exactly after content_length bytes;
 *   - ERROR comes with a reason and is sticky;
 *   - every record's content (and the raw stream) is run through
 *     fcgi_nv_next until 0 or -1;
 *     each pair lies inside the content, and re-encoding it with
 *     fcgi_nv_encode gives a pair that decodes to the same bytes.
 * fcgi_record_check runs on every header (it must not crash).
 *
 * Build: tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/codec.h"

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_codec: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* What the parser said, in a form that does not depend on how the input
 * was cut. */
struct transcript {
    uint8_t *data;
    size_t len, cap;
};

static void t_put(struct transcript *t, const void *p, size_t n)
{
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;

        while (cap < t->len + n)
            cap *= 2;
        t->data = realloc(t->data, cap);
        CHECK(t->data != NULL);
        t->cap = cap;
    }
    memcpy(t->data + t->len, p, n);
    t->len += n;
}

struct state {
    struct fcgi_parser p;
    struct transcript t;
    int errored;
    int in_record;
    uint32_t content_seen;
    uint8_t content[FCGI_MAX_LENGTH]; /* the current record's content */
};

static void check_pairs(const uint8_t *content, size_t len)
{
    /* exact-size copy so an over-read is caught */
    uint8_t *buf = malloc(len ? len : 1);
    size_t pos = 0;
    struct fcgi_nv nv;
    const char *why = NULL;
    int rc, guard = 0;

    memcpy(buf, content, len);
    while ((rc = fcgi_nv_next(buf, len, &pos, &nv, &why)) == 1) {
        size_t size = fcgi_nv_size(nv.name_len, nv.value_len);
        uint8_t *enc = malloc(size);
        size_t epos = 0;
        struct fcgi_nv again;

        CHECK(nv.name >= buf && nv.name + nv.name_len <= buf + len);
        CHECK(nv.value == nv.name + nv.name_len);
        CHECK(nv.value + nv.value_len == buf + pos);
        CHECK(++guard <= 65536);
        CHECK(fcgi_nv_encode(enc, nv.name, nv.name_len, nv.value, nv.value_len) == size);
        CHECK(fcgi_nv_next(enc, size, &epos, &again, &why) == 1);
        CHECK(epos == size);
        CHECK(again.name_len == nv.name_len && again.value_len == nv.value_len);
        CHECK(memcmp(again.name, nv.name, nv.name_len) == 0);
        CHECK(memcmp(again.value, nv.value, nv.value_len) == 0);
        free(enc);
    }
    CHECK(rc == 0 || (rc == -1 && why && why[0]));
    CHECK(rc != 0 || pos == len);
    free(buf);
}

static void feed(struct state *s, const uint8_t *piece, size_t piece_len)
{
    const uint8_t *buf = piece;
    size_t len = piece_len;
    struct fcgi_event ev;

    for (;;) {
        size_t before = len;
        enum fcgi_event_kind k = fcgi_parser_next(&s->p, &buf, &len, &ev);

        CHECK(k == ev.kind);
        CHECK(len <= before);
        CHECK(buf == piece + (piece_len - len));
        if (s->errored)
            CHECK(k == FCGI_EV_ERROR && len == before);
        switch (k) {
        case FCGI_EV_NEED_MORE:
            CHECK(len == 0);
            return;
        case FCGI_EV_ERROR:
            CHECK(s->p.error && s->p.error[0]);
            if (!s->errored)
                t_put(&s->t, "E", 1);
            s->errored = 1;
            return;
        case FCGI_EV_HEADER: {
            uint8_t h[7] = {'H', s->p.record.type, (uint8_t)(s->p.record.request_id >> 8),
                            (uint8_t)s->p.record.request_id,
                            (uint8_t)(s->p.record.content_length >> 8),
                            (uint8_t)s->p.record.content_length, s->p.record.padding_length};

            CHECK(!s->in_record);
            (void)fcgi_record_check(&s->p.record);
            t_put(&s->t, h, sizeof h);
            s->in_record = 1;
            s->content_seen = 0;
            break;
        }
        case FCGI_EV_CONTENT:
            CHECK(s->in_record);
            CHECK(ev.len > 0);
            CHECK(ev.data >= piece && ev.data + ev.len <= piece + piece_len);
            CHECK(s->content_seen + ev.len <= s->p.record.content_length);
            memcpy(s->content + s->content_seen, ev.data, ev.len);
            s->content_seen += (uint32_t)ev.len;
            t_put(&s->t, ev.data, ev.len);
            break;
        case FCGI_EV_END:
            CHECK(s->in_record);
            CHECK(s->content_seen == s->p.record.content_length);
            check_pairs(s->content, s->content_seen);
            t_put(&s->t, "Z", 1);
            s->in_record = 0;
            break;
        default:
            CHECK(!"unknown event kind");
        }
    }
}

static struct state *state_new(void)
{
    struct state *s = calloc(1, sizeof *s);

    CHECK(s != NULL);
    fcgi_parser_init(&s->p);
    return s;
}

static void state_free(struct state *s)
{
    free(s->t.data);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t k, sum = 0, off = 0, i = 0;
    const uint8_t *sizes, *stream;
    size_t stream_len;
    struct state *whole, *cut;

    if (size < 1)
        return 0;
    k = data[0] % 16;
    if (size < 1 + k)
        return 0;
    sizes = data + 1;
    stream = data + 1 + k;
    stream_len = size - 1 - k;
    for (size_t j = 0; j < k; j++)
        sum += sizes[j];

    whole = state_new();
    {
        uint8_t *copy = malloc(stream_len ? stream_len : 1);

        memcpy(copy, stream, stream_len);
        feed(whole, copy, stream_len);
        free(copy);
    }

    cut = state_new();
    while (off < stream_len) {
        size_t n = (k == 0 || sum == 0) ? stream_len : sizes[i++ % k];
        uint8_t *piece;

        if (n > stream_len - off)
            n = stream_len - off;
        piece = malloc(n ? n : 1);
        memcpy(piece, stream + off, n);
        feed(cut, piece, n);
        free(piece);
        off += n;
    }
    feed(cut, stream, 0); /* an empty piece at the end is harmless */

    /* The stream itself as pairs too: reaches the pair decoder without
     * needing a valid record header first. */
    check_pairs(stream, stream_len);

    CHECK(whole->errored == cut->errored);
    CHECK(whole->in_record == cut->in_record);
    CHECK(whole->t.len == cut->t.len);
    CHECK(whole->t.len == 0 || memcmp(whole->t.data, cut->t.data, whole->t.len) == 0);
    if (whole->errored) {
        static const uint8_t valid[8] = {1, 5, 0, 1, 0, 0, 0, 0};
        const uint8_t *b = valid;
        size_t l = sizeof valid;
        struct fcgi_event ev;

        CHECK(fcgi_parser_next(&whole->p, &b, &l, &ev) == FCGI_EV_ERROR && l == sizeof valid);
    }

    state_free(whole);
    state_free(cut);
    return 0;
}
