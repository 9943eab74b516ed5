"""systemd (issue 9, item 5), without systemd: the notify protocol and
socket activation, as systemd would drive them.

The test binds its own unix datagram socket and names it in NOTIFY_SOCKET
(a path, or an abstract name with '@'); with SO_PASSCRED each datagram
says which process sent it, so the tests also check that only the main
process speaks (the units' NotifyAccess=main).  Socket activation: the
test makes the listening socket, passes it as fd 3 with LISTEN_FDS=1 and
LISTEN_PID set to the child's own PID just before exec, as systemd does.
"""

import fcntl
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

import fcgi_client as fc
import servers
from launch_weather import WeatherStub
from test_launch import (FLANDERS, Sf, children, clean_env, flanders, maggie_params,
                         in_flight_on_stub, wait_exit, wait_until)


class Notify:
    """A NOTIFY_SOCKET of the test's own: .env for springfield, .next()
    and .wait_for() read its datagrams as (sender pid, {name: value})."""

    def __init__(self, workdir, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "sf-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.name = "@" + name
        else:
            self.name = os.path.join(workdir, "notify.sock")
            self.sock.bind(self.name)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = []  # every (pid, fields, monotonic time) received

    @property
    def env(self):
        return {"NOTIFY_SOCKET": self.name}

    def next(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        self.messages.append((pid, fields, time.monotonic()))
        return pid, fields

    def wait_for(self, predicate, timeout, what):
        """The first message (pid, fields) for which predicate holds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %.1fs; got %r" % (what, timeout,
                                                                    self.messages))
            m = self.next(left)
            if m and predicate(*m):
                return m

    def drain(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.next(end - time.monotonic())

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(workdir):
    n = Notify(workdir)
    yield n
    n.close()


def ready(pid, fields):
    return fields.get("READY") == "1"


def sf_notified(launch, workdir, notify, *args, env=None):
    """springfield on a unix socket of its own, NOTIFY_SOCKET set (notify
    may be None when env names it).  Its launcher waits for the socket file
    only, not for an answer."""
    path = os.path.join(workdir, "sf.sock")
    e = dict(notify.env if notify else {})
    e.update(env or {})
    return launch(NotifiedSf, ["--listen", "unix:" + path, "--socket-mode", "0666"] + list(args),
                  path, env=e)


class NotifiedSf(Sf):
    def ready(self):
        return os.path.exists(self._address)


def serves_now(address):
    """One request that must succeed at once: no retry, no wait."""
    resp = fc.request(address, "GET", "/api/v1/flanders", timeout=3)
    return resp.http()[::2] == (200, FLANDERS)


# ---------------------------------------------------------------- READY=1


def test_ready_once_serving_then_stopping(launch, workdir, notify):
    sf = sf_notified(launch, workdir, notify)
    pid, fields = notify.wait_for(ready, 5, "READY=1")
    assert serves_now(sf.address), "READY=1 came before springfield answered"
    assert pid == sf.pid and fields.get("MAINPID") == str(sf.pid), (pid, fields, sf.pid)
    assert re.match(r"serving; 0 requests in flight; backends down: none$",
                    fields.get("STATUS", "")), fields
    main = sf.pid
    os.kill(main, signal.SIGTERM)
    notify.wait_for(lambda p, f: f.get("STOPPING") == "1", 5, "STOPPING=1")
    rc, _ = wait_exit(sf, 5)
    assert rc == 0
    assert sum(1 for _, f, _ in notify.messages if f.get("READY")) == 1, notify.messages
    assert all(p == main for p, _, _ in notify.messages), notify.messages
    # NOTIFY_SOCKET is read and unset: nothing is inherited by what it starts
    assert "NOTIFY_SOCKET" not in sf.log()


def test_ready_with_workers_comes_from_the_supervisor_once_all_serve(launch, workdir, notify):
    sf = sf_notified(launch, workdir, notify, "--workers", "2")
    pid, fields = notify.wait_for(ready, 8, "READY=1")
    workers = children(sf.pid)
    assert len(workers) == 2, workers
    assert pid == sf.pid and fields["MAINPID"] == str(sf.pid), (pid, fields)
    assert fields["STATUS"].startswith("2 of 2 workers serving;"), fields
    assert serves_now(sf.address) and serves_now(sf.address)
    main = sf.pid
    os.kill(main, signal.SIGTERM)
    notify.wait_for(lambda p, f: f.get("STOPPING") == "1", 5, "STOPPING=1")
    rc, _ = wait_exit(sf, 8)
    assert rc == 0
    # the workers never spoke to systemd (NotifyAccess=main would refuse them)
    senders = {p for p, _, _ in notify.messages}
    assert senders == {main}, (senders, workers)


def test_no_ready_while_the_workers_cannot_serve(launch, workdir, notify):
    """The workers fail to open a backend (a URI the driver refuses), exit
    and are restarted: the supervisor runs, but never says READY=1."""
    sf = sf_notified(launch, workdir, notify, "--workers", "2",
                     env={"MONGODB_URI": "mongodb://a:b:c/"})
    pid, fields = notify.wait_for(lambda p, f: "STATUS" in f, 5, "a STATUS= line")
    assert fields["STATUS"].startswith("0 of 2 workers serving"), fields
    notify.drain(3)
    assert sf.alive()
    assert not any(f.get("READY") for _, f, _ in notify.messages), notify.messages
    assert re.search(r"worker \d+ exited with status 1", sf.log()), sf.log()


def test_no_ready_when_it_cannot_start(workdir, notify):
    """An address in use: springfield exits 1 and never says READY=1."""
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        p = subprocess.run([servers.springfield_bin(), "--listen",
                            "127.0.0.1:%d" % busy.getsockname()[1]],
                           env=clean_env(notify.env), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
    finally:
        busy.close()
    assert p.returncode == 1, p
    notify.drain(0.3)
    assert not any(f.get("READY") for _, f, _ in notify.messages), notify.messages


def test_abstract_notify_socket(launch, workdir):
    n = Notify(workdir, abstract=True)
    try:
        sf = sf_notified(launch, workdir, n)
        n.wait_for(ready, 5, "READY=1 on an abstract socket")
        assert serves_now(sf.address)
    finally:
        n.close()


def test_notify_socket_gone_does_not_stop_the_service(launch, workdir):
    """A NOTIFY_SOCKET nobody listens on: the failure is logged once, and
    springfield serves on."""
    sf = sf_notified(launch, workdir, None,
                     env={"NOTIFY_SOCKET": os.path.join(workdir, "nobody.sock")})
    wait_until(lambda: "cannot notify systemd" in sf.log(), 5, "the failure logged")
    flanders(sf.address)
    os.kill(sf.pid, signal.SIGTERM)
    rc, _ = wait_exit(sf, 5)
    assert rc == 0
    assert sf.log().count("cannot notify systemd") == 1, sf.log()


# ---------------------------------------------------------------- STATUS=


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "workers-2"])
def test_status_tells_requests_in_flight(launch, workdir, notify, workers):
    weather = launch(WeatherStub)
    weather.mode("slow", ms=6000)
    args = ["--backend-timeout", "10000"] + (["--workers", str(workers)] if workers else [])
    sf = sf_notified(launch, workdir, notify, *args, env={"WEATHER_URI": weather.uri})
    notify.wait_for(ready, 8, "READY=1")
    with fc.Connection(sf.address, timeout=15) as c:
        c.send_request(1, maggie_params())
        in_flight_on_stub(weather)
        notify.wait_for(lambda p, f: re.search(r"\b1 request in flight\b", f.get("STATUS", "")),
                        6, "STATUS= with 1 request in flight")
        weather.mode("ok")
        c.forget(1)
    # the stub still holds the slow answer; the connection is gone: 0 again
    notify.wait_for(lambda p, f: re.search(r"\b0 requests in flight\b", f.get("STATUS", "")),
                    6, "STATUS= with 0 requests in flight")
    os.kill(sf.pid, signal.SIGTERM)
    wait_exit(sf, 10)


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "workers-2"])
def test_status_tells_backends_down(launch, workdir, notify, workers):
    """Redis on a port nobody listens on: its breaker opens, and the status
    says so (once per backend, also with two workers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["--workers", str(workers)] if workers else []
    sf = sf_notified(launch, workdir, notify, *args,
                     env={"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port)})
    notify.wait_for(ready, 8, "READY=1")
    _, fields = notify.wait_for(
        lambda p, f: "redis (marges)" in f.get("STATUS", ""), 8, "STATUS= naming redis")
    assert fields["STATUS"].endswith("backends down: redis (marges)"), fields
    os.kill(sf.pid, signal.SIGTERM)
    wait_exit(sf, 10)


# ---------------------------------------------------------------- socket activation


def activated(workdir, listener, args=(), env=None, fds=1, name="springfield"):
    """springfield with listener on fd 3 (and fds - 1 more sockets after
    it), LISTEN_FDS=fds, and LISTEN_PID its own PID, set between fork and
    exec as systemd does."""
    log = open(os.path.join(workdir, name + ".log"), "wb")
    e = clean_env(env)
    e["LISTEN_FDS"] = str(fds)
    e["LISTEN_FDNAMES"] = "springfield.socket"
    extra = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(fds - 1)]
    # out of the way of 3, 4...: numbers the dup2 below cannot overwrite
    high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 100) for s in [listener] + extra]

    def child():
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
        os.environ.clear()
        os.environ.update(e)
        os.environ["LISTEN_PID"] = str(os.getpid())

    try:
        # env=None: the child's own environment, as child() leaves it, is exec'd
        p = subprocess.Popen([servers.springfield_bin()] + list(args), preexec_fn=child,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             pass_fds=tuple(range(3, 3 + fds)), start_new_session=True)
    finally:
        log.close()
        for fd in high:
            os.close(fd)
        for s in extra:
            s.close()
    return p, os.path.join(workdir, name + ".log")


def stop(p, timeout=10):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return p.returncode


def unix_listener(workdir, name="activated.sock"):
    path = os.path.join(workdir, name)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    return s, path


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "workers-2"])
def test_socket_passed_as_fd_3_is_served(workdir, notify, workers):
    listener, path = unix_listener(workdir)
    args = ["--workers", str(workers)] if workers else []
    p, log = activated(workdir, listener, args, env=notify.env)
    try:
        listener.close()  # only springfield holds it now
        for _ in range(4):
            flanders(path, timeout=5)
        # (every worker up before the stop: a worker signalled while it
        # starts would not stop gracefully)
        notify.wait_for(ready, 8, "READY=1")
        text = open(log).read()
        assert "serving the listening socket systemd passed (LISTEN_FDS, fd 3)" in text, text
        assert "127.0.0.1:9000" not in text
    finally:
        rc = stop(p)
    assert rc == 0, open(log).read()


def test_socket_activation_with_a_notify_socket(workdir, notify):
    """What springfield.service does: both at once."""
    listener, path = unix_listener(workdir)
    p, log = activated(workdir, listener, env=notify.env)
    try:
        listener.close()
        pid, _ = notify.wait_for(ready, 5, "READY=1")
        assert pid == p.pid
        assert serves_now(path)
    finally:
        assert stop(p) == 0, open(log).read()


def test_listen_flag_wins_over_the_passed_socket(workdir):
    listener, path = unix_listener(workdir)
    own = os.path.join(workdir, "own.sock")
    p, log = activated(workdir, listener, ["--listen", "unix:" + own])
    try:
        wait_until(lambda: os.path.exists(own), 5, "the --listen socket")
        flanders(own)
        text = open(log).read()
        assert "--listen given: the 1 socket(s) systemd passed (LISTEN_FDS) are closed" in text
    finally:
        listener.close()
        assert stop(p) == 0, open(log).read()


def test_listen_pid_of_another_process_is_not_ours(workdir):
    """LISTEN_PID names someone else (a parent's variables, inherited): no
    socket is taken from fd 3, and the socket on fd 0 is served."""
    zero, zpath = unix_listener(workdir, "zero.sock")
    log = os.path.join(workdir, "other.log")
    with open(log, "wb") as lf:
        p = subprocess.Popen([servers.springfield_bin()], stdin=zero.fileno(), stdout=lf,
                             stderr=subprocess.STDOUT,
                             env=clean_env({"LISTEN_FDS": "1", "LISTEN_PID": "1"}),
                             start_new_session=True)
    try:
        flanders(zpath)
        text = open(log).read()
        assert "inherited on fd 0" in text and "LISTEN_FDS" not in text, text
    finally:
        zero.close()
        assert stop(p) == 0


def test_several_passed_sockets_serve_the_first(workdir):
    listener, path = unix_listener(workdir)
    p, log = activated(workdir, listener, fds=2)
    try:
        listener.close()
        flanders(path)
        assert "serving the first, fd 3" in open(log).read()
    finally:
        assert stop(p) == 0


def test_a_passed_descriptor_that_is_not_listening_is_refused(workdir):
    a, b = socket.socketpair()
    p, log = activated(workdir, a)
    try:
        rc = p.wait(10)
    finally:
        a.close()
        b.close()
    assert rc == 1, open(log).read()
    assert "not a listening socket" in open(log).read()


# ---------------------------------------------------------------- the units


def unit_lines(name):
    with open(os.path.join(servers.REPO, "deploy", name)) as f:
        return [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]


def test_the_units_use_what_is_tested_here():
    """springfield.service is what these tests simulate: Type=notify with
    only the main process heard, the socket through LISTEN_FDS (not on
    stdin), a reload as SIGHUP to the main process.  (test_install.py and
    tests/debian-package.sh run systemd-analyze verify and security.)"""
    service = unit_lines("springfield.service")
    for want in ("Type=notify", "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID",
                 "Requires=springfield.socket"):
        assert want in service, "springfield.service lacks %s" % want
    assert not any(l.startswith("StandardInput=") for l in service), service
    socket_unit = unit_lines("springfield.socket")
    assert "Accept=no" in socket_unit and any(l.startswith("ListenStream=")
                                              for l in socket_unit), socket_unit


# ---------------------------------------------------------------- reload


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "workers-2"])
def test_reload_tells_systemd_of_the_new_main_process(launch, workdir, notify, workers):
    """systemctl reload: RELOADING=1 from the old main process; once the new
    one serves, MAINPID=<new> with READY=1, still from the old one (the only
    one systemd hears until then); after that only the new one speaks, and
    its STOPPING=1 ends the service."""
    args = ["--workers", str(workers)] if workers else []
    pid_file = os.path.join(workdir, "sf.pid")
    sf = sf_notified(launch, workdir, notify, "--pid-file", pid_file, *args)
    notify.wait_for(lambda pid, f: ready(pid, f) and pid == sf.pid, 10, "READY=1")
    os.kill(sf.pid, signal.SIGHUP)
    pid, fields = notify.wait_for(lambda pid, f: "RELOADING" in f, 10, "RELOADING=1")
    assert pid == sf.pid and fields["RELOADING"] == "1" and "MONOTONIC_USEC" in fields
    pid, fields = notify.wait_for(lambda pid, f: "MAINPID" in f and f.get("READY") == "1", 15,
                                  "MAINPID= with READY=1")
    assert pid == sf.pid, "the hand-over must come from the main process systemd knows"
    new = int(fields["MAINPID"])
    assert new != sf.pid
    rc, _ = wait_exit(sf, 15)
    assert rc == 0
    with open(pid_file) as f:
        assert int(f.read()) == new
    assert serves_now(sf.address)
    before = len(notify.messages)
    os.kill(new, signal.SIGTERM)
    pid, fields = notify.wait_for(lambda pid, f: "STOPPING" in f, 15, "STOPPING=1")
    assert pid == new
    wait_until(lambda: not os.path.exists(pid_file), 15, "the new process to stop")
    # nothing after the hand-over came from the old process or a worker
    for pid, _, _ in notify.messages[before:]:
        assert pid == new, notify.messages[before:]
