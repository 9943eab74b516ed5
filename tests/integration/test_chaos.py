"""Chaos: every backend restarted in turn under mixed load (issue 7, item 11).

springfield (--listen unix:, one process) behind real nginx, with real
backends: redis-server (append-only file, fsync before every answer),
MariaDB (InnoDB on disk), the MongoDB stand-in (data file fsynced before
every answer), s3rver (objects on disk, fsynced) and the weather stub.
While client threads send a mix of requests through nginx -- POSTs of
unique names to marges, lisas and homers, sequential POSTs of unique
contents to bart, GETs of what was acknowledged, flanders, maggie and the
health check -- a chaos thread stops and starts each backend in turn,
alternating SIGTERM and SIGKILL, spread over SF_CHAOS_SECONDS (default 60;
bench/chaos.sh runs it longer).  SF_CHAOS_SEED replays a run's down times.

What must hold:
  - springfield stays up: same PID, alive at the end;
  - every request gets an HTTP answer (no socket error, no client timeout),
    within what springfield promises for its backend timeout (see
    SERVICE_BOUND_S);
  - a 5xx only on a route whose backend was down at some moment of the
    request (the down window, plus a grace for springfield's reconnection,
    see grace_s), always 502/503/504 in the service's error shape; any
    other answer is the right one (204 for a write, the exact content for a
    read of an acknowledged write, the newest acknowledged bart or later);
  - flanders never fails;
  - the health check is 200 again soon after the last restart;
  - no acknowledged write is lost: after the run every 204 is audited
    against the backend's own storage (Redis over RESP, MariaDB with the
    mariadb client, the stand-in's data file, s3rver's object file);
  - springfield's descriptors and RSS are back near their level after
    warm-up.
One summary line with the figures goes to the terminal.
"""

import http.client
import json
import os
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import servers
from httpc import ERROR_SHAPE, FLANDERS
from launch_mariadb import MariaDB
from launch_mongo import MongoStandin
from launch_s3 import S3rver
from launch_weather import WeatherStub

CHAOS_S = float(os.environ.get("SF_CHAOS_SECONDS", "60"))
SEED = int(os.environ.get("SF_CHAOS_SEED") or random.SystemRandom().randrange(1 << 31))

# Scheduling slack on two cores shared with other test runs: the moment a
# launcher sees "ready" and the moment springfield's next attempt gets
# through are not the same instant, nor is a timeout and its answer.
SLACK_S = 1.5
# "Bounded time": the client gives up on a request after this long (socket
# timeout), and that is a failure.  SERVICE_BOUND_S is the tighter bound.
CLIENT_TIMEOUT_S = 15.0
# Short, so that requests in flight when a backend is killed end quickly;
# still far above what a local backend takes when it is up.
BACKEND_TIMEOUT_MS = 2000
# What springfield itself promises, tighter than the client timeout: a
# backend operation ends within its timeout, except on homers, where a job
# may wait up to a timeout for a worker thread (store/mongo.c runs no job
# past its deadline) and a read may then take two (mongo.h: the driver
# retries it once).  Plus slack for the shared machine.
SERVICE_BOUND_S = 3 * BACKEND_TIMEOUT_MS / 1000.0 + SLACK_S
# Load without chaos first: connection pools fill, the fd/RSS level is taken.
WARMUP_S = 4.0
# One restart every ~6 s: 10 in 60 s, two rounds over the five backends, so
# (five being odd) each backend is stopped once with SIGTERM, once with
# SIGKILL (in longer runs, alternately).
RESTART_EVERY_S = 6.0
# How long a backend stays stopped, drawn per restart: from shorter than
# any timeout (requests wait for it: MongoDB's server selection) to past
# several of springfield's reconnection attempts.
DOWN_S = (0.3, 3.0)
# Requests sent to a backend's route just before it is stopped, so that
# some are in flight at the SIGTERM/SIGKILL (the steady load has about one
# in flight at a time, for a millisecond or so).
BURST = 6
BURST_LEAD_S = 0.003
# Healthcheck's own per-backend deadline (routes/healthcheck.c, 2000 ms).
HEALTH_DEADLINE_S = 2.0
# Descriptors other than FastCGI connections (backend connections, the
# loop's own) after the run, over their level after warm-up: pools are
# filled on demand and may hold a few more; a leak of one per restart or
# per failed request goes beyond.
FD_SLACK = 5
# FastCGI connections are nginx's to keep: the bursts raise how many it
# has open at once, and it keeps up to `keepalive 16` of them idle
# (servers.Nginx), plus springfield's listening socket.  More at rest means
# springfield holds connections nginx has closed.
NGINX_KEEPALIVE = 16
RSS_SLACK_KIB = 8 * 1024

BACKENDS = ("redis", "mariadb", "mongo", "s3rver", "weather")
ROUTE_BACKENDS = {
    "marges": {"redis"}, "lisas": {"mariadb"}, "homers": {"mongo"},
    "bart": {"s3rver"}, "maggie": {"weather"}, "flanders": set(),
    "healthcheck": set(BACKENDS),
}
BART_LEN = 48  # every bart content has this length (see bart_writer)


STORE_BACKOFF_MAX_S = 2.0  # store/breaker.h: STORE_BACKOFF_MAX_MS


def grace_s(backend, down_s):
    """How long after a backend is ready again springfield may still answer
    5xx for it: the wait until its next attempt, plus SLACK_S.  down_s: from
    the start of the stop to ready.

    Every shim retries on the one back-off of store/breaker.h: after n
    failed attempts the next comes store_backoff_ms(n) later, 100 ms
    doubling up to STORE_BACKOFF_MAX_MS (2 s), so the attempt after the
    server is back comes within min(down + 0.1, 2).  Until it succeeds the
    breaker answers 5xx at once, with the last failure's reason."""
    next_attempt = min(down_s + 0.1, STORE_BACKOFF_MAX_S)
    if backend == "mongo":
        # the probe then waits for the driver's server selection, at most
        # min(2000, backend timeout) ms, its monitor re-checking the server
        # every 500 ms (minHeartbeatFrequencyMS)
        return next_attempt + min(2.0, BACKEND_TIMEOUT_MS / 1000.0) + SLACK_S
    return next_attempt + SLACK_S


# ---------------------------------------------------------------- records


@dataclass
class Window:
    backend: str
    how: str              # "SIGTERM" or "SIGKILL"
    begin: float          # stop begins
    stopped: float = None
    ready: float = None   # start() returned: the launcher's readiness check passed
    grace: float = 0.0

    def end(self):
        return float("inf") if self.ready is None else self.ready + self.grace


@dataclass
class Answer:
    what: str             # route
    method: str
    path: str
    t0: float
    t1: float
    status: int = None    # None: no HTTP answer
    ctype: str = ""
    body: bytes = b""
    error: str = None


@dataclass
class Run:
    port: int
    t_start: float
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict = field(default_factory=dict)     # route -> requests
    max_latency: float = 0.0
    slowest: str = ""
    burst_seq: int = 0
    bursts: list = field(default_factory=list)     # their threads, joined at the end
    fivexx: list = field(default_factory=list)     # Answers with 5xx, judged later
    bad: list = field(default_factory=list)        # descriptions of failures
    acked: dict = field(default_factory=lambda: {r: [] for r in ("marges", "lisas", "homers")})
    bart_attempts: list = field(default_factory=list)  # [content, status], in order
    bart_acked: int = -1  # index in bart_attempts of the newest acknowledged write
    windows: list = field(default_factory=list)
    health_back_s: float = None
    fds_warm: dict = field(default_factory=dict)   # kind -> count, see fd_kinds
    rss_warm: int = 0

    def rel(self, t):
        return t - self.t_start

    def fail(self, msg):
        with self.lock:
            self.bad.append(msg)

    def call(self, what, method, path, body=None, headers=None):
        """One request on a fresh connection; every answer is counted and a
        5xx kept for judging against the down windows."""
        t0 = time.monotonic()
        a = Answer(what, method, path, t0, t0)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT_S)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            a.body = resp.read()
            a.status = resp.status
            a.ctype = resp.getheader("content-type", "")
        except (OSError, http.client.HTTPException) as e:
            a.error = "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()
            a.t1 = time.monotonic()
        took = a.t1 - a.t0
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1
            if took > self.max_latency:
                self.max_latency = took
                self.slowest = "%s %s at t=%.2f -> %s in %.2f s" % (
                    method, path, self.rel(t0), a.status or a.error, took)
        if a.error is None and took > SERVICE_BOUND_S:
            a.error = "answered after %.2f s, over the %.1f s bound" % (took, SERVICE_BOUND_S)
        if a.error is not None:
            self.fail("no answer in time: %s %s at t=%.2f..%.2f: %s"
                      % (method, path, self.rel(a.t0), self.rel(a.t1), a.error))
        elif a.status >= 500:
            self.check_error_shape(a)
            with self.lock:
                self.fivexx.append(a)
        return a

    def check_error_shape(self, a):
        ctype = a.ctype.replace(" ", "").lower()
        m = ERROR_SHAPE.match(a.body)
        if (a.status not in (502, 503, 504) or ctype != "text/plain;charset=utf-8" or not m
                or int(m.group(1)) != a.status):
            self.fail("5xx not in the service's error shape (or 500, a bug of ours): "
                      "%s %s at t=%.2f -> %d %r %r"
                      % (a.method, a.path, self.rel(a.t0), a.status, a.ctype, a.body[:200]))

    def unexpected(self, a, want):
        self.fail("%s %s at t=%.2f..%.2f: want %s, got %s %r"
                  % (a.method, a.path, self.rel(a.t0), self.rel(a.t1), want, a.status,
                     a.body[:200]))


def pace(run, interval):
    run.stop.wait(interval)


# ---------------------------------------------------------------- load

TAG = "%06x" % (SEED & 0xFFFFFF)  # names unique to this run (lisas: <= 32 chars)


def write_body(route, name, seq, rng):
    if route == "marges":  # binary safe: NUL, high bytes
        return name.encode() + b"\x00\xfe" + rng.randbytes(12)
    if route == "lisas":   # UTF-8, no tab or newline (the audit reads rows)
        return ("lisa %s \u00fc\u2603 %s" % (name, rng.randbytes(6).hex())).encode()
    return json.dumps({"name": name, "seq": seq, "ok": seq % 2 == 0, "nil": None,
                       "tags": ["d'oh", "\u00e9", seq * 7], "f": seq + 0.5,
                       "nested": {"r": rng.randrange(1 << 40)}}).encode()


def writer(run, route, interval, seed):
    rng = random.Random(seed)
    seq = 0
    while not run.stop.is_set():
        name = "c%s-%s%d" % (TAG, route[0], seq)
        body = write_body(route, name, seq, rng)
        headers = {"Content-Type": "application/json"} if route == "homers" else None
        a = run.call(route, "POST", "/api/v1/%s/%s" % (route, name), body, headers)
        if a.status == 204:
            with run.lock:
                run.acked[route].append((name, body))
        elif a.status is not None and a.status < 500:
            run.unexpected(a, "204")
        seq += 1
        pace(run, interval)


def bart_content(seq):
    # Unique and all of one length: s3rver stats the file, then streams it,
    # so a GET racing a PUT must not see a length and a body of two writes.
    return ("bart %s %d " % (TAG, seq)).ljust(BART_LEN, "#").encode()


BART_SEQ = re.compile(rb"\Abart %s (\d+) #*\Z" % TAG.encode())


def bart_writer(run, interval):
    """The single S3 object has a single, sequential writer: the newest
    acknowledged write (or a later one that was not acknowledged) must be
    what is stored in the end."""
    seq = 0
    while not run.stop.is_set():
        content = bart_content(seq)
        with run.lock:
            run.bart_attempts.append([content, None])
        a = run.call("bart", "POST", "/api/v1/bart", content)
        with run.lock:
            run.bart_attempts[seq][1] = a.status
            if a.status == 204:
                run.bart_acked = seq
        if a.status is not None and a.status < 500 and a.status != 204:
            run.unexpected(a, "204")
        seq += 1
        pace(run, interval)


def same_homer(body, sent):
    try:
        return json.loads(body) == json.loads(sent)
    except ValueError:
        return False


def reader(run, interval, seed):
    """GETs of acknowledged writes: the exact content, or a 5xx (judged
    against the down windows) -- never a 404."""
    rng = random.Random(seed)
    routes = ("marges", "lisas", "homers", "bart")
    i = 0
    while not run.stop.is_set():
        pace(run, interval)
        route = routes[i % len(routes)]
        i += 1
        if route == "bart":
            with run.lock:
                newest = run.bart_acked
            if newest < 0:
                continue
            a = run.call("bart", "GET", "/api/v1/bart")
            if a.status == 200:
                # read-after-write: the newest write acknowledged before this
                # GET started, or one after it
                m = BART_SEQ.match(a.body)
                if not (m and int(m.group(1)) >= newest
                        and a.body == bart_content(int(m.group(1)))):
                    run.unexpected(a, "bart #%d or later" % newest)
            elif a.status is not None and a.status < 500:
                run.unexpected(a, "200 with bart #%d or later" % newest)
        else:
            with run.lock:
                acked = run.acked[route]
                pick = acked[rng.randrange(len(acked))] if acked else None
            if pick is None:
                continue
            name, sent = pick
            a = run.call(route, "GET", "/api/v1/%s/%s" % (route, name))
            if a.status == 200:
                ok = same_homer(a.body, sent) if route == "homers" else a.body == sent
                if not ok:
                    run.unexpected(a, "200 with %r" % sent[:80])
            elif a.status is not None and a.status < 500:
                run.unexpected(a, "200 (acknowledged write)")


def flanders(run, interval):
    while not run.stop.is_set():
        a = run.call("flanders", "GET", "/api/v1/flanders")
        if a.status != 200 or a.body != FLANDERS:
            if a.status is not None:  # no answer is already a failure
                run.unexpected(a, "200 %r" % FLANDERS)
        pace(run, interval)


MAGGIE = re.compile(rb"\ACurrently -?\d+(\.\d+)? degrees and [^\n]+ in Austin, TX\Z")


def maggie_and_health(run, interval):
    i = 0
    while not run.stop.is_set():
        if i % 10 == 9:
            a = run.call("healthcheck", "GET", "/api/v1/healthcheck")
            if a.status is not None and a.status < 500 and (a.status, a.body) != (200, b"OK"):
                run.unexpected(a, "200 OK")
        else:
            a = run.call("maggie", "GET", "/api/v1/maggie")
            if a.status is not None and a.status < 500 and (
                    a.status != 200 or not MAGGIE.match(a.body.strip())):
                run.unexpected(a, "200 Currently ...")
        i += 1
        pace(run, interval)


# ---------------------------------------------------------------- chaos

BURST_ROUTES = {"redis": "marges", "mariadb": "lisas", "mongo": "homers",
                "s3rver": "bart", "weather": "maggie"}


def burst_one(run, route, k, rng):
    """One request of a burst: a write of a unique name (or, for bart, whose
    writes must stay sequential, and maggie, a GET)."""
    if route == "maggie":
        a = run.call(route, "GET", "/api/v1/maggie")
        if a.status is not None and a.status < 500 and a.status != 200:
            run.unexpected(a, "200")
        return
    if route == "bart":
        a = run.call(route, "GET", "/api/v1/bart")
        if a.status is not None and a.status < 500 and not BART_SEQ.match(a.body):
            run.unexpected(a, "200 with a bart content")
        return
    name = "c%s-%sb%d" % (TAG, route[0], k)
    body = write_body(route, name, k, rng)
    headers = {"Content-Type": "application/json"} if route == "homers" else None
    a = run.call(route, "POST", "/api/v1/%s/%s" % (route, name), body, headers)
    if a.status == 204:
        with run.lock:
            run.acked[route].append((name, body))
    elif a.status is not None and a.status < 500:
        run.unexpected(a, "204")


def burst(run, backend, rng):
    """BURST requests at once on the backend's route; returns their threads."""
    route = BURST_ROUTES[backend]
    ts = []
    for _ in range(BURST):
        with run.lock:
            run.burst_seq += 1
            k = run.burst_seq
        ts.append(threading.Thread(target=burst_one, daemon=True,
                                   args=(run, route, k, random.Random(rng.random()))))
    for t in ts:
        t.start()
    return ts


def chaos(run, backends, rng, t_chaos):
    """Restarts the backends in turn, SIGTERM for even i, SIGKILL for odd i,
    at evenly spread moments of the chaos period; records each down window.
    The turn is arranged so that the last restart is Redis', whose back-off
    is the longest: the health check's way back after it is the slowest."""
    n = max(len(BACKENDS), int(round(CHAOS_S / RESTART_EVERY_S)))
    try:
        for i in range(n):
            if run.stop.wait(max(0.0, t_chaos + (i + 0.5) * CHAOS_S / n - time.monotonic())):
                return
            name = BACKENDS[(i - n + 1) % len(BACKENDS)]
            srv = backends[name]
            in_flight = burst(run, name, rng)
            time.sleep(BURST_LEAD_S)
            w = Window(name, "SIGKILL" if i % 2 else "SIGTERM", time.monotonic())
            with run.lock:
                run.windows.append(w)
                run.bursts.extend(in_flight)
            if w.how == "SIGKILL":
                srv.kill()
            else:
                srv.stop()
            w.stopped = time.monotonic()
            time.sleep(rng.uniform(*DOWN_S))
            srv.start()
            w.ready = time.monotonic()
            w.grace = grace_s(name, w.ready - w.begin)
        # The health check is back within: the last backend's grace (its
        # reconnection), plus the health check's own deadline.
        last = run.windows[-1]
        bound = last.grace + HEALTH_DEADLINE_S + SLACK_S
        while True:
            a = run.call("healthcheck", "GET", "/api/v1/healthcheck")
            if a.status == 200:
                run.health_back_s = a.t1 - last.ready
                return
            if time.monotonic() - last.ready > bound:
                run.fail("healthcheck not 200 within %.1f s of the last restart (%s %s): "
                         "%s %r" % (bound, last.how, last.backend, a.status, a.body[:300]))
                return
            time.sleep(0.2)
    except Exception as e:  # a backend that does not come back ends the run
        run.fail("chaos: %s: %s" % (type(e).__name__, e))
        run.stop.set()


# ---------------------------------------------------------------- audit


def resp_mget(port, keys):
    """MGET over a raw RESP connection: the values (bytes or None)."""
    def bulk(k):
        return b"$%d\r\n%s\r\n" % (len(k), k)
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            s.sendall(b"*%d\r\n" % (len(chunk) + 1) + bulk(b"MGET")
                      + b"".join(bulk(k) for k in chunk))
            head = f.readline()
            assert head.startswith(b"*%d" % len(chunk)), head
            for _ in chunk:
                line = f.readline()
                n = int(line[1:])
                if n < 0:
                    out.append(None)
                else:
                    out.append(f.read(n + 2)[:-2])
    return out


def audit(run, redis, db, mongo, s3):
    """(acked, audited, lost descriptions)."""
    lost = []
    marges = run.acked["marges"]
    for (name, sent), got in zip(marges, resp_mget(redis.port, [n.encode() for n, _ in marges])):
        if got != sent:
            lost.append("marges %s: redis has %r, acknowledged %r" % (name, got, sent))
    rows = {r[0]: bytes.fromhex(r[1]) for r in
            db.query("SELECT name, HEX(content) FROM lisa WHERE name LIKE 'c%s-%%'" % TAG)}
    for name, sent in run.acked["lisas"]:
        if rows.get(name) != sent:
            lost.append("lisas %s: mariadb has %r, acknowledged %r" % (name, rows.get(name), sent))
    docs = {d["name"]: d.get("content") for d in mongo.documents_on_disk()}
    for name, sent in run.acked["homers"]:
        if name not in docs or docs[name] != json.loads(sent):
            lost.append("homers %s: the stand-in's data file has %r, acknowledged %s"
                        % (name, docs.get(name), sent.decode()))
    acked = sum(len(v) for v in run.acked.values())
    final = s3.object_bytes("bart")
    if run.bart_acked >= 0:
        acked += 1  # the newest bart write (it replaces the earlier ones)
        later = [c for c, _ in run.bart_attempts[run.bart_acked:]]
        if final not in later:
            lost.append("bart: s3rver holds %r, the newest acknowledged write was #%d %r"
                        % (final, run.bart_acked, later[0]))
    return acked, acked, lost


# ---------------------------------------------------------------- process


def _socket_inodes(pid, sock_path):
    """(TCP socket inodes, inodes of unix sockets on sock_path) in pid's
    network namespace."""
    tcp = set()
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                tcp.update(line.split()[9] for line in f)
        except FileNotFoundError:
            pass
    fcgi = set()
    with open("/proc/%d/net/unix" % pid) as f:
        next(f)
        for line in f:
            cols = line.split()
            if len(cols) >= 8 and cols[7] == sock_path:
                fcgi.add(cols[6])
    return tcp, fcgi


def fd_kinds(pid, sock_path):
    """springfield's descriptors by kind: "fastcgi" (the listening socket
    and connections from nginx), "backend" (TCP), "other" (log, epoll,
    eventfd, socketpairs...)."""
    tcp, fcgi = _socket_inodes(pid, sock_path)
    kinds = {"fastcgi": 0, "backend": 0, "other": 0}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed meanwhile
        m = re.match(r"socket:\[(\d+)\]\Z", target)
        kind = "other"
        if m and m.group(1) in tcp:
            kind = "backend"
        elif m and m.group(1) in fcgi:
            kind = "fastcgi"
        kinds[kind] += 1
    return kinds


def fds_text(k):
    return "%d (FastCGI %d, backends %d, other %d)" % (
        sum(k.values()), k["fastcgi"], k["backend"], k["other"])


def fd_listing(pid):
    out = []
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            out.append("%s->%s" % (fd, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
        except OSError:
            pass
    return " ".join(out)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


# ---------------------------------------------------------------- the test


def test_chaos(launch, capsys):
    rng = random.Random(SEED)
    redis = launch(servers.Redis, durable=True)
    db = launch(MariaDB)
    mongo = launch(MongoStandin, fsync=True)
    s3 = launch(S3rver)
    weather = launch(WeatherStub)
    env = {}
    for e in (redis.env(), db.env(), mongo.env(), s3.env()):
        env.update(e)
    env["WEATHER_URI"] = weather.uri
    sf = launch(servers.Springfield, listen="unix", env=env,
                extra_args=["--backend-timeout", str(BACKEND_TIMEOUT_MS)])
    front = launch(servers.Nginx, sf)
    pid = sf.pid
    backends = {"redis": redis, "mariadb": db, "mongo": mongo, "s3rver": s3, "weather": weather}

    run = Run(front.port, time.monotonic())
    load = [
        threading.Thread(target=writer, args=(run, "marges", 0.03, rng.random())),
        threading.Thread(target=writer, args=(run, "lisas", 0.03, rng.random())),
        # the stand-in rewrites its whole data file per write: fewer homers
        threading.Thread(target=writer, args=(run, "homers", 0.1, rng.random())),
        threading.Thread(target=bart_writer, args=(run, 0.08)),
        threading.Thread(target=reader, args=(run, 0.015, rng.random())),
        threading.Thread(target=flanders, args=(run, 0.025)),
        threading.Thread(target=maggie_and_health, args=(run, 0.08)),
    ]
    for t in load:
        t.daemon = True
        t.start()

    # warm-up: the level after it is the highest of a few samples in its last second
    time.sleep(WARMUP_S - 1.0)
    for _ in range(5):
        k = fd_kinds(pid, sf.sock)
        run.fds_warm = {n: max(run.fds_warm.get(n, 0), v) for n, v in k.items()}
        run.rss_warm = max(run.rss_warm, rss_kib(pid))
        time.sleep(0.2)
    fds_warm_listing = fd_listing(pid)

    t_chaos = time.monotonic()
    monkey = threading.Thread(target=chaos, args=(run, backends, rng, t_chaos), daemon=True)
    monkey.start()
    run.stop.wait(CHAOS_S)
    monkey.join(60)  # the health poll after the last restart may run past CHAOS_S
    run.stop.set()
    for t in load + run.bursts:
        t.join(CLIENT_TIMEOUT_S + 5)
    assert not monkey.is_alive() and not any(t.is_alive() for t in load + run.bursts), \
        "load or chaos thread still running"

    # After the run: everything is back, and springfield is the same process.
    assert sf.alive() and sf.pid == pid, \
        "springfield died (status %s)\n%s" % (sf.proc and sf.proc.poll(), servers.tail(sf.log_path))
    final = run.call("healthcheck", "GET", "/api/v1/healthcheck")
    assert (final.status, final.body) == (200, b"OK"), final

    # Descriptors and memory back near the warm-up level: the lowest of a
    # few samples once the load has stopped (a connection closing is not a leak).
    fds_end, rss_end = {}, 1 << 30
    for _ in range(5):
        time.sleep(0.2)
        k = fd_kinds(pid, sf.sock)
        fds_end = {n: min(fds_end.get(n, 1 << 30), v) for n, v in k.items()}
        rss_end = min(rss_end, rss_kib(pid))

    # 5xx only while the route's backend was down (or reconnecting).
    outside = []
    for a in run.fivexx:
        if not any(w.backend in ROUTE_BACKENDS[a.what] and a.t1 >= w.begin and a.t0 <= w.end()
                   for w in run.windows):
            outside.append(a)
    acked, audited, lost = audit(run, redis, db, mongo, s3)

    windows = " ".join("%s/%s@%.1f-%.1f+%.1f" % (w.backend, w.how[3:], run.rel(w.begin),
                                                  run.rel(w.ready or float("nan")), w.grace)
                       for w in run.windows)
    # For the record (chaos-summary.txt): per window, its 5xx and how long
    # after "ready" the last of them was sent -- how much of the grace the
    # reconnection really took.
    details = []
    for w in run.windows:
        mine = [a for a in run.fivexx if w.backend in ROUTE_BACKENDS[a.what]
                and a.what != "healthcheck" and a.t1 >= w.begin and a.t0 <= w.end()]
        tail_s = max((a.t0 - w.ready for a in mine), default=float("nan")) if w.ready else None
        details.append("%s %s: down %.2f s (stop %.2f s), %d 5xx, last sent %s s after ready, "
                       "grace %.1f s; statuses %s"
                       % (w.backend, w.how, (w.ready or w.begin) - w.begin,
                          (w.stopped or w.begin) - w.begin, len(mine),
                          "%.2f" % tail_s if tail_s is not None else "-", w.grace,
                          sorted({(a.what, a.status) for a in mine})))
    total = sum(run.counts.values())
    summary = ("chaos: %.0f s, %d requests, 5xx %d (%s), restarts %d (%d SIGKILL), "
               "writes acked %d audited %d lost %d, health back in %s, max latency %.2f s, "
               "fds %d->%d, RSS %.1f->%.1f MiB, seed %d"
               % (CHAOS_S, total, len(run.fivexx),
                  "all within down windows" if not outside else "%d OUTSIDE" % len(outside),
                  len(run.windows), sum(w.how == "SIGKILL" for w in run.windows),
                  acked, audited, len(lost),
                  "%.1f s" % run.health_back_s if run.health_back_s is not None else "-",
                  run.max_latency, sum(run.fds_warm.values()), sum(fds_end.values()),
                  run.rss_warm / 1024, rss_end / 1024,
                  SEED))
    with open(os.path.join(os.path.dirname(sf.dir), "chaos-summary.txt"), "w") as f:
        f.write(summary + "\nwindows: " + windows + "\n" + "\n".join(details) + "\n"
                "slowest: %s\nfds after warm-up: %s: %s\nfds at the end: %s: %s\n"
                % (run.slowest, fds_text(run.fds_warm), fds_warm_listing, fds_text(fds_end),
                   fd_listing(pid)))
    with capsys.disabled():
        print("\n" + summary)

    problems = list(run.bad)
    problems += ["5xx outside a down window of its backend: %s %s at t=%.2f..%.2f -> %d %r"
                 % (a.method, a.path, run.rel(a.t0), run.rel(a.t1), a.status, a.body[:200])
                 for a in outside]
    problems += ["lost: " + x for x in lost]
    kept = fds_end["backend"] + fds_end["other"]
    if (kept > run.fds_warm["backend"] + run.fds_warm["other"] + FD_SLACK
            or fds_end["fastcgi"] > NGINX_KEEPALIVE + 1):
        problems.append("descriptors after the run %s, after warm-up %s (allowed: backends "
                        "and other +%d, FastCGI up to %d)\n  warm-up: %s\n  end: %s"
                        % (fds_text(fds_end), fds_text(run.fds_warm), FD_SLACK,
                           NGINX_KEEPALIVE + 1, fds_warm_listing, fd_listing(pid)))
    if rss_end > run.rss_warm + RSS_SLACK_KIB:
        problems.append("RSS %d KiB after the run, %d KiB after warm-up (+%d allowed)"
                        % (rss_end, run.rss_warm, RSS_SLACK_KIB))
    for route in ("marges", "lisas", "homers"):
        if len(run.acked[route]) < 10:
            problems.append("only %d acknowledged writes on %s: the load did not run"
                            % (len(run.acked[route]), route))
    if run.bart_acked < 0:
        problems.append("no acknowledged bart write: the load did not run")
    assert not problems, "%d problem(s); %s\nwindows: %s\n%s\n--- springfield log tail ---\n%s" % (
        len(problems), summary, windows, "\n".join(problems[:30]),
        servers.tail(sf.log_path, 60))
