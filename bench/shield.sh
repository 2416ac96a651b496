#!/usr/bin/env bash
# What each shield layer costs (issue 4), in one run on one machine:
#   surety         the plain gateway (the reference of the ratio columns)
#   surety_limits  + 100,000-entry deny list, connection limits, rate limit,
#                  body limits (none of them tripped: their bookkeeping)
#   surety_waf     + the WAF: OWASP CRS at paranoia 1 on one WAF thread
#   nginx          plain nginx, for scale
#   nginx_waf      nginx + libnginx-mod-http-modsecurity with the same CRS
# Every proxy has one worker and one CPU (taskset; surety's WAF thread shares
# the worker's CPU). Environment: as bench/run.sh (BENCH_SECONDS, BENCH_ROUNDS,
# BENCH_CONNS, BENCH_KEEP...).
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_PROXIES=${BENCH_PROXIES:-"surety surety_limits surety_waf nginx nginx_waf"}
export BENCH_SIZES=${BENCH_SIZES:-small}
export BENCH_REF=${BENCH_REF:-surety}
exec bench/run.sh
