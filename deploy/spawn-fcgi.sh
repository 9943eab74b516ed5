#!/bin/sh
# Starts springfield through spawn-fcgi (Debian package spawn-fcgi), which
# creates the unix socket, sets its owner and mode, drops to an unprivileged
# user and starts springfield with the listening socket on fd 0, which
# springfield serves.
#
#   deploy/spawn-fcgi.sh [--fork] [springfield options...]
#
# Default: spawn-fcgi -n (no fork) execs springfield in its own place, so
# this script's PID becomes springfield's: the way to run it under a
# supervisor (runit, daemontools, s6, supervisord, systemd Type=exec).
# SIGTERM then reaches springfield itself, which finishes the requests in
# flight and exits 0.
# --fork: spawn-fcgi starts springfield in the background, writes its PID to
# $PIDFILE and returns (an init script's way; stop it with
# kill "$(cat "$PIDFILE")").  spawn-fcgi then points springfield's stdout
# and stderr at /dev/null, so its log is lost: prefer the supervised way.
#
# Settings, with their defaults (the socket is the one deploy/nginx.conf,
# lighttpd.conf and apache-proxy-fcgi.conf connect to):
#   SPRINGFIELD   /usr/local/bin/springfield    the binary
#   SOCKET        /run/springfield/springfield.sock
#   SOCKET_MODE   0660     owner RUN_USER, group SOCKET_GROUP: only
#   SOCKET_GROUP  www-data springfield and the front server connect
#                          (www-data: the front server's group on Debian)
#   RUN_USER      springfield  springfield runs as this user (when started
#   RUN_GROUP     springfield  as root; spawn-fcgi refuses to run it as root)
#   PIDFILE       /run/springfield/springfield.pid   (--fork only)
# springfield's own settings and backends come from its environment
# (SPRINGFIELD_WORKERS=2, REDIS_HOST=...) or from options given to this script.
#
# A dedicated user on Debian:
#   adduser --system --group --no-create-home springfield
set -eu

SPRINGFIELD=${SPRINGFIELD:-/usr/local/bin/springfield}
SOCKET=${SOCKET:-/run/springfield/springfield.sock}
SOCKET_MODE=${SOCKET_MODE:-0660}
SOCKET_GROUP=${SOCKET_GROUP:-www-data}
RUN_USER=${RUN_USER:-springfield}
RUN_GROUP=${RUN_GROUP:-springfield}
PIDFILE=${PIDFILE:-/run/springfield/springfield.pid}

fork=no
if [ "${1:-}" = "--fork" ]; then
    fork=yes
    shift
fi

# The directory must be reachable by the front server's workers.
rundir=$(dirname "$SOCKET")
mkdir -p "$rundir"
chmod 0755 "$rundir"
# spawn-fcgi will not bind over a socket file left by a previous run.
[ -S "$SOCKET" ] && rm -f "$SOCKET"

# The command line is built back to front in "$@": springfield and its
# options after "--", spawn-fcgi's options before.
set -- -s "$SOCKET" -M "$SOCKET_MODE" -- "$SPRINGFIELD" "$@"
# Socket ownership and the user switch need root; unprivileged, spawn-fcgi
# runs springfield as the calling user, owner of the socket.
if [ "$(id -u)" -eq 0 ]; then
    set -- -u "$RUN_USER" -g "$RUN_GROUP" -G "$SOCKET_GROUP" "$@"
fi

if [ "$fork" = yes ]; then
    exec spawn-fcgi -P "$PIDFILE" "$@"
fi
exec spawn-fcgi -n "$@"
