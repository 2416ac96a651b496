/* Unit tests of src/conf/units.c (the value syntaxes) and of the message
 * helpers of src/conf/diag.c: every parser with good values, bad syntax
 * and overflow, table-driven. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf_int.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    const char *in;
    int rc;
    uint64_t want;
} u64_case_t;

static void test_duration_parse_accepts_units_and_rejects_the_rest(void **state)
{
    static const u64_case_t cases[] = {
        {"0", 0, 0},
        {"250ms", 0, 250},
        {"2s", 0, 2000},
        {"5m", 0, 300000},
        {"1h", 0, 3600000},
        {"30d", 0, 2592000000ull},
        {"0s", 0, 0},
        {"007s", 0, 7000},
        {"18446744073709551615ms", 0, UINT64_MAX},
        {"18446744073709551616ms", -ERANGE, 0},
        {"18446744073709552s", -ERANGE, 0}, /* fits as a number, not in ms */
        {"213503982335d", -ERANGE, 0},
        {"", -EINVAL, 0},
        {"5", -EINVAL, 0}, /* a bare number is ambiguous */
        {"00", 0, 0},
        {"s", -EINVAL, 0},
        {"fast", -EINVAL, 0},
        {"2 s", -EINVAL, 0},
        {" 2s", -EINVAL, 0},
        {"2s ", -EINVAL, 0},
        {"1.5s", -EINVAL, 0},
        {"-1s", -EINVAL, 0},
        {"+1s", -EINVAL, 0},
        {"2S", -EINVAL, 0},
        {"2sec", -EINVAL, 0},
        {"1h30m", -EINVAL, 0},
        {"2us", -EINVAL, 0},
        {"10w", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        uint64_t v = 12345;
        int rc = conf_duration_parse(cases[i].in, strlen(cases[i].in), &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].want) || (rc != 0 && v != 12345))
            fail_msg("duration '%s': rc %d v %llu", cases[i].in, rc, (unsigned long long)v);
    }
}

static void test_duration_parse_reads_only_the_view(void **state)
{
    uint64_t v;
    (void)state;
    assert_int_equal(conf_duration_parse("2s5", 2, &v), 0);
    assert_int_equal(v, 2000);
    assert_int_equal(conf_duration_parse("250msX", 5, &v), 0);
    assert_int_equal(v, 250);
}

static void test_size_parse_accepts_suffixes_in_powers_of_1024(void **state)
{
    static const u64_case_t cases[] = {
        {"0", 0, 0},
        {"512", 0, 512},
        {"16k", 0, 16384},
        {"16K", 0, 16384},
        {"8m", 0, 8u << 20},
        {"8M", 0, 8u << 20},
        {"1g", 0, 1u << 30},
        {"1G", 0, 1u << 30},
        {"18446744073709551615", 0, UINT64_MAX},
        {"18446744073709551616", -ERANGE, 0},
        {"17179869184g", -ERANGE, 0}, /* 2^34 g = 2^64 */
        {"17179869183g", 0, 17179869183ull << 30},
        {"", -EINVAL, 0},
        {"k", -EINVAL, 0},
        {"16kb", -EINVAL, 0},
        {"16 k", -EINVAL, 0},
        {"1.5k", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"1t", -EINVAL, 0},
        {"big", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        uint64_t v = 12345;
        int rc = conf_size_parse(cases[i].in, strlen(cases[i].in), &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].want) || (rc != 0 && v != 12345))
            fail_msg("size '%s': rc %d v %llu", cases[i].in, rc, (unsigned long long)v);
    }
}

static void test_percent_parse_gives_parts_per_million(void **state)
{
    static const u64_case_t cases[] = {
        {"99.9%", 0, 999000},      {"100%", 0, 1000000},
        {"100.0%", 0, 1000000},    {"0%", 0, 0},
        {"50%", 0, 500000},        {"99.99%", 0, 999900},
        {"99.9999%", 0, 999999},   {"0.0001%", 0, 1},
        {"007.5%", 0, 75000},      {"100.0001%", -ERANGE, 0},
        {"101%", -ERANGE, 0},      {"99999999999999999999%", -ERANGE, 0},
        {"99.99999%", -EINVAL, 0}, /* finer than an objective needs */
        {"99.9", -EINVAL, 0},      {"%", -EINVAL, 0},
        {"", -EINVAL, 0},          {".5%", -EINVAL, 0},
        {"5.%", -EINVAL, 0},       {"5.x%", -EINVAL, 0},
        {"-5%", -EINVAL, 0},       {"5 %", -EINVAL, 0},
        {"5%%", -EINVAL, 0},       {"1e2%", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        uint32_t v = 12345;
        int rc = conf_percent_parse(cases[i].in, strlen(cases[i].in), &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].want) || (rc != 0 && v != 12345))
            fail_msg("percent '%s': rc %d v %u", cases[i].in, rc, v);
    }
}

static void test_rate_parse_gives_count_and_period(void **state)
{
    static const struct {
        const char *in;
        int rc;
        uint64_t count, per_ms;
    } cases[] = {
        {"100/s", 0, 100, 1000},
        {"6000/m", 0, 6000, 60000},
        {"10/h", 0, 10, 3600000},
        {"0/s", 0, 0, 1000},
        {"18446744073709551615/s", 0, UINT64_MAX, 1000},
        {"18446744073709551616/s", -ERANGE, 0, 0},
        {"100", -EINVAL, 0, 0},
        {"100/", -EINVAL, 0, 0},
        {"/s", -EINVAL, 0, 0},
        {"100/d", -EINVAL, 0, 0},
        {"100/sec", -EINVAL, 0, 0},
        {"100 /s", -EINVAL, 0, 0},
        {"1.5/s", -EINVAL, 0, 0},
        {"-1/s", -EINVAL, 0, 0},
        {"100/S", -EINVAL, 0, 0},
        {"", -EINVAL, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        conf_rate_t r = {7, 7};
        int rc = conf_rate_parse(cases[i].in, strlen(cases[i].in), &r);
        if (rc != cases[i].rc ||
            (rc == 0 && (r.count != cases[i].count || r.per_ms != cases[i].per_ms)) ||
            (rc != 0 && (r.count != 7 || r.per_ms != 7)))
            fail_msg("rate '%s': rc %d", cases[i].in, rc);
    }
}

static void test_int_parse_takes_signed_64_bit(void **state)
{
    static const struct {
        const char *in;
        int rc;
        int64_t want;
    } cases[] = {
        {"0", 0, 0},
        {"42", 0, 42},
        {"-1", 0, -1},
        {"0042", 0, 42},
        {"9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"9223372036854775808", -ERANGE, 0},
        {"-9223372036854775809", -ERANGE, 0},
        {"99999999999999999999999", -ERANGE, 0},
        {"", -EINVAL, 0},
        {"-", -EINVAL, 0},
        {"+1", -EINVAL, 0},
        {"1.0", -EINVAL, 0},
        {"0x10", -EINVAL, 0},
        {"1e3", -EINVAL, 0},
        {" 1", -EINVAL, 0},
        {"auto", -EINVAL, 0},
        {"--1", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        int64_t v = 12345;
        int rc = conf_int_parse(cases[i].in, strlen(cases[i].in), &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].want) || (rc != 0 && v != 12345))
            fail_msg("int '%s': rc %d v %lld", cases[i].in, rc, (long long)v);
    }
}

static void test_bool_parse_takes_yaml_1_2_booleans_only(void **state)
{
    static const struct {
        const char *in;
        int rc;
        bool want;
    } cases[] = {
        {"true", 0, true},   {"True", 0, true},    {"TRUE", 0, true},     {"false", 0, false},
        {"False", 0, false}, {"FALSE", 0, false},  {"yes", -EINVAL, 0},   {"no", -EINVAL, 0},
        {"on", -EINVAL, 0},  {"off", -EINVAL, 0},  {"1", -EINVAL, 0},     {"0", -EINVAL, 0},
        {"", -EINVAL, 0},    {"tRUE", -EINVAL, 0}, {"true ", -EINVAL, 0}, {"t", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        bool v = !cases[i].want;
        int rc = conf_bool_parse(cases[i].in, strlen(cases[i].in), &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].want))
            fail_msg("bool '%s': rc %d", cases[i].in, rc);
    }
}

static void test_edit_distance_counts_a_swap_as_one(void **state)
{
    static const struct {
        const char *a, *b;
        size_t want; /* with cap 3 */
    } cases[] = {
        {"timeouts", "timeouts", 0},
        {"timeout", "timeouts", 1},
        {"listners", "listeners", 1},
        {"wrokers", "workers", 1},
        {"pool", "pools", 1},
        {"", "abc", 3},
        {"abc", "", 3},
        {"kitten", "sitting", 3},
        {"abcdef", "uvwxyz", 4},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        size_t d =
            conf_edit_distance(cases[i].a, strlen(cases[i].a), cases[i].b, strlen(cases[i].b), 3);
        if (d != cases[i].want)
            fail_msg("distance '%s' '%s': %zu", cases[i].a, cases[i].b, d);
    }
}

static void test_suggest_finds_close_keys_only(void **state)
{
    static const char *const keys[] = {"listen", "timeouts", "limits", "routes"};
    (void)state;
    assert_string_equal(conf_suggest("timeout", 7, keys, 4), "timeouts");
    assert_string_equal(conf_suggest("rotues", 6, keys, 4), "routes");
    assert_string_equal(conf_suggest("limit", 5, keys, 4), "limits");
    assert_null(conf_suggest("tls", 3, keys, 4));
    assert_null(conf_suggest("foo", 3, keys, 4));
    assert_null(conf_suggest("", 0, keys, 4));
}

static void test_quote_escapes_control_bytes_and_truncates(void **state)
{
    char out[CONF_QUOTE_MAX];
    char longs[100];
    (void)state;

    conf_quote(out, sizeof(out), "fast", 4);
    assert_string_equal(out, "'fast'");
    conf_quote(out, sizeof(out), "a\0b\n", 4);
    assert_string_equal(out, "'a\\x00b\\x0a'");
    memset(longs, 'x', sizeof(longs));
    conf_quote(out, sizeof(out), longs, sizeof(longs));
    assert_int_equal(strlen(out), 1 + 60 + 3 + 1);
    assert_string_equal(out + 61, "...'");
    conf_quote(out, 8, "abcdefghijkl", 12); /* a tiny buffer still ends in a NUL */
    assert_true(strlen(out) < 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse_accepts_units_and_rejects_the_rest),
        cmocka_unit_test(test_duration_parse_reads_only_the_view),
        cmocka_unit_test(test_size_parse_accepts_suffixes_in_powers_of_1024),
        cmocka_unit_test(test_percent_parse_gives_parts_per_million),
        cmocka_unit_test(test_rate_parse_gives_count_and_period),
        cmocka_unit_test(test_int_parse_takes_signed_64_bit),
        cmocka_unit_test(test_bool_parse_takes_yaml_1_2_booleans_only),
        cmocka_unit_test(test_edit_distance_counts_a_swap_as_one),
        cmocka_unit_test(test_suggest_finds_close_keys_only),
        cmocka_unit_test(test_quote_escapes_control_bytes_and_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
