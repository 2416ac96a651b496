/* The control plane's watch: see monitor.h. This file holds the objectives
 * (feeding, evaluation, alert posting) and the glue to probes and the
 * store; monitor_api.c renders it for the admin API, `surety status` and
 * /metrics. */
#include "monitor/monitor_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

const char *const monitor_sev_names[2] = {"page", "ticket"};
#define sev_names monitor_sev_names

/* ---- events ---------------------------------------------------------------- */

void monitor_event(monitor_t *m, const char *kind, const char *subject, const char *detail_json)
{
    monitor_ev_t *e = &m->events[(m->ev_head + m->ev_count) % MONITOR_EVENTS_KEPT];
    if (m->ev_count == MONITOR_EVENTS_KEPT)
        m->ev_head = (m->ev_head + 1) % MONITOR_EVENTS_KEPT;
    else
        m->ev_count++;
    e->ts = clock_unix();
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    snprintf(e->subject, sizeof(e->subject), "%s", subject);
    snprintf(e->detail, sizeof(e->detail), "%s", detail_json ? detail_json : "{}");
    if (m->o.store) {
        store_event_t se = {.ts = e->ts,
                            .kind = str_cstr(e->kind),
                            .subject = str_cstr(e->subject),
                            .detail = str_cstr(e->detail)};
        if (store_event_submit(m->o.store, &se, NULL) < 0)
            m->store_refused++;
    }
}

/* ---- maintenance ----------------------------------------------------------- */

/* The maintenance window covering objective i at now, or NULL. */
const conf_maintenance_t *monitor_maintenance(const monitor_t *m, size_t i, int64_t now)
{
    const conf_t *c = m->o.conf;
    for (size_t k = 0; k < c->nmaintenance; k++) {
        const conf_maintenance_t *w = &c->maintenance[k];
        if (now < w->start_s || now >= w->end_s)
            continue;
        if (w->objectives_all)
            return w;
        for (size_t j = 0; j < w->nobjectives; j++)
            if (w->objectives[j].index == i)
                return w;
    }
    return NULL;
}

/* Adds good/total events at time ts to objective i, unless a maintenance
 * window leaves them out. */
static void objective_add(monitor_t *m, size_t i, int64_t ts, uint64_t good, uint64_t total)
{
    monitor_obj_t *o = &m->obj[i];
    if (!total || (!o->oc->maintenance_counts && monitor_maintenance(m, i, ts)))
        return;
    (void)slo_series_add(o->series, ts / 60, good, total); /* -ESTALE: older than the window */
}

/* ---- probes ---------------------------------------------------------------- */

/* A monitor's probes are stored as SLI samples under "monitor:NAME", by
 * latency bucket, which tells its availability and bucket-bound latency
 * objectives their good events. A latency objective whose threshold is not
 * a bucket bound cannot be told from the buckets, so its good/total samples
 * go to a source of their own, "monitor:NAME/le=Nms", one per threshold. */
static bool own_source(const conf_objective_t *oc)
{
    return oc->source_kind == CONF_SLO_SOURCE_MONITOR && oc->kind == CONF_SLO_LATENCY &&
           !conf_latency_is_bound(oc->threshold_ms);
}

/* The store source objective oc's history is kept under. */
static void objective_source(const monitor_t *m, const conf_objective_t *oc, char *buf, size_t len)
{
    if (oc->source_kind != CONF_SLO_SOURCE_MONITOR)
        snprintf(buf, len, "%s", oc->source);
    else if (own_source(oc))
        snprintf(buf, len, "monitor:%s/le=%llums", m->o.conf->monitors[oc->monitor].name,
                 (unsigned long long)oc->threshold_ms);
    else
        snprintf(buf, len, "monitor:%s", m->o.conf->monitors[oc->monitor].name);
}

/* Whether an objective before i already stores objective i's own source
 * (same monitor and threshold, another window): one sample per probe. */
static bool same_source_before(const monitor_t *m, size_t i)
{
    const conf_objective_t *oc = m->obj[i].oc;
    for (size_t j = 0; j < i; j++) {
        const conf_objective_t *o = m->obj[j].oc;
        if (own_source(o) && o->monitor == oc->monitor && o->threshold_ms == oc->threshold_ms)
            return true;
    }
    return false;
}

/* One SLI sample to the store; buckets: CONF_LATENCY_NBUCKETS + 1 counts. */
static void sli_submit(monitor_t *m, const char *source, int64_t ts, uint64_t requests,
                       uint64_t errors, const uint64_t *buckets)
{
    store_sli_t sample = {.source = str_cstr(source),
                          .ts = ts,
                          .requests = requests,
                          .errors = errors,
                          .buckets = buckets,
                          .nbuckets = CONF_LATENCY_NBUCKETS + 1};
    if (store_sli_submit(m->o.store, &sample, NULL) < 0)
        m->store_refused++;
}

static void own_sample_submit(monitor_t *m, const conf_objective_t *oc, int64_t ts, bool good)
{
    char source[192];
    const uint64_t none[CONF_LATENCY_NBUCKETS + 1] = {0};
    objective_source(m, oc, source, sizeof(source));
    sli_submit(m, source, ts, 1, !good, none);
}

static int64_t probe_clock(void *ud)
{
    (void)ud;
    return clock_unix();
}

static void probe_result(void *ud, size_t index, const probe_result_t *r)
{
    monitor_t *m = ud;
    const conf_t *c = m->o.conf;
    if (m->o.store) {
        store_probe_t sp = {.monitor = str_cstr(c->monitors[index].name),
                            .ts = r->at,
                            .ok = r->ok,
                            .latency_ms = r->latency_ms,
                            .detail = str_cstr(r->detail)};
        if (store_probe_submit(m->o.store, &sp, NULL) < 0)
            m->store_refused++;
    }
    if (m->o.store) { /* also as an SLI sample, so rollups restore the objectives */
        char source[160];
        uint64_t buckets[CONF_LATENCY_NBUCKETS + 1] = {0};
        size_t b = 0; /* a failed probe is never fast: +Inf, as a latency objective sees it */
        while (b < CONF_LATENCY_NBUCKETS &&
               (!r->ok || r->latency_ms / 1000.0 > conf_latency_bounds[b]))
            b++;
        buckets[b] = 1;
        snprintf(source, sizeof(source), "monitor:%s", c->monitors[index].name);
        sli_submit(m, source, r->at, 1, !r->ok, buckets);
    }
    for (size_t i = 0; i < m->nobj; i++) {
        const conf_objective_t *oc = m->obj[i].oc;
        if (oc->source_kind != CONF_SLO_SOURCE_MONITOR || oc->monitor != index)
            continue;
        bool good = r->ok && (oc->kind != CONF_SLO_LATENCY || r->latency_ms <= oc->threshold_ms);
        objective_add(m, i, r->at, good, 1);
        if (m->o.store && own_source(oc) && !same_source_before(m, i))
            own_sample_submit(m, oc, r->at, good);
    }
}

static void probe_state(void *ud, size_t index, probe_state_t from, probe_state_t to)
{
    monitor_t *m = ud;
    const conf_monitor_t *mc = &m->o.conf->monitors[index];
    probe_status_t st;
    const char *why = probe_status(m->probes, index, &st) == 0 && st.has_result ? st.last.detail : "";
    if (to == PROBE_DOWN)
        log_warn("monitor %s (%s) is DOWN: %s", mc->name, mc->target, why);
    else
        log_info("monitor %s (%s) is %s", mc->name, mc->target, probe_state_name(to));
    if (m->o.store) {
        store_state_t ss = {.monitor = str_cstr(mc->name),
                            .ts = clock_unix(),
                            .from = str_cstr(probe_state_name(from)),
                            .to = str_cstr(probe_state_name(to))};
        if (store_state_submit(m->o.store, &ss, NULL) < 0)
            m->store_refused++;
    }
    json_t *d = json_pack("{s:s, s:s, s:s}", "from", probe_state_name(from), "to",
                          probe_state_name(to), "detail", why);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    char subject[160];
    snprintf(subject, sizeof(subject), "monitor:%s", mc->name);
    monitor_event(m, to == PROBE_DOWN ? "monitor_down" : "monitor_up", subject, text);
    free(text);
    json_decref(d);
}

static int probes_start(monitor_t *m)
{
    const conf_t *c = m->o.conf;
    if (!c->nmonitors)
        return 0;
    probe_spec_t *specs = calloc(c->nmonitors, sizeof(*specs));
    if (!specs)
        return -ENOMEM;
    static const probe_kind_t kinds[] = {[CONF_MONITOR_HTTP] = PROBE_HTTP,
                                         [CONF_MONITOR_TCP] = PROBE_TCP,
                                         [CONF_MONITOR_DNS] = PROBE_DNS};
    for (size_t i = 0; i < c->nmonitors; i++) {
        const conf_monitor_t *mc = &c->monitors[i];
        specs[i] = (probe_spec_t){.name = mc->name,
                                  .kind = kinds[mc->kind],
                                  .target = mc->target,
                                  .expect_status = mc->expect,
                                  .body = mc->body,
                                  .latency_ms = (uint32_t)mc->latency_ms,
                                  .cert_days = mc->cert_days,
                                  .interval_ms = (uint32_t)mc->interval_ms,
                                  .timeout_ms = (uint32_t)mc->timeout_ms,
                                  .down_after = mc->down_after,
                                  .up_after = mc->up_after};
    }
    probe_hooks_t hooks = {
        .ud = m, .on_result = probe_result, .on_state = probe_state, .now_unix = probe_clock};
    int err = 0;
    m->probes = probe_new(m->o.loop, specs, c->nmonitors, &hooks, &err);
    free(specs);
    if (!m->probes)
        return err ? err : -ENOMEM;
    return 0;
}

/* ---- the gateway's SLIs ---------------------------------------------------- */

/* good/total of one SLI difference for objective oc. */
static slo_count_t sli_count(const conf_objective_t *oc, const gateway_sli_t *d)
{
    slo_count_t c = {d->requests - d->errors, d->requests};
    if (oc->kind == CONF_SLO_LATENCY &&
        slo_latency_count(conf_latency_bounds, CONF_LATENCY_NBUCKETS, d->buckets, oc->threshold_ms,
                          &c) < 0)
        c = (slo_count_t){0, 0}; /* conf checked the threshold: cannot happen */
    return c;
}

static const gateway_sli_t *prev_find(const monitor_t *m, size_t hint, const char *source)
{
    if (hint < m->nprev && !strcmp(m->prev[hint].source, source))
        return &m->prev[hint];
    for (size_t i = 0; i < m->nprev; i++)
        if (!strcmp(m->prev[i].source, source))
            return &m->prev[i];
    return NULL;
}

/* cur - prev, per counter (a counter that went back, which a restart of
 * the process would do, counts from zero). */
static void sli_delta(gateway_sli_t *d, const gateway_sli_t *cur, const gateway_sli_t *prev)
{
#define SUB(f) (prev && cur->f >= prev->f ? cur->f - prev->f : cur->f)
    *d = *cur;
    d->requests = SUB(requests);
    d->errors = SUB(errors);
    for (size_t b = 0; b <= CONF_LATENCY_NBUCKETS; b++)
        d->buckets[b] = SUB(buckets[b]);
#undef SUB
    if (d->errors > d->requests)
        d->errors = d->requests;
}

static void sli_feed(monitor_t *m, const gateway_sli_t *sli, size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        gateway_sli_t d;
        /* the gateway counts from the start of the process, as the watch
         * does: the first snapshot counts whole */
        sli_delta(&d, &sli[i], m->primed ? prev_find(m, i, sli[i].source) : NULL);
        if (!d.requests)
            continue;
        if (m->o.store)
            sli_submit(m, d.source, now, d.requests, d.errors, d.buckets);
        for (size_t k = 0; k < m->nobj; k++) {
            const conf_objective_t *oc = m->obj[k].oc;
            if (oc->source_kind == CONF_SLO_SOURCE_MONITOR || strcmp(oc->source, d.source))
                continue;
            slo_count_t c = sli_count(oc, &d);
            objective_add(m, k, now, c.good, c.total);
        }
    }
    gateway_sli_t *copy = n ? malloc(n * sizeof(*copy)) : NULL;
    if (n && !copy)
        return; /* the next tick diffs against the older snapshot: nothing is lost */
    if (n)
        memcpy(copy, sli, n * sizeof(*copy));
    free(m->prev);
    m->prev = copy;
    m->nprev = n;
    m->primed = true;
}

/* ---- evaluation and alerts ------------------------------------------------- */

/* The first firing rule of severity sev, for the summary. */
static const slo_rule_state_t *rule_of(const slo_status_t *st, int sev)
{
    for (int r = 0; r < SLO_NRULES; r++)
        if (st->rules[r].firing && (int)st->rules[r].severity == sev)
            return &st->rules[r];
    return NULL;
}

static void alert_fill(const monitor_t *m, const monitor_obj_t *o, int sev, bool firing,
                       notify_alert_t *a)
{
    const conf_objective_t *oc = o->oc;
    const slo_status_t *st = &o->st;
    memset(a, 0, sizeof(*a));
    snprintf(a->key, sizeof(a->key), "objective:%s:%s", oc->name, sev_names[sev]);
    a->state = firing ? NOTIFY_FIRING : NOTIFY_RESOLVED;
    snprintf(a->objective, sizeof(a->objective), "%s", oc->name);
    snprintf(a->severity, sizeof(a->severity), "%s", sev_names[sev]);
    a->since = o->since[sev];
    const slo_rule_state_t *r = rule_of(st, sev);
    if (firing && r)
        snprintf(a->summary, sizeof(a->summary),
                 "%s (%s, %s): error budget burning %.1fx over %llum and %.1fx over %llum "
                 "(alert at %.1fx); SLI %.4f%%, target %.4f%%",
                 oc->name, oc->source, oc->kind == CONF_SLO_LATENCY ? "latency" : "availability",
                 r->long_burn, (unsigned long long)(r->long_ms / 60000), r->short_burn,
                 (unsigned long long)(r->short_ms / 60000), r->threshold, 100 * st->sli,
                 100 * oc->target);
    else
        snprintf(a->summary, sizeof(a->summary), "%s (%s): burn rate back under the %s rules",
                 oc->name, oc->source, sev_names[sev]);
    a->nlabels = 2;
    snprintf(a->labels[0].name, sizeof(a->labels[0].name), "source");
    snprintf(a->labels[0].value, sizeof(a->labels[0].value), "%s", oc->source);
    snprintf(a->labels[1].name, sizeof(a->labels[1].name), "kind");
    snprintf(a->labels[1].value, sizeof(a->labels[1].value), "%s",
             oc->kind == CONF_SLO_LATENCY ? "latency" : "availability");
    static const char *const vnames[] = {"sli", "target", "budget_remaining", "burn_rate_5m",
                                         "burn_rate_1h", "burn_rate_6h", "burn_rate_3d"};
    const double vals[] = {st->sli,          oc->target,           st->budget_remaining,
                           st->burn[SLO_W_5M], st->burn[SLO_W_1H], st->burn[SLO_W_6H],
                           st->burn[SLO_W_3D]};
    (void)m;
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]) && i < NOTIFY_VALUES_MAX; i++) {
        snprintf(a->values[i].name, sizeof(a->values[i].name), "%s", vnames[i]);
        a->values[i].value = vals[i];
        a->nvalues++;
    }
}

/* Posts the objective's state of severity sev to each of its alerts. */
static void alert_post(monitor_t *m, const monitor_obj_t *o, int sev, bool firing)
{
    const conf_objective_t *oc = o->oc;
    if (!m->o.notify)
        return;
    notify_alert_t a;
    alert_fill(m, o, sev, firing, &a);
    size_t n = oc->alerts_all ? m->o.conf->nalerts : oc->nalerts;
    for (size_t i = 0; i < n; i++) {
        a.receiver = (unsigned)(oc->alerts_all ? i : oc->alerts[i].index);
        if (notify_post(m->o.notify, &a) < 0)
            m->notify_refused++;
    }
}

static void objective_evaluate(monitor_t *m, size_t i, int64_t now)
{
    monitor_obj_t *o = &m->obj[i];
    if (slo_evaluate(o->series, now / 60, o->oc->target, &o->st) < 0)
        return;
    o->evaluated = true;
    const conf_maintenance_t *mw = monitor_maintenance(m, i, now);
    o->silenced = mw != NULL;
    for (int sev = 0; sev < 2; sev++) {
        bool firing = sev == 0 ? o->st.page : o->st.ticket;
        char subject[160], detail[256];
        snprintf(subject, sizeof(subject), "objective:%s", o->oc->name);
        snprintf(detail, sizeof(detail),
                 "{\"severity\":\"%s\",\"sli\":%.6f,\"budget_remaining\":%.6f,\"silenced\":%s}",
                 sev_names[sev], o->st.sli, o->st.budget_remaining, mw ? "true" : "false");
        if (firing && !o->firing[sev]) {
            o->firing[sev] = true;
            o->since[sev] = now;
            log_warn("objective %s: %s alert FIRING (SLI %.4f%%, budget left %.1f%%)%s",
                     o->oc->name, sev_names[sev], 100 * o->st.sli, 100 * o->st.budget_remaining,
                     mw ? " - silenced by maintenance" : "");
            monitor_event(m, "alert_fired", subject, detail);
        } else if (!firing && o->firing[sev]) {
            o->firing[sev] = false;
            o->since[sev] = now;
            log_info("objective %s: %s alert resolved", o->oc->name, sev_names[sev]);
            monitor_event(m, "alert_resolved", subject, detail);
            alert_post(m, o, sev, false);
        }
        /* re-posted every tick while it fires: the notifier de-duplicates and
         * reminds after `repeat`; maintenance holds the notifications back */
        if (o->firing[sev] && !mw)
            alert_post(m, o, sev, true);
    }
}

void monitor_tick(monitor_t *m, const gateway_sli_t *sli, size_t n)
{
    int64_t now = clock_unix();
    sli_feed(m, sli, n, now);
    for (size_t i = 0; i < m->nobj; i++)
        objective_evaluate(m, i, now);
    /* retention: the store runs its own pass as submitted time goes by */
}

/* ---- restoring history at start -------------------------------------------- */

#define RESTORE_CHUNK 2048

/* good/total of one stored row of objective_source(oc): requests less
 * errors for availability and for a source of its own, the buckets up to
 * the threshold for latency. */
static bool row_count(const conf_objective_t *oc, const store_sli_row_t *r, slo_count_t *ret)
{
    if (oc->kind != CONF_SLO_LATENCY || own_source(oc)) {
        *ret = (slo_count_t){r->requests - (r->errors < r->requests ? r->errors : r->requests),
                             r->requests};
        return true;
    }
    return slo_latency_count(conf_latency_bounds, CONF_LATENCY_NBUCKETS, r->buckets,
                             oc->threshold_ms, ret) == 0;
}

/* Feeds rows of resolution res in [from, to) into objective i; returns the
 * time of the first row found (to when none). */
static int64_t restore_range(monitor_t *m, size_t i, const char *source, store_res_t res,
                             int64_t from, int64_t to, store_sli_row_t *rows)
{
    int64_t first = to;
    while (from < to) {
        size_t n = 0;
        if (store_sli_load(m->o.store, str_cstr(source), res, from, to, rows, RESTORE_CHUNK, &n) <
                0 ||
            n == 0)
            break;
        for (size_t k = 0; k < n; k++) {
            slo_count_t c;
            if (rows[k].ts < first)
                first = rows[k].ts;
            if (row_count(m->obj[i].oc, &rows[k], &c) && c.total)
                (void)slo_series_add(m->obj[i].series, rows[k].ts / 60, c.good, c.total);
        }
        from = rows[n - 1].ts + 1;
        if (n < RESTORE_CHUNK)
            break;
    }
    return first;
}

/* A new objective's series from the store: minute rollups over its window,
 * and hour rollups (each counted in its first minute) for the part older
 * than the minutes kept. Main thread at start, or a reload adding it. */
static void objective_restore(monitor_t *m, size_t i, int64_t now)
{
    const conf_objective_t *oc = m->obj[i].oc;
    store_sli_row_t *rows = malloc(RESTORE_CHUNK * sizeof(*rows));
    if (!rows)
        return;
    char source[192];
    objective_source(m, oc, source, sizeof(source));
    int64_t from = now - (int64_t)(oc->window_ms / 1000);
    /* minutes; then, if they do not reach back over the whole window, the
     * series again from the hours before them and the minutes (it only
     * goes forward) */
    int64_t first_minute = restore_range(m, i, source, STORE_RES_MINUTE, from, now + 60, rows);
    if (first_minute > from) {
        slo_series_free(m->obj[i].series);
        m->obj[i].series = slo_series_new(oc->window_ms);
        if (m->obj[i].series) {
            restore_range(m, i, source, STORE_RES_HOUR, from, first_minute - first_minute % 3600,
                          rows);
            restore_range(m, i, source, STORE_RES_MINUTE, from, now + 60, rows);
        }
    }
    free(rows);
}

/* ---- lifecycle ------------------------------------------------------------- */

static bool same_objective(const conf_objective_t *a, const conf_objective_t *b)
{
    return !strcmp(a->name, b->name) && !strcmp(a->source, b->source) && a->kind == b->kind &&
           a->window_ms == b->window_ms && a->threshold_ms == b->threshold_ms;
}

/* The objective of old that objective oc continues (same name, source,
 * kind, window and threshold), or NULL. */
static monitor_obj_t *continued(monitor_t *old, const conf_objective_t *oc)
{
    for (size_t j = 0; old && j < old->nobj; j++)
        if (old->obj[j].series && same_objective(old->obj[j].oc, oc))
            return &old->obj[j];
    return NULL;
}

/* Every objective's runtime; a new one gets a new series, restored from
 * the store. Nothing is taken from old yet (handover does that, once
 * nothing can fail any more). */
static int objectives_init(monitor_t *m, monitor_t *old)
{
    const conf_t *c = m->o.conf;
    m->nobj = c->nobjectives;
    m->obj = calloc(m->nobj ? m->nobj : 1, sizeof(*m->obj));
    if (!m->obj)
        return -ENOMEM;
    for (size_t i = 0; i < m->nobj; i++) {
        monitor_obj_t *o = &m->obj[i];
        o->oc = &c->objectives[i];
        if (continued(old, o->oc))
            continue;
        if (!(o->series = slo_series_new(o->oc->window_ms)))
            return -ENOMEM;
        if (m->o.store)
            objective_restore(m, i, clock_unix());
        if (!o->series)
            return -ENOMEM;
    }
    return 0;
}

/* What outlives a generation moves from old to m: series, alert state,
 * the event ring, the last snapshot, probe states. Cannot fail. */
static void handover(monitor_t *m, monitor_t *old)
{
    for (size_t i = 0; i < m->nobj; i++) {
        monitor_obj_t *o = &m->obj[i], *oo = o->series ? NULL : continued(old, o->oc);
        if (!oo)
            continue;
        o->series = oo->series; /* the history goes on */
        oo->series = NULL;
        memcpy(o->firing, oo->firing, sizeof(o->firing));
        memcpy(o->since, oo->since, sizeof(o->since));
    }
    free(m->events);
    m->events = old->events;
    m->ev_head = old->ev_head;
    m->ev_count = old->ev_count;
    old->events = NULL;
    old->ev_count = 0;
    m->prev = old->prev;
    m->nprev = old->nprev;
    m->primed = old->primed;
    old->prev = NULL;
    old->nprev = 0;
    if (m->probes && old->probes)
        probe_inherit(m->probes, old->probes);
}

monitor_t *monitor_new(const monitor_opts_t *o, monitor_t *old, int *ret_err)
{
    int err = -ENOMEM;
    monitor_t *m = calloc(1, sizeof(*m));
    if (!m)
        goto fail;
    m->o = *o;
    if (!(m->events = calloc(MONITOR_EVENTS_KEPT, sizeof(*m->events))))
        goto fail;
    if ((err = objectives_init(m, old)) < 0 || (err = probes_start(m)) < 0)
        goto fail;
    if (old)
        handover(m, old);
    return m;
fail:
    monitor_free(m);
    *ret_err = err;
    return NULL;
}

void monitor_free(monitor_t *m)
{
    if (!m)
        return;
    probe_free(m->probes);
    for (size_t i = 0; m->obj && i < m->nobj; i++)
        slo_series_free(m->obj[i].series);
    free(m->obj);
    free(m->prev);
    free(m->events);
    free(m);
}
