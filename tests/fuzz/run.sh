#!/usr/bin/env bash
# Builds and runs every libFuzzer target (tests/fuzz/fuzz_*.c) for a short,
# bounded time each, on a throw-away copy of its seed corpus, so that `make
# test` shakes each parser with fresh inputs without growing the checked-in
# corpus. Prints one line per target; exits non-zero if any target crashed
# (the input is kept under $BUILD/artifacts/ to reproduce it with
# `$BUILD/tests/fuzz/fuzz_NAME ARTIFACT`).
#
#   FUZZ_SECONDS=10   seconds per target
#   FUZZ_BUILD=build-fuzz   build directory (configured here if missing)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
seconds="${FUZZ_SECONDS:-10}"
build="${FUZZ_BUILD:-build-fuzz}"

# Every library is compiled with coverage instrumentation (fuzzer-no-link),
# not only the targets: libFuzzer can only steer towards code it can see.
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Dtests=false \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" >/dev/null
fi

targets=()
for src in tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    targets+=("tests/fuzz/$(basename "$src" .c)")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: no targets"
    exit 0
fi
# Only the fuzz targets: the rest of the tree is built and tested elsewhere.
if ! out=$(ninja -C "$build" "${targets[@]}" 2>&1); then
    echo "fuzz: building the targets failed:" >&2
    echo "$out" | grep -E 'error|FAILED' | head -40 >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=0
for t in "${targets[@]}"; do
    name="$(basename "$t")"
    corpus="$work/$name"
    mkdir -p "$corpus"
    if [ -d "tests/fuzz/corpus/$name" ]; then
        cp -R "tests/fuzz/corpus/$name/." "$corpus/"
    fi
    seeds=$(find "$corpus" -type f | wc -l)
    log="$work/$name.log"
    rc=0
    "$build/$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name-" "$corpus" >"$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    grown=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        printf 'fuzz %-22s ok     %10s runs in %ss, corpus %d -> %d\n' \
            "$name" "${runs:-?}" "$seconds" "$seeds" "$grown"
    else
        failed=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        printf 'fuzz %-22s FAILED (exit %d) after %s runs; input: %s\n' \
            "$name" "$rc" "${runs:-?}" "${artifact:-none}"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -n 5 | sed 's/^/    /'
    fi
done
exit "$failed"
