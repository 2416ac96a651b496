"""Client-side timeouts (header, idle, client) and upstream ones (connect,
response), configured short (500 ms) so the tests stay fast."""

import socket
import time

import harness
from backend import Blackhole
from httpio import RawClient, build_request, simple_get

SHORT = {"timeouts": {"header": "500ms", "idle": "500ms", "client": "500ms"}}


def start_short(env, pool=None):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b], listener=SHORT, pool=pool))
    return s, b


def timeouts(s, kind):
    return s.metrics().get("surety_http_timeouts_total", listener="web", kind=kind)


def test_incomplete_request_head_gets_408_after_header_timeout_and_close(env):
    s, b = start_short(env)
    with RawClient(s.port()) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: example.com\r\n")
        closed, data, waited = c.wait_closed(5)
    assert closed, "connection still open after 5 s"
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]
    assert 0.4 <= waited <= 3.0, waited
    assert timeouts(s, "header") == 1
    assert b.snapshot()[2] == 0, "the partial head reached the backend"


def test_header_timeout_is_not_extended_by_trickling_bytes(env):
    s, b = start_short(env)
    head = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Slow: " + b"a" * 100
    with RawClient(s.port()) as c:
        t0 = time.monotonic()
        closed = False
        try:
            for i in range(len(head)):
                c.send(head[i:i + 1])
                time.sleep(0.05)
                if time.monotonic() - t0 > 4:
                    break
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        elapsed = time.monotonic() - t0
        if not closed:
            closed, data, _ = c.wait_closed(2)
    assert closed and elapsed < 3.5, "trickled head kept the connection open %.1fs" % elapsed
    assert timeouts(s, "header") == 1


def test_connection_that_sends_nothing_is_closed(env):
    s, b = start_short(env)
    with RawClient(s.port()) as c:
        closed, data, waited = c.wait_closed(5)
    assert closed, "a silent connection was kept more than 5 s"
    assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data[:200]


def test_idle_keepalive_connection_is_closed_silently_after_idle_timeout(env):
    s, b = start_short(env)
    with RawClient(s.port()) as c:
        assert c.request("GET", "/").status == 200
        closed, data, waited = c.wait_closed(5)
    assert closed, "idle connection still open after 5 s"
    assert data == b"", "bytes sent on idle close: %r" % data[:200]
    assert 0.4 <= waited <= 3.0, waited
    assert timeouts(s, "idle") == 1


def test_keepalive_connection_survives_while_requests_keep_coming(env):
    s, b = start_short(env)
    with RawClient(s.port()) as c:
        for _ in range(8):  # 8 x 200 ms = longer than one idle timeout, never idle that long
            assert c.request("GET", "/").status == 200
            time.sleep(0.2)
    assert timeouts(s, "idle") == 0


def test_stalled_request_body_gets_closed_after_client_timeout(env):
    s, b = start_short(env)
    with RawClient(s.port()) as c:
        c.send(build_request("POST", "/echo", headers=[("Content-Length", "100")]) + b"x" * 10)
        closed, data, waited = c.wait_closed(5)
    assert closed, "stalled upload still open after 5 s"
    assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data[:200]
    assert waited <= 3.0, waited
    assert timeouts(s, "client") == 1
    assert not b.completed()


def test_upstream_connect_timeout_gets_504(env):
    bh = Blackhole()
    try:
        assert bh.hangs(0.3), "test setup: blackhole does not hang connects"
        s = env.surety(harness.simple_config([bh.address], pool={
            "timeouts": {"connect": "500ms"}}))
        t0 = time.monotonic()
        r = simple_get(s.port(), "/")
        elapsed = time.monotonic() - t0
        assert r.status == 504
        assert 0.4 <= elapsed <= 3.0, elapsed
        m = s.metrics()
        assert m.get("surety_http_timeouts_total", kind="connect") == 1
        assert m.get("surety_server_connect_errors_total", pool="site", server=bh.address) >= 1
        assert m.get("surety_listener_requests_total", listener="web", code="5xx") == 1
    finally:
        bh.close()


def test_upstream_connect_refused_gets_502(env):
    addr = harness.refused_address()
    s = env.surety(harness.simple_config([addr]))
    t0 = time.monotonic()
    r = simple_get(s.port(), "/")
    assert r.status == 502
    assert time.monotonic() - t0 < 2
    m = s.metrics()
    assert m.get("surety_server_connect_errors_total", pool="site", server=addr) >= 1
    assert m.get("surety_server_requests_total", pool="site", server=addr, code="5xx") >= 0


def test_upstream_response_timeout_gets_504_and_the_late_response_is_never_delivered(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b], pool={"timeouts": {"response": "500ms"}}))
    t0 = time.monotonic()
    r = simple_get(s.port(), "/delay/2000")
    elapsed = time.monotonic() - t0
    assert r.status == 504
    assert 0.4 <= elapsed <= 1.9, elapsed
    assert s.metrics().get("surety_http_timeouts_total", kind="response") == 1
    # The timed-out upstream connection must not be reused: its late answer
    # would be taken as the answer to the next request.
    for i in range(3):
        r = simple_get(s.port(), "/fresh%d" % i)
        assert r.status == 200 and r.body == b"hello from b1 /fresh%d\n" % i
        time.sleep(0.6)


def test_response_timeout_does_not_cut_a_body_that_the_client_reads_slowly(env):
    """timeouts.response bounds the wait for the response head; a body that
    flows, only slower than the timeout because the client reads slowly,
    must not be cut."""
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b], pool={"timeouts": {"response": "500ms"}}))
    n = 16 << 20
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", s.port()))
    got = 0
    t0 = time.monotonic()
    try:
        sock.sendall(build_request("GET", "/bytes/%d" % n))
        raw = b""
        while b"\r\n\r\n" not in raw:
            raw += sock.recv(65536)
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        got = len(rest)
        while got < n:
            time.sleep(0.02)
            d = sock.recv(256 * 1024)
            if not d:
                break
            got += len(d)
    finally:
        sock.close()
    elapsed = time.monotonic() - t0
    assert got == n, "body cut after %d of %d bytes (%.1fs)" % (got, n, elapsed)
    assert elapsed > 0.5, "test did not exercise the timeout (%.2fs)" % elapsed
