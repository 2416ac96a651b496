"""Upgrade: websocket is tunnelled after the backend's 101: frames pass
both ways unchanged (client frames masked, server frames not)."""

import time

import harness
import ws
from httpio import RawClient, simple_get
from streams import pattern_bytes


def open_ws(s, path="/ws"):
    c = RawClient(s.port())
    key = ws.new_key()
    c.send(ws.client_handshake_request(path, "example.com", key))
    r = c.read_response()
    return c, key, r


def test_websocket_echo_through_the_tunnel(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b]))
    c, key, r = open_ws(s)
    with c:
        assert r.status == 101, r
        assert r.headers.get("Sec-WebSocket-Accept") == ws.accept_key(key)
        assert "websocket" in r.headers.tokens("upgrade")
        assert "upgrade" in r.headers.tokens("connection")
        c.send(ws.encode_frame(ws.OP_TEXT, b"hello through surety", mask=True))
        assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_TEXT,
                                                                  b"hello through surety")
        big = pattern_bytes(1 << 20)
        c.send(ws.encode_frame(ws.OP_BINARY, big, mask=True))
        assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_BINARY, big)
        for i in range(20):
            c.send(ws.encode_frame(ws.OP_TEXT, b"m%d" % i, mask=True))
        for i in range(20):
            assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_TEXT, b"m%d" % i)
        c.send(ws.encode_frame(ws.OP_PING, b"are you there", mask=True))
        assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_PONG, b"are you there")
        c.send(ws.encode_frame(ws.OP_CLOSE, b"\x03\xe8", mask=True))
        assert ws.read_message(c.reader, expect_masked=False)[0] == ws.OP_CLOSE
        closed, _, _ = c.wait_closed(3)
        assert closed, "tunnel not closed after the backend closed"
    (req,) = b.completed()
    assert "websocket" in req.headers.tokens("upgrade")
    assert "upgrade" in req.headers.tokens("connection")
    assert req.header("Sec-WebSocket-Key") == key
    assert not b.errors, b.errors


def test_websocket_tunnel_is_not_cut_by_the_idle_timeout_while_in_use(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b], listener={"timeouts": {"idle": "500ms"}}))
    c, key, r = open_ws(s)
    with c:
        assert r.status == 101
        for i in range(6):
            c.send(ws.encode_frame(ws.OP_TEXT, b"tick%d" % i, mask=True))
            assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_TEXT, b"tick%d" % i)
            time.sleep(0.2)


def _refuse_upgrade(req, conn):
    conn.respond(200, "no upgrade for you\n")


def test_refused_upgrade_leaves_a_normal_http_connection(env):
    b = env.backend("b1", handler=_refuse_upgrade)
    # path other than /ws so the backend's built-in WebSocket handling stays out
    s = env.surety(harness.simple_config([b]))
    c = RawClient(s.port())
    with c:
        c.send(ws.client_handshake_request("/chat", "example.com", ws.new_key()))
        r = c.read_response()
        assert r.status == 200 and r.body == b"no upgrade for you\n"
        assert c.request("GET", "/next").status == 200
    assert simple_get(s.port(), "/").status == 200


def _echo_once_then_hang_up(req, conn):
    key = req.header("Sec-WebSocket-Key")
    conn.head(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Accept", ws.accept_key(key))])
    op, payload = ws.read_message(conn.reader, expect_masked=True)
    conn.sendall(ws.encode_frame(op, payload, mask=False))
    conn.close_after = True
    conn.sock.close()


def test_backend_hanging_up_a_tunnel_closes_the_client_connection(env):
    b = env.backend("b1", handler=_echo_once_then_hang_up)
    s = env.surety(harness.simple_config([b]))
    c, key, r = open_ws(s, "/chat")
    with c:
        assert r.status == 101
        c.send(ws.encode_frame(ws.OP_TEXT, b"last words", mask=True))
        assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_TEXT, b"last words")
        closed, extra, _ = c.wait_closed(3)
        assert closed, "client side of the tunnel still open 3 s after the backend hung up"
        assert extra == b""


def test_client_hanging_up_a_tunnel_closes_the_backend_connection(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b]))
    c, key, r = open_ws(s)
    assert r.status == 101
    c.send(ws.encode_frame(ws.OP_TEXT, b"bye", mask=True))
    assert ws.read_message(c.reader, expect_masked=False) == (ws.OP_TEXT, b"bye")
    c.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and b.open_connections:
        time.sleep(0.05)
    assert b.open_connections == 0, "backend side of the tunnel still open 3 s after the client left"
