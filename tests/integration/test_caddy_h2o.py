"""springfield behind real Caddy (2.6) and real h2o (2.2), configured from
the shipped deploy/Caddyfile and deploy/h2o.conf (only the socket path and
the port replaced; servers.Caddy and servers.H2o).

Every springfield test runs four times: Caddy and h2o, each with
springfield started by spawn-fcgi (inherited socket on fd 0) and with
--listen unix:PATH.  What the two send, which the README's front-server
table and the shipped files' comments say, is checked against a FastCGI
recorder standing in for springfield: SCRIPT_NAME empty, PATH_INFO the whole
decoded path, no FCGI_KEEP_CONN (a connection per request).

Where they differ from nginx, the tests assert what they do, with the
reason: Caddy refuses nothing but sends CONTENT_LENGTH=-1 for a chunked
body (springfield reads it to the end of STDIN); h2o reads the whole body before it
connects (an aborted upload never reaches springfield) and closes the
client's connection after a HEAD answer.
"""

import http.client
import os
import socket
import struct
import threading
import time

import pytest

import fcgi_client as fc
import servers
from httpc import FLANDERS, assert_error_shape, http_request

FRONTS = {"caddy": servers.Caddy, "h2o": servers.H2o}
BINARY = bytes(range(256)) * 400  # 100 KiB, every byte value, NULs included
NAME_URL = "some%20name%20%C3%A9t%C3%A9"  # "some name été"
NAME_DECODED = "some name \u00e9t\u00e9"


@pytest.fixture(params=[(f, m) for f in FRONTS for m in ("spawn-fcgi", "unix")],
                ids=lambda p: "%s-%s" % p)
def stack(request, launch):
    from conftest import Stack, springfield_marker_args
    front_name, mode = request.param
    args, env = springfield_marker_args(request)
    sf = launch(servers.Springfield, listen=mode, extra_args=args, env=env)
    front = launch(FRONTS[front_name], sf)
    st = Stack(sf, front, front_name, mode)
    yield st
    st.check_springfield_alive()
    # a front server that died (h2o aborts on some upstream races) fails the test
    assert front.alive(), "%s died during the test\n%s" % (front_name, front.log()[-3000:])


def test_flanders(stack):
    status, headers, body = http_request(stack.port, "GET", "/api/v1/flanders")
    assert (status, body) == (200, FLANDERS)
    assert headers.get("content-type", "").replace(" ", "").lower() == "text/plain;charset=utf-8"
    # both pass springfield's Content-Length on (neither re-chunks it)
    assert headers.get("content-length") == str(len(FLANDERS)), headers
    if stack.front_name == "caddy":
        # Caddy 2.6 copies the CGI Status: line into the answer's headers
        assert headers.get("status") == "200 OK", headers
    else:
        assert "status" not in headers, headers


def test_unknown_path_404(stack):
    status, headers, body = http_request(stack.port, "GET", "/api/v1/nope")
    assert_error_shape(status, headers, body, 404)
    assert b"/api/v1/nope" in body


def test_post_flanders_405_with_allow(stack):
    status, headers, body = http_request(stack.port, "POST", "/api/v1/flanders", body=b"x=1",
                                         headers={"Content-Type": "text/plain"})
    assert_error_shape(status, headers, body, 405)
    assert headers.get("allow") == "GET, HEAD", headers


def test_head(stack):
    status, headers, body = http_request(stack.port, "HEAD", "/api/v1/flanders")
    assert (status, body) == (200, b"")
    assert headers.get("content-length") == str(len(FLANDERS)), headers
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        conn.request("HEAD", "/api/v1/flanders")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b""
        sock = conn.sock
        if stack.front_name == "h2o":
            # h2o 2.2 takes a HEAD answer's Content-Length without a body for
            # a cut-off answer and closes the client's connection after it
            assert r.will_close and r.getheader("connection") == "close"
        else:
            assert not r.will_close
        # the next request is right either way (a new connection after h2o's close)
        conn.request("GET", "/api/v1/flanders")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, FLANDERS)
        assert (conn.sock is sock) == (stack.front_name != "h2o")
    finally:
        conn.close()


def test_marges_binary_roundtrip(stack):
    key = "rt-%s-%s" % (stack.front_name, stack.launch_mode)
    status, _, body = http_request(stack.port, "GET", "/api/v1/marges/" + key)
    assert status == 404, body
    status, _, body = http_request(stack.port, "POST", "/api/v1/marges/" + key, body=BINARY,
                                   headers={"Content-Type": "application/octet-stream"})
    assert (status, body) == (204, b"")
    status, headers, body = http_request(stack.port, "GET", "/api/v1/marges/" + key)
    assert status == 200
    assert len(body) == len(BINARY) and body == BINARY
    assert headers.get("content-length") == str(len(BINARY)), headers
    # overwritten by a short value
    assert http_request(stack.port, "POST", "/api/v1/marges/" + key, body=b"x\0y")[0] == 204
    assert http_request(stack.port, "GET", "/api/v1/marges/" + key)[2] == b"x\0y"


def test_marges_name_is_the_decoded_path(stack):
    """PATH_INFO arrives decoded: "some%20name%20%C3%A9t%C3%A9" is the key
    "some name été", whichever way the client spells it."""
    status, _, _ = http_request(stack.port, "POST", "/api/v1/marges/" + NAME_URL, body=b"v")
    assert status == 204
    assert http_request(stack.port, "GET", "/api/v1/marges/" + NAME_URL.lower())[:3:2] == \
        (200, b"v")
    status, headers, body = http_request(stack.port, "GET", "/api/v1/marges/some%20name")
    assert_error_shape(status, headers, body, 404)


@pytest.mark.springfield_args("--max-body-bytes", "1000")
def test_body_over_limit_413(stack):
    assert http_request(stack.port, "POST", "/api/v1/marges/limit", body=b"a" * 1000)[0] == 204
    status, headers, body = http_request(stack.port, "POST", "/api/v1/marges/limit",
                                         body=b"b" * 1001)
    assert_error_shape(status, headers, body, 413)
    # far over: springfield answers from CONTENT_LENGTH before the body is
    # read, while the front server is still writing it.  5 MB is more than
    # the socket buffers hold: with FastCGI keep-alive on, h2o 2.2.5 aborts
    # here (deploy/h2o.conf says why it stays off).
    for size in (200000, 5 * 1024 * 1024):
        status, headers, body = http_request(stack.port, "POST", "/api/v1/marges/limit",
                                             body=b"c" * size, timeout=30)
        assert_error_shape(status, headers, body, 413)
    assert stack.front.alive(), stack.front.log()[-3000:]
    status, _, body = http_request(stack.port, "GET", "/api/v1/marges/limit")
    assert (status, body) == (200, b"a" * 1000)


def chunked_post(port, path, chunks):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("POST", path, body=iter(chunks), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_chunked_request_body(stack):
    status, headers, body = chunked_post(stack.port, "/api/v1/marges/chunked",
                                         [b"hello ", b"\0chunked\0", b" world"])
    # Caddy 2.6 sends CONTENT_LENGTH=-1 for a body of unknown length, which
    # springfield takes as "read to the end of STDIN" (within
    # --max-body-bytes); h2o reads the body first and sends its length
    assert status == 204, body
    assert http_request(stack.port, "GET", "/api/v1/marges/chunked")[:3:2] == \
        (200, b"hello \0chunked\0 world")


def test_client_aborts_mid_body(stack):
    """The client announces 100000 bytes, sends half and goes away.  Caddy
    has started the request on springfield and closes the FastCGI
    connection; h2o never connects.  Nothing is stored either way, and both
    go on serving."""
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
        s.sendall(b"POST /api/v1/marges/aborted HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
                  + b"a" * 50000)
        time.sleep(0.3)
        s.close()
    time.sleep(0.3)
    status, headers, body = http_request(stack.port, "GET", "/api/v1/marges/aborted")
    assert_error_shape(status, headers, body, 404)
    for _ in range(3):
        assert http_request(stack.port, "GET", "/api/v1/flanders")[:3:2] == (200, FLANDERS)
    stack.check_springfield_alive()


def test_client_keepalive(stack):
    """Many requests on one client connection (the FastCGI side opens a
    connection per request, see test_what_the_front_server_sends)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        conn.connect()
        sock = conn.sock
        for i in range(60):
            path = "/api/v1/nope" if i % 3 == 2 else "/api/v1/flanders"
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            assert r.status == (404 if i % 3 == 2 else 200)
            assert conn.sock is sock, "client connection re-opened at request %d" % i
    finally:
        conn.close()


def test_springfield_stopped(stack):
    """With springfield gone, Caddy answers 502 and h2o 503."""
    assert stack.sf.stop() == 0
    status, _, _ = http_request(stack.port, "GET", "/api/v1/flanders")
    assert status == {"caddy": 502, "h2o": 503}[stack.front_name]
    stack.sf.start()
    assert http_request(stack.port, "GET", "/api/v1/flanders")[:3:2] == (200, FLANDERS)


# --------------------------------------------------------------------------
# what the front servers send, seen by a FastCGI recorder in springfield's place


class Recorder:
    """A FastCGI responder on a unix socket that records each request's
    connection, BEGIN_REQUEST flags, params and body, and answers 200 "ok"
    (closing the connection when FCGI_KEEP_CONN is not set)."""

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        os.chmod(path, 0o666)
        self.srv.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    def _serve(self, c, n):
        reader = fc.RecordReader()
        params, body, flags = b"", b"", 0
        with c:
            while True:
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                reader.feed(data)
                for rec in reader.records():
                    if rec.type == fc.BEGIN_REQUEST:
                        flags = rec.content[2]
                        params, body = b"", b""
                    elif rec.type == fc.PARAMS:
                        params += rec.content
                    elif rec.type == fc.STDIN and rec.content:
                        body += rec.content
                    elif rec.type == fc.STDIN:
                        with self.lock:
                            self.requests.append({
                                "conn": n, "keep_conn": bool(flags & fc.KEEP_CONN),
                                "params": {k.decode(): v.decode("utf-8", "replace")
                                           for k, v in fc.decode_pairs(params)},
                                "body": body})
                        out = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok"
                        c.sendall(fc.encode_stream(fc.STDOUT, rec.request_id, out)
                                  + fc.encode_record(fc.END_REQUEST, rec.request_id,
                                                     struct.pack(">IB3x", 0, 0)))
                        if not flags & fc.KEEP_CONN:
                            return

    def close(self):
        self.srv.close()


@pytest.mark.parametrize("front_name", sorted(FRONTS))
def test_what_the_front_server_sends(launch, workdir, front_name):
    rec = Recorder(os.path.join(workdir, "recorder.sock"))
    try:
        front = launch(FRONTS[front_name], rec.path)
        for path in ("/api/v1/flanders", "/api/v1/marges/" + NAME_URL + "?q=1"):
            assert http_request(front.port, "GET", path)[:3:2] == (200, b"ok")
        assert http_request(front.port, "POST", "/api/v1/marges/x", body=b"12345")[0] == 200
        chunked = chunked_post(front.port, "/api/v1/marges/y", [b"ab", b"cd"])
        assert chunked[0] == 200, chunked
    finally:
        rec.close()
    reqs = rec.requests
    assert len(reqs) == 4, reqs
    flanders, name, post, chunk = reqs
    # springfield routes SCRIPT_NAME + PATH_INFO: "" + the whole decoded path
    for r, path in ((flanders, "/api/v1/flanders"), (name, "/api/v1/marges/" + NAME_DECODED)):
        assert r["params"].get("SCRIPT_NAME") == "", r["params"]
        assert r["params"].get("PATH_INFO") == path, r["params"]
    assert name["params"]["REQUEST_URI"] == "/api/v1/marges/" + NAME_URL + "?q=1"
    assert name["params"]["QUERY_STRING"] == "q=1"
    assert (post["params"]["CONTENT_LENGTH"], post["body"]) == ("5", b"12345")
    # no FCGI_KEEP_CONN, so a connection per request
    assert not any(r["keep_conn"] for r in reqs), reqs
    assert len({r["conn"] for r in reqs}) == 4, reqs
    # a chunked body: Caddy does not know its length and says -1, h2o read it first
    assert chunk["body"] == b"abcd"
    assert chunk["params"]["CONTENT_LENGTH"] == {"caddy": "-1", "h2o": "4"}[front_name]
