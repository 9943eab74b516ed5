"""tests/fuzz/run.sh: one run at a time in a FUZZ_OUT directory.

A first run holds the directory's lock while it builds and fuzzes; a second
run in the same directory must exit with 2 at once, saying why, instead of
rebuilding the fuzzers under the first.
"""

import fcntl
import os
import subprocess
import time

import servers

RUNNER = os.path.join(servers.REPO, "tests", "fuzz", "run.sh")


def lock_is_held(path):
    """Whether another process holds the flock on path (taken and let go
    at once when it does not)."""
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def test_second_run_in_the_same_directory_stops_at_once(workdir):
    env = dict(os.environ, FUZZ_OUT=workdir)
    lock = os.path.join(workdir, ".lock")
    first = subprocess.Popen([RUNNER, "3", "codec"], cwd=servers.REPO, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (os.path.exists(lock) and lock_is_held(lock)):
            assert first.poll() is None, "the first run ended before taking its lock:\n" + \
                first.stdout.read().decode("utf-8", "replace")
            assert time.monotonic() < deadline, "the first run never took its lock"
            time.sleep(0.05)
        started = time.monotonic()
        second = subprocess.run([RUNNER, "3", "codec"], cwd=servers.REPO, env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        err = second.stderr.decode("utf-8", "replace")
        assert second.returncode == 2, err
        assert "another run is using " + workdir in err, err
        assert "building" not in second.stdout.decode("utf-8", "replace")
        assert time.monotonic() - started < 10, "the second run did not stop at once"
        out, _ = first.communicate(timeout=300)
        assert first.returncode == 0, out.decode("utf-8", "replace")[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # the lock went with the first run: a directory is usable again
    assert not lock_is_held(lock)
