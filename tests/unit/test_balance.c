/* Smooth weighted round-robin: ratios, spreading, and skipping unusable servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/balance.h"

static void test_weights_5_1_1_spread_like_nginx(void **state)
{
    (void)state;
    balance_rr_t rr;
    unsigned w[] = {5, 1, 1};
    assert_int_equal(balance_rr_init(&rr, 3), 0);
    /* nginx's documented sequence for 5,1,1: a a b a c a a */
    int want[] = {0, 0, 1, 0, 2, 0, 0};
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(balance_rr_pick(&rr, w, NULL), want[i]);
    balance_rr_deinit(&rr);
}

static void test_ratio_holds_over_many_picks(void **state)
{
    (void)state;
    balance_rr_t rr;
    unsigned w[] = {1, 3};
    int count[2] = {0, 0};
    assert_int_equal(balance_rr_init(&rr, 2), 0);
    for (int i = 0; i < 4000; i++)
        count[balance_rr_pick(&rr, w, NULL)]++;
    assert_int_equal(count[0], 1000);
    assert_int_equal(count[1], 3000);
    balance_rr_deinit(&rr);
}

static void test_unusable_servers_are_skipped(void **state)
{
    (void)state;
    balance_rr_t rr;
    unsigned w[] = {1, 1, 1};
    bool usable[] = {false, true, false};
    assert_int_equal(balance_rr_init(&rr, 3), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(balance_rr_pick(&rr, w, usable), 1);
    bool none[] = {false, false, false};
    assert_int_equal(balance_rr_pick(&rr, w, none), -1);
    balance_rr_deinit(&rr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_5_1_1_spread_like_nginx),
        cmocka_unit_test(test_ratio_holds_over_many_picks),
        cmocka_unit_test(test_unusable_servers_are_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
