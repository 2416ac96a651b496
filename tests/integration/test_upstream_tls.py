"""TLS to the pool's servers (issue 5, item 4): `pools.<name>.tls`.

The backends are the harness's HTTP backend speaking TLS through Python's
ssl module, with certificates made at test time by a private CA (pki.py).
Verification is on by default and must fail closed: a server whose
certificate comes from another CA, or carries another name, gets no
request, and health checks see the same."""

import http.client
import ssl

import pytest

import harness
from pki import Pki, run


def server_ctx(pki, name, sans, client_ca=None):
    """A server-side context for a backend: the leaf pki signs for sans;
    with client_ca, a client certificate from that CA is required."""
    cert, key = pki.leaf(name, sans)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


def get(s, path="/"):
    c = http.client.HTTPConnection("127.0.0.1", s.port(), timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


def test_pool_tls_verifies_the_server_and_proxies(env, pki):
    b = env.backend("a", tls=server_ctx(pki, "api", ["api.internal"]))
    s = env.surety(harness.simple_config([b], pool={
        "tls": {"ca": pki.ca_crt, "sni": "api.internal"}}))
    for _ in range(3):
        status, body = get(s, "/hello")
        assert status == 200, body
    assert b.tls_handshakes >= 1
    assert [r.path for r in b.completed()] == ["/hello"] * 3
    m = s.metrics()
    assert m.get("surety_server_tls_handshakes_total", pool="site", server=b.address) >= 1
    assert m.get("surety_server_tls_failures_total", pool="site", server=b.address) == 0


def test_pool_tls_fails_closed_on_a_certificate_from_another_ca(env, pki, tmp_path):
    other = Pki(tmp_path, prefix="other", cn="Someone Else's CA")
    b = env.backend("a", tls=server_ctx(other, "api", ["api.internal"]))
    s = env.surety(harness.simple_config([b], pool={
        "tls": {"ca": pki.ca_crt, "sni": "api.internal"}}))
    status, _ = get(s)
    assert status == 502
    assert b.completed() == [], "a server that failed verification got the request"
    s.wait_stderr("certificate verify failed")
    m = s.metrics()
    assert m.get("surety_server_tls_failures_total", pool="site", server=b.address) >= 1


def test_pool_tls_fails_closed_on_a_certificate_for_another_name(env, pki):
    b = env.backend("a", tls=server_ctx(pki, "api", ["other.internal"]))
    s = env.surety(harness.simple_config([b], pool={
        "tls": {"ca": pki.ca_crt, "sni": "api.internal"}}))
    status, _ = get(s)
    assert status == 502
    assert b.completed() == []
    line = s.wait_stderr("certificate verify failed")
    assert "hostname mismatch" in line[0], line


def test_pool_tls_without_verify_encrypts_and_warns(env, pki, tmp_path):
    other = Pki(tmp_path, prefix="other", cn="Someone Else's CA")
    b = env.backend("a", tls=server_ctx(other, "api", ["whatever"]))
    s = env.surety(harness.simple_config([b], pool={"tls": {"verify": False}}))
    assert get(s)[0] == 200
    assert b.tls_handshakes == 1
    s.wait_stderr("tls.verify is false")


def test_pool_tls_presents_a_client_certificate(env, pki):
    cert, key = pki.leaf("surety-client", ["surety.client"])
    b = env.backend("a", tls=server_ctx(pki, "api", ["api.internal"], client_ca=pki.ca_crt))
    s = env.surety(harness.simple_config([b], pool={
        "tls": {"ca": pki.ca_crt, "sni": "api.internal", "cert": cert, "key": key}}))
    assert get(s)[0] == 200
    assert b.tls_peer_subjects and b.tls_peer_subjects[0]["commonName"] == "surety.client"


def test_pool_tls_without_the_client_certificate_the_server_wants_fails(env, pki):
    b = env.backend("a", tls=server_ctx(pki, "api", ["api.internal"], client_ca=pki.ca_crt))
    s = env.surety(harness.simple_config([b], pool={
        "tls": {"ca": pki.ca_crt, "sni": "api.internal"}}))
    assert get(s)[0] == 502
    assert b.completed() == []
    # TLS 1.3 refuses after the handshake. The warning says why when the
    # refusal is read (the server's alert); when the request's write hits
    # the closed socket first, it says "Broken pipe": both are a failure
    line = s.wait_stderr("failed before answering")[0]
    assert "certificate required" in line or "Broken pipe" in line or "reset" in line, line


def test_pool_tls_resumes_sessions_on_new_connections(env, pki):
    b = env.backend("a", tls=server_ctx(pki, "api", ["api.internal"]))
    s = env.surety(harness.simple_config([b], pool={
        "keepalive": 0, "tls": {"ca": pki.ca_crt, "sni": "api.internal"}}, workers=1))
    for _ in range(5):
        assert get(s)[0] == 200
    assert b.tls_handshakes == 5
    assert b.tls_resumed >= 3, "new connections did not resume the server's session"
    m = s.metrics()
    assert m.get("surety_server_tls_resumptions_total", pool="site", server=b.address) >= 3


def test_health_checks_go_through_the_pool_tls(env, pki, tmp_path):
    good = env.backend("good", tls=server_ctx(pki, "api", ["api.internal"]))
    other = Pki(tmp_path, prefix="other", cn="Someone Else's CA")
    bad = env.backend("bad", tls=server_ctx(other, "api2", ["api.internal"]))
    s = env.surety(harness.simple_config([good, bad], pool={
        "tls": {"ca": pki.ca_crt, "sni": "api.internal"},
        "health": {"type": "http", "path": "/", "interval": "300ms", "timeout": "250ms",
                   "rise": 1, "fall": 1}}))
    s.wait_stderr("health: pool site server %s is DOWN" % bad.address, timeout=5)
    m = s.metrics()
    assert m.get("surety_server_up", pool="site", server=good.address) == 1
    assert m.get("surety_server_up", pool="site", server=bad.address) == 0
    assert m.get("surety_health_tls_failures_total", pool="site", server=bad.address) >= 1
    assert m.get("surety_health_tls_failures_total", pool="site", server=good.address) == 0
    srv = [x for x in s.pools()["site"]["servers"] if x["address"] == bad.address][0]
    assert "certificate verify failed" in srv["last_check"]["error"], srv
    assert all(get(s)[0] == 200 for _ in range(6))
    assert bad.completed() == []


def test_check_refuses_verify_without_a_name_and_a_missing_ca_file(tmp_path):
    cfg = harness.simple_config(["127.0.0.1:9"], pool={"tls": {}})
    cfg["listeners"]["web"]["listen"] = "127.0.0.1:%d" % harness.free_port()
    path = tmp_path / "surety.yaml"
    path.write_text(harness.render(cfg))
    p = run(harness.surety_binary(), "check", "-c", str(path))
    assert p.returncode != 0
    assert "tls.sni is required with tls.verify: true" in p.stderr
    assert str(path) + ":" in p.stderr

    cfg = harness.simple_config(["127.0.0.1:9"], pool={
        "tls": {"sni": "x", "ca": str(tmp_path / "missing.crt")}})
    cfg["listeners"]["web"]["listen"] = "127.0.0.1:%d" % harness.free_port()
    path.write_text(harness.render(cfg))
    p = run(harness.surety_binary(), "check", "-c", str(path))
    assert p.returncode != 0
    assert "missing.crt" in p.stderr
