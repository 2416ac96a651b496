/* Head rewriting: hop-by-hop fields dropped, forwarding fields added and
 * appended, absolute-form turned to origin-form, responses marked for close. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/head.h"

static http_field_t fields[64];
static const http_limits_t lim = {8192, 32768, 64};

static void parse_req(const char *raw, http_request_t *req)
{
    http_reject_t why;
    int r = http_parse_request(req, raw, strlen(raw), &lim, fields, 64, &why);
    if (r != 0)
        fail_msg("parse failed: %d %s", r, http_reject_name(why));
}

static char *rewrite(const char *raw, const char *ip)
{
    static char out_text[4096];
    http_request_t req;
    buf_t out;
    parse_req(raw, &req);
    buf_init(&out, 4096);
    head_request_ctx_t ctx = {str_cstr(ip), STR_LIT("rid1"), STR_LIT("http")};
    assert_int_equal(head_write_request(&out, &req, &ctx), 0);
    memcpy(out_text, buf_rptr(&out), buf_len(&out));
    out_text[buf_len(&out)] = 0;
    buf_deinit(&out);
    return out_text;
}

static void test_request_gets_forwarding_fields(void **state)
{
    (void)state;
    const char *got = rewrite("GET /a?b=1 HTTP/1.1\r\nHost: ex.com\r\nAccept: */*\r\n\r\n",
                              "10.1.2.3");
    assert_string_equal(got, "GET /a?b=1 HTTP/1.1\r\n"
                             "Host: ex.com\r\n"
                             "Accept: */*\r\n"
                             "X-Forwarded-For: 10.1.2.3\r\n"
                             "Forwarded: for=10.1.2.3;host=\"ex.com\";proto=http\r\n"
                             "X-Forwarded-Proto: http\r\n"
                             "X-Request-Id: rid1\r\n\r\n");
}

static void test_hop_by_hop_fields_are_dropped(void **state)
{
    (void)state;
    const char *got = rewrite("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\n"
                              "Keep-Alive: 5\r\nX-Secret: 1\r\nTE: trailers\r\n"
                              "Proxy-Connection: x\r\nX-Kept: yes\r\n\r\n",
                              "1.2.3.4");
    assert_null(strstr(got, "Connection"));
    assert_null(strstr(got, "Keep-Alive"));
    assert_null(strstr(got, "X-Secret"));
    assert_null(strstr(got, "TE:"));
    assert_non_null(strstr(got, "X-Kept: yes\r\n"));
}

static void test_existing_forwarding_fields_are_appended_to(void **state)
{
    (void)state;
    const char *got = rewrite("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 9.9.9.9\r\n"
                              "X-Forwarded-For: 8.8.8.8\r\nForwarded: for=9.9.9.9\r\n"
                              "X-Forwarded-Proto: https\r\nX-Request-Id: theirs\r\n\r\n",
                              "1.2.3.4");
    assert_non_null(strstr(got, "X-Forwarded-For: 9.9.9.9, 8.8.8.8, 1.2.3.4\r\n"));
    assert_non_null(strstr(got, "Forwarded: for=9.9.9.9, for=1.2.3.4;host=\"h\";proto=http\r\n"));
    /* the client cannot claim a scheme it did not use */
    assert_non_null(strstr(got, "X-Forwarded-Proto: http\r\n"));
    assert_null(strstr(got, "https"));
    assert_non_null(strstr(got, "X-Request-Id: rid1\r\n"));
}

static void test_ipv6_client_is_quoted_in_forwarded(void **state)
{
    (void)state;
    const char *got = rewrite("GET / HTTP/1.1\r\nHost: h\r\n\r\n", "::1");
    assert_non_null(strstr(got, "Forwarded: for=\"[::1]\";host=\"h\";proto=http\r\n"));
    assert_non_null(strstr(got, "X-Forwarded-For: ::1\r\n"));
}

static void test_absolute_form_becomes_origin_form(void **state)
{
    (void)state;
    const char *got = rewrite("GET http://Other.com/p?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n",
                              "1.2.3.4");
    assert_true(strncmp(got, "GET /p?q=1 HTTP/1.1\r\n", 21) == 0);
    assert_null(strstr(got, "Host: ignored"));
    assert_non_null(strstr(got, "Host: Other.com\r\n"));
}

static void test_chunked_and_upgrade_are_kept(void **state)
{
    (void)state;
    const char *got = rewrite("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                              "1.2.3.4");
    assert_non_null(strstr(got, "Transfer-Encoding: chunked\r\n"));
    got = rewrite("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  "Sec-WebSocket-Key: k\r\n\r\n",
                  "1.2.3.4");
    assert_non_null(strstr(got, "Upgrade: websocket\r\n"));
    assert_non_null(strstr(got, "Connection: upgrade\r\n"));
    assert_non_null(strstr(got, "Sec-WebSocket-Key: k\r\n"));
}

static void test_response_rewrite(void **state)
{
    (void)state;
    const char *raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n"
                      "Keep-Alive: timeout=5\r\nServer: x\r\n\r\nok";
    http_response_t res;
    http_reject_t why;
    assert_int_equal(
        http_parse_response(&res, raw, strlen(raw), &lim, false, fields, 64, &why), 0);
    buf_t out;
    buf_init(&out, 4096);
    assert_int_equal(head_write_response(&out, &res, 1, false, STR_LIT("r"), NULL), 0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    assert_string_equal(buf_rptr(&out), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n"
                                        "Connection: close\r\nX-Request-Id: r\r\n\r\n");
    buf_consume(&out, buf_len(&out));
    assert_int_equal(head_write_response(&out, &res, 0, true, STR_NULL, NULL), 0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    assert_non_null(strstr(buf_rptr(&out), "Connection: keep-alive\r\n"));
    /* HSTS is added when the server did not send its own */
    buf_consume(&out, buf_len(&out));
    head_added_t hsts = {.name = {STR_LIT("Strict-Transport-Security")},
                         .value = {STR_LIT("max-age=60")},
                         .n = 1};
    assert_int_equal(head_write_response(&out, &res, 1, true, STR_NULL, &hsts), 0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    assert_non_null(strstr(buf_rptr(&out), "Strict-Transport-Security: max-age=60\r\n"));
    buf_deinit(&out);
}

static void test_redirect_to_https(void **state)
{
    (void)state;
    buf_t out;
    buf_init(&out, 4096);
    assert_int_equal(head_write_redirect(&out, STR_LIT("example.com"), 8443, STR_LIT("/a?b=c"),
                                         STR_LIT("id")),
                     0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    assert_string_equal(buf_rptr(&out), "HTTP/1.1 308 Permanent Redirect\r\n"
                                        "Location: https://example.com:8443/a?b=c\r\n"
                                        "Content-Length: 0\r\nConnection: close\r\n"
                                        "X-Request-Id: id\r\n\r\n");
    buf_consume(&out, buf_len(&out));
    /* port 443 is left out; an absolute-form target keeps only its path */
    assert_int_equal(head_write_redirect(&out, STR_LIT("[::1]"), 443,
                                         STR_LIT("http://[::1]:80/x/y"), STR_NULL),
                     0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    assert_non_null(strstr(buf_rptr(&out), "Location: https://[::1]/x/y\r\n"));
    buf_deinit(&out);
}

static void test_error_answer_and_head(void **state)
{
    (void)state;
    buf_t out;
    buf_init(&out, 1024);
    assert_int_equal(head_write_error(&out, 502, false, STR_LIT("id"), STR_NULL), 0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    assert_string_equal(buf_rptr(&out), "HTTP/1.1 502 Bad Gateway\r\n"
                                        "Content-Type: text/plain; charset=utf-8\r\n"
                                        "Content-Length: 16\r\nConnection: close\r\n"
                                        "X-Request-Id: id\r\n\r\n502 Bad Gateway\n");
    buf_consume(&out, buf_len(&out));
    assert_int_equal(head_write_error(&out, 404, true, STR_NULL, STR_NULL), 0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    assert_true(strstr(buf_rptr(&out), "\r\n\r\n")[4] == 0); /* no body for HEAD */
    buf_deinit(&out);
    buf_init(&out, 32);
    assert_int_equal(head_write_error(&out, 502, false, STR_NULL, STR_NULL), -ENOSPC);
    buf_deinit(&out);
}

static void test_client_request_id_is_validated(void **state)
{
    (void)state;
    http_request_t req;
    parse_req("GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc-123_x.y\r\n\r\n", &req);
    assert_int_equal(head_client_request_id(&req).len, 11);
    parse_req("GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: a b\r\n\r\n", &req);
    assert_int_equal(head_client_request_id(&req).len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_gets_forwarding_fields),
        cmocka_unit_test(test_hop_by_hop_fields_are_dropped),
        cmocka_unit_test(test_existing_forwarding_fields_are_appended_to),
        cmocka_unit_test(test_ipv6_client_is_quoted_in_forwarded),
        cmocka_unit_test(test_absolute_form_becomes_origin_form),
        cmocka_unit_test(test_chunked_and_upgrade_are_kept),
        cmocka_unit_test(test_response_rewrite),
        cmocka_unit_test(test_redirect_to_https),
        cmocka_unit_test(test_error_answer_and_head),
        cmocka_unit_test(test_client_request_id_is_validated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
