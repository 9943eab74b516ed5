"""Logs (issue 9, item 6): the JSON access log (--access-log-format json)
and the --log-file that SIGUSR1 reopens.

springfield is driven directly with fcgi_client.py, as in test_launch.py.
A JSON line must parse with json.loads whatever the request held (quotes,
backslashes, control bytes, bytes that are not UTF-8), and carry the route
(the pattern, not the path) and the time waited on backends.  The log file
must receive what stderr would have, and after logrotate's move-then-signal
the lines that follow go to the new file, from a single process and from a
supervisor with its workers alike.
"""

import json
import os
import re
import signal
import stat
import subprocess

import pytest

import fcgi_client as fc
import servers
from launch_weather import WeatherStub
from test_launch import (FLANDERS, Sf, children, clean_env, flanders, post, run_sf, sf_unix,
                         wait_exit, wait_until)

JSON_KEYS = {"time", "method", "path", "route", "status", "bytes", "us", "backend_us"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# a process-log line: "2026-12-01T17:00:00Z springfield[123] info: text"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ springfield\[(\d+)\] \w+: (.*)$", re.M)
ACCESS_LINE = re.compile(r"^([A-Z]+) (/\S*) (\d{3}) (\d+) (\d+)us$", re.M)


def json_lines(text):
    """Every line that is not a process-log line, parsed: all must be JSON."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("=== start:") or LOG_LINE.match(line):
            continue
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("not a JSON line (%s): %r" % (e, line))
    return out


def raw_request(address, method, path, body=b""):
    """A request whose path is the bytes given, in SCRIPT_NAME and REQUEST_URI."""
    params = {"REQUEST_METHOD": method, "SCRIPT_NAME": path, "REQUEST_URI": path,
              "CONTENT_LENGTH": str(len(body))}
    with fc.Connection(address, timeout=5) as c:
        c.send_request(1, params, body)
        return c.read_response(1).http()


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


# ---------------------------------------------------------------- JSON access log


def test_json_access_log_lines(launch, workdir):
    sf = sf_unix(launch, workdir, "--access-log-format", "json")
    flanders(sf.address)
    assert post(sf.address, "/api/v1/marges/x", b"abc")[0] == 204
    weird = b'/api/v1/marges/q"b\\s\tc\x01\x7f\xff\xc3\xa9'
    status, _, _ = raw_request(sf.address, "GET", weird)
    assert status == 404  # nothing stored under that name
    nope = fc.request(sf.address, "GET", "/api/v1/nope").http()
    deny = fc.request(sf.address, "DELETE", "/api/v1/flanders").http()
    assert sf.stop() == 0
    lines = json_lines(sf.log())
    assert len(lines) == 5, lines
    for line in lines:
        assert set(line) == JSON_KEYS, line
        assert TIME.match(line["time"]), line
        assert isinstance(line["status"], int) and isinstance(line["bytes"], int), line
        assert isinstance(line["us"], int) and line["us"] >= 0, line
    fl, put, get, no, de = lines
    assert (fl["method"], fl["path"], fl["route"], fl["status"], fl["bytes"]) == \
        ("GET", "/api/v1/flanders", "/api/v1/flanders", 200, len(FLANDERS)), fl
    assert fl["backend_us"] is None, "flanders uses no backend: %r" % fl
    # the route is the pattern; the store was waited for (embedded: ~0 us)
    assert (put["method"], put["path"], put["route"], put["status"], put["bytes"]) == \
        ("POST", "/api/v1/marges/x", "/api/v1/marges/NAME", 204, 0), put
    assert isinstance(put["backend_us"], int) and 0 <= put["backend_us"] <= put["us"], put
    # quotes, backslash, tab, control bytes kept (escaped); a byte that is
    # not UTF-8 is U+FFFD; valid UTF-8 stays
    assert get["path"] == '/api/v1/marges/q"b\\s\tc\x01\x7f\ufffd\u00e9', get
    assert get["route"] == "/api/v1/marges/NAME" and get["status"] == 404, get
    assert (no["path"], no["route"], no["status"], no["bytes"]) == \
        ("/api/v1/nope", None, 404, len(nope[2])), no
    assert (de["method"], de["route"], de["status"], de["bytes"]) == \
        ("DELETE", "/api/v1/flanders", 405, len(deny[2])), de
    # the text line is gone
    assert not ACCESS_LINE.search(sf.log()), sf.log()


def test_json_backend_time_is_the_wait(launch, workdir):
    """maggie waits ~400 ms for a slow weather service: backend_us says so,
    within the request's own time."""
    weather = launch(WeatherStub)
    weather.mode("slow", ms=400)
    sf = sf_unix(launch, workdir, env={"WEATHER_URI": weather.uri,
                                       "SPRINGFIELD_ACCESS_LOG_FORMAT": "json"})
    status, _, _ = fc.request(sf.address, "GET", "/api/v1/maggie").http()
    assert status == 200
    status, _, _ = fc.request(sf.address, "GET", "/api/v1/healthcheck").http()
    assert status == 200
    assert sf.stop() == 0
    maggie, health = json_lines(sf.log())
    assert maggie["route"] == "/api/v1/maggie", maggie
    assert 350000 <= maggie["backend_us"] <= maggie["us"], maggie
    # the health check's pings run side by side: their wait counts once
    assert health["route"] == "/api/v1/healthcheck", health
    assert 350000 <= health["backend_us"] <= health["us"], health


def test_access_log_format_text_is_the_default_and_json_is_strict(launch, workdir):
    sf = sf_unix(launch, workdir, "--access-log-format", "text")
    flanders(sf.address)
    assert sf.stop() == 0
    assert ACCESS_LINE.search(sf.log()), sf.log()
    for args, env, named in ((["--access-log-format", "JSON"], None, "--access-log-format"),
                             ([], {"SPRINGFIELD_ACCESS_LOG_FORMAT": "yaml"},
                              "SPRINGFIELD_ACCESS_LOG_FORMAT")):
        r = run_sf(["--listen", "unix:" + os.path.join(workdir, "never.sock")] + args, env=env)
        assert r.returncode == 2 and named.encode() in r.stderr, (args, env, r)


# ---------------------------------------------------------------- --log-file


def test_log_file_gets_the_log_and_the_access_log(launch, workdir):
    path = os.path.join(workdir, "springfield.log")
    sf = sf_unix(launch, workdir, "--log-file", path)
    flanders(sf.address)
    assert sf.stop() == 0
    text = read(path)
    assert re.search(r"springfield\[\d+\] info: springfield \S+ listening on unix:", text), text
    assert ACCESS_LINE.search(text), text
    assert re.search(r"info: stopped$", text, re.M), "the last lines were not written\n" + text
    # nothing on stderr but the launcher's own line
    stderr = [l for l in sf.log().splitlines() if l and not l.startswith("=== start:")]
    assert stderr == [], stderr
    mode = stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o640 & ~umask, oct(mode)


def test_log_file_appends(launch, workdir):
    path = os.path.join(workdir, "springfield.log")
    with open(path, "w") as f:
        f.write("kept line\n")
    sf = sf_unix(launch, workdir, "--log-file", path, "--access-log-format", "json")
    flanders(sf.address)
    assert sf.stop() == 0
    text = read(path)
    assert text.startswith("kept line\n"), text
    assert [l["path"] for l in json_lines(text.split("\n", 1)[1])] == ["/api/v1/flanders"]


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "workers-2"])
def test_sigusr1_reopens_the_log_file(launch, workdir, workers):
    """logrotate: move the file away, SIGUSR1 the main process; the lines
    that follow go to a new file at the same path, from every process."""
    path = os.path.join(workdir, "springfield.log")
    args = ["--log-file", path] + (["--workers", str(workers)] if workers else [])
    sf = sf_unix(launch, workdir, *args)
    if workers:
        wait_until(lambda: len(children(sf.pid)) == workers, 5, "%d workers" % workers)
    pids = {sf.pid} | children(sf.pid)
    for _ in range(4):
        fc.request(sf.address, "GET", "/api/v1/flanders")
    rotated = path + ".1"
    os.rename(path, rotated)
    os.kill(sf.pid, signal.SIGUSR1)

    def reopened():
        if not os.path.exists(path):
            return None
        said = {int(p) for p, t in LOG_LINE.findall(read(path)) if "reopened" in t}
        return said if said >= pids else None
    wait_until(reopened, 5, "every process (%s) reopened %s" % (sorted(pids), path))
    for _ in range(4):
        fc.request(sf.address, "GET", "/api/v1/marges/after")
    assert sf.alive()
    os.kill(sf.pid, signal.SIGTERM)
    rc, _ = wait_exit(sf, 10)
    assert rc == 0
    old, new = read(rotated), read(path)
    before = [m[1] for m in ACCESS_LINE.findall(old)]
    after = [m[1] for m in ACCESS_LINE.findall(new)]
    assert before == ["/api/v1/flanders"] * 4, old
    assert after == ["/api/v1/marges/after"] * 4, new
    assert "stopped" in new and "stopped" not in old


def test_sigusr1_without_a_log_file_is_logged_and_ignored(launch, workdir):
    for args in ([], ["--workers", "1"]):
        name = "sf%d" % len(args)
        sf = sf_unix(launch, workdir, *args, name=name)
        if args:
            wait_until(lambda: len(children(sf.pid)) == 1, 5, "1 worker")
        os.kill(sf.pid, signal.SIGUSR1)
        wait_until(lambda: "SIGUSR1: ignored" in sf.log(), 5, "SIGUSR1 logged")
        flanders(sf.address)
        assert sf.alive()
        if args:
            assert len(children(sf.pid)) == 1
        assert sf.stop() == 0


def test_log_file_must_be_absolute_and_openable(workdir):
    r = run_sf(["--listen", "unix:" + os.path.join(workdir, "never.sock"),
                "--log-file", "relative.log"])
    assert r.returncode == 2 and b"--log-file" in r.stderr and b"absolute" in r.stderr, r
    r = run_sf(["--listen", "unix:" + os.path.join(workdir, "never.sock")],
               env={"SPRINGFIELD_LOG_FILE": "relative.log"})
    assert r.returncode == 2 and b"SPRINGFIELD_LOG_FILE" in r.stderr, r
    missing = os.path.join(workdir, "no", "such", "dir.log")
    r = run_sf(["--listen", "unix:" + os.path.join(workdir, "never.sock"), "--log-file", missing])
    assert r.returncode == 1 and missing.encode() in r.stderr, r
    assert not os.path.exists(os.path.join(workdir, "never.sock"))
