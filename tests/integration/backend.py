"""A scriptable HTTP/1.1 backend for integration tests (threads + raw sockets).

Each Backend listens on a loopback port, serves each accepted connection on
its own thread, and records what it saw: connections accepted, every
request head (in order, with duplicates), body length and CRC-32 (the body
itself only up to `store_limit`), and the raw bytes received (capped).  It
answers through a handler; the default handler understands these paths so
that most tests need no custom code:

    /bytes/N         N pattern bytes, Content-Length framed, generated on the fly
    /chunked/N       N pattern bytes, chunked (16 KiB chunks)
    /echo            the request body back (Content-Length)
    /upload          consumes the body, answers JSON {"bytes": n, "crc": c}
    /delay/MS        waits MS milliseconds, then answers a small body
    /status/CODE     that status; no body for 1xx/204/304
    /die/N           promises 2N bytes (Content-Length), sends N, closes
    /die-chunked/N   chunked, sends one N-byte chunk, closes
    /ws              WebSocket handshake (RFC 6455), then echoes messages
    anything else    200 "hello from NAME <path>\\n"

HEAD gets the headers of the GET without a body.  Every response carries
X-Backend: NAME and X-Backend-Conn: <connection number, from 1>.
Expect: 100-continue is answered with an interim 100 before the body is
read (send_continue=False turns that off)."""

import json
import socket
import ssl
import threading
import time
import zlib

import ws
from httpio import ConnectionClosed, Reader, chunk, parse_head, read_chunked
from streams import pattern_chunks

REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 204: "No Content",
    304: "Not Modified", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable",
}


class Request:
    def __init__(self, conn_id, index, raw_head):
        self.conn_id = conn_id
        self.index = index  # 1-based position on its connection
        self.raw_head = raw_head
        parts, self.headers = parse_head(raw_head)
        self.method = parts[0] if parts else ""
        self.target = parts[1] if len(parts) > 1 else ""
        self.version = parts[2] if len(parts) > 2 else ""
        self.path, _, self.query = self.target.partition("?")
        self.body = None  # bytes, when stored
        self.body_len = 0
        self.body_crc = 0
        self.chunked = False
        self.trailers = []
        self.complete = False  # the whole body was received
        self.error = None
        self.received_at = time.monotonic()

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def __repr__(self):
        return "<Request %s %s conn=%d #%d body=%d complete=%s>" % (
            self.method, self.target, self.conn_id, self.index, self.body_len, self.complete)


class Conn:
    """One accepted connection as the handler sees it."""

    def __init__(self, backend, sock, conn_id):
        self.backend = backend
        self.sock = sock
        self.id = conn_id
        self.raw = bytearray()
        self.close_after = False
        self.reader = Reader(sock, on_data=self._record)

    def _record(self, data):
        b = self.backend
        with b.lock:
            b.bytes_received += len(data)
            if len(self.raw) < b.raw_limit:
                self.raw += data[: b.raw_limit - len(self.raw)]

    def sendall(self, data):
        self.sock.sendall(data)

    def head(self, status, headers=(), reason=None):
        """Sends a status line and headers (X-Backend* added)."""
        lines = ["HTTP/1.1 %d %s" % (status, reason or REASONS.get(status, "Status"))]
        lines += ["%s: %s" % kv for kv in headers]
        lines.append("X-Backend: %s" % self.backend.name)
        lines.append("X-Backend-Conn: %d" % self.id)
        self.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def respond(self, status, body=b"", headers=(), head_only=False, reason=None):
        """A complete Content-Length-framed response (no body for HEAD)."""
        if isinstance(body, str):
            body = body.encode()
        hs = list(headers)
        names = {n.lower() for n, _ in hs}
        if "content-length" not in names and not (100 <= status < 200 or status in (204, 304)):
            hs.append(("Content-Length", str(len(body))))
        if "content-type" not in names and body:
            hs.append(("Content-Type", "text/plain"))
        self.head(status, hs, reason)
        if body and not head_only and status not in (204, 304):
            self.sendall(body)

    def kill(self):
        """Closes abruptly (RST where possible) so a reader sees the cut."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.close_after = True
        try:
            self.sock.close()
        except OSError:
            pass


class Backend:
    def __init__(self, name="b1", port=0, handler=None, store_limit=16 << 20,
                 send_continue=True, raw_limit=1 << 20, host="127.0.0.1", backlog=512,
                 tls=None):
        self.name = name
        # tls: an ssl.SSLContext (server side) to speak HTTPS; handshakes that
        # fail are counted in tls_failures, not errors (a test may want them)
        self.tls = tls
        self.tls_handshakes = 0
        self.tls_resumed = 0
        self.tls_failures = 0
        self.tls_peer_subjects = []  # client certificates seen (mutual TLS)
        self.handler = handler or default_handler
        self.store_limit = store_limit
        self.send_continue = send_continue
        self.raw_limit = raw_limit
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.connections = 0  # accepted
        self.open_connections = 0
        self.bytes_received = 0
        self.requests = []  # every request head parsed, in arrival order
        self.conns = []
        self.errors = []  # protocol errors seen (bad framing from the proxy, ...)
        self.stopping = threading.Event()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(backlog)
        self.host = host
        self.port = self.lsock.getsockname()[1]
        self.address = "%s:%d" % (host, self.port)
        self._thread = threading.Thread(target=self._accept_loop, name="backend-" + name,
                                        daemon=True)
        self._thread.start()

    # --- inspection -------------------------------------------------------

    def completed(self):
        with self.lock:
            return [r for r in self.requests if r.complete]

    def wait_requests(self, n, timeout=5.0):
        """Waits until at least n requests have been completely received."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(1 for r in self.requests if r.complete) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def raw_bytes(self):
        with self.lock:
            return b"".join(bytes(c.raw) for c in self.conns)

    def snapshot(self):
        """(connections, requests seen, bytes received): for before/after deltas."""
        with self.lock:
            return self.connections, len(self.requests), self.bytes_received

    # --- serving ----------------------------------------------------------

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
                self.open_connections += 1
                conn = Conn(self, s, self.connections)
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="backend-%s-%d" % (self.name, conn.id)).start()

    def _tls_accept(self, conn):
        try:
            conn.sock.settimeout(5)
            s = self.tls.wrap_socket(conn.sock, server_side=True)
            s.settimeout(None)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.tls_failures += 1
            return False
        with self.lock:
            self.tls_handshakes += 1
            self.tls_resumed += 1 if s.session_reused else 0
            peer = s.getpeercert()
            if peer:
                self.tls_peer_subjects.append(dict(x[0] for x in peer["subject"]))
        conn.sock = s
        conn.reader.sock = s
        return True

    def _serve(self, conn):
        if self.tls and not self._tls_accept(conn):
            self._closed(conn)
            return
        try:
            index = 0
            while not self.stopping.is_set() and not conn.close_after:
                try:
                    raw = conn.reader.read_until(b"\r\n\r\n", limit=1 << 20)
                except ConnectionClosed:
                    return
                index += 1
                req = Request(conn.id, index, raw)
                with self.cond:
                    self.requests.append(req)
                    self.cond.notify_all()
                if req.headers.tokens("connection").count("close") or req.version == "HTTP/1.0":
                    conn.close_after = True
                if req.path == "/ws" and "websocket" in req.headers.tokens("upgrade"):
                    self._finish_body(req)  # none expected
                    websocket_echo(conn, req)
                    return
                if not self._read_body(conn, req):
                    return
                self.handler(req, conn)
        except (ConnectionClosed, BrokenPipeError, ConnectionResetError, OSError) as e:
            if not self.stopping.is_set() and not conn.close_after:
                with self.lock:
                    self.errors.append("conn %d: %r" % (conn.id, e))
        except Exception as e:  # a bug in a handler: record it, tests check .errors
            with self.lock:
                self.errors.append("conn %d: handler raised %r" % (conn.id, e))
        finally:
            self._closed(conn)

    def _closed(self, conn):
        """The connection is done: no longer open, its socket closed."""
        with self.lock:
            self.open_connections -= 1
        try:
            conn.sock.close()
        except OSError:
            pass

    def _finish_body(self, req):
        req.complete = True
        with self.cond:
            self.cond.notify_all()

    def _read_body(self, conn, req):
        """Reads the request body (streaming into len/CRC, storing up to the
        limit).  Returns False when the connection is unusable afterwards."""
        h = req.headers
        te = h.tokens("transfer-encoding")
        cl = h.get("content-length")
        if "100-continue" in h.tokens("expect") and self.send_continue and (te or cl not in (None, "0")):
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        store = bytearray()
        storing = [True]

        def sink(d):
            req.body_len += len(d)
            req.body_crc = zlib.crc32(d, req.body_crc)
            if storing[0]:
                if len(store) + len(d) > self.store_limit:
                    storing[0] = False
                    store.clear()
                else:
                    store.extend(d)

        try:
            if te:
                req.chunked = True
                read_chunked(conn.reader, sink, req.trailers)
            elif cl is not None:
                conn.reader.read_into(int(cl), sink)
        except ConnectionClosed as e:
            req.error = "body cut: %s" % e
            with self.lock:
                self.errors.append("conn %d: %s" % (conn.id, req.error))
            return False
        except ValueError as e:
            req.error = "bad body framing: %s" % e
            with self.lock:
                self.errors.append("conn %d: %s" % (conn.id, req.error))
            return False
        req.body = bytes(store) if storing[0] else None
        self._finish_body(req)
        return True

    def stop(self):
        self.stopping.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.sock.close()
            except OSError:
                pass


def _int_tail(path, prefix):
    try:
        return int(path[len(prefix):].split("/")[0])
    except ValueError:
        return None


def send_pattern(conn, n):
    for c in pattern_chunks(n):
        conn.sendall(c)


def default_handler(req, conn):
    p = req.path
    head_only = req.method == "HEAD"
    if p.startswith("/bytes/"):
        n = _int_tail(p, "/bytes/")
        conn.head(200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))])
        if not head_only:
            send_pattern(conn, n)
    elif p.startswith("/chunked/"):
        n = _int_tail(p, "/chunked/")
        conn.head(200, [("Content-Type", "application/octet-stream"),
                        ("Transfer-Encoding", "chunked")])
        if not head_only:
            for c in pattern_chunks(n, chunk=64 * 1024):
                for i in range(0, len(c), 16384):
                    conn.sendall(chunk(c[i:i + 16384]))
            conn.sendall(b"0\r\n\r\n")
    elif p == "/echo":
        if req.body is None:
            conn.respond(200, json.dumps({"bytes": req.body_len, "crc": req.body_crc}),
                         [("Content-Type", "application/json")], head_only)
        else:
            conn.respond(200, req.body, [("Content-Type", "application/octet-stream")], head_only)
    elif p == "/upload":
        conn.respond(200, json.dumps({"bytes": req.body_len, "crc": req.body_crc}),
                     [("Content-Type", "application/json")], head_only)
    elif p.startswith("/delay/"):
        ms = _int_tail(p, "/delay/")
        conn.backend.stopping.wait(ms / 1000.0)
        conn.respond(200, "delayed %d from %s\n" % (ms, conn.backend.name), head_only=head_only)
    elif p.startswith("/status/"):
        code = _int_tail(p, "/status/")
        body = b"" if (100 <= code < 200 or code in (204, 304)) else b"status %d\n" % code
        hs = [("ETag", '"v1"')] if code == 304 else []
        conn.respond(code, body, hs, head_only)
    elif p.startswith("/die/"):
        n = _int_tail(p, "/die/")
        conn.head(200, [("Content-Length", str(2 * n))])
        send_pattern(conn, n)
        time.sleep(0.05)
        conn.kill()
    elif p.startswith("/die-chunked/"):
        n = _int_tail(p, "/die-chunked/")
        conn.head(200, [("Transfer-Encoding", "chunked")])
        conn.sendall(chunk(b"x" * n))
        time.sleep(0.05)
        conn.kill()
    else:
        conn.respond(200, "hello from %s %s\n" % (conn.backend.name, req.path), head_only=head_only)


def websocket_echo(conn, req):
    """Answers the handshake with 101, then echoes text/binary messages,
    answers pings, and returns after a close handshake."""
    key = req.header("Sec-WebSocket-Key")
    if not key or req.header("Sec-WebSocket-Version") != "13":
        conn.respond(400, "bad websocket handshake\n")
        conn.close_after = True
        return
    conn.head(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Accept", ws.accept_key(key))])
    while True:
        try:
            op, payload = ws.read_message(conn.reader, expect_masked=True)
        except ws.ProtocolError as e:
            with conn.backend.lock:
                conn.backend.errors.append("ws: %s" % e)
            return
        except ConnectionClosed:
            return
        if op in (ws.OP_TEXT, ws.OP_BINARY):
            conn.sendall(ws.encode_frame(op, payload, mask=False))
        elif op == ws.OP_PING:
            conn.sendall(ws.encode_frame(ws.OP_PONG, payload, mask=False))
        elif op == ws.OP_CLOSE:
            conn.sendall(ws.encode_frame(ws.OP_CLOSE, payload[:2], mask=False))
            conn.close_after = True
            return


class Blackhole:
    """A listening socket whose accept queue is full, so further SYNs are
    dropped and connects to it hang (for connect-timeout tests without any
    non-loopback address).  Fills the queue with its own connections."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.port = self.lsock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.fillers = []
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(s)
        time.sleep(0.05)

    def hangs(self, timeout=0.3):
        """True if a new connect does not complete within timeout."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(("127.0.0.1", self.port))
            return False
        except (socket.timeout, TimeoutError):
            return True
        except OSError:
            return False
        finally:
            s.close()

    def close(self):
        for s in self.fillers:
            s.close()
        self.lsock.close()

