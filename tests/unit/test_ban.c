/* Unit tests of src/shield/ban.c: addresses (IPv4 and its mapped form are
 * one key), ban lengths that double and stop at the cap, sliding-window
 * strikes, the ban table against a sorted reference (expiry order,
 * replacement when full), the offence memory, bounded strike tables, and
 * the ban file: a round trip, expired bans dropped but remembered, corrupt
 * lines skipped with a warning that names FILE:LINE, missing directories
 * created. Times are made up: nothing here waits. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "shield/ban.h"

#define MIN (60 * 1000ULL)
#define T0 1795000000000ULL /* 2026-11-18, ms */

static ban_addr_t addr(const char *text)
{
    ban_addr_t a;
    if (ban_addr_parse(text, &a) != 0)
        fail_msg("ban_addr_parse(\"%s\") failed", text);
    return a;
}

/* 10.x.y.z for i, distinct for i < 2^24. */
static ban_addr_t addr_n(uint32_t i)
{
    char text[32];
    snprintf(text, sizeof(text), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    return addr(text);
}

static ban_t ban_of(const char *text, uint64_t since, uint64_t until, uint32_t offences)
{
    ban_t b;
    memset(&b, 0, sizeof(b));
    b.addr = addr(text);
    b.since = since;
    b.until = until;
    b.offences = offences;
    snprintf(b.reason, sizeof(b.reason), "strikes");
    snprintf(b.policy, sizeof(b.policy), "default");
    return b;
}

static void test_ipv4_and_its_mapped_form_are_one_address(void **state)
{
    (void)state;
    char text[BAN_ADDR_TEXT_MAX];
    ban_addr_t a = addr("192.0.2.1"), m = addr("::ffff:192.0.2.1"), b;
    assert_memory_equal(&a, &m, sizeof(a));
    assert_true(ban_addr_is_v4(&m));
    ban_addr_format(&m, text, sizeof(text));
    assert_string_equal(text, "192.0.2.1");

    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_pton(AF_INET, "192.0.2.1", &s4.sin_addr);
    assert_true(ban_addr_from_sockaddr((struct sockaddr *)&s4, &b));
    assert_memory_equal(&a, &b, sizeof(a));

    ban_addr_t v6 = addr("2001:DB8::0:1");
    assert_false(ban_addr_is_v4(&v6));
    ban_addr_format(&v6, text, sizeof(text));
    assert_string_equal(text, "2001:db8::1");

    static const char *const bad[] = {"",        "192.0.2", "192.0.2.1/32", "[::1]",
                                      "::1:80:", "x",       "192.0.2.1:80", "256.0.0.1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ban_addr_parse(bad[i], &b), -EINVAL);
    assert_int_equal(ban_addr_parse(NULL, &b), -EINVAL);
    struct sockaddr sa = {.sa_family = AF_UNIX};
    assert_false(ban_addr_from_sockaddr(&sa, &b));
}

static void test_ban_length_doubles_per_offence_up_to_the_cap(void **state)
{
    (void)state;
    assert_int_equal(ban_duration(10 * MIN, 60 * MIN, 1), 10 * MIN);
    assert_int_equal(ban_duration(10 * MIN, 60 * MIN, 2), 20 * MIN);
    assert_int_equal(ban_duration(10 * MIN, 60 * MIN, 3), 40 * MIN);
    assert_int_equal(ban_duration(10 * MIN, 60 * MIN, 4), 60 * MIN);
    assert_int_equal(ban_duration(10 * MIN, 60 * MIN, 4000000000u), 60 * MIN);
    /* for above max: max wins; no max: a year at most, never overflowing. */
    assert_int_equal(ban_duration(90 * MIN, 60 * MIN, 1), 60 * MIN);
    assert_int_equal(ban_duration(10 * MIN, 0, 200), BAN_FOR_MAX_MS);
    assert_int_equal(ban_duration(UINT64_MAX, 0, 1), BAN_FOR_MAX_MS);
}

static void test_strikes_ban_at_exactly_after_within_the_window(void **state)
{
    (void)state;
    ban_strikes_t *st = ban_strikes_new();
    ban_addr_t a = addr("192.0.2.1"), b = addr("2001:db8::1");
    /* 3 strikes less than 10 s old. */
    assert_false(ban_strikes_add(st, &a, T0, 3, 10000));
    assert_false(ban_strikes_add(st, &b, T0, 3, 10000));
    assert_false(ban_strikes_add(st, &a, T0 + 4000, 3, 10000));
    assert_true(ban_strikes_add(st, &a, T0 + 9999, 3, 10000));
    /* The ban wiped a's count: two more are not enough. */
    assert_false(ban_strikes_add(st, &a, T0 + 10000, 3, 10000));
    assert_false(ban_strikes_add(st, &a, T0 + 10001, 3, 10000));
    assert_int_equal(ban_strikes_count(st), 2);

    /* Sliding: the first strike is exactly 10 s old at the third, so too
     * old; the fourth makes three within 10 s. */
    assert_false(ban_strikes_add(st, &b, T0 + 5000, 3, 10000));
    assert_false(ban_strikes_add(st, &b, T0 + 10000, 3, 10000));
    assert_true(ban_strikes_add(st, &b, T0 + 10001, 3, 10000));

    /* after 1: the first strike bans; after above the cap counts as cap. */
    ban_addr_t c = addr("192.0.2.3");
    assert_true(ban_strikes_add(st, &c, T0, 1, 1));
    for (unsigned i = 1; i < BAN_STRIKES_MAX; i++)
        assert_false(ban_strikes_add(st, &c, T0 + i, 1000, MIN));
    assert_true(ban_strikes_add(st, &c, T0 + BAN_STRIKES_MAX, 1000, MIN));
    ban_strikes_free(st);
}

static void test_strike_table_stays_bounded(void **state)
{
    (void)state;
    ban_strikes_t *st = ban_strikes_new();
    for (uint32_t i = 0; i < BAN_STRIKERS_MAX + 1000; i++) {
        ban_addr_t a = addr_n(i);
        assert_false(ban_strikes_add(st, &a, T0 + i, 2, MIN));
    }
    assert_int_equal(ban_strikes_count(st), BAN_STRIKERS_MAX);
    /* Eviction takes addresses struck long ago: the newest kept its strike. */
    ban_addr_t newest = addr_n(BAN_STRIKERS_MAX + 999);
    assert_true(ban_strikes_add(st, &newest, T0 + BAN_STRIKERS_MAX + 1000, 2, MIN));
    ban_strikes_free(st);
}

/* Expiry hands bans back soonest first, whatever the insertion order and
 * after updates and lifts in the middle of the heap. */
static void test_bans_expire_soonest_first(void **state)
{
    (void)state;
    enum { N = 3000 };
    ban_table_t *t = ban_table_new();
    static uint64_t until[N];
    srand(7);
    for (uint32_t i = 0; i < N; i++) {
        ban_t b = ban_of("192.0.2.1", T0, 0, 1), r;
        b.addr = addr_n(i);
        until[i] = b.until = T0 + 1 + (uint64_t)(rand() % 100000);
        assert_int_equal(ban_table_put(t, &b, &r), BAN_PUT_NEW);
    }
    /* Move a few, lift a few. */
    for (uint32_t i = 0; i < N; i += 7) {
        ban_t b = ban_of("192.0.2.1", T0, 0, 2), r;
        b.addr = addr_n(i);
        until[i] = b.until = T0 + 1 + (uint64_t)(rand() % 100000);
        assert_int_equal(ban_table_put(t, &b, &r), BAN_PUT_UPDATED);
    }
    size_t left = N;
    for (uint32_t i = 1; i < N; i += 11) {
        ban_addr_t a = addr_n(i);
        assert_int_equal(ban_table_lift(t, &a, NULL), 0);
        assert_int_equal(ban_table_lift(t, &a, NULL), -ENOENT);
        assert_int_equal(ban_table_until(t, &a), 0);
        until[i] = 0;
        left--;
    }
    assert_int_equal(ban_table_count(t), left);
    for (uint32_t i = 0; i < N; i++) {
        ban_addr_t a = addr_n(i);
        assert_int_equal(ban_table_until(t, &a), until[i]);
    }
    ban_t out[64];
    uint64_t last = 0;
    size_t got = 0, k;
    for (uint64_t now = T0; now < T0 + 100001 + 997; now += 997) {
        while ((k = ban_table_expire(t, now, out, 64)) > 0) {
            for (size_t i = 0; i < k; i++) {
                assert_true(out[i].until <= now);
                assert_true(out[i].until >= last);
                last = out[i].until;
            }
            got += k;
        }
        assert_true(ban_table_next_expiry(t) > now);
    }
    assert_int_equal(got, left);
    assert_int_equal(ban_table_count(t), 0);
    assert_int_equal(ban_table_next_expiry(t), UINT64_MAX);
    ban_table_free(t);
}

static void test_full_table_replaces_the_ban_that_expires_first(void **state)
{
    (void)state;
    ban_table_t *t = ban_table_new();
    ban_t r;
    for (uint32_t i = 0; i < BAN_MAX; i++) {
        ban_t b = ban_of("192.0.2.1", T0, T0 + 1000 + (i * 7919u) % BAN_MAX, 1);
        b.addr = addr_n(i);
        assert_int_equal(ban_table_put(t, &b, &r), BAN_PUT_NEW);
    }
    ban_t b = ban_of("2001:db8::1", T0, T0 + 5 * MIN, 1);
    assert_int_equal(ban_table_put(t, &b, &r), BAN_PUT_REPLACED);
    assert_int_equal(r.until, T0 + 1000); /* i = 0 */
    ban_addr_t first = addr_n(0);
    assert_memory_equal(&r.addr, &first, sizeof(first));
    assert_int_equal(ban_table_until(t, &first), 0);
    assert_int_equal(ban_table_until(t, &b.addr), T0 + 5 * MIN);
    assert_int_equal(ban_table_count(t), BAN_MAX);
    ban_table_free(t);
}

static void test_offences_are_remembered_for_a_day_after_the_ban(void **state)
{
    (void)state;
    ban_table_t *t = ban_table_new();
    ban_t b = ban_of("192.0.2.1", T0, T0 + 10 * MIN, 1), r;
    assert_int_equal(ban_table_offences(t, &b.addr, T0), 0);
    assert_int_equal(ban_table_put(t, &b, &r), BAN_PUT_NEW);
    ban_t out[1];
    assert_int_equal(ban_table_expire(t, T0 + 10 * MIN, out, 1), 1);
    assert_int_equal(ban_table_offences(t, &b.addr, T0 + 10 * MIN + BAN_MEMORY_MS - 1), 1);
    assert_int_equal(ban_table_offences(t, &b.addr, T0 + 10 * MIN + BAN_MEMORY_MS), 0);

    /* Lifting early keeps the memory; remember only raises it. */
    ban_t c = ban_of("192.0.2.2", T0, T0 + MIN, 3);
    assert_int_equal(ban_table_put(t, &c, &r), BAN_PUT_NEW);
    assert_int_equal(ban_table_lift(t, &c.addr, NULL), 0);
    assert_int_equal(ban_table_offences(t, &c.addr, T0), 3);
    ban_table_remember(t, &c.addr, 1, T0 + 1);
    assert_int_equal(ban_table_offences(t, &c.addr, T0 + 2), 3);

    /* Bounded: the table keeps at most BAN_OFFENDERS_MAX. */
    for (uint32_t i = 0; i < BAN_OFFENDERS_MAX + 100; i++) {
        ban_addr_t a = addr_n(i);
        ban_table_remember(t, &a, 1, T0 + 1 + i);
    }
    size_t kept = 0;
    for (uint32_t i = 0; i < BAN_OFFENDERS_MAX + 100; i++) {
        ban_addr_t a = addr_n(i);
        kept += ban_table_offences(t, &a, T0) != 0;
    }
    assert_true(kept <= BAN_OFFENDERS_MAX);
    assert_true(kept >= BAN_OFFENDERS_MAX - 10);
    ban_table_free(t);
}

/* ---- the ban file ---- */

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/surety-ban-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs ban_file_load with stderr sent to a file; returns what it wrote. */
static char *load_capturing(ban_table_t *t, const char *path, uint64_t now, int *ret)
{
    char log[128], err[256];
    snprintf(log, sizeof(log), "%s/stderr", tmpdir);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int saved = dup(2);
    dup2(fd, 2);
    *ret = ban_file_load(t, path, now, err, sizeof(err));
    dup2(saved, 2);
    close(saved);
    close(fd);
    return slurp(log);
}

static void test_ban_file_round_trip_drops_expired_and_skips_corrupt_lines(void **state)
{
    (void)state;
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/var/lib/bans", tmpdir); /* var/lib missing */
    ban_t bans[3] = {
        ban_of("192.0.2.1", T0, T0 + 10 * MIN, 2),
        ban_of("2001:db8::7", T0, T0 + 60 * MIN, 1),
        ban_of("192.0.2.3", T0, T0 + MIN, 4),
    };
    snprintf(bans[1].reason, sizeof(bans[1].reason), "manual");
    bans[1].policy[0] = '\0';
    assert_int_equal(ban_file_save(path, bans, 3, err, sizeof(err)), 0);
    char *text = slurp(path);
    assert_non_null(text);
    assert_string_equal(
        text, "{\"address\":\"192.0.2.1\",\"since\":1795000000000,\"until\":1795000600000,"
              "\"offences\":2,\"reason\":\"strikes\",\"policy\":\"default\"}\n"
              "{\"address\":\"2001:db8::7\",\"since\":1795000000000,\"until\":1795003600000,"
              "\"offences\":1,\"reason\":\"manual\"}\n"
              "{\"address\":\"192.0.2.3\",\"since\":1795000000000,\"until\":1795000060000,"
              "\"offences\":4,\"reason\":\"strikes\",\"policy\":\"default\"}\n");
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);

    /* Corrupt lines between good ones. */
    FILE *f = fopen(path, "a");
    fputs("{\"address\":\"192.0.2.\n", f);
    fputs("\n", f);
    fputs("{\"address\":\"192.0.2.9\",\"since\":5,\"until\":4,\"offences\":1}\n", f);
    fputs("[1,2]\n", f);
    fputs("{\"address\":\"192.0.2.8\",\"since\":1795000000000,\"until\":1795009999999,"
          "\"offences\":1}",
          f); /* no final newline: still a line */
    fclose(f);

    ban_table_t *t = ban_table_new();
    int r;
    char *log = load_capturing(t, path, T0 + 2 * MIN, &r);
    assert_int_equal(r, 0);
    char want[160];
    snprintf(want, sizeof(want), "%s:4: skipped", path);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof(want), "%s:6: skipped", path);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof(want), "%s:7: skipped", path);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof(want), "%s:5:", path); /* an empty line is fine */
    assert_null(strstr(log, want));

    /* 192.0.2.3 expired a minute ago: gone, but remembered. */
    assert_int_equal(ban_table_count(t), 3);
    assert_int_equal(ban_table_until(t, &bans[0].addr), T0 + 10 * MIN);
    assert_int_equal(ban_table_until(t, &bans[1].addr), T0 + 60 * MIN);
    assert_int_equal(ban_table_until(t, &bans[2].addr), 0);
    assert_int_equal(ban_table_offences(t, &bans[2].addr, T0 + 2 * MIN), 4);
    ban_addr_t a8 = addr("192.0.2.8");
    assert_int_equal(ban_table_until(t, &a8), 1795009999999ULL);
    ban_t *snap;
    size_t n;
    assert_int_equal(ban_table_snapshot(t, &snap, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        if (memcmp(&snap[i].addr, &bans[1].addr, sizeof(bans[1].addr)) == 0) {
            assert_string_equal(snap[i].reason, "manual");
            assert_string_equal(snap[i].policy, "");
        }
    free(snap);
    ban_table_free(t);
}

static void test_missing_ban_file_is_an_empty_list(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/nothing/bans", tmpdir);
    ban_table_t *t = ban_table_new();
    assert_int_equal(ban_file_load(t, path, T0, err, sizeof(err)), 0);
    assert_int_equal(ban_table_count(t), 0);
    /* A directory where the file should be is an error with the path. */
    assert_int_equal(ban_file_load(t, tmpdir, T0, err, sizeof(err)), -EISDIR);
    assert_non_null(strstr(err, tmpdir));
    ban_table_free(t);
}

static void test_ban_file_save_reports_the_path(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/file/bans", tmpdir);
    char file[128];
    snprintf(file, sizeof(file), "%s/file", tmpdir);
    close(open(file, O_WRONLY | O_CREAT, 0600)); /* a file where a directory must be */
    assert_true(ban_file_save(path, NULL, 0, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_and_its_mapped_form_are_one_address),
        cmocka_unit_test(test_ban_length_doubles_per_offence_up_to_the_cap),
        cmocka_unit_test(test_strikes_ban_at_exactly_after_within_the_window),
        cmocka_unit_test(test_strike_table_stays_bounded),
        cmocka_unit_test(test_bans_expire_soonest_first),
        cmocka_unit_test(test_full_table_replaces_the_ban_that_expires_first),
        cmocka_unit_test(test_offences_are_remembered_for_a_day_after_the_ban),
        cmocka_unit_test_setup_teardown(
            test_ban_file_round_trip_drops_expired_and_skips_corrupt_lines, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(test_missing_ban_file_is_an_empty_list, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_ban_file_save_reports_the_path, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
