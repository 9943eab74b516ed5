"""make install puts what a Debian user expects where they expect it, and
make uninstall takes all of it away again.

The clone's own configuration (tests/run configures it with the defaults)
installs under DESTDIR: the binary, springfield(8), the deploy/ examples
under $(docdir)/examples, README.md, and the systemd units in the directory
systemd's pkg-config file names.  The installed copies name the installed
binary.  Two more configurations, from a copy of the tree (make distdir):
--prefix=/usr without systemd's pkg-config file (the units then go under
the prefix) and --with-systemdsystemunitdir=no (no units).
"""

import os
import re
import subprocess

import pytest

import servers

EXAMPLES = ("Caddyfile", "apache-fcgid.conf", "apache-proxy-fcgi.conf", "h2o.conf",
            "lighttpd.conf", "nginx.conf", "spawn-fcgi.sh", "springfield.env")


def run(cmd, cwd, env=None, timeout=600):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(cmd, cwd=cwd, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, "%s failed (status %d)\n%s" % (" ".join(cmd), p.returncode, out[-4000:])
    return out


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def unit_dir():
    p = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                       stdout=subprocess.PIPE, timeout=30)
    d = p.stdout.decode().strip()
    assert d, "systemd's pkg-config file is missing (Debian package systemd)"
    return d


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """make install DESTDIR=... of the clone's configuration."""
    if not os.path.exists(os.path.join(servers.REPO, "Makefile")):
        raise servers.ServerError("the tree is not configured (run ./configure first)")
    dest = str(tmp_path_factory.mktemp("destdir"))
    out = run(["make", "install", "DESTDIR=" + dest], cwd=servers.REPO)
    return dest, out


def test_install_puts_everything_in_place(installed):
    dest, _ = installed
    got = files_under(dest)
    units = unit_dir().lstrip("/")
    want = {"usr/local/bin/springfield", "usr/local/share/man/man8/springfield.8",
            "usr/local/share/doc/springfield/README.md",
            units + "/springfield.service", units + "/springfield.socket"}
    want |= {"usr/local/share/doc/springfield/examples/" + e for e in EXAMPLES}
    assert got == want, "installed: %s\nmissing: %s\nunexpected: %s" % (
        sorted(got), sorted(want - got), sorted(got - want))
    ex = os.path.join(dest, "usr/local/share/doc/springfield/examples")
    assert os.access(os.path.join(ex, "spawn-fcgi.sh"), os.X_OK)
    assert not os.access(os.path.join(ex, "nginx.conf"), os.X_OK)


def test_installed_files_name_the_installed_binary(installed):
    dest, _ = installed
    units = os.path.join(dest, unit_dir().lstrip("/"))
    service = open(os.path.join(units, "springfield.service")).read()
    assert re.search(r"^ExecStart=/usr/local/bin/springfield$", service, re.M), service
    spawn = open(os.path.join(dest, "usr/local/share/doc/springfield/examples/spawn-fcgi.sh")).read()
    assert "SPRINGFIELD=${SPRINGFIELD:-/usr/local/bin/springfield}" in spawn
    man = open(os.path.join(dest, "usr/local/share/man/man8/springfield.8")).read()
    assert ".I /usr/local/bin/springfield" in man
    assert "/usr/local/share/doc/springfield/examples" in man
    assert ".I %s/springfield.socket" % unit_dir() in man
    assert "@" not in re.sub(r"\S+@\S+\.\S+", "", man.split("\n", 4)[4])


def test_installed_units_verify(installed):
    """systemd-analyze verify on the installed units, with ExecStart and the
    man page found inside DESTDIR (verify checks both exist)."""
    dest, _ = installed
    units = os.path.join(dest, unit_dir().lstrip("/"))
    check = os.path.join(dest, "verify")
    os.makedirs(check)
    binary = os.path.join(dest, "usr/local/bin/springfield")
    for u in ("springfield.service", "springfield.socket"):
        text = open(os.path.join(units, u)).read()
        text = text.replace("ExecStart=/usr/local/bin/springfield", "ExecStart=" + binary)
        with open(os.path.join(check, u), "w") as f:
            f.write(text)
    p = subprocess.run(["systemd-analyze", "verify", os.path.join(check, "springfield.socket"),
                        os.path.join(check, "springfield.service")],
                       env=dict(os.environ, MANPATH=os.path.join(dest, "usr/local/share/man")),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0 and p.stdout == b"", p.stdout.decode(errors="replace")


def test_installed_man_page_renders(installed):
    dest, _ = installed
    page = os.path.join(dest, "usr/local/share/man/man8/springfield.8")
    p = subprocess.run(["man", "--warnings", "-l", page], env=dict(os.environ, MANWIDTH="80"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0 and p.stderr == b"", p.stderr.decode(errors="replace")
    assert b"--max-body-bytes" in p.stdout


def test_uninstall_leaves_nothing(installed):
    dest, _ = installed
    run(["make", "uninstall", "DESTDIR=" + dest], cwd=servers.REPO)
    left = files_under(dest) - {f for f in files_under(dest) if f.startswith("verify/")}
    assert left == set(), "make uninstall left %s" % sorted(left)


@pytest.fixture(scope="module")
def distdir(tmp_path_factory):
    """A copy of the tree as the tarball has it."""
    d = str(tmp_path_factory.mktemp("dist"))
    src = os.path.join(d, "springfield")
    run(["make", "-s", "distdir", "distdir=" + src], cwd=servers.REPO)
    return src


def configure_and_install_data(src, build, args, env=None):
    os.makedirs(build)
    run([os.path.join(src, "configure"), "--quiet"] + args, cwd=build, env=env)
    dest = os.path.join(build, "dest")
    # the data files need no compiler: install-data alone
    run(["make", "-s", "install-data", "DESTDIR=" + dest], cwd=build)
    return dest


def test_prefix_usr_without_systemds_pc_file(distdir, tmp_path):
    """No systemdsystemunitdir from pkg-config: the units go to
    PREFIX/lib/systemd/system, which systemd reads for /usr and /usr/local."""
    wrapper = str(tmp_path / "pkg-config")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\ncase "$*" in *systemd*) exit 1 ;; esac\nexec pkg-config "$@"\n')
    os.chmod(wrapper, 0o755)
    dest = configure_and_install_data(distdir, str(tmp_path / "build"), ["--prefix=/usr"],
                                      env={"PKG_CONFIG": wrapper})
    got = files_under(dest)
    assert {"usr/lib/systemd/system/springfield.service",
            "usr/lib/systemd/system/springfield.socket",
            "usr/share/man/man8/springfield.8",
            "usr/share/doc/springfield/examples/Caddyfile"} <= got, sorted(got)
    service = open(os.path.join(dest, "usr/lib/systemd/system/springfield.service")).read()
    assert re.search(r"^ExecStart=/usr/bin/springfield$", service, re.M)
    # (README.md tells of both prefixes)
    named = [f for f in got if not f.endswith("README.md")
             and "/usr/local" in open(os.path.join(dest, f), errors="replace").read()]
    assert named == [], "installed files that name /usr/local: %s" % named


def test_without_systemd_units(distdir, tmp_path):
    dest = configure_and_install_data(distdir, str(tmp_path / "build"),
                                      ["--with-systemdsystemunitdir=no"])
    got = files_under(dest)
    assert not any("systemd" in f for f in got), sorted(got)
    assert "usr/local/share/man/man8/springfield.8" in got
    man = open(os.path.join(dest, "usr/local/share/man/man8/springfield.8")).read()
    assert ".I /etc/systemd/system/springfield.service" in man
