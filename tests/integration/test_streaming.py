"""Bodies are streamed with a fixed memory bound per connection: a large
upload and a large download (SURETY_BIG_BYTES, default 1 GiB) pass through
surety while its RSS is sampled every 100 ms.

Bound: RSS may grow at most RSS_BOUND_MIB (64 MiB, for the ASan build,
whose allocator quarantine and shadow memory inflate RSS) above the RSS
measured after a warm-up request.  A proxy that buffered the body would
exceed it many times over at 1 GiB."""

import json
import os
import subprocess
import threading

import pytest

import harness
from streams import Counter, pattern_chunks, pattern_crc

RSS_BOUND_MIB = int(os.environ.get("SURETY_RSS_BOUND_MIB", "64"))
N = harness.BIG_BYTES


def start(env):
    b = env.backend("b1", store_limit=1 << 20)
    s = env.surety(harness.simple_config([b]))
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "http://127.0.0.1:%d/bytes/100000"
                        % s.port()], timeout=30)
    assert r.returncode == 0
    return s, b


def _feed(stdin, n):
    try:
        for c in pattern_chunks(n):
            stdin.write(c)
    except BrokenPipeError:
        pass
    finally:
        try:
            stdin.close()
        except BrokenPipeError:
            pass


def _check_rss(s, sampler, base_kib):
    grown = (sampler.max_kib - base_kib) / 1024
    print("RSS: base %d KiB, max %d KiB, grown %.1f MiB over %d samples"
          % (base_kib, sampler.max_kib, grown, len(sampler.samples)))
    assert sampler.samples, "no RSS samples taken"
    assert grown < RSS_BOUND_MIB, ("RSS grew by %.1f MiB (from %d KiB to %d KiB), bound %d MiB"
                                   % (grown, base_kib, sampler.max_kib, RSS_BOUND_MIB))


@pytest.mark.big
@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_big_upload_is_streamed_with_bounded_memory(env, framing):
    s, b = start(env)
    base = s.rss_kib()
    pattern_crc(N)  # computed before, not while, the transfer runs
    args = ["curl", "-sS", "--max-time", "300", "-X", "POST", "-T", "-",
            "-H", "Expect:", "http://127.0.0.1:%d/upload" % s.port()]
    if framing == "content-length":
        args[-1:-1] = ["-H", "Content-Length: %d" % N, "-H", "Transfer-Encoding:"]
    with harness.RssSampler(s.pid) as sampler:
        p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        t = threading.Thread(target=_feed, args=(p.stdin, N))
        t.start()
        out = p.stdout.read()  # not communicate(): it would close stdin under the feeder
        err = p.stderr.read()
        p.wait(30)
        t.join()
    assert p.returncode == 0, err
    rep = json.loads(out)
    assert rep == {"bytes": N, "crc": pattern_crc(N)}
    req = b.completed()[-1]
    if framing == "content-length":
        assert req.header("Content-Length") == str(N)
    _check_rss(s, sampler, base)


@pytest.mark.big
@pytest.mark.parametrize("framing", ["bytes", "chunked"])
def test_big_download_is_streamed_with_bounded_memory(env, framing):
    s, b = start(env)
    base = s.rss_kib()
    pattern_crc(N)
    cnt = Counter()
    with harness.RssSampler(s.pid) as sampler:
        p = subprocess.Popen(["curl", "-sS", "--max-time", "300",
                              "http://127.0.0.1:%d/%s/%d" % (s.port(), framing, N)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while True:
            d = p.stdout.read(1 << 20)
            if not d:
                break
            cnt.feed(d)
        err = p.stderr.read()
        p.wait(30)
    assert p.returncode == 0, err
    assert cnt.n == N and cnt.matches(N)
    _check_rss(s, sampler, base)
