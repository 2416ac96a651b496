/* Unit tests of src/store/, with real SQLite files in a mkdtemp directory
 * and the real store thread: the schema created and re-opened, a newer
 * schema refused, a missing directory and changed buckets reported with the
 * path, WAL mode on; submit, acknowledge and read back every kind (filters,
 * limits, text cut and cleaned); the minute/hour/day rollups against sums
 * worked out by hand; retention deleting only expired rows, per kind, by the
 * caller's clock; a full queue refusing with -ENOBUFS and counting, and
 * close draining it; a batch refused by a lock retried and acknowledged
 * only once committed; four threads submitting at once; the metrics.
 *
 * Tests inspect the file through their own SQLite connection, as an
 * operator's sqlite3 would. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

#define T0 1795000000LL /* 2026-11-18T...; a multiple of 10, not of 60 */
#define DAY (24 * 3600LL)

static const double bounds[13] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,     0.25,
                                  0.5,   1,     2.5,  5,     10,   INFINITY};

static char tmpdir[64];
static char dbpath[128];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/surety-store-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof(dbpath), "%s/surety.db", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static store_opts_t opts(void)
{
    store_opts_t o;
    store_opts_init(&o);
    o.path = dbpath;
    o.bucket_bounds = bounds;
    o.nbuckets = 13;
    o.commit_ms = 5;
    o.retention_every_s = 0;
    return o;
}

static store_t *open_ok(const store_opts_t *o)
{
    char err[512] = "";
    store_t *s = store_open(o, err, sizeof(err));
    if (!s)
        fail_msg("store_open: %s", err);
    return s;
}

/* One integer from the file through a connection of the test's own. */
static int64_t q_int(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void q_exec(const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static uint64_t event(store_t *s, int64_t ts, const char *kind, const char *subject)
{
    store_event_t e = {.ts = ts,
                       .kind = str_cstr(kind),
                       .subject = str_cstr(subject),
                       .detail = STR_LIT("{\"n\":1}")};
    uint64_t seq = 0;
    assert_int_equal(store_event_submit(s, &e, &seq), 0);
    return seq;
}

static uint64_t sli(store_t *s, const char *source, int64_t ts, uint64_t req, uint64_t err,
                    const uint64_t *buckets)
{
    uint64_t zero[13] = {0}, seq = 0;
    store_sli_t x = {.source = str_cstr(source),
                     .ts = ts,
                     .requests = req,
                     .errors = err,
                     .buckets = buckets ? buckets : zero,
                     .nbuckets = 13};
    assert_int_equal(store_sli_submit(s, &x, &seq), 0);
    return seq;
}

static void sync_all(store_t *s, uint64_t seq)
{
    assert_int_equal(store_wait(s, seq, 10000), 0);
    assert_true(store_acked(s) >= seq);
}

/* ---- opening ---- */

static void test_open_creates_schema_in_wal_mode_and_reopens(void **state)
{
    (void)state;
    store_opts_t o = opts();
    store_t *s = open_ok(&o);
    sync_all(s, event(s, T0, "boot", "surety"));
    /* While open: WAL on, our pragmas on the write connection. */
    assert_int_equal(q_int("SELECT COUNT(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"),
                     1);
    store_close(s);
    assert_int_equal(q_int("SELECT MAX(version) FROM schema_version"), 1);
    s = open_ok(&o);
    store_close(s);
    assert_int_equal(q_int("SELECT COUNT(*) FROM schema_version"), 1);
    assert_int_equal(q_int("SELECT COUNT(*) FROM events"), 1);
    /* WAL is a property of the file: it stays after close. */
    assert_int_equal(q_int("SELECT COUNT(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"),
                     1);
}

static void test_open_refuses_a_newer_schema(void **state)
{
    (void)state;
    store_opts_t o = opts();
    char err[512] = "";
    store_close(open_ok(&o));
    q_exec("INSERT INTO schema_version (version) VALUES (7)");
    assert_null(store_open(&o, err, sizeof(err)));
    assert_non_null(strstr(err, dbpath));
    assert_non_null(strstr(err, "schema version 7 is newer than this surety knows (1)"));
}

static void test_a_second_open_of_one_file_is_refused_until_the_first_closes(void **state)
{
    (void)state;
    store_opts_t o = opts();
    char err[512] = "", pid[32];
    store_t *first = open_ok(&o);
    assert_null(store_open(&o, err, sizeof(err)));
    snprintf(pid, sizeof(pid), "(pid %ld)", (long)getpid());
    assert_non_null(strstr(err, dbpath));
    assert_non_null(strstr(err, "in use by another surety"));
    assert_non_null(strstr(err, pid));
    store_close(first);
    store_close(open_ok(&o)); /* the lock went with the first */
}

static void test_open_names_the_path_when_its_directory_is_missing(void **state)
{
    (void)state;
    store_opts_t o = opts();
    char path[192], err[512] = "";
    snprintf(path, sizeof(path), "%s/nodir/surety.db", tmpdir);
    o.path = path;
    assert_null(store_open(&o, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "does not exist"));
}

static void test_open_refuses_other_buckets_and_non_databases(void **state)
{
    (void)state;
    store_opts_t o = opts();
    char err[512] = "";
    store_close(open_ok(&o));
    o.nbuckets = 12;
    assert_null(store_open(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "latency buckets"));

    FILE *f = fopen(dbpath, "w");
    fputs("this is not a database, it is text, long enough to fill a header.........", f);
    fclose(f);
    o = opts();
    assert_null(store_open(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "not a database"));
}

/* ---- writing and reading back ---- */

typedef struct {
    int n;
    char text[8][128];
    int64_t ts[8];
} seen_t;

static int event_cb(void *data, const store_event_t *r)
{
    seen_t *v = data;
    snprintf(v->text[v->n], sizeof(v->text[0]), "%.*s|%.*s|%.*s", STR_FMT(r->kind),
             STR_FMT(r->subject), STR_FMT(r->detail));
    v->ts[v->n++] = r->ts;
    return 0;
}

static int probe_cb(void *data, const store_probe_t *r)
{
    seen_t *v = data;
    snprintf(v->text[v->n], sizeof(v->text[0]), "%.*s|%d|%.1f|%zu:%.8s", STR_FMT(r->monitor), r->ok,
             r->latency_ms, r->detail.len, r->detail.p);
    v->ts[v->n++] = r->ts;
    return 0;
}

static int state_cb(void *data, const store_state_t *r)
{
    seen_t *v = data;
    snprintf(v->text[v->n], sizeof(v->text[0]), "%.*s|%.*s>%.*s", STR_FMT(r->monitor),
             STR_FMT(r->from), STR_FMT(r->to));
    v->ts[v->n++] = r->ts;
    return 0;
}

static int delivery_cb(void *data, const store_delivery_t *r)
{
    seen_t *v = data;
    snprintf(v->text[v->n], sizeof(v->text[0]), "%.*s|%.*s|%.*s|%lld|%.*s", STR_FMT(r->alert),
             STR_FMT(r->channel), STR_FMT(r->status), (long long)r->attempt, STR_FMT(r->response));
    v->ts[v->n++] = r->ts;
    return 0;
}

static int stop_cb(void *data, const store_event_t *r)
{
    (void)r;
    return ++*(int *)data == 2 ? 42 : 0;
}

static void test_events_acked_in_order_and_listed_newest_first_with_filters(void **state)
{
    (void)state;
    store_opts_t o = opts();
    store_t *s = open_ok(&o);
    uint64_t seq = 0, prev = 0;
    for (int i = 0; i < 5; i++) {
        seq = event(s, T0 + i, i % 2 ? "failover" : "alert_fired", "pool:api");
        assert_true(seq > prev);
        prev = seq;
    }
    sync_all(s, seq);
    seen_t v = {0};
    store_filter_t f = {0};
    assert_int_equal(store_events_list(s, &f, event_cb, &v), 0);
    assert_int_equal(v.n, 5);
    assert_int_equal(v.ts[0], T0 + 4); /* newest first */
    assert_string_equal(v.text[0], "alert_fired|pool:api|{\"n\":1}");
    memset(&v, 0, sizeof(v));
    f = (store_filter_t){.since = T0 + 1, .name = STR_LIT("failover"), .limit = 1};
    assert_int_equal(store_events_list(s, &f, event_cb, &v), 0);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.ts[0], T0 + 3);
    memset(&v, 0, sizeof(v));
    f = (store_filter_t){.since = T0 + 1, .until = T0 + 3};
    assert_int_equal(store_events_list(s, &f, event_cb, &v), 0);
    assert_int_equal(v.n, 2);
    int calls = 0;
    f = (store_filter_t){0};
    assert_int_equal(store_events_list(s, &f, stop_cb, &calls), 42);
    store_stats_t stats;
    store_stats_get(s, &stats);
    assert_int_equal(stats.rows[STORE_KIND_EVENT], 5);
    assert_int_equal(stats.submitted, 5);
    assert_int_equal(stats.acked, 5);
    assert_true(stats.file_bytes > 0);
    store_close(s);
}

/* A probe with a long, not-UTF-8 detail and one without; a state change; a
 * delivery. */
static uint64_t submit_other_kinds(store_t *s)
{
    char big[STORE_TEXT_MAX + 100];
    memset(big, 'x', sizeof(big));
    big[0] = (char)0xff; /* not UTF-8 */
    big[1] = '\0';
    store_probe_t p = {.monitor = STR_LIT("home"),
                       .ts = T0,
                       .ok = true,
                       .latency_ms = 12.5,
                       .detail = str_from(big, sizeof(big))};
    assert_int_equal(store_probe_submit(s, &p, NULL), 0);
    p = (store_probe_t){.monitor = STR_LIT("api"), .ts = T0 + 10, .detail = STR_LIT("timeout")};
    assert_int_equal(store_probe_submit(s, &p, NULL), 0);
    store_state_t st = {
        .monitor = STR_LIT("home"), .ts = T0 + 20, .from = STR_LIT("up"), .to = STR_LIT("down")};
    assert_int_equal(store_state_submit(s, &st, NULL), 0);
    store_delivery_t d = {.ts = T0 + 30,
                          .alert = STR_LIT("ops"),
                          .channel = STR_LIT("webhook"),
                          .status = STR_LIT("failed"),
                          .attempt = 2,
                          .response = STR_LIT("503 busy")};
    uint64_t seq = 0;
    assert_int_equal(store_delivery_submit(s, &d, &seq), 0);
    return seq;
}

static void test_probes_states_and_deliveries_read_back_cut_and_cleaned(void **state)
{
    (void)state;
    store_opts_t o = opts();
    store_t *s = open_ok(&o);
    sync_all(s, submit_other_kinds(s));
    seen_t v = {0};
    store_filter_t f = {0};
    assert_int_equal(store_probes_list(s, &f, probe_cb, &v), 0);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.text[0], "api|0|0.0|7:timeout");
    /* Cut to STORE_TEXT_MAX; the stray byte and the NUL became '?'. */
    assert_string_equal(v.text[1], "home|1|12.5|4096:??xxxxxx");
    memset(&v, 0, sizeof(v));
    f.name = STR_LIT("home");
    assert_int_equal(store_probes_list(s, &f, probe_cb, &v), 0);
    assert_int_equal(v.n, 1);

    memset(&v, 0, sizeof(v));
    assert_int_equal(store_states_list(s, &f, state_cb, &v), 0);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.text[0], "home|up>down");
    memset(&v, 0, sizeof(v));
    f.name = STR_NULL;
    assert_int_equal(store_deliveries_list(s, &f, delivery_cb, &v), 0);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.text[0], "ops|webhook|failed|2|503 busy");

    store_stats_t stats;
    store_stats_get(s, &stats);
    assert_int_equal(stats.rows[STORE_KIND_PROBE], 2);
    assert_int_equal(stats.rows[STORE_KIND_STATE], 1);
    assert_int_equal(stats.rows[STORE_KIND_DELIVERY], 1);
    store_close(s);
}

static void test_submit_refuses_bad_records(void **state)
{
    (void)state;
    store_opts_t o = opts();
    store_t *s = open_ok(&o);
    char name[STORE_NAME_MAX + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    store_event_t e = {.ts = T0, .kind = STR_NULL};
    assert_int_equal(store_event_submit(s, &e, NULL), -EINVAL);
    e.kind = str_cstr(name);
    assert_int_equal(store_event_submit(s, &e, NULL), -EMSGSIZE);
    e.kind = STR_LIT("k");
    e.ts = -1;
    assert_int_equal(store_event_submit(s, &e, NULL), -EINVAL);
    e.ts = T0;
    char *json = malloc(STORE_JSON_MAX + 1);
    memset(json, ' ', STORE_JSON_MAX + 1);
    e.detail = str_from(json, STORE_JSON_MAX + 1);
    assert_int_equal(store_event_submit(s, &e, NULL), -EMSGSIZE);
    free(json);
    uint64_t b[13] = {0};
    store_sli_t x = {.source = STR_LIT("listener:web"), .ts = T0, .buckets = b, .nbuckets = 12};
    assert_int_equal(store_sli_submit(s, &x, NULL), -EINVAL);
    store_close(s);
}

/* ---- rollups ---- */

static void test_rollups_sum_samples_into_minutes_hours_and_days(void **state)
{
    (void)state;
    store_opts_t o = opts();
    store_t *s = open_ok(&o);
    /* A day that starts at D; samples every 10 s in minute D+60, one at the
     * end of the hour, one in the next hour, one the next day, and another
     * source that must not mix in. */
    const int64_t D = (T0 / DAY) * DAY;
    uint64_t b1[13] = {1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
    uint64_t b2[13] = {0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 6; i++)
        sli(s, "listener:web", D + 60 + 10 * i, 10, 1, b1);
    sli(s, "listener:web", D + 3599, 5, 5, b2);
    sli(s, "listener:web", D + 3600, 7, 0, b2);
    sli(s, "listener:web", D + DAY + 5, 100, 50, NULL);
    sync_all(s, sli(s, "route:api", D + 60, 1000, 0, NULL));

    store_sli_row_t rows[16];
    size_t n = 0;
    str_t web = STR_LIT("listener:web");
    assert_int_equal(store_sli_load(s, web, STORE_RES_RAW, D, D + 3600, rows, 16, &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(store_sli_load(s, web, STORE_RES_MINUTE, D, D + 2 * DAY, rows, 16, &n), 0);
    assert_int_equal(n, 4); /* D+60, D+3540, D+3600, D+DAY */
    assert_int_equal(rows[0].ts, D + 60);
    assert_int_equal(rows[0].requests, 60);
    assert_int_equal(rows[0].errors, 6);
    assert_int_equal(rows[0].buckets[0], 6);
    assert_int_equal(rows[0].buckets[1], 12);
    assert_int_equal(rows[0].buckets[12], 18);
    assert_int_equal(rows[1].ts, D + 3540);
    assert_int_equal(rows[1].requests, 5);
    assert_int_equal(rows[3].ts, D + DAY);

    assert_int_equal(store_sli_load(s, web, STORE_RES_HOUR, D, D + 2 * DAY, rows, 16, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].ts, D);
    assert_int_equal(rows[0].requests, 65);
    assert_int_equal(rows[0].errors, 11);
    assert_int_equal(rows[0].buckets[1], 13);
    assert_int_equal(rows[0].buckets[2], 1);
    assert_int_equal(rows[1].ts, D + 3600);
    assert_int_equal(rows[1].requests, 7);

    assert_int_equal(store_sli_load(s, web, STORE_RES_DAY, 0, D + 2 * DAY, rows, 16, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].ts, D);
    assert_int_equal(rows[0].requests, 72);
    assert_int_equal(rows[0].errors, 11);
    assert_int_equal(rows[0].buckets[12], 18);
    assert_int_equal(rows[1].requests, 100);
    assert_int_equal(rows[1].errors, 50);

    store_close(s);
}

static void test_sli_load_is_half_open_bounded_and_adds_same_second(void **state)
{
    (void)state;
    store_opts_t o = opts();
    store_t *s = open_ok(&o);
    const int64_t D = (T0 / DAY) * DAY;
    store_sli_row_t rows[16];
    size_t n = 0;
    str_t web = STR_LIT("listener:web");
    for (int i = 0; i < 6; i++)
        sli(s, "listener:web", D + 60 + 10 * i, 10, 1, NULL);
    sli(s, "listener:web", D + 3599, 5, 5, NULL);
    sync_all(s, sli(s, "route:api", D + 60, 1000, 0, NULL));
    /* The range is half-open and max bounds the rows. */
    assert_int_equal(store_sli_load(s, web, STORE_RES_MINUTE, D + 60, D + 3540, rows, 16, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_sli_load(s, web, STORE_RES_RAW, D, D + DAY, rows, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(
        store_sli_load(s, STR_LIT("route:api"), STORE_RES_DAY, 0, INT64_MAX, rows, 16, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].requests, 1000);

    /* The same source and second twice adds up (a clock stepped back). */
    sync_all(s, sli(s, "route:api", D + 60, 1, 1, NULL));
    assert_int_equal(
        store_sli_load(s, STR_LIT("route:api"), STORE_RES_RAW, 0, INT64_MAX, rows, 16, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].requests, 1001);
    store_close(s);
}

/* ---- retention ---- */

static void wait_passes(store_t *s, uint64_t want)
{
    store_stats_t st;
    for (int i = 0; i < 2000; i++) {
        store_stats_get(s, &st);
        if (st.retention_runs >= want)
            return;
        usleep(5000);
    }
    fail_msg("retention pass %llu did not finish", (unsigned long long)want);
}

static void test_retention_deletes_only_expired_rows_per_kind(void **state)
{
    (void)state;
    store_opts_t o = opts();
    o.retention = (store_retention_t){.raw = 100,
                                      .minute = 1000,
                                      .hour = 10000,
                                      .day = 0,
                                      .probes = 50,
                                      .states = 0,
                                      .events = 500,
                                      .deliveries = 5};
    o.retention_batch = 3; /* several statements per table */
    store_t *s = open_ok(&o);
    const int64_t now = T0 + 20000;
    /* SLI samples every 10 s over the last 20000 s: raw keeps ts >= now -
     * 100, i.e. 11 samples (now-100 .. now), and so on. */
    uint64_t seq = 0;
    for (int64_t ts = T0; ts <= now; ts += 10)
        seq = sli(s, "listener:web", ts, 1, 0, NULL);
    for (int i = 0; i < 10; i++) {
        store_probe_t p = {.monitor = STR_LIT("m"), .ts = now - 10 * i, .ok = true};
        store_state_t st = {.monitor = STR_LIT("m"), .ts = now - 1000 * i, .to = STR_LIT("up")};
        store_delivery_t d = {
            .ts = now - i, .alert = STR_LIT("a"), .channel = STR_LIT("c"), .status = STR_LIT("ok")};
        assert_int_equal(store_probe_submit(s, &p, NULL), 0);
        assert_int_equal(store_state_submit(s, &st, NULL), 0);
        assert_int_equal(store_delivery_submit(s, &d, NULL), 0);
        seq = event(s, now - 100 * i, "k", "s");
    }
    sync_all(s, seq);
    int64_t minutes = q_int("SELECT COUNT(*) FROM sli_minute WHERE ts >= 1795019000");
    int64_t hours = q_int("SELECT COUNT(*) FROM sli_hour WHERE ts >= 1795010000");
    int64_t days = q_int("SELECT COUNT(*) FROM sli_day");
    assert_int_equal(store_retention_run(s, now), 0);
    wait_passes(s, 1);

    assert_int_equal(q_int("SELECT COUNT(*) FROM sli_raw"), 11);
    assert_int_equal(q_int("SELECT MIN(ts) FROM sli_raw"), now - 100);
    assert_int_equal(q_int("SELECT COUNT(*) FROM sli_minute"), minutes);
    assert_int_equal(q_int("SELECT COUNT(*) FROM sli_hour"), hours);
    assert_int_equal(q_int("SELECT COUNT(*) FROM sli_day"), days); /* kept forever */
    assert_int_equal(q_int("SELECT COUNT(*) FROM probes"), 6);     /* now-50 .. now */
    assert_int_equal(q_int("SELECT COUNT(*) FROM states"), 10);    /* kept forever */
    assert_int_equal(q_int("SELECT COUNT(*) FROM events"), 6);     /* now-500 .. now */
    assert_int_equal(q_int("SELECT COUNT(*) FROM deliveries"), 6); /* now-5 .. now */
    store_stats_t st;
    store_stats_get(s, &st);
    assert_true(st.retention_deleted > 0);
    store_close(s);
}

static void test_retention_runs_by_submitted_time(void **state)
{
    (void)state;
    store_opts_t o = opts();
    o.retention.events = 100;
    o.retention_every_s = 300;
    store_t *s = open_ok(&o);
    sync_all(s, event(s, T0, "old", ""));
    wait_passes(s, 1); /* the first batch starts a pass: nothing to delete yet */
    sync_all(s, event(s, T0 + 50, "old", ""));
    assert_int_equal(q_int("SELECT COUNT(*) FROM events"), 2);
    /* 299 s later is not yet a pass; 300 s is, and the clock is the data's. */
    sync_all(s, event(s, T0 + 299, "new", ""));
    sync_all(s, event(s, T0 + 300, "new", ""));
    wait_passes(s, 2);
    assert_int_equal(q_int("SELECT COUNT(*) FROM events WHERE kind = 'old'"), 0);
    assert_int_equal(q_int("SELECT COUNT(*) FROM events"), 2);
    store_close(s);
}

/* ---- the queue ---- */

/* `promtool check metrics` finds nothing to say about page (skipped when
 * promtool is not installed). */
static void promtool_check(const char *page)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        print_message("promtool not found: not checking the metrics page\n");
        return;
    }
    char path[192], cmd[320], out[4096] = "";
    snprintf(path, sizeof(path), "%s/metrics.txt", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(page, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    int status = pclose(f);
    if (status != 0 || n != 0)
        fail_msg("promtool check metrics (status %d):\n%s", status, out);
}

static void test_full_queue_refuses_counts_and_close_drains(void **state)
{
    (void)state;
    store_opts_t o = opts();
    o.queue_max = 8;
    o.batch_max = 1024; /* never reached: the thread waits out commit_ms */
    o.commit_ms = 60000;
    store_t *s = open_ok(&o);
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq = event(s, T0 + i, "k", "s");
    assert_int_equal(seq, 8);
    store_event_t e = {.ts = T0, .kind = STR_LIT("k")};
    assert_int_equal(store_event_submit(s, &e, &seq), -ENOBUFS);
    assert_int_equal(seq, 8); /* untouched on failure */
    assert_int_equal(store_event_submit(s, &e, NULL), -ENOBUFS);
    store_stats_t st;
    store_stats_get(s, &st);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(st.queued, 8);
    assert_int_equal(store_acked(s), 0);

    prom_t *p = prom_new(1 << 16);
    store_metrics_write(s, p);
    assert_int_equal(prom_error(p), 0);
    str_t out = prom_str(p);
    char *text = strndup(out.p, out.len);
    assert_non_null(strstr(text, "surety_store_queue_depth 8\n"));
    assert_non_null(strstr(text, "surety_store_dropped_total 2\n"));
    assert_non_null(strstr(text, "surety_store_rows_written_total{kind=\"event\"} 0\n"));
    assert_non_null(strstr(text, "surety_store_commit_seconds_count 0\n"));
    promtool_check(text);
    free(text);
    prom_free(p);

    store_close(s); /* does not wait a minute: close ends the gathering */
    assert_int_equal(q_int("SELECT COUNT(*) FROM events"), 8);
}

static void test_byte_budget_bounds_the_queue(void **state)
{
    (void)state;
    store_opts_t o = opts();
    o.queue_bytes_max = 3 * 8500; /* a record is 8000 bytes plus its header */
    o.commit_ms = 60000;
    o.batch_max = 1024;
    store_t *s = open_ok(&o);
    char json[8000];
    memset(json, ' ', sizeof(json));
    store_event_t e = {.ts = T0, .kind = STR_LIT("k"), .detail = str_from(json, sizeof(json))};
    int ok = 0;
    while (store_event_submit(s, &e, NULL) == 0)
        ok++;
    assert_int_equal(ok, 3);
    store_close(s);
    assert_int_equal(q_int("SELECT COUNT(*) FROM events"), 3);
}

/* Another process holds the write lock: the batch fails, is not
 * acknowledged, and commits once the lock is gone. */
static void test_batch_is_retried_and_acked_only_once_committed(void **state)
{
    (void)state;
    store_opts_t o = opts();
    o.busy_timeout_ms = 20;
    store_t *s = open_ok(&o);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO meta VALUES ('x', 'y')", NULL, NULL, NULL),
        SQLITE_OK);
    uint64_t seq = event(s, T0, "k", "s");
    store_stats_t st;
    for (int i = 0; i < 500; i++) {
        store_stats_get(s, &st);
        if (st.commit_errors > 0)
            break;
        usleep(2000);
    }
    assert_true(st.commit_errors > 0);
    assert_int_equal(store_acked(s), 0);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    sync_all(s, seq);
    store_close(s);
    assert_int_equal(q_int("SELECT COUNT(*) FROM events"), 1);
}

#define NTHREADS 4
#define PER_THREAD 5000

typedef struct {
    store_t *s;
    int id;
    uint64_t last;
} producer_t;

static void *produce(void *arg)
{
    producer_t *p = arg;
    char name[16];
    snprintf(name, sizeof(name), "t%d", p->id);
    for (int i = 0; i < PER_THREAD; i++) {
        store_probe_t x = {.monitor = str_cstr(name), .ts = T0 + i, .ok = i % 3 != 0};
        uint64_t seq;
        while (store_probe_submit(p->s, &x, &seq) == -ENOBUFS)
            usleep(100);
        p->last = seq;
    }
    return NULL;
}

static void test_threads_submit_at_once_and_every_row_arrives(void **state)
{
    (void)state;
    store_opts_t o = opts();
    o.queue_max = 1024;
    o.batch_max = 256;
    store_t *s = open_ok(&o);
    pthread_t t[NTHREADS];
    producer_t p[NTHREADS];
    uint64_t max = 0;
    for (int i = 0; i < NTHREADS; i++) {
        p[i] = (producer_t){.s = s, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        max = p[i].last > max ? p[i].last : max;
    }
    assert_int_equal(max, NTHREADS * PER_THREAD);
    sync_all(s, max);
    store_stats_t st;
    store_stats_get(s, &st);
    assert_int_equal(st.rows[STORE_KIND_PROBE], NTHREADS * PER_THREAD);
    assert_true(st.commits < NTHREADS * PER_THREAD); /* batched */
    store_close(s);
    assert_int_equal(q_int("SELECT COUNT(*) FROM probes"), NTHREADS * PER_THREAD);
    assert_int_equal(q_int("SELECT COUNT(DISTINCT monitor) FROM probes"), NTHREADS);
}

static int commits_seen;
static uint64_t commit_acked;

static void on_commit(void *data, uint64_t acked)
{
    (void)data;
    __atomic_add_fetch(&commits_seen, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&commit_acked, acked, __ATOMIC_RELEASE);
}

static void test_commit_callback_reports_acked(void **state)
{
    (void)state;
    store_opts_t o = opts();
    o.commit_cb = on_commit;
    store_t *s = open_ok(&o);
    uint64_t seq = event(s, T0, "k", "s");
    sync_all(s, seq);
    store_close(s);
    assert_true(__atomic_load_n(&commits_seen, __ATOMIC_RELAXED) >= 1);
    assert_int_equal(__atomic_load_n(&commit_acked, __ATOMIC_ACQUIRE), seq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_schema_in_wal_mode_and_reopens, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_a_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_second_open_of_one_file_is_refused_until_the_first_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_names_the_path_when_its_directory_is_missing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_other_buckets_and_non_databases, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_events_acked_in_order_and_listed_newest_first_with_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probes_states_and_deliveries_read_back_cut_and_cleaned,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_refuses_bad_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollups_sum_samples_into_minutes_hours_and_days, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sli_load_is_half_open_bounded_and_adds_same_second,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_deletes_only_expired_rows_per_kind, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retention_runs_by_submitted_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_refuses_counts_and_close_drains, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_byte_budget_bounds_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_is_retried_and_acked_only_once_committed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_threads_submit_at_once_and_every_row_arrives, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_commit_callback_reports_acked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
