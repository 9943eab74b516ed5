/*
 * store/mysql.c — the lisas shim on MariaDB Connector/C's non-blocking API.
 *
 * Each pooled connection is a small state machine.  Every library call
 * that may block is made with its _start() variant; when that returns a
 * wait mask (MYSQL_WAIT_READ/WRITE/TIMEOUT) the connection arms its ev_io
 * and ev_timer and calls the matching _cont() when libev says the socket
 * is ready.  conn_call() is the one place that knows which _start/_cont
 * pair belongs to which step; conn_run() drives it; conn_step_done()
 * decides what comes next.
 *
 *   DOWN --connect--> SETUP (connect, SET session, CREATE TABLE, prepare x2)
 *        --> IDLE <--> BUSY (execute, store_result, fetch, free_result | ping)
 *
 * An idle connection watches its socket for reading: the server never
 * speaks unasked, so readability means it closed the connection (restart,
 * KILL, wait_timeout) and the connection is reopened before anyone uses it.
 *
 * Delivery, deadlines and the breaker are the operation core's
 * (store/op.h).  An operation is held by the core until its result is
 * delivered, and by this shim while it waits in the queue or runs on a
 * connection (the connector reads its bound buffers), so a result decided
 * early (a deadline, a close) never frees memory a suspended call still
 * uses.  Host names are looked up before every connect (store/resolver.h):
 * the connector would do it with a blocking getaddrinfo() on the loop.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "store/mysql.h"

#include "common/log.h"
#include "common/setting.h"
#include "common/utf8.h"
#include "store/resolver.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#define MSG_MAX 256
/* utf8mb4: at most 4 bytes a character. */
#define NAME_MAX_BYTES (MYSQL_STORE_NAME_MAX_CHARS * 4)
#define CONTENT_MAX_BYTES (MYSQL_STORE_CONTENT_MAX_CHARS * 4)
/* _cont() calls made to wind down an aborted call before giving up on it. */
#define ABORT_SPINS 16

#define STR_(x) #x
#define STR(x) STR_(x)

static const char *const setup_sql[] = {
    "SET SESSION sql_mode='STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', autocommit=1",
    "CREATE TABLE IF NOT EXISTS lisa ("
    "name VARCHAR(" STR(MYSQL_STORE_NAME_MAX_CHARS) ") NOT NULL PRIMARY KEY, "
    "content VARCHAR(" STR(MYSQL_STORE_CONTENT_MAX_CHARS) ")"
    ") DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
};
static const char get_sql[] = "SELECT content FROM lisa WHERE name=?";
static const char put_sql[] = "INSERT INTO lisa (name, content) VALUES (?, ?) "
                              "ON DUPLICATE KEY UPDATE content=VALUES(content)";

enum op_kind { OP_GET, OP_PUT, OP_PING };

enum conn_state {
    CONN_DOWN,  /* no session; waiting on the back-off timer */
    CONN_SETUP, /* connecting and preparing */
    CONN_IDLE,  /* ready, no operation */
    CONN_BUSY   /* running c->op */
};

enum conn_step {
    STEP_NONE,
    STEP_CONNECT,
    STEP_SETUP_SQL,
    STEP_PREPARE_GET,
    STEP_PREPARE_PUT,
    STEP_EXECUTE,
    STEP_STORE,
    STEP_FETCH,
    STEP_FREE_RESULT,
    STEP_PING
};

struct mysql_store;

struct mysql_op {
    struct store_op op;
    struct list_node qlink; /* on st->queue while waiting for a connection */
    struct mysql_store *st;
    struct mysql_conn *conn; /* while running */
    enum op_kind kind;
    bool retried;
    enum store_status status; /* a get's outcome, decided at fetch */
    char msg[MSG_MAX];
    MYSQL_BIND param[2];
    unsigned long name_len, value_len;
    MYSQL_BIND result;
    unsigned long out_len;
    my_bool out_null, out_error;
    char *out_big; /* a value longer than the result buffer (a wider column than ours) */
    const char *out_data;
    size_t out_size;
    char name[NAME_MAX_BYTES];
    char buf[]; /* put: the content (a get reads into its connection's buffer) */
};

struct mysql_conn {
    struct mysql_store *st;
    unsigned id;
    enum conn_state state;
    enum conn_step step;
    bool suspended; /* a _start() returned a wait mask; _cont() pending */
    MYSQL *my;
    MYSQL_STMT *get_stmt, *put_stmt, *stmt; /* stmt: the one running */
    unsigned setup_idx;
    struct mysql_op *op;
    unsigned failures; /* consecutive failed connects */
    struct resolve *lookup; /* the host name being looked up */
    const char *connect_addr; /* what the connector is given (valid during the connect) */
    ev_io io;
    ev_timer lib_timer; /* a timeout the library asked for */
    ev_timer timer;     /* set-up deadline, or the back-off before connecting */
    MYSQL *r_mysql;     /* results of the last library call */
    int r_int;
    my_bool r_bool;
    unsigned idle_iteration; /* ev_iteration() when it last became idle */
    /* A get's value, fetched here and delivered (or copied by the core)
     * before the connection takes its next operation: one buffer per
     * connection instead of one per operation. */
    char result_buf[CONTENT_MAX_BYTES + 1];
};

struct mysql_store {
    struct kv_store base;
    struct ev_loop *loop;
    struct resolver *resolver; /* NULL: the host is an address, "localhost" or a socket */
    char *host, *user, *password, *database, *unix_socket;
    unsigned port;
    double timeout_s;
    int timeout_ms;
    char where[300], name[320];
    struct list_node queue; /* struct mysql_op waiting for a connection, FIFO */
    unsigned queued;
    unsigned nconns;
    unsigned ready_conns; /* IDLE or BUSY */
    bool ever_up;
    struct mysql_conn conns[];
};

static void conn_run(struct mysql_conn *c, bool start, int ready);
static void conn_fail(struct mysql_conn *c, const char *why);
static void conn_connect(struct mysql_conn *c);
static void dispatch(struct mysql_store *st);

/* STORE_OK, or the status and message for a name/content over the limits. */
static enum store_status check_text(const char *what, const void *s, size_t len,
                                    long max_chars, bool allow_empty, char *msg)
{
    if (len == 0 && !allow_empty) {
        snprintf(msg, MSG_MAX, "empty %s", what);
        return STORE_BAD_INPUT;
    }
    if (len > (size_t)max_chars * 4) {
        snprintf(msg, MSG_MAX, "%s longer than %ld characters", what, max_chars);
        return STORE_TOO_LARGE;
    }
    long n = utf8_chars(s, len);
    if (n < 0) {
        snprintf(msg, MSG_MAX, "%s is not valid UTF-8", what);
        return STORE_BAD_INPUT;
    }
    if (n > max_chars) {
        snprintf(msg, MSG_MAX, "%s longer than %ld characters", what, max_chars);
        return STORE_TOO_LARGE;
    }
    return STORE_OK;
}

/* ------------------------------------------------------------ results */

static void queue_push(struct mysql_store *st, struct mysql_op *op, bool first)
{
    store_op_hold(&op->op); /* the queue's hold */
    if (first)
        list_insert_tail(st->queue.next, &op->qlink); /* before the current head */
    else
        list_insert_tail(&st->queue, &op->qlink);
    st->queued++;
}

static void queue_remove(struct mysql_store *st, struct mysql_op *op)
{
    list_remove(&op->qlink);
    st->queued--;
    store_op_release(&op->op);
}

/* Ends op with its result: out of the queue or off its connection first. */
static void op_end(struct mysql_op *op, enum store_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void op_end(struct mysql_op *op, enum store_status status, const char *fmt, ...)
{
    char msg[MSG_MAX + 64] = "";
    va_list ap;

    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    store_op_hold(&op->op);
    if (list_linked(&op->qlink))
        queue_remove(op->st, op);
    if (op->status == STORE_OK && op->kind == OP_GET && status == STORE_OK)
        store_op_complete(&op->op, STORE_OK, "", op->out_data ? op->out_data : "", op->out_size);
    else
        store_op_complete(&op->op, status, msg, NULL, 0);
    store_op_release(&op->op);
}

static void fail_queue(struct mysql_store *st, enum store_status status, const char *msg)
{
    struct mysql_op *op;

    while ((op = list_first(&st->queue, struct mysql_op, qlink)))
        op_end(op, status, "%s", msg);
}

/* ------------------------------------------------------- error mapping */

/* Errors after which the session is unusable, its state unknown, or it
 * must be rebuilt (a dropped table is created again by a fresh session). */
static bool is_connection_error(unsigned err)
{
    if (err >= CR_MIN_ERROR && err <= CR_MAX_ERROR)
        return true; /* every client-side error: lost, gone, out of sync ... */
    switch (err) {
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
    case ER_NEW_ABORTING_CONNECTION:
    case ER_NEED_REPREPARE:
    case ER_NO_SUCH_TABLE:
        return true;
    default:
        return false;
    }
}

static enum store_status server_error_status(unsigned err)
{
    switch (err) {
    case ER_DATA_TOO_LONG:
        return STORE_TOO_LARGE;
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case ER_INVALID_CHARACTER_STRING:
        return STORE_BAD_INPUT;
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_STATEMENT_TIMEOUT:
        return STORE_TIMEOUT;
    case ER_LOCK_DEADLOCK:
    case ER_OPTION_PREVENTS_STATEMENT:
    case ER_READ_ONLY_MODE:
    case ER_CON_COUNT_ERROR:
    case ER_TOO_MANY_USER_CONNECTIONS:
        return STORE_UNAVAILABLE;
    default:
        return STORE_BAD_UPSTREAM; /* missing table, denied, ... */
    }
}

/* ------------------------------------------------ connection plumbing */

static void backoff_arm(struct mysql_conn *c, double delay_s)
{
    ev_timer_stop(c->st->loop, &c->timer);
    ev_timer_set(&c->timer, delay_s, 0.);
    ev_timer_start(c->st->loop, &c->timer);
}

/*
 * Watches fd for events.  ev_io_set() makes libev tell the kernel again
 * (an epoll_ctl() at the next iteration, even for the same fd and events),
 * so it is called only when the fd changes: a session's socket keeps its
 * registration across operations, and a new events mask alone is a
 * cheaper ev_io_modify().  conn_close() forgets the fd, so that a new
 * session whose socket got the same number is registered anew.
 */
static void conn_watch(struct mysql_conn *c, int fd, int events)
{
    struct ev_loop *loop = c->st->loop;

    ev_io_stop(loop, &c->io);
    if (c->io.fd != fd)
        ev_io_set(&c->io, fd, events);
    else if ((c->io.events & (EV_READ | EV_WRITE)) != events)
        ev_io_modify(&c->io, events);
    ev_io_start(loop, &c->io);
}

/* One _start() or _cont() of the current step; returns the wait mask. */
static int conn_call(struct mysql_conn *c, bool start, int ready)
{
    struct mysql_store *st = c->st;
    switch (c->step) {
    case STEP_CONNECT:
        return start ? mysql_real_connect_start(&c->r_mysql, c->my, c->connect_addr, st->user,
                                                st->password, st->database, st->port,
                                                st->unix_socket, 0)
                     : mysql_real_connect_cont(&c->r_mysql, c->my, ready);
    case STEP_SETUP_SQL:
        return start ? mysql_real_query_start(&c->r_int, c->my, setup_sql[c->setup_idx],
                                              strlen(setup_sql[c->setup_idx]))
                     : mysql_real_query_cont(&c->r_int, c->my, ready);
    case STEP_PREPARE_GET:
        return start ? mysql_stmt_prepare_start(&c->r_int, c->get_stmt, get_sql,
                                                sizeof get_sql - 1)
                     : mysql_stmt_prepare_cont(&c->r_int, c->get_stmt, ready);
    case STEP_PREPARE_PUT:
        return start ? mysql_stmt_prepare_start(&c->r_int, c->put_stmt, put_sql,
                                                sizeof put_sql - 1)
                     : mysql_stmt_prepare_cont(&c->r_int, c->put_stmt, ready);
    case STEP_EXECUTE:
        return start ? mysql_stmt_execute_start(&c->r_int, c->stmt)
                     : mysql_stmt_execute_cont(&c->r_int, c->stmt, ready);
    case STEP_STORE:
        return start ? mysql_stmt_store_result_start(&c->r_int, c->stmt)
                     : mysql_stmt_store_result_cont(&c->r_int, c->stmt, ready);
    case STEP_FETCH:
        return start ? mysql_stmt_fetch_start(&c->r_int, c->stmt)
                     : mysql_stmt_fetch_cont(&c->r_int, c->stmt, ready);
    case STEP_FREE_RESULT:
        return start ? mysql_stmt_free_result_start(&c->r_bool, c->stmt)
                     : mysql_stmt_free_result_cont(&c->r_bool, c->stmt, ready);
    case STEP_PING:
        return start ? mysql_ping_start(&c->r_int, c->my)
                     : mysql_ping_cont(&c->r_int, c->my, ready);
    case STEP_NONE:
        break;
    }
    return 0;
}

/* Closes the session.  A suspended call is first made to fail by shutting
 * the socket down, then wound down with _cont(), so the connector's
 * coroutine ends normally before mysql_close() frees it. */
static void conn_close(struct mysql_conn *c, bool graceful)
{
    struct ev_loop *loop = c->st->loop;
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, -1, EV_READ); /* its socket goes: see conn_watch() */
    ev_timer_stop(loop, &c->lib_timer);
    ev_timer_stop(loop, &c->timer);
    resolver_cancel(c->lookup);
    c->lookup = NULL;
    if (c->my) {
        if (c->suspended || !graceful) {
            my_socket fd = mysql_get_socket(c->my);
            if (fd >= 0)
                shutdown(fd, SHUT_RDWR);
        }
        for (int i = 0; c->suspended && i < ABORT_SPINS; i++) {
            int wait = conn_call(c, false, MYSQL_WAIT_READ | MYSQL_WAIT_WRITE |
                                               MYSQL_WAIT_TIMEOUT);
            if (!wait)
                c->suspended = false;
        }
        if (c->suspended)
            sf_error("mysql: connection %u: aborted call did not wind down", c->id);
        /* mysql_close detaches the statements: closing them after it
         * frees them without talking to the server. */
        mysql_close(c->my);
        c->my = NULL;
    }
    if (c->get_stmt)
        mysql_stmt_close(c->get_stmt);
    if (c->put_stmt)
        mysql_stmt_close(c->put_stmt);
    c->get_stmt = c->put_stmt = c->stmt = NULL;
    c->suspended = false;
    c->step = STEP_NONE;
    c->state = CONN_DOWN;
}

/* No connection is ready and the last connect failed: the breaker opens,
 * and what waits in the queue is answered now instead of at its deadline. */
static void store_set_down(struct mysql_store *st, const char *err)
{
    char msg[MSG_MAX + 32];

    store_breaker_failure(&st->base.be.breaker, ev_now(st->loop), err);
    snprintf(msg, sizeof msg, "mysql unavailable: %s", err);
    fail_queue(st, STORE_UNAVAILABLE, msg);
}

/* A connect or set-up step failed: close, maybe declare the store down,
 * and try again after the back-off. */
static void conn_setup_failed(struct mysql_conn *c, const char *err)
{
    struct mysql_store *st = c->st;
    char copy[MSG_MAX];
    snprintf(copy, sizeof copy, "%s", err); /* err may live in c->my */
    conn_close(c, false);
    c->failures++;
    sf_debug("mysql: connection %u: connect failed (%u): %s", c->id, c->failures, copy);
    if (st->ready_conns == 0)
        store_set_down(st, copy);
    backoff_arm(c, store_backoff_ms(c->failures) / 1000.);
}

/* A ready connection died: take it out of the pool and reopen it now. */
static void conn_lost(struct mysql_conn *c, const char *why)
{
    struct mysql_store *st = c->st;
    sf_debug("mysql: connection %u lost: %s", c->id, why);
    if (c->state == CONN_IDLE || c->state == CONN_BUSY)
        st->ready_conns--;
    conn_close(c, false);
    c->failures = 0;
    backoff_arm(c, 0.);
}

static void conn_idle(struct mysql_conn *c)
{
    struct ev_loop *loop = c->st->loop;
    my_socket fd = mysql_get_socket(c->my);
    c->state = CONN_IDLE;
    c->step = STEP_NONE;
    c->stmt = NULL;
    c->idle_iteration = ev_iteration(loop);
    ev_timer_stop(loop, &c->lib_timer);
    if (fd < 0) {
        ev_io_stop(loop, &c->io);
        conn_lost(c, "the client library lost its socket");
        return;
    }
    conn_watch(c, fd, EV_READ);
}

/* Takes the running operation off c (the connection's hold goes after
 * the connector has let go of its buffers: conn_lost closes first). */
static struct mysql_op *conn_take_op(struct mysql_conn *c)
{
    struct mysql_op *op = c->op;

    c->op = NULL;
    if (op)
        op->conn = NULL;
    return op;
}

/* Gives up on the current call, whatever the state. */
static void conn_fail(struct mysql_conn *c, const char *why)
{
    if (c->state == CONN_SETUP) {
        conn_setup_failed(c, why);
        return;
    }
    struct mysql_op *op = conn_take_op(c);
    conn_lost(c, why);
    if (op) {
        op_end(op, STORE_UNAVAILABLE, "mysql unavailable: %s", why);
        store_op_release(&op->op);
    }
}

static void conn_ready(struct mysql_conn *c)
{
    struct mysql_store *st = c->st;
    ev_timer_stop(st->loop, &c->timer);
    c->failures = 0;
    st->ready_conns++;
    if (!st->ever_up) {
        st->ever_up = true;
        if (!store_breaker_open(&st->base.be.breaker))
            sf_info("mysql: connected to %s (server %s)", st->where,
                    mysql_get_server_info(c->my));
    } else if (store_breaker_open(&st->base.be.breaker)) {
        stat_add(&st->base.be.stats->reconnects, 1);
    }
    store_breaker_success(&st->base.be.breaker, ev_now(st->loop));
    conn_idle(c);
    dispatch(st);
}

/* ---------------------------------------------------- operation steps */

/* The result goes out while c is still busy: a get's value is in c's
 * buffer, and nothing the callback starts may run on c before it has
 * returned. */
static void conn_op_done(struct mysql_conn *c, enum store_status status, const char *msg)
{
    struct mysql_op *op = conn_take_op(c);
    char copy[MSG_MAX];

    if (msg && *msg) {
        snprintf(copy, sizeof copy, "%s", msg); /* msg may be op->msg */
        op_end(op, status, "%s", copy);
    } else {
        op_end(op, status, NULL);
    }
    store_op_release(&op->op);
    conn_idle(c);
    dispatch(c->st);
}

/* The running op's library call failed: a server error ends the op and
 * keeps the connection; a connection error reopens the connection and
 * retries the op once. */
static void conn_op_failed(struct mysql_conn *c)
{
    struct mysql_store *st = c->st;
    unsigned err = c->stmt ? mysql_stmt_errno(c->stmt) : mysql_errno(c->my);
    const char *text = c->stmt ? mysql_stmt_error(c->stmt) : mysql_error(c->my);
    struct mysql_op *op = c->op;
    char msg[MSG_MAX];

    if (!is_connection_error(err)) {
        snprintf(msg, sizeof msg, "mysql error %u: %s", err, text);
        conn_op_done(c, server_error_status(err), msg);
        return;
    }
    snprintf(msg, sizeof msg, "%s", text);
    conn_take_op(c);
    conn_lost(c, msg);
    if (err == ER_NO_SUCH_TABLE) {
        /* The other sessions are as stale: let fresh ones recreate it. */
        for (unsigned i = 0; i < st->nconns; i++)
            if (st->conns[i].state == CONN_IDLE)
                conn_lost(&st->conns[i], msg);
    }
    if (!op->retried && !st->base.be.closing && store_op_running(&op->op)) {
        op->retried = true;
        queue_push(st, op, true); /* keeps its place: first in line */
        store_op_release(&op->op); /* the connection's hold */
        dispatch(st);
    } else {
        op_end(op, STORE_UNAVAILABLE, "mysql unavailable: %s", msg);
        store_op_release(&op->op);
    }
}

static void conn_start_op(struct mysql_conn *c, struct mysql_op *op)
{
    ev_io_stop(c->st->loop, &c->io); /* the idle watch */
    c->state = CONN_BUSY;
    c->op = op;
    op->conn = c;
    store_op_hold(&op->op); /* the connector reads its buffers */
    c->stmt = NULL;
    if (op->kind == OP_GET)
        op->result.buffer = c->result_buf;

    switch (op->kind) {
    case OP_PING:
        c->step = STEP_PING;
        break;
    case OP_GET:
    case OP_PUT:
        c->stmt = op->kind == OP_GET ? c->get_stmt : c->put_stmt;
        if (mysql_stmt_bind_param(c->stmt, op->param)) {
            conn_op_failed(c);
            return;
        }
        c->step = STEP_EXECUTE;
        break;
    }
    conn_run(c, true, 0);
}

static void conn_fetch_done(struct mysql_conn *c)
{
    struct mysql_op *op = c->op;
    if (c->r_int == MYSQL_NO_DATA) {
        op->status = STORE_NOT_FOUND;
        snprintf(op->msg, sizeof op->msg, "no such name");
    } else if (c->r_int == 0 || c->r_int == MYSQL_DATA_TRUNCATED) {
        op->status = STORE_OK;
        if (op->out_null) {
            op->out_data = "";
            op->out_size = 0;
        } else if (op->out_len <= CONTENT_MAX_BYTES) {
            op->out_data = c->result_buf;
            op->out_size = op->out_len;
        } else {
            /* The column is wider than ours: fetch it whole.  After
             * store_result this reads from memory, so it cannot block. */
            MYSQL_BIND big = { 0 };
            unsigned long len = 0;
            op->out_big = malloc(op->out_len);
            big.buffer_type = MYSQL_TYPE_STRING;
            big.buffer = op->out_big;
            big.buffer_length = op->out_len;
            big.length = &len;
            if (!op->out_big || mysql_stmt_fetch_column(c->stmt, &big, 0, 0)) {
                op->status = STORE_ERROR;
                snprintf(op->msg, sizeof op->msg, "mysql: cannot read a %lu-byte value",
                         op->out_len);
            } else {
                op->out_data = op->out_big;
                op->out_size = len < op->out_len ? len : op->out_len;
            }
        }
    } else {
        conn_op_failed(c);
        return;
    }
    c->step = STEP_FREE_RESULT;
    conn_run(c, true, 0);
}

/* The current library call completed: move the connection on. */
static void conn_step_done(struct mysql_conn *c)
{
    struct mysql_store *st = c->st;
    struct mysql_op *op = c->op;

    switch (c->step) {
    case STEP_CONNECT:
        if (!c->r_mysql) {
            conn_setup_failed(c, mysql_error(c->my));
            return;
        }
        c->setup_idx = 0;
        c->step = STEP_SETUP_SQL;
        conn_run(c, true, 0);
        return;
    case STEP_SETUP_SQL:
        if (c->r_int) {
            conn_setup_failed(c, mysql_error(c->my));
            return;
        }
        if (++c->setup_idx < sizeof setup_sql / sizeof setup_sql[0]) {
            conn_run(c, true, 0);
            return;
        }
        if (!(c->get_stmt = mysql_stmt_init(c->my)) || !(c->put_stmt = mysql_stmt_init(c->my))) {
            conn_setup_failed(c, "out of memory");
            return;
        }
        c->step = STEP_PREPARE_GET;
        conn_run(c, true, 0);
        return;
    case STEP_PREPARE_GET:
    case STEP_PREPARE_PUT: {
        MYSQL_STMT *s = c->step == STEP_PREPARE_GET ? c->get_stmt : c->put_stmt;
        if (c->r_int) {
            conn_setup_failed(c, mysql_stmt_error(s));
            return;
        }
        if (c->step == STEP_PREPARE_GET) {
            c->step = STEP_PREPARE_PUT;
            conn_run(c, true, 0);
        } else {
            conn_ready(c);
        }
        return;
    }
    case STEP_EXECUTE:
        if (c->r_int) {
            conn_op_failed(c);
        } else if (op->kind == OP_PUT) {
            conn_op_done(c, STORE_OK, NULL);
        } else {
            c->step = STEP_STORE;
            conn_run(c, true, 0);
        }
        return;
    case STEP_STORE:
        if (c->r_int || mysql_stmt_bind_result(c->stmt, &op->result)) {
            conn_op_failed(c);
            return;
        }
        c->step = STEP_FETCH;
        conn_run(c, true, 0);
        return;
    case STEP_FETCH:
        conn_fetch_done(c);
        return;
    case STEP_FREE_RESULT:
        if (c->r_bool) {
            conn_op_failed(c);
            return;
        }
        conn_op_done(c, op->status, op->msg);
        return;
    case STEP_PING:
        if (c->r_int)
            conn_op_failed(c);
        else
            conn_op_done(c, STORE_OK, NULL);
        return;
    case STEP_NONE:
        break;
    }
    (void)st;
}

/* Makes the current step's call and either waits for what it asks for or
 * moves on. */
static void conn_run(struct mysql_conn *c, bool start, int ready)
{
    struct ev_loop *loop = c->st->loop;
    int wait = conn_call(c, start, ready);
    if (!wait) {
        c->suspended = false;
        conn_step_done(c);
        return;
    }
    c->suspended = true;
    int events = 0;
    if (wait & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT))
        events |= EV_READ;
    if (wait & MYSQL_WAIT_WRITE)
        events |= EV_WRITE;
    ev_io_stop(loop, &c->io);
    if (events) {
        my_socket fd = mysql_get_socket(c->my);
        if (fd < 0) { /* never seen; without a socket nothing would wake us */
            conn_fail(c, "the client library lost its socket");
            return;
        }
        conn_watch(c, fd, events);
    }
    ev_timer_stop(loop, &c->lib_timer);
    if (wait & MYSQL_WAIT_TIMEOUT) {
        ev_timer_set(&c->lib_timer, mysql_get_timeout_value_ms(c->my) / 1000., 0.);
        ev_timer_start(loop, &c->lib_timer);
    }
}

/* ------------------------------------------------------ watcher glue */

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct mysql_conn *c = container_of(w, struct mysql_conn, io);
    if (c->state == CONN_IDLE) {
        /* The server spoke unasked: it is closing this session. */
        conn_lost(c, "server closed the connection");
        return;
    }
    int ready = 0;
    if (revents & EV_READ)
        ready |= MYSQL_WAIT_READ;
    if (revents & EV_WRITE)
        ready |= MYSQL_WAIT_WRITE;
    ev_io_stop(loop, w);
    ev_timer_stop(loop, &c->lib_timer);
    conn_run(c, false, ready);
}

static void conn_lib_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct mysql_conn *c = container_of(w, struct mysql_conn, lib_timer);
    ev_io_stop(loop, &c->io);
    conn_run(c, false, MYSQL_WAIT_TIMEOUT);
}

/* Back-off over (state DOWN): connect.  Set-up deadline (state SETUP). */
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct mysql_conn *c = container_of(w, struct mysql_conn, timer);
    if (c->state == CONN_DOWN) {
        conn_connect(c);
    } else if (c->state == CONN_SETUP) {
        char msg[MSG_MAX];
        snprintf(msg, sizeof msg, "no answer within %d ms while connecting", c->st->timeout_ms);
        conn_setup_failed(c, msg);
    }
}

/* The connector is given an address, never a name (it would resolve it
 * on the loop thread, blocking). */
static void conn_connect_to(struct mysql_conn *c, const char *addr);

static void on_resolved(void *arg, const char *error, const char *const *addrs, unsigned n)
{
    struct mysql_conn *c = arg;
    char why[MSG_MAX];

    c->lookup = NULL;
    if (error) {
        snprintf(why, sizeof why, "cannot resolve %s: %s", c->st->host, error);
        conn_setup_failed(c, why);
        return;
    }
    conn_connect_to(c, addrs[c->failures % n]); /* after a failure, the next address */
}

static void conn_connect(struct mysql_conn *c)
{
    struct mysql_store *st = c->st;

    c->state = CONN_SETUP;
    backoff_arm(c, st->timeout_s); /* the set-up deadline, the lookup included */
    if (!st->resolver) {
        conn_connect_to(c, st->host);
        return;
    }
    c->lookup = resolver_lookup(st->resolver, st->host, on_resolved, c);
    if (!c->lookup)
        conn_setup_failed(c, "cannot start a name lookup");
}

static void conn_connect_to(struct mysql_conn *c, const char *addr)
{
    struct mysql_store *st = c->st;
    unsigned connect_timeout_s = (unsigned)((st->timeout_ms + 999) / 1000);

    c->connect_addr = addr;
    c->my = mysql_init(NULL);
    if (!c->my || mysql_options(c->my, MYSQL_OPT_NONBLOCK, 0) ||
        mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4") ||
        mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout_s) ||
        mysql_options(c->my, MYSQL_OPT_LOCAL_INFILE, &(unsigned){ 0 })) {
        conn_setup_failed(c, "cannot initialise the client library (out of memory?)");
        return;
    }
    c->step = STEP_CONNECT;
    conn_run(c, true, 0);
}

/* --------------------------------------------------------- operations */

/* An idle session whose socket has something to read was closed by the
 * server (the idle watch would say so on the next loop iteration; a poll
 * now keeps a just-restarted server from failing the next operations).
 * A session that became idle in this loop iteration has just read its
 * server's answer: under load every operation finds one of those, and the
 * poll (a system call per operation) is spared. */
static bool conn_is_stale(struct mysql_conn *c)
{
    struct pollfd p = { .fd = mysql_get_socket(c->my), .events = POLLIN };

    if (c->idle_iteration == ev_iteration(c->st->loop))
        return false;
    return poll(&p, 1, 0) != 0;
}

static void dispatch(struct mysql_store *st)
{
    while (!list_empty(&st->queue) && !st->base.be.closing) {
        struct mysql_conn *idle = NULL;
        for (unsigned i = 0; i < st->nconns && !idle; i++) {
            struct mysql_conn *c = &st->conns[i];
            if (c->state != CONN_IDLE)
                continue;
            if (conn_is_stale(c))
                conn_lost(c, "server closed the connection");
            else
                idle = c;
        }
        if (!idle)
            return;
        struct mysql_op *op = list_first(&st->queue, struct mysql_op, qlink);
        store_op_hold(&op->op);
        queue_remove(st, op);
        conn_start_op(idle, op);
        store_op_release(&op->op);
    }
}

/* The deadline passed (the core answers STORE_TIMEOUT right after). */
static void on_op_deadline(struct store_op *sop)
{
    struct mysql_op *op = container_of(sop, struct mysql_op, op);

    if (op->conn) {
        /* The query is in flight: the session's state is unknown now. */
        struct mysql_conn *c = op->conn;

        conn_take_op(c);
        conn_lost(c, "query timed out");
        store_op_release(&op->op);
    } else if (list_linked(&op->qlink)) {
        queue_remove(op->st, op);
    }
}

static void free_op(struct store_op *sop)
{
    struct mysql_op *op = container_of(sop, struct mysql_op, op);

    free(op->out_big);
    free(op);
}

/* A started operation of extra bytes; NULL (answered) when out of memory. */
static struct mysql_op *op_new(struct mysql_store *st, enum op_kind kind, size_t extra,
                               store_cb cb, void *privdata)
{
    struct mysql_op *op = calloc(1, sizeof *op + extra);

    if (!op) {
        store_refuse(&st->base.be, cb, privdata, STORE_ERROR, "mysql: out of memory");
        return NULL;
    }
    op->st = st;
    op->kind = kind;
    op->op.on_deadline = on_op_deadline;
    store_op_start(&st->base.be, &op->op, cb, privdata, 0, free_op);
    return op;
}

/* Queues a started operation, or fails it while no connection can be made. */
static void op_submit(struct mysql_store *st, struct mysql_op *op)
{
    const struct store_breaker *b = &st->base.be.breaker;

    if (store_breaker_open(b) && st->ready_conns == 0)
        op_end(op, STORE_UNAVAILABLE, "mysql unavailable: %s", store_breaker_reason(b));
    else if (st->queued >= MYSQL_STORE_QUEUE_MAX)
        op_end(op, STORE_UNAVAILABLE, "mysql queue full (%d waiting)", MYSQL_STORE_QUEUE_MAX);
    else {
        queue_push(st, op, false);
        dispatch(st);
    }
}

static void bind_string(MYSQL_BIND *b, char *buf, unsigned long *len)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = buf;
    b->buffer_length = *len;
    b->length = len;
}

static void ms_get(struct mysql_store *st, const char *key, size_t key_len, store_cb cb,
                   void *privdata)
{
    struct kv_store *kv = &st->base;
    char msg[MSG_MAX];
    enum store_status s =
        check_text("name", key, key_len, MYSQL_STORE_NAME_MAX_CHARS, false, msg);

    if (s != STORE_OK) {
        store_refuse(&kv->be, cb, privdata, s, "%s", msg);
        return;
    }
    struct mysql_op *op = op_new(st, OP_GET, 0, cb, privdata);
    if (!op)
        return;
    memcpy(op->name, key, key_len);
    op->name_len = key_len;
    bind_string(&op->param[0], op->name, &op->name_len);
    memset(&op->result, 0, sizeof op->result);
    op->result.buffer_type = MYSQL_TYPE_STRING;
    op->result.buffer_length = CONTENT_MAX_BYTES + 1; /* the buffer: the connection's */
    op->result.length = &op->out_len;
    op->result.is_null = &op->out_null;
    op->result.error = &op->out_error;
    op_submit(st, op);
}

static void ms_put(struct mysql_store *st, const char *key, size_t key_len, const void *value,
                   size_t value_len, store_cb cb, void *privdata)
{
    struct kv_store *kv = &st->base;
    char msg[MSG_MAX];
    enum store_status s =
        check_text("name", key, key_len, MYSQL_STORE_NAME_MAX_CHARS, false, msg);

    if (s == STORE_OK)
        s = check_text("content", value, value_len, MYSQL_STORE_CONTENT_MAX_CHARS, true, msg);
    if (s != STORE_OK) {
        store_refuse(&kv->be, cb, privdata, s, "%s", msg);
        return;
    }
    struct mysql_op *op = op_new(st, OP_PUT, value_len, cb, privdata);
    if (!op)
        return;
    memcpy(op->name, key, key_len);
    op->name_len = key_len;
    if (value_len)
        memcpy(op->buf, value, value_len);
    op->value_len = value_len;
    bind_string(&op->param[0], op->name, &op->name_len);
    bind_string(&op->param[1], op->buf, &op->value_len);
    op_submit(st, op);
}

static void ms_start(struct kv_store *kv, const struct kv_request *req, store_cb cb,
                     void *privdata)
{
    struct mysql_store *st = (struct mysql_store *)kv;
    struct mysql_op *op;

    switch (req->verb) {
    case KV_GET:
        ms_get(st, req->key, req->key_len, cb, privdata);
        return;
    case KV_PUT:
        ms_put(st, req->key, req->key_len, req->value, req->value_len, cb, privdata);
        return;
    case KV_PING:
        op = op_new(st, OP_PING, 0, cb, privdata);
        if (op)
            op_submit(st, op);
        return;
    }
}

/* After the core answered everything: close the sessions (winding down
 * a suspended call, which may still read its operation's buffers), then
 * let go of the operations and free. */
static void destroy(struct store_backend *be)
{
    struct mysql_store *st = container_of(be, struct mysql_store, base.be);
    struct mysql_op *op;

    for (unsigned i = 0; i < st->nconns; i++) {
        struct mysql_conn *c = &st->conns[i];

        op = conn_take_op(c);
        conn_close(c, c->state == CONN_IDLE);
        if (op)
            store_op_release(&op->op);
    }
    while ((op = list_first(&st->queue, struct mysql_op, qlink)))
        queue_remove(st, op);
    free(st->host);
    free(st->user);
    free(st->password);
    free(st->database);
    free(st->unix_socket);
    free(st);
}

static const struct kv_ops mysql_kv_ops = {ms_start, destroy};

/* ------------------------------------------------------------ set-up */

int mysql_config_from_env(struct mysql_config *cfg)
{
    const char *port = setting_env("MYSQL_PORT");
    char why[SETTING_WHY_MAX];

    memset(cfg, 0, sizeof *cfg);
    cfg->host = setting_env("MYSQL_HOST");
    cfg->port = 3306;
    if (port && setting_port("MYSQL_PORT", port, &cfg->port, why) < 0) {
        sf_error("%s", why);
        return -1;
    }
    cfg->database = getenv("MYSQL_DATABASE");
    cfg->user = getenv("MYSQL_USER");
    cfg->password = getenv("MYSQL_PASSWORD");
    cfg->pool_size = MYSQL_STORE_DEFAULT_POOL;
    cfg->timeout_ms = MYSQL_STORE_DEFAULT_TIMEOUT_MS;
    return cfg->host ? 1 : 0;
}

static bool dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

struct kv_store *mysql_store_new(struct ev_loop *loop, struct resolver *resolver,
                                 const struct mysql_config *cfg)
{
    unsigned n = cfg->pool_size > 0 ? (unsigned)cfg->pool_size : MYSQL_STORE_DEFAULT_POOL;
    if (n > MYSQL_STORE_POOL_MAX)
        n = MYSQL_STORE_POOL_MAX;
    struct mysql_store *st = calloc(1, sizeof *st + n * sizeof st->conns[0]);
    if (!st)
        return NULL;
    st->base.ops = &mysql_kv_ops;
    st->loop = loop;
    st->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : MYSQL_STORE_DEFAULT_TIMEOUT_MS;
    st->timeout_s = st->timeout_ms / 1000.;
    st->port = cfg->port > 0 && cfg->port <= 65535 ? (unsigned)cfg->port : 3306;
    list_init(&st->queue);
    const char *host = cfg->host && *cfg->host ? cfg->host : "localhost";
    bool ok = dup_opt(&st->user, cfg->user) && dup_opt(&st->password, cfg->password) &&
              dup_opt(&st->database, cfg->database);
    if (host[0] == '/') {
        /* A socket path: the connector takes it with host "localhost". */
        ok = ok && dup_opt(&st->host, "localhost") && dup_opt(&st->unix_socket, host);
        snprintf(st->where, sizeof st->where, "unix:%s", host);
    } else {
        /* "localhost" means the default socket to the connector: kept as it is */
        ok = ok && dup_opt(&st->host, host);
        if (strcmp(host, "localhost") && !resolver_is_numeric(host))
            st->resolver = resolver;
        snprintf(st->where, sizeof st->where, "%s:%u", host, st->port);
    }
    if (ok && strcmp(host, "localhost") && host[0] != '/' && !resolver_is_numeric(host) &&
        !resolver) {
        sf_error("mysql: %s is a host name and there is no resolver", host);
        ok = false;
    }
    if (!ok) {
        free(st->host);
        free(st->user);
        free(st->password);
        free(st->database);
        free(st->unix_socket);
        free(st);
        return NULL;
    }
    snprintf(st->name, sizeof st->name, "mysql %s", st->where);
    store_backend_init(&st->base.be, loop, "mysql", st->where, st->timeout_ms);
    store_breaker_init(&st->base.be.breaker, st->name, 1, true);
    st->nconns = n;
    for (unsigned i = 0; i < n; i++) {
        struct mysql_conn *c = &st->conns[i];
        c->st = st;
        c->id = i;
        c->state = CONN_DOWN;
        ev_io_init(&c->io, conn_io_cb, -1, EV_READ);
        ev_timer_init(&c->lib_timer, conn_lib_timer_cb, 0., 0.);
        ev_timer_init(&c->timer, conn_timer_cb, 0., 0.);
        /* Connect from the loop, not from here: the caller may not run
         * the loop yet, and the set-up deadline should start with it. */
        backoff_arm(c, 0.);
    }
    return &st->base;
}
