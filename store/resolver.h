/*
 * store/resolver.h — host name lookups off the loop thread.
 *
 * getaddrinfo() blocks (a DNS query can take seconds), so the shims that
 * connect by themselves (Redis, MySQL) look names up here, before every
 * connect: a lookup runs on one thread of its own and its result comes
 * back to the loop through the worker pool's ev_async.  A name that does
 * not resolve, at start-up or later, is one more failed attempt for the
 * breaker, not a reason to exit; an address that changes is picked up at
 * the next reconnect.  (libcurl has its own threaded resolver; the
 * MongoDB driver resolves on the worker threads it already runs on.)
 */
#ifndef SPRINGFIELD_STORE_RESOLVER_H
#define SPRINGFIELD_STORE_RESOLVER_H

#include <ev.h>

/* At most this many addresses of a name are handed back. */
#define RESOLVER_MAX_ADDRS 8

struct resolver;
struct resolve;

/*
 * error: NULL on success, else why ("Name or service not known").
 * addrs: n numeric addresses ("127.0.0.1", "::1"), valid during the call.
 */
typedef void (*resolve_cb)(void *arg, const char *error, const char *const *addrs, unsigned n);

/* One thread; NULL when it cannot start (logged).  After fork(). */
struct resolver *resolver_new(struct ev_loop *loop);

/* Lookups still running are cancelled (their callbacks never run). */
void resolver_free(struct resolver *r);

/* Starts looking host up; cb runs on the loop thread once, later, unless
 * cancelled.  NULL when it cannot start (cb never runs). */
struct resolve *resolver_lookup(struct resolver *r, const char *host, resolve_cb cb, void *arg);

/* cb will not run for q (q is freed by the resolver). */
void resolver_cancel(struct resolve *q);

/* True when host is a numeric IPv4 or IPv6 address (nothing to look up). */
int resolver_is_numeric(const char *host);

#endif
