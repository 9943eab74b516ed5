#!/bin/sh
# Springfield builds beside each other and bench/floor, driven by
# bench/fcgi-load over unix sockets in interleaved rounds: what a change
# costs, measured finer than the machine's drift between two runs of
# bench/app.sh (here, 5 to 20 % within an hour).
#
#   bench/compare.sh [--rounds N] [--seconds S] [--warmup S] [--depth D]
#                    BUILD...
#                    (default 20 rounds of 2 s after 0.5 s of warm-up, depth 8)
#
# BUILD: a springfield binary, e.g. ./springfield and a copy of it built
# before the change.  The load is GET /api/v1/flanders with nginx's params
# on 64 connections, D requests in flight on each.  Every server runs on CPU
# 0 (--app-cpu), fcgi-load on CPU 1 (--load-cpu), one run at a time; each
# round runs the floor and every build once, the order rotating from round
# to round.  A run's figure is the server's CPU time per request (utime +
# stime, fcgi-load --server-pid).  For each build the table gives the
# median of those over the rounds, and two medians of ratios of runs of
# the same round (which ran within seconds of each other): the floor's cost
# over the build's (bench/app.sh's cost ratio) and the first build's over
# this one's (above 1: cheaper than the first), each with its quartiles.
# Here the medians of runs of 20 to 30 rounds agreed to within about 2 %,
# while single rounds spread by 10 % and more (the quartiles show how
# much): read the ratios, not the absolutes.  Any error in any run fails
# the script.
. "$(dirname "$0")/lib.sh"
rounds=20 secs=2 warm=0.5 depth=8 app_cpu=0 load_cpu=1
cases="" # (round_option takes --case too, which means nothing here)
while [ $# -gt 0 ]; do
    if round_option "$1" "${2:-}"; then shift 2; continue; fi
    case $1 in
    --depth) depth=$2; shift 2 ;;
    --app-cpu) app_cpu=$2; shift 2 ;;
    --load-cpu) load_cpu=$2; shift 2 ;;
    -h|--help) help_text; exit 0 ;;
    -*) echo "bench/compare.sh: unknown option $1 (--help)" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "bench/compare.sh: name at least one build (--help)" >&2; exit 2; }
for p in bench/fcgi-load bench/floor; do
    [ -x $p ] || { echo "build $p first (make)" >&2; exit 1; }
done
for b in "$@"; do
    [ -x "$b" ] || { echo "bench/compare.sh: $b is not a program" >&2; exit 2; }
done

# Servers: s0 the floor, s1.. the builds in the order given.
taskset -c "$app_cpu" bench/floor --listen "unix:$run/s0.sock" 2>"$run/s0.log" &
started $!
echo $! >"$run/s0.pid"
n=0
for b in "$@"; do
    n=$((n + 1))
    taskset -c "$app_cpu" "$b" --listen "unix:$run/s$n.sock" --no-access-log 2>"$run/s$n.log" &
    started $!
    echo $! >"$run/s$n.pid"
done
# Each must listen within 5 s, and answer: a build that exited (its log
# says why) or does not speak FastCGI fails the script here.
i=0
while [ $i -le $n ]; do
    for _ in $(seq 50); do
        [ -S "$run/s$i.sock" ] && break
        kill -0 "$(cat "$run/s$i.pid")" 2>/dev/null || break
        sleep 0.1
    done
    if ! [ -S "$run/s$i.sock" ] ||
        ! bench/fcgi-load -c 1 -w 0 -n 1 "unix:$run/s$i.sock" >/dev/null 2>&1; then
        echo "bench/compare.sh: server s$i does not answer; its log:" >&2
        tail -5 "$run/s$i.log" >&2
        exit 1
    fi
    i=$((i + 1))
done

echo "bench/compare.sh: $rounds rounds x $((n + 1)) servers, $secs s each after $warm s:" \
    "about $(echo "$rounds * ($n + 1) * ($secs + $warm + 0.3)" | bc | cut -d. -f1) s" >&2
r=1
while [ "$r" -le "$rounds" ]; do
    i=0
    while [ $i -le $n ]; do
        s=$(((i + r) % (n + 1))) # the order rotates
        if ! taskset -c "$load_cpu" bench/fcgi-load -c 64 -d "$depth" -t "$secs" -w "$warm" \
                --server-pid "$(cat "$run/s$s.pid")" "unix:$run/s$s.sock" \
                >"$run/out.$s.$r" 2>&1; then
            cat "$run/out.$s.$r" >&2
            echo "bench/compare.sh: errors on server s$s (round $r)" >&2
            exit 1
        fi
        awk '/^server CPU/ {print $3}' "$run/out.$s.$r" >"$run/cost.$s.$r"
        i=$((i + 1))
    done
    r=$((r + 1))
done

# ratio_stats TOP BOTTOM: each round's cost of server TOP over that of
# BOTTOM, as "median (lower quartile-upper quartile)"
ratio_stats() {
    r=1
    while [ "$r" -le "$rounds" ]; do
        echo "$(cat "$run/cost.$1.$r") $(cat "$run/cost.$2.$r")"
        r=$((r + 1))
    done | awk '{print $1 / $2}' | sort -g |
        awk '{v[NR] = $1}
             END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                  printf "%.3f (%.3f-%.3f)", m, v[int((NR + 3) / 4)], v[int((3 * NR + 3) / 4)]}'
}
echo
echo "springfield builds and bench/floor, GET /api/v1/flanders with nginx's params, 64 connections at depth $depth"
echo "$rounds rounds of $secs s after $warm s; servers on CPU $app_cpu, fcgi-load on CPU $load_cpu; load average $(cut -d' ' -f1-3 /proc/loadavg)"
fmt='%-40s %9s %-24s %-24s\n'
printf "\n$fmt" "server" "us/req" "floor/it by round" "first/it by round"
i=0
while [ $i -le $n ]; do
    if [ $i -eq 0 ]; then name="bench/floor"; else eval "name=\${$i}"; fi
    cost=$(cat "$run"/cost.$i.* | median)
    printf "$fmt" "$name" "$(printf '%.3f' "$cost")" "$(ratio_stats 0 $i)" \
        "$([ $i -gt 0 ] && ratio_stats 1 $i || echo -)"
    i=$((i + 1))
done
