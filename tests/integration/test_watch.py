"""24-hour monitoring in a running Surety (issue 6): monitors (probes),
objectives fed by the gateway's request counters, burn-rate alerts to a
signed webhook, maintenance windows, events, the store.

Time is injected: SURETY_TEST_TICK_MS makes the collection tick short and
SURETY_TEST_CLOCK names a file holding seconds added to the wall clock, so a
test jumps days ahead instead of waiting for them."""

import hashlib
import hmac
import http.server
import json
import signal
import subprocess
import threading
import time

import pytest

import harness
from backend import Backend


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def api(s, path):
    r = s.admin_get(path)
    assert r.status == 200, (path, r.status, r.body)
    return json.loads(r.body)


def monitor_state(s, name):
    return [m for m in api(s, "/api/v1/monitors")["monitors"] if m["name"] == name][0]["state"]


def objective(s, name):
    return [o for o in api(s, "/api/v1/objectives")["objectives"] if o["name"] == name][0]


class Recorder:
    """What a test receiver got, and a wait for the next ones."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def record(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait(self, n, timeout):
        with self.cond:
            deadline = time.monotonic() + timeout
            while len(self.items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


class Hooks(Recorder):
    """A webhook receiver: records every POST (headers, body) it gets."""

    def __init__(self):
        super().__init__()
        self.posts = self.items
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.record((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    h = Hooks()
    yield h
    h.close()


def errors_handler(req, conn):
    """/err answers 500, the rest 200."""
    if req.path.startswith("/err"):
        conn.respond(500, b"broken\n")
    else:
        conn.respond(200, b"ok\n")


def traffic(s, ok, errors):
    c = harness.RawClient(s.port(), timeout=10)
    for i in range(ok + errors):
        r = c.request("GET", "/err" if i < errors else "/ok", host="svc")
        assert r.status == (500 if i < errors else 200)
    c.close()


def test_a_probe_target_switched_off_is_reported_down_after_down_after_and_back_up(env, tmp_path):
    b = env.backend("target")
    port = b.port
    s = env.surety(harness.simple_config([b], monitors={
        "home": {"http": "http://127.0.0.1:%d/health" % port, "interval": "1s",
                 "timeout": "500ms", "down_after": 2, "up_after": 2}}),
        env={"SURETY_TEST_TICK_MS": "200"})
    wait_until(lambda: monitor_state(s, "home") == "up", 5, "home up")
    b.stop()
    t0 = time.monotonic()
    wait_until(lambda: monitor_state(s, "home") == "down", 6, "home down")
    # two failed probes at 1 s intervals: not after the first one
    assert time.monotonic() - t0 >= 1.0
    m = [x for x in api(s, "/api/v1/monitors")["monitors"] if x["name"] == "home"][0]
    assert m["fail_streak"] >= 2 and not m["last"]["ok"]
    b2 = env.backend("target-again", port=port)
    wait_until(lambda: monitor_state(s, "home") == "up", 6, "home up again")
    kinds = [e["kind"] for e in api(s, "/api/v1/events?kind=")["events"]]
    assert kinds[:3] == ["monitor_up", "monitor_down", "monitor_up"], kinds
    s.wait_stderr("monitor home (http://127.0.0.1:%d/health) is DOWN" % port)
    # the store has the transitions (WAL: readable while Surety runs)
    db = s.workdir / "var" / "surety.db"
    def states():
        rows = subprocess.run(["sqlite3", str(db), "select from_state, to_state from states "
                               "where monitor='home' order by id"],
                              capture_output=True, text=True).stdout.split()
        return rows if len(rows) >= 3 else None
    rows = wait_until(states, 5, "states in the store")
    assert rows == ["unknown|up", "up|down", "down|up"], rows
    assert b2.completed(), "the probe did not reach the target"


def alerting_surety(env, tmp_path, hooks, **extra):
    b = env.backend("app", handler=errors_handler)
    secret = tmp_path / "hook.secret"
    secret.write_text("s3cret-key\n")
    clock = tmp_path / "clock"
    clock.write_text("0")
    cfg = harness.simple_config([b], objectives={
        "availability": {"source": "listener:web", "kind": "availability", "target": "99.9%",
                         "window": "30d"}},
        alerts={"ops": {"webhook": hooks.url, "secret_file": str(secret), "group_wait": "1s"}},
        **extra)
    s = env.surety(cfg, env={"SURETY_TEST_TICK_MS": "200", "SURETY_TEST_CLOCK": str(clock)})
    return s, clock


def signature_ok(headers, body, secret=b"s3cret-key"):
    ts = headers["X-Surety-Timestamp"]
    want = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return headers["X-Surety-Signature"] == "sha256=" + want


def test_errors_fire_a_signed_webhook_alert_and_it_resolves_when_they_stop(env, tmp_path, hooks):
    s, clock = alerting_surety(env, tmp_path, hooks)
    traffic(s, ok=95, errors=5)  # 5% errors against a 0.1% budget: burn 50
    assert hooks.wait(1, 10), "no firing notification"
    headers, body = hooks.posts[0]
    assert signature_ok(headers, body), headers
    doc = json.loads(body)
    fired = {a["severity"]: a for a in doc["alerts"]}
    assert "page" in fired and fired["page"]["status"] == "firing", doc
    assert fired["page"]["objective"] == "availability"
    o = objective(s, "availability")
    assert o["total"] == 100 and o["good"] == 95
    assert {f["severity"] for f in o["firing"]} == {"page", "ticket"}
    assert o["burn_rates"]["5m"] == pytest.approx(50, rel=1e-6)
    st = subprocess.run([harness.surety_binary(), "status", "-c", str(s.config_path)],
                        capture_output=True, text=True, env=harness.sanitizer_env())
    assert "objective availability" in st.stdout and "FIRING page+ticket" in st.stdout, st.stdout

    # the errors stop; four days later every window is past them
    n = len(hooks.posts)
    clock.write_text(str(4 * 86400))
    wait_until(lambda: not objective(s, "availability")["firing"], 5, "alerts resolved")
    assert hooks.wait(n + 1, 10), "no resolved notification"
    resolved = [a for h, b in hooks.posts[n:] for a in json.loads(b)["alerts"]]
    assert all(a["status"] == "resolved" for a in resolved) and resolved, resolved
    assert all(signature_ok(h, b) for h, b in hooks.posts)
    kinds = [e["kind"] for e in api(s, "/api/v1/events")["events"]]
    assert kinds.count("alert_fired") == 2 and kinds.count("alert_resolved") == 2, kinds
    d = api(s, "/api/v1/alerts/deliveries")["deliveries"]
    assert d and all(x["result"] == "sent" for x in d), d


def test_maintenance_silences_the_alert(env, tmp_path, hooks):
    now = int(time.time())
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    window = {"start": time.strftime(fmt, time.gmtime(now - 3600)),
              "end": time.strftime(fmt, time.gmtime(now + 3600))}
    s, _ = alerting_surety(env, tmp_path, hooks, maintenance={"upgrade": window})
    # maintenance_counts is false: errors in the window do not count
    traffic(s, ok=95, errors=5)
    time.sleep(2.5)  # > 10 ticks and group_wait
    assert hooks.posts == [], "maintenance did not silence the alert"
    o = objective(s, "availability")
    assert o["maintenance"] == "upgrade"
    assert o["total"] == 0 and o["firing"] == []


def test_maintenance_that_counts_still_holds_notifications_back(env, tmp_path, hooks):
    now = int(time.time())
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    window = {"start": time.strftime(fmt, time.gmtime(now - 3600)),
              "end": time.strftime(fmt, time.gmtime(now + 3600))}
    s, clock = alerting_surety(env, tmp_path, hooks, maintenance={"upgrade": window})
    # the same, with the objective counting its maintenance
    cfg = dict(s.cfg)
    cfg["objectives"]["availability"]["maintenance_counts"] = True
    s.config_path.write_text(harness.render(cfg))
    s.admin_post("/api/v1/reload")
    wait_until(lambda: api(s, "/api/v1/reload")["generation"] >= 1, 5, "reload")
    traffic(s, ok=95, errors=5)
    wait_until(lambda: objective(s, "availability")["firing"], 5, "firing")
    time.sleep(1.5)
    assert hooks.posts == [], "maintenance did not hold the notification back"
    events = api(s, "/api/v1/events?kind=alert_fired")["events"]
    assert events and events[0]["detail"]["silenced"] is True
    # the window ends (two hours later): the alert, still burning, goes out
    clock.write_text(str(2 * 3600))
    traffic(s, ok=95, errors=5)
    assert hooks.wait(1, 10), "no notification after the maintenance window"


def test_objectives_and_samples_are_in_the_store_and_metrics(env, tmp_path, hooks):
    s, _ = alerting_surety(env, tmp_path, hooks)
    traffic(s, ok=10, errors=0)
    wait_until(lambda: objective(s, "availability")["total"] == 10, 5, "counts")
    db = s.workdir / "var" / "surety.db"
    def samples():
        return subprocess.run(["sqlite3", str(db), "select sum(requests), sum(errors) from "
                               "sli_raw where source='listener:web'"],
                              capture_output=True, text=True).stdout.strip() == "10|0"
    wait_until(samples, 5, "samples in the store")
    m = s.metrics()
    assert m.get("surety_objective_sli", objective="availability") == 1
    assert m.get("surety_objective_alert_firing", objective="availability", severity="page") == 0
    assert m.get("surety_store_commits_total") >= 1
    p = subprocess.run(["promtool", "check", "metrics"], input=s.admin_get("/metrics").body,
                       capture_output=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_objectives_keep_their_history_across_a_restart(env, tmp_path):
    b = env.backend("app", handler=errors_handler)
    db = tmp_path / "shared.db"
    cfg = harness.simple_config([b], store={"sqlite": str(db)}, objectives={
        "availability": {"source": "listener:web", "kind": "availability", "target": "99%",
                         "window": "1d"}})
    s = env.surety(cfg, env={"SURETY_TEST_TICK_MS": "200"})
    traffic(s, ok=48, errors=2)
    wait_until(lambda: objective(s, "availability")["total"] == 50, 5, "counts")
    s.stop()
    assert s.returncode == 0
    s2 = env.surety(cfg, env={"SURETY_TEST_TICK_MS": "200"})
    o = wait_until(lambda: objective(s2, "availability")["evaluated"] and
                   objective(s2, "availability"), 5, "the first evaluation")
    assert (o["good"], o["total"]) == (48, 50), o
    traffic(s2, ok=50, errors=0)
    wait_until(lambda: objective(s2, "availability")["total"] == 100, 5, "counts after restart")
    assert objective(s2, "availability")["good"] == 98


def test_a_monitor_latency_objective_off_the_buckets_keeps_its_history_across_a_restart(
        env, tmp_path):
    """A monitor latency threshold that is not a histogram bound (150ms) is
    stored as good/total samples of its own, so a restart restores it."""
    n = {"probes": 0}

    def alternating(req, conn):  # every other probe takes 400 ms
        n["probes"] += 1
        if n["probes"] % 2 == 0:
            time.sleep(0.4)
        conn.respond(200, b"ok\n")

    b = env.backend("target", handler=alternating)
    cfg = harness.simple_config([b], store={"sqlite": str(tmp_path / "shared.db")}, monitors={
        "home": {"http": "http://127.0.0.1:%d/health" % b.port, "interval": "1s",
                 "timeout": "900ms"}}, objectives={
        "fast": {"source": "monitor:home", "kind": "latency", "threshold": "150ms",
                 "target": "99%", "window": "1d"}})
    s = env.surety(cfg, env={"SURETY_TEST_TICK_MS": "200"})
    o = wait_until(lambda: objective(s, "fast")["total"] >= 4 and objective(s, "fast"), 10,
                   "four probes")
    s.stop()
    bad = o["total"] - o["good"]
    assert o["good"] >= 1 and bad >= 1, o
    s2 = env.surety(cfg, env={"SURETY_TEST_TICK_MS": "200"})
    o2 = wait_until(lambda: objective(s2, "fast")["evaluated"] and objective(s2, "fast"), 5,
                    "the first evaluation")
    assert o2["total"] >= o["total"] and o2["good"] >= o["good"], (o, o2)
    assert o2["total"] - o2["good"] >= bad, (o, o2)


def test_a_server_far_slower_than_its_pool_and_a_pool_without_servers_are_events(env):
    def slow(req, conn):
        time.sleep(0.15)
        conn.respond(200, b"slow\n")

    fast1, fast2 = env.backend("f1"), env.backend("f2")
    laggard = env.backend("slow", handler=slow)
    s = env.surety(harness.simple_config([fast1, fast2, laggard], pool={
        "health": {"type": "tcp", "interval": "1s", "timeout": "500ms", "rise": 1, "fall": 1}}),
        env={"SURETY_TEST_TICK_MS": "200"})
    c = harness.RawClient(s.port(), timeout=10)
    for _ in range(30):
        assert c.request("GET", "/", host="svc").status == 200
    c.close()
    ev = wait_until(lambda: api(s, "/api/v1/events?kind=slow_server")["events"], 5, "slow_server")
    assert ev[0]["subject"] == "server:site/%s" % laggard.address
    assert ev[0]["detail"]["latency_ms"] > 100 and ev[0]["detail"]["pool_median_ms"] < 50
    s.wait_stderr("pool site server %s is slow" % laggard.address)

    for b in (fast1, fast2, laggard):
        b.stop()
    ev = wait_until(lambda: api(s, "/api/v1/events?kind=pool_unavailable")["events"], 6,
                    "pool_unavailable")
    assert ev[0]["subject"] == "pool:site"


def test_reloads_keep_each_objective_history_and_take_new_ones(env, tmp_path, hooks):
    s, _ = alerting_surety(env, tmp_path, hooks)
    traffic(s, ok=20, errors=0)
    wait_until(lambda: objective(s, "availability")["total"] == 20, 5, "counts")
    cfg = json.loads(json.dumps(s.cfg))
    cfg["objectives"]["route"] = {"source": "route:web/0", "kind": "availability",
                                  "target": "99%", "window": "1d"}
    cfg["alerts"]["ops"]["repeat"] = "1h"  # the notifier is rebuilt
    for gen in (1, 2):
        s.config_path.write_text(harness.render(cfg))
        s.admin_post("/api/v1/reload")
        wait_until(lambda: api(s, "/api/v1/reload")["generation"] >= gen, 5, "reload")
        cfg["objectives"].pop("route", None)
    time.sleep(2.5)  # ticks after the old generations are gone
    o = objective(s, "availability")
    assert o["total"] == 20, o  # the series went on across both reloads
    assert [x["name"] for x in api(s, "/api/v1/objectives")["objectives"]] == ["availability"]


class Smtp(Recorder):
    """A minimal SMTP receiver (enough for libcurl): records each message."""

    def __init__(self):
        import socketserver
        super().__init__()
        self.messages = self.items
        outer = self

        class H(socketserver.StreamRequestHandler):
            def handle(self):
                w = self.wfile
                w.write(b"220 test ESMTP\r\n")
                env = {"rcpt": []}
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("latin-1").strip()
                    up = cmd.upper()
                    if up.startswith(("EHLO", "HELO")):
                        w.write(b"250-test\r\n250 8BITMIME\r\n")
                    elif up.startswith("MAIL FROM:"):
                        env["from"] = cmd[10:].strip()
                        w.write(b"250 ok\r\n")
                    elif up.startswith("RCPT TO:"):
                        env["rcpt"].append(cmd[8:].strip())
                        w.write(b"250 ok\r\n")
                    elif up == "DATA":
                        w.write(b"354 go on\r\n")
                        data = []
                        while True:
                            l = self.rfile.readline()
                            if not l or l in (b".\r\n", b".\n"):
                                break
                            data.append(l)
                        outer.record(dict(env, data=b"".join(data).decode()))
                        w.write(b"250 queued\r\n")
                    elif up == "QUIT":
                        w.write(b"221 bye\r\n")
                        return
                    else:
                        w.write(b"250 ok\r\n")

        class S(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_an_alert_is_mailed_through_smtp(env, tmp_path):
    smtp = Smtp()
    try:
        b = env.backend("app", handler=errors_handler)
        cfg = harness.simple_config([b], objectives={
            "availability": {"source": "listener:web", "kind": "availability", "target": "99.9%",
                             "window": "30d"}},
            alerts={"mail": {"email": {"to": ["ops@example.com"], "from": "surety@example.com",
                                       "smtp": "smtp://127.0.0.1:%d" % smtp.port},
                             "group_wait": "1s"}})
        s = env.surety(cfg, env={"SURETY_TEST_TICK_MS": "200"})
        traffic(s, ok=95, errors=5)
        assert smtp.wait(1, 10), "no mail"
        m = smtp.messages[0]
        assert m["rcpt"] == ["<ops@example.com>"] and m["from"] == "<surety@example.com>", m
        assert "Subject: [FIRING]" in m["data"] and "availability" in m["data"], m["data"]
        # the delivery is logged once the SMTP session has ended (QUIT),
        # after the test server has the message: wait for it
        d = wait_until(lambda: api(s, "/api/v1/alerts/deliveries")["deliveries"], 5,
                       "the delivery log")
        assert d[0]["result"] == "sent", d
    finally:
        smtp.close()


def test_a_rotated_webhook_secret_is_used_after_a_reload(env, tmp_path, hooks):
    s, _ = alerting_surety(env, tmp_path, hooks)
    traffic(s, ok=95, errors=5)
    assert hooks.wait(1, 10)
    assert signature_ok(*hooks.posts[0])
    (tmp_path / "hook.secret").write_text("rotated-key\n")  # same file, new content
    n = len(hooks.posts)
    s.admin_post("/api/v1/reload")
    wait_until(lambda: api(s, "/api/v1/reload")["generation"] >= 1, 5, "reload")
    # a new notifier: the alert still firing is sent again, with the new key
    assert hooks.wait(n + 1, 10), "nothing sent after the secret changed"
    h, b = hooks.posts[n]
    assert signature_ok(h, b, secret=b"rotated-key") and not signature_ok(h, b)


def test_a_second_surety_on_the_same_store_file_is_refused(env, tmp_path):
    """One process per store file: a second one says who has it and does not
    start; once the first is gone (even by kill -9) the file is free."""
    db = tmp_path / "shared.db"
    b = env.backend("app")
    first = env.surety(harness.simple_config([b], store={"sqlite": str(db)}))
    second = env.surety(harness.simple_config([b], store={"sqlite": str(db)}), start=False)
    r = subprocess.run([second.binary, "run", "-c", str(second.config_path)],
                       capture_output=True, text=True, timeout=30, env=harness.sanitizer_env(),
                       cwd=str(second.workdir))
    assert r.returncode != 0
    assert "store %s: in use by another surety (pid %d)" % (db, first.pid) in r.stderr, r.stderr
    first.expect_exit = True
    first.stop(signal.SIGKILL)
    second.start()  # the kernel dropped the lock with the process
    assert second.proc.poll() is None
