"""Real Apache httpd 2.4 (Debian's apache2) in front of springfield, and
springfield started by deploy/spawn-fcgi.sh -- configured from the shipped
deploy/ files, so the files we ship are the files we test.

    ApacheProxyFcgi(tmpdir, upstream)
        mod_proxy_fcgi to a running springfield (a Springfield launcher,
        'unix:/path' or (host, port)).  Site config: deploy/apache-proxy-fcgi.conf
        with the socket path replaced (or the unix: worker by fcgi://HOST:PORT/).
    ApacheFcgid(tmpdir, env=None, max_processes=1, binary=None)
        mod_fcgid starting springfield itself.  Site config: deploy/apache-fcgid.conf
        with the binary path, FcgidMaxProcessesPerClass and the FcgidInitialEnv
        values in `env` replaced.  .springfield_pids() lists the processes
        mod_fcgid started (from its error log); after stop() every one of them
        must be gone, and none may have reported a memory error.
    SpawnFcgiScript(tmpdir, extra_args=(), env=None)
        springfield started by deploy/spawn-fcgi.sh in the foreground (spawn-fcgi
        -n execs springfield, so .pid is springfield's), socket 0666, and as
        root running as nobody.  A servers.Springfield otherwise.

Apache runs with -DFOREGROUND and a generated minimal main config: only the
modules needed, one child process (ServerLimit 1) so connection reuse is
observable, every file (pid, logs, mutexes, runtime dir, fcgid sockets)
inside its test directory, and as root User nobody / Group nogroup.  The
main config mirrors Debian's apache2.conf where it matters: / denied, the
document root granted.
"""

import http.client
import os
import re
import signal
import time

import servers
from servers import REPO, Server, ServerError, free_port, http_ready

APACHE_BIN = "/usr/sbin/apache2"
MODULES_DIR = "/usr/lib/apache2/modules"
DEPLOY = os.path.join(REPO, "deploy")

# What the shipped files say, and the tests replace.
DEPLOY_SOCKET = "/run/springfield/springfield.sock"
DEPLOY_BINARY = "/usr/local/bin/springfield"


def deploy_file(name):
    path = os.path.join(DEPLOY, name)
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise ServerError("cannot read %s: %s" % (path, e))


def replace_once_or_more(text, old, new, source):
    """text with `old` replaced; a deploy file that no longer contains it
    fails loudly instead of silently testing something else."""
    if old not in text:
        raise ServerError("%s no longer contains %r; update tests/integration/"
                          "launch_apache.py with it" % (source, old))
    return text.replace(old, new)


def replace_directive(text, directive, value, source):
    """Set the (uncommented) server-level `directive` to `value`."""
    rx = re.compile(r"^(\s*)%s\s+\S.*$" % re.escape(directive), re.M)
    if not rx.search(text):
        raise ServerError("%s has no %s line; update tests/integration/launch_apache.py"
                          % (source, directive))
    return rx.sub(lambda m: "%s%s %s" % (m.group(1), directive, value), text)


def _quote(value):
    return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')


def process_gone(pid):
    """True when pid no longer exists or is a zombie (the process was
    orphaned when Apache exited and init has not reaped it yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


class Apache(Server):
    """Base: a generated httpd.conf that loads `modules` and includes
    site.conf (written by the subclass's site())."""

    name = "apache"
    modules = ()

    def __init__(self, tmpdir, log_level="info"):
        super().__init__(tmpdir)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "httpd.conf")
        self.site_conf = os.path.join(self.dir, "site.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.docroot = os.path.join(self.dir, "htdocs")
        self.log_level = log_level

    # -- for subclasses

    def site(self):
        raise NotImplementedError

    def main_extra(self):
        return ""

    # --

    def write_config(self):
        if not os.access(APACHE_BIN, os.X_OK):
            raise ServerError("%s is missing (Debian package apache2)" % APACHE_BIN)
        for m in self.modules:
            if not os.path.exists(os.path.join(MODULES_DIR, "mod_%s.so" % m)):
                raise ServerError("%s/mod_%s.so is missing" % (MODULES_DIR, m))
        d = self.dir
        run = os.path.join(d, "run")
        os.makedirs(run, exist_ok=True)
        os.makedirs(self.docroot, exist_ok=True)
        for p in (run, self.docroot):
            os.chmod(p, 0o755)
        with open(os.path.join(self.docroot, "index.html"), "w") as f:
            f.write("apache test root\n")  # what the readiness probe fetches
        # As root the children must run as someone else (Apache refuses
        # root); springfield's socket is 0666 and the directories 0755.
        user = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
        loads = "".join("LoadModule %s_module %s/mod_%s.so\n" % (m, MODULES_DIR, m)
                        for m in self.modules)
        with open(self.site_conf, "w") as f:
            f.write(self.site())
        with open(self.conf, "w") as f:
            f.write("""\
# generated by tests/integration/launch_apache.py
ServerRoot "{d}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile "{d}/httpd.pid"
DefaultRuntimeDir "{run}"
Mutex file:{run} default
ErrorLog "{error_log}"
LogLevel {log_level}
LogFormat "%h \\"%r\\" %>s %b %D" springfield_test
CustomLog "{access_log}" springfield_test
{user}
{loads}
# one child: connection reuse to springfield is observable
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 32
Timeout 30
KeepAlive On

DocumentRoot "{docroot}"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{docroot}">
    Require all granted
</Directory>
{main_extra}
Include "{site}"
""".format(d=d, run=run, port=self.port, error_log=self.error_log,
           log_level=self.log_level, access_log=self.access_log, user=user, loads=loads,
           docroot=self.docroot, main_extra=self.main_extra(), site=self.site_conf))

    def command(self):
        return [APACHE_BIN, "-DFOREGROUND", "-f", self.conf, "-d", self.dir]

    def ready(self):
        return http_ready(self.port)

    def error_log_text(self):
        try:
            with open(self.error_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log(self):
        return super().log() + "\n--- error.log ---\n" + self.error_log_text()


class ApacheProxyFcgi(Apache):
    name = "apache-proxy-fcgi"
    modules = ("mpm_event", "authz_core", "authz_host", "proxy", "proxy_fcgi")
    source = "deploy/apache-proxy-fcgi.conf"

    def __init__(self, tmpdir, upstream, **kw):
        super().__init__(tmpdir, **kw)
        self.target = servers._upstream_of(upstream)

    def site(self):
        text = deploy_file("apache-proxy-fcgi.conf")
        if isinstance(self.target, tuple):
            return replace_once_or_more(text, "unix:%s|fcgi://localhost/" % DEPLOY_SOCKET,
                                        "fcgi://%s:%d/" % self.target, self.source)
        return replace_once_or_more(text, DEPLOY_SOCKET, self.target, self.source)


class ApacheFcgid(Apache):
    name = "apache-fcgid"
    modules = ("mpm_event", "authz_core", "fcgid")
    source = "deploy/apache-fcgid.conf"
    STARTED = re.compile(r"mod_fcgid: server [^\n]*?\((\d+)\) started")

    def __init__(self, tmpdir, env=None, max_processes=1, binary=None, **kw):
        super().__init__(tmpdir, **kw)
        self.app_env = dict(env or {})
        self.max_processes = max_processes
        self.binary = binary or servers.springfield_bin()
        self.ipc_dir = os.path.join(self.dir, "fcgid")

    def main_extra(self):
        # mod_fcgid creates the directory itself, owned by Apache's User
        return 'FcgidIPCDir "%s"\nFcgidProcessTableFile "%s/shm"\n' % (self.ipc_dir,
                                                                       self.ipc_dir)

    def site(self):
        if not os.access(self.binary, os.X_OK):
            raise ServerError("springfield binary %s is missing or not executable "
                              "(build it, or set SPRINGFIELD_BIN)" % self.binary)
        text = deploy_file("apache-fcgid.conf")
        text = replace_once_or_more(text, DEPLOY_BINARY, self.binary, self.source)
        text = replace_directive(text, "FcgidMaxProcessesPerClass", self.max_processes,
                                 self.source)
        extra = []
        for k, v in self.app_env.items():
            rx = re.compile(r"^(\s*)FcgidInitialEnv\s+%s\s+.*$" % re.escape(k), re.M)
            line = "FcgidInitialEnv %s %s" % (k, _quote(v))
            if rx.search(text):
                text = rx.sub(lambda m: m.group(1) + line, text)
            else:
                extra.append(line)
        return text + "\n# added by the test\n" + "\n".join(extra) + "\n"

    def start(self, timeout=servers.START_TIMEOUT):
        """Apache is up; then the first request makes mod_fcgid start
        springfield, and only a 200 from it counts as started."""
        super().start(timeout)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    conn.request("GET", "/api/v1/flanders")
                    r = conn.getresponse()
                    last = (r.status, r.read()[:200])
                finally:
                    conn.close()
                if last[0] == 200:
                    return self
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        msg = ("springfield under mod_fcgid did not answer GET /api/v1/flanders with 200 "
               "within %.0fs (last: %r)\n--- log tail ---\n%s"
               % (timeout, last, self.log()[-4000:]))
        self.stop()
        raise ServerError(msg)

    def springfield_pids(self):
        return [int(p) for p in self.STARTED.findall(self.error_log_text())]

    def after_stop(self):
        # mod_fcgid's process manager stops springfield when Apache stops
        pids = self.springfield_pids()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(process_gone(p) for p in pids):
            time.sleep(0.05)
        left = [p for p in pids if not process_gone(p)]
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            raise ServerError("springfield process(es) %s outlived Apache by 5 s" % left)
        found = servers.Springfield.MEMORY_ERRORS.search(self.error_log_text())
        if found:
            raise ServerError("springfield under mod_fcgid reported a memory error (%s)\n"
                              "--- error.log tail ---\n%s"
                              % (found.group(0), self.error_log_text()[-6000:]))


class SpawnFcgiScript(servers.Springfield):
    """springfield started by deploy/spawn-fcgi.sh (foreground)."""

    def __init__(self, tmpdir, extra_args=(), env=None, binary=None):
        super().__init__(tmpdir, listen="unix", extra_args=extra_args, env=env, binary=binary)
        self.script = os.path.join(DEPLOY, "spawn-fcgi.sh")

    def command(self):
        if not os.access(self.binary, os.X_OK):
            raise ServerError("springfield binary %s is missing or not executable "
                              "(build it, or set SPRINGFIELD_BIN)" % self.binary)
        if not os.access(self.script, os.X_OK):
            raise ServerError("%s is missing or not executable" % self.script)
        return [self.script] + self.extra_args

    def environment(self):
        env = super().environment()
        env.update({"SPRINGFIELD": self.binary, "SOCKET": self.sock, "SOCKET_MODE": "0666",
                    "RUN_USER": "nobody", "RUN_GROUP": "nogroup", "SOCKET_GROUP": "nogroup"})
        return env
