/* Server selection (gateway/balance.h): smooth weighted round-robin ratios and spreading,
 * weighted least connections, slow start, power of two choices over peak-EWMA (slow servers
 * avoided, recovered and new servers tried), and consistent hashing with bounded load (key
 * stability, minimal movement on removal, weight ratios, the load bound). Simulations use
 * fixed seeds and a simulated clock, so every run is identical. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/balance.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- round-robin ------------------------------------------------------------------------- */

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

/* ---- least connections ------------------------------------------------------------------- */

static void test_least_conn_picks_least_loaded(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        unsigned weights[4];
        unsigned inflight[4];
        bool usable[4];
        int want;
    } cases[] = {
        {"fewest inflight", {1, 1, 1, 1}, {5, 2, 7, 3}, {1, 1, 1, 1}, 1},
        {"fewest skipped when unusable", {1, 1, 1, 1}, {5, 2, 7, 3}, {1, 0, 1, 1}, 3},
        {"weight divides load", {1, 4, 1, 1}, {1, 3, 2, 2}, {1, 1, 1, 1}, 1},
        {"(in+1)/w: 3/4 beats 1/1", {4, 1, 9, 9}, {2, 0, 9, 9}, {1, 1, 0, 0}, 0},
        {"weight 0 never picked", {0, 1, 1, 1}, {0, 9, 9, 9}, {1, 1, 1, 1}, 1},
        {"none usable", {1, 1, 1, 1}, {0, 0, 0, 0}, {0, 0, 0, 0}, -1},
        {"only weight 0 usable", {0, 1, 1, 1}, {0, 0, 0, 0}, {1, 0, 0, 0}, -1},
        {"huge values compare exactly",
         {4000000000u, 3999999999u, 1, 1},
         {4000000000u, 3999999998u, 9, 9},
         {1, 1, 0, 0},
         1},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        balance_rr_t rr;
        assert_int_equal(balance_rr_init(&rr, 4), 0);
        int got =
            balance_least_conn_pick(&rr, 4, cases[c].weights, cases[c].inflight, cases[c].usable);
        if (got != cases[c].want)
            fail_msg("%s: got %d, want %d", cases[c].name, got, cases[c].want);
        balance_rr_deinit(&rr);
    }
}

static void test_least_conn_ties_spread_evenly(void **state)
{
    (void)state;
    balance_rr_t rr;
    unsigned inflight[5] = {0, 0, 0, 0, 9};
    int count[5] = {0};
    assert_int_equal(balance_rr_init(&rr, 5), 0);
    /* Requests finish at once, so the four idle servers stay tied on every pick. */
    for (int i = 0; i < 400; i++)
        count[balance_least_conn_pick(&rr, 5, NULL, inflight, NULL)]++;
    for (int s = 0; s < 4; s++)
        assert_int_equal(count[s], 100);
    assert_int_equal(count[4], 0);

    /* Requests that stay open: the picks fill the servers level by level. */
    unsigned open[3] = {0, 0, 0};
    for (int i = 0; i < 300; i++) {
        int s = balance_least_conn_pick(&rr, 3, NULL, open, NULL);
        open[s]++;
        for (int k = 0; k < 3; k++)
            assert_true(open[k] + 1 >= open[s]);
    }
    assert_int_equal(open[0], 100);
    assert_int_equal(open[1], 100);
    assert_int_equal(open[2], 100);
    balance_rr_deinit(&rr);
}

/* ---- slow start -------------------------------------------------------------------------- */

static void test_slow_start_ramps_linearly(void **state)
{
    (void)state;
    static const struct {
        unsigned weight;
        uint64_t back, now, span;
        unsigned want;
    } cases[] = {
        {100, 0, 5000, 10000, 100},      /* never went away */
        {100, 1000, 1000, 0, 100},       /* slow start off */
        {100, 1000, 1000, 10000, 10},    /* starts at a tenth */
        {100, 1000, 500, 10000, 10},     /* clock before back_since */
        {100, 1000, 3500, 10000, 32},    /* 10 + 90 * 0.25 */
        {100, 1000, 6000, 10000, 55},    /* half way */
        {100, 1000, 10999, 10000, 99},   /* almost there */
        {100, 1000, 11000, 10000, 100},  /* done */
        {100, 1000, 999999, 10000, 100}, /* long done */
        {5, 1000, 1000, 10000, 1},       /* a tenth rounds down to 0: at least 1 */
        {5, 1000, 6000, 10000, 3},       /* 1 + 4 * 0.5 */
        {1, 1000, 1000, 10000, 1},
        {0, 1000, 6000, 10000, 0}, /* weight 0 stays 0 */
        {4000000000u, 1, 1 + (UINT64_MAX >> 2), UINT64_MAX >> 1, 2200000000u}, /* no overflow */
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        unsigned got =
            balance_slow_start_weight(cases[c].weight, cases[c].back, cases[c].now, cases[c].span);
        if (got != cases[c].want)
            fail_msg("case %zu: got %u, want %u", c, got, cases[c].want);
    }
}

/* ---- peak EWMA and p2c ------------------------------------------------------------------- */

static void test_ewma_is_peak_sensitive_and_decays(void **state)
{
    (void)state;
    const uint64_t tau = BALANCE_EWMA_TAU_MS;
    balance_ewma_t e;
    balance_ewma_init(&e);
    assert_false(e.sampled);
    assert_true(balance_ewma_value(&e, 0, tau) == 0);

    balance_ewma_observe(&e, 1000, 100, tau);
    assert_true(e.ewma_us == 1000); /* first sample taken as is */
    balance_ewma_observe(&e, 5000, 100, tau);
    assert_true(e.ewma_us == 5000); /* above: replaces at once, even with no time passed */
    balance_ewma_observe(&e, 1000, 100, tau);
    assert_true(e.ewma_us == 5000); /* below, no time passed: no weight for the sample */
    /* Below, after tau: from the decayed 5000/e toward the sample with weight 1 - 1/e. */
    balance_ewma_observe(&e, 1000, 100 + tau, tau);
    assert_true(fabs(e.ewma_us - (5000 * exp(-2) + 1000 * (1 - exp(-1)))) < 1e-6);
    /* At or above the decayed value counts as a peak. */
    balance_ewma_observe(&e, 1000, 100 + 3 * tau, tau);
    assert_true(e.ewma_us == 1000);
    balance_ewma_observe(&e, 1000, 100 + 3 * tau, tau);
    balance_ewma_observe(&e, 900, 100 + 3 * tau + tau / 10, tau);
    assert_true(fabs(e.ewma_us - (1000 * exp(-0.2) + 900 * (1 - exp(-0.1)))) < 1e-6);

    /* Without traffic the estimate read decays toward 0, the stored one is untouched. */
    double stored = e.ewma_us;
    assert_true(fabs(balance_ewma_value(&e, e.stamp_ms + tau, tau) - stored * exp(-1)) < 1e-6);
    assert_true(e.ewma_us == stored);
    /* A clock that steps back does not inflate the estimate. */
    assert_true(balance_ewma_value(&e, 0, tau) == stored);
}

static void test_rand_is_deterministic_and_spread(void **state)
{
    (void)state;
    uint64_t a = 42, b = 42;
    int buckets[8] = {0};
    for (int i = 0; i < 8000; i++) {
        uint64_t x = balance_rand(&a);
        assert_true(x == balance_rand(&b));
        buckets[x >> 61]++;
    }
    for (int i = 0; i < 8; i++)
        assert_in_range(buckets[i], 850, 1150);
}

/* A pool of n servers with given response times, driven by p2c at one pick per ms; each pick
 * is answered at once and its time observed. Counts picks of each server in count[]. */
typedef struct {
    size_t n;
    balance_ewma_t e[10];
    uint64_t rtt_us[10];
    uint64_t rng;
    uint64_t now_ms;
} sim_t;

static void sim_run(sim_t *s, int picks, int *count)
{
    for (int i = 0; i < picks; i++) {
        s->now_ms++;
        int p =
            balance_p2c_pick(&s->rng, s->n, s->e, NULL, NULL, NULL, s->now_ms, BALANCE_EWMA_TAU_MS);
        assert_in_range(p, 0, (int)s->n - 1);
        count[p]++;
        /* +-10% jitter so the fast servers are not all exactly equal. */
        uint64_t jitter = s->rtt_us[p] / 10;
        uint64_t rtt = s->rtt_us[p] - jitter + balance_rand(&s->rng) % (2 * jitter + 1);
        balance_ewma_observe(&s->e[p], rtt, s->now_ms, BALANCE_EWMA_TAU_MS);
    }
}

static void test_p2c_avoids_slow_server_and_takes_it_back_after_recovery(void **state)
{
    (void)state;
    sim_t s = {.n = 10, .rng = 1, .now_ms = 1000};
    for (size_t i = 0; i < s.n; i++)
        s.rtt_us[i] = 1000;
    s.rtt_us[9] = 10000; /* ten times slower */

    /* 10 s: a fair share is 1000 picks; the slow server must get under a quarter of that. */
    int count[10] = {0};
    sim_run(&s, 10000, count);
    print_message("p2c slow phase: slow server %d of 10000 (fair 1000)\n", count[9]);
    assert_true(count[9] < 250);
    for (size_t i = 0; i < 9; i++)
        assert_in_range(count[i], 900, 1300);

    /* It recovers. Its estimate decays while it gets no traffic, so after about
     * tau * ln(10) ~ 23 s it looks as fast as the rest and is probed; its fast answers then
     * hold it there. Within 30 s it must be back to near its fair share, and stay there. */
    s.rtt_us[9] = 1000;
    int back_after_s = -1;
    for (int sec = 1; sec <= 30 && back_after_s < 0; sec++) {
        int warm[10] = {0};
        sim_run(&s, 1000, warm);
        if (warm[9] >= 80) /* 80% of a fair 100 per second */
            back_after_s = sec;
    }
    assert_true(back_after_s > 0);
    int after[10] = {0};
    sim_run(&s, 10000, after);
    print_message("p2c after recovery: fair share back after %d s; then %d of 10000 (fair "
                  "1000)\n",
                  back_after_s, after[9]);
    assert_in_range(after[9], 800, 1200);
}

static void test_p2c_tries_new_servers(void **state)
{
    (void)state;
    balance_ewma_t e[5] = {0};
    for (int i = 0; i < 4; i++)
        balance_ewma_observe(&e[i], 1000 + 100 * (unsigned)i, 1000, BALANCE_EWMA_TAU_MS);
    /* Server 4 has no sample; it is costed like the best server, never as "free" (which
     * would stampede it) nor as unknown-is-bad (which would starve it). */
    uint64_t rng = 7;
    int count[5] = {0};
    for (int i = 0; i < 1000; i++)
        count[balance_p2c_pick(&rng, 5, e, NULL, NULL, NULL, 1000, BALANCE_EWMA_TAU_MS)]++;
    print_message("p2c new server: %d of 1000 (fair 200)\n", count[4]);
    assert_in_range(count[4], 100, 500);

    /* A whole pool without samples: inflight alone decides, still two random choices. */
    balance_ewma_t fresh[3] = {0};
    unsigned inflight[3] = {4, 0, 4};
    for (int i = 0; i < 100; i++) {
        int p = balance_p2c_pick(&rng, 3, fresh, inflight, NULL, NULL, 0, BALANCE_EWMA_TAU_MS);
        assert_true(p >= 0 && p < 3);
    }
}

static void test_p2c_respects_usable_weights_and_inflight(void **state)
{
    (void)state;
    balance_ewma_t e[4] = {0};
    for (int i = 0; i < 4; i++)
        balance_ewma_observe(&e[i], 1000, 1, BALANCE_EWMA_TAU_MS);
    uint64_t rng = 3;
    bool none[4] = {0};
    assert_int_equal(balance_p2c_pick(&rng, 4, e, NULL, NULL, none, 1, 10000), -1);
    bool one[4] = {false, false, true, false};
    assert_int_equal(balance_p2c_pick(&rng, 4, e, NULL, NULL, one, 1, 10000), 2);
    unsigned w0[4] = {1, 0, 0, 0};
    assert_int_equal(balance_p2c_pick(&rng, 4, e, NULL, w0, NULL, 1, 10000), 0);

    /* Equal latency: two candidates, the less busy one wins, so the busiest server is never
     * picked and the idlest always is when drawn. */
    unsigned inflight[4] = {9, 0, 3, 3};
    int count[4] = {0};
    for (int i = 0; i < 600; i++)
        count[balance_p2c_pick(&rng, 4, e, inflight, NULL, NULL, 1, 10000)]++;
    assert_int_equal(count[0], 0);
    assert_in_range(count[1], 250, 350); /* drawn in half the pairs */

    /* Weight 4 at 4x the inflight costs the same as weight 1: both still get picked. */
    unsigned w[2] = {4, 1}, in2[2] = {7, 1};
    int c2[2] = {0};
    for (int i = 0; i < 100; i++)
        c2[balance_p2c_pick(&rng, 2, e, in2, w, NULL, 1, 10000)]++;
    assert_int_equal(c2[0] + c2[1], 100);
    assert_true(c2[0] > 0 && c2[1] > 0);
}

/* ---- consistent hashing ------------------------------------------------------------------ */

static char server_names[10][32];
static const char *server_keys[10];

static void names_init(void)
{
    for (int i = 0; i < 10; i++) {
        snprintf(server_names[i], sizeof(server_names[i]), "10.0.0.%d:8080", i + 1);
        server_keys[i] = server_names[i];
    }
}

static uint64_t key_hash(int k)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "/object/%d", k);
    return balance_hash_bytes(buf, (size_t)len);
}

static void test_hash_is_stable_and_avalanches(void **state)
{
    (void)state;
    assert_true(balance_hash_bytes("abc", 3) == balance_hash_bytes("abc", 3));
    assert_true(balance_hash_bytes("abc", 3) != balance_hash_bytes("abd", 3));
    assert_true(balance_hash_bytes("", 0) != balance_hash_bytes("\0", 1));
    /* Flipping one input bit flips about half the output bits. */
    long flipped = 0, trials = 0;
    for (uint32_t v = 0; v < 200; v++) {
        uint64_t in = v * 0x9e3779b97f4a7c15u;
        uint64_t h = balance_hash_bytes(&in, sizeof(in));
        for (int bit = 0; bit < 64; bit++) {
            uint64_t x = in ^ ((uint64_t)1 << bit);
            flipped += __builtin_popcountll(h ^ balance_hash_bytes(&x, sizeof(x)));
            trials++;
        }
    }
    double mean = (double)flipped / (double)trials;
    print_message("hash avalanche: %.2f of 64 bits\n", mean);
    assert_true(mean > 31 && mean < 33);
}

static void test_ring_maps_same_key_to_same_server(void **state)
{
    (void)state;
    names_init();
    balance_ring_t *a = balance_ring_new(10, NULL, server_keys);
    balance_ring_t *b = balance_ring_new(10, NULL, server_keys);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(balance_ring_servers(a), 10);
    assert_int_equal(balance_ring_points(a), 10 * BALANCE_RING_POINTS_PER_SERVER);
    int count[10] = {0};
    for (int k = 0; k < 10000; k++) {
        int s = balance_ring_pick(a, key_hash(k), NULL, NULL, BALANCE_RING_LOAD_FACTOR);
        assert_in_range(s, 0, 9);
        assert_int_equal(balance_ring_pick(a, key_hash(k), NULL, NULL, 1.25), s);
        assert_int_equal(balance_ring_pick(b, key_hash(k), NULL, NULL, 1.25), s);
        count[s]++;
    }
    for (int s = 0; s < 10; s++)
        assert_in_range(count[s], 700, 1300);
    bool none[10] = {0};
    assert_int_equal(balance_ring_pick(a, key_hash(1), NULL, none, 1.25), -1);
    balance_ring_free(a);
    balance_ring_free(b);
    balance_ring_free(NULL);
}

enum { KEYS = 100000, GONE = 3 };

static void test_ring_removing_one_of_ten_moves_about_a_tenth(void **state)
{
    (void)state;
    names_init();
    static int before[KEYS];
    balance_ring_t *r = balance_ring_new(10, NULL, server_keys);
    assert_non_null(r);
    for (int k = 0; k < KEYS; k++)
        before[k] = balance_ring_pick(r, key_hash(k), NULL, NULL, 0);

    /* Marked unusable: its keys move, nobody else's. */
    bool usable[10];
    for (int i = 0; i < 10; i++)
        usable[i] = i != GONE;
    int moved = 0;
    for (int k = 0; k < KEYS; k++) {
        int s = balance_ring_pick(r, key_hash(k), NULL, usable, 0);
        assert_int_not_equal(s, GONE);
        if (s != before[k]) {
            assert_int_equal(before[k], GONE);
            moved++;
        }
    }
    print_message("ring: marking 1 of 10 unusable moved %.2f%% of keys\n", moved * 100.0 / KEYS);
    assert_in_range(moved, KEYS * 5 / 100, KEYS * 15 / 100);

    /* Rebuilt without it: the other servers keep their points, so the same holds. */
    const char *rest[9];
    int index_of[9];
    for (int i = 0, j = 0; i < 10; i++) {
        if (i == GONE)
            continue;
        rest[j] = server_keys[i];
        index_of[j++] = i;
    }
    balance_ring_t *r9 = balance_ring_new(9, NULL, rest);
    assert_non_null(r9);
    moved = 0;
    for (int k = 0; k < KEYS; k++) {
        int s = index_of[balance_ring_pick(r9, key_hash(k), NULL, NULL, 0)];
        if (s != before[k]) {
            assert_int_equal(before[k], GONE);
            moved++;
        }
    }
    print_message("ring: rebuilding without 1 of 10 moved %.2f%% of keys\n", moved * 100.0 / KEYS);
    assert_in_range(moved, KEYS * 5 / 100, KEYS * 15 / 100);
    balance_ring_free(r);
    balance_ring_free(r9);
}

static void test_ring_weights_1_to_3_split_keys_1_to_3(void **state)
{
    (void)state;
    names_init();
    unsigned w[2] = {1, 3};
    balance_ring_t *r = balance_ring_new(2, w, server_keys);
    assert_non_null(r);
    int count[2] = {0};
    for (int k = 0; k < KEYS; k++)
        count[balance_ring_pick(r, key_hash(k), NULL, NULL, 0)]++;
    print_message("ring 1:3 weights: %d : %d\n", count[0], count[1]);
    assert_in_range(count[1], KEYS * 68 / 100, KEYS * 82 / 100);
    balance_ring_free(r);

    /* Weight 0: no points, never picked. */
    unsigned w0[3] = {1, 0, 1};
    r = balance_ring_new(3, w0, server_keys);
    assert_non_null(r);
    for (int k = 0; k < 1000; k++)
        assert_int_not_equal(balance_ring_pick(r, key_hash(k), NULL, NULL, 0), 1);
    bool only1[3] = {false, true, false};
    assert_int_equal(balance_ring_pick(r, key_hash(0), NULL, only1, 0), -1);
    balance_ring_free(r);
}

static void test_ring_size_stays_bounded_for_big_pools(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char names[N][24];
    static const char *keys[N];
    static unsigned w[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "srv-%d", i);
        keys[i] = names[i];
        w[i] = i % 2 ? 1000 : 1; /* weights 1..1000 */
    }
    balance_ring_t *r = balance_ring_new(N, w, keys);
    assert_non_null(r);
    print_message("ring n=1000 weights 1/1000: %zu points\n", balance_ring_points(r));
    assert_true(balance_ring_points(r) <= BALANCE_RING_MAX_POINTS + N);
    /* Every server has at least one point. */
    bool seen[N] = {0};
    for (int k = 0; k < 2000000; k++) {
        int s = balance_ring_pick(r, balance_rand(&(uint64_t){(uint64_t)k}), NULL, NULL, 0);
        seen[s] = true;
    }
    int light_seen = 0;
    for (int i = 0; i < N; i += 2)
        light_seen += seen[i];
    assert_true(light_seen > N / 4);
    balance_ring_free(r);
    assert_null(balance_ring_new(0, NULL, keys));
}

static void test_ring_bounded_load_spreads_a_hot_key(void **state)
{
    (void)state;
    names_init();
    balance_ring_t *r = balance_ring_new(10, NULL, server_keys);
    assert_non_null(r);
    uint64_t hot = key_hash(12345);
    int home = balance_ring_pick(r, hot, NULL, NULL, 0);
    unsigned inflight[10] = {0};
    unsigned total = 0;
    /* Every request has the same key and none finishes. */
    for (int i = 0; i < 1000; i++) {
        int s = balance_ring_pick(r, hot, inflight, NULL, BALANCE_RING_LOAD_FACTOR);
        if (i == 0)
            assert_int_equal(s, home);
        inflight[s]++;
        total++;
        double avg = (double)total / 10;
        for (int k = 0; k < 10; k++)
            assert_true(inflight[k] <= (unsigned)ceil(BALANCE_RING_LOAD_FACTOR * avg) + 1);
    }
    /* 1000 requests at a bound of 125 fill eight servers: the hot key spilled over. */
    int used = 0;
    for (int k = 0; k < 10; k++)
        used += inflight[k] > 0;
    assert_true(used >= 8);
    assert_true(inflight[home] >= 120);
    /* The home server stays the first choice while under the bound. */
    for (int k = 0; k < 10; k++)
        inflight[k] = 10;
    inflight[home] = 12; /* cap: ceil(1.25 * 103 / 10) = 13 */
    assert_int_equal(balance_ring_pick(r, hot, inflight, NULL, BALANCE_RING_LOAD_FACTOR), home);

    /* Half the pool unusable: the bound is over the usable half only. */
    bool usable[10];
    memset(inflight, 0, sizeof(inflight));
    for (int k = 0; k < 10; k++)
        usable[k] = k % 2 == 0;
    for (int i = 0; i < 500; i++) {
        int s = balance_ring_pick(r, hot, inflight, usable, BALANCE_RING_LOAD_FACTOR);
        assert_true(usable[s]);
        inflight[s]++;
        assert_true(inflight[s] <= (unsigned)ceil(BALANCE_RING_LOAD_FACTOR * (i + 1) / 5.0));
    }
    balance_ring_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_5_1_1_spread_like_nginx),
        cmocka_unit_test(test_ratio_holds_over_many_picks),
        cmocka_unit_test(test_unusable_servers_are_skipped),
        cmocka_unit_test(test_least_conn_picks_least_loaded),
        cmocka_unit_test(test_least_conn_ties_spread_evenly),
        cmocka_unit_test(test_slow_start_ramps_linearly),
        cmocka_unit_test(test_ewma_is_peak_sensitive_and_decays),
        cmocka_unit_test(test_rand_is_deterministic_and_spread),
        cmocka_unit_test(test_p2c_avoids_slow_server_and_takes_it_back_after_recovery),
        cmocka_unit_test(test_p2c_tries_new_servers),
        cmocka_unit_test(test_p2c_respects_usable_weights_and_inflight),
        cmocka_unit_test(test_hash_is_stable_and_avalanches),
        cmocka_unit_test(test_ring_maps_same_key_to_same_server),
        cmocka_unit_test(test_ring_removing_one_of_ten_moves_about_a_tenth),
        cmocka_unit_test(test_ring_weights_1_to_3_split_keys_1_to_3),
        cmocka_unit_test(test_ring_size_stays_bounded_for_big_pools),
        cmocka_unit_test(test_ring_bounded_load_spreads_a_hot_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
