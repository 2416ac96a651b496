/* Objective arithmetic: the per-minute ring of one objective with running
 * window sums, the SLI, budget and burn-rate formulas, and the workbook's
 * burn-rate rules scaled to an objective's window (slo.h says what each
 * computes, docs/slo.md why). Pure functions over caller-owned memory. */
#include "monitor/slo.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS 60000ull

const uint32_t slo_reported_minutes[SLO_NREPORTED] = {5, 30, 60, 120, 360, 1440, 4320};
const char *const slo_reported_names[SLO_NREPORTED] = {"5m", "30m", "1h", "2h", "6h", "1d", "3d"};

/* Google SRE Workbook, "Alerting on SLOs", table 5-8, for 30 days: 2% of
 * the budget in 1h (14.4), 5% in 6h (6), 10% in 1d (3), 10% in 3d (1). */
const slo_rule_t slo_rules[SLO_NRULES] = {
    {SLO_PAGE, 0.02, 3600000, 300000},
    {SLO_PAGE, 0.05, 6 * 3600000, 1800000},
    {SLO_TICKET, 0.10, 24 * 3600000, 2 * 3600000},
    {SLO_TICKET, 0.10, 3 * 24 * 3600000ull, 6 * 3600000},
};

struct slo_series {
    uint64_t window_ms;
    uint32_t n;                    /* slots: minutes of the full window */
    int64_t head;                  /* newest minute; INT64_MIN: none yet */
    uint32_t win[SLO_NWINDOWS];    /* minutes of each kept window, 1..n */
    slo_count_t sum[SLO_NWINDOWS]; /* its running sum, ending at head */
    slo_scaled_rule_t rules[SLO_NRULES];
    int64_t *minute;   /* the minute each slot holds; INT64_MIN: none */
    slo_count_t *slot; /* its counts */
};

/* Scaled time, to the millisecond: t x window / 30d, in 128 bits since
 * 3d x 90d in ms overflows 64. */
static uint64_t scale_ms(uint64_t t, uint64_t window_ms)
{
    unsigned __int128 v = (unsigned __int128)t * window_ms;
    return (uint64_t)((v + SLO_BASE_WINDOW_MS / 2) / SLO_BASE_WINDOW_MS);
}

static uint32_t to_minutes(uint64_t ms)
{
    uint64_t m = (ms + MINUTE_MS / 2) / MINUTE_MS;
    return m < 1 ? 1 : m > UINT32_MAX ? UINT32_MAX : (uint32_t)m;
}

void slo_rules_scale(uint64_t window_ms, slo_scaled_rule_t out[SLO_NRULES])
{
    for (size_t r = 0; r < SLO_NRULES; r++) {
        const slo_rule_t *w = &slo_rules[r];
        out[r].severity = w->severity;
        /* budget_fraction x W / (long x W / 30d) = budget_fraction x 30d / long */
        out[r].threshold = w->budget_fraction * (double)SLO_BASE_WINDOW_MS / (double)w->long_ms;
        out[r].long_ms = scale_ms(w->long_ms, window_ms);
        out[r].short_ms = scale_ms(w->short_ms, window_ms);
        out[r].long_minutes = to_minutes(out[r].long_ms);
        out[r].short_minutes = to_minutes(out[r].short_ms);
    }
}

double slo_budget_ms(double target, uint64_t window_ms)
{
    return (1.0 - target) * (double)window_ms;
}

double slo_sli(slo_count_t c, bool *ret_no_data)
{
    if (ret_no_data)
        *ret_no_data = c.total == 0;
    return c.total ? (double)c.good / (double)c.total : 1.0;
}

double slo_burn_rate(slo_count_t c, double target)
{
    if (!c.total)
        return 0;
    return ((double)(c.total - c.good) / (double)c.total) / (1.0 - target);
}

double slo_budget_remaining(slo_count_t c, double target)
{
    return 1.0 - slo_burn_rate(c, target);
}

bool slo_burn_at_least(double burn, double threshold)
{
    return burn >= threshold * (1.0 - SLO_EPSILON);
}

int slo_latency_count(const double *bounds, size_t nbounds, const uint64_t *buckets,
                      uint64_t threshold_ms, slo_count_t *ret)
{
    slo_count_t c = {0, 0};
    bool bound = false;

    for (size_t i = 0; i <= nbounds; i++) {
        c.total += buckets[i];
        /* Bounds are seconds as doubles; compared as whole milliseconds,
         * the unit of the configuration, so 0.3 is exactly 300ms. */
        if (i == nbounds)
            break;
        uint64_t ms = (uint64_t)llround(bounds[i] * 1000.0);
        if (ms <= threshold_ms)
            c.good += buckets[i];
        bound |= ms == threshold_ms;
    }
    if (!bound)
        return -EINVAL;
    *ret = c;
    return 0;
}

/* ---- the series */

slo_series_t *slo_series_new(uint64_t window_ms)
{
    uint64_t n = (window_ms + MINUTE_MS - 1) / MINUTE_MS;
    slo_series_t *s = NULL;

    if (n == 0 || n > SLO_SLOTS_MAX)
        return NULL;
    if (!(s = calloc(1, sizeof(*s))))
        goto fail;
    s->window_ms = window_ms;
    s->n = (uint32_t)n;
    s->head = INT64_MIN;
    s->minute = malloc(n * sizeof(*s->minute));
    s->slot = calloc(n, sizeof(*s->slot));
    if (!s->minute || !s->slot)
        goto fail;
    for (size_t i = 0; i < n; i++)
        s->minute[i] = INT64_MIN;
    slo_rules_scale(window_ms, s->rules);
    for (size_t w = 0; w < SLO_NREPORTED; w++)
        s->win[w] = slo_reported_minutes[w];
    s->win[SLO_W_FULL] = s->n;
    for (size_t r = 0; r < SLO_NRULES; r++) {
        s->win[SLO_W_RULE_LONG(r)] = s->rules[r].long_minutes;
        s->win[SLO_W_RULE_SHORT(r)] = s->rules[r].short_minutes;
    }
    for (size_t w = 0; w < SLO_NWINDOWS; w++)
        s->win[w] = s->win[w] > s->n ? s->n : s->win[w];
    return s;
fail:
    slo_series_free(s);
    return NULL;
}

void slo_series_free(slo_series_t *s)
{
    if (!s)
        return;
    free(s->minute);
    free(s->slot);
    free(s);
}

static size_t pos_of(const slo_series_t *s, int64_t minute)
{
    int64_t p = minute % (int64_t)s->n;
    return (size_t)(p < 0 ? p + s->n : p);
}

/* The counts of minute m if the ring still holds it. */
static slo_count_t slot_get(const slo_series_t *s, int64_t m)
{
    size_t p = pos_of(s, m);
    return s->minute[p] == m ? s->slot[p] : (slo_count_t){0, 0};
}

static void sums_clear(slo_series_t *s)
{
    memset(s->sum, 0, sizeof(s->sum));
    memset(s->slot, 0, s->n * sizeof(*s->slot));
    for (size_t i = 0; i < s->n; i++)
        s->minute[i] = INT64_MIN;
}

void slo_series_advance(slo_series_t *s, int64_t now)
{
    if (s->head == INT64_MIN || now - s->head >= (int64_t)s->n) {
        /* First use, or a jump past the whole window: nothing stays. */
        if (s->head != INT64_MIN)
            sums_clear(s);
        s->head = now;
        return;
    }
    while (s->head < now) {
        int64_t next = s->head + 1;
        /* Window w ending at next starts at next - w + 1: minute next - w
         * leaves it. The largest window is n, so that minute is still in
         * the ring (it is the slot next recycles). */
        for (size_t w = 0; w < SLO_NWINDOWS; w++) {
            slo_count_t out = slot_get(s, next - s->win[w]);
            s->sum[w].good -= out.good;
            s->sum[w].total -= out.total;
        }
        size_t p = pos_of(s, next);
        s->minute[p] = next;
        s->slot[p] = (slo_count_t){0, 0};
        s->head = next;
    }
}

int slo_series_add(slo_series_t *s, int64_t minute, uint64_t good, uint64_t total)
{
    if (good > total)
        return -EINVAL;
    if (s->head == INT64_MIN || minute > s->head)
        slo_series_advance(s, minute);
    if (minute <= s->head - (int64_t)s->n)
        return -ESTALE;
    size_t p = pos_of(s, minute);
    if (s->minute[p] != minute) {
        /* A minute of the window never written since the series began:
         * the slot held nothing that any sum still counts. */
        s->minute[p] = minute;
        s->slot[p] = (slo_count_t){0, 0};
    }
    s->slot[p].good += good;
    s->slot[p].total += total;
    for (size_t w = 0; w < SLO_NWINDOWS; w++) {
        if (minute > s->head - (int64_t)s->win[w]) {
            s->sum[w].good += good;
            s->sum[w].total += total;
        }
    }
    return 0;
}

int64_t slo_series_head(const slo_series_t *s)
{
    return s->head;
}

uint32_t slo_series_slots(const slo_series_t *s)
{
    return s->n;
}

const slo_scaled_rule_t *slo_series_rules(const slo_series_t *s)
{
    return s->rules;
}

slo_count_t slo_series_sum(const slo_series_t *s, unsigned w)
{
    return w < SLO_NWINDOWS ? s->sum[w] : (slo_count_t){0, 0};
}

uint32_t slo_series_window_minutes(const slo_series_t *s, unsigned w)
{
    return w < SLO_NWINDOWS ? s->win[w] : 0;
}

slo_count_t slo_series_sum_slow(const slo_series_t *s, uint32_t minutes)
{
    slo_count_t c = {0, 0};
    if (s->head == INT64_MIN)
        return c;
    minutes = minutes > s->n ? s->n : minutes;
    for (uint32_t i = 0; i < minutes; i++) {
        slo_count_t v = slot_get(s, s->head - i);
        c.good += v.good;
        c.total += v.total;
    }
    return c;
}

/* ---- evaluation */

int slo_evaluate(slo_series_t *s, int64_t now, double target, slo_status_t *ret)
{
    slo_status_t st;

    if (!(target > 0 && target < 1))
        return -EINVAL;
    memset(&st, 0, sizeof(st));
    slo_series_advance(s, now);
    st.window = s->sum[SLO_W_FULL];
    st.sli = slo_sli(st.window, &st.no_data);
    st.budget_remaining = slo_budget_remaining(st.window, target);
    for (size_t w = 0; w < SLO_NREPORTED; w++)
        st.burn[w] = slo_burn_rate(s->sum[w], target);
    for (size_t r = 0; r < SLO_NRULES; r++) {
        slo_rule_state_t *rs = &st.rules[r];
        rs->severity = s->rules[r].severity;
        rs->threshold = s->rules[r].threshold;
        rs->long_ms = s->rules[r].long_ms;
        rs->short_ms = s->rules[r].short_ms;
        rs->long_burn = slo_burn_rate(s->sum[SLO_W_RULE_LONG(r)], target);
        rs->short_burn = slo_burn_rate(s->sum[SLO_W_RULE_SHORT(r)], target);
        rs->firing = slo_burn_at_least(rs->long_burn, rs->threshold) &&
                     slo_burn_at_least(rs->short_burn, rs->threshold);
        if (!rs->firing)
            continue;
        st.firing |= 1u << r;
        st.page |= rs->severity == SLO_PAGE;
        st.ticket |= rs->severity == SLO_TICKET;
    }
    *ret = st;
    return 0;
}
