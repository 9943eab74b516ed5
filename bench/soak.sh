#!/bin/sh
# Memory under a long mix of good and bad requests through nginx.
#
#   bench/soak.sh [SECONDS] [ROUNDS]      (default 10 s, 3 rounds)
#
# Runs bench/soak.lua (reads, 404, 405, invalid JSON, over-long
# names, bodies over the limit, overwrites of 100 keys) ROUNDS times and
# prints springfield's VmRSS after each: it must level off, not climb
# round after round.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
[ -x springfield ] || { echo "build springfield first (make)" >&2; exit 1; }

run=$(mktemp -d /tmp/springfield-bench.XXXXXX)
chmod 755 "$run"
sock=$run/sf.sock
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$run/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $run/nginx.pid;
error_log $run/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_max_body_size 1m;
    client_body_temp_path $run/body; fastcgi_temp_path $run/fcgi; proxy_temp_path $run/proxy;
    uwsgi_temp_path $run/uwsgi; scgi_temp_path $run/scgi;
    upstream springfield { server unix:$sock; keepalive 256; }
    server {
        listen 127.0.0.1:$port;
        location /api/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass springfield;
            fastcgi_keep_conn on;
        }
    }
}
CONF
./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log --max-body-bytes 65536 \
    2>"$run/sf.log" &
sf=$!
nginx -c "$run/nginx.conf" -e "$run/error.log" &
ngx=$!
# The script's own status survives the clean-up (wait would report the killed servers').
trap 'rc=$?; kill $ngx $sf 2>/dev/null; wait $ngx $sf 2>/dev/null || true; rm -rf "$run"; exit $rc' EXIT
trap 'exit 130' INT TERM
for i in $(seq 50); do
    curl -fsS "http://127.0.0.1:$port/api/v1/flanders" >/dev/null 2>&1 && break
    sleep 0.1
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$sf/status"; }
echo "springfield VmRSS at start: $(rss) KiB"
for r in $(seq "$rounds"); do
    n=$(wrk -t1 -c64 -d"${secs}s" -s bench/soak.lua "http://127.0.0.1:$port/" |
        awk '/requests in/ {print $1}')
    kill -0 "$sf" || { echo "springfield died" >&2; exit 1; }
    echo "round $r: $n requests, springfield VmRSS $(rss) KiB"
done
