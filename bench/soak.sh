#!/bin/sh
# Memory under a long mix of good and bad requests through nginx.
#
#   bench/soak.sh [SECONDS] [ROUNDS]      (default 10 s, 3 rounds)
#
# Runs bench/soak.lua (reads, 404, 405, invalid JSON, over-long names,
# bodies over the limit, overwrites of 100 keys) ROUNDS times and prints
# springfield's VmRSS after each: it must level off, not climb round after
# round.
. "$(dirname "$0")/lib.sh"
secs=${1:-10}
rounds=${2:-3}
port=$(free_port)

nginx_conf "$port"
./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log --max-body-bytes 65536 \
    2>"$run/sf.log" &
sf=$!
started $sf
nginx -c "$run/nginx.conf" -e "$run/error.log" &
started $!
wait_for "http://127.0.0.1:$port/api/v1/flanders"

rss() { awk '/VmRSS/ {print $2}' "/proc/$sf/status"; }
echo "springfield VmRSS at start: $(rss) KiB"
for r in $(seq "$rounds"); do
    n=$(wrk -t1 -c64 -d"${secs}s" -s bench/soak.lua "http://127.0.0.1:$port/" |
        awk '/requests in/ {print $1}')
    kill -0 "$sf" || { echo "springfield died" >&2; exit 1; }
    echo "round $r: $n requests, springfield VmRSS $(rss) KiB"
done
