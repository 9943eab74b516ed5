"""springfield's FastCGI engine driven directly over its unix socket with
fcgi_client.py (written from the FastCGI 1.0 specification, not from
springfield's codec).

One springfield serves the whole module (started with small, known
limits); after every test it must still be alive -- a test that kills it
fails, and the next test gets a fresh one so failures do not cascade.
"""

import os
import socket
import struct
import sys
import tempfile
import shutil
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import fcgi_client as fc  # noqa: E402
import servers  # noqa: E402

FLANDERS = b"Hi-dilly-ho, neighborino!"
MAX_CONNS = 50
MAX_REQS = 8
MAX_PARAMS = 4096
SF_ARGS = ["--max-conns", str(MAX_CONNS), "--max-reqs", str(MAX_REQS),
           "--max-params-bytes", str(MAX_PARAMS), "--max-body-bytes", "1048576"]


class Holder:
    sf = None


@pytest.fixture(scope="module")
def sf_holder():
    d = tempfile.mkdtemp(prefix="sf-it-protocol-")
    os.chmod(d, 0o755)
    h = Holder()
    h.dir = d
    h.deaths = []
    h.sf = servers.Springfield(d, listen="unix", extra_args=SF_ARGS).start()
    yield h
    if h.sf.proc is not None:
        h.sf.stop()
    if os.environ.get("SF_TEST_KEEP"):
        sys.stderr.write("\n[kept %s]\n" % d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sf(sf_holder):
    if not sf_holder.sf.alive():
        sf_holder.sf.proc = None
        sf_holder.sf.start()
    yield sf_holder.sf
    if not sf_holder.sf.alive():
        rc = sf_holder.sf.proc.poll() if sf_holder.sf.proc else None
        log = servers.tail(sf_holder.sf.log_path)
        sf_holder.deaths.append(rc)
        sf_holder.sf.proc = None
        sf_holder.sf.start()  # a fresh one for the next test
        pytest.fail("springfield died during the test (status %s)\n--- log tail ---\n%s"
                    % (rc, log))


def params(method="GET", path="/api/v1/flanders", body=b"", **extra):
    return fc.cgi_params(method, path, body_len=len(body), extra=extra or None)


def expect_flanders(resp):
    assert resp.protocol_status == fc.REQUEST_COMPLETE
    assert resp.stdout_closed, "no empty STDOUT record before END_REQUEST"
    status, headers, body = resp.http()
    assert status == 200, resp.stdout
    assert body == FLANDERS
    assert headers.get("content-length") == str(len(FLANDERS))


def check_record_order(resp):
    """STDOUT data, one empty STDOUT, then END_REQUEST last (STDERR may be
    anywhere before END_REQUEST)."""
    types = [t for t, _ in resp.records]
    assert types[-1] == fc.END_REQUEST, types
    assert types.count(fc.END_REQUEST) == 1, types
    stdout = [(t, c) for t, c in resp.records if t == fc.STDOUT]
    assert stdout and stdout[-1][1] == b"", "STDOUT stream not terminated"
    assert all(c for _, c in stdout[:-1]), "empty STDOUT record before the end of the stream"


def assert_serves(sf, request_id=1):
    """A fresh connection gets a correct answer."""
    resp = fc.request(sf.sock, "GET", "/api/v1/flanders", request_id=request_id)
    expect_flanders(resp)


# ---------------------------------------------------------------- the client itself


def test_client_encoding_matches_spec():
    """fcgi_client against byte strings worked out by hand from the spec,
    so a client bug cannot hide a server bug."""
    assert fc.encode_length(0) == b"\x00"
    assert fc.encode_length(127) == b"\x7f"
    assert fc.encode_length(128) == b"\x80\x00\x00\x80"
    assert fc.encode_length(300) == b"\x80\x00\x01\x2c"
    assert fc.encode_pairs([("AB", "xyz")]) == b"\x02\x03ABxyz"
    assert fc.encode_begin(0x0102, fc.RESPONDER, fc.KEEP_CONN) == \
        b"\x01\x01\x01\x02\x00\x08\x00\x00" + b"\x00\x01\x01\x00\x00\x00\x00\x00"
    assert fc.encode_record(fc.STDIN, 1, b"abc") == \
        b"\x01\x05\x00\x01\x00\x03\x05\x00abc\x00\x00\x00\x00\x00"
    assert fc.decode_pairs(b"\x01\x80\x00\x01\x2cN" + b"v" * 300) == [(b"N", b"v" * 300)]
    rd = fc.RecordReader()
    end = b"\x01\x03\x00\x07\x00\x08\x00\x00" + b"\x00\x00\x00\x2a\x03\x00\x00\x00"
    for i in range(len(end)):
        rd.feed(end[i:i + 1])
    (rec,) = list(rd.records())
    assert (rec.type, rec.request_id) == (fc.END_REQUEST, 7)
    assert fc.decode_end_request(rec.content) == (42, fc.UNKNOWN_ROLE)


# ---------------------------------------------------------------- basics


def test_keep_conn_connection_stays_open(sf):
    with fc.Connection(sf.sock) as c:
        c.send_request(1, params())
        r = c.read_response(1)
        expect_flanders(r)
        check_record_order(r)
        assert r.app_status == 0
        assert c.still_open(0.3), "server closed a FCGI_KEEP_CONN connection"
        # a second request, reusing the id that just ended
        c.send_request(1, params())
        expect_flanders(c.read_response(1))
        # and a third with another id
        c.send_request(2, params(path="/api/v1/nope"))
        r = c.read_response(2)
        assert r.http()[0] == 404


def test_without_keep_conn_server_closes(sf):
    with fc.Connection(sf.sock) as c:
        c.send_request(1, params(), flags=0)
        expect_flanders(c.read_response(1))
        assert c.is_closed_by_peer(3.0), "server kept the connection open without FCGI_KEEP_CONN"


def test_head_has_no_body(sf):
    with fc.Connection(sf.sock) as c:
        c.send_request(1, params(method="HEAD"))
        r = c.read_response(1)
        status, headers, body = r.http()
        assert status == 200
        assert body == b""


def test_post_body_in_many_stdin_records(sf):
    """STDIN split in small records and over the 64 KiB record limit."""
    body = os.urandom(150000)
    p = params(method="POST", path="/api/v1/marges/proto-big", body=body)
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1) + fc.encode_stream(fc.PARAMS, 1, fc.encode_pairs(p))
               + fc.encode_stream(fc.STDIN, 1, body[:1000], chunk=7, terminate=False)
               + fc.encode_stream(fc.STDIN, 1, body[1000:]))
        r = c.read_response(1)
        assert r.http()[0] == 204, r.stdout
        c.send_request(2, params(path="/api/v1/marges/proto-big"))
        r = c.read_response(2)
        status, _, got = r.http()
        assert status == 200
        assert got == body
        check_record_order(r)


def test_slow_reader_gets_whole_response(sf):
    """A client that does not read for a while still gets every byte (the
    server must buffer or apply back-pressure, not drop or die)."""
    body = os.urandom(1000000)
    with fc.Connection(sf.sock, timeout=20) as c:
        c.send_request(1, params(method="POST", path="/api/v1/marges/proto-slow", body=body),
                       body)
        assert c.read_response(1).http()[0] == 204
        c.send_request(2, params(path="/api/v1/marges/proto-slow"))
        time.sleep(1.0)
        r = c.read_response(2)
        assert r.http()[2] == body


# ---------------------------------------------------------------- multiplexing


def test_multiplexed_interleaved_requests(sf):
    ids = [1, 300, 65535]
    bodies = {1: b"", 300: b"", 65535: b"payload-\0-for-65535" * 10}
    reqs = {
        1: params(path="/api/v1/flanders"),
        300: params(path="/api/v1/nope"),
        65535: params(method="POST", path="/api/v1/marges/mpx", body=bodies[65535]),
    }
    enc = {i: fc.encode_pairs(reqs[i]) for i in ids}
    with fc.Connection(sf.sock) as c:
        out = b"".join(fc.encode_begin(i) for i in ids)
        # PARAMS in three pieces per request, interleaved across requests
        pieces = {i: [enc[i][:10], enc[i][10:50], enc[i][50:]] for i in ids}
        for k in range(3):
            for i in ids:
                if pieces[i][k]:
                    out += fc.encode_record(fc.PARAMS, i, pieces[i][k])
        for i in reversed(ids):
            out += fc.encode_record(fc.PARAMS, i, b"")
        # STDIN interleaved too
        for i in ids:
            if bodies[i]:
                out += fc.encode_record(fc.STDIN, i, bodies[i][:5])
        for i in ids:
            if bodies[i]:
                out += fc.encode_record(fc.STDIN, i, bodies[i][5:])
            out += fc.encode_record(fc.STDIN, i, b"")
        c.send(out)
        for i in ids:
            c.read_response(i)
        expect_flanders(c.responses[1])
        assert c.responses[300].http()[0] == 404
        assert b"/api/v1/nope" in c.responses[300].http()[2]
        assert c.responses[65535].http()[0] == 204
        for i in ids:
            check_record_order(c.responses[i])
        assert set(c.responses) == set(ids), "answers under ids never used: %s" % set(c.responses)
        c.send_request(2, params(path="/api/v1/marges/mpx"))
        assert c.read_response(2).http()[2] == bodies[65535]


def test_requests_pipelined_in_one_write(sf):
    with fc.Connection(sf.sock) as c:
        c.send(b"".join(fc.encode_request(i, params()) for i in range(1, MAX_REQS + 1)))
        for i in range(1, MAX_REQS + 1):
            expect_flanders(c.read_response(i))


# ---------------------------------------------------------------- management records


def test_get_values(sf):
    names = ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS", "SF_NO_SUCH_VARIABLE"]
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_get_values(names))
        (rec,) = c.read_management(1)
        assert rec.type == fc.GET_VALUES_RESULT
        assert rec.request_id == 0
        got = dict(fc.decode_pairs(rec.content))
        assert set(got) == {b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS"}, got
        assert got[b"FCGI_MPXS_CONNS"] == b"1"
        assert got[b"FCGI_MAX_CONNS"] == str(MAX_CONNS).encode()
        assert got[b"FCGI_MAX_REQS"] == str(MAX_CONNS * MAX_REQS).encode()
        # the connection keeps working
        c.send_request(1, params())
        expect_flanders(c.read_response(1))


def test_get_values_only_unknown_names(sf):
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_get_values(["NOPE_1", "x" * 200]))
        (rec,) = c.read_management(1)
        assert rec.type == fc.GET_VALUES_RESULT
        assert fc.decode_pairs(rec.content) == []


def test_unknown_record_type(sf):
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_record(20, 0, b"whatever"))
        (rec,) = c.read_management(1)
        assert rec.type == fc.UNKNOWN_TYPE
        assert rec.request_id == 0
        assert fc.decode_unknown_type(rec.content) == 20
        c.send_request(1, params())
        expect_flanders(c.read_response(1))


def test_authorizer_role_unknown_role(sf):
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1, role=fc.AUTHORIZER))
        r = c.read_response(1)
        assert r.protocol_status == fc.UNKNOWN_ROLE
        assert r.stdout == b""
        c.send(fc.encode_begin(2, role=fc.FILTER))
        assert c.read_response(2).protocol_status == fc.UNKNOWN_ROLE
        # KEEP_CONN was set: the connection still serves a responder
        c.send_request(3, params())
        expect_flanders(c.read_response(3))


# ---------------------------------------------------------------- abort


def test_abort_request(sf):
    with fc.Connection(sf.sock) as c:
        p = fc.encode_pairs(params())
        c.send(fc.encode_begin(1) + fc.encode_record(fc.PARAMS, 1, p[:20]))
        time.sleep(0.1)
        c.send(fc.encode_abort(1))
        r = c.read_response(1)
        assert r.ended
        assert r.protocol_status == fc.REQUEST_COMPLETE
        c.send_request(2, params())
        expect_flanders(c.read_response(2))
        # the aborted id can be used again
        c.send_request(1, params())
        expect_flanders(c.read_response(1))


def test_abort_while_body_streaming(sf):
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(5) + fc.encode_stream(
            fc.PARAMS, 5, fc.encode_pairs(params("POST", "/api/v1/marges/aborted", b"x" * 5000)))
            + fc.encode_record(fc.STDIN, 5, b"x" * 1000))
        c.send(fc.encode_abort(5))
        assert c.read_response(5).ended
        c.send_request(6, params(path="/api/v1/marges/aborted"))
        assert c.read_response(6).http()[0] == 404, "an aborted POST was stored"


def test_backend_answer_after_abort_or_close_is_dropped(launch):
    """A handler waiting on a backend outlives its request: the front server
    aborts one request and closes the connection of another while both wait
    on a slow weather service.  When the answers come back they are dropped
    safely (the sanitizer and valgrind stages of tests/run run this too) and
    the process goes on serving."""
    from launch_weather import WeatherStub

    stub = launch(WeatherStub, mode="slow", slow_ms=700)
    sf1 = launch(servers.Springfield, listen="unix",
                 env={"WEATHER_URI": stub.uri}, extra_args=["--backend-timeout", "5000"])
    maggie = params(path="/api/v1/maggie")
    with fc.Connection(sf1.sock) as aborted, fc.Connection(sf1.sock) as kept:
        closed = fc.Connection(sf1.sock)
        aborted.send_request(1, maggie)
        closed.send_request(1, maggie)
        kept.send_request(7, maggie)
        time.sleep(0.2)                     # all three are waiting on the stub
        aborted.send(fc.encode_abort(1))
        r = aborted.read_response(1, timeout=0.5)
        assert r.ended and r.stdout == b"", "abort did not end the request at once"
        closed.close()
        # the one left alone gets its answer; the two late ones are dropped
        status, _, body = kept.read_response(7, timeout=5).http()
        assert status == 200 and body.startswith(b"Currently"), (status, body)
        time.sleep(0.3)
        aborted.send_request(2, params())   # the connection of the aborted request goes on
        expect_flanders(aborted.read_response(2))
        assert 1 not in aborted.responses or aborted.responses[1].stdout == b"", \
            "an answer was written for an aborted request"
    assert sf1.alive()
    assert_serves(sf1)


def test_client_disconnects_mid_request(sf):
    for cut in (3, 8, 40):
        s = socket.socket(socket.AF_UNIX)
        s.connect(sf.sock)
        s.sendall(fc.encode_request(1, params())[:cut])
        s.close()
    # and one that disconnects with a complete request, before reading
    s = socket.socket(socket.AF_UNIX)
    s.connect(sf.sock)
    s.sendall(fc.encode_request(1, params(method="POST", path="/api/v1/marges/gone",
                                          body=b"g" * 70000), b"g" * 70000))
    s.close()
    time.sleep(0.2)
    assert_serves(sf)


# ---------------------------------------------------------------- encoding corners


def test_request_as_one_byte_writes(sf):
    with fc.Connection(sf.sock) as c:
        c.send_bytewise(fc.encode_request(1, params()), delay=0.0005)
        expect_flanders(c.read_response(1))
        body = b"byte\0wise" * 5
        c.send_bytewise(fc.encode_request(
            2, params("POST", "/api/v1/marges/bytewise", body), body), delay=0.0002)
        assert c.read_response(2).http()[0] == 204
    assert fc.request(sf.sock, "GET", "/api/v1/marges/bytewise").http()[2] == body


def test_four_byte_lengths(sf):
    long_value = "v" * 300          # value length 300 -> 4-byte length
    long_name = "HTTP_X_" + "N" * 200  # name length 207 -> 4-byte length
    p = params()
    p["HTTP_X_LONG"] = long_value
    p[long_name] = "short"
    p[long_name.replace("N", "M")] = long_value
    enc = fc.encode_pairs(p)
    assert b"\x80\x00\x01\x2c" in enc  # 300 with the high bit set
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1) + fc.encode_stream(fc.PARAMS, 1, enc)
               + fc.encode_stream(fc.STDIN, 1, b""))
        expect_flanders(c.read_response(1))


def test_four_byte_length_for_short_string(sf):
    """The spec allows the 4-byte form for any length; a length of 5 written
    in 4 bytes must decode the same."""
    def pair4(n, v):
        return struct.pack(">II", len(n) | 0x80000000, len(v) | 0x80000000) + n + v
    enc = b"".join(pair4(k.encode(), v.encode()) for k, v in params().items())
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1) + fc.encode_stream(fc.PARAMS, 1, enc)
               + fc.encode_stream(fc.STDIN, 1, b""))
        expect_flanders(c.read_response(1))


def test_params_pair_split_across_records(sf):
    enc = fc.encode_pairs(params(HTTP_X_SPLIT="s" * 300))
    with fc.Connection(sf.sock) as c:
        out = fc.encode_begin(1)
        # every record boundary falls inside a length or a name or value
        for i in range(0, len(enc), 3):
            out += fc.encode_record(fc.PARAMS, 1, enc[i:i + 3])
        c.send(out + fc.encode_record(fc.PARAMS, 1, b"") + fc.encode_stream(fc.STDIN, 1, b""))
        expect_flanders(c.read_response(1))


def test_padding_honoured(sf):
    p = fc.encode_pairs(params())
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_record(fc.BEGIN_REQUEST, 1, struct.pack(">HB5x", fc.RESPONDER,
                                                                  fc.KEEP_CONN), padding=255)
               + fc.encode_record(fc.PARAMS, 1, p, padding=0)
               + fc.encode_record(fc.PARAMS, 1, b"", padding=13)
               + fc.encode_record(fc.STDIN, 1, b"", padding=7))
        expect_flanders(c.read_response(1))


# ---------------------------------------------------------------- malformed input


def test_garbage_closes_only_that_connection(sf):
    good = fc.Connection(sf.sock)
    bad = fc.Connection(sf.sock)
    try:
        # the good connection has a request in progress when garbage arrives
        p = fc.encode_pairs(params())
        good.send(fc.encode_begin(1) + fc.encode_record(fc.PARAMS, 1, p))
        bad.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(64))
        assert bad.is_closed_by_peer(3.0), "garbage did not close the connection"
        good.send(fc.encode_record(fc.PARAMS, 1, b"") + fc.encode_stream(fc.STDIN, 1, b""))
        expect_flanders(good.read_response(1))
    finally:
        good.close()
        bad.close()
    assert_serves(sf)


def test_bad_version_closes(sf):
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_request(1, params()).replace(b"\x01\x01", b"\x02\x01", 1))
        assert c.is_closed_by_peer(3.0), "version 2 record did not close the connection"
        assert 1 not in c.responses or not c.responses[1].stdout
    with fc.Connection(sf.sock) as c:
        # good first request, then a bad version on the same connection
        c.send_request(1, params())
        expect_flanders(c.read_response(1))
        c.send(fc.encode_record(fc.PARAMS, 2, b"", version=0))
        assert c.is_closed_by_peer(3.0)
    assert_serves(sf)


def test_records_for_inactive_ids_are_ignored(sf):
    """FastCGI 1.0 §3.3: while a request id is inactive the application
    ignores records for it.  Records for an id never begun, for one whose
    END_REQUEST was sent (a straggler), and STDIN after an ABORT leave the
    connection serving, and nothing is answered for them."""
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_stream(fc.PARAMS, 7, fc.encode_pairs(params())))
        c.send(fc.encode_record(fc.STDIN, 9, b"data") + fc.encode_record(fc.DATA, 9, b"x"))
        c.send_request(1, params())
        expect_flanders(c.read_response(1))
        c.send(fc.encode_stream(fc.STDIN, 1, b"straggler"))        # after its END_REQUEST
        c.send(fc.encode_begin(2) + fc.encode_abort(2))
        assert c.read_response(2).protocol_status == fc.REQUEST_COMPLETE
        c.send(fc.encode_stream(fc.STDIN, 2, b"after the abort"))
        c.send_request(3, params())
        expect_flanders(c.read_response(3))
        assert c.still_open(0.3), "records for inactive ids closed the connection"
        assert set(c.responses) == {1, 2, 3}, "answers for ids never begun: %s" % set(c.responses)
    assert_serves(sf)


def test_begin_for_live_id_closes(sf):
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1) + fc.encode_begin(1))
        assert c.is_closed_by_peer(3.0), "a second BEGIN for a live id did not close"
    assert_serves(sf)


def test_bad_lengths_close(sf):
    # BEGIN_REQUEST with a 3-byte body
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_record(fc.BEGIN_REQUEST, 1, b"\x00\x01\x01"))
        assert c.is_closed_by_peer(3.0), "short BEGIN_REQUEST body did not close"
    # a name-value pair whose lengths run past the PARAMS stream
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1) + fc.encode_record(fc.PARAMS, 1, b"\x05\x7fABCDEvalue")
               + fc.encode_record(fc.PARAMS, 1, b"") + fc.encode_stream(fc.STDIN, 1, b""))
        closed = c.is_closed_by_peer(3.0)
        r = c.responses.get(1)
        assert closed or (r is not None and r.ended and r.http()[0] == 400), \
            "truncated name-value pair neither closed nor answered 400"
    assert_serves(sf)


def test_oversized_params(sf):
    # under the limit: served
    with fc.Connection(sf.sock) as c:
        c.send_request(1, params(HTTP_X_FILL="f" * (MAX_PARAMS // 2)))
        expect_flanders(c.read_response(1))
    # over the limit: 431 or the connection closed
    with fc.Connection(sf.sock) as c:
        c.send_request(1, params(HTTP_X_FILL="f" * (MAX_PARAMS * 3)))
        try:
            r = c.read_response(1)
        except fc.Closed:
            r = None
        if r is not None:
            status, _, body = r.http()
            assert status == 431, r.stdout
            assert body.startswith(b"431 ")
    # over the limit in many small records
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1))
        try:
            for i in range(MAX_PARAMS * 4 // 100):
                c.send(fc.encode_record(fc.PARAMS, 1,
                                        fc.encode_pairs({"HTTP_X_%d" % i: "a" * 90})))
            c.send(fc.encode_record(fc.PARAMS, 1, b"") + fc.encode_stream(fc.STDIN, 1, b""))
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            r = c.read_response(1, timeout=5)
            assert r.http()[0] == 431
        except fc.Closed:
            pass
    assert_serves(sf)


def test_content_length_over_limit_answered_early(sf):
    """A CONTENT_LENGTH over --max-body-bytes is refused with 413 before any
    STDIN is sent."""
    with fc.Connection(sf.sock) as c:
        p = params("POST", "/api/v1/marges/huge")
        p["CONTENT_LENGTH"] = str(10 ** 9)
        c.send(fc.encode_begin(1) + fc.encode_stream(fc.PARAMS, 1, fc.encode_pairs(p)))
        r = c.read_response(1, timeout=5)
        status, headers, body = r.http()
        assert status == 413
        assert body.startswith(b"413 ")
    assert_serves(sf)


def test_content_length_at_limit_accepted(sf):
    """CONTENT_LENGTH equal to --max-body-bytes is accepted; one more is not.
    (Parsing CONTENT_LENGTH must stop at the end of the value: it is the
    last pair here, followed by padding and other records.)"""
    limit = 1048576
    body = b"L" * limit
    with fc.Connection(sf.sock, timeout=20) as c:
        c.send_request(1, params("POST", "/api/v1/marges/at-limit", body), body)
        status, _, text = c.read_response(1).http()
        assert status == 204, text
        try:
            c.send_request(2, params("POST", "/api/v1/marges/at-limit", body + b"L"),
                           body + b"L")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before reading the body, then closed: also fine
        try:
            status, _, text = c.read_response(2).http()
            assert status == 413, text
        except fc.Closed:
            pass
    for n in (1, 9, 10, 99, 100, 12345):
        resp = fc.request(sf.sock, "POST", "/api/v1/marges/len%d" % n, body=b"d" * n)
        assert resp.http()[0] == 204, (n, resp.stdout)
    assert_serves(sf)


def test_many_connections(sf):
    conns = []
    try:
        for _ in range(MAX_CONNS - 5):
            conns.append(fc.Connection(sf.sock))
        for i, c in enumerate(conns):
            c.send_request(1, params())
        for c in conns:
            expect_flanders(c.read_response(1))
    finally:
        for c in conns:
            c.close()


def test_more_live_requests_than_max_reqs(sf):
    """Over --max-reqs live requests on one connection: the extras are
    refused (END_REQUEST OVERLOADED or CANT_MPX_CONN) or the connection is
    closed; the ones within the limit, if the connection stays, are served."""
    n = MAX_REQS + 4
    with fc.Connection(sf.sock) as c:
        p = fc.encode_pairs(params())
        try:
            c.send(b"".join(fc.encode_begin(i) + fc.encode_record(fc.PARAMS, i, p)
                            for i in range(1, n + 1)))
            c.send(b"".join(fc.encode_record(fc.PARAMS, i, b"")
                            + fc.encode_stream(fc.STDIN, i, b"") for i in range(1, n + 1)))
            for i in range(1, n + 1):
                c.read_response(i)
        except (fc.Closed, BrokenPipeError, ConnectionResetError):
            pass
        answered = {i: r for i, r in c.responses.items() if r.ended}
        if not c.eof:
            refused = [i for i, r in answered.items()
                       if r.protocol_status in (fc.OVERLOADED, fc.CANT_MPX_CONN)]
            served = [i for i, r in answered.items() if r.protocol_status == fc.REQUEST_COMPLETE]
            assert len(refused) >= 1 or len(served) == n, answered
            for i in served:
                expect_flanders(answered[i])
    assert_serves(sf)


def test_idle_timeout_closes_connection(launch):
    sf1 = launch(servers.Springfield, listen="unix", extra_args=["--idle-timeout", "1"])
    with fc.Connection(sf1.sock) as idle, fc.Connection(sf1.sock) as busy:
        busy.send_request(1, params())
        expect_flanders(busy.read_response(1))
        assert idle.is_closed_by_peer(4.0), "idle connection not closed after --idle-timeout 1"
    assert_serves(sf1)


def test_idle_timeout_closes_stalled_request(launch):
    """A peer that begins a request and then sends nothing more (slowloris)
    holds no connection forever: it is idle, and closed."""
    sf1 = launch(servers.Springfield, listen="unix", extra_args=["--idle-timeout", "1"])
    with fc.Connection(sf1.sock) as stalled:
        stalled.send(fc.encode_begin(1)
                     + fc.encode_record(fc.PARAMS, 1, fc.encode_pairs({"REQUEST_METHOD": "GET"})))
        assert stalled.is_closed_by_peer(4.0), "stalled request kept its connection open"
    assert_serves(sf1)


# ---------------------------------------------------------------- found in review


def test_stdin_after_end_of_stream_while_backend_answers(launch):
    """A STDIN record whose header arrives after the request's body ended,
    and whose content arrives after the handler answered: the connection
    is refused (protocol error), the process stays up."""
    from launch_weather import WeatherStub

    stub = launch(WeatherStub, mode="slow", slow_ms=400)
    sf1 = launch(servers.Springfield, listen="unix", env={"WEATHER_URI": stub.uri})
    with fc.Connection(sf1.sock) as c:
        c.send_request(1, params(path="/api/v1/maggie"))
        c.send(fc.encode_record(fc.STDIN, 1, b"0123456789")[:8])   # header only
        time.sleep(0.8)                                              # the handler answers
        try:
            c.send(b"0123456789" + b"\0" * 6)
        except OSError:
            pass
        assert c.is_closed_by_peer(3.0), "connection kept after STDIN past the end of stream"
    assert sf1.alive()
    assert_serves(sf1)


def test_nul_inside_a_param_closes_the_connection(sf):
    with fc.Connection(sf.sock) as c:
        p = fc.encode_pairs(list(params(path="/api/v1/healthcheck").items())
                            + [("X", "a\0" + "b" * 300)])
        c.send(fc.encode_begin(1) + fc.encode_record(fc.PARAMS, 1, p)
               + fc.encode_record(fc.PARAMS, 1) + fc.encode_record(fc.STDIN, 1))
        assert c.is_closed_by_peer(3.0), "a param with a NUL byte was accepted"
    assert_serves(sf)


def test_body_shorter_than_content_length_is_400(sf):
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1)
               + fc.encode_stream(fc.PARAMS, 1, fc.encode_pairs(
                   params("POST", "/api/v1/marges/short", b"x" * 10)))
               + fc.encode_stream(fc.STDIN, 1, b"x" * 5))
        status, _, body = c.read_response(1).http()
        assert status == 400 and b"CONTENT_LENGTH" in body, (status, body)
        c.send_request(2, params(path="/api/v1/marges/short"))
        assert c.read_response(2).http()[0] == 404, "a truncated body was stored"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


@pytest.mark.measures_memory
def test_pipelined_answers_are_bounded_by_back_pressure(launch):
    """Hundreds of pipelined GETs of a 1 MiB value from a client that does
    not read: springfield holds the input back instead of formatting every
    answer in memory (that would be hundreds of MiB)."""
    sf1 = launch(servers.Springfield, listen="unix",
                 extra_args=["--max-body-bytes", str(2 << 20), "--max-reqs", "1000"])
    value = os.urandom(1 << 20)
    r = fc.request(sf1.sock, "POST", "/api/v1/marges/big", body=value)
    assert r.http()[0] == 204
    n = 300
    get = params(path="/api/v1/marges/big")
    with fc.Connection(sf1.sock, timeout=60) as c:
        before = rss_kib(sf1.pid)
        c.send(b"".join(fc.encode_request(i + 1, get) for i in range(n)))
        time.sleep(1.0)                      # springfield works; we read nothing
        grown = rss_kib(sf1.pid) - before
        assert grown < 64 * 1024, "springfield grew %d KiB for answers nobody read" % grown
        for i in range(n):                   # and every answer still comes, whole
            status, _, body = c.read_response(i + 1).http()
            assert status == 200 and body == value, (i + 1, status, len(body))
            del c.responses[i + 1]
    assert_serves(sf1)


def test_early_413_without_keep_conn_reads_the_body_before_closing(launch):
    """Without FCGI_KEEP_CONN a request refused early (413 from
    CONTENT_LENGTH) must not close the connection while the front server is
    still sending its body: nginx would see EPIPE and answer 502."""
    sf1 = launch(servers.Springfield, listen="unix", extra_args=["--max-body-bytes", "1000"])
    body = b"y" * 300000
    with fc.Connection(sf1.sock) as c:
        c.send(fc.encode_begin(1, flags=0)
               + fc.encode_stream(fc.PARAMS, 1, fc.encode_pairs(
                   params("POST", "/api/v1/marges/big", body))))
        status, _, _ = c.read_response(1).http()
        assert status == 413
        time.sleep(0.2)
        c.send(fc.encode_stream(fc.STDIN, 1, body))   # raises if springfield closed early
        assert c.is_closed_by_peer(3.0), "connection without KEEP_CONN not closed after the body"
    assert_serves(sf1)


def test_shutdown_waits_for_a_body_still_arriving(launch):
    sf1 = launch(servers.Springfield, listen="unix")
    with fc.Connection(sf1.sock) as c:
        c.send(fc.encode_begin(1)
               + fc.encode_stream(fc.PARAMS, 1, fc.encode_pairs(
                   params("POST", "/api/v1/marges/late", b"0123456789")))
               + fc.encode_record(fc.STDIN, 1, b"01234"))
        time.sleep(0.2)
        sf1.proc.send_signal(15)
        time.sleep(0.3)
        c.send(fc.encode_record(fc.STDIN, 1, b"56789"))
        time.sleep(0.1)
        c.send(fc.encode_record(fc.STDIN, 1))
        resp = c.read_response(1, timeout=5)
        assert resp.http()[0] == 204, resp.stdout
    assert sf1.proc.wait(10) == 0


def test_bodies_held_at_once_have_a_budget(launch):
    """--max-buffered-bytes bounds the request bodies held by all requests
    together, counted as their bytes arrive: a body that would take the
    total over it is 503, and the budget comes back when the request is
    done."""
    sf1 = launch(servers.Springfield, listen="unix",
                 extra_args=["--max-buffered-bytes", "1000000", "--max-body-bytes", "900000"])
    body = b"z" * 600000
    head = lambda i: (fc.encode_begin(i) + fc.encode_stream(fc.PARAMS, i, fc.encode_pairs(
        params("POST", "/api/v1/marges/held%d" % i, body))))
    with fc.Connection(sf1.sock) as first, fc.Connection(sf1.sock) as second:
        first.send(head(1) + fc.encode_stream(fc.STDIN, 1, body[:-1000], terminate=False))
        time.sleep(0.2)                                      # 599000 bytes held
        second.send(head(2) + fc.encode_stream(fc.STDIN, 2, body))
        status, _, msg = second.read_response(2).http()
        assert status == 503 and b"busy" in msg, (status, msg)
        first.send(fc.encode_stream(fc.STDIN, 1, body[-1000:]))
        assert first.read_response(1).http()[0] == 204
        second.send_request(3, params("POST", "/api/v1/marges/held3", body), body)
        assert second.read_response(3).http()[0] == 204, "the budget did not come back"
    assert_serves(sf1)


def test_an_announced_body_holds_no_budget(launch):
    """The body budget is charged for what has arrived, not for the
    CONTENT_LENGTH announced: a peer announcing 32 bodies of 8 MiB and
    sending nothing does not make other clients' small POSTs fail."""
    sf1 = launch(servers.Springfield, listen="unix",
                 extra_args=["--max-buffered-bytes", str(64 << 20), "--max-reqs", "64"])
    big = params("POST", "/api/v1/marges/announced")
    big["CONTENT_LENGTH"] = str(8 << 20)
    with fc.Connection(sf1.sock) as hog:
        hog.send(b"".join(fc.encode_begin(i) + fc.encode_stream(fc.PARAMS, i, fc.encode_pairs(big))
                          + fc.encode_record(fc.STDIN, i, b"x") for i in range(1, 33)))
        time.sleep(0.3)
        for n in range(5):
            r = fc.request(sf1.sock, "POST", "/api/v1/marges/small%d" % n, body=b"hello")
            assert r.http()[0] == 204, r.stdout
        assert hog.still_open(0.1)


def test_params_held_at_once_have_a_budget(launch):
    """--max-buffered-params-bytes bounds the params of requests not yet
    complete, on all connections together: params beyond it are refused
    with 503, and the budget comes back when those requests go."""
    sf1 = launch(servers.Springfield, listen="unix",
                 extra_args=["--max-buffered-params-bytes", "200000", "--max-reqs", "100",
                             "--max-params-bytes", "65536"])
    chunk = fc.encode_pairs({"HTTP_X_FILL": "p" * 20000})
    with fc.Connection(sf1.sock) as hog:
        # ten requests whose PARAMS never end: 10 x ~32 KiB allocated > 200000
        hog.send(b"".join(fc.encode_begin(i) + fc.encode_record(fc.PARAMS, i, chunk)
                          for i in range(1, 11)))
        hog.wait(lambda: any(r.ended for r in hog.responses.values()), 5)
        busy = [r for r in hog.responses.values() if r.ended and r.http()[0] == 503]
        assert busy, "no request was refused by the params budget"
        assert all(b"busy" in r.http()[2] for r in busy)
        # someone else with small params is still served
        assert_serves(sf1)
    # the hog is gone: the budget is back
    with fc.Connection(sf1.sock) as c:
        c.send(b"".join(fc.encode_begin(i) + fc.encode_record(fc.PARAMS, i, chunk)
                        for i in range(1, 4)))
        c.send(b"".join(fc.encode_stream(fc.PARAMS, i, fc.encode_pairs(params()))
                        + fc.encode_stream(fc.STDIN, i, b"") for i in range(1, 4)))
        for i in range(1, 4):
            expect_flanders(c.read_response(i))


def test_held_input_then_more_requests_on_the_same_connection(launch):
    """Pipelined answers put the connection on hold; once they are read,
    later requests on the same connection are still answered (it used to
    stay paused for good when the held input's answers were under the mark
    but not yet all written)."""
    sf1 = launch(servers.Springfield, listen="unix")
    # under the 256 KiB output mark, over a unix socket's send buffer (208 KiB)
    value = os.urandom(250 * 1024)
    assert fc.request(sf1.sock, "POST", "/api/v1/marges/v", body=value).http()[0] == 204
    get = params(path="/api/v1/marges/v")
    with fc.Connection(sf1.sock, timeout=10) as c:
        c.send(b"".join(fc.encode_request(i, get) for i in (1, 2, 3)))
        time.sleep(1.0)
        for i in (1, 2, 3):
            assert c.read_response(i).http()[2] == value
        c.send_request(4, get)
        assert c.read_response(4, timeout=5).http()[2] == value, "connection stayed paused"


def test_an_early_answer_gives_its_budget_back_at_once(launch):
    sf1 = launch(servers.Springfield, listen="unix",
                 extra_args=["--max-buffered-bytes", "60000", "--max-body-bytes", "50000"])
    with fc.Connection(sf1.sock) as first:
        first.send(fc.encode_begin(1) + fc.encode_stream(fc.PARAMS, 1, fc.encode_pairs(
            params("POST", "/api/v1/marges/a", b"q" * 40000)))
            + fc.encode_record(fc.STDIN, 1, b"q" * 60000))       # 413: over the body limit
        assert first.read_response(1).http()[0] == 413
        # the first connection stays open, its request never ends; the budget is free
        r = fc.request(sf1.sock, "POST", "/api/v1/marges/b", body=b"w" * 30000)
        assert r.http()[0] == 204, r.stdout


def test_early_answer_lingers_only_a_few_seconds(launch):
    """After an early 413 without KEEP_CONN springfield waits for the body,
    but a peer that then sends nothing is closed after a few seconds, not
    after the idle timeout."""
    sf1 = launch(servers.Springfield, listen="unix", extra_args=["--max-body-bytes", "1000"])
    with fc.Connection(sf1.sock) as c:
        c.send(fc.encode_begin(1, flags=0) + fc.encode_stream(fc.PARAMS, 1, fc.encode_pairs(
            params("POST", "/api/v1/marges/x", b"y" * 5000))))
        assert c.read_response(1).http()[0] == 413
        assert not c.is_closed_by_peer(1.0), "closed while the body could still be arriving"
        assert c.is_closed_by_peer(8.0), "a silent peer kept the connection past the linger"


def test_refused_role_without_keep_conn_closes_at_once(sf):
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1, role=fc.AUTHORIZER, flags=0))
        assert c.read_response(1).protocol_status == fc.UNKNOWN_ROLE
        assert c.is_closed_by_peer(1.0), "refused request without KEEP_CONN left the connection open"


# ---------------------------------------------------------------- issue 7


def test_refused_requests_leave_the_table(sf):
    """Requests refused at BEGIN_REQUEST (over --max-reqs) never send their
    streams; they must not stay in the connection's table, or a few
    refusals later the connection is closed as abusive and the answers of
    the requests in flight are lost."""
    p = fc.encode_pairs(params())
    with fc.Connection(sf.sock) as c:
        c.send(b"".join(fc.encode_begin(i) + fc.encode_record(fc.PARAMS, i, p)
                        for i in range(1, MAX_REQS + 1)))
        extra = range(100, 100 + 4 * MAX_REQS)
        c.send(b"".join(fc.encode_begin(i) for i in extra))
        for i in extra:
            assert c.read_response(i).protocol_status == fc.OVERLOADED
        c.send(b"".join(fc.encode_record(fc.PARAMS, i, b"") + fc.encode_stream(fc.STDIN, i, b"")
                        for i in range(1, MAX_REQS + 1)))
        for i in range(1, MAX_REQS + 1):
            expect_flanders(c.read_response(i))
        assert c.still_open(0.2)


def test_filter_data_after_unknown_role_is_ignored(sf):
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1, role=fc.FILTER))
        assert c.read_response(1).protocol_status == fc.UNKNOWN_ROLE
        # a filter's streams, sent anyway: id 1 is inactive
        c.send(fc.encode_stream(fc.PARAMS, 1, fc.encode_pairs(params()))
               + fc.encode_stream(fc.STDIN, 1, b"") + fc.encode_stream(fc.DATA, 1, b"file data"))
        c.send_request(2, params())
        expect_flanders(c.read_response(2))
        assert c.responses[1].stdout == b""


def test_queued_answers_are_flushed_before_an_error_close(sf):
    """A connection closed for a protocol error first writes what is
    queued for it: here the END_REQUEST of a refused role, then garbage in
    the same write."""
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_begin(1, role=fc.AUTHORIZER) + b"\x07garbage-not-a-record")
        assert c.read_response(1).protocol_status == fc.UNKNOWN_ROLE
        assert c.is_closed_by_peer(3.0)
    with fc.Connection(sf.sock) as c:
        c.send(fc.encode_request(1, params()) + b"\x02" + b"\0" * 7)   # bad version after
        expect_flanders(c.read_response(1))
        assert c.is_closed_by_peer(3.0)
    assert_serves(sf)


def test_a_request_received_too_slowly_is_answered_408(launch):
    """A peer trickling a request byte by byte keeps its connection active,
    but the request must be whole within --receive-timeout of its
    BEGIN_REQUEST: then it is answered 408 and the connection closed."""
    sf1 = launch(servers.Springfield, listen="unix",
                 extra_args=["--receive-timeout", "2", "--idle-timeout", "300"])
    data = fc.encode_request(1, params())
    with fc.Connection(sf1.sock, timeout=15) as c:
        t0 = time.monotonic()
        c.send(data[:16])
        pos = 16
        while pos < len(data) - 1 and not c.eof and time.monotonic() - t0 < 8:
            try:
                c.send(data[pos:pos + 1])
            except OSError:
                break
            pos += 1
            if c.still_open(0.3) is False:
                break
        took = time.monotonic() - t0
        r = c.read_response(1, timeout=5)
        status, _, body = r.http()
        assert status == 408 and body.startswith(b"408 "), (status, body)
        assert 1.5 <= took <= 7.5, "408 after %.1f s with --receive-timeout 2" % took
        assert c.is_closed_by_peer(3.0), "connection kept after a 408"
    assert_serves(sf1)


def test_a_peer_trickling_bytes_that_complete_nothing_is_idle(launch):
    """Bytes that complete no record are no activity: a peer sending one
    byte at a time of an endless management record is closed by the idle
    timeout like any silent one."""
    sf1 = launch(servers.Springfield, listen="unix", extra_args=["--idle-timeout", "1"])
    record = fc.encode_get_values(["FCGI_MAX_CONNS" + "x" * 3000])
    with fc.Connection(sf1.sock, timeout=15) as c:
        t0 = time.monotonic()
        for i in range(len(record) - 1):
            try:
                c.send(record[i:i + 1])
            except OSError:
                break
            if not c.still_open(0.2):
                break
            assert time.monotonic() - t0 < 8, "a trickling peer was never closed"
        assert c.is_closed_by_peer(3.0)
        assert time.monotonic() - t0 < 8


@pytest.mark.measures_memory
def test_memory_returns_after_large_records(launch):
    """A 64 KiB GET_VALUES on each of 2,000 connections: once answered,
    the connections are idle and hold well under 2 KiB each (they held the
    64 KiB record buffer for good)."""
    import resource
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(n + 200, min(hard, 65536)), hard))
    sf1 = launch(servers.Springfield, listen="unix", extra_args=["--max-conns", "5000"])
    names = ["N%05d" % i + "x" * 120 for i in range(500)]   # ~64 KiB of pairs
    record = fc.encode_get_values(names)
    assert len(record) > 60000
    conns = []
    try:
        for _ in range(n):
            for attempt in range(500):   # a full listen backlog: wait for accept
                try:
                    conns.append(fc.Connection(sf1.sock))
                    break
                except BlockingIOError:
                    time.sleep(0.01)
            else:
                raise AssertionError("springfield stopped accepting connections")
        time.sleep(0.5)
        before = rss_kib(sf1.pid)
        for c in conns:
            c.send(record)
        for c in conns:
            (rec,) = c.read_management(1)
            assert rec.type == fc.GET_VALUES_RESULT
        time.sleep(0.5)
        per_conn = (rss_kib(sf1.pid) - before) * 1024 / n
        assert per_conn < 2048, "%.0f bytes kept per connection after a 64 KiB record" % per_conn
        for c in conns[:5]:
            c.send_request(1, params())
            expect_flanders(c.read_response(1))
    finally:
        for c in conns:
            c.close()


@pytest.mark.measures_memory
def test_late_answers_are_bounded_per_connection(launch):
    """Two connections pipeline 128 GETs of a 4 MiB value from real Redis
    and never read.  The answers arrive later, from the backend: what they
    queue is bounded by --max-conn-output-bytes (the rest are answered 503,
    busy) instead of growing the process to about 1 GB.  (The last GETs
    wait on the Redis connection behind 1 GiB of values: on a loaded
    machine that took over the 5 s of the default --backend-timeout, and
    they were answered 504; the bound tested is memory, not time.)"""
    redis = launch(servers.Redis)
    sf1 = launch(servers.Springfield, listen="unix", env=redis.env(),
                 extra_args=["--max-reqs", "128", "--max-body-bytes", str(8 << 20),
                             "--max-conn-output-bytes", str(16 << 20), "--no-access-log",
                             "--backend-timeout", "30000"])
    value = os.urandom(4 << 20)
    assert fc.request(sf1.sock, "POST", "/api/v1/marges/big", body=value,
                      timeout=20).http()[0] == 204
    get = params(path="/api/v1/marges/big")
    assert_serves(sf1)
    time.sleep(0.3)
    before = rss_kib(sf1.pid)
    conns = [fc.Connection(sf1.sock, timeout=60) for _ in range(2)]
    try:
        for c in conns:
            c.send(b"".join(fc.encode_request(i, get) for i in range(1, 129)))
        time.sleep(4.0)                      # Redis answers them all; nobody reads
        grown = rss_kib(sf1.pid) - before
        assert grown < 160 * 1024, "springfield grew %d MiB for answers nobody read" \
            % (grown // 1024)
        for c in conns:
            ok = busy = 0
            for i in range(1, 129):
                status, _, body = c.read_response(i).http()
                if status == 200:
                    assert body == value
                    ok += 1
                else:
                    assert status == 503 and b"busy" in body, (status, body[:200])
                    busy += 1
                del c.responses[i]
            assert ok >= 3 and busy > 0, (ok, busy)
    finally:
        for c in conns:
            c.close()
    # and the process serves big values again once the readers are gone
    r = fc.request(sf1.sock, "GET", "/api/v1/marges/big", timeout=20)
    assert r.http()[2] == value


@pytest.mark.measures_memory
def test_unsent_answers_of_all_connections_have_a_budget(launch):
    """40 connections pipeline GETs of a 1 MiB value (embedded store, so
    the answers are made at once) and never read.  Each connection stops
    being read at its high-water mark, and all of them together stay
    within --max-output-bytes: large answers past it are 503 (busy), and
    connections whose peers do not read stop being read."""
    sf1 = launch(servers.Springfield, listen="unix",
                 extra_args=["--max-output-bytes", str(8 << 20), "--max-body-bytes", str(2 << 20),
                             "--no-access-log"])
    value = os.urandom(1 << 20)
    assert fc.request(sf1.sock, "POST", "/api/v1/marges/v", body=value).http()[0] == 204
    get = params(path="/api/v1/marges/v")
    time.sleep(0.2)
    before = rss_kib(sf1.pid)
    conns = [fc.Connection(sf1.sock, timeout=30) for _ in range(40)]
    try:
        for c in conns:
            c.send(b"".join(fc.encode_request(i, get) for i in range(1, 9)))
        time.sleep(1.5)
        grown = rss_kib(sf1.pid) - before
        # each held answer is written into its socket's kernel buffer first
        # (not counted in RSS); what springfield keeps is the budget plus at
        # most one answer past it, and the buffers' doubling
        assert grown < 28 * 1024, "springfield grew %d MiB with --max-output-bytes 8 MiB" \
            % (grown // 1024)
        statuses = []
        for c in conns:
            for i in range(1, 9):
                status, _, body = c.read_response(i).http()
                statuses.append(status)
                assert (status == 200 and body == value) or \
                    (status == 503 and b"busy" in body), (status, body[:100])
        assert statuses.count(200) >= 8 and statuses.count(503) > 0, \
            (statuses.count(200), statuses.count(503))
    finally:
        for c in conns:
            c.close()
    assert fc.request(sf1.sock, "GET", "/api/v1/marges/v").http()[2] == value


def test_a_request_arriving_at_sigterm_is_answered_after_8_s(launch):
    """With --shutdown-timeout 30, a request whose records are still
    arriving when SIGTERM comes and whose backend answers after 8 s is
    answered (it used to be cut off at 5 s by the linger timer), and the
    process then exits 0."""
    from launch_weather import WeatherStub

    stub = launch(WeatherStub, mode="slow", slow_ms=8000)
    sf1 = launch(servers.Springfield, listen="unix", env={"WEATHER_URI": stub.uri},
                 extra_args=["--shutdown-timeout", "30", "--backend-timeout", "20000"])
    data = fc.encode_request(1, params(path="/api/v1/maggie"))
    with fc.Connection(sf1.sock, timeout=20) as c:
        c.send(data[:20])
        time.sleep(0.2)
        sf1.proc.send_signal(15)
        time.sleep(0.3)
        c.send(data[20:40])                 # still arriving after the signal
        time.sleep(0.3)
        c.send(data[40:])
        t0 = time.monotonic()
        r = c.read_response(1, timeout=15)
        status, _, body = r.http()
        assert status == 200 and body.startswith(b"Currently"), (status, body)
        assert time.monotonic() - t0 > 6
    assert sf1.proc.wait(10) == 0
    sf1.stop()


# ---------------------------------------------------------------- last


def test_zz_process_survived_everything(sf_holder):
    """Runs last in this module: the one springfield that took all of the
    above is alive and never had to be restarted."""
    assert sf_holder.deaths == [], "springfield died %d time(s) in this module, " \
        "statuses %s" % (len(sf_holder.deaths), sf_holder.deaths)
    assert sf_holder.sf.alive(), servers.tail(sf_holder.sf.log_path)
    assert_serves(sf_holder.sf)
