#!/bin/sh
# flanders through nginx, beside nginx answering the same text itself and
# nginx proxying to itself, in one run on the same core.
#
#   bench/flanders.sh [SECONDS] [CONNECTIONS]     (default 10 s, 256)
#
# nginx (one worker) and springfield share CPU 0; wrk runs on CPU 1.
# Prints requests/s of each and their ratios to nginx's own `return 200`.
# The machines are shared and noisy: read the ratios, not the absolutes.
. "$(dirname "$0")/lib.sh"
secs=${1:-10}
conns=${2:-256}
p_sf=$(free_port); p_ret=$(free_port); p_proxy=$(free_port)

nginx_conf "$p_sf" "
    upstream self { server 127.0.0.1:$p_ret; keepalive 1024; }
    server {
        listen 127.0.0.1:$p_ret;
        location / { default_type text/plain; return 200 \"Hi-dilly-ho, neighborino!\"; }
    }
    server {
        listen 127.0.0.1:$p_proxy;
        location / { proxy_pass http://self; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
    }" "worker_cpu_affinity 01;"

taskset -c 0 ./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log 2>"$run/sf.log" &
started $!
taskset -c 0 nginx -c "$run/nginx.conf" -e "$run/error.log" &
started $!
wait_for "http://127.0.0.1:$p_sf/api/v1/flanders"

ret=$(measure "http://127.0.0.1:$p_ret/" "$conns" "$secs" taskset -c 1)
sfl=$(measure "http://127.0.0.1:$p_sf/api/v1/flanders" "$conns" "$secs" taskset -c 1)
prx=$(measure "http://127.0.0.1:$p_proxy/" "$conns" "$secs" taskset -c 1)
echo "wrk -t1 -c$conns -d${secs}s, nginx and springfield on CPU 0, wrk on CPU 1"
printf '%-34s %10s req/s  ratio %s\n' "nginx return 200" "$ret" 1.00
printf '%-34s %10s req/s  ratio %.2f\n' "nginx proxy_pass to itself" "$prx" "$(echo "$prx / $ret" | bc -l)"
printf '%-34s %10s req/s  ratio %.2f\n' "springfield flanders via nginx" "$sfl" "$(echo "$sfl / $ret" | bc -l)"
