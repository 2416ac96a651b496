/* Unit tests of the chunked body scanner (src/http/chunked.c): a table of
 * bodies that end, continue or are refused, each fed whole, split at every
 * point into two reads, and one byte at a time, which must all give the
 * same answer (the scanner is resumable at any byte). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"

#define RAW(s) s, sizeof(s) - 1
#define MAX_LINE 64
#define MAX_TRAILER 64

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    int rc;
    http_reject_t reason;
    size_t used;    /* with rc 0 */
    uint64_t total; /* data_total at the end (rc 0 or -EAGAIN) */
} chunk_case_t;

/* Brace initialisers in macros: clang-format 14 would spread each over four lines. */
/* clang-format off */
#define OK(name, s, used, total) {name, RAW(s), 0, HTTP_REJECT_NONE, used, total}
#define END(name, s, total) {name, RAW(s), 0, HTTP_REJECT_NONE, sizeof(s) - 1, total}
#define MORE(name, s, total) {name, RAW(s), -EAGAIN, HTTP_REJECT_NONE, 0, total}
#define BAD(name, s, r) {name, RAW(s), -EBADMSG, HTTP_REJECT_##r, 0, 0}
#define LONG_EXT "5;" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LONG_TRAILER "0\r\nX: " "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
/* clang-format on */

static const chunk_case_t cases[] = {
    END("last chunk only", "0\r\n\r\n", 0),
    END("one chunk", "5\r\nhello\r\n0\r\n\r\n", 5),
    END("two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 11),
    OK("next message follows", "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 15, 5),
    END("hex upper", "A\r\n0123456789\r\n0\r\n\r\n", 10),
    END("hex lower", "a\r\n0123456789\r\n0\r\n\r\n", 10),
    END("crlf inside data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", 4),
    END("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", 5),
    END("sixteen digits", "0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n", 5),
    END("ext name", "5;a\r\nhello\r\n0\r\n\r\n", 5),
    END("ext token", "5;a=b\r\nhello\r\n0;last=1\r\n\r\n", 5),
    END("ext bws", "5 ; a = b ;c\t;d=e\r\nhello\r\n0\r\n\r\n", 5),
    END("ext quoted", "5;a=\"q\\\"x;y \"\r\nhello\r\n0\r\n\r\n", 5),
    END("ext quoted empty", "5;a=\"\";b=\"\\\\\"\r\nhello\r\n0\r\n\r\n", 5),
    END("ext quoted obs-text", "5;a=\"caf\xc3\xa9\"\r\nhello\r\n0\r\n\r\n", 5),
    END("trailers", "0\r\nX-Sum: 1\r\nY:\r\nZ: a\tb \r\n\r\n", 0),
    END("trailer after data", "3\r\nabc\r\n0\r\nChecksum: abc\r\n\r\n", 3),

    MORE("nothing", "", 0),
    MORE("size only", "5", 0),
    MORE("in data", "5\r\nhel", 3),
    MORE("after data", "5\r\nhello", 5),
    MORE("after data cr", "5\r\nhello\r", 5),
    MORE("in final line", "0\r\n\r", 0),
    MORE("in trailer", "0\r\nX: 1\r\n", 0),
    MORE("largest size", "7fffffffffffffff\r\nabc", 3),

    BAD("empty size", "\r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("non hex", "x\r\n", BAD_CHUNK_SIZE),
    BAD("non hex after digit", "5g\r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("minus", "-5\r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("plus", "+5\r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("0x prefix", "0x5\r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("leading space", " 5\r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("leading tab", "\t5\r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("trailing space", "5 \r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("inner space", "5 5\r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("seventeen digits", "00000000000000005\r\nhello\r\n", BAD_CHUNK_SIZE),
    BAD("2^63", "8000000000000000\r\n", BAD_CHUNK_SIZE),
    BAD("2^64-1", "ffffffffffffffff\r\n", BAD_CHUNK_SIZE),
    BAD("2^64", "10000000000000000\r\n", BAD_CHUNK_SIZE),
    BAD("ext empty name", "5;\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext empty name eq", "5;=b\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext empty value", "5;a=\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext ctl in name", "5;a\x01\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext nul in name", "5;a\0\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext ctl in value", "5;a=b\x7f\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext cr in quoted", "5;a=\"x\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext lf in quoted", "5;a=\"x\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext ctl in quoted", "5;a=\"x\x01\"\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext ctl in quoted pair", "5;a=\"\\\x01\"\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext cr after equals", "5;a=\rhello\r\n", BAD_CHUNK_EXT),
    BAD("ext space in token", "5;a=b c\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext trailing space after name", "5;a \r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext trailing space after value", "5;a=b \r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext junk after quoted", "5;a=\"x\"y\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext separator name", "5;a(b\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("ext line too long", LONG_EXT "\r\nhello\r\n", BAD_CHUNK_EXT),
    BAD("bare lf after size", "5\nhello\r\n0\r\n\r\n", BARE_LF),
    BAD("bare lf after ext", "5;a=b\nhello\r\n", BARE_LF),
    BAD("bare lf after ext name", "5;a\nhello\r\n", BARE_LF),
    BAD("bare cr after size", "5\rhello\r\n", BARE_CR),
    BAD("bare cr after ext", "5;a\rhello\r\n", BARE_CR),
    BAD("data too long", "3\r\nhello\r\n0\r\n\r\n", BAD_CHUNK_DATA),
    BAD("data lf only", "5\r\nhello\n0\r\n\r\n", BAD_CHUNK_DATA),
    BAD("data cr only", "5\r\nhello\r0\r\n\r\n", BAD_CHUNK_DATA),
    BAD("no crlf after last", "0\r\n0\r\n\r\n", BAD_TRAILER),
    BAD("trailer space before colon", "0\r\nX : 1\r\n\r\n", BAD_TRAILER),
    BAD("trailer obs fold", "0\r\nX: 1\r\n 2\r\n\r\n", BAD_TRAILER),
    BAD("trailer leading space", "0\r\n X: 1\r\n\r\n", BAD_TRAILER),
    BAD("trailer no colon", "0\r\nX\r\n\r\n", BAD_TRAILER),
    BAD("trailer empty name", "0\r\n: v\r\n\r\n", BAD_TRAILER),
    BAD("trailer ctl", "0\r\nX: a\x01\r\n\r\n", BAD_TRAILER),
    BAD("trailer nul", "0\r\nX: a\0\r\n\r\n", BAD_TRAILER),
    BAD("trailer too large", LONG_TRAILER "\r\n\r\n", BAD_TRAILER),
    BAD("trailer bare lf", "0\r\nX: 1\n\r\n", BARE_LF),
    BAD("final bare lf", "0\r\n\n", BARE_LF),
    BAD("trailer bare cr", "0\r\nX: 1\rY: 2\r\n\r\n", BARE_CR),
    BAD("final bare cr", "0\r\n\rX", BARE_CR),
};

typedef struct {
    int rc;
    http_reject_t reason;
    size_t used;
    uint64_t total;
} outcome_t;

/* Feeds raw to a fresh scanner in pieces ending at the given cut points. */
static outcome_t scan_pieces(const char *raw, size_t len, const size_t *cuts, size_t ncuts)
{
    http_chunked_t c;
    outcome_t o = {-EAGAIN, HTTP_REJECT_NONE, 0, 0};
    size_t off = 0;
    http_chunked_init(&c, MAX_LINE, MAX_TRAILER);
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len, used = SIZE_MAX;
        o.rc = http_chunked_scan(&c, raw + off, end - off, &used, &o.reason);
        if (o.rc == -EAGAIN)
            assert_int_equal(used, end - off);
        if (o.rc != -EAGAIN) {
            o.used = o.rc == 0 ? off + used : 0;
            break;
        }
        off = end;
    }
    o.total = c.data_total;
    return o;
}

static void expect_outcome(const chunk_case_t *c, outcome_t o, const char *how, size_t at)
{
    bool ok = o.rc == c->rc && (o.rc != -EBADMSG || o.reason == c->reason) &&
              (o.rc != 0 || o.used == c->used) && (o.rc == -EBADMSG || o.total == c->total);
    if (!ok)
        fail_msg("case '%s' (%s %zu): rc %d reason %s used %zu total %llu", c->name, how, at, o.rc,
                 http_reject_name(o.reason), o.used, (unsigned long long)o.total);
}

static void test_chunked_table_whole_body(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        expect_outcome(&cases[k], scan_pieces(cases[k].raw, cases[k].len, NULL, 0), "whole", 0);
}

static void test_chunked_every_split_point_gives_same_result(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const chunk_case_t *c = &cases[k];
        for (size_t cut = 0; cut <= c->len; cut++)
            expect_outcome(c, scan_pieces(c->raw, c->len, &cut, 1), "split at", cut);
        for (size_t a = 0; a <= c->len; a++)
            for (size_t b = a; b <= c->len; b++) {
                size_t cuts[2] = {a, b};
                expect_outcome(c, scan_pieces(c->raw, c->len, cuts, 2), "three pieces", a);
            }
    }
}

static void test_chunked_byte_at_a_time_gives_same_result(void **state)
{
    (void)state;
    size_t cuts[256];
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const chunk_case_t *c = &cases[k];
        assert_true(c->len < 256);
        for (size_t i = 0; i < c->len; i++)
            cuts[i] = i + 1;
        expect_outcome(c, scan_pieces(c->raw, c->len, cuts, c->len), "bytewise", 0);
    }
}

static void test_chunked_failure_and_end_are_sticky(void **state)
{
    (void)state;
    http_chunked_t c;
    http_reject_t why = HTTP_REJECT_NONE;
    size_t used = 99;

    http_chunked_init(&c, MAX_LINE, MAX_TRAILER);
    assert_int_equal(http_chunked_scan(&c, RAW("zz"), &used, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_BAD_CHUNK_SIZE);
    assert_int_equal(used, 99); /* untouched on failure */
    why = HTTP_REJECT_NONE;
    assert_int_equal(http_chunked_scan(&c, RAW("0\r\n\r\n"), &used, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_BAD_CHUNK_SIZE);

    http_chunked_init(&c, MAX_LINE, MAX_TRAILER);
    assert_int_equal(http_chunked_scan(&c, RAW("0\r\n\r\nrest"), &used, &why), 0);
    assert_int_equal(used, 5);
    assert_int_equal(http_chunked_scan(&c, RAW("rest"), &used, &why), 0);
    assert_int_equal(used, 0);
}

static void test_chunked_large_chunk_is_skipped_in_one_step(void **state)
{
    (void)state;
    static char data[1 << 16];
    http_chunked_t c;
    http_reject_t why;
    size_t used;

    memset(data, 'd', sizeof(data));
    http_chunked_init(&c, MAX_LINE, 0);
    assert_int_equal(http_chunked_scan(&c, RAW("20000;x=y\r\n"), &used, &why), -EAGAIN);
    assert_int_equal(c.remaining, 0x20000);
    assert_int_equal(http_chunked_scan(&c, data, sizeof(data), &used, &why), -EAGAIN);
    assert_int_equal(c.data_total, sizeof(data));
    assert_int_equal(http_chunked_scan(&c, data, sizeof(data), &used, &why), -EAGAIN);
    assert_int_equal(c.data_total, 0x20000);
    assert_int_equal(http_chunked_scan(&c, RAW("\r\n0\r\n\r\n"), &used, &why), 0);
    assert_int_equal(used, 7);
    /* max_trailer 0: no trailer field at all. */
    http_chunked_init(&c, MAX_LINE, 0);
    assert_int_equal(http_chunked_scan(&c, RAW("0\r\nX: 1\r\n\r\n"), &used, &why), -EBADMSG);
    assert_int_equal(why, HTTP_REJECT_BAD_TRAILER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_table_whole_body),
        cmocka_unit_test(test_chunked_every_split_point_gives_same_result),
        cmocka_unit_test(test_chunked_byte_at_a_time_gives_same_result),
        cmocka_unit_test(test_chunked_failure_and_end_are_sticky),
        cmocka_unit_test(test_chunked_large_chunk_is_skipped_in_one_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
