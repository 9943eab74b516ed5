# bench/lib.sh — what the bench scripts share, sourced by each of them:
# a private run directory ($run, with springfield's socket at $sock), free
# ports, nginx in front of springfield, waiting for an answer, and wrk runs
# that fail on any error.  Everything started through `started PID` is
# stopped, and $run removed, when the script ends, whatever its status.
set -eu
cd "$(dirname "$0")/.."
[ -x springfield ] || { echo "build springfield first (make)" >&2; exit 1; }

run=$(mktemp -d /tmp/springfield-bench.XXXXXX)
chmod 755 "$run" # nginx workers run as another user and must reach the socket
sock=$run/sf.sock
bench_pids=""
# The script's own status survives the clean-up (a server killed by its
# signal must not become the script's status, nor stop `set -e` early).
trap 'rc=$?; for p in $bench_pids; do kill "$p" 2>/dev/null || true; done
      for p in $bench_pids; do wait "$p" 2>/dev/null || true; done
      rm -rf "$run"; exit $rc' EXIT
trap 'exit 130' INT TERM

started() { bench_pids="$bench_pids $1"; }

# ticks PID...: their CPU time so far (utime + stime, in clock ticks,
# every thread's, the ended ones' too), summed
ticks() {
    t=0
    for p in "$@"; do t=$((t + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat"))); done
    echo $t
}

# median: the median of the numbers on standard input, one a line ("nan"
# for none); never in exponent form, which bc cannot read
median() {
    sort -g | awk '{v[NR] = $1}
                   END {if (NR == 0) print "nan"
                        else printf "%.6f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# help_text: the script's header comment, for its --help
help_text() { sed -n '2,/^\. /{/^\. /d;s/^# \{0,1\}//;p}' "$0"; }

# round_option OPTION VALUE: the options of the scripts that measure in
# interleaved rounds, into $rounds, $secs, $warm and $cases (--case adds
# one); true when OPTION is one of them (the caller shifts two).
round_option() {
    case $1 in
    --rounds) rounds=$2 ;;
    --seconds) secs=$2 ;;
    --warmup) warm=$2 ;;
    --case) cases="$cases $2" ;;
    *) return 1 ;;
    esac
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# nginx_conf PORT [HTTP_EXTRA] [WORKER_EXTRA]: $run/nginx.conf, one worker,
# serving /api/ on 127.0.0.1:PORT through the upstream `springfield` (the
# unix socket $sock, keepalive sized above any concurrency used here).
nginx_conf() {
    cat >"$run/nginx.conf" <<CONF
daemon off;
worker_processes 1;
${3:-}
pid $run/nginx.pid;
error_log $run/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_max_body_size 1m;
    client_body_temp_path $run/body; fastcgi_temp_path $run/fcgi; proxy_temp_path $run/proxy;
    uwsgi_temp_path $run/uwsgi; scgi_temp_path $run/scgi;
    upstream springfield { server unix:$sock; keepalive 1024; }
    server {
        listen 127.0.0.1:$1;
        location /api/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass springfield;
            fastcgi_keep_conn on;
        }
    }
    ${2:-}
}
CONF
}

# wait_for URL: until it answers 2xx, at most 5 s.
wait_for() {
    for _ in $(seq 50); do
        curl -fsS "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "no answer from $1; logs in $run" >&2
    exit 1
}

# measure URL CONNECTIONS SECONDS [WRK_PREFIX...]: prints requests/s; the
# script fails on any socket error or non-2xx answer.
measure() {
    url=$1 c=$2 d=$3
    shift 3
    out=$("$@" wrk -t1 -c"$c" -d"${d}s" --timeout 5s "$url")
    if echo "$out" | grep -qE 'Non-2xx|Socket errors'; then
        echo "$out" >&2
        echo "errors while measuring $url" >&2
        exit 1
    fi
    echo "$out" | awk '/Requests\/sec/ {print $2}'
}
