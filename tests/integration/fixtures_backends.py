"""Fixtures and helpers for the backend tests (lisas, maggie, healthcheck).

A test module loads them as a plugin (fixtures registered once for the
whole session, so every module shares one MariaDB):

    pytest_plugins = ["fixtures_backends"]

mariadb_server  one MariaDB per test session (mariadb-install-db is the slow
                part); its directory is removed at the end unless a test
                failed or SF_TEST_KEEP is set
mariadb         that server, started again if an earlier test left it
                stopped; use it in a test (a test may stop/start it)
sf_nginx        sf_nginx(env=None, args=()) -> Pair(sf, front): springfield
                (--listen unix:) behind real nginx, both stopped at teardown;
                a springfield that died during the test fails it

The MariaDB instance is shared, so tests use names of their own (rows from
other tests may be in the table).
"""

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

import pytest

import servers
from launch_mariadb import MariaDB


def _session_dir():
    base = os.environ.get("SF_TEST_TMP") or tempfile.gettempdir()
    d = tempfile.mkdtemp(prefix="sf-it-session-", dir=base)
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="session")
def mariadb_server(request):
    db = MariaDB(_session_dir())
    try:
        db.start()  # ServerError (with the log tail) fails the tests using it
        yield db
    finally:
        db.stop()
        top = os.path.dirname(db.dir)
        if request.session.testsfailed or os.environ.get("SF_TEST_KEEP"):
            sys.stderr.write("\n[kept %s]\n" % top)
        else:
            shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def mariadb(mariadb_server):
    if not mariadb_server.alive():
        mariadb_server.start()
    yield mariadb_server
    if not mariadb_server.alive():  # the test stopped it and failed before restarting
        mariadb_server.start()


@dataclass
class Pair:
    sf: servers.Springfield
    front: servers.Nginx

    @property
    def port(self):
        return self.front.port


@pytest.fixture
def sf_nginx(launch):
    pairs = []

    def _start(env=None, args=()):
        sf = launch(servers.Springfield, listen="unix", extra_args=list(args), env=env)
        front = launch(servers.Nginx, sf)
        pairs.append(Pair(sf, front))
        return pairs[-1]

    yield _start
    for p in pairs:
        if p.sf.proc is not None and p.sf.proc.poll() is not None:
            raise AssertionError("springfield died (status %s)\n--- log tail ---\n%s"
                                 % (p.sf.proc.poll(), servers.tail(p.sf.log_path)))
