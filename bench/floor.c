/*
 * bench/floor.c — the canned-answer FastCGI responder: the floor a FastCGI
 * application can reach with this syscall pattern on this machine.
 *
 *   floor --listen unix:PATH | HOST:PORT [--walk-params]
 *         [--corrupt KIND [--corrupt-every N]]
 *
 * It frames records and does nothing else: for every request whose STDIN
 * stream ends (the empty STDIN record), it answers the bytes springfield
 * sends for GET /api/v1/flanders (one STDOUT record with the headers and
 * the text, the empty STDOUT, END_REQUEST), with that request's id.  Params
 * and bodies are skipped unread; management records are skipped unanswered.
 * It honours FCGI_KEEP_CONN: a request without it closes its connection
 * once its answer is written.
 *
 * The syscall pattern is springfield's: one epoll loop, level-triggered;
 * per readable connection one read into a shared buffer (again only when
 * the buffer came back full) and one write of every answer that read
 * completed.  An answer the socket does not take waits for EPOLLOUT, and
 * the connection is not read meanwhile.  So what springfield spends beyond
 * the floor is spent in springfield, not in the kernel or the generator.
 *
 * --walk-params makes it also walk each PARAMS record's pairs: their
 * lengths (1 or 4 bytes) must fit the record, and REQUEST_METHOD and
 * SCRIPT_NAME are noted.  That walk, with no NUL check, no index and no
 * routing, is the one step any application that routes on its params must
 * take: beside the floor it shows what that step alone costs.  A record
 * whose pairs do not fit closes its connection; one that comes in pieces is
 * not walked (at exit, the counts go to stderr).
 *
 * --corrupt makes it a broken responder, for the tests of fcgi-load's
 * checks: every Nth answer (--corrupt-every, default 1) is
 *   version       its first record has version 0
 *   id            its END_REQUEST carries another request id
 *   unterminated  its empty STDOUT is left out
 *   status        Status: 500 instead of 200
 *   fcgi-status   END_REQUEST says FCGI_OVERLOADED
 *   close         not sent: the connection is closed instead
 *   stall         not sent at all (the request waits forever)
 *
 * Not part of springfield: built by `make` beside it, never installed.
 */
#include "bench/address.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    REC_BEGIN_REQUEST = 1,
    REC_END_REQUEST = 3,
    REC_PARAMS = 4,
    REC_STDIN = 5,
    REC_STDOUT = 6,
    FLAG_KEEP_CONN = 1,
    HEADER_LEN = 8,
};

#define TEXT "Hi-dilly-ho, neighborino!"
#define HEAD "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 25\r\n\r\n"
#define HEAD_500                                                                               \
    "Status: 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"            \
    "Content-Length: 25\r\n\r\n"

/* An answer: the three records, with the request id at id_at[0..n_ids). */
struct answer {
    uint8_t bytes[256];
    size_t len;
    size_t id_at[3];
    unsigned n_ids;
};

static struct answer good, bad;

static void put_record(struct answer *a, uint8_t version, uint8_t type, const void *content,
                       size_t len)
{
    uint8_t *h = a->bytes + a->len;

    h[0] = version;
    h[1] = type;
    h[2] = h[3] = 0;
    h[4] = (uint8_t)(len >> 8);
    h[5] = (uint8_t)len;
    h[6] = h[7] = 0;
    a->id_at[a->n_ids++] = a->len + 2;
    memcpy(h + HEADER_LEN, content, len);
    a->len += HEADER_LEN + len;
}

enum corrupt { C_NONE, C_VERSION, C_ID, C_UNTERMINATED, C_STATUS, C_FCGI_STATUS, C_CLOSE, C_STALL };

static void build_answer(struct answer *a, enum corrupt how)
{
    static const uint8_t complete[8] = {0};
    static const uint8_t overloaded[8] = {0, 0, 0, 0, 2};
    const char *head = how == C_STATUS ? HEAD_500 TEXT : HEAD TEXT;

    a->len = a->n_ids = 0;
    put_record(a, how == C_VERSION ? 0 : 1, REC_STDOUT, head, strlen(head));
    if (how != C_UNTERMINATED)
        put_record(a, 1, REC_STDOUT, NULL, 0);
    put_record(a, 1, REC_END_REQUEST, how == C_FCGI_STATUS ? overloaded : complete, 8);
}

struct conn {
    int fd;
    bool closing;    /* close once the output is written */
    bool out_armed;  /* waiting for EPOLLOUT, not reading */
    uint16_t nokeep; /* the last request id begun without FCGI_KEEP_CONN, or 0 */
    /* the record being skipped through */
    uint8_t hdr[HEADER_LEN];
    uint8_t hdr_have;
    bool in_record;
    uint8_t type;
    uint16_t id;
    uint16_t content_len, content_left;
    uint8_t padding_left;
    /* answers not yet written */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
};

static int ep, listen_fd;
static uint8_t rbuf[64 * 1024];
static enum corrupt corrupt_how;
static unsigned long corrupt_every = 1, answers;
static const char *unix_path;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c->out);
    free(c);
}

static inline __attribute__((always_inline)) void out_append(struct conn *c,
                                                             const struct answer *a, uint16_t id)
{
    uint8_t *p;
    unsigned i;

    if (c->out_len + a->len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 4096;

        while (cap < c->out_len + a->len)
            cap *= 2;
        p = realloc(c->out, cap);
        if (!p) {
            c->closing = true;
            return;
        }
        c->out = p;
        c->out_cap = cap;
    }
    p = c->out + c->out_len;
    memcpy(p, a->bytes, a->len);
    for (i = 0; i < a->n_ids; i++) {
        p[a->id_at[i]] = (uint8_t)(id >> 8);
        p[a->id_at[i] + 1] = (uint8_t)id;
    }
    if (a == &bad && corrupt_how == C_ID) {
        uint16_t other = (uint16_t)(id + 1);

        p[a->id_at[a->n_ids - 1]] = (uint8_t)(other >> 8);
        p[a->id_at[a->n_ids - 1] + 1] = (uint8_t)other;
    }
    c->out_len += a->len;
}

/* The STDIN of request id ended: answer it.  False: stop reading c.
 * (It and out_append are inlined, as they were before conn_input had two
 * copies: the plain floor's code is what it was.) */
static inline __attribute__((always_inline)) bool request_ended(struct conn *c, uint16_t id)
{
    bool corrupt = corrupt_how != C_NONE && ++answers % corrupt_every == 0;

    if (corrupt && corrupt_how == C_CLOSE) {
        c->closing = true;
        return false;
    }
    if (!(corrupt && corrupt_how == C_STALL))
        out_append(c, corrupt ? &bad : &good, id);
    if (id == c->nokeep) {
        c->closing = true; /* no FCGI_KEEP_CONN: the answer is the last */
        return false;
    }
    return true;
}

/* --walk-params: on, the PARAMS records walked and those not (in pieces),
 * and what was noted (volatile: stores no one reads would be optimised
 * away, and the comparisons with them). */
static bool walk_params;
static unsigned long walked, not_walked;
static volatile struct {
    const uint8_t *method, *script;
    size_t method_len, script_len;
} noted;

/* The two lengths of the pair at at, within end, when one takes 4 bytes
 * (the high bit set) or they are cut short: false when they do not fit. */
static __attribute__((noinline)) bool long_lengths(const uint8_t **at, const uint8_t *end,
                                                   size_t *nl, size_t *vl)
{
    size_t *len[2] = {nl, vl};

    for (int k = 0; k < 2; k++) {
        const uint8_t *p = *at;

        if (p >= end)
            return false;
        if (!(p[0] & 0x80)) {
            *len[k] = p[0];
            *at = p + 1;
            continue;
        }
        if (end - p < 4)
            return false;
        *len[k] = (size_t)(p[0] & 0x7f) << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        *at = p + 4;
    }
    return true;
}

/* Walks the pairs of one PARAMS record's content p[0..n); false when they
 * do not fit it.  (Two 1-byte lengths, what front servers send, inline.) */
static bool walk_pairs(const uint8_t *p, size_t n)
{
    const uint8_t *at = p, *end = p + n;

    while (at < end) {
        size_t nl = end - at >= 2 ? at[0] : 0x80, vl = end - at >= 2 ? at[1] : 0;
        const uint8_t *name = at + 2;

        if (__builtin_expect((nl | vl) & 0x80, 0)) {
            if (!long_lengths(&at, end, &nl, &vl))
                return false;
            name = at;
        }
        at = name + nl + vl;
        if (__builtin_expect(at > end, 0))
            return false;
        if (nl == 14 && !memcmp(name, "REQUEST_METHOD", 14)) {
            noted.method = name + nl;
            noted.method_len = vl;
        } else if (nl == 11 && !memcmp(name, "SCRIPT_NAME", 11)) {
            noted.script = name + nl;
            noted.script_len = vl;
        }
    }
    walked++;
    return true;
}

/* Frames n bytes of c's input, walking the params when walk; false once
 * c is to be closed.  (Inlined twice, walk a constant in each: the plain
 * floor pays nothing for --walk-params.) */
static inline __attribute__((always_inline)) bool frame_input(struct conn *c, const uint8_t *p,
                                                              size_t n, bool walk)
{
    while (n > 0) {
        size_t m;

        if (!c->in_record) {
            m = HEADER_LEN - c->hdr_have;
            if (m > n)
                m = n;
            memcpy(c->hdr + c->hdr_have, p, m);
            c->hdr_have = (uint8_t)(c->hdr_have + m);
            p += m;
            n -= m;
            if (c->hdr_have < HEADER_LEN)
                return true;
            c->hdr_have = 0;
            if (c->hdr[0] != 1)
                return false; /* not FastCGI: nothing to frame */
            c->type = c->hdr[1];
            c->id = (uint16_t)(c->hdr[2] << 8 | c->hdr[3]);
            c->content_len = (uint16_t)(c->hdr[4] << 8 | c->hdr[5]);
            c->content_left = c->content_len;
            c->padding_left = c->hdr[6];
            c->in_record = true;
            if (c->type == REC_STDIN && c->content_len == 0 && c->id != 0 &&
                !request_ended(c, c->id))
                return false;
        }
        if (c->type == REC_BEGIN_REQUEST && c->content_len == 8) {
            size_t off = (size_t)(c->content_len - c->content_left); /* content seen so far */

            if (off <= 2 && off + n > 2) { /* the flags byte is in this piece */
                if (!(p[2 - off] & FLAG_KEEP_CONN))
                    c->nokeep = c->id;
                else if (c->nokeep == c->id)
                    c->nokeep = 0;
            }
        }
        m = c->content_left < n ? c->content_left : n;
        if (walk && c->type == REC_PARAMS && m > 0) {
            if (m < c->content_len)
                not_walked += m == c->content_left; /* (counted once: its last piece) */
            else if (!walk_pairs(p, m))
                return false;
        }
        p += m;
        n -= m;
        c->content_left = (uint16_t)(c->content_left - m);
        if (c->content_left > 0)
            return true;
        m = c->padding_left < n ? c->padding_left : n;
        p += m;
        n -= m;
        c->padding_left = (uint8_t)(c->padding_left - m);
        if (c->padding_left == 0)
            c->in_record = false;
    }
    return true;
}

static inline __attribute__((always_inline)) bool conn_input(struct conn *c, const uint8_t *p,
                                                             size_t n)
{
    return walk_params ? frame_input(c, p, n, true) : frame_input(c, p, n, false);
}

static void conn_interest(struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is waiting; false when c is finished (closed). */
static bool conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            conn_close(c);
            return false;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off < c->out_len) {
        if (!c->out_armed) {
            conn_interest(c, EPOLLOUT); /* back-pressure: read no more meanwhile */
            c->out_armed = true;
        }
        return true;
    }
    c->out_off = c->out_len = 0;
    if (c->closing) {
        conn_close(c);
        return false;
    }
    if (c->out_armed) {
        conn_interest(c, EPOLLIN);
        c->out_armed = false;
    }
    return true;
}

static void conn_event(struct conn *c, uint32_t events)
{
    if (c->out_armed) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            conn_flush(c);
        return;
    }
    for (;;) {
        ssize_t n = read(c->fd, rbuf, sizeof rbuf);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        if (!conn_input(c, rbuf, (size_t)n)) {
            c->closing = true;
            break;
        }
        if ((size_t)n < sizeof rbuf)
            break;
    }
    conn_flush(c);
}

static void on_accept(void)
{
    int i;

    for (i = 0; i < 64; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;
        struct epoll_event ev = {.events = EPOLLIN};

        if (fd < 0)
            return;
        c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        ev.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            conn_close(c);
    }
}

static int listen_on(const char *addr)
{
    struct bench_address where;
    char err[512];
    struct stat st;
    int fd, one = 1;

    if (bench_address(addr, true, &where, err, sizeof err) < 0) {
        fprintf(stderr, "floor: --listen unix:PATH or HOST:PORT: %s\n", err);
        exit(2);
    }
    unix_path = where.path;
    if (unix_path && stat(unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(unix_path); /* a stale socket file is replaced */
    fd = socket(where.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && !where.is_unix)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&where.sa, where.len) < 0 || listen(fd, 1024) < 0) {
        perror("floor: listen");
        exit(1);
    }
    return fd;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: floor --listen unix:PATH | HOST:PORT [--walk-params]\n"
        "             [--corrupt KIND [--corrupt-every N]]\n"
        "A FastCGI responder that answers every request with springfield's flanders\n"
        "bytes and does nothing else: the floor for bench/app.sh.\n"
        "  --listen ADDR       unix:PATH (a stale socket file is replaced) or HOST:PORT\n"
        "  --walk-params       also walk each PARAMS record's pairs (their lengths, and\n"
        "                      REQUEST_METHOD and SCRIPT_NAME noted): what that step,\n"
        "                      which any application routing on its params takes, costs\n"
        "  --corrupt KIND      break every Nth answer: version, id, unterminated, status,\n"
        "                      fcgi-status, close, stall (to test the load generator)\n"
        "  --corrupt-every N   which answers --corrupt breaks (default 1: all)\n"
        "  --help              this text\n"
        "SIGTERM or SIGINT: exit 0, removing the socket file.\n");
}

int main(int argc, char **argv)
{
    static const char *const kinds[] = {"", "version", "id", "unterminated", "status",
                                        "fcgi-status", "close", "stall"};
    const char *addr = NULL;
    struct epoll_event events[256], lev = {.events = EPOLLIN, .data.ptr = NULL};
    struct sigaction sa = {.sa_handler = on_signal};
    struct rlimit rl;
    int i, k;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            addr = argv[++i];
        } else if (!strcmp(argv[i], "--walk-params")) {
            walk_params = true;
        } else if (!strcmp(argv[i], "--corrupt") && i + 1 < argc) {
            i++;
            for (k = 1; k < (int)(sizeof kinds / sizeof kinds[0]); k++)
                if (!strcmp(argv[i], kinds[k]))
                    corrupt_how = (enum corrupt)k;
            if (corrupt_how == C_NONE) {
                fprintf(stderr, "floor: unknown --corrupt kind '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--corrupt-every") && i + 1 < argc) {
            char *end;

            corrupt_every = strtoul(argv[++i], &end, 10);
            if (*end || corrupt_every == 0) {
                fprintf(stderr, "floor: --corrupt-every needs a positive number\n");
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!addr) {
        usage(stderr);
        return 2;
    }
    build_answer(&good, C_NONE);
    build_answer(&bad, corrupt_how);
    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    listen_fd = listen_on(addr);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev) < 0) {
        perror("floor: epoll");
        return 1;
    }
    while (!stop) {
        int n = epoll_wait(ep, events, (int)(sizeof events / sizeof events[0]), -1);

        for (k = 0; k < n; k++) {
            if (events[k].data.ptr == NULL)
                on_accept();
            else
                conn_event(events[k].data.ptr, events[k].events);
        }
    }
    if (unix_path)
        unlink(unix_path);
    if (walk_params)
        fprintf(stderr, "floor: walked the pairs of %lu PARAMS records (%lu came in pieces, "
                        "not walked)\n", walked, not_walked);
    return 0;
}
