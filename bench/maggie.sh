#!/bin/sh
# maggie through nginx with a weather service that answers in 100 ms.
#
#   bench/maggie.sh [SECONDS] [CONNECTIONS] [DELAY_MS]   (default 10 s, 200, 100)
#
# With CONNECTIONS clients each waiting DELAY_MS per request, the bound is
# CONNECTIONS / DELAY_MS requests/s (200 / 0.1 s = 2000); prints what
# springfield reached and the fraction of that bound.  The aim: 95 % or more.
. "$(dirname "$0")/lib.sh"
secs=${1:-10}
conns=${2:-200}
delay=${3:-100}
p_http=$(free_port); p_weather=$(free_port)

nginx_conf "$p_http"
cc -O2 -D_GNU_SOURCE -o "$run/delay_server" bench/delay_server.c -lev
"$run/delay_server" "$p_weather" "$delay" &
started $!
WEATHER_URI="http://127.0.0.1:$p_weather/weather" \
    ./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log 2>"$run/sf.log" &
started $!
nginx -c "$run/nginx.conf" -e "$run/error.log" &
started $!
wait_for "http://127.0.0.1:$p_http/api/v1/maggie"

rps=$(measure "http://127.0.0.1:$p_http/api/v1/maggie" "$conns" "$secs")
bound=$(echo "$conns * 1000 / $delay" | bc -l)
printf 'maggie via nginx, weather answering in %d ms, %d connections: %.0f req/s of a %.0f req/s bound = %.1f %%\n' \
    "$delay" "$conns" "$rps" "$bound" "$(echo "$rps * 100 / $bound" | bc -l)"
