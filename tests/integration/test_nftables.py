"""ban.nftables: bans pushed into an nftables set so the kernel drops the
banned address's packets before Surety sees them.

Everything happens inside a network namespace this test creates (`ip netns
add`), with its own loopback and its own empty ruleset: the machine's own
firewall is never touched. Surety, curl and nft all run in it through
`ip netns exec`."""

import json
import os
import subprocess
import time
import uuid

import pytest

import harness

NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="ip netns needs root (CI runs as root)")


def ns_run(ns, *cmd, timeout=30, check=False):
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                          timeout=timeout, check=check)


@pytest.fixture
def netns():
    name = "surety-test-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        ns_run(name, "ip", "link", "set", "lo", "up", check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], timeout=10)


def curl(ns, url, source=None, max_time=1.0, method="GET", data=None):
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(max_time)]
    if source:
        cmd += ["--interface", source]
    if method != "GET":
        cmd += ["-X", method]
    if data is not None:
        cmd += ["--data-binary", data]
    p = ns_run(ns, *cmd, url, timeout=max_time + 10)
    return p.returncode, p.stdout


@NEEDS_ROOT
def test_bans_reach_the_kernel_inside_a_namespace(netns, tmp_path):
    backend_port, port, admin = 18901, 18902, 18903
    # the backend: a tiny HTTP server inside the namespace
    srv = subprocess.Popen(["ip", "netns", "exec", netns, "/usr/bin/python3", "-m", "http.server",
                            "--bind", "127.0.0.1", str(backend_port)], cwd=str(tmp_path),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = {
        "workers": 1,
        "data_dir": str(tmp_path / "var"),
        "admin": {"listen": "127.0.0.1:%d" % admin},
        "log": {"access": "off", "security": str(tmp_path / "security.log")},
        "listeners": {"web": {"listen": "127.0.0.1:%d" % port, "shield": "p",
                              "routes": [{"pool": "site"}]}},
        "pools": {"site": {"servers": ["127.0.0.1:%d" % backend_port]}},
        "shield": {"p": {"methods": ["GET"],
                         "ban": {"after": 2, "within": "10s", "for": "1m", "nftables": True}}},
    }
    path = tmp_path / "surety.yaml"
    path.write_text(harness.render(cfg))
    err = open(tmp_path / "stderr.log", "wb")
    s = subprocess.Popen(["ip", "netns", "exec", netns, harness.surety_binary(), "run", "-c",
                          str(path)], stdout=subprocess.DEVNULL, stderr=err,
                         env=harness.sanitizer_env(), cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 20
        while curl(netns, "http://127.0.0.1:%d/healthz" % admin)[1] != "200":
            assert s.poll() is None, (tmp_path / "stderr.log").read_text()
            assert time.monotonic() < deadline, "surety not ready in the namespace"
            time.sleep(0.1)
        assert curl(netns, "http://127.0.0.1:%d/" % port, source="127.0.0.5")[1] == "200"
        # two strikes (405) from 127.0.0.5 ban it
        for _ in range(2):
            assert curl(netns, "http://127.0.0.1:%d/" % port, source="127.0.0.5",
                        method="DELETE")[1] == "405"
        deadline = time.monotonic() + 5
        while "127.0.0.5" not in ns_run(netns, "nft", "list", "set", "inet", "surety",
                                        "ban4").stdout:
            assert time.monotonic() < deadline, "ban never reached the nftables set"
            time.sleep(0.05)
        # the kernel drops it now: no answer at all (curl times out, exit 28),
        # where a refusal by surety would close the connection at once
        rc, code = curl(netns, "http://127.0.0.1:%d/" % port, source="127.0.0.5", max_time=1)
        assert rc == 28, (rc, code)
        assert curl(netns, "http://127.0.0.1:%d/" % port, source="127.0.0.6")[1] == "200"
        # lifting the ban removes the element
        rc, code = curl(netns, "http://127.0.0.1:%d/api/v1/bans/lift" % admin, method="POST",
                        data=json.dumps({"address": "127.0.0.5"}))
        assert code == "200"
        assert "127.0.0.5" not in ns_run(netns, "nft", "list", "set", "inet", "surety",
                                         "ban4").stdout
        assert curl(netns, "http://127.0.0.1:%d/" % port, source="127.0.0.5")[1] == "200"
    finally:
        s.terminate()
        rc = s.wait(timeout=20)
        srv.terminate()
        srv.wait(timeout=10)
        err.close()
    text = (tmp_path / "stderr.log").read_text()
    assert rc == 0, text
    assert not [l for l in text.splitlines() if any(m in l for m in harness.SANITIZER_MARKERS)], text
    # the machine's own ruleset never saw a surety table
    assert "surety" not in subprocess.run(["nft", "list", "tables"], capture_output=True,
                                          text=True).stdout
