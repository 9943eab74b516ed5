/* routes/backends.c — each route's backend, from the environment. */
#include "routes/backends.h"

#include <string.h>

#include "fcgi/log.h"
#include "store/embedded.h"

static void say(const char *route, const struct kv_store *kv, const char *unset)
{
    if (!strcmp(kv->backend, "embedded"))
        sf_info("route %-22s -> embedded in-process store (not persistent; set %s for the real backend)",
                route, unset);
    else
        sf_info("route %-22s -> %s at %s", route, kv->backend, kv->where ? kv->where : "?");
}

/* The embedded store named `name`, logging on failure. */
static struct kv_store *embedded(const char *name)
{
    struct kv_store *kv = embedded_store_new(name);

    if (!kv)
        sf_error("out of memory for the embedded %s store", name);
    return kv;
}

int backends_open(struct app *app, struct ev_loop *loop, const struct backend_options *o)
{
    (void)loop;
    memset(app, 0, sizeof *app);
    app->backend_timeout_ms = o->timeout_ms;

    app->marges = embedded("marges");
    app->homers = embedded("homers");
    app->lisas = embedded("lisas");
    app->bart = embedded("bart");
    if (!app->marges || !app->homers || !app->lisas || !app->bart) {
        backends_close(app);
        return -1;
    }
    say("/api/v1/marges/NAME", app->marges, "REDIS_HOST");
    say("/api/v1/homers/NAME", app->homers, "MONGODB_URI");
    say("/api/v1/lisas/NAME", app->lisas, "MYSQL_HOST");
    say("/api/v1/bart", app->bart, "AWS_S3_BUCKET");
    return 0;
}

void backends_close(struct app *app)
{
    kv_free(app->marges);
    kv_free(app->homers);
    kv_free(app->lisas);
    kv_free(app->bart);
    memset(app, 0, sizeof *app);
}
