"""A real MariaDB server for the integration tests (Debian's mariadb-server).

    db = MariaDB(tmpdir)      # picks a free port once; restarts keep it
    db.start()                # installs the data directory on first start
    db.env()                  # MYSQL_* for springfield
    db.query("SELECT ...")    # runs SQL as the test user, returns the rows
    db.stop(); db.start()     # the data directory (and the data) stay

mariadb-install-db is the slow part (~1.5 s), so it runs once per
instance; a test session keeps one instance (see fixtures_backends.py).
The server runs as root with --no-defaults, listens on 127.0.0.1 and on a
unix socket in its own directory, logs to stderr (output.log, so a failed
start shows the reason), and creates the database and the user
springfield logs in as from an --init-file on every start (idempotent).
Readiness is a real login with the mariadb client as that user, so "ready"
means springfield could log in too.
"""

import os
import subprocess

from servers import Server, ServerError, free_port, tail

INSTALL_TIMEOUT = 60
CLIENT_TIMEOUT = 5


class MariaDB(Server):
    name = "mariadb"

    def __init__(self, tmpdir, database="springfield", user="sf", password="sfpw"):
        super().__init__(tmpdir)
        self.port = free_port()
        self.database = database
        self.user = user
        self.password = password
        self.datadir = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "mariadb.sock")
        self.init_sql = os.path.join(self.dir, "init.sql")

    # -- set-up

    def install(self):
        if os.path.isdir(os.path.join(self.datadir, "mysql")):
            return
        cmd = ["mariadb-install-db", "--no-defaults", "--datadir=" + self.datadir,
               "--user=root", "--auth-root-authentication-method=normal",
               "--skip-test-db"]
        install_log = os.path.join(self.dir, "install.log")
        try:
            with open(install_log, "wb") as logf:
                rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=subprocess.STDOUT, cwd=self.dir,
                                    timeout=INSTALL_TIMEOUT).returncode
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ServerError("mariadb-install-db failed: %s\n--- log tail ---\n%s"
                              % (e, tail(install_log)))
        if rc != 0:
            raise ServerError("mariadb-install-db exited with %d\ncommand: %s\n"
                              "--- log tail ---\n%s" % (rc, " ".join(cmd), tail(install_log)))

    def write_config(self):
        self.install()
        # the init file is read one statement per line
        with open(self.init_sql, "w") as f:
            f.write("CREATE DATABASE IF NOT EXISTS `%s`;\n" % self.database)
            f.write("CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s';\n"
                    % (self.user, self.password))
            f.write("GRANT ALL ON `%s`.* TO '%s'@'127.0.0.1';\n" % (self.database, self.user))

    def command(self):
        return ["mariadbd", "--no-defaults", "--datadir=" + self.datadir,
                "--port=%d" % self.port, "--bind-address=127.0.0.1",
                "--socket=" + self.sock, "--pid-file=" + os.path.join(self.dir, "mariadb.pid"),
                "--user=root", "--init-file=" + self.init_sql, "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M",
                "--skip-log-bin"]

    def client(self, sql, timeout=CLIENT_TIMEOUT):
        """Runs SQL with the mariadb client as springfield's user over TCP.
        Returns the CompletedProcess (stdout: tab-separated rows, no header)."""
        cmd = ["mariadb", "--no-defaults", "-h127.0.0.1", "-P%d" % self.port,
               "-u" + self.user, "-p" + self.password, "--batch", "--skip-column-names",
               "--raw", "--default-character-set=utf8mb4", self.database, "-e", sql]
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)

    def ready(self):
        try:
            return self.client("SELECT 1", timeout=2).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def query(self, sql):
        """Rows of a query as lists of str (raises AssertionError on failure)."""
        try:
            r = self.client(sql)
        except subprocess.TimeoutExpired:
            raise AssertionError("mariadb client timed out on %r" % sql)
        if r.returncode != 0:
            raise AssertionError("mariadb client failed on %r: %s"
                                 % (sql, r.stderr.decode("utf-8", "replace")))
        out = r.stdout.decode("utf-8")
        return [line.split("\t") for line in out.split("\n") if line]

    def env(self):
        """What springfield needs to use this server."""
        return {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(self.port),
                "MYSQL_DATABASE": self.database, "MYSQL_USER": self.user,
                "MYSQL_PASSWORD": self.password}
