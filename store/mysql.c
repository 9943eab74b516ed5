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
 * Operations own a timer that runs from submission.  Results are never
 * delivered from inside the state machine: op_finish() records the result
 * and re-arms the timer at 0, and the callback runs from that timer.  So
 * a callback never runs before the starting call returns, never runs
 * twice, and user code never re-enters half-updated pool state.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "store/mysql.h"

#include "common/setting.h"
#include "common/utf8.h"

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

#include "common/log.h"

#define POOL_MAX 64
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define MSG_MAX 256
/* utf8mb4: at most 4 bytes a character. */
#define NAME_MAX_BYTES (MYSQL_STORE_NAME_MAX_CHARS * 4)
#define CONTENT_MAX_BYTES (MYSQL_STORE_CONTENT_MAX_CHARS * 4)
/* _cont() calls made to wind down an aborted call before giving up on it. */
#define ABORT_SPINS 16

static const char *const setup_sql[] = {
    "SET SESSION sql_mode='STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', autocommit=1",
    "CREATE TABLE IF NOT EXISTS lisa ("
    "name VARCHAR(32) NOT NULL PRIMARY KEY, content VARCHAR(1000)"
    ") DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
};
static const char get_sql[] = "SELECT content FROM lisa WHERE name=?";
static const char put_sql[] = "INSERT INTO lisa (name, content) VALUES (?, ?) "
                              "ON DUPLICATE KEY UPDATE content=VALUES(content)";

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

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
    struct mysql_op *prev, *next; /* in st->queue or st->done */
    struct mysql_store *st;
    struct mysql_conn *conn; /* while running */
    enum op_kind kind;
    store_cb cb;
    void *privdata;
    ev_timer timer; /* deadline; then, at 0, the deferred delivery */
    bool finished;  /* status/msg decided, waiting for delivery */
    bool retried;
    enum store_status status;
    char msg[MSG_MAX];
    MYSQL_BIND param[2];
    unsigned long name_len, value_len;
    MYSQL_BIND result;
    unsigned long out_len;
    my_bool out_null, out_error;
    char *out_big; /* a value longer than buf (a wider column than ours) */
    const char *out_data;
    size_t out_size;
    char name[NAME_MAX_BYTES];
    char buf[]; /* put: the content; get: the result buffer */
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
    ev_io io;
    ev_timer lib_timer; /* a timeout the library asked for */
    ev_timer timer;     /* set-up deadline, or the back-off before connecting */
    MYSQL *r_mysql;     /* results of the last library call */
    int r_int;
    my_bool r_bool;
};

struct op_list {
    struct mysql_op *head, *tail;
    unsigned count;
};

struct mysql_store {
    struct kv_store base;
    struct ev_loop *loop;
    char *host, *user, *password, *database, *unix_socket;
    unsigned port;
    double timeout_s;
    int timeout_ms;
    char where[300];
    struct op_list queue; /* waiting for a connection, FIFO */
    struct op_list done;  /* finished, waiting for delivery */
    unsigned nconns;
    unsigned ready_conns; /* IDLE or BUSY */
    bool down;            /* the last connect failed and none is ready */
    bool ever_up;
    bool closing;
    char last_error[MSG_MAX];
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

/* ----------------------------------------------------------- op lists */

static void list_push_tail(struct op_list *l, struct mysql_op *op)
{
    op->next = NULL;
    op->prev = l->tail;
    if (l->tail)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    l->count++;
}

static void list_push_head(struct op_list *l, struct mysql_op *op)
{
    op->prev = NULL;
    op->next = l->head;
    if (l->head)
        l->head->prev = op;
    else
        l->tail = op;
    l->head = op;
    l->count++;
}

static void list_remove(struct op_list *l, struct mysql_op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
    l->count--;
}

static bool op_in_queue(const struct mysql_store *st, const struct mysql_op *op)
{
    return op->prev || op->next || st->queue.head == op;
}

/* ------------------------------------------------------------ results */

static void op_free(struct mysql_op *op)
{
    free(op->out_big);
    free(op);
}

static void op_deliver(struct mysql_op *op)
{
    struct store_result res = {
        .status = op->status,
        .message = op->status == STORE_OK ? "" : op->msg,
        .data = NULL,
        .len = 0,
    };
    if (op->status == STORE_OK && op->kind == OP_GET) {
        res.data = op->out_data ? op->out_data : "";
        res.len = op->out_size;
    }
    op->cb(op->privdata, &res);
    op_free(op);
}

/* Records the result of an op that is in no list and on no connection,
 * and schedules its delivery from the loop. */
static void op_finish(struct mysql_op *op, enum store_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void op_finish(struct mysql_op *op, enum store_status status, const char *fmt, ...)
{
    struct mysql_store *st = op->st;
    op->finished = true;
    op->status = status;
    op->msg[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(op->msg, sizeof op->msg, fmt, ap);
        va_end(ap);
    }
    list_push_tail(&st->done, op);
    ev_timer_stop(st->loop, &op->timer);
    ev_timer_set(&op->timer, 0., 0.);
    ev_timer_start(st->loop, &op->timer);
}

static void fail_queue(struct mysql_store *st, enum store_status status, const char *msg)
{
    struct mysql_op *op;
    while ((op = st->queue.head)) {
        list_remove(&st->queue, op);
        op_finish(op, status, "%s", msg);
    }
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

/* One _start() or _cont() of the current step; returns the wait mask. */
static int conn_call(struct mysql_conn *c, bool start, int ready)
{
    struct mysql_store *st = c->st;
    switch (c->step) {
    case STEP_CONNECT:
        return start ? mysql_real_connect_start(&c->r_mysql, c->my, st->host, st->user,
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
    ev_timer_stop(loop, &c->lib_timer);
    ev_timer_stop(loop, &c->timer);
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

static void store_set_down(struct mysql_store *st, const char *err)
{
    snprintf(st->last_error, sizeof st->last_error, "%s", err);
    if (!st->down) {
        st->down = true;
        sf_warn("mysql %s unavailable: %s (retrying with back-off)", st->where, err);
    }
    char msg[MSG_MAX + 32];
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
    unsigned shift = c->failures - 1 < 5 ? c->failures - 1 : 5;
    unsigned delay_ms = BACKOFF_MIN_MS << shift;
    if (delay_ms > BACKOFF_MAX_MS)
        delay_ms = BACKOFF_MAX_MS;
    backoff_arm(c, delay_ms / 1000.);
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
    ev_timer_stop(loop, &c->lib_timer);
    ev_io_stop(loop, &c->io);
    if (fd < 0) {
        conn_lost(c, "the client library lost its socket");
        return;
    }
    ev_io_set(&c->io, fd, EV_READ);
    ev_io_start(loop, &c->io);
}

/* Gives up on the current call, whatever the state. */
static void conn_fail(struct mysql_conn *c, const char *why)
{
    if (c->state == CONN_SETUP) {
        conn_setup_failed(c, why);
        return;
    }
    struct mysql_op *op = c->op;
    c->op = NULL;
    if (op)
        op->conn = NULL;
    conn_lost(c, why);
    if (op)
        op_finish(op, STORE_UNAVAILABLE, "mysql unavailable: %s", why);
}

static void conn_ready(struct mysql_conn *c)
{
    struct mysql_store *st = c->st;
    ev_timer_stop(st->loop, &c->timer);
    c->failures = 0;
    st->ready_conns++;
    if (!st->ever_up) {
        st->ever_up = true;
        sf_info("mysql: connected to %s (server %s)", st->where, mysql_get_server_info(c->my));
    } else if (st->down) {
        sf_info("mysql: %s is back", st->where);
    }
    st->down = false;
    conn_idle(c);
    dispatch(st);
}

/* ---------------------------------------------------- operation steps */

static void conn_op_done(struct mysql_conn *c, enum store_status status, const char *msg)
{
    struct mysql_op *op = c->op;
    char copy[MSG_MAX];
    snprintf(copy, sizeof copy, "%s", msg ? msg : ""); /* msg may be op->msg */
    c->op = NULL;
    op->conn = NULL;
    op_finish(op, status, "%s", copy);
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
    c->op = NULL;
    op->conn = NULL;
    conn_lost(c, msg);
    if (err == ER_NO_SUCH_TABLE) {
        /* The other sessions are as stale: let fresh ones recreate it. */
        for (unsigned i = 0; i < st->nconns; i++)
            if (st->conns[i].state == CONN_IDLE)
                conn_lost(&st->conns[i], msg);
    }
    if (!op->retried && !st->closing) {
        op->retried = true;
        list_push_head(&st->queue, op); /* keeps its place: first in line */
        dispatch(st);
    } else {
        op_finish(op, STORE_UNAVAILABLE, "mysql unavailable: %s", msg);
    }
}

static void conn_start_op(struct mysql_conn *c, struct mysql_op *op)
{
    ev_io_stop(c->st->loop, &c->io); /* the idle watch */
    c->state = CONN_BUSY;
    c->op = op;
    op->conn = c;
    c->stmt = NULL;

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
            op->out_data = op->buf;
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
        ev_io_set(&c->io, fd, events);
        ev_io_start(loop, &c->io);
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

static void conn_connect(struct mysql_conn *c)
{
    struct mysql_store *st = c->st;
    unsigned connect_timeout_s = (unsigned)((st->timeout_ms + 999) / 1000);

    c->state = CONN_SETUP;
    c->my = mysql_init(NULL);
    if (!c->my || mysql_options(c->my, MYSQL_OPT_NONBLOCK, 0) ||
        mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4") ||
        mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout_s) ||
        mysql_options(c->my, MYSQL_OPT_LOCAL_INFILE, &(unsigned){ 0 })) {
        conn_setup_failed(c, "cannot initialise the client library (out of memory?)");
        return;
    }
    backoff_arm(c, st->timeout_s); /* the set-up deadline */
    c->step = STEP_CONNECT;
    conn_run(c, true, 0);
}

/* --------------------------------------------------------- operations */

/* An idle session whose socket has something to read was closed by the
 * server (the idle watch would say so on the next loop iteration; a poll
 * now keeps a just-restarted server from failing the next operations). */
static bool conn_is_stale(struct mysql_conn *c)
{
    struct pollfd p = { .fd = mysql_get_socket(c->my), .events = POLLIN };
    return poll(&p, 1, 0) != 0;
}

static void dispatch(struct mysql_store *st)
{
    while (st->queue.head && !st->closing) {
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
        struct mysql_op *op = st->queue.head;
        list_remove(&st->queue, op);
        conn_start_op(idle, op);
    }
}

static void op_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct mysql_op *op = container_of(w, struct mysql_op, timer);
    struct mysql_store *st = op->st;

    if (op->finished) {
        list_remove(&st->done, op);
        op_deliver(op);
        return;
    }
    if (op->conn) {
        /* The query is in flight: the session's state is unknown now. */
        struct mysql_conn *c = op->conn;
        c->op = NULL;
        op->conn = NULL;
        conn_lost(c, "query timed out");
    } else if (op_in_queue(st, op)) {
        list_remove(&st->queue, op);
    }
    op_finish(op, STORE_TIMEOUT, "mysql did not answer within %d ms", st->timeout_ms);
}

/* Validates nothing; allocates, arms the deadline, and queues or fails. */
static void op_submit(struct mysql_store *st, struct mysql_op *op)
{
    ev_timer_init(&op->timer, op_timer_cb, st->timeout_s, 0.);
    ev_timer_start(st->loop, &op->timer);
    if (st->down && st->ready_conns == 0) {
        op_finish(op, STORE_UNAVAILABLE, "mysql unavailable: %s", st->last_error);
    } else if (st->queue.count >= MYSQL_STORE_QUEUE_MAX) {
        op_finish(op, STORE_UNAVAILABLE, "mysql queue full (%d waiting)", MYSQL_STORE_QUEUE_MAX);
    } else {
        list_push_tail(&st->queue, op);
        dispatch(st);
    }
}

static struct mysql_op *op_new(struct mysql_store *st, enum op_kind kind, size_t extra,
                               store_cb cb, void *privdata)
{
    struct mysql_op *op = calloc(1, sizeof *op + extra);
    if (!op)
        return NULL;
    op->st = st;
    op->kind = kind;
    op->cb = cb;
    op->privdata = privdata;
    return op;
}

static void answer_now(store_cb cb, void *privdata, enum store_status status,
                       const char *msg)
{
    struct store_result res = { .status = status, .message = msg, .data = NULL, .len = 0 };
    cb(privdata, &res);
}

static void bind_string(MYSQL_BIND *b, char *buf, unsigned long *len)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = buf;
    b->buffer_length = *len;
    b->length = len;
}

static void ms_get(struct kv_store *kv, const char *key, size_t key_len, store_cb cb,
                   void *privdata)
{
    struct mysql_store *st = (struct mysql_store *)kv;
    if (st->closing) {
        answer_now(cb, privdata, STORE_UNAVAILABLE, "mysql store is shutting down");
        return;
    }
    char msg[MSG_MAX];
    enum store_status s =
        check_text("name", key, key_len, MYSQL_STORE_NAME_MAX_CHARS, false, msg);
    struct mysql_op *op = op_new(st, OP_GET, CONTENT_MAX_BYTES + 1, cb, privdata);
    if (!op) {
        answer_now(cb, privdata, STORE_ERROR, "out of memory");
        return;
    }
    if (s != STORE_OK) {
        ev_timer_init(&op->timer, op_timer_cb, 0., 0.);
        op_finish(op, s, "%s", msg);
        return;
    }
    memcpy(op->name, key, key_len);
    op->name_len = key_len;
    bind_string(&op->param[0], op->name, &op->name_len);
    memset(&op->result, 0, sizeof op->result);
    op->result.buffer_type = MYSQL_TYPE_STRING;
    op->result.buffer = op->buf;
    op->result.buffer_length = CONTENT_MAX_BYTES + 1;
    op->result.length = &op->out_len;
    op->result.is_null = &op->out_null;
    op->result.error = &op->out_error;
    op_submit(st, op);
}

static void ms_put(struct kv_store *kv, const char *key, size_t key_len, const void *value,
                   size_t value_len, store_cb cb, void *privdata)
{
    struct mysql_store *st = (struct mysql_store *)kv;
    if (st->closing) {
        answer_now(cb, privdata, STORE_UNAVAILABLE, "mysql store is shutting down");
        return;
    }
    char msg[MSG_MAX];
    enum store_status s =
        check_text("name", key, key_len, MYSQL_STORE_NAME_MAX_CHARS, false, msg);
    if (s == STORE_OK)
        s = check_text("content", value, value_len, MYSQL_STORE_CONTENT_MAX_CHARS, true, msg);
    struct mysql_op *op = op_new(st, OP_PUT, s == STORE_OK ? value_len : 0, cb, privdata);
    if (!op) {
        answer_now(cb, privdata, STORE_ERROR, "out of memory");
        return;
    }
    if (s != STORE_OK) {
        ev_timer_init(&op->timer, op_timer_cb, 0., 0.);
        op_finish(op, s, "%s", msg);
        return;
    }
    memcpy(op->name, key, key_len);
    op->name_len = key_len;
    if (value_len)
        memcpy(op->buf, value, value_len);
    op->value_len = value_len;
    bind_string(&op->param[0], op->name, &op->name_len);
    bind_string(&op->param[1], op->buf, &op->value_len);
    op_submit(st, op);
}

static void ms_ping(struct kv_store *kv, store_cb cb, void *privdata)
{
    struct mysql_store *st = (struct mysql_store *)kv;
    if (st->closing) {
        answer_now(cb, privdata, STORE_UNAVAILABLE, "mysql store is shutting down");
        return;
    }
    struct mysql_op *op = op_new(st, OP_PING, 0, cb, privdata);
    if (!op) {
        answer_now(cb, privdata, STORE_ERROR, "out of memory");
        return;
    }
    op_submit(st, op);
}

static void ms_free(struct kv_store *kv)
{
    struct mysql_store *st = (struct mysql_store *)kv;
    st->closing = true;
    for (unsigned i = 0; i < st->nconns; i++) {
        struct mysql_conn *c = &st->conns[i];
        struct mysql_op *op = c->op;
        if (op) {
            c->op = NULL;
            op->conn = NULL;
            op_finish(op, STORE_UNAVAILABLE, "mysql store is shutting down");
        }
        conn_close(c, c->state == CONN_IDLE);
    }
    fail_queue(st, STORE_UNAVAILABLE, "mysql store is shutting down");
    struct mysql_op *op;
    while ((op = st->done.head)) {
        list_remove(&st->done, op);
        ev_timer_stop(st->loop, &op->timer);
        op_deliver(op);
    }
    free(st->host);
    free(st->user);
    free(st->password);
    free(st->database);
    free(st->unix_socket);
    free(st);
}

static const struct kv_ops mysql_kv_ops = {
    .get = ms_get,
    .put = ms_put,
    .ping = ms_ping,
    .free = ms_free,
};

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

/*
 * The connector resolves a host name with a blocking getaddrinfo() inside
 * mysql_real_connect_start, on the loop thread, at every (re)connect.  So
 * a name is resolved once here, at start-up before anything is served,
 * and the connector only ever sees the address.  Writes the address into
 * out; -1 (logged) when the name does not resolve.
 */
static int resolve_host(const char *host, char *out, size_t size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    unsigned char probe[sizeof(struct in6_addr)];
    int rc;

    if (!strcmp(host, "localhost") || inet_pton(AF_INET, host, probe) == 1 ||
        inet_pton(AF_INET6, host, probe) == 1) {
        snprintf(out, size, "%s", host);
        return 0;
    }
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        sf_error("mysql: cannot resolve MYSQL_HOST %s: %s", host, gai_strerror(rc));
        return -1;
    }
    rc = getnameinfo(res->ai_addr, res->ai_addrlen, out, (socklen_t)size, NULL, 0,
                     NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rc != 0) {
        sf_error("mysql: cannot use the address of %s: %s", host, gai_strerror(rc));
        return -1;
    }
    sf_info("mysql: %s resolved to %s at start-up (not resolved again while running)", host,
            out);
    return 0;
}

struct kv_store *mysql_store_new(struct ev_loop *loop, const struct mysql_config *cfg)
{
    unsigned n = cfg->pool_size > 0 ? (unsigned)cfg->pool_size : MYSQL_STORE_DEFAULT_POOL;
    if (n > POOL_MAX)
        n = POOL_MAX;
    struct mysql_store *st = calloc(1, sizeof *st + n * sizeof st->conns[0]);
    if (!st)
        return NULL;
    st->base.ops = &mysql_kv_ops;
    st->base.backend = "mysql";
    st->base.where = st->where;
    st->loop = loop;
    st->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : MYSQL_STORE_DEFAULT_TIMEOUT_MS;
    st->timeout_s = st->timeout_ms / 1000.;
    st->port = cfg->port > 0 && cfg->port <= 65535 ? (unsigned)cfg->port : 3306;
    const char *host = cfg->host && *cfg->host ? cfg->host : "localhost";
    bool ok = dup_opt(&st->user, cfg->user) && dup_opt(&st->password, cfg->password) &&
              dup_opt(&st->database, cfg->database);
    if (host[0] == '/') {
        /* A socket path: the connector takes it with host "localhost". */
        ok = ok && dup_opt(&st->host, "localhost") && dup_opt(&st->unix_socket, host);
        snprintf(st->where, sizeof st->where, "unix:%s", host);
    } else {
        char addr[INET6_ADDRSTRLEN + 1];

        ok = ok && resolve_host(host, addr, sizeof addr) == 0 && dup_opt(&st->host, addr);
        snprintf(st->where, sizeof st->where, "%s:%u", host, st->port);
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
    snprintf(st->last_error, sizeof st->last_error, "not connected yet");
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
