"""Stopping: SIGTERM stops accepting, lets in-flight requests finish (up
to drain_timeout), closes idle connections at once, and exits 0."""

import signal
import socket
import threading
import time

import harness
from httpio import RawClient, build_request


def slow_request(port, target, out):
    try:
        with RawClient(port, timeout=20) as c:
            out["response"] = c.request("GET", target)
    except Exception as e:  # recorded for the assertion message
        out["error"] = repr(e)


def refuses_or_fails(port):
    """True if a new request on the listener gets no 200 (refused, reset or closed)."""
    try:
        with RawClient(port, timeout=3) as c:
            c.send(build_request("GET", "/late"))
            r = c.read_response()
            return r.status != 200
    except (OSError, ValueError, Exception):
        return True


def test_sigterm_lets_an_in_flight_request_finish_and_exits_0(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b], drain_timeout="10s"))
    out = {}
    t = threading.Thread(target=slow_request, args=(s.port(), "/delay/1500", out))
    t.start()
    assert _wait_seen(b, 1)
    t0 = time.monotonic()
    s.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert refuses_or_fails(s.port()), "surety still accepted requests after SIGTERM"
    t.join(15)
    assert "error" not in out, out
    r = out["response"]
    assert r.status == 200 and r.body == b"delayed 1500 from b1\n"
    rc = s.proc.wait(10)
    assert rc == 0
    assert time.monotonic() - t0 < 5, "surety waited past the in-flight request"


def test_sigterm_with_only_idle_connections_exits_promptly(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b], drain_timeout="20s"))
    idle = [RawClient(s.port()) for _ in range(3)]
    try:
        for c in idle:
            assert c.request("GET", "/").status == 200
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        rc = s.proc.wait(10)
        assert rc == 0
        assert time.monotonic() - t0 < 3, "idle keep-alive connections delayed the exit"
        for c in idle:
            closed, _, _ = c.wait_closed(2)
            assert closed
    finally:
        for c in idle:
            c.close()


def test_sigterm_gives_up_on_requests_slower_than_drain_timeout(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b], drain_timeout="500ms"))
    out = {}
    t = threading.Thread(target=slow_request, args=(s.port(), "/delay/8000", out))
    t.start()
    assert _wait_seen(b, 1)
    t0 = time.monotonic()
    s.send_signal(signal.SIGTERM)
    rc = s.proc.wait(10)
    elapsed = time.monotonic() - t0
    assert rc == 0
    assert elapsed < 3, "exit took %.1fs with drain_timeout 500ms" % elapsed
    t.join(10)
    r = out.get("response")
    assert r is None or r.status != 200 or not r.complete


def test_sigterm_before_any_traffic_exits_0(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b]))
    s.send_signal(signal.SIGTERM)
    assert s.proc.wait(10) == 0


def test_listener_port_is_free_after_exit(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b]))
    port = s.port()
    assert s.stop() == 0
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    finally:
        sock.close()


def _wait_seen(b, n, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(b.requests) >= n:
            return True
        time.sleep(0.01)
    return False
