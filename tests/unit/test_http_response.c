/* Unit tests of the response-head parser (src/http/parse_response.c): the
 * status line, body framing (HEAD, 1xx, 204, 304, chunked, length, close),
 * persistence, Upgrade, the framing faults it must refuse rather than guess
 * at, and prefix consistency as for requests. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"

#define CAP 32
#define RAW(s) s, sizeof(s) - 1

static const http_limits_t lim_default = {
    .max_request_line = 8192, .max_header_bytes = 16384, .max_headers = CAP};

static http_field_t fields[CAP];

static int parse(const char *buf, size_t len, bool head, http_response_t *res, http_reject_t *why)
{
    return http_parse_response(res, buf, len, &lim_default, head, fields, CAP, why);
}

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    bool head_request;
    int rc;
    http_reject_t reason;
    int status;
    http_body_kind_t body;
    bool keep_alive;
} res_case_t;

/* Brace initialisers in macros: clang-format 14 would spread each over four lines. */
/* clang-format off */
#define OK(name, s, head, st, body, ka) \
    {name, RAW(s), head, 0, HTTP_REJECT_NONE, st, HTTP_BODY_##body, ka}
#define BAD(name, s, r) {name, RAW(s), false, -EBADMSG, HTTP_REJECT_##r, 0, 0, false}
#define MORE(name, s) {name, RAW(s), false, -EAGAIN, HTTP_REJECT_NONE, 0, 0, false}
/* clang-format on */

static const res_case_t cases[] = {
    OK("200 length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, 200, LENGTH, true),
    OK("200 chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200, CHUNKED,
       true),
    OK("200 gzip chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false,
       200, CHUNKED, true),
    OK("200 te not chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, 200,
       CLOSE, false),
    OK("200 chunked not last", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false,
       200, CLOSE, false),
    OK("200 no framing", "HTTP/1.1 200 OK\r\n\r\n", false, 200, CLOSE, false),
    OK("200 close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false, 200,
       LENGTH, false),
    OK("head response", "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", true, 200, NONE, true),
    OK("head chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, 200, NONE,
       true),
    OK("head no framing", "HTTP/1.1 200 OK\r\n\r\n", true, 200, NONE, true),
    OK("100 continue", "HTTP/1.1 100 Continue\r\n\r\n", false, 100, NONE, true),
    OK("103 early hints", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n", false, 103, NONE,
       true),
    OK("204", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, NONE, true),
    OK("304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, 304, NONE, true),
    OK("http10 keep-alive",
       "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", false, 200, LENGTH,
       true),
    OK("http10 default close", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", false, 200, LENGTH,
       false),
    OK("http10 keep-alive no length", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false,
       200, CLOSE, false),
    OK("empty reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, 404, LENGTH, true),
    OK("no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", false, 404, LENGTH, true),
    OK("reason with spaces", "HTTP/1.1 500 Internal  Server\tError \r\nContent-Length: 0\r\n\r\n",
       false, 500, LENGTH, true),
    OK("599", "HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n", false, 599, LENGTH, true),
    OK("cl list", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", false, 200, LENGTH, true),

    MORE("empty", ""),
    MORE("partial", "HTTP/1.1 20"),
    MORE("no end", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"),

    BAD("lowercase", "http/1.1 200 OK\r\n\r\n", BAD_STATUS_LINE),
    BAD("no space", "HTTP/1.1200 OK\r\n\r\n", BAD_STATUS_LINE),
    BAD("two spaces", "HTTP/1.1  200 OK\r\n\r\n", BAD_STATUS_LINE),
    BAD("two digit", "HTTP/1.1 20 OK\r\n\r\n", BAD_STATUS_LINE),
    BAD("four digit", "HTTP/1.1 2000 OK\r\n\r\n", BAD_STATUS_LINE),
    BAD("099", "HTTP/1.1 099 X\r\n\r\n", BAD_STATUS_LINE),
    BAD("600", "HTTP/1.1 600 X\r\n\r\n", BAD_STATUS_LINE),
    BAD("letters", "HTTP/1.1 2x0 X\r\n\r\n", BAD_STATUS_LINE),
    BAD("reason ctl", "HTTP/1.1 200 O\x01K\r\n\r\n", BAD_STATUS_LINE),
    BAD("tab after status", "HTTP/1.1 200\tOK\r\n\r\n", BAD_STATUS_LINE),
    BAD("http09 body", "<html>\r\n", BAD_STATUS_LINE),
    BAD("version 2.0", "HTTP/2.0 200 OK\r\n\r\n", UNSUPPORTED_VERSION),
    BAD("version 1.2", "HTTP/1.2 200 OK\r\n\r\n", UNSUPPORTED_VERSION),
    BAD("bare lf", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", BARE_LF),
    BAD("bare lf end", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", BARE_LF),
    BAD("bare cr", "HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", BARE_CR),
    BAD("bare cr value", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", BARE_CR),
    BAD("obs fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", OBS_FOLD),
    BAD("space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", SPACE_BEFORE_COLON),
    BAD("bad name", "HTTP/1.1 200 OK\r\nX(: a\r\n\r\n", BAD_HEADER_NAME),
    BAD("bad value", "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", BAD_HEADER_VALUE),
    BAD("cl and te", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        CL_AND_TE),
    BAD("cl and te on 204",
        "HTTP/1.1 204 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", CL_AND_TE),
    BAD("cl differ", "HTTP/1.1 200 OK\r\nContent-Length: 5, 50\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl sign", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl bad on head", "HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("te twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        BAD_TRANSFER_ENCODING),
    BAD("te empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", BAD_TRANSFER_ENCODING),
    BAD("te on http10", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", TE_ON_HTTP10),
};

static void test_response_table_gives_expected_result(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const res_case_t *c = &cases[k];
        http_response_t res;
        http_reject_t why = HTTP_REJECT_COUNT;
        int rc = parse(c->raw, c->len, c->head_request, &res, &why);
        if (rc != c->rc || (rc == -EBADMSG && why != c->reason))
            fail_msg("case '%s': rc %d reason %s, want rc %d reason %s", c->name, rc,
                     http_reject_name(why), c->rc, http_reject_name(c->reason));
        if (rc != 0)
            continue;
        if (res.status != c->status || res.body != c->body || res.keep_alive != c->keep_alive ||
            res.head_len != c->len)
            fail_msg("case '%s': status %d body %d keep_alive %d head_len %zu", c->name, res.status,
                     res.body, res.keep_alive, res.head_len);
    }
}

static void test_response_prefixes_never_decide_differently(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const res_case_t *c = &cases[k];
        for (size_t n = 0; n < c->len; n++) {
            http_response_t res;
            http_reject_t why = HTTP_REJECT_NONE;
            int rc = parse(c->raw, n, c->head_request, &res, &why);
            if (rc == -EAGAIN || (rc == -EBADMSG && c->rc == -EBADMSG && why == c->reason))
                continue;
            fail_msg("case '%s' prefix %zu: rc %d reason %s", c->name, n, rc,
                     http_reject_name(why));
        }
    }
}

static void test_response_fills_status_reason_fields(void **state)
{
    (void)state;
    static const char raw[] = "HTTP/1.1 404 Not Found\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: 9\r\n\r\n"
                              "not found";
    http_response_t res;
    http_reject_t why;
    assert_int_equal(parse(RAW(raw), false, &res, &why), 0);
    assert_int_equal(why, HTTP_REJECT_NONE);
    assert_int_equal(res.status, 404);
    assert_int_equal(res.minor, 1);
    assert_true(str_eq(res.reason, STR_LIT("Not Found")));
    assert_int_equal(res.nfields, 2);
    assert_true(str_eq(res.fields[0].name, STR_LIT("Content-Type")));
    assert_true(str_eq(res.fields[0].value, STR_LIT("text/plain")));
    assert_int_equal(res.body, HTTP_BODY_LENGTH);
    assert_int_equal(res.content_length, 9);
    assert_int_equal(res.head_len, sizeof(raw) - 1 - 9);

    assert_int_equal(parse(RAW("HTTP/1.1 204\r\n\r\n"), false, &res, &why), 0);
    assert_int_equal(res.reason.len, 0);
}

static void test_response_101_with_upgrade_sets_upgrade(void **state)
{
    (void)state;
    http_response_t res;
    http_reject_t why;
    assert_int_equal(parse(RAW("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\n\r\n"),
                           false, &res, &why),
                     0);
    assert_true(res.upgrade);
    assert_int_equal(res.body, HTTP_BODY_NONE);
    assert_int_equal(
        parse(RAW("HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n"), false,
              &res, &why),
        0);
    assert_false(res.upgrade);
    assert_int_equal(parse(RAW("HTTP/1.1 101 Switching Protocols\r\n\r\n"), false, &res, &why), 0);
    assert_false(res.upgrade);
}

static void test_response_head_limit_gives_431(void **state)
{
    (void)state;
    char buf[256];
    const http_limits_t lim = {.max_request_line = 10, .max_header_bytes = 64, .max_headers = 2};
    http_response_t res;
    http_reject_t why;
    int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n");
    /* max_request_line does not apply to a status line. */
    assert_int_equal(http_parse_response(&res, buf, (size_t)n, &lim, false, fields, CAP, &why), 0);
    n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    assert_int_equal(http_parse_response(&res, buf, (size_t)n, &lim, false, fields, CAP, &why),
                     -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_TOO_MANY_HEADERS);
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "HTTP/1.1 200 OK\r\nX: ", 20);
    assert_int_equal(http_parse_response(&res, buf, 64, &lim, false, fields, CAP, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_HEADERS_TOO_LARGE);
    assert_int_equal(http_parse_response(&res, buf, 63, &lim, false, fields, CAP, &why), -EAGAIN);
}

static void test_response_reasons_are_answered_as_their_status(void **state)
{
    (void)state;
    /* The proxy answers 502 for any upstream fault; the table keeps its own. */
    assert_int_equal(http_reject_status(HTTP_REJECT_BAD_STATUS_LINE), 502);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_table_gives_expected_result),
        cmocka_unit_test(test_response_prefixes_never_decide_differently),
        cmocka_unit_test(test_response_fills_status_reason_fields),
        cmocka_unit_test(test_response_101_with_upgrade_sets_upgrade),
        cmocka_unit_test(test_response_head_limit_gives_431),
        cmocka_unit_test(test_response_reasons_are_answered_as_their_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
