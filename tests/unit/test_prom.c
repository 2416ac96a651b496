/* Unit tests for src/metrics/prom.c: exact exposition text for counters,
 * gauges and histograms, escaping, number formatting, the bounded buffer and
 * its sticky error, and a realistic page checked by `promtool check metrics`
 * (the DESIGN contract for every metric Surety exports). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics/prom.h"

static void assert_output(const prom_t *p, const char *want)
{
    str_t got = prom_str(p);
    if (got.len != strlen(want) || memcmp(got.p, want, got.len) != 0)
        fail_msg("output differs.\n--- got:\n%.*s--- want:\n%s", STR_FMT(got), want);
}

static void test_prom_counter_family_with_and_without_labels(void **state)
{
    (void)state;
    prom_t *p = prom_new(4096);
    assert_non_null(p);
    assert_int_equal(prom_family(p, "surety_requests_total", PROM_COUNTER, "Requests answered."),
                     0);
    assert_int_equal(prom_counter(p, "surety_requests_total",
                                  PROM_LABELS({"listener", "web"}, {"code", "200"}), 42),
                     0);
    assert_int_equal(prom_counter(p, "surety_requests_total", NULL, 0, UINT64_MAX), 0);
    assert_int_equal(prom_family(p, "surety_up", PROM_GAUGE, "1 when running."), 0);
    assert_int_equal(prom_gauge(p, "surety_up", NULL, 0, 1), 0);
    assert_int_equal(prom_family(p, "surety_busy_seconds_total", PROM_COUNTER, "Busy time."), 0);
    assert_int_equal(prom_counter_double(p, "surety_busy_seconds_total", NULL, 0, 0.25), 0);
    assert_int_equal(prom_family(p, "surety_connections", PROM_GAUGE, "Open connections."), 0);
    assert_int_equal(prom_gauge_u64(p, "surety_connections", PROM_LABELS({"w", "0"}), 7), 0);
    assert_int_equal(prom_error(p), 0);
    assert_output(p, "# HELP surety_requests_total Requests answered.\n"
                     "# TYPE surety_requests_total counter\n"
                     "surety_requests_total{listener=\"web\",code=\"200\"} 42\n"
                     "surety_requests_total 18446744073709551615\n"
                     "# HELP surety_up 1 when running.\n"
                     "# TYPE surety_up gauge\n"
                     "surety_up 1\n"
                     "# HELP surety_busy_seconds_total Busy time.\n"
                     "# TYPE surety_busy_seconds_total counter\n"
                     "surety_busy_seconds_total 0.25\n"
                     "# HELP surety_connections Open connections.\n"
                     "# TYPE surety_connections gauge\n"
                     "surety_connections{w=\"0\"} 7\n");
    prom_free(p);
}

static void test_prom_escapes_label_values_and_help(void **state)
{
    (void)state;
    prom_t *p = prom_new(4096);
    assert_int_equal(prom_family(p, "x", PROM_GAUGE, "a \"quoted\" back\\slash\nnext line"), 0);
    assert_int_equal(prom_gauge(p, "x", PROM_LABELS({"v", "a\\b\"c\nd"}, {"e", ""}), -2), 0);
    assert_int_equal(prom_gauge(p, "x", PROM_LABELS({"v", "\xc3\xa9t\xc3\xa9"}), 3), 0);
    /* HELP escapes only backslash and newline; label values also the quote. */
    assert_output(p, "# HELP x a \"quoted\" back\\\\slash\\nnext line\n"
                     "# TYPE x gauge\n"
                     "x{v=\"a\\\\b\\\"c\\nd\",e=\"\"} -2\n"
                     "x{v=\"\xc3\xa9t\xc3\xa9\"} 3\n");
    prom_free(p);
}

static void test_prom_formats_doubles_as_prometheus_parses_them(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {-3, "-3"},
        {1e6, "1000000"},
        {123456789012345, "123456789012345"},
        {1e15, "1e+15"},
        {0.1, "0.1"},
        {0.25, "0.25"},
        {-0.005, "-0.005"},
        {2.5e-7, "2.5e-07"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5e-324, "5e-324"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    char out[PROM_DOUBLE_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = prom_format_double(cases[i].v, out);
        assert_int_equal(n, strlen(out));
        assert_string_equal(out, cases[i].text);
    }
    /* Any finite value reads back exactly. */
    srand(7);
    for (int i = 0; i < 10000; i++) {
        uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (!isfinite(v))
            continue;
        prom_format_double(v, out);
        assert_true(strtod(out, NULL) == v);
    }
}

static void test_prom_histogram_accumulates_buckets(void **state)
{
    (void)state;
    prom_t *p = prom_new(4096);
    static const double bounds[] = {0.005, 0.1, 1};
    static const uint64_t counts[] = {1, 2, 3};
    assert_int_equal(
        prom_family(p, "surety_request_duration_seconds", PROM_HISTOGRAM, "Request latency."), 0);
    assert_int_equal(prom_histogram(p, "surety_request_duration_seconds",
                                    PROM_LABELS({"route", "a"}), bounds, counts, 3, 2.5, 10),
                     0);
    /* No labels; count below the buckets' total (a racy snapshot) is raised. */
    assert_int_equal(
        prom_histogram(p, "surety_request_duration_seconds", NULL, 0, bounds, counts, 3, 0.75, 4),
        0);
    assert_output(p, "# HELP surety_request_duration_seconds Request latency.\n"
                     "# TYPE surety_request_duration_seconds histogram\n"
                     "surety_request_duration_seconds_bucket{route=\"a\",le=\"0.005\"} 1\n"
                     "surety_request_duration_seconds_bucket{route=\"a\",le=\"0.1\"} 3\n"
                     "surety_request_duration_seconds_bucket{route=\"a\",le=\"1\"} 6\n"
                     "surety_request_duration_seconds_bucket{route=\"a\",le=\"+Inf\"} 10\n"
                     "surety_request_duration_seconds_sum{route=\"a\"} 2.5\n"
                     "surety_request_duration_seconds_count{route=\"a\"} 10\n"
                     "surety_request_duration_seconds_bucket{le=\"0.005\"} 1\n"
                     "surety_request_duration_seconds_bucket{le=\"0.1\"} 3\n"
                     "surety_request_duration_seconds_bucket{le=\"1\"} 6\n"
                     "surety_request_duration_seconds_bucket{le=\"+Inf\"} 6\n"
                     "surety_request_duration_seconds_sum 0.75\n"
                     "surety_request_duration_seconds_count 6\n");
    prom_free(p);
}

static void test_prom_histogram_with_inf_bound_and_no_bounds(void **state)
{
    (void)state;
    prom_t *p = prom_new(4096);
    const double bounds[] = {1, INFINITY};
    const uint64_t counts[] = {2, 5};
    assert_int_equal(prom_family(p, "h", PROM_HISTOGRAM, "H."), 0);
    assert_int_equal(prom_histogram(p, "h", NULL, 0, bounds, counts, 2, 10, 7), 0);
    assert_int_equal(prom_histogram(p, "h", PROM_LABELS({"k", "v"}), NULL, NULL, 0, 0, 0), 0);
    assert_output(p, "# HELP h H.\n"
                     "# TYPE h histogram\n"
                     "h_bucket{le=\"1\"} 2\n"
                     "h_bucket{le=\"+Inf\"} 7\n"
                     "h_sum 10\n"
                     "h_count 7\n"
                     "h_bucket{k=\"v\",le=\"+Inf\"} 0\n"
                     "h_sum{k=\"v\"} 0\n"
                     "h_count{k=\"v\"} 0\n");
    prom_free(p);
}

static void test_prom_family_twice_is_noop_but_reopening_is_an_error(void **state)
{
    (void)state;
    prom_t *p = prom_new(4096);
    assert_int_equal(prom_family(p, "a_total", PROM_COUNTER, "A."), 0);
    assert_int_equal(prom_counter(p, "a_total", NULL, 0, 1), 0);
    assert_int_equal(prom_family(p, "a_total", PROM_COUNTER, "A."), 0);
    assert_int_equal(prom_counter(p, "a_total", PROM_LABELS({"x", "y"}), 2), 0);
    assert_output(p, "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total{x=\"y\"} 2\n");
    assert_int_equal(prom_family(p, "b", PROM_GAUGE, "B."), 0);
    assert_int_equal(prom_family(p, "a_total", PROM_COUNTER, "A."), -EEXIST);
    assert_int_equal(prom_error(p), -EEXIST);
    assert_int_equal(prom_family(p, "c", PROM_GAUGE, "C."), -EEXIST); /* sticky */

    prom_reset(p);
    assert_int_equal(prom_error(p), 0);
    assert_int_equal(prom_str(p).len, 0);
    assert_int_equal(prom_family(p, "a_total", PROM_COUNTER, "A."), 0); /* forgotten */
    prom_free(p);
    prom_free(NULL);
}

static void test_prom_overflow_is_a_sticky_error_not_growth(void **state)
{
    (void)state;
    prom_t *p = prom_new(64);
    assert_int_equal(prom_family(p, "m", PROM_GAUGE, "Short."), 0); /* 31 bytes */
    assert_int_equal(prom_gauge(p, "m", PROM_LABELS({"k", "0123456789"}), 1), 0);
    assert_int_equal(prom_str(p).len, 31 + 20);
    assert_int_equal(prom_gauge(p, "m", PROM_LABELS({"k", "0123456789"}), 2), -ENOSPC);
    assert_int_equal(prom_error(p), -ENOSPC);
    assert_true(prom_str(p).len <= 64);
    assert_int_equal(prom_gauge(p, "m", NULL, 0, 3), -ENOSPC);
    prom_reset(p);
    assert_int_equal(prom_family(p, "m", PROM_GAUGE, "Short."), 0);
    prom_free(p);

    /* Growth past the first allocation up to a large maximum works. */
    p = prom_new(1 << 20);
    assert_int_equal(prom_family(p, "big", PROM_GAUGE, "Big."), 0);
    char v[16];
    for (int i = 0; i < 10000; i++) {
        snprintf(v, sizeof(v), "%d", i);
        assert_int_equal(prom_gauge(p, "big", PROM_LABELS({"i", v}), i), 0);
    }
    str_t s = prom_str(p);
    assert_memory_equal(s.p + s.len - 19, "big{i=\"9999\"} 9999\n", 19);
    prom_free(p);

    p = prom_new(0);
    assert_int_equal(prom_family(p, "z", PROM_GAUGE, "Z."), -ENOSPC);
    prom_free(p);
}

static void test_prom_name_validation(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool ok;
    } cases[] = {
        {"surety_requests_total", true},
        {"_x", true},
        {"job:rate5m", true},
        {"A9", true},
        {"9a", false},
        {"", false},
        {"a-b", false},
        {"a b", false},
        {"é", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(prom_name_valid(cases[i].name), cases[i].ok);
}

/* A page like the gateway's: several families, label escaping, histograms. */
static void write_realistic_page(prom_t *p)
{
    static const double lat[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    static const uint64_t lat_counts[] = {120, 300, 800, 400, 90, 40, 7, 3, 1, 0, 0};
    static const char *const pools[] = {"site", "api", "site-dr"};

    prom_family(p, "surety_build_info", PROM_GAUGE, "Build information; always 1.");
    prom_gauge(p, "surety_build_info", PROM_LABELS({"version", "0.1.0"}), 1);
    prom_family(p, "surety_requests_total", PROM_COUNTER,
                "Requests answered, by listener and status class.");
    for (int c = 2; c <= 5; c++) {
        char code[4];
        snprintf(code, sizeof(code), "%dxx", c);
        prom_counter(p, "surety_requests_total", PROM_LABELS({"listener", "web"}, {"code", code}),
                     (uint64_t)(1000 / c));
    }
    prom_family(p, "surety_request_duration_seconds", PROM_HISTOGRAM,
                "Time from the first byte of a request to the last byte of its response.");
    for (size_t i = 0; i < 3; i++)
        prom_histogram(p, "surety_request_duration_seconds", PROM_LABELS({"pool", pools[i]}), lat,
                       lat_counts, sizeof(lat) / sizeof(lat[0]), 35.125 * (double)(i + 1), 1761);
    prom_family(p, "surety_server_up", PROM_GAUGE, "1 when the server passes health checks.");
    prom_gauge(p, "surety_server_up", PROM_LABELS({"pool", "site"}, {"server", "127.0.0.1:9001"}),
               1);
    prom_gauge(p, "surety_server_up",
               PROM_LABELS({"pool", "weird\"name\\with\nnewline"}, {"server", "[::1]:9002"}), 0);
    prom_family(p, "surety_config_last_reload_success_timestamp_seconds", PROM_GAUGE,
                "Wall-clock time of the last successful reload.");
    prom_gauge(p, "surety_config_last_reload_success_timestamp_seconds", NULL, 0, 1764416704.123);
}

static void test_prom_realistic_page_passes_promtool_check_metrics(void **state)
{
    (void)state;
    prom_t *p = prom_new(64 * 1024);
    write_realistic_page(p);
    assert_int_equal(prom_error(p), 0);
    str_t page = prom_str(p);

    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        print_message("promtool not found: skipping `promtool check metrics` "
                      "(Debian: apt-get install prometheus)\n");
        prom_free(p);
        skip();
        return;
    }
    char path[] = "/tmp/surety_test_prom_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, page.p, page.len), (ssize_t)page.len);
    close(fd);

    char cmd[256], out[4096] = "";
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = 0;
    int status = pclose(f);
    unlink(path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("promtool check metrics failed (status %d):\n%s\n--- page:\n%.*s", status, out,
                 STR_FMT(page));
    prom_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prom_counter_family_with_and_without_labels),
        cmocka_unit_test(test_prom_escapes_label_values_and_help),
        cmocka_unit_test(test_prom_formats_doubles_as_prometheus_parses_them),
        cmocka_unit_test(test_prom_histogram_accumulates_buckets),
        cmocka_unit_test(test_prom_histogram_with_inf_bound_and_no_bounds),
        cmocka_unit_test(test_prom_family_twice_is_noop_but_reopening_is_an_error),
        cmocka_unit_test(test_prom_overflow_is_a_sticky_error_not_growth),
        cmocka_unit_test(test_prom_name_validation),
        cmocka_unit_test(test_prom_realistic_page_passes_promtool_check_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
