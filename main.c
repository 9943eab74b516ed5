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

#include "common/list.h"
#include "common/setting.h"
#include "fcgi/handover.h"
#include "fcgi/listen.h"
#include "fcgi/pidfile.h"
#include "fcgi/process.h"
#include "fcgi/recycle.h"
#include "common/log.h"
#include "fcgi/notify.h"
#include "fcgi/server.h"
#include "fcgi/supervisor.h"
#include "routes/app.h"
#include "routes/backends.h"
#include "routes/readiness.h"
#include "routes/router.h"
#include "routes/scoreboard.h"
#include "routes/stats.h"
#include "store/http.h"
#include "store/mysql.h"

#define DEFAULT_LISTEN "127.0.0.1:9000"

struct options {
    const char *listen;
    unsigned socket_mode;
    unsigned workers;
    struct fcgi_limits limits;
    struct backend_options backends;
    double shutdown_timeout;
    int access_log;
    enum fcgi_access_log_format access_log_format;
    enum sf_log_level log_level;
    const char *log_file;
    const char *status_path;
    const char *pid_file;
    unsigned long max_requests;
    unsigned long max_rss_mib;
};

static void usage(FILE *out)
{
    fprintf(out,
"Usage: springfield [OPTIONS]\n"
"\n"
"An asynchronous FastCGI service (responder role) for nginx, lighttpd or Apache.\n"
"Serves --listen; else the socket systemd passes (LISTEN_FDS); else fd 0 when it\n"
"is a listening socket (spawn-fcgi, mod_fcgid); else the default address.\n"
"\n"
"Options (each has an environment twin SPRINGFIELD_<NAME>, flags win; a twin\n"
"that is empty counts as unset, any other value must be valid or springfield\n"
"does not start):\n"
"  --listen ADDR             unix:PATH or HOST:PORT (default: the socket systemd\n"
"                            passed, or fd 0 if listening, else %s)\n"
"  --socket-mode MODE        octal mode of the unix socket file (default 0660)\n"
"  --workers N               fork N worker processes sharing the socket, restarted\n"
"                            when they die (default 0: serve in this process)\n"
"  --threads N               threads for blocking client libraries (default 4)\n"
"  --mysql-connections N     connections to MySQL/MariaDB per process (default 4)\n"
"  --max-conns N             open FastCGI connections (default 10000)\n"
"  --max-reqs N              live requests per connection (default 128)\n"
"  --max-params-bytes N      params of one request (default 65536; over: 431)\n"
"  --max-body-bytes N        body of one request (default 8388608; over: 413)\n"
"  --max-buffered-bytes N    request bodies held by all requests at once\n"
"                            (default 268435456; over: 503)\n"
"  --max-buffered-params-bytes N\n"
"                            params held by all requests at once (default\n"
"                            67108864; over: 503)\n"
"  --max-output-bytes N      unsent answers of all connections at once (default\n"
"                            268435456; an answer over it: 503)\n"
"  --max-conn-output-bytes N unsent answers of one connection (default 16777216;\n"
"                            an answer over it: 503)\n"
"  --receive-timeout SEC     time to receive a request's params and body after its\n"
"                            BEGIN_REQUEST (default 60; over: 408, connection closed)\n"
"  --idle-timeout SEC        close connections idle this long (default 300)\n"
"  --request-timeout-ms MS   time from a request's BEGIN_REQUEST to its answer,\n"
"                            whatever its backends do (default 0: none; over: 504)\n"
"  --slow-request-ms MS      log every request slower than this, with its route and\n"
"                            each backend operation's time (default 0: none)\n"
"  --shutdown-timeout SEC    on SIGTERM/SIGINT, time for requests in flight (default 10)\n"
"  --max-requests N          a process that answered N requests (each draws its own\n"
"                            limit up to 10 %% above) is replaced by a new one, then\n"
"                            drains (default 0: never)\n"
"  --max-rss-mib M           a process whose resident memory is over M MiB is\n"
"                            replaced the same way (default 0: never)\n"
"  --pid-file PATH           write the pid of the process to signal (the supervisor\n"
"                            with --workers) to this absolute path; a reload's new\n"
"                            process takes it over\n"
"  --backend-timeout MS      timeout of each backend operation (default 5000)\n"
"  --access-log, --no-access-log\n"
"                            one line per request on stderr (default on)\n"
"  --access-log-format FORMAT\n"
"                            text (\"GET /api/v1/flanders 200 25 18us\") or json\n"
"                            (one object per line: time, method, path, route,\n"
"                            status, bytes, us, backend_us) (default text)\n"
"  --log-level LEVEL         debug, info, warn or error (default info)\n"
"  --log-file PATH           write the log and the access log to PATH (absolute)\n"
"                            instead of stderr; SIGUSR1 reopens it\n"
"  --status-path PATH        serve the pool's status and metrics at PATH, e.g.\n"
"                            /status (default: none, off): text; OpenMetrics\n"
"                            (Accept: application/openmetrics-text or\n"
"                            ?format=openmetrics); Prometheus text\n"
"                            (?format=prometheus); JSON (Accept:\n"
"                            application/json or ?format=json).  Let the front\n"
"                            server pass it from local clients only\n"
"  -h, --help                this text\n"
"  -V, --version             the version\n"
"\n"
"Backends (environment, as the original service), per route:\n",
            DEFAULT_LISTEN);
    backends_help(out);
    fprintf(out,
"A route whose backend is not configured uses an embedded in-process store.\n"
"FCGI_WEB_SERVER_ADDRS: IP addresses allowed to connect over TCP, separated by\n"
"commas and/or blanks.\n"
"\n"
"Signals: SIGTERM/SIGINT finish requests in flight and exit (0, or 3 when some\n"
"had to be dropped at the deadline).  SIGHUP reloads: a new springfield from the\n"
"binary on disk (same arguments and environment) takes the socket over, and once\n"
"it serves the old processes finish their requests and exit; if it fails, the\n"
"old ones serve on.  SIGUSR1 reopens the --log-file.\n");
}

enum {
    OPT_LISTEN = 256, OPT_SOCKET_MODE, OPT_WORKERS, OPT_THREADS, OPT_MAX_CONNS, OPT_MAX_REQS,
    OPT_MAX_PARAMS, OPT_MAX_BODY, OPT_MAX_BUFFERED, OPT_MAX_BUFFERED_PARAMS, OPT_MAX_OUTPUT,
    OPT_MAX_CONN_OUTPUT, OPT_RECEIVE, OPT_IDLE, OPT_SHUTDOWN, OPT_BACKEND_TIMEOUT,
    OPT_ACCESS_LOG, OPT_NO_ACCESS_LOG, OPT_LOG_LEVEL, OPT_STATUS_PATH, OPT_PID_FILE,
    OPT_MAX_REQUESTS, OPT_MAX_RSS, OPT_REQUEST_TIMEOUT, OPT_ACCESS_LOG_FORMAT, OPT_LOG_FILE,
    OPT_SLOW_REQUEST, OPT_MYSQL_CONNECTIONS
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"mysql-connections", required_argument, NULL, OPT_MYSQL_CONNECTIONS},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"max-reqs", required_argument, NULL, OPT_MAX_REQS},
    {"max-params-bytes", required_argument, NULL, OPT_MAX_PARAMS},
    {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
    {"max-buffered-bytes", required_argument, NULL, OPT_MAX_BUFFERED},
    {"max-buffered-params-bytes", required_argument, NULL, OPT_MAX_BUFFERED_PARAMS},
    {"max-output-bytes", required_argument, NULL, OPT_MAX_OUTPUT},
    {"max-conn-output-bytes", required_argument, NULL, OPT_MAX_CONN_OUTPUT},
    {"receive-timeout", required_argument, NULL, OPT_RECEIVE},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"request-timeout-ms", required_argument, NULL, OPT_REQUEST_TIMEOUT},
    {"slow-request-ms", required_argument, NULL, OPT_SLOW_REQUEST},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
    {"backend-timeout", required_argument, NULL, OPT_BACKEND_TIMEOUT},
    {"access-log", no_argument, NULL, OPT_ACCESS_LOG},
    {"no-access-log", no_argument, NULL, OPT_NO_ACCESS_LOG},
    {"access-log-format", required_argument, NULL, OPT_ACCESS_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"status-path", required_argument, NULL, OPT_STATUS_PATH},
    {"pid-file", required_argument, NULL, OPT_PID_FILE},
    {"max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
    {"max-rss-mib", required_argument, NULL, OPT_MAX_RSS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* The range of every numeric option: one table, so each is checked alike. */
struct number_option {
    int opt;
    int base;
    unsigned long long min, max;
};

static const struct number_option number_options[] = {
    {OPT_SOCKET_MODE, 8, 0, 0777},
    {OPT_WORKERS, 10, 0, 256},
    {OPT_THREADS, 10, 1, 256},
    {OPT_MYSQL_CONNECTIONS, 10, 1, MYSQL_STORE_POOL_MAX},
    {OPT_MAX_CONNS, 10, 1, 1000000},
    {OPT_MAX_REQS, 10, 1, 65535},
    {OPT_MAX_PARAMS, 10, 256, 64ULL << 20},
    {OPT_MAX_BODY, 10, 0, 1ULL << 32},
    {OPT_MAX_BUFFERED, 10, 0, 1ULL << 40},
    {OPT_MAX_BUFFERED_PARAMS, 10, 0, 1ULL << 40},
    {OPT_MAX_OUTPUT, 10, 0, 1ULL << 40},
    {OPT_MAX_CONN_OUTPUT, 10, 0, 1ULL << 40},
    {OPT_RECEIVE, 10, 1, 86400},
    {OPT_IDLE, 10, 1, 86400},
    {OPT_SHUTDOWN, 10, 0, 3600},
    {OPT_BACKEND_TIMEOUT, 10, 1, 600000},
    {OPT_MAX_REQUESTS, 10, 0, 1ULL << 40},
    {OPT_MAX_RSS, 10, 0, 1ULL << 30},
    {OPT_REQUEST_TIMEOUT, 10, 0, 3600000},
    {OPT_SLOW_REQUEST, 10, 0, 3600000},
};

static int refuse(const char *why)
{
    fprintf(stderr, "springfield: %s\n", why);
    return -1;
}

/* Applies one option (from a flag or its environment twin). */
static int apply(struct options *o, int opt, const char *name, const char *v)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const formats[] = {"text", "json", NULL}; /* enum fcgi_access_log_format */
    char why[SETTING_WHY_MAX];
    unsigned long long n = 0;
    bool on;
    int level;

    for (size_t i = 0; i < sizeof number_options / sizeof number_options[0]; i++) {
        const struct number_option *no = &number_options[i];

        if (no->opt == opt &&
            setting_number(name, v, no->base, no->min, no->max, &n, why) < 0)
            return refuse(why);
    }
    switch (opt) {
    case OPT_LISTEN:
        o->listen = v;
        return 0;
    case OPT_SOCKET_MODE:
        o->socket_mode = (unsigned)n;
        return 0;
    case OPT_WORKERS:
        o->workers = (unsigned)n;
        o->backends.workers = (unsigned)n;
        return 0;
    case OPT_THREADS:
        o->backends.threads = (unsigned)n;
        return 0;
    case OPT_MYSQL_CONNECTIONS:
        o->backends.mysql_connections = (unsigned)n;
        return 0;
    case OPT_MAX_CONNS:
        o->limits.max_conns = (unsigned)n;
        return 0;
    case OPT_MAX_REQS:
        o->limits.max_reqs = (unsigned)n;
        return 0;
    case OPT_MAX_PARAMS:
        o->limits.max_params_bytes = (size_t)n;
        return 0;
    case OPT_MAX_BODY:
        o->limits.max_body_bytes = (size_t)n;
        return 0;
    case OPT_MAX_BUFFERED:
        o->limits.max_buffered_bytes = (size_t)n;
        return 0;
    case OPT_MAX_BUFFERED_PARAMS:
        o->limits.max_buffered_params_bytes = (size_t)n;
        return 0;
    case OPT_MAX_OUTPUT:
        o->limits.max_output_bytes = (size_t)n;
        return 0;
    case OPT_MAX_CONN_OUTPUT:
        o->limits.max_conn_output_bytes = (size_t)n;
        return 0;
    case OPT_RECEIVE:
        o->limits.receive_timeout = (double)n;
        return 0;
    case OPT_IDLE:
        o->limits.idle_timeout = (double)n;
        return 0;
    case OPT_REQUEST_TIMEOUT:
        o->limits.request_timeout = (double)n / 1000.0;
        return 0;
    case OPT_SLOW_REQUEST:
        o->limits.slow_request = (double)n / 1000.0;
        return 0;
    case OPT_SHUTDOWN:
        o->shutdown_timeout = (double)n;
        return 0;
    case OPT_BACKEND_TIMEOUT:
        o->backends.timeout_ms = (long)n;
        return 0;
    case OPT_ACCESS_LOG:
        if (!v) {
            o->access_log = 1;
            return 0;
        }
        if (setting_bool(name, v, &on, why) < 0)
            return refuse(why);
        o->access_log = on;
        return 0;
    case OPT_NO_ACCESS_LOG:
        o->access_log = 0;
        return 0;
    case OPT_ACCESS_LOG_FORMAT:
        if (setting_word(name, v, formats, &level, why) < 0)
            return refuse(why);
        o->access_log_format = (enum fcgi_access_log_format)level;
        return 0;
    case OPT_LOG_LEVEL:
        if (setting_word(name, v, levels, &level, why) < 0)
            return refuse(why);
        o->log_level = (enum sf_log_level)level;
        return 0;
    case OPT_LOG_FILE:
        /* absolute: SIGUSR1 opens the same file again, wherever that is from */
        if (v[0] != '/') {
            snprintf(why, sizeof why, "%s: '%.128s' is not an absolute path", name, v);
            return refuse(why);
        }
        o->log_file = v;
        return 0;
    case OPT_STATUS_PATH:
        if (v[0] != '/' || strlen(v) > ROUTER_MAX_PATH || strpbrk(v, "?# \t\r\n")) {
            snprintf(why, sizeof why,
                     "%s: '%.64s' is not a path (it starts with / and has no ?, # or blanks)",
                     name, v);
            return refuse(why);
        }
        o->status_path = v;
        return 0;
    case OPT_PID_FILE:
        if (v[0] != '/') {
            snprintf(why, sizeof why, "%s: '%.64s' is not an absolute path", name, v);
            return refuse(why);
        }
        o->pid_file = v;
        return 0;
    case OPT_MAX_REQUESTS:
        o->max_requests = (unsigned long)n;
        return 0;
    case OPT_MAX_RSS:
        o->max_rss_mib = (unsigned long)n;
        return 0;
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
    o->backends.mysql_connections = MYSQL_STORE_DEFAULT_POOL;
    o->backends.timeout_ms = 5000;

    for (lo = long_options; lo->name; lo++) {
        char env[64], *p;
        const char *v;

        if (lo->val < 256 || lo->val == OPT_NO_ACCESS_LOG)
            continue;
        snprintf(env, sizeof env, "SPRINGFIELD_%s", lo->name);
        for (p = env; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        v = setting_env(env);
        if (v && apply(o, lo->val, env, v) < 0)
            return -1;
    }
    while ((opt = getopt_long(argc, argv, "hV", long_options, &idx)) != -1) {
        char flag[64];

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
            snprintf(flag, sizeof flag, "--%s", long_options[idx].name);
            if (apply(o, opt, flag, optarg) < 0)
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

/* What one serving process holds; app first, so the answer hook finds the
 * rest from the app pointer the server hands it. */
struct serving {
    struct app app;
    struct fcgi_process proc;
    struct fcgi_recycle recycle;
};

static void on_answer(void *app, struct fcgi_request *r, unsigned tag, int status,
                      double seconds)
{
    struct serving *sv = container_of(app, struct serving, app);

    stats_on_answer(app, r, tag, status, seconds);
    recycle_count(&sv->recycle);
}

/* Where the service is started from, for every serving process. */
struct start {
    const struct options *o;
    int listen_fd;
    const struct fcgi_addr_list *allowed;
    struct listen_file *file; /* NULL in a worker: the supervisor watches it */
    struct scoreboard *sb;    /* NULL: no shared counters */
};

/* A reload's successor serves: the pid file names it from now on. */
static void handed_over(void *arg, pid_t successor)
{
    const struct start *st = arg;

    if (st->o->pid_file)
        pidfile_write(st->o->pid_file, successor);
}

static int serve(const struct start *st, int slot, bool worker)
{
    const struct options *o = st->o;
    struct sb_row *row = st->sb && slot >= 0 ? scoreboard_row_begin(st->sb, (unsigned)slot) : NULL;
    struct fcgi_server_config cfg = {
        .limits = o->limits,
        .handler = router_dispatch,
        .access_log = o->access_log,
        .access_log_format = o->access_log_format,
        .allowed = st->allowed,
        .stats = row ? &row->engine : NULL,
        .on_answer = on_answer,
        .lend_params = true, /* router_dispatch keeps them for a route that answers later */
    };
    struct serving sv;
    struct readiness ready;
    struct fcgi_server *server;
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    unsigned long dropped;

    memset(&sv, 0, sizeof sv);
    if (!loop) {
        sf_error("cannot start the event loop");
        return 1;
    }
    if (backends_open(&sv.app, loop, &o->backends) < 0)
        return 1;
    sv.app.status_path = o->status_path;
    sv.app.status_path_len = o->status_path ? strlen(o->status_path) : 0;
    stats_attach(&sv.app, st->sb, row);
    cfg.app = &sv.app;
    server = fcgi_server_new(loop, st->listen_fd, &cfg);
    if (!server) {
        stats_detach(&sv.app);
        backends_close(&sv.app);
        return 1;
    }
    sv.proc = (struct fcgi_process){
        .loop = loop,
        .server = server,
        .shutdown_timeout = o->shutdown_timeout,
        .file = st->file,
        .listen_fd = st->listen_fd,
        .keep_fd = st->sb ? scoreboard_fd(st->sb) : -1,
        .worker = worker,
        .on_handed_over = worker ? NULL : handed_over,
        .arg = (void *)st,
    };
    recycle_start(&sv.recycle, &sv.proc, o->max_requests, o->max_rss_mib);

    readiness_start(&ready, loop, server, &sv.app); /* serving: READY=1 (fcgi/notify.h) */
    fcgi_process_run(&sv.proc);
    readiness_stop(&ready);

    recycle_stop(&sv.recycle);
    dropped = fcgi_server_dropped(server);
    stats_detach(&sv.app);
    /* Backends first: their pending callbacks answer (drop) requests that
     * still point at the server. */
    backends_close(&sv.app);
    fcgi_server_free(server);
    ev_loop_destroy(loop);
    if (st->sb && slot >= 0 && !worker)
        scoreboard_leave(st->sb, (unsigned)slot);
    if (dropped) {
        sf_warn("stopped; %lu request(s) were dropped at the shutdown deadline", dropped);
        return EXIT_DROPPED;
    }
    sf_info(fcgi_process_handed_over(&sv.proc) ? "stopped; the new process serves"
                                               : "stopped");
    return 0;
}

/* --- the pool: a supervisor and its workers ------------------------------- */

static void worker_replaced(void *arg, pid_t old, pid_t replacement)
{
    const struct start *st = arg;

    (void)old;
    (void)replacement;
    if (st->sb)
        stat_add(&st->sb->replacements, 1);
}

static int serve_worker(void *arg, int slot)
{
    int rc = serve(arg, slot, true);

    sf_log_drain(2.0); /* a worker ends with _exit: no atexit to write the last lines */
    return rc;
}

/* The supervisor's side of the scoreboard: a slot per worker. */
static int pick_slot(void *arg)
{
    const struct start *st = arg;

    return st->sb ? scoreboard_reserve(st->sb, getpid()) : -1;
}

static void worker_started(void *arg, int slot, pid_t pid)
{
    const struct start *st = arg;

    if (st->sb && slot >= 0)
        scoreboard_claim(st->sb, (unsigned)slot, pid, st->sb->generation);
}

static void worker_ended(void *arg, int slot, pid_t pid, bool restarting)
{
    const struct start *st = arg;

    (void)pid;
    if (!st->sb)
        return;
    if (slot >= 0)
        scoreboard_leave(st->sb, (unsigned)slot);
    if (restarting)
        stat_add(&st->sb->restarts, 1);
}

/* FCGI_WEB_SERVER_ADDRS, and every backend's settings, checked before the
 * socket is opened or a worker forked: a mistake stops the start, once. */
static int check_environment(struct fcgi_addr_list *allowed)
{
    const char *addrs = setting_env("FCGI_WEB_SERVER_ADDRS");
    char why[SETTING_WHY_MAX];

    if (addrs && fcgi_addr_list_parse("FCGI_WEB_SERVER_ADDRS", addrs, allowed, why) < 0)
        return refuse(why);
    if (backends_check_env() < 0) {
        fcgi_addr_list_free(allowed);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct fcgi_addr_list allowed = {NULL, 0};
    struct listen_file file = {NULL, 0, 0, false};
    struct scoreboard *sb = NULL;
    int listen_fd, keep_fd, rc;
    bool successor;

    fcgi_signals_early();
    sf_notify_init(); /* NOTIFY_SOCKET, read before any thread or fork */
    handover_init(argc, argv);
    if (load_options(&o, argc, argv) < 0 || check_environment(&allowed) < 0)
        return 2;
    sf_log_set_level(o.log_level);
    if (o.log_file && sf_log_open_file(o.log_file) < 0) {
        fprintf(stderr, "springfield: cannot open the --log-file %s: %s\n", o.log_file,
                strerror(errno));
        fcgi_addr_list_free(&allowed);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed peer is an error return, never a death */
    fit_descriptor_limit(o.limits.max_conns);
    if (http_global_init() < 0) { /* once, before any fork or thread */
        sf_error("libcurl initialisation failed");
        return 1;
    }

    successor = handover_inherited(&listen_fd, &keep_fd);
    if (successor) {
        /* a reload: the socket (and its file) and the counters carry on */
        sf_notify_successor(); /* READY=1 is the predecessor's to send, with MAINPID= */
        listen_file_adopt(o.listen, &file);
        sb = keep_fd >= 0 ? scoreboard_attach(keep_fd) : NULL;
        if (sb) {
            stat_add(&sb->reloads, 1);
            stat_add(&sb->generation, 1);
        }
        sf_info("springfield %s taking over the listening socket (fd %d) in a reload",
                PACKAGE_VERSION, listen_fd);
    } else if ((listen_fd = listen_activated(o.listen == NULL)) == -2) {
        return 1;
    } else if (listen_fd >= 0) {
        /* --listen, else the socket systemd passed, else fd 0, else the default */
        sf_info("springfield %s serving the listening socket systemd passed (LISTEN_FDS, "
                "fd %d)", PACKAGE_VERSION, listen_fd);
    } else if (!o.listen && listen_inherited()) {
        listen_fd = 0;
        sf_info("springfield %s serving the listening socket inherited on fd 0", PACKAGE_VERSION);
    } else {
        const char *addr = o.listen ? o.listen : DEFAULT_LISTEN;

        listen_fd = listen_open(addr, o.socket_mode, 1024, &file);
        if (listen_fd < 0)
            return 1;
        sf_info("springfield %s listening on %s%s", PACKAGE_VERSION, addr,
                o.listen ? "" : " (the default: no --listen, no socket passed)");
    }
    if (!sb) {
        /* Rows for every worker, as many again for a reload's new ones, and
         * two for replacements starting. */
        sb = scoreboard_create(o.workers > 0 ? 2 * o.workers + 2 : 2);
        if (sb)
            sb->workers = o.workers;
    }
    if (!successor && o.pid_file && pidfile_write(o.pid_file, getpid()) < 0) {
        listen_cleanup(&file);
        return 1;
    }
    if (o.workers > 0) {
        struct start st = {&o, listen_fd, &allowed, NULL, sb};
        struct supervisor_config sc = {
            .workers = o.workers,
            .shutdown_timeout = o.shutdown_timeout,
            .listen_fd = listen_fd,
            .file = &file,
            .keep_fd = sb ? scoreboard_fd(sb) : -1,
            .successor = successor,
            .serve = serve_worker,
            .arg = &st,
            .pick_slot = pick_slot,
            .started = worker_started,
            .ended = worker_ended,
            .replaced = worker_replaced,
            .on_handed_over = handed_over,
        };

        rc = supervisor_run(&sc);
    } else {
        struct start st = {&o, listen_fd, &allowed, &file, sb};
        int slot = sb ? scoreboard_reserve(sb, getpid()) : -1;

        if (slot >= 0)
            scoreboard_claim(sb, (unsigned)slot, getpid(), sb->generation);
        rc = serve(&st, slot, false);
    }
    if (o.pid_file)
        pidfile_remove(o.pid_file);
    listen_cleanup(&file);
    fcgi_addr_list_free(&allowed);
    return rc;
}
