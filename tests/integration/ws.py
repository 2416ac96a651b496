"""Minimal RFC 6455 WebSocket framing for both ends of a tunnel test.

Clients mask their frames, servers do not (RFC 6455 5.1); the reader
checks that rule so a proxy that rewrote frames would be noticed.  No
extensions, no fragmentation on send (fragments are reassembled on read)."""

import base64
import hashlib
import os
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode("ascii")


def new_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


def encode_frame(opcode, payload, mask, fin=True):
    payload = bytes(payload)
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + apply_mask(payload, key)


def apply_mask(data, key):
    # XOR by whole 8-byte words through int arithmetic: fast enough for MiBs.
    n = len(data)
    if n == 0:
        return b""
    k8 = (key * 2)
    reps = (n + 7) // 8
    kk = int.from_bytes(k8 * reps, "big")
    dd = int.from_bytes(bytes(data) + b"\0" * (reps * 8 - n), "big")
    return (dd ^ kk).to_bytes(reps * 8, "big")[:n]


class ProtocolError(Exception):
    pass


def read_frame(reader, expect_masked):
    """Reads one frame; returns (fin, opcode, payload).  Enforces the masking
    direction rule."""
    b0, b1 = reader.read_exact(2)
    fin = bool(b0 & 0x80)
    if b0 & 0x70:
        raise ProtocolError("reserved bits set")
    opcode = b0 & 0x0F
    masked = bool(b1 & 0x80)
    if masked != expect_masked:
        raise ProtocolError("frame masked=%s, expected %s" % (masked, expect_masked))
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", reader.read_exact(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", reader.read_exact(8))
    key = reader.read_exact(4) if masked else None
    payload = reader.read_exact(n)
    if masked:
        payload = apply_mask(payload, key)
    return fin, opcode, payload


def read_message(reader, expect_masked):
    """Reads one message (reassembling fragments); control frames are
    returned as they come.  Returns (opcode, payload)."""
    fin, opcode, payload = read_frame(reader, expect_masked)
    if opcode >= 0x8 or fin:
        return opcode, payload
    parts = [payload]
    while True:
        fin, op, p = read_frame(reader, expect_masked)
        if op != OP_CONT:
            raise ProtocolError("expected continuation, got opcode %d" % op)
        parts.append(p)
        if fin:
            return opcode, b"".join(parts)


def client_handshake_request(path, host, key, extra=()):
    lines = [
        "GET %s HTTP/1.1" % path,
        "Host: %s" % host,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: %s" % key,
        "Sec-WebSocket-Version: 13",
    ]
    lines += ["%s: %s" % kv for kv in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
