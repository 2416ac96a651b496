"""Admin listener: /healthz, and /metrics in Prometheus text format that
passes `promtool check metrics` and carries the documented families."""

import subprocess
import time

import harness
from httpio import RawClient, simple_get

FAMILIES = {
    "surety_listener_requests_total": "counter",
    "surety_route_requests_total": "counter",
    "surety_server_requests_total": "counter",
    "surety_listener_request_duration_seconds": "histogram",
    "surety_listener_received_bytes_total": "counter",
    "surety_listener_sent_bytes_total": "counter",
    "surety_listener_connections_total": "counter",
    "surety_listener_connections_open": "gauge",
    "surety_listener_connections_idle": "gauge",
    "surety_server_connections_total": "counter",
    "surety_server_connections_idle": "gauge",
    "surety_server_connect_errors_total": "counter",
    "surety_http_rejects_total": "counter",
    "surety_http_timeouts_total": "counter",
    "surety_access_log_dropped_total": "counter",
    "surety_build_info": "gauge",
    "surety_workers": "gauge",
}


def _family_of_type_line(name, types):
    """Prometheus TYPE lines name counters with or without _total (OpenMetrics
    style drops it); accept both."""
    if name in types:
        return types[name]
    if name.endswith("_total") and name[:-6] in types:
        return types[name[:-6]]
    return None


def busy_surety(env):
    """A surety that has seen each kind of event the metrics count: requests,
    a reject, an idle timeout and a connect error."""
    b = env.backend("b1")
    dead = harness.refused_address()
    cfg = {
        "listeners": {"web": {"timeouts": {"idle": "300ms"},
                              "routes": [{"name": "broken", "path": "/broken/", "pool": "dead"},
                                         {"pool": "site"}]}},
        "pools": {"site": {"servers": [b.address]}, "dead": {"servers": [dead]}},
    }
    s = env.surety(cfg)
    for i in range(5):
        assert simple_get(s.port(), "/%d" % i).status == 200
    assert simple_get(s.port(), "/broken/x").status == 502
    with RawClient(s.port()) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n")
        assert c.read_response().status == 400
    with RawClient(s.port()) as c:
        assert c.request("GET", "/idle").status == 200
        closed, _, _ = c.wait_closed(3)
        assert closed
    return s, b, dead


def test_healthz_answers_200(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b]))
    r = s.admin_get("/healthz")
    assert r.status == 200


def test_unknown_admin_path_gets_404(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b]))
    assert s.admin_get("/no-such-thing").status == 404


def test_metrics_pass_promtool_check_metrics(env):
    s, b, dead = busy_surety(env)
    r = s.admin_get("/metrics")
    assert r.status == 200
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain"), ctype
    p = subprocess.run(["promtool", "check", "metrics"], input=r.body, capture_output=True,
                       timeout=30)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()


def test_metrics_contain_every_documented_family_with_its_type(env):
    s, b, dead = busy_surety(env)
    m = s.metrics()
    missing = [f for f in FAMILIES if _family_of_type_line(f, m.types) is None]
    assert not missing, "families without a TYPE line: %s" % missing
    wrong = {f: _family_of_type_line(f, m.types) for f, t in FAMILIES.items()
             if _family_of_type_line(f, m.types) != t}
    assert not wrong, "wrong types: %s" % wrong
    for f in FAMILIES:
        if FAMILIES[f] == "histogram":
            assert m.has(f + "_bucket") and m.has(f + "_count") and m.has(f + "_sum"), f
        else:
            assert m.has(f), "no sample for %s" % f


def test_metrics_values_follow_the_traffic(env):
    s, b, dead = busy_surety(env)
    m = s.metrics()
    assert m.get("surety_listener_requests_total", listener="web", code="2xx") == 6
    assert m.get("surety_listener_requests_total", listener="web", code="4xx") == 1
    assert m.get("surety_listener_requests_total", listener="web", code="5xx") == 1
    assert m.get("surety_route_requests_total", listener="web", route="broken", pool="dead",
                 code="5xx") == 1
    assert m.get("surety_server_requests_total", pool="site", server=b.address, code="2xx") == 6
    assert m.get("surety_server_connect_errors_total", pool="dead", server=dead) >= 1
    assert m.get("surety_http_rejects_total", listener="web", reason="space_before_colon") == 1
    assert m.get("surety_http_timeouts_total", listener="web", kind="idle") >= 1
    assert m.get("surety_listener_connections_total", listener="web") == 8
    assert m.get("surety_listener_received_bytes_total", listener="web") > 0
    assert m.get("surety_listener_sent_bytes_total", listener="web") > 0
    assert m.get("surety_workers") == 1
    assert m.find("surety_build_info") and m.find("surety_build_info")[0][0].get("version")
    assert m.get("surety_build_info") == 1
    # histogram: cumulative buckets, +Inf == count == number of requests answered
    buckets = sorted(((float(l["le"]), v) for l, v in
                      m.find("surety_listener_request_duration_seconds_bucket", listener="web")))
    assert buckets and buckets[-1][0] == float("inf")
    values = [v for _, v in buckets]
    assert values == sorted(values), "buckets not cumulative: %s" % buckets
    count = m.get("surety_listener_request_duration_seconds_count", listener="web")
    assert buckets[-1][1] == count
    assert count == 8


def test_connection_gauges_track_open_and_idle_connections(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b]))
    clients = [RawClient(s.port()) for _ in range(3)]
    try:
        for c in clients:
            assert c.request("GET", "/").status == 200
        time.sleep(0.1)
        m = s.metrics()
        assert m.get("surety_listener_connections_open", listener="web") == 3
        assert m.get("surety_listener_connections_idle", listener="web") == 3
        assert m.get("surety_server_connections_idle", pool="site", server=b.address) >= 1
    finally:
        for c in clients:
            c.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        m = s.metrics()
        if m.get("surety_listener_connections_open", listener="web") == 0:
            break
        time.sleep(0.05)
    assert m.get("surety_listener_connections_open", listener="web") == 0
    assert m.get("surety_listener_connections_idle", listener="web") == 0


def test_byte_counters_count_request_and_response_bytes(env):
    b = env.backend("b1")
    s = env.surety(harness.simple_config([b]))
    with RawClient(s.port()) as c:
        r = c.request("POST", "/echo", body=b"z" * 100000)
        assert r.status == 200
    m = s.metrics()
    assert m.get("surety_listener_received_bytes_total", listener="web") >= 100000
    assert m.get("surety_listener_sent_bytes_total", listener="web") >= 100000
