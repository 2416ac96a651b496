"""Self-tests of the test toolkit (no surety involved): the backend's
behaviours, the WebSocket code against our own client, the metrics parser,
and promtool.  If these fail, the other tests' verdicts mean nothing."""

import json
import socket
import subprocess
import time

import pytest

import harness
import ws
from backend import Blackhole
from httpio import RawClient, build_request, chunk, LAST_CHUNK
from streams import Counter, pattern_bytes, pattern_crc


@pytest.fixture
def b(env):
    return env.backend("tk")


def test_backend_answers_plain_get_and_counts_connections(b):
    with RawClient(b.port) as c:
        r1 = c.request("GET", "/x")
        r2 = c.request("GET", "/y")
    assert r1.status == 200 and r1.body == b"hello from tk /x\n"
    assert r2.headers.get("X-Backend-Conn") == "1"
    assert b.connections == 1 and [r.path for r in b.completed()] == ["/x", "/y"]


def test_backend_streams_length_and_chunked_bodies(b):
    with RawClient(b.port) as c:
        cnt = Counter()
        c.send(build_request("GET", "/bytes/3000000"))
        r = c.read_response(sink=cnt.feed)
        assert r.status == 200 and cnt.matches(3000000)
        cnt = Counter()
        c.send(build_request("GET", "/chunked/200001"))
        r = c.read_response(sink=cnt.feed)
        assert r.chunked and r.complete and cnt.matches(200001)


def test_backend_echoes_content_length_and_chunked_bodies(b):
    body = pattern_bytes(100000)
    with RawClient(b.port) as c:
        assert c.request("POST", "/echo", body=body).body == body
        c.send(build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
               + chunk(body[:5]) + chunk(body[5:]) + LAST_CHUNK)
        assert c.read_response().body == body
    assert b.completed()[1].chunked


def test_backend_upload_reports_length_and_crc_without_storing(env):
    b = env.backend("up", store_limit=1000)
    body = pattern_bytes(50000)
    with RawClient(b.port) as c:
        r = c.request("POST", "/upload", body=body)
    assert json.loads(r.body) == {"bytes": 50000, "crc": pattern_crc(50000)}
    assert b.completed()[0].body is None


def test_backend_sends_100_continue_before_reading_body(b):
    with RawClient(b.port) as c:
        c.send(build_request("POST", "/echo", headers=[("Expect", "100-continue"),
                                                       ("Content-Length", "3")]))
        assert c.reader.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 100")
        c.send(b"abc")
        assert c.read_response().body == b"abc"


def test_backend_head_204_304_have_no_body(b):
    with RawClient(b.port) as c:
        c.send(build_request("HEAD", "/bytes/100") + build_request("GET", "/status/204")
               + build_request("GET", "/status/304") + build_request("GET", "/z"))
        r = c.read_response(head_request=True)
        assert r.headers.get("Content-Length") == "100" and r.body == b""
        assert c.read_response().status == 204
        assert c.read_response().status == 304
        assert c.read_response().body == b"hello from tk /z\n"


def test_backend_dies_mid_response(b):
    with RawClient(b.port) as c:
        r = c.request("GET", "/die/1000")
        assert not r.complete and r.body_len == 1000
    with RawClient(b.port) as c:
        r = c.request("GET", "/die-chunked/10")
        assert not r.complete and r.chunked


def test_websocket_echo_against_own_client(b):
    with RawClient(b.port) as c:
        key = ws.new_key()
        c.send(ws.client_handshake_request("/ws", "example.com", key))
        r = c.read_response()
        assert r.status == 101
        assert r.headers.get("Sec-WebSocket-Accept") == ws.accept_key(key)
        c.send(ws.encode_frame(ws.OP_TEXT, b"hello", mask=True))
        assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_TEXT, b"hello")
        big = pattern_bytes(200000)
        c.send(ws.encode_frame(ws.OP_BINARY, big, mask=True))
        assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_BINARY, big)
        c.send(ws.encode_frame(ws.OP_PING, b"p", mask=True))
        assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_PONG, b"p")
        c.send(ws.encode_frame(ws.OP_CLOSE, b"\x03\xe8", mask=True))
        assert ws.read_message(c.reader, expect_masked=False)[0] == ws.OP_CLOSE
        assert c.wait_closed(2)[0]
    assert not b.errors


def test_rfc6455_accept_key_example():
    # RFC 6455 section 1.3
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_blackhole_makes_connects_hang():
    bh = Blackhole()
    try:
        assert bh.hangs(0.3)
    finally:
        bh.close()


def test_refused_address_refuses():
    host, port = harness.refused_address().split(":")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=1).close()


SAMPLE_METRICS = """\
# HELP surety_listener_requests_total Requests answered.
# TYPE surety_listener_requests_total counter
surety_listener_requests_total{listener="web",code="2xx"} 3
surety_listener_requests_total{listener="web",code="4xx"} 1
# HELP surety_listener_request_duration_seconds Request duration.
# TYPE surety_listener_request_duration_seconds histogram
surety_listener_request_duration_seconds_bucket{listener="web",le="0.1"} 4
surety_listener_request_duration_seconds_bucket{listener="web",le="+Inf"} 4
surety_listener_request_duration_seconds_sum{listener="web"} 0.01
surety_listener_request_duration_seconds_count{listener="web"} 4
"""


def test_metrics_parser_and_promtool_accept_a_sample():
    m = harness.Metrics(SAMPLE_METRICS)
    assert m.get("surety_listener_requests_total", listener="web") == 4
    assert m.get("surety_listener_requests_total", code="4xx") == 1
    assert m.types["surety_listener_request_duration_seconds"] == "histogram"
    p = subprocess.run(["promtool", "check", "metrics"], input=SAMPLE_METRICS.encode(),
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
    bad = SAMPLE_METRICS.replace("requests_total counter", "requests_total gauge")
    p = subprocess.run(["promtool", "check", "metrics"], input=bad.encode(), capture_output=True,
                       timeout=20)
    assert p.returncode != 0


def test_free_ports_are_distinct_and_bindable():
    ports = {harness.free_port() for _ in range(20)}
    assert len(ports) == 20
    for p in list(ports)[:3]:
        s = socket.socket()
        s.bind(("127.0.0.1", p))
        s.close()


def test_backend_delay_is_interruptible_by_stop(env):
    b = env.backend("slow")
    c = RawClient(b.port)
    c.send(build_request("GET", "/delay/10000"))
    time.sleep(0.1)
    t0 = time.monotonic()
    b.stop()
    assert time.monotonic() - t0 < 2
    c.close()
