"""/api/v1/bart on a real S3-compatible server (s3rver), through real nginx.

Every test runs twice: Signature V4 (libcurl on the loop) and Signature V2
(libs3 on the worker pool).  s3rver verifies both signatures, so a wrong
secret or access key is refused by S3 itself (403 SignatureDoesNotMatch /
InvalidAccessKeyId) and springfield answers 502 naming S3's code in its
log.  What springfield stored is read back from s3rver's own directory, not
only through springfield.  s3rver stopped under a running springfield
gives fast 503s (and a 503 health check naming "s3 (bart)"); springfield
finds it again when it comes back, and the object is still there.
"""

import os
import re
import time

import pytest

import servers
from launch_s3 import S3rver
from httpc import FLANDERS, assert_error_shape, http_request, wait_for_log

BART = "/api/v1/bart"
FAST_S = 1.0          # a refused connection must not wait for --backend-timeout (5 s)
RECOVER_S = 15.0      # springfield finds s3rver again within this
HEALTH_DEADLINE_S = 2.0

# fixture sf_nginx (springfield behind real nginx): shared with the other backend tests
pytest_plugins = ["fixtures_backends"]

SIGNATURES = pytest.mark.parametrize("sig", ["v4", "v2"])


def get(port):
    return http_request(port, "GET", BART)


def post(port, body):
    return http_request(port, "POST", BART, body=body,
                        headers={"Content-Type": "application/octet-stream"})


def timed(fn, *args):
    t0 = time.monotonic()
    r = fn(*args)
    return r, time.monotonic() - t0


def start(launch, sf_nginx, sig, args=(), **creds):
    """s3rver with a fresh bucket, and springfield (behind nginx) on it."""
    s3 = launch(S3rver)
    pair = sf_nginx(env=s3.env(signature=sig, **creds), args=args)
    where = "s3 at %s/%s/bart (sigv%s" % (s3.endpoint, s3.bucket, sig[1])
    # The socket listens before the backends are opened and logged: a slow
    # start (a sanitizer build, a busy machine) says it a moment later.
    wait_for_log(pair.sf, r"/api/v1/bart\s+-> " + re.escape(where), timeout=10)
    return s3, pair


def assert_stored(s3, expected):
    """The object as s3rver keeps it on disk (None: no object)."""
    got = s3.object_bytes("bart")
    if expected is None:
        assert got is None, "an object is stored in s3rver (%d bytes)" % len(got)
    else:
        assert got is not None, "no object in s3rver's directory %s" % s3.data_dir
        assert got == expected, "s3rver holds %d bytes, expected %d (first diff at %s)" % (
            len(got), len(expected),
            next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), "the end"))


def health(port):
    (status, hdrs, body), took = timed(http_request, port, "GET", "/api/v1/healthcheck")
    assert took < HEALTH_DEADLINE_S + 1.0, "health check took %.2fs" % took
    return status, hdrs, body


@SIGNATURES
def test_roundtrip_overwrite_empty_missing(launch, sf_nginx, sig):
    s3, pair = start(launch, sf_nginx, sig)
    port = pair.port

    # fresh bucket: no object yet
    status, headers, body = get(port)
    assert_error_shape(status, headers, body, 404)
    assert_stored(s3, None)

    # 1 MiB of random bytes (every byte value, NULs included)
    big = os.urandom(1 << 20)
    status, _, body = post(port, big)
    assert status == 204, body
    assert body == b""
    status, headers, body = get(port)
    assert status == 200, body[:200]
    assert len(body) == len(big) and body == big, "GET returned %d bytes, not the 1 MiB posted" \
        % len(body)
    assert headers.get("content-length") == str(len(big)), headers
    assert headers.get("content-type") == "application/octet-stream", headers
    assert_stored(s3, big)  # really in S3, whole

    # overwrite with a different (smaller) body: no tail of the old one left
    small = os.urandom(1000) + b"\x00\xff\r\n"
    status, _, body = post(port, small)
    assert status == 204, body
    assert get(port)[::2] == (200, small)
    assert_stored(s3, small)

    # empty body: an empty object, not a missing one
    status, _, body = post(port, b"")
    assert status == 204, body
    status, headers, body = get(port)
    assert (status, body) == (200, b""), (status, body)
    assert headers.get("content-length") == "0", headers
    assert_stored(s3, b"")

    # HEAD is GET without the body
    conn_status, headers, body = http_request(port, "HEAD", BART)
    assert (conn_status, body) == (200, b""), (conn_status, body)
    assert headers.get("content-length") == "0", headers


@SIGNATURES
@pytest.mark.parametrize("creds,code", [
    ({"secret": "wrong"}, "SignatureDoesNotMatch"),
    ({"access_key": "WRONGKEY"}, "InvalidAccessKeyId"),
], ids=["wrong-secret", "wrong-key"])
def test_refused_credentials_502(launch, sf_nginx, sig, creds, code):
    s3, pair = start(launch, sf_nginx, sig, **creds)
    port = pair.port

    for method in ("GET", "POST"):
        if method == "GET":
            (status, headers, body), took = timed(get, port)
        else:
            (status, headers, body), took = timed(post, port, b"must not be stored")
        assert_error_shape(status, headers, body, 502)
        assert code.encode() in body, (method, body)  # "s3 refused the request: CODE (...)"
        assert took < FAST_S, "%s took %.2fs" % (method, took)
    # S3's error code is in springfield's log (sf_warn)
    wait_for_log(pair.sf, r"s3 refused the request: %s" % code)
    assert_stored(s3, None)

    # the ping is refused too: unhealthy, named
    status, headers, body = health(port)
    assert_error_shape(status, headers, body, 503)
    assert b"s3 (bart)" in body, body

    # other routes are unaffected
    assert http_request(port, "GET", "/api/v1/flanders")[::2] == (200, FLANDERS)
    assert pair.sf.alive()


@SIGNATURES
def test_s3_stopped_then_back(launch, sf_nginx, sig):
    s3, pair = start(launch, sf_nginx, sig)
    port = pair.port
    before = b"written before the stop\x00" + os.urandom(4096)
    assert post(port, before)[0] == 204
    assert get(port)[::2] == (200, before)
    assert health(port)[::2] == (200, b"OK")

    s3.stop()
    try:
        for i in range(3):
            (status, headers, body), took = timed(get, port)
            assert_error_shape(status, headers, body, 503)
            assert b"s3" in body, body
            assert took < FAST_S, "GET took %.2fs while s3rver is down (request %d)" % (took, i)
            (status, headers, body), took = timed(post, port, b"written while down")
            assert_error_shape(status, headers, body, 503)
            assert took < FAST_S, "POST took %.2fs while s3rver is down" % took
            (status, _, body), took = timed(http_request, port, "GET", "/api/v1/flanders")
            assert (status, body) == (200, FLANDERS)
            assert took < FAST_S
        status, headers, body = health(port)
        assert_error_shape(status, headers, body, 503)
        assert b"s3 (bart)" in body, body
        for other in ("(marges)", "(homers)", "(lisas)"):  # embedded: healthy
            assert other.encode() not in body, body
    finally:
        s3.start()  # same port, same directory
    assert_stored(s3, before)  # the POSTs while down wrote nothing

    # springfield (not restarted) finds s3rver again
    sf_pid = pair.sf.pid
    deadline = time.monotonic() + RECOVER_S
    while True:
        status, _, body = get(port)
        if status == 200:
            break
        assert status == 503, body
        assert time.monotonic() < deadline, "bart still %d %.0fs after s3rver came back: %r\n%s" \
            % (status, RECOVER_S, body, pair.sf.log()[-2000:])
        time.sleep(0.1)
    assert body == before  # kept by s3rver across its restart
    assert pair.sf.pid == sf_pid and pair.sf.alive()

    deadline = time.monotonic() + RECOVER_S
    while health(port)[::2] != (200, b"OK"):
        assert time.monotonic() < deadline, "health check still failing after s3rver came back"
        time.sleep(0.2)

    after = os.urandom(2048)
    assert post(port, after)[0] == 204
    assert get(port)[::2] == (200, after)
    assert_stored(s3, after)


@SIGNATURES
def test_healthcheck_with_s3(launch, sf_nginx, sig):
    s3, pair = start(launch, sf_nginx, sig)
    port = pair.port
    status, hdrs, body = health(port)
    assert (status, body) == (200, b"OK")

    s3.stop()
    try:
        status, hdrs, body = health(port)
        assert_error_shape(status, hdrs, body, 503)
        assert b"s3 (bart)" in body, body
    finally:
        s3.start()
    deadline = time.monotonic() + RECOVER_S
    while True:
        status, hdrs, body = health(port)
        if status == 200:
            assert body == b"OK"
            break
        assert status == 503 and b"s3 (bart)" in body, body
        assert time.monotonic() < deadline, "health check still 503 %.0fs after s3rver came " \
            "back: %r" % (RECOVER_S, body)
        time.sleep(0.2)


@SIGNATURES
def test_body_over_max_body_bytes_413(launch, sf_nginx, sig):
    s3, pair = start(launch, sf_nginx, sig, args=("--max-body-bytes", "1000"))
    port = pair.port
    old = os.urandom(1000)  # at the limit: accepted
    status, _, body = post(port, old)
    assert status == 204, body
    assert_stored(s3, old)

    for size in (1001, 200000):  # just over; far over (may be refused before reading)
        status, headers, body = post(port, os.urandom(size))
        assert_error_shape(status, headers, body, 413)
        # nothing uploaded: the old object, whole
        assert get(port)[::2] == (200, old)
        assert_stored(s3, old)
    assert http_request(port, "GET", "/api/v1/flanders")[::2] == (200, FLANDERS)


def test_launcher_reports_missing_node(workdir):
    """No node: a ServerError that says what to install, not a skip."""
    s3 = S3rver(workdir, node=os.path.join(workdir, "no-such-node"))
    with pytest.raises(servers.ServerError, match="node"):
        s3.start()
    assert not s3.alive()


@SIGNATURES
def test_object_over_the_limit_is_not_read(launch, sf_nginx, sig):
    """An object in S3 larger than springfield holds (16 MiB,
    S3_DEFAULT_MAX_OBJECT_BYTES) is answered 502, not buffered whole; the
    service goes on serving, and a small object again reads back."""
    s3, pair = start(launch, sf_nginx, sig)
    port = pair.port
    small = os.urandom(1000)
    assert post(port, small)[0] == 204
    # s3rver serves the file it keeps, its length from the file itself: grow
    # it past what springfield may store (springfield's own POST refuses it)
    with open(s3.object_path("bart"), "wb") as f:
        f.write(os.urandom(16 * 1024 * 1024 + 1))
    status, headers, body = get(port)
    assert_error_shape(status, headers, body, 502)
    assert b"larger than 16777216 bytes" in body, body
    assert http_request(port, "GET", "/api/v1/flanders")[::2] == (200, FLANDERS)
    assert post(port, small)[0] == 204
    assert get(port)[::2] == (200, small)
