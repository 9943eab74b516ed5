"""/api/v1/healthcheck with real backends, through real nginx.

springfield runs against MariaDB, redis-server, the MongoDB stand-in and the
weather stub (bart stays on the embedded store). Each backend is stopped in
turn: the check answers 503 naming it (e.g. "redis (marges)"), quickly
(every ping has a 2 s deadline and they run in parallel), and 200 "OK"
again once it is back, without restarting springfield. The JSON form
(Accept: application/json) lists every backend with its state and latency.
"""

import json
import time

import pytest

import servers
from launch_mongo import MongoStandin
from launch_weather import WeatherStub
from httpc import assert_error_shape, http_request

# fixtures mariadb_server, mariadb, sf_nginx: a plugin, so the session has one MariaDB
pytest_plugins = ["fixtures_backends"]

HEALTH_DEADLINE_S = 2.0  # routes/healthcheck.c: each ping's deadline
KV_ROUTES = {"marges": "redis", "homers": "mongodb", "lisas": "mysql", "bart": "embedded"}


def health(port, as_json=False):
    headers = {"Accept": "application/json"} if as_json else {}
    t0 = time.monotonic()
    status, hdrs, body = http_request(port, "GET", "/api/v1/healthcheck", headers=headers)
    took = time.monotonic() - t0
    assert took < HEALTH_DEADLINE_S + 1.0, \
        "health check took %.2fs (pings are parallel, %.0fs deadline each)" \
        % (took, HEALTH_DEADLINE_S)
    return status, hdrs, body


def health_json(port):
    status, hdrs, body = health(port, as_json=True)
    assert hdrs.get("content-type", "").startswith("application/json"), (hdrs, body)
    return status, json.loads(body)


def wait_healthy(port, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = health(port)
        if status == 200:
            assert body == b"OK"
            return
        assert status == 503, body
        assert time.monotonic() < deadline, \
            "health check still 503 %.0fs after %s came back: %r" % (timeout, what, body)
        time.sleep(0.2)


class Backends:
    def __init__(self, mariadb, redis, mongo, weather):
        self.mariadb, self.redis, self.mongo, self.weather = mariadb, redis, mongo, weather

    def env(self):
        env = {}
        env.update(self.mariadb.env())
        env.update(self.redis.env())
        env.update(self.mongo.env())
        env["WEATHER_URI"] = self.weather.uri
        return env


@pytest.fixture
def backends(mariadb, launch):
    return Backends(mariadb, launch(servers.Redis), launch(MongoStandin),
                    launch(WeatherStub))


@pytest.fixture
def full(backends, sf_nginx):
    pair = sf_nginx(env=backends.env())
    log = pair.sf.log()
    for route, backend in (("marges", "redis"), ("homers", "mongodb"), ("lisas", "mysql")):
        assert "%s/NAME" % route in log and ("-> %s at" % backend) in log, log
    assert "weather service at %s" % backends.weather.uri in log, log
    return pair


def test_all_up(backends, full):
    status, hdrs, body = health(full.port)
    assert (status, body) == (200, b"OK")
    assert hdrs.get("content-type", "").replace(" ", "").lower() == "text/plain;charset=utf-8"

    status, doc = health_json(full.port)
    assert status == 200, doc
    assert doc["status"] == "ok", doc
    b = doc["backends"]
    for route, backend in KV_ROUTES.items():
        assert route in b, doc
        assert b[route]["backend"] == backend, doc
        assert b[route]["state"] == "ok", doc  # bart: the embedded store counts as healthy
        lat = b[route]["latency_ms"]
        assert isinstance(lat, (int, float)) and 0 <= lat < HEALTH_DEADLINE_S * 1000, doc
        assert "error" not in b[route], doc


@pytest.mark.parametrize("which,route,backend", [
    ("redis", "marges", "redis"),
    ("mongo", "homers", "mongodb"),
    ("mariadb", "lisas", "mysql"),
], ids=["redis", "mongo", "mariadb"])
def test_backend_down_named_then_back(backends, full, which, route, backend):
    port = full.port
    assert health(port)[::2] == (200, b"OK")
    srv = getattr(backends, which)
    srv.stop()
    try:
        status, hdrs, body = health(port)
        assert_error_shape(status, hdrs, body, 503)
        assert ("%s (%s)" % (backend, route)).encode() in body, body
        for other, other_backend in KV_ROUTES.items():  # only the one that is down
            if other != route:
                assert ("(%s)" % other).encode() not in body, body

        status, doc = health_json(port)
        assert status == 503, doc
        assert doc["status"] != "ok", doc
        b = doc["backends"]
        assert b[route]["backend"] == backend and b[route]["state"] != "ok", doc
        assert b[route].get("error"), doc
        for other in KV_ROUTES:
            if other != route:
                assert b[other]["state"] == "ok", doc
    finally:
        srv.start()  # same port
    wait_healthy(port, which)
    status, doc = health_json(port)
    assert status == 200 and doc["status"] == "ok" and b is not doc["backends"], doc
    assert all(v["state"] == "ok" for v in doc["backends"].values()), doc
    assert full.sf.alive()


def test_weather_down_named_then_back(backends, full):
    """maggie's backend is configured (WEATHER_URI), so the health check
    covers it like the others (DESIGN.md: all configured backends)."""
    port = full.port
    assert health(port)[::2] == (200, b"OK")
    status, doc = health_json(port)
    assert "maggie" in doc["backends"], \
        "the configured weather service is not in the health report: %r" % doc
    assert doc["backends"]["maggie"]["state"] == "ok", doc
    backends.weather.stop()
    try:
        status, hdrs, body = health(port)
        assert_error_shape(status, hdrs, body, 503)
        assert b"(maggie)" in body, body
    finally:
        backends.weather.start()
    wait_healthy(port, "the weather stub")


def test_embedded_routes_count_as_healthy(sf_nginx):
    pair = sf_nginx()  # no backend configured at all
    status, _, body = health(pair.port)
    assert (status, body) == (200, b"OK")
    status, doc = health_json(pair.port)
    assert status == 200 and doc["status"] == "ok", doc
    for route in KV_ROUTES:
        assert doc["backends"][route]["backend"] == "embedded", doc
        assert doc["backends"][route]["state"] == "ok", doc
