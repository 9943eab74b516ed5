#!/bin/sh
# Installs everything springfield needs to build, run, package and be
# tested on a fresh Debian 12 machine.  Safe to run again.
#
# It needs root for apt-get.  Run by root, it goes ahead; run by another
# user, it runs itself again through sudo (which asks for that user's
# password); where there is no sudo (a fresh Debian 12 machine often has
# none), it says how to run it as root and stops.
set -eu

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        echo "setup-debian.sh: installing packages needs root: running it again through sudo" >&2
        exec sudo "$0" "$@"
    fi
    here=$(cd "$(dirname "$0")" && pwd)
    echo "setup-debian.sh: installing packages needs root, and sudo is not installed." >&2
    echo "Run it as root, e.g.:" >&2
    echo "    su -c '$here/setup-debian.sh'" >&2
    echo "(or, as root, apt-get install sudo && adduser $(id -un) sudo, log in again and" >&2
    echo "run the same command as before)." >&2
    exit 1
fi
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update
# Build and unit tests; the front servers and backends the integration tests
# start (prometheus and its promtool check the metrics), and the backends' own
# load tools bench/backends.sh compares with (redis-benchmark, mysqlslap); the Debian packaging tools, and systemd and man for checking what
# the package installs (tests/debian-package.sh).
apt-get install -y --no-install-recommends \
    build-essential autoconf automake libtool pkg-config ca-certificates \
    libev-dev libfcgi-dev libfcgi-bin spawn-fcgi \
    libhiredis-dev libmongoc-dev libbson-dev libcurl4-openssl-dev libs3-dev \
    libcjson-dev libmariadb-dev libcunit1-dev libssl-dev \
    nginx-light lighttpd apache2 libapache2-mod-fcgid caddy h2o \
    redis-server redis-tools mariadb-server mariadb-client \
    python3 python3-pytest python3-bson python3-prometheus-client prometheus \
    curl wrk valgrind strace procps clang libclang-rt-14-dev bc \
    dpkg-dev debhelper fakeroot lintian systemd man-db

# The S3-compatible test server comes from npm, pinned by tests/s3/package-lock.json.
if [ -f tests/s3/package-lock.json ]; then
    command -v npm >/dev/null 2>&1 || apt-get install -y --no-install-recommends nodejs npm
    (cd tests/s3 && npm ci --no-audit --no-fund --loglevel=error)
    # through sudo: the clone's files stay the user's own
    if [ -n "${SUDO_UID:-}" ] && [ -d tests/s3/node_modules ]; then
        chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" tests/s3/node_modules
    fi
fi
