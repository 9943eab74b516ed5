/*
 * main.c — springfield: options, the listening socket, worker processes,
 * signals, and one libev loop per process serving the routes.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "fcgi/listen.h"
#include "fcgi/log.h"
#include "fcgi/server.h"
#include "routes/app.h"
#include "routes/backends.h"
#include "routes/router.h"
#include "store/http.h"

#define DEFAULT_LISTEN "127.0.0.1:9000"

struct options {
    const char *listen;
    unsigned socket_mode;
    unsigned workers;
    struct fcgi_limits limits;
    struct backend_options backends;
    double shutdown_timeout;
    int access_log;
    enum sf_log_level log_level;
};

static void usage(FILE *out)
{
    fprintf(out,
"Usage: springfield [OPTIONS]\n"
"\n"
"An asynchronous FastCGI service (responder role) for nginx, lighttpd or Apache.\n"
"Serves fd 0 when it is a listening socket (spawn-fcgi, mod_fcgid), else --listen.\n"
"\n"
"Options (each has an environment twin SPRINGFIELD_<NAME>, flags win):\n"
"  --listen ADDR             unix:PATH or HOST:PORT (default: fd 0 if listening, else %s)\n"
"  --socket-mode MODE        octal mode of the unix socket file (default 0660)\n"
"  --workers N               fork N worker processes sharing the socket, restarted\n"
"                            when they die (default 0: serve in this process)\n"
"  --threads N               threads for blocking client libraries (default 4)\n"
"  --max-conns N             open FastCGI connections (default 10000)\n"
"  --max-reqs N              live requests per connection (default 128)\n"
"  --max-params-bytes N      params of one request (default 65536; over: 431)\n"
"  --max-body-bytes N        body of one request (default 8388608; over: 413)\n"
"  --max-buffered-bytes N    bodies held by all requests at once (default\n"
"                            268435456; over: 503)\n"
"  --idle-timeout SEC        close connections idle this long (default 300)\n"
"  --shutdown-timeout SEC    on SIGTERM/SIGINT, time for requests in flight (default 10)\n"
"  --backend-timeout MS      timeout of each backend operation (default 5000)\n"
"  --access-log, --no-access-log\n"
"                            one line per request on stderr (default on)\n"
"  --log-level LEVEL         debug, info, warn or error (default info)\n"
"  -h, --help                this text\n"
"  -V, --version             the version\n"
"\n"
"Backends (environment, as the original service): REDIS_HOST REDIS_PORT\n"
"REDIS_PASSWORD REDIS_DB, MONGODB_URI, MYSQL_HOST MYSQL_PORT MYSQL_DATABASE\n"
"MYSQL_USER MYSQL_PASSWORD, AWS_S3_BUCKET AWS_S3_OBJECT AWS_ACCESS_KEY_ID\n"
"AWS_SECRET_ACCESS_KEY AWS_REGION AWS_ENDPOINT_URL_S3 AWS_S3_SIGNATURE, WEATHER_URI.\n"
"A route whose backend is not configured uses an embedded in-process store.\n"
"FCGI_WEB_SERVER_ADDRS: comma-separated IPs allowed to connect over TCP.\n",
            DEFAULT_LISTEN);
}

enum {
    OPT_LISTEN = 256, OPT_SOCKET_MODE, OPT_WORKERS, OPT_THREADS, OPT_MAX_CONNS, OPT_MAX_REQS,
    OPT_MAX_PARAMS, OPT_MAX_BODY, OPT_MAX_BUFFERED, OPT_IDLE, OPT_SHUTDOWN, OPT_BACKEND_TIMEOUT, OPT_ACCESS_LOG,
    OPT_NO_ACCESS_LOG, OPT_LOG_LEVEL
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"max-reqs", required_argument, NULL, OPT_MAX_REQS},
    {"max-params-bytes", required_argument, NULL, OPT_MAX_PARAMS},
    {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
    {"max-buffered-bytes", required_argument, NULL, OPT_MAX_BUFFERED},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
    {"backend-timeout", required_argument, NULL, OPT_BACKEND_TIMEOUT},
    {"access-log", no_argument, NULL, OPT_ACCESS_LOG},
    {"no-access-log", no_argument, NULL, OPT_NO_ACCESS_LOG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Parses an unsigned number in [min, max]; base 0 accepts 0660 as octal. */
static int parse_number(const char *name, const char *s, int base, unsigned long long min,
                        unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, base);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "springfield: %s: '%s' is not a number from %llu to %llu\n", name, s,
                min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_level(const char *s, enum sf_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};

    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *out = (enum sf_log_level)i;
            return 0;
        }
    fprintf(stderr, "springfield: --log-level: '%s' is not debug, info, warn or error\n", s);
    return -1;
}

static int parse_bool(const char *name, const char *s, int *out)
{
    if (!strcmp(s, "1") || !strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "true"))
        *out = 1;
    else if (!strcmp(s, "0") || !strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "false"))
        *out = 0;
    else {
        fprintf(stderr, "springfield: %s: '%s' is not on/off\n", name, s);
        return -1;
    }
    return 0;
}

/* Applies one option (from a flag or its environment twin). */
static int apply(struct options *o, int opt, const char *name, const char *v)
{
    unsigned long long n;

    switch (opt) {
    case OPT_LISTEN:
        o->listen = v;
        return 0;
    case OPT_SOCKET_MODE:
        if (parse_number(name, v, 8, 0, 0777, &n) < 0)
            return -1;
        o->socket_mode = (unsigned)n;
        return 0;
    case OPT_WORKERS:
        if (parse_number(name, v, 10, 0, 256, &n) < 0)
            return -1;
        o->workers = (unsigned)n;
        o->backends.workers = (unsigned)n;
        return 0;
    case OPT_THREADS:
        if (parse_number(name, v, 10, 1, 256, &n) < 0)
            return -1;
        o->backends.threads = (unsigned)n;
        return 0;
    case OPT_MAX_CONNS:
        if (parse_number(name, v, 10, 1, 1000000, &n) < 0)
            return -1;
        o->limits.max_conns = (unsigned)n;
        return 0;
    case OPT_MAX_REQS:
        if (parse_number(name, v, 10, 1, 65535, &n) < 0)
            return -1;
        o->limits.max_reqs = (unsigned)n;
        return 0;
    case OPT_MAX_PARAMS:
        if (parse_number(name, v, 10, 256, 64ULL << 20, &n) < 0)
            return -1;
        o->limits.max_params_bytes = (size_t)n;
        return 0;
    case OPT_MAX_BODY:
        if (parse_number(name, v, 10, 0, 1ULL << 32, &n) < 0)
            return -1;
        o->limits.max_body_bytes = (size_t)n;
        return 0;
    case OPT_MAX_BUFFERED:
        if (parse_number(name, v, 10, 0, 1ULL << 40, &n) < 0)
            return -1;
        o->limits.max_buffered_bytes = (size_t)n;
        return 0;
    case OPT_IDLE:
        if (parse_number(name, v, 10, 1, 86400, &n) < 0)
            return -1;
        o->limits.idle_timeout = (double)n;
        return 0;
    case OPT_SHUTDOWN:
        if (parse_number(name, v, 10, 0, 3600, &n) < 0)
            return -1;
        o->shutdown_timeout = (double)n;
        return 0;
    case OPT_BACKEND_TIMEOUT:
        if (parse_number(name, v, 10, 1, 600000, &n) < 0)
            return -1;
        o->backends.timeout_ms = (long)n;
        return 0;
    case OPT_ACCESS_LOG:
        return v ? parse_bool(name, v, &o->access_log) : (o->access_log = 1, 0);
    case OPT_NO_ACCESS_LOG:
        o->access_log = 0;
        return 0;
    case OPT_LOG_LEVEL:
        return parse_level(v, &o->log_level);
    }
    return -1;
}

/* SPRINGFIELD_<NAME> for every option that takes a value, then flags. */
static int load_options(struct options *o, int argc, char **argv)
{
    const struct option *lo;
    int opt, idx = 0;

    memset(o, 0, sizeof *o);
    o->socket_mode = 0660;
    o->shutdown_timeout = 10;
    o->access_log = 1;
    o->log_level = SF_LOG_INFO;
    fcgi_limits_default(&o->limits);
    o->backends.threads = 4;
    o->backends.timeout_ms = 5000;

    for (lo = long_options; lo->name; lo++) {
        char env[64], *p;
        const char *v;

        if (lo->val < 256 || lo->val == OPT_NO_ACCESS_LOG)
            continue;
        snprintf(env, sizeof env, "SPRINGFIELD_%s", lo->name);
        for (p = env; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        v = getenv(env);
        if (v && *v && apply(o, lo->val, env, v) < 0)
            return -1;
    }
    while ((opt = getopt_long(argc, argv, "hV", long_options, &idx)) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("springfield %s\n", PACKAGE_VERSION);
            exit(0);
        case '?':
            fprintf(stderr, "Try 'springfield --help'.\n");
            return -1;
        default:
            if (apply(o, opt, long_options[idx].name, optarg) < 0)
                return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "springfield: unexpected argument '%s'; try --help\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Raises the descriptor limit so --max-conns connections fit, as far as
 * the hard limit allows; says so when it does not. */
static void fit_descriptor_limit(unsigned max_conns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_conns + 256; /* listener, backends, logs */

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        sf_warn("open-file limit %llu is below --max-conns %u: connections beyond it are "
                "refused (raise the hard limit, e.g. LimitNOFILE= in systemd)",
                (unsigned long long)rl.rlim_cur, max_conns);
}

/* --- one serving process -------------------------------------------------- */

struct serving {
    struct ev_loop *loop;
    struct fcgi_server *server;
    double shutdown_timeout;
    bool stopping;
    ev_signal sigterm, sigint;
};

static void on_drained(void *arg)
{
    struct serving *sv = arg;

    ev_break(sv->loop, EVBREAK_ALL);
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct serving *sv = w->data;

    (void)loop;
    (void)revents;
    /* The watchers stay: a second signal (Ctrl-C or systemd signals the
     * whole group, then the supervisor signals again) must not fall back
     * to the default action and kill the requests being finished. */
    if (sv->stopping) {
        sf_info("signal %d: already finishing requests in flight", w->signum);
        return;
    }
    sv->stopping = true;
    sf_info("signal %d: no new connections; finishing requests in flight", w->signum);
    fcgi_server_shutdown(sv->server, sv->shutdown_timeout, on_drained, sv);
}

static int serve(const struct options *o, int listen_fd)
{
    struct fcgi_server_config cfg = {
        .limits = o->limits,
        .handler = router_dispatch,
        .access_log = o->access_log,
        .allowed_addrs = getenv("FCGI_WEB_SERVER_ADDRS"),
    };
    struct serving sv = {.shutdown_timeout = o->shutdown_timeout};
    struct app app;

    sv.loop = ev_default_loop(EVFLAG_AUTO);
    if (!sv.loop) {
        sf_error("cannot start the event loop");
        return 1;
    }
    if (backends_open(&app, sv.loop, &o->backends) < 0)
        return 1;
    cfg.app = &app;
    sv.server = fcgi_server_new(sv.loop, listen_fd, &cfg);
    if (!sv.server) {
        backends_close(&app);
        return 1;
    }
    ev_signal_init(&sv.sigterm, on_stop_signal, SIGTERM);
    ev_signal_init(&sv.sigint, on_stop_signal, SIGINT);
    sv.sigterm.data = sv.sigint.data = &sv;
    ev_signal_start(sv.loop, &sv.sigterm);
    ev_signal_start(sv.loop, &sv.sigint);

    ev_run(sv.loop, 0);

    /* Backends first: their pending callbacks answer (drop) requests that
     * still point at the server. */
    backends_close(&app);
    fcgi_server_free(sv.server);
    ev_loop_destroy(sv.loop);
    sf_info("stopped");
    return 0;
}

/* --- the supervisor of --workers N ---------------------------------------- */

static pid_t start_worker(const struct options *o, int listen_fd, const sigset_t *oldmask)
{
    pid_t pid = fork();

    if (pid == 0) {
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        _exit(serve(o, listen_fd));
    }
    if (pid < 0) {
        sf_error("fork failed: %s; trying again in a second", strerror(errno));
        return 0; /* an empty slot: the supervisor retries it */
    }
    return pid;
}

static int supervise(const struct options *o, int listen_fd)
{
    pid_t *pids = calloc(o->workers, sizeof *pids);
    time_t *started = calloc(o->workers, sizeof *started);
    sigset_t mask, oldmask;
    int stopping = 0;
    time_t deadline = 0;
    unsigned i, alive;

    if (!pids || !started) {
        sf_error("out of memory");
        return 1;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, &oldmask);
    for (i = 0; i < o->workers; i++) {
        pids[i] = start_worker(o, listen_fd, &oldmask);
        started[i] = time(NULL);
    }
    sf_info("supervising %u worker processes", o->workers);
    for (;;) {
        struct timespec tick = {1, 0};
        siginfo_t si;
        int sig = sigtimedwait(&mask, &si, &tick);
        pid_t pid;
        int status;

        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                sf_info("signal %d: stopping the workers", sig);
                stopping = 1;
                /* The workers close their copies; this one must go too, or
                 * the kernel keeps queueing connections nobody will accept. */
                close(listen_fd);
                deadline = time(NULL) + (time_t)o->shutdown_timeout + 2;
                for (i = 0; i < o->workers; i++)
                    if (pids[i] > 0)
                        kill(pids[i], SIGTERM);
            }
        }
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (i = 0; i < o->workers; i++) {
                if (pids[i] != pid)
                    continue;
                pids[i] = 0;
                if (!stopping) {
                    if (WIFSIGNALED(status))
                        sf_error("worker %d killed by signal %d; restarting it", (int)pid,
                                 WTERMSIG(status));
                    else
                        sf_error("worker %d exited with status %d; restarting it", (int)pid,
                                 WEXITSTATUS(status));
                }
            }
        }
        alive = 0;
        for (i = 0; i < o->workers; i++) {
            if (pids[i] == 0 && !stopping) {
                /* A worker that dies at once is restarted at most once a second. */
                if (time(NULL) - started[i] < 1)
                    continue;
                pids[i] = start_worker(o, listen_fd, &oldmask);
                started[i] = time(NULL);
            }
            alive += pids[i] > 0;
        }
        if (stopping && alive == 0)
            break;
        if (stopping && time(NULL) > deadline) {
            sf_warn("workers did not stop in time; killing them");
            for (i = 0; i < o->workers; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGKILL);
            deadline = time(NULL) + 60;
        }
    }
    free(pids);
    free(started);
    sf_info("all workers stopped");
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int listen_fd, rc;
    const char *created = NULL;

    if (load_options(&o, argc, argv) < 0)
        return 2;
    sf_log_set_level(o.log_level);
    signal(SIGPIPE, SIG_IGN); /* a closed peer is an error return, never a death */
    fit_descriptor_limit(o.limits.max_conns);
    if (http_global_init() < 0) { /* once, before any fork or thread */
        sf_error("libcurl initialisation failed");
        return 1;
    }

    if (!o.listen && listen_inherited()) {
        listen_fd = 0;
        sf_info("springfield %s serving the listening socket inherited on fd 0", PACKAGE_VERSION);
    } else {
        const char *addr = o.listen ? o.listen : DEFAULT_LISTEN;

        listen_fd = listen_open(addr, o.socket_mode, 1024);
        if (listen_fd < 0)
            return 1;
        created = addr;
        sf_info("springfield %s listening on %s", PACKAGE_VERSION, addr);
    }
    rc = o.workers > 0 ? supervise(&o, listen_fd) : serve(&o, listen_fd);
    listen_cleanup(created);
    return rc;
}
