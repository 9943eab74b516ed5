"""marges on a real redis-server and homers on the MongoDB stand-in, all
through real nginx in front of the springfield built from the tree.

Every test starts its own redis-server (servers.Redis, no persistence),
MongoDB stand-in (launch_mongo.MongoStandin, data kept in a file across
its restarts), springfield pointed at both, and nginx.  Fault tests stop a
backend in the middle and start it again on the same port: springfield
must answer 503 quickly while it is away, keep serving everything else,
and recover by itself.

Redis runs with --save '': a restarted redis-server is empty.  The tests
use that: after the restart a key written before the stop must be 404
(springfield reads the new server, it does not answer from a cache), and
new writes must work.  The stand-in persists, so homers written before
its stop must come back after its restart.
"""

import http.client
import json
import math
import os
import random
import re
import signal
import socket
import threading
import time
import urllib.parse

import pytest

import servers
from httpc import FLANDERS, assert_error_shape, http_request
from launch_mongo import MongoStandin

MAX_NAME_BYTES = 1024           # documented in cli.md / routes/kv_route.h
REDIS_DOWN_FAST_S = 1.0         # "fails fast" while redis is away
MONGO_SELECTION_S = 2.0         # serverSelectionTimeoutMS springfield sets
RECOVERY_S = 12.0               # redis back-off tops out at 5 s


# --------------------------------------------------------------------------
# helpers


def timed(port, method, path, **kw):
    t0 = time.monotonic()
    status, headers, body = http_request(port, method, path, **kw)
    return status, headers, body, time.monotonic() - t0


def marge_path(name):
    """name (str or bytes) percent-encoded completely: nginx decodes it."""
    return "/api/v1/marges/" + urllib.parse.quote(name, safe="")


def homer_path(name):
    return "/api/v1/homers/" + urllib.parse.quote(name, safe="")


def redis_get(port, key):
    """GET straight from redis-server over RESP (None when missing)."""
    k = key if isinstance(key, bytes) else key.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, "redis closed the connection"
            buf += chunk
        head, _, rest = buf.partition(b"\r\n")
        if head == b"$-1":
            return None
        assert head.startswith(b"$"), head
        n = int(head[1:])
        while len(rest) < n + 2:
            chunk = s.recv(65536)
            assert chunk, "redis closed the connection"
            rest += chunk
        return rest[:n]


def same_json(a, b, where="$"):
    """Equality that also checks the types JSON equality in Python glosses
    over (1 == 1.0 == True), object key order, and the sign of -0.0."""
    assert type(a) is type(b), "%s: %r (%s) != %r (%s)" % (where, a, type(a).__name__,
                                                           b, type(b).__name__)
    if isinstance(a, dict):
        assert list(a) == list(b), "%s: keys %r != %r" % (where, list(a), list(b))
        for k in a:
            same_json(a[k], b[k], "%s.%s" % (where, k))
    elif isinstance(a, list):
        assert len(a) == len(b), "%s: %d items != %d" % (where, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            same_json(x, y, "%s[%d]" % (where, i))
    elif isinstance(a, float):
        assert a == b and math.copysign(1, a) == math.copysign(1, b), \
            "%s: %r != %r" % (where, a, b)
    else:
        assert a == b, "%s: %r != %r" % (where, a, b)


def loads_exact(data):
    # parse_int=int is the default, said out loud: Python ints are exact,
    # so 2**53+1 survives only if springfield kept it exact
    return json.loads(data, parse_int=int)


def wait_until(what, check, timeout, interval=0.1):
    """Polls check() (returns (done, detail)) for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    detail = None
    while True:
        done, detail = check()
        if done:
            return detail
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0f s; last: %r" % (what, timeout, detail))
        time.sleep(interval)


class BigNginx(servers.Nginx):
    """servers.Nginx with room for a few hundred clients at once (each
    client connection and each upstream connection count against
    worker_connections, 256 in the stock config)."""

    def write_config(self):
        super().write_config()
        with open(self.conf) as f:
            conf = f.read()
        assert "worker_connections 256;" in conf
        with open(self.conf, "w") as f:
            f.write(conf.replace("worker_connections 256;", "worker_connections 2048;"))


class Stack:
    def __init__(self, redis, mongo, sf, front):
        self.redis, self.mongo, self.sf, self.front = redis, mongo, sf, front
        self.port = front.port

    def alive_check(self):
        if self.sf.proc is None or self.sf.proc.poll() is not None:
            raise AssertionError("springfield died (status %s)\n--- log tail ---\n%s"
                                 % (self.sf.proc and self.sf.proc.poll(),
                                    servers.tail(self.sf.log_path)))

    def flanders_at_once(self):
        status, _, body, took = timed(self.port, "GET", "/api/v1/flanders")
        assert status == 200 and body == FLANDERS, (status, body)
        assert took < 0.5, "flanders took %.3f s" % took


@pytest.fixture
def kv(launch):
    redis = launch(servers.Redis)
    mongo = launch(MongoStandin)
    env = dict(redis.env())
    env.update(mongo.env())
    sf = launch(servers.Springfield, listen="unix", env=env)
    front = launch(BigNginx, sf)
    st = Stack(redis, mongo, sf, front)
    yield st
    st.alive_check()


# --------------------------------------------------------------------------
# start-up log


def test_startup_log_names_each_backend(kv):
    log = kv.sf.log()
    assert re.search(r"route /api/v1/marges/NAME\s+-> redis at 127\.0\.0\.1:%d\b"
                     % kv.redis.port, log), log
    assert re.search(r"route /api/v1/homers/NAME\s+-> mongodb at 127\.0\.0\.1:%d\b"
                     % kv.mongo.port, log), log


def test_homers_unique_index_on_name(kv):
    """Concurrent first PUTs of one name must not make two documents: the
    shim creates a unique index on name once the server answers."""
    wait_until("the unique index on name",
               lambda: ("unique index on homers.name in place" in kv.sf.log(), None), 10)
    assert re.search(r"cmd=createIndexes\b", kv.mongo.log()), kv.mongo.log()[-2000:]


def test_startup_log_embedded_when_unset(launch):
    # the launchers strip REDIS_*/MONGODB_URI from the environment
    sf = launch(servers.Springfield, listen="unix")
    front = launch(servers.Nginx, sf)
    log = sf.log()
    assert re.search(r"route /api/v1/marges/NAME\s+-> embedded\b.*REDIS_HOST", log), log
    assert re.search(r"route /api/v1/homers/NAME\s+-> embedded\b.*MONGODB_URI", log), log
    assert not re.search(r"-> (redis|mongodb) at", log), log
    # and the embedded stores work
    assert http_request(front.port, "POST", "/api/v1/marges/e", body=b"\0e")[0] == 204
    assert http_request(front.port, "GET", "/api/v1/marges/e")[2] == b"\0e"
    assert http_request(front.port, "POST", "/api/v1/homers/e", body=b'{"e":[1]}')[0] == 204
    status, _, body = http_request(front.port, "GET", "/api/v1/homers/e")
    assert status == 200 and loads_exact(body) == {"e": [1]}


# --------------------------------------------------------------------------
# marges on redis


def test_marges_binary_values(kv):
    rnd = random.Random(1234)
    values = {
        "nul-only": b"\0",
        "nuls": b"\0\0\0abc\0def\0",
        "every-byte": bytes(range(256)),
        "crlf": b"\r\n$-1\r\n*3\r\n",           # RESP look-alikes stay data
        "one-mib": rnd.randbytes(1 << 20),
    }
    assert b"\0" in values["one-mib"]
    for name, value in values.items():
        status, _, body = http_request(kv.port, "POST", marge_path(name), body=value,
                                       headers={"Content-Type": "application/octet-stream"})
        assert status == 204, (name, status, body)
        assert body == b""
    for name, value in values.items():
        status, headers, body = http_request(kv.port, "GET", marge_path(name))
        assert status == 200, (name, status, body[:200])
        assert headers.get("content-type") == "application/octet-stream", headers
        assert int(headers.get("content-length", -1)) == len(value), headers
        assert len(body) == len(value), name
        assert body == value, name
        # stored in redis as the same bytes under the name itself
        assert redis_get(kv.redis.port, name) == value, name


def test_marges_missing_is_404(kv):
    status, headers, body = http_request(kv.port, "GET", marge_path("never-written"))
    message = assert_error_shape(status, headers, body, 404)
    assert "marge" in message, message


def test_marges_overwrite(kv):
    path = marge_path("over")
    for value in (b"long value " * 1000, b"x", b"\0y\0", b"a somewhat longer one\0"):
        assert http_request(kv.port, "POST", path, body=value)[0] == 204
        status, _, body = http_request(kv.port, "GET", path)
        assert status == 200 and body == value, (status, body[:60])
    assert redis_get(kv.redis.port, "over") == b"a somewhat longer one\0"


NAMES = [
    "with space", "with  two  spaces", " lead", "trail ", "a b", "a+b", "a%b", "a%2Bb",
    "100%", "%", "+", "'single'", '"double"', "it's \"both\"", "back\\slash",
    "semi;colon", "q?mark", "hash#", "amp&eq=", "caf\u00e9", "cafe\u0301",
    "\u00fcml\u00e4ut", "snow \u2603 man", "clef \U0001D11E", "\u65e5\u672c\u8a9e",
    "emoji \U0001F600", "A", "a",
]


def test_marges_names_with_special_characters(kv):
    assert len(set(NAMES)) == len(NAMES)
    values = {n: ("value of %r" % n).encode() + b"\0" + n.encode() for n in NAMES}
    for n in NAMES:
        status, _, body = http_request(kv.port, "POST", marge_path(n), body=values[n])
        assert status == 204, (n, status, body)
    # every name finds its own value: no two names collide
    for n in NAMES:
        status, _, body = http_request(kv.port, "GET", marge_path(n))
        assert status == 200, (n, status, body)
        assert body == values[n], (n, body)
        # the key in redis is the decoded name, as UTF-8
        assert redis_get(kv.redis.port, n.encode()) == values[n], n
    # a literal '+' is a plus, not a space; '%2B' decodes to '+'
    assert http_request(kv.port, "GET", "/api/v1/marges/a+b")[2] == values["a+b"]
    assert http_request(kv.port, "GET", "/api/v1/marges/a%2Bb")[2] == values["a+b"]
    assert http_request(kv.port, "GET", "/api/v1/marges/a%2bb")[2] == values["a+b"]
    # other spellings of the same decoded name find the same value
    assert http_request(kv.port, "GET", "/api/v1/marges/%41")[2] == values["A"]
    assert http_request(kv.port, "GET", "/api/v1/marges/caf%C3%A9")[2] == values["caf\u00e9"]
    # a name never written is still missing
    status, headers, body = http_request(kv.port, "GET", marge_path("a  b"))
    assert_error_shape(status, headers, body, 404)


@pytest.mark.parametrize("route", ["marges", "homers"])
def test_name_length_limit(kv, route):
    value = b'"at the limit"'
    path = marge_path if route == "marges" else homer_path
    at_limit = ["n" * MAX_NAME_BYTES,
                "\u00e9" * (MAX_NAME_BYTES // 2)]           # the limit is in bytes
    over = ["n" * (MAX_NAME_BYTES + 1),
            "\u00e9" * (MAX_NAME_BYTES // 2) + "x",
            "\u00e9" * (MAX_NAME_BYTES // 2 + 1)]
    for name in at_limit:
        assert len(name.encode()) == MAX_NAME_BYTES
        status, _, body = http_request(kv.port, "POST", path(name), body=value)
        assert status == 204, (route, status, body)
        status, _, body = http_request(kv.port, "GET", path(name))
        assert status == 200, (route, status, body)
        assert loads_exact(body) == "at the limit"
    for name in over:
        assert len(name.encode()) > MAX_NAME_BYTES
        for method in ("GET", "POST"):
            status, headers, body = http_request(kv.port, method, path(name), body=value)
            message = assert_error_shape(status, headers, body, 400)
            assert str(MAX_NAME_BYTES) in message, message
    # nothing was stored under an over-long name (not even truncated)
    if route == "marges":
        assert redis_get(kv.redis.port, "n" * (MAX_NAME_BYTES + 1)) is None
    else:
        names = [d["name"] for d in kv.mongo.documents()]
        assert sorted(names) == sorted(at_limit), [len(n) for n in names]


def test_marges_redis_stopped_and_restarted(kv):
    port = kv.port
    assert http_request(port, "POST", marge_path("before"), body=b"\0before")[0] == 204
    assert http_request(port, "POST", homer_path("h"), body=b'{"h": 1}')[0] == 204

    kv.redis.stop()
    for method, body in (("GET", None), ("POST", b"while down"), ("GET", None)):
        status, headers, data, took = timed(port, method, marge_path("before"), body=body)
        message = assert_error_shape(status, headers, data, 503)
        assert "redis" in message.lower(), message
        assert took < REDIS_DOWN_FAST_S, "%s marges took %.3f s with redis down" % (method, took)
    # springfield is up and serves what does not need redis
    kv.alive_check()
    kv.flanders_at_once()
    status, _, body = http_request(port, "GET", homer_path("h"))
    assert status == 200 and loads_exact(body) == {"h": 1}

    kv.redis.start()     # same port, empty (no persistence)

    def recovered():
        status, _, body = http_request(port, "POST", marge_path("after"), body=b"\0after")
        return status == 204, (status, body)

    wait_until("marges POST after redis restart", recovered, RECOVERY_S)
    status, _, body = http_request(port, "GET", marge_path("after"))
    assert status == 200 and body == b"\0after", (status, body)
    assert redis_get(kv.redis.port, "after") == b"\0after"
    # the value from before the stop died with that redis-server: springfield
    # must read the new server, not remember the old answer
    status, headers, body = http_request(port, "GET", marge_path("before"))
    assert_error_shape(status, headers, body, 404)
    # the write attempted while redis was down did not land later either
    assert redis_get(kv.redis.port, "before") is None
    assert re.search(r"redis 127\.0\.0\.1:%d: (re)?connected" % kv.redis.port,
                     kv.sf.log().split("connection lost", 1)[-1]), kv.sf.log()[-2000:]


# --------------------------------------------------------------------------
# homers on the MongoDB stand-in

JSON_DOCS = {
    "nested": '{"a": [{"b": {"c": [1, {"d": []}, [[{}]]]}}, {"e": null}], "f": {"g": [true, false]}}',
    "utf8-raw": '{"s": "h\u00e9llo \u2603 \U0001D11E \u65e5\u672c", "\u00e9\U0001F600": "key"}',
    "escapes": r'{"s": "\u00e9\u2603\ud834\udd1e\ud83d\ude00", "q": "\"\\\/\b\f\n\r\t", '
               r'"nul": "a\u0000b", "\u00fc": 1}',
    "ints": '{"p53": 9007199254740993, "max": 9223372036854775807, '
            '"min": -9223372036854775808, "i32max": 2147483647, "i32over": 2147483648, '
            '"i32under": -2147483649, "zero": 0, "neg": -1}',
    "floats": '{"half": 0.5, "tenth": 0.1, "third": 0.3333333333333333, "e": 1e-7, '
              '"E": 6.02214076E+23, "big": 1.7976931348623157e308, "tiny": 5e-324, '
              '"one": 1.0, "exp-int": 1e2, "negzero": -0.0, "neg": -2.5e-3}',
    "literals": '{"t": true, "f": false, "n": null}',
    "empties": '{"o": {}, "a": [], "s": "", "nested": [{}, [], [[]]]}',
    "empty-object": '{}',
    "empty-array": '[]',
    "top-array": '[1, "two", 3.5, null, true, {"six": [6]}]',
    "top-string": '"just a string \u2603"',
    "top-number": '9223372036854775807',
    "top-negative": '-42',
    "top-float": '2.5e-8',
    "top-true": 'true',
    "top-null": 'null',
    "whitespace": ' \n\t{ "a" :\r\n [ 1 , 2 ] }\n ',
}


def test_homers_json_roundtrips(kv):
    for name, text in JSON_DOCS.items():
        status, _, body = http_request(kv.port, "POST", homer_path(name),
                                       body=text.encode("utf-8"),
                                       headers={"Content-Type": "application/json"})
        assert status == 204, (name, status, body)
    for name, text in JSON_DOCS.items():
        status, headers, body = http_request(kv.port, "GET", homer_path(name))
        assert status == 200, (name, status, body)
        assert headers.get("content-type", "").split(";")[0] == "application/json", headers
        got = loads_exact(body.decode("utf-8"))
        same_json(got, loads_exact(text), name)
    # the values reached the stand-in as the documented {name, content}
    # documents, integers as BSON integers (int64 where they need it)
    docs = {d["name"]: d for d in kv.mongo.documents()}
    assert set(docs) == set(JSON_DOCS), sorted(docs)
    ints = docs["ints"]["content"]
    assert ints["max"] == 2 ** 63 - 1 and ints["min"] == -2 ** 63
    assert ints["p53"] == 2 ** 53 + 1
    assert type(ints["p53"]).__name__ == "Int64", type(ints["p53"])
    assert docs["nested"]["content"]["a"][0]["b"]["c"][1] == {"d": []}
    assert docs["escapes"]["content"]["nul"] == "a\0b"
    assert docs["escapes"]["content"]["s"].endswith("\U0001D11E\U0001F600")


def test_homers_overwrite_and_missing(kv):
    path = homer_path("over")
    for text in ('{"v": 1, "big": [1, 2, 3]}', '[2]', '"three"', '{"v": 4}'):
        assert http_request(kv.port, "POST", path, body=text.encode())[0] == 204
        status, _, body = http_request(kv.port, "GET", path)
        assert status == 200
        same_json(loads_exact(body), loads_exact(text))
    # replaced, not added
    assert [d["name"] for d in kv.mongo.documents()] == ["over"]
    status, headers, body = http_request(kv.port, "GET", homer_path("never-written"))
    message = assert_error_shape(status, headers, body, 404)
    assert "homer" in message, message


# (body, byte offset of the first byte that makes it invalid)
INVALID_JSON = [
    (b'{"a": [1, 2,, 3]}', 12),
    (b'{"a": tru}', 6),
    (b'{"a" 1}', 5),
    (b'[1, 2', 5),
    (b'{"unterminated": "abc', 17),
    (b'', 0),
    (b'abc', 0),
    (b"{'a': 1}", 1),
]

TRAILING_GARBAGE = [
    (b'{"a": 1} x', 9),
    (b'{"a": 1}}', 8),
    (b'[1][2]', 3),
    (b'1 2', 2),
    (b'"s" "t"', 4),
    (b'{"a": 1}\0', 8),
]

# (a UTF-8 byte order mark is not here: RFC 8259 lets a parser ignore it)
NOT_JSON_OTHER = [b'01', b'1.', b'[1,]', b'NaN', b'"\xff"', b'"tab\there"', b'{"a":1,}',
                  b'"\\x"', b'"\\ud800"', b'-', b'1e', b'\0', b'[',
                  b'"n\xc0\x80"', b'"\xed\xa0\x80"']  # an overlong NUL, a raw surrogate


def _byte_position(message):
    m = re.search(r"byte (\d+)", message)
    assert m, "400 message does not name the byte position: %r" % message
    return int(m.group(1))


def test_homers_invalid_json_is_400_with_position(kv):
    path = homer_path("kept")
    assert http_request(kv.port, "POST", path, body=b'{"kept": true}')[0] == 204
    for body, at in INVALID_JSON + TRAILING_GARBAGE:
        status, headers, data = http_request(kv.port, "POST", path, body=body)
        message = assert_error_shape(status, headers, data, 400)
        pos = _byte_position(message)
        # a parser may point at the bad byte or just before/after it
        assert at - 1 <= pos <= at + 1, "body %r: message %r, expected byte ~%d" % (
            body, message, at)
    for body in NOT_JSON_OTHER:
        status, headers, data = http_request(kv.port, "POST", path, body=body)
        assert status == 400, (body, status, data)
        assert_error_shape(status, headers, data, 400)
    # none of those replaced the stored value
    status, _, data = http_request(kv.port, "GET", path)
    assert status == 200 and loads_exact(data) == {"kept": True}
    # whitespace after the value is fine
    assert http_request(kv.port, "POST", path, body=b'{"a": 1} \r\n\t')[0] == 204


def test_homers_name_that_is_not_utf8_is_400(kv):
    """nginx decodes %XX in the path: a name whose bytes are not UTF-8 (the
    byte 0xFF, the overlong NUL C0 80, a surrogate) is refused before it
    reaches MongoDB, and stores nothing."""
    for raw in ("bad%FF", "bad%C0%80", "bad%ED%A0%80"):
        path = "/api/v1/homers/" + raw
        status, headers, data = http_request(kv.port, "POST", path, body=b'{"a": 1}')
        message = assert_error_shape(status, headers, data, 400)
        assert "UTF-8" in message and "name" in message, (raw, message)
        status, headers, data = http_request(kv.port, "GET", path)
        assert_error_shape(status, headers, data, 400)
    # a name that is UTF-8 goes in as before
    assert http_request(kv.port, "POST", homer_path("caf\u00e9"), body=b'1')[0] == 204


def test_homers_mongo_stopped_and_restarted(kv):
    port = kv.port
    doc = '{"before": [1, {"x": 9223372036854775807}]}'
    assert http_request(port, "POST", homer_path("before"), body=doc.encode())[0] == 204
    assert http_request(port, "POST", marge_path("m"), body=b"\0m")[0] == 204

    kv.mongo.stop()
    results = {}

    def call(key, method, path, body=None, headers=None):
        try:
            results[key] = timed(port, method, path, body=body, headers=headers)
        except Exception as e:  # reported below
            results[key] = e

    calls = [
        threading.Thread(target=call, args=("get", "GET", homer_path("before"))),
        threading.Thread(target=call, args=("post", "POST", homer_path("x"), b'{"x": 1}')),
        threading.Thread(target=call, args=("health", "GET", "/api/v1/healthcheck")),
    ]
    for t in calls:
        t.start()
    time.sleep(0.2)
    # while homers wait for the driver, everything else answers at once
    kv.flanders_at_once()
    status, _, body, took = timed(port, "GET", marge_path("m"))
    assert status == 200 and body == b"\0m" and took < 0.5, (status, body, took)
    for t in calls:
        t.join(MONGO_SELECTION_S * 3)
    assert not any(t.is_alive() for t in calls), "homers requests hung with mongo down"
    for key in ("get", "post"):
        r = results[key]
        assert not isinstance(r, Exception), r
        status, headers, body, took = r
        message = assert_error_shape(status, headers, body, 503)
        assert "mongodb" in message.lower(), message
        assert took < MONGO_SELECTION_S + 1.0, "%s took %.3f s with mongo down" % (key, took)
    status, headers, body, took = results["health"]
    message = assert_error_shape(status, headers, body, 503)
    assert "mongodb" in message and "homers" in message, message
    assert "redis" not in message, message
    # Once the shim knows the server is down, it fails fast instead of
    # making every request wait out server selection again.
    status, headers, body, took = timed(port, "GET", homer_path("before"))
    message = assert_error_shape(status, headers, body, 503)
    assert "mongodb" in message.lower(), message
    assert took < 0.5, "homers took %.3f s while mongo was known to be down" % took
    kv.alive_check()

    kv.mongo.start()     # same port, same data file

    def recovered():
        status, _, body = http_request(port, "GET", homer_path("before"))
        return status == 200, (status, body)

    body = wait_until("homers GET after mongo restart", recovered, RECOVERY_S)[1]
    same_json(loads_exact(body), loads_exact(doc))
    assert http_request(port, "POST", homer_path("after"), body=b'[true]')[0] == 204
    status, _, body = http_request(port, "GET", homer_path("after"))
    assert status == 200 and loads_exact(body) == [True]
    # the POST refused while it was down did not land later
    status, headers, body = http_request(port, "GET", homer_path("x"))
    assert_error_shape(status, headers, body, 404)


# --------------------------------------------------------------------------
# both, under concurrency


CLIENTS = 200


def test_concurrent_distinct_keys(kv):
    barrier = threading.Barrier(CLIENTS, timeout=30)
    errors = []
    done = []

    def client(i):
        key = "conc-%03d" % i
        raw = b"\0" + ("raw value %d " % i).encode() * (1 + i % 7)
        doc = {"i": i, "big": 2 ** 62 + i, "s": "client %d \u2603" % i, "l": [i] * (i % 5)}
        text = json.dumps(doc).encode()
        conn = http.client.HTTPConnection("127.0.0.1", kv.port, timeout=30)
        try:
            conn.connect()
            barrier.wait()
            for method, path, body, want in (
                    ("POST", marge_path(key), raw, None),
                    ("POST", homer_path(key), text, None),
                    ("GET", marge_path(key), None, raw),
                    ("GET", homer_path(key), None, doc)):
                conn.request(method, path, body=body)
                r = conn.getresponse()
                got = r.read()
                if method == "POST":
                    if r.status != 204:
                        errors.append((key, method, path, r.status, got[:80]))
                elif r.status != 200:
                    errors.append((key, method, path, r.status, got[:80]))
                elif isinstance(want, bytes) and got != want:
                    errors.append((key, path, "got", got[:80]))
                elif isinstance(want, dict) and loads_exact(got) != want:
                    errors.append((key, path, "got", got[:80]))
            done.append(i)
        except Exception as e:
            errors.append((key, repr(e)))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 45
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients did not finish within 45 s"
    assert errors == [], errors[:10]
    assert sorted(done) == list(range(CLIENTS))
    # and afterwards every key still holds its own value
    for i in range(0, CLIENTS, 17):
        key = "conc-%03d" % i
        assert redis_get(kv.redis.port, key).startswith(b"\0raw value %d " % i)
    docs = {d["name"]: d["content"] for d in kv.mongo.documents()}
    assert len(docs) == CLIENTS
    assert all(docs["conc-%03d" % i]["i"] == i for i in range(CLIENTS))


class DebugRedis(servers.Redis):
    """servers.Redis that takes DEBUG from loopback (DEBUG SLEEP below)."""

    def command(self):
        return super().command() + ["--enable-debug-command", "local"]


def redis_command(port, *args, timeout=10):
    """One command straight to redis-server; its raw reply up to the
    first line end (enough for +OK, :N and the bulk header)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"*%d\r\n" % len(args) +
                  b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, "redis closed the connection"
            buf += chunk
        if buf.startswith(b"$"):
            n = int(buf[1:buf.index(b"\r\n")])
            while len(buf) < buf.index(b"\r\n") + 2 + n + 2:
                buf += s.recv(65536)
        return buf


def redis_info_stats(port):
    reply = redis_command(port, b"INFO", b"stats").decode()
    return {k: int(v) for k, _, v in (line.partition(":") for line in reply.split("\r\n"))
            if v.isdigit()}


def test_marges_commands_are_pipelined(launch):
    """springfield sends each Redis command as its request comes, without
    waiting for the answers to those before: with redis-server asleep
    (DEBUG SLEEP), 32 concurrent GETs all reach its one connection, and
    redis-server reads them in a read or two when it wakes, not in 32
    (which is what waiting for each answer before the next would take)."""
    clients = 32
    redis = launch(DebugRedis)
    sf = launch(servers.Springfield, listen="unix", env=redis.env())
    front = launch(servers.Nginx, sf)
    value = b"in flight together"
    assert http_request(front.port, "POST", "/api/v1/marges/pipe", body=value)[0] == 204
    assert http_request(front.port, "GET", "/api/v1/marges/pipe")[0] == 200
    clients_line = redis_command(redis.port, b"CLIENT", b"LIST")
    before = redis_info_stats(redis.port)

    results = []
    sleeper = socket.create_connection(("127.0.0.1", redis.port), timeout=10)
    try:
        sleeper.sendall(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n1.5\r\n")
        time.sleep(0.3)  # redis-server is asleep now, for 1.2 s more

        def one():
            results.append(http_request(front.port, "GET", "/api/v1/marges/pipe"))

        threads = [threading.Thread(target=one) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        assert sleeper.recv(16).startswith(b"+OK")
    finally:
        sleeper.close()
    after = redis_info_stats(redis.port)

    assert [r[0] for r in results] == [200] * clients, [r[:3:2] for r in results][:5]
    assert all(r[2] == value for r in results)
    commands = after["total_commands_processed"] - before["total_commands_processed"]
    reads = after["total_reads_processed"] - before["total_reads_processed"]
    # the GETs, DEBUG and the INFO itself; the reads: springfield's one or
    # two, and those of the DEBUG and INFO clients (a command, an EOF each)
    assert commands >= clients + 2, (commands, before, after)
    assert reads <= 8, ("%d commands took %d reads: springfield sent them one at a time?\n%s"
                        % (commands, reads, clients_line))
    # and all on the one connection springfield keeps (besides CLIENT LIST's own)
    others = [line for line in clients_line.split(b"\n")
              if line.startswith(b"id=") and b"cmd=client|list" not in line]
    assert len(others) == 1, clients_line


@pytest.mark.parametrize("route", ["marges", "homers"])
def test_read_your_writes(kv, route):
    """A POST answered 204 is visible to the very next GET, on the same
    keep-alive connection and on another one (another upstream connection
    through nginx)."""
    path = (marge_path if route == "marges" else homer_path)("ryw")
    writer = http.client.HTTPConnection("127.0.0.1", kv.port, timeout=10)
    other = http.client.HTTPConnection("127.0.0.1", kv.port, timeout=10)
    stale = []
    try:
        for i in range(200):
            value = (b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i % 13)))
            writer.request("POST", path, body=value)
            r = writer.getresponse()
            assert r.status == 204 and r.read() == b"", (i, r.status)
            reader = writer if i % 2 == 0 else other
            reader.request("GET", path)
            r = reader.getresponse()
            got = r.read()
            assert r.status == 200, (i, r.status, got)
            if loads_exact(got) != loads_exact(value):
                stale.append((i, got))
    finally:
        writer.close()
        other.close()
    assert stale == [], "GET right after POST saw an older value: %r" % stale[:5]


# --------------------------------------------------------------------------
# health check


def _health(port, json_wanted=False):
    headers = {"Accept": "application/json"} if json_wanted else {}
    return timed(port, "GET", "/api/v1/healthcheck", headers=headers)


def _check_json_report(status, headers, body, want_status, states):
    assert status == want_status, (status, body)
    assert headers.get("content-type", "").split(";")[0] == "application/json", headers
    report = json.loads(body)
    assert report["status"] == ("ok" if want_status == 200 else "unhealthy"), report
    backends = report["backends"]
    for route, (backend, state) in states.items():
        b = backends[route]
        assert b["backend"] == backend, report
        assert b["state"] == state, report
        assert isinstance(b["latency_ms"], (int, float)) and b["latency_ms"] >= 0, report
        assert b["latency_ms"] < 3000, report
        if state != "ok":
            assert b.get("error"), report
    return report


def test_healthcheck(kv):
    port = kv.port
    status, headers, body, _ = _health(port)
    assert status == 200 and body == b"OK", (status, body)
    assert headers.get("content-type", "").replace(" ", "").lower() == \
        "text/plain;charset=utf-8", headers
    status, headers, body, _ = _health(port, json_wanted=True)
    _check_json_report(status, headers, body, 200,
                       {"marges": ("redis", "ok"), "homers": ("mongodb", "ok")})

    kv.redis.stop()
    status, headers, body, took = _health(port)
    message = assert_error_shape(status, headers, body, 503)
    assert "redis" in message and "marges" in message, message
    assert "mongodb" not in message, message
    assert took < 3.0, "healthcheck took %.3f s" % took
    status, headers, body, _ = _health(port, json_wanted=True)
    report = _check_json_report(status, headers, body, 503,
                                {"marges": ("redis", "unavailable"),
                                 "homers": ("mongodb", "ok")})
    assert "redis" in report["backends"]["marges"]["error"], report
    kv.flanders_at_once()

    kv.redis.start()

    def healthy():
        status, _, body, _ = _health(port)
        return status == 200 and body == b"OK", (status, body)

    wait_until("healthcheck 200 after redis restart", healthy, RECOVERY_S)
    status, headers, body, _ = _health(port, json_wanted=True)
    _check_json_report(status, headers, body, 200,
                       {"marges": ("redis", "ok"), "homers": ("mongodb", "ok")})


# --------------------------------------------------------------------------
# the operation core (issue 8): prompt failure, and the URI's own timeouts


def test_homers_in_flight_fail_at_once_when_mongo_dies(launch):
    """Requests waiting for MongoDB when it dies are answered 503 as soon
    as the first of them finds the server gone (the breaker opens and
    answers the rest), not each after its own server-selection wait."""
    redis = launch(servers.Redis)
    mongo = launch(MongoStandin)
    env = dict(redis.env())
    env.update(mongo.env())
    sf = launch(servers.Springfield, listen="unix", env=env,
                extra_args=["--threads", "1", "--backend-timeout", "8000"])
    front = launch(BigNginx, sf)
    assert http_request(front.port, "POST", homer_path("w"), body=b'{"w": 1}')[0] == 204
    results = []
    lock = threading.Lock()

    def one(i):
        r = timed(front.port, "GET", homer_path("w"))
        with lock:
            results.append(r)

    try:
        servers.sigstop(mongo.pid)           # requests queue behind one stuck job
        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.5)
    finally:
        t_kill = time.monotonic()
        os.kill(mongo.pid, signal.SIGKILL)
    mongo.kill()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads)
    done = time.monotonic() - t_kill
    for status, headers, body, took in results:
        message = assert_error_shape(status, headers, body, 503)
        assert "mongodb" in message.lower(), message
    # one server selection (2 s) for the job that finds it gone, not eight
    assert done < MONGO_SELECTION_S + 1.5, "8 queued homers took %.1f s to fail" % done
    status, headers, body, took = timed(front.port, "GET", homer_path("w"))
    assert_error_shape(status, headers, body, 503)
    assert took < 0.5, "a homers request waited %.2f s while the breaker is open" % took


def test_mongodb_uri_socket_timeout_zero_works(launch):
    """socketTimeoutMS=0 in MONGODB_URI means no socket timeout; jobs still
    run (they used to be given a deadline equal to their submit time)."""
    mongo = launch(MongoStandin)
    sf = launch(servers.Springfield, listen="unix",
                env={"MONGODB_URI": mongo.uri + "?socketTimeoutMS=0"})
    front = launch(servers.Nginx, sf)
    assert http_request(front.port, "POST", homer_path("z"), body=b'[0]')[0] == 204
    status, _, body = http_request(front.port, "GET", homer_path("z"))
    assert status == 200 and loads_exact(body) == [0], (status, body)


def test_redis_host_that_does_not_resolve_is_survived(launch):
    """A REDIS_HOST name that does not resolve at start-up no longer stops
    anything: marges answers 503 naming the lookup, the rest serves, and
    the lookup is retried with the back-off (looked up off the loop)."""
    sf = launch(servers.Springfield, listen="unix",
                env={"REDIS_HOST": "no-such-host.invalid", "REDIS_PORT": "6379"})
    front = launch(servers.Nginx, sf)
    status, headers, body, took = timed(front.port, "GET", marge_path("k"))
    message = assert_error_shape(status, headers, body, 503)
    assert "resolve" in message or "not connected" in message, message
    assert took < 1.0, took
    assert http_request(front.port, "GET", "/api/v1/flanders")[2] == FLANDERS
    time.sleep(1.0)
    assert sf.log().count("cannot resolve no-such-host.invalid") >= 1, sf.log()[-2000:]
