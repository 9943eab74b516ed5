#!/bin/sh
# The chaos test (tests/integration/test_chaos.py) for longer than CI runs it:
# every backend restarted in turn, SIGTERM and SIGKILL, under mixed load
# through nginx, then every acknowledged write audited.
#
#   bench/chaos.sh [SECONDS] [SEED]        (default 600 s; one restart every ~6 s)
#
# Prints the test's summary line (requests, 5xx and whether all fell in
# down windows, restarts, writes acked/audited/lost, fds and RSS before and
# after).  SEED replays the down times of an earlier run (its summary line
# names it).  The test starts and stops every server itself, so this
# script does not source bench/lib.sh (whose nginx and run directory it
# would not use); on a failure the test's directory, with every server's
# log and chaos-summary.txt, is kept and named on stderr.
set -eu
cd "$(dirname "$0")/.."
[ -x springfield ] || { echo "build springfield first (make)" >&2; exit 1; }
secs=${1:-600}
export SF_CHAOS_SECONDS="$secs"
[ -z "${2:-}" ] || export SF_CHAOS_SEED="$2"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -m pytest -p no:cacheprovider -q tests/integration/test_chaos.py
