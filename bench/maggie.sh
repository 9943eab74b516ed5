#!/bin/sh
# maggie through nginx with a weather service that answers in 100 ms.
#
#   bench/maggie.sh [SECONDS] [CONNECTIONS] [DELAY_MS]   (default 10 s, 200, 100)
#
# With CONNECTIONS clients each waiting DELAY_MS per request, the bound is
# CONNECTIONS / DELAY_MS requests/s (200 / 0.1 s = 2000); prints what
# springfield reached and the fraction of that bound.  The aim: 95 % or more.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-200}
delay=${3:-100}
[ -x springfield ] || { echo "build springfield first (make)" >&2; exit 1; }

run=$(mktemp -d /tmp/springfield-bench.XXXXXX)
chmod 755 "$run"
sock=$run/sf.sock
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_http=$(free_port); p_weather=$(free_port)

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
    upstream springfield { server unix:$sock; keepalive 256; }
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

cc -O2 -D_GNU_SOURCE -o "$run/delay_server" bench/delay_server.c -lev
"$run/delay_server" "$p_weather" "$delay" &
ws=$!
WEATHER_URI="http://127.0.0.1:$p_weather/weather" \
    ./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log 2>"$run/sf.log" &
sf=$!
nginx -c "$run/nginx.conf" -e "$run/error.log" &
ngx=$!
# The script's own status survives the clean-up (wait would report the killed servers').
trap 'rc=$?; kill $ngx $sf $ws 2>/dev/null; wait $ngx $sf $ws 2>/dev/null || true; rm -rf "$run"; exit $rc' EXIT
trap 'exit 130' INT TERM
for i in $(seq 50); do
    curl -fsS "http://127.0.0.1:$p_http/api/v1/maggie" >/dev/null 2>&1 && break
    sleep 0.1
done

out=$(wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s "http://127.0.0.1:$p_http/api/v1/maggie")
echo "$out" | grep -E 'Latency|Requests/sec|Non-2xx|Socket errors' || true
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
bound=$(echo "$conns * 1000 / $delay" | bc -l)
printf 'maggie via nginx, weather answering in %d ms, %d connections: %.0f req/s of a %.0f req/s bound = %.1f %%\n' \
    "$delay" "$conns" "$rps" "$bound" "$(echo "$rps * 100 / $bound" | bc -l)"
if echo "$out" | grep -qE 'Non-2xx|Socket errors'; then
    echo "errors while measuring" >&2
    exit 1
fi
