"""A small FastCGI 1.0 client for tests, written from the specification.

It is deliberately independent of springfield's own codec so that the two
can disagree: records are encoded and decoded here with struct, following
the FastCGI 1.0 specification (record header, BeginRequestBody,
EndRequestBody, UnknownTypeBody, name-value pairs with 1- and 4-byte
lengths, padding).

Layers:
  encode_* / decode_*   pure functions on bytes
  RecordReader          incremental decoder: feed bytes, get Record objects
  Connection            a socket plus a RecordReader, with helpers to send
                        requests (whole, split into 1-byte writes, or raw)
                        and to collect responses per request id
"""

import select
import socket
import struct
import time
from dataclasses import dataclass, field

VERSION_1 = 1

BEGIN_REQUEST = 1
ABORT_REQUEST = 2
END_REQUEST = 3
PARAMS = 4
STDIN = 5
STDOUT = 6
STDERR = 7
DATA = 8
GET_VALUES = 9
GET_VALUES_RESULT = 10
UNKNOWN_TYPE = 11

RESPONDER = 1
AUTHORIZER = 2
FILTER = 3

KEEP_CONN = 1

REQUEST_COMPLETE = 0
CANT_MPX_CONN = 1
OVERLOADED = 2
UNKNOWN_ROLE = 3

HEADER_LEN = 8
MAX_CONTENT = 0xFFFF

_HEADER = struct.Struct(">BBHHBx")


class ProtocolError(Exception):
    """The peer sent bytes that are not valid FastCGI."""


# --------------------------------------------------------------------------
# encoding

def encode_record(rtype, request_id, content=b"", padding=None, version=VERSION_1):
    """One record. padding=None pads the content to a multiple of 8 (the
    spec's recommendation); an int gives that many padding bytes."""
    if len(content) > MAX_CONTENT:
        raise ValueError("record content over 65535 bytes")
    if padding is None:
        padding = (-len(content)) % 8
    return (_HEADER.pack(version, rtype, request_id, len(content), padding)
            + content + b"\0" * padding)


def encode_stream(rtype, request_id, data, chunk=MAX_CONTENT, terminate=True):
    """A stream (PARAMS, STDIN, STDOUT...) as records of at most `chunk`
    bytes, followed by the empty record that ends the stream."""
    out = []
    for i in range(0, len(data), chunk):
        out.append(encode_record(rtype, request_id, data[i:i + chunk]))
    if terminate:
        out.append(encode_record(rtype, request_id, b""))
    return b"".join(out)


def encode_length(n):
    if n < 0 or n > 0x7FFFFFFF:
        raise ValueError("name-value length out of range")
    if n < 128:
        return bytes([n])
    return struct.pack(">I", n | 0x80000000)


def _b(x):
    return x if isinstance(x, bytes) else str(x).encode("latin-1")


def encode_pairs(pairs):
    """Name-value pairs: a dict or an iterable of (name, value)."""
    if isinstance(pairs, dict):
        pairs = pairs.items()
    out = []
    for name, value in pairs:
        name, value = _b(name), _b(value)
        out.append(encode_length(len(name)) + encode_length(len(value)) + name + value)
    return b"".join(out)


def encode_begin(request_id, role=RESPONDER, flags=KEEP_CONN):
    return encode_record(BEGIN_REQUEST, request_id, struct.pack(">HB5x", role, flags))


def encode_abort(request_id):
    return encode_record(ABORT_REQUEST, request_id)


def encode_get_values(names):
    return encode_record(GET_VALUES, 0, encode_pairs((n, b"") for n in names))


def cgi_params(method, script_name, path_info="", query="", body_len=None,
               headers=None, extra=None):
    """The CGI/1.1 variables a front server would send for a request."""
    p = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "fcgi_client.py",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "REQUEST_URI": script_name + path_info + ("?" + query if query else ""),
    }
    if body_len is not None:
        p["CONTENT_LENGTH"] = str(body_len)
    for k, v in (headers or {}).items():
        p["HTTP_" + k.upper().replace("-", "_")] = v
    p.update(extra or {})
    return p


def encode_request(request_id, params, body=b"", role=RESPONDER, flags=KEEP_CONN):
    """BEGIN_REQUEST, PARAMS stream, STDIN stream: a complete request."""
    return (encode_begin(request_id, role, flags)
            + encode_stream(PARAMS, request_id, encode_pairs(params))
            + encode_stream(STDIN, request_id, body))


# --------------------------------------------------------------------------
# decoding

@dataclass
class Record:
    version: int
    type: int
    request_id: int
    content: bytes
    padding: int


def decode_length(buf, pos):
    if pos >= len(buf):
        raise ProtocolError("truncated name-value length")
    if buf[pos] < 128:
        return buf[pos], pos + 1
    if pos + 4 > len(buf):
        raise ProtocolError("truncated 4-byte name-value length")
    return struct.unpack_from(">I", buf, pos)[0] & 0x7FFFFFFF, pos + 4


def decode_pairs(buf):
    """Name-value pairs to a list of (name, value) bytes, in order."""
    pos, out = 0, []
    while pos < len(buf):
        nlen, pos = decode_length(buf, pos)
        vlen, pos = decode_length(buf, pos)
        if pos + nlen + vlen > len(buf):
            raise ProtocolError("name-value pair runs past the content")
        out.append((bytes(buf[pos:pos + nlen]), bytes(buf[pos + nlen:pos + nlen + vlen])))
        pos += nlen + vlen
    return out


def decode_end_request(content):
    if len(content) != 8:
        raise ProtocolError("END_REQUEST body is %d bytes, not 8" % len(content))
    app_status, protocol_status = struct.unpack(">IB3x", content)
    return app_status, protocol_status


def decode_unknown_type(content):
    if len(content) != 8:
        raise ProtocolError("UNKNOWN_TYPE body is %d bytes, not 8" % len(content))
    return content[0]


class RecordReader:
    """Incremental decoder: feed() any split of the stream, records() yields
    complete records in order."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data

    def records(self):
        while len(self.buf) >= HEADER_LEN:
            version, rtype, rid, clen, plen = _HEADER.unpack_from(self.buf, 0)
            if version != VERSION_1:
                raise ProtocolError("record version %d" % version)
            total = HEADER_LEN + clen + plen
            if len(self.buf) < total:
                return
            content = bytes(self.buf[HEADER_LEN:HEADER_LEN + clen])
            del self.buf[:total]
            yield Record(version, rtype, rid, content, plen)


@dataclass
class Response:
    """What came back for one request id."""
    request_id: int
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    stdout_closed: bool = False  # the empty STDOUT record was seen
    app_status: int = None
    protocol_status: int = None
    records: list = field(default_factory=list)  # (type, content) in order

    @property
    def ended(self):
        return self.protocol_status is not None

    def http(self):
        """Split STDOUT into (status, headers dict lower-cased, body) the way
        a front server would (CGI response: Status header, blank line)."""
        raw = bytes(self.stdout)
        sep = raw.find(b"\r\n\r\n")
        seplen = 4
        if sep < 0:
            sep = raw.find(b"\n\n")
            seplen = 2
        if sep < 0:
            raise ProtocolError("no end of headers in STDOUT: %r" % raw[:200])
        head, body = raw[:sep], raw[sep + seplen:]
        headers = {}
        for line in head.replace(b"\r\n", b"\n").split(b"\n"):
            if not line:
                continue
            k, _, v = line.partition(b":")
            headers[k.strip().decode("latin-1").lower()] = v.strip().decode("latin-1")
        status = int(headers.get("status", "200").split()[0])
        return status, headers, body


# --------------------------------------------------------------------------
# a connection

class Closed(Exception):
    """The server closed the connection."""


class Connection:
    """A FastCGI client connection to a unix socket path or (host, port)."""

    def __init__(self, address, timeout=10.0):
        self.timeout = timeout
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.reader = RecordReader()
        self.responses = {}      # request id -> Response
        self.management = []     # records with request id 0
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sending

    def send(self, data):
        self.sock.sendall(data)

    def send_bytewise(self, data, delay=0.0):
        """Send one byte per write (TCP_NODELAY makes no difference on unix
        sockets; each send() is its own write on the server's side unless
        the server is slower than us, so a small delay can force it)."""
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if delay:
                time.sleep(delay)

    def send_request(self, request_id, params, body=b"", role=RESPONDER, flags=KEEP_CONN):
        """A whole request; an earlier, finished response under the same id
        is forgotten so read_response() waits for the new one."""
        self.forget(request_id)
        self.send(encode_request(request_id, params, body, role, flags))

    def forget(self, request_id):
        self.responses.pop(request_id, None)

    # -- receiving

    def _fill(self, deadline):
        """Read once; returns False at EOF."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from FastCGI server within %.1fs" % self.timeout)
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no answer from FastCGI server within %.1fs" % self.timeout)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.reader.feed(data)
        for rec in self.reader.records():
            self._dispatch(rec)
        return True

    def _dispatch(self, rec):
        if rec.request_id == 0:
            self.management.append(rec)
            return
        r = self.responses.setdefault(rec.request_id, Response(rec.request_id))
        r.records.append((rec.type, rec.content))
        if rec.type == STDOUT:
            if rec.content:
                r.stdout += rec.content
            else:
                r.stdout_closed = True
        elif rec.type == STDERR:
            r.stderr += rec.content
        elif rec.type == END_REQUEST:
            r.app_status, r.protocol_status = decode_end_request(rec.content)

    def wait(self, predicate, timeout=None):
        """Read until predicate() is true. Raises Closed at EOF first."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not predicate():
            if self.eof or not self._fill(deadline):
                raise Closed("server closed the connection")
        return True

    def read_response(self, request_id, timeout=None):
        self.wait(lambda: request_id in self.responses and self.responses[request_id].ended,
                  timeout)
        return self.responses[request_id]

    def read_management(self, count=1, timeout=None):
        self.wait(lambda: len(self.management) >= count, timeout)
        return self.management[:count]

    def is_closed_by_peer(self, timeout=2.0):
        """True when the server closes the connection within `timeout`
        (records that arrive meanwhile are kept); False if it stays open."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() >= deadline:
                return False
            try:
                if not self._fill(deadline):
                    return True
            except TimeoutError:
                return False
        return True

    def still_open(self, wait=0.2):
        """Nothing arrived and no EOF within `wait` seconds."""
        if self.eof:
            return False
        r, _, _ = select.select([self.sock], [], [], wait)
        if not r:
            return True
        try:
            data = self.sock.recv(65536, socket.MSG_PEEK)
        except OSError:
            return False
        return bool(data)


def request(address, method, script_name, path_info="", body=b"", request_id=1,
            flags=KEEP_CONN, params=None, timeout=10.0):
    """One request on a fresh connection; returns the Response."""
    p = cgi_params(method, script_name, path_info, body_len=len(body))
    p.update(params or {})
    with Connection(address, timeout) as c:
        c.send_request(request_id, p, body, flags=flags)
        return c.read_response(request_id)


def status_json(address, path="/status", timeout=10.0):
    """springfield's --status-path page as JSON, straight from springfield
    on a connection of its own."""
    import json
    resp = request(address, "GET", path, params={"QUERY_STRING": "format=json"},
                   timeout=timeout)
    code, _, body = resp.http()
    if code != 200:
        raise AssertionError("status page: %s %r" % (code, body[:300]))
    return json.loads(body)
