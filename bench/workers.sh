#!/bin/sh
# --workers measured with bench/fcgi-load over TCP, no front server: one
# process beside a supervisor with 1 and 2 workers on one shared socket,
# and beside 2 processes each on a SO_REUSEPORT socket of its own, in
# interleaved rounds; with the status page's count of what each worker
# answered and how many connections it holds.
#
#   bench/workers.sh [--rounds N] [--seconds S] [--warmup S] [--case NAME]...
#                    (default 3 rounds of 5 s after 1 s of warm-up)
#
# Setups (GET /api/v1/flanders, nginx's 21 params; each on a port of its own):
#   single       springfield, one process, on CPU 0; fcgi-load on CPU 1
#   workers1     --workers 1 (the supervisor and one worker) on CPU 0
#   workers2-cpu0  --workers 2, both on CPU 0: what a second worker costs
#                on a CPU it must share
#   single-2cpu  one process, no CPU pinned (fcgi-load neither): the reference
#                for the two below; they all compete for the 2 CPUs
#   workers2     --workers 2 on one shared socket, no CPU pinned
#   reuseport2   two springfield processes, each on its own socket of one
#                port with SO_REUSEPORT (bench/reuseport.c, LD_PRELOAD): the
#                kernel picks the socket of each new connection
#   single-unix, workers2-unix  one process, and --workers 2, on a unix
#                socket (what nginx is given in deploy/nginx.conf), where
#                SO_REUSEPORT spreads nothing; no CPU pinned
# Cases (--case): kept (64 kept connections, 1 request in flight on each) and cpr
# (64 at a time, a connection per request: every request is an accept).
#
# "split" is each worker's share of the requests answered in the run (and,
# for kept connections, of the 64 connections, read from the status page
# in the middle of the run).  CPU: the servers' CPU time per request, all
# their processes, the supervisor included; at the end, each supervisor's
# own CPU time over the whole run, and every process's memory.  The
# machine may be shared and noisy: read the ratios.
. "$(dirname "$0")/lib.sh"
rounds=3 secs=5 warm=1 cases=""
while [ $# -gt 0 ]; do
    if round_option "$1" "${2:-}"; then shift 2; continue; fi
    case $1 in
    -h|--help) help_text; exit 0 ;;
    *) echo "bench/workers.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
done
setups="single workers1 workers2-cpu0 single-2cpu workers2 reuseport2 single-unix workers2-unix"
cases=${cases:-kept cpr}
[ -x bench/fcgi-load ] || { echo "build bench/fcgi-load first (make)" >&2; exit 1; }
cc -O2 -Wall -shared -fPIC -o "$run/reuseport.so" bench/reuseport.c -ldl
ulimit -n 4096 2>/dev/null || true
hz=$(getconf CLK_TCK)

# start SETUP PREFIX... -- ARGS...: a springfield for SETUP on a port of its own
start() {
    name=$1
    shift
    port=$(free_port)
    eval "port_$(echo "$name" | tr -- - _)=$port"
    "$@" --listen "127.0.0.1:$port" --status-path /status --no-access-log \
        2>>"$run/$name.log" &
    started $!
    echo "$!" >>"$run/$name.pids"
}
start single taskset -c 0 ./springfield
start workers1 taskset -c 0 ./springfield --workers 1
start workers2-cpu0 taskset -c 0 ./springfield --workers 2
start single-2cpu ./springfield
start workers2 ./springfield --workers 2
for s in single-unix workers2-unix; do
    ./springfield $([ $s = workers2-unix ] && echo --workers 2) --listen "unix:$run/$s.sock" \
        --status-path /status --no-access-log 2>>"$run/$s.log" &
    started $!
    echo "$!" >>"$run/$s.pids"
done
port=$(free_port)
port_reuseport2=$port
for _ in 1 2; do
    LD_PRELOAD=$run/reuseport.so ./springfield --listen "127.0.0.1:$port" --status-path /status \
        --no-access-log 2>>"$run/reuseport2.log" &
    started $!
    echo "$!" >>"$run/reuseport2.pids"
done

port_of() { eval "echo \$port_$(echo "$1" | tr -- - _)"; }
# addr_of SETUP: where fcgi-load and the status page reach it
addr_of() {
    case $1 in
    *-unix) echo "unix:$run/$1.sock" ;;
    *) echo "127.0.0.1:$(port_of "$1")" ;;
    esac
}
processes_of() { [ "$1" = reuseport2 ] && echo 2 || echo 1; }
for s in $setups; do
    for _ in $(seq 100); do
        python3 bench/pool_status.py "$(addr_of "$s")" "$(processes_of "$s")" \
            >/dev/null 2>&1 && break
        sleep 0.1
    done
    python3 bench/pool_status.py "$(addr_of "$s")" "$(processes_of "$s")" >/dev/null ||
        { cat "$run/$s.log" >&2; echo "$s does not answer" >&2; exit 1; }
done

# pids SETUP: every process of the setup (supervisors and their workers)
pids() {
    for p in $(cat "$run/$1.pids"); do
        echo "$p"
        cat "/proc/$p/task/$p/children" 2>/dev/null
    done | tr ' ' '\n' | grep . | sort -u
}

case_args() { [ "$1" = cpr ] && echo "-c 64 -1" || echo "-c 64 -d 1"; }
gen_prefix() { case $1 in single|workers1|workers2-cpu0) echo "taskset -c 1" ;; esac; }

# one_run SETUP CASE ROUND: a line in $run/results
one_run() {
    s=$1 c=$2 r=$3
    addr=$(addr_of "$s")
    procs=$(processes_of "$s")
    all=$(pids "$s")
    python3 bench/pool_status.py "$addr" "$procs" >"$run/before" || exit 1
    t0=$(ticks $all)
    out=$run/out.$s.$c.$r
    # shellcheck disable=SC2046
    $(gen_prefix "$s") bench/fcgi-load $(case_args "$c") -t "$secs" -w "$warm" "$addr" \
        >"$out" 2>"$out.err" &
    load=$!
    sleep "$(echo "$warm + $secs / 2" | bc -l)"
    python3 bench/pool_status.py "$addr" "$procs" >"$run/middle" || exit 1
    wait $load || { cat "$out" "$out.err" >&2; echo "errors in $s $c (round $r)" >&2; exit 1; }
    t1=$(ticks $all)
    python3 bench/pool_status.py "$addr" "$procs" >"$run/after" || exit 1
    # the workers' shares of the answers and of the connections (largest first)
    split=$(awk 'NR == FNR {before[$1] = $2; next} {print $2 - before[$1]}' "$run/before" \
            "$run/after" | sort -gr |
        awk '{v[NR] = $1; t += $1} END {for (i = 1; i <= NR; i++) printf "%s%.0f", (i > 1 ? "/" : ""), 100 * v[i] / t}')
    conns=$(awk '{print $3}' "$run/middle" | sort -gr | tr '\n' '/' | sed 's,/$,,')
    awk -v s="$s" -v c="$c" -v r="$r" -v t="$((t1 - t0))" -v hz="$hz" \
        -v shares="$split" -v conns="$conns" '
        /^requests\/s/ {rps = $2} /^requests / {n = $2} /^latency p99 / {p99 = $3}
        END {printf "%s %s %s %.1f %.0f %.2f %s %s\n", s, c, r, rps, p99,
                    t / hz * 1e6 / n, shares, conns}' "$out" >>"$run/results"
    echo "round $r/$rounds $s $c: $(tail -1 "$run/results" | awk '{printf "%.0f req/s, split %s", $4, $7}')" >&2
}

began=$(date +%s)
n_runs=$(($(echo $setups | wc -w) * $(echo $cases | wc -w)))
echo "bench/workers.sh: $rounds rounds x $n_runs runs of $secs s after $warm s:" \
    "about $((rounds * n_runs * (${secs%.*} + ${warm%.*} + 2))) s" >&2
: >"$run/results"
r=1
while [ $r -le "$rounds" ]; do
    if [ $((r % 2)) -eq 1 ]; then order=$setups; else order=$(echo $setups | tr ' ' '\n' | tac); fi
    for c in $cases; do
        for s in $order; do one_run "$s" "$c" "$r"; done
    done
    r=$((r + 1))
done

# med SETUP CASE FIELD
med() {
    awk -v s="$1" -v c="$2" -v f="$3" '$1 == s && $2 == c {print $f}' "$run/results" | median
}
# every round's value of a text field, for the splits
each() { awk -v s="$1" -v c="$2" -v f="$3" '$1 == s && $2 == c {printf "%s%s", n++ ? " " : "", $f}' "$run/results"; }

echo
echo "springfield --workers, driven by bench/fcgi-load over TCP 127.0.0.1 (workers2-unix: a unix"
echo "socket), no front server"
echo "GET /api/v1/flanders with nginx's params; $rounds round(s) of $secs s after $warm s, medians"
echo "$(nproc) CPUs, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $cases; do
    echo
    echo "$c: bench/fcgi-load $(case_args "$c") -t $secs -w $warm 127.0.0.1:PORT|unix:PATH"
    printf '%-14s %9s %6s %8s %8s  %-20s %s\n' setup "req/s" ratio "p99 us" "CPU us" \
        "answered split %" "connections (mid-run)"
    printf '%-14s %9s %6s %8s %8s\n' "" "" "" "" "/req"
    for s in $setups; do
        ref=single
        case $s in
        single-2cpu|workers2|reuseport2) ref=single-2cpu ;;
        *-unix) ref=single-unix ;;
        esac
        printf '%-14s %9.0f %6.2f %8.0f %8.2f  %-20s %s\n' "$s" "$(med "$s" "$c" 4)" \
            "$(echo "$(med "$s" "$c" 4) / $(med "$ref" "$c" 4)" | bc -l)" "$(med "$s" "$c" 5)" \
            "$(med "$s" "$c" 6)" "$(each "$s" "$c" 7)" \
            "$(awk -v s="$s" -v c="$c" '$1 == s && $2 == c {v = $8} END {print v}' "$run/results")"
    done
done
# What the supervisors cost over the whole run: CPU time and memory.
elapsed=$(($(date +%s) - began))
echo
for s in workers1 workers2-cpu0 workers2 workers2-unix; do
    p=$(cat "$run/$s.pids")
    printf 'supervisor of %-14s CPU %5.0f ms in %d s of its life (%.2f ms/s)\n' "$s" \
        "$(echo "$(ticks "$p") * 1000 / $hz" | bc -l)" "$elapsed" \
        "$(echo "$(ticks "$p") * 1000 / $hz / $elapsed" | bc -l)"
done
# memory: RSS, and PSS (pages shared with other processes, a forked
# worker's with its supervisor, counted in part)
for s in single workers1 workers2; do
    for p in $(pids "$s"); do
        printf '%-14s pid %-7s %-10s RSS %6s KiB  PSS %6s KiB\n' "$s" "$p" \
            "$(grep -qx "$p" "$run/$s.pids" && { [ "$s" = single ] && echo process || echo supervisor; } || echo worker)" \
            "$(awk '/^VmRSS/ {print $2}' "/proc/$p/status")" \
            "$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")"
    done
done
cat <<'EOF'

ratio: req/s over single's (single-2cpu's for workers2 and reuseport2, single-unix's for
workers2-unix).  CPU us/req: all the setup's processes, the supervisor's included.
answered split: each worker's share of the run's answers, largest first, one figure per
round; connections: how the 64 kept connections were spread, in the middle of the last round
(the status request's own connection counted where it landed; cpr: those open at that moment).
EOF
