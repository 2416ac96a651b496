"""TLS termination on listeners (issue 5; docs/security.md).

Certificates are made at test time with `openssl req` (a private CA and
leaves it signs); clients are `openssl s_client`, curl and Python's ssl
module."""

import json
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

import harness


from pki import Pki, run


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


def tls_surety(env, pki, backends, tls=None, listener=None, **top):
    cert, key = pki.leaf("site", ["www.example.com", "example.com"])
    t = {"cert": cert, "key": key}
    t.update(tls or {})
    cfg = harness.simple_config(backends, listener=harness.deep_merge({"tls": t}, listener or {}),
                                **top)
    return env.surety(cfg)


def s_client(port, *args, servername="www.example.com", input="Q\n"):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief"]
    if servername:
        cmd += ["-servername", servername]
    return run(*cmd, *args, input=input)


def peer_subject(port, servername):
    p = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
            servername, "-showcerts", input="Q\n")
    pem = p.stdout[p.stdout.index("-----BEGIN CERTIFICATE-----"):]
    pem = pem[:pem.index("-----END CERTIFICATE-----") + 25]
    return run("openssl", "x509", "-noout", "-subject", "-serial", input=pem).stdout


def https_context(pki):
    ctx = ssl.create_default_context(cafile=str(pki.d / "ca.crt"))
    return ctx


def https_get(port, ctx, path="/", host="www.example.com", sock=None):
    """One GET over TLS; returns (status, headers text, the socket kept open)."""
    if sock is None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock = ctx.wrap_socket(raw, server_hostname=host)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before a response head"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = int([l.split(":", 1)[1] for l in lines if l.lower().startswith("content-length")][0])
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), head.decode(), sock


def test_https_is_proxied_and_the_server_learns_it_was_https(env, pki):
    b = env.backend()
    s = tls_surety(env, pki, [b])
    status, head, sock = https_get(s.port(), https_context(pki))
    assert status == 200
    # keep-alive over TLS: a second request on the same connection
    status, _, sock = https_get(s.port(), https_context(pki), "/2", sock=sock)
    assert status == 200
    # idle past the moment its TLS buffers are given back (1 s): it goes on
    time.sleep(1.5)
    status, _, sock = https_get(s.port(), https_context(pki), "/3", sock=sock)
    assert status == 200
    sock.close()
    req = b.completed()[0]
    assert req.header("X-Forwarded-Proto") == "https"
    p = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
            str(pki.d / "ca.crt"), "--resolve", "www.example.com:%d:127.0.0.1" % s.port(),
            "https://www.example.com:%d/curl" % s.port())
    assert p.stdout == "200", p.stderr
    m = s.metrics()
    assert m.get("surety_tls_handshakes_total", listener="web") >= 2
    left = [v for n, l, v in m.samples if n == "surety_tls_certificate_expiry_seconds"
            and l.get("name") == "www.example.com" and l.get("listener") == "web"]
    assert len(left) == 1 and 59 * 86400 < left[0] <= 60 * 86400, m.find(
        "surety_tls_certificate_expiry_seconds")
    r = s.admin_get("/metrics")
    p = run("promtool", "check", "metrics", input=r.body.decode())
    assert p.returncode == 0, p.stdout + p.stderr


def test_only_tls12_and_tls13_are_accepted(env, pki):
    b = env.backend()
    s = tls_surety(env, pki, [b])
    for v in ("-tls1", "-tls1_1"):
        p = s_client(s.port(), v)
        assert "Protocol version" not in p.stdout and p.returncode != 0, (v, p.stdout, p.stderr)
    for v, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        p = s_client(s.port(), v)
        assert p.returncode == 0 and ("Protocol version: " + name) in p.stderr, (v, p.stderr)
    assert s.metrics().get("surety_tls_handshake_failures_total", listener="web",
                           reason="version") >= 2


def test_no_suite_without_forward_secrecy_is_offered(env, pki):
    b = env.backend()
    s = tls_surety(env, pki, [b])
    for suite in ("AES128-GCM-SHA256", "AES256-SHA256", "kRSA", "DHE-RSA-AES128-GCM-SHA256"):
        p = s_client(s.port(), "-tls1_2", "-cipher", suite)
        assert p.returncode != 0, (suite, p.stderr)
    p = s_client(s.port(), "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert p.returncode == 0, p.stderr


def test_sni_picks_the_certificate_and_unknown_names_get_the_default(env, pki):
    b = env.backend()
    api_crt, api_key = pki.leaf("api", ["api.example.net"])
    wild_crt, wild_key = pki.leaf("wild", ["*.example.org"])
    s = tls_surety(env, pki, [b], tls={"certificates": [{"cert": api_crt, "key": api_key},
                                                         {"cert": wild_crt, "key": wild_key}]})
    assert "CN = api.example.net" in peer_subject(s.port(), "api.example.net")
    assert "CN = *.example.org" in peer_subject(s.port(), "shop.example.org")
    # a wildcard covers one label only, and an unknown name gets the default
    assert "CN = www.example.com" in peer_subject(s.port(), "a.b.example.org")
    assert "CN = www.example.com" in peer_subject(s.port(), "unknown.test")


def test_sessions_resume_with_tickets(env, pki, tmp_path):
    b = env.backend()
    s = tls_surety(env, pki, [b])
    sess = tmp_path / "sess.pem"
    # a whole request each time, so that the client reads what follows the
    # handshake (TLS 1.3 tickets come after it) before it leaves
    req = "GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
    for v in ("-tls1_2", "-tls1_3"):
        p = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port(), v, "-servername",
                "www.example.com", "-ign_eof", "-sess_out", str(sess), input=req)
        assert p.returncode == 0, p.stderr
        p = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port(), v, "-servername",
                "www.example.com", "-ign_eof", "-sess_in", str(sess), input=req)
        assert "Reused, TLSv1." in p.stdout, (v, p.stdout)
    assert s.metrics().get("surety_tls_resumptions_total", listener="web") >= 2


def test_a_swapped_certificate_is_served_after_a_reload_while_old_connections_go_on(env, pki):
    b = env.backend()
    s = tls_surety(env, pki, [b])
    before = peer_subject(s.port(), "www.example.com")
    ctx = https_context(pki)
    result = {}

    def slow():  # in flight across the reload, on the old certificate
        status, _, sock = https_get(s.port(), ctx, "/delay/1500")
        result["status"] = status
        sock.close()
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    cfg = json.loads(s.config_path.read_text())
    crt, key = pki.leaf("renewed", ["www.example.com"])
    cfg["listeners"]["web"]["tls"].update({"cert": crt, "key": key})
    s.config_path.write_text(harness.render(cfg))
    s.send_signal(signal.SIGHUP)
    s.wait_stderr("reload:", timeout=10)
    time.sleep(0.3)
    after = peer_subject(s.port(), "www.example.com")
    assert after != before and "serial" in after
    t.join()
    assert result.get("status") == 200


def test_a_stalled_handshake_is_timed_out_and_garbage_closes_only_its_connection(env, pki):
    b = env.backend()
    s = tls_surety(env, pki, [b], listener={"timeouts": {"header": "1s"}})
    stalled = socket.create_connection(("127.0.0.1", s.port()), timeout=5)
    stalled.sendall(b"\x16\x03\x01\x00\xc8\x01\x00")  # the start of a ClientHello, then nothing
    garbage = socket.create_connection(("127.0.0.1", s.port()), timeout=5)
    garbage.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)))
    try:
        assert garbage.recv(100) == b""  # closed, no answer in clear text
    except ConnectionResetError:
        pass
    t0 = time.monotonic()
    try:
        got = stalled.recv(100)
    except ConnectionResetError:
        got = b""
    assert got == b"" and time.monotonic() - t0 < 4
    # the listener and other connections are unaffected
    status, _, sock = https_get(s.port(), https_context(pki))
    assert status == 200
    sock.close()
    m = s.metrics()
    assert m.get("surety_tls_handshake_failures_total", listener="web", reason="not-tls") >= 1


def test_check_names_the_files_of_a_bad_certificate(env, pki, tmp_path):
    cert, _ = pki.leaf("one", ["one.example.com"])
    _, other_key = pki.leaf("two", ["two.example.com"])
    cfg = harness.simple_config(["127.0.0.1:9"], listener={
        "listen": "127.0.0.1:1", "tls": {"cert": cert, "key": other_key}})
    path = tmp_path / "bad.yaml"
    path.write_text(harness.render(cfg))
    p = run(harness.surety_binary(), "check", "-c", str(path), timeout=30)
    assert p.returncode == 1
    assert cert in p.stderr and other_key in p.stderr and "match" in p.stderr, p.stderr
    # a certificate that expires within 30 days is accepted with a warning
    soon, soon_key = pki.leaf("soon", ["soon.example.com"], days=10)
    cfg["listeners"]["web"]["tls"] = {"cert": soon, "key": soon_key}
    path.write_text(harness.render(cfg))
    p = run(harness.surety_binary(), "check", "-c", str(path), timeout=30)
    assert p.returncode == 0, p.stderr
    assert "expires" in p.stderr, p.stderr
    # TLS 1.0 needs an explicit override
    cfg["listeners"]["web"]["tls"]["min_version"] = "1.0"
    path.write_text(harness.render(cfg))
    p = run(harness.surety_binary(), "check", "-c", str(path), timeout=30)
    assert p.returncode == 1 and "allow_legacy" in p.stderr, p.stderr


def test_plain_listener_redirects_to_https_and_hsts_is_added(env, pki):
    b = env.backend()
    cert, key = pki.leaf("site", ["www.example.com"])
    tls_port = harness.free_port()
    cfg = harness.simple_config([b], listener={
        "listen": "127.0.0.1:%d" % tls_port,
        "tls": {"cert": cert, "key": key, "hsts": "365d"}})
    cfg["listeners"]["http"] = {"redirect_https": tls_port}
    s = env.surety(cfg)
    p = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
            "-H", "Host: www.example.com:80", "http://127.0.0.1:%d/a/b?c=d" % s.port("http"))
    assert p.stdout == "308 https://www.example.com:%d/a/b?c=d" % tls_port, p.stdout
    assert b.completed() == []
    # following it lands on the TLS listener, whose answers carry HSTS
    p = run("curl", "-s", "-D", "-", "-o", "/dev/null", "-L", "--cacert",
            str(pki.d / "ca.crt"), "--resolve", "www.example.com:%d:127.0.0.1" % tls_port,
            "--resolve", "www.example.com:%d:127.0.0.1" % s.port("http"),
            "http://www.example.com:%d/x" % s.port("http"))
    assert "HTTP/1.1 200" in p.stdout, p.stdout + p.stderr
    assert "Strict-Transport-Security: max-age=31536000" in p.stdout, p.stdout


def test_large_bodies_cross_tls_whole_in_both_directions(env, pki, tmp_path):
    """Responses span many TLS records (16 KiB each): every byte arrives,
    also for a slow reader; an upload of several records reaches the server."""
    b = env.backend()
    s = tls_surety(env, pki, [b])
    url = "https://www.example.com:%d" % s.port()
    common = ["--cacert", str(pki.d / "ca.crt"), "--resolve",
              "www.example.com:%d:127.0.0.1" % s.port()]
    for n in (65536, 5 << 20):
        p = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", *common,
                url + "/bytes/%d" % n, timeout=60)
        assert p.stdout == "200 %d" % n, (n, p.stdout, p.stderr)
    p = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
            "--limit-rate", "2M", *common, url + "/bytes/%d" % (3 << 20), timeout=60)
    assert p.stdout == "200 %d" % (3 << 20), p.stdout
    up = tmp_path / "up.bin"
    up.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    p = run("curl", "-s", "-w", " %{http_code}", *common, "--data-binary", "@" + str(up),
            url + "/upload", timeout=60)
    assert p.stdout.endswith(" 200") and '"bytes": 1048576' in p.stdout, p.stdout


def ocsp_response(pki, crt, out, status="V"):
    """A DER OCSP response for the leaf of crt, signed by pki's CA (openssl
    ocsp as a one-shot responder over an index file)."""
    serial = run("openssl", "x509", "-in", crt, "-noout", "-serial").stdout.split("=")[1].strip()
    end = run("openssl", "x509", "-in", crt, "-noout", "-enddate").stdout.split("=")[1].strip()
    exp = time.strftime("%y%m%d%H%M%SZ", time.strptime(end, "%b %d %H:%M:%S %Y %Z"))
    index = pki.d / ("index-%s.txt" % serial)
    revoked = "261101000000Z" if status == "R" else ""
    index.write_text("%s\t%s\t%s\t%s\tunknown\t/CN=x\n" % (status, exp, revoked, serial))
    p = run("openssl", "ocsp", "-index", str(index), "-rsigner", pki.ca_crt, "-rkey",
            str(pki.d / "ca.key"), "-CA", pki.ca_crt, "-issuer", pki.ca_crt, "-cert", crt,
            "-respout", str(out), "-ndays", "2")
    assert p.returncode == 0 and out.exists(), p.stderr
    return str(out)


def test_ocsp_response_is_stapled_for_clients_that_ask(env, pki, tmp_path):
    b = env.backend()
    cert, key = pki.leaf("stapled", ["www.example.com"])
    resp = ocsp_response(pki, cert, tmp_path / "stapled.ocsp")
    s = tls_surety(env, pki, [b], tls={"cert": cert, "key": key, "ocsp": resp})
    def status(*args):
        return run("openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port(),
                   "-servername", "www.example.com", *args, input="Q\n").stdout
    out = status("-status")
    assert "OCSP Response Status: successful" in out, out[-2000:]
    assert "Cert Status: good" in out
    # a client that does not ask gets none
    assert "OCSP Response Status" not in status()


def test_check_refuses_an_ocsp_response_for_another_or_a_revoked_certificate(pki, tmp_path):
    cert, key = pki.leaf("site", ["www.example.com"])
    other, _ = pki.leaf("other", ["other.example.com"])
    for resp, why in ((ocsp_response(pki, other, tmp_path / "other.ocsp"), "is not about"),
                      (ocsp_response(pki, cert, tmp_path / "revoked.ocsp", status="R"),
                       "is revoked")):
        cfg = harness.simple_config(["127.0.0.1:9"], listener={
            "listen": "127.0.0.1:%d" % harness.free_port(),
            "tls": {"cert": cert, "key": key, "ocsp": resp}})
        path = tmp_path / "surety.yaml"
        path.write_text(harness.render(cfg))
        p = run(harness.surety_binary(), "check", "-c", str(path))
        assert p.returncode != 0 and why in p.stderr and resp in p.stderr, p.stderr
