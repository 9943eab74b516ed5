#!/bin/sh
# The Debian package, the way a Debian user gets it:
#   1. built with dpkg-buildpackage -us -uc -b from a copy of the tree
#      (make distdir into a temporary directory: the clone is not touched);
#   2. lintian on the result: no error (its whole output is printed);
#   3. installed with apt-get install ./springfield_*.deb, then checked:
#      springfield --version, the files, the man page (man renders it
#      without a warning), the units (systemd-analyze verify, the hardening
#      as systemd-analyze security rates it offline, enabled through the
#      socket), the conffile;
#   4. removed with apt-get remove (the conffile stays), then purged with
#      apt-get purge, and nothing of it may be left.
# Needs a configured tree (tests/run's first stage), what
# deploy/setup-debian.sh installs, and root for apt-get (sudo otherwise).
# A springfield package that is installed already is refused, not replaced.
set -eu
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
fail() {
    echo "debian package: $*" >&2
    exit 1
}
installed() {
    dpkg-query -W -f '${db:Status-Status}' springfield 2>/dev/null | grep -qv '^not-installed$'
}

[ -f Makefile ] || fail "configure the tree first (./configure)"
installed && fail "a springfield package is installed already; remove it first (apt-get purge springfield)"

work=$(mktemp -d /tmp/springfield-deb.XXXXXX)
cleanup() {
    if installed; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q springfield >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
upstream=${version%-*}
src="$work/springfield-$upstream"
make -s distdir distdir="$src" >/dev/null

echo "-- dpkg-buildpackage -us -uc -b ($version)"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
    tail -60 "$work/build.log"
    fail "dpkg-buildpackage failed"
}
deb=$(ls "$work"/springfield_"$version"_*.deb)
dpkg-deb -c "$deb"

echo "-- lintian"
rc=0
lintian --fail-on error --display-info --show-overrides "$work"/springfield_"$version"_*.changes \
    >"$work/lintian.txt" 2>&1 || rc=$?
grep -v '^running with root privileges is not recommended!$' "$work/lintian.txt" || true
[ "$rc" -eq 0 ] || fail "lintian reports errors (above)"

echo "-- apt-get install ./$(basename "$deb")"
(cd "$work" && as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "./$(basename "$deb")") >"$work/install.log" 2>&1 || {
    cat "$work/install.log"
    fail "apt-get install failed"
}

got=$(springfield --version)
[ "$got" = "springfield $upstream" ] || fail "springfield --version says '$got', not 'springfield $upstream'"
[ "$(command -v springfield)" = /usr/bin/springfield ] || fail "springfield is not /usr/bin/springfield"

for f in /usr/bin/springfield /usr/share/man/man8/springfield.8.gz \
    /lib/systemd/system/springfield.socket /lib/systemd/system/springfield.service \
    /etc/springfield/springfield.env /usr/share/doc/springfield/copyright \
    /usr/share/doc/springfield/examples/nginx.conf /usr/share/doc/springfield/examples/lighttpd.conf \
    /usr/share/doc/springfield/examples/apache-proxy-fcgi.conf \
    /usr/share/doc/springfield/examples/apache-fcgid.conf /usr/share/doc/springfield/examples/Caddyfile \
    /usr/share/doc/springfield/examples/h2o.conf /usr/share/doc/springfield/examples/spawn-fcgi.sh \
    /usr/share/doc/springfield/examples/springfield.env; do
    dpkg -L springfield | grep -qx "$f" || fail "the package does not install $f"
    [ -e "$f" ] || fail "$f is missing after the install"
done
# the examples name the installed binary
grep -q '/usr/bin/springfield' /usr/share/doc/springfield/examples/spawn-fcgi.sh ||
    fail "examples/spawn-fcgi.sh does not name /usr/bin/springfield"
! grep -rq /usr/local /usr/share/doc/springfield/examples /lib/systemd/system/springfield.service ||
    fail "an installed file still names /usr/local"

echo "-- man springfield"
[ "$(man -w springfield)" = /usr/share/man/man8/springfield.8.gz ] || fail "man -w springfield: $(man -w springfield)"
MANWIDTH=80 man --warnings springfield >"$work/man.txt" 2>"$work/man.err" || fail "man springfield failed"
[ ! -s "$work/man.err" ] || { cat "$work/man.err"; fail "man springfield warns"; }
MANWIDTH=80 man --warnings -l /usr/share/man/man8/springfield.8.gz >/dev/null 2>"$work/man.err"
[ ! -s "$work/man.err" ] || { cat "$work/man.err"; fail "man -l warns"; }
grep -q '^ *--listen ADDR' "$work/man.txt" || fail "the rendered man page has no --listen entry"
grep -q '/usr/bin/springfield' "$work/man.txt" || fail "the man page does not name /usr/bin/springfield"
# what mandb files for whatis and apropos
lexgrog /usr/share/man/man8/springfield.8.gz | grep -q ': "springfield - ' ||
    fail "lexgrog finds no whatis entry: $(lexgrog /usr/share/man/man8/springfield.8.gz)"

echo "-- systemd units"
grep -qx 'ExecStart=/usr/bin/springfield' /lib/systemd/system/springfield.service ||
    fail "springfield.service does not start /usr/bin/springfield"
systemd-analyze verify /lib/systemd/system/springfield.socket /lib/systemd/system/springfield.service \
    >"$work/verify.txt" 2>&1 || { cat "$work/verify.txt"; fail "systemd-analyze verify failed"; }
[ ! -s "$work/verify.txt" ] || { cat "$work/verify.txt"; fail "systemd-analyze verify warns"; }
for d in Type=notify NotifyAccess=main DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes; do
    grep -qx "$d" /lib/systemd/system/springfield.service || fail "springfield.service lost $d"
done
# exposure 2.0 or less on systemd's 0-10 scale ("OK"); the threshold is in tenths
systemd-analyze security --offline=true --threshold=20 /lib/systemd/system/springfield.service \
    >"$work/security.txt" 2>&1 || {
    cat "$work/security.txt"
    fail "springfield.service is less hardened than before (systemd-analyze security)"
}
tail -1 "$work/security.txt"
# enabled the Debian way: the socket at boot, the service with it
[ -L /etc/systemd/system/sockets.target.wants/springfield.socket ] || fail "springfield.socket is not enabled"
dpkg-query -W -f '${Conffiles}\n' springfield | grep -q ' */etc/springfield/springfield.env ' ||
    fail "/etc/springfield/springfield.env is not a conffile"
[ "$(stat -c %a /etc/springfield/springfield.env)" = 600 ] || fail "springfield.env is not mode 0600"

echo "-- apt-get remove springfield, then purge"
as_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q springfield >"$work/remove.log" 2>&1 || {
    cat "$work/remove.log"
    fail "apt-get remove failed"
}
# removed: the program and the units are gone, the edited configuration stays
for f in /usr/bin/springfield /lib/systemd/system/springfield.service /usr/share/man/man8/springfield.8.gz; do
    [ ! -e "$f" ] || fail "$f is still there after apt-get remove"
done
[ -f /etc/springfield/springfield.env ] || fail "apt-get remove took the conffile too"
as_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q springfield >"$work/purge.log" 2>&1 || {
    cat "$work/purge.log"
    fail "apt-get purge failed"
}
installed && fail "springfield is still installed after the purge"
left=$(find /usr/bin/springfield /usr/share/man/man8/springfield.8.gz /usr/share/doc/springfield \
    /etc/springfield /lib/systemd/system/springfield.socket /lib/systemd/system/springfield.service \
    /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
    /var/lib/systemd/deb-systemd-helper-masked -name '*springfield*' 2>/dev/null || true)
[ -z "$left" ] || fail "left after the purge: $left"
echo "debian package: built, lint-free, installed, checked and purged cleanly"
