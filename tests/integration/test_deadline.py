"""--request-timeout-ms bounds a whole request: 504 when it passes,
whatever its backends do, and the handler's late answer is dropped; the
service serves on and counts it."""

import re
import time

import fcgi_client
import servers
from httpc import assert_error_shape, http_request, wait_for_log
from launch_weather import WeatherStub


def status(sf):
    return fcgi_client.status_json(sf.address)


def test_a_hung_backend_gets_504_at_the_request_deadline(launch):
    weather = launch(WeatherStub, mode="slow", slow_ms=3000)
    sf = launch(servers.Springfield, listen="unix",
                extra_args=["--request-timeout-ms", "300", "--backend-timeout", "1500",
                            "--status-path", "/status"],
                env={"WEATHER_URI": weather.uri})
    front = launch(servers.ShippedNginx, sf)
    t0 = time.monotonic()
    code, headers, body = http_request(front.port, "GET", "/api/v1/maggie")
    took = time.monotonic() - t0
    message = assert_error_shape(code, headers, body, 504)
    assert "300 ms" in message, message
    assert took < 1.2, "504 after %.2f s: the deadline (0.3 s) did not apply" % took
    # the backend's own timeout (1.5 s) comes later: its late answer is dropped
    time.sleep(1.8)
    code, _, body = http_request(front.port, "GET", "/api/v1/flanders")
    assert code == 200, body
    doc = status(sf)
    assert doc["requests"]["limit_refusals"]["request_timeout"] == 1, doc["requests"]
    assert doc["routes"]["/api/v1/maggie"]["5xx"] == 1, doc["routes"]
    assert doc["requests"]["in_flight"] == 1  # the status request itself
    log = sf.log()
    assert "--request-timeout-ms" in log, log[-2000:]
    assert log.count("GET /api/v1/maggie 504") == 1, log[-2000:]  # answered once


def test_requests_within_the_deadline_are_untouched(launch):
    weather = launch(WeatherStub, mode="slow", slow_ms=100)
    sf = launch(servers.Springfield, listen="unix",
                extra_args=["--request-timeout-ms", "2000", "--status-path", "/status"],
                env={"WEATHER_URI": weather.uri})
    for _ in range(5):
        resp = fcgi_client.request(sf.address, "GET", "/api/v1/maggie")
        assert resp.http()[0] == 200, resp.http()
    assert status(sf)["requests"]["limit_refusals"]["request_timeout"] == 0


def test_a_request_whose_body_never_comes_gets_504_and_its_connection_closes(launch):
    sf = launch(servers.Springfield, listen="unix",
                extra_args=["--request-timeout-ms", "300", "--status-path", "/status"])
    with fcgi_client.Connection(sf.address) as c:
        p = fcgi_client.cgi_params("POST", "/api/v1/marges/k", body_len=100)
        c.send(fcgi_client.encode_begin(1)
               + fcgi_client.encode_stream(fcgi_client.PARAMS, 1, fcgi_client.encode_pairs(p)))
        resp = c.read_response(1, timeout=5)
        assert resp.http()[0] == 504
        assert c.is_closed_by_peer(timeout=3)
    assert fcgi_client.request(sf.address, "GET", "/api/v1/flanders").http()[0] == 200
    assert status(sf)["requests"]["limit_refusals"]["request_timeout"] == 1


SLOW = re.compile(r"slow request: (\S+) (\S+) (\d+) after (\d+) ms \(route (\S+)\)(.*)")


def slow_lines(sf):
    return [SLOW.search(line).groups() for line in sf.log().splitlines() if SLOW.search(line)]


def test_slow_requests_are_logged_with_each_backend_operation(launch):
    weather = launch(WeatherStub, mode="slow", slow_ms=400)
    sf = launch(servers.Springfield, listen="unix", extra_args=["--slow-request-ms", "200"],
                env={"WEATHER_URI": weather.uri})
    for path in ("/api/v1/flanders", "/api/v1/maggie", "/api/v1/healthcheck"):
        resp = fcgi_client.request(sf.address, "GET", path, timeout=10)
        assert resp.http()[0] == 200, (path, resp.http())
    wait_for_log(sf, r"slow request: GET /api/v1/healthcheck")
    lines = slow_lines(sf)
    assert [l[1] for l in lines] == ["/api/v1/maggie", "/api/v1/healthcheck"], lines
    method, path, status, ms, route, backends = lines[0]
    assert (method, status, route) == ("GET", "200", "/api/v1/maggie")
    assert 380 <= int(ms) < 5000, ms
    weather_ms = int(re.search(r"backends: weather (\d+) ms$", backends).group(1))
    assert 380 <= weather_ms <= int(ms), backends
    # the health check's pings, each by its route: the slow one stands out
    backends = lines[1][5]
    took = dict((name, int(v)) for name, v in re.findall(r"(\w+) (\d+) ms", backends))
    assert set(took) == {"marges", "homers", "lisas", "bart", "maggie"}, backends
    assert took["maggie"] >= 380 and took["marges"] < 200, took


def test_no_slow_request_log_unless_asked(launch):
    weather = launch(WeatherStub, mode="slow", slow_ms=300)
    sf = launch(servers.Springfield, listen="unix", env={"WEATHER_URI": weather.uri})
    assert fcgi_client.request(sf.address, "GET", "/api/v1/maggie").http()[0] == 200
    assert fcgi_client.request(sf.address, "GET", "/api/v1/flanders").http()[0] == 200
    assert not slow_lines(sf)
