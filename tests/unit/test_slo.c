/* Unit tests of src/monitor/slo.c against hand-computed cases: the
 * workbook's numbers (99.9% over 30 days is 43.2 minutes of budget;
 * burning 2% of it in an hour is a burn rate of 14.4), each of the four
 * burn-rate rules just firing and just not firing, the rules scaled to a
 * 7-day window, the ring wrapping and dropping old minutes, no data, an
 * overspent budget, the latency SLI from histogram buckets, and the
 * running window sums against a slot-by-slot sum over random traffic. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "monitor/slo.h"

#define DAY_MS (86400000ull)
#define MIN_PER_DAY 1440
#define T0 29000000 /* an arbitrary unix minute (2025) */

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-9 * (fabs(want) > 1 ? fabs(want) : 1))
        fail_msg("got %.12g, want %.12g", got, want);
}

/* Minutes (end - n, end], each with total events of which bad are bad. */
static void feed(slo_series_t *s, int64_t end, uint32_t n, uint64_t total, uint64_t bad)
{
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(slo_series_add(s, end - n + 1 + i, total - bad, total), 0);
}

/* An objective of window_days with 10000 events a minute for its whole
 * window, ending at T0, bad of them bad in each minute from bad_from
 * minutes ago (excluded) to bad_to minutes ago (included): (60, 0) is the
 * last hour. */
static slo_series_t *traffic(uint32_t window_days, uint32_t bad_from, uint32_t bad_to, uint64_t bad)
{
    slo_series_t *s = slo_series_new(window_days * DAY_MS);
    assert_non_null(s);
    for (uint32_t ago = window_days * MIN_PER_DAY; ago-- > 0;) {
        uint64_t b = ago >= bad_to && ago < bad_from ? bad : 0;
        assert_int_equal(slo_series_add(s, T0 - ago, 10000 - b, 10000), 0);
    }
    return s;
}

/* Evaluates s at T0 and returns which rules fire. */
static unsigned firing(slo_series_t *s, double target)
{
    slo_status_t st;
    assert_int_equal(slo_evaluate(s, T0, target, &st), 0);
    return st.firing;
}

static void test_workbook_budget_is_43_2_minutes_and_2_percent_in_1h_is_14_4(void **state)
{
    (void)state;
    /* 99.9% over 30 days: 0.1% of 43200 minutes. */
    assert_near(slo_budget_ms(0.999, 30 * DAY_MS) / 60000.0, 43.2);
    /* 1000 events a minute for 30 days: 43.2 million, 43200 of them may
     * fail. 2% of that, 864, failing within one hour (60000 events) is a
     * ratio of 0.0144, 14.4 times the allowed 0.001. */
    slo_count_t hour = {60000 - 864, 60000};
    double burn = slo_burn_rate(hour, 0.999);
    assert_near(burn, 14.4);
    assert_true(slo_burn_at_least(burn, 14.4));
    assert_false(slo_burn_at_least(slo_burn_rate((slo_count_t){60000 - 863, 60000}, 0.999), 14.4));
    /* At that rate the whole budget lasts 30d / 14.4 = 50 hours. */
    assert_near(30 * 24 / burn, 50);
}

static void test_rules_for_30_days_are_the_workbook_table(void **state)
{
    (void)state;
    slo_scaled_rule_t r[SLO_NRULES];
    static const struct {
        slo_severity_t sev;
        double threshold;
        uint32_t long_min, short_min;
    } want[SLO_NRULES] = {
        {SLO_PAGE, 14.4, 60, 5},
        {SLO_PAGE, 6, 360, 30},
        {SLO_TICKET, 3, 1440, 120},
        {SLO_TICKET, 1, 4320, 360},
    };
    slo_rules_scale(30 * DAY_MS, r);
    for (size_t i = 0; i < SLO_NRULES; i++) {
        assert_int_equal(r[i].severity, want[i].sev);
        assert_near(r[i].threshold, want[i].threshold);
        assert_int_equal(r[i].long_minutes, want[i].long_min);
        assert_int_equal(r[i].short_minutes, want[i].short_min);
        assert_int_equal(r[i].long_ms, want[i].long_min * 60000ull);
        assert_int_equal(r[i].short_ms, want[i].short_min * 60000ull);
    }
}

static void test_rules_scale_to_a_7_day_window(void **state)
{
    (void)state;
    slo_scaled_rule_t r[SLO_NRULES];
    slo_rules_scale(7 * DAY_MS, r);
    /* Windows x 7/30: 1h -> 14m, 5m -> 70s (summed as 1 minute), 6h ->
     * 84m, 30m -> 7m, 1d -> 336m, 2h -> 28m, 3d -> 1008m, 6h -> 84m. */
    assert_int_equal(r[0].long_ms, 14 * 60000);
    assert_int_equal(r[0].short_ms, 70000);
    assert_int_equal(r[0].short_minutes, 1);
    assert_int_equal(r[1].long_minutes, 84);
    assert_int_equal(r[1].short_minutes, 7);
    assert_int_equal(r[2].long_minutes, 336);
    assert_int_equal(r[2].short_minutes, 28);
    assert_int_equal(r[3].long_minutes, 1008);
    assert_int_equal(r[3].short_minutes, 84);
    /* Thresholds stay: 14.4 over 14m of 10080m burns 14.4 x 14 / 10080 =
     * 2% of the budget, as 14.4 over 1h of 30d does. */
    assert_near(r[0].threshold, 14.4);
    assert_near(r[0].threshold * 14 / 10080, 0.02);
    assert_near(r[3].threshold, 1);

    /* And they fire that way: 14 minutes at 14.4 after quiet days. */
    slo_series_t *s = traffic(7, 13, 0, 144);
    assert_int_equal(firing(s, 0.999), 0); /* 13 of 14 minutes: 13.37 */
    slo_series_free(s);
    s = traffic(7, 14, 0, 144);
    assert_int_equal(firing(s, 0.999), 1u << 0);
    slo_series_free(s);
}

/* Each rule at its threshold over its long window (and so its short one)
 * fires; one bad event a minute less does not. */
static void test_page_1h_5m_fires_at_14_4_and_not_below(void **state)
{
    (void)state;
    slo_series_t *s = traffic(30, 60, 0, 143);
    assert_int_equal(firing(s, 0.999), 0);
    slo_series_free(s);

    s = traffic(30, 60, 0, 144); /* 1h and 5m at 14.4; 6h at 2.4 */
    slo_status_t st;
    assert_int_equal(slo_evaluate(s, T0, 0.999, &st), 0);
    assert_int_equal(st.firing, 1u << 0);
    assert_true(st.page);
    assert_false(st.ticket);
    assert_near(st.rules[0].long_burn, 14.4);
    assert_near(st.rules[0].short_burn, 14.4);
    assert_near(st.rules[1].long_burn, 2.4);
    assert_near(st.burn[SLO_W_1H], 14.4);
    assert_near(st.burn[SLO_W_6H], 2.4);
    assert_near(st.burn[SLO_W_3D], 0.2);
    assert_int_equal(st.rules[0].long_ms, 3600000);
    assert_int_equal(st.rules[0].short_ms, 300000);
    /* 8640 bad of 432 million: 2% of the budget gone. */
    assert_near(st.budget_remaining, 0.98);
    slo_series_free(s);
}

static void test_page_1h_5m_needs_both_windows(void **state)
{
    (void)state;
    /* The hour's errors 6 to 60 minutes ago: 1h burns 14.48 but the last
     * 5 minutes are clean, so the alert has stopped. */
    slo_series_t *s = traffic(30, 60, 5, 158);
    slo_status_t st;
    assert_int_equal(slo_evaluate(s, T0, 0.999, &st), 0);
    assert_near(st.rules[0].long_burn, 8690.0 / 600000 / 0.001); /* 14.48 */
    assert_near(st.rules[0].short_burn, 0);
    assert_int_equal(st.firing, 0);
    slo_series_free(s);
    /* All of them in the last 5 minutes: 8640 / 5 = 1728 a minute. */
    s = traffic(30, 5, 0, 1728);
    assert_int_equal(firing(s, 0.999), 1u << 0);
    slo_series_free(s);
    s = traffic(30, 5, 0, 1727);
    assert_int_equal(firing(s, 0.999), 0);
    slo_series_free(s);
}

/* Time passing without events: the short window empties first, so the
 * page stops 5 minutes after the errors do, while the long window still
 * remembers them. */
static void test_page_stops_when_the_short_window_is_clean(void **state)
{
    (void)state;
    slo_series_t *s = traffic(30, 60, 0, 144);
    slo_status_t st;
    assert_int_equal(slo_evaluate(s, T0 + 4, 0.999, &st), 0);
    assert_int_equal(st.firing, 1u << 0); /* minute T0 is still in the last 5 */
    assert_int_equal(slo_evaluate(s, T0 + 5, 0.999, &st), 0);
    assert_int_equal(st.firing, 0);
    assert_near(st.rules[0].short_burn, 0);
    assert_near(st.rules[0].long_burn, 14.4); /* 55 minutes of 14.4, no others */
    assert_int_equal(slo_series_head(s), T0 + 5);
    /* Evaluating an earlier minute changes nothing. */
    assert_int_equal(slo_evaluate(s, T0, 0.999, &st), 0);
    assert_int_equal(slo_series_head(s), T0 + 5);
    slo_series_free(s);
}

static void test_page_6h_30m_fires_at_6_and_not_below(void **state)
{
    (void)state;
    slo_series_t *s = traffic(30, 360, 0, 60); /* 6h, 30m, 1h at 6; 1d at 1.5 */
    assert_int_equal(firing(s, 0.999), 1u << 1);
    slo_series_free(s);
    s = traffic(30, 360, 0, 59);
    assert_int_equal(firing(s, 0.999), 0);
    slo_series_free(s);
}

static void test_ticket_1d_2h_fires_at_3_and_not_below(void **state)
{
    (void)state;
    /* 1d and 2h at 3; 3d at 1 and 6h at 3: the 3d ticket fires too. */
    slo_series_t *s = traffic(30, 1440, 0, 30);
    slo_status_t st;
    assert_int_equal(slo_evaluate(s, T0, 0.999, &st), 0);
    assert_int_equal(st.firing, 1u << 2 | 1u << 3);
    assert_true(st.ticket);
    assert_false(st.page);
    slo_series_free(s);
    s = traffic(30, 1440, 0, 29); /* 2.9; and 3d at 0.967 */
    assert_int_equal(firing(s, 0.999), 0);
    slo_series_free(s);
}

static void test_ticket_3d_6h_fires_at_1_and_not_below(void **state)
{
    (void)state;
    slo_series_t *s = traffic(30, 4320, 0, 10); /* exactly the allowed 0.1% for 3 days */
    assert_int_equal(firing(s, 0.999), 1u << 3);
    slo_series_free(s);
    s = traffic(30, 4320, 0, 9);
    assert_int_equal(firing(s, 0.999), 0);
    slo_series_free(s);
    /* 3d at 1.008 but the last 6h clean: stopped. */
    s = traffic(30, 4320, 360, 11);
    assert_int_equal(firing(s, 0.999), 0);
    slo_series_free(s);
}

static void test_no_data_is_an_sli_of_1_and_fires_nothing(void **state)
{
    (void)state;
    slo_series_t *s = slo_series_new(30 * DAY_MS);
    slo_status_t st;
    assert_int_equal(slo_evaluate(s, T0, 0.999, &st), 0);
    assert_true(st.no_data);
    assert_near(st.sli, 1);
    assert_near(st.budget_remaining, 1);
    assert_int_equal(st.firing, 0);
    for (size_t w = 0; w < SLO_NREPORTED; w++)
        assert_near(st.burn[w], 0);
    bool no_data = false;
    assert_near(slo_sli((slo_count_t){0, 0}, &no_data), 1);
    assert_true(no_data);
    assert_near(slo_sli((slo_count_t){999, 1000}, &no_data), 0.999);
    assert_false(no_data);
    assert_int_equal(slo_evaluate(s, T0, 1.0, &st), -EINVAL);
    assert_int_equal(slo_evaluate(s, T0, 0.0, &st), -EINVAL);
    slo_series_free(s);
}

static void test_budget_goes_negative_when_overspent(void **state)
{
    (void)state;
    slo_series_t *s = slo_series_new(30 * DAY_MS);
    slo_status_t st;
    /* 0.2% bad all month against a 0.1% budget: spent twice. */
    feed(s, T0, 30 * MIN_PER_DAY, 1000, 2);
    assert_int_equal(slo_evaluate(s, T0, 0.999, &st), 0);
    assert_near(st.sli, 0.998);
    assert_near(st.budget_remaining, -1);
    assert_int_equal(st.window.total, 43200000);
    /* A quarter spent: 0.025% bad against 0.1%. */
    assert_near(slo_budget_remaining((slo_count_t){39990, 40000}, 0.999), 0.75);
    slo_series_free(s);
}

static void test_ring_wraps_and_forgets_minutes_older_than_the_window(void **state)
{
    (void)state;
    slo_series_t *s = slo_series_new(1 * DAY_MS);
    assert_int_equal(slo_series_slots(s), 1440);
    for (int64_t m = 0; m < 1440; m++)
        assert_int_equal(slo_series_add(s, m, 1, 1), 0);
    assert_int_equal(slo_series_sum(s, SLO_W_FULL).total, 1440);
    /* Jump to minute 1540: the window is now 101..1540. */
    assert_int_equal(slo_series_add(s, 1540, 0, 1), 0);
    assert_int_equal(slo_series_head(s), 1540);
    slo_count_t full = slo_series_sum(s, SLO_W_FULL);
    assert_int_equal(full.total, 1339 + 1);
    assert_int_equal(full.good, 1339);
    /* Older than the window: ignored; the oldest minute kept: counted. */
    assert_int_equal(slo_series_add(s, 100, 5, 5), -ESTALE);
    assert_int_equal(slo_series_add(s, 101, 5, 5), 0);
    assert_int_equal(slo_series_sum(s, SLO_W_FULL).total, 1345);
    /* Late but in the window, out of order: counted where it belongs. */
    assert_int_equal(slo_series_add(s, 1500, 0, 7), 0);
    assert_int_equal(slo_series_sum(s, SLO_W_1H).total, 8);
    assert_int_equal(slo_series_sum(s, SLO_W_5M).total, 1);
    /* The 3d window of a 1d objective is the whole day. */
    assert_int_equal(slo_series_window_minutes(s, SLO_W_3D), 1440);
    assert_int_equal(slo_series_sum(s, SLO_W_3D).total, 1352);
    /* A jump of more than the window forgets everything. */
    slo_series_advance(s, 1540 + 1440);
    assert_int_equal(slo_series_sum(s, SLO_W_FULL).total, 0);
    assert_int_equal(slo_series_sum_slow(s, 1440).total, 0);
    /* Good above total is refused. */
    assert_int_equal(slo_series_add(s, 1540 + 1440, 2, 1), -EINVAL);
    /* Negative minutes (before 1970) still map into the ring. */
    slo_series_free(s);
    s = slo_series_new(DAY_MS);
    assert_int_equal(slo_series_add(s, -3, 1, 2), 0);
    assert_int_equal(slo_series_add(s, -1, 1, 2), 0);
    assert_int_equal(slo_series_sum(s, SLO_W_5M).total, 4);
    slo_series_free(s);
}

static void test_series_sizes_are_bounded(void **state)
{
    (void)state;
    assert_null(slo_series_new(0));
    assert_null(slo_series_new(90 * DAY_MS + 1));
    slo_series_t *s = slo_series_new(90 * DAY_MS);
    assert_non_null(s);
    assert_int_equal(slo_series_slots(s), SLO_SLOTS_MAX);
    slo_series_free(s);
    s = slo_series_new(61000); /* 61 s: two minutes */
    assert_int_equal(slo_series_slots(s), 2);
    slo_series_free(s);
    slo_series_free(NULL);
}

/* The running sums of every kept window equal a slot-by-slot sum, through
 * random adds (in order, late, too old) and jumps. */
static void test_running_sums_match_slot_sums_under_random_traffic(void **state)
{
    (void)state;
    slo_series_t *s = slo_series_new(3 * DAY_MS);
    uint64_t seed = 12345;
    int64_t head = T0;

    for (int i = 0; i < 200000; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(seed >> 33);
        int64_t m = head - (int64_t)(r % 5000) + 40;
        if (r % 997 == 0)
            m = head + (r % 3000); /* a jump, sometimes past the window */
        uint64_t total = r % 50, good = total ? (r >> 8) % (total + 1) : 0;
        int rc = slo_series_add(s, m, good, total);
        assert_true(rc == 0 || rc == -ESTALE);
        head = slo_series_head(s);
        if (i % 1000 != 0)
            continue;
        for (unsigned w = 0; w < SLO_NWINDOWS; w++) {
            slo_count_t fast = slo_series_sum(s, w);
            slo_count_t slow = slo_series_sum_slow(s, slo_series_window_minutes(s, w));
            assert_int_equal(fast.good, slow.good);
            assert_int_equal(fast.total, slow.total);
        }
    }
    slo_series_free(s);
}

static void test_latency_sli_counts_buckets_up_to_the_threshold(void **state)
{
    (void)state;
    /* One event in each of the 15 buckets and 100 above 10s. */
    uint64_t b[CONF_LATENCY_NBUCKETS + 1];
    for (size_t i = 0; i < CONF_LATENCY_NBUCKETS; i++)
        b[i] = 1;
    b[CONF_LATENCY_NBUCKETS] = 100;
    slo_count_t c;
    /* 300ms is the 9th bound: 1 5 10 25 50 100 200 250 300. */
    assert_int_equal(slo_latency_count(conf_latency_bounds, CONF_LATENCY_NBUCKETS, b, 300, &c), 0);
    assert_int_equal(c.good, 9);
    assert_int_equal(c.total, 115);
    assert_int_equal(slo_latency_count(conf_latency_bounds, CONF_LATENCY_NBUCKETS, b, 1, &c), 0);
    assert_int_equal(c.good, 1);
    assert_int_equal(slo_latency_count(conf_latency_bounds, CONF_LATENCY_NBUCKETS, b, 10000, &c),
                     0);
    assert_int_equal(c.good, 15);
    c = (slo_count_t){7, 7};
    assert_int_equal(slo_latency_count(conf_latency_bounds, CONF_LATENCY_NBUCKETS, b, 120, &c),
                     -EINVAL);
    assert_int_equal(c.good, 7); /* untouched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workbook_budget_is_43_2_minutes_and_2_percent_in_1h_is_14_4),
        cmocka_unit_test(test_rules_for_30_days_are_the_workbook_table),
        cmocka_unit_test(test_rules_scale_to_a_7_day_window),
        cmocka_unit_test(test_page_1h_5m_fires_at_14_4_and_not_below),
        cmocka_unit_test(test_page_1h_5m_needs_both_windows),
        cmocka_unit_test(test_page_stops_when_the_short_window_is_clean),
        cmocka_unit_test(test_page_6h_30m_fires_at_6_and_not_below),
        cmocka_unit_test(test_ticket_1d_2h_fires_at_3_and_not_below),
        cmocka_unit_test(test_ticket_3d_6h_fires_at_1_and_not_below),
        cmocka_unit_test(test_no_data_is_an_sli_of_1_and_fires_nothing),
        cmocka_unit_test(test_budget_goes_negative_when_overspent),
        cmocka_unit_test(test_ring_wraps_and_forgets_minutes_older_than_the_window),
        cmocka_unit_test(test_series_sizes_are_bounded),
        cmocka_unit_test(test_running_sums_match_slot_sums_under_random_traffic),
        cmocka_unit_test(test_latency_sli_counts_buckets_up_to_the_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
