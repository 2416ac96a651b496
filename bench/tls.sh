#!/usr/bin/env bash
# TLS termination, Surety against HAProxy with the same certificate (ECDSA
# P-256) and their default TLS 1.2/1.3 suites, one worker/thread each on one
# CPU, in one run:
#   keep-alive requests/s over TLS (BENCH_CLOSE unset), then
#   full handshakes/s: a new connection and handshake per request
#   (BENCH_CLOSE=1; wrk does not resume sessions).
# Environment: as bench/run.sh (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNS...).
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_PROXIES=${BENCH_PROXIES:-"surety_tls haproxy_tls"}
export BENCH_SIZES=${BENCH_SIZES:-small}
export BENCH_REF=${BENCH_REF:-haproxy_tls}
echo "== keep-alive requests over TLS"
BENCH_CLOSE= bench/run.sh
echo "== full handshakes (a new connection per request)"
BENCH_CLOSE=1 bench/run.sh
