#!/usr/bin/env bash
# Runs every test level against the ASan/UBSan build: cmocka unit tests, a
# short libFuzzer run of every parser target, then the pytest integration
# suite (real surety processes, real backends and clients on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
ASAN=${ASAN:-build-asan}
export SURETY_BIN=${SURETY_BIN:-$PWD/$ASAN/surety}
# LeakSanitizer needs ptrace-free mode in containers; keep reports readable.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# libmodsecurity leaks a little on a rule file that fails to parse (tests/unit/lsan.supp)
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/unit/lsan.supp}

echo "== unit tests"
meson test -C "$ASAN" --suite unit --print-errorlogs
echo "== fuzz (FUZZ_SECONDS=${FUZZ_SECONDS:-10} per target)"
tests/fuzz/run.sh
echo "== integration tests"
/usr/bin/python3 -m pytest -q tests/integration "$@"
