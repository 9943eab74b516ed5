/*
 * store/http.c — libcurl multi interface driven by a libev loop.
 *
 * curl tells us which sockets to watch (on_socket) and when to wake it
 * (on_curl_timer); libev tells curl when a socket is ready (on_io) or the
 * time has come (on_timer) through curl_multi_socket_action(), after
 * which we collect finished transfers (check_done).  The multi handle
 * outlives the transfers, so its connection cache keeps connections open
 * between requests.  Each request gets a fresh easy handle: connection
 * reuse lives in the multi handle, and a fresh handle can carry no stale
 * option from an earlier request.
 *
 * A transfer is an operation of the core (store/op.h): exactly one
 * callback, never before http_request_start returns, also when the client
 * is freed first.  The core holds it until delivery, and the multi handle
 * (this file's hold) until its easy handle is removed.  Deadlines are
 * curl's own (CURLOPT_TIMEOUT_MS), which stops the transfer too.
 */
#include "store/http.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/log.h"
#include "store/op.h"

/* Response headers bigger than this are not an answer we want. */
#define HTTP_MAX_HEADER_BYTES (64 * 1024)

struct http_sock {
    ev_io io; /* io.fd is the socket */
    struct http_client *c;
    struct list_node link; /* on c->socks */
};

struct http_xfer {
    struct store_op op;
    struct http_client *c;
    struct list_node in_multi; /* on c->xfers while its easy handle is in the multi */
    CURL *easy; /* NULL once removed from the multi handle */
    struct curl_slist *hdrs;
    http_cb cb;
    void *privdata;
    /* the answer, kept for delivery */
    long http_code, num_connects;
    long timeout_ms;
    size_t max_bytes;
    struct buf body; /* response body (and room for a NUL after it) */
    struct buf hbuf; /* raw header lines of the latest answer, NUL-terminated */
    int too_large;
    int headers_too_large;
    char errbuf[CURL_ERROR_SIZE];
    char message[CURL_ERROR_SIZE + 96];
};

struct http_client {
    struct store_backend be; /* be.pending: the transfers not answered yet */
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer; /* curl's single timeout */
    struct list_node socks;
    struct list_node xfers; /* struct http_xfer in the multi handle */
    unsigned pending;       /* how many */
};

int http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void http_global_cleanup(void)
{
    curl_global_cleanup();
}

static void check_done(struct http_client *c);

/* ---- libev side -------------------------------------------------------- */

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http_sock *sk = container_of(w, struct http_sock, io);
    struct http_client *c = sk->c;
    int action = 0, running;

    (void)loop;
    if (revents & EV_READ)
        action |= CURL_CSELECT_IN;
    if (revents & EV_WRITE)
        action |= CURL_CSELECT_OUT;
    if (revents & EV_ERROR)
        action |= CURL_CSELECT_ERR;
    /* sk may be freed inside (CURL_POLL_REMOVE): do not touch it after. */
    curl_multi_socket_action(c->multi, w->fd, action, &running);
    check_done(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct http_client *c = container_of(w, struct http_client, timer);
    int running;

    (void)loop;
    (void)revents;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

/* ---- curl side --------------------------------------------------------- */

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct http_client *c = userp;
    struct http_sock *sk = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            ev_io_stop(c->loop, &sk->io);
            list_remove(&sk->link);
            free(sk);
        }
        return 0;
    }
    if (!sk) {
        sk = calloc(1, sizeof *sk);
        if (!sk)
            return -1;
        sk->c = c;
        list_insert_tail(&c->socks, &sk->link);
        ev_init(&sk->io, on_io);
        curl_multi_assign(c->multi, s, sk);
    } else {
        ev_io_stop(c->loop, &sk->io);
    }
    if (what & CURL_POLL_IN)
        events |= EV_READ;
    if (what & CURL_POLL_OUT)
        events |= EV_WRITE;
    /* ev_io_set even for the same fd: curl may have closed and reopened it. */
    ev_io_set(&sk->io, s, events);
    if (events)
        ev_io_start(c->loop, &sk->io);
    return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_client *c = userp;

    (void)multi;
    ev_timer_stop(c->loop, &c->timer);
    if (timeout_ms >= 0) {
        /* 0 means "now": let the loop call us next iteration rather than
         * re-entering curl from inside one of its callbacks. */
        ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.0);
        ev_timer_start(c->loop, &c->timer);
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_xfer *x = userp;
    size_t n = size * nmemb;

    if (n > x->max_bytes - x->body.len) {
        x->too_large = 1;
        return 0; /* != n: curl aborts with CURLE_WRITE_ERROR */
    }
    /* never more room than the cap (and its NUL) needs */
    if (buf_grow_to(&x->body, buf_next_cap(&x->body, n + 1, x->max_bytes + 1)) < 0)
        return 0;
    buf_append(&x->body, data, n);
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_xfer *x = userp;
    size_t n = size * nmemb;

    /* A status line starts a new answer (after 100 Continue, say): keep
     * only the headers of the last one. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        x->hbuf.len = 0;
    if (x->hbuf.len + n + 1 > HTTP_MAX_HEADER_BYTES) {
        x->headers_too_large = 1;
        return 0;
    }
    if (buf_reserve(&x->hbuf, n + 1) < 0)
        return 0;
    buf_append(&x->hbuf, data, n);
    x->hbuf.data[x->hbuf.len] = '\0';
    return n;
}

/* ---- completion -------------------------------------------------------- */

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* Splits hbuf in place into name/value pairs; NULL with *count 0 when
 * there are none (or no memory: headers are a convenience, not fatal). */
static struct http_header *parse_headers(struct http_xfer *x, size_t *count)
{
    struct http_header *h;
    size_t lines = 0, i = 0;
    char *p, *next;

    *count = 0;
    if (!x->hbuf.data)
        return NULL;
    for (p = (char *)x->hbuf.data; *p; p++)
        if (*p == '\n')
            lines++;
    if (!lines)
        return NULL;
    h = calloc(lines, sizeof *h);
    if (!h)
        return NULL;
    for (p = (char *)x->hbuf.data; p && *p; p = next) {
        char *colon;

        next = strchr(p, '\n');
        if (next)
            *next++ = '\0';
        /* status line, blank line and obsolete folded lines are skipped */
        if (*p == ' ' || *p == '\t' || strncmp(p, "HTTP/", 5) == 0)
            continue;
        colon = strchr(p, ':');
        if (!colon || colon == p)
            continue;
        *colon = '\0';
        h[i].name = trim(p);
        h[i].value = trim(colon + 1);
        i++;
    }
    *count = i;
    return h;
}

static void classify(struct http_xfer *x, CURLcode rc, enum store_status *status)
{
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);

    x->message[0] = '\0';
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        *status = STORE_BAD_UPSTREAM;
        snprintf(x->message, sizeof x->message, "response larger than %zu bytes",
                 x->max_bytes);
        return;
    }
    if (x->headers_too_large) {
        *status = STORE_BAD_UPSTREAM;
        snprintf(x->message, sizeof x->message, "response headers larger than %d bytes",
                 HTTP_MAX_HEADER_BYTES);
        return;
    }
    switch (rc) {
    case CURLE_OK:
        *status = STORE_OK;
        return;
    case CURLE_OPERATION_TIMEDOUT:
        *status = STORE_TIMEOUT;
        snprintf(x->message, sizeof x->message, "no answer within %ld ms", x->timeout_ms);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        *status = STORE_UNAVAILABLE;
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_PARTIAL_FILE:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
        *status = STORE_BAD_UPSTREAM;
        break;
    default: /* bad URL, scheme refused, out of memory, the unexpected */
        *status = STORE_ERROR;
        break;
    }
    snprintf(x->message, sizeof x->message, "%s", detail);
}

/* The core's result becomes the caller's http_response. */
static void deliver(struct store_op *op, const struct store_result *r)
{
    struct http_xfer *x = container_of(op, struct http_xfer, op);
    struct http_response res;
    struct http_header *hdrs = NULL;

    memset(&res, 0, sizeof res);
    res.status = r->status;
    res.message = r->message;
    res.http_code = x->http_code;
    res.num_connects = x->num_connects;
    if (res.status == STORE_OK) {
        res.body = x->body.data ? (const char *)x->body.data : "";
        if (x->body.data)
            x->body.data[x->body.len] = '\0'; /* room kept by on_body */
        res.body_len = x->body.len;
        hdrs = parse_headers(x, &res.header_count);
        res.headers = hdrs;
        res.content_type = http_response_header(&res, "Content-Type");
    }
    x->cb(x->privdata, &res);
    free(hdrs);
}

static void free_xfer(struct store_op *op)
{
    struct http_xfer *x = container_of(op, struct http_xfer, op);

    curl_slist_free_all(x->hdrs);
    buf_free(&x->body);
    buf_free(&x->hbuf);
    free(x);
}

/* Takes x's easy handle out of the multi handle and lets go of x. */
static void xfer_remove(struct http_xfer *x)
{
    curl_multi_remove_handle(x->c->multi, x->easy);
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
    list_remove(&x->in_multi);
    x->c->pending--;
    store_op_release(&x->op); /* the multi handle's hold */
}

/* The transfer is over: its answer (or failure) to the core. */
static void xfer_finish(struct http_xfer *x, CURLcode rc)
{
    enum store_status status;

    classify(x, rc, &status);
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->http_code);
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &x->num_connects);
    store_op_hold(&x->op);
    xfer_remove(x);
    store_op_complete(&x->op, status, x->message, NULL, 0);
    store_op_release(&x->op);
}

static void check_done(struct http_client *c)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(c->multi, &left))) {
        struct http_xfer *x = NULL;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg is invalid after remove_handle: rc and easy are copied. */
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (x)
            xfer_finish(x, rc);
    }
}

/* ---- public API -------------------------------------------------------- */

struct http_client *http_client_new(struct ev_loop *loop)
{
    struct http_client *c;

    if (!loop)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    list_init(&c->socks);
    list_init(&c->xfers);
    store_backend_init(&c->be, loop, "http", "", 0);
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return NULL;
    }
    ev_init(&c->timer, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    /* curl's default keeps 4 idle connections per transfer still running,
     * so a burst's connections are mostly closed as the burst drains. */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)HTTP_MAX_IDLE_CONNECTIONS);
    return c;
}

/* Every transfer was answered by the close: take them out of the multi
 * handle, then close the connections it keeps. */
static void destroy(struct store_backend *be)
{
    struct http_client *c = container_of(be, struct http_client, be);
    struct http_sock *sk;
    struct http_xfer *x;

    while ((x = list_first(&c->xfers, struct http_xfer, in_multi)))
        xfer_remove(x);
    /* Closing cached connections may call on_socket(REMOVE): c stays valid. */
    curl_multi_cleanup(c->multi);
    ev_timer_stop(c->loop, &c->timer);
    while ((sk = list_first(&c->socks, struct http_sock, link))) {
        list_remove(&sk->link);
        ev_io_stop(c->loop, &sk->io);
        free(sk);
    }
    free(c);
}

void http_client_free(struct http_client *c)
{
    if (c)
        store_backend_close(&c->be, "HTTP client is shutting down", destroy);
}

unsigned http_client_pending(const struct http_client *c)
{
    return c ? c->pending : 0;
}

const char *http_response_header(const struct http_response *res, const char *name)
{
    size_t i;

    if (!res || !name)
        return NULL;
    for (i = 0; i < res->header_count; i++)
        if (strcasecmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    return NULL;
}

/* An HTTP method is a token: refuse anything that could break the line. */
static int method_ok(const char *m)
{
    const char *p;

    if (!*m || strlen(m) > 32)
        return 0;
    for (p = m; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return 0;
    return 1;
}

static int has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);

    for (; headers && *headers; headers++)
        if (strncasecmp(*headers, name, n) == 0 && (*headers)[n] == ':')
            return 1;
    return 0;
}

static int add_header(struct http_xfer *x, const char *line)
{
    struct curl_slist *l = curl_slist_append(x->hdrs, line);

    if (!l)
        return -1;
    x->hdrs = l;
    return 0;
}

static int setup(struct http_xfer *x, const struct http_request *req)
{
    const char *method = req->method ? req->method : "GET";
    int has_body = req->body || req->body_len || strcmp(method, "POST") == 0 ||
                   strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;
    const char *const *h;

#define SET(opt, val)                                                                      \
    do {                                                                                   \
        if (rc == CURLE_OK)                                                                \
            rc = curl_easy_setopt(e, opt, val);                                            \
    } while (0)

    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PRIVATE, x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_TIMEOUT_MS, x->timeout_ms);
    /* A transfer that ends (timeout, removal) while its host name is still
     * being resolved must not wait for the resolver thread on the loop. */
    SET(CURLOPT_QUICK_EXIT, 1L);
    /* Refuse an announced Content-Length over the cap before any body. */
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_bytes);

    if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        /* COPYPOSTFIELDS copies: the caller's body may go away. */
        if (req->body_len)
            SET(CURLOPT_COPYPOSTFIELDS, (const char *)req->body);
        else
            SET(CURLOPT_POSTFIELDS, "");
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        SET(CURLOPT_CUSTOMREQUEST, method);
    }
    if (req->aws_sigv4)
        SET(CURLOPT_AWS_SIGV4, req->aws_sigv4);
    if (req->userpwd)
        SET(CURLOPT_USERPWD, req->userpwd);
#undef SET
    if (rc != CURLE_OK)
        return -1;

    for (h = req->headers; h && *h; h++)
        if (add_header(x, *h) < 0)
            return -1;
    /* curl would label a body as a form: say it is plain bytes instead. */
    if (has_body && !has_header(req->headers, "Content-Type") &&
        add_header(x, "Content-Type: application/octet-stream") < 0)
        return -1;
    /* "Expect: 100-continue" (curl sends it for bodies over 1 MiB) costs a
     * round trip.  Not with SigV4: curl would sign the removal entry
     * "Expect:" as an empty header that is never sent, and the server's
     * signature check would fail. */
    if (has_body && !req->aws_sigv4 && !has_header(req->headers, "Expect") &&
        add_header(x, "Expect:") < 0)
        return -1;
    if (x->hdrs && curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs) != CURLE_OK)
        return -1;
    return 0;
}

/* A refusal before the transfer could start: the core delivers it from
 * the loop, like any answer. */
static void refuse(struct http_xfer *x, enum store_status status, const char *message)
{
    if (x->easy) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    store_op_complete(&x->op, status, message, NULL, 0);
}

void http_request_start(struct http_client *c, const struct http_request *req, http_cb cb,
                        void *privdata)
{
    struct http_xfer *x;

    if (!c || !cb) {
        sf_error("http_request_start without a client or a callback");
        return;
    }
    x = calloc(1, sizeof *x);
    if (!x) {
        struct http_response res = {.status = STORE_ERROR, .message = "out of memory"};

        sf_error("HTTP client: out of memory: answering at once");
        cb(privdata, &res);
        return;
    }
    x->c = c;
    x->cb = cb;
    x->privdata = privdata;
    x->op.deliver = deliver;
    store_backend_begin(&c->be);
    store_op_start(&c->be, &x->op, NULL, NULL, -1, free_xfer); /* curl's own deadline */
    if (c->be.closing) {
        refuse(x, STORE_UNAVAILABLE, "HTTP client is shutting down");
    } else if (!req || !req->url || (req->method && !method_ok(req->method))) {
        refuse(x, STORE_ERROR, "bad request (no URL, or a method that is not a token)");
    } else {
        x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
        x->max_bytes = req->max_response_bytes ? req->max_response_bytes
                                               : HTTP_DEFAULT_MAX_RESPONSE_BYTES;
        if (x->max_bytes > SIZE_MAX / 4)
            x->max_bytes = SIZE_MAX / 4; /* keeps the growth arithmetic safe */
        x->easy = curl_easy_init();
        if (!x->easy || setup(x, req) < 0) {
            refuse(x, STORE_ERROR, "cannot set up the transfer (out of memory?)");
        } else if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
            refuse(x, STORE_ERROR, "cannot add the transfer to the multi handle");
        } else {
            /* add_handle asked for a 0 ms timeout: the transfer starts on
             * the next loop iteration. */
            store_op_hold(&x->op); /* the multi handle's */
            list_insert_tail(&c->xfers, &x->in_multi);
            c->pending++;
        }
    }
    store_backend_end(&c->be);
}
