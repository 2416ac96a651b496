"""The shield (docs/security.md): access lists at accept, connection and
request limits, slowloris defences, the WAF with the OWASP CRS, automatic
bans and security events.

Clients bind to different 127.0.0.x source addresses so that the shield sees
different clients on one machine."""

import json
import os
import socket
import subprocess
import threading
import time

import pytest

import harness
from httpio import RawClient, simple_get

A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def shielded(env, backends, policy, listener=None, **top):
    cfg = harness.simple_config(backends, listener=harness.deep_merge({"shield": "p"},
                                                                       listener or {}),
                                **top)
    cfg["shield"] = {"p": policy}
    cfg.setdefault("log", {})["security"] = "security.log"
    return env.surety(cfg)


def refused_at_accept(s, source, timeout=3.0):
    """True when a connection from source is closed by surety without any
    answer to a request sent on it."""
    try:
        with RawClient(s.port(), timeout=timeout, source=source) as c:
            try:
                c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                return True
            closed, got, _ = c.wait_closed(timeout)
            return closed and got == b""
    except OSError:
        return True


def events(s, **params):
    q = "&".join("%s=%s" % kv for kv in params.items())
    r = s.admin_get("/api/v1/security/events" + ("?" + q if q else ""))
    assert r.status == 200, r.body
    return json.loads(r.body)["events"]


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def shield_count(s, reason, policy="p"):
    return s.metrics(settle=False).get("surety_shield_events_total", policy=policy,
                                       reason=reason) or 0


# --- connection layer ----------------------------------------------------------

def test_denied_cidr_is_refused_at_accept_and_others_are_served(env):
    b = env.backend()
    s = shielded(env, [b], {"deny": ["127.0.0.2/32", "2001:db8::/32"]})
    assert refused_at_accept(s, A)
    r = simple_get(s.port(), "/", source=B)
    assert r.status == 200
    assert len(b.completed()) == 1
    assert shield_count(s, "deny-list") >= 1
    ev = wait_for(lambda: [e for e in events(s) if e["reason"] == "deny-list"], what="event")
    assert ev[0]["client"] == A and ev[0]["layer"] == "connection" and ev[0]["action"] == "refuse"
    # the security log has the same record, one JSON object per line
    log = wait_for(lambda: (s.workdir / "security.log").exists() and
                   (s.workdir / "security.log").read_text(), what="security log")
    rec = [json.loads(l) for l in log.splitlines() if l.strip()]
    assert any(e["reason"] == "deny-list" and e["client"] == A for e in rec)


def test_allow_list_refuses_everyone_else(env):
    b = env.backend()
    s = shielded(env, [b], {"allow": ["127.0.0.1", "127.0.0.3/32"]})
    assert simple_get(s.port(), "/", source=B).status == 200
    assert simple_get(s.port(), "/").status == 200
    assert refused_at_accept(s, C)
    assert shield_count(s, "not-allowed") >= 1


def test_connections_per_ip_limit(env):
    b = env.backend()
    s = shielded(env, [b], {"connections": {"per_ip": 3}})
    held = [RawClient(s.port(), source=A) for _ in range(3)]
    try:
        for c in held:  # the three are really open and served
            assert c.request("GET", "/").status == 200
        assert refused_at_accept(s, A)
        assert simple_get(s.port(), "/", source=B).status == 200
    finally:
        for c in held:
            c.close()
    # closed ones are released: A may connect again
    wait_for(lambda: not refused_at_accept(s, A, timeout=1.0), what="A admitted again")
    assert shield_count(s, "conn-per-ip") >= 1


def test_new_connection_rate_per_ip(env):
    b = env.backend()
    s = shielded(env, [b], {"connections": {"rate": "5/m"}})
    ok = sum(1 for _ in range(8) if not refused_at_accept(s, A, timeout=1.0))
    assert ok == 5, ok  # the burst is the rate's count, then nothing for a minute
    assert simple_get(s.port(), "/", source=B).status == 200
    assert shield_count(s, "conn-rate") == 3


def in_flight(port, source, ms=1500):
    """Starts a slow request (the backend answers after ms) from source in a
    thread; returns a function that waits for it and gives its status."""
    result = {}

    def go():
        result["status"] = simple_get(port, "/delay/%d" % ms, source=source, timeout=10).status
    t = threading.Thread(target=go)
    t.start()
    time.sleep(0.2)  # it has reached the server

    def wait():
        t.join()
        return result.get("status")
    return wait


def test_a_reload_with_a_new_deny_entry_applies_without_dropping_connections(env):
    """A request in flight across the reload completes; the new entry
    refuses new connections. (Idle keep-alive connections of the old
    generation are closed after a second's grace: docs/operations.md.)"""
    b = env.backend()
    s = shielded(env, [b], {"deny": ["203.0.113.0/24"]})
    assert simple_get(s.port(), "/", source=A).status == 200
    done = in_flight(s.port(), B)
    cfg = json.loads(s.config_path.read_text())
    cfg["shield"]["p"]["deny"].append(A)
    s.config_path.write_text(harness.render(cfg))
    s.send_signal(__import__("signal").SIGHUP)
    s.wait_stderr("reload:", timeout=10)
    wait_for(lambda: refused_at_accept(s, A, timeout=1.0), what="A refused after reload")
    assert done() == 200
    assert simple_get(s.port(), "/", source=B).status == 200


def test_deny_file_reloads_when_it_changes(env, tmp_path):
    b = env.backend()
    lst = tmp_path / "deny.txt"
    lst.write_text("# nothing yet\n")
    s = shielded(env, [b], {"deny": ["@" + str(lst)]})
    assert simple_get(s.port(), "/", source=C).status == 200
    done = in_flight(s.port(), B)
    lst.write_text("# bad actors\n%s\n" % C)
    s.wait_stderr("shield list file changed", timeout=10)
    wait_for(lambda: refused_at_accept(s, C, timeout=1.0), what="C refused")
    assert done() == 200  # in flight across the reload the change caused
    # a broken file is refused, and the running lists stay
    lst.write_text("not-an-address\n")
    s.wait_stderr("refused", timeout=10)
    assert refused_at_accept(s, C)


def test_check_reports_a_bad_list_file_with_its_line(env, tmp_path):
    lst = tmp_path / "deny.txt"
    lst.write_text("10.0.0.0/8\n10.1.2.3/16\n")
    cfg = harness.simple_config(["127.0.0.1:9"], listener={"shield": "p",
                                                             "listen": "127.0.0.1:1"})
    cfg["shield"] = {"p": {"deny": ["@" + str(lst)]}}
    path = tmp_path / "s.yaml"
    path.write_text(harness.render(cfg))
    p = subprocess.run([harness.surety_binary(), "check", "-c", str(path)], capture_output=True,
                       text=True, timeout=30, env=harness.sanitizer_env())
    assert p.returncode == 1
    assert "%s:2: host bits set past the prefix length" % lst in p.stderr, p.stderr
    assert "10.1.0.0/16" in p.stderr


# --- request layer -------------------------------------------------------------

def test_rate_limit_answers_429_to_the_flooder_and_not_to_others(env):
    """A floods (as fast as it can) while B, at the same time, makes requests
    at a polite pace: A gets 429s with Retry-After, B keeps >= 99% success."""
    b = env.backend()
    s = shielded(env, [b], {"rate": {"limit": "10/s", "burst": 10}})
    statuses, retry_after = [], set()
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            r = simple_get(s.port(), "/", source=A)
            statuses.append(r.status)
            if r.status == 429:
                retry_after.add(r.headers.get("Retry-After"))
    t = threading.Thread(target=flood)
    t.start()
    ok = 0
    try:
        for _ in range(100):
            ok += simple_get(s.port(), "/", source=B).status == 200
            time.sleep(0.12)  # about 8/s, under B's own 10/s
    finally:
        stop.set()
        t.join()
    assert ok >= 99, ok
    assert statuses.count(429) >= 0.5 * len(statuses) and statuses.count(200) >= 10, (
        len(statuses), statuses.count(429))
    assert retry_after and all(v and v.isdigit() and int(v) >= 1 for v in retry_after)
    ev = wait_for(lambda: [e for e in events(s, client=A) if e["reason"] == "rate-limit"],
                  what="rate-limit events")
    assert ev[0]["status"] == 429 and ev[0]["layer"] == "request"


def test_rate_table_memory_stays_at_its_bound_under_a_flood_of_keys(env, tmp_path):
    """100,000 distinct keys (an API-key header) through a table of 1,000
    buckets: the table evicts, its memory does not move."""
    s = shielded(env, ["127.0.0.1:9"],
                 {"rate": {"limit": "1/m", "key": "header:X-Key", "table": 1000}})
    # the pool points at surety's own admin /healthz: a fast C backend
    cfg = json.loads(s.config_path.read_text())
    cfg["pools"]["site"]["servers"] = ["127.0.0.1:%d" % s.admin_port]
    s.config_path.write_text(harness.render(cfg))
    s.send_signal(__import__("signal").SIGHUP)
    s.wait_stderr("reload:", timeout=10)
    assert simple_get(s.port(), "/healthz").status == 200
    before = s.metrics(settle=False)
    mem0 = before.get("surety_shield_table_memory_bytes", policy="p", table="rate")
    cap = before.get("surety_shield_table_capacity", policy="p", table="rate")
    assert mem0 and cap and cap < 2000
    script = tmp_path / "keys.lua"
    script.write_text('counter = 0\n'
                      'done = 0\n'
                      'request = function()\n'
                      '  counter = counter + 1\n'
                      '  return wrk.format("GET", "/healthz", {["X-Key"] = "k" .. counter})\n'
                      'end\n'
                      'response = function(status, headers, body)\n'
                      '  done = done + 1\n'
                      '  if done >= 100000 then wrk.thread:stop() end\n'
                      'end\n')
    # one thread, so one counter: 100,000 distinct keys, then stop
    p = subprocess.run(["wrk", "-t1", "-c2", "-d60s", "-s", str(script), "--timeout", "5s",
                        "http://127.0.0.1:%d/healthz" % s.port()],
                       capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stderr
    assert "100" in p.stdout
    m = s.metrics(settle=False)
    assert m.get("surety_shield_table_memory_bytes", policy="p", table="rate") == mem0
    assert m.get("surety_shield_table_entries", policy="p", table="rate") <= cap
    ev = m.get("surety_shield_table_evictions_total", policy="p", table="rate")
    print("rate table: memory %s entries %s evictions %s" % (
        mem0, m.get("surety_shield_table_entries", policy="p", table="rate"), ev))
    assert ev >= 100000 - cap - 100, ev
    # (RSS is no measure here: ASan's quarantine holds freed memory; the
    # release build's figure is in docs/performance.md)


def test_methods_body_size_and_body_rate(env):
    b = env.backend()
    s = shielded(env, [b], {"methods": ["GET", "POST"],
                            "limits": {"body": "1k", "body_rate": "1k"}})
    with RawClient(s.port()) as c:
        assert c.request("DELETE", "/x").status == 405
    with RawClient(s.port()) as c:
        assert c.request("POST", "/x", body=b"a" * 2000).status == 413
    with RawClient(s.port()) as c:
        assert c.request("POST", "/x", body=b"a" * 500).status == 200
    with RawClient(s.port()) as c:  # chunked past the limit is cut too
        r = c.request("POST", "/x", body=b"a" * 3000, chunked=True)
        assert r.status == 413
    # a body trickling at a few bytes a second: 408 after the grace
    with RawClient(s.port(), timeout=15) as c:
        c.send(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n")
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 12:
            try:
                c.send(b"a")
            except OSError:
                closed = True
                break
            time.sleep(0.5)
        r = c.read_response() if not closed else None
        if r is not None:
            assert r.status == 408
    assert shield_count(s, "method") == 1
    assert shield_count(s, "body-too-large") == 2
    assert shield_count(s, "slow-body") == 1


def test_slowloris_connections_do_not_stop_a_normal_client(env):
    """2,000 connections each sending a header byte every half second: a
    normal client is still served, and the slow ones are cut after
    timeouts.header with a security event each."""
    b = env.backend()
    s = shielded(env, [b], {}, listener={"timeouts": {"header": "3s"}})
    slow = []
    for i in range(2000):
        sk = socket.create_connection(("127.0.0.1", s.port()), timeout=5,
                                      source_address=("127.0.0.%d" % (10 + i % 200), 0))
        sk.setblocking(False)
        sk.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        slow.append(sk)
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            for sk in slow:
                try:
                    sk.send(b"X")
                except OSError:
                    pass
            stop.wait(0.5)
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        for _ in range(5):
            r = simple_get(s.port(), "/", timeout=5)
            assert r.status == 200
        time.sleep(4)  # past timeouts.header
        r = simple_get(s.port(), "/", timeout=5)
        assert r.status == 200
    finally:
        stop.set()
        t.join()
        for sk in slow:
            sk.close()
    assert shield_count(s, "slow-header") >= 1900


# --- content layer: the WAF ----------------------------------------------------

WAF = {"waf": {"paranoia": 1, "mode": "block"}}

ATTACKS = [
    ("sql injection", "GET", "/items?id=1%27%20OR%20%271%27=%271", {}, None),
    ("sql injection in a form", "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"},
     b"user=admin&pass=x%27%20union%20select%20password%20from%20users--"),
    ("xss", "GET", "/search?q=%3Cscript%3Ealert(1)%3C/script%3E", {}, None),
    ("xss in json", "POST", "/api/comments", {"Content-Type": "application/json"},
     b'{"comment": "<script>alert(document.cookie)</script>"}'),
    ("path traversal", "GET", "/static/..%2f..%2f..%2fetc%2fpasswd", {}, None),
    ("command injection", "GET", "/ping?host=127.0.0.1%3Bcat%20/etc/passwd", {}, None),
    ("scanner user agent", "GET", "/", {"User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"},
     None),
    ("nikto", "GET", "/", {"User-Agent": "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)"},
     None),
]

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
           "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
           "Accept-Language": "en-US,en;q=0.5", "Accept-Encoding": "gzip, deflate"}

BOUNDARY = "----surety1234"
UPLOAD = ("--%s\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHoliday photo\r\n"
          "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n"
          "Content-Type: text/plain\r\n\r\nDear diary, today we went to the beach.\r\n"
          "--%s--\r\n" % (BOUNDARY, BOUNDARY, BOUNDARY)).encode()

BENIGN = [
    ("page", "GET", "/products?page=2&sort=price&category=shoes", {}, None),
    ("login form", "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"},
     b"username=alice&password=correct+horse+battery+staple&remember=on"),
    ("json api", "POST", "/api/v1/orders", {"Content-Type": "application/json"},
     b'{"items": [{"sku": "A-1001", "qty": 2}], "note": "Leave at the front door, thanks!"}'),
    ("json update", "PUT", "/api/v1/users/42", {"Content-Type": "application/json"},
     b'{"name": "Bob O\'Brien", "email": "bob@example.com"}'),
    ("upload", "POST", "/upload", {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY},
     UPLOAD),
    ("cookies", "GET", "/account", {"Cookie": "session=abc123; theme=dark"}, None),
    ("search", "GET", "/search?q=how+to+cook+rice", {}, None),
]


def send(s, method, path, headers, body, source=None):
    h = dict(BROWSER)
    h.update(headers)
    with RawClient(s.port(), timeout=15, source=source) as c:
        return c.request(method, path, host="www.example.com", headers=list(h.items()), body=body)


def test_waf_blocks_classic_attacks_and_names_the_rules(env):
    b = env.backend()
    s = shielded(env, [b], WAF)
    for name, method, path, headers, body in ATTACKS:
        r = send(s, method, path, headers, body)
        assert r.status == 403, "%s: %d" % (name, r.status)
    assert len(b.completed()) == 0
    wait_for(lambda: len([e for e in events(s) if e["reason"] == "waf"]) == len(ATTACKS),
             what="one waf event per attack")
    evs = [e for e in events(s) if e["reason"] == "waf"]
    for e in evs:
        assert e["layer"] == "content" and e["action"] == "block" and e["status"] == 403
        assert 949110 in e["rules"], e
        assert any(r // 1000 in (913, 930, 932, 941, 942) for r in e["rules"]), e
    # the detail names the attack, not a protocol remark that matched first
    assert any("SQL Injection" in e.get("detail", "") for e in evs), evs


def test_waf_lets_ordinary_traffic_through_at_paranoia_1(env):
    b = env.backend()
    s = shielded(env, [b], WAF)
    for name, method, path, headers, body in BENIGN:
        r = send(s, method, path, headers, body)
        assert r.status == 200, "%s: false positive (%d)" % (name, r.status)
    # the body reached the server intact after inspection
    assert any(r.body == UPLOAD for r in b.completed())
    assert not [e for e in events(s) if e["layer"] == "content"]


def test_waf_detect_mode_passes_and_records(env):
    b = env.backend()
    s = shielded(env, [b], {"waf": {"mode": "detect"}})
    name, method, path, headers, body = ATTACKS[0]
    assert send(s, method, path, headers, body).status == 200
    ev = wait_for(lambda: [e for e in events(s) if e["reason"] == "waf-detect"], what="event")
    assert ev[0]["action"] == "detect" and 942100 in ev[0]["rules"] or ev[0]["rules"]


# --- bans ------------------------------------------------------------------------

def span(ban):
    """Seconds from a ban's since to its until (ISO 8601 in the API)."""
    from datetime import datetime
    t = lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))  # noqa: E731
    return (t(ban["until"]) - t(ban["since"])).total_seconds()


def test_repeat_offenders_are_banned_and_bans_expire_and_double(env):
    b = env.backend()
    s = shielded(env, [b], {"methods": ["GET"],
                            "ban": {"after": 3, "within": "10s", "for": "2s", "max": "1m"}})

    def offend():
        for _ in range(3):
            with RawClient(s.port(), source=A) as c:
                assert c.request("DELETE", "/").status == 405
    offend()
    wait_for(lambda: refused_at_accept(s, A, timeout=1.0), what="A banned")
    assert simple_get(s.port(), "/", source=B).status == 200
    bans = json.loads(s.admin_get("/api/v1/bans").body)["bans"]
    ban = [x for x in bans if x["address"] == A][0]
    assert ban["offences"] == 1
    first = span(ban)
    # it expires by itself
    wait_for(lambda: not refused_at_accept(s, A, timeout=0.5), timeout=6, what="ban expiry")
    offend()
    wait_for(lambda: refused_at_accept(s, A, timeout=1.0), what="A banned again")
    ban = [x for x in json.loads(s.admin_get("/api/v1/bans").body)["bans"]
           if x["address"] == A][0]
    assert ban["offences"] == 2
    assert span(ban) >= 2 * first - 0.05
    assert [e for e in events(s) if e["layer"] == "ban" and e["action"] == "ban"]
    assert s.metrics(settle=False).get("surety_bans_total") >= 2


def test_bans_from_the_api_survive_a_restart_and_can_be_lifted(env, tmp_path):
    b = env.backend()
    data = tmp_path / "data"
    s = shielded(env, [b], {}, data_dir=str(data))
    r = s.admin_post("/api/v1/bans", json.dumps({"address": C, "for": "1h",
                                                  "reason": "test"}).encode())
    assert r.status == 201, r.body
    wait_for(lambda: refused_at_accept(s, C, timeout=1.0), what="C banned")
    assert s.admin_post("/api/v1/bans", b'{"address": "bogus"}').status == 400
    s.stop()
    s2 = env.surety(json.loads(s.config_path.read_text()))
    assert refused_at_accept(s2, C)
    bans = json.loads(s2.admin_get("/api/v1/bans").body)["bans"]
    assert [x for x in bans if x["address"] == C and x["reason"] == "test"]
    r = s2.admin_post("/api/v1/bans/lift", json.dumps({"address": C}).encode())
    assert r.status == 200, r.body
    assert simple_get(s2.port(), "/", source=C).status == 200
    assert s2.admin_post("/api/v1/bans/lift", json.dumps({"address": C}).encode()).status == 404


def test_shield_metrics_pass_promtool(env):
    b = env.backend()
    s = shielded(env, [b], {"deny": ["127.0.0.2"], "rate": {"limit": "5/s"},
                            "connections": {"per_ip": 10}, "ban": {}})
    refused_at_accept(s, A)
    r = s.admin_get("/metrics")
    p = subprocess.run(["promtool", "check", "metrics"], input=r.body, capture_output=True,
                       timeout=30)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()
    m = s.metrics(settle=False)
    for fam in ("surety_shield_events_total", "surety_shield_table_capacity",
                "surety_bans_active", "surety_security_events_total"):
        assert fam in m.types, fam


def test_waf_queue_overflow_answers_503_and_counts_it(env):
    """One WAF thread and a queue of one: a burst of concurrent requests
    overflows it; the overflow gets 503 at once instead of waiting."""
    b = env.backend()
    s = shielded(env, [b], WAF, security={"waf_threads": 1, "waf_queue": 1})
    query = "&".join("field%d=some+ordinary+value+%d" % (i, i) for i in range(150))
    statuses = []
    lock = threading.Lock()

    def one():
        r = send(s, "GET", "/search?" + query, {}, None)
        with lock:
            statuses.append(r.status)
    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(200) >= 2, statuses
    assert shield_count(s, "waf-overload") == statuses.count(503)


def test_limit_state_survives_a_reload(env):
    b = env.backend()
    s = shielded(env, [b], {"rate": {"limit": "5/m"}})
    assert [simple_get(s.port(), "/", source=A).status for _ in range(5)] == [200] * 5
    assert simple_get(s.port(), "/", source=A).status == 429
    cfg = json.loads(s.config_path.read_text())
    cfg["shield"]["p"]["methods"] = ["GET", "POST"]  # a real change, same tables
    s.config_path.write_text(harness.render(cfg))
    s.send_signal(__import__("signal").SIGHUP)
    s.wait_stderr("reload:", timeout=10)
    time.sleep(0.5)
    # A's bucket is still empty: the new generation shares it
    assert simple_get(s.port(), "/", source=A).status == 429
    assert simple_get(s.port(), "/", source=B).status == 200
    assert shield_count(s, "rate-limit") == 2


def test_status_shows_the_shield(env):
    b = env.backend()
    s = shielded(env, [b], {"deny": [A], "ban": {}})
    assert refused_at_accept(s, A)
    wait_for(lambda: shield_count(s, "deny-list") >= 1, what="counted")
    p = subprocess.run([s.binary, "status", "-c", str(s.config_path)], capture_output=True,
                       text=True, timeout=30, env=harness.sanitizer_env())
    assert p.returncode == 0, p.stderr
    assert "shield p: 1 events (deny-list 1)" in p.stdout, p.stdout
    assert "bans: 0 active" in p.stdout, p.stdout


def test_ipv6_clients_are_listed_and_limited_too(env):
    b = env.backend()
    s = shielded(env, [b], {"deny": ["2001:db8::/32"], "connections": {"per_ip": 1}},
                 listener={"listen": "[::1]:%d" % harness.free_port()})
    with RawClient(s.port(), host="::1") as keep:
        assert keep.request("GET", "/").status == 200
        # ::1 holds its one connection: a second one is refused at accept
        with RawClient(s.port(), host="::1") as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            closed, got, _ = c.wait_closed(3)
            assert closed and got == b""
    assert shield_count(s, "conn-per-ip") == 1
    ev = wait_for(lambda: [e for e in events(s) if e["reason"] == "conn-per-ip"], what="event")
    assert ev[0]["client"] == "::1"


def test_waf_inspects_chunked_bodies_decoded(env):
    """A chunked body is decoded before inspection (the rules see the JSON,
    not the chunk framing): an attack in it is blocked, an ordinary chunked
    upload passes whole."""
    b = env.backend()
    s = shielded(env, [b], WAF)
    with RawClient(s.port(), timeout=15) as c:
        r = c.request("POST", "/api/comments", host="www.example.com",
                      headers=list(BROWSER.items()) + [("Content-Type", "application/json")],
                      body=b'{"comment": "<script>alert(document.cookie)</script>"}', chunked=True)
        assert r.status == 403
    name, method, path, headers, body = BENIGN[2]  # the JSON API order
    h = dict(BROWSER)
    h.update(headers)
    with RawClient(s.port(), timeout=15) as c:
        r = c.request(method, path, host="www.example.com", headers=list(h.items()), body=body,
                      chunked=True)
        assert r.status == 200
    assert any(req.body == body for req in b.completed())
