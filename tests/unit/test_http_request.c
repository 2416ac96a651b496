/* Unit tests of the request-head parser (src/http/parse_request.c): a table
 * of heads that must parse and heads that must be refused, one or more per
 * rejection reason, checked whole and at every prefix (a prefix of a good
 * head must ask for more bytes; a prefix of a bad one must never be
 * accepted), and focused tests of what the parser reports: target forms,
 * Host, framing, persistence, Expect, Upgrade, limits and pipelining. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"

#define CAP 64
#define RAW(s) s, sizeof(s) - 1

static const http_limits_t lim_default = {
    .max_request_line = 8192, .max_header_bytes = 32768, .max_headers = CAP};

static http_field_t fields[CAP];

static int parse(const char *buf, size_t len, const http_limits_t *lim, http_request_t *req,
                 http_reject_t *why)
{
    return http_parse_request(req, buf, len, lim ? lim : &lim_default, fields, CAP, why);
}

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    int rc;
    http_reject_t reason;
} req_case_t;

/* Brace initialisers in macros: clang-format 14 would spread each over four lines. */
/* clang-format off */
#define OK(name, s) {name, RAW(s), 0, HTTP_REJECT_NONE}
#define BAD(name, s, r) {name, RAW(s), -EBADMSG, HTTP_REJECT_##r}
#define MORE(name, s) {name, RAW(s), -EAGAIN, HTTP_REJECT_NONE}
/* clang-format on */

#define H11 " HTTP/1.1\r\nHost: a\r\n"

static const req_case_t cases[] = {
    OK("simple get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    OK("query", "GET /p?q=1&r HTTP/1.1\r\nHost: a\r\n\r\n"),
    OK("http10 without host", "GET / HTTP/1.0\r\n\r\n"),
    OK("leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    OK("absolute form", "GET http://example.com/x?y HTTP/1.1\r\nHost: a\r\n\r\n"),
    OK("absolute form https upper", "GET HTTPS://example.com:8443 HTTP/1.1\r\nHost: a\r\n\r\n"),
    OK("options asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
    OK("connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
    OK("connect ipv6", "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"),
    OK("extension method", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n"),
    OK("cl identical list", "POST /" H11 "Content-Length: 5, 5,5\r\n\r\n"),
    OK("cl identical fields", "POST /" H11 "Content-Length: 5\r\nContent-Length: 005\r\n\r\n"),
    OK("cl zero", "POST /" H11 "Content-Length: 0\r\n\r\n"),
    OK("cl max", "POST /" H11 "Content-Length: 9223372036854775807\r\n\r\n"),
    OK("te chunked", "POST /" H11 "Transfer-Encoding: chunked\r\n\r\n"),
    OK("te chunked case", "POST /" H11 "Transfer-Encoding:  ChUnKeD \r\n\r\n"),
    OK("host port", "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"),
    OK("host ipv6", "GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n"),
    OK("host empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
    OK("value obs-text and htab", "GET /" H11 "X: caf\xc3\xa9\tbar\r\n\r\n"),
    OK("empty value", "GET /" H11 "X:\r\n\r\n"),
    OK("utf8 in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
    OK("connection list", "GET /" H11 "Connection: , keep-alive,, Upgrade\r\n\r\n"),

    MORE("empty", ""),
    MORE("partial line", "GET /index.ht"),
    MORE("no final crlf", "GET / HTTP/1.1\r\nHost: a\r\n"),
    MORE("cr at end", "GET / HTTP/1.1\r\nHost: a\r\n\r"),
    MORE("only crlf", "\r\n"),

    BAD("leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE),
    BAD("two spaces before target", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE),
    BAD("two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE),
    BAD("trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", BAD_REQUEST_LINE),
    BAD("http09 request", "GET /\r\n\r\n", BAD_REQUEST_LINE),
    BAD("method separator", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", BAD_METHOD),
    BAD("method tab", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", BAD_METHOD),
    BAD("method non-ascii", "G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", BAD_METHOD),
    BAD("method nul", "GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n", BAD_METHOD),
    BAD("relative target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("ctl in target", "GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("del in target", "GET /a\x7fz HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("tab in target", "GET /a\tz HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("nul in target", "GET /a\0z HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("asterisk with get", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("options other", "OPTIONS ** HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("connect origin", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("connect no port", "CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("connect empty port", "CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("connect bad port", "CONNECT example.com:8a HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("connect absolute", "CONNECT http://a:1/ HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("authority form not connect", "GET a.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("other scheme", "GET ftp://a.com/ HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("absolute no host", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("absolute userinfo", "GET http://u@a.com/ HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("absolute bad port", "GET http://a.com:x/ HTTP/1.1\r\nHost: a\r\n\r\n", BAD_TARGET),
    BAD("version lowercase", "GET / http/1.1\r\nHost: a\r\n\r\n", BAD_VERSION),
    BAD("version short", "GET / HTTP/1\r\nHost: a\r\n\r\n", BAD_VERSION),
    BAD("version long", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", BAD_VERSION),
    BAD("version two digit major", "GET / HTTP/11.1\r\nHost: a\r\n\r\n", BAD_VERSION),
    BAD("version letters", "GET / HTTP/x.y\r\nHost: a\r\n\r\n", BAD_VERSION),
    BAD("version garbage", "GET / FOO\r\nHost: a\r\n\r\n", BAD_VERSION),
    BAD("version 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", UNSUPPORTED_VERSION),
    BAD("version 0.9", "GET / HTTP/0.9\r\n\r\n", UNSUPPORTED_VERSION),
    BAD("version 1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", UNSUPPORTED_VERSION),
    BAD("version 3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", UNSUPPORTED_VERSION),
    BAD("empty name", "GET /" H11 ": x\r\n\r\n", BAD_HEADER_NAME),
    BAD("name ctl", "GET /" H11 "X\x01Y: x\r\n\r\n", BAD_HEADER_NAME),
    BAD("name nul", "GET /" H11 "X\0Y: x\r\n\r\n", BAD_HEADER_NAME),
    BAD("name separator", "GET /" H11 "X@Y: x\r\n\r\n", BAD_HEADER_NAME),
    BAD("name non-ascii", "GET /" H11 "X\xffY: x\r\n\r\n", BAD_HEADER_NAME),
    BAD("line without colon", "GET /" H11 "XY\r\n\r\n", BAD_HEADER_NAME),
    BAD("value ctl", "GET /" H11 "X: a\x01z\r\n\r\n", BAD_HEADER_VALUE),
    BAD("value nul", "GET /" H11 "X: a\0z\r\n\r\n", BAD_HEADER_VALUE),
    BAD("value del", "GET /" H11 "X: a\x7fz\r\n\r\n", BAD_HEADER_VALUE),
    BAD("value esc long", "GET /" H11 "X: aaaaaaaaaaaaaaaaaaaa\x1b\r\n\r\n", BAD_HEADER_VALUE),
    BAD("connection not token", "GET /" H11 "Connection: clo se\r\n\r\n", BAD_HEADER_VALUE),
    BAD("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", SPACE_BEFORE_COLON),
    BAD("tab before colon", "GET /" H11 "Content-Length\t: 5\r\n\r\n", SPACE_BEFORE_COLON),
    BAD("obs fold", "GET /" H11 "X: a\r\n b\r\n\r\n", OBS_FOLD),
    BAD("obs fold tab", "GET /" H11 "X: a\r\n\tb\r\n\r\n", OBS_FOLD),
    BAD("space first line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", OBS_FOLD),
    BAD("bare cr in request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", BARE_CR),
    BAD("bare cr in method", "GE\rT / HTTP/1.1\r\nHost: a\r\n\r\n", BARE_CR),
    BAD("bare cr in target", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", BARE_CR),
    BAD("bare cr in value", "GET /" H11 "X: a\rb\r\n\r\n", BARE_CR),
    BAD("bare cr in name", "GET /" H11 "X\rY: a\r\n\r\n", BARE_CR),
    BAD("bare cr end of head", "GET /" H11 "\rX", BARE_CR),
    BAD("leading bare cr", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", BARE_CR),
    BAD("bare lf request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", BARE_LF),
    BAD("bare lf everywhere", "GET / HTTP/1.1\nHost: a\n\n", BARE_LF),
    BAD("bare lf field", "GET /" H11 "X: a\nY: b\r\n\r\n", BARE_LF),
    BAD("bare lf end", "GET /" H11 "\n", BARE_LF),
    BAD("leading bare lf", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BARE_LF),
    BAD("lf in target", "GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n", BARE_LF),
    BAD("missing host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", MISSING_HOST),
    BAD("missing host absolute", "GET http://a/ HTTP/1.1\r\n\r\n", MISSING_HOST),
    BAD("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", MULTIPLE_HOST),
    BAD("two hosts http10", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", MULTIPLE_HOST),
    BAD("host space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BAD_HOST),
    BAD("host slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", BAD_HOST),
    BAD("host userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", BAD_HOST),
    BAD("host bad ipv6", "GET / HTTP/1.1\r\nHost: [zz::1]\r\n\r\n", BAD_HOST),
    BAD("host long port", "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", BAD_HOST),
    BAD("host port letters", "GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", BAD_HOST),
    BAD("host only port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", BAD_HOST),
    BAD("host comma list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", BAD_HOST),
    BAD("cl and te", "POST /" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        CL_AND_TE),
    BAD("te and cl", "POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        CL_AND_TE),
    BAD("te and bad cl", "POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n",
        CL_AND_TE),
    BAD("cl differ list", "POST /" H11 "Content-Length: 5, 6\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl differ fields", "POST /" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        BAD_CONTENT_LENGTH),
    BAD("cl plus", "POST /" H11 "Content-Length: +5\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl minus", "POST /" H11 "Content-Length: -5\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl inner space", "POST /" H11 "Content-Length: 1 2\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl hex", "POST /" H11 "Content-Length: 0x5\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl empty", "POST /" H11 "Content-Length:\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl trailing comma", "POST /" H11 "Content-Length: 5,\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl leading comma", "POST /" H11 "Content-Length: ,5\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl 2^63", "POST /" H11 "Content-Length: 9223372036854775808\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("cl overflow", "POST /" H11 "Content-Length: 99999999999999999999999\r\n\r\n",
        BAD_CONTENT_LENGTH),
    BAD("cl decimal point", "POST /" H11 "Content-Length: 5.0\r\n\r\n", BAD_CONTENT_LENGTH),
    BAD("te chunked not last", "POST /" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n",
        BAD_TRANSFER_ENCODING),
    BAD("te chunked twice", "POST /" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
        BAD_TRANSFER_ENCODING),
    BAD("te chunked twice fields",
        "POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        BAD_TRANSFER_ENCODING),
    BAD("te chunked then gzip field",
        "POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
        BAD_TRANSFER_ENCODING),
    BAD("te empty", "POST /" H11 "Transfer-Encoding:\r\n\r\n", BAD_TRANSFER_ENCODING),
    BAD("te empty element", "POST /" H11 "Transfer-Encoding: , chunked\r\n\r\n",
        BAD_TRANSFER_ENCODING),
    BAD("te trailing comma", "POST /" H11 "Transfer-Encoding: chunked,\r\n\r\n",
        BAD_TRANSFER_ENCODING),
    BAD("te chunked params", "POST /" H11 "Transfer-Encoding: chunked;q=1\r\n\r\n",
        BAD_TRANSFER_ENCODING),
    BAD("te not token", "POST /" H11 "Transfer-Encoding: chun ked\r\n\r\n", BAD_TRANSFER_ENCODING),
    BAD("te quoted", "POST /" H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", BAD_TRANSFER_ENCODING),
    BAD("te prefix", "POST /" H11 "Transfer-Encoding: xchunked\r\n\r\n",
        UNSUPPORTED_TRANSFER_CODING),
    BAD("te gzip chunked", "POST /" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n",
        UNSUPPORTED_TRANSFER_CODING),
    BAD("te gzip params chunked",
        "POST /" H11 "Transfer-Encoding: gzip;level=\"9\" , chunked\r\n\r\n",
        UNSUPPORTED_TRANSFER_CODING),
    BAD("te gzip", "POST /" H11 "Transfer-Encoding: gzip\r\n\r\n", UNSUPPORTED_TRANSFER_CODING),
    BAD("te identity", "POST /" H11 "Transfer-Encoding: identity\r\n\r\n",
        UNSUPPORTED_TRANSFER_CODING),
    BAD("te on http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TE_ON_HTTP10),
};

static void check_case(const req_case_t *c)
{
    http_request_t req;
    http_reject_t why = HTTP_REJECT_COUNT;
    int rc = parse(c->raw, c->len, NULL, &req, &why);
    if (rc != c->rc || (rc == -EBADMSG && why != c->reason))
        fail_msg("case '%s': rc %d reason %s, want rc %d reason %s", c->name, rc,
                 http_reject_name(why), c->rc, http_reject_name(c->reason));
    if (rc == 0 && req.head_len != c->len)
        fail_msg("case '%s': head_len %zu, want %zu", c->name, req.head_len, c->len);
}

static void test_request_table_gives_expected_result(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        check_case(&cases[k]);
}

/* A prefix of a good head asks for more; a prefix of a bad one is never
 * accepted. A rejected prefix must be rejected for the same reason as the
 * whole, so the metric does not depend on how the bytes arrived. */
static void test_request_prefixes_never_decide_differently(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const req_case_t *c = &cases[k];
        for (size_t n = 0; n < c->len; n++) {
            http_request_t req;
            http_reject_t why = HTTP_REJECT_NONE;
            int rc = parse(c->raw, n, NULL, &req, &why);
            if (rc == -EAGAIN)
                continue;
            if (rc == -EBADMSG && c->rc == -EBADMSG && why == c->reason)
                continue;
            fail_msg("case '%s' prefix %zu: rc %d reason %s", c->name, n, rc,
                     http_reject_name(why));
        }
    }
}

static void test_request_fills_method_target_fields(void **state)
{
    (void)state;
    static const char raw[] = "POST /a/b?x=1&y HTTP/1.1\r\n"
                              "Host: example.com\r\n"
                              "X-Pad:   spaced value \t \r\n"
                              "Content-Length: 12\r\n\r\n";
    http_request_t req;
    http_reject_t why;
    assert_int_equal(parse(RAW(raw), NULL, &req, &why), 0);
    assert_int_equal(why, HTTP_REJECT_NONE);
    assert_true(str_eq(req.method, STR_LIT("POST")));
    assert_true(str_eq(req.target, STR_LIT("/a/b?x=1&y")));
    assert_true(str_eq(req.path, STR_LIT("/a/b")));
    assert_true(str_eq(req.query, STR_LIT("x=1&y")));
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.nfields, 3);
    assert_ptr_equal(req.fields, fields);
    assert_true(str_eq(req.fields[1].name, STR_LIT("X-Pad")));
    assert_true(str_eq(req.fields[1].value, STR_LIT("spaced value")));
    assert_true(str_eq(req.host, STR_LIT("example.com")));
    assert_int_equal(req.body, HTTP_BODY_LENGTH);
    assert_int_equal(req.content_length, 12);
    assert_true(req.keep_alive);
    assert_false(req.expect_continue);
    assert_false(req.upgrade);
    assert_int_equal(req.head_len, sizeof(raw) - 1);
    /* Views point into the buffer: nothing was copied. */
    assert_true(req.method.p == raw);
}

static void test_request_without_query_has_empty_query(void **state)
{
    (void)state;
    http_request_t req;
    http_reject_t why;
    assert_int_equal(parse(RAW("GET /x? HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, &req, &why), 0);
    assert_true(str_eq(req.path, STR_LIT("/x")));
    assert_int_equal(req.query.len, 0);
    assert_int_equal(parse(RAW("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, &req, &why), 0);
    assert_true(str_eq(req.path, STR_LIT("/x")));
    assert_int_equal(req.query.len, 0);
    assert_int_equal(req.body, HTTP_BODY_NONE);
}

static void test_request_absolute_form_uses_target_authority(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *host, *path, *query;
    } t[] = {
        {"GET http://example.com/p?q HTTP/1.1\r\nHost: other\r\n\r\n", "example.com", "/p", "q"},
        {"GET hTTp://example.com:81 HTTP/1.1\r\nHost: other\r\n\r\n", "example.com:81", "/", ""},
        {"GET https://[::1]?q=2 HTTP/1.1\r\nHost: x\r\n\r\n", "[::1]", "/", "q=2"},
    };
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
        http_request_t req;
        http_reject_t why;
        assert_int_equal(parse(t[k].raw, strlen(t[k].raw), NULL, &req, &why), 0);
        assert_true(str_eq(req.host, str_cstr(t[k].host)));
        assert_true(str_eq(req.path, str_cstr(t[k].path)));
        assert_true(str_eq(req.query, str_cstr(t[k].query)));
    }
}

static void test_request_options_asterisk_and_connect(void **state)
{
    (void)state;
    http_request_t req;
    http_reject_t why;
    assert_int_equal(parse(RAW("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, &req, &why), 0);
    assert_true(str_eq(req.target, STR_LIT("*")));
    assert_true(str_eq(req.path, STR_LIT("*")));
    assert_int_equal(
        parse(RAW("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n"), NULL,
              &req, &why),
        0);
    assert_true(str_eq(req.method, STR_LIT("CONNECT")));
    assert_true(str_eq(req.target, STR_LIT("db.internal:5432")));
    assert_true(str_eq(req.host, STR_LIT("db.internal:5432")));
    assert_int_equal(req.path.len, 0);
    /* Methods are case-sensitive: "connect" is just an extension method. */
    assert_int_equal(parse(RAW("connect a:1 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, &req, &why),
                     -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_BAD_TARGET);
}

static void test_request_keep_alive_follows_rfc9112_9_3(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        bool keep_alive;
    } t[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: x, Close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", false},
    };
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
        http_request_t req;
        http_reject_t why;
        assert_int_equal(parse(t[k].raw, strlen(t[k].raw), NULL, &req, &why), 0);
        if (req.keep_alive != t[k].keep_alive)
            fail_msg("case %zu: keep_alive %d", k, req.keep_alive);
    }
}

static void test_request_expect_continue_only_on_http11(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        bool expect;
    } t[] = {
        {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", true},
        {"POST / HTTP/1.1\r\nHost: a\r\nexpect: 100-Continue\r\n\r\n", true},
        {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue-x\r\n\r\n", false},
        {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", false},
        {"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", false},
        {"POST / HTTP/1.1\r\nHost: a\r\n\r\n", false},
    };
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
        http_request_t req;
        http_reject_t why;
        assert_int_equal(parse(t[k].raw, strlen(t[k].raw), NULL, &req, &why), 0);
        if (req.expect_continue != t[k].expect)
            fail_msg("case %zu: expect_continue %d", k, req.expect_continue);
    }
}

static void test_request_upgrade_needs_connection_token(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        bool upgrade;
    } t[] = {
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade\r\n"
         "Upgrade: websocket\r\n\r\n",
         true},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", false},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", false},
        {"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", false},
    };
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
        http_request_t req;
        http_reject_t why;
        assert_int_equal(parse(t[k].raw, strlen(t[k].raw), NULL, &req, &why), 0);
        if (req.upgrade != t[k].upgrade)
            fail_msg("case %zu: upgrade %d", k, req.upgrade);
    }
}

static void test_request_chunked_and_length_bodies(void **state)
{
    (void)state;
    http_request_t req;
    http_reject_t why;
    assert_int_equal(parse(RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
                           NULL, &req, &why),
                     0);
    assert_int_equal(req.body, HTTP_BODY_CHUNKED);
    assert_int_equal(
        parse(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n"), NULL, &req, &why),
        0);
    assert_int_equal(req.body, HTTP_BODY_LENGTH);
    assert_int_equal(req.content_length, 7);
    assert_int_equal(
        parse(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"),
              NULL, &req, &why),
        0);
    assert_int_equal(req.content_length, INT64_MAX);
}

static void test_request_pipelined_head_len_stops_at_first_head(void **state)
{
    (void)state;
    static const char first[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char raw[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
                              "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
    http_request_t req;
    http_reject_t why;
    size_t off = 0;

    assert_int_equal(parse(RAW(raw), NULL, &req, &why), 0);
    assert_int_equal(req.head_len, sizeof(first) - 1);
    assert_true(str_eq(req.path, STR_LIT("/1")));
    off += req.head_len;
    assert_int_equal(parse(raw + off, sizeof(raw) - 1 - off, NULL, &req, &why), 0);
    assert_true(str_eq(req.path, STR_LIT("/2")));
    assert_int_equal(req.content_length, 2);
    off += req.head_len + 2;
    assert_int_equal(parse(raw + off, sizeof(raw) - 1 - off, NULL, &req, &why), 0);
    assert_true(str_eq(req.path, STR_LIT("/3")));
    assert_int_equal(off + req.head_len, sizeof(raw) - 1);
}

static void test_request_leaves_output_untouched_on_failure(void **state)
{
    (void)state;
    http_request_t req;
    memset(&req, 0xa5, sizeof(req));
    http_request_t copy = req;
    http_reject_t why;
    assert_int_equal(parse(RAW("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), NULL, &req, &why),
                     -EBADMSG);
    assert_memory_equal(&req, &copy, sizeof(req));
    assert_int_equal(parse(RAW("GET / HTTP/1.1\r\nHost: a\r\n"), NULL, &req, &why), -EAGAIN);
    assert_memory_equal(&req, &copy, sizeof(req));
    assert_int_equal(why, HTTP_REJECT_NONE);
    /* The reason is optional. */
    assert_int_equal(http_parse_request(&req, RAW("GET"), &lim_default, fields, CAP, NULL),
                     -EAGAIN);
}

/* Builds "GET /aaa...a HTTP/1.1\r\n" of exactly n bytes in buf. */
static size_t request_line_of(char *buf, size_t n)
{
    size_t fixed = strlen("GET / HTTP/1.1\r\n");
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', n - fixed);
    memcpy(buf + 5 + n - fixed, " HTTP/1.1\r\n", 11);
    return n;
}

static void test_request_line_limit_gives_414_even_when_incomplete(void **state)
{
    (void)state;
    static char buf[512];
    const http_limits_t lim = {.max_request_line = 100, .max_header_bytes = 400, .max_headers = 8};
    http_request_t req;
    http_reject_t why;
    size_t n = request_line_of(buf, 100);
    memcpy(buf + n, "Host: a\r\n\r\n", 11);
    assert_int_equal(parse(buf, n + 11, &lim, &req, &why), 0);

    n = request_line_of(buf, 101);
    memcpy(buf + n, "Host: a\r\n\r\n", 11);
    assert_int_equal(parse(buf, n + 11, &lim, &req, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_URI_TOO_LONG);
    assert_int_equal(http_reject_status(why), 414);
    /* 100 bytes of a line with no end yet: already too long. */
    assert_int_equal(parse(buf, 100, &lim, &req, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_URI_TOO_LONG);
    assert_int_equal(parse(buf, 99, &lim, &req, &why), -EAGAIN);
    /* A long method counts too. */
    memset(buf, 'G', 200);
    assert_int_equal(parse(buf, 200, &lim, &req, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_URI_TOO_LONG);
    /* Leading empty lines do not count against the request-line. */
    memcpy(buf, "\r\n\r\n", 4);
    n = request_line_of(buf + 4, 100);
    memcpy(buf + 4 + n, "Host: a\r\n\r\n", 11);
    assert_int_equal(parse(buf, 4 + n + 11, &lim, &req, &why), 0);
}

static void test_request_head_limit_gives_431_even_when_incomplete(void **state)
{
    (void)state;
    static char buf[1024];
    const http_limits_t lim = {.max_request_line = 100, .max_header_bytes = 200, .max_headers = 8};
    http_request_t req;
    http_reject_t why;
    size_t n = 0;

    n += (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'v', 200 - n - 4);
    n = 200 - 4;
    memcpy(buf + n, "\r\n\r\n", 4);
    assert_int_equal(parse(buf, 200, &lim, &req, &why), 0);
    assert_int_equal(req.head_len, 200);

    memmove(buf + n + 1, buf + n, 4);
    buf[n] = 'v';
    assert_int_equal(parse(buf, 201, &lim, &req, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_HEADERS_TOO_LARGE);
    assert_int_equal(http_reject_status(why), 431);
    assert_int_equal(parse(buf, 200, &lim, &req, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_HEADERS_TOO_LARGE);
    assert_int_equal(parse(buf, 199, &lim, &req, &why), -EAGAIN);

    /* When the head limit is below the line limit, the head limit answers. */
    const http_limits_t tight = {.max_request_line = 100, .max_header_bytes = 50, .max_headers = 8};
    memset(buf, 'a', 60);
    memcpy(buf, "GET /", 5);
    assert_int_equal(parse(buf, 60, &tight, &req, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_HEADERS_TOO_LARGE);
    /* An endless run of empty lines is bounded too. */
    for (size_t k = 0; k < 100; k += 2)
        memcpy(buf + k, "\r\n", 2);
    assert_int_equal(parse(buf, 100, &tight, &req, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_HEADERS_TOO_LARGE);
}

static void test_request_field_count_limit_gives_431(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    http_limits_t lim = {.max_request_line = 100, .max_header_bytes = 1000, .max_headers = 4};
    http_request_t req;
    http_reject_t why;
    assert_int_equal(parse(RAW(raw), &lim, &req, &why), 0);
    assert_int_equal(req.nfields, 4);
    lim.max_headers = 3;
    assert_int_equal(parse(RAW(raw), &lim, &req, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_TOO_MANY_HEADERS);
    /* Refused as soon as the extra line starts, before the head ends. */
    assert_int_equal(parse(raw, sizeof(raw) - 8, &lim, &req, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_TOO_MANY_HEADERS);
    /* The array capacity bounds the count even if the limit is larger. */
    lim.max_headers = 100;
    assert_int_equal(http_parse_request(&req, RAW(raw), &lim, fields, 2, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_TOO_MANY_HEADERS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table_gives_expected_result),
        cmocka_unit_test(test_request_prefixes_never_decide_differently),
        cmocka_unit_test(test_request_fills_method_target_fields),
        cmocka_unit_test(test_request_without_query_has_empty_query),
        cmocka_unit_test(test_request_absolute_form_uses_target_authority),
        cmocka_unit_test(test_request_options_asterisk_and_connect),
        cmocka_unit_test(test_request_keep_alive_follows_rfc9112_9_3),
        cmocka_unit_test(test_request_expect_continue_only_on_http11),
        cmocka_unit_test(test_request_upgrade_needs_connection_token),
        cmocka_unit_test(test_request_chunked_and_length_bodies),
        cmocka_unit_test(test_request_pipelined_head_len_stops_at_first_head),
        cmocka_unit_test(test_request_leaves_output_untouched_on_failure),
        cmocka_unit_test(test_request_line_limit_gives_414_even_when_incomplete),
        cmocka_unit_test(test_request_head_limit_gives_431_even_when_incomplete),
        cmocka_unit_test(test_request_field_count_limit_gives_431),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
