#!/usr/bin/python3
"""The failover measurement: Surety vs HAProxy, same backends, same checks.

Per proxy, one after the other in one invocation:

  * three small Python HTTP/1.1 keep-alive backends (this file run with
    --backend, one process each, threaded): primaries p1 and p2, backup dr.
    Each answers GET / with 200, its name in the body and in X-Backend, and
    GET /healthz with 200.  Every accepted connection has SO_LINGER {1, 0},
    so killing a backend (SIGKILL) closes its listening socket (connects are
    refused from then on) and resets every open connection (RST, not FIN).
  * the proxy, pinned to CPU 1:
      - Surety (SURETY_BENCH_BIN, default build/surety, a release build):
        workers 1, pool `site` = [p1, p2] with
        health {type: http, path: /healthz, interval: 1s, timeout: 500ms,
        rise: 2, fall: 3}, backup site-dr, failover {min_healthy: 1,
        failback_after: 30s}, default retry and outlier settings; pool
        `site-dr` = [dr].  Both pools timeouts.connect 500ms (= HAProxy's).
      - HAProxy 2.6 (/usr/sbin/haproxy, nbthread 1): backend site with p1, p2
        `check inter 1s fall 3 rise 2`, `option httpchk GET /healthz`,
        `timeout check 500ms`, dr declared `backup` (not checked, like
        site-dr which has no health checks), `option redispatch`,
        `retries 2`, `timeout connect 500ms`.
  * load: --clients threads (default 8), each sending GET / in a loop over
    a keep-alive connection (reconnecting after any error or close), for
    --duration seconds (default 8); every request is recorded (start, end,
    status or error, which backend answered).  At --kill-at seconds
    (default 3) both primaries are SIGKILLed.  Load, backends and the
    failover poller run on CPU 0.
  * the failover as the proxy reports it, polled every 20 ms: Surety
    GET /api/v1/pools (`serving` of pool site becomes site-dr); HAProxy
    `show stat` on its stats socket (both primaries DOWN, when the backup
    takes the traffic).

Reported per proxy: requests in total and after the kill, failed requests
(after the kill, by kind, with the first and last failure), time from the
kill to the first response from the backup, to the proxy reporting the
failover, and to the last failure; then the ratios Surety / HAProxy.

    /usr/bin/python3 bench/failover.py
    /usr/bin/python3 bench/failover.py --proxies surety --clients 4 --keep
"""

import argparse
import collections
import errno
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable or "/usr/bin/python3"


# --------------------------------------------------------------------------
# backend (run as: failover.py --backend NAME PORT)

def backend_main(name, port):
    body_root = (name + "\n").encode()
    resp_root = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: " + name.encode()
                 + b"\r\nContent-Length: %d\r\n\r\n" % len(body_root) + body_root)
    resp_health = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
    resp_404 = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    linger_rst = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")

    def serve(c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.split(b"\r\n")
                parts = lines[0].split(b" ")
                path = parts[1] if len(parts) > 1 else b"/"
                close = False
                clen = 0
                for h in lines[1:]:
                    k, _, v = h.partition(b":")
                    k = k.strip().lower()
                    if k == b"content-length":
                        clen = int(v.strip() or 0)
                    elif k == b"connection" and v.strip().lower() == b"close":
                        close = True
                while len(buf) < clen:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                buf = buf[clen:]
                if path == b"/healthz":
                    c.sendall(resp_health)
                elif path.startswith(b"/"):
                    c.sendall(resp_root)
                else:
                    c.sendall(resp_404)
                if close:
                    return
        except OSError:
            pass
        finally:
            c.close()

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1024)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        c, _ = ls.accept()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_rst)  # killed -> RST
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(c,), daemon=True).start()


# --------------------------------------------------------------------------
# helpers

def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Procs:
    """Every child process, killed on exit whatever happens."""

    def __init__(self):
        self.procs = []

    def add(self, p):
        self.procs.append(p)
        return p

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except Exception:
                pass
        self.procs = []


PROCS = Procs()


def _die_with_parent():
    """Children get SIGKILL if this script dies without cleaning up."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def start_backend(name, port):
    p = PROCS.add(subprocess.Popen([PY, os.path.abspath(__file__), "--backend", name, str(port)],
                                   stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                   preexec_fn=_die_with_parent))
    line = p.stdout.readline()
    if line.strip() != b"ready":
        raise SystemExit("failover: backend %s did not start" % name)
    return p


def http_get(port, path="/", timeout=1.0):
    """One GET on a new connection: (status, headers dict, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path.encode())
        r = Reader(s)
        return r.response()
    finally:
        s.close()


class Closed(Exception):
    """The connection closed before a whole response."""


class Reader:
    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise Closed()
        self.buf += d

    def response(self):
        """Read one response: (status, headers, body)."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            self.fill()
        head, self.buf = self.buf[:i], self.buf[i + 4:]
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        hdrs = {}
        for h in lines[1:]:
            k, _, v = h.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(self.buf) < n:
                self.fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self.fill()
                line, self.buf = self.buf.split(b"\r\n", 1)
                n = int(line.split(b";")[0], 16)
                while len(self.buf) < n + 2:
                    self.fill()
                body += self.buf[:n]
                self.buf = self.buf[n + 2:]
                if n == 0:
                    while not self.buf.startswith(b"\r\n"):  # trailers (none expected)
                        if b"\r\n" in self.buf:
                            self.buf = self.buf.split(b"\r\n", 1)[1]
                        else:
                            self.fill()
                    self.buf = self.buf[2:]
                    break
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # close-delimited
            body = self.buf
            try:
                while True:
                    d = self.s.recv(65536)
                    if not d:
                        break
                    body += d
            except OSError:
                pass
            self.buf = b""
            hdrs["connection"] = "close"
        return status, hdrs, body


def err_kind(e, phase):
    if isinstance(e, Closed):
        return phase + ": closed by proxy (EOF)"
    if isinstance(e, socket.timeout):
        return phase + ": timeout"
    if isinstance(e, OSError) and e.errno:
        return phase + ": " + errno.errorcode.get(e.errno, str(e.errno))
    return phase + ": " + type(e).__name__


# --------------------------------------------------------------------------
# load

Rec = collections.namedtuple("Rec", "start end ok status backend err reused")


def client(port, t_end, out, timeout):
    s = None
    reader = None
    used = 0
    req = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: failover-bench\r\n\r\n"
    while True:
        t0 = time.monotonic()
        if t0 >= t_end:
            break
        if s is None:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                reader = Reader(s)
                used = 0
            except Exception as e:
                out.append(Rec(t0, time.monotonic(), False, 0, "", err_kind(e, "connect"), False))
                s = None
                time.sleep(0.001)
                continue
        reused = used > 0
        try:
            s.sendall(req)
            status, hdrs, body = reader.response()
            used += 1
            t1 = time.monotonic()
            be = hdrs.get("x-backend", "")
            if status == 200:
                out.append(Rec(t0, t1, True, status, be, "", reused))
            else:
                detail = body[:80].decode("latin-1", "replace").strip().replace("\n", " ")
                out.append(Rec(t0, t1, False, status, be,
                               "status %d%s" % (status, (": " + detail) if detail else ""), reused))
            if hdrs.get("connection", "").lower() == "close":
                s.close()
                s = None
        except Exception as e:
            out.append(Rec(t0, time.monotonic(), False, 0, "", err_kind(e, "request"), reused))
            try:
                s.close()
            except OSError:
                pass
            s = None
    if s is not None:
        s.close()


# --------------------------------------------------------------------------
# proxies

class Surety:
    name = "surety"

    def __init__(self, tmp, bin_path, ports, cpu):
        self.tmp = os.path.join(tmp, "surety")
        os.makedirs(self.tmp)
        self.bin = bin_path
        self.port, self.admin = ports["listen"], ports["admin"]
        self.cpu = cpu
        self.ports = ports
        conf = {
            "workers": 1,
            "admin": {"listen": "127.0.0.1:%d" % self.admin},
            "log": {"access": "off"},
            "listeners": {"web": {"listen": "127.0.0.1:%d" % self.port,
                                  "routes": [{"pool": "site"}]}},
            "pools": {
                "site": {
                    "servers": ["127.0.0.1:%d" % ports["p1"], "127.0.0.1:%d" % ports["p2"]],
                    "health": {"type": "http", "path": "/healthz", "interval": "1s",
                               "timeout": "500ms", "rise": 2, "fall": 3},
                    "backup": "site-dr",
                    "failover": {"min_healthy": 1, "failback_after": "30s"},
                    "timeouts": {"connect": "500ms"},
                },
                "site-dr": {
                    "servers": ["127.0.0.1:%d" % ports["dr"]],
                    "timeouts": {"connect": "500ms"},
                },
            },
        }
        self.conf_path = os.path.join(self.tmp, "surety.yaml")
        self.conf_text = json.dumps(conf, indent=2) + "\n"
        with open(self.conf_path, "w") as f:
            f.write(self.conf_text)
        self.cmd = ["taskset", "-c", str(cpu), self.bin, "run", "-c", self.conf_path]

    def version(self):
        r = subprocess.run([self.bin, "--version"], capture_output=True, text=True)
        return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr) else "surety"

    def check(self):
        r = subprocess.run([self.bin, "check", "-c", self.conf_path], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("failover: surety check refused the config:\n%s%s" % (r.stdout, r.stderr))

    def start(self):
        self.check()
        self.out = open(os.path.join(self.tmp, "stderr.log"), "w")
        self.proc = PROCS.add(subprocess.Popen(self.cmd, cwd=self.tmp, stdout=self.out,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               preexec_fn=_die_with_parent))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if http_get(self.admin, "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("failover: surety did not start; see %s" % self.out.name)

    def state(self):
        """(failed_over, primaries_down) as the proxy reports it."""
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/pools" % self.admin, timeout=1) as r:
            doc = json.load(r)
        for p in doc["pools"]:
            if p["name"] == "site":
                down = all(s["health"] == "down" for s in p["servers"])
                return p["serving"] == "site-dr", down
        return False, False

    def ready(self):
        """Primaries up (initially up; at least two checks run)."""
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/pools" % self.admin, timeout=1) as r:
            doc = json.load(r)
        for p in doc["pools"]:
            if p["name"] == "site":
                return p["serving"] == "site" and all(
                    s["health"] == "up" and s.get("last_check") for s in p["servers"])
        return False

    def logs(self):
        self.out.flush()
        with open(self.out.name, errors="replace") as f:
            return f.read()

    COUNTERS = ("surety_pool_retries_total", "surety_pool_retry_budget_exhausted_total",
                "surety_pool_no_server_total", "surety_server_connect_errors_total",
                "surety_server_ejections_total", "surety_server_retries_total",
                "surety_pool_failovers_total")

    def counters(self):
        """The retry/failover counters of /metrics, nonzero ones."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin, timeout=2) as r:
            text = r.read().decode()
        out = []
        for line in text.splitlines():
            if line.startswith(self.COUNTERS):
                name, _, v = line.rpartition(" ")
                if float(v) != 0:
                    out.append((name, v))
        return out

    def log_summary(self):
        """Warning lines of the run, grouped with addresses and times removed."""
        kinds = collections.Counter()
        first = {}
        for line in self.logs().splitlines():
            parts = line.split(" ", 2)
            if len(parts) < 3 or parts[1] != "warn":
                continue
            k = re.sub(r"127\.0\.0\.1:\d+", "ADDR", parts[2])
            k = re.sub(r"\d+ ms", "N ms", k)
            kinds[k] += 1
            first.setdefault(k, parts[0])
        return [(n, first[k], k) for k, n in kinds.most_common()]


class Haproxy:
    name = "haproxy"

    def __init__(self, tmp, bin_path, ports, cpu):
        self.tmp = os.path.join(tmp, "haproxy")
        os.makedirs(self.tmp)
        self.bin = bin_path
        self.port = ports["listen"]
        self.sock = os.path.join(self.tmp, "stats.sock")
        self.conf_text = """global
    nbthread 1
    maxconn 4000
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 500ms
    timeout check 500ms
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 60s
    option http-keep-alive
    http-reuse always
    retries 2
    option redispatch
frontend fe
    bind 127.0.0.1:{port}
    default_backend site
backend site
    balance roundrobin
    option httpchk GET /healthz
    server p1 127.0.0.1:{p1} check inter 1s fall 3 rise 2
    server p2 127.0.0.1:{p2} check inter 1s fall 3 rise 2
    server dr 127.0.0.1:{dr} backup
""".format(sock=self.sock, port=self.port, p1=ports["p1"], p2=ports["p2"], dr=ports["dr"])
        self.conf_path = os.path.join(self.tmp, "haproxy.cfg")
        with open(self.conf_path, "w") as f:
            f.write(self.conf_text)
        self.cmd = ["taskset", "-c", str(cpu), self.bin, "-db", "-f", self.conf_path]

    def version(self):
        r = subprocess.run([self.bin, "-v"], capture_output=True, text=True)
        return r.stdout.splitlines()[0] if r.stdout else "haproxy"

    def start(self):
        r = subprocess.run([self.bin, "-c", "-q", "-f", self.conf_path], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("failover: haproxy -c refused the config:\n%s%s" % (r.stdout, r.stderr))
        self.out = open(os.path.join(self.tmp, "stderr.log"), "w")
        self.proc = PROCS.add(subprocess.Popen(self.cmd, cwd=self.tmp, stdout=self.out,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               preexec_fn=_die_with_parent))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.path.exists(self.sock) and http_get(self.port)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("failover: haproxy did not start; see %s" % self.out.name)

    def stat(self):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        s.connect(self.sock)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        lines = data.decode().splitlines()
        cols = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            if not line:
                continue
            row = dict(zip(cols, line.split(",")))
            if row.get("pxname") == "site":
                out[row["svname"]] = row
        return out

    def state(self):
        st = self.stat()
        down = all(st[s]["status"].startswith("DOWN") for s in ("p1", "p2"))
        return down, down  # the backup serves exactly when every primary is down

    def ready(self):
        st = self.stat()
        return all(st[s]["status"] == "UP" and st[s].get("check_status", "") == "L7OK"
                   for s in ("p1", "p2"))

    def logs(self):
        self.out.flush()
        with open(self.out.name, errors="replace") as f:
            return f.read()


# --------------------------------------------------------------------------
# one measurement

def measure(proxy, backends, args):
    proxy.start()
    deadline = time.monotonic() + 15
    while True:
        try:
            if proxy.ready():
                break
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("failover: %s: primaries not up after 15 s" % proxy.name)
        time.sleep(0.05)
    st, hd, body = http_get(proxy.port)
    if st != 200 or hd.get("x-backend") not in ("p1", "p2"):
        raise SystemExit("failover: %s: warm-up request got %d from %r" % (proxy.name, st, hd.get("x-backend")))

    # poller: when the proxy reports the failover
    reported = {"failover": None, "down": None, "errors": 0}
    stop = threading.Event()
    t_kill_box = [None]

    def poll():
        while not stop.is_set():
            try:
                fo, down = proxy.state()
                now = time.monotonic()
                if t_kill_box[0] is not None:
                    if fo and reported["failover"] is None:
                        reported["failover"] = now
                    if down and reported["down"] is None:
                        reported["down"] = now
                elif fo:
                    reported["early"] = now
            except Exception:
                reported["errors"] += 1
            time.sleep(args.poll)

    t_start = time.monotonic()
    t_end = t_start + args.duration
    outs = [[] for _ in range(args.clients)]
    threads = [threading.Thread(target=client, args=(proxy.port, t_end, outs[i], args.timeout))
               for i in range(args.clients)]
    poller = threading.Thread(target=poll, daemon=True)
    for t in threads:
        t.start()
    poller.start()
    time.sleep(max(0.0, t_start + args.kill_at - time.monotonic()))
    t_kill = time.monotonic()
    t_kill_box[0] = t_kill
    for name in ("p1", "p2"):
        backends[name].kill()
    for name in ("p1", "p2"):
        backends[name].wait()
    t_killed = time.monotonic()
    for t in threads:
        t.join()
    # keep polling a little past the load if the failover was not seen yet
    extra = time.monotonic() + 5
    while reported["failover"] is None and time.monotonic() < extra:
        time.sleep(0.05)
    stop.set()
    poller.join(timeout=2)
    alive = proxy.proc.poll() is None
    recs = sorted((r for o in outs for r in o), key=lambda r: r.start)
    return {
        "t_start": t_start, "t_kill": t_kill, "t_killed": t_killed, "t_end": t_end,
        "recs": recs, "reported": reported, "alive": alive,
    }


def ms(x):
    return "-" if x is None else "%.0f" % (x * 1000)


def ms2(x):
    return "-" if x is None else "%.2f" % (x * 1000)


def analyse(res):
    tk = res["t_kill"]
    recs = res["recs"]
    after = [r for r in recs if r.end >= tk]
    before = [r for r in recs if r.end < tk]
    fails = [r for r in after if not r.ok]
    fails_before = [r for r in before if not r.ok]
    backup_ok = [r for r in after if r.ok and r.backend == "dr"]
    prim_after = [r for r in after if r.ok and r.backend in ("p1", "p2")]
    first_backup = min((r.end for r in backup_ok), default=None)
    last_fail = max((r.end for r in fails), default=None)
    started_after = [r for r in recs if r.start >= tk]
    max_lat = max((r.end - r.start for r in after), default=None)
    rep = res["reported"]
    kinds = collections.Counter(r.err for r in fails)
    reused = sum(1 for r in fails if r.reused)
    # per 250 ms after the kill (by end time): 200s from primaries / from the backup, failures
    buckets = collections.defaultdict(lambda: [0, 0, 0, 0.0])
    for r in after:
        b = buckets[int((r.end - tk) / 0.25)]
        b[0 if r.ok and r.backend != "dr" else 1 if r.ok else 2] += 1
        b[3] = max(b[3], r.end - r.start)
    fail_lat = sorted(r.end - r.start for r in fails)
    in_switch = [r for r in after if last_fail is not None and r.end <= last_fail]
    switch_share = len(fails) / len(in_switch) if in_switch else None
    return {
        "total": len(recs),
        "ok": sum(1 for r in recs if r.ok),
        "rps_before": len(before) / max(1e-9, tk - res["t_start"]),
        "after": len(after),
        "started_after": len(started_after),
        "failed": len(fails),
        "failed_before": len(fails_before),
        "kinds": kinds,
        "fail_reused": reused,
        "first_fail": None if not fails else min(r.end for r in fails) - tk,
        "last_fail": None if last_fail is None else last_fail - tk,
        "first_backup": None if first_backup is None else first_backup - tk,
        "reported": None if rep["failover"] is None else rep["failover"] - tk,
        "reported_down": None if rep["down"] is None else rep["down"] - tk,
        "poll_errors": rep["errors"],
        "early": rep.get("early"),
        "kill_took": res["t_killed"] - tk,
        "prim_after": len(prim_after),
        "max_lat": max_lat,
        "buckets": buckets,
        "switch_share": switch_share,
        "fail_lat_p50": fail_lat[len(fail_lat) // 2] if fail_lat else None,
        "fail_lat_max": fail_lat[-1] if fail_lat else None,
        "alive": res["alive"],
    }


def print_result(name, version, a, timeline=False):
    print("\n== %s (%s)" % (name, version))
    rows = [
        ("requests, total (ok)", "%d (%d)" % (a["total"], a["ok"])),
        ("requests/s before the kill", "%.0f" % a["rps_before"]),
        ("requests finished after the kill", "%d" % a["after"]),
        ("failed before the kill", "%d" % a["failed_before"]),
        ("FAILED after the kill", "%d" % a["failed"]),
        ("  share of requests failed, kill -> last failure", "%s" % (
            "-" if a["switch_share"] is None else "%.1f%%" % (a["switch_share"] * 100))),
        ("  of them on a reused client connection", "%d" % a["fail_reused"]),
        ("  first / last failure, ms after kill", "%s / %s" % (ms(a["first_fail"]), ms(a["last_fail"]))),
        ("  failure latency p50 / max, ms", "%s / %s" % (ms2(a["fail_lat_p50"]), ms2(a["fail_lat_max"]))),
        ("kill -> first 200 from the backup, ms", ms(a["first_backup"])),
        ("kill -> proxy reports failover, ms", ms(a["reported"])),
        ("kill -> checks mark both primaries down, ms", ms(a["reported_down"])),
        ("200s from primaries finishing after the kill", "%d" % a["prim_after"]),
        ("longest request finishing after the kill, ms", ms(a["max_lat"])),
        ("SIGKILL of both primaries took, ms", "%.1f" % (a["kill_took"] * 1000)),
    ]
    w = max(len(r[0]) for r in rows)
    for k, v in rows:
        print("  %-*s  %s" % (w, k, v))
    if a["kinds"]:
        print("  failures by kind:")
        for k, n in a["kinds"].most_common():
            print("    %6d  %s" % (n, k))
    if a["kinds"] or timeline:
        print("  after the kill, per 250 ms (by end time): 200 primary / 200 backup / failed / max latency ms")
        last = max((b for b, v in a["buckets"].items() if v[2]), default=0)
        top = max(a["buckets"], default=0)
        first_ok = min((b for b, v in a["buckets"].items() if v[1]), default=top)
        for b in range(0, top + 1 if timeline else min(top, max(last, first_ok) + 2) + 1):
            v = a["buckets"].get(b, [0, 0, 0, 0.0])
            print("    %5d-%5d ms  %6d %6d %6d  %7.1f" % (b * 250, (b + 1) * 250, v[0], v[1], v[2], v[3] * 1000))
    if a["poll_errors"]:
        print("  (failover poller: %d errors)" % a["poll_errors"])
    if a["early"]:
        print("  NOTE: proxy reported a failover before the kill")
    if not a["alive"]:
        print("  NOTE: the proxy process exited during the run")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--backend":
        backend_main(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxies", default="surety,haproxy", help="comma-separated (default surety,haproxy)")
    ap.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    ap.add_argument("--duration", type=float, default=8.0, help="load seconds (default 8)")
    ap.add_argument("--kill-at", type=float, default=3.0, help="kill the primaries at (default 3 s)")
    ap.add_argument("--timeout", type=float, default=5.0, help="client socket timeout (default 5 s)")
    ap.add_argument("--poll", type=float, default=0.02, help="failover poll interval (default 0.02 s)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, proxy logs)")
    ap.add_argument("--timeline", action="store_true", help="print the whole per-250 ms timeline")
    ap.add_argument("--show-configs", action="store_true", help="print the proxy configs")
    args = ap.parse_args()
    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()]

    surety_bin = os.environ.get("SURETY_BENCH_BIN", os.path.join(REPO, "build", "surety"))
    haproxy_bin = os.environ.get("HAPROXY", "/usr/sbin/haproxy")
    if "surety" in proxies and not os.access(surety_bin, os.X_OK):
        raise SystemExit("failover: %s not built (ninja -C build surety)" % surety_bin)
    if "haproxy" in proxies and not os.access(haproxy_bin, os.X_OK):
        raise SystemExit("failover: %s missing" % haproxy_bin)
    if not shutil.which("taskset"):
        raise SystemExit("failover: taskset not found")

    ncpu = os.cpu_count() or 1
    if ncpu >= 2:
        proxy_cpu, load_cpu = 1, 0
    else:
        proxy_cpu = load_cpu = 0
        print("note: 1 CPU: proxy, backends and load share it", file=sys.stderr)
    os.sched_setaffinity(0, {load_cpu})  # inherited by the client threads and the backends

    names = ["p1", "p2", "dr", "listen", "admin"]
    allports = free_ports(len(names) * len(proxies))
    ports = {p: dict(zip(names, allports[i * len(names):(i + 1) * len(names)]))
             for i, p in enumerate(proxies)}

    tmp = tempfile.mkdtemp(prefix="surety-failover.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cmdline = " ".join(["/usr/bin/python3" if sys.executable == "/usr/bin/python3" else sys.executable]
                       + [os.path.relpath(os.path.abspath(__file__), os.getcwd())] + sys.argv[1:])
    env = " ".join("%s=%s" % (k, os.environ[k]) for k in ("SURETY_BENCH_BIN", "HAPROXY") if k in os.environ)
    print("command: %s%s" % (env + " " if env else "", cmdline))
    print("setup: %d client threads (keep-alive), %.1f s of load, primaries SIGKILLed at %.1f s; "
          "proxy on CPU %d, load + backends on CPU %d; checks interval 1s timeout 500ms rise 2 fall 3"
          % (args.clients, args.duration, args.kill_at, proxy_cpu, load_cpu))
    results = {}
    try:
        for name in proxies:
            pp = ports[name]
            backends = {b: start_backend(b, pp[b]) for b in ("p1", "p2", "dr")}
            if name == "surety":
                proxy = Surety(tmp, surety_bin, pp, proxy_cpu)
            elif name == "haproxy":
                proxy = Haproxy(tmp, haproxy_bin, pp, proxy_cpu)
            else:
                raise SystemExit("failover: unknown proxy %s" % name)
            if args.show_configs:
                print("\n-- %s config (%s):\n%s" % (name, proxy.conf_path, proxy.conf_text.rstrip()))
            res = measure(proxy, backends, args)
            a = analyse(res)
            results[name] = a
            print_result(name, proxy.version(), a, args.timeline)
            if name == "surety":
                try:
                    cs = proxy.counters()
                    if cs:
                        print("  surety /metrics counters (nonzero):")
                        for k, v in cs:
                            print("    %-90s %s" % (k, v))
                except Exception as e:
                    print("  (surety /metrics unreadable: %s)" % e)
                ls = proxy.log_summary()
                if ls:
                    print("  surety warnings (count, first at, message):")
                    for n, t, k in ls[:12]:
                        print("    %6d  %s  %s" % (n, t, k))
            PROCS.kill_all()
            sys.stdout.flush()
    finally:
        PROCS.kill_all()
        if args.keep:
            print("kept %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if "surety" in results and "haproxy" in results:
        s, h = results["surety"], results["haproxy"]

        def ratio(x, y):
            if x is None or y is None:
                return "-"
            if y == 0:
                return "-" if x == 0 else "inf"
            return "%.2f" % (x / y)
        print("\nsurety / haproxy:")
        print("  failed requests after the kill      %5s  (%d vs %d)" % (ratio(s["failed"], h["failed"]), s["failed"], h["failed"]))
        print("  kill -> first 200 from the backup   %5s  (%s ms vs %s ms)" % (
            ratio(s["first_backup"], h["first_backup"]), ms(s["first_backup"]), ms(h["first_backup"])))
        print("  kill -> failover reported           %5s  (%s ms vs %s ms)" % (
            ratio(s["reported"], h["reported"]), ms(s["reported"]), ms(h["reported"])))
        print("  share failed, kill -> last failure  %5s  (%s vs %s)" % (
            ratio(s["switch_share"], h["switch_share"]),
            "-" if s["switch_share"] is None else "%.1f%%" % (100 * s["switch_share"]),
            "-" if h["switch_share"] is None else "%.1f%%" % (100 * h["switch_share"])))
        print("  requests in total                   %5s  (%d vs %d)" % (ratio(s["total"], h["total"]), s["total"], h["total"]))


if __name__ == "__main__":
    main()
