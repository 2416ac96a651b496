"""Routes (host exact / *.suffix, path prefix, first match wins, 404 when
nothing matches) and smooth weighted round-robin balancing."""

import harness
from httpio import RawClient, simple_get


def test_smooth_weighted_round_robin_sends_1_of_4_and_3_of_4(env):
    light = env.backend("light")
    heavy = env.backend("heavy")
    s = env.surety(harness.simple_config(
        [light.address, {"address": heavy.address, "weight": 3}], pool={"balance": "round-robin"}))
    seq = []
    with RawClient(s.port()) as c:
        for _ in range(16):
            r = c.request("GET", "/")
            assert r.status == 200
            seq.append(r.headers.get("X-Backend"))
    # smooth WRR (nginx): period heavy, light, heavy, heavy -> every 4 consecutive picks hold 1:3
    for i in range(len(seq) - 3):
        window = seq[i:i + 4]
        assert window.count("light") == 1 and window.count("heavy") == 3, seq
    # smooth: the light server is never picked twice in a row, the heavy at most 3 times
    assert "light,light" not in ",".join(seq), seq
    m = s.metrics()
    assert m.get("surety_server_requests_total", pool="site", server=light.address) == 4
    assert m.get("surety_server_requests_total", pool="site", server=heavy.address) == 12


def test_round_robin_with_equal_weights_alternates(env):
    a = env.backend("a")
    b = env.backend("b")
    s = env.surety(harness.simple_config([a, b]))
    seq = [simple_get(s.port(), "/").headers.get("X-Backend") for _ in range(6)]
    assert seq in (["a", "b"] * 3, ["b", "a"] * 3), seq


def _routing_env(env, with_default=True):
    api = env.backend("api")
    wild = env.backend("wild")
    static = env.backend("static")
    site = env.backend("site")
    routes = [
        {"name": "api", "host": "api.example.com", "path": "/v1/", "pool": "api"},
        {"name": "wild", "host": "*.example.org", "pool": "wild"},
        {"name": "static", "path": "/static/", "pool": "static"},
    ]
    if with_default:
        routes.append({"pool": "site"})
    cfg = {
        "listeners": {"web": {"routes": routes}},
        "pools": {
            "api": {"servers": [api.address]},
            "wild": {"servers": [wild.address]},
            "static": {"servers": [static.address]},
            "site": {"servers": [site.address]},
        },
    }
    return env.surety(cfg)


def _who(s, host, path):
    r = simple_get(s.port(), path, host=host)
    return r.status, r.headers.get("X-Backend")


def test_routes_match_exact_host_and_path_prefix(env):
    s = _routing_env(env)
    assert _who(s, "api.example.com", "/v1/users") == (200, "api")
    assert _who(s, "api.example.com", "/v1/") == (200, "api")
    assert _who(s, "api.example.com", "/v2/users") == (200, "site")
    assert _who(s, "api.example.com", "/v1") == (200, "site")
    assert _who(s, "www.example.com", "/v1/users") == (200, "site")
    assert _who(s, "xapi.example.com", "/v1/users") == (200, "site")


def test_routes_match_wildcard_host_suffix(env):
    s = _routing_env(env)
    assert _who(s, "a.example.org", "/") == (200, "wild")
    assert _who(s, "deep.a.example.org", "/x") == (200, "wild")
    assert _who(s, "example.org.evil.com", "/") == (200, "site")
    assert _who(s, "notexample.org", "/") == (200, "site")


def test_host_match_ignores_case_and_port(env):
    s = _routing_env(env)
    assert _who(s, "API.Example.COM", "/v1/x") == (200, "api")
    assert _who(s, "api.example.com:8080", "/v1/x") == (200, "api")
    assert _who(s, "B.Example.Org", "/") == (200, "wild")


def test_first_matching_route_wins(env):
    s = _routing_env(env)
    # matches both "wild" (host) and "static" (path): the earlier route wins
    assert _who(s, "cdn.example.org", "/static/a.css") == (200, "wild")
    assert _who(s, "www.example.com", "/static/a.css") == (200, "static")


def test_request_matching_no_route_gets_404_and_reaches_no_backend(env):
    s = _routing_env(env, with_default=False)
    assert _who(s, "www.example.com", "/")[0] == 404
    assert _who(s, "api.example.com", "/v1/x") == (200, "api")
    for b in env.backends:
        if b.name != "api":
            assert b.connections == 0


def test_route_metrics_are_labelled_with_route_and_pool(env):
    s = _routing_env(env)
    for _ in range(3):
        _who(s, "api.example.com", "/v1/x")
    _who(s, "z.example.org", "/")
    _who(s, "www.example.com", "/")
    m = s.metrics()
    assert m.get("surety_route_requests_total", listener="web", route="api", pool="api",
                 code="2xx") == 3
    assert m.get("surety_route_requests_total", listener="web", route="wild", pool="wild",
                 code="2xx") == 1
    # an unnamed route is named by its 0-based index: the default route is the 4th, "3"
    assert m.get("surety_route_requests_total", listener="web", route="3", pool="site",
                 code="2xx") == 1
    assert m.get("surety_listener_requests_total", listener="web", code="2xx") == 5
