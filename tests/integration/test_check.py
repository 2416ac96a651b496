"""`surety check -c FILE`: exit 0 on a good file; on a bad one, exit 1 with
every stderr line shaped FILE:LINE:COL: message, pointing at the culprit."""

import re
import subprocess
import textwrap

import pytest

import harness

GOOD = """\
workers: 1
max_connections: 10000
buffer_size: 16k
drain_timeout: 30s
admin: { listen: 127.0.0.1:9090 }
log: { access: var/access.log, client_ip: truncate, query: false }
listeners:
  web:
    listen: 127.0.0.1:8080
    timeouts: { header: 10s, idle: 60s, client: 60s }
    limits: { uri: 8k, headers: 100, header_bytes: 32k }
    routes:
      - { name: api, host: api.example.com, path: /v1/, pool: api }
      - { host: "*.example.org", pool: site }
      - { pool: site }
pools:
  site:
    balance: round-robin
    servers: [ 127.0.0.1:9001, { address: 127.0.0.1:9002, weight: 3 } ]
    timeouts: { connect: 3s, response: 30s, keepalive: 60s }
    keepalive: 32
  api:
    servers: [ 127.0.0.1:9003 ]
"""


def run_check(tmp_path, text, name="surety.yaml"):
    path = tmp_path / name
    path.write_text(text)
    p = subprocess.run([harness.surety_binary(), "check", "-c", str(path)], capture_output=True,
                       timeout=30, env=harness.sanitizer_env())
    return p, str(path)


def diag_lines(p, path):
    err = p.stderr.decode(errors="replace")
    lines = [l for l in err.splitlines() if l.strip()]
    return lines, err


def assert_sanitizer_clean(p):
    err = p.stderr.decode(errors="replace")
    for m in harness.SANITIZER_MARKERS:
        assert m not in err, err


def test_check_accepts_a_good_file(tmp_path):
    p, path = run_check(tmp_path, GOOD)
    assert p.returncode == 0, p.stderr.decode()
    assert_sanitizer_clean(p)


def test_check_accepts_json(tmp_path):
    cfg = {"listeners": {"web": {"listen": "127.0.0.1:8080", "routes": [{"pool": "site"}]}},
           "pools": {"site": {"servers": ["127.0.0.1:9001"]}}}
    p, path = run_check(tmp_path, harness.render(cfg), "surety.json")
    assert p.returncode == 0, p.stderr.decode()


def broken(old, new):
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def line_of(text, needle, occurrence=1):
    n = 0
    for i, l in enumerate(text.splitlines(), 1):
        if needle in l:
            n += 1
            if n == occurrence:
                return i
    raise AssertionError(needle)


# (id, text, needle whose line the first diagnostic must point at, occurrence, message regex)
BROKEN = [
    ("unknown_top_level_key", broken("workers: 1\n", "workers: 1\nwrokers: 2\n"),
     "wrokers", 1, r"(?i)unknown|wrokers"),
    ("unknown_nested_key", broken("    keepalive: 32\n", "    keepalive: 32\n    kepalive: 3\n"),
     "kepalive", 1, r"(?i)unknown|kepalive"),
    ("bad_duration", broken("drain_timeout: 30s", "drain_timeout: 30 parsecs"),
     "drain_timeout", 1, r"(?i)duration"),
    ("bad_duration_unit", broken("idle: 60s", "idle: 60x"), "idle: 60x", 1, r"(?i)duration"),
    ("bad_size", broken("buffer_size: 16k", "buffer_size: lots"), "buffer_size", 1, r"(?i)size"),
    ("bad_address", broken("listen: 127.0.0.1:8080", "listen: 127.0.0.1:99999"),
     "99999", 1, r"(?i)address|port"),
    ("route_to_missing_pool", broken("path: /v1/, pool: api", "path: /v1/, pool: apii"),
     "apii", 1, r"(?i)apii|pool"),
    ("duplicate_listener_name", broken("pools:\n", "  web:\n    listen: 127.0.0.1:8081\n"
                                       "    routes: [ { pool: site } ]\npools:\n"),
     "  web:", 2, r"(?i)duplicate|web"),
    ("wrong_type", broken("workers: 1", "workers: [1]"), "workers", 1, r"(?i)workers|expected|type"),
    ("bad_balance", broken("balance: round-robin", "balance: random-ish"), "random-ish", 1,
     r"(?i)balance|random-ish"),
    ("bad_client_ip_mode", broken("client_ip: truncate", "client_ip: scramble"), "scramble", 1,
     r"(?i)client_ip|scramble"),
    ("zero_weight", broken("weight: 3", "weight: 0"), "weight: 0", 1, r"(?i)weight"),
    ("empty_servers", broken("servers: [ 127.0.0.1:9003 ]", "servers: [ ]"), "servers: [ ]", 1,
     r"(?i)server"),
    ("yaml_syntax_error", broken("  web:\n", "  web:\n   - [\n"), "   - [", 1, r"."),
]


@pytest.mark.parametrize("text,needle,occurrence,msg", [c[1:] for c in BROKEN],
                         ids=[c[0] for c in BROKEN])
def test_check_rejects_a_broken_file_with_file_line_col(tmp_path, text, needle, occurrence, msg):
    p, path = run_check(tmp_path, text)
    assert p.returncode == 1, "exit %d, stderr: %s" % (p.returncode, p.stderr.decode())
    assert_sanitizer_clean(p)
    lines, err = diag_lines(p, path)
    assert lines, "no diagnostic printed"
    pat = re.compile(r"^%s:(\d+):(\d+): (.+)$" % re.escape(path))
    for l in lines:
        assert pat.match(l), "not FILE:LINE:COL: message: %r" % l
    line, col, message = pat.match(lines[0]).groups()
    if needle != "   - [":  # a syntax error may be reported where the parser gave up
        want = line_of(text, needle, occurrence)
        assert int(line) == want, "diagnostic at line %s, expected %d: %s" % (line, want, err)
    assert int(col) >= 1
    assert re.search(msg, message), "message %r does not match %r" % (message, msg)


def test_check_reports_every_error_not_just_the_first(tmp_path):
    text = GOOD.replace("drain_timeout: 30s", "drain_timeout: 30 parsecs").replace(
        "path: /v1/, pool: api", "path: /v1/, pool: apii")
    p, path = run_check(tmp_path, text)
    assert p.returncode == 1
    lines, err = diag_lines(p, path)
    reported = sorted(int(l.split(":")[1]) for l in lines if l.startswith(path + ":"))
    assert line_of(text, "drain_timeout") in reported and line_of(text, "apii") in reported, err


def test_check_on_a_missing_file_fails(tmp_path):
    p = subprocess.run([harness.surety_binary(), "check", "-c", str(tmp_path / "nope.yaml")],
                       capture_output=True, timeout=30)
    assert p.returncode != 0
    assert p.stderr.strip()


def test_run_refuses_to_start_with_a_broken_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(GOOD.replace("drain_timeout: 30s", "drain_timeout: soon")))
    p = subprocess.run([harness.surety_binary(), "run", "-c", str(path)], capture_output=True,
                       timeout=30, env=harness.sanitizer_env())
    assert p.returncode != 0
    assert re.search(r"%s:\d+:\d+: " % re.escape(str(path)), p.stderr.decode()), p.stderr
