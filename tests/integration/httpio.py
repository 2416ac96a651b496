"""Byte-exact HTTP/1.1 over raw sockets, for both ends of a test.

Tests must control every byte they send (malformed requests, pipelining,
exact header sets) and see every byte they get back (no client library that
repairs, merges or hides headers).  This module is the small amount of
HTTP/1.1 that the backends and the raw test client share: a buffered
socket reader, head parsing that keeps header order and duplicates, body
framing (Content-Length, chunked, read-until-close), and request/response
builders.  It is deliberately lenient in what it parses: judging strictness
is surety's job, the tests only need to see what came through."""

import socket
import time

CRLF = b"\r\n"


class ConnectionClosed(Exception):
    """The peer closed (or reset) the connection before the expected bytes."""


class Reader:
    """Buffered reads from a socket.  `on_data` (optional) sees every chunk
    received, before it is consumed (used by backends to keep raw bytes)."""

    def __init__(self, sock, on_data=None, recv_size=256 * 1024):
        self.sock = sock
        self.buf = bytearray()
        self.on_data = on_data
        self.recv_size = recv_size
        self.eof = False

    def _fill(self):
        if self.eof:
            raise ConnectionClosed("eof")
        try:
            data = self.sock.recv(self.recv_size)
        except ConnectionResetError as e:
            self.eof = True
            raise ConnectionClosed("reset") from e
        if not data:
            self.eof = True
            raise ConnectionClosed("eof")
        if self.on_data:
            self.on_data(data)
        self.buf += data

    def read_until(self, sep, limit=1 << 20):
        """Returns bytes up to and including sep."""
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                end = i + len(sep)
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if len(self.buf) > limit:
                raise ValueError("no %r within %d bytes" % (sep, limit))
            start = max(0, len(self.buf) - len(sep) + 1)
            self._fill()

    def readline(self, limit=1 << 16):
        return self.read_until(b"\n", limit)

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_into(self, n, sink):
        """Streams exactly n bytes to sink(memoryview) without keeping them."""
        left = n
        if self.buf:
            take = min(left, len(self.buf))
            sink(memoryview(self.buf)[:take])
            del self.buf[:take]
            left -= take
        while left > 0:
            try:
                data = self.sock.recv(min(self.recv_size, left))
            except ConnectionResetError as e:
                self.eof = True
                raise ConnectionClosed("reset after %d of %d bytes" % (n - left, n)) from e
            if not data:
                self.eof = True
                raise ConnectionClosed("eof after %d of %d bytes" % (n - left, n))
            if self.on_data:
                self.on_data(data)
            sink(data)
            left -= len(data)

    def read_to_eof(self, sink=None, limit=None):
        """Reads until the peer closes; returns the bytes (or streams them to sink)."""
        out = bytearray()

        def keep(d):
            if sink:
                sink(d)
            else:
                out.extend(d)

        if self.buf:
            keep(bytes(self.buf))
            self.buf.clear()
        while True:
            try:
                data = self.sock.recv(self.recv_size)
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                return bytes(out)
            if self.on_data:
                self.on_data(data)
            keep(data)
            if limit is not None and len(out) > limit:
                raise ValueError("more than %d bytes before eof" % limit)


class Headers:
    """Ordered header list with case-insensitive lookups; keeps duplicates."""

    def __init__(self, items=()):
        self.items = [(n, v) for n, v in items]

    def get(self, name, default=None):
        name = name.lower()
        for n, v in self.items:
            if n.lower() == name:
                return v
        return default

    def get_all(self, name):
        name = name.lower()
        return [v for n, v in self.items if n.lower() == name]

    def __contains__(self, name):
        return self.get(name) is not None

    def names(self):
        return [n.lower() for n, _ in self.items]

    def tokens(self, name):
        """Comma-separated tokens of all fields called name, lower-cased."""
        out = []
        for v in self.get_all(name):
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def __repr__(self):
        return "Headers(%r)" % self.items


def parse_head(raw):
    """Splits a head (bytes ending in CRLFCRLF) into (start-line parts, Headers).
    Field values are decoded as latin-1 and OWS-trimmed."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    start = lines[0]
    items = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        items.append((name, value.strip(" \t")))
    return start.split(" ", 2), Headers(items)


def read_chunked(reader, sink, trailers=None):
    """Decodes a chunked body from reader into sink; appends trailer lines to
    `trailers` (list) if given.  Raises ValueError on bad framing."""
    while True:
        line = reader.readline(limit=8192)
        if not line.endswith(CRLF):
            raise ValueError("chunk-size line without CRLF: %r" % line)
        size_text = line[:-2].split(b";", 1)[0].strip()
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise ValueError("bad chunk size %r" % line)
        size = int(size_text, 16)
        if size == 0:
            break
        reader.read_into(size, sink)
        if reader.read_exact(2) != CRLF:
            raise ValueError("chunk data not followed by CRLF")
    while True:
        line = reader.readline(limit=65536)
        if line == CRLF:
            return
        if trailers is not None:
            trailers.append(line[:-2].decode("latin-1"))


def chunk(data):
    return b"%x\r\n" % len(data) + bytes(data) + CRLF


LAST_CHUNK = b"0\r\n\r\n"


def build_request(method="GET", target="/", host="example.com", headers=(), body=None,
                  version="HTTP/1.1", chunked=False):
    """Builds request bytes.  host=None leaves Host out; Content-Length is added
    for a body unless chunked or the caller gave one."""
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    names = set()
    for n, v in headers:
        lines.append("%s: %s" % (n, v))
        names.add(n.lower())
    if body is not None:
        if chunked:
            if "transfer-encoding" not in names:
                lines.append("Transfer-Encoding: chunked")
        elif "content-length" not in names:
            lines.append("Content-Length: %d" % len(body))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is None:
        return head
    if chunked:
        return head + (chunk(body) if body else b"") + LAST_CHUNK
    return head + bytes(body)


class Response:
    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.raw_head = raw_head
        self.body = b""
        self.body_len = 0
        self.chunked = False
        self.trailers = []
        self.complete = False  # the body's framing was honoured to its end
        self.interim = []  # 1xx responses that came before this one

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %s %r body=%d>" % (self.status, self.reason, self.headers.items,
                                               self.body_len)


def _body_framing(status, headers, head_request):
    if head_request or 100 <= status < 200 or status in (204, 304):
        return "none", 0
    te = headers.tokens("transfer-encoding")
    if te:
        return ("chunked", 0) if te[-1] == "chunked" else ("close", 0)
    cl = headers.get("content-length")
    if cl is not None:
        return "length", int(cl.split(",")[0].strip())
    return "close", 0


def read_response(reader, head_request=False, sink=None, keep_interim=True):
    """Reads one response (skipping and recording 1xx other than 101).
    The body is stored in .body unless `sink` is given.  On a body cut short
    by the peer, returns the response with complete=False (no exception)."""
    interim = []
    while True:
        raw = reader.read_until(b"\r\n\r\n")
        parts, headers = parse_head(raw)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError("bad status line %r" % raw[:200])
        status = int(parts[1])
        resp = Response(parts[0], status, parts[2] if len(parts) > 2 else "", headers, raw)
        if 100 <= status < 200 and status != 101:
            interim.append(resp)
            continue
        break
    resp.interim = interim
    kind, length = _body_framing(status, headers, head_request)
    store = bytearray()

    def feed(d):
        resp.body_len += len(d)
        if sink:
            sink(d)
        else:
            store.extend(d)

    try:
        if kind == "length":
            reader.read_into(length, feed)
        elif kind == "chunked":
            resp.chunked = True
            read_chunked(reader, feed, resp.trailers)
        elif kind == "close":
            feed(reader.read_to_eof())
        resp.complete = True
    except ConnectionClosed:
        resp.complete = False
    resp.body = bytes(store)
    return resp


class RawClient:
    """One client connection with byte-exact control."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, source=None):
        """source: a local address to connect from (127.0.0.x: another
        client, as the shield sees it)."""
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = Reader(self.sock)

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method="GET", target="/", host="example.com", headers=(), body=None,
                chunked=False, version="HTTP/1.1"):
        self.send(build_request(method, target, host, headers, body, version, chunked))
        return self.read_response(head_request=(method == "HEAD"))

    def read_response(self, head_request=False, sink=None):
        return read_response(self.reader, head_request, sink)

    def wait_closed(self, timeout):
        """Waits up to timeout seconds for the peer to close.  Returns
        (closed, bytes_received_before_close, seconds_waited)."""
        t0 = time.monotonic()
        got = bytearray(self.reader.buf)
        self.reader.buf.clear()
        self.sock.settimeout(0.05)
        try:
            while time.monotonic() - t0 < timeout:
                try:
                    d = self.sock.recv(65536)
                except socket.timeout:
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    return True, bytes(got), time.monotonic() - t0
                if not d:
                    return True, bytes(got), time.monotonic() - t0
                got += d
            return False, bytes(got), time.monotonic() - t0
        finally:
            self.sock.settimeout(10.0)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def simple_get(port, target="/", host="example.com", headers=(), timeout=10.0,
               addr="127.0.0.1", source=None):
    """One GET on a fresh connection (closed afterwards)."""
    with RawClient(port, host=addr, timeout=timeout, source=source) as c:
        return c.request("GET", target, host, headers)
