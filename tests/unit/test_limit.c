/* Unit tests of src/shield/limit.c: token buckets against hand-computed
 * figures (including slow rates that a token count with rounding would
 * drift on, and days of idleness), connection counts with both limits,
 * bounded memory and LRU eviction under a flood of a million keys, the
 * eviction preferences inside one set, keys from addresses and bytes, and
 * two threads sharing keys. limit.c is included to reach its SipHash and
 * LRU helpers (STYLE 13). Times are a fake clock in ms. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "shield/limit.c"

#define HOUR_MS UINT64_C(3600000)
#define DAY_MS (24 * HOUR_MS)

static const conf_rate_t no_rate = {0, 0};

static conf_rate_t rate(uint64_t count, uint64_t per_ms)
{
    return (conf_rate_t){count, per_ms};
}

/* The key of the textual address s (IPv6 when it has a colon). */
static limit_key_t key_of(const char *s)
{
    struct sockaddr_storage ss;
    limit_key_t k;

    memset(&ss, 0, sizeof(ss));
    if (strchr(s, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, s, &a->sin_addr), 1);
    }
    limit_key_from_addr(&k, (const struct sockaddr *)&ss);
    return k;
}

/* The i-th of many distinct keys: 2001:db8::/32 with i in the low bits. */
static limit_key_t key_n(uint64_t i)
{
    limit_key_t k;
    memset(&k, 0, sizeof(k));
    k.b[0] = 0x20;
    k.b[1] = 0x01;
    k.b[2] = 0x0d;
    k.b[3] = 0xb8;
    for (int j = 0; j < 8; j++)
        k.b[15 - j] = (uint8_t)(i >> (8 * j));
    return k;
}

/* The open connections of k as the table holds them, or -1 if k is absent. */
static long conns_of(limit_table_t *t, const limit_key_t *k)
{
    uint8_t tag;
    limit_set_t *s = set_of(t, k, &tag);
    int w = set_find(s, tag, k);
    return w < 0 ? -1 : (long)s->conns[w];
}

static limit_table_t *table(size_t capacity)
{
    limit_table_t *t = limit_table_new(capacity);
    assert_non_null(t);
    return t;
}

static void test_siphash_matches_the_reference_vectors(void **state)
{
    /* SipHash-2-4-128 of 0x00 0x01 ... (len bytes) under the key 0x00 ...
     * 0x0f: rows 0, 7, 8, 15, 16 and 63 of vectors_sip128 in vectors.h of
     * the reference implementation (github.com/veorq/SipHash). */
    static const struct {
        size_t len;
        uint8_t tag[16];
    } vectors[] = {
        {0,
         {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02,
          0x93}},
        {7,
         {0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53, 0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0, 0x82,
          0x39}},
        {8,
         {0x3b, 0x62, 0xa9, 0xba, 0x62, 0x58, 0xf5, 0x61, 0x0f, 0x83, 0xe2, 0x64, 0xf3, 0x14, 0x97,
          0xb4}},
        {15,
         {0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3,
          0xd9}},
        {16,
         {0x6e, 0xe2, 0xa4, 0xca, 0x67, 0xb0, 0x54, 0xbb, 0xfd, 0x33, 0x15, 0xbf, 0x85, 0x23, 0x05,
          0x77}},
        {63,
         {0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a, 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f, 0xbd,
          0x7c}},
    };
    uint8_t in[64], out[16];
    const uint64_t key[2] = {UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908)};

    (void)state;
    for (int i = 0; i < 64; i++)
        in[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        sip24_128(key, in, vectors[i].len, out);
        if (memcmp(out, vectors[i].tag, 16) != 0)
            fail_msg("SipHash-2-4-128 of %zu bytes differs from the reference", vectors[i].len);
    }
}

static void test_lru_touch_moves_a_way_to_the_front(void **state)
{
    limit_set_t s;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.order = LIMIT_ORDER_INIT;
    set_touch(&s, 5);
    assert_int_equal(s.order, 076432105u);
    set_touch(&s, 7);
    assert_int_equal(s.order, 064321057u);
    set_touch(&s, 7); /* already first */
    assert_int_equal(s.order, 064321057u);
    set_touch(&s, 6); /* the last one */
    assert_int_equal(s.order, 043210576u);
}

static void test_take_10_per_second_burst_5(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t k = key_of("192.0.2.1");
    conf_rate_t r = rate(10, 1000);

    (void)state;
    for (int i = 0; i < 5; i++)
        assert_int_equal(limit_take(t, &k, r, 5, 0), 0);
    assert_int_equal(limit_take(t, &k, r, 5, 0), 100);
    assert_int_equal(limit_take(t, &k, r, 5, 40), 60);
    assert_int_equal(limit_take(t, &k, r, 5, 99), 1);
    assert_int_equal(limit_take(t, &k, r, 5, 100), 0);
    assert_int_equal(limit_take(t, &k, r, 5, 100), 100);
    /* 350 ms later: 3.5 tokens, so three and the wait for the fourth. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(limit_take(t, &k, r, 5, 450), 0);
    assert_int_equal(limit_take(t, &k, r, 5, 450), 50);
    limit_table_free(t);
}

static void test_take_6000_per_minute(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t k = key_of("192.0.2.2");
    conf_rate_t r = rate(6000, 60000); /* a token every 10 ms */

    (void)state;
    for (int i = 0; i < 100; i++)
        assert_int_equal(limit_take(t, &k, r, 100, 0), 0);
    assert_int_equal(limit_take(t, &k, r, 100, 0), 10);
    assert_int_equal(limit_take(t, &k, r, 100, 7), 3);
    assert_int_equal(limit_take(t, &k, r, 100, 10), 0);
    assert_int_equal(limit_take(t, &k, r, 100, 10), 10);
    /* A second after the bucket emptied, it is full again. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(limit_take(t, &k, r, 100, 1010), 0);
    assert_int_equal(limit_take(t, &k, r, 100, 1010), 10);
    limit_table_free(t);
}

static void test_take_1_per_hour(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t a = key_of("192.0.2.3"), b = key_of("192.0.2.4");
    conf_rate_t r = rate(1, HOUR_MS);

    (void)state;
    assert_int_equal(limit_take(t, &a, r, 1, 0), 0);
    assert_int_equal(limit_take(t, &a, r, 1, 0), HOUR_MS);
    assert_int_equal(limit_take(t, &a, r, 1, HOUR_MS / 2), HOUR_MS / 2);
    assert_int_equal(limit_take(t, &a, r, 1, HOUR_MS - 1), 1);
    assert_int_equal(limit_take(t, &a, r, 1, HOUR_MS), 0);
    /* Burst 3: three at once, then one an hour. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(limit_take(t, &b, r, 3, 5), 0);
    assert_int_equal(limit_take(t, &b, r, 3, 5), HOUR_MS);
    assert_int_equal(limit_take(t, &b, r, 3, 5 + 2 * HOUR_MS), 0);
    assert_int_equal(limit_take(t, &b, r, 3, 5 + 2 * HOUR_MS), 0);
    assert_int_equal(limit_take(t, &b, r, 3, 5 + 2 * HOUR_MS), HOUR_MS);
    limit_table_free(t);
}

/* Refused attempts every second must not slow a slow refill down (a token
 * count refilled from "now - last" and rounded at each attempt would lose a
 * fraction of a token each time), nor fast attempts a fractional rate. */
static void test_take_loses_nothing_to_frequent_refused_attempts(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t a = key_of("192.0.2.5"), b = key_of("192.0.2.6");
    long allowed = 0;

    (void)state;
    for (uint64_t now = 0; now < 10 * HOUR_MS; now += 1000)
        allowed += limit_take(t, &a, rate(1, HOUR_MS), 1, now) == 0;
    assert_int_equal(allowed, 10);
    /* 3/s is a token every 333.33 ms: 30 in 10 s of attempts every ms, and
     * the wait is rounded up to a whole ms. */
    allowed = 0;
    for (uint64_t now = 0; now < 10000; now++)
        allowed += limit_take(t, &b, rate(3, 1000), 1, now) == 0;
    assert_int_equal(allowed, 30);
    limit_key_t c = key_of("192.0.2.7");
    assert_int_equal(limit_take(t, &c, rate(3, 1000), 1, 0), 0);
    assert_int_equal(limit_take(t, &c, rate(3, 1000), 1, 0), 334);
    limit_table_free(t);
}

static void test_take_caps_a_bucket_idle_for_days(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t k = key_of("2001:db8::1");
    conf_rate_t r = rate(10, 1000);

    (void)state;
    assert_int_equal(limit_take(t, &k, r, 5, 1000), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(limit_take(t, &k, r, 5, 1000 + 30 * DAY_MS), 0);
    assert_int_equal(limit_take(t, &k, r, 5, 1000 + 30 * DAY_MS), 100);
    limit_table_free(t);
}

static void test_take_handles_extreme_rates_and_times(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t a = key_of("198.51.100.1"), b = key_of("198.51.100.2");
    limit_key_t c = key_of("198.51.100.3"), d = key_of("198.51.100.4");
    conf_rate_t mega = rate(1000000, 1000);
    long allowed = 0;

    (void)state;
    /* 1e6/s, burst 1e6: the whole burst at once, then about 1000 a ms
     * (the interval rounds up to 2^-20 ms: 999 here). */
    for (int i = 0; i < 1000000; i++)
        allowed += limit_take(t, &a, mega, 1000000, 5 * DAY_MS) == 0;
    assert_int_equal(allowed, 1000000);
    assert_int_equal(limit_take(t, &a, mega, 1000000, 5 * DAY_MS), 1);
    allowed = 0;
    for (int i = 0; i < 2000; i++)
        allowed += limit_take(t, &a, mega, 1000000, 5 * DAY_MS + 1) == 0;
    assert_in_range(allowed, 990, 1000);

    /* The largest burst at the slowest rate: the tolerance is clamped. */
    assert_int_equal(limit_take(t, &b, rate(1, HOUR_MS), UINT_MAX, 0), 0);
    assert_int_equal(limit_take(t, &b, rate(1, UINT64_MAX), UINT_MAX, 0), 0);
    /* An absurdly fast rate, and times past the supported range (clamped:
     * the clock then stands still, which only makes limits stricter). */
    assert_int_equal(limit_take(t, &c, rate(UINT64_MAX, 1), 1, UINT64_MAX), 0);
    assert_int_equal(limit_take(t, &d, rate(1, 1000), 1, UINT64_MAX - 1), 0);
    assert_int_equal(limit_take(t, &d, rate(1, 1000), 1, UINT64_MAX), 1000);
    /* Burst 0 counts as 1; a rate of 0 is no limit and stores nothing. */
    limit_key_t e = key_of("198.51.100.5"), f = key_of("198.51.100.6");
    assert_int_equal(limit_take(t, &e, rate(1, 1000), 0, 0), 0);
    assert_int_equal(limit_take(t, &e, rate(1, 1000), 0, 0), 1000);
    size_t used = limit_table_used(t);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(limit_take(t, &f, no_rate, 1, 0), 0);
        assert_int_equal(limit_take(t, &f, rate(5, 0), 1, 0), 0);
    }
    assert_int_equal(limit_table_used(t), used);
    limit_table_free(t);
}

static void test_conn_acquire_respects_max_conns_and_release(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t k = key_of("203.0.113.1");

    (void)state;
    assert_int_equal(limit_conn_acquire(t, &k, 2, no_rate, 0, 0), LIMIT_OK);
    assert_int_equal(limit_conn_acquire(t, &k, 2, no_rate, 0, 0), LIMIT_OK);
    assert_int_equal(limit_conn_acquire(t, &k, 2, no_rate, 0, 0), LIMIT_CONCURRENT);
    assert_int_equal(conns_of(t, &k), 2);
    limit_conn_release(t, &k);
    assert_int_equal(limit_conn_acquire(t, &k, 2, no_rate, 0, 0), LIMIT_OK);
    /* Releases past zero are no-ops: afterwards, two fit again, not more. */
    for (int i = 0; i < 5; i++)
        limit_conn_release(t, &k);
    assert_int_equal(conns_of(t, &k), 0);
    assert_int_equal(limit_conn_acquire(t, &k, 2, no_rate, 0, 0), LIMIT_OK);
    assert_int_equal(limit_conn_acquire(t, &k, 2, no_rate, 0, 0), LIMIT_OK);
    assert_int_equal(limit_conn_acquire(t, &k, 2, no_rate, 0, 0), LIMIT_CONCURRENT);
    /* max_conns 0 is no limit, but still counts. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(limit_conn_acquire(t, &k, 0, no_rate, 0, 0), LIMIT_OK);
    assert_int_equal(conns_of(t, &k), 102);
    limit_table_free(t);
}

static void test_conn_acquire_with_both_limits_counts_only_what_it_admits(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t k = key_of("203.0.113.2");
    conf_rate_t r = rate(10, 1000);

    (void)state;
    /* At most 1 open, at most 10/s with burst 3. */
    assert_int_equal(limit_conn_acquire(t, &k, 1, r, 3, 0), LIMIT_OK);
    /* Refused for concurrency: no token is taken. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(limit_conn_acquire(t, &k, 1, r, 3, 0), LIMIT_CONCURRENT);
    limit_conn_release(t, &k);
    assert_int_equal(limit_conn_acquire(t, &k, 1, r, 3, 0), LIMIT_OK);
    limit_conn_release(t, &k);
    assert_int_equal(limit_conn_acquire(t, &k, 1, r, 3, 0), LIMIT_OK);
    limit_conn_release(t, &k);
    /* Three tokens used: refused for rate, and nothing counted. */
    assert_int_equal(limit_conn_acquire(t, &k, 1, r, 3, 0), LIMIT_RATE);
    assert_int_equal(conns_of(t, &k), 0);
    assert_int_equal(limit_conn_acquire(t, &k, 1, r, 3, 99), LIMIT_RATE);
    assert_int_equal(limit_conn_acquire(t, &k, 1, r, 3, 100), LIMIT_OK);
    assert_int_equal(limit_conn_acquire(t, &k, 1, r, 3, 300), LIMIT_CONCURRENT);
    assert_int_equal(conns_of(t, &k), 1);
    /* Rate only (max_conns 0): 3 at once, the 4th refused. */
    limit_key_t j = key_of("203.0.113.3");
    for (int i = 0; i < 3; i++)
        assert_int_equal(limit_conn_acquire(t, &j, 0, r, 3, 0), LIMIT_OK);
    assert_int_equal(limit_conn_acquire(t, &j, 0, r, 3, 0), LIMIT_RATE);
    assert_int_equal(conns_of(t, &j), 3);
    limit_table_free(t);
}

static void test_conn_release_of_an_absent_key_changes_nothing(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t k = key_of("203.0.113.4");

    (void)state;
    limit_conn_release(t, &k);
    assert_int_equal(limit_table_used(t), 0);
    assert_int_equal(conns_of(t, &k), -1);
    limit_table_free(t);
}

static void test_capacity_rounds_up_to_a_power_of_two_sets_of_8(void **state)
{
    static const struct {
        size_t asked, got;
    } cases[] = {{1, 8}, {8, 8}, {9, 16}, {17, 32}, {1000, 1024}, {1024, 1024}, {1025, 2048}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        limit_table_t *t = table(cases[i].asked);
        assert_int_equal(limit_table_capacity(t), cases[i].got);
        assert_true(limit_table_memory(t) >= cases[i].got * 32);
        assert_true(limit_table_memory(t) <= cases[i].got * 32 + 256);
        assert_int_equal(limit_table_used(t), 0);
        assert_int_equal(limit_table_evictions(t), 0);
        limit_table_free(t);
    }
    errno = 0;
    assert_null(limit_table_new(0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(limit_table_new(SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    limit_table_free(NULL);
}

static void test_flood_of_a_million_keys_evicts_within_capacity_and_keeps_hot_keys(void **state)
{
    limit_table_t *t = table(1000);
    size_t memory = limit_table_memory(t);
    limit_key_t hot = key_of("192.0.2.100"), cold = key_of("192.0.2.101");
    conf_rate_t r = rate(1, HOUR_MS);

    (void)state;
    /* Both spend their only token: they are refused until state is lost. */
    assert_int_equal(limit_take(t, &hot, r, 1, 0), 0);
    assert_int_equal(limit_take(t, &cold, r, 1, 0), 0);
    for (uint64_t i = 0; i < 1000000; i++) {
        limit_key_t k = key_n(i);
        uint64_t now = i; /* 1000 s of flood, far below the hour */
        assert_int_equal(limit_take(t, &k, r, 1, now), 0);
        if (i % 16 == 0)
            assert_int_equal(limit_take(t, &hot, r, 1, now), HOUR_MS - now);
    }
    assert_int_equal(limit_table_capacity(t), 1024);
    assert_int_equal(limit_table_used(t), 1024);
    assert_int_equal(limit_table_memory(t), memory);
    /* Every new key past the first 1024 evicted one (nothing went stale). */
    assert_int_equal(limit_table_evictions(t), 1000000 + 2 - 1024);
    assert_int_equal(limit_take(t, &hot, r, 1, 1000000), HOUR_MS - 1000000);
    assert_int_equal(limit_take(t, &cold, r, 1, 1000000), 0); /* forgotten */
    limit_table_free(t);
}

/* A capacity-8 table is one set: every key lands in it. */
static void test_eviction_reuses_stale_ways_first_then_spares_open_connections(void **state)
{
    limit_table_t *t = table(8);
    limit_key_t k[10];
    conf_rate_t slow = rate(1, HOUR_MS), fast = rate(10, 1000);

    (void)state;
    assert_int_equal(limit_table_capacity(t), 8);
    for (int i = 0; i < 10; i++)
        k[i] = key_n(1000 + (uint64_t)i);

    /* k0 least recently used but still limited; k1-k7 fast, stale after
     * 100 ms: a new key takes k1's way (the least recent stale one), which
     * is not an eviction, and k0 keeps its state. */
    assert_int_equal(limit_take(t, &k[0], slow, 1, 0), 0);
    for (int i = 1; i < 8; i++)
        assert_int_equal(limit_take(t, &k[i], fast, 1, 1), 0);
    assert_int_equal(limit_take(t, &k[8], slow, 1, 1000), 0);
    assert_int_equal(limit_table_evictions(t), 0);
    assert_int_equal(conns_of(t, &k[1]), -1);
    assert_int_equal(conns_of(t, &k[2]), 0);
    assert_int_equal(limit_take(t, &k[0], slow, 1, 1000), HOUR_MS - 1000);

    /* Now every way holds a connection except k0's, the most recent: a
     * new key evicts k0 rather than any key with a connection. */
    for (int i = 2; i < 9; i++)
        assert_int_equal(limit_conn_acquire(t, &k[i], 0, no_rate, 0, 2000), LIMIT_OK);
    assert_int_equal(limit_take(t, &k[0], slow, 1, 2000), HOUR_MS - 2000);
    assert_int_equal(limit_take(t, &k[9], slow, 1, 2000), 0);
    assert_int_equal(limit_table_evictions(t), 1);
    assert_int_equal(conns_of(t, &k[0]), -1);
    for (int i = 2; i < 9; i++)
        assert_int_equal(conns_of(t, &k[i]), 1);

    /* Every way with a connection: the least recently used goes (k2), and
     * its connection's release is then a no-op. */
    assert_int_equal(limit_conn_acquire(t, &k[9], 0, no_rate, 0, 2000), LIMIT_OK);
    assert_int_equal(limit_conn_acquire(t, &k[0], 0, no_rate, 0, 2000), LIMIT_OK);
    assert_int_equal(limit_table_evictions(t), 2);
    assert_int_equal(conns_of(t, &k[2]), -1);
    limit_conn_release(t, &k[2]);
    assert_int_equal(conns_of(t, &k[2]), -1);
    assert_int_equal(limit_table_used(t), 8);
    limit_table_free(t);
}

static void test_byte_keys_differ_from_each_other_and_from_address_keys(void **state)
{
    limit_table_t *t = table(64), *u = table(64);
    limit_key_t a, a2, b, c, empty, other;
    limit_key_t addr = key_of("2001:db8::1");

    (void)state;
    limit_key_from_bytes(t, &a, "/api", 4);
    limit_key_from_bytes(t, &a2, "/api", 4);
    limit_key_from_bytes(t, &b, "/apj", 4);
    limit_key_from_bytes(t, &c, "/api/", 5);
    limit_key_from_bytes(t, &empty, NULL, 0);
    limit_key_from_bytes(u, &other, "/api", 4);
    assert_memory_equal(&a, &a2, sizeof(a));
    assert_memory_not_equal(&a, &b, sizeof(a));
    assert_memory_not_equal(&a, &c, sizeof(a));
    assert_memory_not_equal(&a, &empty, sizeof(a));
    assert_memory_not_equal(&a, &other, sizeof(a)); /* another table, another secret */
    /* The 16 bytes of an address, hashed, are not that address's key. */
    limit_key_t h;
    limit_key_from_bytes(t, &h, addr.b, sizeof(addr.b));
    assert_memory_not_equal(&h, &addr, sizeof(h));
    /* And byte keys are separate buckets. */
    assert_int_equal(limit_take(t, &a, rate(1, 1000), 1, 0), 0);
    assert_int_equal(limit_take(t, &b, rate(1, 1000), 1, 0), 0);
    assert_int_equal(limit_take(t, &a, rate(1, 1000), 1, 0), 1000);
    limit_table_free(t);
    limit_table_free(u);
}

static void test_ipv4_and_ipv4_mapped_ipv6_are_one_key(void **state)
{
    limit_table_t *t = table(64);
    limit_key_t v4 = key_of("192.0.2.1"), mapped = key_of("::ffff:192.0.2.1");
    limit_key_t compat = key_of("::192.0.2.1"), next = key_of("192.0.2.2");
    struct sockaddr_storage ss;
    struct sockaddr_in *with_port = (struct sockaddr_in *)&ss;
    struct sockaddr_un *unix_sa = (struct sockaddr_un *)&ss;
    limit_key_t k, zero;

    (void)state;
    assert_memory_equal(&v4, &mapped, sizeof(v4));
    assert_memory_not_equal(&v4, &compat, sizeof(v4));
    assert_memory_not_equal(&v4, &next, sizeof(v4));
    /* The port is not part of the key. */
    memset(&ss, 0, sizeof(ss));
    with_port->sin_family = AF_INET;
    with_port->sin_port = htons(4242);
    assert_int_equal(inet_pton(AF_INET, "192.0.2.1", &with_port->sin_addr), 1);
    limit_key_from_addr(&k, (const struct sockaddr *)&ss);
    assert_memory_equal(&k, &v4, sizeof(k));
    /* Other families share the zero key. */
    memset(&ss, 0, sizeof(ss));
    unix_sa->sun_family = AF_UNIX;
    limit_key_from_addr(&k, (const struct sockaddr *)&ss);
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&k, &zero, sizeof(k));
    /* One bucket for both forms. */
    assert_int_equal(limit_take(t, &v4, rate(1, 1000), 1, 0), 0);
    assert_int_equal(limit_take(t, &mapped, rate(1, 1000), 1, 0), 1000);
    limit_table_free(t);
}

/* ---- two threads */

#define HAMMER_KEYS 16
#define HAMMER_ROUNDS 200000

typedef struct {
    limit_table_t *t, *bucket;
    limit_key_t *keys;
    unsigned seed;
    long ok, refused, taken;
} hammer_t;

/* Holds up to 3 connections of shared keys at once, releasing each exactly
 * once; refusals (max 4 per key) are counted, never released. */
static void *hammer(void *arg)
{
    hammer_t *h = arg;
    int held[3] = {-1, -1, -1};

    for (long i = 0; i < HAMMER_ROUNDS; i++) {
        h->seed = h->seed * 1103515245u + 12345u;
        int slot = (int)((h->seed >> 16) % 3), key = (int)((h->seed >> 20) % HAMMER_KEYS);
        if (held[slot] >= 0) {
            limit_conn_release(h->t, &h->keys[held[slot]]);
            held[slot] = -1;
        } else if (limit_conn_acquire(h->t, &h->keys[key], 4, no_rate, 0, 0) == LIMIT_OK) {
            held[slot] = key;
            h->ok++;
        } else {
            h->refused++;
        }
        /* A shared bucket: no token may be lost or duplicated. */
        h->taken += limit_take(h->bucket, &h->keys[0], rate(1, HOUR_MS), 50000, 0) == 0;
    }
    for (int s = 0; s < 3; s++)
        if (held[s] >= 0)
            limit_conn_release(h->t, &h->keys[held[s]]);
    return NULL;
}

static void test_two_threads_sharing_keys_end_with_no_open_connections(void **state)
{
    /* 16 entries: the 16 keys share two sets, so the threads contend for
     * the locks, and keys may be evicted (their releases are then no-ops,
     * or lower the count of the key's next entry, never below zero). The
     * bucket has a table of its own, where nothing can evict it. */
    limit_table_t *t = table(16), *bucket = table(8);
    limit_key_t keys[HAMMER_KEYS];
    hammer_t h[2];
    pthread_t th[2];

    (void)state;
    for (int i = 0; i < HAMMER_KEYS; i++)
        keys[i] = key_n(5000 + (uint64_t)i);
    for (int i = 0; i < 2; i++) {
        h[i] = (hammer_t){.t = t, .bucket = bucket, .keys = keys, .seed = 17u + (unsigned)i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &h[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_true(h[0].ok > 1000 && h[1].ok > 1000);
    for (int i = 0; i < HAMMER_KEYS; i++)
        assert_true(conns_of(t, &keys[i]) <= 0);
    assert_int_equal(h[0].taken + h[1].taken, 50000);
    limit_table_free(t);
    limit_table_free(bucket);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_matches_the_reference_vectors),
        cmocka_unit_test(test_lru_touch_moves_a_way_to_the_front),
        cmocka_unit_test(test_take_10_per_second_burst_5),
        cmocka_unit_test(test_take_6000_per_minute),
        cmocka_unit_test(test_take_1_per_hour),
        cmocka_unit_test(test_take_loses_nothing_to_frequent_refused_attempts),
        cmocka_unit_test(test_take_caps_a_bucket_idle_for_days),
        cmocka_unit_test(test_take_handles_extreme_rates_and_times),
        cmocka_unit_test(test_conn_acquire_respects_max_conns_and_release),
        cmocka_unit_test(test_conn_acquire_with_both_limits_counts_only_what_it_admits),
        cmocka_unit_test(test_conn_release_of_an_absent_key_changes_nothing),
        cmocka_unit_test(test_capacity_rounds_up_to_a_power_of_two_sets_of_8),
        cmocka_unit_test(test_flood_of_a_million_keys_evicts_within_capacity_and_keeps_hot_keys),
        cmocka_unit_test(test_eviction_reuses_stale_ways_first_then_spares_open_connections),
        cmocka_unit_test(test_byte_keys_differ_from_each_other_and_from_address_keys),
        cmocka_unit_test(test_ipv4_and_ipv4_mapped_ipv6_are_one_key),
        cmocka_unit_test(test_two_threads_sharing_keys_end_with_no_open_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
