/* See faults.h. */
#include "admin/faults.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

int faults_reset(faults_t *f, const conf_t *conf)
{
    faults_deinit(f);
    f->conf = conf;
    size_t n = conf->npools ? conf->npools : 1;
    f->ticks = calloc(n, sizeof(*f->ticks));
    f->slow = calloc(n, sizeof(*f->slow));
    f->empty = calloc(n, sizeof(*f->empty));
    f->full = calloc(n, sizeof(*f->full));
    if (!f->ticks || !f->slow || !f->empty || !f->full)
        goto nomem;
    for (size_t p = 0; p < conf->npools; p++) {
        size_t ns = conf->pools[p].nservers ? conf->pools[p].nservers : 1;
        if (!(f->ticks[p] = calloc(ns, sizeof(**f->ticks))) ||
            !(f->slow[p] = calloc(ns, sizeof(**f->slow))) ||
            !(f->full[p] = calloc(ns, sizeof(**f->full))))
            goto nomem;
    }
    return 0;
nomem:
    faults_deinit(f); /* conf NULL: faults_tick does nothing */
    return -ENOMEM;
}

void faults_deinit(faults_t *f)
{
    for (size_t p = 0; f->conf && p < f->conf->npools; p++) {
        free(f->ticks ? f->ticks[p] : NULL);
        free(f->slow ? f->slow[p] : NULL);
        free(f->full ? f->full[p] : NULL);
    }
    free(f->ticks);
    free(f->slow);
    free(f->empty);
    free(f->full);
    memset(f, 0, sizeof(*f));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The k-th of sorted[0, n) with one instance of sorted[skip] left out
 * (skip == n: none). */
static uint64_t kth_without(const uint64_t *sorted, size_t n, size_t skip, size_t k)
{
    return sorted[skip < n && k >= skip ? k + 1 : k];
}

/* The median of sorted[0, n) without the element at skip (n: none); 0 when
 * nothing is left. */
static uint64_t median_without(const uint64_t *sorted, size_t n, size_t skip)
{
    size_t m = skip < n ? n - 1 : n;
    if (!m)
        return 0;
    return (kth_without(sorted, n, skip, (m - 1) / 2) + kth_without(sorted, n, skip, m / 2)) / 2;
}

static void slow_servers(faults_t *f, size_t p, const pool_state_t *ps, uint64_t now,
                         faults_event_cb cb, void *ud)
{
    size_t ns = ps->nservers ? ps->nservers : 1;
    uint64_t lat[ns], sorted[ns];
    bool counted[ns];
    size_t n = 0;
    /* one snapshot of the estimates (the workers keep moving them), sorted
     * once: each server is compared with the median of the others */
    for (size_t s = 0; s < ps->nservers; s++) {
        lat[s] = __atomic_load_n(&ps->servers[s].ewma_us, __ATOMIC_RELAXED);
        counted[s] = state_server_usable(&ps->servers[s], now) && lat[s];
        if (counted[s])
            sorted[n++] = lat[s];
    }
    qsort(sorted, n, sizeof(*sorted), cmp_u64);
    for (size_t s = 0; s < ps->nservers; s++) {
        const server_state_t *ss = &ps->servers[s];
        uint64_t mine = lat[s];
        size_t at = n;
        if (counted[s]) /* where mine is in sorted: any equal element will do */
            for (at = 0; sorted[at] != mine; at++)
                ;
        uint64_t med = median_without(sorted, n, at);
        bool usable = state_server_usable(ss, now);
        bool slow = usable && med && mine > FAULT_SLOW_FACTOR * (double)med &&
                    mine - med >= FAULT_SLOW_MIN_US;
        bool fine = !usable || !med || mine < FAULT_SLOW_FACTOR / 2 * (double)med;
        bool other = f->slow[p][s] ? fine : slow; /* the state it would move to */
        f->ticks[p][s] = other ? (uint8_t)(f->ticks[p][s] + 1) : 0;
        if (f->ticks[p][s] < FAULT_SLOW_TICKS)
            continue;
        f->ticks[p][s] = 0;
        f->slow[p][s] = !f->slow[p][s];
        char subject[160], detail[192];
        snprintf(subject, sizeof(subject), "server:%s/%s", ps->name, ss->address);
        snprintf(detail, sizeof(detail), "{\"latency_ms\":%.1f,\"pool_median_ms\":%.1f}",
                 mine / 1000.0, med / 1000.0);
        if (f->slow[p][s])
            log_warn("pool %s server %s is slow: %.1f ms against %.1f ms for the rest of the pool",
                     ps->name, ss->address, mine / 1000.0, med / 1000.0);
        cb(ud, f->slow[p][s] ? "slow_server" : "slow_server_recovered", subject, detail);
    }
}

/* Whether *reported (near the limit) changes with this reading: on at
 * FAULT_SATURATION_PCT of limit, off again under FAULT_SATURATION_CLEAR_PCT;
 * flips *reported when it does. */
static bool saturation_changed(bool *reported, int64_t value, int64_t limit)
{
    bool sat = *reported ? value * 100 >= limit * FAULT_SATURATION_CLEAR_PCT
                         : value * 100 >= limit * FAULT_SATURATION_PCT;
    if (sat == *reported)
        return false;
    *reported = sat;
    return true;
}

static void full_servers(faults_t *f, size_t p, pool_state_t *ps, faults_event_cb cb, void *ud)
{
    const conf_pool_t *pc = &f->conf->pools[p];
    for (size_t s = 0; s < ps->nservers && s < pc->nservers; s++) {
        unsigned max = pc->servers[s].max_inflight;
        if (!max)
            continue;
        server_state_t *ss = &ps->servers[s];
        uint32_t peak = state_inflight_peak_take(ss);
        if (!saturation_changed(&f->full[p][s], peak, max))
            continue;
        char subject[160], detail[96];
        snprintf(subject, sizeof(subject), "server:%s/%s", ps->name, ss->address);
        snprintf(detail, sizeof(detail), "{\"inflight\":%u,\"max_inflight\":%u}", peak, max);
        if (f->full[p][s])
            log_warn("pool %s server %s had %u requests in flight, %d%% or more of its "
                     "max_inflight (%u)",
                     ps->name, ss->address, peak, FAULT_SATURATION_PCT, max);
        cb(ud, f->full[p][s] ? "saturation" : "saturation_cleared", subject, detail);
    }
}

void faults_tick(faults_t *f, gateway_t *g, state_t *state, uint64_t now, faults_event_cb cb,
                 void *ud)
{
    const conf_t *conf = f->conf;
    for (size_t p = 0; conf && p < conf->npools && p < state->npools; p++) {
        pool_state_t *ps = &state->pools[p];
        slow_servers(f, p, ps, now, cb, ud);
        full_servers(f, p, ps, cb, ud);
        bool empty = state_pool_usable(ps, now) == 0;
        if (empty != f->empty[p]) {
            f->empty[p] = empty;
            char subject[160];
            snprintf(subject, sizeof(subject), "pool:%s", ps->name);
            if (empty)
                log_warn("pool %s has no usable server", ps->name);
            cb(ud, empty ? "pool_unavailable" : "pool_available", subject, NULL);
        }
    }
    int64_t peak = gateway_connections_peak(g), limit = conf ? conf->max_connections : 0;
    if (limit <= 0 || !saturation_changed(&f->saturated, peak, limit))
        return;
    char detail[128];
    snprintf(detail, sizeof(detail), "{\"connections\":%lld,\"max_connections\":%lld}",
             (long long)peak, (long long)limit);
    if (f->saturated)
        log_warn("a worker has %lld client connections open, %d%% or more of max_connections "
                 "(%lld)",
                 (long long)peak, FAULT_SATURATION_PCT, (long long)limit);
    cb(ud, f->saturated ? "saturation" : "saturation_cleared", "connections", detail);
}
