#!/bin/sh
# springfield behind nginx beside bench/floor behind the same nginx: kept
# upstream connections, and the churn nginx makes when clients outnumber
# its upstream keepalive, in interleaved rounds.
#
#   bench/nginx.sh [--rounds N] [--seconds S] [--connections C] [--case NAME]...
#                  (default 3 rounds of 10 s, 64 connections, both cases)
#
# Cases (GET /api/v1/flanders, nginx's fastcgi_params, fastcgi_keep_conn on):
#   kept    upstream keepalive 1024: every upstream connection is kept
#   churn   upstream keepalive 32: with 64 clients nginx opens and closes
#           the surplus upstream connections for every request
# nginx (one worker), springfield and the floor run on CPU 0, wrk on CPU 1;
# each round measures every case on the floor and on springfield, the order
# alternating from round to round, and the table gives the medians and
# springfield's ratio to the floor.  Any socket error or non-2xx answer
# fails the script.  The machines are shared and noisy: read the ratios.
. "$(dirname "$0")/lib.sh"
rounds=3 secs=10 warm=1 conns=64 cases=""
while [ $# -gt 0 ]; do
    if round_option "$1" "${2:-}"; then shift 2; continue; fi
    case $1 in
    --connections) conns=$2; shift 2 ;;
    -h|--help) help_text; exit 0 ;;
    *) echo "bench/nginx.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
done
[ -n "$cases" ] || cases="kept churn"
for k in $cases; do
    case $k in kept|churn) ;; *) echo "bench/nginx.sh: unknown case $k" >&2; exit 2 ;; esac
done
[ -x bench/floor ] || { echo "build bench/floor first (make)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/nginx.sh needs wrk" >&2; exit 1; }

floor_sock=$run/floor.sock
port_sf_kept=$(free_port) port_floor_kept=$(free_port)
port_sf_churn=$(free_port) port_floor_churn=$(free_port)
# server SERVER CASE SOCKET KEEPALIVE: an upstream and the server in front
# of it, as deploy/nginx.conf has them
server() {
    echo "upstream $1_$2 { server unix:$3; keepalive $4; }
    server { listen 127.0.0.1:$(eval echo "\$port_$1_$2");
        location /api/ { include /etc/nginx/fastcgi_params; fastcgi_keep_conn on;
                         fastcgi_pass $1_$2; } }"
}
nginx_conf "$(free_port)" "
    $(server sf kept "$sock" 1024) $(server floor kept "$floor_sock" 1024)
    $(server sf churn "$sock" 32) $(server floor churn "$floor_sock" 32)" \
    "worker_cpu_affinity 01;"

taskset -c 0 ./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log \
    2>"$run/sf.log" &
started $!
taskset -c 0 bench/floor --listen "unix:$floor_sock" 2>"$run/floor.log" &
started $!
for _ in $(seq 50); do [ -S "$floor_sock" ] && break; sleep 0.1; done
chmod 666 "$floor_sock"
taskset -c 0 nginx -c "$run/nginx.conf" -e "$run/error.log" &
started $!
# case_url SERVER CASE
case_url() { echo "http://127.0.0.1:$(eval echo "\$port_$1_$2")/api/v1/flanders"; }
# (k for the case: lib.sh's measure sets c)
for k in $cases; do
    for s in sf floor; do wait_for "$(case_url "$s" "$k")"; done
done


for i in $(seq "$rounds"); do
    order="floor sf"
    [ $((i % 2)) -eq 0 ] && order="sf floor"
    for k in $cases; do
        for s in $order; do
            measure "$(case_url "$s" "$k")" "$conns" "$warm" taskset -c 1 >/dev/null
            r=$(measure "$(case_url "$s" "$k")" "$conns" "$secs" taskset -c 1)
            echo "$r" >>"$run/$s.$k"
            echo "round $i/$rounds $k $s: $r req/s" >&2
        done
    done
done

echo
echo "springfield and bench/floor behind one nginx (one worker, fastcgi_keep_conn on), $conns clients"
echo "wrk -t1 -c$conns -d${secs}s; nginx and the servers on CPU 0, wrk on CPU 1; medians of $rounds round(s)"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-40s %12s %12s %7s\n' case "springfield" floor ratio
for k in $cases; do
    sf=$(median <"$run/sf.$k") fl=$(median <"$run/floor.$k")
    case $k in
    kept) what="kept (upstream keepalive 1024)" ;;
    churn) what="churn (upstream keepalive 32)" ;;
    esac
    printf '%-40s %12.0f %12.0f %7.3f\n' "$what" "$sf" "$fl" "$(echo "$sf / $fl" | bc -l)"
done
