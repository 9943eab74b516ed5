/*
 * fcgi/request.c — one request: its params and body, its lifetime, and
 * the answer API handlers use (fcgi/request.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/internal.h"
#include "common/clear.h"
#include "common/log.h"
#include "common/word.h"
#include "fcgi/response.h"

/* Spare requests kept for reuse, so that beginning a request costs no
 * calloc (and ending it no free): at most SPARE_REQUESTS, a few KiB. */
#define SPARE_REQUESTS 32

/* A cleared request: a spare one (with the empty params buffer it kept,
 * charged at its first use), or a new one. */
static struct fcgi_request *request_alloc(struct fcgi_server *s)
{
    struct fcgi_request *r = s->spare;
    struct buf params;

    if (!r)
        return calloc(1, sizeof *r);
    s->spare = r->user;
    s->nspare--;
    params = r->params;
    clear_fixed(r, offsetof(struct fcgi_request, pairs_inline));
    r->params = params;
    return r;
}

void request_spares_free(struct fcgi_server *s)
{
    struct fcgi_request *r;

    while ((r = s->spare)) {
        s->spare = r->user;
        buf_free(&r->params);
        free(r);
    }
    s->nspare = 0;
    while (s->params_spares.n)
        buf_free(&s->params_spares.b[--s->params_spares.n]);
    buf_free(&s->out_spare);
}

/* b's memory goes to spares when it is small and there is room, else it
 * is freed; b is empty after. */
static void buf_give_back(struct buf *b, struct buf_spares *spares)
{
    if (b->cap && b->cap <= SPARE_BUF_MAX_BYTES && spares->n < SPARE_BUFS) {
        spares->b[spares->n++] = (struct buf){b->data, 0, b->cap};
        *b = (struct buf){NULL, 0, 0};
        return;
    }
    buf_free(b);
}

/* A spare buffer of exactly cap bytes into the empty b: true if there was one. */
static bool buf_take_spare(struct buf *b, size_t cap, struct buf_spares *spares)
{
    for (unsigned i = spares->n; i-- > 0;)
        if (spares->b[i].cap == cap) {
            *b = spares->b[i];
            spares->b[i] = spares->b[--spares->n];
            return true;
        }
    return false;
}

struct fcgi_request *request_new(struct fcgi_conn *c, uint16_t id, bool keep_conn)
{
    struct fcgi_server *s = c->srv;
    struct fcgi_request *r;

    /* The request itself counts against the params budget: it bounds how
     * many requests all peers together can keep begun. */
    if (s->params_bytes + sizeof *r > s->cfg.limits.max_buffered_params_bytes)
        return NULL;
    r = request_alloc(s);
    if (!r)
        return NULL;
    s->params_bytes += sizeof *r;
    STAT(s, requests);
    STAT(s, in_flight);
    r->conn = c;
    r->srv = c->srv;
    r->id = id;
    r->state = REQ_PARAMS;
    r->refs = 1;
    r->keep_conn = keep_conn;
    r->started = ev_now(c->srv->loop);
    list_insert_tail(&s->receiving, &r->receiving);
    if (s->cfg.limits.request_timeout > 0) {
        list_insert_tail(&s->timing, &r->timing);
        if (!ev_is_active(&s->request_timer)) {
            ev_timer_set(&s->request_timer, s->cfg.limits.request_timeout, 0);
            ev_timer_start(s->loop, &s->request_timer);
        }
    }
    return r;
}

/* Every request has the same timeout, so the list is in order of
 * deadline: the work stops at the first one still in time, and the timer
 * is set again for it.  (An answered request leaves the list at once; the
 * timer is not moved for it, and at worst fires once for nothing.) */
void request_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fcgi_server *s = container_of(w, struct fcgi_server, request_timer);
    double timeout = s->cfg.limits.request_timeout, now = ev_now(loop);
    struct fcgi_request *r;

    (void)revents;
    while ((r = list_first(&s->timing, struct fcgi_request, timing)) &&
           now - r->started >= timeout) {
        request_timing_end(r);
        if (r->conn && !r->answered)
            conn_request_timed_out(r);
    }
    if (r) {
        ev_timer_set(w, r->started + timeout - now, 0);
        ev_timer_start(loop, w);
    }
}

void request_lend_params(struct fcgi_request *r, uint8_t *data, size_t len)
{
    if (r->params.cap) /* (a request reused after a lent one has none) */
        buf_give_back(&r->params, &r->srv->params_spares);
    r->params = (struct buf){data, len, len + 1};
    r->params_lent = true;
}

/* Lent params are no longer r's: r has no params buffer again. */
static inline void params_unlend(struct fcgi_request *r)
{
    if (r->params_lent) {
        r->params = (struct buf){NULL, 0, 0};
        r->params_lent = false;
    }
}

int fcgi_request_keep_params(struct fcgi_request *r)
{
    struct fcgi_server *s = r->srv;
    struct buf lent = r->params;
    size_t n = lent.len + 1; /* with the byte after them: the NUL decoding put there */

    if (!r->params_lent)
        return 0;
    params_unlend(r);
    if (!request_grow_charged(&r->params, n, s->cfg.limits.max_params_bytes + 1,
                              &s->params_bytes, s->cfg.limits.max_buffered_params_bytes,
                              &r->params_charged, &s->params_spares)) {
        r->params = lent; /* still lent, for what is left of this call */
        r->params_lent = true;
        return -1;
    }
    memcpy(r->params.data, lent.data, n);
    r->params.len = lent.len;
    for (int k = 0; k < KNOWN_COUNT; k++)
        if (r->known[k].s)
            r->known[k].s = (const char *)r->params.data + ((const uint8_t *)r->known[k].s - lent.data);
    return 0;
}

void request_release_input(struct fcgi_request *r)
{
    params_unlend(r);
    request_receiving_end(r);
    r->srv->buffered_bytes -= r->body_charged;
    r->srv->params_bytes -= r->params_charged;
    r->body_charged = r->params_charged = 0;
    buf_free(&r->body);
    buf_give_back(&r->params, &r->srv->params_spares);
    r->npairs = 0;
    r->indexed = false;
    memset(r->known, 0, sizeof r->known);
}

void request_free(struct fcgi_request *r)
{
    struct fcgi_server *s = r->srv;
    bool spare = s->nspare < SPARE_REQUESTS;
    struct buf kept = {NULL, 0, 0};

    params_unlend(r);
    /* A request kept for reuse keeps a small params buffer, emptied: the
     * next request's params go there with no spare to look for (their
     * budget goes back now, and is charged again at the first use). */
    if (spare && r->params.cap <= SPARE_BUF_MAX_BYTES) {
        kept = (struct buf){r->params.data, 0, r->params.cap};
        r->params = (struct buf){NULL, 0, 0};
    }
    request_release_input(r);
    request_timing_end(r);
    s->params_bytes -= sizeof *r;
    if (!r->answered)
        STAT_DEC(s, in_flight);
    buf_free(&r->headers);
    if (r->notes)
        free(r->notes);
    if (spare) {
        r->params = kept;
        r->user = s->spare;
        s->spare = r;
        s->nspare++;
        return;
    }
    free(r);
}

bool request_grow_charged_slow(struct buf *b, size_t more, size_t limit, size_t *held,
                               size_t budget, size_t *charged, struct buf_spares *spares)
{
    /* (the bytes do not fit b, or request_grow_charged would have taken
     * them: cap is above b's capacity, and so above what is charged) */
    size_t cap = buf_next_cap(b, more, limit), extra;

    if (cap == 0)
        return false;
    extra = cap - *charged;
    if (*held + extra > budget)
        return false;
    if (!(b->cap == 0 && spares && buf_take_spare(b, cap, spares)) && buf_grow_to(b, cap) < 0)
        return false;
    *held += extra;
    *charged += extra;
    return true;
}

/* CONTENT_LENGTH: decimal digits; empty means no body, as CGI has it, and
 * -1 (Caddy's word for a chunked body) a body of unknown length, bounded
 * by --max-body-bytes like any. */
static __attribute__((cold)) void note_content_length(struct fcgi_request *r,
                                                     const uint8_t *value, size_t len)
{
    size_t n = 0;

    if (len == 0 || (len == 2 && !memcmp(value, "-1", 2)))
        return;
    r->has_content_length = true;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9' || n > (SIZE_MAX - 9) / 10) {
            r->content_length_bad = true;
            return;
        }
        n = n * 10 + (size_t)(value[i] - '0');
    }
    r->content_length = n;
}

/* Whether the 9 to 16 bytes at name are lit (len bytes): its first and
 * its last 8 bytes. */
static inline bool same_name(const void *name, const char *lit, size_t len)
{
    return word8(name) == word8(lit) &&
           word8((const char *)name + len - 8) == word8(lit + len - 8);
}

/* CONTENT_LENGTH: noted while decoding (note_content_length), not kept. */
#define NOTED_CONTENT_LENGTH KNOWN_COUNT

/* The lengths of the names noted while decoding (9, 11 and 14) as bits of
 * a word: one bit test passes over almost every other name (a few longer
 * than 63 pass too, and are told apart by their length below). */
#define NOTED_NAME_LENGTHS ((uint64_t)1 << 9 | (uint64_t)1 << 11 | (uint64_t)1 << 14)

static inline bool maybe_noted(size_t len)
{
    return NOTED_NAME_LENGTHS >> (len & 63) & 1;
}

/*
 * Which of the params noted while decoding name is: an enum request_known,
 * NOTED_CONTENT_LENGTH, or -1.  Its length first, then its first 4 bytes
 * (which tell apart every name of that length a front server sends), and
 * only then the whole name.
 */
static inline int noted_slot(const void *name, size_t len)
{
    uint32_t head;

    if (!maybe_noted(len))
        return -1;
    head = word4(name); /* (len is 9 at least) */
    if (len == 11) {
        if (head == word4("SCRI"))
            return same_name(name, "SCRIPT_NAME", 11) ? KNOWN_SCRIPT_NAME : -1;
        if (head == word4("REQU"))
            return same_name(name, "REQUEST_URI", 11) ? KNOWN_REQUEST_URI : -1;
    } else if (len == 14) {
        if (head == word4("REQU"))
            return same_name(name, "REQUEST_METHOD", 14) ? KNOWN_REQUEST_METHOD : -1;
        if (head == word4("CONT"))
            return same_name(name, "CONTENT_LENGTH", 14) ? NOTED_CONTENT_LENGTH : -1;
    } else if (len == 9 && head == word4("PATH")) {
        return same_name(name, "PATH_INFO", 9) ? KNOWN_PATH_INFO : -1;
    }
    return -1;
}

/* Notes the pair whose name (name_len bytes) is at name when it is one of
 * the engine's own (the last one counts) or CONTENT_LENGTH (each one
 * counts, in order). */
static inline void note_pair(struct fcgi_request *r, const uint8_t *name, size_t name_len,
                             size_t value_len)
{
    const uint8_t *value = name + name_len;
    int k = noted_slot(name, name_len);

    if (k == NOTED_CONTENT_LENGTH) {
        note_content_length(r, value, value_len);
    } else if (k >= 0) {
        r->known[k].s = (const char *)value;
        r->known[k].len = value_len;
    }
}

/* Where the index of more pairs than fit in the request goes: past the
 * NUL of the last value, aligned for its fields. */
static size_t index_offset(size_t raw_len)
{
    return (raw_len + 1 + _Alignof(struct param_ref) - 1) & ~(_Alignof(struct param_ref) - 1);
}

/* More room in r's params buffer, charged to the params budget; the
 * params noted so far follow the buffer when it moves. */
static bool grow_params(struct fcgi_request *r, size_t more)
{
    struct fcgi_server *s = r->srv;
    const uint8_t *was = r->params.data;

    if (!request_grow_charged(&r->params, more, s->cfg.limits.max_params_bytes,
                              &s->params_bytes, s->cfg.limits.max_buffered_params_bytes,
                              &r->params_charged, &s->params_spares))
        return false;
    if (r->params.data != was)
        for (int k = 0; k < KNOWN_COUNT; k++)
            if (r->known[k].s)
                r->known[k].s = (const char *)r->params.data +
                                ((const uint8_t *)r->known[k].s - was);
    return true;
}

/*
 * Room for the index of r's npairs pairs after the raw ones (more than fit
 * in the request), charged to the params budget like the params
 * themselves, made now so that indexing them later cannot fail.  The
 * buffer grows as it did when the index was written while decoding, a
 * pair at a time, so that the budget is charged the same.  False when
 * the budget is short.
 */
static __attribute__((cold)) bool index_room(struct fcgi_request *r)
{
    size_t off = index_offset(r->params.len);

    for (size_t n = REQUEST_PAIRS_INLINE + 1; n <= r->npairs; n++) {
        size_t need = off + n * sizeof(struct param_ref);

        if (need > r->params.cap && !grow_params(r, need - r->params.len))
            return false;
    }
    r->pairs_off = (uint32_t)off;
    return true;
}

#define NUL_INSIDE "NUL byte inside a param name or value"

/* Malformed pairs: -1, *why saying what was wrong first as the pairs
 * come: a NUL in a pair before (nul), else reason. */
static __attribute__((cold)) int malformed(const char **why, bool nul, const char *reason)
{
    *why = nul ? NUL_INSIDE : reason;
    return -1;
}

/* Where the first zero byte of buf[from..len) is; len when there is none. */
static size_t zero_from(const uint8_t *buf, size_t from, size_t len)
{
    const uint8_t *z = memchr(buf + from, 0, len - from);

    return z ? (size_t)(z - buf) : len;
}

/* Whether the n bytes at p, 8 to 16 of them, hold a zero byte: the first
 * and the last 8, a word each. */
static inline bool short_has_zero(const uint8_t *p, size_t n)
{
    return word8_has_byte_below(word8(p), 1) || word8_has_byte_below(word8(p + n - 8), 1);
}

/*
 * zero, a zero byte of buf[0..len), is before end, the end of a pair
 * whose name starts at name.  The bytes before the name are its length
 * fields (zero for an empty name or value, or in a 4-byte length); a zero
 * from the name on is a NUL inside the name or the value.  Returns the
 * next zero byte to check after the pair (len when there is none), or
 * SIZE_MAX for a NUL inside.
 *
 * A name and value of 8 to 16 bytes (the name of an empty value: nginx
 * sends three) are checked in place, and the search goes on past the
 * first two bytes of the pair after, which are length bytes whatever they
 * hold: an empty value costs one memchr, not one for it and one more for
 * the zero length byte of the empty value after it.
 */
static size_t zero_after_pair(const uint8_t *buf, size_t len, size_t name, size_t end,
                              size_t zero)
{
    if (zero >= name)
        return SIZE_MAX;
    if (end - name - 8 > 8) { /* not 8 to 16 bytes: memchr from the name on */
        zero = zero_from(buf, name, len);
        return zero < end ? SIZE_MAX : zero;
    }
    if (short_has_zero(buf + name, end - name))
        return SIZE_MAX;
    return end + 2 < len ? zero_from(buf, end + 2, len) : len;
}

/* Where a pair's name starts and how long it and the value are. */
struct pair_lengths {
    size_t name; /* 0: the pair does not fit in its buffer */
    uint32_t name_len, value_len;
};

/* The lengths of the pair at pos in buf[0..len) when one takes 4 bytes
 * (the high bit of its first byte set); when they do not fit, name is 0
 * and *reason says how.  Apart, and cold: the loop over the pairs keeps
 * its registers for the 1-byte lengths every front server sends. */
static __attribute__((cold)) struct pair_lengths long_lengths(const uint8_t *buf, size_t len,
                                                              size_t pos, const char **reason)
{
    struct pair_lengths l = {0, 0, 0};

    if (fcgi_nv_read_length(buf, len, &pos, &l.name_len) < 0 ||
        fcgi_nv_read_length(buf, len, &pos, &l.value_len) < 0)
        *reason = "name-value pair length cut short";
    else if ((size_t)l.name_len + l.value_len > len - pos) /* (each below 2^31: no wrap) */
        *reason = "name-value pair longer than its record";
    else
        l.name = pos;
    return l;
}

/* The lengths of the pair at pos in buf[0..len), at least 2 bytes on: as
 * long_lengths, but two 1-byte lengths (either byte order) inline. */
static inline struct pair_lengths lengths_at(const uint8_t *buf, size_t len, size_t pos,
                                             const char **reason)
{
    if (!(word2(buf + pos) & 0x8080))
        return (struct pair_lengths){pos + 2, buf[pos], buf[pos + 1]};
    return long_lengths(buf, len, pos, reason);
}

/* Counts a checked pair, whose name (name_len bytes) is at name, and
 * notes it when it is one of the engine's own. */
static inline void count_pair(struct fcgi_request *r, uint32_t *n, const uint8_t *name,
                              size_t name_len, size_t value_len)
{
    ++*n;
    if (maybe_noted(name_len))
        note_pair(r, name, name_len, value_len);
}

/*
 * One pass over the pairs checks that they fit their bytes, counts them
 * into r->npairs and notes the engine's own; it writes nothing into them
 * (index_pairs does, when a lookup first needs it).
 *
 * A NUL inside a name or a value would cut it short as a C string.  The
 * zero bytes of the buffer are found with memchr (fast, and there are
 * few), one ahead of the pairs at a time, and each must be in a length
 * field: a pair ending before the next zero byte has none
 * (zero_after_pair checks the others).  A NUL is reported once the pairs
 * are all read, as it was before: they may yet be malformed otherwise.
 *
 * One comparison a pair, with stop, passes the pairs that need nothing
 * more: those that end before the next zero byte and before the last two
 * bytes (where the pairs end, or a last one is cut short).
 */
static int check_pairs(struct fcgi_request *r, const char **why)
{
    const uint8_t *buf = r->params.data, *at = buf, *next, *stop;
    size_t len = r->params.len, zero;
    uint32_t n = 0;
    bool nul = false;

    if (len < 2) /* a pair takes 2 bytes at least */
        return malformed(why, false, "name-value pair length cut short");
    /* (the first two bytes are length bytes, whatever they hold) */
    zero = len > 2 ? zero_from(buf, 2, len) : len;
    stop = buf + (zero < len - 2 ? zero : len - 2);
    /* The walk goes by pointer, not by offset: where the next pair is
     * hangs on the two length loads, and a load from a plain pointer is a
     * cycle quicker than one from buf + pos. */
    for (;;) {
        size_t nl = at[0], vl = at[1];
        const uint8_t *name = at + 2;

        next = name + nl + vl;
        if (__builtin_expect((nl | vl) & 0x80, 0)) { /* a 4-byte length */
            const char *reason;
            struct pair_lengths l = long_lengths(buf, len, (size_t)(at - buf), &reason);

            if (!l.name)
                return malformed(why, nul, reason);
            nl = l.name_len;
            vl = l.value_len;
            name = buf + l.name;
            next = name + nl + vl;
        }
        if (__builtin_expect(next > stop, 0)) {
            size_t end = (size_t)(next - buf);

            if (end > len)
                return malformed(why, nul, "name-value pair longer than its record");
            if (end > zero) { /* a zero byte in the pair */
                zero = zero_after_pair(buf, len, (size_t)(name - buf), end, zero);
                if (zero == SIZE_MAX) {
                    nul = true;
                    zero = len;
                }
            }
            if (end >= len - 1) { /* the last pair (but for a byte cut short) */
                count_pair(r, &n, name, nl, vl);
                at = next;
                break;
            }
            stop = buf + (zero < len - 2 ? zero : len - 2);
        }
        count_pair(r, &n, name, nl, vl);
        at = next;
    }
    if ((size_t)(at - buf) < len)
        return malformed(why, nul, "name-value pair length cut short");
    if (nul)
        return malformed(why, nul, NUL_INSIDE);
    r->npairs = n;
    return 0;
}

/* NUL-terminates the known values of r, keeping the bytes the NULs cover
 * (the first length byte of the pair after each, or the NUL past the
 * pairs) for index_pairs to read. */
static void end_known_values(struct fcgi_request *r)
{
#pragma GCC unroll 4
    for (int k = 0; k < KNOWN_COUNT; k++)
        if (r->known[k].s) {
            uint8_t *end = (uint8_t *)(uintptr_t)r->known[k].s + r->known[k].len;

            r->known_end[k] = *end;
            *end = '\0';
        }
}

/* The bytes end_known_values covered, back. */
static void restore_known_ends(struct fcgi_request *r)
{
    for (int k = 0; k < KNOWN_COUNT; k++)
        if (r->known[k].s)
            ((uint8_t *)(uintptr_t)r->known[k].s)[r->known[k].len] = r->known_end[k];
}

/*
 * Indexes the pairs of r, checked by check_pairs, and NUL-terminates each
 * value over the first length byte of the pair after it, once that is
 * read (the last one's NUL, past the pairs, is there already; the known
 * values stay NUL-terminated, so what fcgi_known_param gave stays valid).
 * The index of more pairs than fit in the request goes where index_room
 * made room for it.
 */
static void index_pairs(struct fcgi_request *r)
{
    uint8_t *buf = r->params.data;
    size_t len = r->params.len, pos = 0;
    struct param_ref *ref = r->npairs <= REQUEST_PAIRS_INLINE
                                ? r->pairs_inline
                                : (struct param_ref *)(void *)(buf + r->pairs_off);

    restore_known_ends(r);
    for (uint32_t i = 0; i < r->npairs; i++) {
        const char *reason; /* (none: the pairs are checked) */
        struct pair_lengths l = lengths_at(buf, len, pos, &reason);

        buf[pos] = '\0'; /* ends the value before (before the first pair: nothing) */
        *ref++ = (struct param_ref){(uint32_t)l.name, l.name_len, l.value_len};
        pos = l.name + l.name_len + l.value_len;
    }
    r->indexed = true;
}

/* After check_pairs: the room the pairs' index and the last value's NUL
 * will take, charged to the budget; false when it is short. */
static bool room_after_pairs(struct fcgi_request *r)
{
    if (r->npairs > REQUEST_PAIRS_INLINE && !index_room(r))
        return false;
    /* the NUL after the last value needs a byte past the pairs (an index
     * there has made room) */
    if (r->params.len == r->params.cap && !grow_params(r, 1))
        return false;
    r->params.data[r->params.len] = '\0';
    return true;
}

int request_decode_params(struct fcgi_request *r, const char **why)
{
    int rc;

    r->npairs = 0;
    r->indexed = false;
    if (r->params.len == 0)
        return 0; /* no params at all (and possibly no buffer) */
    rc = check_pairs(r, why);
    /* (lent, the pairs' bytes have no room after them for an index) */
    if (rc == 0 && r->npairs > REQUEST_PAIRS_INLINE && fcgi_request_keep_params(r) < 0)
        rc = -2;
    if (rc == 0 && !room_after_pairs(r))
        rc = -2;
    if (rc < 0) { /* none is noted then, none is indexed */
        r->npairs = 0;
        memset(r->known, 0, sizeof r->known);
        return rc;
    }
    end_known_values(r);
    return 0;
}

/* The index of r's pairs (npairs > 0), made by the first lookup that
 * needs it.  The cast: it changes the params behind a const pointer, which
 * is defined, as no request is defined const (request_alloc makes each);
 * for the caller, the params are as they were. */
static const struct param_ref *pairs_of(const struct fcgi_request *r)
{
    if (!r->indexed)
        index_pairs((struct fcgi_request *)(uintptr_t)r);
    if (r->npairs <= REQUEST_PAIRS_INLINE)
        return r->pairs_inline;
    return (const struct param_ref *)(const void *)(r->params.data + r->pairs_off);
}

const char *fcgi_param(const struct fcgi_request *r, const char *name)
{
    size_t len = strlen(name);
    int k = noted_slot(name, len);
    const struct param_ref *pr;

    /* The parameters every request asks for were noted while decoding:
     * no scan (a NULL noted means absent). */
    if (k >= 0 && k < KNOWN_COUNT)
        return r->known[k].s;
    if (r->npairs == 0) /* (and maybe no buffer: NULL + offset would be undefined) */
        return NULL;
    pr = pairs_of(r);
    for (uint32_t i = 0; i < r->npairs; i++) {
        const uint8_t *at = r->params.data + pr[i].name;

        /* the first byte before memcmp: most names of a length differ there */
        if (pr[i].name_len == len && (len == 0 || (at[0] == (uint8_t)name[0] &&
                                                   !memcmp(at, name, len))))
            return (const char *)at + len;
    }
    return NULL;
}

const char *fcgi_known_param(const struct fcgi_request *r, enum fcgi_known_param which,
                             size_t *len)
{
    if ((unsigned)which >= KNOWN_COUNT) {
        *len = 0;
        return NULL;
    }
    *len = r->known[which].len; /* 0 when absent */
    return r->known[which].s;
}

struct fcgi_request_routing fcgi_request_routing(const struct fcgi_request *r)
{
    return (struct fcgi_request_routing){r->known, r->srv->cfg.app};
}

void fcgi_param_each(const struct fcgi_request *r,
                     void (*fn)(void *arg, const char *name, size_t name_len, const char *value),
                     void *arg)
{
    const struct param_ref *pr;

    if (r->npairs == 0) /* (and maybe no buffer) */
        return;
    pr = pairs_of(r);
    for (uint32_t i = 0; i < r->npairs; i++)
        fn(arg, (const char *)r->params.data + pr[i].name, pr[i].name_len,
           (const char *)r->params.data + pr[i].name + pr[i].name_len);
}

const uint8_t *fcgi_body(const struct fcgi_request *r, size_t *len)
{
    *len = r->body.len;
    return r->body.data ? r->body.data : (const uint8_t *)"";
}

bool fcgi_request_alive(const struct fcgi_request *r)
{
    return r->conn && !r->answered;
}

struct ev_loop *fcgi_request_loop(const struct fcgi_request *r)
{
    return r->srv->loop;
}

void fcgi_request_set_head_only(struct fcgi_request *r, bool head_only)
{
    r->head_only = head_only;
}

void *fcgi_request_app(const struct fcgi_request *r)
{
    return r->srv->cfg.app;
}

void fcgi_request_set_tag(struct fcgi_request *r, unsigned tag)
{
    r->tag = (uint8_t)tag;
}

unsigned fcgi_request_tag(const struct fcgi_request *r)
{
    return r->tag;
}

double request_answer_clock(struct fcgi_server *s)
{
    /* the iteration number is below any reads within it: the loop sleeps
     * only between iterations */
    unsigned it = ev_iteration(s->loop) + 1;

    if (s->answer_iteration != it) {
        s->answer_iteration = it;
        s->answer_clock = ev_time();
    }
    return s->answer_clock;
}

double fcgi_request_elapsed(const struct fcgi_request *r)
{
    return request_answer_clock(r->srv) - r->started;
}

void fcgi_request_set_user(struct fcgi_request *r, void *user)
{
    r->user = user;
}

void *fcgi_request_user(const struct fcgi_request *r)
{
    return r->user;
}

void fcgi_request_set_label(struct fcgi_request *r, const char *label)
{
    r->label = label;
}

const char *fcgi_request_label(const struct fcgi_request *r)
{
    return r->label;
}

void fcgi_request_set_route(struct fcgi_request *r, unsigned tag, const char *label,
                            bool head_only)
{
    r->tag = (uint8_t)tag;
    r->label = label;
    r->head_only = head_only;
}

void fcgi_request_add_backend_time(struct fcgi_request *r, double seconds)
{
    double us = seconds > 0 ? seconds * 1e6 + 0.5 : 0;
    uint64_t sum = (uint64_t)r->backend_us + (us < (double)UINT32_MAX ? (uint64_t)us : UINT32_MAX);

    r->backend_us = sum < UINT32_MAX ? (uint32_t)sum : UINT32_MAX;
    if (r->backend_waits < UINT16_MAX)
        r->backend_waits++;
}

void fcgi_request_note_backend(struct fcgi_request *r, const char *what, double seconds)
{
    if (r->srv->cfg.limits.slow_request <= 0 || r->nnotes >= BACKEND_NOTES_MAX)
        return;
    if (!r->notes) {
        r->notes = malloc(BACKEND_NOTES_MAX * sizeof *r->notes);
        if (!r->notes)
            return; /* the log line says less */
    }
    r->notes[r->nnotes].what = what;
    r->notes[r->nnotes].seconds = seconds;
    r->nnotes++;
}

double fcgi_request_backend_time(const struct fcgi_request *r, unsigned *waits)
{
    if (waits)
        *waits = r->backend_waits;
    return r->backend_us / 1e6;
}

/* A header name is an HTTP token; a value holds no line break (which
 * would let it add headers of its own) and no other control byte but tab. */
static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s == ':' || *s == 0x7f || (unsigned char)*s >= 0x80)
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < ' ' && *s != '\t') || *s == 0x7f)
            return false;
    return true;
}

int fcgi_response_header(struct fcgi_request *r, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    if (!header_name_ok(name) || !header_value_ok(value)) {
        sf_error("request %u: response header refused (bad name or a control byte in its "
                 "value): %.64s", r->id, name);
        return -1;
    }
    if (r->headers.len + nl + vl + 4 > FCGI_MAX_EXTRA_HEADERS)
        return -1;
    if (buf_reserve(&r->headers, nl + vl + 4) < 0)
        return -1;
    buf_append(&r->headers, name, nl);
    buf_append(&r->headers, ": ", 2);
    buf_append(&r->headers, value, vl);
    buf_append(&r->headers, "\r\n", 2);
    return 0;
}

/* Queues the answer on the connection (which may swap it for a 503 when
 * its output is full, or a 500 when memory is), and logs it.  (Inline in
 * fcgi_respond, which every handler's answer goes through.) */
static inline __attribute__((always_inline)) void send_answer(struct fcgi_request *r, int status,
                                                              const char *content_type,
                                                              const void *body, size_t len)
{
    struct fcgi_server *s = r->srv;
    struct fcgi_response resp = {
        .status = status,
        .content_type = content_type,
        .extra_headers = (const char *)r->headers.data,
        .extra_headers_len = r->headers.len,
        .body = body,
        .body_len = len,
        .head_only = r->head_only,
    };
    long sent = conn_queue_response(r->conn, r->id, &resp);
    double seconds = request_answer_clock(s) - r->started;

    r->answered = true;
    request_timing_end(r);
    STAT(s, answered);
    STAT_DEC(s, in_flight);
    if (sent >= 0 && s->cfg.access_log)
        access_log_add(s, r, resp.status, (size_t)sent, seconds);
    if (s->cfg.on_answer)
        s->cfg.on_answer(s->cfg.app, r, r->tag, resp.status, seconds);
    if (s->cfg.limits.slow_request > 0 && seconds >= s->cfg.limits.slow_request)
        slow_log_check(s, r, resp.status, seconds);
    if (!r->keep_conn) /* (an answer in REQ_HANDLER comes after the whole request) */
        conn_close_when_done(r->conn, r->state == REQ_HANDLER);
}

void fcgi_respond(struct fcgi_request *r, int status, const char *content_type,
                  const void *body, size_t len)
{
    struct fcgi_conn *c = r->conn;

    if (r->state != REQ_HANDLER) {
        sf_error("request %u answered twice or before it was handed over; ignored", r->id);
        return;
    }
    if (c && !r->answered) {
        send_answer(r, status, content_type, body, len);
        conn_detach_request(c, r); /* drops the connection's reference */
        if (!c->busy) { /* (busy: answered while c's input is read, which flushes after) */
            conn_flush(c);
            conn_maybe_close(c);
        }
    }
    r->state = REQ_DRAIN; /* any further answer is a bug and is refused above */
    request_unref(r);     /* the handler's reference */
}

/* The one error shape, from a handler (fcgi_respond_error) or from the
 * engine itself for a request no handler holds (request_answer). */
static void answer_error(struct fcgi_request *r, bool by_handler, int status, const char *fmt,
                         va_list ap)
{
    char body[1024];
    size_t n = fcgi_format_error_v(body, sizeof body, status, fmt, ap);

    if (by_handler)
        fcgi_respond(r, status, FCGI_TEXT_PLAIN, body, n);
    else if (r->conn && !r->answered)
        send_answer(r, status, FCGI_TEXT_PLAIN, body, n);
}

void fcgi_respond_error(struct fcgi_request *r, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    answer_error(r, true, status, fmt, ap);
    va_end(ap);
}

void request_answer(struct fcgi_request *r, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    answer_error(r, false, status, fmt, ap);
    va_end(ap);
}
