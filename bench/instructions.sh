#!/bin/sh
# Instructions per request, springfield beside bench/floor, counted by
# callgrind: machines without a hardware counter (virtual machines: `perf
# stat -e instructions true` says <not supported>) still get a figure that
# does not depend on how busy the machine is.
#
#   bench/instructions.sh [--requests N] [--depth D]... [--profile D] [--access-log]
#                         [--save DIR]
#                         (default 20000 requests, depths 1 and 8)
#
# Each server runs under valgrind --tool=callgrind; fcgi-load sends 2000
# requests to warm it, the counters are zeroed (callgrind_control -z), it
# sends exactly N more on 64 connections at depth D, and the counters are
# dumped: the dump's instruction total over N is the server's user-space
# instructions per request (the kernel's share, the syscalls, is not in
# it).  fcgi-load's own count comes from two runs of its own under
# callgrind, N and 2N requests against the floor: the difference over N.
# --profile D also prints callgrind_annotate's top functions of
# springfield at depth D (self cost, inclusive below).  springfield runs
# with --no-access-log unless --access-log is given (its default: one line
# per request, here into the run directory).  --save DIR keeps each
# callgrind dump there (callgrind.app.D, callgrind.floor.D) for
# callgrind_annotate --auto=yes.
. "$(dirname "$0")/lib.sh"
n=20000 depths="" profile="" log_arg=--no-access-log save=""
while [ $# -gt 0 ]; do
    case $1 in
    --requests) n=$2; shift 2 ;;
    --depth) depths="$depths $2"; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --access-log) log_arg=--access-log; shift ;;
    --save) save=$2; shift 2 ;;
    -h|--help) help_text; exit 0 ;;
    *) echo "bench/instructions.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
done
depths=${depths:-1 8}
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    { echo "bench/instructions.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
for p in bench/fcgi-load bench/floor; do
    [ -x $p ] || { echo "build $p first (make)" >&2; exit 1; }
done
load() { bench/fcgi-load --timeout 120 -w 0 "$@"; }

# total_ir FILE: the instruction total of a callgrind dump
total_ir() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

# count NAME DEPTH COMMAND...: sets ir to the instructions per request of
# COMMAND (in this shell, so the clean-up knows the server)
count() {
    name=$1 depth=$2
    shift 2
    sock=$run/$name.sock
    rm -f "$sock"
    valgrind --tool=callgrind --callgrind-out-file="$run/cg.$name.$depth.%p" \
        "$@" --listen "unix:$sock" >"$run/$name.$depth.log" 2>&1 &
    pid=$!
    started $pid
    for _ in $(seq 300); do
        load -c 1 -n 1 "unix:$sock" >/dev/null 2>&1 && break
        sleep 0.1
    done
    load -c 64 -d "$depth" -n 2000 "unix:$sock" >/dev/null ||
        { echo "$name does not answer under valgrind; see $run/$name.$depth.log" >&2; exit 1; }
    callgrind_control -z "$pid" >/dev/null 2>&1
    load -c 64 -d "$depth" -n "$n" "unix:$sock" >"$run/$name.$depth.load" ||
        { cat "$run/$name.$depth.load" >&2; exit 1; }
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    dump=$(ls "$run/cg.$name.$depth.$pid".* 2>/dev/null | grep -v "\.$pid$" | head -1)
    [ -n "$dump" ] || { echo "no callgrind dump for $name" >&2; exit 1; }
    cp "$dump" "$run/profile.$name.$depth"
    [ -z "$save" ] || { mkdir -p "$save" && cp "$dump" "$save/callgrind.$name.$depth"; }
    ir=$(echo "$(total_ir "$dump") $n" | awk '{printf "%.0f", $1 / $2}')
}

echo "user-space instructions per request (callgrind), $n requests on 64 connections, after 2000 to warm up;" \
    "springfield $log_arg"
printf '%-8s %14s %14s %8s\n' depth springfield floor ratio
for d in $depths; do
    count app "$d" ./springfield $log_arg
    a=$ir
    count floor "$d" bench/floor
    f=$ir
    printf '%-8s %14s %14s %8.1f\n' "$d" "$a" "$f" "$(echo "$a / $f" | bc -l)"
done

# fcgi-load's own: N and 2N requests at depth 8 against the floor
bench/floor --listen "unix:$run/gen.sock" &
started $!
for _ in $(seq 50); do load -c 1 -n 1 "unix:$run/gen.sock" >/dev/null 2>&1 && break; sleep 0.1; done
for k in 1 2; do
    valgrind --tool=callgrind --callgrind-out-file="$run/cg.gen.$k" \
        bench/fcgi-load -w 0 -c 64 -d 8 -n $((k * n)) "unix:$run/gen.sock" >/dev/null 2>&1
done
g=$(echo "$(total_ir "$run/cg.gen.1") $(total_ir "$run/cg.gen.2") $n" | awk '{printf "%.0f", ($2 - $1) / $3}')
echo "fcgi-load itself: $g instructions per request (depth 8, the difference of $n and $((2 * n)) requests)"

if [ -n "$profile" ]; then
    [ -f "$run/profile.app.$profile" ] || count app "$profile" ./springfield $log_arg
    # per request; the lines at ~100 % are the call stack the counters were
    # zeroed under (main, serve, ev_run), not work
    per_req() {
        sed -n '/file:function/,$p' | grep -E '^ *[0-9,]+ ' | grep -vE '\((99\.[0-9]+|100\.0)%\)' |
            head -"$1" | awk -v n="$n" '{ir = $1; gsub(",", "", ir); $1 = ""; printf "%8.0f %s\n", ir / n, $0}'
    }
    echo
    echo "springfield at depth $profile, instructions per request: own (callgrind_annotate)"
    callgrind_annotate --threshold=100 --auto=no "$run/profile.app.$profile" | per_req 25
    echo
    echo "inclusive (with what they call)"
    callgrind_annotate --threshold=100 --auto=no --inclusive=yes "$run/profile.app.$profile" |
        grep -E '^ *[0-9,]+ .*\[|file:function' | per_req 15
fi
