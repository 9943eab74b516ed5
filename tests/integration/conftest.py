"""Fixtures for the integration tests.

workdir        a fresh directory per test (mode 0755 all the way down, so
               nginx workers running as nobody can reach the socket); kept
               after a failure for the logs, removed after a pass
               (SF_TEST_KEEP=1 keeps every one)
launch         a function that starts any launcher from servers.py and stops
               it at teardown, whatever happened
stack          springfield behind a front server, parametrized over
               nginx/lighttpd x spawn-fcgi/--listen; springfield's extra
               arguments come from @pytest.mark.springfield_args(...)

A launcher that does not come up raises servers.ServerError: the test
errors with the server's log tail. Nothing is ever skipped because a
server is missing.
"""

import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import servers  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "springfield_args(*args, env=None): extra springfield arguments/env")
    config.addinivalue_line(
        "markers", "measures_memory: asserts on springfield's RSS, so it runs against the "
        "normal build only (a sanitizer's shadow memory and quarantine would decide it)")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _base_dir():
    base = os.environ.get("SF_TEST_TMP") or tempfile.gettempdir()
    return base


@pytest.fixture
def workdir(request):
    # only characters that are safe in every generated config file
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:60]
    d = tempfile.mkdtemp(prefix="sf-it-%s-" % name, dir=_base_dir())
    os.chmod(d, 0o755)
    yield d
    failed = any(getattr(request.node, "rep_" + w, None) is not None
                 and getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))
    if failed or os.environ.get("SF_TEST_KEEP"):
        sys.stderr.write("\n[kept %s]\n" % d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def launch(workdir):
    """launch(ServerClass, *args, **kw) -> started server, stopped at teardown
    (in reverse order of starting)."""
    started = []

    def _launch(cls, *args, **kw):
        srv = cls(workdir, *args, **kw)
        started.append(srv)
        return srv.start()

    yield _launch
    errors = []
    for srv in reversed(started):
        try:
            srv.stop()
        except Exception as e:  # keep tearing the others down
            errors.append("%s: %s" % (srv.name, e))
    if errors:
        raise servers.ServerError("teardown: " + "; ".join(errors))


def springfield_marker_args(request):
    m = request.node.get_closest_marker("springfield_args")
    if m is None:
        return [], {}
    return list(m.args), dict(m.kwargs.get("env") or {})


@dataclass
class Stack:
    sf: servers.Springfield
    front: servers.Server
    front_name: str
    launch_mode: str

    @property
    def port(self):
        return self.front.port

    def check_springfield_alive(self):
        # proc is None when the test stopped it on purpose
        if self.sf.proc is not None and self.sf.proc.poll() is not None:
            raise AssertionError("springfield died (status %s)\n--- log tail ---\n%s"
                                 % (self.sf.proc.poll(), servers.tail(self.sf.log_path)))


FRONTS = {"nginx": servers.Nginx, "lighttpd": servers.Lighttpd}


@pytest.fixture(params=[("nginx", "spawn-fcgi"), ("nginx", "unix"),
                        ("lighttpd", "spawn-fcgi"), ("lighttpd", "unix")],
                ids=lambda p: "%s-%s" % p)
def stack(request, launch):
    front_name, mode = request.param
    args, env = springfield_marker_args(request)
    sf = launch(servers.Springfield, listen=mode, extra_args=args, env=env)
    front = launch(FRONTS[front_name], sf)
    st = Stack(sf, front, front_name, mode)
    yield st
    # a crash during the test is a failure even when the assertions passed
    st.check_springfield_alive()
