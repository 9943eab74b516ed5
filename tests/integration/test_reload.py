"""SIGHUP reloads without a failed request: wrk through nginx during three
reloads, with --workers 2 and as a single process; the binary on disk is
what the new generation runs (an upgrade is picked up); a new generation
that cannot start leaves the old one serving; the counters carry on."""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import fcgi_client
import servers
from httpc import wait_for_log


class Reloadable(servers.Springfield):
    """springfield run from a copy of the binary in the test directory (so
    the test can upgrade or break it), with a pid file; stop() stops the
    process the pid file names, whichever generation that is."""

    def __init__(self, tmpdir, extra_args=(), env=None):
        d = os.path.join(str(tmpdir), "bin")
        os.makedirs(d, exist_ok=True)
        self.installed = os.path.join(d, "springfield")
        shutil.copy2(servers.springfield_bin(), self.installed)
        super().__init__(tmpdir, listen="unix", env=env, binary=self.installed,
                         extra_args=list(extra_args) + ["--status-path", "/status"])
        self.pid_file = os.path.join(self.dir, "springfield.pid")
        self.extra_args += ["--pid-file", self.pid_file]

    def current_pid(self):
        with open(self.pid_file) as f:
            return int(f.read())

    def install(self, source):
        """Puts source at the binary's path as dpkg does: a new file renamed
        over the old one (the running processes keep the old inode)."""
        tmp = self.installed + ".new"
        shutil.copy2(source, tmp)
        os.rename(tmp, self.installed)
        return os.stat(self.installed).st_ino

    def stop(self, timeout=servers.STOP_TIMEOUT):
        if os.path.exists(self.pid_file):
            pid = self.current_pid()
            if self.proc is None or pid != self.proc.pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and not gone(pid):
                    time.sleep(0.05)
        return super().stop(timeout)


def gone(pid):
    """The process ended (a zombie nobody reaped yet counts as ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def status(sf):
    return fcgi_client.status_json(sf.address)


def serving_pids(sf):
    return sorted(w["pid"] for w in status(sf)["workers"] if w["pid"])


def wait_for_pid_change(sf, old, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sf.current_pid() != old and gone(old):
            return sf.current_pid()
        time.sleep(0.05)
    raise AssertionError("the reload did not complete within %ds\n%s" % (timeout, sf.log()[-3000:]))


def wrk(port, seconds):
    return subprocess.Popen(["wrk", "-t2", "-c32", "-d%ds" % seconds, "--timeout", "5s",
                             "http://127.0.0.1:%d/api/v1/flanders" % port],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("workers", [2, 0], ids=["workers-2", "single-process"])
def test_three_reloads_under_load_fail_no_request(launch, workers):
    args = ["--workers", str(workers)] if workers else []
    sf = launch(Reloadable, extra_args=args + ["--no-access-log"])
    front = launch(servers.ShippedNginx, sf)
    before = serving_pids(sf)
    pids = [sf.current_pid()]
    load = wrk(front.port, 10)
    time.sleep(1.5)
    upgraded_inode = None
    for i in range(3):
        if i == 1:  # an upgrade: a new file at the binary's path
            upgraded_inode = sf.install(servers.springfield_bin())
        os.kill(sf.current_pid(), signal.SIGHUP)
        pids.append(wait_for_pid_change(sf, pids[-1]))
        time.sleep(1.5)
    out, _ = load.communicate(timeout=60)
    assert load.returncode == 0, out
    print("\nwrk during three reloads (%s):\n%s" % ("--workers %d" % workers if workers else "one process", out))
    total = re.search(r"(\d+) requests in", out)
    assert total and int(total.group(1)) > 1000, out
    assert "Non-2xx" not in out, out
    assert "Socket errors" not in out, out
    assert len(set(pids)) == 4, pids
    after = serving_pids(sf)
    assert not set(after) & set(before), (before, after)
    assert len(after) == max(workers, 1), after
    for pid in after:  # the upgraded binary runs
        assert os.stat("/proc/%d/exe" % pid).st_ino == upgraded_inode
    doc = status(sf)
    assert doc["reloads"] == 3
    # the pool's counters carried on across the generations
    assert doc["routes"]["/api/v1/flanders"]["2xx"] >= int(total.group(1))


@pytest.mark.parametrize("workers", [2, 0], ids=["workers-2", "single-process"])
def test_a_new_generation_that_fails_leaves_the_old_serving(launch, workers):
    args = ["--workers", str(workers)] if workers else []
    sf = launch(Reloadable, extra_args=args)
    old = sf.current_pid()
    old_workers = serving_pids(sf)
    broken = os.path.join(sf.dir, "broken")
    with open(broken, "w") as f:
        f.write("#!/bin/sh\necho 'broken build: cannot start' >&2\nexit 1\n")
    os.chmod(broken, 0o755)
    sf.install(broken)
    os.kill(old, signal.SIGHUP)
    wait_for_log(sf, r"reload failed: .* exited with status 1", timeout=10)
    assert "broken build: cannot start" in sf.log()
    assert sf.current_pid() == old and sf.alive()
    assert serving_pids(sf) == old_workers
    resp = fcgi_client.request(sf.address, "GET", "/api/v1/flanders")
    assert resp.http()[0] == 200
    # the fixed build reloads
    sf.install(servers.springfield_bin())
    os.kill(old, signal.SIGHUP)
    new = wait_for_pid_change(sf, old)
    assert new != old
    assert status(sf)["reloads"] == 1


def recycled_under_load(launch, workers, limit_args, seconds=8):
    """wrk through nginx while processes retire; returns (wrk output,
    the processes seen serving, the last status)."""
    args = ["--workers", str(workers)] if workers else []
    sf = launch(Reloadable, extra_args=args + limit_args + ["--no-access-log"])
    front = launch(servers.ShippedNginx, sf)
    seen = set(serving_pids(sf))
    load = wrk(front.port, seconds)
    while load.poll() is None:
        try:
            seen.update(serving_pids(sf))
        except (OSError, fcgi_client.Closed, AssertionError):
            pass  # a process draining as it was asked: the next one answers
        time.sleep(0.2)
    out, _ = load.communicate(timeout=60)
    print("\nwrk while recycling (%s, %s):\n%s"
          % ("--workers %d" % workers if workers else "one process", " ".join(limit_args), out))
    assert load.returncode == 0, out
    assert "Non-2xx" not in out, out
    assert "Socket errors" not in out, out
    time.sleep(1.5)  # the last replacement settles
    return out, seen, status(sf), sf


@pytest.mark.parametrize("workers", [2, 0], ids=["workers-2", "single-process"])
def test_max_requests_recycles_without_a_failed_request(launch, workers):
    out, seen, doc, sf = recycled_under_load(launch, workers, ["--max-requests", "20000"])
    total = int(re.search(r"(\d+) requests in", out).group(1))
    assert total > 60000, out  # several times the limit: several replacements
    if workers:
        assert doc["worker_replacements"] >= 2, doc
        assert len(seen) >= workers + 2, seen
        assert doc["workers_live"] == workers
    else:
        assert doc["reloads"] >= 2, doc  # one process is replaced through a reload
        assert len(seen) >= 3, seen
    assert "served 2" in sf.log() and "--max-requests" in sf.log()
    # no process served far past its limit (20000 and a jitter of up to 10 %,
    # plus what it answers while its replacement starts); without recycling
    # each would have served the whole run's share
    for w in doc["workers"]:
        assert w["served"] <= 2 * 20000 or not w["pid"], doc["workers"]


@pytest.mark.parametrize("workers", [2, 0], ids=["workers-2", "single-process"])
def test_max_rss_recycles_without_a_failed_request(launch, workers):
    # 1 MiB: every process is over it at once, so they are replaced over and over
    out, seen, doc, sf = recycled_under_load(launch, workers, ["--max-rss-mib", "1"], seconds=6)
    assert re.search(r"resident memory \d+ MiB is over --max-rss-mib 1", sf.log())
    if workers:
        assert doc["worker_replacements"] >= 2, doc
    else:
        assert doc["reloads"] >= 2, doc
    assert len(seen) >= max(workers, 1) + 2, seen
