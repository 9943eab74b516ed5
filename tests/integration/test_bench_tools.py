"""The bench tools themselves: bench/fcgi-load and bench/floor.

fcgi-load's figures are only worth something if its checks can fail, so
besides a clean run against springfield (zero errors, a non-zero rate),
it is pointed at bench/floor --corrupt, which breaks answers in chosen
ways, and must report each under its error kind and exit non-zero.  The
floor is checked with the tests' own FastCGI client (fcgi_client.py,
written from the specification), so neither tool vouches only for the
other.  Short runs: the whole file takes a few seconds.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

import fcgi_client as fc
import servers

FCGI_LOAD = os.path.join(servers.REPO, "bench", "fcgi-load")
FLOOR = os.path.join(servers.REPO, "bench", "floor")


@pytest.fixture(scope="module", autouse=True)
def bench_tools():
    """Builds the two programs if the tree has not (they are part of `make`)."""
    if not (os.access(FCGI_LOAD, os.X_OK) and os.access(FLOOR, os.X_OK)):
        r = subprocess.run(["make", "bench/fcgi-load", "bench/floor"], cwd=servers.REPO,
                           capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode()[-2000:]


class Floor(servers.Server):
    name = "floor"

    def __init__(self, tmpdir, *args):
        super().__init__(tmpdir)
        self.args = list(args)
        self.sock = os.path.join(self.dir, "floor.sock")

    def command(self):
        return [FLOOR, "--listen", "unix:" + self.sock] + self.args

    def ready(self):
        return servers.unix_ready(self.sock)


def fcgi_load(sock, *args, timeout=30):
    """Runs fcgi-load --json against sock; (exit status, report, stderr)."""
    r = subprocess.run([FCGI_LOAD, "--json"] + list(args) + ["unix:" + sock],
                       capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    report = json.loads(r.stdout) if r.stdout.strip() else None
    return r.returncode, report, r.stderr.decode("utf-8", "replace")


def test_clean_run_against_springfield(launch):
    sf = launch(servers.Springfield, listen="unix", extra_args=["--no-access-log"])
    rc, rep, err = fcgi_load(sf.sock, "-c", "8", "-d", "4", "-t", "1", "-w", "0.2",
                             "--server-pid", str(sf.pid))
    assert rc == 0, err
    assert rep["error_total"] == 0 and set(rep["errors"].values()) == {0}, rep
    assert rep["requests"] > 0 and rep["requests_per_s"] > 0, rep
    assert rep["cancelled"] == 0, rep
    assert rep["connects"] == 8, rep
    # Status, Content-Type, Content-Length and the text: 104 bytes
    assert rep["stdout_bytes_per_answer"] == 104.0, rep
    assert 0 < rep["latency_us"]["p50"] <= rep["latency_us"]["p99"] <= rep["latency_us"]["max"]
    assert rep["generator_cpu_us_per_request"] > 0 and rep["server_cpu_us_per_request"] > 0


def test_connection_per_request_and_open_loop(launch, workdir):
    sf = launch(servers.Springfield, listen="unix", extra_args=["--no-access-log"])
    rc, rep, err = fcgi_load(sf.sock, "-c", "4", "-1", "-t", "0.3", "-w", "0.1")
    assert rc == 0, err
    assert rep["error_total"] == 0 and rep["requests"] > 0, rep
    assert rep["connects"] >= rep["requests"], rep  # one connection each
    # open loop: the rate asked for is the rate measured
    rc, rep, err = fcgi_load(sf.sock, "-c", "4", "-d", "2", "-R", "2000", "-t", "0.5", "-w", "0.1")
    assert rc == 0, err
    assert rep["error_total"] == 0 and abs(rep["requests_per_s"] - 2000) < 100, rep
    # a body from a file, on a route that stores it
    body = os.path.join(workdir, "body")
    with open(body, "wb") as f:
        f.write(b"Marge \x00 binary" * 100)
    rc, rep, err = fcgi_load(sf.sock, "-c", "2", "-n", "50", "-w", "0", "-b", body,
                             "-p", "/api/v1/marges/bench")
    assert rc == 0, err
    assert rep["requests"] == 50 and rep["error_total"] == 0, rep


def test_fixed_number_of_requests(launch):
    fl = launch(Floor)
    rc, rep, err = fcgi_load(fl.sock, "-c", "3", "-d", "5", "-n", "1000", "-w", "0")
    assert rc == 0, err
    assert rep["requests"] == 1000 and rep["error_total"] == 0, rep


def test_requests_the_socket_takes_in_part(launch):
    """1,000 requests of 16 KiB in flight on one connection, 1 MiB a writev,
    are more than a unix socket takes at once (its send buffer is about
    200 KiB): the short writes' rest waits for EPOLLOUT and goes out in
    order (a byte lost or sent twice breaks the framing the floor reads, and
    the count)."""
    fl = launch(Floor, "--walk-params")
    rc, rep, err = fcgi_load(fl.sock, "-c", "1", "-d", "1000", "-n", "10000", "-w", "0",
                             "-P", "HTTP_X_PAD=" + "x" * 16000)
    assert rc == 0, err
    assert rep["requests"] == 10000 and rep["error_total"] == 0, rep
    assert rep["short_writes"] > 0, rep  # the case under test happened
    fl.stop()
    assert "floor: walked the pairs of" in fl.log(), fl.log()


def test_open_loop_counts_a_stall_from_the_schedule(launch):
    """Coordinated omission: the floor stops for 0.2 s of a 1 s open-loop
    run at 1000 req/s.  The ~200 requests scheduled meanwhile waited up to
    0.2 s each, and the latency must say so (a closed loop, or a latency
    taken from the actual send, would show only the few in flight)."""
    fl = launch(Floor)

    def pause():
        time.sleep(0.5)
        os.kill(fl.pid, signal.SIGSTOP)
        time.sleep(0.2)
        os.kill(fl.pid, signal.SIGCONT)

    t = threading.Thread(target=pause)
    t.start()
    try:
        rc, rep, err = fcgi_load(fl.sock, "-c", "2", "-d", "2", "-R", "1000", "-t", "1",
                                 "-w", "0.2")
    finally:
        t.join()
    assert rc == 0, err
    lat = rep["latency_us"]
    assert lat["max"] >= 150000 and lat["p99"] >= 100000, rep
    assert lat["mean"] >= 5000, rep  # ~20 % of the requests, ~100 ms each on average


def test_non_2xx_is_an_error(launch):
    sf = launch(servers.Springfield, listen="unix", extra_args=["--no-access-log"])
    rc, rep, err = fcgi_load(sf.sock, "-c", "2", "-t", "0.2", "-w", "0", "-p", "/nowhere")
    assert rc == 1 and rep["errors"]["non-2xx"] >= rep["requests"] > 0, (rep, err)
    assert "Status 404" in err
    rc, rep, err = fcgi_load(sf.sock, "-c", "2", "-t", "0.2", "-w", "0", "-p", "/nowhere",
                             "--allow-errors")
    assert rc == 0 and rep["errors"]["non-2xx"] > 0, (rep, err)


@pytest.mark.parametrize("corrupt,kind,reason", [
    ("version", "protocol", "record version is not 1"),
    ("id", "protocol", "record for a request id not in flight"),
    ("unterminated", "protocol", "END_REQUEST before the end of STDOUT"),
    ("status", "non-2xx", "Status 500"),
    ("fcgi-status", "fcgi-status", "OVERLOADED"),
    ("close", "closed", "closed by the server with requests in flight"),
    ("stall", "timeout", None),
])
def test_broken_answers_are_reported(launch, corrupt, kind, reason):
    """One answer in 50 is broken: each is caught, under its kind."""
    fl = launch(Floor, "--corrupt", corrupt, "--corrupt-every", "50")
    rc, rep, err = fcgi_load(fl.sock, "-c", "2", "-d", "1", "-t", "0.25", "-w", "0",
                             "--timeout", "0.1")
    assert rc == 1, (rep, err)
    others = {k: v for k, v in rep["errors"].items() if k != kind}
    assert rep["errors"][kind] > 0 and set(others.values()) == {0}, rep
    assert rep["error_total"] == rep["errors"][kind], rep
    if reason:
        assert reason in err, err
    assert rep["requests"] > 0, rep  # the good answers around them still count


def test_refused_when_nobody_listens(workdir):
    rc, rep, err = fcgi_load(os.path.join(workdir, "nobody.sock"), "-c", "2", "-t", "0.2",
                             "-w", "0")
    assert rc == 1 and rep["errors"]["connect"] > 0, (rep, err)
    assert "No such file or directory" in err
    s = socket.socket(socket.AF_UNIX)
    path = os.path.join(workdir, "bound.sock")
    s.bind(path)  # bound, not listening: ECONNREFUSED
    try:
        rc, rep, err = fcgi_load(path, "-c", "2", "-t", "0.2", "-w", "0")
    finally:
        s.close()
    assert rc == 1 and rep["errors"]["refused"] > 0, (rep, err)
    # --requests gives up when nothing answers for --timeout (it never hangs)
    rc, rep, err = fcgi_load(path, "-c", "2", "-n", "10", "-w", "0", "--timeout", "0.3",
                             timeout=10)
    assert rc == 1 and rep["errors"]["refused"] > 0 and rep["requests"] == 0, (rep, err)


def test_floor_answers_like_springfield(launch):
    """The floor's answer is springfield's flanders answer, byte for byte,
    with the request's id, and it honours FCGI_KEEP_CONN."""
    sf = launch(servers.Springfield, listen="unix", extra_args=["--no-access-log"])
    fl = launch(Floor)
    answers = []
    for sock in (sf.sock, fl.sock):
        with fc.Connection(sock, timeout=5) as c:
            for rid in (1, 300, 2):  # multiplexed, ids above 255 too
                c.send_request(rid, fc.cgi_params("GET", "/api/v1/flanders"))
            got = [c.read_response(rid) for rid in (1, 300, 2)]
            assert c.still_open()  # KEEP_CONN: the connection stays
        for r in got:
            assert r.protocol_status == fc.REQUEST_COMPLETE and r.stdout_closed
        answers.append([r.stdout for r in got])
        with fc.Connection(sock, timeout=5) as c:
            c.send_request(7, fc.cgi_params("GET", "/api/v1/flanders"), flags=0)
            assert c.read_response(7).protocol_status == fc.REQUEST_COMPLETE
            assert c.is_closed_by_peer()  # no KEEP_CONN: closed after the answer
    assert answers[0] == answers[1]
    assert answers[1][0].endswith(b"\r\n\r\nHi-dilly-ho, neighborino!")
    # a request cut into 1-byte writes is framed the same way
    with fc.Connection(fl.sock, timeout=5) as c:
        c.send_bytewise(fc.encode_request(9, fc.cgi_params("GET", "/x"), b"body"))
        assert c.read_response(9).stdout == answers[0][0]


def test_walking_floor_walks_every_params_record(launch):
    """bench/floor --walk-params (bench/app.sh --walk-floor) answers as the
    floor does, walks each PARAMS record's pairs, 4-byte lengths too, and
    closes a connection whose pairs do not fit their record instead of
    answering it."""
    fl = launch(Floor, "--walk-params")
    with fc.Connection(fl.sock, timeout=5) as c:
        c.send_request(1, fc.cgi_params("GET", "/api/v1/flanders"))
        c.send_request(2, fc.cgi_params("GET", "/x", extra={"HTTP_X_LONG": "v" * 300}))
        for rid in (1, 2):
            assert c.read_response(rid).stdout.endswith(b"Hi-dilly-ho, neighborino!")
    pairs = fc.encode_pairs({"REQUEST_METHOD": "GET"})
    broken = pairs[:1] + bytes([pairs[1] + 40]) + pairs[2:]  # the value 40 bytes too long
    with fc.Connection(fl.sock, timeout=5) as c:
        c.send(fc.encode_begin(3) + fc.encode_stream(fc.PARAMS, 3, broken)
               + fc.encode_stream(fc.STDIN, 3, b""))
        assert c.is_closed_by_peer()
        assert 3 not in c.responses
    fl.stop()
    assert "floor: walked the pairs of 2 PARAMS records (0 came in pieces" in fl.log(), fl.log()


@pytest.mark.parametrize("values, expected", [
    (["2600000", "2700000"], 2650000.0),  # even: the mean of the middle two
    (["3", "1e6", "2"], 3.0),             # odd: the middle one, sorted as numbers
    ([], None),                           # none: nan
])
def test_bench_median_is_plain_decimal(values, expected):
    """bench/lib.sh's median, which the bench scripts pass to bc: a mean of
    two rates above a million once came out as 2.65e+06, which bc cannot
    read, and the ratio column of bench/app.sh read 0.000."""
    # ($0 is what lib.sh finds the tree by)
    r = subprocess.run(["sh", "-c", '. bench/lib.sh && median', "bench/median"], cwd=servers.REPO,
                       input="".join(v + "\n" for v in values).encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode().strip()
    if expected is None:
        assert out == "nan"
        return
    assert "e" not in out.lower(), out
    assert float(out) == expected
    bc = subprocess.run(["bc", "-l"], input=(out + " / 2\n").encode(), capture_output=True,
                        timeout=10)
    assert float(bc.stdout) == expected / 2, bc.stderr.decode()


COMPARE = os.path.join(servers.REPO, "bench", "compare.sh")


def test_compare_gives_a_row_per_server(workdir):
    """bench/compare.sh, two builds (the same binary twice) beside the
    floor, two short rounds: a row each, with a cost per request and the
    round-by-round ratios, the first build's to itself exactly 1."""
    r = subprocess.run([COMPARE, "--rounds", "2", "--seconds", "0.3", "--warmup", "0.1",
                        "./springfield", "./springfield"], cwd=servers.REPO,
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    rows = [line.split() for line in r.stdout.decode().splitlines()
            if line.startswith(("bench/floor ", "./springfield "))]
    assert [row[0] for row in rows] == ["bench/floor", "./springfield", "./springfield"], rows
    for row in rows:
        assert float(row[1]) > 0, row
        assert 0 < float(row[2]) < 10, row
    assert rows[0][2] == "1.000" and rows[0][4] == "-", rows[0]
    assert rows[1][4] == "1.000", rows[1]


def test_compare_fails_on_a_build_that_does_not_serve(workdir):
    """A build that exits at once (here /bin/false) fails the script with
    the reason, not a table of nothing."""
    r = subprocess.run([COMPARE, "--rounds", "1", "--seconds", "0.2", "./springfield",
                        "/bin/false"], cwd=servers.REPO,
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, (r.returncode, r.stderr.decode()[-2000:])
    assert b"does not answer" in r.stderr, r.stderr.decode()[-2000:]
    assert b"server s2" in r.stderr
