/*
 * bench/fcgi-load.c — a FastCGI load generator: it plays the front server
 * and drives a FastCGI responder directly, over a unix socket or TCP.
 *
 *   fcgi-load [options] unix:PATH | HOST:PORT        (fcgi-load --help)
 *
 * Why: wrk, ab and h2load speak HTTP, so through them an application is
 * measured behind nginx, and the FastCGI clients at hand send one request
 * at a time.  This one keeps many connections, many requests in flight on
 * each (multiplexed request ids), or a connection per request, in a closed
 * loop (each answer sends the next request) or an open loop at a fixed
 * rate, with latency measured from each request's scheduled time, so a
 * stalled server is not hidden by the generator waiting for it
 * (coordinated omission, the correction wrk2 made popular).
 *
 * How it stays cheap: one thread, epoll, non-blocking sockets.  The bytes
 * of a request (BEGIN_REQUEST, PARAMS, empty PARAMS, STDIN with the body,
 * empty STDIN) are built once per request id before the run, so sending is
 * a memcpy into the connection's output and one write per batch; answers
 * are read into one shared buffer and decoded in place by a small record
 * decoder of its own (not springfield's, so the two can disagree).  Its
 * own CPU time per request is measured (getrusage) and printed with every
 * result, beside its share of one CPU: a generator near 100 % is the
 * bottleneck and the figure is not the server's.
 *
 * Every answer is checked: record framing (version, type, request id in
 * flight, END_REQUEST length, STDOUT terminated before END_REQUEST),
 * END_REQUEST's protocol status, the CGI headers' end and the Status
 * header (no Status is 200).  Failures are counted by kind and printed,
 * never dropped; the exit status is 1 when any happened (--allow-errors:
 * 0), 2 for bad usage.
 *
 * Not part of springfield: built by `make` beside it, never installed.
 */
#include "bench/address.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --- FastCGI 1.0 constants (the specification's numbers) ----------------- */

enum {
    REC_BEGIN_REQUEST = 1,
    REC_END_REQUEST = 3,
    REC_PARAMS = 4,
    REC_STDIN = 5,
    REC_STDOUT = 6,
    REC_STDERR = 7,
    ROLE_RESPONDER = 1,
    FLAG_KEEP_CONN = 1,
    HEADER_LEN = 8,
    MAX_CONTENT = 0xffff,
};

/* --- time ----------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- latency histogram ------------------------------------------------------
 * Log-linear buckets over nanoseconds: exact below 256 ns, then 128 buckets
 * per power of two, so a bucket is at most 1/128 (0.8 %) of its value wide.
 * Values up to 2^40 ns (18 minutes) fit; larger ones land in the last
 * bucket.  A percentile is reported as its bucket's highest value, as
 * HdrHistogram does (never below the true value). */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS - 1) * HIST_SUB + 2 * HIST_SUB)

struct histogram {
    uint64_t count[HIST_BUCKETS];
    uint64_t n, max_ns;
    double sum_ns;
};

static unsigned hist_index(uint64_t v)
{
    unsigned shift;

    if (v >= (UINT64_C(1) << HIST_MAX_BITS))
        v = (UINT64_C(1) << HIST_MAX_BITS) - 1;
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    shift = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
    return shift * HIST_SUB + (unsigned)(v >> shift);
}

static uint64_t hist_bucket_high(unsigned i)
{
    unsigned shift;

    if (i < 2 * HIST_SUB)
        return i;
    shift = i / HIST_SUB - 1;
    return ((uint64_t)(i - shift * HIST_SUB) << shift) + (UINT64_C(1) << shift) - 1;
}

static void hist_record(struct histogram *h, uint64_t v)
{
    h->count[hist_index(v)]++;
    h->n++;
    h->sum_ns += (double)v;
    if (v > h->max_ns)
        h->max_ns = v;
}

/* The value below which a fraction q of the recorded values fall. */
static uint64_t hist_quantile(const struct histogram *h, double q)
{
    uint64_t want, seen = 0;
    unsigned i;

    if (h->n == 0)
        return 0;
    want = (uint64_t)ceil(q * (double)h->n);
    if (want < 1)
        want = 1;
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want) {
            uint64_t v = hist_bucket_high(i);
            return v < h->max_ns ? v : h->max_ns;
        }
    }
    return h->max_ns;
}

/* --- errors, by kind --------------------------------------------------------- */

enum err_kind {
    E_REFUSED,     /* connect: ECONNREFUSED, or a unix socket's full backlog (EAGAIN) */
    E_CONNECT,     /* connect: any other failure */
    E_RESET,       /* read/write: ECONNRESET, EPIPE, other socket errors */
    E_CLOSED,      /* the server closed a kept connection (requests in flight or not) */
    E_PROTOCOL,    /* bytes that are not a valid FastCGI answer */
    E_FCGI_STATUS, /* END_REQUEST with a protocol status other than REQUEST_COMPLETE */
    E_NON2XX,      /* a well-formed answer whose Status is not 2xx */
    E_TIMEOUT,     /* no END_REQUEST within --timeout of sending */
    E_KINDS
};

static const char *const err_name[E_KINDS] = {
    "refused", "connect", "reset", "closed", "protocol", "fcgi-status", "non-2xx", "timeout",
};

#define MAX_REASONS 16
static struct {
    uint64_t count[E_KINDS];
    uint64_t by_status[1000];     /* non-2xx, by Status */
    uint64_t by_fcgi_status[256]; /* fcgi-status, by protocolStatus */
    struct {
        const char *why;
        uint64_t n;
    } reason[MAX_REASONS]; /* protocol, connect, reset: the first reasons seen */
    uint64_t cancelled;    /* requests in flight on a connection that failed */
} errs;

static void err_count(enum err_kind k, const char *why)
{
    unsigned i;

    errs.count[k]++;
    if (!why)
        return;
    for (i = 0; i < MAX_REASONS && errs.reason[i].why; i++)
        if (errs.reason[i].why == why || !strcmp(errs.reason[i].why, why)) {
            errs.reason[i].n++;
            return;
        }
    if (i < MAX_REASONS) {
        errs.reason[i].why = why;
        errs.reason[i].n = 1;
    }
}

/* --- options ------------------------------------------------------------------ */

struct param {
    char *name, *value; /* value NULL: not sent (a default removed) */
};

static struct {
    const char *address;
    unsigned connections, depth;
    bool conn_per_request, minimal_params, pad, json, allow_errors;
    const char *method, *path, *query, *body_file;
    double duration_s, warmup_s, rate, timeout_s;
    uint64_t requests; /* 0: run for duration_s */
    struct param *params;
    size_t nparams;
    long server_pid;
} opt = {
    .connections = 64,
    .depth = 1,
    .path = "/api/v1/flanders",
    .query = "",
    .duration_s = 10,
    .warmup_s = 1,
    .timeout_s = 5,
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: fcgi-load [options] unix:PATH | HOST:PORT\n"
        "Drives a FastCGI responder directly and reports requests/s, latency\n"
        "percentiles and errors by kind.  Every answer's framing and status is checked.\n"
        "\n"
        "Load:\n"
        "  -c, --connections N     connections (default 64)\n"
        "  -d, --depth N           requests in flight on each connection, request ids\n"
        "                          1..N (default 1); needs a server with FCGI_MPXS_CONNS\n"
        "  -1, --conn-per-request  a new connection for every request, sent without\n"
        "                          FCGI_KEEP_CONN and closed after END_REQUEST (depth 1;\n"
        "                          its latency includes connect)\n"
        "  -R, --rate N            open loop: N requests/s in all, spread evenly over the\n"
        "                          connections; latency counts from each request's\n"
        "                          scheduled time, so waiting for a slot counts too\n"
        "                          (default: closed loop, each answer sends the next\n"
        "                          request); the report adds the send lag, how late the\n"
        "                          requests went out (a lag of the server's making when\n"
        "                          no slot was free, else the generator's own)\n"
        "  -t, --duration S        seconds measured (default 10; fractions allowed)\n"
        "  -w, --warmup S          seconds of load before measuring (default 1)\n"
        "  -n, --requests N        send N requests after the warm-up, then stop when all\n"
        "                          are answered (instead of --duration; given up when\n"
        "                          nothing is answered for --timeout)\n"
        "      --timeout S         an answer slower than this is a timeout error and its\n"
        "                          connection is closed (default 5)\n"
        "\n"
        "The request (the same for every request):\n"
        "  -m, --method M          REQUEST_METHOD (default GET, POST with --body-file)\n"
        "  -p, --path P            SCRIPT_NAME, DOCUMENT_URI and REQUEST_URI\n"
        "                          (default /api/v1/flanders)\n"
        "  -q, --query Q           QUERY_STRING (also appended to REQUEST_URI)\n"
        "  -P, --param NAME=VALUE  a param, replacing a default of that name (repeatable);\n"
        "                          -P NAME alone removes the default NAME\n"
        "  -b, --body-file FILE    STDIN is the file's bytes; sets CONTENT_LENGTH\n"
        "      --minimal-params    only REQUEST_METHOD, SCRIPT_NAME, REQUEST_URI,\n"
        "                          QUERY_STRING (and CONTENT_LENGTH with a body), instead\n"
        "                          of the 21 params nginx's fastcgi_params sends\n"
        "      --pad               pad records to a multiple of 8 bytes, as nginx does\n"
        "\n"
        "Report:\n"
        "      --json              one JSON object on stdout instead of the text lines\n"
        "      --server-pid PID    also report that process's CPU time per request, its\n"
        "                          share of one CPU, and how long it waited for a CPU\n"
        "                          (runnable, another process running) in the window\n"
        "      --allow-errors      exit 0 even when errors happened (they are still printed)\n"
        "  -h, --help              this text\n"
        "\n"
        "Errors, by kind: refused (connect refused, or a unix socket's backlog full),\n"
        "connect (other connect failures), reset (read/write failed), closed (the server\n"
        "closed a kept connection), protocol (not a valid FastCGI answer), fcgi-status\n"
        "(END_REQUEST not REQUEST_COMPLETE), non-2xx, timeout.  Requests in flight on a\n"
        "connection that failed are reported as cancelled.  Requests/s and latency count\n"
        "the answers completed in the measured window; errors count the whole run.\n"
        "Exit status: 0 no errors, 1 errors (or no answer at all), 2 bad usage.\n");
}

static double parse_seconds(const char *what, const char *s, bool zero_ok)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 86400 || (!zero_ok && v == 0)) {
        fprintf(stderr, "fcgi-load: %s: bad number of seconds '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static unsigned long long parse_count(const char *what, const char *s, unsigned long long lo,
                                      unsigned long long hi)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (*s < '0' || *s > '9') {
        fprintf(stderr, "fcgi-load: %s: not a number '%s'\n", what, s);
        exit(2);
    }
    v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "fcgi-load: %s: '%s' is not in %llu..%llu\n", what, s, lo, hi);
        exit(2);
    }
    return v;
}

static void add_param(const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    struct param *p;

    if (nlen == 0) {
        fprintf(stderr, "fcgi-load: --param: empty name in '%s'\n", arg);
        exit(2);
    }
    opt.params = realloc(opt.params, (opt.nparams + 1) * sizeof *opt.params);
    if (!opt.params) {
        perror("fcgi-load");
        exit(2);
    }
    p = &opt.params[opt.nparams++];
    p->name = strndup(arg, nlen);
    p->value = eq ? strdup(eq + 1) : NULL;
}

static void parse_options(int argc, char **argv)
{
    enum { O_TIMEOUT = 256, O_MINIMAL, O_PAD, O_JSON, O_ALLOW, O_SERVER_PID };
    static const struct option longs[] = {
        {"connections", required_argument, NULL, 'c'},
        {"depth", required_argument, NULL, 'd'},
        {"conn-per-request", no_argument, NULL, '1'},
        {"rate", required_argument, NULL, 'R'},
        {"duration", required_argument, NULL, 't'},
        {"warmup", required_argument, NULL, 'w'},
        {"requests", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"method", required_argument, NULL, 'm'},
        {"path", required_argument, NULL, 'p'},
        {"query", required_argument, NULL, 'q'},
        {"param", required_argument, NULL, 'P'},
        {"body-file", required_argument, NULL, 'b'},
        {"minimal-params", no_argument, NULL, O_MINIMAL},
        {"pad", no_argument, NULL, O_PAD},
        {"json", no_argument, NULL, O_JSON},
        {"server-pid", required_argument, NULL, O_SERVER_PID},
        {"allow-errors", no_argument, NULL, O_ALLOW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;

    while ((c = getopt_long(argc, argv, "c:d:1R:t:w:n:m:p:q:P:b:h", longs, NULL)) != -1) {
        switch (c) {
        case 'c': opt.connections = (unsigned)parse_count("--connections", optarg, 1, 100000); break;
        case 'd': opt.depth = (unsigned)parse_count("--depth", optarg, 1, MAX_CONTENT); break;
        case '1': opt.conn_per_request = true; break;
        case 'R':
            errno = 0;
            opt.rate = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(opt.rate > 0) || opt.rate > 1e8) {
                fprintf(stderr, "fcgi-load: --rate: bad rate '%s'\n", optarg);
                exit(2);
            }
            break;
        case 't': opt.duration_s = parse_seconds("--duration", optarg, false); break;
        case 'w': opt.warmup_s = parse_seconds("--warmup", optarg, true); break;
        case 'n': opt.requests = parse_count("--requests", optarg, 1, UINT64_C(1) << 48); break;
        case O_TIMEOUT: opt.timeout_s = parse_seconds("--timeout", optarg, false); break;
        case 'm': opt.method = optarg; break;
        case 'p': opt.path = optarg; break;
        case 'q': opt.query = optarg; break;
        case 'P': add_param(optarg); break;
        case 'b': opt.body_file = optarg; break;
        case O_MINIMAL: opt.minimal_params = true; break;
        case O_PAD: opt.pad = true; break;
        case O_JSON: opt.json = true; break;
        case O_ALLOW: opt.allow_errors = true; break;
        case O_SERVER_PID: opt.server_pid = (long)parse_count("--server-pid", optarg, 1, INT_MAX); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "fcgi-load: give one address, unix:PATH or HOST:PORT (--help)\n");
        exit(2);
    }
    opt.address = argv[optind];
    if (opt.conn_per_request && opt.depth != 1) {
        fprintf(stderr, "fcgi-load: --conn-per-request sends one request per connection: "
                        "--depth must be 1\n");
        exit(2);
    }
    if (!opt.method)
        opt.method = opt.body_file ? "POST" : "GET";
}

/* --- the request bytes ------------------------------------------------------- */

struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct bytes *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) {
            perror("fcgi-load");
            exit(2);
        }
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_header(struct bytes *b, uint8_t type, uint16_t id, uint16_t clen, uint8_t plen)
{
    uint8_t h[HEADER_LEN] = {1, type, (uint8_t)(id >> 8), (uint8_t)id,
                             (uint8_t)(clen >> 8), (uint8_t)clen, plen, 0};

    put(b, h, sizeof h);
}

/* A stream's records, then its empty terminating record. */
static void put_stream(struct bytes *b, uint8_t type, uint16_t id, const uint8_t *data,
                       size_t len)
{
    static const uint8_t zeros[8];
    size_t chunk = opt.pad ? MAX_CONTENT - 7 : MAX_CONTENT;

    while (len > 0) {
        size_t n = len < chunk ? len : chunk;
        uint8_t pad = opt.pad ? (uint8_t)((8 - n % 8) % 8) : 0;

        put_header(b, type, id, (uint16_t)n, pad);
        put(b, data, n);
        put(b, zeros, pad);
        data += n;
        len -= n;
    }
    put_header(b, type, id, 0, 0);
}

static void put_length(struct bytes *b, size_t n)
{
    uint8_t l[4] = {(uint8_t)(0x80 | n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};

    if (n < 128) {
        l[0] = (uint8_t)n;
        put(b, l, 1);
    } else {
        put(b, l, 4);
    }
}

static void put_pair(struct bytes *b, const char *name, const char *value)
{
    put_length(b, strlen(name));
    put_length(b, strlen(value));
    put(b, name, strlen(name));
    put(b, value, strlen(value));
}

static uint8_t *body;
static size_t body_len;

static void read_body(void)
{
    FILE *f;
    struct bytes b = {0};
    uint8_t chunk[65536];
    size_t n;

    if (!opt.body_file)
        return;
    f = fopen(opt.body_file, "rb");
    if (!f) {
        fprintf(stderr, "fcgi-load: %s: %s\n", opt.body_file, strerror(errno));
        exit(2);
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        put(&b, chunk, n);
    if (ferror(f)) {
        fprintf(stderr, "fcgi-load: %s: read error\n", opt.body_file);
        exit(2);
    }
    fclose(f);
    body = b.p;
    body_len = b.len;
}

/* The params: nginx's fastcgi_params (Debian 12, nginx 1.22) with this
 * request's values, or the minimal set; then --param overrides. */
static struct bytes encode_params(void)
{
    char uri[8192], clen[32];
    struct param defaults[24];
    size_t nd = 0, i, j;
    struct bytes b = {0};

    snprintf(uri, sizeof uri, "%s%s%s", opt.path, *opt.query ? "?" : "", opt.query);
    if (opt.body_file)
        snprintf(clen, sizeof clen, "%zu", body_len);
    else
        clen[0] = '\0';
#define DEF(n, v) (defaults[nd].name = (char *)(n), defaults[nd].value = (char *)(v), nd++)
    if (opt.minimal_params) {
        DEF("REQUEST_METHOD", opt.method);
        DEF("SCRIPT_NAME", opt.path);
        DEF("REQUEST_URI", uri);
        DEF("QUERY_STRING", opt.query);
        if (opt.body_file)
            DEF("CONTENT_LENGTH", clen);
    } else {
        DEF("QUERY_STRING", opt.query);
        DEF("REQUEST_METHOD", opt.method);
        DEF("CONTENT_TYPE", opt.body_file ? "application/octet-stream" : "");
        DEF("CONTENT_LENGTH", clen);
        DEF("SCRIPT_NAME", opt.path);
        DEF("REQUEST_URI", uri);
        DEF("DOCUMENT_URI", opt.path);
        DEF("DOCUMENT_ROOT", "/usr/share/nginx/html");
        DEF("SERVER_PROTOCOL", "HTTP/1.1");
        DEF("REQUEST_SCHEME", "http");
        DEF("GATEWAY_INTERFACE", "CGI/1.1");
        DEF("SERVER_SOFTWARE", "nginx/1.22.1");
        DEF("REMOTE_ADDR", "127.0.0.1");
        DEF("REMOTE_PORT", "54321");
        DEF("SERVER_ADDR", "127.0.0.1");
        DEF("SERVER_PORT", "8080");
        DEF("SERVER_NAME", "localhost");
        DEF("REDIRECT_STATUS", "200");
        DEF("HTTP_HOST", "127.0.0.1:8080");
        DEF("HTTP_USER_AGENT", "fcgi-load");
        DEF("HTTP_ACCEPT", "*/*");
    }
#undef DEF
    for (i = 0; i < nd; i++) {
        for (j = 0; j < opt.nparams; j++)
            if (!strcmp(opt.params[j].name, defaults[i].name))
                break;
        if (j == opt.nparams)
            put_pair(&b, defaults[i].name, defaults[i].value);
    }
    for (j = 0; j < opt.nparams; j++) {
        for (i = 0; i < j; i++) /* the last of repeated names wins */
            if (!strcmp(opt.params[i].name, opt.params[j].name))
                opt.params[i].value = NULL;
    }
    for (j = 0; j < opt.nparams; j++)
        if (opt.params[j].value)
            put_pair(&b, opt.params[j].name, opt.params[j].value);
    return b;
}

/* request[id - 1]: the whole request with that id, ready to copy out. */
static uint8_t **request;
static size_t request_len;

static void build_requests(void)
{
    struct bytes params = encode_params();
    unsigned id;

    request = calloc(opt.depth, sizeof *request);
    if (!request) {
        perror("fcgi-load");
        exit(2);
    }
    for (id = 1; id <= opt.depth; id++) {
        struct bytes b = {0};
        uint8_t begin[8] = {0, ROLE_RESPONDER, opt.conn_per_request ? 0 : FLAG_KEEP_CONN};

        put_header(&b, REC_BEGIN_REQUEST, (uint16_t)id, sizeof begin, 0);
        put(&b, begin, sizeof begin);
        put_stream(&b, REC_PARAMS, (uint16_t)id, params.p, params.len);
        put_stream(&b, REC_STDIN, (uint16_t)id, body, body_len);
        request[id - 1] = b.p;
        request_len = b.len;
    }
    free(params.p);
}

/* --- the address --------------------------------------------------------------- */

static struct bench_address peer;

static void resolve_address(void)
{
    char err[512];

    if (bench_address(opt.address, false, &peer, err, sizeof err) < 0) {
        fprintf(stderr, "fcgi-load: %s\n", err);
        exit(2);
    }
}

/* --- connections ------------------------------------------------------------------ */

enum { S_FREE, S_WAIT, S_STDOUT_ENDED }; /* a request slot */
enum { C_IDLE, C_CONNECTING, C_OPEN };   /* a connection */

#define HEAD_MAX 1024 /* the Status header must be in the answer's first KiB */

struct slot {
    uint64_t t_sched; /* latency counts from here: the scheduled time (open loop), else sent */
    uint64_t t_sent;
    uint64_t out_bytes;
    char *head; /* the answer's first bytes, when its headers come in pieces */
    uint16_t head_len;
    uint16_t status; /* 0: headers not yet complete */
    uint8_t state;
};

struct conn {
    int fd;
    uint8_t state;
    bool out_armed;  /* EPOLLOUT is in the interest set */
    bool spent;      /* conn-per-request: its one request is out */
    unsigned index;  /* 0 .. connections-1 */
    unsigned inflight;
    uint64_t retry_at; /* C_IDLE after a failure: not before */
    uint64_t t_connect; /* when connect() was called */
    struct slot *slots;
    uint16_t *free_ids;
    unsigned nfree;
    /* requests started and not yet written (their ids), then the bytes a
     * short write left unsent */
    uint16_t *pend;
    unsigned npend;
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    /* the record being decoded */
    uint8_t hdr[HEADER_LEN];
    uint8_t hdr_have;
    bool in_record;
    uint8_t type;
    uint16_t id;
    uint32_t content_left;
    uint16_t content_len, padding_left;
    uint8_t end_body[8];
    /* open loop: requests due (scheduled, not yet sent); the next one's number */
    uint64_t due, next_j;
};

static struct conn *conns;
static int ep;
static uint8_t rbuf[256 * 1024];

static struct {
    uint64_t t_start, t_warm, t_end; /* the run, the measured window */
    bool measuring, stopping, window_closed;
    uint64_t window_from, window_to;
    uint64_t sent_measured, inflight, stderr_bytes, stdout_bytes, answers_measured;
    uint64_t answers_total, connects, late_at_end;
    uint64_t short_writes; /* the socket took part of the requests: the server lags */
    uint64_t last_answer; /* --requests: with no answer for --timeout, the run gives up */
    uint64_t sched_k; /* open loop: the next request number to schedule */
    double period_ns; /* open loop: nanoseconds between two requests */
    struct rusage ru_from, ru_to;
    double server_cpu_from, server_cpu_to;
    double wait_from, wait_to, server_wait_from, server_wait_to; /* -1: unknown */
    struct histogram hist;
    struct histogram lag; /* open loop: sent minus scheduled, the generator's own lateness */
} run;

static double rusage_s(const struct rusage *r)
{
    return (double)r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 + (double)r->ru_stime.tv_sec +
           r->ru_stime.tv_usec / 1e6;
}

/* utime + stime of a process, in seconds; -1 when it cannot be read. */
static double process_cpu_s(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold blanks */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Seconds a thread has been runnable but waiting for a CPU (the second
 * field of schedstat): time another process took from it.  -1: unknown. */
static double runqueue_wait_s(const char *path)
{
    unsigned long long run_ns, wait_ns;
    FILE *f = fopen(path, "r");
    int n;

    if (!f)
        return -1;
    n = fscanf(f, "%llu %llu", &run_ns, &wait_ns);
    fclose(f);
    return n == 2 ? (double)wait_ns / 1e9 : -1;
}

static double server_wait_s(void)
{
    char path[64];

    snprintf(path, sizeof path, "/proc/%ld/schedstat", opt.server_pid);
    return runqueue_wait_s(path);
}

static void epoll_set(struct conn *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    if (epoll_ctl(ep, op, c->fd, &ev) < 0) {
        perror("fcgi-load: epoll_ctl");
        exit(2);
    }
}

/* Closes c, counting an error of kind (none when kind < 0); what was in
 * flight on it is counted as cancelled. */
static void conn_down(struct conn *c, int kind, const char *why, uint64_t now)
{
    unsigned i;

    if (kind >= 0)
        err_count((enum err_kind)kind, why);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = C_IDLE;
    c->out_armed = false;
    c->out_off = c->out_len = 0;
    c->npend = 0;
    c->hdr_have = 0;
    c->in_record = false;
    c->nfree = 0;
    for (i = opt.depth; i > 0; i--) {
        struct slot *s = &c->slots[i - 1];

        if (s->state != S_FREE)
            errs.cancelled++;
        s->state = S_FREE;
        c->free_ids[c->nfree++] = (uint16_t)i;
    }
    run.inflight -= c->inflight;
    c->inflight = 0;
    /* a refused connection is not retried at once: no busy loop on a dead server */
    c->retry_at = kind == E_REFUSED || kind == E_CONNECT ? now + 10000000u : now;
}

static void conn_connect(struct conn *c, uint64_t now)
{
    int one = 1, rc;

    c->fd = socket(peer.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_down(c, E_CONNECT, strerror(errno), now);
        return;
    }
    if (!peer.is_unix)
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    run.connects++;
    c->t_connect = now;
    rc = connect(c->fd, (struct sockaddr *)&peer.sa, peer.len);
    if (rc == 0) {
        c->state = C_OPEN;
        epoll_set(c, EPOLL_CTL_ADD, EPOLLIN);
    } else if (errno == EINPROGRESS) {
        c->state = C_CONNECTING;
        epoll_set(c, EPOLL_CTL_ADD, EPOLLOUT);
    } else if (errno == ECONNREFUSED || errno == EAGAIN) {
        conn_down(c, E_REFUSED, errno == EAGAIN ? "connect: backlog full (EAGAIN)" : NULL, now);
    } else {
        conn_down(c, E_CONNECT, strerror(errno), now);
    }
}

static double sched_time(const struct conn *c, uint64_t j)
{
    return (double)run.t_start +
           ((double)c->index + (double)j * opt.connections) * run.period_ns;
}

/* Whether c may start one more request now. */
static bool want_request(const struct conn *c)
{
    if (run.stopping)
        return false;
    if (opt.requests && run.measuring && run.sent_measured >= opt.requests)
        return false;
    return opt.rate > 0 ? c->due > 0 : true;
}

/* Starts what c may start: connects when it has no connection, else takes
 * its free ids for new requests, to be written by the caller (conn_flush). */
static void conn_fill(struct conn *c, uint64_t now)
{
    if (c->state == C_IDLE) {
        if (now < c->retry_at)
            return;
        /* kept connections are opened at once, also in the open loop, so
         * opening is not part of a request's latency */
        if (opt.conn_per_request && !want_request(c))
            return;
        if (run.stopping)
            return;
        c->spent = false;
        conn_connect(c, now);
        if (c->state == C_IDLE)
            return;
    }
    if (c->state != C_OPEN)
        return;
    while (c->nfree > 0 && !c->spent && want_request(c)) {
        uint16_t id = c->free_ids[--c->nfree];
        struct slot *s = &c->slots[id - 1];

        /* a connection per request: its latency and timeout count from connect() */
        s->t_sent = opt.conn_per_request ? c->t_connect : now;
        if (opt.rate > 0) {
            s->t_sched = (uint64_t)sched_time(c, c->next_j++);
            c->due--;
            if (run.measuring && !run.window_closed)
                hist_record(&run.lag, s->t_sent > s->t_sched ? s->t_sent - s->t_sched : 0);
        } else {
            s->t_sched = s->t_sent;
        }
        s->out_bytes = 0;
        s->head_len = 0;
        s->status = 0;
        s->state = S_WAIT;
        c->inflight++;
        run.inflight++;
        if (run.measuring)
            run.sent_measured++;
        c->pend[c->npend++] = id;
        if (opt.conn_per_request)
            c->spent = true; /* END_REQUEST ends the connection */
    }
}

/* The most iovecs one writev of pending requests takes (IOV_MAX is 1024). */
#define PEND_IOV 64

/*
 * Writes c's pending requests straight from their prebuilt bytes, a writev
 * of up to PEND_IOV at a time: no copy of them, unless the socket takes
 * only part, when the rest is copied to c->out (which is empty then, and
 * holds depth requests) for EPOLLOUT.  False when c went down.
 */
static bool send_pending(struct conn *c, uint64_t now)
{
    struct iovec iov[PEND_IOV];
    unsigned done = 0, k, m;

    while (done < c->npend) {
        ssize_t n;
        size_t skip;

        m = c->npend - done < PEND_IOV ? c->npend - done : PEND_IOV;
        for (k = 0; k < m; k++)
            iov[k] = (struct iovec){request[c->pend[done + k] - 1], request_len};
        n = writev(c->fd, iov, (int)m);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            conn_down(c, E_RESET, errno == EPIPE || errno == ECONNRESET ? NULL : strerror(errno),
                      now);
            return false;
        }
        if (n >= 0 && (size_t)n == m * request_len) {
            done += m;
            continue;
        }
        /* the socket is full: the unsent rest, in order, waits in c->out */
        run.short_writes++;
        skip = n > 0 ? (size_t)n : 0;
        for (k = done; k < c->npend; k++) {
            if (skip >= request_len) {
                skip -= request_len;
                continue;
            }
            memcpy(c->out + c->out_len, request[c->pend[k] - 1] + skip, request_len - skip);
            c->out_len += request_len - skip;
            skip = 0;
        }
        break;
    }
    c->npend = 0;
    return true;
}

/* Writes what c has to write: the rest of a short write first, then the
 * requests started since; EPOLLOUT while the socket does not take it all. */
static void conn_flush(struct conn *c, uint64_t now)
{
    ssize_t n;

    if (c->state != C_OPEN)
        return;
    while (c->out_off < c->out_len) {
        n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            conn_down(c, E_RESET, errno == EPIPE || errno == ECONNRESET ? NULL : strerror(errno),
                      now);
            return;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->npend > 0 && !send_pending(c, now))
            return;
    }
    if (c->out_len == 0) {
        if (c->out_armed) {
            epoll_set(c, EPOLL_CTL_MOD, EPOLLIN);
            c->out_armed = false;
        }
    } else if (!c->out_armed) {
        epoll_set(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
        c->out_armed = true;
    }
}

/* --- answers ------------------------------------------------------------------------ */

/* The offset just past the blank line ending CGI headers in p[0..n), or 0. */
static size_t head_end(const char *p, size_t n)
{
    const char *q = p, *e = p + n;

    while ((q = memchr(q, '\n', (size_t)(e - q))) != NULL) {
        q++;
        if (q < e && *q == '\n')
            return (size_t)(q + 1 - p);
        if (q + 1 < e && q[0] == '\r' && q[1] == '\n')
            return (size_t)(q + 2 - p);
    }
    return 0;
}

/* The Status header's code in the headers p[0..n): 200 when there is none
 * (CGI's default), 0 when it is malformed. */
static unsigned parse_status(const char *p, size_t n)
{
    const char *line = p, *e = p + n;

    while (line < e) {
        const char *nl = memchr(line, '\n', (size_t)(e - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(e - line);

        if (len >= 7 && !strncasecmp(line, "Status:", 7)) {
            const char *d = line + 7, *le = line + len;
            unsigned v = 0, k;

            while (d < le && (*d == ' ' || *d == '\t'))
                d++;
            for (k = 0; k < 3; k++, d++) {
                if (d >= le || *d < '0' || *d > '9')
                    return 0;
                v = v * 10 + (unsigned)(*d - '0');
            }
            if (d < le && *d != ' ' && *d != '\r')
                return 0;
            return v >= 100 ? v : 0;
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    return 200;
}

/* The answer being decoded is broken: its request counts as the protocol
 * error (not as cancelled, as the others in flight on c are). */
static void protocol_error(struct conn *c, const char *why, uint64_t now)
{
    if (c->id >= 1 && c->id <= opt.depth && c->slots[c->id - 1].state != S_FREE) {
        c->slots[c->id - 1].state = S_FREE;
        c->inflight--;
        run.inflight--;
    }
    conn_down(c, E_PROTOCOL, why, now);
}

/*
 * The last header block found in one piece with a well-formed Status, and
 * that status.  An answer whose STDOUT starts with the same bytes has the
 * same head and the same status: its first blank line cannot come sooner
 * (the block's own would have come sooner too) and the status depends on
 * the block's bytes alone.  One memcmp instead of head_end and
 * parse_status (about a third of the generator's instructions a request):
 * every answer is still checked, and the generator stays cheaper than the
 * servers it drives.
 */
static struct {
    size_t len; /* 0: none yet */
    uint16_t status;
    char text[HEAD_MAX]; /* (as long as the head kept for an answer in pieces) */
} known_head;

static bool known_head_starts(const uint8_t *p, size_t n)
{
    return known_head.len && n >= known_head.len && !memcmp(p, known_head.text, known_head.len);
}

static void known_head_keep(const uint8_t *p, size_t len, uint16_t status)
{
    if (status && len <= HEAD_MAX) {
        memcpy(known_head.text, p, len);
        known_head.len = len;
        known_head.status = status;
    }
}

/* STDOUT content for slot s: look for the end of the headers, the Status. */
static bool head_feed(struct conn *c, struct slot *s, const uint8_t *p, size_t n, uint64_t now)
{
    size_t end, room;

    s->out_bytes += n;
    if (s->status)
        return true;
    if (s->head_len == 0 && known_head_starts(p, n)) {
        s->status = known_head.status; /* the usual case: the head seen before */
    } else if (s->head_len == 0 && (end = head_end((const char *)p, n)) > 0) {
        s->status = (uint16_t)parse_status((const char *)p, end); /* in one piece */
        known_head_keep(p, end, s->status);
    } else {
        if (!s->head && !(s->head = malloc(HEAD_MAX))) {
            perror("fcgi-load");
            exit(2);
        }
        room = HEAD_MAX - s->head_len;
        memcpy(s->head + s->head_len, p, n < room ? n : room);
        s->head_len = (uint16_t)(s->head_len + (n < room ? n : room));
        end = head_end(s->head, s->head_len);
        if (end > 0)
            s->status = (uint16_t)parse_status(s->head, end);
        else if (s->head_len == HEAD_MAX)
            s->status = (uint16_t)parse_status(s->head, s->head_len);
        else
            return true;
    }
    if (s->status == 0) {
        protocol_error(c, "malformed Status header", now);
        return false;
    }
    return true;
}

/* END_REQUEST for slot id of c, its 8 bytes in c->end_body. */
static void answer_done(struct conn *c, uint16_t id, uint64_t now)
{
    struct slot *s = &c->slots[id - 1];
    uint8_t proto = c->end_body[4];

    run.answers_total++;
    run.last_answer = now;
    run.stdout_bytes += s->out_bytes;
    if (proto != 0) {
        errs.by_fcgi_status[proto]++;
        err_count(E_FCGI_STATUS, NULL);
    } else if (s->status < 200 || s->status > 299) {
        errs.by_status[s->status < 1000 ? s->status : 0]++;
        err_count(E_NON2XX, NULL);
    }
    if (run.measuring && !run.window_closed) {
        hist_record(&run.hist, now - s->t_sched);
        run.answers_measured++;
    }
    s->state = S_FREE;
    c->free_ids[c->nfree++] = id;
    c->inflight--;
    run.inflight--;
}

/* Checks a record header as it arrives; false after a protocol error. */
static bool record_begin(struct conn *c, uint64_t now)
{
    const uint8_t *h = c->hdr;
    struct slot *s;

    c->type = h[1];
    c->id = (uint16_t)(h[2] << 8 | h[3]);
    c->content_len = (uint16_t)(h[4] << 8 | h[5]);
    c->content_left = c->content_len;
    c->padding_left = h[6];
    if (h[0] != 1) {
        protocol_error(c, "record version is not 1", now);
        return false;
    }
    if (c->type != REC_STDOUT && c->type != REC_STDERR && c->type != REC_END_REQUEST) {
        protocol_error(c, c->id == 0 ? "management record not asked for"
                                     : "record type a responder does not send",
                       now);
        return false;
    }
    if (c->id == 0 || c->id > opt.depth || c->slots[c->id - 1].state == S_FREE) {
        c->id = 0; /* not one of ours: all in flight on c are cancelled */
        protocol_error(c, "record for a request id not in flight", now);
        return false;
    }
    s = &c->slots[c->id - 1];
    if (c->type == REC_STDOUT) {
        if (s->state == S_STDOUT_ENDED) {
            protocol_error(c, "STDOUT after the end of its stream", now);
            return false;
        }
        if (c->content_len == 0) {
            if (s->out_bytes == 0) {
                protocol_error(c, "empty STDOUT: no headers", now);
                return false;
            }
            if (s->status == 0) {
                protocol_error(c, "answer headers not ended by a blank line", now);
                return false;
            }
            s->state = S_STDOUT_ENDED;
        }
    } else if (c->type == REC_END_REQUEST) {
        if (c->content_len != 8) {
            protocol_error(c, "END_REQUEST content is not 8 bytes", now);
            return false;
        }
        if (s->state != S_STDOUT_ENDED) {
            protocol_error(c, "END_REQUEST before the end of STDOUT", now);
            return false;
        }
    }
    return true;
}

/* Decodes n bytes read from c; false when c went down meanwhile. */
static bool conn_input(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    while (n > 0) {
        size_t m;

        if (!c->in_record) {
            if (opt.conn_per_request && c->spent && c->inflight == 0) {
                protocol_error(c, "bytes after END_REQUEST", now);
                return false;
            }
            if (c->hdr_have == 0 && n >= HEADER_LEN) {
                memcpy(c->hdr, p, HEADER_LEN);
                p += HEADER_LEN;
                n -= HEADER_LEN;
            } else {
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
            }
            if (!record_begin(c, now))
                return false;
            c->in_record = true;
        }
        m = c->content_left < n ? c->content_left : n;
        if (m > 0) {
            if (c->type == REC_STDOUT) {
                if (!head_feed(c, &c->slots[c->id - 1], p, m, now))
                    return false;
            } else if (c->type == REC_END_REQUEST) {
                memcpy(c->end_body + (c->content_len - c->content_left), p, m);
            } else {
                run.stderr_bytes += m;
            }
            p += m;
            n -= m;
            c->content_left -= (uint32_t)m;
        }
        if (c->content_left > 0)
            return true;
        m = c->padding_left < n ? c->padding_left : n;
        p += m;
        n -= m;
        c->padding_left = (uint16_t)(c->padding_left - m);
        if (c->padding_left > 0)
            return true;
        c->in_record = false;
        if (c->type == REC_END_REQUEST)
            answer_done(c, c->id, now);
    }
    return true;
}

static void conn_readable(struct conn *c)
{
    uint64_t now;
    ssize_t n;

    for (;;) {
        n = read(c->fd, rbuf, sizeof rbuf);
        now = now_ns();
        if (n > 0) {
            if (!conn_input(c, rbuf, (size_t)n, now))
                return;
            if ((size_t)n < sizeof rbuf)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n == 0) {
            if (opt.conn_per_request && c->spent && c->inflight == 0 && !c->in_record &&
                !c->hdr_have) {
                conn_down(c, -1, NULL, now); /* closed after its answer: as it should */
                conn_fill(c, now);
                conn_flush(c, now);
                return;
            }
            conn_down(c, E_CLOSED,
                      c->inflight ? "closed by the server with requests in flight"
                                  : "kept connection closed by the server",
                      now);
        } else {
            conn_down(c, E_RESET, errno == ECONNRESET ? NULL : strerror(errno), now);
        }
        return;
    }
    if (opt.conn_per_request && c->spent && c->inflight == 0)
        conn_down(c, -1, NULL, now); /* we close: the answer is complete */
    conn_fill(c, now);
    conn_flush(c, now);
}

static void conn_event(struct conn *c, uint32_t events)
{
    uint64_t now;

    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;

        now = now_ns();
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_down(c, err == ECONNREFUSED ? E_REFUSED : E_CONNECT,
                      err == ECONNREFUSED ? NULL : strerror(err), now);
            return;
        }
        c->state = C_OPEN;
        epoll_set(c, EPOLL_CTL_MOD, EPOLLIN);
        conn_fill(c, now);
        conn_flush(c, now);
        return;
    }
    if (c->state != C_OPEN)
        return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        conn_readable(c);
        return;
    }
    if (events & EPOLLOUT)
        conn_flush(c, now_ns());
}

/* Every 10 ms: timeouts, and failed connections due for another try. */
static void tick(uint64_t now)
{
    uint64_t timeout_ns = (uint64_t)(opt.timeout_s * 1e9);
    unsigned i, k;

    for (i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];

        if (c->state == C_IDLE) {
            conn_fill(c, now);
            conn_flush(c, now);
            continue;
        }
        if (c->state == C_CONNECTING) {
            if (now - c->t_connect > timeout_ns)
                conn_down(c, E_CONNECT, "connect timed out", now);
            continue;
        }
        for (k = 0; k < opt.depth && c->inflight; k++) {
            struct slot *s = &c->slots[k];

            if (s->state != S_FREE && now - s->t_sent > timeout_ns) {
                s->state = S_FREE; /* a timeout; the others on c: cancelled */
                c->inflight--;
                run.inflight--;
                conn_down(c, E_TIMEOUT, NULL, now);
                break;
            }
        }
    }
}

/* --- the report ----------------------------------------------------------------------- */

static void report(void)
{
    double secs = (double)(run.window_to - run.window_from) / 1e9;
    double rps = secs > 0 ? (double)run.answers_measured / secs : 0;
    double cpu = rusage_s(&run.ru_to) - rusage_s(&run.ru_from);
    double ucpu = (double)(run.ru_to.ru_utime.tv_sec - run.ru_from.ru_utime.tv_sec) +
                  (double)(run.ru_to.ru_utime.tv_usec - run.ru_from.ru_utime.tv_usec) / 1e6;
    double per = run.answers_measured ? cpu / (double)run.answers_measured * 1e6 : 0;
    double uper = run.answers_measured ? ucpu / (double)run.answers_measured * 1e6 : 0;
    double busy = secs > 0 ? cpu / secs * 100 : 0;
    double scpu = run.server_cpu_to - run.server_cpu_from;
    bool have_server = opt.server_pid && run.server_cpu_from >= 0 && run.server_cpu_to >= 0;
    double sper = run.answers_measured ? scpu / (double)run.answers_measured * 1e6 : 0;
    double sbusy = secs > 0 ? scpu / secs * 100 : 0;
    bool have_wait = run.wait_from >= 0 && run.wait_to >= 0 && secs > 0;
    double wait_pct = have_wait ? (run.wait_to - run.wait_from) / secs * 100 : -1;
    bool have_swait = have_server && run.server_wait_from >= 0 && run.server_wait_to >= 0 && secs > 0;
    double swait_pct = have_swait ? (run.server_wait_to - run.server_wait_from) / secs * 100 : -1;
    uint64_t total = 0;
    const struct histogram *h = &run.hist;
    char mode[160];
    unsigned i;

    for (i = 0; i < E_KINDS; i++)
        total += errs.count[i];
    snprintf(mode, sizeof mode, "%u connections, depth %u, %s, %s", opt.connections, opt.depth,
             opt.conn_per_request ? "a connection per request" : "kept connections",
             opt.rate > 0 ? "open loop" : "closed loop");
    if (opt.json) {
        printf("{\"address\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"connections\":%u,"
               "\"depth\":%u,\"conn_per_request\":%s,\"rate\":%.1f,\"seconds\":%.3f,"
               "\"requests\":%llu,\"requests_per_s\":%.1f,",
               opt.address, opt.method, opt.path, opt.connections, opt.depth,
               opt.conn_per_request ? "true" : "false", opt.rate, secs,
               (unsigned long long)run.answers_measured, rps);
        printf("\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
               "\"max\":%.1f,\"mean\":%.1f},",
               hist_quantile(h, 0.5) / 1e3, hist_quantile(h, 0.9) / 1e3,
               hist_quantile(h, 0.99) / 1e3, hist_quantile(h, 0.999) / 1e3, h->max_ns / 1e3,
               h->n ? h->sum_ns / (double)h->n / 1e3 : 0);
        printf("\"errors\":{");
        for (i = 0; i < E_KINDS; i++)
            printf("%s\"%s\":%llu", i ? "," : "", err_name[i], (unsigned long long)errs.count[i]);
        printf("},");
        if (opt.rate > 0)
            printf("\"send_lag_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},",
                   hist_quantile(&run.lag, 0.5) / 1e3, hist_quantile(&run.lag, 0.99) / 1e3,
                   run.lag.max_ns / 1e3);
        printf("\"error_total\":%llu,\"cancelled\":%llu,\"not_sent_at_end\":%llu,",
               (unsigned long long)total, (unsigned long long)errs.cancelled,
               (unsigned long long)run.late_at_end);
        printf("\"stdout_bytes_per_answer\":%.1f,\"connects\":%llu,\"short_writes\":%llu,"
               "\"generator_cpu_us_per_request\":%.3f,\"generator_user_us_per_request\":%.3f,"
               "\"generator_cpu_percent\":%.1f,\"generator_wait_percent\":%.1f",
               run.answers_total ? (double)run.stdout_bytes / (double)run.answers_total : 0,
               (unsigned long long)run.connects, (unsigned long long)run.short_writes, per, uper,
               busy, wait_pct);
        if (have_server)
            printf(",\"server_cpu_us_per_request\":%.3f,\"server_cpu_percent\":%.1f,"
                   "\"server_wait_percent\":%.1f", sper, sbusy, swait_pct);
        printf("}\n");
    } else {
        printf("fcgi-load %s %s %s: %s, %.1f s measured after %.1f s warm-up\n", opt.address,
               opt.method, opt.path, mode, secs, opt.warmup_s);
        if (opt.rate > 0)
            printf("target rate        %.1f req/s\n", opt.rate);
        printf("requests/s         %.1f\n", rps);
        printf("requests           %llu\n", (unsigned long long)run.answers_measured);
        printf("latency p50        %.1f us\n", hist_quantile(h, 0.5) / 1e3);
        printf("latency p90        %.1f us\n", hist_quantile(h, 0.9) / 1e3);
        printf("latency p99        %.1f us\n", hist_quantile(h, 0.99) / 1e3);
        printf("latency p99.9      %.1f us\n", hist_quantile(h, 0.999) / 1e3);
        printf("latency max        %.1f us\n", h->max_ns / 1e3);
        printf("latency mean       %.1f us\n", h->n ? h->sum_ns / (double)h->n / 1e3 : 0);
        if (opt.rate > 0)
            printf("send lag           p50 %.1f us, p99 %.1f us, max %.1f us (sent after "
                   "scheduled: in the latency above)\n",
                   hist_quantile(&run.lag, 0.5) / 1e3, hist_quantile(&run.lag, 0.99) / 1e3,
                   run.lag.max_ns / 1e3);
        printf("answer bytes       %.1f per answer (STDOUT), %llu bytes of STDERR\n",
               run.answers_total ? (double)run.stdout_bytes / (double)run.answers_total : 0,
               (unsigned long long)run.stderr_bytes);
        printf("short writes       %llu (the socket took part of the requests: the server "
               "lagged)\n", (unsigned long long)run.short_writes);
        printf("errors             %llu\n", (unsigned long long)total);
        for (i = 0; i < E_KINDS; i++)
            printf("errors %-11s %llu\n", err_name[i], (unsigned long long)errs.count[i]);
        if (opt.rate > 0)
            printf("not sent at end    %llu (scheduled, no free request slot)\n",
                   (unsigned long long)run.late_at_end);
        if (opt.requests && run.sent_measured < opt.requests)
            printf("not sent           %llu of the %llu asked for (no answer for %.1f s: "
                   "given up)\n", (unsigned long long)(opt.requests - run.sent_measured),
                   (unsigned long long)opt.requests, opt.timeout_s);
        printf("cancelled          %llu (in flight on a connection that failed)\n",
               (unsigned long long)errs.cancelled);
        printf("connects           %llu\n", (unsigned long long)run.connects);
        printf("generator CPU      %.3f us per request (user %.3f), %.1f %% of one CPU\n", per,
               uper, busy);
        if (have_wait)
            printf("generator waited   %.1f %% of the time for a CPU (other processes had it)\n",
                   wait_pct);
        if (have_server)
            printf("server CPU         %.3f us per request, %.1f %% of one CPU\n", sper, sbusy);
        if (have_swait)
            printf("server waited      %.1f %% of the time for a CPU\n", swait_pct);
    }
    for (i = 0; i < MAX_REASONS && errs.reason[i].why; i++)
        fprintf(stderr, "fcgi-load: %llu x %s\n", (unsigned long long)errs.reason[i].n,
                errs.reason[i].why);
    for (i = 0; i < 1000; i++)
        if (errs.by_status[i])
            fprintf(stderr, "fcgi-load: %llu x Status %u\n", (unsigned long long)errs.by_status[i], i);
    for (i = 0; i < 256; i++)
        if (errs.by_fcgi_status[i])
            fprintf(stderr, "fcgi-load: %llu x END_REQUEST protocol status %u%s\n",
                    (unsigned long long)errs.by_fcgi_status[i], i,
                    i == 1 ? " (CANT_MPX_CONN)" : i == 2 ? " (OVERLOADED)"
                                                : i == 3 ? " (UNKNOWN_ROLE)" : "");
    if (!opt.json && busy > 90)
        fprintf(stderr, "fcgi-load: the generator used %.0f %% of a CPU: it may be the "
                        "bottleneck of this run\n", busy);
}

/* --- the loop --------------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void open_window(uint64_t now)
{
    run.measuring = true;
    run.window_from = now;
    getrusage(RUSAGE_SELF, &run.ru_from);
    run.wait_from = runqueue_wait_s("/proc/thread-self/schedstat");
    if (opt.server_pid) {
        run.server_cpu_from = process_cpu_s(opt.server_pid);
        run.server_wait_from = server_wait_s();
    }
}

static void close_window(uint64_t now)
{
    run.window_closed = true;
    run.window_to = now;
    getrusage(RUSAGE_SELF, &run.ru_to);
    run.wait_to = runqueue_wait_s("/proc/thread-self/schedstat");
    if (opt.server_pid) {
        run.server_cpu_to = process_cpu_s(opt.server_pid);
        run.server_wait_to = server_wait_s();
    }
}

int main(int argc, char **argv)
{
    struct epoll_event events[512];
    uint64_t now, next_tick, drain_until = 0;
    unsigned i;
    uint64_t total;
    struct sigaction sa = {.sa_handler = on_signal};

    parse_options(argc, argv);
    read_body();
    resolve_address();
    build_requests();
    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* open loop: wake on time, not 50 us late */
    {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < opt.connections + 64ul) {
            rl.rlim_cur = rl.rlim_max < opt.connections + 64ul ? rl.rlim_max : opt.connections + 64ul;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc(opt.connections, sizeof *conns);
    if (ep < 0 || !conns) {
        perror("fcgi-load");
        return 2;
    }
    for (i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];
        unsigned k;

        c->fd = -1;
        c->index = i;
        c->slots = calloc(opt.depth, sizeof *c->slots);
        c->free_ids = malloc(opt.depth * sizeof *c->free_ids);
        c->pend = malloc(opt.depth * sizeof *c->pend);
        c->out_cap = opt.depth * request_len;
        c->out = malloc(c->out_cap);
        if (!c->slots || !c->free_ids || !c->pend || !c->out) {
            perror("fcgi-load");
            return 2;
        }
        for (k = opt.depth; k > 0; k--)
            c->free_ids[c->nfree++] = (uint16_t)k;
    }

    now = now_ns();
    run.t_start = now;
    run.t_warm = now + (uint64_t)(opt.warmup_s * 1e9);
    run.t_end = opt.requests ? UINT64_MAX : run.t_warm + (uint64_t)(opt.duration_s * 1e9);
    run.period_ns = opt.rate > 0 ? 1e9 / opt.rate : 0;
    run.server_cpu_from = run.server_cpu_to = -1;
    run.last_answer = now;
    if (opt.warmup_s == 0)
        open_window(now);
    for (i = 0; i < opt.connections; i++) {
        conn_fill(&conns[i], now);
        conn_flush(&conns[i], now);
    }
    next_tick = now + 10000000u;

    for (;;) {
        struct timespec ts;
        uint64_t wake;
        int n, k;

        now = now_ns();
        if (!run.measuring && now >= run.t_warm)
            open_window(now);
        if (interrupted && !run.stopping) {
            run.t_end = now;
            if (!run.measuring)
                open_window(now);
        }
        if (!run.stopping &&
            (now >= run.t_end ||
             (opt.requests && run.measuring && run.sent_measured >= opt.requests &&
              run.inflight == 0) ||
             (opt.requests && now - run.last_answer > (uint64_t)(opt.timeout_s * 1e9)))) {
            run.stopping = true;
            drain_until = now + (uint64_t)(opt.timeout_s * 1e9);
            close_window(now);
        }
        if (run.stopping) {
            if (run.inflight == 0 || now >= drain_until || interrupted > 1)
                break;
        }
        if (opt.rate > 0 && !run.stopping) {
            /* hand out every request scheduled by now, round robin */
            while ((double)run.t_start + (double)run.sched_k * run.period_ns <= (double)now) {
                struct conn *c = &conns[run.sched_k % opt.connections];

                c->due++;
                run.sched_k++;
                conn_fill(c, now);
                conn_flush(c, now);
            }
        }
        if (now >= next_tick) {
            tick(now);
            next_tick = now + 10000000u;
        }

        wake = next_tick;
        if (!run.measuring && run.t_warm < wake)
            wake = run.t_warm;
        if (!run.stopping && run.t_end < wake)
            wake = run.t_end;
        if (opt.rate > 0 && !run.stopping) {
            double t = (double)run.t_start + (double)run.sched_k * run.period_ns;

            if (t < (double)wake)
                wake = (uint64_t)ceil(t);
        }
        now = now_ns();
        wake = wake > now ? wake - now : 0;
        ts.tv_sec = (time_t)(wake / 1000000000u);
        ts.tv_nsec = (long)(wake % 1000000000u);
        n = epoll_pwait2(ep, events, (int)(sizeof events / sizeof events[0]), &ts, NULL);
        if (n < 0 && errno == ENOSYS) /* before Linux 5.11: millisecond timeouts */
            n = epoll_wait(ep, events, (int)(sizeof events / sizeof events[0]),
                           (int)(wake / 1000000u));
        if (n < 0) {
            if (errno == EINTR) {
                if (interrupted && run.stopping)
                    interrupted = 2; /* a second ^C ends the drain */
                continue;
            }
            perror("fcgi-load: epoll_wait");
            return 2;
        }
        for (k = 0; k < n; k++)
            conn_event(events[k].data.ptr, events[k].events);
    }

    now = now_ns();
    if (!run.window_closed)
        close_window(now);
    /* what is still in flight after the drain waited --timeout: timeouts */
    for (i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];
        unsigned k;

        for (k = 0; k < opt.depth; k++)
            if (c->slots[k].state != S_FREE)
                err_count(E_TIMEOUT, NULL);
        if (opt.rate > 0)
            run.late_at_end += c->due;
        if (c->fd >= 0)
            close(c->fd);
    }
    report();
    for (total = 0, i = 0; i < E_KINDS; i++)
        total += errs.count[i];
    if (run.answers_measured == 0) {
        fprintf(stderr, "fcgi-load: no answer in the measured window\n");
        return 1;
    }
    return total && !opt.allow_errors ? 1 : 0;
}
