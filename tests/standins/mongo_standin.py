#!/usr/bin/python3
"""MongoDB wire-protocol stand-in for springfield's integration tests.

Debian ships no mongod, so the integration tests talk to this small server
instead.  It speaks the real wire protocol with real BSON: OP_MSG (2013) for
commands, plus the legacy OP_QUERY (2004) / OP_REPLY (1) pair that drivers
still use for the first handshake.  It answers as a standalone primary
(no replica set, no compression, no auth, no topologyVersion, so drivers
poll it instead of streaming) and implements the commands the service and
its tests use: hello/isMaster, ping, buildInfo, find, getMore, killCursors,
insert, update, delete, count, aggregate ($match/$skip/$limit/$group count),
create, drop, dropDatabase, listCollections, listDatabases, createIndexes,
endSessions, getLastError.  Anything else gets CommandNotFound (59), as a
real server answers.

Data lives in memory per "db.collection", in insertion order, as decoded
BSON with a codec that round-trips every type (int32 stays int32, Int64
stays Int64, binary subtypes are kept), so what a client stores comes back
with the same BSON types.  With --data-file the whole store is rewritten
(write to a temporary file, then rename) after every write and reloaded at
start, so a restarted stand-in keeps its data; with --fsync as well the
data is on disk before a write is answered.

A malformed message is logged and its connection closed; the server keeps
serving the other connections (one thread per connection, one lock for the
data).

Usage:
    /usr/bin/python3 tests/standins/mongo_standin.py --port 0 \\
        --port-file FILE [--data-file PATH [--fsync]]

Only the Python 3 standard library and Debian's python3-bson (the `bson`
package of pymongo 3.11) are needed.  SIGTERM/SIGINT stop it (exit 0).
"""

import argparse
import datetime
import decimal
import math
import os
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import traceback

try:
    import bson
    from bson.binary import Binary, UuidRepresentation
    from bson.code import Code
    from bson.codec_options import CodecOptions
    from bson.decimal128 import Decimal128
    from bson.errors import BSONError
    from bson.int64 import Int64
    from bson.max_key import MaxKey
    from bson.min_key import MinKey
    from bson.objectid import ObjectId
    from bson.regex import Regex
    from bson.son import SON
    from bson.timestamp import Timestamp
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write("mongo_standin: needs python3-bson (%s)\n" % exc)
    sys.exit(2)

# Wire protocol constants.
OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
MSG_CHECKSUM_PRESENT = 1 << 0
MSG_MORE_TO_COME = 1 << 1
MSG_EXHAUST_ALLOWED = 1 << 16
# Bits 0-15 are "required": a receiver must reject unknown ones.
MSG_KNOWN_REQUIRED = MSG_CHECKSUM_PRESENT | MSG_MORE_TO_COME

MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48000000
MAX_WRITE_BATCH_SIZE = 100000
# libmongoc 1.23 (Debian 12) supports wire versions 6..17 (MongoDB 3.6..6.0);
# 17 is also what a MongoDB 6.0 server reports.
MIN_WIRE_VERSION = 0
MAX_WIRE_VERSION = 17
SERVER_VERSION = "6.0.0"

# Decoded documents keep their order (SON) and every binary subtype
# (UNSPECIFIED: subtypes 3 and 4 stay Binary instead of becoming uuid.UUID,
# which would be re-encoded with another subtype).
CODEC = CodecOptions(document_class=SON,
                     uuid_representation=UuidRepresentation.UNSPECIFIED)

# Fields a real server accepts on any command and that do not change what
# these commands do here.
GENERIC_FIELDS = ("$db", "lsid", "$clusterTime", "txnNumber",
                  "$readPreference", "readConcern", "writeConcern",
                  "autocommit", "startTransaction", "apiVersion",
                  "apiStrict", "apiDeprecationErrors", "comment",
                  "maxTimeMS", "$audit", "$client")


def log(msg):
    sys.stderr.write("mongo_standin: %s\n" % msg)
    sys.stderr.flush()


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid message: close it."""


class CommandError(Exception):
    """A command failed; becomes {ok: 0, errmsg, code, codeName}."""

    def __init__(self, code, code_name, errmsg):
        Exception.__init__(self, errmsg)
        self.code = code
        self.code_name = code_name
        self.errmsg = errmsg


def bad_value(msg):
    return CommandError(2, "BadValue", msg)


# --------------------------------------------------------------------------
# CRC-32C for OP_MSG checksums (the stdlib only has plain CRC-32).

def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --------------------------------------------------------------------------
# BSON value semantics: equality and ordering as MongoDB defines them
# (1 == 1.0 == Int64(1), but true != 1; null matches a missing field).

_MISSING = object()


def _is_number(v):
    return (isinstance(v, (int, float, Decimal128))
            and not isinstance(v, bool))


def _num(v):
    if isinstance(v, Decimal128):
        return v.to_decimal()
    return v


def value_key(v):
    """Hashable key; two BSON values are equal iff their keys are equal."""
    if v is None:
        return ("null",)
    if isinstance(v, bool):
        return ("bool", v)
    if _is_number(v):
        n = _num(v)
        if isinstance(n, float) and math.isnan(n):
            return ("num", "nan")
        if isinstance(n, decimal.Decimal) and n.is_nan():
            return ("num", "nan")
        return ("num", n)
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, dict):
        return ("doc", tuple((k, value_key(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("arr", tuple(value_key(x) for x in v))
    if isinstance(v, Binary):
        return ("bin", v.subtype, bytes(v))
    if isinstance(v, bytes):
        return ("bin", 0, v)
    if isinstance(v, ObjectId):
        return ("oid", v.binary)
    if isinstance(v, datetime.datetime):
        return ("date", v)
    if isinstance(v, Timestamp):
        return ("ts", v.time, v.inc)
    if isinstance(v, Regex):
        return ("regex", v.pattern, v.flags)
    if isinstance(v, Code):
        return ("code", str(v), value_key(v.scope) if v.scope else None)
    if isinstance(v, MinKey):
        return ("minkey",)
    if isinstance(v, MaxKey):
        return ("maxkey",)
    return ("other", type(v).__name__, repr(v))


# Canonical type order used by MongoDB for sorting and comparisons.
def _rank(v):
    if v is _MISSING or v is None:
        return 1
    if isinstance(v, MinKey):
        return 0
    if isinstance(v, bool):
        return 8
    if _is_number(v):
        return 2
    if isinstance(v, str):
        return 3
    if isinstance(v, dict):
        return 4
    if isinstance(v, list):
        return 5
    if isinstance(v, (Binary, bytes)):
        return 6
    if isinstance(v, ObjectId):
        return 7
    if isinstance(v, datetime.datetime):
        return 9
    if isinstance(v, Timestamp):
        return 10
    if isinstance(v, Regex):
        return 11
    if isinstance(v, MaxKey):
        return 127
    return 100


def order_key(v):
    """Sortable key following MongoDB's cross-type order."""
    r = _rank(v)
    if r == 2:
        n = _num(v)
        if isinstance(n, float) and math.isnan(n):
            return (r, float("-inf"), 0)      # NaN sorts below all numbers
        return (r, n, 1)
    if r == 3:
        return (r, v.encode("utf-8"))
    if r == 4:
        return (r, tuple((order_key(x)[0], k, order_key(x))
                         for k, x in v.items()))
    if r == 5:
        return (r, tuple(order_key(x) for x in v))
    if r == 6:
        sub = v.subtype if isinstance(v, Binary) else 0
        return (r, len(v), sub, bytes(v))
    if r == 7:
        return (r, v.binary)
    if r in (8, 9):
        return (r, v)
    if r == 10:
        return (r, v.time, v.inc)
    if r == 11:
        return (r, v.pattern, v.flags)
    return (r,)


def values_equal(a, b):
    return value_key(a) == value_key(b)


# --------------------------------------------------------------------------
# Documents: dotted paths, query matching, projection, updates.

def get_path(doc, path):
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        elif isinstance(cur, list) and part.isdigit():
            idx = int(part)
            cur = cur[idx] if idx < len(cur) else _MISSING
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def _candidates(value):
    """A field matches if the value or, for arrays, any element matches."""
    if isinstance(value, list):
        return [value] + list(value)
    return [value]


def _cmp_op(op, value, arg):
    for cand in _candidates(value):
        if cand is _MISSING or _rank(cand) != _rank(arg):
            continue
        a, b = order_key(cand), order_key(arg)
        if ((op == "$gt" and a > b) or (op == "$gte" and a >= b)
                or (op == "$lt" and a < b) or (op == "$lte" and a <= b)):
            return True
    return False


def _eq(value, arg):
    if value is _MISSING:
        return arg is None
    return any(values_equal(c, arg) for c in _candidates(value))


def _is_operator_doc(v):
    return (isinstance(v, dict) and len(v) > 0
            and next(iter(v)).startswith("$"))


def _match_field(value, cond):
    if not _is_operator_doc(cond):
        if isinstance(cond, Regex):
            return _match_field(value, {"$regex": cond})
        return _eq(value, cond)
    for op, arg in cond.items():
        if op == "$eq":
            ok = _eq(value, arg)
        elif op == "$ne":
            ok = not _eq(value, arg)
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            ok = _cmp_op(op, value, arg)
        elif op == "$in":
            if not isinstance(arg, list):
                raise bad_value("$in needs an array")
            ok = any(_eq(value, a) for a in arg)
        elif op == "$nin":
            if not isinstance(arg, list):
                raise bad_value("$nin needs an array")
            ok = not any(_eq(value, a) for a in arg)
        elif op == "$exists":
            ok = (value is not _MISSING) == bool(arg)
        elif op == "$not":
            ok = not _match_field(value, arg)
        elif op == "$regex":
            pat = arg.pattern if isinstance(arg, Regex) else arg
            if not isinstance(pat, str):
                raise bad_value("$regex has to be a string")
            flags = arg.flags if isinstance(arg, Regex) else 0
            for letter, bit in (("i", re.IGNORECASE), ("m", re.MULTILINE),
                                ("s", re.DOTALL)):
                if letter in str(cond.get("$options", "")):
                    flags |= bit
            flags &= re.IGNORECASE | re.MULTILINE | re.DOTALL
            try:
                rx = re.compile(pat, flags)
            except re.error as exc:
                raise bad_value("invalid regex: %s" % exc)
            ok = any(isinstance(c, str) and rx.search(c)
                     for c in _candidates(value))
        elif op == "$options":
            ok = True
        else:
            raise bad_value("unknown operator: %s" % op)
        if not ok:
            return False
    return True


def matches(doc, query):
    for key, cond in query.items():
        if key == "$and" or key == "$or" or key == "$nor":
            if not isinstance(cond, list) or not cond:
                raise bad_value("%s must be a nonempty array" % key)
            results = [matches(doc, q) for q in cond]
            if key == "$and" and not all(results):
                return False
            if key == "$or" and not any(results):
                return False
            if key == "$nor" and any(results):
                return False
        elif key == "$comment":
            continue
        elif key.startswith("$"):
            raise bad_value("unknown top level operator: %s" % key)
        elif not _match_field(get_path(doc, key), cond):
            return False
    return True


def project(doc, projection):
    if not projection:
        return doc
    include_id = True
    fields = []
    mode = None
    for key, val in projection.items():
        on = bool(val) if not isinstance(val, dict) else True
        if key == "_id":
            include_id = on
            continue
        if mode is None:
            mode = on
        elif mode != on:
            raise CommandError(31254, "Location31254",
                               "Cannot do exclusion on field %s in "
                               "inclusion projection" % key)
        fields.append(key)
    top = set(f.split(".")[0] for f in fields)
    out = SON()
    for key, val in doc.items():
        if key == "_id":
            if include_id:
                out[key] = val
        elif mode is None:
            out[key] = val
        elif mode and key in top:
            out[key] = val
        elif not mode and key not in top:
            out[key] = val
    return out


def _set_path(doc, path, value, create=True):
    parts = path.split(".")
    cur = doc
    for part in parts[:-1]:
        if isinstance(cur, list) and part.isdigit():
            idx = int(part)
            while len(cur) <= idx:
                cur.append(None)
            if not isinstance(cur[idx], (dict, list)):
                cur[idx] = SON()
            cur = cur[idx]
            continue
        if not isinstance(cur, dict):
            raise CommandError(28, "PathNotViable",
                               "Cannot create field in element")
        nxt = cur.get(part, _MISSING)
        if nxt is _MISSING or nxt is None:
            if not create:
                return
            nxt = SON()
            cur[part] = nxt
        elif not isinstance(nxt, (dict, list)):
            raise CommandError(28, "PathNotViable",
                               "Cannot create field '%s' in element" % part)
        cur = nxt
    last = parts[-1]
    if isinstance(cur, list) and last.isdigit():
        idx = int(last)
        while len(cur) <= idx:
            cur.append(None)
        cur[idx] = value
    elif isinstance(cur, dict):
        cur[last] = value
    else:
        raise CommandError(28, "PathNotViable", "Cannot set field")


def _unset_path(doc, path):
    parts = path.split(".")
    parent = get_path(doc, ".".join(parts[:-1])) if len(parts) > 1 else doc
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)
    elif isinstance(parent, list) and parts[-1].isdigit():
        idx = int(parts[-1])
        if idx < len(parent):
            parent[idx] = None


def _copy(v):
    if isinstance(v, dict):
        return SON((k, _copy(x)) for k, x in v.items())
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _add(a, b):
    if isinstance(a, Decimal128) or isinstance(b, Decimal128):
        return Decimal128(_num(a) + _num(b))
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b)
    total = int(a) + int(b)
    if isinstance(a, Int64) or isinstance(b, Int64) \
            or not -2**31 <= total < 2**31:
        return Int64(total)
    return total


def apply_operators(doc, update, inserting):
    for op, fields in update.items():
        if not isinstance(fields, dict):
            raise CommandError(9, "FailedToParse",
                               "Modifiers operate on fields but we found "
                               "another type instead for %s" % op)
        for path, arg in fields.items():
            if path == "_id" or path.startswith("_id."):
                if op not in ("$set", "$setOnInsert") or (
                        "_id" in doc and not values_equal(
                            get_path(doc, path), arg)):
                    raise CommandError(66, "ImmutableField",
                                       "Performing an update on the path "
                                       "'_id' would modify the immutable "
                                       "field '_id'")
            if op == "$set":
                _set_path(doc, path, _copy(arg))
            elif op == "$setOnInsert":
                if inserting:
                    _set_path(doc, path, _copy(arg))
            elif op == "$unset":
                _unset_path(doc, path)
            elif op == "$inc":
                if not _is_number(arg):
                    raise CommandError(14, "TypeMismatch",
                                       "Cannot increment with non-numeric "
                                       "argument")
                cur = get_path(doc, path)
                if cur is _MISSING:
                    _set_path(doc, path, arg)
                elif not _is_number(cur):
                    raise CommandError(14, "TypeMismatch",
                                       "Cannot apply $inc to a value of "
                                       "non-numeric type")
                else:
                    _set_path(doc, path, _add(cur, arg))
            elif op == "$push":
                cur = get_path(doc, path)
                items = [arg]
                if isinstance(arg, dict) and "$each" in arg:
                    items = list(arg["$each"])
                if cur is _MISSING:
                    _set_path(doc, path, [_copy(x) for x in items])
                elif isinstance(cur, list):
                    cur.extend(_copy(x) for x in items)
                else:
                    raise CommandError(2, "BadValue",
                                       "The field '%s' must be an array"
                                       % path)
            else:
                raise CommandError(9, "FailedToParse",
                                   "Unknown modifier: %s. Expected a valid "
                                   "update modifier or pipeline-style update "
                                   "specified as an array" % op)


def _id_first(doc):
    if "_id" not in doc or next(iter(doc)) == "_id":
        return doc
    out = SON([("_id", doc["_id"])])
    for k, v in doc.items():
        if k != "_id":
            out[k] = v
    return out


def _equality_seed(query):
    """The fields an upsert copies from its query (equality conditions)."""
    seed = SON()
    for key, cond in query.items():
        if key.startswith("$"):
            if key == "$and" and isinstance(cond, list):
                for sub in cond:
                    if isinstance(sub, dict):
                        for k, v in _equality_seed(sub).items():
                            _set_path(seed, k, v)
            continue
        if _is_operator_doc(cond):
            if "$eq" in cond:
                _set_path(seed, key, _copy(cond["$eq"]))
            continue
        if isinstance(cond, Regex):
            continue
        _set_path(seed, key, _copy(cond))
    return seed


# --------------------------------------------------------------------------
# The store.

class Store(object):
    def __init__(self, data_file, fsync=False):
        self.lock = threading.Lock()
        self.colls = {}              # "db.coll" -> list of SON documents
        self.data_file = data_file
        self.fsync = fsync
        if data_file and os.path.exists(data_file):
            self._load()

    def _load(self):
        with open(self.data_file, "rb") as f:
            raw = f.read()
        try:
            entries = bson.decode_all(raw, CODEC)
        except (BSONError, ValueError) as exc:
            raise SystemExit("mongo_standin: cannot read data file %s: %s"
                             % (self.data_file, exc))
        for entry in entries:
            self.colls[entry["ns"]] = list(entry["docs"])
        log("loaded %d collection(s) from %s" %
            (len(self.colls), self.data_file))

    def persist(self):
        """Called with the lock held after every write, before it is
        answered."""
        if not self.data_file:
            return
        tmp = self.data_file + ".tmp"
        with open(tmp, "wb") as f:
            for ns, docs in self.colls.items():
                f.write(bson.encode(SON([("ns", ns), ("docs", docs)]),
                                    codec_options=CODEC))
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        # Written and closed before the rename, which is atomic: a kill of
        # this process, even SIGKILL mid-write, leaves the old file or the
        # new one whole, and what the kernel has is not lost with the
        # process.  Without --fsync a machine crash could still lose it
        # (fsync per write would throttle the tests that do not need it).
        os.replace(tmp, self.data_file)
        if self.fsync:
            # the rename itself is on disk only once the directory is
            dfd = os.open(os.path.dirname(os.path.abspath(self.data_file)),
                          os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def _encoded_size(doc):
    return len(bson.encode(doc, codec_options=CODEC))


def _coll_name(body, cmd):
    name = body[cmd]
    if not isinstance(name, str) or not name:
        raise CommandError(73, "InvalidNamespace",
                           "collection name has invalid type %s"
                           % type(name).__name__)
    return name


def _opt_doc(body, field, default=None):
    v = body.get(field, default)
    if v is None:
        return default
    if not isinstance(v, dict):
        raise CommandError(14, "TypeMismatch",
                           "BSON field '%s' is the wrong type" % field)
    return v


class Server(object):
    def __init__(self, store):
        self.store = store
        self.conn_counter = 0
        self.counter_lock = threading.Lock()

    def next_conn_id(self):
        with self.counter_lock:
            self.conn_counter += 1
            return self.conn_counter

    # ---- dispatch --------------------------------------------------------

    def run_command(self, conn_id, db, body, opname):
        """Returns (reply document, log summary)."""
        cmd = next(iter(body)) if body else ""
        handler = self.COMMANDS.get(cmd)
        summary = ""
        try:
            if handler is None:
                raise CommandError(59, "CommandNotFound",
                                   "no such command: '%s'" % cmd)
            reply, summary = handler(self, conn_id, db, cmd, body)
            reply["ok"] = 1.0
        except CommandError as exc:
            reply = SON([("ok", 0.0), ("errmsg", exc.errmsg),
                         ("code", exc.code), ("codeName", exc.code_name)])
            summary = "error %d %s" % (exc.code, exc.errmsg)
        log("conn=%d %s db=%s cmd=%s %s" % (conn_id, opname, db,
                                            cmd or "(empty)", summary))
        return reply

    # ---- handshake and diagnostics --------------------------------------

    def cmd_hello(self, conn_id, db, cmd, body):
        reply = SON()
        if body.get("helloOk"):
            reply["helloOk"] = True
        if cmd == "hello":
            reply["isWritablePrimary"] = True
        else:
            reply["ismaster"] = True
        reply["maxBsonObjectSize"] = MAX_BSON_OBJECT_SIZE
        reply["maxMessageSizeBytes"] = MAX_MESSAGE_SIZE
        reply["maxWriteBatchSize"] = MAX_WRITE_BATCH_SIZE
        reply["localTime"] = datetime.datetime.now(datetime.timezone.utc)
        reply["logicalSessionTimeoutMinutes"] = 30
        reply["connectionId"] = conn_id
        reply["minWireVersion"] = MIN_WIRE_VERSION
        reply["maxWireVersion"] = MAX_WIRE_VERSION
        reply["readOnly"] = False
        summary = "-> standalone primary"
        client = body.get("client")
        if isinstance(client, dict) and isinstance(client.get("driver"), dict):
            summary += " (handshake from %s %s, compression asked: %s)" % (
                client["driver"].get("name"), client["driver"].get("version"),
                list(body.get("compression", [])))
        return reply, summary

    def cmd_ping(self, conn_id, db, cmd, body):
        return SON(), ""

    def cmd_build_info(self, conn_id, db, cmd, body):
        return SON([("version", SERVER_VERSION),
                    ("gitVersion", "mongo_standin"),
                    ("versionArray", [6, 0, 0, 0]),
                    ("bits", 64), ("debug", False),
                    ("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE),
                    ("storageEngines", ["memory"])]), ""

    def cmd_get_last_error(self, conn_id, db, cmd, body):
        return SON([("n", 0), ("err", None)]), ""

    def cmd_end_sessions(self, conn_id, db, cmd, body):
        return SON(), ""

    # ---- reads -----------------------------------------------------------

    def _select(self, ns, query, sort=None, skip=0, limit=0):
        docs = [d for d in self.store.colls.get(ns, []) if matches(d, query)]
        if sort:
            for key, direction in reversed(list(sort.items())):
                docs.sort(key=lambda d, k=key: order_key(get_path(d, k)),
                          reverse=(direction == -1 or direction == -1.0))
        if skip:
            docs = docs[skip:]
        if limit:
            docs = docs[:limit]
        return docs

    def cmd_find(self, conn_id, db, cmd, body):
        coll = _coll_name(body, cmd)
        ns = "%s.%s" % (db, coll)
        query = _opt_doc(body, "filter", SON())
        projection = _opt_doc(body, "projection")
        sort = _opt_doc(body, "sort")
        skip = int(body.get("skip", 0) or 0)
        limit = int(body.get("limit", 0) or 0)
        if skip < 0:
            raise bad_value("skip value must be non-negative")
        limit = abs(limit)         # negative limit: single batch (legacy)
        with self.store.lock:
            docs = self._select(ns, query, sort, skip, limit)
            batch = [_copy(project(d, projection)) for d in docs]
        # Everything goes in the first batch; cursor id 0 = exhausted.
        cursor = SON([("firstBatch", batch), ("id", Int64(0)), ("ns", ns)])
        return SON([("cursor", cursor)]), "ns=%s filter=%s -> %d doc(s)" % (
            ns, dict(query), len(batch))

    def cmd_get_more(self, conn_id, db, cmd, body):
        coll = body.get("collection", "")
        ns = "%s.%s" % (db, coll)
        cursor = SON([("nextBatch", []), ("id", Int64(0)), ("ns", ns)])
        return SON([("cursor", cursor)]), "ns=%s (no open cursors)" % ns

    def cmd_kill_cursors(self, conn_id, db, cmd, body):
        ids = body.get("cursors", [])
        return SON([("cursorsKilled", []), ("cursorsNotFound", ids),
                    ("cursorsAlive", []), ("cursorsUnknown", [])]), ""

    def cmd_count(self, conn_id, db, cmd, body):
        ns = "%s.%s" % (db, _coll_name(body, cmd))
        query = _opt_doc(body, "query", SON())
        with self.store.lock:
            n = len(self._select(ns, query, None,
                                 int(body.get("skip", 0) or 0),
                                 abs(int(body.get("limit", 0) or 0))))
        return SON([("n", n)]), "ns=%s -> %d" % (ns, n)

    def cmd_aggregate(self, conn_id, db, cmd, body):
        """Only what count_documents needs: $match, $skip, $limit and a
        $group with a constant _id and {$sum: 1 | <number>}."""
        ns = "%s.%s" % (db, _coll_name(body, cmd))
        pipeline = body.get("pipeline")
        if not isinstance(pipeline, list):
            raise CommandError(14, "TypeMismatch",
                               "'pipeline' option must be an array")
        with self.store.lock:
            docs = [_copy(d) for d in self.store.colls.get(ns, [])]
        for stage in pipeline:
            if not isinstance(stage, dict) or len(stage) != 1:
                raise CommandError(40323, "Location40323",
                                   "A pipeline stage specification object "
                                   "must contain exactly one field.")
            name, arg = next(iter(stage.items()))
            if name == "$match":
                docs = [d for d in docs if matches(d, arg)]
            elif name == "$skip":
                docs = docs[int(arg):]
            elif name == "$limit":
                docs = docs[:int(arg)]
            elif name == "$group" and isinstance(arg, dict) \
                    and not isinstance(arg.get("_id"), (str, dict)):
                out = SON([("_id", arg.get("_id"))])
                for field, acc in arg.items():
                    if field == "_id":
                        continue
                    if not (isinstance(acc, dict) and "$sum" in acc
                            and _is_number(acc["$sum"])):
                        raise bad_value("unsupported accumulator in stand-in")
                    out[field] = _num(acc["$sum"]) * len(docs)
                docs = [out] if docs else []
            else:
                raise bad_value("stage %s is not supported by the stand-in"
                                % name)
        cursor = SON([("firstBatch", docs), ("id", Int64(0)), ("ns", ns)])
        return SON([("cursor", cursor)]), "ns=%s -> %d doc(s)" % (
            ns, len(docs))

    def cmd_list_collections(self, conn_id, db, cmd, body):
        prefix = db + "."
        with self.store.lock:
            names = [ns[len(prefix):] for ns in self.store.colls
                     if ns.startswith(prefix)]
        batch = [SON([("name", n), ("type", "collection"),
                      ("options", SON()), ("info", SON([("readOnly", False)]))])
                 for n in names]
        cursor = SON([("firstBatch", batch), ("id", Int64(0)),
                      ("ns", "%s.$cmd.listCollections" % db)])
        return SON([("cursor", cursor)]), "-> %d" % len(batch)

    def cmd_list_databases(self, conn_id, db, cmd, body):
        with self.store.lock:
            dbs = sorted(set(ns.split(".", 1)[0] for ns in self.store.colls))
        out = [SON([("name", d), ("sizeOnDisk", 0), ("empty", False)])
               for d in dbs]
        return SON([("databases", out), ("totalSize", 0)]), ""

    # ---- writes ----------------------------------------------------------

    def _persist(self):
        try:
            self.store.persist()
        except OSError as exc:
            raise CommandError(1, "InternalError",
                               "stand-in could not persist: %s" % exc)

    def cmd_create(self, conn_id, db, cmd, body):
        ns = "%s.%s" % (db, _coll_name(body, cmd))
        with self.store.lock:
            if ns in self.store.colls:
                raise CommandError(48, "NamespaceExists",
                                   "Collection %s already exists." % ns)
            self.store.colls[ns] = []
            self._persist()
        return SON(), "ns=%s" % ns

    def cmd_drop(self, conn_id, db, cmd, body):
        ns = "%s.%s" % (db, _coll_name(body, cmd))
        with self.store.lock:
            if ns not in self.store.colls:
                raise CommandError(26, "NamespaceNotFound", "ns not found")
            del self.store.colls[ns]
            self._persist()
        return SON([("ns", ns), ("nIndexesWas", 1)]), "ns=%s" % ns

    def cmd_drop_database(self, conn_id, db, cmd, body):
        with self.store.lock:
            for ns in [n for n in self.store.colls
                       if n.startswith(db + ".")]:
                del self.store.colls[ns]
            self._persist()
        return SON([("dropped", db)]), ""

    def cmd_create_indexes(self, conn_id, db, cmd, body):
        ns = "%s.%s" % (db, _coll_name(body, cmd))
        with self.store.lock:
            created = ns not in self.store.colls
            self.store.colls.setdefault(ns, [])
            self._persist()
        # Indexes are accepted and ignored (uniqueness is only kept for _id).
        return SON([("createdCollectionAutomatically", created),
                    ("numIndexesBefore", 1), ("numIndexesAfter", 1)]), \
            "ns=%s (accepted, not enforced)" % ns

    def _write_docs(self, body, name):
        docs = body.get(name)
        if not isinstance(docs, list):
            raise CommandError(40414, "Location40414",
                               "BSON field '%s' is missing but a required "
                               "field" % name)
        if len(docs) > MAX_WRITE_BATCH_SIZE:
            raise CommandError(10334, "InvalidLength",
                               "Write batch sizes must be between 1 and %d"
                               % MAX_WRITE_BATCH_SIZE)
        return docs

    @staticmethod
    def _has_id(coll, _id):
        key = value_key(_id)
        return any(value_key(d.get("_id")) == key for d in coll)

    def cmd_insert(self, conn_id, db, cmd, body):
        ns = "%s.%s" % (db, _coll_name(body, cmd))
        docs = self._write_docs(body, "documents")
        ordered = body.get("ordered", True)
        n = 0
        errors = []
        with self.store.lock:
            coll = self.store.colls.setdefault(ns, [])
            for i, doc in enumerate(docs):
                if not isinstance(doc, dict):
                    errors.append(SON([("index", i), ("code", 2),
                                       ("errmsg", "document is not an object")]))
                else:
                    doc = _copy(doc)
                    if "_id" not in doc:
                        doc["_id"] = ObjectId()
                    doc = _id_first(doc)
                    if self._has_id(coll, doc["_id"]):
                        errors.append(SON([
                            ("index", i), ("code", 11000),
                            ("keyPattern", SON([("_id", 1)])),
                            ("keyValue", SON([("_id", doc["_id"])])),
                            ("errmsg", "E11000 duplicate key error collection:"
                             " %s index: _id_ dup key: { _id: %r }"
                             % (ns, doc["_id"]))]))
                    else:
                        coll.append(doc)
                        n += 1
                        continue
                if ordered:
                    break
            if n:
                self._persist()
        reply = SON([("n", n)])
        if errors:
            reply["writeErrors"] = errors
        return reply, "ns=%s -> n=%d errors=%d" % (ns, n, len(errors))

    def _update_one_spec(self, coll, index, spec):
        """Applies one update statement; returns (n, nModified, upserted)."""
        if not isinstance(spec, dict):
            raise bad_value("update statement is not an object")
        query = spec.get("q", SON())
        update = spec.get("u")
        if not isinstance(query, dict):
            raise CommandError(14, "TypeMismatch", "q must be an object")
        if isinstance(update, list):
            raise bad_value("pipeline-style updates are not supported "
                            "by the stand-in")
        if not isinstance(update, dict):
            raise CommandError(14, "TypeMismatch", "u must be an object")
        upsert = bool(spec.get("upsert", False))
        multi = bool(spec.get("multi", False))
        keys = list(update.keys())
        is_ops = bool(keys) and keys[0].startswith("$")
        if is_ops and not all(k.startswith("$") for k in keys):
            raise CommandError(9, "FailedToParse",
                               "Unknown modifier: %s" %
                               [k for k in keys if not k.startswith("$")][0])
        if not is_ops:
            for k in keys:
                if k.startswith("$"):
                    raise CommandError(52, "DollarPrefixedFieldName",
                                       "The dollar ($) prefixed field '%s' "
                                       "is not valid for storage." % k)
            if multi:
                raise CommandError(9, "FailedToParse",
                                   "multi update is not supported for "
                                   "replacement-style update")

        targets = [i for i, d in enumerate(coll) if matches(d, query)]
        if not multi:
            targets = targets[:1]
        if targets:
            modified = 0
            for i in targets:
                old = coll[i]
                if is_ops:
                    new = _copy(old)
                    apply_operators(new, update, inserting=False)
                else:
                    new = SON([("_id", old["_id"])])
                    for k, v in update.items():
                        if k == "_id":
                            if not values_equal(v, old["_id"]):
                                raise CommandError(
                                    66, "ImmutableField",
                                    "After applying the update, the "
                                    "(immutable) field '_id' was found to "
                                    "have been altered to _id: %r" % (v,))
                            continue
                        new[k] = _copy(v)
                if _encoded_size(new) > MAX_BSON_OBJECT_SIZE:
                    raise CommandError(17419, "Location17419",
                                       "Resulting document after update is "
                                       "larger than %d" % MAX_BSON_OBJECT_SIZE)
                if bson.encode(new, codec_options=CODEC) != \
                        bson.encode(old, codec_options=CODEC):
                    coll[i] = new
                    modified += 1
            return len(targets), modified, None
        if not upsert:
            return 0, 0, None
        if is_ops:
            new = _equality_seed(query)
            apply_operators(new, update, inserting=True)
        else:
            new = SON((k, _copy(v)) for k, v in update.items())
            if "_id" not in new:
                seed = _equality_seed(query)
                if "_id" in seed:
                    new["_id"] = seed["_id"]
        if "_id" not in new:
            new["_id"] = ObjectId()
        new = _id_first(new)
        if self._has_id(coll, new["_id"]):
            raise CommandError(11000, "DuplicateKey",
                               "E11000 duplicate key error index: _id_")
        coll.append(new)
        return 1, 0, SON([("index", index), ("_id", new["_id"])])

    def cmd_update(self, conn_id, db, cmd, body):
        ns = "%s.%s" % (db, _coll_name(body, cmd))
        specs = self._write_docs(body, "updates")
        ordered = body.get("ordered", True)
        n = modified = 0
        upserted = []
        errors = []
        with self.store.lock:
            coll = self.store.colls.setdefault(ns, [])
            for i, spec in enumerate(specs):
                try:
                    dn, dm, up = self._update_one_spec(coll, i, spec)
                except CommandError as exc:
                    errors.append(SON([("index", i), ("code", exc.code),
                                       ("errmsg", exc.errmsg)]))
                    if ordered:
                        break
                    continue
                n += dn
                modified += dm
                if up is not None:
                    upserted.append(up)
            if n:
                self._persist()
        reply = SON([("n", n), ("nModified", modified)])
        if upserted:
            reply["upserted"] = upserted
        if errors:
            reply["writeErrors"] = errors
        return reply, "ns=%s -> n=%d nModified=%d upserted=%d errors=%d" % (
            ns, n, modified, len(upserted), len(errors))

    def cmd_delete(self, conn_id, db, cmd, body):
        ns = "%s.%s" % (db, _coll_name(body, cmd))
        specs = self._write_docs(body, "deletes")
        ordered = body.get("ordered", True)
        n = 0
        errors = []
        with self.store.lock:
            coll = self.store.colls.get(ns, [])
            for i, spec in enumerate(specs):
                try:
                    if not isinstance(spec, dict) or \
                            not isinstance(spec.get("q"), dict):
                        raise CommandError(40414, "Location40414",
                                           "BSON field 'delete.deletes.q' is "
                                           "missing but a required field")
                    limit = spec.get("limit", 0)
                    if limit not in (0, 1):
                        raise CommandError(9, "FailedToParse",
                                           "The limit field in delete objects "
                                           "must be 0 or 1. Got %r" % limit)
                    hits = [j for j, d in enumerate(coll)
                            if matches(d, spec["q"])]
                except CommandError as exc:
                    errors.append(SON([("index", i), ("code", exc.code),
                                       ("errmsg", exc.errmsg)]))
                    if ordered:
                        break
                    continue
                if limit == 1:
                    hits = hits[:1]
                for j in reversed(hits):
                    del coll[j]
                n += len(hits)
            if n:
                self._persist()
        reply = SON([("n", n)])
        if errors:
            reply["writeErrors"] = errors
        return reply, "ns=%s -> n=%d errors=%d" % (ns, n, len(errors))

    COMMANDS = {
        "hello": cmd_hello, "isMaster": cmd_hello, "ismaster": cmd_hello,
        "ping": cmd_ping,
        "buildInfo": cmd_build_info, "buildinfo": cmd_build_info,
        "getLastError": cmd_get_last_error,
        "getlasterror": cmd_get_last_error,
        "endSessions": cmd_end_sessions,
        "find": cmd_find, "getMore": cmd_get_more,
        "killCursors": cmd_kill_cursors,
        "count": cmd_count, "aggregate": cmd_aggregate,
        "listCollections": cmd_list_collections,
        "listDatabases": cmd_list_databases,
        "insert": cmd_insert, "update": cmd_update, "delete": cmd_delete,
        "create": cmd_create, "drop": cmd_drop,
        "dropDatabase": cmd_drop_database,
        "createIndexes": cmd_create_indexes,
    }


# --------------------------------------------------------------------------
# Wire protocol.

def _decode_doc(buf, pos, end):
    """Decodes one BSON document at buf[pos:end]; returns (doc, new pos)."""
    if end - pos < 5:
        raise ProtocolError("truncated BSON document")
    size = struct.unpack_from("<i", buf, pos)[0]
    if size < 5 or pos + size > end:
        raise ProtocolError("BSON document length %d out of bounds" % size)
    try:
        doc = bson.decode(bytes(buf[pos:pos + size]), codec_options=CODEC)
    except (BSONError, ValueError, OverflowError) as exc:
        raise ProtocolError("invalid BSON: %s" % exc)
    return doc, pos + size


def _cstring(buf, pos, end):
    nul = buf.find(b"\x00", pos, end)
    if nul < 0:
        raise ProtocolError("unterminated cstring")
    try:
        return bytes(buf[pos:nul]).decode("utf-8"), nul + 1
    except UnicodeDecodeError:
        raise ProtocolError("cstring is not UTF-8")


def parse_op_msg(payload):
    """payload: the bytes after the 16-byte header.  Returns (flags, body)
    with kind-1 document sequences merged into the body."""
    if len(payload) < 5:
        raise ProtocolError("OP_MSG too short")
    flags = struct.unpack_from("<I", payload, 0)[0]
    unknown = flags & 0xFFFF & ~MSG_KNOWN_REQUIRED
    if unknown:
        raise ProtocolError("OP_MSG has unknown required flag bits 0x%x"
                            % unknown)
    end = len(payload)
    if flags & MSG_CHECKSUM_PRESENT:
        end -= 4
        if end < 5:
            raise ProtocolError("OP_MSG too short for its checksum")
    pos = 4
    body = None
    sequences = []
    while pos < end:
        kind = payload[pos]
        pos += 1
        if kind == 0:
            if body is not None:
                raise ProtocolError("OP_MSG has more than one body section")
            body, pos = _decode_doc(payload, pos, end)
        elif kind == 1:
            if end - pos < 4:
                raise ProtocolError("truncated document sequence")
            size = struct.unpack_from("<i", payload, pos)[0]
            seq_end = pos + size
            if size < 5 or seq_end > end:
                raise ProtocolError("document sequence size %d out of bounds"
                                    % size)
            ident, p = _cstring(payload, pos + 4, seq_end)
            docs = []
            while p < seq_end:
                doc, p = _decode_doc(payload, p, seq_end)
                docs.append(doc)
            sequences.append((ident, docs))
            pos = seq_end
        else:
            raise ProtocolError("OP_MSG section kind %d is unknown" % kind)
    if body is None:
        raise ProtocolError("OP_MSG has no body section")
    return flags, body, sequences


def build_op_msg(request_id, response_to, doc):
    payload = struct.pack("<I", 0) + b"\x00" + \
        bson.encode(doc, codec_options=CODEC)
    return struct.pack("<iiii", 16 + len(payload), request_id,
                       response_to, OP_MSG) + payload


def build_op_reply(request_id, response_to, doc, flags=0):
    payload = struct.pack("<iqii", flags, 0, 0, 1) + \
        bson.encode(doc, codec_options=CODEC)
    return struct.pack("<iiii", 16 + len(payload), request_id,
                       response_to, OP_REPLY) + payload


class Handler(socketserver.BaseRequestHandler):
    """One thread per client connection."""

    def setup(self):
        self.app = self.server.app
        self.conn_id = self.app.next_conn_id()
        self.next_request_id = 1
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _recv_exact(self, n, allow_eof=False):
        chunks = []
        got = 0
        while got < n:
            chunk = self.request.recv(min(n - got, 1 << 20))
            if not chunk:
                if allow_eof and got == 0:
                    return None
                raise ProtocolError("peer closed in the middle of a message")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def handle(self):
        try:
            while True:
                header = self._recv_exact(16, allow_eof=True)
                if header is None:
                    return
                length, request_id, _, opcode = struct.unpack("<iiii", header)
                if length < 16 or length > MAX_MESSAGE_SIZE:
                    raise ProtocolError("message length %d out of range"
                                        % length)
                payload = self._recv_exact(length - 16)
                reply = self.dispatch(request_id, opcode, header, payload)
                if reply is not None:
                    self.request.sendall(reply)
        except ProtocolError as exc:
            log("conn=%d malformed message, closing: %s" % (self.conn_id, exc))
        except (ConnectionError, OSError) as exc:
            log("conn=%d connection error: %s" % (self.conn_id, exc))

    def _reply_id(self):
        rid = self.next_request_id
        self.next_request_id += 1
        return rid

    def dispatch(self, request_id, opcode, header, payload):
        if opcode == OP_MSG:
            flags, body, sequences = parse_op_msg(payload)
            if flags & MSG_CHECKSUM_PRESENT:
                want = struct.unpack_from("<I", payload, len(payload) - 4)[0]
                if crc32c(header + payload[:-4]) != want:
                    raise ProtocolError("OP_MSG checksum mismatch")
            db = body.get("$db")
            if not isinstance(db, str) or not db:
                reply = SON([("ok", 0.0),
                             ("errmsg", "OP_MSG requests require a $db "
                              "argument"),
                             ("code", 40571), ("codeName", "Location40571")])
                log("conn=%d OP_MSG without $db" % self.conn_id)
            else:
                for ident, docs in sequences:
                    if ident in body:
                        raise ProtocolError("document sequence '%s' "
                                            "duplicates a body field" % ident)
                    body[ident] = docs
                reply = self.app.run_command(self.conn_id, db, body, "OP_MSG")
            if flags & MSG_MORE_TO_COME:
                return None            # fire-and-forget (w:0): no answer
            return build_op_msg(self._reply_id(), request_id, reply)
        if opcode == OP_QUERY:
            if len(payload) < 4:
                raise ProtocolError("OP_QUERY too short")
            pos = 4                    # skip flags
            full_name, pos = _cstring(payload, pos, len(payload))
            if len(payload) - pos < 8:
                raise ProtocolError("OP_QUERY too short")
            pos += 8                   # numberToSkip, numberToReturn
            query, pos = _decode_doc(payload, pos, len(payload))
            # An optional returnFieldsSelector may follow; it is ignored.
            db, _, coll = full_name.partition(".")
            if coll != "$cmd":
                log("conn=%d OP_QUERY on %s refused (legacy queries are not "
                    "supported)" % (self.conn_id, full_name))
                err = SON([("$err", "legacy OP_QUERY is only supported for "
                            "commands"), ("code", 352)])
                return build_op_reply(self._reply_id(), request_id, err,
                                      flags=2)   # QueryFailure
            if "$query" in query:      # wrapped by a mongos-style read pref
                query = query["$query"]
            reply = self.app.run_command(self.conn_id, db, query, "OP_QUERY")
            return build_op_reply(self._reply_id(), request_id, reply)
        raise ProtocolError("unsupported opcode %d" % opcode)


class ThreadingServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True      # restart on the same port at once
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A bug in a handler must not take the server down; say what broke.
        log("internal error on a connection:\n" + traceback.format_exc())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0,
                    help="TCP port on 127.0.0.1 (0: pick a free one)")
    ap.add_argument("--port-file",
                    help="write the bound port here once ready")
    ap.add_argument("--data-file",
                    help="persist data here after each write; load at start")
    ap.add_argument("--fsync", action="store_true",
                    help="with --data-file: fsync the data before answering a "
                    "write (an acknowledged write is on disk, as with "
                    "MongoDB's journal)")
    args = ap.parse_args(argv)
    if args.fsync and not args.data_file:
        ap.error("--fsync needs --data-file")

    store = Store(args.data_file, fsync=args.fsync)
    server = ThreadingServer(("127.0.0.1", args.port), Handler)
    server.app = Server(store)
    port = server.server_address[1]

    def stop(signum, frame):
        # shutdown() waits for serve_forever(), so run it off this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)   # readers never see a partial file
    log("listening on 127.0.0.1:%d (pid %d, data file %s)"
        % (port, os.getpid(), args.data_file or "none"))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
