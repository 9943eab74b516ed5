#!/bin/sh
# The backend routes through nginx beside their backends' own ceilings and
# beside flanders, in one run, in interleaved rounds.
#
#   bench/backends.sh [--rounds N] [--seconds S] [--connections C]
#                     [--mysql-connections N] [--case NAME]...
#                     (default 3 rounds of 5 s, 64 connections, springfield's
#                     default MySQL pool, every case)
#
# It starts its own redis-server, MariaDB (a private mariadbd with its own
# data directory, as tests/integration/launch_mariadb.py does), the MongoDB
# stand-in (tests/standins/), s3rver (tests/s3, npm), springfield and nginx
# (one worker), all on 127.0.0.1 or unix sockets, and stops exactly those
# processes when it ends.  Every server runs on CPU 0, every load generator
# on CPU 1, so CPU 0 is what the stack shares: each run reports, beside its
# requests/s, the CPU time per request of nginx, springfield and the
# backend, and how idle CPU 0 stayed.
#
# Cases:
#   flanders                   wrk GET /api/v1/flanders (no backend)
#   marges-get, marges-post    wrk GET/POST /api/v1/marges/bench (32-byte value)
#   redis-get, redis-set       redis-benchmark -c C -d 32 -t get|set: Redis' own
#                              ceiling, one command in flight per client
#   redis-get-p16              redis-benchmark ... -P 16: Redis pipelined
#   lisas-get                  wrk GET /api/v1/lisas/bench
#   lisas-post                 wrk POST /api/v1/lisas/NAME, a new NAME each time
#                              (an INSERT committed, as mysqlslap's below)
#   slap-select, slap-insert   mysqlslap, C clients: the same point select
#                              and the same upsert of new names
#   slap-select-pool, slap-insert-pool
#                              the same with as many clients as springfield
#                              has MySQL connections
#   homers-get, homers-post    wrk GET/POST /api/v1/homers/bench (a JSON body)
#   bart-get, bart-post        wrk GET/POST /api/v1/bart (32 bytes)
#
# The table gives medians over the rounds.  The machine may be shared and
# noisy: read the ratios and the CPU split, not the absolutes; "others"
# is the share of CPU 0 that neither our servers nor idle account for.
. "$(dirname "$0")/lib.sh"
rounds=3 secs=5 conns=64 pool="" cases=""
while [ $# -gt 0 ]; do
    if round_option "$1" "${2:-}"; then shift 2; continue; fi
    case $1 in
    --connections) conns=$2; shift 2 ;;
    --mysql-connections) pool=$2; shift 2 ;;
    -h|--help) help_text; exit 0 ;;
    *) echo "bench/backends.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
done
all="flanders marges-get marges-post redis-get redis-set redis-get-p16 lisas-get lisas-post
     slap-select slap-select-pool slap-insert slap-insert-pool homers-get homers-post
     bart-get bart-post"
cases=${cases:-$all}
for c in $cases; do
    echo " $all " | tr -s ' \n' ' ' | grep -q " $c " ||
        { echo "bench/backends.sh: unknown case $c (--help)" >&2; exit 2; }
done
for t in wrk redis-server redis-benchmark mariadbd mariadb-install-db mariadb mysqlslap \
         nginx node taskset; do
    command -v $t >/dev/null 2>&1 || { echo "bench/backends.sh: $t is not installed" \
        "(deploy/setup-debian.sh installs it)" >&2; exit 1; }
done
[ -d tests/s3/node_modules/s3rver ] ||
    { echo "bench/backends.sh: run 'cd tests/s3 && npm ci' first" >&2; exit 1; }
# springfield's own default unless --mysql-connections is given (a build
# that predates the flag keeps its 4)
pool_args=""
if [ -n "$pool" ]; then
    pool_args="--mysql-connections $pool"
else
    pool=$(./springfield --help | sed -n 's/.*--mysql-connections N.*(default \([0-9]*\)).*/\1/p')
    pool=${pool:-4}
fi
srv="taskset -c 0" gen="taskset -c 1"
hz=$(getconf CLK_TCK)
ulimit -n 4096 2>/dev/null || true

# --- the servers --------------------------------------------------------------

p_http=$(free_port); p_redis=$(free_port); p_mysql=$(free_port)
value=$(printf '%032d' 0 | tr 0 m) # 32 bytes, as redis-benchmark -d 32
printf '%s' "$value" >"$run/value"
printf '{"name":"Homer","beers":42}' >"$run/homer.json"

$srv redis-server --port "$p_redis" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$run" >"$run/redis.log" 2>&1 &
started $!
redis_pid=$!

mkdir -p "$run/mariadb"
timeout 120 mariadb-install-db --no-defaults --datadir="$run/mariadb/data" --user=root \
    --auth-root-authentication-method=normal --skip-test-db >"$run/mariadb/install.log" 2>&1 ||
    { cat "$run/mariadb/install.log" >&2; echo "mariadb-install-db failed" >&2; exit 1; }
cat >"$run/mariadb/init.sql" <<'SQL'
CREATE DATABASE IF NOT EXISTS `springfield`;
CREATE USER IF NOT EXISTS 'sf'@'127.0.0.1' IDENTIFIED BY 'sfpw';
GRANT ALL ON `springfield`.* TO 'sf'@'127.0.0.1';
SQL
$srv mariadbd --no-defaults --datadir="$run/mariadb/data" --port="$p_mysql" \
    --bind-address=127.0.0.1 --socket="$run/mariadb/mariadb.sock" \
    --pid-file="$run/mariadb/mariadb.pid" --user=root --init-file="$run/mariadb/init.sql" \
    --skip-name-resolve --innodb-buffer-pool-size=64M --skip-log-bin \
    >"$run/mariadb/output.log" 2>&1 &
started $!
mysql_pid=$!
my() {
    mariadb --no-defaults -h127.0.0.1 -P"$p_mysql" -usf -psfpw --batch --skip-column-names \
        springfield "$@"
}
for _ in $(seq 300); do my -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
my -e 'SELECT 1' >/dev/null || { tail "$run/mariadb/output.log" >&2; exit 1; }

$srv /usr/bin/python3 tests/standins/mongo_standin.py --port 0 --port-file "$run/mongo.port" \
    2>"$run/mongo.log" &
started $!
mongo_pid=$!

mkdir -p "$run/s3"
$srv node tests/s3/run-s3rver.js --directory "$run/s3" --address 127.0.0.1 --port 0 \
    --bucket springfield-bart >"$run/s3.log" 2>&1 &
started $!
s3_pid=$!

for _ in $(seq 300); do
    [ -s "$run/mongo.port" ] && grep -q '^ready ' "$run/s3.log" && break
    sleep 0.1
done
p_mongo=$(cat "$run/mongo.port")
p_s3=$(sed -n 's/^ready [0-9.]*:\([0-9]*\)$/\1/p' "$run/s3.log")
[ -n "$p_mongo" ] && [ -n "$p_s3" ] ||
    { cat "$run/mongo.log" "$run/s3.log" >&2; echo "stand-ins did not start" >&2; exit 1; }

nginx_conf "$p_http"
REDIS_HOST=127.0.0.1 REDIS_PORT=$p_redis \
MYSQL_HOST=127.0.0.1 MYSQL_PORT=$p_mysql MYSQL_DATABASE=springfield MYSQL_USER=sf \
MYSQL_PASSWORD=sfpw \
MONGODB_URI="mongodb://127.0.0.1:$p_mongo/springfield" \
AWS_S3_BUCKET=springfield-bart AWS_S3_OBJECT=bart AWS_ACCESS_KEY_ID=S3RVER \
AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 AWS_ENDPOINT_URL_S3="http://127.0.0.1:$p_s3" \
    $srv ./springfield --listen "unix:$sock" --socket-mode 0666 --no-access-log $pool_args \
    2>"$run/sf.log" &
started $!
sf_pid=$!
$srv nginx -c "$run/nginx.conf" -e "$run/error.log" &
started $!
nginx_master=$!
base=http://127.0.0.1:$p_http/api/v1
wait_for "$base/flanders"
nginx_pid=$(cat "/proc/$nginx_master/task/$nginx_master/children" | awk '{print $1}')

# Each route's row, and the rows the load reads (all of them answer 2xx).
for _ in $(seq 100); do
    curl -fsS --data-binary @"$run/value" "$base/marges/bench" >/dev/null 2>&1 &&
    curl -fsS --data-binary @"$run/value" "$base/lisas/bench" >/dev/null 2>&1 &&
    curl -fsS --data-binary @"$run/homer.json" "$base/homers/bench" >/dev/null 2>&1 &&
    curl -fsS --data-binary @"$run/value" "$base/bart" >/dev/null 2>&1 && break
    sleep 0.1
done
for r in marges/bench lisas/bench homers/bench bart; do
    curl -fsS "$base/$r" >/dev/null || { tail "$run/sf.log" >&2; exit 1; }
done
redis-cli -h 127.0.0.1 -p "$p_redis" SET key:000000000000 "$value" >/dev/null

# wrk's POSTs: the value as body; lisas-post a new name for every request
# (NAME_PREFIX differs from run to run, so every POST inserts a row).
cat >"$run/post.lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
LUA
cat >"$run/post-new.lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local base, prefix, n = os.getenv("PATH_BASE"), os.getenv("NAME_PREFIX"), 0
request = function()
    n = n + 1
    return wrk.format("POST", base .. prefix .. n, nil, body)
end
LUA

# --- one run ------------------------------------------------------------------

# cpu0: busy and total ticks of CPU 0.  (Softirqs, where the loopback
# traffic is processed, are counted to the process they interrupt: in
# its time, as with any tick-based accounting.)
cpu0() {
    awk '$1 == "cpu0" {t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t}' /proc/stat
}
# children: $gen_s, user + system seconds of the finished children (the
# load generators), from the shell's own `times` (run in this shell: a
# subshell's counts start at zero)
children() {
    times >"$run/times"
    gen_s=$(awk 'NR == 2 {split($1, u, /[ms]/); split($2, s, /[ms]/);
                          printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2]}' "$run/times")
}

backend_pid() {
    case $1 in
    marges-*|redis-*) echo "$redis_pid" ;;
    lisas-*|slap-*) echo "$mysql_pid" ;;
    homers-*) echo "$mongo_pid" ;;
    bart-*) echo "$s3_pid" ;;
    *) echo "" ;;
    esac
}

# wrk_run URL [wrk options...]: "requests seconds" on stdout; fails on errors
wrk_run() {
    url=$1
    shift
    out=$(timeout $((secs + 30)) $gen wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s "$@" "$url") ||
        { echo "$out" >&2; echo "wrk failed on $url" >&2; exit 1; }
    if echo "$out" | grep -qE 'Non-2xx|Socket errors'; then
        echo "$out" >&2
        echo "errors while measuring $url" >&2
        exit 1
    fi
    echo "$out" | awk '/requests in/ {n = $1; s = $4; sub(/,$/, "", s);
        if (s ~ /ms$/) s = s / 1000; else if (s ~ /m$/) s = s * 60; else sub(/s$/, "", s);
        print n, s}'
}

# redis_run N ARGS...: "requests seconds"
redis_run() {
    n=$1
    shift
    out=$(timeout $((secs * 4 + 30)) $gen redis-benchmark -h 127.0.0.1 -p "$p_redis" \
          -c "$conns" -d 32 -n "$n" -q "$@" 2>&1) ||
        { echo "$out" >&2; echo "redis-benchmark failed" >&2; exit 1; }
    rps=$(echo "$out" | tr '\r' '\n' | awk '/requests per second/ {v = $2} END {print v}')
    [ -n "$rps" ] || { echo "$out" >&2; echo "no rate from redis-benchmark" >&2; exit 1; }
    echo "$n $(echo "$n / $rps" | bc -l)"
}

# slap_run CLIENTS QUERIES SQL: "requests seconds"
slap_run() {
    out=$(timeout $((secs * 4 + 60)) $gen mysqlslap --no-defaults -h127.0.0.1 -P"$p_mysql" \
          -usf -psfpw --create-schema=springfield --concurrency="$1" --iterations=1 \
          --number-of-queries="$2" --query="$3" 2>&1) ||
        { echo "$out" >&2; echo "mysqlslap failed" >&2; exit 1; }
    s=$(echo "$out" | awk '/Average number of seconds/ {print $(NF - 1)}')
    [ -n "$s" ] || { echo "$out" >&2; echo "no time from mysqlslap" >&2; exit 1; }
    echo "$2 $s"
}

# How many requests a tool with a count instead of a duration should send
# to last about $secs: from its rate in the previous run (or a short probe).
sized() {
    f=$run/rate.$1
    if [ -s "$f" ]; then
        awk -v s="$secs" -v m="$2" '{n = int($1 * s); if (n < m) n = m; print n}' "$f"
    else
        echo "$2"
    fi
}

select_sql="SELECT content FROM lisa WHERE name='bench'"
insert_sql="INSERT INTO lisa (name, content) VALUES (LEFT(MD5(RAND()), 32), '$value') \
ON DUPLICATE KEY UPDATE content=VALUES(content)" # one line: mysqlslap splits at line ends
run_no=0

# load CASE ROUND: runs the case's load, prints "requests seconds"
load() {
    run_no=$((run_no + 1))
    case $1 in
    flanders) wrk_run "$base/flanders" ;;
    marges-get) wrk_run "$base/marges/bench" ;;
    marges-post) BODY_FILE=$run/value wrk_run "$base/marges/bench" -s "$run/post.lua" ;;
    lisas-get) wrk_run "$base/lisas/bench" ;;
    lisas-post) BODY_FILE=$run/value PATH_BASE=/api/v1/lisas/ NAME_PREFIX="r$2n${run_no}x" \
        wrk_run "$base/lisas/" -s "$run/post-new.lua" ;;
    homers-get) wrk_run "$base/homers/bench" ;;
    homers-post) BODY_FILE=$run/homer.json wrk_run "$base/homers/bench" -s "$run/post.lua" ;;
    bart-get) wrk_run "$base/bart" ;;
    bart-post) BODY_FILE=$run/value wrk_run "$base/bart" -s "$run/post.lua" ;;
    redis-get) redis_run "$(sized "$1" 50000)" -t get ;;
    redis-set) redis_run "$(sized "$1" 50000)" -t set ;;
    redis-get-p16) redis_run "$(sized "$1" 200000)" -t get -P 16 ;;
    slap-select) slap_run "$conns" "$(sized "$1" 20000)" "$select_sql" ;;
    slap-select-pool) slap_run "$pool" "$(sized "$1" 20000)" "$select_sql" ;;
    slap-insert) slap_run "$conns" "$(sized "$1" 2000)" "$insert_sql" ;;
    slap-insert-pool) slap_run "$pool" "$(sized "$1" 2000)" "$insert_sql" ;;
    esac
}

# measure_case CASE ROUND: one line in $run/results
measure_case() {
    be=$(backend_pid "$1")
    t_ng=$(ticks "$nginx_pid"); t_sf=$(ticks "$sf_pid"); t_be=$([ -n "$be" ] && ticks "$be" || echo 0)
    c0=$(cpu0); children; g0=$gen_s
    res=$(load "$1" "$2")
    c1=$(cpu0); children; g1=$gen_s
    t_ng=$(($(ticks "$nginx_pid") - t_ng)); t_sf=$(($(ticks "$sf_pid") - t_sf))
    t_be=$(($([ -n "$be" ] && ticks "$be" || echo 0) - t_be))
    # $1 case $2 round $3 requests $4 seconds $5-$7 ticks of nginx, springfield, backend
    # $8 $9 CPU 0 busy and total ticks before, $10 $11 after, $12 $13 generator seconds
    echo "$1 $2 $res $t_ng $t_sf $t_be $c0 $c1 $g0 $g1" | awk -v hz="$hz" '{
        n = $3; rate = n / $4
        busy = ($10 - $8) / hz; total = ($11 - $9) / hz
        ng = $5 / hz; sf = $6 / hz; be = $7 / hz
        idle = 100 * (1 - busy / total)
        # fields: 3 rate, 4-6 us/req, 7-9 CPU%, 10 idle%, 11 gen%, 12 other%
        printf "%s %s %.1f %.2f %.2f %.2f %.1f %.1f %.1f %.1f %.1f %.1f\n", $1, $2, rate,
            ng * 1e6 / n, sf * 1e6 / n, be * 1e6 / n,
            100 * ng / total, 100 * sf / total, 100 * be / total,
            idle, 100 * ($13 - $12) / total, 100 - idle - 100 * (ng + sf + be) / total
    }' >>"$run/results"
    # redis-benchmark and mysqlslap get a count: size the next run by this rate
    tail -1 "$run/results" | awk '{print $3}' >"$run/rate.$1"
    echo "round $2/$rounds $(tail -1 "$run/results" | awk '{printf "%s: %.0f req/s", $1, $3}')" >&2
}

# One warm-up pass (and the first sizes for the counted tools), unmeasured.
n_cases=$(echo $cases | wc -w)
echo "bench/backends.sh: $rounds rounds x $n_cases cases, about" \
    "$((rounds * n_cases * (${secs%.*} + 2) + n_cases * 2)) s" >&2
saved_secs=$secs
secs=1
for c in $cases; do measure_case "$c" 0 >/dev/null 2>&1 || { echo "warm-up of $c failed" >&2; measure_case "$c" 0; }; done
secs=$saved_secs
: >"$run/results"

r=1
while [ $r -le "$rounds" ]; do
    if [ $((r % 2)) -eq 1 ]; then order=$cases; else order=$(echo $cases | tr ' ' '\n' | tac); fi
    for c in $order; do measure_case "$c" "$r"; done
    r=$((r + 1))
done

# --- the table ----------------------------------------------------------------

# med CASE FIELD: the median over the rounds of a field of $run/results
med() {
    awk -v c="$1" -v f="$2" '$1 == c {print $f}' "$run/results" | median
}
has() { echo " $cases " | tr -s ' \n' ' ' | grep -q " $1 "; }
rate() { has "$1" && med "$1" 3 || echo nan; }
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {if (a == "nan" || b == "nan" || b == 0) print "-";
                                    else printf "%.2f\n", a / b}'
}
fl=$(rate flanders)

echo
echo "springfield's backend routes through nginx (one worker), wrk -t1 -c$conns, beside their"
echo "backends' own ceilings and flanders; $rounds round(s) of $secs s, medians, order alternating"
echo "servers (nginx, springfield, redis-server, mariadbd, the stand-ins) on CPU 0, load"
echo "generators on CPU 1; springfield --mysql-connections $pool"
echo "$(nproc) CPUs, Linux $(uname -r), $(redis-server --version | awk '{print $3}' | tr -d v=) redis," \
    "$(mariadbd --version | awk '{print $3}'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
# fit CASE: what CPU 0 to themselves would give the case's processes,
# 1e6 / their CPU microseconds per request (robust to the other load)
fit() {
    has "$1" && awk -v a="$(med "$1" 4)" -v b="$(med "$1" 5)" -v c="$(med "$1" 6)" \
        'BEGIN {printf "%.0f\n", 1e6 / (a + b + c)}' || echo nan
}
fmt='%-12s %8s %6s  %-22s %8s %6s  %6s %6s %6s  %8s %6s  %5s %5s %5s\n'
printf "\n$fmt" "" "route" "route/" "" "ceiling" "route/" "nginx" "sf" "backnd" "CPU-fit" "fit/" "CPU0" "CPU0" ""
printf "$fmt" "route" "req/s" "fland" "ceiling (tool)" "req/s" "ceil" "us/req" "us/req" "us/req" "req/s" "ceil" "idle%" "other" "gen%"
row() { # CASE CEILING-CASE CEILING-LABEL
    has "$1" || return 0
    c=$(rate "$2")
    printf '%-12s %8.0f %6s  %-22s %8s %6s  %6.1f %6.1f %6.1f  %8s %6s  %5.0f %5.0f %5.0f\n' \
        "$1" "$(rate "$1")" "$(ratio "$(rate "$1")" "$fl")" "$3" \
        "$(awk -v c="$c" 'BEGIN {if (c == "nan") print "-"; else printf "%.0f", c}')" \
        "$(ratio "$(rate "$1")" "$c")" "$(med "$1" 4)" "$(med "$1" 5)" "$(med "$1" 6)" \
        "$(fit "$1")" "$(ratio "$(fit "$1")" "$(fit "$2")")" \
        "$(med "$1" 10)" "$(med "$1" 12)" "$(med "$1" 11)"
}
row flanders none "-"
row marges-get redis-get "redis-benchmark get"
row marges-post redis-set "redis-benchmark set"
row lisas-get slap-select-pool "mysqlslap -c $pool (pool)"
row lisas-post slap-insert-pool "mysqlslap -c $pool (pool)"
row homers-get none "(Python stand-in)"
row homers-post none "(Python stand-in)"
row bart-get none "(s3rver, node)"
row bart-post none "(s3rver, node)"

printf '\n%-17s %8s  %6s %8s  %5s %5s %5s  %s\n' "backend ceiling" "req/s" "backnd" "CPU-fit" "CPU0" "CPU0" "gen" "command (on CPU 1)"
printf '%-17s %8s  %6s %8s  %5s %5s %5s\n' "" "" "us/req" "req/s" "idle%" "other" "CPU%"
ceil() { # CASE COMMAND
    has "$1" || return 0
    printf '%-17s %8.0f  %6.1f %8s  %5.0f %5.0f %5.0f  %s\n' "$1" "$(rate "$1")" "$(med "$1" 6)" \
        "$(fit "$1")" "$(med "$1" 10)" "$(med "$1" 12)" "$(med "$1" 11)" "$2"
}
ceil redis-get "redis-benchmark -c $conns -d 32 -t get"
ceil redis-set "redis-benchmark -c $conns -d 32 -t set"
ceil redis-get-p16 "redis-benchmark -c $conns -d 32 -t get -P 16"
ceil slap-select "mysqlslap -c $conns: $select_sql"
ceil slap-select-pool "mysqlslap -c $pool: the same"
ceil slap-insert "mysqlslap -c $conns: INSERT a new name ... ON DUPLICATE KEY UPDATE"
ceil slap-insert-pool "mysqlslap -c $pool: the same"
cat <<EOF

route/fland: the route's req/s over flanders'; route/ceil: over its backend's own ceiling
(the backend alone on CPU 0, driven from CPU 1).  us/req: CPU time per request of nginx's
worker, springfield and the backend process (all its threads), all on CPU 0, the kernel's
work for their sockets included.  CPU-fit: 1e6 / the sum of those three, the req/s CPU 0
to themselves would allow; fit/ceil: a route's over its ceiling's (the same when other
load takes CPU 0 from one run and not another).
CPU0 idle%: what CPU 0 had left (near 0: bound by CPU 0; well above: by waiting, on a disk
or a connection); CPU0 other: the share none of our processes had (other processes: high
in a noisy run, and more so with one process of ours on CPU 0 than with three); gen%: the
load generator's share of CPU 1.  Each run:
  wrk -t1 -c$conns -d${secs}s --timeout 5s [-s post.lua] URL     (taskset -c 1)
  redis-benchmark -c $conns -d 32 -n N -q -t get|set [-P 16]      (N: about $secs s)
  mysqlslap -c C --iterations=1 --number-of-queries=N --query=SQL
EOF
