/* Unit tests of src/monitor/slo_export.c: the rules written for a sample
 * configuration, line by line where it matters (the PromQL of each source
 * and kind, the windows scaled to a 7-day and a 1-day objective, the
 * alert thresholds, objectives on monitors left out). That Prometheus
 * accepts the file is tests/integration/test_slo_export.py's job (it runs
 * promtool). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "monitor/slo_export.h"

#define BASE                                                                                       \
    "listeners:\n"                                                                                 \
    "  web:\n"                                                                                     \
    "    listen: 127.0.0.1:8080\n"                                                                 \
    "    routes: [ { name: api, path: /api/, pool: site }, { pool: site } ]\n"                     \
    "pools:\n"                                                                                     \
    "  site:\n"                                                                                    \
    "    servers: [ 127.0.0.1:9001 ]\n"                                                            \
    "monitors:\n"                                                                                  \
    "  home: { http: \"http://127.0.0.1:8080/\" }\n"

/* Loads text and returns the export (malloc'd). */
static char *export_of(const char *text)
{
    char *out = NULL;
    size_t len = 0;
    conf_t *c = conf_load_string("sample.yaml", text, strlen(text), stderr);
    assert_non_null(c);
    FILE *f = open_memstream(&out, &len);
    assert_int_equal(slo_export_prometheus(c, f), 0);
    fclose(f);
    conf_unref(c);
    return out;
}

static void has(const char *doc, const char *want)
{
    assert_non_null(doc);
    if (!strstr(doc, want)) {
        print_error("---- rules:\n%s", doc);
        fail_msg("the rules lack:\n%s", want);
    }
}

static void lacks(const char *doc, const char *unwanted)
{
    if (strstr(doc, unwanted))
        fail_msg("the rules should not have:\n%s", unwanted);
}

static void test_listener_availability_over_30_days(void **state)
{
    (void)state;
    char *doc = export_of(BASE "objectives:\n"
                               "  availability: { source: listener:web, kind: availability,\n"
                               "                  target: 99.9% }\n");
    has(doc, "groups:\n  - name: 'surety-slo-availability'\n    rules:\n");
    has(doc, "      - record: 'surety_objective:error_ratio:rate1h'\n"
             "        expr: 'sum(rate(surety_listener_requests_total{listener=\"web\",code=\"5xx\"}"
             "[1h])) / sum(rate(surety_listener_requests_total{listener=\"web\"}[1h]))'\n"
             "        labels:\n"
             "          objective: 'availability'\n");
    /* The seven windows of the four rules, 6h once. */
    static const char *const windows[] = {"5m", "30m", "1h", "2h", "6h", "1d", "3d"};
    for (size_t i = 0; i < 7; i++) {
        char rec[128];
        snprintf(rec, sizeof(rec), "record: 'surety_objective:error_ratio:rate%s'\n", windows[i]);
        has(doc, rec);
        assert_null(strstr(strstr(doc, rec) + 1, rec));
    }
    has(doc, "      - alert: 'SuretyErrorBudgetBurn'\n"
             "        expr: 'surety_objective:error_ratio:rate1h{objective=\"availability\"} >= "
             "(14.4 * 0.001) and surety_objective:error_ratio:rate5m{objective=\"availability\"} "
             ">= (14.4 * 0.001)'\n"
             "        labels:\n"
             "          severity: 'page'\n"
             "          objective: 'availability'\n"
             "          long_window: '1h'\n"
             "          short_window: '5m'\n");
    has(doc, "rate6h{objective=\"availability\"} >= (6 * 0.001) and "
             "surety_objective:error_ratio:rate30m");
    has(doc, "rate1d{objective=\"availability\"} >= (3 * 0.001) and "
             "surety_objective:error_ratio:rate2h");
    has(doc, "rate3d{objective=\"availability\"} >= (1 * 0.001) and "
             "surety_objective:error_ratio:rate6h");
    has(doc, "          severity: 'ticket'\n");
    /* The budget, over the whole window, in its own slower group. */
    has(doc, "  - name: 'surety-slo-availability-budget'\n"
             "    interval: 5m\n"
             "    rules:\n"
             "      - record: 'surety_objective:error_budget_remaining:ratio'\n"
             "        expr: '1 - (sum(rate(surety_listener_requests_total{listener=\"web\","
             "code=\"5xx\"}[30d])) / sum(rate(surety_listener_requests_total{listener=\"web\"}"
             "[30d]))) / 0.001'\n");
    free(doc);
}

static void test_route_latency_reads_the_threshold_bucket_over_7_days(void **state)
{
    (void)state;
    char *doc = export_of(BASE "objectives:\n"
                               "  api: { source: route:web/api, kind: latency, threshold: 300ms,\n"
                               "         target: 99%, window: 7d }\n");
    has(doc, "        expr: '1 - sum(rate(surety_route_request_duration_seconds_bucket{"
             "listener=\"web\",route=\"api\",le=\"0.3\"}[14m])) / "
             "sum(rate(surety_route_request_duration_seconds_count{listener=\"web\","
             "route=\"api\"}[14m]))'\n");
    /* 7/30 of 1h, 5m, 6h, 30m, 1d, 2h, 3d, 6h: 14m, 1m (70 s), 84m, 7m,
     * 336m, 28m, 1008m. */
    static const char *const windows[] = {"1m", "7m", "14m", "28m", "84m", "336m", "1008m"};
    for (size_t i = 0; i < 7; i++) {
        char rec[128];
        snprintf(rec, sizeof(rec), "record: 'surety_objective:error_ratio:rate%s'\n", windows[i]);
        has(doc, rec);
    }
    lacks(doc, "rate1h'");
    has(doc, "rate14m{objective=\"api\"} >= (14.4 * 0.01) and "
             "surety_objective:error_ratio:rate1m{objective=\"api\"} >= (14.4 * 0.01)'");
    has(doc, "[7d]");
    free(doc);
}

static void test_one_second_threshold_and_default_route_over_1_day(void **state)
{
    (void)state;
    char *doc = export_of(BASE "objectives:\n"
                               "  rest: { source: route:web/1, kind: latency, threshold: 1s,\n"
                               "          target: 99.95%, window: 1d }\n");
    has(doc, "route=\"1\",le=\"1\"}[2m]"); /* 1h / 30 */
    has(doc, ">= (14.4 * 0.0005)");
    has(doc, "[1d]))) / 0.0005'\n");
    free(doc);
}

static void test_monitor_objectives_are_left_out_with_a_comment(void **state)
{
    (void)state;
    char *doc = export_of(BASE "objectives:\n"
                               "  probe: { source: monitor:home, kind: availability,\n"
                               "           target: 99% }\n");
    has(doc, "# objective probe (monitor:home) is not exported: probe results are not "
             "Prometheus metrics.\n");
    has(doc, "groups: []\n");
    lacks(doc, "record:");
    free(doc);

    doc = export_of(BASE);
    has(doc, "# Prometheus rules for the objectives of sample.yaml, written by surety:\n");
    has(doc, "groups: []\n");
    free(doc);
}

static void test_write_errors_are_reported(void **state)
{
    (void)state;
    conf_t *c = conf_load_string("s.yaml", BASE, strlen(BASE), stderr);
    FILE *f = fopen("/dev/full", "w");
    assert_non_null(f);
    assert_int_equal(slo_export_prometheus(c, f), -EIO);
    fclose(f);
    conf_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_availability_over_30_days),
        cmocka_unit_test(test_route_latency_reads_the_threshold_bucket_over_7_days),
        cmocka_unit_test(test_one_second_threshold_and_default_route_over_1_day),
        cmocka_unit_test(test_monitor_objectives_are_left_out_with_a_comment),
        cmocka_unit_test(test_write_errors_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
