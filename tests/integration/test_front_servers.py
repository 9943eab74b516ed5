"""springfield behind real front servers.

Every test runs four times: nginx and lighttpd, each with springfield
started by spawn-fcgi (inherited socket on fd 0) and with --listen
unix:PATH. nginx sends SCRIPT_NAME=/api/v1/...; lighttpd, with
fastcgi.server "/api", sends SCRIPT_NAME=/api and PATH_INFO=/v1/...;
both must route the same.
"""

import http.client
import socket
import threading

import pytest

import servers
from httpc import FLANDERS, assert_error_shape, http_request, wait_for_log



def test_flanders_get(stack):
    status, headers, body = http_request(stack.port, "GET", "/api/v1/flanders")
    assert status == 200, body
    assert body == FLANDERS
    assert headers.get("content-type", "").replace(" ", "").lower() == "text/plain;charset=utf-8"
    assert headers.get("content-length") == str(len(FLANDERS)) or \
        headers.get("transfer-encoding") == "chunked", headers


def test_unknown_path_404(stack):
    status, headers, body = http_request(stack.port, "GET", "/api/v1/nope")
    assert_error_shape(status, headers, body, 404)
    assert b"/api/v1/nope" in body


def test_post_flanders_405(stack):
    status, headers, body = http_request(stack.port, "POST", "/api/v1/flanders", body=b"x=1",
                                         headers={"Content-Type": "text/plain"})
    assert_error_shape(status, headers, body, 405)
    assert headers.get("allow") == "GET, HEAD", headers


def test_head_flanders(stack):
    status, headers, body = http_request(stack.port, "HEAD", "/api/v1/flanders")
    assert status == 200
    assert body == b""
    # the connection is still in sync after HEAD: a raw HEAD then GET on
    # one connection, where a stray body would corrupt the second answer
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        conn.request("HEAD", "/api/v1/flanders")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b""
        conn.request("GET", "/api/v1/flanders")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == FLANDERS
    finally:
        conn.close()


def test_marges_binary_roundtrip(stack):
    key = "rt-%s-%s" % (stack.front_name, stack.launch_mode)
    payload = bytes(range(256)) * 400  # 100 KiB, every byte value, NULs included
    assert len(payload) == 102400 and b"\0" in payload
    status, _, body = http_request(stack.port, "GET", "/api/v1/marges/" + key)
    assert status == 404, body
    status, _, body = http_request(stack.port, "POST", "/api/v1/marges/" + key, body=payload,
                                   headers={"Content-Type": "application/octet-stream"})
    assert status == 204, body
    assert body == b""
    status, _, body = http_request(stack.port, "GET", "/api/v1/marges/" + key)
    assert status == 200
    assert len(body) == len(payload)
    assert body == payload
    # overwrite with a short value
    status, _, _ = http_request(stack.port, "POST", "/api/v1/marges/" + key, body=b"x\0y")
    assert status == 204
    assert http_request(stack.port, "GET", "/api/v1/marges/" + key)[2] == b"x\0y"


@pytest.mark.springfield_args("--max-body-bytes", "1000")
def test_body_over_limit_413(stack):
    # at the limit: accepted
    status, _, body = http_request(stack.port, "POST", "/api/v1/marges/limit", body=b"a" * 1000)
    assert status == 204, body
    # one byte over: refused with the error shape
    status, headers, body = http_request(stack.port, "POST", "/api/v1/marges/limit",
                                         body=b"b" * 1001)
    assert_error_shape(status, headers, body, 413)
    # far over (springfield may answer before reading the body)
    status, headers, body = http_request(stack.port, "POST", "/api/v1/marges/limit",
                                         body=b"c" * 200000)
    assert_error_shape(status, headers, body, 413)
    # the stored value is the accepted one, and the front server still works
    status, _, body = http_request(stack.port, "GET", "/api/v1/marges/limit")
    assert status == 200 and body == b"a" * 1000
    for _ in range(3):
        status, _, body = http_request(stack.port, "GET", "/api/v1/flanders")
        assert status == 200 and body == FLANDERS


def test_keepalive_many_sequential_requests(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        conn.connect()
        sock = conn.sock
        for i in range(200):
            if i % 3 == 2:
                conn.request("GET", "/api/v1/nope")
                r = conn.getresponse()
                assert r.status == 404
                r.read()
            else:
                conn.request("GET", "/api/v1/flanders")
                r = conn.getresponse()
                assert r.status == 200
                assert r.read() == FLANDERS
            assert not r.will_close, "front server closed the keep-alive connection at %d" % i
            assert conn.sock is sock, "client connection was re-opened at request %d" % i
    finally:
        conn.close()


def test_concurrent_clients(stack):
    """Several client connections at once: the front server multiplexes
    them onto springfield's connection(s); every answer must be right."""
    errors = []

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
        try:
            for i in range(25):
                key = "c%d-%d" % (n, i)
                val = ("%d:%d:" % (n, i)).encode() * 50
                conn.request("POST", "/api/v1/marges/" + key, body=val)
                r = conn.getresponse()
                r.read()
                if r.status != 204:
                    errors.append((key, "POST", r.status))
                conn.request("GET", "/api/v1/marges/" + key)
                r = conn.getresponse()
                got = r.read()
                if r.status != 200 or got != val:
                    errors.append((key, "GET", r.status, got[:40]))
        except Exception as e:
            errors.append((n, repr(e)))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "clients did not finish within 60s"
    assert errors == []


def test_access_log_line(stack):
    status, _, _ = http_request(stack.port, "GET", "/api/v1/flanders")
    assert status == 200
    wait_for_log(stack.sf, r"^.*GET /api/v1/flanders 200 %d \d+us\s*$" % len(FLANDERS))
    status, _, _ = http_request(stack.port, "GET", "/api/v1/nope")
    assert status == 404
    wait_for_log(stack.sf, r"^.*GET /api/v1/nope 404 \d+ \d+us\s*$")
    status, _, _ = http_request(stack.port, "POST", "/api/v1/flanders", body=b"z")
    assert status == 405
    wait_for_log(stack.sf, r"^.*POST /api/v1/flanders 405 \d+ \d+us\s*$")


def test_sigterm_exits_zero(stack):
    status, _, _ = http_request(stack.port, "GET", "/api/v1/flanders")
    assert status == 200
    rc = stack.sf.stop()
    assert rc == 0, "springfield exit status after SIGTERM: %s\n%s" % (rc, stack.sf.log()[-2000:])
    # start again on the same socket path (a leftover socket file must not
    # stop it) and the front server reconnects
    stack.sf.start()
    status, _, body = http_request(stack.port, "GET", "/api/v1/flanders")
    assert status == 200 and body == FLANDERS


def redis_get(port, key):
    """GET over RESP with a raw socket (no client library needed)."""
    k = key.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
        buf = b""
        while b"\r\n" not in buf:
            buf += s.recv(65536)
        head, _, rest = buf.partition(b"\r\n")
        if head == b"$-1":
            return None
        n = int(head[1:])
        while len(rest) < n + 2:
            rest += s.recv(65536)
        return rest[:n]


def test_marges_on_real_redis(launch):
    """With REDIS_HOST/REDIS_PORT set, marges lives in redis-server: the
    bytes are visible there, and survive a springfield restart."""
    redis = launch(servers.Redis)
    sf = launch(servers.Springfield, listen="unix", env=redis.env())
    front = launch(servers.Nginx, sf)
    payload = b"\0redis\xff" * 1000
    status, _, body = http_request(front.port, "POST", "/api/v1/marges/on-redis", body=payload)
    assert status == 204, body
    stored = redis_get(redis.port, "on-redis")
    assert stored is not None, "value not in redis under the key 'on-redis' " \
        "(springfield may prefix keys; check its key naming)"
    assert stored == payload
    sf.restart()
    status, _, body = http_request(front.port, "GET", "/api/v1/marges/on-redis")
    assert status == 200 and body == payload
