"""Deterministic byte streams that can be generated, counted and verified
without ever holding them in memory.

The 1 GiB streaming tests push a generated pattern through surety and check
it on the far side with a running CRC-32, so neither the test nor the
backend stores the body.  The pattern is a fixed 64 KiB block repeated; the
block's bytes depend on their position so that a dropped, duplicated or
reordered piece changes the CRC."""

import functools
import zlib

BLOCK_SIZE = 64 * 1024
# 256 KiB writes: large enough to keep a Python sender from being the
# bottleneck, small enough to stay far below any memory bound under test.
WRITE_SIZE = 4 * BLOCK_SIZE


def _make_block():
    out = bytearray(BLOCK_SIZE)
    for i in range(BLOCK_SIZE):
        out[i] = (i * 31 + (i >> 8) * 7 + (i >> 13)) & 0xFF
    return bytes(out)


BLOCK = _make_block()
WRITE_BLOCK = BLOCK * (WRITE_SIZE // BLOCK_SIZE)


def pattern_chunks(total, chunk=WRITE_SIZE):
    """Yields memoryviews covering the first `total` bytes of the pattern.
    `chunk` must be a multiple of BLOCK_SIZE (the default is)."""
    assert chunk % BLOCK_SIZE == 0 and chunk <= WRITE_SIZE
    view = memoryview(WRITE_BLOCK)
    left = total
    while left > 0:
        n = min(chunk, left)
        yield view[:n]
        left -= n


def pattern_bytes(total):
    """The first `total` bytes of the pattern as one bytes object (small sizes only)."""
    return b"".join(bytes(c) for c in pattern_chunks(total))


@functools.lru_cache(maxsize=16)
def pattern_crc(total):
    """CRC-32 of the first `total` bytes of the pattern (cached: 1 GiB takes ~1 s)."""
    crc = 0
    for c in pattern_chunks(total):
        crc = zlib.crc32(c, crc)
    return crc


class Counter:
    """A sink that counts bytes and keeps a running CRC-32."""

    def __init__(self):
        self.n = 0
        self.crc = 0

    def feed(self, data):
        self.n += len(data)
        self.crc = zlib.crc32(data, self.crc)

    def matches(self, total):
        return self.n == total and self.crc == pattern_crc(total)
