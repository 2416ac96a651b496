"""Proxying basics: methods and bodies in both directions, keep-alive reuse
on both sides, pipelining, bodiless responses, Expect: 100-continue."""

import socket
import threading
import time

import harness
from httpio import LAST_CHUNK, RawClient, Reader, build_request, chunk, read_response, simple_get
from streams import Counter, pattern_bytes


def start(env, backends=None, **kw):
    backends = backends or [env.backend("b1")]
    s = env.surety(harness.simple_config(backends, **kw))
    return s, backends[0]


def test_get_is_proxied_to_the_backend(env):
    s, b = start(env)
    r = simple_get(s.port(), "/hello?x=1", headers=[("X-Custom", "v 1")])
    assert r.status == 200
    assert r.body == b"hello from b1 /hello\n"
    (req,) = b.completed()
    assert (req.method, req.target) == ("GET", "/hello?x=1")
    assert req.header("Host") == "example.com"
    assert req.header("X-Custom") == "v 1"


def test_post_content_length_body_is_forwarded_and_response_relayed(env):
    s, b = start(env)
    body = pattern_bytes(300000)
    with RawClient(s.port()) as c:
        r = c.request("POST", "/echo", body=body, headers=[("Content-Type", "application/x-test")])
    assert r.status == 200 and r.body == body
    (req,) = b.completed()
    assert req.body == body and req.header("Content-Length") == "300000"
    assert req.header("Content-Type") == "application/x-test"


def test_chunked_request_body_is_forwarded_intact(env):
    s, b = start(env)
    body = pattern_bytes(70000)
    with RawClient(s.port()) as c:
        c.send(build_request("PUT", "/echo", headers=[("Transfer-Encoding", "chunked")]))
        for i in range(0, len(body), 9000):
            c.send(chunk(body[i:i + 9000]))
            time.sleep(0.002)
        c.send(LAST_CHUNK)
        r = c.read_response()
    assert r.status == 200 and r.body == body
    assert b.completed()[0].body == body


def test_chunked_request_trailers_do_not_break_framing(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        c.send(build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
               + chunk(b"abc") + b"0\r\nX-Trailer: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"abc"
        assert c.request("GET", "/after").status == 200


def test_chunked_response_is_relayed_intact(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        cnt = Counter()
        c.send(build_request("GET", "/chunked/500000"))
        r = c.read_response(sink=cnt.feed)
        assert r.status == 200 and r.complete and cnt.matches(500000)
        assert c.request("GET", "/next").status == 200  # framing ended where it should


def test_http10_client_gets_an_unchunked_response(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        c.send(build_request("GET", "/chunked/5000", version="HTTP/1.0"))
        r = c.read_response()
    assert r.status == 200
    assert "chunked" not in r.headers.tokens("transfer-encoding")
    assert r.body == pattern_bytes(5000)


def test_keepalive_many_requests_over_one_client_connection_use_one_upstream_connection(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        for i in range(10):
            r = c.request("GET", "/r%d" % i)
            assert r.status == 200 and r.body == b"hello from b1 /r%d\n" % i
            r = c.request("POST", "/echo", body=b"x" * i)
            assert r.body == b"x" * i
    assert b.connections == 1
    m = s.metrics()
    assert m.get("surety_server_connections_total", pool="site", server=b.address) == 1
    assert m.get("surety_listener_connections_total", listener="web") == 1
    assert m.get("surety_listener_requests_total", listener="web", code="2xx") == 20


def test_upstream_connection_is_reused_across_client_connections(env):
    s, b = start(env)
    for i in range(5):
        with RawClient(s.port()) as c:
            assert c.request("GET", "/a").status == 200
            assert c.request("GET", "/b").status == 200
        time.sleep(0.02)
    assert b.connections == 1
    m = s.metrics()
    assert m.get("surety_server_connections_total", pool="site", server=b.address) == 1
    assert m.get("surety_listener_connections_total", listener="web") == 5


def test_idle_upstream_connection_metric_counts_pooled_connection(env):
    s, b = start(env)
    simple_get(s.port(), "/")
    time.sleep(0.1)
    m = s.metrics()
    assert m.get("surety_server_connections_idle", pool="site", server=b.address) == 1


def test_pipelined_requests_are_answered_in_order(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        c.send(build_request("GET", "/delay/300")
               + build_request("GET", "/second")
               + build_request("POST", "/echo", body=b"third")
               + build_request("HEAD", "/bytes/777")
               + build_request("GET", "/chunked/1000")
               + build_request("GET", "/last"))
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
        r4 = c.read_response(head_request=True)
        r5 = c.read_response()
        r6 = c.read_response()
    assert r1.body == b"delayed 300 from b1\n"
    assert r2.body == b"hello from b1 /second\n"
    assert r3.body == b"third"
    assert r4.status == 200 and r4.headers.get("Content-Length") == "777" and r4.body == b""
    assert r5.body == pattern_bytes(1000)
    assert r6.body == b"hello from b1 /last\n"


def test_pipelined_requests_sent_byte_by_byte_are_answered_in_order(env):
    s, b = start(env)
    data = build_request("GET", "/one") + build_request("POST", "/echo", body=b"two") \
        + build_request("GET", "/three")
    with RawClient(s.port()) as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
        assert c.read_response().body == b"hello from b1 /one\n"
        assert c.read_response().body == b"two"
        assert c.read_response().body == b"hello from b1 /three\n"


def test_head_response_has_no_body(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        c.send(build_request("HEAD", "/bytes/5000") + build_request("HEAD", "/chunked/5000")
               + build_request("GET", "/after"))
        r1 = c.read_response(head_request=True)
        r2 = c.read_response(head_request=True)
        r3 = c.read_response()
    assert r1.status == 200 and r1.headers.get("Content-Length") == "5000" and r1.body == b""
    assert r2.status == 200 and r2.body == b""
    assert r3.body == b"hello from b1 /after\n"


def _bodiless_handler(req, conn):
    if req.path == "/204":
        conn.head(204, [("X-Kind", "no-content")])
    elif req.path == "/304":
        # A 304 may carry the Content-Length of the representation; no body follows.
        conn.head(304, [("ETag", '"abc"'), ("Content-Length", "1000")])
    elif req.path == "/204-with-length":
        conn.head(204, [("Content-Length", "0")])
    else:
        conn.respond(200, "after %s\n" % req.path)


def test_204_and_304_responses_have_no_body(env):
    b = env.backend("b1", handler=_bodiless_handler)
    s, _ = start(env, [b])
    with RawClient(s.port()) as c:
        c.send(build_request("GET", "/204") + build_request("GET", "/304", headers=[
            ("If-None-Match", '"abc"')]) + build_request("GET", "/204-with-length")
            + build_request("GET", "/end"))
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
        r4 = c.read_response()
    assert r1.status == 204 and r1.body == b"" and r1.headers.get("X-Kind") == "no-content"
    assert "chunked" not in r1.headers.tokens("transfer-encoding")
    assert r2.status == 304 and r2.body == b"" and r2.headers.get("ETag") == '"abc"'
    assert r3.status == 204
    assert r4.status == 200 and r4.body == b"after /end\n"
    assert b.connections == 1


def test_expect_100_continue_is_forwarded_and_the_interim_response_relayed(env):
    s, b = start(env)
    with RawClient(s.port(), timeout=5) as c:
        c.send(build_request("POST", "/echo", headers=[("Expect", "100-continue"),
                                                       ("Content-Length", "11")]))
        interim = c.reader.read_until(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        c.send(b"hello world")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello world"
        assert c.request("GET", "/again").status == 200
    req = b.completed()[0]
    assert req.header("Expect") == "100-continue"
    assert req.body == b"hello world"


def test_many_headers_and_large_headers_within_limits_pass(env):
    s, b = start(env)
    many = [("X-H%d" % i, "v%d" % i) for i in range(90)]
    r = simple_get(s.port(), "/many", headers=many)
    assert r.status == 200
    big = [("X-Big", "b" * 20000)]
    r = simple_get(s.port(), "/big", headers=big)
    assert r.status == 200
    reqs = b.completed()
    assert reqs[0].header("X-H89") == "v89"
    assert reqs[1].header("X-Big") == "b" * 20000


def test_long_uri_within_limit_passes(env):
    s, b = start(env)
    target = "/" + "a" * 7000
    r = simple_get(s.port(), target)
    assert r.status == 200
    assert b.completed()[0].target == target


def test_client_connection_close_is_honoured(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        r = c.request("GET", "/bye", headers=[("Connection", "close")])
        assert r.status == 200
        closed, extra, _ = c.wait_closed(3)
        assert closed and extra == b""


def test_backend_connection_close_response_is_followed_by_a_new_upstream_connection(env):
    def handler(req, conn):
        conn.respond(200, "conn %d\n" % conn.id, [("Connection", "close")])
        conn.close_after = True

    b = env.backend("b1", handler=handler)
    s, _ = start(env, [b])
    with RawClient(s.port()) as c:
        r1 = c.request("GET", "/1")
        r2 = c.request("GET", "/2")
    assert (r1.body, r2.body) == (b"conn 1\n", b"conn 2\n")
    assert b.connections == 2


def test_response_body_larger_than_buffer_is_streamed_to_slow_client(env):
    s, b = start(env)
    n = 8 << 20
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.settimeout(10)
    sock.connect(("127.0.0.1", s.port()))
    try:
        sock.sendall(build_request("GET", "/bytes/%d" % n))
        time.sleep(0.5)  # the proxy must hold at most its buffers, not the body
        cnt = Counter()
        try:
            r = read_response(Reader(sock, recv_size=65536), sink=cnt.feed)
        except socket.timeout:
            raise AssertionError("response stalled after %d of %d bytes" % (cnt.n, n))
    finally:
        sock.close()
    assert r.status == 200 and cnt.matches(n)



def test_concurrent_clients_each_get_their_own_responses(env):
    s, b = start(env)
    errors = []

    def client(k):
        try:
            with RawClient(s.port()) as c:
                for i in range(20):
                    if i % 4 == 3:
                        body = b"client %d request %d" % (k, i)
                        r = c.request("POST", "/echo", body=body)
                        want = body
                    else:
                        r = c.request("GET", "/c%d/r%d" % (k, i))
                        want = b"hello from b1 /c%d/r%d\n" % (k, i)
                    if r.status != 200 or r.body != want:
                        errors.append((k, i, r.status, r.body[:80]))
        except Exception as e:  # collected, asserted below
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:10]
    assert len(b.completed()) == 800
    m = s.metrics()
    assert m.get("surety_listener_requests_total", listener="web", code="2xx") == 800


def test_two_workers_serve_requests(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b], workers=2))
    for i in range(20):
        with RawClient(s.port()) as c:
            assert c.request("GET", "/w%d" % i).status == 200
    m = s.metrics()
    assert m.get("surety_workers") == 2
    assert m.get("surety_listener_requests_total", listener="web", code="2xx") == 20
