/*
 * store/result.h — the one result shape every storage shim reports.
 *
 * The shim contract (see DESIGN.md, kept by store/op.h): an operation is
 * started with a callback and a privdata pointer; the callback runs on the
 * loop thread exactly once, never before the starting call returned, with
 * a struct store_result.  The result (its message and data) is valid only
 * for the duration of the callback: copy what you keep.  What a status
 * means over HTTP is the routes' business (routes/status.h).
 */
#ifndef SPRINGFIELD_STORE_RESULT_H
#define SPRINGFIELD_STORE_RESULT_H

#include <stddef.h>

enum store_status {
    STORE_OK = 0,       /* done; data/len hold the value for reads */
    STORE_NOT_FOUND,    /* no such key/object/row */
    STORE_BAD_INPUT,    /* the caller's input was refused */
    STORE_TOO_LARGE,    /* a value over a documented limit */
    STORE_UNAVAILABLE,  /* backend not reachable, or queue full */
    STORE_TIMEOUT,      /* backend did not answer in time */
    STORE_BAD_UPSTREAM, /* backend answered garbage or refused us */
    STORE_ERROR         /* our own bug or an unexpected failure */
};

struct store_result {
    enum store_status status;
    const char *message; /* human text for errors; NULL or "" when OK */
    const void *data;    /* value for successful reads, else NULL */
    size_t len;
    double elapsed;      /* seconds from the start of the operation to this result
                          * (the loop's clock): what the caller waited */
};

typedef void (*store_cb)(void *privdata, const struct store_result *res);

/* Short constant name: "ok", "not found", "unavailable", "timeout", ... */
const char *store_status_name(enum store_status status);

#endif
