/* Unit tests for src/gateway/health.c: real checks over loopback sockets.
 *
 * The checker and a tiny in-test HTTP server (loop_server.h) share one loop
 * on the test thread. The server answers each request according to its
 * current mode and status (200, 500, no answer, close at once, garbage, a
 * huge body); the test runs
 * the loop until a condition holds, and changes the mode only while no check
 * is in flight, so that the number of checks each transition takes is exact.
 * health.c is included to see its per-server counters (STYLE 13). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/health.c"
#include "loop_server.h"

/* ---- a one-pool configuration, and running the loop until something holds ---- */

typedef struct {
    loop_t *loop;
    conf_t conf;
    conf_pool_t pool;
    conf_server_t server;
    state_t *state;
    health_t *h;
    health_check_t *c;
    server_state_t *st;
} fixture_t;

static void fixture_init(fixture_t *f, conf_health_type_t type, const char *address)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop_new();
    assert_non_null(f->loop);
    f->server.address = (char *)address;
    assert_int_equal(sock_addr_parse(address, strlen(address), &f->server.addr), 0);
    f->server.weight = 1;
    f->pool.name = "site";
    f->pool.servers = &f->server;
    f->pool.nservers = 1;
    f->pool.backup = SIZE_MAX;
    f->pool.health = (conf_health_t){.type = type,
                                     .method = "GET",
                                     .path = "/healthz",
                                     .expect_min = 200,
                                     .expect_max = 399,
                                     .interval_ms = 50,
                                     .timeout_ms = 40,
                                     .rise = 2,
                                     .fall = 3};
    f->conf.pools = &f->pool;
    f->conf.npools = 1;
}

/* After the test has adjusted f->pool.health. */
static void fixture_start(fixture_t *f)
{
    f->state = state_new(&f->conf);
    assert_non_null(f->state);
    int err = 0;
    f->h = health_new(f->loop, &f->conf, f->state, &err);
    assert_non_null(f->h);
    assert_int_equal(f->h->nchecks, 1);
    f->c = &f->h->checks[0];
    f->st = &f->state->pools[0].servers[0];
}

static void fixture_deinit(fixture_t *f)
{
    health_free(f->h);
    state_free(f->state);
    loop_free(f->loop);
}

static bool run_until(fixture_t *f, bool (*pred)(void *f), uint64_t max_ms)
{
    return run_loop_until(f->loop, pred, f, max_ms);
}

static bool is_idle(void *ud)
{
    fixture_t *f = ud;
    return f->c->io.fd < 0;
}
static bool is_down(void *ud)
{
    fixture_t *f = ud;
    return f->st->health == SRV_DOWN;
}
static bool is_up(void *ud)
{
    fixture_t *f = ud;
    return f->st->health == SRV_UP;
}
static uint64_t want_checks;
static bool checks_done(void *ud)
{
    fixture_t *f = ud;
    return f->c->ok + f->c->fail >= want_checks && is_idle(f);
}

static void run_checks(fixture_t *f, uint64_t n)
{
    want_checks = f->c->ok + f->c->fail + n;
    assert_true(run_until(f, checks_done, 50 * n + 1000));
}

static char *metrics(fixture_t *f)
{
    static char text[8192];
    prom_t *p = prom_new(1 << 16);
    assert_non_null(p);
    health_metrics_write(f->h, p);
    assert_int_equal(prom_error(p), 0);
    str_t s = prom_str(p);
    assert_true(s.len < sizeof(text));
    memcpy(text, s.p, s.len);
    text[s.len] = '\0';
    prom_free(p);
    return text;
}

/* ---- tests ---- */

static void test_health_http_up_then_down_after_fall_then_up_after_rise(void **unused)
{
    (void)unused;
    fixture_t f;
    tsrv_t s;
    loop_t *loop = loop_new();
    assert_non_null(loop);
    tsrv_start(&s, loop);
    fixture_init(&f, CONF_HEALTH_HTTP, s.addr);
    loop_free(f.loop);
    f.loop = loop;
    fixture_start(&f);

    run_checks(&f, 3);
    assert_int_equal(f.c->ok, 3);
    assert_int_equal(f.c->fail, 0);
    assert_int_equal(f.st->health, SRV_UP);
    assert_int_equal(f.st->last_status, 200);
    assert_string_equal(f.st->last_error, "");
    assert_true(f.st->last_check > 0);
    char want[256];
    snprintf(want, sizeof(want),
             "GET /healthz HTTP/1.1\r\nHost: %s\r\nUser-Agent: surety-health\r\n"
             "Connection: close\r\n\r\n",
             s.addr);
    assert_string_equal(s.last_request, want);

    /* switched between checks: every check from now on sees 500 */
    s.status = 500;
    uint64_t ok0 = f.c->ok, fail0 = f.c->fail;
    assert_true(run_until(&f, is_down, 2000));
    assert_int_equal(f.c->fail - fail0, 3); /* exactly fall */
    assert_int_equal(f.c->ok - ok0, 0);
    assert_int_equal(f.st->last_status, 500);
    assert_string_equal(f.st->last_error, "status 500");
    assert_int_equal(f.c->downs, 1);

    assert_true(run_until(&f, is_idle, 1000));
    s.status = 200;
    ok0 = f.c->ok;
    fail0 = f.c->fail;
    assert_true(run_until(&f, is_up, 2000));
    assert_int_equal(f.c->ok - ok0, 2); /* exactly rise */
    assert_int_equal(f.c->fail - fail0, 0);
    assert_string_equal(f.st->last_error, "");
    assert_int_equal(f.c->ups, 1);
    assert_int_equal(s.max_open, 1); /* one connection per check, never two */

    char line[512];
    char *m = metrics(&f);
    snprintf(line, sizeof(line), "surety_server_up{pool=\"site\",server=\"%s\"} 1\n", s.addr);
    assert_non_null(strstr(m, line));
    snprintf(line, sizeof(line),
             "surety_health_transitions_total{pool=\"site\",server=\"%s\",to=\"down\"} 1\n",
             s.addr);
    assert_non_null(strstr(m, line));
    snprintf(line, sizeof(line),
             "surety_health_checks_total{pool=\"site\",server=\"%s\",result=\"fail\"} 3\n", s.addr);
    assert_non_null(strstr(m, line));

    health_free(f.h);
    f.h = NULL;
    tsrv_stop(&s);
    fixture_deinit(&f);
}

static void test_health_tcp_closed_port_goes_down_with_connect_error(void **unused)
{
    (void)unused;
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port());
    fixture_t f;
    fixture_init(&f, CONF_HEALTH_TCP, addr);
    f.pool.health.fall = 2;
    fixture_start(&f);
    assert_null(f.c->request);
    assert_true(run_until(&f, is_down, 2000));
    assert_int_equal(f.c->fail, 2);
    assert_int_equal(f.c->ok, 0);
    assert_string_equal(f.st->last_error, "connect: Connection refused");
    assert_int_equal(f.st->last_status, 0);
    char line[256];
    snprintf(line, sizeof(line), "surety_server_up{pool=\"site\",server=\"%s\"} 0\n", addr);
    assert_non_null(strstr(metrics(&f), line));
    fixture_deinit(&f);
}

static void test_health_tcp_listening_port_stays_up(void **unused)
{
    (void)unused;
    fixture_t f;
    tsrv_t s;
    loop_t *loop = loop_new();
    assert_non_null(loop);
    tsrv_start(&s, loop);
    fixture_init(&f, CONF_HEALTH_TCP, s.addr);
    loop_free(f.loop);
    f.loop = loop;
    fixture_start(&f);
    run_checks(&f, 3);
    assert_int_equal(f.c->ok, 3);
    assert_int_equal(f.st->health, SRV_UP);
    assert_string_equal(f.st->last_error, "");
    health_free(f.h);
    f.h = NULL;
    tsrv_stop(&s);
    fixture_deinit(&f);
}

/* One check against the in-test server in the given mode; returns the fixture
 * for its assertions (the caller tears it down with one_check_end). */
static void one_check(fixture_t *f, tsrv_t *s, tsrv_mode_t mode, const char *body, const char *want)
{
    loop_t *loop = loop_new();
    assert_non_null(loop);
    tsrv_start(s, loop);
    s->mode = mode;
    s->body = body;
    fixture_init(f, CONF_HEALTH_HTTP, s->addr);
    loop_free(f->loop);
    f->loop = loop;
    f->pool.health.body = (char *)want;
    f->pool.health.fall = 1;
    fixture_start(f);
    run_checks(f, 1);
}

static void one_check_end(fixture_t *f, tsrv_t *s)
{
    health_free(f->h);
    f->h = NULL;
    tsrv_stop(s);
    fixture_deinit(f);
}

static void test_health_body_substring_decides(void **unused)
{
    (void)unused;
    fixture_t f;
    tsrv_t s;
    one_check(&f, &s, TSRV_ANSWER, "status: starting\n", "ready");
    assert_int_equal(f.c->fail, 1);
    assert_int_equal(f.st->health, SRV_DOWN);
    assert_int_equal(f.st->last_status, 200);
    assert_string_equal(f.st->last_error, "body lacks 'ready'");
    one_check_end(&f, &s);

    one_check(&f, &s, TSRV_ANSWER, "status: ready\n", "ready");
    assert_int_equal(f.c->ok, 1);
    assert_int_equal(f.st->health, SRV_UP);
    assert_string_equal(f.st->last_error, "");
    one_check_end(&f, &s);
}

static void test_health_slow_server_times_out(void **unused)
{
    (void)unused;
    fixture_t f;
    tsrv_t s;
    one_check(&f, &s, TSRV_SILENT, NULL, NULL);
    assert_int_equal(f.c->fail, 1);
    assert_string_equal(f.st->last_error, "timeout");
    assert_int_equal(f.st->health, SRV_DOWN);
    one_check_end(&f, &s);
}

static void test_health_timeout_longer_than_interval_never_overlaps(void **unused)
{
    (void)unused;
    fixture_t f;
    tsrv_t s;
    loop_t *loop = loop_new();
    assert_non_null(loop);
    tsrv_start(&s, loop);
    s.mode = TSRV_SILENT;
    fixture_init(&f, CONF_HEALTH_HTTP, s.addr);
    loop_free(f.loop);
    f.loop = loop;
    f.pool.health.interval_ms = 20;
    f.pool.health.timeout_ms = 70;
    fixture_start(&f);
    run_checks(&f, 3);
    assert_int_equal(f.c->fail, 3);
    assert_string_equal(f.st->last_error, "timeout");
    assert_int_equal(s.max_open, 1);
    one_check_end(&f, &s);
}

static void test_health_invalid_responses_fail_with_reason(void **unused)
{
    (void)unused;
    fixture_t f;
    tsrv_t s;
    one_check(&f, &s, TSRV_CLOSE, NULL, NULL);
    assert_int_equal(f.c->fail, 1);
    assert_string_equal(f.st->last_error, "invalid response: connection closed, no response");
    one_check_end(&f, &s);

    one_check(&f, &s, TSRV_GARBAGE, NULL, NULL);
    assert_int_equal(f.c->fail, 1);
    assert_string_equal(f.st->last_error, "invalid response: bad_status_line");
    one_check_end(&f, &s);

    /* body read until close, the substring never comes: the bound ends it */
    one_check(&f, &s, TSRV_HUGE, NULL, "zzz");
    assert_int_equal(f.c->fail, 1);
    assert_string_equal(f.st->last_error, "response too large");
    one_check_end(&f, &s);
}

static void test_health_jitter_stays_within_ten_percent(void **unused)
{
    (void)unused;
    health_t h = {.rng = 12345};
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t d = next_delay(&h, 1000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        assert_true(rand_below(&h, 50) < 50);
    }
    assert_true(lo >= 900 && lo < 920);
    assert_true(hi <= 1100 && hi > 1080);
    assert_int_equal(next_delay(&h, 0), 1);
}

static void test_health_new_refuses_state_of_another_shape(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, CONF_HEALTH_HTTP, "127.0.0.1:1");
    f.state = state_new(&f.conf);
    assert_non_null(f.state);
    f.state->pools[0].nservers = 2;
    int err = 0;
    assert_null(health_new(f.loop, &f.conf, f.state, &err));
    assert_int_equal(err, -EINVAL);
    f.state->pools[0].nservers = 1;

    /* a pool without checks gets no timer */
    f.pool.health.type = CONF_HEALTH_NONE;
    f.h = health_new(f.loop, &f.conf, f.state, &err);
    assert_non_null(f.h);
    assert_int_equal(f.h->nchecks, 0);
    fixture_deinit(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_http_up_then_down_after_fall_then_up_after_rise),
        cmocka_unit_test(test_health_tcp_closed_port_goes_down_with_connect_error),
        cmocka_unit_test(test_health_tcp_listening_port_stays_up),
        cmocka_unit_test(test_health_body_substring_decides),
        cmocka_unit_test(test_health_slow_server_times_out),
        cmocka_unit_test(test_health_timeout_longer_than_interval_never_overlaps),
        cmocka_unit_test(test_health_invalid_responses_fail_with_reason),
        cmocka_unit_test(test_health_jitter_stays_within_ten_percent),
        cmocka_unit_test(test_health_new_refuses_state_of_another_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
