"""HTTP helpers the integration tests share: one request on a fresh
connection, springfield's one error shape, and waiting for a log line."""

import http.client
import re
import time

FLANDERS = b"Hi-dilly-ho, neighborino!"
# "<code> <reason>: <message>\n", text/plain; charset=utf-8, on every route
ERROR_SHAPE = re.compile(rb"\A(\d{3}) ([A-Za-z][A-Za-z' -]*): ([^\n]*)\n\Z")


def http_request(port, method, path, body=None, headers=None, timeout=15):
    """(status, {lower-case header: value}, body) of one request to
    127.0.0.1:port on a connection of its own."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def http_get_from(source, port, path, timeout=15):
    """The raw HTTP/1.0 answer to GET path on 127.0.0.1:port from the local
    address source (another loopback address, e.g. 127.0.0.2: a client the
    front server does not take for this host's own)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(source, 0)) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode())
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return answer
            answer += chunk


def assert_error_shape(status, headers, body, code):
    """The answer is springfield's error shape with this code; returns the message."""
    assert status == code, (status, body)
    ctype = headers.get("content-type", "").replace(" ", "").lower()
    assert ctype == "text/plain;charset=utf-8", headers
    m = ERROR_SHAPE.match(body)
    assert m, "error body %r is not '<code> <reason>: <message>\\n'" % body
    assert int(m.group(1)) == code, body
    assert m.group(3).strip(), "empty error message: %r" % body
    return m.group(3).decode("utf-8", "replace")


def wait_for_log(server, pattern, timeout=5.0):
    """Polls a server's captured output for a regex; returns the match."""
    rx = re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while True:
        m = rx.search(server.log())
        if m:
            return m
        if time.monotonic() > deadline:
            raise AssertionError("no log line matching %r within %.0fs; log tail:\n%s"
                                 % (pattern, timeout, server.log()[-3000:]))
        time.sleep(0.05)
