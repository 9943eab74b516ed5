"""deploy/setup-debian.sh gets root the way the README's commands need:
run by root it goes ahead; run by a user it runs itself again through
sudo; with no sudo (a fresh Debian 12 machine) it says how to run it as
root and stops before apt-get.

Nothing is installed here: the script runs from a copy of the clone's
layout, with a PATH of its own whose apt-get, npm, sudo and id are stand-ins
that record how they were called (id answers the uid the test chooses; sudo
runs the command as uid 0, as the real one does).  The real apt-get run is
the one .ci/run makes itself.
"""

import os
import shutil
import stat
import subprocess

import servers

SCRIPT = os.path.join(servers.REPO, "deploy", "setup-debian.sh")

# Everything the script may run besides the stand-ins; a new command in it
# fails here with "not found" until it is added.
REAL_TOOLS = ("dirname", "chown", "cat", "rm", "mkdir")

STANDINS = {
    "id": """#!/bin/sh
case "$*" in
-u) echo "${FAKE_UID:?}" ;;
-un) echo tester ;;
*) echo "id $*: not faked" >&2; exit 64 ;;
esac
""",
    "sudo": """#!/bin/sh
echo "sudo uid=$(id -u) args=$*" >>"$CALLS"
FAKE_UID=0 SUDO_UID=$REAL_UID SUDO_GID=$REAL_GID exec "$@"
""",
    "apt-get": """#!/bin/sh
echo "apt-get uid=$(id -u) DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-} args=$*" >>"$CALLS"
""",
    "npm": """#!/bin/sh
echo "npm uid=$(id -u) cwd=$(pwd) args=$*" >>"$CALLS"
mkdir -p node_modules
""",
}


def run_setup(workdir, uid, with_sudo, real_id=False):
    """Runs ./deploy/setup-debian.sh, as the README does, from a copy of the
    clone's layout; returns (status, stderr, calls recorded, the copy).
    real_id: the real id(1), and as root the script runs as nobody."""
    clone = os.path.join(workdir, "clone")
    os.makedirs(os.path.join(clone, "deploy"))
    os.makedirs(os.path.join(clone, "tests", "s3"))
    shutil.copy2(SCRIPT, os.path.join(clone, "deploy", "setup-debian.sh"))
    with open(os.path.join(clone, "tests", "s3", "package-lock.json"), "w") as f:
        f.write("{}\n")
    bin_dir = os.path.join(workdir, "bin")
    os.makedirs(bin_dir)
    for name, text in STANDINS.items():
        if (name == "sudo" and not with_sudo) or (name == "id" and real_id):
            continue
        path = os.path.join(bin_dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    for tool in REAL_TOOLS + (("id",) if real_id else ()):
        real = shutil.which(tool, path="/usr/bin:/bin")
        assert real, "%s is missing on this machine" % tool
        os.symlink(real, os.path.join(bin_dir, tool))
    calls = os.path.join(workdir, "calls.log")
    open(calls, "w").close()
    os.chmod(calls, 0o666)
    env = {"PATH": bin_dir, "CALLS": calls, "HOME": workdir,
           "REAL_UID": str(os.getuid()), "REAL_GID": str(os.getgid())}
    if uid is not None:
        env["FAKE_UID"] = str(uid)
    cmd = ["./deploy/setup-debian.sh"]
    if real_id and os.geteuid() == 0:
        cmd = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + cmd
    proc = subprocess.run(cmd, cwd=clone, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    with open(calls) as f:
        recorded = f.read().splitlines()
    return proc.returncode, proc.stderr.decode(errors="replace"), recorded, clone


def apt_installs(calls):
    """The packages of the recorded `apt-get install` call(s)."""
    pkgs = []
    for c in calls:
        if c.startswith("apt-get ") and " args=install " in c:
            pkgs += [w for w in c.split(" args=install ", 1)[1].split() if not w.startswith("-")]
    return pkgs


def assert_installed_as_root(calls, clone):
    apt = [c for c in calls if c.startswith("apt-get ")]
    assert apt, "apt-get was not run: %s" % calls
    assert all(c.startswith("apt-get uid=0 DEBIAN_FRONTEND=noninteractive ") for c in apt), apt
    assert apt[0].endswith(" args=update"), apt
    pkgs = apt_installs(calls)
    # the packaging stage and the Caddy and h2o tests need these
    for p in ("dpkg-dev", "debhelper", "fakeroot", "lintian", "systemd", "man-db",
              "caddy", "h2o", "nginx-light", "lighttpd", "apache2", "spawn-fcgi"):
        assert p in pkgs, "setup-debian.sh no longer installs %s" % p
    npm = [c for c in calls if c.startswith("npm ")]
    assert npm == ["npm uid=0 cwd=%s args=ci --no-audit --no-fund --loglevel=error"
                   % os.path.join(clone, "tests", "s3")], npm


def test_as_root_it_installs_without_sudo(workdir):
    rc, err, calls, clone = run_setup(workdir, uid=0, with_sudo=False)
    assert rc == 0, err
    assert not any(c.startswith("sudo ") for c in calls), calls
    assert_installed_as_root(calls, clone)


def test_as_root_it_does_not_use_sudo_even_where_there_is_one(workdir):
    rc, err, calls, clone = run_setup(workdir, uid=0, with_sudo=True)
    assert rc == 0, err
    assert not any(c.startswith("sudo ") for c in calls), calls
    assert_installed_as_root(calls, clone)


def test_as_a_user_it_runs_itself_again_through_sudo(workdir):
    rc, err, calls, clone = run_setup(workdir, uid=1000, with_sudo=True)
    assert rc == 0, err
    # sudo, once, by the user, with the script as the README names it
    assert calls[0] == "sudo uid=1000 args=./deploy/setup-debian.sh", calls
    assert sum(c.startswith("sudo ") for c in calls) == 1, calls
    assert "through sudo" in err, err
    assert_installed_as_root(calls, clone)
    # what npm wrote in the clone is given back to the user
    st = os.stat(os.path.join(clone, "tests", "s3", "node_modules"))
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_as_a_user_without_sudo_it_says_how_and_installs_nothing(workdir):
    rc, err, calls, clone = run_setup(workdir, uid=1000, with_sudo=False)
    assert rc != 0
    assert calls == [], "something ran without root: %s" % calls
    assert "sudo is not installed" in err, err
    # the way out, with a path that works from anywhere
    assert "su -c '%s'" % os.path.join(clone, "deploy", "setup-debian.sh") in err, err


def test_a_real_non_root_user_without_sudo_is_stopped_before_apt_get(workdir):
    """The same with the real id(1): as nobody when the test runs as root."""
    rc, err, calls, clone = run_setup(workdir, uid=None, with_sudo=False, real_id=True)
    assert rc != 0
    assert calls == [], calls
    assert "sudo is not installed" in err, err
    assert "su -c '%s'" % os.path.join(clone, "deploy", "setup-debian.sh") in err, err
