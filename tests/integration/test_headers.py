"""Header handling: hop-by-hop fields are removed in both directions, and
X-Forwarded-For, X-Forwarded-Proto, Forwarded and X-Request-Id are added."""

import re

import harness
from httpio import RawClient, simple_get

HOP_BY_HOP = ["keep-alive", "te", "trailer", "upgrade", "proxy-connection"]


def start(env, handler=None):
    b = env.backend("b1", handler=handler)
    s = env.surety(harness.simple_config([b]))
    return s, b


def test_hop_by_hop_request_headers_are_removed(env):
    s, b = start(env)
    r = simple_get(s.port(), "/", headers=[
        ("Connection", "keep-alive, X-Drop-Me, x-drop-too"),
        ("X-Drop-Me", "1"),
        ("X-Drop-Too", "2"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Proxy-Connection", "keep-alive"),
        ("Upgrade", "h2c"),
        ("X-Keep-Me", "yes"),
    ])
    assert r.status == 200
    (req,) = b.completed()
    names = req.headers.names()
    for h in HOP_BY_HOP + ["x-drop-me", "x-drop-too"]:
        assert h not in names, "%s reached the backend: %r" % (h, req.headers)
    # surety may say keep-alive for itself, nothing else
    assert set(req.headers.tokens("connection")) <= {"keep-alive"}, req.headers
    assert req.header("X-Keep-Me") == "yes"


def _hop_handler(req, conn):
    conn.respond(200, "ok\n", [
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("X-Secret-Hop", "1"),
        ("Keep-Alive", "timeout=5, max=100"),
        ("Proxy-Connection", "keep-alive"),
        ("Upgrade", "h2c"),
        ("Trailer", "X-Checksum"),
        ("X-End-To-End", "kept"),
    ])


def test_hop_by_hop_response_headers_are_removed(env):
    s, b = start(env, _hop_handler)
    r = simple_get(s.port(), "/")
    assert r.status == 200 and r.body == b"ok\n"
    names = r.headers.names()
    for h in HOP_BY_HOP + ["x-secret-hop"]:
        assert h not in names, "%s reached the client: %r" % (h, r.headers)
    assert set(r.headers.tokens("connection")) <= {"keep-alive"}, r.headers
    assert r.headers.get("X-End-To-End") == "kept"


def test_x_forwarded_for_is_added_with_the_client_address(env):
    s, b = start(env)
    simple_get(s.port(), "/")
    (req,) = b.completed()
    assert req.headers.get_all("X-Forwarded-For") == ["127.0.0.1"]


def test_x_forwarded_for_is_appended_to_an_existing_one(env):
    s, b = start(env)
    simple_get(s.port(), "/", headers=[("X-Forwarded-For", "203.0.113.7")])
    simple_get(s.port(), "/", headers=[("X-Forwarded-For", "198.51.100.1, 203.0.113.9"),
                                       ("X-Forwarded-For", "192.0.2.44")])
    r1, r2 = b.completed()
    assert r1.headers.tokens("X-Forwarded-For") == ["203.0.113.7", "127.0.0.1"]
    assert r2.headers.tokens("X-Forwarded-For") == ["198.51.100.1", "203.0.113.9", "192.0.2.44",
                                                    "127.0.0.1"]


def test_x_forwarded_proto_is_set_to_http_even_if_the_client_sent_one(env):
    s, b = start(env)
    simple_get(s.port(), "/")
    simple_get(s.port(), "/", headers=[("X-Forwarded-Proto", "https")])
    r1, r2 = b.completed()
    assert r1.headers.get_all("X-Forwarded-Proto") == ["http"]
    assert r2.headers.get_all("X-Forwarded-Proto") == ["http"]


def _forwarded_params(value):
    """Parameters of the last forwarded-element: {for: ..., proto: ..., host: ...}."""
    last = value.split(",")[-1]
    out = {}
    for pair in last.split(";"):
        k, _, v = pair.strip().partition("=")
        out[k.strip().lower()] = v.strip().strip('"')
    return out


def test_forwarded_header_carries_for_proto_and_host(env):
    s, b = start(env)
    simple_get(s.port(), "/", host="www.example.net")
    (req,) = b.completed()
    fwd = req.headers.get_all("Forwarded")
    assert len(fwd) == 1, req.headers
    p = _forwarded_params(fwd[0])
    assert p.get("for") == "127.0.0.1", fwd
    assert p.get("proto") == "http", fwd
    assert p.get("host") == "www.example.net", fwd


def test_request_id_is_generated_forwarded_and_returned(env):
    s, b = start(env)
    r1 = simple_get(s.port(), "/")
    r2 = simple_get(s.port(), "/")
    q1, q2 = b.completed()
    id1, id2 = q1.header("X-Request-Id"), q2.header("X-Request-Id")
    assert id1 and id2 and id1 != id2
    assert re.fullmatch(r"[\x21-\x7e]{8,200}", id1), id1
    assert r1.headers.get("X-Request-Id") == id1
    assert r2.headers.get("X-Request-Id") == id2
    assert len(q1.headers.get_all("X-Request-Id")) == 1


def test_client_request_id_is_kept_and_returned(env):
    s, b = start(env)
    r = simple_get(s.port(), "/", headers=[("X-Request-Id", "client-chosen-42")])
    (req,) = b.completed()
    assert req.headers.get_all("X-Request-Id") == ["client-chosen-42"]
    assert r.headers.get_all("X-Request-Id") == ["client-chosen-42"]


def test_end_to_end_headers_keep_order_duplicates_and_values(env):
    s, b = start(env)
    with RawClient(s.port()) as c:
        c.request("GET", "/", headers=[("X-Dup", "one"), ("Cookie", "a=1"), ("X-Dup", "two"),
                                       ("Authorization", "Basic dXNlcjpwYXNz"),
                                       ("X-Spaces", "a  b\tc")])
    (req,) = b.completed()
    assert req.headers.get_all("X-Dup") == ["one", "two"]
    assert req.header("Cookie") == "a=1"
    assert req.header("Authorization") == "Basic dXNlcjpwYXNz"
    assert req.header("X-Spaces") == "a  b\tc"


def test_security_headers_are_added_when_the_server_sets_none(env):
    def h(req, conn):
        hs = [("X-Frame-Options", "DENY")] if req.path == "/own" else []
        conn.respond(200, b"ok\n", headers=hs)

    b = env.backend(handler=h)
    s = env.surety(harness.simple_config([b], listener={"security_headers": True}))
    c = harness.RawClient(s.port(), timeout=10)
    r = c.request("GET", "/", host="svc")
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("x-frame-options") == "SAMEORIGIN"
    assert r.headers.get("referrer-policy") == "strict-origin-when-cross-origin"
    r = c.request("GET", "/own", host="svc")
    assert r.headers.get("x-frame-options") == "DENY"  # the server's own value stays
    c.close()
    plain = env.surety(harness.simple_config([b]))
    c = harness.RawClient(plain.port(), timeout=10)
    assert c.request("GET", "/", host="svc").headers.get("x-frame-options") is None
    c.close()
