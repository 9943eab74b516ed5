/*
 * store/mysql.h — the lisas shim: a key-value store on a MySQL/MariaDB
 * table, driven by MariaDB Connector/C's non-blocking API on the loop
 * thread (no worker threads).
 *
 * The table is
 *
 *   lisa(name VARCHAR(32) NOT NULL PRIMARY KEY, content VARCHAR(1000))
 *   DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin
 *
 * and is created when missing after every (re)connect.  utf8mb4_nopad_bin
 * makes names exact keys: case-, accent- and trailing-space-sensitive
 * (the PAD SPACE collations such as utf8mb4_bin would make "a" and "a "
 * one row, so one name's write would overwrite another's).  A table that
 * already exists is used as it is; convert an old one with
 *   ALTER TABLE lisa CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
 *
 * What the store promises, beyond store/kv.h:
 *   - Values only ever reach the server as prepared-statement parameters,
 *     never inside SQL text.  The session runs with utf8mb4 and
 *     sql_mode=STRICT_ALL_TABLES, so the server refuses instead of
 *     truncating.
 *   - Limits are checked before any SQL, counting characters the way
 *     MariaDB counts them for utf8mb4 (Unicode code points): a name of
 *     more than 32 or a content of more than 1000 characters is
 *     STORE_TOO_LARGE; an empty name or input that is not valid UTF-8
 *     (overlong forms, surrogates, > U+10FFFF included) is STORE_BAD_INPUT.
 *   - get: STORE_OK with the content (a NULL column reads as empty) or
 *     STORE_NOT_FOUND.  put: INSERT ... ON DUPLICATE KEY UPDATE, STORE_OK
 *     once the server acknowledged it (autocommit).  ping: COM_PING.
 *   - pool_size connections (default 4) serve a FIFO queue of at most
 *     MYSQL_STORE_QUEUE_MAX waiting operations; a full queue answers
 *     STORE_UNAVAILABLE.  Every operation ends within timeout_ms of its
 *     start (queueing included) with STORE_TIMEOUT at the latest; a
 *     connection whose query timed out is closed and reopened, because
 *     its protocol state is unknown.
 *   - Connections that break are reopened (at once, then with the one
 *     back-off of store/breaker.h while the server stays away).  While no
 *     connection can be made, the breaker is open and operations fail at
 *     once with STORE_UNAVAILABLE "mysql unavailable: <error>".  An
 *     operation whose connection broke under it is retried once on a fresh
 *     connection (all three operations are idempotent).  Going down and
 *     coming back are logged once each, not per retry.
 *   - Delivery and deadlines are the operation core's (store/op.h).
 *
 * Host names are looked up before every connect, off the loop thread
 * (store/resolver.h): a name that does not resolve at start-up is one more
 * failed connect, and a server that moves to another address is found at
 * the next reconnect.
 */
#ifndef SPRINGFIELD_STORE_MYSQL_H
#define SPRINGFIELD_STORE_MYSQL_H

#include <stddef.h>

#include <ev.h>

#include "store/kv.h"

#define MYSQL_STORE_NAME_MAX_CHARS 32
#define MYSQL_STORE_CONTENT_MAX_CHARS 1000
#define MYSQL_STORE_QUEUE_MAX 1024
#define MYSQL_STORE_DEFAULT_POOL 4
#define MYSQL_STORE_POOL_MAX 64
#define MYSQL_STORE_DEFAULT_TIMEOUT_MS 5000

struct mysql_config {
    const char *host;     /* IP, host name, "localhost" or a unix socket path ("/...") */
    int port;             /* 0: 3306 */
    const char *user;     /* NULL: the connector's default (login name) */
    const char *password; /* NULL: none */
    const char *database; /* NULL: none (then CREATE TABLE fails: set it) */
    int pool_size;        /* <= 0: MYSQL_STORE_DEFAULT_POOL (at most MYSQL_STORE_POOL_MAX) */
    int timeout_ms;       /* per operation and per connect; <= 0: default */
};

/* Fills cfg from MYSQL_HOST, MYSQL_PORT (default 3306), MYSQL_DATABASE,
 * MYSQL_USER, MYSQL_PASSWORD (the pointers point into the environment),
 * with default pool_size and timeout_ms.  Returns 1 when MYSQL_HOST is
 * set (non-empty), else 0. */
int mysql_config_from_env(struct mysql_config *cfg);

/* Copies cfg and starts connecting in the background (a host name is
 * looked up with resolver, which must outlive the store); NULL when out of
 * memory.  A server that is down, or a name that does not resolve, is not
 * an error here: the operations answer STORE_UNAVAILABLE until it comes up. */
struct resolver;

struct kv_store *mysql_store_new(struct ev_loop *loop, struct resolver *resolver,
                                 const struct mysql_config *cfg);


#endif
