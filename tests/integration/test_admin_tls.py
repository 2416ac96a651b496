"""HTTPS and client certificates on the admin listener (issue 5, item 5):
`admin.tls` with `cert`/`key`, and `client_ca` for mutual TLS. The admin API
can drain servers and ban addresses: beyond loopback it belongs behind
client certificates. `surety status` speaks TLS to it and shows the client
certificate from SURETY_ADMIN_CERT / SURETY_ADMIN_KEY."""

import os
import subprocess
import time

import pytest

import harness
from pki import Pki, run


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


def admin_surety(env, pki, client_ca=None):
    cert, key = pki.leaf("admin", ["surety-admin.internal"])
    b = env.backend()
    tls = {"cert": cert, "key": key}
    if client_ca:
        tls["client_ca"] = client_ca
    cfg = harness.simple_config([b], admin={"listen": "127.0.0.1:%d" % harness.free_port(),
                                            "tls": tls})
    s = env.surety(cfg, start=False)
    s.start(wait=False)
    s.wait_stderr("admin on https://", timeout=10)
    return s


def curl_admin(s, pki, path="/healthz", *extra):
    return run("curl", "-sS", "--max-time", "5", "--cacert", pki.ca_crt,
               "--resolve", "surety-admin.internal:%d:127.0.0.1" % s.admin_port,
               *extra, "https://surety-admin.internal:%d%s" % (s.admin_port, path))


def status(s, **env):
    e = dict(harness.sanitizer_env())
    e.update(env)
    return subprocess.run([harness.surety_binary(), "status", "-c", str(s.config_path)],
                          capture_output=True, text=True, timeout=20, env=e)


def wait_https(s, pki, *extra):
    deadline = time.monotonic() + 10
    while True:
        p = curl_admin(s, pki, "/healthz", *extra)
        if p.returncode == 0 or time.monotonic() > deadline:
            return p
        time.sleep(0.1)


def test_admin_listener_speaks_https_and_status_follows(env, pki):
    s = admin_surety(env, pki)
    p = wait_https(s, pki)
    assert p.returncode == 0 and p.stdout == "ok\n", p.stderr
    # plain HTTP on the admin port gets no answer
    plain = run("curl", "-sS", "--max-time", "5", "http://127.0.0.1:%d/healthz" % s.admin_port)
    assert plain.returncode != 0 or "ok" not in plain.stdout
    st = status(s)
    assert st.returncode == 0, st.stderr
    assert "site" in st.stdout


def test_admin_client_certificates_are_required_with_client_ca(env, pki, tmp_path):
    operators = Pki(tmp_path, prefix="ops", cn="Operators CA")
    ocert, okey = operators.leaf("operator", ["alice"])
    s = admin_surety(env, pki, client_ca=operators.ca_crt)
    p = wait_https(s, pki, "--cert", ocert, "--key", okey)
    assert p.returncode == 0 and p.stdout == "ok\n", p.stderr

    # no certificate, or one from another authority: no way past the handshake
    assert curl_admin(s, pki).returncode != 0
    stranger_cert, stranger_key = pki.leaf("stranger", ["mallory"])
    p = curl_admin(s, pki, "/api/v1/pools", "--cert", stranger_cert, "--key", stranger_key)
    assert p.returncode != 0 and '"pools"' not in p.stdout

    st = status(s)
    assert st.returncode != 0
    assert "SURETY_ADMIN_CERT" in st.stderr
    st = status(s, SURETY_ADMIN_CERT=ocert, SURETY_ADMIN_KEY=okey)
    assert st.returncode == 0, st.stderr
    assert "site" in st.stdout


def test_check_names_a_missing_admin_certificate(tmp_path):
    cfg = harness.simple_config(["127.0.0.1:9"], admin={
        "listen": "127.0.0.1:%d" % harness.free_port(),
        "tls": {"cert": str(tmp_path / "nope.crt"), "key": str(tmp_path / "nope.key")}})
    cfg["listeners"]["web"]["listen"] = "127.0.0.1:%d" % harness.free_port()
    path = tmp_path / "surety.yaml"
    path.write_text(harness.render(cfg))
    p = run(harness.surety_binary(), "check", "-c", str(path))
    assert p.returncode != 0
    assert "admin: tls:" in p.stderr and "nope.crt" in p.stderr
