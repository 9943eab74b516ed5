#!/bin/sh
# flanders through nginx, beside nginx answering the same text itself and
# nginx proxying to itself, in one run on the same core.
#
#   bench/flanders.sh [SECONDS] [CONNECTIONS]     (default 10 s, 256)
#
# nginx (one worker) and springfield share CPU 0; wrk runs on CPU 1.
# Prints requests/s of each and their ratios to nginx's own `return 200`.
# The machines are shared and noisy: read the ratios, not the absolutes.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-256}
[ -x springfield ] || { echo "build springfield first (make)" >&2; exit 1; }

run=$(mktemp -d /tmp/springfield-bench.XXXXXX)
chmod 755 "$run"
sock=$run/sf.sock
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_sf=$(free_port); p_ret=$(free_port); p_proxy=$(free_port)

cat >"$run/nginx.conf" <<CONF
daemon off;
worker_processes 1;
worker_cpu_affinity 01;
pid $run/nginx.pid;
error_log $run/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $run/body; fastcgi_temp_path $run/fcgi; proxy_temp_path $run/proxy;
    uwsgi_temp_path $run/uwsgi; scgi_temp_path $run/scgi;
    upstream springfield { server unix:$sock; keepalive 1024; }
    upstream self { server 127.0.0.1:$p_ret; keepalive 1024; }
    server {
        listen 127.0.0.1:$p_sf;
        location /api/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass springfield;
            fastcgi_keep_conn on;
        }
    }
    server {
        listen 127.0.0.1:$p_ret;
        location / { default_type text/plain; return 200 "Hi-dilly-ho, neighborino!"; }
    }
    server {
        listen 127.0.0.1:$p_proxy;
        location / { proxy_pass http://self; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
CONF

taskset -c 0 ./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log 2>"$run/sf.log" &
sf=$!
taskset -c 0 nginx -c "$run/nginx.conf" -e "$run/error.log" &
ngx=$!
# The script's own status survives the clean-up (wait would report the killed servers').
trap 'rc=$?; kill $ngx $sf 2>/dev/null; wait $ngx $sf 2>/dev/null || true; rm -rf "$run"; exit $rc' EXIT
trap 'exit 130' INT TERM
for i in $(seq 50); do
    curl -fsS "http://127.0.0.1:$p_sf/api/v1/flanders" >/dev/null 2>&1 && break
    sleep 0.1
done

measure() { # url -> requests/s; fails on any error or non-2xx answer
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "$1")
    if echo "$out" | grep -qE 'Non-2xx|Socket errors'; then
        echo "$out" >&2
        echo "errors while measuring $1" >&2
        exit 1
    fi
    echo "$out" | awk '/Requests\/sec/ {print $2}'
}

ret=$(measure "http://127.0.0.1:$p_ret/")
sfl=$(measure "http://127.0.0.1:$p_sf/api/v1/flanders")
prx=$(measure "http://127.0.0.1:$p_proxy/")
echo "wrk -t1 -c$conns -d${secs}s, nginx and springfield on CPU 0, wrk on CPU 1"
printf '%-34s %10s req/s  ratio %s\n' "nginx return 200" "$ret" 1.00
printf '%-34s %10s req/s  ratio %.2f\n' "nginx proxy_pass to itself" "$prx" "$(echo "$prx / $ret" | bc -l)"
printf '%-34s %10s req/s  ratio %.2f\n' "springfield flanders via nginx" "$sfl" "$(echo "$sfl / $ret" | bc -l)"
