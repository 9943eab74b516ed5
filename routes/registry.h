/*
 * routes/registry.h — every key-value backend of the service, in one table.
 *
 * One row per route that stores values: which environment variable makes
 * it real, how that store is opened, and its name in the start-up log and
 * the health check.  Opening and closing the backends, the start-up log,
 * the health check and --help all read this table; nothing else lists the
 * backends.  (The weather service is not a key-value store: maggie and the
 * health check reach it through app->weather.)
 */
#ifndef SPRINGFIELD_ROUTES_REGISTRY_H
#define SPRINGFIELD_ROUTES_REGISTRY_H

#include <stddef.h>

#include "store/kv.h"

struct app;
struct backend_options;

/* The rows, in table order; app->kv[] is indexed by them. */
enum backend_id { BACKEND_MARGES, BACKEND_HOMERS, BACKEND_LISAS, BACKEND_BART, BACKEND_KV_COUNT };

struct backend_entry {
    const char *route;   /* "marges": the health check's name for it */
    const char *path;    /* "/api/v1/marges/NAME", for the start-up log */
    const char *env;     /* "REDIS_HOST": the variable that makes it real */
    const char *env_all; /* every variable it reads, for --help */
    /* The real store when the environment names one: 1 (*out set), 0 when
     * it does not (the embedded store is used), -1 on error (logged).  With
     * app NULL only the environment is checked (before fork), *out untouched. */
    int (*open)(struct app *app, const struct backend_options *o, struct kv_store **out);
};

extern const struct backend_entry backend_registry[BACKEND_KV_COUNT];

#endif
