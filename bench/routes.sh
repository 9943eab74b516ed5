#!/bin/sh
# GET of an existing key through nginx: marges on a real redis-server and
# homers on the MongoDB stand-in, beside flanders, in one run.
#
#   bench/routes.sh [SECONDS] [CONNECTIONS]        (default 10 s, 256)
#
# The stand-in is a Python program (tests/standins/), so homers measures
# the stand-in as much as springfield: read it as a floor, not a ceiling.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-256}
[ -x springfield ] || { echo "build springfield first (make)" >&2; exit 1; }

run=$(mktemp -d /tmp/springfield-bench.XXXXXX)
chmod 755 "$run"
sock=$run/sf.sock
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_http=$(free_port); p_redis=$(free_port)

redis-server --port "$p_redis" --bind 127.0.0.1 --save '' --appendonly no --dir "$run" \
    >"$run/redis.log" 2>&1 &
rd=$!
/usr/bin/python3 tests/standins/mongo_standin.py --port 0 --port-file "$run/mongo.port" \
    2>"$run/mongo.log" &
mg=$!
for i in $(seq 100); do [ -s "$run/mongo.port" ] && break; sleep 0.05; done
p_mongo=$(cat "$run/mongo.port")

cat >"$run/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $run/nginx.pid;
error_log $run/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $run/body; fastcgi_temp_path $run/fcgi; proxy_temp_path $run/proxy;
    uwsgi_temp_path $run/uwsgi; scgi_temp_path $run/scgi;
    upstream springfield { server unix:$sock; keepalive 1024; }
    server {
        listen 127.0.0.1:$p_http;
        location /api/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass springfield;
            fastcgi_keep_conn on;
        }
    }
}
CONF
REDIS_HOST=127.0.0.1 REDIS_PORT=$p_redis MONGODB_URI="mongodb://127.0.0.1:$p_mongo/springfield" \
    ./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log 2>"$run/sf.log" &
sf=$!
nginx -c "$run/nginx.conf" -e "$run/error.log" &
ngx=$!
# The script's own status survives the clean-up (wait would report the killed servers').
trap 'rc=$?; kill $ngx $sf $mg $rd 2>/dev/null; wait $ngx $sf $mg $rd 2>/dev/null || true; rm -rf "$run"; exit $rc' EXIT
trap 'exit 130' INT TERM
base=http://127.0.0.1:$p_http/api/v1
for i in $(seq 100); do
    curl -fsS -d 'Marge Simpson' "$base/marges/bench" >/dev/null 2>&1 &&
        curl -fsS -d '{"name":"Homer","beers":42}' "$base/homers/bench" >/dev/null 2>&1 && break
    sleep 0.1
done

measure() {
    out=$(wrk -t1 -c"$conns" -d"${secs}s" "$1")
    if echo "$out" | grep -qE 'Non-2xx|Socket errors'; then
        echo "$out" >&2
        echo "errors while measuring $1" >&2
        exit 1
    fi
    echo "$out" | awk '/Requests\/sec/ {print $2}'
}
echo "wrk -t1 -c$conns -d${secs}s through nginx (one worker)"
printf '%-40s %10s req/s\n' "GET flanders" "$(measure "$base/flanders")"
printf '%-40s %10s req/s\n' "GET marges/bench (redis-server)" "$(measure "$base/marges/bench")"
printf '%-40s %10s req/s\n' "GET homers/bench (Python mongo stand-in)" "$(measure "$base/homers/bench")"
