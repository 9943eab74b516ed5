"""The build itself: a production build needs no test framework.

./configure used to stop without CUnit, which only `make check` uses.  Here
the tarball's tree is configured with a pkg-config that knows no cunit:
springfield must build and run, and `make check` must fail saying what it
needs (never pass without running a test).
"""

import os
import shutil
import stat
import subprocess

import servers

BUILD_TIMEOUT = 600


def run(cmd, cwd, env=None, timeout=BUILD_TIMEOUT):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_configure_and_build_without_cunit(workdir):
    src = os.path.join(workdir, "src")
    r = run(["make", "distdir", "distdir=" + src], servers.REPO)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    wrapper = os.path.join(workdir, "pkg-config-without-cunit")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\n'
                'for a in "$@"; do case $a in cunit*) exit 1;; esac; done\n'
                'exec pkg-config "$@"\n')
    os.chmod(wrapper, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    env = dict(os.environ, PKG_CONFIG=wrapper)
    r = run(["./configure", "--quiet"], src, env)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "configure refused to build without CUnit:\n" + err[-2000:]
    assert "CUnit not found" in err, err
    r = run(["make", "-j2", "springfield"], src, env)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    r = run([os.path.join(src, "springfield"), "--version"], src)
    assert r.returncode == 0 and r.stdout.startswith(b"springfield "), r
    r = run(["make", "check"], src, env)
    assert r.returncode != 0, "make check passed without CUnit: it ran no test"
    assert b"need CUnit" in r.stderr, r.stderr[-2000:]
    shutil.rmtree(src, ignore_errors=True)
