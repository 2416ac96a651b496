#!/usr/bin/env bash
# What SLI collection costs the gateway (issue 6; target: under 2%), in one
# run on one machine:
#   surety_sli_off  no objectives, no monitors, the collection tick never runs
#   surety_sli_on   three objectives (listener and route), two monitors
#                   probing the backend every second, the store writing, and
#                   the collection tick every 10 s (BENCH_SLI_TICK_MS=1000:
#                   every second, ten times the default)
# Both with one worker on one CPU; ratios are on against off. Environment:
# as bench/run.sh (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNS, BENCH_CLOSE...).
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_PROXIES=${BENCH_PROXIES:-"surety_sli_off surety_sli_on"}
export BENCH_SIZES=${BENCH_SIZES:-small}
export BENCH_REF=${BENCH_REF:-surety_sli_off}
exec bench/run.sh
