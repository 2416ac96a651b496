/* Unit tests for src/core/str.c: the string views every parser and the
 * configuration loader build on. Table-driven where the cases are many. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/str.h"

static void test_str_eq_compares_bytes_and_length(void **state)
{
    (void)state;
    assert_true(str_eq(STR_LIT("abc"), str_cstr("abc")));
    assert_false(str_eq(STR_LIT("abc"), STR_LIT("abd")));
    assert_false(str_eq(STR_LIT("abc"), STR_LIT("ab")));
    assert_true(str_eq(STR_NULL, STR_LIT("")));
    assert_true(str_eq(str_cstr(NULL), STR_NULL));
    /* Views into the middle of a buffer: no NUL needed. */
    const char buf[] = {'x', 'a', 'b', 'y'};
    assert_true(str_eq(str_from(buf + 1, 2), STR_LIT("ab")));
}

static void test_str_case_eq_folds_ascii_only(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        bool eq;
    } cases[] = {
        {"Content-Length", "content-length", true},
        {"HOST", "host", true},
        {"", "", true},
        {"a", "", false},
        {"abc", "abd", false},
        {"[", "{", false},       /* 0x5b vs 0x7b: not letters, must not fold */
        {"@", "`", false},       /* 0x40 vs 0x60 */
        {"\xc4", "\xe4", false}, /* Latin-1 letters are not ASCII */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(str_case_eq(str_cstr(cases[i].a), str_cstr(cases[i].b)), cases[i].eq);
}

static void test_str_prefix_and_suffix(void **state)
{
    (void)state;
    assert_true(str_has_prefix(STR_LIT("/api/v1/x"), STR_LIT("/api/")));
    assert_true(str_has_prefix(STR_LIT("/api"), STR_LIT("")));
    assert_true(str_has_prefix(STR_NULL, STR_NULL)); /* UBSan: no memcmp on NULL */
    assert_false(str_has_prefix(STR_NULL, STR_LIT("/")));
    assert_false(str_has_prefix(STR_LIT("/ap"), STR_LIT("/api")));
    assert_false(str_has_prefix(STR_LIT("/API/"), STR_LIT("/api/"))); /* case-sensitive */
    assert_true(str_case_has_suffix(STR_LIT("gzip, CHUNKED"), STR_LIT("chunked")));
    assert_true(str_case_has_suffix(STR_LIT("x"), STR_LIT("")));
    assert_false(str_case_has_suffix(STR_LIT("ed"), STR_LIT("chunked")));
    assert_true(str_case_has_suffix(STR_NULL, STR_NULL));
    assert_true(str_case_eq(STR_NULL, STR_LIT("")));
    assert_true(str_eq(str_trim_ows(STR_NULL), STR_NULL));
}

static void test_str_trim_ows_removes_space_and_tab_only(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"  a b \t", "a b"}, {"\t\t", ""}, {"", ""}, {"x", "x"}, {"\r x \n", "\r x \n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_true(str_eq(str_trim_ows(str_cstr(cases[i].in)), str_cstr(cases[i].out)));
}

static void test_str_next_token_splits_lists_keeping_empty_elements(void **state)
{
    (void)state;
    str_t rest = STR_LIT(" gzip , ,chunked,");
    const char *want[] = {"gzip", "", "chunked", ""};
    for (size_t i = 0; i < 4; i++) {
        str_t tok = str_next_token(&rest, ',');
        assert_true(str_eq(tok, str_cstr(want[i])));
    }
    assert_int_equal(rest.len, 0);
    /* An exhausted list keeps returning empty elements. */
    assert_int_equal(str_next_token(&rest, ',').len, 0);

    rest = STR_LIT("one");
    assert_true(str_eq(str_next_token(&rest, ','), STR_LIT("one")));
    assert_int_equal(rest.len, 0);
}

static void test_str_to_u64_parses_digits_within_max(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        unsigned long long max;
        int ret;
        unsigned long long v;
    } cases[] = {
        {"0", 10, 0, 0},
        {"10", 10, 0, 10},
        {"11", 10, -ERANGE, 0},
        {"007", 10, 0, 7},
        {"7", 5, -ERANGE, 0}, /* one digit above a max below 10 */
        {"5", 5, 0, 5},
        {"1", 0, -ERANGE, 0},
        {"0", 0, 0, 0},
        {"18446744073709551615", ULLONG_MAX, 0, ULLONG_MAX},
        {"18446744073709551616", ULLONG_MAX, -ERANGE, 0},
        {"99999999999999999999", ULLONG_MAX, -ERANGE, 0},
        {"", 10, -EINVAL, 0},
        {"+1", 10, -EINVAL, 0},
        {"-1", 10, -EINVAL, 0},
        {"1 ", 10, -EINVAL, 0},
        {"0x1", 10, -EINVAL, 0},
        {"1a", 100, -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned long long v = 12345;
        int r = str_to_u64(str_cstr(cases[i].in), cases[i].max, &v);
        assert_int_equal(r, cases[i].ret);
        if (r == 0)
            assert_int_equal(v, cases[i].v);
        else
            assert_int_equal(v, 12345); /* untouched on failure */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_eq_compares_bytes_and_length),
        cmocka_unit_test(test_str_case_eq_folds_ascii_only),
        cmocka_unit_test(test_str_prefix_and_suffix),
        cmocka_unit_test(test_str_trim_ows_removes_space_and_tab_only),
        cmocka_unit_test(test_str_next_token_splits_lists_keeping_empty_elements),
        cmocka_unit_test(test_str_to_u64_parses_digits_within_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
