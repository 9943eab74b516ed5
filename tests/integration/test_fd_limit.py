"""At the open-file limit: springfield started under a low RLIMIT_NOFILE
(soft and hard, so that it cannot raise it) and sent more connections than
it has descriptors for.  The ones beyond are closed at once (end of stream
on a unix socket, a reset over TCP) instead of waiting in the listen
backlog for ever; they are counted on the status page
(connections.refused.no_fds) and logged at most once a second; the ones
that fit are served; and once connections close, springfield serves new
ones again."""

import re
import time

import pytest

import fcgi_client as fc
import servers

LIMIT = 48   # descriptors springfield may have (about a dozen are its own)
EXTRA = 40   # connections beyond LIMIT
FLANDERS = b"Hi-dilly-ho, neighborino!"
REFUSAL_LINE = re.compile(r"refusing connection: out of file descriptors")


class LimitedSpringfield(servers.Springfield):
    """springfield under prlimit --nofile=LIMIT:LIMIT (prlimit execs it:
    the pid is springfield's)."""

    def command(self):
        return ["prlimit", "--nofile=%d:%d" % (LIMIT, LIMIT), "--"] + super().command()


def open_conn(address):
    """A connection, or None when it was refused already while connecting
    (over TCP the reset can arrive before the connect returns)."""
    try:
        return fc.Connection(address, timeout=5)
    except ConnectionResetError:
        return None


def closed_by_peer(s):
    """True when the peer has closed s (end of stream or reset); False when
    it is open and has sent nothing."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.settimeout(5)


def serves(c):
    c.send_request(1, fc.cgi_params("GET", "/api/v1/flanders"))
    return c.read_response(1, timeout=5).http()[2] == FLANDERS


@pytest.mark.parametrize("listen", ["unix", "tcp"])
def test_connections_beyond_the_descriptor_limit_are_refused_at_once(launch, listen):
    sf = launch(LimitedSpringfield, listen=listen, extra_args=["--status-path", "/status"])
    started = time.monotonic()
    conns = [open_conn(sf.address) for _ in range(LIMIT + EXTRA)]
    time.sleep(1.5)  # long enough for springfield; without the reserve, never
    refused = [c for c in conns if c is None or closed_by_peer(c.sock)]
    kept = [c for c in conns if c not in refused]
    assert len(refused) >= EXTRA, "only %d of %d connections closed" % (len(refused), len(conns))
    assert kept, "no connection was accepted"
    # what is still open was accepted, not left in the backlog: it is served
    for c in kept:
        assert serves(c)
    for c in kept:
        c.close()
    elapsed = time.monotonic() - started

    # the descriptors are back: new connections are served, and counted
    time.sleep(0.3)
    doc = fc.status_json(sf.address)
    assert doc["connections"]["refused"]["no_fds"] == len(refused), doc["connections"]
    assert fc.request(sf.address, "GET", "/api/v1/flanders").http()[2] == FLANDERS

    # one log line a second at most, saying how many it left out
    lines = REFUSAL_LINE.findall(sf.log())
    assert 1 <= len(lines) <= elapsed + 1, "%d refusal lines in %.1f s" % (len(lines), elapsed)
    assert len(lines) < len(refused)


def test_refusing_goes_on_while_the_limit_lasts(launch):
    """Connections keep coming while every descriptor is taken: each is
    refused as it comes (or served, when a descriptor came free), none
    waits, and the ones that fit stay served."""
    sf = launch(LimitedSpringfield, listen="unix", extra_args=["--status-path", "/status"])
    held = [fc.Connection(sf.address, timeout=5) for _ in range(LIMIT + 5)]
    time.sleep(1.0)
    held = [c for c in held if not closed_by_peer(c.sock)]  # (the rest are closed)
    refused = 0
    for wave in range(3):
        late = [fc.Connection(sf.address, timeout=5) for _ in range(10)]
        time.sleep(0.5)
        for c in late:
            if closed_by_peer(c.sock):
                refused += 1
            else:
                assert serves(c), "wave %d: a connection neither refused nor served" % wave
                held.append(c)
    assert refused >= 25
    assert serves(held[0])
    for c in held:
        c.close()
    time.sleep(0.3)
    assert fc.status_json(sf.address)["connections"]["refused"]["no_fds"] >= refused + 5
