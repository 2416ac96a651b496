/* Objective arithmetic (issue 6): per-minute counts of good and total
 * events over an objective's rolling window, the SLI, the error budget,
 * burn rates, and the multiwindow multi-burn-rate alert rules of the Google
 * SRE Workbook ("Alerting on SLOs", table 5-8) scaled to the objective's
 * window. docs/slo.md explains the arithmetic with worked numbers.
 *
 * Everything here is pure: no I/O, no clock, no logging. Times are passed
 * in as unix minutes (unix seconds / 60), counts as integers; the caller
 * (the control thread) decides what a minute's good and total are (a
 * request that is not 5xx, a probe that passed, a request within a latency
 * bucket) and whether minutes inside a maintenance window are fed at all.
 *
 * A series is owned by one thread (the control thread); it is not
 * thread-safe. Its memory is fixed at creation: 24 bytes per minute of the
 * objective's window (30 days: about 1 MiB), at most SLO_SLOTS_MAX minutes.
 *
 * Cost: the series keeps a running sum for each of the windows an
 * evaluation reads (the seven reported windows, the full window and the
 * long and short window of each rule: SLO_NWINDOWS). Adding counts costs
 * O(SLO_NWINDOWS); moving time forward costs O(SLO_NWINDOWS) per minute
 * passed (a jump of a whole window or more clears everything at once);
 * reading any of those windows is O(1). An evaluation every 10 s of 50
 * objectives is a few thousand additions, not 50 x 43200. */
#ifndef SURETY_MONITOR_SLO_H
#define SURETY_MONITOR_SLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest window an objective may have (conf: 90d), in minutes. */
#define SLO_SLOTS_MAX (90u * 24 * 60)
/* The window the workbook's rules are written for: 30 days. */
#define SLO_BASE_WINDOW_MS (30ull * 24 * 3600 * 1000)

/* Burn-rate comparisons allow this relative error, so a burn of exactly
 * a threshold (14.4) fires although 0.0144 / (1 - 0.999) is 14.399999...
 * in binary floating point. */
#define SLO_EPSILON 1e-9

typedef struct {
    uint64_t good;
    uint64_t total; /* good <= total */
} slo_count_t;

/* The windows whose sums a series keeps; indexes into slo_series_sum and
 * slo_status_t.burn. The reported ones are as the issue lists them, each
 * clamped to the objective's window (3d of a 1d objective is 1d). */
enum {
    SLO_W_5M,
    SLO_W_30M,
    SLO_W_1H,
    SLO_W_2H,
    SLO_W_6H,
    SLO_W_1D,
    SLO_W_3D,
    SLO_W_FULL,   /* the objective's whole window */
    SLO_W_RULES_, /* then each rule's long window and short window: */
    SLO_NRULES = 4,
    SLO_NWINDOWS = SLO_W_RULES_ + 2 * SLO_NRULES,
};
#define SLO_NREPORTED SLO_W_FULL /* 5m..3d */
#define SLO_W_RULE_LONG(r) (SLO_W_RULES_ + 2 * (r))
#define SLO_W_RULE_SHORT(r) (SLO_W_RULES_ + 2 * (r) + 1)

/* The length of each reported window, in minutes (before clamping). */
extern const uint32_t slo_reported_minutes[SLO_NREPORTED];
/* Their names as the API and the exporter write them: "5m" ... "3d". */
extern const char *const slo_reported_names[SLO_NREPORTED];

typedef enum {
    SLO_PAGE,   /* wake someone up */
    SLO_TICKET, /* look at it during working hours */
} slo_severity_t;

/* One rule of the workbook as written for a 30-day window: it fires when
 * the burn rate is at least threshold over both windows, threshold being
 * the share of the budget that would burn in the long window
 * (budget_fraction) times 30d / long. */
typedef struct {
    slo_severity_t severity;
    double budget_fraction; /* 0.02: 2% of the budget */
    uint64_t long_ms;       /* 1h */
    uint64_t short_ms;      /* 5m: the alert stops soon after the burn does */
} slo_rule_t;

/* Page at 14.4 over 1h and 5m, page at 6 over 6h and 30m, ticket at 3
 * over 1d and 2h, ticket at 1 over 3d and 6h. */
extern const slo_rule_t slo_rules[SLO_NRULES];

/* A rule scaled to an objective's window W: both windows are multiplied by
 * W / 30d, so each still covers the same share of the window, and the
 * threshold, budget_fraction * W / long_scaled = budget_fraction * 30d /
 * long, stays the workbook's (14.4, 6, 3, 1). The series counts whole
 * minutes, so a scaled window is rounded to the nearest minute, at least
 * one (docs/slo.md lists what that means for short windows). */
typedef struct {
    slo_severity_t severity;
    double threshold;      /* burn rate that fires: 14.4, 6, 3, 1 */
    uint64_t long_ms;      /* scaled, exact: 1h x 7d/30d = 14m */
    uint64_t short_ms;     /* scaled, exact: 5m x 7d/30d = 70s */
    uint32_t long_minutes; /* what the series sums: rounded, >= 1 */
    uint32_t short_minutes;
} slo_scaled_rule_t;

/* Fills out[SLO_NRULES] for an objective window of window_ms (1d to 90d,
 * any positive value works). */
void slo_rules_scale(uint64_t window_ms, slo_scaled_rule_t out[SLO_NRULES]);

/* The error budget of a window as time: (1 - target) x window. 99.9% of
 * 30 days: 43.2 minutes (2592000 ms). */
double slo_budget_ms(double target, uint64_t window_ms);

/* good / total; 1 when total is 0 (no data is not a failure), and
 * *ret_no_data (may be NULL) tells which. */
double slo_sli(slo_count_t c, bool *ret_no_data);
/* (bad / total) / (1 - target): how many times faster than allowed the
 * budget burns; 1 spends exactly the budget over the window. 0 without
 * data. target is in (0, 1). */
double slo_burn_rate(slo_count_t c, double target);
/* 1 - (bad / total) / (1 - target) over the full window: 1 untouched, 0
 * spent, negative when overspent. 1 without data. */
double slo_budget_remaining(slo_count_t c, double target);
/* burn >= threshold, with SLO_EPSILON of slack (see above). */
bool slo_burn_at_least(double burn, double threshold);

/* A latency SLI from histogram buckets: buckets[i] counts events in
 * (bounds[i-1], bounds[i]] seconds, buckets[nbounds] those above the last
 * bound (+Inf); counts are per bucket, not cumulative. *ret_good is the
 * events in buckets whose upper bound is at most threshold_ms, *ret_total
 * all of them. -EINVAL when threshold_ms is not one of the bounds (the SLI
 * would not be exact; conf refuses such a threshold). */
int slo_latency_count(const double *bounds, size_t nbounds, const uint64_t *buckets,
                      uint64_t threshold_ms, slo_count_t *ret);

/* ---- the per-minute series of one objective */

typedef struct slo_series slo_series_t;

/* A series for an objective window of window_ms: ceil(window_ms / 1 min)
 * slots (at most SLO_SLOTS_MAX). NULL when window_ms is 0 or too long, or
 * out of memory. The caller frees it with slo_series_free. */
slo_series_t *slo_series_new(uint64_t window_ms);
void slo_series_free(slo_series_t *s); /* accepts NULL */

/* Adds good and total events to minute (unix minutes), accumulating with
 * what that minute already has. A minute newer than any before moves the
 * series forward to it (slo_series_advance). 0 when counted; -ESTALE when
 * the minute is older than the window ending at the newest minute (it is
 * ignored); -EINVAL when good > total. */
int slo_series_add(slo_series_t *s, int64_t minute, uint64_t good, uint64_t total);
/* Moves the series forward so its newest minute is now: minutes that
 * leave the window are dropped from every sum. A now at or before the
 * newest minute changes nothing. */
void slo_series_advance(slo_series_t *s, int64_t now);
/* The newest minute (INT64_MIN before anything was added or advanced). */
int64_t slo_series_head(const slo_series_t *s);
/* Minutes in the full window. */
uint32_t slo_series_slots(const slo_series_t *s);
/* The scaled rules of the series' window (slo_rules_scale). */
const slo_scaled_rule_t *slo_series_rules(const slo_series_t *s);
/* The counts of window w (SLO_W_*) ending at the newest minute: O(1). */
slo_count_t slo_series_sum(const slo_series_t *s, unsigned w);
/* The length of window w in minutes, as summed (clamped, rounded). */
uint32_t slo_series_window_minutes(const slo_series_t *s, unsigned w);
/* The counts of the minutes (head - minutes, head], summed slot by slot:
 * O(minutes). For windows that are not kept, and for tests. */
slo_count_t slo_series_sum_slow(const slo_series_t *s, uint32_t minutes);

/* ---- evaluation */

typedef struct {
    slo_severity_t severity;
    double threshold;
    uint64_t long_ms, short_ms; /* the scaled windows (exact) */
    double long_burn, short_burn;
    bool firing; /* both burns at least threshold */
} slo_rule_state_t;

typedef struct {
    slo_count_t window;         /* the full window's counts */
    double sli;                 /* over the full window */
    bool no_data;               /* no events in the full window */
    double budget_remaining;    /* fraction, may be negative */
    double burn[SLO_NREPORTED]; /* 5m, 30m, 1h, 2h, 6h, 1d, 3d (clamped to the window) */
    slo_rule_state_t rules[SLO_NRULES];
    unsigned firing;   /* bit r: rules[r] fires */
    bool page, ticket; /* some page (ticket) rule fires */
} slo_status_t;

/* Moves s to now (unix minutes) and evaluates the objective of target in
 * (0, 1) over the window s was made for. Returns 0 with *ret filled, or
 * -EINVAL for a target outside (0, 1) (*ret untouched). */
int slo_evaluate(slo_series_t *s, int64_t now, double target, slo_status_t *ret);

#endif
