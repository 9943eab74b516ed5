#!/bin/sh
# tests/fuzz/run.sh — builds the libFuzzer targets (codec, router) with
# ASan and UBSan and runs each for N seconds (argument, default 60).
#
#   tests/fuzz/run.sh [SECONDS]
#
# Needs clang with the fuzzer runtime (Debian: clang, libclang-rt-14-dev).
# Builds and scratch corpora go to $FUZZ_OUT (default
# ${TMPDIR:-/tmp}/springfield-fuzz), so the checked-in seed corpus under
# tests/fuzz/corpus/<target>/ only grows by hand: copy a crash input there
# once it is fixed, so it stays a regression case.  Extra libFuzzer flags
# can be given in $FUZZ_ARGS (e.g. FUZZ_ARGS=-jobs=2).
#
# Exit status: 0 when no target found anything, 1 otherwise (the crash
# inputs are named on the way), 2 when the build failed.
set -eu

seconds=${1:-60}
case $seconds in
'' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

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

build fuzz_codec tests/fuzz/fuzz_codec.c fcgi/codec.c
build fuzz_router tests/fuzz/fuzz_router.c routes/router.c routes/table.c

status=0
run() {
    name=$1
    max_len=$2
    seeds=tests/fuzz/corpus/${name#fuzz_}
    work=$out/corpus-${name#fuzz_}
    mkdir -p "$work" "$out/artifacts-$name"
    echo "run.sh: running $name for ${seconds}s (seeds: $seeds)"
    # New inputs go to the scratch corpus (first directory); the seeds are
    # read only.  ASAN/UBSAN options make any report fatal.
    # shellcheck disable=SC2086
    if ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$out/$name" -max_total_time="$seconds" -timeout=10 -max_len="$max_len" \
        -print_final_stats=1 -artifact_prefix="$out/artifacts-$name/" \
        ${FUZZ_ARGS:-} "$work" "$seeds" >"$out/$name.log" 2>&1; then
        tail -n 12 "$out/$name.log" | grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done)' || true
        echo "run.sh: $name: nothing found (log: $out/$name.log)"
    else
        status=1
        echo "run.sh: $name FOUND A PROBLEM (log: $out/$name.log)" >&2
        grep -E 'ERROR|SUMMARY|check failed|runtime error|Test unit written' "$out/$name.log" | head -n 20 >&2
        ls -l "$out/artifacts-$name/" >&2
    fi
}

run fuzz_codec 8192
run fuzz_router 4200

exit $status
