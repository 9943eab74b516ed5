#!/bin/sh
# springfield without a front server: bench/fcgi-load drives it over its
# unix socket, and drives bench/floor (the canned-answer responder, the
# floor of this syscall pattern) the same way, in interleaved rounds.
#
#   bench/app.sh [--rounds N] [--seconds S] [--warmup S] [--case NAME]...
#                [--walk-floor]
#                (default 3 rounds of 10 s after 1 s of warm-up, every case)
#
# Cases (GET /api/v1/flanders with nginx's 21 params):
#   d1     64 connections, 1 request in flight on each
#   d8     64 connections, 8 in flight on each (multiplexed request ids)
#   d32    64 connections, 32 in flight on each
#   cpr    64 connections at a time, a new connection for every request
#   c1000  1,000 connections, 1 request in flight on each
# springfield and the floor run on CPU 0 (--app-cpu), fcgi-load on CPU 1
# (--load-cpu).  Each round measures every case on the floor and on
# springfield, the order alternating from round to round; the table gives
# the median of the rounds: requests/s, their ratio to the floor, the
# floor's CPU time per request over springfield's (the cost ratio, also
# round by round), p99
# latency, the server's CPU time per request and its share of its CPU, and
# the most fcgi-load used of its own CPU (near 100 %, the generator would
# be the bottleneck).  Any error in any run fails the script.  The machines
# are shared and noisy: read the ratios, not the absolutes.
#
# --walk-floor runs `bench/floor --walk-params` in springfield's place (the
# app columns): the floor that also walks each request's params and notes
# the method and the script name, a step any application that routes on its
# params takes, and springfield takes with more (NULs checked, routing, the
# answer built, counted and timed).  Its ratio to the floor is what that one
# step costs.
. "$(dirname "$0")/lib.sh"
rounds=3 secs=10 warm=1 app_cpu=0 load_cpu=1 cases="" app_cmd=./springfield
while [ $# -gt 0 ]; do
    if round_option "$1" "${2:-}"; then shift 2; continue; fi
    case $1 in
    --app-cpu) app_cpu=$2; shift 2 ;;
    --load-cpu) load_cpu=$2; shift 2 ;;
    --walk-floor) app_cmd="bench/floor --walk-params"; shift ;;
    -h|--help) help_text; exit 0 ;;
    *) echo "bench/app.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
done
cases=${cases:-d1 d8 d32 cpr c1000}
for p in bench/fcgi-load bench/floor; do
    [ -x $p ] || { echo "build $p first (make)" >&2; exit 1; }
done

case_args() {
    case $1 in
    d1) echo "-c 64 -d 1" ;;
    d8) echo "-c 64 -d 8" ;;
    d32) echo "-c 64 -d 32" ;;
    cpr) echo "-c 64 -1" ;;
    c1000) echo "-c 1000 -d 1" ;;
    *) echo "bench/app.sh: unknown case $1" >&2; exit 2 ;;
    esac
}
case_label() {
    case $1 in
    d1) echo "depth 1" ;;
    d8) echo "depth 8" ;;
    d32) echo "depth 32" ;;
    cpr) echo "conn per request" ;;
    c1000) echo "1000 conns" ;;
    esac
}
for c in $cases; do case_args "$c" >/dev/null; done

ulimit -n 4096 2>/dev/null || true
if [ "$app_cmd" = ./springfield ]; then
    taskset -c "$app_cpu" ./springfield --listen "unix:$run/app.sock" --no-access-log \
        2>"$run/app.log" &
else
    taskset -c "$app_cpu" $app_cmd --listen "unix:$run/app.sock" 2>"$run/app.log" &
fi
started $!
app_pid=$!
taskset -c "$app_cpu" bench/floor --listen "unix:$run/floor.sock" 2>"$run/floor.log" &
started $!
floor_pid=$!
for s in app floor; do
    for _ in $(seq 50); do
        bench/fcgi-load -c 1 -w 0 -n 1 "unix:$run/$s.sock" >/dev/null 2>&1 && break
        sleep 0.1
    done
    bench/fcgi-load -c 1 -w 0 -n 1 "unix:$run/$s.sock" >/dev/null ||
        { echo "$s does not answer; logs in $run" >&2; exit 1; }
done

# one_run CASE SYSTEM ROUND: the output in $run/CASE.SYSTEM.ROUND
one_run() {
    pid=$app_pid
    [ "$2" = floor ] && pid=$floor_pid
    # shellcheck disable=SC2046
    if ! taskset -c "$load_cpu" bench/fcgi-load $(case_args "$1") -t "$secs" -w "$warm" \
            --server-pid "$pid" "unix:$run/$2.sock" >"$run/$1.$2.$3" 2>"$run/$1.$2.$3.err"; then
        cat "$run/$1.$2.$3" "$run/$1.$2.$3.err" >&2
        echo "bench/app.sh: errors in case $1 on $2 (round $3)" >&2
        exit 1
    fi
    echo "round $3/$rounds $1 $2: $(awk '/^requests\/s/ {printf "%.0f req/s", $2}' "$run/$1.$2.$3")" >&2
}

n_cases=$(echo $cases | wc -w)
echo "bench/app.sh: $rounds rounds x $n_cases cases x 2, $secs s each after $warm s warm-up:" \
    "about $((rounds * n_cases * 2 * (${secs%.*} + ${warm%.*} + 1))) s" >&2
r=1
while [ $r -le "$rounds" ]; do
    for c in $cases; do
        if [ $((r % 2)) -eq 1 ]; then order="floor app"; else order="app floor"; fi
        for s in $order; do one_run "$c" "$s" "$r"; done
    done
    r=$((r + 1))
done

# median_of CASE SYSTEM AWK-PROGRAM: the median over the rounds of what the
# program prints for each run's output
median_of() {
    for f in "$run/$1.$2".[0-9]*; do
        case $f in *.err) continue ;; esac
        awk "$3" "$f"
    done | median
}
rps='/^requests\/s/ {print $2}'
p99='/^latency p99 / {print $3}'
cpu_req='/^server CPU/ {print $3}'
cpu_pct='/^server CPU/ {print $7}'
load_pct='/^generator CPU/ {print $9}'
load_req='/^generator CPU/ {print $3}'
bytes='/^answer bytes/ {print $3}'
waits='/^(generator|server) waited/ {print $3}'

echo
echo "$app_cmd (app) and bench/floor driven by bench/fcgi-load over unix sockets, no front server"
echo "GET /api/v1/flanders with nginx's params; $rounds round(s) of $secs s after $warm s warm-up, medians"
echo "servers on CPU $app_cpu, fcgi-load on CPU $load_cpu; $(nproc) CPUs, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "each run: taskset -c $load_cpu bench/fcgi-load OPTIONS -t $secs -w $warm --server-pid PID unix:SOCKET"
# round_ratios CASE PROGRAM TOP BOTTOM: each round's figure (what the awk
# PROGRAM prints from a run's output) of system TOP over that of BOTTOM in
# the same round (the two ran one after the other), as "median
# (lowest-highest)"
round_ratios() {
    r=1
    while [ $r -le "$rounds" ]; do
        echo "$(awk "$2" "$run/$1.$3.$r") $(awk "$2" "$run/$1.$4.$r")"
        r=$((r + 1))
    done | awk '{print $1 / $2}' | sort -g |
        awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                               printf "%.3f (%.3f-%.3f)", m, v[1], v[NR]}'
}
fmt='%-30s %9s %9s %6s %-19s %6s %-19s %8s %8s %7s %7s %7s %5s %5s %5s %5s\n'
printf "\n$fmt" "" app floor "" "ratio by round" cost "cost by round" app floor app floor load app \
    floor load max
printf "$fmt" "case (fcgi-load options)" "req/s" "req/s" ratio "median (range)" ratio "median (range)" \
    "p99 us" \
    "p99 us" "us/req" "us/req" "us/req" "CPU%" "CPU%" "CPU%" "wait%"
for c in $cases; do
    a=$(median_of "$c" app "$rps"); f=$(median_of "$c" floor "$rps")
    outs=$(ls "$run/$c".*.[0-9]* | grep -v '\.err$')
    lp=$(for x in $outs; do awk "$load_pct" "$x"; done | sort -g | tail -1)
    wp=$(for x in $outs; do awk "$waits" "$x"; done | sort -g | tail -1)
    au=$(median_of "$c" app "$cpu_req"); fu=$(median_of "$c" floor "$cpu_req")
    printf '%-30s %9.0f %9.0f %6.3f %-19s %6.3f %-19s %8.0f %8.0f %7.2f %7.2f %7.2f %5.0f %5.0f %5.0f %5.0f\n' \
        "$(case_label "$c") ($(case_args "$c"))" "$a" "$f" "$(echo "$a / $f" | bc -l)" \
        "$(round_ratios "$c" "$rps" app floor)" "$(echo "$fu / $au" | bc -l)" \
        "$(round_ratios "$c" "$cpu_req" floor app)" \
        "$(median_of "$c" app "$p99")" "$(median_of "$c" floor "$p99")" \
        "$au" "$fu" \
        "$(median_of "$c" floor "$load_req")" \
        "$(median_of "$c" app "$cpu_pct")" "$(median_of "$c" floor "$cpu_pct")" "$lp" "$wp"
    ab=$(median_of "$c" app "$bytes"); fb=$(median_of "$c" floor "$bytes")
    [ "$ab" = "$fb" ] || echo "  note: springfield answers $ab bytes, the floor $fb: update bench/floor.c"
done
if [ "$app_cmd" != ./springfield ]; then
    # what the walking floor says at exit: every PARAMS record walked?
    kill "$app_pid"
    wait "$app_pid" || true
    echo
    grep '^floor: walked' "$run/app.log" || echo "(the walking floor said nothing at exit)"
fi
cat <<'EOF'

ratio: springfield's req/s over the floor's (the medians of the rounds).  ratio by round:
each round's ratio of its two runs, which ran one after the other (the machine's speed
drifts less between those than across the whole run), their median and range.  cost
ratio: the floor's CPU time per request over springfield's (the medians), the engine's own
cost whatever the load (cost by round: each round's, paired as for req/s): where the
floor's CPU% is well below 100, fcgi-load (whose syscalls
cost about the floor's) could not drive it faster, its req/s is the generator's limit and
the req/s ratio reads high; the cost ratio does not.  us/req,
CPU%: a server's CPU time (utime + stime) per request and its share of one CPU.  load
us/req: fcgi-load's own CPU time per request against the floor, about the floor's own (the
same syscalls, one read and one write per batch): on a CPU of its own it keeps the floor
busy to within a few % at depth 1 and with a connection per request, to about 90 % at
depths 8 and 32 (the floor's CPU%), where the cost ratio is the figure.  load CPU%: the most fcgi-load used of its CPU in any run.  max wait%:
the longest any server or fcgi-load was runnable but waiting for a CPU (other processes on
it), in any run: above a few %, the machine was busy with something else and req/s and p99
show it.
EOF
