/* Shared runtime state of pools and servers: see state.h. */
#include "gateway/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

state_t *state_new(const conf_t *conf)
{
    state_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->npools = conf->npools;
    s->pools = calloc(conf->npools ? conf->npools : 1, sizeof(*s->pools));
    if (!s->pools)
        goto fail;
    for (size_t p = 0; p < conf->npools; p++) {
        const conf_pool_t *pc = &conf->pools[p];
        pool_state_t *ps = &s->pools[p];
        snprintf(ps->name, sizeof(ps->name), "%s", pc->name);
        ps->serving = p;
        ps->nservers = pc->nservers;
        ps->servers = calloc(pc->nservers, sizeof(*ps->servers));
        if (!ps->servers)
            goto fail;
        for (size_t i = 0; i < pc->nservers; i++) {
            server_state_t *ss = &ps->servers[i];
            snprintf(ss->pool, sizeof(ss->pool), "%s", pc->name);
            snprintf(ss->address, sizeof(ss->address), "%s", pc->servers[i].address);
            ss->weight = pc->servers[i].weight;
        }
    }
    return s;
fail:
    state_free(s);
    return NULL;
}

void state_free(state_t *s)
{
    if (!s)
        return;
    for (size_t p = 0; s->pools && p < s->npools; p++)
        free(s->pools[p].servers);
    free(s->pools);
    free(s);
}

static const pool_state_t *find_pool(const state_t *s, const char *name, size_t *ret_index)
{
    for (size_t p = 0; p < s->npools; p++)
        if (!strcmp(s->pools[p].name, name)) {
            *ret_index = p;
            return &s->pools[p];
        }
    return NULL;
}

void state_carry(state_t *s, const conf_t *conf, const state_t *old)
{
    for (size_t p = 0; p < s->npools; p++) {
        pool_state_t *ps = &s->pools[p];
        size_t oi;
        const pool_state_t *op = find_pool(old, ps->name, &oi);
        if (!op)
            continue;
        ps->failovers = op->failovers;
        ps->primary_ok_since = op->primary_ok_since;
        size_t serving_old = LOAD(op->serving);
        size_t ni;
        if (find_pool(s, old->pools[serving_old].name, &ni) &&
            (ni == p || conf->pools[p].backup != SIZE_MAX))
            ps->serving = ni;
        for (size_t i = 0; i < ps->nservers; i++) {
            server_state_t *ss = &ps->servers[i];
            for (size_t k = 0; k < op->nservers; k++) {
                const server_state_t *os = &op->servers[k];
                if (strcmp(os->address, ss->address))
                    continue;
                unsigned weight = ss->weight;
                *ss = (server_state_t){0};
                memcpy(ss->pool, os->pool, sizeof(ss->pool));
                memcpy(ss->address, os->address, sizeof(ss->address));
                ss->weight = weight;
                /* a pool whose checks were removed has nothing left to bring
                 * a down server back: it starts up, as without checks */
                ss->health = conf->pools[p].health.type == CONF_HEALTH_NONE ? SRV_UP
                                                                           : LOAD(os->health);
                ss->health_since = os->health_since;
                ss->streak_ok = os->streak_ok;
                ss->streak_fail = os->streak_fail;
                ss->last_check = os->last_check;
                ss->last_status = os->last_status;
                memcpy(ss->last_error, os->last_error, sizeof(ss->last_error));
                ss->admin = LOAD(os->admin);
                ss->consecutive_errors = LOAD(os->consecutive_errors);
                ss->ejected_until = LOAD(os->ejected_until);
                ss->ejections = LOAD(os->ejections);
                ss->back_since = LOAD(os->back_since);
                ss->ewma_us = LOAD(os->ewma_us);
                break;
            }
        }
    }
}

bool state_server_usable(const server_state_t *s, uint64_t now)
{
    return LOAD(s->health) == SRV_UP && LOAD(s->admin) == SRV_ENABLED &&
           LOAD(s->ejected_until) <= now;
}

size_t state_pool_usable(const pool_state_t *p, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nservers; i++)
        n += state_server_usable(&p->servers[i], now);
    return n;
}

void state_report_success(server_state_t *s)
{
    /* read first: the common case writes nothing, so the cache line stays
     * shared between the workers */
    if (LOAD(s->consecutive_errors))
        STORE(s->consecutive_errors, 0);
}

bool state_server_reserve(server_state_t *s, unsigned max)
{
    if (!max)
        return true;
    uint32_t n = LOAD(s->inflight);
    do {
        if (n >= max)
            return false;
    } while (!__atomic_compare_exchange_n(&s->inflight, &n, n + 1, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    /* the peak only grows between two takes: a plain store of a smaller
     * value by a slower worker would hide a peak, so compare-and-swap */
    uint32_t peak = LOAD(s->inflight_peak);
    while (peak < n + 1 && !__atomic_compare_exchange_n(&s->inflight_peak, &peak, n + 1, true,
                                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return true;
}

bool state_server_has_room(const server_state_t *s, unsigned max)
{
    return !max || LOAD(s->inflight) < max;
}

void state_server_release(server_state_t *s, unsigned max)
{
    if (max)
        __atomic_sub_fetch(&s->inflight, 1, __ATOMIC_RELAXED);
}

uint32_t state_inflight_peak_take(server_state_t *s)
{
    return __atomic_exchange_n(&s->inflight_peak, LOAD(s->inflight), __ATOMIC_RELAXED);
}

static size_t pool_ejected(const pool_state_t *p, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nservers; i++)
        n += LOAD(p->servers[i].ejected_until) > now;
    return n;
}

bool state_report_failure(pool_state_t *p, server_state_t *s, const conf_outlier_t *o,
                          uint64_t now)
{
    uint32_t errors = __atomic_add_fetch(&s->consecutive_errors, 1, __ATOMIC_RELAXED);
    if (o->consecutive_errors == 0 || errors < o->consecutive_errors)
        return false;
    uint64_t until = LOAD(s->ejected_until);
    if (until > now)
        return false;
    /* Never eject past max_ejected of the pool, but one server may always be
     * ejected when the others are healthy (a pool of one or two servers). */
    size_t ejected = pool_ejected(p, now);
    uint64_t cap = (uint64_t)p->nservers * o->max_ejected_ppm / 1000000;
    if (ejected >= cap && !(ejected == 0 && p->nservers > 1))
        return false;
    uint32_t times = __atomic_add_fetch(&s->ejections, 1, __ATOMIC_RELAXED);
    uint64_t span = o->ejection_ms * times;
    if (span > o->max_ejection_ms || span / times != o->ejection_ms)
        span = o->max_ejection_ms;
    /* One worker wins the ejection; the others see it done. */
    if (!__atomic_compare_exchange_n(&s->ejected_until, &until, now + span, false,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        __atomic_sub_fetch(&s->ejections, 1, __ATOMIC_RELAXED);
        return false;
    }
    STORE(s->consecutive_errors, 0);
    STORE(s->back_since, now + span);
    return true;
}

int state_check_result(server_state_t *s, bool ok, unsigned rise, unsigned fall, uint64_t now)
{
    s->last_check = now;
    if (ok) {
        s->streak_fail = 0;
        s->streak_ok++;
        uint64_t until = LOAD(s->ejected_until);
        if (until > now && LOAD(s->health) == SRV_UP) {
            if (s->ejection_seen != until) { /* a new ejection: count from here */
                s->ejection_seen = until;
                s->streak_ejected = 0;
            }
            if (++s->streak_ejected >= rise &&
                __atomic_compare_exchange_n(&s->ejected_until, &until, 0, false,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
                STORE(s->consecutive_errors, 0);
                STORE(s->back_since, now);
                return STATE_UNEJECTED;
            }
        }
        if (LOAD(s->health) == SRV_DOWN && s->streak_ok >= rise) {
            STORE(s->health, SRV_UP);
            s->health_since = now;
            STORE(s->back_since, now);
            /* an active check vouches for it: end any passive ejection */
            STORE(s->ejected_until, 0);
            STORE(s->consecutive_errors, 0);
            return 1;
        }
        return 0;
    }
    s->streak_ok = 0;
    s->streak_ejected = 0;
    s->streak_fail++;
    if (LOAD(s->health) == SRV_UP && s->streak_fail >= fall) {
        STORE(s->health, SRV_DOWN);
        s->health_since = now;
        return -1;
    }
    return 0;
}

static bool pool_able(const state_t *s, const conf_t *conf, size_t p, uint64_t now)
{
    return state_pool_usable(&s->pools[p], now) >= conf->pools[p].failover_min_healthy;
}

/* Down the backup chain from start: the first pool with at least its
 * min_healthy usable servers; when none has, the one with the most usable
 * servers (start on ties). Chains are acyclic (checked at load); hops are
 * bounded anyway. */
static size_t chain_select(const state_t *s, const conf_t *conf, size_t start, uint64_t now)
{
    size_t best = start, best_n = 0, hops = 0;
    for (size_t cur = start; cur != SIZE_MAX && hops <= conf->npools;
         cur = conf->pools[cur].backup, hops++) {
        if (pool_able(s, conf, cur, now))
            return cur;
        size_t n = state_pool_usable(&s->pools[cur], now);
        if (n > best_n) {
            best = cur;
            best_n = n;
        }
    }
    return best;
}

void state_failover_eval(state_t *s, const conf_t *conf, uint64_t now, state_failover_cb cb,
                         void *ud)
{
    for (size_t p = 0; p < s->npools; p++) {
        const conf_pool_t *pc = &conf->pools[p];
        pool_state_t *ps = &s->pools[p];
        if (pc->backup == SIZE_MAX)
            continue;
        size_t serving = LOAD(ps->serving);
        bool primary_ok = pool_able(s, conf, p, now);
        if (!primary_ok)
            ps->primary_ok_since = 0;
        else if (!ps->primary_ok_since)
            ps->primary_ok_since = now;

        size_t want = p;
        if (serving == p && primary_ok) {
            want = p;
        } else if (serving != p && primary_ok &&
                   now - ps->primary_ok_since >= pc->failback_after_ms) {
            want = p; /* failback, only after the primaries held long enough */
        } else {
            /* fail over, or stay failed over (maybe further down the chain);
             * a weak primary still beats a backup chain with nothing usable */
            size_t cand = chain_select(s, conf, pc->backup, now);
            bool cand_better = pool_able(s, conf, cand, now) ||
                               state_pool_usable(&s->pools[cand], now) >=
                                   state_pool_usable(ps, now);
            want = cand_better ? cand : p;
        }
        if (want != serving) {
            STORE(ps->serving, want);
            ps->failovers++;
            if (cb)
                cb(conf, p, serving, want, ud);
        }
    }
}
