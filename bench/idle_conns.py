#!/usr/bin/python3
"""Memory cost of idle keep-alive connections.

Opens N (default 10000) client connections to a proxy; each sends one
request, reads the whole response, then stays open and idle.  Reports the
proxy's RSS (VmRSS from /proc/PID/status) before and after, and the growth
per connection.

By default it starts its own surety (build/surety, or SURETY_BENCH_BIN)
with one worker in front of a small Python backend, an idle timeout long
enough to outlast the run, and max_connections above N.  --attach PID:PORT
measures a proxy that is already running instead (HAProxy, nginx, or a
surety started by hand), sending `GET /` with Host: localhost.

This process needs N file descriptors: it raises its own soft RLIMIT_NOFILE
to the hard limit (surety raises its own).

    /usr/bin/python3 bench/idle_conns.py                 # 10000 connections
    /usr/bin/python3 bench/idle_conns.py -n 2000 --attach 1234:8080
"""

import argparse
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from backend import Backend  # noqa: E402  (the integration tests' backend toolkit)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_rss_tree_kib(pid):
    """RSS of pid and its direct children (nginx: master + worker)."""
    total = rss_kib(pid)
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except OSError:
        kids = ""
    for k in kids.split():
        try:
            total += rss_kib(int(k))
        except OSError:
            pass
    return total


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < need:
        sys.exit("RLIMIT_NOFILE hard limit %d < %d needed: raise it (ulimit -Hn) or use -n"
                 % (hard, need))
    return hard


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_surety(binary, n, workdir):
    port, admin = free_port(), free_port()
    backend = Backend("idle-backend")
    cfg = {
        "workers": 1,
        "max_connections": n + 1000,
        "admin": {"listen": "127.0.0.1:%d" % admin},
        "log": {"access": "off"},
        "listeners": {"web": {
            "listen": "127.0.0.1:%d" % port,
            "timeouts": {"header": "60s", "idle": "1h", "client": "60s"},
            "routes": [{"pool": "be"}],
        }},
        "pools": {"be": {"servers": [backend.address], "keepalive": 64}},
    }
    path = os.path.join(workdir, "surety.yaml")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    err = open(os.path.join(workdir, "stderr.log"), "wb")
    proc = subprocess.Popen([binary, "run", "-c", path], stdout=subprocess.DEVNULL, stderr=err,
                            cwd=workdir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("surety exited with %d; see %s" % (proc.returncode, err.name))
        try:
            with socket.create_connection(("127.0.0.1", admin), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        time.sleep(0.05)
    else:
        sys.exit("surety not ready in 10 s; see %s" % err.name)
    return proc, port, admin, backend


def metrics_text(admin):
    with socket.create_connection(("127.0.0.1", admin), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    return out.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def metric(text, name):
    total = None
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total = (total or 0) + float(line.rsplit(None, 1)[1])
    return total


REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: idle_conns\r\n\r\n"


def open_idle(port, n, concurrency, timeout):
    """Opens n connections, each doing one request/response; returns the
    sockets that completed and the number of failures."""
    sel = selectors.DefaultSelector()
    done, failed, started = [], 0, 0
    state = {}  # sock -> bytearray received
    deadline = time.monotonic() + timeout

    def start_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        state[s] = None  # connecting
        sel.register(s, selectors.EVENT_WRITE)

    while (len(done) + failed < n) and time.monotonic() < deadline:
        while started < n and len(state) < concurrency:
            start_one()
            started += 1
        for key, ev in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                if state[s] is None:
                    errno_ = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if errno_:
                        raise OSError(errno_, os.strerror(errno_))
                    s.send(REQUEST)
                    state[s] = bytearray()
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                d = s.recv(65536)
                if not d:
                    raise OSError("closed before a full response")
                buf = state[s]
                buf += d
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                head = bytes(buf[:head_end]).decode("latin-1").lower()
                length = 0
                for line in head.split("\r\n"):
                    if line.startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                if len(buf) - head_end - 4 >= length:
                    if not head.startswith("http/1.1 200"):
                        raise OSError("status line %r" % head.split("\r\n")[0])
                    sel.unregister(s)
                    del state[s]
                    done.append(s)
            except OSError as e:
                if failed < 5:
                    print("connection failed: %s" % e, file=sys.stderr)
                failed += 1
                sel.unregister(s)
                del state[s]
                s.close()
    for s in list(state):
        failed += 1
        s.close()
    return done, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", "--connections", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=256, help="requests in flight while opening")
    ap.add_argument("--hold", type=float, default=2.0, help="seconds idle before measuring")
    ap.add_argument("--attach", metavar="PID:PORT", help="measure a running proxy instead")
    ap.add_argument("--surety", default=os.environ.get("SURETY_BENCH_BIN",
                                                     os.path.join(REPO, "build", "surety")))
    args = ap.parse_args()
    n = args.connections
    raise_nofile(n + 100)

    proc = backend = admin = None
    workdir = tempfile.mkdtemp(prefix="surety-idle.")
    if args.attach:
        pid, port = (int(x) for x in args.attach.split(":"))
        if not os.path.exists("/proc/%d" % pid):
            sys.exit("no process %d" % pid)
        name = "pid %d" % pid
    else:
        if not os.path.exists(args.surety):
            sys.exit("%s not built (make build), or use --attach PID:PORT" % args.surety)
        proc, port, admin, backend = start_surety(args.surety, n, workdir)
        pid = proc.pid
        name = "surety"
    try:
        # warm up: one connection, one request (allocates the first buffers)
        warm, _ = open_idle(port, 1, 1, 10)
        for s in warm:
            s.close()
        time.sleep(0.5)
        before = proc_rss_tree_kib(pid)
        t0 = time.monotonic()
        socks, failed = open_idle(port, n, args.concurrency, timeout=120)
        opened_in = time.monotonic() - t0
        time.sleep(args.hold)
        after = proc_rss_tree_kib(pid)
        still_open = 0
        for s in socks:  # a closed connection would be readable (EOF)
            try:
                s.setblocking(False)
                if s.recv(1):  # unexpected bytes, but open
                    still_open += 1
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
        print("%s: %d idle keep-alive connections (%d failed) opened in %.1f s"
              % (name, len(socks), failed, opened_in))
        print("  still open after %.0f s idle: %d" % (args.hold, still_open))
        print("  RSS before: %8.1f MiB" % (before / 1024))
        print("  RSS after:  %8.1f MiB" % (after / 1024))
        if socks:
            print("  per connection: %.1f KiB" % ((after - before) / len(socks)))
        if admin:
            text = metrics_text(admin)
            print("  surety_listener_connections_open: %s, _idle: %s" % (
                metric(text, "surety_listener_connections_open"),
                metric(text, "surety_listener_connections_idle")))
        for s in socks:
            s.close()
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(30)
                if rc != 0:
                    print("surety exited with %d (stderr: %s/stderr.log)" % (rc, workdir))
            except subprocess.TimeoutExpired:
                proc.kill()
                print("surety did not exit within 30 s of SIGTERM")
        if backend:
            backend.stop()


if __name__ == "__main__":
    main()
