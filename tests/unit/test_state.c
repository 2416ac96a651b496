/* Shared server state: ejection rules, health rise/fall, failover and
 * failback decisions, on hand-built configurations and a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/state.h"

static conf_server_t servers_a[3] = {{.address = "10.0.0.1:80", .weight = 1},
                                     {.address = "10.0.0.2:80", .weight = 1},
                                     {.address = "10.0.0.3:80", .weight = 1}};
static conf_server_t servers_b[1] = {{.address = "10.0.1.1:80", .weight = 1}};
static conf_server_t servers_c[1] = {{.address = "10.0.2.1:80", .weight = 1}};
static conf_pool_t pools[3];
static conf_t conf = {.pools = pools, .npools = 3};

static const conf_outlier_t outlier = {.consecutive_errors = 3, .ejection_ms = 1000,
                                       .max_ejection_ms = 2500, .max_ejected_ppm = 500000};

static int setup(void **state)
{
    (void)state;
    memset(pools, 0, sizeof(pools));
    pools[0] = (conf_pool_t){.name = "site", .servers = servers_a, .nservers = 3, .backup = 1,
                             .failover_min_healthy = 2, .failback_after_ms = 5000};
    pools[1] = (conf_pool_t){.name = "dr", .servers = servers_b, .nservers = 1, .backup = 2,
                             .failover_min_healthy = 1, .failback_after_ms = 5000};
    pools[2] = (conf_pool_t){.name = "dr2", .servers = servers_c, .nservers = 1,
                             .backup = SIZE_MAX, .failover_min_healthy = 1};
    return 0;
}

static void test_ejection_after_consecutive_errors_grows_and_caps(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    pool_state_t *p = &s->pools[0];
    server_state_t *a = &p->servers[0];
    assert_false(state_report_failure(p, a, &outlier, 100));
    assert_false(state_report_failure(p, a, &outlier, 100));
    state_report_success(a); /* a success resets the streak */
    assert_false(state_report_failure(p, a, &outlier, 100));
    assert_false(state_report_failure(p, a, &outlier, 100));
    assert_true(state_report_failure(p, a, &outlier, 100));
    assert_int_equal(a->ejected_until, 1100);
    assert_false(state_server_usable(a, 1099));
    assert_true(state_server_usable(a, 1100));
    for (int i = 0; i < 3; i++)
        state_report_failure(p, a, &outlier, 2000);
    assert_int_equal(a->ejected_until, 4000); /* second time: 2 x 1000 */
    for (int i = 0; i < 3; i++)
        state_report_failure(p, a, &outlier, 5000);
    assert_int_equal(a->ejected_until, 7500); /* third: 3000 capped to 2500 */
    state_free(s);
}

static void test_ejection_respects_max_ejected(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    pool_state_t *p = &s->pools[0];
    for (int i = 0; i < 3; i++)
        state_report_failure(p, &p->servers[0], &outlier, 10);
    assert_int_equal(state_pool_usable(p, 10), 2);
    /* 50% of 3 is 1: a second ejection is refused */
    for (int i = 0; i < 5; i++)
        assert_false(state_report_failure(p, &p->servers[1], &outlier, 10));
    assert_int_equal(state_pool_usable(p, 10), 2);
    state_free(s);
}

static void test_single_server_pool_may_eject_its_one_server_only_if_others(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    pool_state_t *p = &s->pools[1]; /* one server: 50% of 1 is 0 */
    for (int i = 0; i < 5; i++)
        assert_false(state_report_failure(p, &p->servers[0], &outlier, 10));
    assert_true(state_server_usable(&p->servers[0], 10));
    state_free(s);
}

static void test_health_rise_and_fall(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    server_state_t *a = &s->pools[0].servers[0];
    assert_int_equal(state_check_result(a, false, 2, 3, 1), 0);
    assert_int_equal(state_check_result(a, false, 2, 3, 2), 0);
    assert_int_equal(state_check_result(a, true, 2, 3, 3), 0); /* streak broken */
    assert_int_equal(state_check_result(a, false, 2, 3, 4), 0);
    assert_int_equal(state_check_result(a, false, 2, 3, 5), 0);
    assert_int_equal(state_check_result(a, false, 2, 3, 6), -1);
    assert_false(state_server_usable(a, 6));
    assert_int_equal(state_check_result(a, true, 2, 3, 7), 0);
    assert_int_equal(state_check_result(a, true, 2, 3, 8), 1);
    assert_true(state_server_usable(a, 8));
    assert_int_equal(a->back_since, 8);
    state_free(s);
}

static void test_rise_successful_checks_end_an_ejection(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    pool_state_t *p = &s->pools[0];
    server_state_t *a = &p->servers[0];
    assert_int_equal(state_check_result(a, true, 2, 3, 50), 0); /* before: no ejection */
    for (int i = 0; i < 3; i++)
        state_report_failure(p, a, &outlier, 100);
    assert_false(state_server_usable(a, 100));
    /* the success before the ejection does not count towards rise */
    assert_int_equal(state_check_result(a, true, 2, 3, 200), 0);
    assert_false(state_server_usable(a, 200));
    assert_int_equal(state_check_result(a, true, 2, 3, 300), STATE_UNEJECTED);
    assert_true(state_server_usable(a, 300));
    assert_int_equal(a->back_since, 300);
    /* a failed check in between starts the count again */
    for (int i = 0; i < 3; i++)
        state_report_failure(p, a, &outlier, 400);
    assert_int_equal(state_check_result(a, true, 2, 3, 500), 0);
    assert_int_equal(state_check_result(a, false, 2, 3, 600), 0);
    assert_int_equal(state_check_result(a, true, 2, 3, 700), 0);
    state_free(s);
}

static size_t changes;
static size_t last_to;
static void on_change(const conf_t *c, size_t pool, size_t from, size_t to, void *ud)
{
    (void)c;
    (void)pool;
    (void)from;
    (void)ud;
    changes++;
    last_to = to;
}

static void down(state_t *s, size_t p, size_t i)
{
    s->pools[p].servers[i].health = SRV_DOWN;
}
static void up(state_t *s, size_t p, size_t i)
{
    s->pools[p].servers[i].health = SRV_UP;
}

static void test_failover_below_min_healthy_and_failback_after_hysteresis(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    changes = 0;
    state_failover_eval(s, &conf, 1000, on_change, NULL);
    assert_int_equal(changes, 0);
    down(s, 0, 0);
    state_failover_eval(s, &conf, 1100, on_change, NULL);
    assert_int_equal(state_serving(s, 0), 0); /* 2 of 3 usable: min_healthy 2 holds */
    down(s, 0, 1);
    state_failover_eval(s, &conf, 1200, on_change, NULL);
    assert_int_equal(state_serving(s, 0), 1); /* 1 < 2: to the backup */
    assert_int_equal(changes, 1);
    up(s, 0, 1);
    state_failover_eval(s, &conf, 2000, on_change, NULL);
    state_failover_eval(s, &conf, 6999, on_change, NULL);
    assert_int_equal(state_serving(s, 0), 1); /* not before failback_after */
    down(s, 0, 1); /* flap: the clock starts again */
    state_failover_eval(s, &conf, 7000, on_change, NULL);
    up(s, 0, 1);
    state_failover_eval(s, &conf, 7100, on_change, NULL);
    state_failover_eval(s, &conf, 12099, on_change, NULL);
    assert_int_equal(state_serving(s, 0), 1);
    state_failover_eval(s, &conf, 12100, on_change, NULL);
    assert_int_equal(state_serving(s, 0), 0);
    assert_int_equal(changes, 2);
    assert_int_equal(s->pools[0].failovers, 2);
    state_free(s);
}

static void test_failover_walks_the_backup_chain(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    for (size_t i = 0; i < 3; i++)
        down(s, 0, i);
    down(s, 1, 0);
    state_failover_eval(s, &conf, 100, on_change, NULL);
    assert_int_equal(state_serving(s, 0), 2); /* site -> dr (dead) -> dr2 */
    up(s, 1, 0);
    state_failover_eval(s, &conf, 200, on_change, NULL);
    assert_int_equal(state_serving(s, 0), 1); /* the nearer backup is preferred again */
    state_free(s);
}

static void test_weak_primary_beats_dead_backups(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    down(s, 0, 0);
    down(s, 0, 1); /* 1 of 3 usable, below min_healthy 2 */
    down(s, 1, 0);
    down(s, 2, 0);
    state_failover_eval(s, &conf, 100, on_change, NULL);
    assert_int_equal(state_serving(s, 0), 0);
    state_free(s);
}

static void test_admin_states_make_servers_unusable(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    server_state_t *a = &s->pools[0].servers[0];
    a->admin = SRV_DRAINING;
    assert_false(state_server_usable(a, 0));
    a->admin = SRV_DISABLED;
    assert_false(state_server_usable(a, 0));
    a->admin = SRV_ENABLED;
    assert_true(state_server_usable(a, 0));
    state_free(s);
}

static void test_max_inflight_reserve_release_and_peak(void **st)
{
    (void)st;
    state_t *s = state_new(&conf);
    server_state_t *a = &s->pools[0].servers[0];
    assert_true(state_server_reserve(a, 2));
    assert_true(state_server_reserve(a, 2));
    assert_false(state_server_reserve(a, 2)); /* full: nothing taken */
    assert_int_equal(a->inflight, 2);
    state_server_release(a, 2);
    assert_true(state_server_reserve(a, 2)); /* the slot came back */
    state_server_release(a, 2);
    state_server_release(a, 2);
    assert_int_equal(a->inflight, 0);
    /* the peak since the last take, then the count at that take */
    assert_int_equal(state_inflight_peak_take(a), 2);
    assert_int_equal(state_inflight_peak_take(a), 0);
    /* no limit: always room, and nothing shared is written */
    assert_true(state_server_reserve(a, 0));
    state_server_release(a, 0);
    assert_int_equal(a->inflight, 0);
    assert_int_equal(a->inflight_peak, 0);
    state_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_ejection_after_consecutive_errors_grows_and_caps, setup),
        cmocka_unit_test_setup(test_ejection_respects_max_ejected, setup),
        cmocka_unit_test_setup(test_single_server_pool_may_eject_its_one_server_only_if_others,
                               setup),
        cmocka_unit_test_setup(test_health_rise_and_fall, setup),
        cmocka_unit_test_setup(test_rise_successful_checks_end_an_ejection, setup),
        cmocka_unit_test_setup(test_failover_below_min_healthy_and_failback_after_hysteresis,
                               setup),
        cmocka_unit_test_setup(test_failover_walks_the_backup_chain, setup),
        cmocka_unit_test_setup(test_weak_primary_beats_dead_backups, setup),
        cmocka_unit_test_setup(test_admin_states_make_servers_unusable, setup),
        cmocka_unit_test_setup(test_max_inflight_reserve_release_and_peak, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
