"""--status-path: the pool's status and metrics, through the shipped
deploy/nginx.conf, checked by real tools: promtool (Prometheus text),
prometheus_client's OpenMetrics parser, a real Prometheus scraping through
nginx, and JSON; counters that move with the requests sent; --workers 2
answering for the whole pool from either worker."""

import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

import fcgi_client
import servers
from httpc import assert_error_shape, http_get_from, http_request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

STATUS = ["--status-path", "/status"]


def status_json(port):
    status, headers, body = http_request(port, "GET", "/status",
                                         headers={"Accept": "application/json"})
    assert status == 200, body
    assert headers["content-type"].startswith("application/json"), headers
    return json.loads(body)


def status_fcgi(address):
    return fcgi_client.status_json(address)


def openmetrics(port, accept=True):
    """{(name, frozenset(labels)): value} of the OpenMetrics exposition."""
    if accept:
        status, headers, body = http_request(
            port, "GET", "/status", headers={"Accept": "application/openmetrics-text"})
    else:
        status, headers, body = http_request(port, "GET", "/status?format=openmetrics")
    assert status == 200, body
    assert headers["content-type"].startswith("application/openmetrics-text"), headers
    text = body.decode()
    assert text.endswith("# EOF\n"), text[-200:]
    samples = {}
    for fam in text_string_to_metric_families(text):  # raises on any format error
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def sample(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in samples, "no sample %s%r; have %s" % (
        name, labels, sorted(n for n, _ in samples if n.startswith(name))[:20])
    return samples[key]


def flanders(port, n):
    for _ in range(n):
        status, _, body = http_request(port, "GET", "/api/v1/flanders")
        assert status == 200, body


@pytest.fixture
def status_stack(launch):
    sf = launch(servers.Springfield, listen="unix", extra_args=STATUS)
    front = launch(servers.ShippedNginx, sf)
    return sf, front


def test_every_format_through_the_shipped_nginx(status_stack, workdir):
    sf, front = status_stack
    flanders(front.port, 7)
    for _ in range(3):
        assert http_request(front.port, "GET", "/api/v1/nothing-here")[0] == 404
    status, _, _ = http_request(front.port, "POST", "/api/v1/marges/k", body=b"v")
    assert status == 204

    # plain text, for a person: the version the binary reports, the routes
    status, headers, body = http_request(front.port, "GET", "/status")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain"), headers
    version = subprocess.run([sf.binary, "--version"], capture_output=True,
                             text=True).stdout.split()[-1]
    text = body.decode()
    assert ("springfield %s" % version) in text, text
    assert "/api/v1/flanders" in text and "2xx 7" in text, text

    # JSON, for scripts
    doc = status_json(front.port)
    assert doc["version"] == version
    assert doc["routes"]["/api/v1/flanders"]["2xx"] == 7
    assert doc["routes"]["none"]["4xx"] == 3
    assert doc["routes"]["/api/v1/marges/NAME"]["2xx"] == 1
    assert doc["backends"]["marges"]["results"]["ok"] == 1
    assert doc["workers_live"] == 1 and doc["workers_configured"] == 0
    assert doc["connections"]["accepted"] >= 1
    assert doc["requests"]["bytes_in"] > 0 and doc["requests"]["bytes_out"] > 0
    assert [w["pid"] for w in doc["workers"]] == [sf.pid]

    # OpenMetrics, by Accept and by ?format=
    for accept in (True, False):
        om = openmetrics(front.port, accept)
        assert sample(om, "springfield_requests_total", route="/api/v1/flanders",
                      **{"class": "2xx"}) == 7
        assert sample(om, "springfield_request_duration_seconds_count",
                      route="/api/v1/flanders") == 7
        assert sample(om, "springfield_request_duration_seconds_bucket",
                      route="/api/v1/flanders", le="+Inf") == 7
        assert sample(om, "springfield_backend_operations_total", backend="marges",
                      result="ok") == 1
        assert sample(om, "springfield_info", version=version) == 1

    # Prometheus text 0.0.4: promtool's lint accepts it
    status, headers, body = http_request(front.port, "GET", "/status?format=prometheus")
    assert status == 200, body
    assert "version=0.0.4" in headers["content-type"], headers
    check = subprocess.run(["promtool", "check", "metrics"], input=body,
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert b'springfield_requests_total{route="/api/v1/flanders",class="2xx"} 7\n' in body


def test_counters_move_with_the_requests(status_stack):
    _, front = status_stack
    before = status_json(front.port)
    flanders(front.port, 5)
    http_request(front.port, "GET", "/api/v1/marges/absent")
    after = status_json(front.port)
    r0, r1 = before["routes"], after["routes"]
    assert r1["/api/v1/flanders"]["2xx"] - r0["/api/v1/flanders"]["2xx"] == 5
    assert r1["/api/v1/marges/NAME"]["4xx"] - r0["/api/v1/marges/NAME"]["4xx"] == 1
    nf = "not found"
    assert (after["backends"]["marges"]["results"][nf]
            - before["backends"]["marges"]["results"][nf]) == 1
    # each status page read counts as one answered request too
    assert after["requests"]["answered"] - before["requests"]["answered"] == 5 + 1 + 1
    assert after["requests"]["bytes_out"] > before["requests"]["bytes_out"]


def test_shipped_nginx_serves_it_to_local_clients_only(status_stack):
    _, front = status_stack
    assert http_request(front.port, "GET", "/status")[0] == 200
    # another loopback address is not 127.0.0.1: nginx's deny applies
    answer = http_get_from("127.0.0.2", front.port, "/status")
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


def test_off_unless_configured(launch):
    sf = launch(servers.Springfield, listen="unix")
    front = launch(servers.ShippedNginx, sf)
    status, headers, body = http_request(front.port, "GET", "/status")
    assert_error_shape(status, headers, body, 404)


def test_bad_status_path_refused(workdir):
    for bad in ("status", "/st?atus", "/a b"):
        p = subprocess.run([servers.springfield_bin(), "--status-path", bad, "--listen",
                            "unix:" + os.path.join(workdir, "x.sock")],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, (bad, p.stderr)
        assert "--status-path" in p.stderr, p.stderr


def test_method_other_than_get_is_405(status_stack):
    _, front = status_stack
    status, headers, body = http_request(front.port, "POST", "/status", body=b"x")
    assert_error_shape(status, headers, body, 405)
    assert headers.get("allow") == "GET, HEAD"


def test_engine_refusals_are_counted(launch):
    """Protocol errors, limit refusals and aborts, sent straight over FastCGI."""
    sf = launch(servers.Springfield, listen="unix",
                extra_args=STATUS + ["--max-params-bytes", "1024"])
    before = status_fcgi(sf.address)
    # a record of an unknown FastCGI version: the connection is closed
    with fcgi_client.Connection(sf.address) as c:
        c.send(fcgi_client.encode_record(fcgi_client.BEGIN_REQUEST, 1, b"\0" * 8, version=9))
        assert c.is_closed_by_peer()
    # params over --max-params-bytes: 431
    resp = fcgi_client.request(sf.address, "GET", "/api/v1/flanders",
                               params={"HTTP_X_BIG": "x" * 2000})
    assert resp.http()[0] == 431
    # an abort of a request waiting for its body
    with fcgi_client.Connection(sf.address) as c:
        p = fcgi_client.cgi_params("POST", "/api/v1/marges/k", body_len=10)
        c.send(fcgi_client.encode_begin(1)
               + fcgi_client.encode_stream(fcgi_client.PARAMS, 1, fcgi_client.encode_pairs(p)))
        c.send(fcgi_client.encode_abort(1))
        c.read_response(1)
    after = status_fcgi(sf.address)
    assert after["requests"]["protocol_errors"] - before["requests"]["protocol_errors"] == 1
    lim0, lim1 = before["requests"]["limit_refusals"], after["requests"]["limit_refusals"]
    assert lim1["params"] - lim0["params"] == 1
    assert after["requests"]["aborted"] - before["requests"]["aborted"] == 1


def test_backend_state_breaker_and_reconnects(launch):
    redis = launch(servers.Redis)
    env = redis.env()
    sf = launch(servers.Springfield, listen="unix", extra_args=STATUS, env=env)
    front = launch(servers.ShippedNginx, sf)
    assert http_request(front.port, "POST", "/api/v1/marges/k", body=b"v")[0] == 204
    doc = status_json(front.port)
    m = doc["backends"]["marges"]
    assert m["kind"] == "redis" and m["breaker"] == "closed" and m["results"]["ok"] == 1
    redis.stop()
    for _ in range(5):
        assert http_request(front.port, "GET", "/api/v1/marges/k")[0] == 503
    deadline = time.monotonic() + 5
    while True:  # the gauges are published once a second
        m = status_json(front.port)["backends"]["marges"]
        if m["breaker"] != "closed" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert m["breaker"] in ("open", "half-open"), m
    assert m["results"]["unavailable"] >= 1, m
    om = openmetrics(front.port)
    assert sample(om, "springfield_backend_up", backend="marges", kind="redis") == 0
    redis.start()
    deadline = time.monotonic() + 10
    while http_request(front.port, "GET", "/api/v1/marges/k")[0] == 503:  # empty: 404
        assert time.monotonic() < deadline, "marges did not come back"
        time.sleep(0.2)
    m = status_json(front.port)["backends"]["marges"]
    assert m["reconnects"] >= 1, m
    assert m["seconds"] > 0, m


def test_any_worker_answers_for_the_whole_pool(launch):
    """--workers 2: the totals equal the requests sent, whichever worker is
    asked -- each is stopped in turn (SIGSTOP) so the other must answer."""
    sf = launch(servers.Springfield, listen="unix", extra_args=STATUS + ["--workers", "2"])
    sent = 0
    errors = []

    def client(n):
        try:
            for _ in range(n):
                resp = fcgi_client.request(sf.address, "GET", "/api/v1/flanders")
                if resp.http()[0] != 200:
                    errors.append(resp.http()[0])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(25,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    sent = 8 * 25
    deadline = time.monotonic() + 10
    while True:
        doc = status_fcgi(sf.address)
        if len(doc["workers"]) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    pids = sorted(w["pid"] for w in doc["workers"] if w["pid"])
    assert len(pids) == 2 and sf.pid not in pids, doc["workers"]
    seen_by = set()
    for stopped in pids:
        try:
            servers.sigstop(stopped)
            doc = status_fcgi(sf.address)
        finally:
            os.kill(stopped, signal.SIGCONT)
        seen_by.add(doc["answered_by"])
        assert doc["answered_by"] != stopped
        assert doc["routes"]["/api/v1/flanders"]["2xx"] == sent, doc["routes"]
        assert sum(w["answered"] for w in doc["workers"]) == doc["requests"]["answered"]
        assert doc["workers_configured"] == 2 and doc["workers_live"] == 2
    assert seen_by == set(pids)


def prometheus_query(port, expr):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_a_real_prometheus_scrapes_it_through_nginx(status_stack, launch):
    _, front = status_stack
    prom = launch(servers.Prometheus, "127.0.0.1:%d" % front.port, "/status")
    flanders(front.port, 9)
    expr = 'springfield_requests_total{route="/api/v1/flanders",class="2xx"}'
    deadline = time.monotonic() + 30
    result = []
    while time.monotonic() < deadline:
        try:
            result = prometheus_query(prom.port, expr)
        except OSError:
            result = []
        if result and float(result[0]["value"][1]) == 9:
            break
        time.sleep(0.5)
    assert result and float(result[0]["value"][1]) == 9, (result, prom.log()[-2000:])
    up = prometheus_query(prom.port, 'up{job="springfield"}')
    assert up and up[0]["value"][1] == "1", up
    buckets = prometheus_query(
        prom.port, 'springfield_request_duration_seconds_bucket{route="/api/v1/flanders"}')
    assert len(buckets) == 16, buckets  # 15 bounds and +Inf
    info = prometheus_query(prom.port, "springfield_info")
    assert info and info[0]["metric"].get("version"), info


def _apache(tmpdir, upstream):
    from launch_apache import ApacheProxyFcgi
    return ApacheProxyFcgi(tmpdir, upstream)


_apache.name = "apache-proxy-fcgi"


@pytest.mark.parametrize("front_cls", [servers.ShippedLighttpd, _apache, servers.Caddy,
                                       servers.H2o], ids=lambda c: c.name)
def test_shipped_fronts_local_only(launch, front_cls):
    """deploy/lighttpd.conf, apache-proxy-fcgi.conf, Caddyfile and h2o.conf
    pass /status to springfield for 127.0.0.1 and refuse 127.0.0.2."""
    sf = launch(servers.Springfield, listen="unix", extra_args=STATUS)
    front = launch(front_cls, sf)
    flanders(front.port, 2)
    doc = status_json(front.port)
    assert doc["routes"]["/api/v1/flanders"]["2xx"] == 2
    answer = http_get_from("127.0.0.2", front.port, "/status")
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"403", answer[:300]
    assert b"springfield" not in answer.split(b"\r\n\r\n", 1)[-1], answer[:300]
