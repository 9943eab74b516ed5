"""The S3-compatible server of the integration tests (tests/s3/run-s3rver.js,
s3rver from npm) as a launcher.

    s3 = S3rver(tmpdir, bucket="springfield-bart")
    s3.start()                    # node run-s3rver.js --directory DIR/data --port 0
    s3.endpoint                   # http://127.0.0.1:PORT (path style)
    s3.env(signature="v2")        # AWS_* for springfield; secret="wrong" or
                                  # access_key="WRONG" for refused credentials
    s3.object_bytes("bart")       # the object as s3rver stored it on disk, or None
    s3.stop(); s3.start()         # down and back on the same port, same data

The first start lets the kernel pick the port (--port 0) and reads it from
the "ready 127.0.0.1:PORT" line the script prints once it listens; every
later start asks for that same port, so a springfield pointed at .endpoint
finds the restarted server where the old one was.  The data directory is
the same across restarts: objects survive.  The bucket is created at start
(kept when it exists).  Credentials are s3rver's account, S3RVER/S3RVER; the
script verifies Signature V2 and V4 fully (a wrong secret gets 403
SignatureDoesNotMatch, a wrong key 403 InvalidAccessKeyId).

node and tests/s3/node_modules (`cd tests/s3 && npm ci`) are required: a
missing one is a ServerError saying so, never a skip.
"""

import os
import re
import shutil
import sys

from servers import REPO, Server, ServerError, tail, tcp_ready

S3_DIR = os.path.join(REPO, "tests", "s3")
SCRIPT = os.path.join(S3_DIR, "run-s3rver.js")
S3RVER_MODULE = os.path.join(S3_DIR, "node_modules", "s3rver")

ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
REGION = "us-east-1"

_READY = re.compile(rb"^ready ([0-9.]+):(\d+)$", re.M)
# keys whose s3rver file name is the key itself (no encoding to mirror here)
_PLAIN_KEY = re.compile(r"\A[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\Z")


class S3rver(Server):
    name = "s3rver"

    def __init__(self, tmpdir, bucket="springfield-bart", node=None):
        super().__init__(tmpdir)
        self.bucket = bucket
        self.node = node or shutil.which("node")
        self.data_dir = os.path.join(self.dir, "data")
        self.port = None  # known after the first start
        self._log_offset = 0

    @property
    def endpoint(self):
        if self.port is None:
            raise ServerError("s3rver: .endpoint asked before the first start")
        return "http://127.0.0.1:%d" % self.port

    def env(self, signature="v4", secret=None, access_key=None, obj="bart"):
        """What springfield needs to keep AWS_S3_OBJECT `obj` of this
        server's bucket, signing with `signature` ("v4" or "v2");
        secret/access_key replace the right credentials."""
        if signature not in ("v4", "v2"):
            raise ValueError("signature must be v4 or v2")
        return {
            "AWS_S3_BUCKET": self.bucket,
            "AWS_S3_OBJECT": obj,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY if access_key is None else access_key,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY if secret is None else secret,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_S3_SIGNATURE": signature,
        }

    def object_path(self, key="bart"):
        """Where s3rver's filesystem store keeps the object `key`."""
        if not _PLAIN_KEY.match(key):
            raise ValueError("object_path: only plain keys ([A-Za-z0-9_.-/]), got %r" % key)
        head, _, last = key.rpartition("/")
        return os.path.join(self.data_dir, self.bucket, *([head] if head else []),
                            "%s._S3rver_object" % last)

    def object_bytes(self, key="bart"):
        """The stored object straight from s3rver's directory (not through
        springfield, not through S3), or None when there is none."""
        try:
            with open(self.object_path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    # -- Server

    def write_config(self):
        os.makedirs(self.data_dir, exist_ok=True)
        # readiness reads only what this start writes to the shared log
        try:
            self._log_offset = os.path.getsize(self.log_path)
        except OSError:
            self._log_offset = 0

    def command(self):
        if not self.node or not os.access(self.node, os.X_OK):
            raise ServerError("s3rver: node (Node.js >= 18) is not installed "
                              "(Debian: apt-get install nodejs npm; then "
                              "`cd tests/s3 && npm ci`)")
        if not os.path.exists(SCRIPT):
            raise ServerError("s3rver: %s is missing" % SCRIPT)
        if not os.path.isdir(S3RVER_MODULE):
            raise ServerError("s3rver: %s is missing; run `cd tests/s3 && npm ci`"
                              % S3RVER_MODULE)
        return [self.node, SCRIPT, "--directory", self.data_dir, "--address", "127.0.0.1",
                "--port", str(self.port or 0), "--bucket", self.bucket]

    def ready(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                out = f.read()
        except OSError:
            return False
        m = _READY.search(out)
        if not m:
            return False
        port = int(m.group(2))
        if self.port is not None and port != self.port:
            # asked for self.port; anything else means the launcher is broken
            self.kill()
            raise ServerError("s3rver listens on port %d, expected %d\n--- log tail ---\n%s"
                              % (port, self.port, tail(self.log_path)))
        if not tcp_ready(port):
            return False
        self.port = port
        return True


if __name__ == "__main__":  # manual check: start, print the endpoint, stop on Enter
    import tempfile

    d = tempfile.mkdtemp(prefix="sf-s3rver-")
    with S3rver(d) as s:
        sys.stdout.write("%s bucket %s (pid %d, dir %s)\n" % (s.endpoint, s.bucket, s.pid, s.dir))
        sys.stdin.readline()
