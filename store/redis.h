/*
 * store/redis.h — the Redis shim (marges): struct kv_store over hiredis's
 * asynchronous API, driven by the caller's libev loop through hiredis's own
 * libev adapter.  Nothing here blocks the loop thread.
 *
 * What it promises, beyond the shim contract of store/kv.h (delivery,
 * deadlines and the breaker are the operation core's, store/op.h):
 *
 *  - get = GET key, put = SET key value, ping = PING; keys and values are
 *    binary safe (NUL bytes included).  A nil reply is STORE_NOT_FOUND;
 *    put is STORE_OK only on the "+OK" reply.
 *  - One connection per store.  It is opened at start-up without blocking
 *    (a host name is looked up before every connect by store/resolver.h,
 *    off the loop thread), followed by AUTH (when a password is set),
 *    SELECT (when db != 0) and PING; the store counts as connected only
 *    once PING has answered.
 *  - Commands go out as they come, pipelined: none waits for the answer
 *    to the one before, and those of one loop iteration leave in one
 *    write (under load, dozens of requests' commands per write).
 *  - When the connection fails, drops, or stops answering (an operation
 *    times out and nothing at all came back since it was sent), the
 *    breaker opens and the connection is re-established with the one
 *    back-off (store/breaker.h: 100 ms doubling to 2 s).
 *  - While not connected every operation fails at once with
 *    STORE_UNAVAILABLE ("redis unavailable: <reason>"); nothing is queued.
 *    Operations in flight when the connection is lost get STORE_UNAVAILABLE.
 *  - Every operation has a deadline (timeout_ms): when it passes, the
 *    callback gets STORE_TIMEOUT; a late reply is then ignored.
 *  - Error replies: LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, OOM
 *    map to STORE_UNAVAILABLE, any other error or an unexpected reply type
 *    to STORE_BAD_UPSTREAM, with the server's text in the message.
 *  - free() closes the connection; every pending operation gets its
 *    callback (STORE_UNAVAILABLE) first.  It may be called from inside a
 *    store callback (it then happens once the callback has returned).
 *
 * The process must ignore SIGPIPE (hiredis writes with plain write(2)).
 */
#ifndef SPRINGFIELD_STORE_REDIS_H
#define SPRINGFIELD_STORE_REDIS_H

#include <ev.h>

#include "store/kv.h"

struct redis_config {
    const char *host;       /* IP address, host name, or a unix socket path ("/...") */
    int port;               /* TCP port (ignored for a unix socket) */
    const char *password;   /* NULL or "": no AUTH */
    int db;                 /* SELECT db when not 0 */
    int timeout_ms;         /* per-operation deadline; <= 0: 5000 */
    int connect_timeout_ms; /* connect + handshake deadline; <= 0: timeout_ms */
};

/* Fills cfg from REDIS_HOST, REDIS_PORT (default 6379), REDIS_PASSWORD and
 * REDIS_DB (default 0); timeout_ms and connect_timeout_ms are set to 5000,
 * for the caller to override.  The strings point into the environment.
 * Returns 1 when REDIS_HOST is set and not empty (Redis configured), 0 when
 * it is not, and -1 (after logging which one) when REDIS_PORT or REDIS_DB
 * is malformed. */
int redis_config_from_env(struct redis_config *cfg);

struct resolver;

/* A store whose first connection attempt has started (cfg is copied); a
 * host name is looked up with resolver (which must outlive the store).
 * NULL when cfg is invalid (no host, port out of range, db < 0) or memory
 * runs out; the reason is logged. */
struct kv_store *redis_store_new(struct ev_loop *loop, struct resolver *resolver,
                                 const struct redis_config *cfg);

#endif
