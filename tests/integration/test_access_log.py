"""Access log: one JSON line per request (rejected ones too), with the
client address minimised (truncate /24, hash), the query string dropped
unless log.query is true, and never a Cookie or Authorization value."""

import re

import harness
from httpio import RawClient, simple_get

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SECRETS = ["SECRETCOOKIE", "SECRETTOKEN", "sessionid", "Bearer", "dXNlcjpwYXNz"]
FIELDS = {"ts", "listener", "route", "pool", "server", "client", "method", "path", "status",
          "bytes_in", "bytes_out", "duration_s", "request_id"}


def start(env, log):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b], log=log))
    return s, b


def secret_request(s, target="/x?token=abc&user=bob"):
    return simple_get(s.port(), target, headers=[
        ("Cookie", "sessionid=SECRETCOOKIE; theme=dark"),
        ("Authorization", "Bearer SECRETTOKEN"),
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
    ])


def test_access_log_line_has_the_documented_fields(env, tmp_path):
    s, b = start(env, {"access": str(tmp_path / "access.log"), "client_ip": "truncate"})
    with RawClient(s.port()) as c:
        r = c.request("POST", "/echo?q=1", body=b"0123456789")
    assert r.status == 200
    lines, text = s.access_log(expect=1)
    assert len(lines) == 1, text
    e = lines[0]
    assert FIELDS <= set(e), "missing fields: %s" % (FIELDS - set(e))
    assert TS_RE.match(e["ts"]), e["ts"]
    assert e["listener"] == "web"
    assert e["route"] == "0"  # the only route, unnamed: its index
    assert e["pool"] == "site"
    assert e["server"] == b.address
    assert e["client"] == "127.0.0.0"
    assert e["method"] == "POST"
    assert e["path"] == "/echo"
    assert e["status"] == 200
    assert isinstance(e["bytes_in"], int) and e["bytes_in"] >= 10
    assert isinstance(e["bytes_out"], int) and e["bytes_out"] >= 10
    assert isinstance(e["duration_s"], (int, float)) and 0 <= e["duration_s"] < 5
    assert e["request_id"] == r.headers.get("X-Request-Id")


def test_access_log_drops_query_and_never_contains_cookie_or_authorization(env, tmp_path):
    s, b = start(env, {"access": str(tmp_path / "access.log"), "client_ip": "truncate",
                       "query": False})
    secret_request(s)
    # a rejected request carrying secrets, too
    with RawClient(s.port()) as c:
        c.send(b"GET /y?token=abc HTTP/1.1\r\nHost: a\r\nCookie: SECRETCOOKIE\r\n"
               b"Authorization: Bearer SECRETTOKEN\r\nX-A : b\r\n\r\n")
        c.read_response()
    lines, text = s.access_log(expect=2)
    assert len(lines) == 2, text
    assert lines[0]["path"] == "/x"
    assert "token=abc" not in text and "user=bob" not in text
    for secret in SECRETS:
        assert secret not in text, "%s appears in the access log" % secret
    assert all(l["client"] == "127.0.0.0" for l in lines), text
    for secret in ("SECRETCOOKIE", "SECRETTOKEN"):
        assert secret not in s.stderr_text(), "%s appears in the diagnostic log" % secret


def test_access_log_keeps_query_when_configured(env, tmp_path):
    s, b = start(env, {"access": str(tmp_path / "access.log"), "query": True})
    simple_get(s.port(), "/x?a=1")
    lines, text = s.access_log(expect=1)
    assert lines[0]["path"] == "/x?a=1"


def test_access_log_hashes_client_ip_when_configured(env, tmp_path):
    s, b = start(env, {"access": str(tmp_path / "access.log"), "client_ip": "hash"})
    simple_get(s.port(), "/a")
    simple_get(s.port(), "/b")
    lines, text = s.access_log(expect=2)
    c1, c2 = lines[0]["client"], lines[1]["client"]
    assert re.fullmatch(r"[0-9a-f]{8,128}", c1), c1
    assert c1 == c2, "hash of one address must be stable"
    assert not c1.startswith("127.")


def test_access_log_full_client_ip_when_configured(env, tmp_path):
    s, b = start(env, {"access": str(tmp_path / "access.log"), "client_ip": "full"})
    simple_get(s.port(), "/a")
    lines, _ = s.access_log(expect=1)
    assert lines[0]["client"] == "127.0.0.1"


def test_rejected_requests_are_logged_with_reason_and_status(env, tmp_path):
    s, b = start(env, {"access": str(tmp_path / "access.log")})
    with RawClient(s.port()) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n")
        assert c.read_response().status == 400
    lines, text = s.access_log(expect=1)
    assert len(lines) == 1, text
    assert lines[0]["reject"] == "obs_fold"
    assert lines[0]["status"] == 400


def test_access_log_to_stdout(env):
    s, b = start(env, {"access": "-"})
    simple_get(s.port(), "/to-stdout")
    lines, text = s.access_log(expect=1)
    assert [l["path"] for l in lines] == ["/to-stdout"], text


def test_access_log_off_writes_nothing(env, tmp_path):
    s, b = start(env, {"access": "off"})
    simple_get(s.port(), "/quiet")
    assert s.stdout_text() == ""
    assert not any(p.name.endswith(".log") and p.name not in ("stdout.log", "stderr.log")
                   for p in s.workdir.iterdir())


def test_access_log_one_line_per_request_on_keepalive(env, tmp_path):
    s, b = start(env, {"access": str(tmp_path / "access.log")})
    with RawClient(s.port()) as c:
        for i in range(5):
            c.request("GET", "/k%d" % i)
    lines, text = s.access_log(expect=5)
    assert [l["path"] for l in lines] == ["/k%d" % i for i in range(5)]
    assert len({l["request_id"] for l in lines}) == 5
    m = s.metrics()
    assert m.get("surety_access_log_dropped_total") == 0


def test_access_log_truncates_an_ipv6_client_to_its_48(env, tmp_path):
    b = env.backend("b1")
    port = harness.free_port()
    s = env.surety(harness.simple_config([b], listener={"listen": "[::1]:%d" % port},
                                         log={"access": str(tmp_path / "access.log"),
                                              "client_ip": "truncate"}))
    r = simple_get(port, "/v6", addr="::1")
    assert r.status == 200
    lines, text = s.access_log(expect=1)
    assert lines[0]["client"] == "::", text
    (req,) = b.completed()
    assert req.headers.tokens("X-Forwarded-For") == ["::1"]
    assert '"[::1]"' in req.header("Forwarded", ""), req.header("Forwarded")
