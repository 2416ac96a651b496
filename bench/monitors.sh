#!/usr/bin/env bash
# How many monitors one control thread sustains at a 10 s interval against
# local targets (issue 6).
#
# bench/probe_bench runs what the control thread runs for monitors: one
# loop_t, one probe_t with N HTTP monitors (a fresh connection per probe, as
# probe_http.c makes them), every one at the same interval. The targets are
# one nginx (1 worker) answering a 2-byte 200 on BENCH_TARGETS loopback
# ports; the monitors are spread round-robin over the ports. N steps up
# through BENCH_STEPS; a step is sustained when, in every round, no tick was
# skipped (the previous probe of that monitor still in flight), no probe
# failed, and completed/expected >= 0.99. Stepping stops at the first step
# that is not (larger ones only do worse), unless BENCH_ALL=1.
#
# Pinning (2+ CPUs): probe_bench alone on CPU 1, nginx on CPU 0, so the
# control thread's CPU is the only thing measured on its core. On loopback the
# kernel does part of the receiving side's TCP work in the sender's system
# call, so the thread's CPU per probe includes some of the target's kernel
# work: it is an upper bound for a remote target.
#
# Per step: expected and completed probes per second, skipped and failed
# probes, the control thread's CPU time per probe and its share of one CPU
# (getrusage RUSAGE_THREAD), how busy the prober's CPU was whoever used it
# (/proc/stat: at high rates the kernel defers loopback receive work to
# ksoftirqd on that CPU, which the thread's own time misses; other tenants'
# work shows there too), probe latency p50/p99/max (libcurl's total time,
# whole ms), the lateness of a 100 ms timer on the same loop (what an
# admin API request would wait), nginx's CPU, sockets in TIME_WAIT on the
# machine at the end, and the machine's TCP listen-queue overflows during the
# step (TcpExt ListenOverflows: SYNs dropped because a target did not accept
# in time, which turns into 1 s SYN retransmits and probe timeouts).
#
# Overload: probe.c plans each tick from the previous planned time, so a
# loop that falls a whole interval behind skips ticks and counts them (the
# skipped column); lateness under an interval shows in the timer lag.
#
# Ports: every probe is a new connection and the prober closes first, so it
# keeps one TIME_WAIT socket per probe for 60 s: N/10 per second, 120,000 at
# N = 20,000. Each target port is its own 4-tuple space (28k ephemeral ports
# by default), and Linux reuses TIME_WAIT ports on loopback
# (net.ipv4.tcp_tw_reuse = 2); past net.ipv4.tcp_max_tw_buckets the kernel
# drops TIME_WAIT sockets early and says so in dmesg. Real monitors probe
# many hosts, each its own 4-tuple space: BENCH_TARGETS ports stand in for
# them. Descriptors: one per probe in flight, a few in steady state, at most
# N when every probe hangs; probe_bench raises its soft limit to the hard
# one, and a step above the hard limit only gets a note.
#
# Environment:
#   BENCH_SECONDS   run time per step (default 30; a multiple of the interval)
#   BENCH_ROUNDS    rounds per step (default 1); the table shows medians, the
#                   sums of skipped and failed probes, the lowest ratio
#   BENCH_STEPS     monitor counts (default "100 1000 2000 5000 10000 20000 30000
#                   40000 50000")
#   BENCH_MAX       largest N tried (default 20000: about 2,000 probes/s, a quarter
#                   of one CPU here; raise it to find where one thread gives up)
#   BENCH_INTERVAL  monitor interval in ms (default 10000)
#   BENCH_TIMEOUT   probe timeout in ms (default 5000, the configuration's)
#   BENCH_TARGETS   target ports (default 16)
#   BENCH_PORT_BASE first target port (default 18300)
#   BENCH_BUILD     build directory (default build; set up as `make build`
#                   does when missing); bench/probe_bench is built in it
#   BENCH_ALL=1     go on stepping after a step that is not sustained
#   BENCH_KEEP=1    keep the temp dir (nginx config and log, raw results)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

BENCH_SECONDS=${BENCH_SECONDS:-30}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_STEPS=${BENCH_STEPS:-"100 1000 2000 5000 10000 20000 30000 40000 50000"}
BENCH_MAX=${BENCH_MAX:-20000}
BENCH_INTERVAL=${BENCH_INTERVAL:-10000}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-5000}
BENCH_TARGETS=${BENCH_TARGETS:-16}
BASE=${BENCH_PORT_BASE:-18300}
BUILD=${BENCH_BUILD:-$REPO/build}
NGINX=${NGINX:-/usr/sbin/nginx}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# The first tick of each monitor falls at random in the first interval: over
# whole intervals every monitor is due exactly seconds/interval times.
if [ $((BENCH_SECONDS * 1000 % BENCH_INTERVAL)) != 0 ]; then
    echo "bench: BENCH_SECONDS ($BENCH_SECONDS) must be a multiple of the interval" \
        "($BENCH_INTERVAL ms) for the expected count to be exact" >&2
    exit 2
fi

if [ "$(nproc)" -ge 2 ]; then
    BENCH_CPU=1
    TARGET_CPU=0
else
    BENCH_CPU=0
    TARGET_CPU=0
    echo "note: 1 CPU: prober and target share it; numbers are not comparable to 2-CPU runs" >&2
fi

need() { command -v "$1" >/dev/null 2>&1 || { echo "bench: $1 not found (make bench installs it)" >&2; exit 1; }; }
need curl
need taskset
need ss
[ -x "$NGINX" ] || { echo "bench: $NGINX missing (scripts/deps.sh bench installs nginx-light)" >&2; exit 1; }

# --- the prober: a release build, like `make build` ----------------------------
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$BUILD" bench/probe_bench >/dev/null
PROBE_BENCH=$BUILD/bench/probe_bench

. bench/tmpdir.sh
bench_tmpdir surety-monitors

# --- the targets: nginx, 1 worker, on its own CPU -------------------------------
URLS=()
LISTEN=""
for ((i = 0; i < BENCH_TARGETS; i++)); do
    URLS+=("http://127.0.0.1:$((BASE + i))/")
    LISTEN+="        listen 127.0.0.1:$((BASE + i)) backlog=4096;
"
done
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $TMP/body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    keepalive_timeout 5s;
    server {
$LISTEN        location / { default_type text/plain; return 200 "ok"; }
    }
}
EOF
taskset -c "$TARGET_CPU" "$NGINX" -e "$TMP/error.log" -p "$TMP" -c "$TMP/nginx.conf" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for url in "${URLS[@]}"; do
    for ((i = 0; i < 200; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)" = 200 ] && break
        sleep 0.05
    done
    [ "$i" -lt 200 ] || { echo "bench: nginx did not answer on $url" >&2; exit 1; }
done

# clock ticks of a process and its children (nginx: master + worker)
cpu_ticks() {
    local total=0 p t
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

field() { # key: its value in $line
    tr ' ' '\n' <<<"$line" | sed -n "s/^$1=//p"
}

cpu_busy_idle() { # "busy total" jiffies of CPU $1 (/proc/stat), whoever used it
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' \
        /proc/stat
}

listen_overflows() { # TcpExt ListenOverflows, machine-wide
    awk '/^TcpExt:/ { if (!col) { for (i = 2; i <= NF; i++) if ($i == "ListenOverflows") col = i }
                      else print $col }' /proc/net/netstat
}

FD_HARD=$(ulimit -Hn)
RESULTS=$TMP/results.txt
: >"$RESULTS"
TICKS=$(getconf CLK_TCK)
echo "bench: ${BENCH_SECONDS}s per step, $BENCH_ROUNDS round(s), interval ${BENCH_INTERVAL} ms," \
    "$BENCH_TARGETS target ports, prober on CPU $BENCH_CPU, nginx on CPU $TARGET_CPU" \
    "($(nproc) CPUs), descriptors hard limit $FD_HARD" >&2

for n in $BENCH_STEPS; do
    [ "$n" -le "$BENCH_MAX" ] || break
    if [ "$FD_HARD" != unlimited ] && [ "$n" -gt $((FD_HARD - 64)) ]; then
        echo "note: N=$n: if every probe hung, the prober would need more descriptors than" \
            "its hard limit ($FD_HARD); probes failing with EMFILE would show as failed" >&2
    fi
    sustained=1
    for ((round = 0; round < BENCH_ROUNDS; round++)); do
        before=$(cpu_ticks "$NGINX_PID")
        ovf0=$(listen_overflows)
        read -r busy0 total0 < <(cpu_busy_idle "$BENCH_CPU")
        line=$(taskset -c "$BENCH_CPU" "$PROBE_BENCH" -n "$n" -i "$BENCH_INTERVAL" \
            -s "$BENCH_SECONDS" -t "$BENCH_TIMEOUT" "${URLS[@]}")
        after=$(cpu_ticks "$NGINX_PID")
        read -r busy1 total1 < <(cpu_busy_idle "$BENCH_CPU")
        ovf=$(($(listen_overflows) - ovf0))
        tw=$(($(ss -Htan state time-wait | wc -l)))
        nginx_cpu=$(awk "BEGIN{print ($after - $before) / $TICKS}")
        busy=$(awk "BEGIN{print ($busy1 - $busy0) / ($total1 - $total0 + 1e-9)}")
        echo "$line nginx_cpu_s=$nginx_cpu time_wait=$tw listen_overflows=$ovf cpu_busy=$busy" \
            >>"$RESULTS"
        echo "  N=$n round $round: $line" >&2
        if [ "$(field skipped)" != 0 ] || [ "$(field failed)" != 0 ] ||
            awk "BEGIN{exit !($(field completed) < 0.99 * $(field expected))}"; then
            sustained=0
        fi
    done
    [ "$sustained" = 1 ] || [ -n "${BENCH_ALL:-}" ] || break
done

"$PY" - "$RESULTS" "$BENCH_SECONDS" <<'EOF'
import re
import statistics
import sys

runs = []
for line in open(sys.argv[1]):
    r = {}
    for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line):
        r[k] = v.strip('"') if v.startswith('"') else float(v)
    runs.append(r)

rows = []
for n in dict.fromkeys(r["n"] for r in runs):
    g = [r for r in runs if r["n"] == n]
    med = lambda k: statistics.median(r[k] for r in g)
    row = {"n": int(n), "rounds": len(g), "skipped": sum(r["skipped"] for r in g),
           "failed": sum(r["failed"] for r in g),
           "listen_overflows": sum(r["listen_overflows"] for r in g),
           "ratio": min(r["completed"] / r["expected"] for r in g),
           "fail_detail": next((r["fail_detail"] for r in g if r["fail_detail"]), "")}
    for k in ("expected", "completed", "seconds", "elapsed_s", "interval_ms", "thread_cpu_s",
              "cpu_us_per_probe", "lat_p50_ms", "lat_p99_ms", "lat_max_ms", "lag_p99_ms",
              "lag_max_ms", "rss_kb", "nginx_cpu_s", "time_wait", "in_flight", "cpu_busy"):
        row[k] = med(k)
    row["ok"] = row["skipped"] == 0 and row["failed"] == 0 and row["ratio"] >= 0.99
    rows.append(row)

print()
print("%7s %9s %9s %6s %6s %8s %7s %9s %7s %7s %17s %17s %7s %7s %6s %7s" % (
    "N", "exp/s", "done/s", "ratio", "infl", "skipped", "failed", "us/probe", "thr CPU", "CPU busy",
    "lat p50/p99/max", "lag p99/max", "nginx", "TW", "ovf", "RSS MB"))
for r in rows:
    s = r["elapsed_s"]
    print(("%7d %9.1f %9.1f %6.3f %6d %8d %7d %9.1f %6.1f%% %6.1f%% %17s %17s %6.1f%% %7d %6d "
           "%7.1f%s") % (
        r["n"], r["expected"] / s, r["completed"] / s, r["ratio"], r["in_flight"], r["skipped"],
        r["failed"], r["cpu_us_per_probe"], 100 * r["thread_cpu_s"] / s, 100 * r["cpu_busy"],
        "/".join("%d" % r[k] if r[k] else "<1" for k in ("lat_p50_ms", "lat_p99_ms",
                                                          "lat_max_ms")) + " ms",
        "%.1f/%.1f ms" % (r["lag_p99_ms"], r["lag_max_ms"]), 100 * r["nginx_cpu_s"] / s,
        r["time_wait"], r["listen_overflows"], r["rss_kb"] / 1024,
        "" if r["ok"] else "  NOT SUSTAINED"))
print()
good = [r for r in rows if r["ok"]]
bad = [r for r in rows if not r["ok"]]
if good:
    best = max(good, key=lambda r: r["n"])
    interval = best["interval_ms"] / 1000
    print("largest N sustained: %d monitors at a %g s interval (zero skipped and failed "
          "probes, completed/expected >= 0.99)" % (best["n"], interval))
    # What one thread could do if its whole CPU went to probes at this cost:
    # a ceiling, not an operating point (a loop at 100% falls behind).
    print("control thread at N=%d: %.1f us CPU per probe, %.1f%% of one CPU; at that cost a "
          "whole CPU would be ~%d probes/s, ~%d monitors (a ceiling, not a safe load)" % (
              best["n"], best["cpu_us_per_probe"], 100 * best["thread_cpu_s"] / best["elapsed_s"],
              1e6 / best["cpu_us_per_probe"], 1e6 / best["cpu_us_per_probe"] * interval))
else:
    print("no step sustained")
for r in bad[:1]:
    why = []
    if r["skipped"]:
        why.append("%d skipped" % r["skipped"])
    if r["failed"]:
        why.append("%d failed (%s)" % (r["failed"], r["fail_detail"]))
    if r["ratio"] < 0.99:
        why.append("completed/expected %.3f" % r["ratio"])
    print("first step not sustained: N=%d: %s" % (r["n"], ", ".join(why)))
print("Medians of %d round(s) of %g s; skipped and failed are sums, ratio (completed/expected) "
      "the lowest; infl: probes in flight when the run ended; thr CPU: the control thread's "
      "CPU; CPU busy: the prober's CPU, whoever used it (softirqs in ksoftirqd included); TW: "
      "TIME_WAIT sockets and ovf: listen overflows, machine-wide. Latency: libcurl total time "
      "in whole ms; lag: lateness of a 100 ms timer on the loop."
      % (max(r["rounds"] for r in rows), rows[0]["seconds"]) if rows else "no results")
EOF
