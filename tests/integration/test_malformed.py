"""Malformed requests: each gets its 4xx/5xx status, is counted in
surety_http_rejects_total{reason}, never reaches the backend, and the
connection is closed after the error response.

One surety serves the whole module (the cases are independent and each
uses a fresh connection); every case checks deltas of the metrics and of
the backend's counters."""

import pytest

import harness
from httpio import RawClient, build_request

LIMITS = {"limits": {"uri": "8k", "headers": 100, "header_bytes": "32k"}}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    m = harness.Manager(tmp_path_factory.mktemp("malformed"))
    b = m.backend("b1")
    s = m.surety(harness.simple_config([b], listener=LIMITS))
    yield s, b
    problems = m.close()
    if problems:
        pytest.fail("teardown: " + "\n".join(problems), pytrace=False)


def req(head_lines, body=b""):
    """Request bytes from head lines (joined with CRLF) and a raw body."""
    return ("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1") + body


# (id, request bytes, status, reason) -- the head is wrong: nothing may reach the backend
HEAD_CASES = [
    ("cl_and_te", req(["POST / HTTP/1.1", "Host: a", "Content-Length: 5",
                       "Transfer-Encoding: chunked"], b"0\r\n\r\n"),
     400, "content_length_and_transfer_encoding"),
    ("te_and_cl_reversed", req(["POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked",
                                "Content-Length: 5"], b"0\r\n\r\n"),
     400, "content_length_and_transfer_encoding"),
    ("obs_fold", req(["GET / HTTP/1.1", "Host: a", "X-A: b", " c"]), 400, "obs_fold"),
    ("obs_fold_tab", req(["GET / HTTP/1.1", "Host: a", "X-A: b", "\tc"]), 400, "obs_fold"),
    ("missing_host", req(["GET / HTTP/1.1", "X-A: b"]), 400, "missing_host"),
    ("multiple_host", req(["GET / HTTP/1.1", "Host: a", "Host: b"]), 400, "multiple_host"),
    ("bad_host", req(["GET / HTTP/1.1", "Host: exa mple.com"]), 400, "bad_host"),
    ("differing_content_lengths", req(["POST / HTTP/1.1", "Host: a", "Content-Length: 3",
                                       "Content-Length: 4"], b"abcd"),
     400, "bad_content_length"),
    ("differing_content_length_list", req(["POST / HTTP/1.1", "Host: a",
                                           "Content-Length: 3, 4"], b"abcd"),
     400, "bad_content_length"),
    ("non_numeric_content_length", req(["POST / HTTP/1.1", "Host: a", "Content-Length: abc"]),
     400, "bad_content_length"),
    ("signed_content_length", req(["POST / HTTP/1.1", "Host: a", "Content-Length: +3"], b"abc"),
     400, "bad_content_length"),
    ("huge_content_length", req(["POST / HTTP/1.1", "Host: a",
                                 "Content-Length: 99999999999999999999999"]),
     400, "bad_content_length"),
    ("te_gzip", req(["POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip"]),
     501, "unsupported_transfer_coding"),
    ("te_gzip_chunked", req(["POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked"],
                            b"0\r\n\r\n"),
     501, "unsupported_transfer_coding"),
    ("te_chunked_twice", req(["POST / HTTP/1.1", "Host: a",
                              "Transfer-Encoding: chunked, chunked"], b"0\r\n\r\n"),
     400, "bad_transfer_encoding"),
    ("te_on_http10", req(["POST / HTTP/1.0", "Host: a", "Transfer-Encoding: chunked"],
                         b"0\r\n\r\n"),
     400, "transfer_encoding_on_http10"),
    ("too_many_headers", req(["GET / HTTP/1.1", "Host: a"]
                             + ["X-H%d: v" % i for i in range(150)]),
     431, "too_many_headers"),
    ("headers_too_large", req(["GET / HTTP/1.1", "Host: a", "X-A: " + "a" * 20000,
                               "X-B: " + "b" * 20000]),
     431, "headers_too_large"),
    ("uri_too_long", req(["GET /" + "a" * 9000 + " HTTP/1.1", "Host: a"]), 414, "uri_too_long"),
    ("http_2_0", req(["GET / HTTP/2.0", "Host: a"]), 505, "unsupported_version"),
    ("http_3_0", req(["GET / HTTP/3.0", "Host: a"]), 505, "unsupported_version"),
    ("bad_version", req(["GET / HTTP/1.x", "Host: a"]), 400, "bad_version"),
    ("lowercase_version", req(["GET / http/1.1", "Host: a"]), 400, "bad_version"),
    ("nul_in_header_value", req(["GET / HTTP/1.1", "Host: a", "X-A: a\x00b"]),
     400, "bad_header_value"),
    ("ctl_in_header_value", req(["GET / HTTP/1.1", "Host: a", "X-A: a\x01b"]),
     400, "bad_header_value"),
    ("space_before_colon", req(["GET / HTTP/1.1", "Host: a", "X-A : b"]),
     400, "space_before_colon"),
    ("space_before_colon_host", req(["GET / HTTP/1.1", "Host : a"]), 400, "space_before_colon"),
    ("bad_header_name", req(["GET / HTTP/1.1", "Host: a", "X(A): b"]), 400, "bad_header_name"),
    ("empty_header_name", req(["GET / HTTP/1.1", "Host: a", ": b"]), 400, "bad_header_name"),
    ("bare_lf_in_fields", b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", 400, "bare_lf"),
    ("bare_cr_in_fields", b"GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", 400, "bare_cr"),
    ("bad_method", req(["G@T / HTTP/1.1", "Host: a"]), 400, "bad_method"),
    ("bad_target", req(["GET foo HTTP/1.1", "Host: a"]), 400, "bad_target"),
    ("control_byte_in_target", req(["GET /a\x01b HTTP/1.1", "Host: a"]), 400, "bad_target"),
]

# the head is fine, the chunked body is not: the bad bytes must not be forwarded
BODY_CASES = [
    ("bad_chunk_size", b"zz\r\nabc\r\n0\r\n\r\n", b"zz", 400, "bad_chunk_size"),
    ("chunk_size_0x", b"0x3\r\nabc\r\n0\r\n\r\n", b"0x3", 400, "bad_chunk_size"),
    ("chunk_size_signed", b"-3\r\nabc\r\n0\r\n\r\n", b"-3", 400, "bad_chunk_size"),
    ("chunk_size_overflow", b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", b"fffffffffffffff",
     400, "bad_chunk_size"),
    ("chunk_data_without_crlf", b"3\r\nabcXY0\r\n\r\n", b"abcXY", 400, "bad_chunk_data"),
    ("chunk_size_bare_lf", b"3\nabc\r\n0\r\n\r\n", b"3\nabc", 400, None),
    ("chunk_extension_control_byte", b"3;ext\x01\r\nabc\r\n0\r\n\r\n", b"ext\x01",
     400, "bad_chunk_extension"),
    ("bad_trailer", b"3\r\nabc\r\n0\r\nno colon here\r\n\r\n", b"no colon", 400, "bad_trailer"),
]


def rejects(s, reason=None):
    m = s.metrics()
    if reason is None:
        return m.get("surety_http_rejects_total", listener="web")
    return m.get("surety_http_rejects_total", listener="web", reason=reason)


def send_and_expect_rejection(s, data, status):
    with RawClient(s.port(), timeout=5) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # surety may answer and close before the whole request went out
        r = c.read_response()
        assert r.status == status, "expected %d, got %d %r" % (status, r.status, r.raw_head)
        closed, extra, _ = c.wait_closed(3)
        assert closed, "connection not closed after an error response"
    return r


@pytest.mark.parametrize("data,status,reason", [c[1:] for c in HEAD_CASES],
                         ids=[c[0] for c in HEAD_CASES])
def test_malformed_request_head_is_rejected_and_never_reaches_the_backend(proxy, data, status,
                                                                          reason):
    s, b = proxy
    before_conns, before_reqs, before_bytes = b.snapshot()
    before = rejects(s, reason)
    send_and_expect_rejection(s, data, status)
    assert rejects(s, reason) == before + 1, "surety_http_rejects_total{reason=%s}" % reason
    _, after_reqs, after_bytes = b.snapshot()
    assert after_bytes == before_bytes, "bytes reached the backend"


@pytest.mark.parametrize("body,marker,status,reason", [c[1:] for c in BODY_CASES],
                         ids=[c[0] for c in BODY_CASES])
def test_malformed_chunked_body_is_rejected_and_not_forwarded(proxy, body, marker, status,
                                                              reason):
    s, b = proxy
    before_total = rejects(s)
    before = rejects(s, reason) if reason else None
    before_done = len(b.completed())
    before_raw = len(b.raw_bytes())
    head = build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
    send_and_expect_rejection(s, head + body, status)
    if reason:
        assert rejects(s, reason) == before + 1, "surety_http_rejects_total{reason=%s}" % reason
    else:
        assert rejects(s) == before_total + 1
    assert len(b.completed()) == before_done, "a complete request reached the backend"
    assert marker not in b.raw_bytes()[before_raw:], "the malformed bytes were forwarded"


def test_rejection_on_one_connection_does_not_disturb_another(proxy):
    s, b = proxy
    with RawClient(s.port()) as good:
        assert good.request("GET", "/before").status == 200
        send_and_expect_rejection(s, req(["GET / HTTP/1.1", "Host: a", "X-A : b"]), 400)
        assert good.request("GET", "/after").status == 200


def test_request_after_a_valid_one_on_the_same_connection_is_rejected_alone(proxy):
    s, b = proxy
    with RawClient(s.port()) as c:
        c.send(build_request("GET", "/valid") + req(["GET / HTTP/1.1", "Host: a", "X-A: b", " c"]))
        r1 = c.read_response()
        r2 = c.read_response()
        closed, _, _ = c.wait_closed(3)
    assert r1.status == 200 and r1.body == b"hello from b1 /valid\n"
    assert r2.status == 400 and closed


def test_smuggled_request_in_a_body_is_not_seen_as_a_request(proxy):
    s, b = proxy
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    with RawClient(s.port()) as c:
        r = c.request("POST", "/echo", body=smuggled)
        assert r.status == 200 and r.body == smuggled
    assert all(q.path != "/smuggled" for q in b.completed())
