"""springfield behind real Apache httpd 2.4, configured from the shipped
deploy/apache-proxy-fcgi.conf and deploy/apache-fcgid.conf.

mod_proxy_fcgi (springfield started by --listen unix:PATH and by
deploy/spawn-fcgi.sh) sends SCRIPT_NAME=/api/v1/... (decoded), no
PATH_INFO, and with enablereuse=on keeps its FastCGI connections open
(FCGI_KEEP_CONN).  It drops springfield's Content-Length and answers
HTTP/1.1 clients chunked.  mod_fcgid starts springfield itself with the
listening socket on fd 0, sends SCRIPT_NAME=/api and PATH_INFO=/v1/..., one
request per connection; its settings come from FcgidInitialEnv.
"""

import http.client
import os
import time
from dataclasses import dataclass

import pytest

import fcgi_client
import servers
from httpc import FLANDERS, assert_error_shape, http_request, wait_for_log
from launch_apache import ApacheFcgid, ApacheProxyFcgi, SpawnFcgiScript, process_gone

# "some name été": a space and non-ASCII, as the client sends it and decoded
NAME_URL = "some%20name%20%C3%A9t%C3%A9"
NAME_URL_LOWER_HEX = "some%20name%20%c3%a9t%c3%a9"
NAME_DECODED = "some name \u00e9t\u00e9"
BINARY = bytes(range(256)) * 400  # 100 KiB, every byte value, NULs included


def open_fastcgi_connections(pid, baseline):
    """Sockets springfield holds beyond `baseline` (its listener and
    internal sockets, counted before any request): accepted connections."""
    fd_dir = "/proc/%d/fd" % pid
    n = 0
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)).startswith("socket:"):
                n += 1
        except OSError:
            pass  # closed meanwhile
    return n - baseline


def marges_roundtrip(port, key):
    status, _, body = http_request(port, "GET", "/api/v1/marges/" + key)
    assert status == 404, (status, body)
    status, _, body = http_request(port, "POST", "/api/v1/marges/" + key, body=BINARY,
                                   headers={"Content-Type": "application/octet-stream"})
    assert status == 204, (status, body)
    assert body == b""
    status, headers, body = http_request(port, "GET", "/api/v1/marges/" + key)
    assert status == 200, (status, body[:200])
    assert len(body) == len(BINARY)
    assert body == BINARY
    # overwritten by a short value
    status, _, _ = http_request(port, "POST", "/api/v1/marges/" + key, body=b"x\0y")
    assert status == 204
    status, _, body = http_request(port, "GET", "/api/v1/marges/" + key)
    assert (status, body) == (200, b"x\0y")


def name_with_space_and_non_ascii(port, value):
    status, _, body = http_request(port, "POST", "/api/v1/marges/" + NAME_URL, body=value)
    assert status == 204, (status, body)
    status, _, body = http_request(port, "GET", "/api/v1/marges/" + NAME_URL)
    assert (status, body) == (200, value)
    # the key is the decoded name: another spelling of the same bytes finds it...
    status, _, body = http_request(port, "GET", "/api/v1/marges/" + NAME_URL_LOWER_HEX)
    assert (status, body) == (200, value)
    # ...and a different name does not
    status, headers, body = http_request(port, "GET", "/api/v1/marges/some%20name%20ete")
    assert_error_shape(status, headers, body, 404)


# --------------------------------------------------------------------------
# mod_proxy_fcgi


@dataclass
class ProxyStack:
    sf: servers.Springfield
    front: ApacheProxyFcgi

    @property
    def port(self):
        return self.front.port


@pytest.fixture(params=["listen-unix", "spawn-fcgi.sh"])
def proxy(request, launch):
    if request.param == "listen-unix":
        sf = launch(servers.Springfield, listen="unix")
    else:
        sf = launch(SpawnFcgiScript)
    front = launch(ApacheProxyFcgi, sf)
    yield ProxyStack(sf, front)
    if sf.proc is not None and sf.proc.poll() is not None:
        raise AssertionError("springfield died (status %s)\n--- log tail ---\n%s"
                             % (sf.proc.poll(), servers.tail(sf.log_path)))


def test_proxy_flanders(proxy):
    status, headers, body = http_request(proxy.port, "GET", "/api/v1/flanders")
    assert status == 200, (status, body, proxy.front.log()[-2000:])
    assert body == FLANDERS
    assert headers.get("content-type", "").replace(" ", "").lower() == "text/plain;charset=utf-8"
    # mod_proxy_fcgi drops springfield's Content-Length and chunks instead
    assert headers.get("content-length") == str(len(FLANDERS)) or \
        headers.get("transfer-encoding") == "chunked", headers
    # springfield answered it (not Apache), with the path as the client sent it
    wait_for_log(proxy.sf, r"^.*GET /api/v1/flanders 200 %d \d+us$" % len(FLANDERS))


def test_proxy_unknown_path_404(proxy):
    status, headers, body = http_request(proxy.port, "GET", "/api/v1/nope")
    assert_error_shape(status, headers, body, 404)
    assert body == b"404 Not Found: no route for /api/v1/nope\n"


def test_proxy_post_flanders_405(proxy):
    status, headers, body = http_request(proxy.port, "POST", "/api/v1/flanders", body=b"x=1",
                                         headers={"Content-Type": "text/plain"})
    assert_error_shape(status, headers, body, 405)
    assert headers.get("allow") == "GET, HEAD", headers


def test_proxy_head(proxy):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("HEAD", "/api/v1/flanders")
        r = conn.getresponse()
        assert r.status == 200
        assert r.read() == b""
        assert r.getheader("content-type", "").replace(" ", "") == "text/plain;charset=utf-8"
        # the client connection is still in sync: a stray body would break this
        conn.request("GET", "/api/v1/flanders")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, FLANDERS)
    finally:
        conn.close()
    # Apache passed HEAD on; springfield answered it without a body
    wait_for_log(proxy.sf, r"^.*HEAD /api/v1/flanders 200 0 \d+us$")


def test_proxy_marges_binary_roundtrip(proxy):
    marges_roundtrip(proxy.port, "apache-proxy-rt")


def test_proxy_name_with_space_and_non_ascii(proxy):
    value = "\u00e9t\u00e9 \0 bytes".encode()
    name_with_space_and_non_ascii(proxy.port, value)
    # Apache sent the decoded name: a FastCGI request straight to springfield
    # with SCRIPT_NAME holding the UTF-8 bytes finds the same value
    path = ("/api/v1/marges/" + NAME_DECODED).encode("utf-8").decode("latin-1")
    with fcgi_client.Connection(proxy.sf.sock, timeout=5) as c:
        c.send_request(1, fcgi_client.cgi_params("GET", path))
        status, _, body = c.read_response(1).http()
    assert (status, body) == (200, value)


def test_proxy_reuses_connections(proxy):
    """enablereuse=on: Apache's one child keeps its FastCGI connection(s)
    open between requests instead of connecting for each one."""
    pid = proxy.sf.pid
    baseline = open_fastcgi_connections(pid, 0)
    for _ in range(30):
        status, _, body = http_request(proxy.port, "GET", "/api/v1/flanders")
        assert (status, body) == (200, FLANDERS)
    time.sleep(0.2)  # a connection Apache closed would be gone by now
    held = open_fastcgi_connections(pid, baseline)
    assert 1 <= held <= 3, ("springfield holds %d FastCGI connection(s) after 30 "
                            "sequential requests through one Apache child; connection "
                            "reuse means 1 (0: Apache closes after every request)" % held)


# --------------------------------------------------------------------------
# mod_fcgid


def test_fcgid_flanders_404_405(launch):
    front = launch(ApacheFcgid)
    status, headers, body = http_request(front.port, "GET", "/api/v1/flanders")
    assert (status, body) == (200, FLANDERS)
    assert headers.get("content-type", "").replace(" ", "").lower() == "text/plain;charset=utf-8"
    assert headers.get("content-length") == str(len(FLANDERS)), headers
    status, headers, body = http_request(front.port, "GET", "/api/v1/nope")
    assert_error_shape(status, headers, body, 404)
    assert body == b"404 Not Found: no route for /api/v1/nope\n"
    status, headers, body = http_request(front.port, "POST", "/api/v1/flanders", body=b"x")
    assert_error_shape(status, headers, body, 405)
    assert headers.get("allow") == "GET, HEAD", headers
    status, _, body = http_request(front.port, "HEAD", "/api/v1/flanders")
    assert (status, body) == (200, b"")
    assert "serving the listening socket inherited on fd 0" in front.error_log_text()


def test_fcgid_marges_roundtrip_one_process(launch):
    """FcgidMaxProcessesPerClass 1: one springfield, one embedded store;
    mod_fcgid connects once per request and springfield serves them all."""
    front = launch(ApacheFcgid, max_processes=1)
    marges_roundtrip(front.port, "apache-fcgid-rt")
    name_with_space_and_non_ascii(front.port, b"\xff\x00 fcgid")
    for _ in range(30):
        status, _, body = http_request(front.port, "GET", "/api/v1/flanders")
        assert (status, body) == (200, FLANDERS)
    pids = front.springfield_pids()
    assert len(pids) == 1, "mod_fcgid started %d springfield processes: %s\n%s" % (
        len(pids), pids, front.error_log_text()[-3000:])
    # Apache stops springfield with it
    front.stop()
    assert all(process_gone(p) for p in pids), \
        "springfield %s still running after Apache stopped" % pids


def test_fcgid_initial_env_reaches_springfield(launch):
    """A setting from FcgidInitialEnv (the environment twin of
    --max-body-bytes) is springfield's: 413 with its error shape."""
    front = launch(ApacheFcgid, env={"SPRINGFIELD_MAX_BODY_BYTES": "1000"})
    status, _, body = http_request(front.port, "POST", "/api/v1/marges/limit", body=b"a" * 1000)
    assert status == 204, body
    status, headers, body = http_request(front.port, "POST", "/api/v1/marges/limit",
                                         body=b"b" * 1001)
    assert_error_shape(status, headers, body, 413)
    status, _, body = http_request(front.port, "GET", "/api/v1/marges/limit")
    assert (status, body) == (200, b"a" * 1000)
