/* probe_bench: how many monitors one control thread sustains (issue 6).
 *
 * Runs what the control thread runs for monitors, and nothing else: one
 * loop_t on this thread and one probe_t with N HTTP monitors spread
 * round-robin over the target URLs, every monitor at the same interval
 * (10 s unless -i says otherwise), for -s seconds. Then it prints one line
 * of key=value figures for bench/monitors.sh:
 *
 *   elapsed_s    wall time the loop ran: -s SECONDS, unless the loop was
 *                so far behind that it could not stop on time; a run still
 *                going CUT_AFTER_S past its end is cut short (the report is
 *                printed from the callback and the process exits at once)
 *   expected     N * elapsed / interval: the ticks the monitors are due
 *                (probe.c spreads the first tick of each monitor uniformly
 *                over one interval: over whole intervals this is exact)
 *   completed    probes that ended (ok + failed), through the on_result hook
 *   skipped      ticks that found the monitor's previous probe still in
 *                flight, or that a loop a whole interval late let pass
 *                (probe_status().skipped; probe.c plans each tick from the
 *                previous planned time)
 *   in_flight    probes still running when the run ended
 *   thread_cpu_s CPU time of this thread (getrusage RUSAGE_THREAD) during
 *                the run; cpu_us_per_probe divides it by completed
 *   process_cpu_s the same for the whole process (libcurl starts no thread
 *                for IP literals, so the two should agree)
 *   lat_*_ms     probe latency as probe results give it (libcurl's total
 *                time, whole milliseconds: 0 means under 1 ms)
 *   lag_*_ms     lateness of a 100 ms loop timer: how long anything else on
 *                the control thread (the admin API) would wait
 *   fail_detail  the most frequent failure detail, if any
 *
 * Usage: probe_bench -n N [-i INTERVAL_MS] [-s SECONDS] [-t TIMEOUT_MS] URL...
 * Built on request only (`ninja -C build bench/probe_bench`, bench/meson.build). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "monitor/probe.h"

#define LAT_SLOTS 65536 /* latency histogram, one slot per ms */
#define LAG_PERIOD_MS 100
#define FAIL_KINDS 8 /* distinct failure details remembered */
#define CUT_AFTER_S 10
#define MON_NAME_LEN 24 /* "m" and a size_t in decimal */

typedef struct {
    size_t n;
    unsigned interval_ms, seconds, timeout_ms;
    char **urls;
    size_t nurls;
} args_t;

typedef struct {
    char detail[PROBE_DETAIL_MAX];
    uint64_t count;
} fail_kind_t;

/* The one run of this process; callbacks reach it as a global. */
typedef struct {
    args_t a;
    loop_t *loop;
    const probe_t *p; /* NULL until the probes exist */
    uint64_t start_us, end_us;
    double t0, p0; /* thread and process CPU at the start */
    uint64_t completed, failed;
    uint64_t lat[LAT_SLOTS];
    fail_kind_t fails[FAIL_KINDS];
    loop_timer_t lag_timer, stop_timer;
    uint64_t lag_due_us;
    double *lags; /* ms, one per lag tick */
    size_t nlags, lags_max;
} bench_t;

static bench_t B;

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static double cpu_s(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) < 0)
        return 0;
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- the report ---- */

static uint64_t lat_quantile(double q)
{
    uint64_t total = 0, seen = 0;
    for (size_t i = 0; i < LAT_SLOTS; i++)
        total += B.lat[i];
    if (!total)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)(total - 1));
    for (size_t i = 0; i < LAT_SLOTS; i++) {
        seen += B.lat[i];
        if (seen > rank)
            return i;
    }
    return LAT_SLOTS - 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double lag_quantile(double q)
{
    return B.nlags ? B.lags[(size_t)(q * (double)(B.nlags - 1))] : 0;
}

/* Prints the key=value line (see the top of the file). Loop thread. */
static void report(uint64_t now_us)
{
    double thread_cpu = cpu_s(RUSAGE_THREAD) - B.t0, proc_cpu = cpu_s(RUSAGE_SELF) - B.p0;
    double elapsed = (double)(now_us - B.start_us) / 1e6;
    uint64_t skipped = 0, in_flight = 0;
    for (size_t i = 0; i < B.a.n; i++) {
        probe_status_t st;
        if (probe_status(B.p, i, &st) == 0) {
            skipped += st.skipped;
            in_flight += st.in_flight;
        }
    }
    qsort(B.lags, B.nlags, sizeof(*B.lags), cmp_double);
    const fail_kind_t *top = &B.fails[0];
    for (size_t i = 1; i < FAIL_KINDS; i++)
        if (B.fails[i].count > top->count)
            top = &B.fails[i];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("n=%zu seconds=%u elapsed_s=%.3f interval_ms=%u expected=%.0f completed=%llu "
           "failed=%llu skipped=%llu in_flight=%llu thread_cpu_s=%.3f process_cpu_s=%.3f "
           "cpu_us_per_probe=%.1f lat_p50_ms=%llu lat_p99_ms=%llu lat_max_ms=%llu "
           "lag_p99_ms=%.1f lag_max_ms=%.1f rss_kb=%ld fail_detail=\"%s\"\n",
           B.a.n, B.a.seconds, elapsed, B.a.interval_ms,
           (double)B.a.n * elapsed * 1000.0 / B.a.interval_ms, (unsigned long long)B.completed,
           (unsigned long long)B.failed, (unsigned long long)skipped, (unsigned long long)in_flight,
           thread_cpu, proc_cpu, B.completed ? thread_cpu * 1e6 / (double)B.completed : 0.0,
           (unsigned long long)lat_quantile(0.5), (unsigned long long)lat_quantile(0.99),
           (unsigned long long)lat_quantile(1.0), lag_quantile(0.99), lag_quantile(1.0),
           ru.ru_maxrss, top->count ? top->detail : "");
    fflush(stdout);
}

/* ---- callbacks (loop thread) ---- */

/* The stop timer alone would stop an overloaded loop late (its timers
 * lag): results and lag ticks also look at the clock. A loop so far behind
 * that one libcurl call outlasts CUT_AFTER_S is not waited for. */
static void stop_if_due(void)
{
    uint64_t now = mono_us();
    if (now < B.end_us)
        return;
    loop_stop(B.loop);
    if (now >= B.end_us + CUT_AFTER_S * 1000000ULL && B.p) {
        report(now);
        _exit(0);
    }
}

static void fail_note(const char *detail)
{
    for (size_t i = 0; i < FAIL_KINDS; i++) {
        fail_kind_t *k = &B.fails[i];
        if (!k->count)
            snprintf(k->detail, sizeof(k->detail), "%s", detail);
        if (!strcmp(k->detail, detail)) {
            k->count++;
            return;
        }
    }
}

static void on_result(void *ud, size_t index, const probe_result_t *r)
{
    (void)ud;
    (void)index;
    B.completed++;
    B.lat[r->latency_ms < LAT_SLOTS ? r->latency_ms : LAT_SLOTS - 1]++;
    if (!r->ok) {
        B.failed++;
        fail_note(r->detail);
    }
    stop_if_due();
}

/* Re-armed against its own schedule, not from now, so lateness does not
 * accumulate into the next measurement. */
static void lag_cb(loop_t *loop, loop_timer_t *t)
{
    uint64_t now = mono_us();
    if (B.nlags < B.lags_max)
        B.lags[B.nlags++] = now > B.lag_due_us ? (double)(now - B.lag_due_us) / 1000.0 : 0;
    B.lag_due_us += LAG_PERIOD_MS * 1000;
    uint64_t wait = B.lag_due_us > now ? (B.lag_due_us - now + 999) / 1000 : 0;
    (void)loop_timer_start(loop, t, wait);
    stop_if_due();
}

static void stop_cb(loop_t *loop, loop_timer_t *t)
{
    (void)t;
    loop_stop(loop);
}

/* ---- set-up ---- */

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* N specs, round-robin over the URLs; the names live in one block that is
 * specs[0].name. Who frees: the caller, both. NULL when out of memory. */
static probe_spec_t *specs_new(const args_t *a)
{
    probe_spec_t *specs = calloc(a->n, sizeof(*specs));
    char *names = calloc(a->n, MON_NAME_LEN);
    if (!specs || !names) {
        free(specs);
        free(names);
        return NULL;
    }
    for (size_t i = 0; i < a->n; i++) {
        snprintf(names + MON_NAME_LEN * i, MON_NAME_LEN, "m%zu", i);
        specs[i] = (probe_spec_t){.name = names + MON_NAME_LEN * i,
                                  .kind = PROBE_HTTP,
                                  .target = a->urls[i % a->nurls],
                                  .interval_ms = a->interval_ms,
                                  .timeout_ms = a->timeout_ms};
    }
    return specs;
}

static int args_parse(int argc, char **argv, args_t *a)
{
    *a = (args_t){.interval_ms = 10000, .seconds = 30, .timeout_ms = 5000};
    int opt;
    while ((opt = getopt(argc, argv, "n:i:s:t:")) != -1) {
        unsigned long v = optarg ? strtoul(optarg, NULL, 10) : 0;
        switch (opt) {
        case 'n':
            a->n = v;
            break;
        case 'i':
            a->interval_ms = v;
            break;
        case 's':
            a->seconds = v;
            break;
        case 't':
            a->timeout_ms = v;
            break;
        default:
            return -EINVAL;
        }
    }
    a->urls = argv + optind;
    a->nurls = optind < argc ? (size_t)(argc - optind) : 0;
    bool ok = a->n && a->interval_ms && a->seconds && a->timeout_ms && a->nurls;
    return ok ? 0 : -EINVAL;
}

/* Arms the lag and stop timers and the probes from one "now" (loop timers
 * count from the loop's cached clock), then runs the loop to the end. */
static int run(const probe_spec_t *specs, probe_t **ret_p)
{
    int err = 0;
    loop_update_time(B.loop);
    B.start_us = mono_us();
    B.lag_due_us = B.start_us + LAG_PERIOD_MS * 1000;
    B.end_us = B.start_us + (uint64_t)B.a.seconds * 1000000;
    loop_timer_init(&B.lag_timer, lag_cb);
    loop_timer_init(&B.stop_timer, stop_cb);
    if (loop_timer_start(B.loop, &B.lag_timer, LAG_PERIOD_MS) < 0 ||
        loop_timer_start(B.loop, &B.stop_timer, (uint64_t)B.a.seconds * 1000) < 0)
        return -ENOMEM;
    probe_hooks_t hooks = {.on_result = on_result};
    if (!(*ret_p = probe_new(B.loop, specs, B.a.n, &hooks, &err)))
        return err;
    B.p = *ret_p;
    B.t0 = cpu_s(RUSAGE_THREAD);
    B.p0 = cpu_s(RUSAGE_SELF);
    return loop_run(B.loop);
}

int main(int argc, char **argv)
{
    if (args_parse(argc, argv, &B.a) < 0) {
        fprintf(stderr, "usage: probe_bench -n N [-i INTERVAL_MS] [-s SECONDS] "
                        "[-t TIMEOUT_MS] URL...\n");
        return 2;
    }
    int rc = 1, err = -ENOMEM;
    raise_fd_limit();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    probe_t *p = NULL;
    probe_spec_t *specs = specs_new(&B.a);
    B.lags_max = (size_t)B.a.seconds * 1000 / LAG_PERIOD_MS + 16;
    B.lags = calloc(B.lags_max, sizeof(*B.lags));
    if (specs && B.lags && (B.loop = loop_new()))
        err = run(specs, &p);
    if (err < 0) {
        fprintf(stderr, "probe_bench: %s\n", strerror(-err));
        goto out;
    }
    report(mono_us());
    rc = 0;
out:
    probe_free(p);
    if (B.loop) {
        loop_timer_stop(B.loop, &B.lag_timer);
        loop_timer_stop(B.loop, &B.stop_timer);
        loop_free(B.loop);
    }
    if (specs)
        free((char *)specs[0].name);
    free(specs);
    free(B.lags);
    curl_global_cleanup();
    return rc;
}
