/*
 * store/embedded.h — the embedded in-process key-value store.
 *
 * A route whose backend is not configured runs on this store, so the
 * service works out of the box.  It implements store/kv.h:
 *
 *   get:  STORE_OK with the value (data is non-NULL, also for an empty
 *         value) or STORE_NOT_FOUND
 *   put:  copies key and value, replacing any previous value, then STORE_OK
 *   ping: STORE_OK
 *
 * Keys and values are byte strings: they may contain NUL bytes and may be
 * empty.  Like every shim's, each callback runs from the loop after the
 * call returned (in the same loop iteration), and operations run in the
 * order they were started.  Allocation failure is reported as STORE_ERROR
 * with a message (the store stays as it was); a NULL pointer with a
 * non-zero length is STORE_BAD_INPUT; a size that cannot be represented is
 * STORE_TOO_LARGE.
 *
 * The result's data stays valid for the whole callback, even if the
 * callback overwrites that key or frees the store (both happen after the
 * callback returns).
 *
 * Limits worth knowing: the data lives in this process's memory only, so
 * it is lost on restart and is not shared between worker processes
 * (--workers N gives N separate stores); there is no size bound other than
 * the body limit of each request.  Single-threaded: loop thread only.
 */
#ifndef SPRINGFIELD_STORE_EMBEDDED_H
#define SPRINGFIELD_STORE_EMBEDDED_H

#include <ev.h>

#include "store/kv.h"

/* A new empty store on loop; name (e.g. "marges", may be NULL) appears in
 * error messages.  be.kind is "embedded", be.where "in-process".
 * NULL when out of memory.  Release with kv_free(). */
struct kv_store *embedded_store_new(struct ev_loop *loop, const char *name);

#endif
