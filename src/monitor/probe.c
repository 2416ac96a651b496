/* The probe scheduler and state machine: see probe.h. One probe_mon_t per
 * monitor holds its tick timer, the probe in flight (whose kind-specific
 * part lives in probe_http.c or probe_dns.c), its state and its counters.
 * The tick re-arms itself every interval whatever the probes take, so the
 * cadence stays fixed; a tick that finds a probe in flight only counts a
 * skip, and that probe's own timeout ends it. Every result, of any kind,
 * goes through probe_finish(), the one place that applies down_after and
 * up_after and calls the hooks. */
#include "monitor/probe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "monitor/probe_int.h"

#define PROBE_DEFAULT_INTERVAL_MS 30000
#define PROBE_DEFAULT_TIMEOUT_MS 5000
#define PROBE_DEFAULT_AFTER 2

int64_t probe_now_unix(const probe_t *p)
{
    if (p->hooks.now_unix)
        return p->hooks.now_unix(p->hooks.ud);
    return (int64_t)time(NULL);
}

uint64_t probe_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *probe_state_name(probe_state_t s)
{
    switch (s) {
    case PROBE_UP:
        return "up";
    case PROBE_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

/* xorshift64*: start-up spread needs no secrecy. */
static uint64_t rand_below(probe_t *p, uint64_t n)
{
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return n ? (p->rng * 2685821657736338717ULL) % n : 0;
}

/* The state the streaks call for, from the current one (see probe.h). */
static probe_state_t next_state(const probe_mon_t *m)
{
    switch (m->state) {
    case PROBE_UNKNOWN:
        if (m->ok_streak >= 1)
            return PROBE_UP;
        return m->fail_streak >= m->spec.down_after ? PROBE_DOWN : PROBE_UNKNOWN;
    case PROBE_UP:
        return m->fail_streak >= m->spec.down_after ? PROBE_DOWN : PROBE_UP;
    case PROBE_DOWN:
        return m->ok_streak >= m->spec.up_after ? PROBE_UP : PROBE_DOWN;
    }
    return m->state;
}

void probe_finish(probe_mon_t *m, probe_result_t *r)
{
    probe_t *p = m->p;
    m->running = false;
    r->at = probe_now_unix(p);
    if (r->ok) {
        m->nok++;
        m->ok_streak++;
        m->fail_streak = 0;
    } else {
        m->nfail++;
        m->fail_streak++;
        m->ok_streak = 0;
    }
    m->last = *r;
    m->has_result = true;
    if (r->cert_expiry)
        m->cert_expiry = r->cert_expiry;
    probe_state_t from = m->state, to = next_state(m);
    if (to != from) {
        m->state = to;
        m->last_change = r->at;
    }
    if (p->hooks.on_result)
        p->hooks.on_result(p->hooks.ud, m->index, &m->last);
    if (to != from && p->hooks.on_state)
        p->hooks.on_state(p->hooks.ud, m->index, from, to);
}

void probe_fail(probe_mon_t *m, uint32_t latency_ms, int status, const char *fmt, ...)
{
    probe_result_t r = {.ok = false, .latency_ms = latency_ms, .status = status};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.detail, sizeof(r.detail), fmt, ap);
    va_end(ap);
    probe_finish(m, &r);
}

static void tick_cb(loop_t *loop, loop_timer_t *t)
{
    probe_mon_t *m = container_of(t, probe_mon_t, tick);
    /* The next tick is planned from this one's planned time, not from when
     * it fired: a loop running late then skips ticks, and counts them,
     * instead of stretching every interval where nobody sees it. Just
     * disarmed, so the heap has its slot: this cannot fail. */
    uint64_t now = loop_now(loop), iv = m->spec.interval_ms, next = t->due + iv;
    if (next <= now) {
        uint64_t missed = (now - next) / iv + 1;
        m->nskipped += missed;
        next += missed * iv;
    }
    (void)loop_timer_start(loop, t, next - now);
    if (m->running) {
        m->nskipped++;
        return;
    }
    m->running = true;
    if (m->spec.kind == PROBE_DNS)
        probe_dns_start(m);
    else
        probe_http_start(m);
}

/* ---- construction ---- */

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* A TCP target must end in ":port" with a port in 1..65535. */
static bool tcp_target_valid(const char *t)
{
    const char *colon = strrchr(t, ':');
    if (!colon || colon == t || !colon[1])
        return false;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return *end == '\0' && port >= 1 && port <= 65535;
}

static int spec_check(const probe_spec_t *s)
{
    if (!s->name || !*s->name || !s->target || !*s->target)
        return -EINVAL;
    if (s->body && strlen(s->body) > PROBE_BODY_NEEDLE_MAX)
        return -EINVAL;
    bool https = s->kind == PROBE_HTTP && has_prefix_ci(s->target, "https://");
    if (s->cert_days && !https)
        return -EINVAL;
    switch (s->kind) {
    case PROBE_HTTP:
        return https || has_prefix_ci(s->target, "http://") ? 0 : -EINVAL;
    case PROBE_TCP:
        return tcp_target_valid(s->target) ? 0 : -EINVAL;
    case PROBE_DNS:
        return 0;
    }
    return -EINVAL;
}

static char *dup_opt(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

/* Copies the spec with its strings and its defaults applied. */
static int mon_init(probe_t *p, probe_mon_t *m, size_t index, const probe_spec_t *s)
{
    m->p = p;
    m->index = index;
    loop_timer_init(&m->tick, tick_cb);
    loop_timer_init(&m->deadline, NULL);
    int err = spec_check(s);
    if (err < 0)
        return err;
    m->spec = *s;
    bool failed = false;
    m->spec.name = dup_opt(s->name, &failed);
    m->spec.target = dup_opt(s->target, &failed);
    m->spec.body = dup_opt(s->body, &failed);
    m->spec.ca_file = dup_opt(s->ca_file, &failed);
    if (failed)
        return -ENOMEM;
    if (!m->spec.expect_status)
        m->spec.expect_status = 200;
    if (!m->spec.interval_ms)
        m->spec.interval_ms = PROBE_DEFAULT_INTERVAL_MS;
    if (!m->spec.timeout_ms)
        m->spec.timeout_ms = PROBE_DEFAULT_TIMEOUT_MS;
    if (!m->spec.down_after)
        m->spec.down_after = PROBE_DEFAULT_AFTER;
    if (!m->spec.up_after)
        m->spec.up_after = PROBE_DEFAULT_AFTER;
    if (m->spec.kind == PROBE_DNS)
        return 0;
    return probe_http_prepare(m);
}

static void mon_deinit(probe_mon_t *m)
{
    if (m->running) {
        if (m->spec.kind == PROBE_DNS)
            probe_dns_cancel(m);
        else
            probe_http_cancel(m);
    }
    loop_timer_stop(m->p->loop, &m->tick);
    loop_timer_stop(m->p->loop, &m->deadline);
    probe_match_deinit(&m->match);
    free(m->url);
    free((char *)m->spec.name);
    free((char *)m->spec.target);
    free((char *)m->spec.body);
    free((char *)m->spec.ca_file);
}

static void rng_seed(probe_t *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->rng = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
             ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)p;
    if (!p->rng)
        p->rng = 0x9e3779b97f4a7c15ULL;
}

probe_t *probe_new(loop_t *loop, const probe_spec_t *specs, size_t n, const probe_hooks_t *hooks,
                   int *ret_err)
{
    int err = -ENOMEM;
    probe_t *p = calloc(1, sizeof(*p));
    if (!p)
        goto fail;
    p->loop = loop;
    p->hub_io.fd = -1;
    if (hooks)
        p->hooks = *hooks;
    rng_seed(p);
    p->mons = calloc(n ? n : 1, sizeof(*p->mons));
    if (!p->mons)
        goto fail;
    bool dns = false;
    for (size_t i = 0; i < n; i++)
        dns |= specs[i].kind == PROBE_DNS;
    if (!(p->curl = curl_loop_new(loop, probe_curl_done, p, &err)))
        goto fail;
    if (dns && (err = probe_dns_hub_open(p)) < 0)
        goto fail;
    for (; p->n < n; p->n++) {
        probe_mon_t *m = &p->mons[p->n];
        if ((err = mon_init(p, m, p->n, &specs[p->n])) < 0) {
            p->n++; /* partly built: mon_deinit cleans up what is there */
            goto fail;
        }
    }
    /* First probes spread over one interval, so that a restart does not
     * probe every target in the same millisecond. */
    err = -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (loop_timer_start(loop, &p->mons[i].tick, rand_below(p, p->mons[i].spec.interval_ms)) <
            0)
            goto fail;
    return p;
fail:
    probe_free(p);
    if (ret_err)
        *ret_err = err;
    return NULL;
}

void probe_free(probe_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        mon_deinit(&p->mons[i]);
    probe_dns_hub_close(p);
    curl_loop_free(p->curl);
    free(p->mons);
    free(p);
}

/* O(n * m) name comparisons: fine for the hundreds of monitors one
 * configuration holds, and it runs once per reload. */
void probe_inherit(probe_t *p, const probe_t *old)
{
    for (size_t i = 0; i < p->n; i++) {
        probe_mon_t *m = &p->mons[i];
        for (size_t j = 0; j < old->n; j++) {
            const probe_mon_t *o = &old->mons[j];
            if (strcmp(o->spec.name, m->spec.name) != 0)
                continue;
            if (o->spec.kind == m->spec.kind && strcmp(o->spec.target, m->spec.target) == 0) {
                m->state = o->state;
                m->ok_streak = o->ok_streak;
                m->fail_streak = o->fail_streak;
                m->last_change = o->last_change;
                m->has_result = o->has_result;
                m->last = o->last;
                m->cert_expiry = o->cert_expiry;
                m->nok = o->nok;
                m->nfail = o->nfail;
                m->nskipped = o->nskipped;
            }
            break;
        }
    }
}

/* ---- reading ---- */

size_t probe_count(const probe_t *p)
{
    return p->n;
}

const char *probe_name(const probe_t *p, size_t index)
{
    return index < p->n ? p->mons[index].spec.name : NULL;
}

int probe_status(const probe_t *p, size_t index, probe_status_t *ret)
{
    if (index >= p->n)
        return -ENOENT;
    const probe_mon_t *m = &p->mons[index];
    *ret = (probe_status_t){
        .state = m->state,
        .has_result = m->has_result,
        .last = m->last,
        .ok_streak = m->ok_streak,
        .fail_streak = m->fail_streak,
        .last_change = m->last_change,
        .ok = m->nok,
        .fail = m->nfail,
        .skipped = m->nskipped,
        .in_flight = m->running,
    };
    return 0;
}

void probe_metrics_write(const probe_t *p, prom_t *pr)
{
    prom_family(pr, "surety_monitor_up", PROM_GAUGE,
                "1 while the monitor is up, 0 while down; absent until decided.");
    for (size_t i = 0; i < p->n; i++) {
        const probe_mon_t *m = &p->mons[i];
        if (m->state != PROBE_UNKNOWN)
            prom_gauge_u64(pr, "surety_monitor_up", PROM_LABELS({"monitor", m->spec.name}),
                           m->state == PROBE_UP);
    }
    prom_family(pr, "surety_monitor_probes_total", PROM_COUNTER, "Probes finished, by result.");
    for (size_t i = 0; i < p->n; i++) {
        const probe_mon_t *m = &p->mons[i];
        prom_counter(pr, "surety_monitor_probes_total",
                     PROM_LABELS({"monitor", m->spec.name}, {"result", "ok"}), m->nok);
        prom_counter(pr, "surety_monitor_probes_total",
                     PROM_LABELS({"monitor", m->spec.name}, {"result", "fail"}), m->nfail);
    }
    prom_family(pr, "surety_monitor_probes_skipped_total", PROM_COUNTER,
                "Probe ticks skipped because the previous probe was still running.");
    for (size_t i = 0; i < p->n; i++)
        prom_counter(pr, "surety_monitor_probes_skipped_total",
                     PROM_LABELS({"monitor", p->mons[i].spec.name}), p->mons[i].nskipped);
    prom_family(pr, "surety_monitor_probe_duration_seconds", PROM_GAUGE,
                "Duration of the last probe (HTTP total, TCP connect, DNS lookup).");
    for (size_t i = 0; i < p->n; i++) {
        const probe_mon_t *m = &p->mons[i];
        if (m->has_result)
            prom_gauge(pr, "surety_monitor_probe_duration_seconds",
                       PROM_LABELS({"monitor", m->spec.name}), m->last.latency_ms / 1000.0);
    }
    prom_family(pr, "surety_monitor_certificate_expiry_seconds", PROM_GAUGE,
                "Seconds until the earliest certificate of the chain expires (https).");
    int64_t now = probe_now_unix(p);
    for (size_t i = 0; i < p->n; i++) {
        const probe_mon_t *m = &p->mons[i];
        if (m->cert_expiry)
            prom_gauge(pr, "surety_monitor_certificate_expiry_seconds",
                       PROM_LABELS({"monitor", m->spec.name}), (double)(m->cert_expiry - now));
    }
}
