"""Per-server max_inflight: a server never has more requests at once than
its limit, counted over all workers; a full server is passed over; a pool
whose servers are all full answers 503 with Retry-After at once (not
queued, not failed over); near the limit is a saturation event."""

import json
import subprocess
import threading
import time

import harness
from httpio import simple_get
from test_availability import Ctl, who


def at_once(port, n, target="/"):
    """n requests on n connections, started together; their responses."""
    out = [None] * n
    start = threading.Barrier(n)

    def run(i):
        start.wait()
        out[i] = simple_get(port, target, timeout=20)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert all(out), "a request got no response"
    return out


class Counting(Ctl):
    """Ctl that also counts the requests it is answering at once."""

    def __init__(self, delay):
        super().__init__(delay=delay)
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __call__(self, req, conn):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            super().__call__(req, conn)
        finally:
            with self.lock:
                self.now -= 1


def server(b, max_inflight):
    return {"address": b.address, "max_inflight": max_inflight}


def test_a_full_pool_answers_503_with_retry_after_and_never_exceeds_the_limit(env):
    ctl = Counting(delay=1.5)
    slow = env.backend("slow", handler=ctl)
    s = env.surety(harness.simple_config([server(slow, 2)], workers=2))
    rs = at_once(s.port(), 6)
    codes = sorted(r.status for r in rs)
    assert codes == [200, 200, 503, 503, 503, 503], codes
    for r in rs:
        if r.status == 503:
            assert r.headers.get("Retry-After") == "1", r
    assert ctl.most == 2
    m = s.metrics()
    assert m.get("surety_pool_busy_total", pool="site") == 4
    assert m.get("surety_pool_no_server_total", pool="site") == 0
    # the slots come back: the next requests are served
    assert [r.status for r in at_once(s.port(), 2)] == [200, 200]
    api = json.loads(s.admin_get("/api/v1/pools").body)
    srv = api["pools"][0]["servers"][0]
    assert srv["max_inflight"] == 2 and srv["inflight"] == 0, srv
    st = subprocess.run([harness.surety_binary(), "status", "-c", str(s.config_path)],
                        capture_output=True, text=True, env=harness.sanitizer_env())
    line = [x for x in st.stdout.splitlines() if slow.address in x][0]
    assert " 0/2 " in line, st.stdout


def test_a_full_server_is_passed_over_for_one_with_room(env):
    ca = Counting(delay=1.0)
    a = env.backend("a", handler=ca)
    b = env.backend("b", handler=Ctl(delay=1.0))
    s = env.surety(harness.simple_config([server(a, 1), b], workers=2))
    rs = at_once(s.port(), 5)
    assert [r.status for r in rs] == [200] * 5
    assert sum(who(r) == "a" for r in rs) <= 1
    assert ca.most <= 1


def test_a_busy_pool_is_not_failed_over(env):
    main = env.backend("main", handler=Ctl(delay=1.0))
    dr = env.backend("dr")
    cfg = harness.simple_config([server(main, 1)], pool={"backup": "dr"})
    cfg["pools"]["dr"] = {"servers": [dr.address]}
    s = env.surety(cfg)
    rs = at_once(s.port(), 3)
    assert sorted(r.status for r in rs) == [200, 503, 503]
    assert all(who(r) != "dr" for r in rs if r.status == 200)
    assert not dr.requests


def test_requests_near_the_limit_are_a_saturation_event(env):
    slow = env.backend("slow", handler=Ctl(delay=1.0))
    s = env.surety(harness.simple_config([server(slow, 2)]),
                   env={"SURETY_TEST_TICK_MS": "200"})
    at_once(s.port(), 2)

    def events():
        evs = json.loads(s.admin_get("/api/v1/events?kind=").body)["events"]
        mine = [e for e in evs if e["subject"] == "server:site/" + slow.address]
        return mine if len(mine) >= 2 else None

    deadline = time.monotonic() + 5
    evs = events()
    while not evs and time.monotonic() < deadline:
        time.sleep(0.1)
        evs = events()
    assert evs, s.stderr_text()
    kinds = [e["kind"] for e in reversed(evs)]  # newest first in the API
    assert kinds[:2] == ["saturation", "saturation_cleared"], kinds
    s.wait_stderr("max_inflight (2)")
