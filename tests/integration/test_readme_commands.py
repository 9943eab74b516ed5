"""The README's two commands stay true.

The first command (set-up, then deploy/run-local.sh) must bring springfield
up behind nginx answering flanders; the second must be the one .ci/run runs.
The set-up half (apt-get) is what .ci/run itself runs before the tests; how
it gets root, as root or through sudo, is test_setup_debian.py's.
"""

import os
import re
import signal
import subprocess
import time
import urllib.request

import servers

README = os.path.join(servers.REPO, "README.md")


def readme_commands():
    text = open(README, encoding="utf-8").read()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no sh block with the two commands"
    lines = [l for l in block.group(1).splitlines() if l and not l.startswith("#")]
    assert len(lines) == 2, lines
    return lines


def test_readme_opens_with_the_two_commands():
    text = open(README, encoding="utf-8").read()
    first_block = text.index("```sh")
    assert first_block < 1200, "the two commands are not at the start of README.md"
    run, test = readme_commands()
    # No sudo in front: a fresh Debian 12 machine where you are root has none,
    # and the script gets root itself (tests/integration/test_setup_debian.py).
    assert run == "./deploy/setup-debian.sh && ./deploy/run-local.sh", run
    assert test == "./deploy/setup-debian.sh && ./tests/run", test
    ci = open(os.path.join(servers.REPO, ".ci", "run"), encoding="utf-8").read()
    assert "./deploy/setup-debian.sh" in ci and "./tests/run" in ci, ci


def test_run_local_serves_flanders_behind_nginx(workdir):
    port = servers.free_port()
    log = open(os.path.join(workdir, "run-local.log"), "wb")
    proc = subprocess.Popen(["./deploy/run-local.sh", str(port)], cwd=servers.REPO,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120  # it may have to build first
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/flanders" % port,
                                            timeout=2) as r:
                    body = r.read()
                    server = r.headers.get("Server", "")
                break
            except OSError:
                time.sleep(0.2)
        assert body == b"Hi-dilly-ho, neighborino!", (
            "run-local.sh did not serve flanders (status %s)\n%s"
            % (proc.poll(), open(log.name, "rb").read().decode(errors="replace")[-3000:]))
        assert server.startswith("nginx"), server
        out = open(log.name, "rb").read().decode(errors="replace")
        assert "embedded" in out, "the start-up log does not say which backend each route uses"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the script, its nginx and springfield
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()
