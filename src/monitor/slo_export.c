/* `surety slo export --prometheus`: the objectives of a configuration as a
 * Prometheus rules file, so a team that already runs Prometheus gets the
 * same burn-rate alerts there (issue 6).
 *
 * For each objective whose source is a listener or a route, one rule group
 * with a recording rule per window the alert rules read (the error ratio,
 * bad / total, of the gateway's metric families over that window), one
 * alerting rule per multiwindow burn-rate rule (slo.h: the workbook's four,
 * scaled to the objective's window exactly as Surety itself evaluates
 * them, whole minutes included), and a second group, evaluated every 5
 * minutes since it reads the whole window, recording the budget left. The
 * metric families are the gateway's:
 *   availability: surety_listener_requests_total{listener,code} and
 *                 surety_route_requests_total{listener,route,pool,code};
 *                 bad is code="5xx";
 *   latency:      surety_listener_request_duration_seconds{listener} and
 *                 surety_route_request_duration_seconds{listener,route};
 *                 good is the bucket le=threshold (a bound, checked by conf).
 * Objectives on monitors are left out with a comment: probe results are
 * not Prometheus metrics. The output is YAML that `promtool check rules`
 * accepts (tests/integration/test_slo_export.py runs it). */
#include "monitor/slo_export.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/slo.h"

/* "5m", "2h", "1d": minutes in the largest whole unit, as PromQL writes a
 * range. */
static void range_format(uint32_t minutes, char *out, size_t n)
{
    if (minutes % 1440 == 0)
        snprintf(out, n, "%ud", minutes / 1440);
    else if (minutes % 60 == 0)
        snprintf(out, n, "%uh", minutes / 60);
    else
        snprintf(out, n, "%um", minutes);
}

/* The shortest %g that reads back exactly, as the gateway writes its le
 * labels (metrics/prom.c): 0.3, 1, 2.5. */
static void le_format(double v, char *out, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* The selector labels of o's source: listener="web"[,route="api"]. Names
 * are 1 to 64 of A-Z a-z 0-9 _ . - (conf), so they need no escaping. */
static void selector_format(const conf_t *conf, const conf_objective_t *o, char *out, size_t n)
{
    const conf_listener_t *l = &conf->listeners[o->listener];
    if (o->source_kind == CONF_SLO_SOURCE_ROUTE)
        snprintf(out, n, "listener=\"%s\",route=\"%s\"", l->name, l->routes[o->route].name);
    else
        snprintf(out, n, "listener=\"%s\"", l->name);
}

/* The error ratio of o over range, as one PromQL expression. */
static void expr_put(FILE *out, const conf_t *conf, const conf_objective_t *o, const char *range)
{
    const char *family =
        o->source_kind == CONF_SLO_SOURCE_ROUTE ? "surety_route" : "surety_listener";
    char sel[256], le[32];

    selector_format(conf, o, sel, sizeof(sel));
    if (o->kind == CONF_SLO_AVAILABILITY) {
        fprintf(out,
                "sum(rate(%s_requests_total{%s,code=\"5xx\"}[%s])) / "
                "sum(rate(%s_requests_total{%s}[%s]))",
                family, sel, range, family, sel, range);
        return;
    }
    le_format((double)o->threshold_ms / 1000.0, le, sizeof(le));
    fprintf(out,
            "1 - sum(rate(%s_request_duration_seconds_bucket{%s,le=\"%s\"}[%s])) / "
            "sum(rate(%s_request_duration_seconds_count{%s}[%s]))",
            family, sel, le, range, family, sel, range);
}

/* The distinct windows the rules of o read, in minutes, ascending. */
static size_t windows_of(const slo_scaled_rule_t *rules, uint32_t *win)
{
    size_t n = 0;
    for (size_t r = 0; r < SLO_NRULES; r++) {
        uint32_t cand[2] = {rules[r].long_minutes, rules[r].short_minutes};
        for (size_t c = 0; c < 2; c++) {
            size_t i = 0;
            while (i < n && win[i] < cand[c])
                i++;
            if (i < n && win[i] == cand[c])
                continue;
            memmove(&win[i + 1], &win[i], (n - i) * sizeof(*win));
            win[i] = cand[c];
            n++;
        }
    }
    return n;
}

static void alert_put(FILE *out, const conf_objective_t *o, const slo_scaled_rule_t *r,
                      double budget)
{
    char lr[32], sr[32];
    const char *sev = r->severity == SLO_PAGE ? "page" : "ticket";

    range_format(r->long_minutes, lr, sizeof(lr));
    range_format(r->short_minutes, sr, sizeof(sr));
    fprintf(out,
            "      - alert: 'SuretyErrorBudgetBurn'\n"
            "        expr: 'surety_objective:error_ratio:rate%s{objective=\"%s\"} >= "
            "(%g * %.10g) and surety_objective:error_ratio:rate%s{objective=\"%s\"} >= "
            "(%g * %.10g)'\n"
            "        labels:\n"
            "          severity: '%s'\n"
            "          objective: '%s'\n"
            "          long_window: '%s'\n"
            "          short_window: '%s'\n"
            "        annotations:\n"
            "          summary: 'Objective %s is burning its error budget %gx too fast "
            "over %s and %s'\n",
            lr, o->name, r->threshold, budget, sr, o->name, r->threshold, budget, sev, o->name, lr,
            sr, o->name, r->threshold, lr, sr);
}

static void objective_put(FILE *out, const conf_t *conf, const conf_objective_t *o)
{
    slo_scaled_rule_t rules[SLO_NRULES];
    uint32_t win[2 * SLO_NRULES];
    char range[32];
    /* From the parts per million as written: 0.001, not 0.0010000000000000009. */
    double budget = (1000000.0 - o->target_ppm) / 1000000.0;

    slo_rules_scale(o->window_ms, rules);
    size_t nwin = windows_of(rules, win);
    fprintf(out, "  - name: 'surety-slo-%s'\n    rules:\n", o->name);
    for (size_t i = 0; i < nwin; i++) {
        range_format(win[i], range, sizeof(range));
        fprintf(out, "      - record: 'surety_objective:error_ratio:rate%s'\n        expr: '",
                range);
        expr_put(out, conf, o, range);
        fprintf(out, "'\n        labels:\n          objective: '%s'\n", o->name);
    }
    for (size_t r = 0; r < SLO_NRULES; r++)
        alert_put(out, o, &rules[r], budget);

    /* The whole window is a long range to read: every 5 minutes is plenty
     * for a number that moves by the day. */
    uint64_t wmin = (o->window_ms + 59999) / 60000;
    range_format((uint32_t)wmin, range, sizeof(range));
    fprintf(out,
            "  - name: 'surety-slo-%s-budget'\n"
            "    interval: 5m\n"
            "    rules:\n"
            "      - record: 'surety_objective:error_budget_remaining:ratio'\n"
            "        expr: '1 - (",
            o->name);
    expr_put(out, conf, o, range);
    fprintf(out, ") / %.10g'\n        labels:\n          objective: '%s'\n", budget, o->name);
}

int slo_export_prometheus(const conf_t *conf, FILE *out)
{
    size_t exported = 0;

    /* The path is the only text here that conf did not check: a newline
     * in it would end the comment. */
    fputs("# Prometheus rules for the objectives of ", out);
    for (const char *p = conf->path ? conf->path : "?"; *p; p++)
        fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, out);
    fputs(", written by surety:\n"
          "# error ratios over the windows of the multiwindow burn-rate alerts of the\n"
          "# Google SRE Workbook, scaled to each objective's window (docs/slo.md).\n",
          out);
    for (size_t i = 0; i < conf->nobjectives; i++) {
        const conf_objective_t *o = &conf->objectives[i];
        if (o->source_kind == CONF_SLO_SOURCE_MONITOR)
            fprintf(out,
                    "# objective %s (%s) is not exported: probe results are not Prometheus "
                    "metrics.\n",
                    o->name, o->source);
        else
            exported++;
    }
    fprintf(out, "groups:%s\n", exported ? "" : " []");
    for (size_t i = 0; i < conf->nobjectives; i++)
        if (conf->objectives[i].source_kind != CONF_SLO_SOURCE_MONITOR)
            objective_put(out, conf, &conf->objectives[i]);
    if (fflush(out) != 0 || ferror(out))
        return -EIO;
    return 0;
}
