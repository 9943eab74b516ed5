#!/bin/sh
# Installs everything springfield needs to build, run and be tested on a
# fresh Debian 12 machine (as root, or through sudo).  Safe to run again.
set -eu

if [ "$(id -u)" -ne 0 ]; then
    exec sudo "$0" "$@"
fi
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    build-essential autoconf automake libtool pkg-config ca-certificates \
    libev-dev libfcgi-dev libfcgi-bin spawn-fcgi \
    libhiredis-dev libmongoc-dev libbson-dev libcurl4-openssl-dev libs3-dev \
    libcjson-dev libmariadb-dev libcunit1-dev libssl-dev \
    nginx-light lighttpd apache2 libapache2-mod-fcgid \
    redis-server mariadb-server \
    python3 python3-pytest python3-bson \
    curl wrk valgrind procps clang libclang-rt-14-dev bc

# The S3-compatible test server comes from npm, pinned by tests/s3/package-lock.json.
if [ -f tests/s3/package-lock.json ]; then
    command -v npm >/dev/null 2>&1 || apt-get install -y --no-install-recommends nodejs npm
    (cd tests/s3 && npm ci --no-audit --no-fund --loglevel=error)
fi
