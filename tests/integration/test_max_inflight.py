"""Per-server max_inflight: a server never has more requests at once than
its limit, counted over all workers; a full server is passed over; a pool
whose servers are all full queues requests for queue_timeout, first come
first served, then answers 503 with Retry-After (and is not failed over);
near the limit is a saturation event."""

import json
import subprocess
import threading
import time

import harness
from httpio import RawClient, simple_get
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


NO_QUEUE = {"queue_timeout": "0"}


def test_a_full_pool_answers_503_with_retry_after_and_never_exceeds_the_limit(env):
    ctl = Counting(delay=1.5)
    slow = env.backend("slow", handler=ctl)
    s = env.surety(harness.simple_config([server(slow, 2)], pool=NO_QUEUE, workers=2))
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
    cfg = harness.simple_config([server(main, 1)], pool={"backup": "dr", **NO_QUEUE})
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


def test_requests_wait_for_a_slot_in_the_queue_over_two_workers(env):
    ctl = Counting(delay=0.3)
    b = env.backend("b", handler=ctl)
    s = env.surety(harness.simple_config([server(b, 1)], pool={"queue_timeout": "10s"},
                                         workers=2))
    t0 = time.monotonic()
    rs = at_once(s.port(), 4)
    took = time.monotonic() - t0
    assert [r.status for r in rs] == [200] * 4
    assert ctl.most == 1, "the server had %d requests at once" % ctl.most
    assert took >= 4 * 0.3 - 0.05, took  # one after another
    m = s.metrics()
    assert m.get("surety_pool_queued", pool="site") == 0
    assert m.get("surety_pool_busy_total", pool="site") == 0


def wait_queued(s, n, timeout=10):
    """Until n requests of pool site wait for a slot."""
    deadline = time.monotonic() + timeout
    while s.metrics(settle=False).get("surety_pool_queued", pool="site") != n:
        assert time.monotonic() < deadline, "never %d queued" % n
        time.sleep(0.02)


def test_the_queue_is_first_come_first_served(env):
    b = env.backend("b", handler=Ctl())
    s = env.surety(harness.simple_config([server(b, 1)], pool={"queue_timeout": "10s"}))
    # the first holds the slot 1.5 s, time enough to queue the others one
    # by one on a busy machine; they then take 100 ms each
    targets = ["/delay/1500?n=0"] + ["/delay/100?n=%d" % i for i in range(1, 5)]
    clients = []
    for i, target in enumerate(targets):  # each once the one before holds the slot or waits
        c = RawClient(s.port(), timeout=20)
        c.send(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target).encode())
        clients.append(c)
        if i == 0:
            assert b.wait_requests(1)
        else:
            wait_queued(s, i)
    for c in clients:
        assert c.read_response().status == 200
        c.close()
    assert [r.target for r in b.requests] == targets
    # the access log says how long each waited: the first not at all, the
    # later ones longer
    lines, _ = s.access_log(expect=5)
    waits = {}
    for l in lines:
        waits.setdefault(l["path"], []).append(l.get("queue_s"))
    assert waits["/delay/1500"] == [None], lines
    queued = sorted(waits["/delay/100"])
    assert len(queued) == 4 and queued[0] > 0.3, lines
    assert all(l["duration_s"] >= (l.get("queue_s") or 0) for l in lines), lines


def test_a_request_that_waits_longer_than_queue_timeout_gets_503(env):
    b = env.backend("b", handler=Ctl(delay=2.0))
    s = env.surety(harness.simple_config([server(b, 1)], pool={"queue_timeout": "300ms"}))
    first = threading.Thread(target=simple_get, args=(s.port(), "/"), kwargs={"timeout": 10})
    first.start()
    assert b.wait_requests(1)  # the first holds the only slot
    t0 = time.monotonic()
    r = simple_get(s.port(), "/", timeout=10)
    waited = time.monotonic() - t0
    first.join(10)
    assert r.status == 503 and r.headers.get("Retry-After") == "1", r
    assert 0.25 <= waited < 1.5, waited
    m = s.metrics()
    assert m.get("surety_pool_busy_total", pool="site") == 1
    assert m.get("surety_pool_queued", pool="site") == 0


def test_a_client_gone_from_the_queue_and_a_reload_leave_the_others_served(env):
    from test_reload import reload_cli
    b = env.backend("b", handler=Ctl(delay=1.0))
    cfg = harness.simple_config([server(b, 1)], pool={"queue_timeout": "10s"})
    s = env.surety(cfg)
    first = threading.Thread(target=simple_get, args=(s.port(), "/first"),
                             kwargs={"timeout": 10})
    first.start()
    assert b.wait_requests(1)  # /first holds the slot
    gone = RawClient(s.port())
    gone.send(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
    out = {}
    waiter = threading.Thread(target=lambda: out.update(r=simple_get(s.port(), "/waits",
                                                                     timeout=20)))
    waiter.start()
    wait_queued(s, 2)
    assert json.loads(s.admin_get("/api/v1/pools").body)["pools"][0]["queued"] == 2
    st = subprocess.run([harness.surety_binary(), "status", "-c", str(s.config_path)],
                        capture_output=True, text=True, env=harness.sanitizer_env())
    assert "2 waiting for a max_inflight slot" in st.stdout, st.stdout
    gone.close()  # leaves while queued
    assert reload_cli(s).returncode == 0  # the old workers keep their queue while they drain
    first.join(10)
    waiter.join(20)
    assert out["r"].status == 200
    assert s.metrics().get("surety_pool_queued", pool="site") == 0
    assert simple_get(s.port(), "/after").status == 200


def test_a_queued_request_whose_servers_go_away_is_answered_at_once(env):
    """Queued behind a busy server that is then disabled: nothing is usable
    any more, so the request is answered 503 (no server) at once, not kept
    until queue_timeout as if the pool were still busy."""
    b = env.backend("b", handler=Ctl(delay=1.0))
    s = env.surety(harness.simple_config([server(b, 1)], pool={"queue_timeout": "20s"}))
    first = threading.Thread(target=simple_get, args=(s.port(), "/first"),
                             kwargs={"timeout": 10})
    first.start()
    assert b.wait_requests(1)
    out = {}
    waiter = threading.Thread(target=lambda: out.update(r=simple_get(s.port(), "/waits",
                                                                     timeout=30)))
    waiter.start()
    wait_queued(s, 1)
    t0 = time.monotonic()
    r = s.admin_post("/api/v1/servers/disable?pool=site&server=%s" % b.address)
    assert r.status == 200, r
    waiter.join(30)
    first.join(10)
    assert out["r"].status == 503 and time.monotonic() - t0 < 5
    m = s.metrics()
    assert m.get("surety_pool_no_server_total", pool="site") == 1
    assert m.get("surety_pool_busy_total", pool="site") == 0
