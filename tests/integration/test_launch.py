"""Launch and lifecycle (issue 2): the command line and its environment
twins, the listening socket (unix, TCP, inherited on fd 0), the --workers
supervisor, signals and the graceful stop, SIGPIPE, the idle timeout and
the access log.

springfield is driven directly with fcgi_client.py (no front server): these
behaviours belong to the process, not to nginx or lighttpd. Every wait is
bounded; a test that needs a slow request uses the weather stub in slow
mode behind /api/v1/maggie.
"""

import os
import re
import signal
import socket
import stat
import subprocess
import time

import pytest

import fcgi_client as fc
import servers
from launch_weather import WeatherStub

FLANDERS = b"Hi-dilly-ho, neighborino!"
YAHOO_SENTENCE = b"Currently 72 degrees and Sunny in Austin, TX"
# "<method> <path> <status> <bytes> <usec>us", a line of its own
ACCESS_LINE = re.compile(r"^([A-Z]+) (/\S*) (\d{3}) (\d+) (\d+)us$", re.M)
RUN_TIMEOUT = 5  # a command line that should exit at once


# ---------------------------------------------------------------- helpers


def clean_env(extra=None):
    """os.environ without backends, SPRINGFIELD_* twins or FCGI_WEB_SERVER_ADDRS
    (a developer's shell must not change what a test sees), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in servers.BACKEND_ENV and not k.startswith("SPRINGFIELD_")
           and k != "FCGI_WEB_SERVER_ADDRS"}
    env.update(extra or {})
    return env


def run_sf(args, env=None, timeout=RUN_TIMEOUT):
    """springfield with `args`, expected to exit on its own (stdin is
    /dev/null, so it never serves an inherited socket). A springfield that
    keeps running instead is killed and the test fails."""
    try:
        return subprocess.run([servers.springfield_bin()] + list(args), env=clean_env(env),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail("springfield %s did not exit within %ds (it should have refused to "
                    "start)\nstderr: %s" % (" ".join(args), timeout,
                                            (e.stderr or b"").decode("utf-8", "replace")))


class Sf(servers.Springfield):
    """springfield with a command line of the test's own.

    args     everything after the binary
    address  where readiness is probed and requests go: a unix socket path
             or ("127.0.0.1", port)
    name     its own directory and log, so one test can run two
    The environment is clean_env() plus env."""

    def __init__(self, tmpdir, args, address, env=None, name="springfield"):
        self.name = name
        super().__init__(tmpdir, listen="unix", env=env)
        self.args = list(args)
        self._address = address

    @property
    def address(self):
        return self._address

    def command(self):
        if not os.access(self.binary, os.X_OK):
            raise servers.ServerError("springfield binary %s is missing or not executable "
                                      "(build it, or set SPRINGFIELD_BIN)" % self.binary)
        return [self.binary] + self.args

    def environment(self):
        return clean_env(self.extra_env)

    def ready(self):
        if isinstance(self._address, tuple):
            return servers.tcp_ready(self._address[1], self._address[0])
        return servers.unix_ready(self._address)


class InheritedSf(Sf):
    """springfield without --listen, its stdin a listening socket the test
    made (what spawn-fcgi, mod_fcgid or systemd hand over on fd 0)."""

    def __init__(self, tmpdir, listener, env=None):
        addr = listener.getsockname()
        super().__init__(tmpdir, [], addr if isinstance(addr, str) else tuple(addr[:2]), env)
        self.listener = listener

    def start(self, timeout=servers.START_TIMEOUT):
        cmd = self.command()
        with open(self.log_path, "ab") as logf:
            logf.write(("=== start: %s (stdin: %r)\n" % (" ".join(cmd), self._address)).encode())
            logf.flush()
            self.proc = subprocess.Popen(cmd, stdin=self.listener.fileno(), stdout=logf,
                                         stderr=subprocess.STDOUT, cwd=self.dir,
                                         env=self.environment(), start_new_session=True)
        # Connections to our socket queue in its backlog until springfield
        # accepts them, so "ready" is simply: started and still running.
        time.sleep(0.05)
        if self.proc.poll() is not None:
            rc, self.proc = self.proc.returncode, None
            raise servers.ServerError("springfield exited with status %s on an inherited "
                                      "socket\n%s" % (rc, servers.tail(self.log_path)))
        return self


def sf_unix(launch, workdir, *args, env=None, name="springfield"):
    """springfield on DIR/<name>.sock (mode 0666, as in servers.Springfield)."""
    path = os.path.join(workdir, name + ".sock")
    return launch(Sf, ["--listen", "unix:" + path, "--socket-mode", "0666"] + list(args),
                  path, env=env, name=name)


def flanders(address, timeout=5.0):
    """One GET /api/v1/flanders on a fresh connection; asserts the answer."""
    resp = fc.request(address, "GET", "/api/v1/flanders", timeout=timeout)
    assert resp.protocol_status == fc.REQUEST_COMPLETE, resp
    status, _, body = resp.http()
    assert (status, body) == (200, FLANDERS), resp.stdout
    return resp


def post(address, path, body, timeout=5.0):
    resp = fc.request(address, "POST", path, body=body, timeout=timeout)
    return resp.http()


def maggie_params():
    return fc.cgi_params("GET", "/api/v1/maggie")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("not within %.1fs: %s" % (timeout, what))
        time.sleep(0.02)


def wait_for_log(sf, pattern, timeout=5.0):
    rx = re.compile(pattern, re.M)
    try:
        return wait_until(lambda: rx.search(sf.log()), timeout, "log line %r" % pattern)
    except AssertionError as e:
        raise AssertionError("%s\n--- log tail ---\n%s" % (e, servers.tail(sf.log_path)))


def wait_exit(sf, timeout):
    """Waits for springfield to exit on its own; returns (status, seconds)."""
    t0 = time.monotonic()
    try:
        rc = sf.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("springfield still running %.1fs after the signal\n%s"
                             % (timeout, servers.tail(sf.log_path)))
    took = time.monotonic() - t0
    sf.stop()  # bookkeeping (proc = None, memory-error check); it has exited
    return rc, took


def in_flight_on_stub(weather, count=1, timeout=3.0):
    """Waits until the stub has received `count` /weather requests."""
    wait_until(lambda: weather.stats()["requests"] >= count, timeout,
               "%d request(s) reached the weather stub" % count)


def children(pid):
    """PIDs of the live (not zombie) child processes of pid, from /proc."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry))
    return out


def gone_or_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def access_lines(sf):
    return ACCESS_LINE.findall(sf.log())


# ---------------------------------------------------------------- command line


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_to_stdout(flag):
    r = run_sf([flag])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("Usage: springfield"), out[:200]
    for opt in ("--listen", "--socket-mode", "--workers", "--threads", "--max-conns",
                "--max-reqs", "--max-params-bytes", "--max-body-bytes", "--idle-timeout",
                "--shutdown-timeout", "--backend-timeout", "--no-access-log", "--log-level",
                "--help", "--version", "SPRINGFIELD_"):
        assert opt in out, "--help does not mention %s" % opt
    assert b"Usage" not in r.stderr, r.stderr


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_to_stdout(flag):
    r = run_sf([flag])
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(rb"springfield \d+\.\d+(\.\d+)?\S*\n", r.stdout), r.stdout
    assert r.stdout not in r.stderr, r.stderr


@pytest.mark.parametrize("args,env,named", [
    (["--bogus"], None, "--bogus"),
    (["--max-conns", "abc"], None, "max-conns"),
    (["--max-conns", "12x"], None, "max-conns"),
    (["--socket-mode", "999"], None, "socket-mode"),
    (["--workers", "-1"], None, "workers"),
    (["--idle-timeout", ""], None, "idle-timeout"),
    (["--log-level", "loud"], None, "log-level"),
    (["--max-conns"], None, "max-conns"),  # value missing
    (["--max-conns", " 12"], None, "max-conns"),
    (["--max-conns", "+12"], None, "max-conns"),
    (["--max-conns", "0x10"], None, "max-conns"),
    (["--receive-timeout", "0"], None, "receive-timeout"),
    (["--mysql-connections", "0"], None, "mysql-connections"),
    ([], {"SPRINGFIELD_MYSQL_CONNECTIONS": "65"}, "SPRINGFIELD_MYSQL_CONNECTIONS"),
    ([], {"SPRINGFIELD_MAX_CONNS": "abc"}, "SPRINGFIELD_MAX_CONNS"),
    ([], {"SPRINGFIELD_SOCKET_MODE": "999"}, "SPRINGFIELD_SOCKET_MODE"),
    ([], {"SPRINGFIELD_ACCESS_LOG": "maybe"}, "SPRINGFIELD_ACCESS_LOG"),
    ([], {"SPRINGFIELD_RECEIVE_TIMEOUT": "10s"}, "SPRINGFIELD_RECEIVE_TIMEOUT"),
    ([], {"SPRINGFIELD_MAX_OUTPUT_BYTES": "-1"}, "SPRINGFIELD_MAX_OUTPUT_BYTES"),
    ([], {"FCGI_WEB_SERVER_ADDRS": "127.0.0.1 bogus"}, "'bogus'"),
    ([], {"FCGI_WEB_SERVER_ADDRS": "127.0.0.1,,127.0.0.2"}, "FCGI_WEB_SERVER_ADDRS"),
    ([], {"FCGI_WEB_SERVER_ADDRS": "127.0.0.1/8"}, "'127.0.0.1/8'"),
    ([], {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "70000"}, "REDIS_PORT"),
    ([], {"REDIS_HOST": "127.0.0.1", "REDIS_DB": "-1"}, "REDIS_DB"),
    ([], {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "abc"}, "MYSQL_PORT"),
    ([], {"MONGODB_URI": "localhost:27017"}, "MONGODB_URI"),
    ([], {"WEATHER_URI": "ftp://weather.invalid/"}, "WEATHER_URI"),
    ([], {"AWS_S3_BUCKET": "b", "AWS_S3_SIGNATURE": "v3"}, "AWS_S3_SIGNATURE"),
    ([], {"AWS_S3_BUCKET": "b", "AWS_ENDPOINT_URL_S3": "127.0.0.1:9000"},
     "AWS_ENDPOINT_URL_S3"),
    ([], {"AWS_S3_BUCKET": "b", "AWS_ACCESS_KEY_ID": "k"}, "AWS_SECRET_ACCESS_KEY"),
    (["--workers", "2"], {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "3306x"}, "MYSQL_PORT"),
], ids=["unknown-flag", "max-conns-abc", "max-conns-trailing", "socket-mode-999",
        "workers-negative", "idle-empty", "log-level", "missing-value", "max-conns-blank",
        "max-conns-plus", "max-conns-hex", "receive-zero", "mysql-connections-zero",
        "env-mysql-connections-over", "env-max-conns",
        "env-socket-mode", "env-access-log", "env-receive-unit", "env-output-negative",
        "addrs-bogus", "addrs-empty-entry", "addrs-cidr", "redis-port", "redis-db",
        "mysql-port", "mongodb-uri", "weather-uri", "s3-signature", "s3-endpoint",
        "s3-one-key", "workers-mysql-port"])
def test_bad_command_line_exits_nonzero_naming_the_flag(workdir, args, env, named):
    sock = os.path.join(workdir, "never.sock")
    r = run_sf(["--listen", "unix:" + sock] + args, env=env)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0, "springfield accepted %r %r" % (args, env)
    assert named in err, "the message does not name %s: %r" % (named, err)
    assert r.stdout == b"", r.stdout
    assert not os.path.exists(sock), "it went on to open its socket"


def test_env_twin_sets_the_body_limit(launch, workdir):
    sf = sf_unix(launch, workdir, env={"SPRINGFIELD_MAX_BODY_BYTES": "1000"})
    status, _, body = post(sf.address, "/api/v1/marges/small", b"s" * 500)
    assert status == 204, body
    status, _, body = post(sf.address, "/api/v1/marges/big", b"b" * 2000)
    assert status == 413, "SPRINGFIELD_MAX_BODY_BYTES=1000 ignored: %d %r" % (status, body)


def test_flag_beats_its_env_twin(launch, workdir):
    sf = sf_unix(launch, workdir, "--max-body-bytes", "3000",
                 env={"SPRINGFIELD_MAX_BODY_BYTES": "1000"})
    status, _, body = post(sf.address, "/api/v1/marges/mid", b"m" * 2000)
    assert status == 204, "the env twin (1000) beat --max-body-bytes 3000: %d %r" % (status, body)
    status, _, body = post(sf.address, "/api/v1/marges/big", b"b" * 4000)
    assert status == 413, "--max-body-bytes 3000 not applied: %d %r" % (status, body)


# ---------------------------------------------------------------- unix sockets


@pytest.mark.parametrize("args,env,mode", [
    (["--socket-mode", "0600"], None, 0o600),
    (["--socket-mode", "600"], None, 0o600),  # octal without the leading 0
    ([], {"SPRINGFIELD_SOCKET_MODE": "0640"}, 0o640),
    ([], None, 0o660),  # the default
], ids=["flag-0600", "flag-600", "env-0640", "default-0660"])
def test_unix_socket_mode(launch, workdir, args, env, mode):
    path = os.path.join(workdir, "sf.sock")
    old = os.umask(0o077)  # the mode must not depend on the umask
    try:
        sf = launch(Sf, ["--listen", "unix:" + path] + args, path, env=env)
    finally:
        os.umask(old)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == mode, "socket mode %04o, expected %04o" \
        % (stat.S_IMODE(st.st_mode), mode)
    flanders(sf.address)


def test_stale_socket_file_is_replaced(launch, workdir):
    path = os.path.join(workdir, "sf.sock")
    # a socket file nobody listens on: what a killed server leaves behind
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.listen(1)
    stale.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    with pytest.raises(ConnectionRefusedError):
        fc.Connection(path, timeout=1)
    sf = launch(Sf, ["--listen", "unix:" + path], path)
    flanders(sf.address)  # the path that refused connections now serves


def test_socket_in_use_is_refused(launch, workdir):
    path = os.path.join(workdir, "sf.sock")
    first = launch(Sf, ["--listen", "unix:" + path], path)
    ino = os.lstat(path).st_ino
    r = run_sf(["--listen", "unix:" + path])
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0, "a second springfield started on a socket in use\n" + err
    assert "in use" in err and path in err, err
    # the first one keeps its socket and serves
    assert os.lstat(path).st_ino == ino, "the socket in use was replaced"
    flanders(first.address)
    assert first.alive()


def test_socket_with_a_full_backlog_is_refused_at_once(workdir):
    """A live socket whose backlog is full is in use: the start-up check
    must say so at once, not hang in a blocking connect()."""
    path = os.path.join(workdir, "busy.sock")
    busy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    busy.bind(path)
    busy.listen(0)
    waiting = []
    try:
        while True:                      # fill the backlog: nobody accepts
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(path)
            except BlockingIOError:
                s.close()
                break
            waiting.append(s)
            assert len(waiting) < 100
        t0 = time.monotonic()
        r = run_sf(["--listen", "unix:" + path])
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode != 0 and "in use" in err, err
        assert time.monotonic() - t0 < 3, "the start-up check waited on a full backlog"
        assert os.path.exists(path), "the live socket was removed"
    finally:
        for s in waiting:
            s.close()
        busy.close()


def test_socket_file_replaced_by_another_is_left_alone(launch, workdir):
    """At exit springfield removes its socket file only if it is still its
    own (device and inode): the socket of another instance that replaced
    it stays.  The removal is noticed and logged while running."""
    path = os.path.join(workdir, "sf.sock")
    sf = launch(Sf, ["--listen", "unix:" + path], path)
    flanders(sf.address)
    os.unlink(path)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(path)
    other.listen(4)
    try:
        wait_for_log(sf, r"socket file .*sf\.sock was removed or replaced", timeout=6)
        ino = os.lstat(path).st_ino
        os.kill(sf.pid, signal.SIGTERM)
        rc, _ = wait_exit(sf, 5)
        assert rc == 0
        assert os.path.exists(path) and os.lstat(path).st_ino == ino, \
            "springfield removed another instance's socket file"
    finally:
        other.close()


def test_own_socket_file_is_removed_at_exit(launch, workdir):
    path = os.path.join(workdir, "sf.sock")
    sf = launch(Sf, ["--listen", "unix:" + path], path)
    flanders(sf.address)
    os.kill(sf.pid, signal.SIGTERM)
    rc, _ = wait_exit(sf, 5)
    assert rc == 0 and not os.path.exists(path)


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_path_that_is_not_a_socket_is_refused(workdir, kind):
    path = os.path.join(workdir, "sf.sock")
    if kind == "file":
        with open(path, "wb") as f:
            f.write(b"precious data\n")
    else:
        os.mkdir(path)
    r = run_sf(["--listen", "unix:" + path])
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0, "springfield started over a %s\n%s" % (kind, err)
    assert path in err and "not a socket" in err, err
    if kind == "file":
        with open(path, "rb") as f:
            assert f.read() == b"precious data\n", "the file was touched"
    else:
        assert os.path.isdir(path)


# ---------------------------------------------------------------- TCP


def test_tcp_listen_serves(launch):
    port = servers.free_port()
    sf = launch(Sf, ["--listen", "127.0.0.1:%d" % port], ("127.0.0.1", port))
    flanders(sf.address)
    with fc.Connection(sf.address) as c:  # keep-alive over TCP, two requests
        for rid in (1, 2):
            c.send_request(rid, fc.cgi_params("GET", "/api/v1/flanders"))
            assert c.read_response(rid).http()[2] == FLANDERS


def test_refused_request_without_keep_conn_is_read_before_the_close(launch):
    """A refused request's records already in the socket (here about 80
    KiB of body, more than one read takes) are read and dropped before the
    close: a TCP socket closed with input unread resets the connection,
    and the peer gets ECONNRESET (and can lose the answer) instead of an
    end of stream.  springfield is stopped while they are sent, so that
    all of them are in its socket when it reads the first."""
    port = servers.free_port()
    sf = launch(Sf, ["--listen", "127.0.0.1:%d" % port], ("127.0.0.1", port))
    body = b"".join(fc.encode_record(fc.STDIN, 1, b"b" * n) for n in (65528, 16000))
    for _ in range(3):
        with fc.Connection(sf.address) as c:
            servers.sigstop(sf.pid)
            try:
                c.send(fc.encode_begin(1, role=fc.AUTHORIZER, flags=0) + body)  # (fits the socket)
            finally:
                os.kill(sf.pid, signal.SIGCONT)
            assert c.read_response(1).protocol_status == fc.UNKNOWN_ROLE
            assert not c.eof  # (the answer came first: the end is read below, as it comes)
            c.sock.settimeout(5.0)
            try:
                rest = c.sock.recv(1)
            except ConnectionResetError:
                pytest.fail("springfield closed with the refused request's records unread: reset")
            assert rest == b"", rest


def launch_on(launch, workdir, transport):
    """springfield listening over transport ("unix" or "tcp")."""
    if transport == "tcp":
        port = servers.free_port()
        return launch(Sf, ["--listen", "127.0.0.1:%d" % port], ("127.0.0.1", port))
    return sf_unix(launch, workdir)


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_refused_request_body_streamed_after_the_answer_is_taken(launch, workdir, transport):
    """A peer that streams a refused request's body (2 MiB here, in
    segments with pauses, as a front server relaying a slow upload) may
    send all of it: the connection is shut for writing after the refusal
    and what follows is read and dropped until the peer closes.  Closed at
    the first pause, the peer's next write fails (EPIPE, or a reset over
    TCP)."""
    sf = launch_on(launch, workdir, transport)
    chunk = fc.encode_record(fc.STDIN, 1, b"u" * 65528)
    with fc.Connection(sf.address) as c:
        c.send(fc.encode_begin(1, role=fc.AUTHORIZER, flags=0))
        assert c.read_response(1).protocol_status == fc.UNKNOWN_ROLE
        try:
            for _ in range(32):
                c.send(chunk)
                time.sleep(0.01)  # the socket empties: the server must not take it as the end
            c.send(fc.encode_record(fc.STDIN, 1, b""))
        except (BrokenPipeError, ConnectionResetError) as e:
            pytest.fail("springfield closed while the refused request's body was arriving: %r" % e)
        c.sock.settimeout(5.0)
        try:
            rest = c.sock.recv(1)
        except ConnectionResetError:
            pytest.fail("the connection was reset after the refused body")
        assert rest == b"", "more than the refusal arrived: %r" % rest
    flanders(sf.address)


def test_nothing_is_answered_after_a_refusal_that_closes(launch, workdir):
    """After a refusal without FCGI_KEEP_CONN the connection is done: a
    request sent on it anyway gets no records, only the end of the
    stream, and springfield closes it once the peer does (or LINGER_S,
    5 s, after the peer's last byte: a silent peer is not kept)."""
    sf = launch_on(launch, workdir, "unix")
    with fc.Connection(sf.address) as c:
        c.send(fc.encode_begin(1, role=fc.AUTHORIZER, flags=0))
        assert c.read_response(1).protocol_status == fc.UNKNOWN_ROLE
        c.send_request(2, fc.cgi_params("GET", "/api/v1/flanders"))
        assert c.is_closed_by_peer(2.0), "the connection was not shut after the refusal"
        assert 2 not in c.responses, "a request after the refusal was answered"
        time.sleep(1.0)
        try:
            c.send(b"x")  # still read (and dropped): the peer may still be sending
        except BrokenPipeError:
            pytest.fail("closed 1 s after the peer's last byte, before LINGER_S")
        time.sleep(6.5)  # then closed, LINGER_S after that byte
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            c.send(b"x")


def test_a_peer_trickling_after_a_refusal_is_ended_by_the_idle_timeout(launch, workdir):
    """Input after a refusal keeps the connection reading (each byte
    starts LINGER_S again), but it completes no record: a peer that
    trickles a byte every 0.5 s is closed at --idle-timeout (2 s here),
    not kept for as long as it trickles."""
    sf = sf_unix(launch, workdir, "--idle-timeout", "2")
    with fc.Connection(sf.address) as c:
        c.send(fc.encode_begin(1, role=fc.AUTHORIZER, flags=0))
        assert c.read_response(1).protocol_status == fc.UNKNOWN_ROLE
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < 15.0:
            try:
                c.send(b"x")
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            time.sleep(0.5)
        assert closed_after is not None, "a trickling peer kept its connection for 15 s"
        assert closed_after >= 1.5, "closed after %.1f s, before the idle timeout" % closed_after
    flanders(sf.address)


def refused_without_answer(address):
    """Connect, send a request; True when the server closes the connection
    without sending a single record."""
    c = fc.Connection(address, timeout=3)
    try:
        try:
            c.send_request(1, fc.cgi_params("GET", "/api/v1/flanders"))
        except (BrokenPipeError, ConnectionResetError):
            return True  # closed before we could even send
        closed = c.is_closed_by_peer(timeout=3)
        assert not c.responses and not c.management, \
            "records arrived: %r" % (c.responses or c.management)
        return closed
    finally:
        c.close()


@pytest.mark.parametrize("allowed,answered", [
    ("127.0.0.2", False),
    ("127.0.0.1", True),
    ("127.0.0.2,127.0.0.1", True),
    ("127.0.0.2 127.0.0.1", True),
    ("127.0.0.2, 127.0.0.1 ::1", True),
    ("127.0.0.2 ::1 127.0.0.3", False),
], ids=["other-addr", "our-addr", "list", "spaces", "mixed", "spaces-without-ours"])
def test_fcgi_web_server_addrs(launch, allowed, answered):
    """The list is split on commas and/or blanks (blanks alone used to
    write past the end of the parsed array, and the process then ignored
    SIGTERM)."""
    port = servers.free_port()
    sf = launch(Sf, ["--listen", "127.0.0.1:%d" % port], ("127.0.0.1", port),
                env={"FCGI_WEB_SERVER_ADDRS": allowed})
    if answered:
        flanders(sf.address)
    else:
        for _ in range(3):
            assert refused_without_answer(sf.address), \
                "FCGI_WEB_SERVER_ADDRS=%s: a connection from 127.0.0.1 stayed open" % allowed
    assert sf.alive()
    os.kill(sf.pid, signal.SIGTERM)
    rc, _ = wait_exit(sf, 5)
    assert rc == 0


def test_fcgi_web_server_addrs_does_not_apply_to_unix_sockets(launch, workdir):
    # as in libfcgi: on a unix socket the file mode is the access control
    sf = sf_unix(launch, workdir, env={"FCGI_WEB_SERVER_ADDRS": "127.0.0.2"})
    flanders(sf.address)


# ---------------------------------------------------------------- inherited fd 0


@pytest.mark.parametrize("family", ["unix", "tcp"])
def test_inherited_listening_socket_on_stdin(launch, workdir, family):
    if family == "unix":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(os.path.join(workdir, "inherited.sock"))
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        sf = launch(InheritedSf, listener)
        # nobody in this process accepts: an answer comes from springfield
        flanders(sf.address, timeout=5)
        with fc.Connection(sf.address) as c:
            c.send_request(1, fc.cgi_params("GET", "/api/v1/flanders"))
            assert c.read_response(1).http()[2] == FLANDERS
        assert sf.alive()
        assert "127.0.0.1:9000" not in sf.log(), "it listened on the default address"
    finally:
        listener.close()


class TracedSf(Sf):
    """Sf under strace, which records the system calls springfield makes
    on the connections it accepts; the traced springfield is stopped first
    (strace then ends by itself)."""

    CALLS = ("setsockopt", "recvfrom", "read", "write", "close")

    def __init__(self, tmpdir, args, address):
        super().__init__(tmpdir, args, address, name="traced")
        self.trace = os.path.join(self.dir, "strace.out")

    def command(self):
        return (["strace", "-f", "-qq", "-e", "trace=accept4," + ",".join(self.CALLS),
                 "-o", self.trace] + super().command())

    def environment(self):
        # LeakSanitizer cannot work under ptrace (a sanitizer build in
        # tests/run stage 4): it would fail at exit, not find a leak
        env = super().environment()
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        return env

    def stop(self, timeout=servers.STOP_TIMEOUT):
        if self.proc is not None and self.proc.poll() is None:
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                children = [int(pid) for pid in f.read().split()]
            for pid in children:
                os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                # not stopped: killed, so that no springfield outlives the
                # test (strace would detach from it); the trace then shows
                # no close, and the test fails on it
                for pid in children:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        return super().stop(timeout)

    def calls_by_connection(self):
        """For each connection springfield accepted, in order, the calls it
        made on it up to its close: (name, the rest of the line)."""
        conns, live = [], {}
        with open(self.trace) as f:
            for line in f:
                m = re.search(r"accept4\(.*\) = (\d+)", line)
                if m:
                    live[int(m.group(1))] = len(conns)
                    conns.append([])
                    continue
                m = re.search(r"\b(%s)\((\d+)(.*)" % "|".join(self.CALLS), line)
                if m and int(m.group(2)) in live:
                    fd = int(m.group(2))
                    conns[live[fd]].append((m.group(1), m.group(3)))
                    if m.group(1) == "close":
                        del live[fd]
        return conns


def traced(launch, workdir, family):
    if family == "unix":
        path = os.path.join(workdir, "traced.sock")
        return launch(TracedSf, ["--listen", "unix:" + path, "--no-access-log"], path)
    port = servers.free_port()
    return launch(TracedSf, ["--listen", "127.0.0.1:%d" % port, "--no-access-log"],
                  ("127.0.0.1", port))


@pytest.mark.parametrize("family", ["unix", "tcp"])
def test_tcp_nodelay_only_on_tcp_connections(launch, workdir, family):
    """TCP_NODELAY is set, and takes, on every TCP connection (answers are
    not held back by Nagle's algorithm), and is not tried on a unix socket,
    where it is a system call that fails on every connection."""
    sf = traced(launch, workdir, family)
    for _ in range(3):
        flanders(sf.address)
    sf.stop()
    conns = sf.calls_by_connection()
    assert len(conns) >= 3, "springfield accepted %d connections (strace: %s)" % (len(conns), sf.trace)
    for calls in conns:
        nodelay = [rest for name, rest in calls if name == "setsockopt" and "TCP_NODELAY" in rest]
        if family == "tcp":
            assert len(nodelay) == 1 and nodelay[0].endswith(" = 0"), calls
        else:
            assert nodelay == [], calls


def test_close_after_a_request_without_keep_conn_is_at_once(launch, workdir):
    """After answering a request without FCGI_KEEP_CONN, springfield closes
    the connection without first looking for more input (a recv with
    MSG_PEEK on every connection, which only a stopping server needs): one
    read, one write, the close."""
    sf = traced(launch, workdir, "unix")
    for _ in range(3):
        resp = fc.request(sf.address, "GET", "/api/v1/flanders", flags=0)
        assert resp.http()[::2] == (200, FLANDERS), resp.stdout
    sf.stop()
    conns = sf.calls_by_connection()
    # (not the readiness probe's connection, which asked FCGI_GET_VALUES)
    served = [calls for calls in conns
              if any(name == "write" and "Status: 200" in rest for name, rest in calls)]
    assert len(served) == 3, conns
    for calls in served:
        assert [name for name, _ in calls] == ["read", "write", "close"], calls


def test_stop_signal_during_start_up_stops(workdir):
    """A SIGTERM that comes while springfield starts (its handler set, its
    loop not yet running) stops it: with nothing in flight it drains at
    once, before the loop, and the loop used to forget that and serve on
    until killed.  The window is a few milliseconds wide, so the signal's
    delay hunts for it: earlier after a death by the default action (too
    early), later after a stop from the loop (too late), until it lands
    there three times."""
    sock = os.path.join(workdir, "early.sock")
    delay, landed, tries = 0.010, 0, 0
    while landed < 3:
        tries += 1
        assert tries <= 300, "no SIGTERM landed in start-up in 300 tries (last delay %.4f s)" % delay
        if os.path.exists(sock):
            os.unlink(sock)
        p = subprocess.Popen([servers.springfield_bin(), "--listen", "unix:" + sock,
                              "--no-access-log"], env=clean_env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            pytest.fail("springfield still running 5 s after a SIGTERM %.4f s after its start:\n%s"
                        % (delay, p.stderr.read().decode(errors="replace")[-2000:]))
        err = p.stderr.read().decode(errors="replace")
        if "(during start-up)" in err:
            assert rc == 0, err[-2000:]
            landed += 1
        elif rc == -signal.SIGTERM:
            delay *= 1.05  # before the handler: too early
        else:
            delay *= 0.95  # from the loop: too late


# ---------------------------------------------------------------- --workers


def test_workers_supervisor_restarts_and_stops(launch, workdir):
    sf = sf_unix(launch, workdir, "--workers", "2")
    workers = wait_until(lambda: (lambda k: k if len(k) == 2 else None)(children(sf.pid)),
                         5, "2 worker processes under the supervisor")
    for _ in range(6):
        flanders(sf.address)

    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    # once it is dead (its descriptors closed), the other worker alone must answer
    wait_until(lambda: gone_or_zombie(victim), 2, "worker %d dead" % victim)
    answered = 0
    deadline = time.monotonic() + 5
    while True:
        flanders(sf.address)
        answered += 1
        now = children(sf.pid)
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, \
            "no replacement worker within 5 s (children now: %s)\n%s" \
            % (sorted(now), servers.tail(sf.log_path))
        time.sleep(0.02)
    new = now - workers
    assert len(new) == 1 and (workers - {victim}) <= now, (workers, now)
    for _ in range(6):
        flanders(sf.address)
    wait_for_log(sf, r"worker %d killed by signal 9" % victim)

    os.kill(sf.pid, signal.SIGTERM)
    rc, took = wait_exit(sf, 5)
    assert rc == 0, "supervisor exit status %s after SIGTERM" % rc
    for pid in now:
        assert gone_or_zombie(pid), "worker %d still running after the supervisor exited" % pid


# ---------------------------------------------------------------- signals


@pytest.fixture
def weather(launch):
    return launch(WeatherStub)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_finishes_the_request_in_flight(launch, workdir, weather, sig):
    weather.mode("slow", ms=1500)
    sf = sf_unix(launch, workdir, "--backend-timeout", "5000",
                 env={"WEATHER_URI": weather.uri})
    with fc.Connection(sf.address, timeout=10) as c:
        c.send_request(1, maggie_params())
        in_flight_on_stub(weather)
        t0 = time.monotonic()
        os.kill(sf.pid, sig)
        wait_for_log(sf, r"signal %d:" % sig)
        # the listening socket is closed at once: new connections are refused
        # (or find no socket file, had springfield removed it already)
        with pytest.raises((ConnectionRefusedError, FileNotFoundError)):
            fc.Connection(sf.address, timeout=1).close()
        try:
            resp = c.read_response(1, timeout=5)
        except fc.Closed:
            raise AssertionError("the request in flight lost its connection at %s\n%s"
                                 % (sig.name, servers.tail(sf.log_path)))
        status, _, body = resp.http()
        assert (status, body) == (200, YAHOO_SENTENCE), resp.stdout
        assert c.is_closed_by_peer(timeout=3), "connection left open after the answer"
    log_path = sf.log_path
    rc, _ = wait_exit(sf, 5)
    assert rc == 0, "exit status %s after %s\n%s" % (rc, sig.name, servers.tail(log_path))
    took = time.monotonic() - t0
    assert took < 3.5, "exit %.1fs after %s with a 1.5 s request in flight" % (took, sig.name)


def test_workers_stop_finishes_in_flight_and_refuses_new(launch, workdir, weather):
    weather.mode("slow", ms=1500)
    sf = sf_unix(launch, workdir, "--workers", "2", "--backend-timeout", "5000",
                 env={"WEATHER_URI": weather.uri})
    wait_until(lambda: len(children(sf.pid)) == 2, 5, "2 worker processes")
    with fc.Connection(sf.address, timeout=10) as c:
        c.send_request(1, maggie_params())
        in_flight_on_stub(weather)
        t0 = time.monotonic()
        os.kill(sf.pid, signal.SIGTERM)
        wait_until(lambda: sf.log().count("no new connections") == 2, 3,
                   "both workers stopped accepting")
        # DESIGN.md: stop accepting. A connection the kernel still queues
        # would only be dropped unanswered when the supervisor exits.
        try:
            late = fc.Connection(sf.address, timeout=1)
        except (ConnectionRefusedError, FileNotFoundError):
            late = None
        if late is not None:
            late.close()
            raise AssertionError("a new connection was accepted after SIGTERM to the "
                                 "supervisor (its listening socket is still open)")
        resp = c.read_response(1, timeout=5)
        assert resp.http()[::2] == (200, YAHOO_SENTENCE), resp.stdout
    rc, _ = wait_exit(sf, 5)
    assert rc == 0
    assert time.monotonic() - t0 < 3.5


def test_workers_signal_to_the_whole_group_still_drains(launch, workdir, weather):
    """Ctrl-C and systemd signal every process of the group; the supervisor
    then signals its workers again.  The second signal must not kill a
    worker that is finishing its requests."""
    weather.mode("slow", ms=1500)
    sf = sf_unix(launch, workdir, "--workers", "1", "--backend-timeout", "5000",
                 env={"WEATHER_URI": weather.uri})
    wait_until(lambda: len(children(sf.pid)) == 1, 5, "1 worker process")
    (worker,) = children(sf.pid)
    with fc.Connection(sf.address, timeout=10) as c:
        c.send_request(1, maggie_params())
        in_flight_on_stub(weather)
        os.killpg(sf.pid, signal.SIGTERM)   # the launcher starts springfield in its own group
        wait_until(lambda: "no new connections" in sf.log(), 3, "the worker draining")
        os.kill(worker, signal.SIGTERM)      # the second signal, once the first was handled
        resp = c.read_response(1, timeout=5)
        assert resp.http()[::2] == (200, YAHOO_SENTENCE), resp.stdout
    rc, _ = wait_exit(sf, 5)
    assert rc == 0


def test_shutdown_timeout_bounds_a_stuck_request(launch, workdir, weather):
    """Past --shutdown-timeout the request still in flight is dropped: the
    log says how many, and the exit status (3) says requests were lost."""
    weather.mode("slow", ms=4000)
    sf = sf_unix(launch, workdir, "--shutdown-timeout", "1", "--backend-timeout", "5000",
                 env={"WEATHER_URI": weather.uri})
    with fc.Connection(sf.address, timeout=10) as c:
        c.send_request(1, maggie_params())
        in_flight_on_stub(weather)
        os.kill(sf.pid, signal.SIGTERM)
        log = sf.log_path
        rc, took = wait_exit(sf, 4)
        assert rc == 3, "exit status %s after dropping a request at the deadline" % rc
        with open(log) as f:
            text = f.read()
        assert re.search(r"dropping 1 unanswered request", text), text[-2000:]
        assert 0.8 <= took <= 2.5, "exit %.2fs after SIGTERM with --shutdown-timeout 1" % took
        assert c.is_closed_by_peer(timeout=1), "the stuck request's connection is still open"
        r = c.responses.get(1)
        assert r is None or r.http()[0] != 200, "a 4 s request answered 200 within 1 s?"


def test_sighup_to_the_whole_group_reloads_once(launch, workdir, weather):
    """SIGHUP used to kill a single process at once (requests dropped, the
    socket file left behind).  Sent to the whole group, as a closing
    terminal does, it is one reload: the process it reaches first starts a
    new one, a supervisor's workers ignore it, the request in flight is
    answered, and the old process exits 0 once the new one serves."""
    weather.mode("slow", ms=800)
    for args in ([], ["--workers", "2"]):
        name = "sf%d" % len(args)
        pid_file = os.path.join(workdir, name + ".pid")
        sf = sf_unix(launch, workdir, "--pid-file", pid_file, *args,
                     env={"WEATHER_URI": weather.uri}, name=name)
        if args:
            wait_until(lambda: len(children(sf.pid)) == 2, 5, "2 worker processes")
        with fc.Connection(sf.address, timeout=10) as c:
            c.send_request(1, maggie_params())
            time.sleep(0.2)
            os.killpg(sf.pid, signal.SIGHUP)  # the whole group, as a closing terminal does
            resp = c.read_response(1, timeout=5)
            assert resp.http()[::2] == (200, YAHOO_SENTENCE), resp.stdout
        if args:
            wait_for_log(sf, r"SIGHUP: ignored in a worker")
        rc, _ = wait_exit(sf, 10)
        assert rc == 0
        with open(pid_file) as f:
            new = int(f.read())
        assert new != sf.pid
        flanders(sf.address)  # the new one serves the same socket file
        os.kill(new, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(pid_file), 10, "the new process to stop")
        assert not os.path.exists(sf.address), "the socket file outlived the last process"


def test_workers_stop_when_the_supervisor_is_killed(launch, workdir, weather):
    """A SIGKILLed supervisor cannot stop its workers: they notice its
    death and stop gracefully, finishing the request in flight."""
    weather.mode("slow", ms=1000)
    sf = sf_unix(launch, workdir, "--workers", "2", env={"WEATHER_URI": weather.uri})
    workers = wait_until(lambda: (lambda k: k if len(k) == 2 else None)(children(sf.pid)),
                         5, "2 worker processes")
    with fc.Connection(sf.address, timeout=10) as c:
        c.send_request(1, maggie_params())
        in_flight_on_stub(weather)
        os.kill(sf.pid, signal.SIGKILL)
        resp = c.read_response(1, timeout=5)
        assert resp.http()[::2] == (200, YAHOO_SENTENCE), resp.stdout
    sf.proc.wait(5)
    wait_until(lambda: all(gone_or_zombie(p) for p in workers), 5,
               "workers %s stopped after their supervisor was killed" % sorted(workers))
    assert sf.log().count("no new connections") >= 2, servers.tail(sf.log_path)
    sf.stop()


def test_sigpipe_client_gone_before_the_answer(launch, workdir, weather):
    weather.mode("slow", ms=800)
    sf = sf_unix(launch, workdir, env={"WEATHER_URI": weather.uri})
    # several clients that ask and hang up; the answers are written to dead sockets
    conns = []
    for rid in range(1, 4):
        c = fc.Connection(sf.address, timeout=5)
        c.send_request(rid, maggie_params())
        conns.append(c)
    in_flight_on_stub(weather, 3)
    for c in conns:
        c.close()
    time.sleep(1.3)  # the stub answers after 0.8 s; springfield writes to closed sockets
    assert sf.alive(), "springfield died (status %s) writing to a closed client\n%s" \
        % (sf.proc.poll(), servers.tail(sf.log_path))
    weather.mode("ok")
    resp = fc.request(sf.address, "GET", "/api/v1/maggie")
    assert resp.http()[2] == YAHOO_SENTENCE
    flanders(sf.address)


def test_sigpipe_client_gone_in_the_middle_of_a_large_answer(launch, workdir):
    sf = sf_unix(launch, workdir)
    big = os.urandom(4 * 1024 * 1024)
    status, _, body = post(sf.address, "/api/v1/marges/big", big, timeout=10)
    assert status == 204, body
    for _ in range(3):
        c = fc.Connection(sf.address, timeout=5)
        c.send_request(1, fc.cgi_params("GET", "/api/v1/marges/big"))
        c.sock.recv(1024)  # springfield is writing; the rest waits in its buffer
        c.close()
    time.sleep(0.3)
    assert sf.alive(), "springfield died (status %s) writing to a closed client\n%s" \
        % (sf.proc.poll(), servers.tail(sf.log_path))
    flanders(sf.address)


# ---------------------------------------------------------------- idle timeout


def test_idle_connection_is_closed(launch, workdir):
    sf = sf_unix(launch, workdir, "--idle-timeout", "1")
    with fc.Connection(sf.address) as c:
        c.send_request(1, fc.cgi_params("GET", "/api/v1/flanders"))
        assert c.read_response(1).http()[2] == FLANDERS
        t0 = time.monotonic()
        assert c.still_open(0.5), "closed well before the idle timeout"
        assert c.is_closed_by_peer(timeout=3), "an idle connection open 3.5 s with " \
            "--idle-timeout 1"
        took = time.monotonic() - t0
        assert took >= 0.5, took
    # and one that never sent anything
    with fc.Connection(sf.address) as c:
        assert c.is_closed_by_peer(timeout=3.5), "a silent connection was never closed"
    flanders(sf.address)


def test_connection_with_a_request_in_flight_is_not_idle(launch, workdir, weather):
    weather.mode("slow", ms=2500)
    sf = sf_unix(launch, workdir, "--idle-timeout", "1", "--backend-timeout", "5000",
                 env={"WEATHER_URI": weather.uri})
    with fc.Connection(sf.address, timeout=6) as c:
        c.send_request(1, maggie_params())
        # nothing moves on the connection for 2.5 s: more than twice the idle timeout
        try:
            resp = c.read_response(1)
        except fc.Closed:
            raise AssertionError("closed as idle while its request waited for the backend")
        status, _, body = resp.http()
        assert (status, body) == (200, YAHOO_SENTENCE), resp.stdout
        # idle now: closed after about a second
        assert c.is_closed_by_peer(timeout=3), "idle after the answer but never closed"


# ---------------------------------------------------------------- access log


@pytest.mark.parametrize("args,env,logged", [
    ([], None, True),
    (["--no-access-log"], None, False),
    ([], {"SPRINGFIELD_ACCESS_LOG": "0"}, False),
    (["--access-log"], {"SPRINGFIELD_ACCESS_LOG": "0"}, True),  # the flag wins
], ids=["default", "no-access-log", "env-0", "flag-beats-env"])
def test_access_log(launch, workdir, args, env, logged):
    sf = sf_unix(launch, workdir, *args, env=env)
    flanders(sf.address)
    nope = fc.request(sf.address, "GET", "/api/v1/nope")
    nope_body = nope.http()[2]
    status, _, _ = post(sf.address, "/api/v1/marges/x", b"abc")
    assert status == 204
    # stopping flushes whatever was buffered: after that the log is complete
    assert sf.stop() == 0
    lines = access_lines(sf)
    if not logged:
        mention = re.search(r"^.*/api/v1/(flanders|nope|marges/x)\b.*$", sf.log(), re.M)
        assert mention is None, "access line despite %r %r: %r" % (args, env, mention.group(0))
        return
    # one line per request, in order, each in the documented shape
    assert [line[:4] for line in lines] == [
        ("GET", "/api/v1/flanders", "200", str(len(FLANDERS))),
        ("GET", "/api/v1/nope", "404", str(len(nope_body))),
        ("POST", "/api/v1/marges/x", "204", "0"),
    ], "access lines: %r\n%s" % (lines, sf.log())


def test_a_full_stderr_pipe_does_not_stop_the_service(workdir):
    """stderr is a pipe nobody reads (a stuck log collector): the access log
    must not block the loop once the pipe is full."""
    sock = os.path.join(workdir, "sf.sock")
    proc = subprocess.Popen([servers.springfield_bin(), "--listen", "unix:" + sock],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_until(lambda: os.path.exists(sock), 5, "the socket")
        with fc.Connection(sock, timeout=5) as c:
            for rid in range(1, 3001):   # ~150 KB of access log, over a 64 KiB pipe
                c.send_request(rid % 60000 + 1, {"REQUEST_METHOD": "GET",
                                                 "SCRIPT_NAME": "/api/v1/flanders",
                                                 "REQUEST_URI": "/api/v1/flanders?" + "x" * 20})
                r = c.read_response(rid % 60000 + 1)
                assert r.http()[0] == 200
                del c.responses[rid % 60000 + 1]
        # the pipe is full now; warnings (protocol errors) must not block either
        for _ in range(50):
            with socket.socket(socket.AF_UNIX) as g:
                g.connect(sock)
                g.sendall(b"GARBAGE-NOT-FASTCGI" * 4)
        with fc.Connection(sock, timeout=5) as c:
            c.send_request(1, {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/api/v1/flanders"})
            assert c.read_response(1).http()[0] == 200
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()


def test_a_connection_accepted_just_before_a_stop_gets_its_request_answered(launch, workdir):
    """A front server sends its request right after connecting; a stop (or
    a reload's hand-over) that comes in between must not close that
    connection under it (nginx would answer 502): the first request is
    waited for, answered, and then the process exits 0."""
    sf = sf_unix(launch, workdir)
    with fc.Connection(sf.address, timeout=10) as c:
        time.sleep(0.2)  # accepted by now
        os.kill(sf.pid, signal.SIGTERM)
        wait_for_log(sf, r"no new connections")
        time.sleep(0.2)
        c.send_request(1, fc.cgi_params("GET", "/api/v1/flanders"))
        resp = c.read_response(1, timeout=5)
        assert resp.http()[::2] == (200, FLANDERS), resp.stdout
        assert c.is_closed_by_peer(timeout=3)
    rc, _ = wait_exit(sf, 5)
    assert rc == 0


def test_a_connection_that_never_sends_does_not_hold_up_a_stop(launch, workdir):
    sf = sf_unix(launch, workdir)
    with fc.Connection(sf.address, timeout=10) as c:
        time.sleep(0.2)
        os.kill(sf.pid, signal.SIGTERM)
        rc, took = wait_exit(sf, 5)
        assert rc == 0 and took < 2.5, (rc, took)
        assert c.is_closed_by_peer(timeout=1)
