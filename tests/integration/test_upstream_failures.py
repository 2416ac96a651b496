"""Backends that fail: dying mid-response, hanging up without answering,
closing pooled keep-alive connections, answering malformed responses.
A failure costs that response only."""

import time

import harness
from httpio import RawClient, simple_get


def start(env, handler=None):
    b = env.backend("b1", handler=handler)
    s = env.surety(harness.simple_config([b]))
    return s, b


def test_backend_dying_mid_response_cuts_that_response_and_the_next_request_succeeds(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        r = c.request("GET", "/die/100000")
        assert r.status == 200 and r.headers.get("Content-Length") == "200000"
        assert not r.complete and r.body_len <= 100000
        closed, _, _ = c.wait_closed(3)
        assert closed, "client connection kept open after a cut response"
    r = simple_get(s.port(), "/ok")
    assert r.status == 200 and r.body == b"hello from b1 /ok\n"


def test_backend_dying_mid_chunked_response_is_not_terminated_cleanly(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        r = c.request("GET", "/die-chunked/5000")
        assert r.status == 200
        assert not r.complete, "surety terminated a cut chunked body with a last-chunk"
    r = simple_get(s.port(), "/ok")
    assert r.status == 200


def _hangup(req, conn):
    if req.path == "/hangup":
        conn.kill()
    else:
        conn.respond(200, "fine\n")


def test_backend_closing_without_answer_gets_502(env):
    s, b = start(env, _hangup)
    r = simple_get(s.port(), "/hangup")
    assert r.status == 502
    assert simple_get(s.port(), "/x").body == b"fine\n"


def _close_after_answer(req, conn):
    # keep-alive by HTTP's rules, but the backend closes shortly afterwards,
    # as servers with short keep-alive timeouts do
    conn.respond(200, "conn %d\n" % conn.id)
    time.sleep(0.1)
    conn.close_after = True
    conn.sock.close()


def test_backend_closing_an_idle_pooled_connection_does_not_fail_the_next_request(env):
    s, b = start(env, _close_after_answer)
    with RawClient(s.port()) as c:
        for i in range(4):
            r = c.request("GET", "/%d" % i)
            assert r.status == 200, "request %d after the backend closed its idle connection" % i
            time.sleep(0.3)
    assert b.connections == 4


def _bad_response(req, conn):
    p = req.path
    if p == "/cl-and-te":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"0\r\n\r\n")
    elif p == "/garbage":
        conn.sendall(b"this is not http\r\n\r\n")
    elif p == "/two-lengths":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
    else:
        conn.respond(200, "fine\n")
        return
    conn.close_after = True
    conn.sock.close()


def test_malformed_backend_responses_get_502(env):
    s, b = start(env, _bad_response)
    for path in ("/cl-and-te", "/garbage", "/two-lengths"):
        r = simple_get(s.port(), path)
        assert r.status == 502, "%s answered %d" % (path, r.status)
        assert b"hello!" not in r.body
    assert simple_get(s.port(), "/x").body == b"fine\n"
    m = s.metrics()
    assert m.get("surety_listener_requests_total", listener="web", code="5xx") == 3


def test_one_failing_server_does_not_affect_requests_to_another(env):
    good = env.backend("good")
    dead = harness.refused_address()
    s = env.surety(harness.simple_config([good.address, dead]))
    codes = [simple_get(s.port(), "/").status for _ in range(6)]
    assert codes.count(200) >= 3, codes
    assert set(codes) <= {200, 502}, codes
    assert good.connections >= 1
