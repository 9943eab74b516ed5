"""/api/v1/maggie against the local weather stub, through real nginx.

The stub's modes (tests/stubs/weather_stub.py) stand for the weather
service's good and bad days. Status codes follow DESIGN.md: upstream
garbage 502, too slow 504, not reachable 503. A slow weather service must
not hold up other routes: springfield's loop keeps answering.
"""

import threading
import time

import pytest

from launch_weather import WeatherStub
from httpc import FLANDERS, assert_error_shape, http_request

# fixtures mariadb_server, mariadb, sf_nginx: a plugin, so the session has one MariaDB
pytest_plugins = ["fixtures_backends"]

YAHOO_SENTENCE = b"Currently 72 degrees and Sunny in Austin, TX"
METEO_SENTENCE = b"Currently 21.3 degrees and Overcast in Austin, TX"


def maggie(port, timeout=10):
    t0 = time.monotonic()
    status, headers, body = http_request(port, "GET", "/api/v1/maggie", timeout=timeout)
    return status, headers, body, time.monotonic() - t0


@pytest.fixture
def weather(launch):
    return launch(WeatherStub)


@pytest.mark.parametrize("mode,sentence", [("ok", YAHOO_SENTENCE),
                                           ("openmeteo", METEO_SENTENCE),
                                           ("current", METEO_SENTENCE)],
                         ids=["ok", "openmeteo", "current"])
def test_good_answers(weather, sf_nginx, mode, sentence):
    port = sf_nginx(env={"WEATHER_URI": weather.uri}).port
    weather.mode(mode)
    before = weather.stats()["requests"]
    status, headers, body, _ = maggie(port)
    assert status == 200, body
    assert body == sentence
    assert headers.get("content-type", "").replace(" ", "").lower() == \
        "text/plain;charset=utf-8", headers
    # the answer came from the stub, not from the canned forecast
    assert weather.stats()["requests"] == before + 1


@pytest.mark.parametrize("mode,why", [
    ("garbage", b"not JSON"),
    ("wrongshape", b"no query.results"),
    ("http500", b"HTTP 500"),
    ("huge", b"larger than"),
], ids=["garbage", "wrongshape", "http500", "huge"])  # ids without spaces: they name the workdir
def test_bad_answers_are_502(weather, sf_nginx, mode, why):
    pair = sf_nginx(env={"WEATHER_URI": weather.uri})
    weather.mode(mode)
    status, headers, body, took = maggie(pair.port)
    assert_error_shape(status, headers, body, 502)
    assert b"weather" in body and why in body, body
    assert took < 2.0, "a bad answer took %.2fs" % took
    # the next good answer is fine again (nothing stuck on the connection)
    weather.mode("ok")
    status, _, body, _ = maggie(pair.port)
    assert (status, body) == (200, YAHOO_SENTENCE)


def test_slow_is_504_and_does_not_block_the_loop(weather, sf_nginx):
    pair = sf_nginx(env={"WEATHER_URI": weather.uri}, args=["--backend-timeout", "1000"])
    port = pair.port
    assert http_request(port, "POST", "/api/v1/marges/slowtest", body=b"kept")[0] == 204
    weather.mode("slow", ms=3000)

    status, headers, body, took = maggie(port)
    assert_error_shape(status, headers, body, 504)
    assert b"1000 ms" in body, body
    assert 0.9 <= took < 2.0, "504 after %.2fs, expected ~1s (--backend-timeout 1000)" % took

    # 20 requests stuck on the slow stub at once ...
    weather.reset_stats()
    results = []
    lock = threading.Lock()

    def one():
        r = maggie(port)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one) for _ in range(20)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    deadline = t0 + 0.8  # they time out after 1s: look while they are stuck
    while weather.stats()["requests"] < 20:
        assert time.monotonic() < deadline, \
            "only %d of 20 maggie requests reached the stub within 0.8s" \
            % weather.stats()["requests"]
        time.sleep(0.01)
    # ... while flanders and marges answer at once
    quick = []
    for path, expect in (("/api/v1/flanders", FLANDERS), ("/api/v1/marges/slowtest", b"kept"),
                         ("/api/v1/flanders", FLANDERS)):
        t = time.monotonic()
        status, _, body = http_request(port, "GET", path)
        quick.append((path, status, body, time.monotonic() - t))
    assert time.monotonic() - t0 < 1.0, "checks ran after the stuck requests timed out"
    assert len(results) == 0, "maggie requests finished while they should be stuck"
    for path, status, body, took in quick:
        assert status == 200, (path, body)
        assert took < 0.2, "%s took %.3fs while maggie is stuck" % (path, took)
    assert [q[2] for q in quick] == [FLANDERS, b"kept", FLANDERS]

    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 20
    for status, headers, body, took in results:
        assert_error_shape(status, headers, body, 504)
        assert took < 2.0, "a stuck request took %.2fs (timeouts run in parallel)" % took
    assert time.monotonic() - t0 < 2.5


def test_weather_down_is_503_and_recovers(weather, sf_nginx):
    port = sf_nginx(env={"WEATHER_URI": weather.uri}).port
    assert maggie(port)[:3:2] == (200, YAHOO_SENTENCE)
    weather.stop()
    for _ in range(3):
        status, headers, body, took = maggie(port)
        # DESIGN.md: backend not reachable = 503
        assert_error_shape(status, headers, body, 503)
        assert b"weather" in body, body
        assert took < 1.0, "a refused connection took %.2fs" % took
    assert http_request(port, "GET", "/api/v1/flanders")[::2] == (200, FLANDERS)
    weather.start()  # same port
    deadline = time.monotonic() + 5
    while True:
        status, _, body, _ = maggie(port)
        if status == 200:
            break
        assert time.monotonic() < deadline, "maggie still %d after the stub came back: %r" \
            % (status, body)
        time.sleep(0.05)
    assert body == YAHOO_SENTENCE


def test_without_weather_uri_canned_forecast(sf_nginx):
    pair = sf_nginx()  # no WEATHER_URI (the launcher drops it from the environment)
    assert "embedded canned forecast" in pair.sf.log()
    status, headers, body, _ = maggie(pair.port)
    assert status == 200, body
    assert body == YAHOO_SENTENCE
    assert headers.get("content-type", "").replace(" ", "").lower() == "text/plain;charset=utf-8"
