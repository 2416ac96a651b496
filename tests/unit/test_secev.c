/* Unit tests of src/shield/secev.c, the security center with its real
 * thread: the event JSON (exact, for a known event; empty fields left out;
 * stray bytes escaped), the log file (lines, reopen, write errors, drained
 * at free), strikes that ban at exactly `after`, doubling for repeat
 * offenders up to the cap, expiry, manual bans and lifts, persistence
 * across sec_free/sec_new, the bounded queue dropping without blocking,
 * the ring and its client filter, sec_banned for every address form, and
 * two threads posting at once (run it under ASan).
 *
 * The clock is injected: time moves when a test says so, and sec_sync
 * makes the thread catch up, so nothing waits for wall-clock minutes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shield/secev.h"

#define MIN (60 * 1000ULL)
#define DAY (24 * 60 * MIN)
#define T0 1795000000000ULL

/* ---- the injected clock ---- */

static atomic_uint_fast64_t fake_now = T0;
static pthread_t main_thread;
/* While closed, the center's thread stops in its next clock reading: a
 * test can then fill the queue knowing nobody empties it. */
static atomic_bool gate_closed, gate_blocked;

static uint64_t test_clock(void)
{
    if (atomic_load(&gate_closed) && !pthread_equal(pthread_self(), main_thread)) {
        atomic_store(&gate_blocked, true);
        while (atomic_load(&gate_closed))
            usleep(1000);
        atomic_store(&gate_blocked, false);
    }
    return atomic_load(&fake_now);
}

/* ---- helpers ---- */

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    atomic_store(&fake_now, T0);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/surety-secev-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static sec_t *open_sec(sec_conf_t c)
{
    char err[256] = "";
    c.clock_ms = test_clock;
    sec_t *s = sec_new(&c, err, sizeof(err));
    if (!s)
        fail_msg("sec_new: %s", err);
    return s;
}

static sock_addr_t sock_of(const char *ip)
{
    sock_addr_t a;
    memset(&a, 0, sizeof(a));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(40000);
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        a.len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(40000);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
        a.len = sizeof(*s4);
    }
    return a;
}

static bool banned(sec_t *s, const char *ip)
{
    sock_addr_t a = sock_of(ip);
    return sec_banned(s, (const struct sockaddr *)&a.ss);
}

/* A rate-limit block of a request from ip. */
static secev_t event(const char *ip, const char *detail)
{
    secev_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.client = sock_of(ip);
    snprintf(ev.policy, sizeof(ev.policy), "default");
    ev.layer = SECEV_REQUEST;
    ev.action = SECEV_BLOCK;
    snprintf(ev.reason, sizeof(ev.reason), "rate-limit");
    ev.status = 429;
    snprintf(ev.detail, sizeof(ev.detail), "%s", detail);
    return ev;
}

static void post(sec_t *s, const char *ip, const secev_ban_rule_t *rule)
{
    secev_t ev = event(ip, "");
    sec_post(s, &ev, rule);
}

/* The events after the thread caught up; the caller json_decref()s. */
static json_t *events(sec_t *s, size_t limit, const char *client)
{
    assert_true(sec_sync(s, 5000));
    json_t *arr = sec_events_json(s, limit, client);
    assert_non_null(arr);
    return arr;
}

static const char *field(json_t *arr, size_t i, const char *key)
{
    json_t *v = json_object_get(json_array_get(arr, i), key);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* The newest event, which must be a ban-layer one with this action. */
static void assert_newest_ban(sec_t *s, const char *action, const char *client, const char *reason,
                              const char *detail)
{
    json_t *arr = events(s, 1, NULL);
    assert_int_equal(json_array_size(arr), 1);
    assert_string_equal(field(arr, 0, "layer"), "ban");
    assert_string_equal(field(arr, 0, "action"), action);
    assert_string_equal(field(arr, 0, "client"), client);
    assert_string_equal(field(arr, 0, "reason"), reason);
    assert_string_equal(field(arr, 0, "detail"), detail);
    json_decref(arr);
}

static char *slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; text && *text; text++)
        n += *text == '\n';
    return n;
}

static sec_counters_t counters(sec_t *s)
{
    sec_counters_t c;
    sec_counters(s, &c);
    return c;
}

/* ---- event JSON and the log ---- */

static const char known_json[] =
    "{\"time\":\"2026-11-29T14:05:19.123Z\",\"client\":\"127.0.0.5\",\"policy\":\"default\","
    "\"layer\":\"content\",\"action\":\"block\",\"reason\":\"waf\",\"status\":403,"
    "\"rules\":[942100,949110],\"request_id\":\"0af3c2d1e4b5a69788796a5b4c3d2e1f\","
    "\"method\":\"GET\",\"path\":\"/?id=1%27%20OR%201=1\","
    "\"detail\":\"SQL Injection Attack Detected via libinjection\"}";

static secev_t known_event(void)
{
    struct tm tm = {
        .tm_year = 126, .tm_mon = 10, .tm_mday = 29, .tm_hour = 14, .tm_min = 5, .tm_sec = 19};
    secev_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.wall_ms = (uint64_t)timegm(&tm) * 1000 + 123;
    ev.client = sock_of("127.0.0.5");
    snprintf(ev.policy, sizeof(ev.policy), "default");
    ev.layer = SECEV_CONTENT;
    ev.action = SECEV_BLOCK;
    snprintf(ev.reason, sizeof(ev.reason), "waf");
    ev.status = 403;
    ev.rules[0] = 942100;
    ev.rules[1] = 949110;
    ev.nrules = 2;
    snprintf(ev.request_id, sizeof(ev.request_id), "0af3c2d1e4b5a69788796a5b4c3d2e1f");
    snprintf(ev.method, sizeof(ev.method), "GET");
    snprintf(ev.path, sizeof(ev.path), "/?id=1%%27%%20OR%%201=1");
    snprintf(ev.detail, sizeof(ev.detail), "SQL Injection Attack Detected via libinjection");
    return ev;
}

static void test_event_json_is_exact_for_a_known_event(void **state)
{
    (void)state;
    secev_t ev = known_event();
    json_t *o = secev_json(&ev);
    char *text = json_dumps(o, JSON_COMPACT);
    assert_string_equal(text, known_json);
    free(text);
    json_decref(o);

    /* The log line is the same, with the full address. */
    char path[128];
    snprintf(path, sizeof(path), "%s/security.log", tmpdir);
    sec_t *s = open_sec((sec_conf_t){.log_path = path});
    sec_post(s, &ev, NULL);
    assert_true(sec_sync(s, 5000));
    char want[sizeof(known_json) + 1];
    snprintf(want, sizeof(want), "%s\n", known_json);
    assert_string_equal(slurp(path), want);
    sec_free(s);
}

static void test_event_json_leaves_out_empty_fields_and_escapes_stray_bytes(void **state)
{
    (void)state;
    secev_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.wall_ms = T0;
    ev.client = sock_of("::ffff:192.0.2.1");
    ev.layer = SECEV_CONNECTION;
    ev.action = SECEV_REFUSE;
    snprintf(ev.reason, sizeof(ev.reason), "deny-list");
    json_t *o = secev_json(&ev);
    char *text = json_dumps(o, JSON_COMPACT);
    assert_string_equal(text, "{\"time\":\"2026-11-18T11:06:40.000Z\",\"client\":\"192.0.2.1\","
                              "\"layer\":\"connection\",\"action\":\"refuse\","
                              "\"reason\":\"deny-list\"}");
    free(text);
    json_decref(o);

    /* Client-chosen bytes: quotes and controls escaped by JSON, bytes
     * that are not UTF-8 as \xNN, valid UTF-8 kept; a full array (no NUL)
     * is read to its end and no further. */
    ev.client = sock_of("2001:db8::1");
    snprintf(ev.path, sizeof(ev.path), "/a\"b\x01\xff\xc3\xa9\xe2\x82");
    memset(ev.method, 'A', sizeof(ev.method));
    ev.layer = 77;
    o = secev_json(&ev);
    text = json_dumps(o, JSON_COMPACT);
    assert_string_equal(text, "{\"time\":\"2026-11-18T11:06:40.000Z\",\"client\":\"2001:db8::1\","
                              "\"layer\":\"?\",\"action\":\"refuse\",\"reason\":\"deny-list\","
                              "\"method\":\"AAAAAAAAAAAAAAAA\","
                              "\"path\":\"/a\\\"b\\u0001\\\\xff\xc3\xa9\\\\xe2\\\\x82\"}");
    free(text);
    json_decref(o);
}

static void test_log_is_reopened_and_drained_at_free(void **state)
{
    (void)state;
    char path[128], old[160];
    snprintf(path, sizeof(path), "%s/security.log", tmpdir);
    snprintf(old, sizeof(old), "%s.1", path);
    sec_t *s = open_sec((sec_conf_t){.log_path = path});
    for (int i = 0; i < 3; i++)
        post(s, "192.0.2.1", NULL);
    assert_true(sec_sync(s, 5000));
    assert_int_equal(rename(path, old), 0);
    sec_reopen_log(s);
    for (int i = 0; i < 100; i++)
        post(s, "192.0.2.2", NULL);
    sec_free(s); /* no sync: free drains */
    assert_int_equal(count_lines(slurp(old)), 3);
    char *text = slurp(path);
    assert_int_equal(count_lines(text), 100);
    assert_non_null(strstr(text, "\"client\":\"192.0.2.2\""));
}

static void test_log_write_errors_are_counted(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){.log_path = "/dev/full"});
    post(s, "192.0.2.1", NULL);
    assert_true(sec_sync(s, 5000));
    assert_true(counters(s).log_errors >= 1);
    /* The ring still has it. */
    json_t *arr = events(s, 0, NULL);
    assert_int_equal(json_array_size(arr), 1);
    json_decref(arr);
    sec_free(s);
}

static void test_sec_new_names_what_it_cannot_open(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/missing/security.log", tmpdir);
    sec_conf_t c = {.log_path = path, .clock_ms = test_clock};
    assert_null(sec_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, path));

    char file[128];
    snprintf(file, sizeof(file), "%s/file", tmpdir);
    close(open(file, O_WRONLY | O_CREAT, 0600));
    snprintf(path, sizeof(path), "%s/file/bans", tmpdir);
    c = (sec_conf_t){.bans_path = path, .clock_ms = test_clock};
    assert_null(sec_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "bans"));
    assert_non_null(strstr(err, path));
}

/* ---- strikes and bans ---- */

static void test_strikes_ban_at_exactly_after(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){0});
    secev_ban_rule_t rule = {.after = 3, .within_ms = 10000, .for_ms = MIN};
    post(s, "192.0.2.1", &rule);
    post(s, "192.0.2.1", &rule);
    post(s, "192.0.2.2", &rule);
    post(s, "192.0.2.1", NULL); /* does not count */
    assert_true(sec_sync(s, 5000));
    assert_false(banned(s, "192.0.2.1"));
    assert_int_equal(counters(s).bans_total, 0);

    post(s, "192.0.2.1", &rule);
    assert_newest_ban(s, "ban", "192.0.2.1", "strikes", "for 1m, offence 1");
    assert_true(banned(s, "192.0.2.1"));
    assert_false(banned(s, "192.0.2.2"));

    /* A banned client's events are the ban at work, not offences. */
    for (int i = 0; i < 10; i++)
        post(s, "192.0.2.1", &rule);
    assert_true(sec_sync(s, 5000));
    sec_counters_t c = counters(s);
    assert_int_equal(c.posted, 15);
    assert_int_equal(c.dropped, 0);
    assert_int_equal(c.bans_total, 1);
    assert_int_equal(c.bans_active, 1);

    json_t *bans = sec_bans_json(s);
    char *text = json_dumps(bans, JSON_COMPACT);
    assert_string_equal(text, "[{\"address\":\"192.0.2.1\",\"since\":\"2026-11-18T11:06:40.000Z\","
                              "\"until\":\"2026-11-18T11:07:40.000Z\",\"offences\":1,"
                              "\"reason\":\"strikes\",\"policy\":\"default\"}]");
    free(text);
    json_decref(bans);
    sec_free(s);
}

static void test_strikes_slide_with_time(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){0});
    secev_ban_rule_t rule = {.after = 3, .within_ms = 10000, .for_ms = MIN};
    post(s, "2001:db8::1", &rule); /* T0 */
    atomic_store(&fake_now, T0 + 6000);
    post(s, "2001:db8::1", &rule);
    atomic_store(&fake_now, T0 + 10000);
    post(s, "2001:db8::1", &rule); /* the first is 10 s old: out */
    assert_true(sec_sync(s, 5000));
    assert_false(banned(s, "2001:db8::1"));
    atomic_store(&fake_now, T0 + 15999);
    post(s, "2001:db8::1", &rule); /* 6000, 10000, 15999 */
    assert_newest_ban(s, "ban", "2001:db8::1", "strikes", "for 1m, offence 1");
    sec_free(s);
}

static void test_expiry_lifts_the_ban(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){0});
    secev_ban_rule_t rule = {.after = 1, .within_ms = 1000, .for_ms = 10 * MIN};
    post(s, "192.0.2.1", &rule);
    assert_true(sec_sync(s, 5000));
    assert_true(banned(s, "192.0.2.1"));
    atomic_store(&fake_now, T0 + 10 * MIN - 1);
    assert_true(banned(s, "192.0.2.1"));
    /* Not banned the moment the time is up, lifted by the thread soon. */
    atomic_store(&fake_now, T0 + 10 * MIN);
    assert_false(banned(s, "192.0.2.1"));
    assert_newest_ban(s, "lift", "192.0.2.1", "expired", "ban of 10m, offence 1");
    assert_int_equal(counters(s).bans_active, 0);
    assert_int_equal(sec_ban_lift(s, "192.0.2.1"), -ENOENT);
    sec_free(s);
}

static void test_repeat_offenders_are_banned_longer_up_to_the_cap(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){0});
    secev_ban_rule_t rule = {.after = 1, .within_ms = 1000, .for_ms = MIN, .max_ms = 200000};
    static const struct {
        uint64_t len;
        const char *detail;
    } want[] = {
        {MIN, "for 1m, offence 1"},
        {2 * MIN, "for 2m, offence 2"},
        {200000, "for 3m20s, offence 3"},
        {200000, "for 3m20s, offence 4"},
    };
    uint64_t now = T0;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        post(s, "192.0.2.1", &rule);
        assert_newest_ban(s, "ban", "192.0.2.1", "strikes", want[i].detail);
        atomic_store(&fake_now, now + want[i].len - 1);
        assert_true(banned(s, "192.0.2.1"));
        now += want[i].len;
        atomic_store(&fake_now, now);
        assert_true(sec_sync(s, 5000));
        assert_false(banned(s, "192.0.2.1"));
    }
    /* Remembered for a day after the last ban ended, then forgotten. */
    atomic_store(&fake_now, now + DAY - 1);
    post(s, "192.0.2.1", &rule);
    assert_newest_ban(s, "ban", "192.0.2.1", "strikes", "for 3m20s, offence 5");
    now += DAY + 200000;
    atomic_store(&fake_now, now + DAY);
    assert_true(sec_sync(s, 5000));
    post(s, "192.0.2.1", &rule);
    assert_newest_ban(s, "ban", "192.0.2.1", "strikes", "for 1m, offence 1");
    sec_free(s);
}

static void test_manual_ban_and_lift(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){0});
    assert_int_equal(sec_ban_add(s, "192.0.2.7", 10 * MIN, "abuse"), 0);
    assert_true(banned(s, "192.0.2.7")); /* at once, not after the thread */
    assert_newest_ban(s, "ban", "192.0.2.7", "abuse", "for 10m, offence 1");
    json_t *bans = sec_bans_json(s);
    char *text = json_dumps(bans, JSON_COMPACT);
    assert_string_equal(text, "[{\"address\":\"192.0.2.7\",\"since\":\"2026-11-18T11:06:40.000Z\","
                              "\"until\":\"2026-11-18T11:16:40.000Z\",\"offences\":1,"
                              "\"reason\":\"abuse\"}]");
    free(text);
    json_decref(bans);

    assert_int_equal(sec_ban_lift(s, "192.0.2.7"), 0);
    assert_false(banned(s, "192.0.2.7"));
    assert_newest_ban(s, "lift", "192.0.2.7", "manual", "ban of 10m, offence 1");
    assert_int_equal(sec_ban_lift(s, "192.0.2.7"), -ENOENT);

    assert_int_equal(sec_ban_add(s, "not-an-address", MIN, NULL), -EINVAL);
    assert_int_equal(sec_ban_add(s, "192.0.2.7/32", MIN, NULL), -EINVAL);
    assert_int_equal(sec_ban_add(s, "192.0.2.7", 0, NULL), -EINVAL);
    assert_int_equal(sec_ban_lift(s, "nope"), -EINVAL);

    /* The manual ban was an offence: the next automatic one doubles. */
    secev_ban_rule_t rule = {.after = 1, .within_ms = 1000, .for_ms = MIN};
    post(s, "192.0.2.7", &rule);
    assert_newest_ban(s, "ban", "192.0.2.7", "strikes", "for 2m, offence 2");
    /* Re-banning replaces the ban; reasons are tokens. */
    assert_int_equal(sec_ban_add(s, "::ffff:192.0.2.7", 3 * MIN, "bad\x01 bot"), 0);
    assert_newest_ban(s, "ban", "192.0.2.7", "bad? bot", "for 3m, offence 3");
    assert_int_equal(sec_ban_add(s, "2001:db8::7", MIN, NULL), 0);
    assert_newest_ban(s, "ban", "2001:db8::7", "manual", "for 1m, offence 1");
    sec_counters_t c = counters(s);
    assert_int_equal(c.bans_active, 2);
    assert_int_equal(c.bans_total, 4);
    sec_free(s);
}

static void test_bans_persist_across_restarts(void **state)
{
    (void)state;
    char path[128], cmd[256];
    snprintf(path, sizeof(path), "%s/var/bans", tmpdir); /* var/ does not exist */
    sec_conf_t c = {.bans_path = path};
    sec_t *s = open_sec(c);
    assert_non_null(slurp(path)); /* created at start */
    assert_int_equal(sec_ban_add(s, "192.0.2.1", 10 * MIN, "abuse"), 0);
    assert_int_equal(sec_ban_add(s, "2001:db8::1", MIN, NULL), 0);
    secev_ban_rule_t rule = {.after = 1, .within_ms = 1000, .for_ms = 5 * MIN};
    post(s, "192.0.2.3", &rule);
    sec_free(s);
    assert_int_equal(count_lines(slurp(path)), 3);

    snprintf(cmd, sizeof(cmd), "echo 'not json' >> %s", path);
    assert_int_equal(system(cmd), 0);
    atomic_store(&fake_now, T0 + 2 * MIN);

    /* Restart with stderr captured, for the warning. */
    char log[160];
    snprintf(log, sizeof(log), "%s/stderr", tmpdir);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);
    dup2(fd, 2);
    s = open_sec(c);
    dup2(saved, 2);
    close(saved);
    close(fd);
    char want[160];
    snprintf(want, sizeof(want), "%s:4: skipped", path);
    assert_non_null(strstr(slurp(log), want));

    assert_true(banned(s, "192.0.2.1"));
    assert_true(banned(s, "192.0.2.3"));
    assert_false(banned(s, "2001:db8::1")); /* expired while down */
    assert_int_equal(counters(s).bans_active, 2);
    json_t *bans = sec_bans_json(s);
    assert_int_equal(json_array_size(bans), 2);
    for (size_t i = 0; i < 2; i++)
        if (strcmp(field(bans, i, "address"), "192.0.2.3") == 0)
            assert_string_equal(field(bans, i, "policy"), "default");
    json_decref(bans);
    /* Written back at start: the expired and the corrupt lines are gone. */
    assert_int_equal(count_lines(slurp(path)), 2);
    /* The expired ban is still remembered as an offence. */
    assert_int_equal(sec_ban_add(s, "2001:db8::1", MIN, NULL), 0);
    assert_newest_ban(s, "ban", "2001:db8::1", "manual", "for 1m, offence 2");
    sec_free(s);
    assert_int_equal(count_lines(slurp(path)), 3);
}

/* ---- the queue and the ring ---- */

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_full_queue_drops_and_counts_without_blocking(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){.queue = 3}); /* rounded up to 4 */
    /* Stop the thread in its next clock reading (a reopen wakes it). */
    atomic_store(&gate_closed, true);
    sec_reopen_log(s);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&gate_blocked) && elapsed_ms(&t0) < 5000)
        usleep(1000);
    assert_true(atomic_load(&gate_blocked));

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 10; i++) {
        secev_t ev = event("192.0.2.1", "");
        snprintf(ev.detail, sizeof(ev.detail), "e%d", i);
        sec_post(s, &ev, NULL);
    }
    assert_true(elapsed_ms(&t0) < 100);
    sec_counters_t c = counters(s);
    assert_int_equal(c.posted, 4);
    assert_int_equal(c.dropped, 6);

    atomic_store(&gate_closed, false);
    json_t *arr = events(s, 0, NULL);
    assert_int_equal(json_array_size(arr), 4);
    assert_string_equal(field(arr, 0, "detail"), "e3");
    assert_string_equal(field(arr, 3, "detail"), "e0");
    json_decref(arr);
    /* Room again. */
    post(s, "192.0.2.1", NULL);
    assert_true(sec_sync(s, 5000));
    assert_int_equal(counters(s).posted, 5);
    sec_free(s);
}

static void test_ring_keeps_the_last_n_newest_first(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){.ring = 5});
    for (int i = 0; i < 8; i++) {
        char d[8];
        snprintf(d, sizeof(d), "e%d", i);
        secev_t ev = event("192.0.2.1", d);
        sec_post(s, &ev, NULL);
    }
    json_t *arr = events(s, 0, NULL);
    assert_int_equal(json_array_size(arr), 5);
    for (int i = 0; i < 5; i++) {
        char d[8];
        snprintf(d, sizeof(d), "e%d", 7 - i);
        assert_string_equal(field(arr, (size_t)i, "detail"), d);
    }
    json_decref(arr);
    arr = events(s, 2, NULL);
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(field(arr, 0, "detail"), "e7");
    assert_string_equal(field(arr, 1, "detail"), "e6");
    json_decref(arr);
    arr = events(s, 100, NULL);
    assert_int_equal(json_array_size(arr), 5);
    json_decref(arr);
    sec_free(s);
}

static void test_events_filter_by_client(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){0});
    secev_t evs[] = {event("192.0.2.1", "a"), event("2001:db8::1", "b"),
                     event("::ffff:192.0.2.1", "c"), event("192.0.2.2", "d")};
    for (size_t i = 0; i < 4; i++)
        sec_post(s, &evs[i], NULL);
    static const struct {
        const char *client;
        const char *details;
    } cases[] = {
        {NULL, "dcba"},         {"192.0.2.1", "ca"},    {"::ffff:192.0.2.1", "ca"},
        {"2001:db8::1", "b"},   {"2001:db8:0::1", "b"}, {"192.0.2.3", ""},
        {"not an address", ""}, {"192.0.2.2", "d"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *arr = events(s, 0, cases[i].client);
        char got[8] = "";
        for (size_t k = 0; k < json_array_size(arr) && k < 7; k++)
            got[k] = field(arr, k, "detail")[0];
        if (strcmp(got, cases[i].details) != 0)
            fail_msg("client %s: got \"%s\", want \"%s\"", cases[i].client, got, cases[i].details);
        if (cases[i].client && strcmp(cases[i].client, "::ffff:192.0.2.1") == 0)
            assert_string_equal(field(arr, 0, "client"), "192.0.2.1");
        json_decref(arr);
    }
    sec_free(s);
}

static void test_banned_for_ipv4_ipv6_and_mapped_addresses(void **state)
{
    (void)state;
    sec_t *s = open_sec((sec_conf_t){0});
    assert_false(banned(s, "192.0.2.9"));
    assert_int_equal(sec_ban_add(s, "192.0.2.9", MIN, NULL), 0);
    assert_int_equal(sec_ban_add(s, "2001:db8::9", MIN, NULL), 0);
    assert_int_equal(sec_ban_add(s, "::ffff:192.0.2.11", MIN, NULL), 0);
    assert_true(banned(s, "192.0.2.9"));
    assert_true(banned(s, "::ffff:192.0.2.9"));
    assert_false(banned(s, "192.0.2.10"));
    assert_true(banned(s, "192.0.2.11"));
    assert_true(banned(s, "2001:db8::9"));
    assert_false(banned(s, "2001:db8::a"));
    assert_false(banned(s, "::192.0.2.9")); /* IPv4-compatible is not mapped */
    struct sockaddr sa = {.sa_family = AF_UNIX};
    assert_false(sec_banned(s, &sa));
    sock_addr_t a = sock_of("192.0.2.9");
    assert_false(sec_banned(NULL, (const struct sockaddr *)&a.ss));
    sec_free(s);
}

/* ---- concurrency ---- */

#define POSTS 20000

typedef struct {
    sec_t *s;
    int id;
    unsigned banned_seen;
} poster_t;

static void *poster_main(void *arg)
{
    poster_t *p = arg;
    secev_ban_rule_t rule = {.after = 5, .within_ms = MIN, .for_ms = MIN};
    for (int i = 0; i < POSTS; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%d.0.%d", p->id, i % 50);
        secev_t ev = event(ip, "");
        snprintf(ev.detail, sizeof(ev.detail), "t%d-%d", p->id, i);
        sec_post(p->s, &ev, &rule);
        p->banned_seen += sec_banned(p->s, (const struct sockaddr *)&ev.client.ss);
    }
    return NULL;
}

/* Two posting threads and a reading one against a center with the given
 * queue size; returns its counters after everything was processed, having
 * checked that every queued event was recorded exactly once. */
static sec_counters_t run_posters(size_t queue)
{
    sec_t *s = open_sec((sec_conf_t){.queue = queue, .ring = SEC_RING_MAX});
    poster_t p[2] = {{s, 1, 0}, {s, 2, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, poster_main, &p[i]), 0);
    /* The control thread reads meanwhile. */
    for (int i = 0; i < 20; i++) {
        json_decref(sec_events_json(s, 100, "10.1.0.1"));
        json_decref(sec_bans_json(s));
        sec_counters_t c;
        sec_counters(s, &c);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_true(sec_sync(s, 10000));
    sec_counters_t c = counters(s);
    assert_int_equal(c.posted + c.dropped, 2 * POSTS);
    json_t *arr = events(s, 0, NULL);
    size_t ordinary = 0, bans = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (strcmp(field(arr, i, "layer"), "ban") == 0)
            bans++;
        else
            ordinary++;
    }
    json_decref(arr);
    assert_int_equal(ordinary, c.posted);
    assert_int_equal(bans, c.bans_total);
    assert_int_equal(c.bans_active, c.bans_total);
    sec_free(s);
    return c;
}

static void test_two_threads_post_at_once(void **state)
{
    (void)state;
    /* Room for everything: 50 addresses a thread, 400 strikes each, all
     * banned once. */
    sec_counters_t c = run_posters(2 * POSTS);
    assert_int_equal(c.dropped, 0);
    assert_int_equal(c.bans_total, 100);
    /* A small queue: producers race for the last cells and drop. */
    c = run_posters(64);
    assert_true(c.posted >= 64);
}

int main(void)
{
    main_thread = pthread_self();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_event_json_is_exact_for_a_known_event, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_event_json_leaves_out_empty_fields_and_escapes_stray_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_is_reopened_and_drained_at_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_write_errors_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sec_new_names_what_it_cannot_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strikes_ban_at_exactly_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strikes_slide_with_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_lifts_the_ban, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_offenders_are_banned_longer_up_to_the_cap,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_ban_and_lift, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bans_persist_across_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_drops_and_counts_without_blocking, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ring_keeps_the_last_n_newest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_filter_by_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_banned_for_ipv4_ipv6_and_mapped_addresses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_threads_post_at_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
