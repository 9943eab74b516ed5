"""Launchers for the real servers the integration tests run against.

Every launcher:
  - runs its server in the foreground as a child of the test process, on
    127.0.0.1 or a unix socket inside its own directory;
  - waits for readiness with a bounded timeout and raises ServerError with
    the reason and the tail of the server's log if it does not come up (or
    dies) -- a missing server is a failure, never a skip;
  - stops by PID: SIGTERM, then SIGKILL after a bound;
  - works as a context manager.

Adding a launcher is a small subclass: set `name`, implement command()
(and write_config() if it needs a file), and ready() (see ports_ready /
unix_ready / http_ready below for the usual checks).
"""

import os
import re
import signal
import socket
import subprocess
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

START_TIMEOUT = float(os.environ.get("SF_TEST_START_TIMEOUT", "15"))
STOP_TIMEOUT = float(os.environ.get("SF_TEST_STOP_TIMEOUT", "15"))

# Backend settings springfield reads from the environment; launchers start
# from a copy of os.environ without them, so a test gets the embedded store
# unless it passes a backend explicitly.
BACKEND_ENV = (
    "MONGODB_URI", "REDIS_HOST", "REDIS_PORT", "MYSQL_HOST", "MYSQL_PORT",
    "MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD", "AWS_S3_BUCKET",
    "AWS_S3_OBJECT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
    "AWS_ENDPOINT_URL_S3", "AWS_S3_SIGNATURE", "WEATHER_URI",
)


class ServerError(Exception):
    pass


def springfield_bin():
    return os.environ.get("SPRINGFIELD_BIN", os.path.join(REPO, "springfield"))


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_ready(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def unix_ready(path):
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def fcgi_ready(address):
    """A FastCGI application answers FCGI_GET_VALUES on address (a unix
    socket path or (host, port)) within half a second."""
    family = socket.AF_INET if isinstance(address, tuple) else socket.AF_UNIX
    if family == socket.AF_UNIX and not os.path.exists(address):
        return False
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(address)
            # FCGI_GET_VALUES (type 9) asking for FCGI_MAX_CONNS, request id 0
            s.sendall(b"\x01\x09\x00\x00\x00\x10\x00\x00"
                      b"\x0e\x00FCGI_MAX_CONNS")
            return s.recv(8)[1:2] == b"\x0a"  # FCGI_GET_VALUES_RESULT
        except OSError:
            return False


def http_ready(port, path="/"):
    """Any HTTP status line counts: the server parses and answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode())
            return s.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(no log: %s)" % e
    return b"\n".join(data.splitlines()[-lines:]).decode("utf-8", "replace")


def sigstop(pid, timeout=5.0):
    """SIGSTOP pid and wait until every thread of it is stopped: kill()
    returns before the stop takes effect, and a thread running meanwhile
    (on the other CPU, or woken by data that just arrived) can still
    answer one more request."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while True:
        states = []
        for task in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/stat" % (pid, task)) as f:
                    # the state follows the command's closing parenthesis
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass  # a thread that ended meanwhile
        if states and all(st in ("T", "t") for st in states):
            return
        if time.monotonic() > deadline:
            raise AssertionError("pid %d not stopped %.0f s after SIGSTOP (states %s)"
                                 % (pid, timeout, states))
        time.sleep(0.001)


class Server:
    """Base launcher. Subclasses set `name` and implement command(), ready()."""

    name = "server"

    def __init__(self, tmpdir, env=None):
        self.dir = os.path.join(str(tmpdir), self.name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.log_path = os.path.join(self.dir, "output.log")
        self.extra_env = dict(env or {})
        self.proc = None
        self.returncode = None

    # -- to implement

    def command(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    def write_config(self):
        pass

    def environment(self):
        env = {k: v for k, v in os.environ.items() if k not in BACKEND_ENV}
        env.update(self.extra_env)
        return env

    # -- lifecycle

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        """Everything the server wrote to stdout/stderr so far."""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def start(self, timeout=START_TIMEOUT):
        if self.alive():
            raise ServerError("%s already running (pid %d)" % (self.name, self.pid))
        self.write_config()
        cmd = self.command()
        logf = open(self.log_path, "ab")
        logf.write(("=== start: %s\n" % " ".join(cmd)).encode())
        logf.flush()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, cwd=self.dir,
                                         env=self.environment(), start_new_session=True)
        except OSError as e:
            raise ServerError("%s: cannot run %s: %s" % (self.name, cmd[0], e))
        finally:
            logf.close()
        self.returncode = None
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self.proc = None
                raise ServerError("%s exited with status %s during start-up\n"
                                  "command: %s\n--- log tail ---\n%s"
                                  % (self.name, rc, " ".join(cmd), tail(self.log_path)))
            if self.ready():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError("%s not ready within %.0fs\ncommand: %s\n--- log tail ---\n%s"
                                  % (self.name, timeout, " ".join(cmd), tail(self.log_path)))
            time.sleep(0.05)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit
        status (negative = killed by that signal)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        self.proc = None
        self.after_stop()
        return self.returncode

    def kill(self):
        """SIGKILL, no grace."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.returncode = self.proc.returncode
        self.proc = None
        self.after_stop()
        return self.returncode

    def after_stop(self):
        pass

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# springfield


class Springfield(Server):
    """springfield itself.

    listen: 'unix'       --listen unix:DIR/sf.sock --socket-mode 0666
            'tcp'        --listen 127.0.0.1:PORT
            'spawn-fcgi' spawn-fcgi -n -s DIR/sf.sock -M 0666 -- BIN ...
                         (-n: spawn-fcgi execs springfield in place, so the
                         PID we hold is springfield's and fd 0 is the socket)
    .address is the socket path (str) or ("127.0.0.1", port);
    .upstream is the same in nginx syntax.
    """

    name = "springfield"

    def __init__(self, tmpdir, listen="unix", extra_args=(), env=None, binary=None):
        super().__init__(tmpdir, env)
        if listen not in ("unix", "tcp", "spawn-fcgi"):
            raise ValueError("listen must be unix, tcp or spawn-fcgi")
        self.listen = listen
        self.extra_args = list(extra_args)
        self.binary = binary or springfield_bin()
        self.sock = os.path.join(self.dir, "sf.sock")
        self.port = free_port() if listen == "tcp" else None

    @property
    def address(self):
        return ("127.0.0.1", self.port) if self.listen == "tcp" else self.sock

    @property
    def upstream(self):
        return "127.0.0.1:%d" % self.port if self.listen == "tcp" else "unix:" + self.sock

    def command(self):
        if not os.access(self.binary, os.X_OK):
            raise ServerError("springfield binary %s is missing or not executable "
                              "(build it, or set SPRINGFIELD_BIN)" % self.binary)
        if self.listen == "spawn-fcgi":
            if os.path.exists(self.sock):
                os.unlink(self.sock)
            return (["spawn-fcgi", "-n", "-s", self.sock, "-M", "0666", "--", self.binary]
                    + self.extra_args)
        if self.listen == "unix":
            return ([self.binary, "--listen", "unix:" + self.sock, "--socket-mode", "0666"]
                    + self.extra_args)
        return [self.binary, "--listen", "127.0.0.1:%d" % self.port] + self.extra_args

    def ready(self):
        """springfield answers FCGI_GET_VALUES: its loop runs, its backends
        are open and logged (it listens before that, so a connect alone
        could come before them)."""
        return fcgi_ready(self.address)

    # What a sanitizer build (./configure --enable-sanitizers or
    # --enable-tsan) or valgrind (tests/valgrind-springfield, with
    # --errors-for-leak-kinds=definite) writes to stderr when it finds a
    # memory error, a leak or a data race.
    MEMORY_ERRORS = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
                               r"runtime error:|ERROR SUMMARY: [1-9]|"
                               r"WARNING: ThreadSanitizer|FATAL: ThreadSanitizer|ThreadSanitizer: reported")

    # What springfield logs when a handler breaks the engine's contract (a
    # bug of ours: every test fails on it): a request kept past the
    # handler's return with its params still lent (fcgi/request.h).
    CONTRACT_ERRORS = re.compile(r"kept it without fcgi_request_keep_params")

    def after_stop(self):
        log = self.log()
        found = self.MEMORY_ERRORS.search(log)
        if found:
            raise ServerError("springfield reported a sanitizer or valgrind error (%s)\n"
                              "--- log tail ---\n%s"
                              % (found.group(0), tail(self.log_path, 80)))
        found = self.CONTRACT_ERRORS.search(log)
        if found:
            raise ServerError("springfield logged a broken handler contract (%s)\n"
                              "--- log tail ---\n%s"
                              % (found.group(0), tail(self.log_path, 80)))


# --------------------------------------------------------------------------
# front servers


def _upstream_of(upstream):
    """A Springfield, 'unix:/path', '/path', 'host:port' or (host, port)."""
    if isinstance(upstream, Springfield):
        return upstream.address
    if isinstance(upstream, tuple):
        return upstream
    if upstream.startswith("unix:"):
        return upstream[5:]
    if upstream.startswith("/"):
        return upstream
    host, _, port = upstream.rpartition(":")
    return (host, int(port))


class FrontServer(Server):
    """A front server: ready once it answers HTTP on .port; its log adds
    the error log it keeps in .error_log."""

    def ready(self):
        return http_ready(self.port)

    def log(self):
        return super().log() + "\n--- error.log ---\n" + (
            open(self.error_log).read() if os.path.exists(self.error_log) else "")


def nginx_process_conf(d, worker_connections):
    """The start of an nginx.conf that keeps nginx inside directory d (pid,
    logs, temporary files under d/temp), up to the open http { block."""
    return """\
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections {wc}; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/temp/client_body;
    fastcgi_temp_path {d}/temp/fastcgi;
    proxy_temp_path {d}/temp/proxy;
    scgi_temp_path {d}/temp/scgi;
    uwsgi_temp_path {d}/temp/uwsgi;
""".format(d=d, wc=worker_connections)


class Nginx(FrontServer):
    """nginx (nginx-light) in the foreground with a generated nginx.conf:
    /api/ goes to the FastCGI upstream with keep-alive connections.

    When run as root the workers run as nobody (nginx's default), which
    exercises the socket mode: springfield's socket is 0666 and every
    directory on the way is 0755."""

    name = "nginx"
    binary = "/usr/sbin/nginx"

    def __init__(self, tmpdir, upstream, client_max_body_size="64m", extra_http="",
                 extra_location=""):
        super().__init__(tmpdir)
        self.target = _upstream_of(upstream)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.client_max_body_size = client_max_body_size
        self.extra_http = extra_http
        self.extra_location = extra_location
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")

    def write_config(self):
        if isinstance(self.target, tuple):
            server = "%s:%d" % self.target
        else:
            server = "unix:" + self.target
        d = self.dir
        for sub in ("client_body", "fastcgi", "proxy", "scgi", "uwsgi"):
            os.makedirs(os.path.join(d, "temp", sub), exist_ok=True)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write("nginx test root\n")  # what the readiness probe fetches
        with open(self.conf, "w") as f:
            f.write(nginx_process_conf(d, 256) + """\
    client_max_body_size {cmbs};
    keepalive_requests 10000;
    upstream springfield {{
        server {server};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {d};
        location /api/ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_pass springfield;
            fastcgi_keep_conn on;
            {extra_location}
        }}
    }}
    {extra_http}
}}
""".format(d=d, server=server, port=self.port, cmbs=self.client_max_body_size,
           extra_http=self.extra_http, extra_location=self.extra_location))

    def command(self):
        # -e: error log before the config is read (nginx >= 1.19.5), so
        # nothing is written under /var/log.
        return [self.binary, "-e", self.error_log, "-p", self.dir + "/", "-c", self.conf]



class ShippedFront(FrontServer):
    """A front server run from a shipped deploy/ file: a unix-socket
    upstream only (the file's), a port of its own, its configuration as
    `conf_name` and, where the shipped file is included by a generated one,
    the shipped part as site.conf."""

    conf_name = None
    shipped_file = None

    def __init__(self, tmpdir, upstream):
        super().__init__(tmpdir)
        self.target = _upstream_of(upstream)
        if isinstance(self.target, tuple):
            raise ValueError("deploy/%s connects to a unix socket" % self.shipped_file)
        self.port = free_port()
        self.conf = os.path.join(self.dir, self.conf_name)
        self.site_conf = os.path.join(self.dir, "site.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")

    def write_config(self):
        if not os.access(self.binary, os.X_OK):
            raise ServerError("%s is missing (Debian package %s)" % (self.binary, self.name))


class ShippedNginx(ShippedFront):
    """nginx with deploy/nginx.conf as it is (its socket and port replaced),
    included by a generated nginx.conf that keeps nginx inside the test
    directory -- as deploy/run-local.sh runs it.  Only a unix-socket
    upstream (the shipped file's)."""

    name = "nginx"
    binary = "/usr/sbin/nginx"

    conf_name = "nginx.conf"
    shipped_file = "nginx.conf"

    def write_config(self):
        d = self.dir
        for sub in ("client_body", "fastcgi", "proxy", "scgi", "uwsgi"):
            os.makedirs(os.path.join(d, "temp", sub), exist_ok=True)
        with open(self.site_conf, "w") as f:
            f.write(shipped("nginx.conf", [
                ("listen 127.0.0.1:8080;", "listen 127.0.0.1:%d;" % self.port),
                ("unix:" + DEPLOY_SOCKET, "unix:" + self.target)]))
        with open(self.conf, "w") as f:
            f.write("# generated by tests/integration/servers.py, then deploy/nginx.conf\n"
                    + nginx_process_conf(d, 1024) + "    include %s;\n}\n" % self.site_conf)

    def ready(self):
        return http_ready(self.port, "/nginx-ready")  # not springfield's: counts nothing

    def command(self):
        return [self.binary, "-e", self.error_log, "-p", self.dir + "/", "-c", self.conf]


def lighttpd_process_conf(port, docroot, errlog, d):
    """lighttpd settings that keep it on 127.0.0.1:port inside directory d."""
    return """\
server.port = {port}
server.bind = "127.0.0.1"
server.document-root = "{docroot}"
server.errorlog = "{errlog}"
server.pid-file = "{d}/lighttpd.pid"
server.upload-dirs = ( "{d}" )
""".format(port=port, docroot=docroot, errlog=errlog, d=d)


class Lighttpd(FrontServer):
    """lighttpd -D with a generated lighttpd.conf. fastcgi.server maps the
    prefix "/api" to the upstream with check-local disabled, so lighttpd
    sends SCRIPT_NAME=/api and PATH_INFO=/v1/... ."""

    name = "lighttpd"
    binary = "/usr/sbin/lighttpd"

    def __init__(self, tmpdir, upstream, max_request_size_kb=65536, extra_conf=""):
        super().__init__(tmpdir)
        self.target = _upstream_of(upstream)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "lighttpd.conf")
        self.max_request_size_kb = max_request_size_kb
        self.extra_conf = extra_conf
        self.error_log = os.path.join(self.dir, "error.log")

    def write_config(self):
        if isinstance(self.target, tuple):
            backend = '"host" => "%s", "port" => %d' % self.target
        else:
            backend = '"socket" => "%s"' % self.target
        docroot = os.path.join(self.dir, "htdocs")
        os.makedirs(docroot, exist_ok=True)
        with open(os.path.join(docroot, "index.html"), "w") as f:
            f.write("lighttpd test root\n")
        with open(self.conf, "w") as f:
            f.write('server.modules = ( "mod_fastcgi" )\n'
                    + lighttpd_process_conf(self.port, docroot, self.error_log, self.dir)
                    + """\
server.max-request-size = {mrs}
fastcgi.server = ( "/api" => ((
    {backend},
    "check-local" => "disable"
)) )
{extra}
""".format(port=self.port, docroot=docroot, errlog=self.error_log, d=self.dir,
           mrs=self.max_request_size_kb, backend=backend, extra=self.extra_conf))

    def command(self):
        return [self.binary, "-D", "-f", self.conf]



class ShippedLighttpd(ShippedFront):
    """lighttpd -D with deploy/lighttpd.conf as it is (its socket replaced),
    included by a generated lighttpd.conf that sets the port, the document
    root and the logs.  Only a unix-socket upstream (the shipped file's)."""

    name = "lighttpd"
    binary = "/usr/sbin/lighttpd"

    conf_name = "lighttpd.conf"
    shipped_file = "lighttpd.conf"

    def write_config(self):
        docroot = os.path.join(self.dir, "htdocs")
        os.makedirs(docroot, exist_ok=True)
        with open(self.site_conf, "w") as f:
            f.write(shipped("lighttpd.conf", [(DEPLOY_SOCKET, self.target)]))
        with open(self.conf, "w") as f:
            f.write("# generated by tests/integration/servers.py, then deploy/lighttpd.conf\n"
                    + lighttpd_process_conf(self.port, docroot, self.error_log, self.dir)
                    + 'include "%s"\n' % self.site_conf)

    def command(self):
        return [self.binary, "-D", "-f", self.conf]


# Caddy and h2o run from the shipped deploy/ files, as Apache does
# (launch_apache.py): only the socket path and the port are replaced, and a
# generated file around them keeps the server inside its test directory.

DEPLOY_SOCKET = "/run/springfield/springfield.sock"  # what deploy/ files name


def shipped(name, replacements):
    """deploy/<name> with each (old, new) replaced; a file that no longer
    contains `old` fails loudly instead of silently testing something else."""
    path = os.path.join(REPO, "deploy", name)
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ServerError("cannot read %s: %s" % (path, e))
    for old, new in replacements:
        if old not in text:
            raise ServerError("deploy/%s no longer contains %r; update its launcher in "
                              "tests/integration/servers.py" % (name, old))
        text = text.replace(old, new)
    return text


class Caddy(ShippedFront):
    """caddy run (Debian's caddy 2.6) with deploy/Caddyfile: the site's
    port and the socket replaced, imported by a generated Caddyfile whose
    global options turn off the admin endpoint and automatic HTTPS; its
    data and config directories (where it autosaves its configuration) are
    the test's.
    Only a unix-socket upstream (the shipped file's)."""

    name = "caddy"
    binary = "/usr/bin/caddy"

    conf_name = "Caddyfile"
    shipped_file = "Caddyfile"

    def __init__(self, tmpdir, upstream):
        super().__init__(tmpdir, upstream)
        self.site_conf = os.path.join(self.dir, "springfield.caddy")

    def write_config(self):
        super().write_config()
        with open(self.site_conf, "w") as f:
            f.write(shipped("Caddyfile", [
                ("\n:8080 {\n", "\n:%d {\n" % self.port),
                ("unix/" + DEPLOY_SOCKET, "unix/" + self.target)]))
        with open(self.conf, "w") as f:
            f.write("""\
# generated by tests/integration/servers.py
{{
\tadmin off
\tauto_https off
}}
import {site}
""".format(site=self.site_conf))

    def environment(self):
        env = super().environment()
        env.update({"HOME": self.dir, "XDG_CONFIG_HOME": os.path.join(self.dir, "config"),
                    "XDG_DATA_HOME": os.path.join(self.dir, "data")})
        return env

    def command(self):
        return [self.binary, "run", "--config", self.conf, "--adapter", "caddyfile"]


class H2o(ShippedFront):
    """h2o (Debian's 2.2) with deploy/h2o.conf: its port and the socket
    replaced, below generated process settings -- logs in the test
    directory and, as root, user nobody (h2o's workers then reach the 0666
    socket through 0755 directories, as debian-h2o would through its group).
    Only a unix-socket upstream (the shipped file's)."""

    name = "h2o"
    binary = "/usr/bin/h2o"

    conf_name = "h2o.conf"
    shipped_file = "h2o.conf"

    def write_config(self):
        super().write_config()
        site = shipped("h2o.conf", [
            ("\n  port: 8080\n", "\n  port: %d\n" % self.port),
            ("port: " + DEPLOY_SOCKET, "port: " + self.target)])
        user = "user: nobody\n" if os.geteuid() == 0 else ""
        with open(self.conf, "w") as f:
            f.write("# generated by tests/integration/servers.py, then deploy/h2o.conf\n"
                    "error-log: %s\naccess-log: %s\n%s\n" % (self.error_log, self.access_log, user)
                    + site)

    def command(self):
        return [self.binary, "-c", self.conf]


# --------------------------------------------------------------------------
# backends


class Redis(Server):
    """redis-server; stop()/start() keep the port, so a test can take the
    backend away and bring it back.

    durable=False (the default): no persistence, a restarted server is empty.
    durable=True: an append-only file in the server's directory, fsynced
    before every write is answered (--appendfsync always), so a write Redis
    acknowledged survives SIGKILL and is there again after start()."""

    name = "redis"

    def __init__(self, tmpdir, durable=False):
        super().__init__(tmpdir)
        self.port = free_port()
        self.durable = durable

    def command(self):
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.durable
                       else ["--appendonly", "no"])
        return (["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", ""] + persistence + ["--dir", self.dir, "--daemonize", "no"])

    def ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def env(self):
        """What springfield needs to use this server."""
        return {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port)}


# --------------------------------------------------------------------------
# monitoring


class Prometheus(Server):
    """prometheus (Debian's 2.42) scraping one target every second, its
    data in the test directory, its API on a port of its own.  target is
    "127.0.0.1:PORT" and path the metrics path there."""

    name = "prometheus"
    binary = "/usr/bin/prometheus"

    def __init__(self, tmpdir, target, path):
        super().__init__(tmpdir)
        self.target = target
        self.path = path
        self.port = free_port()
        self.conf = os.path.join(self.dir, "prometheus.yml")

    def write_config(self):
        if not os.access(self.binary, os.X_OK):
            raise ServerError("%s is missing (Debian package prometheus)" % self.binary)
        with open(self.conf, "w") as f:
            f.write("""\
# generated by tests/integration/servers.py
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: springfield
    metrics_path: {path}
    static_configs:
      - targets: ["{target}"]
""".format(path=self.path, target=self.target))

    def command(self):
        return [self.binary, "--config.file=" + self.conf,
                "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                "--web.listen-address=127.0.0.1:%d" % self.port]

    def ready(self):
        return http_ready(self.port, "/-/ready")
