"""Launcher for the MongoDB wire-protocol stand-in (tests/standins/mongo_standin.py).

Debian packages no mongod, so the homers tests run against the stand-in: a
real OP_MSG/BSON server in Python.  The launcher follows servers.py: child
process in the foreground, bounded readiness check (a real OP_MSG "ping"
answered with ok: 1), ServerError with the log tail when it does not come
up, stop by PID.

The first start binds port 0 and reads the port the stand-in chose from
its --port-file (no race with another process grabbing a port we picked);
every later start asks for that same port, so a springfield pointed at
.uri finds the restarted server where the old one was.  With persist=True
the stand-in keeps its data in DIR/data.json (rewritten after every write,
reloaded at start), so a restart keeps what was stored; fsync=True makes
it fsync the file before answering a write.
"""

import os
import socket
import struct
import sys

import servers

STANDIN = os.path.join(servers.REPO, "tests", "standins", "mongo_standin.py")
PYTHON = "/usr/bin/python3"

OP_MSG = 2013


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def op_msg_command(port, command, timeout=1.0):
    """Sends one command ({..., "$db": ...}) as an OP_MSG to 127.0.0.1:port and
    returns the reply document (a dict).  Raises OSError on any failure."""
    import bson  # python3-bson; imported here so servers.py users need not have it

    body = bson.BSON.encode(command)
    payload = struct.pack("<I", 0) + b"\x00" + body       # flagBits, section kind 0
    header = struct.pack("<iiii", 16 + len(payload), 1, 0, OP_MSG)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(header + payload)
        length, _, _, opcode = struct.unpack("<iiii", _recv_exact(s, 16))
        if opcode != OP_MSG or length < 16 + 5 + 5:
            raise OSError("unexpected reply: opcode %d, length %d" % (opcode, length))
        rest = _recv_exact(s, length - 16)
    if rest[4] != 0:
        raise OSError("reply section kind %d, expected 0" % rest[4])
    (doc_len,) = struct.unpack("<i", rest[5:9])
    try:
        return bson.BSON(rest[5:5 + doc_len]).decode()
    except Exception as e:  # bson.errors.InvalidBSON and friends
        raise OSError("reply is not BSON: %s" % e)


class MongoStandin(servers.Server):
    """The stand-in on 127.0.0.1; .port stays the same across restarts.

    persist: keep the data in DIR/data.json across restarts (default True),
             or pass data_file=PATH to choose the file; persist=False keeps
             the data in memory only (a restart starts empty).
    database: the database named in .uri (springfield's default database
             is "springfield").
    fsync:   with persistence, fsync the data file before a write is
             answered (--fsync), so acknowledged writes are on disk.
    """

    name = "mongo"

    def __init__(self, tmpdir, persist=True, data_file=None, database="springfield",
                 fsync=False):
        super().__init__(tmpdir)
        self.fsync = fsync
        self.port = None  # known after the first start
        self.port_file = os.path.join(self.dir, "port")
        if data_file is None and persist:
            data_file = os.path.join(self.dir, "data.json")
        self.data_file = data_file
        self.database = database

    @property
    def uri(self):
        if self.port is None:
            raise servers.ServerError("mongo stand-in: .uri asked before the first start")
        return "mongodb://127.0.0.1:%d/%s" % (self.port, self.database)

    def env(self):
        """What springfield needs to use this server."""
        return {"MONGODB_URI": self.uri}

    def write_config(self):
        # a port file left by the previous run must not pass for readiness
        for p in (self.port_file, self.port_file + ".tmp"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def command(self):
        if not os.path.exists(STANDIN):
            raise servers.ServerError("mongo stand-in %s is missing" % STANDIN)
        cmd = [PYTHON, "-B", STANDIN, "--port", str(self.port or 0),
               "--port-file", self.port_file]
        if self.data_file:
            cmd += ["--data-file", self.data_file]
            if self.fsync:
                cmd.append("--fsync")
        return cmd

    def environment(self):
        env = super().environment()
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def ready(self):
        try:
            with open(self.port_file) as f:
                port = int(f.read().strip())
        except (OSError, ValueError):
            return False
        if self.port is not None and port != self.port:
            # asked for self.port; anything else means the launcher is broken
            self.kill()
            raise servers.ServerError("mongo stand-in bound port %d, expected %d"
                                      % (port, self.port))
        try:
            reply = op_msg_command(port, {"ping": 1, "$db": "admin"})
        except OSError:
            return False
        if reply.get("ok") != 1:
            return False
        self.port = port
        return True

    def documents(self, collection="homers"):
        """Every document of database.collection, straight from the stand-in
        (a find over the wire, not through springfield)."""
        reply = op_msg_command(self.port, {"find": collection, "filter": {},
                                           "batchSize": 100000, "$db": self.database},
                               timeout=5.0)
        if reply.get("ok") != 1:
            raise AssertionError("find on the stand-in failed: %r" % (reply,))
        return list(reply["cursor"]["firstBatch"])

    def documents_on_disk(self, collection="homers"):
        """Every document of database.collection as the data file holds it
        now (not asking the server): what a restart would load."""
        import bson

        if not self.data_file:
            raise servers.ServerError("mongo stand-in: no data file (persist=False)")
        try:
            with open(self.data_file, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return []
        ns = "%s.%s" % (self.database, collection)
        for entry in bson.decode_all(raw):
            if entry["ns"] == ns:
                return list(entry["docs"])
        return []


if __name__ == "__main__":  # manual check: start, print the URI, stop on Enter
    import tempfile

    d = tempfile.mkdtemp(prefix="sf-mongo-")
    with MongoStandin(d) as m:
        sys.stdout.write("%s (pid %d, dir %s)\n" % (m.uri, m.pid, m.dir))
        sys.stdin.readline()
