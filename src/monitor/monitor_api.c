/* The watch as others see it: JSON for the admin API (objectives, monitors,
 * events), lines for `surety status`, and metric families. Everything here
 * reads the state monitor.c keeps; nothing changes it. */
#include "monitor/monitor_int.h"

#include <math.h>
#include <time.h>

#include "core/clock.h"

#define sev_names monitor_sev_names

static const char *kind_name(const conf_objective_t *oc)
{
    return oc->kind == CONF_SLO_LATENCY ? "latency" : "availability";
}

/* A double for JSON: finite, else null. */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *rfc3339(int64_t t)
{
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    if (!t || !gmtime_r(&tt, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
        return json_null();
    return json_string(buf);
}

static json_t *objective_json(const monitor_t *m, size_t i, int64_t now)
{
    const monitor_obj_t *o = &m->obj[i];
    const conf_objective_t *oc = o->oc;
    const slo_status_t *st = &o->st;
    json_t *j = json_pack("{s:s, s:s, s:s, s:f, s:I}", "name", oc->name, "source", oc->source,
                          "kind", kind_name(oc), "target", oc->target, "window_s",
                          (json_int_t)(oc->window_ms / 1000));
    if (!j)
        return NULL;
    if (oc->kind == CONF_SLO_LATENCY)
        json_object_set_new(j, "threshold_ms", json_integer((json_int_t)oc->threshold_ms));
    json_object_set_new(j, "evaluated", json_boolean(o->evaluated));
    json_object_set_new(j, "sli", num(st->sli));
    json_object_set_new(j, "no_data", json_boolean(!o->evaluated || st->no_data));
    json_object_set_new(j, "good", json_integer((json_int_t)st->window.good));
    json_object_set_new(j, "total", json_integer((json_int_t)st->window.total));
    json_object_set_new(j, "budget_remaining", num(st->budget_remaining));
    json_object_set_new(j, "budget_minutes",
                        num(slo_budget_ms(oc->target, oc->window_ms) / 60000.0));
    json_t *burn = json_object();
    for (int w = 0; w < SLO_NREPORTED; w++)
        json_object_set_new(burn, slo_reported_names[w], num(st->burn[w]));
    json_object_set_new(j, "burn_rates", burn);
    json_t *rules = json_array();
    for (int r = 0; r < SLO_NRULES; r++) {
        const slo_rule_state_t *rs = &st->rules[r];
        json_array_append_new(
            rules, json_pack("{s:s, s:f, s:I, s:I, s:o, s:o, s:b}", "severity",
                             sev_names[rs->severity], "threshold", rs->threshold, "long_s",
                             (json_int_t)(rs->long_ms / 1000), "short_s",
                             (json_int_t)(rs->short_ms / 1000), "long_burn", num(rs->long_burn),
                             "short_burn", num(rs->short_burn), "firing", rs->firing));
    }
    json_object_set_new(j, "rules", rules);
    json_t *firing = json_array();
    for (int s = 0; s < 2; s++)
        if (o->firing[s])
            json_array_append_new(firing, json_pack("{s:s, s:o}", "severity", sev_names[s],
                                                    "since", rfc3339(o->since[s])));
    json_object_set_new(j, "firing", firing);
    const conf_maintenance_t *mw = monitor_maintenance(m, i, now);
    json_object_set_new(j, "maintenance", mw ? json_string(mw->name) : json_null());
    return j;
}

json_t *monitor_objectives_json(monitor_t *m)
{
    json_t *a = json_array();
    int64_t now = clock_unix();
    for (size_t i = 0; a && i < m->nobj; i++)
        json_array_append_new(a, objective_json(m, i, now));
    return json_pack("{s:o, s:o}", "objectives", a, "now", rfc3339(now));
}

json_t *monitor_monitors_json(monitor_t *m)
{
    json_t *a = json_array();
    const conf_t *c = m->o.conf;
    for (size_t i = 0; a && i < c->nmonitors; i++) {
        const conf_monitor_t *mc = &c->monitors[i];
        probe_status_t st;
        if (!m->probes || probe_status(m->probes, i, &st) < 0)
            continue;
        static const char *const kinds[] = {"http", "tcp", "dns"};
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "name",
                              mc->name, "kind", kinds[mc->kind], "target", mc->target, "state",
                              probe_state_name(st.state), "ok_streak", (json_int_t)st.ok_streak,
                              "fail_streak", (json_int_t)st.fail_streak, "probes_ok",
                              (json_int_t)st.ok, "probes_failed", (json_int_t)st.fail,
                              "skipped", (json_int_t)st.skipped, "last_change",
                              rfc3339(st.last_change));
        if (j && st.has_result)
            json_object_set_new(j, "last",
                                json_pack("{s:b, s:I, s:i, s:s, s:o}", "ok", st.last.ok,
                                          "latency_ms", (json_int_t)st.last.latency_ms,
                                          "status", st.last.status, "detail", st.last.detail,
                                          "at", rfc3339(st.last.at)));
        else if (j)
            json_object_set_new(j, "last", json_null());
        json_array_append_new(a, j);
    }
    return json_pack("{s:o}", "monitors", a);
}

json_t *monitor_events_json(monitor_t *m, size_t limit, const char *kind)
{
    json_t *a = json_array();
    for (size_t k = 0; a && k < m->ev_count && json_array_size(a) < limit; k++) {
        const monitor_ev_t *e =
            &m->events[(m->ev_head + m->ev_count - 1 - k) % MONITOR_EVENTS_KEPT];
        if (kind && *kind && strcmp(kind, e->kind))
            continue;
        json_t *detail = json_loads(e->detail, 0, NULL);
        json_array_append_new(a, json_pack("{s:I, s:o, s:s, s:s, s:o}", "ts", (json_int_t)e->ts,
                                           "time", rfc3339(e->ts), "kind", e->kind, "subject",
                                           e->subject, "detail",
                                           detail ? detail : json_object()));
    }
    return json_pack("{s:o}", "events", a);
}

void monitor_status_text(monitor_t *m, FILE *out)
{
    int64_t now = clock_unix();
    for (size_t i = 0; i < m->nobj; i++) {
        const monitor_obj_t *o = &m->obj[i];
        const slo_status_t *st = &o->st;
        char state[64] = "ok";
        if (o->firing[0] || o->firing[1])
            snprintf(state, sizeof(state), "FIRING %s%s%s", o->firing[0] ? "page" : "",
                     o->firing[0] && o->firing[1] ? "+" : "", o->firing[1] ? "ticket" : "");
        const conf_maintenance_t *mw = monitor_maintenance(m, i, now);
        if (!o->evaluated || st->no_data)
            fprintf(out, "objective %-16s %-24s no data yet        target %8.4f%%  %s%s%s\n",
                    o->oc->name, o->oc->source, 100 * o->oc->target, state,
                    mw ? "  maintenance " : "", mw ? mw->name : "");
        else
            fprintf(out,
                    "objective %-16s %-24s SLI %8.4f%%  target %8.4f%%  budget left %7.2f%%  "
                    "burn 1h %.2fx  %s%s%s\n",
                    o->oc->name, o->oc->source, 100 * st->sli, 100 * o->oc->target,
                    100 * st->budget_remaining, st->burn[SLO_W_1H], state,
                    mw ? "  maintenance " : "", mw ? mw->name : "");
    }
    const conf_t *c = m->o.conf;
    for (size_t i = 0; m->probes && i < c->nmonitors; i++) {
        probe_status_t st;
        if (probe_status(m->probes, i, &st) < 0)
            continue;
        fprintf(out, "monitor   %-16s %-40s %-7s %s\n", c->monitors[i].name, c->monitors[i].target,
                probe_state_name(st.state), st.has_result ? st.last.detail : "");
    }
}

void monitor_metrics_write(monitor_t *m, prom_t *p)
{
    prom_family(p, "surety_objective_sli", PROM_GAUGE,
                "Share of good events over the objective's window (1 without data).");
    for (size_t i = 0; i < m->nobj; i++)
        prom_gauge(p, "surety_objective_sli", PROM_LABELS({"objective", m->obj[i].oc->name}),
                   m->obj[i].st.sli);
    prom_family(p, "surety_objective_target", PROM_GAUGE, "The objective's target share.");
    for (size_t i = 0; i < m->nobj; i++)
        prom_gauge(p, "surety_objective_target", PROM_LABELS({"objective", m->obj[i].oc->name}),
                   m->obj[i].oc->target);
    prom_family(p, "surety_objective_budget_remaining", PROM_GAUGE,
                "Share of the error budget left over the window (negative: overspent).");
    for (size_t i = 0; i < m->nobj; i++)
        prom_gauge(p, "surety_objective_budget_remaining",
                   PROM_LABELS({"objective", m->obj[i].oc->name}),
                   m->obj[i].evaluated ? m->obj[i].st.budget_remaining : 1);
    prom_family(p, "surety_objective_burn_rate", PROM_GAUGE,
                "How many times faster than allowed the budget burns, by window.");
    for (size_t i = 0; i < m->nobj; i++)
        for (int w = 0; w < SLO_NREPORTED; w++)
            prom_gauge(p, "surety_objective_burn_rate",
                       PROM_LABELS({"objective", m->obj[i].oc->name},
                                   {"window", slo_reported_names[w]}),
                       m->obj[i].st.burn[w]);
    prom_family(p, "surety_objective_alert_firing", PROM_GAUGE,
                "1 while the objective's page (ticket) alert fires.");
    for (size_t i = 0; i < m->nobj; i++)
        for (int s = 0; s < 2; s++)
            prom_gauge(p, "surety_objective_alert_firing",
                       PROM_LABELS({"objective", m->obj[i].oc->name}, {"severity", sev_names[s]}),
                       m->obj[i].firing[s]);
    prom_family(p, "surety_monitor_writes_refused_total", PROM_COUNTER,
                "Store writes and alert posts refused because their queue was full.");
    prom_counter(p, "surety_monitor_writes_refused_total", PROM_LABELS({"queue", "store"}),
                 m->store_refused);
    prom_counter(p, "surety_monitor_writes_refused_total", PROM_LABELS({"queue", "notify"}),
                 m->notify_refused);
    if (m->probes)
        probe_metrics_write(m->probes, p);
    if (m->o.store)
        store_metrics_write(m->o.store, p);
    if (m->o.notify)
        notify_metrics_write(m->o.notify, p);
}
