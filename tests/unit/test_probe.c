/* Unit tests for src/monitor (probe.c, probe_http.c, probe_dns.c,
 * curl_loop.c): real probes over loopback sockets.
 *
 * The probes and a tiny in-test HTTP server (loop_server.h) share one loop
 * on the test thread. The server answers every request with its current
 * status and body, after its current delay, or never; the test runs the
 * loop until a condition holds. The hooks record every result and
 * transition; the wall clock is injected. HTTPS runs against a certificate
 * made with `openssl req` and served by OpenSSL on a test thread.
 * probe_int.h gives the tests the monitor's internals. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
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
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>

#include "loop_server.h"
#include "monitor/probe_int.h"

/* ---- fixture: one monitor, recording hooks ---- */

#define MAX_SEEN 64

typedef struct {
    loop_t *loop;
    tsrv_t srv;
    probe_t *p;
    probe_spec_t spec;
    int64_t now; /* the injected wall clock */
    probe_result_t results[MAX_SEEN];
    size_t nresults;
    probe_state_t from[MAX_SEEN], to[MAX_SEEN];
    size_t nstates;
    char url[128];
} fixture_t;

static void on_result(void *ud, size_t index, const probe_result_t *r)
{
    fixture_t *f = ud;
    assert_int_equal(index, 0);
    assert_true(f->nresults < MAX_SEEN);
    f->results[f->nresults++] = *r;
}

static void on_state(void *ud, size_t index, probe_state_t from, probe_state_t to)
{
    fixture_t *f = ud;
    assert_int_equal(index, 0);
    assert_true(f->nstates < MAX_SEEN);
    f->from[f->nstates] = from;
    f->to[f->nstates++] = to;
}

static int64_t now_unix(void *ud)
{
    return ((fixture_t *)ud)->now;
}

static void fixture_init(fixture_t *f, probe_kind_t kind)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop_new();
    assert_non_null(f->loop);
    tsrv_start(&f->srv, f->loop);
    f->now = 1700000000;
    snprintf(f->url, sizeof(f->url), "http://%s/status", f->srv.addr);
    f->spec = (probe_spec_t){
        .name = "web",
        .kind = kind,
        .target = kind == PROBE_HTTP ? f->url : f->srv.addr,
        .interval_ms = 100,
        .timeout_ms = 1000,
    };
}

static void fixture_start(fixture_t *f)
{
    probe_hooks_t hooks = {
        .ud = f, .on_result = on_result, .on_state = on_state, .now_unix = now_unix};
    int err = 0;
    f->p = probe_new(f->loop, &f->spec, 1, &hooks, &err);
    assert_non_null(f->p);
    assert_int_equal(err, 0);
}

static void fixture_deinit(fixture_t *f)
{
    probe_free(f->p);
    tsrv_stop(&f->srv);
    loop_free(f->loop);
}

static bool run_until(fixture_t *f, bool (*pred)(void *f), uint64_t max_ms)
{
    return run_loop_until(f->loop, pred, f, max_ms);
}

static size_t want_results;
static bool have_results(void *ud)
{
    fixture_t *f = ud;
    return f->nresults >= want_results;
}

/* Runs until the next result; returns it. */
static const probe_result_t *next_result(fixture_t *f, uint64_t max_ms)
{
    want_results = f->nresults + 1;
    assert_true(run_until(f, have_results, max_ms));
    return &f->results[f->nresults - 1];
}

/* One probe with the fixture's spec; returns its result. */
static const probe_result_t *probe_once(fixture_t *f)
{
    fixture_start(f);
    return next_result(f, 3000);
}

/* ---- HTTP ---- */

static void test_probe_http_expected_status_is_ok_with_user_agent(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    const probe_result_t *r = probe_once(&f);
    assert_true(r->ok);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->detail, "status 200");
    assert_int_equal(r->at, f.now);
    assert_non_null(strstr(f.srv.last_request, "GET /status HTTP/1.1\r\n"));
    assert_non_null(strstr(f.srv.last_request, "User-Agent: surety-probe/"));
    probe_status_t st;
    assert_int_equal(probe_status(f.p, 0, &st), 0);
    assert_int_equal(st.state, PROBE_UP); /* the first success decides */
    assert_int_equal(st.ok, 1);
    assert_int_equal(st.ok_streak, 1);
    assert_true(st.has_result);
    assert_int_equal(st.last_change, f.now);
    assert_int_equal(probe_status(f.p, 1, &st), -ENOENT);
    assert_string_equal(probe_name(f.p, 0), "web");
    fixture_deinit(&f);
}

static void test_probe_http_other_status_fails(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.srv.status = 503;
    const probe_result_t *r = probe_once(&f);
    assert_false(r->ok);
    assert_int_equal(r->status, 503);
    assert_string_equal(r->detail, "status 503");
    fixture_deinit(&f);

    /* a redirect is a result, not followed */
    fixture_init(&f, PROBE_HTTP);
    f.srv.status = 301;
    f.spec.expect_status = 301;
    r = probe_once(&f);
    assert_true(r->ok);
    assert_int_equal(f.srv.accepted, 1);
    fixture_deinit(&f);
}

static void test_probe_http_body_substring_found_or_missing(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.srv.body = "{\"status\": \"healthy\", \"db\": \"ok\"}";
    f.spec.body = "\"healthy\"";
    const probe_result_t *r = probe_once(&f);
    assert_true(r->ok);
    fixture_deinit(&f);

    fixture_init(&f, PROBE_HTTP);
    f.srv.body = "{\"status\": \"degraded\"}";
    f.spec.body = "\"healthy\"";
    r = probe_once(&f);
    assert_false(r->ok);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->detail, "body does not contain \"\"healthy\"\"");
    fixture_deinit(&f);
}

static void test_probe_http_large_body_is_read_only_up_to_the_cap(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    size_t big = 200 * 1024;
    char *body = malloc(big + 1);
    assert_non_null(body);
    memset(body, 'a', big);
    memcpy(body + big - 6, "NEEDLE", 6); /* past the cap: never seen */
    body[big] = '\0';
    f.srv.body = body;
    f.spec.body = "NEEDLE";
    const probe_result_t *r = probe_once(&f);
    assert_false(r->ok);
    assert_string_equal(r->detail, "body does not contain \"NEEDLE\" in its first 64 KiB");
    assert_int_equal(f.p->mons[0].body_seen, PROBE_BODY_READ_MAX);
    fixture_deinit(&f);

    /* within the cap: found, and the capped download still counts as ok */
    fixture_init(&f, PROBE_HTTP);
    memset(body, 'a', big);
    memcpy(body + 1000, "NEEDLE", 6);
    f.srv.body = body;
    f.spec.body = "NEEDLE";
    r = probe_once(&f);
    assert_true(r->ok);
    assert_string_equal(r->detail, "status 200");
    fixture_deinit(&f);
    free(body);
}

static void test_probe_http_latency_over_threshold_fails(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.srv.delay_ms = 150;
    f.spec.latency_ms = 50;
    const probe_result_t *r = probe_once(&f);
    assert_false(r->ok);
    assert_true(r->latency_ms >= 150);
    char want[64];
    snprintf(want, sizeof(want), "latency %u ms over 50 ms", r->latency_ms);
    assert_string_equal(r->detail, want);
    fixture_deinit(&f);
}

static void test_probe_http_timeout_when_the_server_does_not_answer(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.srv.mode = TSRV_SILENT;
    f.spec.timeout_ms = 200;
    f.spec.interval_ms = 1000;
    const probe_result_t *r = probe_once(&f);
    assert_false(r->ok);
    assert_string_equal(r->detail, "timeout after 200 ms");
    assert_true(r->latency_ms >= 190);
    fixture_deinit(&f);
}

static void test_probe_http_connection_refused(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    snprintf(f.url, sizeof(f.url), "http://127.0.0.1:%d/", closed_port());
    const probe_result_t *r = probe_once(&f);
    assert_false(r->ok);
    assert_string_equal(r->detail, "connection refused");
    fixture_deinit(&f);
}

/* ---- TCP ---- */

static void test_probe_tcp_connects_or_is_refused(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_TCP);
    const probe_result_t *r = probe_once(&f);
    assert_true(r->ok);
    char want[64];
    snprintf(want, sizeof(want), "connected to 127.0.0.1 port %d", f.srv.port);
    assert_string_equal(r->detail, want);
    fixture_deinit(&f);

    fixture_init(&f, PROBE_TCP);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port());
    f.spec.target = addr;
    r = probe_once(&f);
    assert_false(r->ok);
    assert_string_equal(r->detail, "connection refused");
    fixture_deinit(&f);
}

/* ---- DNS ---- */

static void test_probe_dns_localhost_resolves_and_invalid_fails(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_DNS);
    f.spec.target = "localhost";
    const probe_result_t *r = probe_once(&f);
    assert_true(r->ok);
    assert_non_null(strstr(r->detail, "resolved to "));
    fixture_deinit(&f);

    fixture_init(&f, PROBE_DNS);
    f.spec.target = "surety-probe-test.invalid";
    f.spec.timeout_ms = 1500;
    r = probe_once(&f);
    assert_false(r->ok);
    /* NXDOMAIN where a resolver answers, a timeout where none does */
    assert_true(strstr(r->detail, "surety-probe-test.invalid") ||
                strcmp(r->detail, "timeout after 1500 ms") == 0);
    fixture_deinit(&f);

    /* a deadline shorter than the lookup: abandoned inside glibc */
    fixture_init(&f, PROBE_DNS);
    f.spec.target = "surety-probe-test-2.invalid";
    f.spec.timeout_ms = 1;
    r = probe_once(&f);
    assert_false(r->ok);
    fixture_deinit(&f);
    usleep(200 * 1000); /* let glibc's helper thread drop the last reference */
}

/* ---- state machine and scheduling ---- */

static probe_state_t state_of(fixture_t *f)
{
    probe_status_t st;
    assert_int_equal(probe_status(f->p, 0, &st), 0);
    return st.state;
}
static bool is_up(void *f)
{
    return state_of(f) == PROBE_UP;
}
static bool is_down(void *f)
{
    return state_of(f) == PROBE_DOWN;
}

static void test_probe_down_after_and_up_after_with_the_server_off_then_on(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.spec.interval_ms = 100;
    f.spec.timeout_ms = 500;
    f.spec.down_after = 2;
    f.spec.up_after = 3;
    fixture_start(&f);
    assert_int_equal(state_of(&f), PROBE_UNKNOWN);
    assert_true(run_until(&f, is_up, 2000));
    assert_int_equal(f.nstates, 1);
    assert_int_equal(f.from[0], PROBE_UNKNOWN);
    assert_int_equal(f.to[0], PROBE_UP);

    /* off: refused; exactly down_after failures turn it DOWN */
    int port = f.srv.port;
    tsrv_stop(&f.srv);
    f.now += 100;
    size_t before = f.nresults;
    assert_true(run_until(&f, is_down, 3000));
    assert_int_equal(f.nresults - before, 2);
    assert_false(f.results[f.nresults - 1].ok);
    assert_string_equal(f.results[f.nresults - 1].detail, "connection refused");
    assert_int_equal(f.nstates, 2);
    assert_int_equal(f.from[1], PROBE_UP);
    assert_int_equal(f.to[1], PROBE_DOWN);
    probe_status_t st;
    assert_int_equal(probe_status(f.p, 0, &st), 0);
    assert_int_equal(st.fail_streak, 2);
    assert_int_equal(st.last_change, f.now);

    /* on again, same port: exactly up_after successes turn it UP */
    tsrv_listen(&f.srv, port);
    f.now += 100;
    before = f.nresults;
    assert_true(run_until(&f, is_up, 3000));
    assert_int_equal(f.nresults - before, 3);
    assert_int_equal(f.nstates, 3);
    assert_int_equal(f.from[2], PROBE_DOWN);
    assert_int_equal(f.to[2], PROBE_UP);
    assert_int_equal(probe_status(f.p, 0, &st), 0);
    assert_int_equal(st.ok_streak, 3);
    assert_int_equal(st.last_change, f.now);
    fixture_deinit(&f);
}

static void test_probe_unknown_needs_down_after_failures_to_go_down(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.srv.status = 500;
    f.spec.down_after = 3;
    fixture_start(&f);
    next_result(&f, 2000);
    next_result(&f, 2000);
    assert_int_equal(state_of(&f), PROBE_UNKNOWN);
    assert_int_equal(f.nstates, 0);
    next_result(&f, 2000);
    assert_int_equal(state_of(&f), PROBE_DOWN);
    assert_int_equal(f.nstates, 1);
    assert_int_equal(f.from[0], PROBE_UNKNOWN);
    assert_int_equal(f.to[0], PROBE_DOWN);
    fixture_deinit(&f);
}

static void test_probe_inherit_carries_state_across_a_reload(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.srv.status = 500;
    f.spec.down_after = 1;
    fixture_start(&f);
    next_result(&f, 2000);
    assert_int_equal(state_of(&f), PROBE_DOWN);

    /* same monitor, plus a new one, plus one whose target changed */
    char other[128];
    snprintf(other, sizeof(other), "http://%s/other", f.srv.addr);
    probe_spec_t specs[3] = {f.spec, f.spec, f.spec};
    specs[1].name = "new";
    specs[2].name = "moved";
    probe_spec_t moved = f.spec;
    moved.name = "moved";
    probe_t *old2 = probe_new(f.loop, &moved, 1, NULL, NULL); /* "moved", old target */
    assert_non_null(old2);
    old2->mons[0].state = PROBE_DOWN;
    specs[2].target = other;
    probe_t *p = probe_new(f.loop, specs, 3, NULL, NULL);
    assert_non_null(p);
    probe_inherit(p, f.p);
    probe_inherit(p, old2);
    probe_status_t st;
    assert_int_equal(probe_status(p, 0, &st), 0);
    assert_int_equal(st.state, PROBE_DOWN);
    assert_int_equal(st.fail, 1);
    assert_int_equal(st.fail_streak, 1);
    assert_int_equal(st.last_change, f.now);
    assert_string_equal(st.last.detail, "status 500");
    assert_int_equal(probe_status(p, 1, &st), 0);
    assert_int_equal(st.state, PROBE_UNKNOWN);
    assert_int_equal(probe_status(p, 2, &st), 0);
    assert_int_equal(st.state, PROBE_UNKNOWN); /* target changed */
    probe_free(old2);
    probe_free(p);
    fixture_deinit(&f);
}

static uint64_t want_skips;
static bool skipped_enough(void *ud)
{
    fixture_t *f = ud;
    return f->p->mons[0].nskipped >= want_skips;
}

/* A timer callback that keeps the loop busy (a loop running late). */
static void stall_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    (void)t;
    usleep(230 * 1000);
}

static void test_a_loop_late_by_whole_intervals_counts_the_ticks_it_missed(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.spec.interval_ms = 50;
    f.spec.timeout_ms = 40;
    fixture_start(&f);
    assert_non_null(next_result(&f, 2000)); /* running, nothing skipped */
    assert_int_equal(f.p->mons[0].nskipped, 0);
    loop_timer_t stall;
    loop_timer_init(&stall, stall_cb);
    assert_int_equal(loop_timer_start(f.loop, &stall, 1), 0);
    /* 230 ms late: the ticks due meanwhile (four of 50 ms) are counted as
     * skipped, not run late one after another */
    want_skips = 3;
    assert_true(run_until(&f, skipped_enough, 2000));
    fixture_deinit(&f);
}

static void test_probe_still_in_flight_at_the_next_tick_is_skipped(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.srv.mode = TSRV_SILENT;
    f.spec.interval_ms = 50;
    f.spec.timeout_ms = 400;
    fixture_start(&f);
    want_skips = 3;
    assert_true(run_until(&f, skipped_enough, 2000));
    assert_int_equal(f.nresults, 0);
    assert_int_equal(f.srv.accepted, 1); /* one probe, one connection */
    assert_int_equal(f.srv.max_open, 1);
    const probe_result_t *r = next_result(&f, 2000);
    assert_string_equal(r->detail, "timeout after 400 ms");
    probe_status_t st;
    assert_int_equal(probe_status(f.p, 0, &st), 0);
    assert_true(st.skipped >= 3);
    assert_int_equal(f.srv.max_open, 1);

    prom_t *pr = prom_new(1 << 16);
    assert_non_null(pr);
    probe_metrics_write(f.p, pr);
    assert_int_equal(prom_error(pr), 0);
    str_t s = prom_str(pr);
    char *text = strndup(s.p, s.len);
    assert_non_null(
        strstr(text, "surety_monitor_probes_total{monitor=\"web\",result=\"fail\"} 1\n"));
    assert_non_null(strstr(text, "surety_monitor_probes_total{monitor=\"web\",result=\"ok\"} 0\n"));
    assert_non_null(strstr(text, "surety_monitor_probes_skipped_total{monitor=\"web\"} "));
    assert_non_null(strstr(text, "surety_monitor_probe_duration_seconds{monitor=\"web\"} 0."));
    assert_null(strstr(text, "surety_monitor_up{")); /* undecided */
    assert_null(strstr(text, "surety_monitor_certificate_expiry_seconds{"));
    free(text);
    prom_free(pr);
    fixture_deinit(&f);
}

static bool in_flight(void *ud)
{
    fixture_t *f = ud;
    return f->p->mons[0].running;
}

static void test_probe_free_cancels_probes_in_flight(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    f.srv.mode = TSRV_SILENT;
    fixture_start(&f);
    assert_true(run_until(&f, in_flight, 2000));
    probe_free(f.p); /* ASan: nothing leaks, nothing is used after */
    f.p = NULL;
    assert_int_equal(f.nresults, 0);
    fixture_deinit(&f);

    /* DNS: the request may still be inside glibc when it is abandoned */
    fixture_init(&f, PROBE_DNS);
    f.spec.target = "localhost";
    fixture_start(&f);
    assert_true(run_until(&f, in_flight, 2000));
    probe_free(f.p);
    f.p = NULL;
    fixture_deinit(&f);
    usleep(100 * 1000); /* let glibc's helper thread drop the last reference */
}

static void test_probe_new_rejects_specs_that_cannot_run(void **unused)
{
    (void)unused;
    loop_t *loop = loop_new();
    static const probe_spec_t bad[] = {
        {.name = "", .kind = PROBE_HTTP, .target = "http://x/"},
        {.name = "a", .kind = PROBE_HTTP, .target = ""},
        {.name = "a", .kind = PROBE_HTTP, .target = "ftp://x/"},
        {.name = "a", .kind = PROBE_HTTP, .target = "http://x/", .cert_days = 7},
        {.name = "a", .kind = PROBE_TCP, .target = "localhost"},
        {.name = "a", .kind = PROBE_TCP, .target = "localhost:0"},
        {.name = "a", .kind = PROBE_TCP, .target = "localhost:99999"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int err = 0;
        assert_null(probe_new(loop, &bad[i], 1, NULL, &err));
        assert_int_equal(err, -EINVAL);
    }
    probe_spec_t ok[2] = {
        {.name = "a", .kind = PROBE_HTTP, .target = "HTTPS://example.invalid/", .cert_days = 7},
        {.name = "b", .kind = PROBE_TCP, .target = "[::1]:443"},
    };
    int err = 0;
    probe_t *p = probe_new(loop, ok, 2, NULL, &err);
    assert_non_null(p);
    assert_int_equal(probe_count(p), 2);
    assert_int_equal(p->mons[0].spec.interval_ms, 30000); /* defaults */
    assert_int_equal(p->mons[0].spec.timeout_ms, 5000);
    assert_int_equal(p->mons[0].spec.expect_status, 200);
    assert_int_equal(p->mons[1].spec.down_after, 2);
    assert_int_equal(p->mons[1].spec.up_after, 2);
    /* first runs within one interval */
    assert_true(p->mons[0].tick.due <= loop_now(loop) + 30000);
    probe_free(p);
    probe_free(NULL);
    loop_free(loop);
}

/* ---- many monitors on one multi handle ---- */

#define NMANY 24

typedef struct {
    size_t ok[NMANY], fail[NMANY];
} many_t;

static void many_result(void *ud, size_t index, const probe_result_t *r)
{
    many_t *m = ud;
    assert_true(index < NMANY);
    if (r->ok)
        m->ok[index]++;
    else
        m->fail[index]++;
}

static bool many_done(void *ud)
{
    many_t *m = ud;
    for (size_t i = 0; i < NMANY; i++)
        if (m->ok[i] + m->fail[i] < 3)
            return false;
    return true;
}

/* HTTP and TCP monitors sharing one curl_loop_t, some by a host name that
 * libcurl resolves on its resolver thread (its wake-up socket goes through
 * the same glue), all at once. */
static void test_probe_many_monitors_share_the_loop(void **unused)
{
    (void)unused;
    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    char host[256] = "localhost";
    struct addrinfo *ai = NULL, hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    /* The machine's own name when /etc/hosts maps it to loopback: resolved
     * by libcurl's resolver thread ("localhost" it answers by itself). */
    if (gethostname(host, sizeof(host)) != 0 || getaddrinfo(host, NULL, &hints, &ai) != 0 ||
        ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr != htonl(INADDR_LOOPBACK))
        snprintf(host, sizeof(host), "localhost");
    if (ai)
        freeaddrinfo(ai);
    char urls[2][128];
    snprintf(urls[0], sizeof(urls[0]), "http://%s:%d/a", host, f.srv.port);
    snprintf(urls[1], sizeof(urls[1]), "http://127.0.0.1:%d/b", f.srv.port);
    probe_spec_t specs[NMANY];
    char names[NMANY][16];
    for (size_t i = 0; i < NMANY; i++) {
        snprintf(names[i], sizeof(names[i]), "m%zu", i);
        specs[i] = (probe_spec_t){.name = names[i],
                                  .kind = i % 3 == 2 ? PROBE_TCP : PROBE_HTTP,
                                  .target = i % 3 == 2 ? f.srv.addr : urls[i % 3],
                                  .interval_ms = 50,
                                  .timeout_ms = 2000};
    }
    many_t seen;
    memset(&seen, 0, sizeof(seen));
    probe_hooks_t hooks = {.ud = &seen, .on_result = many_result};
    int err = 0;
    f.p = probe_new(f.loop, specs, NMANY, &hooks, &err);
    assert_non_null(f.p);
    assert_true(run_loop_until(f.loop, many_done, &seen, 10000));
    for (size_t i = 0; i < NMANY; i++)
        assert_int_equal(seen.fail[i], 0);
    fixture_deinit(&f);
}

/* ---- HTTPS: a certificate made with openssl req, served by a test thread ---- */

typedef struct {
    SSL_CTX *ctx;
    int lfd;
    int port;
} tls_srv_t;

/* Serves one TLS connection: reads the request head, answers 200. */
static void *tls_srv_main(void *arg)
{
    tls_srv_t *t = arg;
    int fd = accept(t->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(t->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        char in[4096];
        size_t len = 0;
        int n;
        while (len < sizeof(in) - 1 &&
               (n = SSL_read(ssl, in + len, (int)(sizeof(in) - 1 - len))) > 0) {
            len += (size_t)n;
            in[len] = '\0';
            if (strstr(in, "\r\n\r\n"))
                break;
        }
        static const char resp[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
        SSL_write(ssl, resp, (int)strlen(resp));
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

/* A self-signed certificate for 127.0.0.1 valid for days days, in dir. */
static void make_cert(const char *dir, int days)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem -out %s/crt.pem "
             "-days %d -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null",
             dir, dir, days);
    assert_int_equal(system(cmd), 0);
}

static void tls_srv_start(tls_srv_t *t, const char *dir)
{
    char crt[256], key[256];
    snprintf(crt, sizeof(crt), "%s/crt.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    t->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(t->ctx);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(t->ctx, crt), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM), 1);
    t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(t->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(t->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(t->lfd, 4), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(t->lfd, (struct sockaddr *)&a, &len), 0);
    t->port = ntohs(a.sin_port);
}

static int64_t real_now(void *ud)
{
    (void)ud;
    return (int64_t)time(NULL);
}

/* One https probe against a certificate valid for cert_valid days, asking
 * for cert_days; returns the result, and the metrics text in *ret_metrics. */
static probe_result_t https_probe(int cert_valid, uint32_t cert_days, char **ret_metrics)
{
    char dir[] = "/tmp/surety-probe-XXXXXX";
    assert_non_null(mkdtemp(dir));
    make_cert(dir, cert_valid);
    tls_srv_t t;
    tls_srv_start(&t, dir);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, tls_srv_main, &t), 0);

    fixture_t f;
    fixture_init(&f, PROBE_HTTP);
    char url[64], ca[256];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/", t.port);
    snprintf(ca, sizeof(ca), "%s/crt.pem", dir);
    f.spec.target = url;
    f.spec.ca_file = ca;
    f.spec.cert_days = cert_days;
    f.spec.interval_ms = 60000;
    f.spec.timeout_ms = 5000;
    probe_hooks_t hooks = {.ud = &f, .on_result = on_result, .now_unix = real_now};
    int err = 0;
    f.p = probe_new(f.loop, &f.spec, 1, &hooks, &err);
    assert_non_null(f.p);
    assert_int_equal(loop_timer_start(f.loop, &f.p->mons[0].tick, 0), 0); /* now */
    probe_result_t r = *next_result(&f, 6000);
    pthread_join(th, NULL);

    prom_t *pr = prom_new(1 << 16);
    probe_metrics_write(f.p, pr);
    str_t s = prom_str(pr);
    *ret_metrics = strndup(s.p, s.len);
    prom_free(pr);
    fixture_deinit(&f);
    close(t.lfd);
    SSL_CTX_free(t.ctx);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return r;
}

static void test_probe_https_certificate_days_remaining(void **unused)
{
    (void)unused;
    char *m = NULL;
    int64_t now = (int64_t)time(NULL);
    /* valid 10 days, 5 asked for: ok, and the expiry is known */
    probe_result_t r = https_probe(10, 5, &m);
    assert_true(r.ok);
    assert_string_equal(r.detail, "status 200");
    assert_true(r.cert_expiry > now + 9 * 86400 && r.cert_expiry <= now + 10 * 86400 + 60);
    assert_non_null(strstr(m, "surety_monitor_certificate_expiry_seconds{monitor=\"web\"} 86"));
    free(m);
    /* valid 10 days, 30 asked for: fails with the days left */
    r = https_probe(10, 30, &m);
    assert_false(r.ok);
    assert_int_equal(r.status, 200);
    assert_true(strcmp(r.detail, "certificate expires in 9 days") == 0 ||
                strcmp(r.detail, "certificate expires in 10 days") == 0);
    free(m);
}

/* ---- pieces ---- */

static void test_probe_match_finds_a_needle_split_across_chunks(void **unused)
{
    (void)unused;
    static const char *hay = "xxaabaabaaabyy";
    static const char *needle = "aabaaab";
    probe_match_t m;
    assert_int_equal(probe_match_init(&m, needle), 0);
    /* every split into two chunks, and byte by byte */
    for (size_t cut = 0; cut <= strlen(hay); cut++) {
        probe_match_reset(&m);
        probe_match_feed(&m, hay, cut);
        probe_match_feed(&m, hay + cut, strlen(hay) - cut);
        assert_true(m.found);
    }
    probe_match_reset(&m);
    for (size_t i = 0; i < strlen(hay); i++)
        probe_match_feed(&m, hay + i, 1);
    assert_true(m.found);
    probe_match_reset(&m);
    probe_match_feed(&m, "aabaaa", 6);
    probe_match_feed(&m, "aab", 2); /* "aabaaaaa": no */
    assert_false(m.found);
    probe_match_deinit(&m);
}

static void test_probe_cert_time_parse_openssl_and_gnutls_forms(void **unused)
{
    (void)unused;
    int64_t t = 0;
    assert_int_equal(probe_cert_time_parse("Nov  9 16:34:27 2027 GMT", &t), 0);
    assert_int_equal(t, 1825778067);
    assert_int_equal(probe_cert_time_parse(" Jan 1 00:00:00 2030 GMT", &t), 0);
    assert_int_equal(t, 1893456000);
    assert_int_equal(probe_cert_time_parse("2027-11-09 16:34:27 GMT", &t), 0);
    assert_int_equal(t, 1825778067);
    static const char *bad[] = {"",
                                "Foo 9 16:34:27 2027 GMT",
                                "Nov 32 16:34:27 2027 GMT",
                                "Nov 9 25:00:00 2027 GMT",
                                "Nov 9 16:34:27 2027 PST",
                                "2027-13-01 00:00:00",
                                "yesterday"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(probe_cert_time_parse(bad[i], &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_http_expected_status_is_ok_with_user_agent),
        cmocka_unit_test(test_probe_http_other_status_fails),
        cmocka_unit_test(test_probe_http_body_substring_found_or_missing),
        cmocka_unit_test(test_probe_http_large_body_is_read_only_up_to_the_cap),
        cmocka_unit_test(test_probe_http_latency_over_threshold_fails),
        cmocka_unit_test(test_probe_http_timeout_when_the_server_does_not_answer),
        cmocka_unit_test(test_probe_http_connection_refused),
        cmocka_unit_test(test_probe_tcp_connects_or_is_refused),
        cmocka_unit_test(test_probe_dns_localhost_resolves_and_invalid_fails),
        cmocka_unit_test(test_probe_down_after_and_up_after_with_the_server_off_then_on),
        cmocka_unit_test(test_probe_unknown_needs_down_after_failures_to_go_down),
        cmocka_unit_test(test_probe_still_in_flight_at_the_next_tick_is_skipped),
        cmocka_unit_test(test_a_loop_late_by_whole_intervals_counts_the_ticks_it_missed),
        cmocka_unit_test(test_probe_inherit_carries_state_across_a_reload),
        cmocka_unit_test(test_probe_free_cancels_probes_in_flight),
        cmocka_unit_test(test_probe_new_rejects_specs_that_cannot_run),
        cmocka_unit_test(test_probe_many_monitors_share_the_loop),
        cmocka_unit_test(test_probe_https_certificate_days_remaining),
        cmocka_unit_test(test_probe_match_finds_a_needle_split_across_chunks),
        cmocka_unit_test(test_probe_cert_time_parse_openssl_and_gnutls_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
