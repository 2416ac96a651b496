#!/usr/bin/env bash
# `make run`: two demo backends (127.0.0.1:9001 "one", :9002 "two") in the
# background, then surety in the foreground with etc/surety.yaml.  Ctrl-C
# (or SIGTERM to this script) stops surety, and the trap stops the backends.
set -euo pipefail
cd "$(dirname "$0")/.."

SURETY=${SURETY:-build/surety}
CONFIG=${CONFIG:-etc/surety.yaml}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

if [ ! -x "$SURETY" ]; then
    echo "run: $SURETY not built; run 'make build' (or 'make run', which builds first)" >&2
    exit 1
fi

pids=()
surety_pid=
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$surety_pid" ]; then
        kill -TERM "$surety_pid" 2>/dev/null || true
        wait "$surety_pid" 2>/dev/null || true
    fi
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 0' INT   # Ctrl-C is how a demo ends, not a failure
trap 'exit 143' TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for spec in one:9001 two:9002; do
    name=${spec%%:*}
    port=${spec##*:}
    if port_busy "$port"; then
        echo "run: 127.0.0.1:$port is already in use" >&2
        exit 1
    fi
    "$PY" scripts/demo-backend.py "$name" "$port" &
    pids+=($!)
done
for port in 9001 9002; do
    for _ in $(seq 50); do port_busy "$port" && break; sleep 0.1; done
done

mkdir -p var
"$SURETY" check -c "$CONFIG"

cat <<EOF
surety: listener  http://127.0.0.1:8080/       try: curl -i http://127.0.0.1:8080/
        api route http://127.0.0.1:8080/api/
        admin     http://127.0.0.1:9090/metrics  and /healthz
        backends  one on 127.0.0.1:9001, two on 127.0.0.1:9002 (weights 1:3)
        Ctrl-C stops everything.
EOF

"$SURETY" run -c "$CONFIG" &
surety_pid=$!
set +e
wait "$surety_pid"
rc=$?
set -e
surety_pid=
exit "$rc"
