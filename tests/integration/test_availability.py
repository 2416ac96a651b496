"""Availability: active health checks, failover to a backup pool and
failback, passive outlier ejection, retries and their budget, the
balancers (p2c-ewma, hash, least-conn), draining through the admin API and
`surety status`.

Backends are scripted with `Ctl` (status, /healthz status and delay can be
changed while running); which server answered is read from the X-Backend
response header the test backends add.  Intervals are short (100-200 ms)
so the whole module runs in well under a minute."""

import json
import subprocess
import threading
import time

import harness
from backend import REASONS
from httpio import RawClient, simple_get


# --- helpers -------------------------------------------------------------------

class Ctl:
    """A backend handler whose answers the test changes while it runs:
    /healthz answers `health`; everything else waits `delay` seconds and
    answers `status` with a body naming the backend.  /delay/MS waits MS."""

    def __init__(self, status=200, health=200, delay=0.0):
        self.status = status
        self.health = health
        self.delay = delay

    def __call__(self, req, conn):
        if req.path == "/healthz":
            self.send(conn, req, self.health, "ok\n" if self.health < 400 else "sick\n")
            return
        if req.path.startswith("/delay/"):
            ms = int(req.path[len("/delay/"):])
            conn.backend.stopping.wait(ms / 1000.0)
        elif self.delay:
            conn.backend.stopping.wait(self.delay)
        self.send(conn, req, self.status, "%d from %s\n" % (self.status, conn.backend.name))

    @staticmethod
    def send(conn, req, status, body):
        """The whole response in one write, so a backend stopped by the test
        either answered a request completely or not at all (a response cut
        after its head cannot be retried, by design)."""
        body = body.encode()
        head = ("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                "X-Backend: %s\r\nX-Backend-Conn: %d\r\n\r\n"
                % (status, REASONS.get(status, "Status"), len(body), conn.backend.name, conn.id))
        conn.sendall(head.encode() + (b"" if req.method == "HEAD" else body))


def traffic(b, method=None):
    """Requests (not health checks) that reached backend b."""
    with b.lock:
        return [r for r in b.requests
                if r.path != "/healthz" and (method is None or r.method == method)]


def who(r):
    return r.headers.get("X-Backend")


def get(s, target="/", headers=(), timeout=10.0):
    return simple_get(s.port(), target, headers=headers, timeout=timeout)


def wait_until(pred, timeout, step=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s not reached within %.1fs" % (what, timeout))
        time.sleep(step)


def server(s, pool, address):
    for srv in s.pools()[pool]["servers"]:
        if srv["address"] == address:
            return srv
    raise AssertionError("server %s not in pool %s" % (address, pool))


def admin_action(s, action, pool, address):
    return s.admin_post("/api/v1/servers/%s?pool=%s&server=%s" % (action, pool, address))


class Load:
    """Client threads sending GETs until stopped; each result is
    (t_start, t_end, status or None, backend or error text)."""

    def __init__(self, port, threads=4, keepalive=(True, False), pause=0.005):
        self.port = port
        self.results = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.pause = pause
        self.threads = [threading.Thread(target=self._run, args=(keepalive[i % len(keepalive)],),
                                         daemon=True) for i in range(threads)]

    def _record(self, t0, status, info):
        with self.lock:
            self.results.append((t0, time.monotonic(), status, info))

    def _run(self, keepalive):
        c = None
        while not self.stop_ev.is_set():
            t0 = time.monotonic()
            try:
                if keepalive:
                    if c is None:
                        c = RawClient(self.port, timeout=5.0)
                    r = c.request("GET", "/load")
                    if r.headers.tokens("connection").count("close"):
                        c.close()
                        c = None
                else:
                    r = simple_get(self.port, "/load", timeout=5.0)
                self._record(t0, r.status, who(r) if r.complete else "incomplete body")
            except Exception as e:  # noqa: BLE001 - every failure is a result
                self._record(t0, None, "%s (%s)" % (
                    repr(e), "keep-alive connection" if keepalive else "new connection"))
                if c is not None:
                    c.close()
                    c = None
            self.stop_ev.wait(self.pause)
        if c is not None:
            c.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(10)


def failover_config(primaries, backup, failback_after="30s", **site):
    cfg = harness.simple_config(primaries, pool=dict({
        "backup": "site-dr",
        "failover": {"min_healthy": 1, "failback_after": failback_after},
        "health": {"type": "http", "path": "/healthz", "interval": "200ms", "timeout": "150ms",
                   "rise": 2, "fall": 2},
        # a few concurrent clients may all need a retry at the moment of the kill
        "retry": {"budget_min": 16},
    }, **site))
    cfg["pools"]["site-dr"] = {"servers": [backup.address]}
    return cfg


# --- failover and failback ---------------------------------------------------------

def test_all_primaries_killed_under_load_backup_serves_and_gets_lose_nothing(env):
    ctl = Ctl()
    a, b = env.backend("a", handler=ctl), env.backend("b", handler=ctl)
    dr = env.backend("dr", handler=Ctl())
    s = env.surety(failover_config([a, b], dr))
    assert s.pools()["site"]["serving"] == "site"

    with Load(s.port(), threads=4) as load:
        time.sleep(1.2)
        t_kill = time.monotonic()
        a.stop()
        b.stop()
        time.sleep(1.8)
    res = load.results
    before = [r for r in res if r[1] < t_kill]
    failed = [r for r in res if r[2] != 200]
    assert len(res) > 100, "load generator too slow: %d requests" % len(res)
    assert not failed, "%d of %d GETs failed around the kill (kill at %.3f), e.g. %s" % (
        len(failed), len(res), t_kill, failed[:5])
    assert {r[3] for r in before} <= {"a", "b"} and {"a", "b"} <= {r[3] for r in before}
    after = [r for r in res if r[0] > t_kill + 0.05]
    assert after and all(r[3] == "dr" for r in after), \
        "answers from dead primaries after the kill: %s" % [r for r in after if r[3] != "dr"][:5]
    first_dr = min(r[1] for r in res if r[3] == "dr")
    # fall x interval + one interval, plus scheduling slack
    assert first_dr - t_kill <= 2 * 0.2 + 0.2 + 0.4, \
        "backup answered first %.2fs after the kill" % (first_dr - t_kill)

    lines = s.wait_stderr("failover: pool site traffic now goes to site-dr", timeout=2)
    assert len(lines) == 1, lines
    m = s.metrics()
    assert m.get("surety_pool_failovers_total", pool="site") >= 1
    assert m.get("surety_pool_serving", pool="site", serving="site-dr") == 1
    assert not m.has("surety_pool_serving", pool="site", serving="site")
    p = s.pools()["site"]
    assert p["serving"] == "site-dr" and p["backup"] == "site-dr" and p["usable"] == 0
    assert {srv["health"] for srv in p["servers"]} == {"down"}


def test_failback_waits_for_failback_after(env):
    ctl = Ctl()
    a, b = env.backend("a", handler=ctl), env.backend("b", handler=ctl)
    dr = env.backend("dr", handler=Ctl())
    s = env.surety(failover_config([a, b], dr, failback_after="1500ms"))
    assert who(get(s)) in ("a", "b")
    a.stop()
    b.stop()
    s.wait_stderr("failover: pool site traffic now goes to site-dr", timeout=3)
    assert who(get(s)) == "dr"

    t_restart = time.monotonic()
    env.backend("a", port=a.port, handler=ctl)
    env.backend("b", port=b.port, handler=ctl)
    t_usable = None
    t_back = None
    seen = []
    while time.monotonic() < t_restart + 6:
        if t_usable is None and s.pools()["site"]["usable"] == 2:
            t_usable = time.monotonic()
        r = get(s)
        assert r.status == 200
        seen.append((time.monotonic() - t_restart, who(r)))
        if who(r) in ("a", "b"):
            t_back = time.monotonic()
            break
        time.sleep(0.03)
    assert t_usable is not None, "primaries never usable again after their restart"
    assert t_back is not None, "traffic never came back to the primaries: %s" % seen[-5:]
    # not before failback_after (1.5 s) of usable primaries (API polling lags a bit)...
    assert t_back - t_usable >= 1.5 - 0.15, \
        "failback %.2fs after the primaries were usable, failback_after is 1.5s" % (t_back - t_usable)
    assert t_back - t_restart >= 1.5
    # ...and not much later
    assert t_back - t_usable <= 1.5 + 0.8, "failback %.2fs after usable" % (t_back - t_usable)
    assert all(w in ("a", "b") for w in (who(get(s)) for _ in range(10)))
    s.wait_stderr("failback: pool site serves its own traffic again", timeout=1)
    m = s.metrics()
    assert m.get("surety_pool_failovers_total", pool="site") == 2  # failover + failback
    assert m.get("surety_pool_serving", pool="site", serving="site") == 1
    assert s.pools()["site"]["serving"] == "site"


def test_failover_chain_walks_to_the_backup_of_the_backup(env):
    a = env.backend("a", handler=Ctl())
    dr2 = env.backend("dr2", handler=Ctl())
    cfg = harness.simple_config([a], pool={
        "backup": "site-dr", "failover": {"failback_after": "30s"},
        "health": {"type": "http", "path": "/healthz", "interval": "100ms", "timeout": "80ms",
                   "rise": 1, "fall": 1}})
    dead = harness.refused_address()
    cfg["pools"]["site-dr"] = {"servers": [dead], "backup": "site-dr2",
                               "health": {"type": "tcp", "interval": "100ms", "timeout": "80ms",
                                          "rise": 1, "fall": 1}}
    cfg["pools"]["site-dr2"] = {"servers": [dr2.address]}
    s = env.surety(cfg)
    assert who(get(s)) == "a"
    a.stop()
    # even before the control thread decides, the request walks the chain
    r = get(s)
    assert r.status == 200 and who(r) == "dr2"
    s.wait_stderr("failover: pool site traffic now goes to", timeout=3)
    wait_until(lambda: s.pools()["site"]["serving"] == "site-dr2", 3, what="site served by site-dr2")
    assert all(who(get(s)) == "dr2" for _ in range(5))


# --- passive outlier ejection ------------------------------------------------------

def test_server_returning_500s_is_ejected_and_brought_back(env):
    bad, good = Ctl(status=500), Ctl()
    a, b = env.backend("a", handler=bad), env.backend("b", handler=good)
    s = env.surety(harness.simple_config([a, b], pool={
        "retry": {"attempts": 0},
        "outlier": {"consecutive_errors": 3, "ejection": "1s", "max_ejection": "10s"}}))
    statuses = []
    for _ in range(12):
        r = get(s)
        statuses.append((r.status, who(r)))
        if len(traffic(a)) == 3:
            break
    t_ejected = time.monotonic()
    assert [x for x in statuses if x[1] == "a"] == [(500, "a")] * 3, statuses
    line = s.wait_stderr("outlier: pool site server %s ejected for" % a.address, timeout=1)
    assert "1000 ms" in line[0] and "3 consecutive" in line[0], line
    srv = server(s, "site", a.address)
    assert srv["ejected_for_ms"] > 0 and srv["ejections"] == 1 and srv["usable"] is False
    m = s.metrics()
    assert m.get("surety_server_ejections_total", pool="site", server=a.address) == 1
    assert m.get("surety_server_ejections_total", pool="site", server=b.address) == 0

    bad.status = 200  # healthy again, but ejected: still no requests until the ejection ends
    during = []
    while time.monotonic() < t_ejected + 0.7:
        r = get(s)
        during.append(who(r))
        assert r.status == 200
        time.sleep(0.02)
    assert len(during) >= 10 and set(during) == {"b"}, during
    assert len(traffic(a)) == 3

    t_back = None
    while time.monotonic() < t_ejected + 4:
        r = get(s)
        assert r.status == 200
        if who(r) == "a":
            t_back = time.monotonic()
            break
        time.sleep(0.02)
    assert t_back is not None, "ejected server never got requests again"
    assert 0.8 <= t_back - t_ejected <= 2.0, "back %.2fs after ejection" % (t_back - t_ejected)
    assert server(s, "site", a.address)["usable"] is True


def test_health_check_rise_ends_an_ejection(env):
    """Active checks bring ejected servers back: rise successful checks in a
    row after a passive ejection began end it, long before its 30 s."""
    bad = Ctl(status=500)
    a, b = env.backend("a", handler=bad), env.backend("b", handler=Ctl())
    s = env.surety(harness.simple_config([a, b], pool={
        "retry": {"attempts": 0},
        "health": {"type": "http", "path": "/healthz", "interval": "100ms", "timeout": "80ms",
                   "rise": 2, "fall": 1},
        "outlier": {"consecutive_errors": 2, "ejection": "30s"}}))
    for _ in range(10):
        get(s)
        if len(traffic(a)) == 2:
            break
    s.wait_stderr("outlier: pool site server %s ejected for 30000 ms" % a.address, timeout=1)
    t0 = time.monotonic()
    bad.status = 200
    s.wait_stderr("outlier: pool site server %s is back before its ejection ended: 2 "
                  "successful checks" % a.address, timeout=2)
    srv = server(s, "site", a.address)
    assert srv["usable"] is True and srv["ejected_for_ms"] == 0, srv
    wait_until(lambda: who(get(s)) == "a", 1, what="requests to a again")
    assert time.monotonic() - t0 < 2


def test_failing_health_checks_keep_an_ejected_server_out(env):
    """An ejected server whose checks fail stays out (down), and comes back
    with the checks' rise, not before."""
    bad = Ctl(status=500, health=500)
    a, b = env.backend("a", handler=bad), env.backend("b", handler=Ctl())
    s = env.surety(harness.simple_config([a, b], pool={
        "retry": {"attempts": 0},
        "health": {"type": "http", "path": "/healthz", "interval": "100ms", "timeout": "80ms",
                   "rise": 2, "fall": 1},
        "outlier": {"consecutive_errors": 2, "ejection": "30s"}}))
    s.wait_stderr("health: pool site server %s is DOWN" % a.address, timeout=2)
    time.sleep(0.5)
    srv = server(s, "site", a.address)
    assert srv["usable"] is False and srv["health"] == "down", srv
    bad.health = 200
    bad.status = 200
    s.wait_stderr("health: pool site server %s is UP after 2" % a.address, timeout=2)
    wait_until(lambda: who(get(s)) == "a", 1, what="requests to a again")


# --- active health checks -------------------------------------------------------------

def test_health_check_marks_down_and_up(env):
    ca = Ctl()
    a, b = env.backend("a", handler=ca), env.backend("b", handler=Ctl())
    s = env.surety(harness.simple_config([a, b], pool={
        "health": {"type": "http", "path": "/healthz", "expect": 200, "interval": "100ms",
                   "timeout": "80ms", "rise": 2, "fall": 3}}))
    wait_until(lambda: s.metrics(settle=False).get("surety_health_checks_total", pool="site",
                                                   server=a.address, result="ok") >= 2,
               2, what="checks of a")
    m0 = s.metrics()
    assert m0.get("surety_server_up", pool="site", server=a.address) == 1
    assert {who(get(s)) for _ in range(4)} == {"a", "b"}

    ca.health = 500
    line = s.wait_stderr("health: pool site server %s is DOWN after 3 failed checks" % a.address,
                         timeout=2)
    assert len(line) == 1
    n_a = len(traffic(a))
    assert all(who(get(s)) == "b" for _ in range(20))
    assert len(traffic(a)) == n_a, "a down server got requests"
    m1 = s.metrics()
    assert m1.get("surety_server_up", pool="site", server=a.address) == 0
    assert m1.get("surety_server_up", pool="site", server=b.address) == 1
    assert m1.get("surety_health_transitions_total", pool="site", server=a.address, to="down") \
        == m0.get("surety_health_transitions_total", pool="site", server=a.address, to="down") + 1
    assert m1.get("surety_health_checks_total", pool="site", server=a.address, result="fail") >= 3
    assert m1.get("surety_health_transitions_total", pool="site", server=b.address, to="down") == 0
    srv = server(s, "site", a.address)
    assert srv["health"] == "down" and srv["usable"] is False
    assert srv["last_check"] is not None and srv["last_check"]["status"] == 500

    ca.health = 200
    s.wait_stderr("health: pool site server %s is UP after 2 successful checks" % a.address,
                  timeout=2)
    assert "a" in {who(get(s)) for _ in range(6)}
    m2 = s.metrics()
    assert m2.get("surety_server_up", pool="site", server=a.address) == 1
    assert m2.get("surety_health_transitions_total", pool="site", server=a.address, to="up") \
        == m0.get("surety_health_transitions_total", pool="site", server=a.address, to="up") + 1
    assert server(s, "site", a.address)["health"] == "up"


def test_tcp_health_check_marks_a_dead_server_down(env):
    a, b = env.backend("a", handler=Ctl()), env.backend("b", handler=Ctl())
    s = env.surety(harness.simple_config([a, b], pool={
        "health": {"type": "tcp", "interval": "100ms", "timeout": "80ms", "rise": 1, "fall": 2}}))
    a.stop()
    s.wait_stderr("health: pool site server %s is DOWN" % a.address, timeout=2)
    assert all(get(s).status == 200 for _ in range(6))
    assert s.metrics().get("surety_server_up", pool="site", server=a.address) == 0


# --- retries ----------------------------------------------------------------------

def _retry_config(flaky_servers, refused_servers):
    no_outlier = {"outlier": {"consecutive_errors": 0}}
    cfg = harness.simple_config(refused_servers, routes=[{"path": "/flaky/", "pool": "flaky"},
                                                         {"pool": "site"}], pool=no_outlier)
    cfg["pools"]["flaky"] = dict(no_outlier, servers=flaky_servers)
    return cfg


def test_retry_moves_a_failed_get_to_another_server(env):
    sick = env.backend("sick", handler=Ctl(status=503))
    good1, good2 = env.backend("good1", handler=Ctl()), env.backend("good2", handler=Ctl())
    dead = harness.refused_address()
    s = env.surety(_retry_config([sick.address, good2.address], [dead, good1.address]))

    # a refused connection: every GET answered by the other server
    rs = [get(s, "/x") for _ in range(10)]
    assert [(r.status, who(r)) for r in rs] == [(200, "good1")] * 10
    # a 503: dropped, and the GET is answered by the other server
    rs = [get(s, "/flaky/x") for _ in range(10)]
    assert [(r.status, who(r)) for r in rs] == [(200, "good2")] * 10
    n_sick = len(traffic(sick))
    assert n_sick >= 3, "round-robin never tried the 503 server (%d)" % n_sick
    m = s.metrics()
    assert m.get("surety_pool_retries_total", pool="site") >= 3
    assert m.get("surety_server_retries_total", pool="site", server=dead) >= 3
    assert m.get("surety_pool_retries_total", pool="flaky") == n_sick
    assert m.get("surety_server_retries_total", pool="flaky", server=sick.address) == n_sick
    assert m.get("surety_server_retries_total", pool="flaky", server=good2.address) == 0


def test_get_is_never_retried_on_the_same_server(env):
    sick = env.backend("sick", handler=Ctl(status=503))
    s = env.surety(harness.simple_config([sick], pool={"retry": {"attempts": 3},
                                                       "outlier": {"consecutive_errors": 0}}))
    r = get(s)
    assert len(traffic(sick)) == 1, "retried on the same (only) server"
    assert r.status == 503 and who(r) == "sick"


def test_503_of_the_only_server_reaches_the_client_when_no_other_server_is_left(env):
    sick = env.backend("sick", handler=Ctl(status=503))
    s = env.surety(harness.simple_config([sick], pool={"outlier": {"consecutive_errors": 0}}))
    r = get(s)
    assert len(traffic(sick)) == 1
    assert (r.status, who(r), r.body) == (503, "sick", b"503 from sick\n")


def test_full_outage_of_two_servers_with_default_retry_passes_the_last_503(env):
    bs = [env.backend("s%d" % i, handler=Ctl(status=503)) for i in range(2)]
    s = env.surety(harness.simple_config(bs, pool={"outlier": {"consecutive_errors": 0}}))
    r = get(s)
    assert sum(len(traffic(b)) for b in bs) == 2  # first try + one retry on the other
    assert r.status == 503 and who(r) in ("s0", "s1")


def test_post_with_a_body_is_not_retried(env):
    sick = env.backend("sick", handler=Ctl(status=503))
    good1, good2 = env.backend("good1", handler=Ctl()), env.backend("good2", handler=Ctl())
    dead = harness.refused_address()
    s = env.surety(_retry_config([sick.address, good2.address], [dead, good1.address]))

    statuses = []
    for _ in range(10):
        with RawClient(s.port()) as c:
            statuses.append(c.request("POST", "/flaky/form", body=b"a=1&b=2").status)
    assert statuses.count(503) == len(traffic(sick, "POST")) >= 3, statuses
    assert statuses.count(200) == len(traffic(good2, "POST")), statuses
    assert set(statuses) <= {200, 503}

    statuses = []
    for _ in range(10):
        with RawClient(s.port()) as c:
            statuses.append(c.request("POST", "/form", body=b"a=1&b=2").status)
    assert statuses.count(502) >= 3, statuses
    assert statuses.count(200) == len(traffic(good1, "POST")), statuses
    assert set(statuses) <= {200, 502}


def test_put_with_a_small_body_is_retried_with_its_body(env):
    """An idempotent request whose body fits retry.body is replayed whole on
    another server; a bigger one is not retried."""
    sick = env.backend("sick", handler=Ctl(status=503))
    good = env.backend("good")  # the default backend: /echo returns the body
    cfg = harness.simple_config([sick, good], pool={
        "outlier": {"consecutive_errors": 0},
        "retry": {"on": [503], "body": "1k"}, "balance": "round-robin"})
    s = env.surety(cfg)
    body = b"x" * 700 + b"end"
    for _ in range(6):
        with RawClient(s.port()) as c:
            r = c.request("PUT", "/echo", body=body)
        assert r.status == 200 and r.body == body
    assert len(traffic(sick, "PUT")) >= 3  # round-robin sent some there first
    big = b"y" * 2000
    statuses = []
    for _ in range(6):
        with RawClient(s.port()) as c:
            statuses.append(c.request("PUT", "/echo", body=big).status)
    assert 503 in statuses, statuses  # over retry.body: the server's answer stands
    assert set(statuses) <= {200, 503}


def _outage(env, n=30):
    """n concurrent GETs to a pool of 3 servers all answering 503 after
    150 ms, retry on 503 with attempts 2 and a budget of 1 retry in flight.
    Returns (surety, backends, statuses)."""
    ctls = [Ctl(status=503, delay=0.15) for _ in range(3)]
    bs = [env.backend("s%d" % i, handler=c) for i, c in enumerate(ctls)]
    s = env.surety(harness.simple_config(bs, pool={
        "retry": {"attempts": 2, "budget": "0%", "budget_min": 1, "on": [503]},
        "outlier": {"consecutive_errors": 0}}))
    go = threading.Barrier(n)
    results = []

    def client():
        go.wait()
        try:
            results.append(get(s, "/outage").status)
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))

    ts = [threading.Thread(target=client) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    return s, bs, results


def test_retry_budget_caps_retries_during_full_outage(env):
    n = 30
    s, bs, results = _outage(env, n)
    # a retry refused by the budget passes the server's own answer on
    assert results == [503] * n, results
    m = s.metrics()
    retries = m.get("surety_pool_retries_total", pool="site")
    exhausted = m.get("surety_pool_retry_budget_exhausted_total", pool="site")
    sent = sum(len(traffic(b)) for b in bs)
    assert sent == n + retries, "backends saw %d requests, %d + %d retries" % (sent, n, retries)
    assert retries >= 1
    assert exhausted >= n / 2, "budget refused only %d retries" % exhausted
    assert retries <= 10 < n * 2, "%d retries for %d requests: the budget did not bound them" % (
        retries, n)


# --- balancers ----------------------------------------------------------------------

def _share(port, name, clients, per_client, target="/p2c"):
    counts = []
    lock = threading.Lock()

    def run():
        got = []
        with RawClient(port, timeout=10) as c:
            for _ in range(per_client):
                r = c.request("GET", target)
                assert r.status == 200
                got.append(who(r))
        with lock:
            counts.extend(got)

    ts = [threading.Thread(target=run) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(counts) == clients * per_client
    return counts.count(name) / len(counts)


def test_p2c_ewma_moves_traffic_away_from_a_slow_server(env):
    ca, cb = Ctl(delay=0.005), Ctl(delay=0.005)
    a, b = env.backend("a", handler=ca), env.backend("b", handler=cb)
    s = env.surety(harness.simple_config([a, b], pool={"balance": "p2c-ewma"}))
    _share(s.port(), "a", 4, 10)  # warm-up
    before = _share(s.port(), "a", 6, 40)
    assert 0.3 <= before <= 0.7, "equal servers got shares %.2f / %.2f" % (before, 1 - before)
    ca.delay = 0.05
    _share(s.port(), "a", 6, 10)  # let the latency average learn
    after = _share(s.port(), "a", 6, 40)
    assert after < before / 4, "10x slower server kept %.2f of the requests (was %.2f)" % (
        after, before)


def _map_keys(port, keys):
    out = {}
    with RawClient(port) as c:
        for k in keys:
            r = c.request("GET", "/h", headers=[("X-User", k)])
            assert r.status == 200
            out[k] = who(r)
    return out


def test_hash_is_stable_and_moves_about_one_nth_on_removal(env):
    bs = [env.backend("h%d" % i, handler=Ctl()) for i in range(4)]
    s = env.surety(harness.simple_config(bs, pool={"balance": "hash", "hash": "header:X-User"}))
    keys = ["user-%d" % i for i in range(200)]
    first = _map_keys(s.port(), keys)
    assert _map_keys(s.port(), keys) == first, "same key went to different servers"
    per = {b.name: sum(1 for v in first.values() if v == b.name) for b in bs}
    assert all(n >= 200 * 0.08 for n in per.values()), "lopsided key spread %s" % per

    gone = bs[1]
    r = admin_action(s, "drain", "site", gone.address)
    assert r.status == 200, r.body
    second = _map_keys(s.port(), keys)
    assert gone.name not in second.values(), "drained server still got new requests"
    stayed = [k for k in keys if first[k] != gone.name]
    assert all(second[k] == first[k] for k in stayed), "keys of remaining servers moved: %s" % [
        (k, first[k], second[k]) for k in stayed if second[k] != first[k]][:10]
    moved = sum(1 for k in keys if first[k] != second[k])
    assert moved == per[gone.name]
    assert 0.08 <= moved / 200 <= 0.45, "%d of 200 keys moved" % moved
    # its keys spread over the others, not all to one
    assert len({second[k] for k in keys if first[k] == gone.name}) >= 2

    assert admin_action(s, "enable", "site", gone.address).status == 200
    assert _map_keys(s.port(), keys) == first, "mapping not restored after enable"


def test_hash_by_cookie_keeps_a_client_on_one_server(env):
    bs = [env.backend("h%d" % i, handler=Ctl()) for i in range(3)]
    s = env.surety(harness.simple_config(bs, pool={"balance": "hash", "hash": "cookie:sid"}))
    seen = {}
    for i in range(30):
        sid = "session-%d" % i
        names = {who(get(s, headers=[("Cookie", "a=1; sid=%s; z=2" % sid)])) for _ in range(3)}
        assert len(names) == 1, "sid %s went to %s" % (sid, names)
        seen[sid] = names.pop()
    assert len(set(seen.values())) >= 2


def test_least_conn_prefers_the_idle_server(env):
    a, b = env.backend("a", handler=Ctl()), env.backend("b", handler=Ctl())
    s = env.surety(harness.simple_config([a, b], pool={"balance": "least-conn"}))
    slow = []
    t = threading.Thread(target=lambda: slow.append(get(s, "/delay/1500")))
    t.start()
    busy = wait_until(lambda: next((x for x in (a, b) if any(
        r.path == "/delay/1500" for r in traffic(x))), None), 2, what="slow request arrival")
    idle = b if busy is a else a
    names = [who(get(s)) for _ in range(10)]
    assert names == [idle.name] * 10, "least-conn sent requests to the busy server: %s" % names
    t.join(5)
    assert slow and slow[0].status == 200
    assert {who(get(s)) for _ in range(6)} == {"a", "b"}


# --- draining and the admin API -------------------------------------------------------

def test_drained_server_finishes_in_flight_and_gets_no_new_requests(env):
    a, b = env.backend("a", handler=Ctl()), env.backend("b", handler=Ctl())
    s = env.surety(harness.simple_config([a, b]))
    slow = []
    t = threading.Thread(target=lambda: slow.append(get(s, "/delay/1500")))
    t.start()
    busy = wait_until(lambda: next((x for x in (a, b) if any(
        r.path == "/delay/1500" for r in traffic(x))), None), 2, what="slow request arrival")
    other = b if busy is a else a

    r = admin_action(s, "drain", "site", busy.address)
    assert r.status == 200
    assert json.loads(r.body) == {"pool": "site", "server": busy.address, "admin": "draining"}
    srv = server(s, "site", busy.address)
    assert srv["admin"] == "draining" and srv["usable"] is False and srv["inflight"] == 1
    n_busy = len(traffic(busy))
    names = [who(get(s)) for _ in range(10)]
    assert names == [other.name] * 10, names
    assert len(traffic(busy)) == n_busy

    st = subprocess.run([s.binary, "status", "-c", str(s.config_path)], capture_output=True,
                        text=True, timeout=10)
    assert st.returncode == 0, st.stderr
    row = [l for l in st.stdout.splitlines() if busy.address in l]
    assert row and "draining" in row[0], st.stdout

    t.join(5)
    assert slow and slow[0].status == 200 and slow[0].complete and who(slow[0]) == busy.name

    r = admin_action(s, "enable", "site", busy.address)
    assert r.status == 200 and json.loads(r.body)["admin"] == "enabled"
    assert {who(get(s)) for _ in range(6)} == {"a", "b"}
    assert "admin: pool site server %s" % busy.address in s.stderr_text()


def test_disabled_server_gets_no_requests(env):
    a, b = env.backend("a", handler=Ctl()), env.backend("b", handler=Ctl())
    s = env.surety(harness.simple_config([a, b]))
    r = admin_action(s, "disable", "site", a.address)
    assert r.status == 200 and json.loads(r.body)["admin"] == "disabled"
    assert all(who(get(s)) == "b" for _ in range(6))
    assert server(s, "site", a.address)["admin"] == "disabled"


def test_pools_api_json_shape(env):
    a, b = env.backend("a", handler=Ctl()), env.backend("dr", handler=Ctl())
    cfg = harness.simple_config([a], pool={
        "backup": "site-dr",
        "health": {"type": "http", "path": "/healthz", "interval": "100ms", "timeout": "80ms"}})
    cfg["pools"]["site-dr"] = {"servers": [{"address": b.address, "weight": 3}]}
    s = env.surety(cfg)
    wait_until(lambda: server(s, "site", a.address)["last_check"] is not None, 2,
               what="a first health check")
    r = s.admin_get("/api/v1/pools")
    assert r.status == 200 and r.headers.get("Content-Type", "").startswith("application/json")
    doc = json.loads(r.body)
    pools = {p["name"]: p for p in doc["pools"]}
    assert set(pools) == {"site", "site-dr"}
    site, dr = pools["site"], pools["site-dr"]
    for p in (site, dr):
        assert {"name", "serving", "backup", "failovers", "usable", "servers"} <= set(p)
        for srv in p["servers"]:
            assert {"address", "weight", "health", "admin", "usable", "inflight",
                    "ejected_for_ms", "ejections", "consecutive_errors", "last_check"} <= set(srv)
            assert srv["health"] in ("up", "down") and srv["admin"] == "enabled"
            assert isinstance(srv["usable"], bool) and isinstance(srv["inflight"], int)
    assert site["serving"] == "site" and site["backup"] == "site-dr" and site["failovers"] == 0
    assert site["usable"] == 1 and dr["backup"] is None and dr["serving"] == "site-dr"
    sa = site["servers"][0]
    assert sa["address"] == a.address and sa["weight"] == 1 and sa["health"] == "up"
    assert sa["usable"] is True and sa["ejected_for_ms"] == 0 and sa["ejections"] == 0
    lc = sa["last_check"]
    assert isinstance(lc, dict) and lc["status"] == 200 and lc["ago_ms"] >= 0
    sd = dr["servers"][0]
    assert sd["weight"] == 3 and sd["last_check"] is None  # no health section: never checked

    text = s.admin_get("/api/v1/pools?format=text")
    assert text.status == 200
    t = text.text()
    assert "pool site" in t and "pool site-dr" in t and a.address in t and b.address in t

    assert s.admin_post("/api/v1/servers/drain?pool=site&server=127.0.0.1:1").status == 404
    assert s.admin_post("/api/v1/servers/drain?pool=nope&server=%s" % a.address).status == 404
    assert s.admin_post("/api/v1/servers/drain?pool=site").status == 400
    assert s.admin_post("/api/v1/servers/enable").status == 400
    assert server(s, "site", a.address)["admin"] == "enabled"


def test_status_without_running_instance_exits_1(env):
    s = env.surety(harness.simple_config(["127.0.0.1:9"]), start=False)
    st = subprocess.run([s.binary, "status", "-c", str(s.config_path)], capture_output=True,
                        text=True, timeout=10, env=harness.sanitizer_env())
    assert st.returncode == 1
    assert "cannot reach the admin listener" in st.stderr and str(s.admin_port) in st.stderr
    assert st.stdout == ""


def test_status_prints_the_pool_table(env):
    a = env.backend("a", handler=Ctl())
    s = env.surety(harness.simple_config([a]))
    st = subprocess.run([s.binary, "status", "-c", str(s.config_path)], capture_output=True,
                        text=True, timeout=10)
    assert st.returncode == 0, st.stderr
    assert "pool site" in st.stdout and a.address in st.stdout and "SERVER" in st.stdout


def _slow_start_run(env, weight):
    ca = Ctl()
    a, b = env.backend("a", handler=ca), env.backend("b", handler=Ctl())
    s = env.surety(harness.simple_config(
        [{"address": a.address, "weight": weight}, {"address": b.address, "weight": weight}],
        pool={"slow_start": "2s",
              "health": {"type": "http", "path": "/healthz", "interval": "100ms",
                         "timeout": "80ms", "rise": 1, "fall": 1}}))
    ca.health = 500
    s.wait_stderr("is DOWN", timeout=2)
    ca.health = 200
    s.wait_stderr("is UP", timeout=2)
    early = [who(get(s)) for _ in range(20)]
    assert early.count("a") <= 5, "returning server got %d of 20 at once" % early.count("a")
    time.sleep(2.1)
    late = [who(get(s)) for _ in range(20)]
    assert 8 <= late.count("a") <= 12, late


def test_slow_start_ramps_a_returning_server(env):
    _slow_start_run(env, 10)


def test_slow_start_ramps_a_returning_server_of_default_weight(env):
    _slow_start_run(env, 1)
