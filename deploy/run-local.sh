#!/bin/sh
# Builds springfield and runs it behind nginx on http://127.0.0.1:8080
# with the embedded defaults (or whatever backends the environment names:
# REDIS_HOST, MONGODB_URI, MYSQL_HOST, AWS_S3_BUCKET, WEATHER_URI).
# Uses deploy/nginx.conf as it is, with the socket moved to a private
# directory.  Ctrl-C stops both.
#   deploy/run-local.sh [PORT]        (default 8080)
set -eu
cd "$(dirname "$0")/.."
port=${1:-8080}

[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure --quiet
make -j2 springfield >/dev/null

run=$(mktemp -d /tmp/springfield-run.XXXXXX)
chmod 755 "$run" # nginx workers run as another user and must reach the socket
sock=$run/springfield.sock
sed -e "s|/run/springfield/springfield.sock|$sock|" \
    -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$port;|" deploy/nginx.conf >"$run/site.conf"
cat >"$run/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $run/nginx.pid;
error_log $run/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log $run/nginx-access.log;
    client_body_temp_path $run/body;
    fastcgi_temp_path $run/fastcgi;
    proxy_temp_path $run/proxy;
    uwsgi_temp_path $run/uwsgi;
    scgi_temp_path $run/scgi;
    include $run/site.conf;
}
CONF

./springfield --listen "unix:$sock" --socket-mode 0666 --status-path /status &
sf=$!
nginx -c "$run/nginx.conf" -e "$run/nginx-error.log" &
ngx=$!
cleanup() {
    kill "$ngx" "$sf" 2>/dev/null || true
    wait "$ngx" "$sf" 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT INT TERM

i=0
until curl -fsS "http://127.0.0.1:$port/api/v1/flanders" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 50 ]; then
        echo "springfield or nginx did not come up; see $run/nginx-error.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo
echo "springfield is answering behind nginx on http://127.0.0.1:$port :"
curl -sS "http://127.0.0.1:$port/api/v1/flanders"; echo
echo "  curl http://127.0.0.1:$port/api/v1/flanders"
echo "  curl -d 'hello' http://127.0.0.1:$port/api/v1/marges/greeting"
echo "  curl http://127.0.0.1:$port/api/v1/marges/greeting"
echo "  curl http://127.0.0.1:$port/status          (status and metrics; ?format=openmetrics)"
echo "Ctrl-C stops it."
wait "$sf"
