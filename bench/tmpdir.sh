# Sourced by the bench scripts: a temporary directory in $TMP and the
# processes in PIDS (append each one started) are cleaned up however the
# script ends; BENCH_KEEP=1 keeps the directory. Usage: bench_tmpdir NAME.
bench_tmpdir() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
