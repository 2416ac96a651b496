#!/usr/bin/env bash
# Side-by-side benchmark: surety, HAProxy and nginx as reverse proxies, in
# one run, in front of one backend (a second nginx serving a 2-byte "ok" and
# a 64 KiB static file), each driven by wrk for small then 64 KiB responses.
#
# Fairness: one worker/thread per proxy, keep-alive on both sides (HAProxy
# `http-reuse always` + `option http-keep-alive`, idle connections uncapped
# by default; nginx upstream keepalive 256 with HTTP/1.1 and `Connection ""`;
# surety's default pool keepalive, 256 idle per server), no access logs
# anywhere. The idle caps must exceed BENCH_CONNS: below it (nginx's usual
# `keepalive 32` with 50 connections) every proxy closes and reopens server
# connections all the time and measures that instead.  With 2+ CPUs the proxy under test is
# pinned to CPU 1 and the backend and wrk share CPU 0, so the proxy's CPU is
# the only thing measured on its core.  Per proxy and response size: requests/s,
# p50/p99 latency (wrk --latency), and proxy CPU time per request (utime+stime
# of the proxy's processes from /proc/PID/stat, before/after, divided by the
# number of requests).
#
# Environment:
#   BENCH_SECONDS   wrk duration per measurement (default 10)
#   BENCH_WARMUP    warm-up seconds before each measurement (default 1)
#   BENCH_CONNS     wrk connections (default 50)
#   BENCH_PROXIES   which proxies (default "surety haproxy nginx")
#   BENCH_PORT_BASE first of 5 loopback ports used (default 18100)
#   SURETY_BENCH_BIN surety binary (default build/surety, the release build)
#   BENCH_ROUNDS    rounds (default 3); each round measures every proxy, in an
#                   order rotated from round to round, and the table shows the
#                   median of the rounds (the first proxy measured on a cold
#                   machine is otherwise penalised: seen as much as 30%)
#   BENCH_KEEP=1    keep the temp dir (configs, logs, raw wrk output)
#   BENCH_SIZES     which responses (default "small 64k")
#   BENCH_REF       the proxy the ratio columns divide by (default haproxy)
#   BENCH_CLOSE=1   a new connection per request (Connection: close): what
#                   the accept-time checks cost
#
# Shield variants (bench/shield.sh runs them): surety_limits is surety with a
# 100,000-entry deny list, per-address connection limits, a rate limit and
# body limits that the load never trips (their bookkeeping is what is
# measured); surety_waf adds the WAF (OWASP CRS, paranoia 1); nginx_waf is
# nginx with libnginx-mod-http-modsecurity and the same CRS files.
#
# TLS variants (bench/tls.sh runs them): surety_tls and haproxy_tls terminate
# TLS with the same ECDSA P-256 certificate, TLS 1.2/1.3 with their default
# suites (wrk negotiates TLS 1.3, X25519); with BENCH_CLOSE=1 every request
# is a new connection and a full handshake (wrk does not resume sessions).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_CONNS=${BENCH_CONNS:-50}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_PROXIES=${BENCH_PROXIES:-"surety haproxy nginx"}
BENCH_SIZES=${BENCH_SIZES:-"small 64k"}
BENCH_REF=${BENCH_REF:-haproxy}
BASE=${BENCH_PORT_BASE:-18100}
SURETY_BIN=${SURETY_BENCH_BIN:-$REPO/build/surety}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

BACKEND_PORT=$BASE
SURETY_PORT=$((BASE + 1))
SURETY_ADMIN=$((BASE + 2))
HAPROXY_PORT=$((BASE + 3))
NGINX_PORT=$((BASE + 4))
LIMITS_PORT=$((BASE + 5))
LIMITS_ADMIN=$((BASE + 6))
WAF_PORT=$((BASE + 7))
WAF_ADMIN=$((BASE + 8))
NGINX_WAF_PORT=$((BASE + 9))
TLS_PORT=$((BASE + 10))
TLS_ADMIN=$((BASE + 11))
HAPROXY_TLS_PORT=$((BASE + 12))
SLI_ON_PORT=$((BASE + 13))
SLI_ON_ADMIN=$((BASE + 14))
SLI_OFF_PORT=$((BASE + 15))
SLI_OFF_ADMIN=$((BASE + 16))
LIMITED_PORT=$((BASE + 17))
LIMITED_ADMIN=$((BASE + 18))
PROXY_SCHEME=http

if [ "$(nproc)" -ge 2 ]; then
    PROXY_CPU=1
    LOAD_CPU=0
else
    PROXY_CPU=0
    LOAD_CPU=0
    echo "note: 1 CPU: proxy, backend and wrk share it; numbers are not comparable to 2-CPU runs" >&2
fi

. bench/tmpdir.sh
bench_tmpdir surety-bench

need() { command -v "$1" >/dev/null 2>&1 || { echo "bench: $1 not found (make bench installs it)" >&2; exit 1; }; }
need "$WRK"
need curl
need taskset

wait_http() { # url expected-status seconds
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        if [ "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true)" = "$2" ]; then
            return 0
        fi
        sleep 0.05
    done
    echo "bench: $1 did not answer $2 within $3 s" >&2
    return 1
}

# --- backend: nginx, 1 worker, on the load CPU --------------------------------
nginx_common() { # prefix
    cat <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 20000; }
EOF
}
nginx_temp_paths() { # prefix
    cat <<EOF
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
EOF
}

mkdir -p "$TMP/backend" "$TMP/www"
head -c 65536 /dev/urandom >"$TMP/www/64k"
# nginx workers started by root run as nobody: they must be able to read the file
chmod 755 "$TMP" "$TMP/www"
chmod 644 "$TMP/www/64k"
{
    nginx_common "$TMP/backend"
    cat <<EOF
http {
    access_log off;
$(nginx_temp_paths "$TMP/backend")
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$BACKEND_PORT backlog=4096;
        root $TMP/www;
        location = /small { default_type text/plain; return 200 "ok"; }
        location = /64k { default_type application/octet-stream; }
    }
}
EOF
} >"$TMP/backend/nginx.conf"
taskset -c "$LOAD_CPU" "$NGINX" -e "$TMP/backend/error.log" -p "$TMP/backend" \
    -c "$TMP/backend/nginx.conf" &
PIDS+=($!)
wait_http "http://127.0.0.1:$BACKEND_PORT/small" 200 10 || exit 1

# --- proxies --------------------------------------------------------------------
# surety_variant NAME PORT ADMIN_PORT SHIELD_JSON [LISTENER_JSON [TOP_JSON]]:
# the shield policy (empty: none), more keys of the listener ("tls": ...),
# more top-level keys ("objectives": ...); SURETY_VARIANT_ENV: env settings,
# SURETY_VARIANT_SERVER: the pool's server (default its address)
surety_variant() {
    if [ ! -x "$SURETY_BIN" ]; then
        echo "bench: $SURETY_BIN not built: $1 column skipped (make build)" >&2
        return 1
    fi
    local dir="$TMP/$1" shield="" ref="${5:+, $5}"
    local server=${SURETY_VARIANT_SERVER:-"\"127.0.0.1:$BACKEND_PORT\""}
    mkdir -p "$dir"
    if [ -n "$4" ]; then
        shield=", \"shield\": { \"p\": $4 }, \"security\": { \"waf_threads\": 1 }"
        ref="$ref, \"shield\": \"p\""
    fi
    cat >"$dir/surety.yaml" <<EOF
{
  "workers": 1,
  "data_dir": "var",
  "admin": { "listen": "127.0.0.1:$3" },
  "log": { "access": "off", "security": "security.log" },
  "listeners": { "web": { "listen": "127.0.0.1:$2", "routes": [ { "pool": "be" } ]$ref } },
  "pools": { "be": { "servers": [ $server ] } }$shield${6:+, $6}
}
EOF
    # taskset pins every thread of the process (WAF threads included) to one CPU
    (cd "$dir" && exec env ${SURETY_VARIANT_ENV:-} taskset -c "$PROXY_CPU" "$SURETY_BIN" run -c surety.yaml \
        >"$dir/stdout.log" 2>"$dir/stderr.log") &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    wait_http "http://127.0.0.1:$3/healthz" 200 30 || return 1
    PROXY_PORT=$2
    PROXY_SCHEME=http
}

# One certificate for every TLS proxy: ECDSA P-256, as most sites serve.
tls_cert() {
    if [ ! -f "$TMP/tls/site.pem" ]; then
        mkdir -p "$TMP/tls"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$TMP/tls/site.key" -out "$TMP/tls/site.crt" -days 30 \
            -subj /CN=localhost -addext "subjectAltName=DNS:localhost" 2>/dev/null
        cat "$TMP/tls/site.crt" "$TMP/tls/site.key" >"$TMP/tls/site.pem"
    fi
}

start_surety_tls() {
    tls_cert
    surety_variant surety_tls "$TLS_PORT" "$TLS_ADMIN" "" \
        "\"tls\": { \"cert\": \"$TMP/tls/site.crt\", \"key\": \"$TMP/tls/site.key\" }" ||
        return 1
    PROXY_SCHEME=https
}

# SLI collection (issue 6): "on" has objectives on the listener and the
# route, two monitors probing the backend every second, the store, and the
# collection tick of BENCH_SLI_TICK_MS (default 10000, the product's; 1000
# magnifies its cost tenfold); "off" has none of them and a tick of a day
# (it never runs in a run).
WATCH_TOP='"objectives": {
    "availability": { "source": "listener:web", "kind": "availability", "target": "99.9%" },
    "latency": { "source": "listener:web", "kind": "latency", "threshold": "300ms", "target": "99%" },
    "route": { "source": "route:web/0", "kind": "availability", "target": "99.9%" } },
  "monitors": {
    "be-http": { "http": "http://127.0.0.1:'"$BACKEND_PORT"'/small", "interval": "1s" },
    "be-tcp": { "tcp": "127.0.0.1:'"$BACKEND_PORT"'", "interval": "1s" } }'

start_surety_sli_on() {
    SURETY_VARIANT_ENV="SURETY_TEST_TICK_MS=${BENCH_SLI_TICK_MS:-10000}" \
        surety_variant surety_sli_on "$SLI_ON_PORT" "$SLI_ON_ADMIN" "" "" "$WATCH_TOP"
}

start_surety_sli_off() {
    SURETY_VARIANT_ENV="SURETY_TEST_TICK_MS=86400000" \
        surety_variant surety_sli_off "$SLI_OFF_PORT" "$SLI_OFF_ADMIN" ""
}

start_surety() {
    surety_variant surety "$SURETY_PORT" "$SURETY_ADMIN" ""
}

# max_inflight (the server's shared in-flight count, reserved by
# compare-and-swap on every request) set far above what the benchmark
# sends: the bookkeeping is measured, not the limit
start_surety_limited() {
    SURETY_VARIANT_SERVER="{ \"address\": \"127.0.0.1:$BACKEND_PORT\", \"max_inflight\": 100000 }" \
        surety_variant surety_limited "$LIMITED_PORT" "$LIMITED_ADMIN" ""
}

# 100,000 deny entries nobody in the benchmark matches (benchmarking and
# documentation ranges: random /32s and /64s).
deny_file() {
    [ -f "$TMP/deny.txt" ] || "$PY" - "$TMP/deny.txt" <<'PYEOF'
import random, sys
r = random.Random(4)
with open(sys.argv[1], "w") as f:
    for i in range(100000):
        if i % 4:
            f.write("198.%d.%d.%d\n" % (18 + r.randint(0, 1), r.randint(0, 255), r.randint(0, 255)))
        else:
            f.write("2001:db8:%x:%x::/64\n" % (r.randint(0, 65535), r.randint(0, 65535)))
PYEOF
    echo "$TMP/deny.txt"
}

LIMITS_POLICY='"connections": { "per_ip": 100000, "rate": "1000000/s" },
    "rate": { "limit": "1000000/s" }, "limits": { "body": "10m" },
    "methods": [ "GET", "HEAD", "POST" ]'

start_surety_limits() {
    surety_variant surety_limits "$LIMITS_PORT" "$LIMITS_ADMIN" \
        "{ \"deny\": [ \"@$(deny_file)\" ], $LIMITS_POLICY }"
}

start_surety_waf() {
    surety_variant surety_waf "$WAF_PORT" "$WAF_ADMIN" \
        "{ \"deny\": [ \"@$(deny_file)\" ], $LIMITS_POLICY, \"waf\": { \"paranoia\": 1 } }"
}

# haproxy_proxy NAME PORT BIND_EXTRA
haproxy_proxy() {
    [ -x "$HAPROXY" ] || { echo "bench: $HAPROXY missing" >&2; return 1; }
    local dir="$TMP/$1"
    mkdir -p "$dir"
    cat >"$dir/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$2 $3
    default_backend be
backend be
    server s1 127.0.0.1:$BACKEND_PORT
EOF
    taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$dir/haproxy.cfg" \
        >"$dir/stdout.log" 2>"$dir/stderr.log" &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    PROXY_SCHEME=http
    [ -z "$3" ] || PROXY_SCHEME=https
    wait_http "$PROXY_SCHEME://127.0.0.1:$2/small" 200 10 || return 1
    PROXY_PORT=$2
}

start_haproxy() {
    haproxy_proxy haproxy "$HAPROXY_PORT" ""
}

# HAProxy's defaults on Debian 12 are TLS 1.2+ with ECDHE suites, like surety's.
start_haproxy_tls() {
    tls_cert
    haproxy_proxy haproxy_tls "$HAPROXY_TLS_PORT" \
        "ssl crt $TMP/tls/site.pem alpn http/1.1 ssl-min-ver TLSv1.2"
}

# nginx_proxy NAME PORT [PRELUDE] [SERVER_EXTRA]
nginx_proxy() {
    [ -x "$NGINX" ] || { echo "bench: $NGINX missing" >&2; return 1; }
    local dir="$TMP/$1"
    mkdir -p "$dir"
    {
        echo "${3:-}"
        nginx_common "$dir"
        cat <<EOF
http {
    access_log off;
$(nginx_temp_paths "$dir")
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    upstream be {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 256;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$2 backlog=4096;
        ${4:-}
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # 64 KiB responses fit in memory buffers (no temp files)
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
        }
    }
}
EOF
    } >"$dir/nginx.conf"
    taskset -c "$PROXY_CPU" "$NGINX" -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    wait_http "http://127.0.0.1:$2/small" 200 30 || return 1
    PROXY_PORT=$2
    PROXY_SCHEME=http
}

start_nginx() {
    nginx_proxy nginx "$NGINX_PORT"
}

# The same rule files as surety's WAF: the CRS setup, then only the REQUEST
# rules, paranoia 1, anomaly threshold 5, request bodies up to 64 KiB.
start_nginx_waf() {
    local mod=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
    [ -f "$mod" ] || { echo "bench: $mod missing (make bench installs it)" >&2; return 1; }
    mkdir -p "$TMP/nginx_waf"
    {
        echo "SecRuleEngine On"
        echo "SecRequestBodyAccess On"
        echo "SecRequestBodyLimit 65536"
        echo "SecRequestBodyLimitAction ProcessPartial"
        echo "SecResponseBodyAccess Off"
        echo "SecAuditEngine Off"
        echo 'SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=1"'
        echo 'SecAction "id:900110,phase:1,nolog,pass,t:none,setvar:tx.inbound_anomaly_score_threshold=5"'
        echo "Include /etc/modsecurity/crs/crs-setup.conf"
        for f in /usr/share/modsecurity-crs/rules/REQUEST-*.conf; do echo "Include $f"; done
    } >"$TMP/nginx_waf/modsec.conf"
    nginx_proxy nginx_waf "$NGINX_WAF_PORT" "load_module $mod;" \
        "modsecurity on; modsecurity_rules_file $TMP/nginx_waf/modsec.conf;"
}

stop_proxy() {
    kill "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
}

# clock ticks of a process and its children (nginx: master + worker)
cpu_ticks() {
    local total=0 p t
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

check_body() { # url expected-bytes
    local n
    n=$(curl -sk --max-time 5 -o /dev/null -w '%{size_download}' "$1" || true)
    [ "$n" = "$2" ] || { echo "bench: $1 gave $n bytes, expected $2" >&2; return 1; }
}

RESULTS=$TMP/results.tsv
: >"$RESULTS"
TICKS=$(getconf CLK_TCK)

measure() { # proxy path label round
    local url="$PROXY_SCHEME://127.0.0.1:$PROXY_PORT$2" out="$TMP/wrk-$1-$3-$4.txt" before after
    if [ "$BENCH_WARMUP" != 0 ]; then
        taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$BENCH_CONNS" -d"${BENCH_WARMUP}s" "$url" >/dev/null
    fi
    before=$(cpu_ticks "$PROXY_PID")
    local extra=()
    [ -z "${BENCH_CLOSE:-}" ] || extra=(-H "Connection: close")
    taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$BENCH_CONNS" -d"${BENCH_SECONDS}s" --latency \
        "${extra[@]}" "$url" >"$out"
    after=$(cpu_ticks "$PROXY_PID")
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$out" "$((after - before))" "$TICKS" >>"$RESULTS"
    echo "  round $4: $1 $3: $(grep -E 'Requests/sec' "$out" | tr -s ' ')" >&2
}

echo "bench: ${BENCH_SECONDS}s per run, $BENCH_CONNS connections, $BENCH_ROUNDS rounds," \
    "proxy on CPU $PROXY_CPU, backend+wrk on CPU $LOAD_CPU ($(nproc) CPUs)" >&2
# Every proxy runs for the whole benchmark (idle while another is measured),
# so that no one of them pays for a cold start inside its measurement.
declare -A PID_OF PORT_OF SCHEME_OF
ready=()
for proxy in $BENCH_PROXIES; do
    PROXY_PID=
    if ! "start_$proxy" || ! check_body "$PROXY_SCHEME://127.0.0.1:$PROXY_PORT/small" 2 ||
        ! check_body "$PROXY_SCHEME://127.0.0.1:$PROXY_PORT/64k" 65536; then
        echo "bench: $proxy skipped (logs: $TMP/$proxy/, BENCH_KEEP=1 keeps them)" >&2
        for size in $BENCH_SIZES; do
            printf '%s\t%s\t-\t0\t%s\n' "$proxy" "$size" "$TICKS" >>"$RESULTS"
        done
        [ -z "$PROXY_PID" ] || stop_proxy
        continue
    fi
    PID_OF[$proxy]=$PROXY_PID
    PORT_OF[$proxy]=$PROXY_PORT
    SCHEME_OF[$proxy]=$PROXY_SCHEME
    ready+=("$proxy")
done
n=${#ready[@]}
for ((round = 0; round < BENCH_ROUNDS; round++)); do
    for ((k = 0; k < n; k++)); do
        proxy=${ready[$(((k + round) % n))]}
        PROXY_PID=${PID_OF[$proxy]}
        PROXY_PORT=${PORT_OF[$proxy]}
        PROXY_SCHEME=${SCHEME_OF[$proxy]}
        for size in $BENCH_SIZES; do
            measure "$proxy" "/$size" "$size" "$round"
        done
    done
done
for proxy in "${ready[@]}"; do
    PROXY_PID=${PID_OF[$proxy]}
    stop_proxy
done

"$PY" - "$RESULTS" "$BENCH_REF" <<'EOF'
import re
import sys

UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * UNIT[m.group(2)] if m else float("nan")


import statistics

samples = []
for line in open(sys.argv[1]):
    proxy, size, path, ticks, hz = line.rstrip("\n").split("\t")
    r = {"proxy": proxy, "size": size, "rps": None}
    if path != "-":
        out = open(path).read()
        r["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        r["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
        lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
        r["p50"] = ms(lat.get("50", "?"))
        r["p99"] = ms(lat.get("99", "?"))
        r["cpu_us"] = int(ticks) / int(hz) * 1e6 / max(r["requests"], 1)
        errs = 0
        m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        if m:
            errs += int(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
            errs += sum(int(x) for x in m.groups())
        r["errors"] = errs
    samples.append(r)

# one row per (proxy, size): the median of its rounds; errors are summed
rows = []
for key in dict.fromkeys((r["proxy"], r["size"]) for r in samples):
    group = [r for r in samples if (r["proxy"], r["size"]) == key and r["rps"]]
    if not group:
        rows.append({"proxy": key[0], "size": key[1], "rps": None})
        continue
    row = {"proxy": key[0], "size": key[1], "rounds": len(group),
           "errors": sum(r["errors"] for r in group)}
    for f in ("rps", "p50", "p99", "cpu_us"):
        row[f] = statistics.median(r[f] for r in group)
    rows.append(row)
order = {"surety": 0, "surety_sli_off": 0, "surety_sli_on": 0, "surety_limited": 0,
         "surety_limits": 1,
         "surety_waf": 2, "surety_tls": 3, "haproxy": 4,
         "haproxy_tls": 5, "nginx": 6, "nginx_waf": 7}
rows.sort(key=lambda r: (order.get(r["proxy"], 9), r["size"] != "small"))

REF = sys.argv[2]
ref = {r["size"]: r for r in rows if r["proxy"] == REF and r["rps"]}
short = REF[:3]
print()
print("%-13s %-6s %12s %9s %9s %12s %8s %9s %9s" % (
    "proxy", "resp", "req/s", "p50 ms", "p99 ms", "CPU us/req", "errors", "rps/" + short,
    "cpu/" + short))
for r in rows:
    if not r["rps"]:
        print("%-13s %-6s %12s" % (r["proxy"], r["size"], "n/a"))
        continue
    h = ref.get(r["size"])
    rr = "%.2f" % (r["rps"] / h["rps"]) if h else "-"
    cr = "%.2f" % (r["cpu_us"] / h["cpu_us"]) if h and h["cpu_us"] else "-"
    print("%-13s %-6s %12.0f %9.3f %9.3f %12.1f %8d %9s %9s" % (
        r["proxy"], r["size"], r["rps"], r["p50"], r["p99"], r["cpu_us"], r["errors"], rr, cr))
print()
by = {(r["proxy"], r["size"]): r for r in rows if r["rps"]}
for size in dict.fromkeys(r["size"] for r in rows):
    a, b = by.get(("surety_waf", size)), by.get(("nginx_waf", size))
    if a and b:
        print("%s: surety_waf / nginx_waf: %.2fx requests/s, %.2fx CPU per request"
              % (size, a["rps"] / b["rps"], a["cpu_us"] / b["cpu_us"]))
print("Medians of %d rounds. CPU us/req: proxy utime+stime per request (clock tick "
      "resolution: %s Hz)." % (max((r.get("rounds", 0) for r in rows), default=0),
                               open(sys.argv[1]).readline().split("\t")[4].strip()))
EOF
