/* Unit tests of src/http/fields.c and the shared tables: reject reason names
 * and status codes, reason phrases, the hop-by-hop test, field lookup, and
 * (through the internal header) the character classes and authority
 * validation both parsers rely on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"
#include "http/parse_common.h"

static void test_reject_names_are_unique_metric_labels(void **state)
{
    (void)state;
    for (int r = 0; r < HTTP_REJECT_COUNT; r++) {
        const char *n = http_reject_name((http_reject_t)r);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        for (const char *c = n; *c; c++)
            assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_');
        for (int o = 0; o < r; o++)
            assert_string_not_equal(n, http_reject_name((http_reject_t)o));
    }
    assert_string_equal(http_reject_name(HTTP_REJECT_NONE), "none");
    assert_string_equal(http_reject_name(HTTP_REJECT_BAD_CHUNK_SIZE), "bad_chunk_size");
    assert_string_equal(http_reject_name(HTTP_REJECT_CL_AND_TE),
                        "content_length_and_transfer_encoding");
    assert_string_equal(http_reject_name(HTTP_REJECT_COUNT), "unknown");
}

static void test_reject_status_codes_match_the_list(void **state)
{
    (void)state;
    static const struct {
        http_reject_t r;
        int status;
    } t[] = {
        {HTTP_REJECT_NONE, 0},
        {HTTP_REJECT_BAD_REQUEST_LINE, 400},
        {HTTP_REJECT_URI_TOO_LONG, 414},
        {HTTP_REJECT_UNSUPPORTED_VERSION, 505},
        {HTTP_REJECT_BAD_STATUS_LINE, 502},
        {HTTP_REJECT_TOO_MANY_HEADERS, 431},
        {HTTP_REJECT_HEADERS_TOO_LARGE, 431},
        {HTTP_REJECT_CL_AND_TE, 400},
        {HTTP_REJECT_UNSUPPORTED_TRANSFER_CODING, 501},
        {HTTP_REJECT_BODY_TOO_LARGE, 413},
    };
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++)
        assert_int_equal(http_reject_status(t[k].r), t[k].status);
    for (int r = 1; r < HTTP_REJECT_COUNT; r++) {
        int s = http_reject_status((http_reject_t)r);
        assert_true(s >= 400 && s <= 599);
        /* Every status a reason maps to has a phrase for the error page. */
        assert_string_not_equal(http_status_text(s), "Unknown");
    }
    assert_int_equal(http_reject_status(HTTP_REJECT_COUNT), 400);
}

static void test_status_text_knows_standard_codes(void **state)
{
    (void)state;
    assert_string_equal(http_status_text(200), "OK");
    assert_string_equal(http_status_text(404), "Not Found");
    assert_string_equal(http_status_text(413), "Content Too Large");
    assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_text(502), "Bad Gateway");
    assert_string_equal(http_status_text(505), "HTTP Version Not Supported");
    assert_string_equal(http_status_text(299), "Unknown");
    assert_string_equal(http_status_text(0), "Unknown");
    assert_string_equal(http_status_text(-1), "Unknown");
    assert_string_equal(http_status_text(600), "Unknown");
    assert_string_equal(http_status_text(99999), "Unknown");
}

static void test_hop_by_hop_fields_are_not_forwarded(void **state)
{
    (void)state;
    static const char *const hop[] = {
        "Connection",
        "connection",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "te",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Authenticate",
        "Proxy-Authorization",
    };
    static const char *const end[] = {
        "Host",         "Content-Length", "Trailers", "Tee", "Upgrade-Insecure-Requests",
        "X-Connection", "Authorization",  "",
    };
    for (size_t k = 0; k < sizeof(hop) / sizeof(hop[0]); k++)
        if (!http_field_is_hop_by_hop(str_cstr(hop[k]), STR_NULL))
            fail_msg("%s should be hop-by-hop", hop[k]);
    for (size_t k = 0; k < sizeof(end) / sizeof(end[0]); k++)
        if (http_field_is_hop_by_hop(str_cstr(end[k]), STR_NULL))
            fail_msg("%s should be end-to-end", end[k]);

    str_t conn = STR_LIT("keep-alive, X-Private ,,x-secret");
    assert_true(http_field_is_hop_by_hop(STR_LIT("X-Private"), conn));
    assert_true(http_field_is_hop_by_hop(STR_LIT("x-private"), conn));
    assert_true(http_field_is_hop_by_hop(STR_LIT("X-Secret"), conn));
    assert_false(http_field_is_hop_by_hop(STR_LIT("X-Priv"), conn));
    assert_false(http_field_is_hop_by_hop(STR_LIT("Host"), conn));
    assert_false(http_field_is_hop_by_hop(STR_LIT(""), conn));
}

static void test_field_find_is_case_insensitive_and_first(void **state)
{
    (void)state;
    const http_field_t f[] = {
        {STR_LIT("Host"), STR_LIT("a")},
        {STR_LIT("X-Id"), STR_LIT("1")},
        {STR_LIT("x-id"), STR_LIT("2")},
    };
    const http_field_t *got = http_field_find(f, 3, STR_LIT("X-ID"));
    assert_ptr_equal(got, &f[1]);
    assert_ptr_equal(http_field_find(f, 3, STR_LIT("host")), &f[0]);
    assert_null(http_field_find(f, 3, STR_LIT("Hos")));
    assert_null(http_field_find(f, 0, STR_LIT("Host")));
    assert_null(http_field_find(NULL, 0, STR_LIT("Host")));
}

static void test_character_classes_follow_the_rfc(void **state)
{
    (void)state;
    static const char tchar[] = "!#$%&'*+-.^_`|~09azAZ";
    for (const char *c = tchar; *c; c++)
        assert_true(http_is((unsigned char)*c, HTTP_C_TCHAR));
    static const char sep[] = "\"(),/:;<=>?@[\\]{} \t\x7f";
    for (const char *c = sep; *c; c++)
        assert_false(http_is((unsigned char)*c, HTTP_C_TCHAR));
    for (int b = 0; b < 256; b++) {
        bool value = b == '\t' || (b >= 0x20 && b != 0x7f);
        assert_int_equal(http_is((unsigned char)b, HTTP_C_VALUE), value);
        bool target = b > 0x20 && b != 0x7f && b != '#';
        assert_int_equal(http_is((unsigned char)b, HTTP_C_TARGET), target);
        if (b >= 0x80 || b < 0x21)
            assert_false(http_is((unsigned char)b, HTTP_C_TCHAR));
    }
}

static void test_value_skip_stops_at_first_ctl_past_word_boundaries(void **state)
{
    (void)state;
    unsigned char buf[40];
    for (size_t pos = 0; pos < sizeof(buf); pos++) {
        memset(buf, 'v', sizeof(buf));
        buf[3] = '\t';
        buf[17] = 0x80;
        if (pos != 3 && pos != 17) {
            buf[pos] = '\r';
            assert_int_equal(http_skip_value(buf, 0, sizeof(buf)), pos);
        }
        buf[pos] = 0x7f;
        if (pos != 3 && pos != 17)
            assert_int_equal(http_skip_value(buf, 0, sizeof(buf)), pos);
        buf[pos] = '#';
        assert_int_equal(http_skip_target(buf, 0, sizeof(buf)), pos < 3 ? pos : 3);
    }
    memset(buf, 'v', sizeof(buf));
    assert_int_equal(http_skip_value(buf, 5, sizeof(buf)), sizeof(buf));
    assert_int_equal(http_skip_target(buf, 5, sizeof(buf)), sizeof(buf));
}

static void test_authority_validation(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool allow_empty, require_port, valid;
    } t[] = {
        {"example.com", false, false, true},
        {"example.com:80", false, false, true},
        {"example.com:", false, false, true},
        {"example.com:", false, true, false},
        {"example.com", false, true, false},
        {"example.com:65535", false, true, true},
        {"example.com:655350", false, false, false},
        {"127.0.0.1:8080", false, true, true},
        {"[::1]", false, false, true},
        {"[::ffff:1.2.3.4]:443", false, true, true},
        {"[]", false, false, false},
        {"[::1", false, false, false},
        {"[::1]x", false, false, false},
        {"[fe80::1%25eth0]", false, false, false},
        {"", true, false, true},
        {"", false, false, false},
        {"", true, true, false},
        {":80", true, false, false},
        {"a b", false, false, false},
        {"a/b", false, false, false},
        {"u@a", false, false, false},
        {"a:b:c", false, false, false},
        {"xn--bcher-kva.example", false, false, true},
        {"under_score.example", false, false, true},
    };
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++)
        if (http_authority_valid(str_cstr(t[k].s), t[k].allow_empty, t[k].require_port) !=
            t[k].valid)
            fail_msg("authority '%s' (empty %d port %d): want %d", t[k].s, t[k].allow_empty,
                     t[k].require_port, t[k].valid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_names_are_unique_metric_labels),
        cmocka_unit_test(test_reject_status_codes_match_the_list),
        cmocka_unit_test(test_status_text_knows_standard_codes),
        cmocka_unit_test(test_hop_by_hop_fields_are_not_forwarded),
        cmocka_unit_test(test_field_find_is_case_insensitive_and_first),
        cmocka_unit_test(test_character_classes_follow_the_rfc),
        cmocka_unit_test(test_value_skip_stops_at_first_ctl_past_word_boundaries),
        cmocka_unit_test(test_authority_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
