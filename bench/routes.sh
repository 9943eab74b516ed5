#!/bin/sh
# GET of an existing key through nginx: marges on a real redis-server and
# homers on the MongoDB stand-in, beside flanders, in one run.
#
#   bench/routes.sh [SECONDS] [CONNECTIONS]        (default 10 s, 256)
#
# The stand-in is a Python program (tests/standins/), so homers measures
# the stand-in as much as springfield: read it as a floor, not a ceiling.
. "$(dirname "$0")/lib.sh"
secs=${1:-10}
conns=${2:-256}
p_http=$(free_port); p_redis=$(free_port)

redis-server --port "$p_redis" --bind 127.0.0.1 --save '' --appendonly no --dir "$run" \
    >"$run/redis.log" 2>&1 &
started $!
/usr/bin/python3 tests/standins/mongo_standin.py --port 0 --port-file "$run/mongo.port" \
    2>"$run/mongo.log" &
started $!
for _ in $(seq 100); do [ -s "$run/mongo.port" ] && break; sleep 0.05; done
p_mongo=$(cat "$run/mongo.port")

nginx_conf "$p_http"
REDIS_HOST=127.0.0.1 REDIS_PORT=$p_redis MONGODB_URI="mongodb://127.0.0.1:$p_mongo/springfield" \
    ./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log 2>"$run/sf.log" &
started $!
nginx -c "$run/nginx.conf" -e "$run/error.log" &
started $!
base=http://127.0.0.1:$p_http/api/v1
wait_for "$base/flanders"
for _ in $(seq 100); do
    curl -fsS -d 'Marge Simpson' "$base/marges/bench" >/dev/null 2>&1 &&
        curl -fsS -d '{"name":"Homer","beers":42}' "$base/homers/bench" >/dev/null 2>&1 && break
    sleep 0.1
done

echo "wrk -t1 -c$conns -d${secs}s through nginx (one worker)"
printf '%-40s %10s req/s\n' "GET flanders" "$(measure "$base/flanders" "$conns" "$secs")"
printf '%-40s %10s req/s\n' "GET marges/bench (redis-server)" \
    "$(measure "$base/marges/bench" "$conns" "$secs")"
printf '%-40s %10s req/s\n' "GET homers/bench (Python mongo stand-in)" \
    "$(measure "$base/homers/bench" "$conns" "$secs")"
