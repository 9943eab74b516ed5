#!/bin/sh
# tests/fuzz/run.sh — builds the libFuzzer targets with ASan and UBSan and
# runs each for SECONDS seconds (default 60), one after the other (one
# fuzzer process at a time):
#
#   tests/fuzz/run.sh [SECONDS [TARGET...]]
#
#   codec      fcgi/codec.c: the record parser and name-value pairs
#   router     routes/router.c against the real route table
#   conn       a whole connection: fcgi/conn.c, request.c, server.c on a real
#              libev loop over a socketpair, with a stub handler
#   json_bson  store/json_bson.c: JSON -> BSON -> JSON, and any BSON rendered
#   weather    store/weather.c: weather_parse
#   s3_error   store/s3_error.c: the S3 error-document reader
#
# SECONDS is per target (tests/run gives each $FUZZ_SECONDS, default 20);
# TARGET names pick some (default: all, in the order above).  Needs clang
# with the fuzzer runtime (Debian: clang, libclang-rt-14-dev) and the
# libraries' development files (libev, libbson, cJSON, libcurl).
#
# Builds and scratch corpora go to $FUZZ_OUT (default
# ${TMPDIR:-/tmp}/springfield-fuzz) and persist, so runs build on each
# other; one run at a time uses a directory (a second one exits with 2).
# The checked-in seeds under tests/fuzz/corpus/<target>/ are read
# only and grow by hand: after a campaign, fold the new inputs into a
# small set and keep every crash input once it is fixed (a regression
# case), e.g.
#   $FUZZ_OUT/fuzz_conn -merge=1 tests/fuzz/corpus/conn $FUZZ_OUT/corpus-conn
# tests/fuzz/<target>.dict, when present, is the target's dictionary.
# Extra libFuzzer flags can be given in $FUZZ_ARGS (e.g.
# FUZZ_ARGS=-runs=1000000 for a fixed number of executions instead of the
# time); FUZZ_NICE=N runs the fuzzers under nice -n N.
#
# Exit status: 0 when no target found anything, 1 otherwise (the crash
# inputs are named on the way), 2 when the build failed or the arguments
# are wrong.
set -eu

all="codec router conn json_bson weather s3_error"
seconds=${1:-60}
case $seconds in
'' | *[!0-9]*) echo "usage: $0 [SECONDS [TARGET...]]  (targets: $all)" >&2; exit 2 ;;
esac
[ $# -gt 0 ] && shift
targets=${*:-$all}
for t in $targets; do
    case " $all " in
    *" $t "*) ;;
    *) echo "run.sh: unknown target '$t' (targets: $all)" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cc=${CC:-}
if [ -z "$cc" ]; then
    for c in clang clang-14 clang-15 clang-16; do
        if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
    done
fi
if [ -z "$cc" ]; then
    echo "run.sh: clang not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi

out=${FUZZ_OUT:-${TMPDIR:-/tmp}/springfield-fuzz}
mkdir -p "$out"
# Two runs in one directory would rebuild the fuzzers under each other
# and share corpora mid-run: the second one stops at once instead.
exec 9>"$out/.lock"
if ! flock -n 9; then
    echo "run.sh: another run is using $out; wait for it, or give this one its own FUZZ_OUT" >&2
    exit 2
fi

cflags="-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra -I$root
 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"

build() {
    name=$1
    shift
    echo "run.sh: building $name"
    # shellcheck disable=SC2086
    if ! $cc $cflags -o "$out/$name" "$@"; then
        echo "run.sh: building $name failed" >&2
        exit 2
    fi
}

libs() {
    if ! pkg-config --cflags --libs "$@"; then
        echo "run.sh: pkg-config does not know $* (libbson-dev, libcjson-dev)" >&2
        exit 2
    fi
}

# The sources each target links (and the libraries after them).
build_target() {
    case $1 in
    codec) build fuzz_codec tests/fuzz/fuzz_codec.c fcgi/codec.c ;;
    router) build fuzz_router tests/fuzz/fuzz_router.c routes/router.c routes/table.c ;;
    conn)
        build fuzz_conn tests/fuzz/fuzz_conn.c fcgi/conn.c fcgi/request.c fcgi/server.c \
            fcgi/response.c fcgi/codec.c fcgi/access_log.c fcgi/slow_log.c fcgi/fd_reserve.c \
            common/buf.c common/fmt.c common/json.c common/log.c common/utf8.c common/setting.c -lev
        ;;
    json_bson)
        # shellcheck disable=SC2046
        build fuzz_json_bson tests/fuzz/fuzz_json_bson.c store/json_bson.c common/buf.c \
            common/utf8.c $(libs libbson-1.0 libcjson) -lm
        ;;
    weather)
        # the parser, and what the rest of weather.c (the backend) links to
        # shellcheck disable=SC2046
        build fuzz_weather tests/fuzz/fuzz_weather.c store/weather.c store/op.c \
            store/breaker.c store/http.c store/result.c common/log.c common/buf.c \
            $(libs libcjson libcurl) -lev -lm
        ;;
    s3_error) build fuzz_s3_error tests/fuzz/fuzz_s3_error.c store/s3_error.c ;;
    esac
}

max_len() {
    case $1 in
    codec | conn) echo 8192 ;;
    router) echo 4200 ;;
    *) echo 4096 ;;
    esac
}

for t in $targets; do
    build_target "$t"
done

status=0
run() {
    t=$1
    name=fuzz_$t
    seeds=tests/fuzz/corpus/$t
    work=$out/corpus-$t
    dict=
    [ -f "tests/fuzz/$t.dict" ] && dict=-dict=tests/fuzz/$t.dict
    mkdir -p "$work" "$out/artifacts-$name"
    echo "run.sh: running $name for ${seconds}s (seeds: $seeds)"
    # New inputs go to the scratch corpus (first directory); the seeds are
    # read only.  ASAN/UBSAN options make any report fatal.
    # shellcheck disable=SC2086
    if ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        nice -n "${FUZZ_NICE:-0}" \
        "$out/$name" -max_total_time="$seconds" -timeout=10 -max_len="$(max_len "$t")" \
        -print_final_stats=1 -artifact_prefix="$out/artifacts-$name/" $dict \
        ${FUZZ_ARGS:-} "$work" "$seeds" >"$out/$name.log" 2>&1; then
        tail -n 12 "$out/$name.log" |
            grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|Done)' || true
        echo "run.sh: $name: nothing found (log: $out/$name.log)"
    else
        status=1
        echo "run.sh: $name FOUND A PROBLEM (log: $out/$name.log)" >&2
        grep -E 'ERROR|SUMMARY|check failed|runtime error|Test unit written' "$out/$name.log" | head -n 20 >&2
        ls -l "$out/artifacts-$name/" >&2
    fi
}

for t in $targets; do
    run "$t"
done

exit $status
