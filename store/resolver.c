/* store/resolver.c — getaddrinfo on a thread of its own (see resolver.h). */
#include "store/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/list.h"
#include "common/log.h"
#include "store/workers.h"

/* Lookups waiting for the thread before new ones are refused. */
#define QUEUE_MAX 256

struct resolver {
    struct worker_pool *pool;
    struct list_node lookups; /* started, callback not run yet */
};

struct resolve {
    struct list_node link;
    struct resolver *r;
    resolve_cb cb;
    void *arg;
    bool cancelled;
    /* written by the thread, read on the loop after it */
    int gai_error;
    unsigned n;
    char addrs[RESOLVER_MAX_ADDRS][INET6_ADDRSTRLEN];
    char host[];
};

int resolver_is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

struct resolver *resolver_new(struct ev_loop *loop)
{
    struct resolver *r = calloc(1, sizeof *r);

    if (!r) {
        sf_error("out of memory for the resolver");
        return NULL;
    }
    r->pool = worker_pool_new(loop, 1, QUEUE_MAX);
    if (!r->pool) {
        sf_error("cannot start the resolver thread");
        free(r);
        return NULL;
    }
    list_init(&r->lookups);
    return r;
}

/* On the resolver's thread. */
static void lookup_run(void *job)
{
    struct resolve *q = job;
    struct addrinfo hints, *res = NULL, *ai;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    q->gai_error = getaddrinfo(q->host, NULL, &hints, &res);
    if (q->gai_error)
        return;
    for (ai = res; ai && q->n < RESOLVER_MAX_ADDRS; ai = ai->ai_next) {
        const void *a = ai->ai_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr
                        : ai->ai_family == AF_INET6
                            ? (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                            : NULL;

        if (a && inet_ntop(ai->ai_family, a, q->addrs[q->n], sizeof q->addrs[q->n]))
            q->n++;
    }
    freeaddrinfo(res);
}

/* On the loop thread. */
static void lookup_done(void *job)
{
    struct resolve *q = job;
    const char *addrs[RESOLVER_MAX_ADDRS];
    const char *error = NULL;

    if (!q->cancelled) {
        list_remove(&q->link);
        for (unsigned i = 0; i < q->n; i++)
            addrs[i] = q->addrs[i];
        if (q->gai_error)
            error = gai_strerror(q->gai_error);
        else if (q->n == 0)
            error = "no address";
        q->cb(q->arg, error, addrs, q->n);
    }
    free(q);
}

struct resolve *resolver_lookup(struct resolver *r, const char *host, resolve_cb cb, void *arg)
{
    size_t n = strlen(host) + 1;
    struct resolve *q = calloc(1, sizeof *q + n);

    if (!q)
        return NULL;
    memcpy(q->host, host, n);
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    if (worker_pool_submit(r->pool, lookup_run, lookup_done, q) < 0) {
        free(q);
        return NULL;
    }
    list_insert_tail(&r->lookups, &q->link);
    return q;
}

void resolver_cancel(struct resolve *q)
{
    if (q && !q->cancelled) {
        q->cancelled = true;
        list_remove(&q->link);
    }
}

void resolver_free(struct resolver *r)
{
    struct resolve *q;

    if (!r)
        return;
    while ((q = list_first(&r->lookups, struct resolve, link)))
        resolver_cancel(q);
    worker_pool_free(r->pool); /* runs what is queued; done() frees them */
    free(r);
}
