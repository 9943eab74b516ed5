"""/api/v1/lisas/NAME on a real MariaDB, through real nginx.

The table is lisa(name VARCHAR(32) PK, content VARCHAR(1000)) in utf8mb4:
names and contents are counted in characters, a value over its column is
refused with 413 and never cut short, invalid UTF-8 is 400. Values shaped
like SQL go through verbatim. MariaDB stopped under a running springfield
gives fast 503s, and springfield finds it again when it comes back.

Every test uses names of its own: the MariaDB instance is shared by the
session (see fixtures_backends.py).
"""

import select
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

from httpc import FLANDERS, assert_error_shape, http_request

# fixtures mariadb_server, mariadb, sf_nginx: a plugin, so the session has one MariaDB
pytest_plugins = ["fixtures_backends"]

EMOJI = "\U0001F600"  # 4 bytes in UTF-8, one character
BACKEND_TIMEOUT_S = 5.0  # springfield's default --backend-timeout


def lisa_path(name):
    """The URL path for a name given as str (UTF-8) or raw bytes."""
    if isinstance(name, str):
        name = name.encode("utf-8")
    return "/api/v1/lisas/" + urllib.parse.quote_from_bytes(name, safe="")


def get(port, name):
    return http_request(port, "GET", lisa_path(name))


def post(port, name, content):
    if isinstance(content, str):
        content = content.encode("utf-8")
    return http_request(port, "POST", lisa_path(name), body=content,
                        headers={"Content-Type": "text/plain; charset=utf-8"})


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def db_row(db, name):
    """(name, content) as stored, read straight from MariaDB (hex on the
    wire, so no client escaping is involved), or None."""
    rows = db.query("SELECT HEX(name), HEX(content) FROM lisa WHERE name = UNHEX('%s')"
                    % name.encode("utf-8").hex())
    if not rows:
        return None
    assert len(rows) == 1, rows
    return (bytes.fromhex(rows[0][0]).decode("utf-8"),
            bytes.fromhex(rows[0][1]).decode("utf-8") if rows[0][1] != "NULL" else None)


def start(sf_nginx, db, args=()):
    pair = sf_nginx(env=db.env(), args=args)
    assert "lisas/NAME   -> mysql at 127.0.0.1:%d" % db.port in pair.sf.log(), pair.sf.log()
    return pair


def test_roundtrip_overwrite_missing(mariadb, sf_nginx):
    port = start(sf_nginx, mariadb).port
    name = uniq("rt")

    status, headers, body = get(port, name)
    assert_error_shape(status, headers, body, 404)

    status, _, body = post(port, name, "Hello, Lisa")
    assert status == 204, body
    assert body == b""
    status, headers, body = get(port, name)
    assert status == 200, body
    assert body == b"Hello, Lisa"
    assert headers.get("content-type", "").replace(" ", "").lower() == \
        "text/plain;charset=utf-8", headers
    # it really is in MariaDB's table, not in an embedded store
    assert db_row(mariadb, name) == (name, "Hello, Lisa")

    # overwrite: shorter, then longer; one row stays
    status, _, body = post(port, name, "Bye")
    assert status == 204, body
    assert get(port, name)[2] == b"Bye"
    status, _, body = post(port, name, "a longer value than before")
    assert status == 204, body
    assert get(port, name)[2] == b"a longer value than before"
    assert db_row(mariadb, name) == (name, "a longer value than before")

    # empty content is a value (not NULL, not missing)
    status, _, body = post(port, name, "")
    assert status == 204, body
    assert get(port, name)[:3:2] == (200, b"")
    assert db_row(mariadb, name) == (name, "")

    # another name is untouched and still missing
    status, headers, body = get(port, name + "x")
    assert_error_shape(status, headers, body, 404)


def test_sql_shaped_names_and_contents_verbatim(mariadb, sf_nginx):
    port = start(sf_nginx, mariadb).port
    tag = uuid.uuid4().hex[:6]
    shapes = [
        "'; DROP TABLE lisa; --",
        "\\",
        "\\'",
        "%",
        "_",
        "'",
        '"',
        "`",
        "``; SELECT 1; --",
        "1' OR '1'='1",
        '1" OR "1"="1',
        "x'); DELETE FROM lisa; --",
        "a\\%b_c",
        "NULL",
        "\x00zero",  # NUL inside the content (names get a NUL-free variant)
    ]
    stored = {}
    for i, shape in enumerate(shapes):
        name = (tag + shape.replace("\x00", "0"))[:32]
        content = "%d:%s:%s" % (i, shape, shape * 3)
        status, _, body = post(port, name, content)
        assert status == 204, (name, body)
        stored[name] = content
    for name, content in stored.items():
        status, _, body = get(port, name)
        assert status == 200, (name, body)
        assert body == content.encode("utf-8"), name
        assert db_row(mariadb, name) == (name, content)

    # LIKE wildcards are not wildcards: "%" and "_" only find themselves
    for wild in ("%", "_", "a_%"):
        status, headers, body = get(port, tag + wild + "nothere")
        assert_error_shape(status, headers, body, 404)
    status, headers, body = get(port, tag[:-1] + "_")  # "_" would match tag's last char
    assert_error_shape(status, headers, body, 404)

    # the table is still there and still works
    assert mariadb.query("SHOW TABLES LIKE 'lisa'") == [["lisa"]]
    n = int(mariadb.query("SELECT COUNT(*) FROM lisa WHERE name LIKE '%s%%'" % tag)[0][0])
    assert n == len(stored)
    after = uniq("after")
    assert post(port, after, "still works")[0] == 204
    assert get(port, after)[:3:2] == (200, b"still works")


def test_names_are_exact_keys(mariadb, sf_nginx):
    """Names differing in case or in trailing spaces are different names.
    A case-insensitive collation would merge the first, a PAD SPACE one
    (utf8mb4_bin is PAD SPACE in MariaDB; utf8mb4_nopad_bin is not) the
    second: "a " would overwrite and answer for "a"."""
    port = start(sf_nginx, mariadb).port
    base = uniq("Key")
    variants = [base, base.lower(), base.upper(), base + " ", base + "  ", " " + base]
    assert len(set(variants)) == len(variants)
    for i, name in enumerate(variants):
        status, _, body = post(port, name, "value %d" % i)
        assert status == 204, (name, body)
    for i, name in enumerate(variants):
        status, _, body = get(port, name)
        assert (status, body) == (200, ("value %d" % i).encode()), \
            "GET %r answered %d %r, stored as %r" % (name, status, body, "value %d" % i)


def test_unicode_limits_in_characters(mariadb, sf_nginx):
    port = start(sf_nginx, mariadb).port
    tag = uuid.uuid4().hex[:8]

    # exactly 32 characters of name, 128 bytes: accepted
    name32 = tag + EMOJI * 24
    assert len(name32) == 32 and len(name32.encode()) == 8 + 96
    # exactly 1000 characters of content, mixing 1-, 2-, 3- and 4-byte characters
    content1000 = ("a\u00e9\u20ac" + EMOJI) * 250
    assert len(content1000) == 1000 and len(content1000.encode()) == 2500
    status, _, body = post(port, name32, content1000)
    assert status == 204, body
    status, _, body = get(port, name32)
    assert status == 200, body
    assert body == content1000.encode("utf-8")  # 4-byte characters intact (utf8mb4)
    assert db_row(mariadb, name32) == (name32, content1000)
    assert mariadb.query("SELECT CHAR_LENGTH(name), CHAR_LENGTH(content) FROM lisa "
                         "WHERE name = UNHEX('%s')" % name32.encode().hex()) == [["32", "1000"]]

    # 33 characters of name: 413 saying why, nothing stored, no 32-char cut
    name33 = uuid.uuid4().hex[:8] + EMOJI * 25
    assert len(name33) == 33
    status, headers, body = post(port, name33, "x")
    assert_error_shape(status, headers, body, 413)
    assert b"name" in body and b"32" in body, body
    status, headers, body = get(port, name33)
    assert status in (404, 413), body  # either way, not stored
    assert_error_shape(status, headers, body, status)
    # what a truncating store would have written
    status, headers, body = get(port, name33[:32])
    assert_error_shape(status, headers, body, 404)
    assert db_row(mariadb, name33[:32]) is None

    # 1001 characters of content on a new name: 413, nothing stored
    content1001 = content1000 + EMOJI
    fresh = uniq("fresh")
    status, headers, body = post(port, fresh, content1001)
    assert_error_shape(status, headers, body, 413)
    assert b"content" in body and b"1000" in body, body
    status, headers, body = get(port, fresh)
    assert_error_shape(status, headers, body, 404)

    # ... and on the existing name: the old value stays whole
    status, headers, body = post(port, name32, content1001)
    assert_error_shape(status, headers, body, 413)
    status, _, body = get(port, name32)
    assert status == 200 and body == content1000.encode("utf-8")

    # far over (multi-byte all the way): 413 as well
    status, headers, body = post(port, fresh, EMOJI * 5000)
    assert_error_shape(status, headers, body, 413)
    assert get(port, fresh)[0] == 404


def test_invalid_utf8_is_400(mariadb, sf_nginx):
    port = start(sf_nginx, mariadb).port
    bad = [b"\xff", b"abc\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]
    for i, junk in enumerate(bad):
        name = uniq("bad%d" % i)
        status, headers, body = post(port, name, junk)
        assert_error_shape(status, headers, body, 400)
        assert b"UTF-8" in body and b"content" in body, body
        status, headers, body = get(port, name)
        assert_error_shape(status, headers, body, 404)
    # an invalid name (nginx decodes %FF into the byte 0xFF)
    raw_name = b"badname-" + uuid.uuid4().hex[:6].encode() + b"\xff"
    status, headers, body = post(port, raw_name, "fine content")
    assert_error_shape(status, headers, body, 400)
    assert b"UTF-8" in body and b"name" in body, body
    # valid content still goes in afterwards
    ok = uniq("ok")
    assert post(port, ok, "caf\u00e9")[0] == 204
    assert get(port, ok)[2] == "caf\u00e9".encode()


def timed(fn, *args):
    t0 = time.monotonic()
    r = fn(*args)
    return r, time.monotonic() - t0


def test_mariadb_stopped_then_back(mariadb, sf_nginx):
    pair = start(sf_nginx, mariadb)
    port = pair.port
    name = uniq("persist")
    assert post(port, name, "written before the stop " + EMOJI)[0] == 204
    assert get(port, name)[:3:2] == (200, ("written before the stop " + EMOJI).encode())

    mariadb.stop()
    try:
        # every request fails fast with 503, well under the backend timeout
        for i in range(5):
            (status, headers, body), took = timed(get, port, name)
            assert_error_shape(status, headers, body, 503)
            assert took < 1.0, "GET took %.2fs while MariaDB is down (request %d)" % (took, i)
            assert b"mysql" in body, body
            (status, headers, body), took = timed(post, port, uniq("down"), "x")
            assert_error_shape(status, headers, body, 503)
            assert took < 1.0, "POST took %.2fs while MariaDB is down" % took
            # routes without MariaDB are unaffected
            (status, _, body), took = timed(http_request, port, "GET", "/api/v1/flanders")
            assert (status, body) == (200, FLANDERS)
            assert took < 1.0
            time.sleep(0.1)
    finally:
        mariadb.start()

    # springfield (not restarted) finds MariaDB again, within its back-off
    sf_pid = pair.sf.pid
    deadline = time.monotonic() + 15
    while True:
        status, _, body = get(port, name)
        if status == 200:
            break
        assert status == 503, body
        assert time.monotonic() < deadline, "lisas still %d 15s after MariaDB came back: %r\n%s" \
            % (status, body, pair.sf.log()[-2000:])
        time.sleep(0.1)
    assert pair.sf.pid == sf_pid and pair.sf.alive()
    assert body == ("written before the stop " + EMOJI).encode()  # persisted by MariaDB
    after = uniq("after")
    assert post(port, after, "after the restart")[0] == 204
    assert get(port, after)[:3:2] == (200, b"after the restart")


@pytest.mark.parametrize("connections", [None, 7])
def test_every_mysql_connection_runs_a_query_at_once(mariadb, sf_nginx, connections):
    """More requests at once than springfield has MySQL connections: each of
    its connections runs one (MariaDB's process list shows them all at work
    while a table lock holds them), the rest wait in its queue, and all are
    answered once the lock goes.  Without --mysql-connections there are 4."""
    want = connections or 4
    pair = start(sf_nginx, mariadb,
                 args=["--mysql-connections", str(connections)] if connections else [])
    name = uniq("pool")
    assert post(pair.port, name, "held")[0] == 204
    locker = subprocess.Popen(
        ["mariadb", "--no-defaults", "-h127.0.0.1", "-P%d" % mariadb.port, "-u" + mariadb.user,
         "-p" + mariadb.password, "--batch", "--skip-column-names", "--unbuffered",
         mariadb.database],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results, threads = [], []
    try:
        locker.stdin.write(b"LOCK TABLES lisa WRITE;\nSELECT 'locked';\n")
        locker.stdin.flush()
        ready, _, _ = select.select([locker.stdout], [], [], 10)
        assert ready, "the mariadb client did not lock the table within 10 s"
        assert locker.stdout.readline() == b"locked\n"
        for _ in range(2 * want + 3):
            threads.append(threading.Thread(target=lambda: results.append(get(pair.port, name))))
            threads[-1].start()
        deadline = time.monotonic() + 3
        while True:
            running = int(mariadb.query(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Execute'"
                " AND STATE LIKE 'Waiting for table metadata lock'")[0][0])
            if running >= want or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.2)  # none beyond them comes
        running = int(mariadb.query(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Execute'")[0][0])
    finally:
        locker.stdin.write(b"UNLOCK TABLES;\n")
        locker.stdin.close()
        locker.wait(10)
        for t in threads:
            t.join(15)
    assert running == want, "%d queries at once on MariaDB, expected %d" % (running, want)
    assert [r[0] for r in results] == [200] * len(threads), [r[:3:2] for r in results][:5]
    assert all(r[2] == b"held" for r in results)


def test_mysql_host_that_does_not_resolve_is_survived(sf_nginx):
    """A MYSQL_HOST name that does not resolve at start-up used to stop
    springfield; it is looked up before every connect (off the loop), so
    springfield serves, lisas answers 503 saying why, and the lookup is
    retried with the back-off."""
    pair = sf_nginx(env={"MYSQL_HOST": "no-such-host.invalid", "MYSQL_USER": "sf",
                         "MYSQL_PASSWORD": "x", "MYSQL_DATABASE": "springfield"})
    status, headers, body = get(pair.port, uniq("dns"))
    message = assert_error_shape(status, headers, body, 503)
    assert "mysql" in message, message
    assert http_request(pair.port, "GET", "/api/v1/flanders")[2] == FLANDERS
    time.sleep(1.0)
    log = pair.sf.log()
    assert log.count("cannot resolve no-such-host.invalid") >= 1, log[-2000:]


def test_over_long_name_is_413_on_get_too(sf_nginx):
    """The name limit is the route's: a GET of a name longer than 32
    characters is 413 whatever the backend (it was 404 on the embedded
    store and 413 on MySQL)."""
    pair = sf_nginx()  # the embedded store
    status, headers, body = get(pair.port, "n" * 33)
    message = assert_error_shape(status, headers, body, 413)
    assert "32" in message, message
    assert get(pair.port, "n" * 32)[0] == 404
