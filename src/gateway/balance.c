/* The deterministic, counter-based selection algorithms of balance.h: smooth weighted
 * round-robin, weighted least connections (which reuses round-robin's scores to spread ties)
 * and the slow-start weight ramp. All state lives in the caller's balance_rr_t; nothing here
 * allocates after balance_rr_init() or touches anything shared. */
#include "gateway/balance.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

int balance_rr_init(balance_rr_t *rr, size_t n)
{
    rr->n = n;
    rr->current = calloc(n ? n : 1, sizeof(*rr->current));
    return rr->current ? 0 : -ENOMEM;
}

void balance_rr_deinit(balance_rr_t *rr)
{
    free(rr->current);
    rr->current = NULL;
}

int balance_rr_pick(balance_rr_t *rr, const unsigned *weights, const bool *usable)
{
    int best = -1;
    int total = 0;
    for (size_t i = 0; i < rr->n; i++) {
        if (usable && !usable[i])
            continue;
        rr->current[i] += (int)weights[i];
        total += (int)weights[i];
        if (best < 0 || rr->current[i] > rr->current[best])
            best = (int)i;
    }
    if (best >= 0)
        rr->current[best] -= total;
    return best;
}

/* Orders a against b by (inflight + 1) / weight without division: the products fit in 64 bits
 * because both factors fit in 32. Returns <0, 0, >0 like strcmp. */
static int lc_cmp(uint64_t in_a, uint64_t w_a, uint64_t in_b, uint64_t w_b)
{
    uint64_t l = (in_a + 1) * w_b, r = (in_b + 1) * w_a;
    return (l > r) - (l < r);
}

int balance_least_conn_pick(balance_rr_t *rr, size_t n, const unsigned *weights,
                            const unsigned *inflight, const bool *usable)
{
    assert(n <= rr->n);
    int min = -1;
    for (size_t i = 0; i < n; i++) {
        unsigned w = weights ? weights[i] : 1;
        if ((usable && !usable[i]) || w == 0)
            continue;
        if (min < 0 || lc_cmp(inflight ? inflight[i] : 0, w, inflight ? inflight[min] : 0,
                              weights ? weights[min] : 1) < 0)
            min = (int)i;
    }
    if (min < 0)
        return -1;

    /* Second pass: smooth round-robin among the servers tied with the minimum. Only the tied
     * servers' scores move, and they move by a net zero, so the scores stay bounded. */
    uint64_t min_in = inflight ? inflight[min] : 0, min_w = weights ? weights[min] : 1;
    int best = -1;
    int total = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned w = weights ? weights[i] : 1;
        if ((usable && !usable[i]) || w == 0 ||
            lc_cmp(inflight ? inflight[i] : 0, w, min_in, min_w) != 0)
            continue;
        rr->current[i] += (int)w;
        total += (int)w;
        if (best < 0 || rr->current[i] > rr->current[best])
            best = (int)i;
    }
    rr->current[best] -= total;
    return best;
}

unsigned balance_slow_start_weight(unsigned weight, uint64_t back_since_ms, uint64_t now_ms,
                                   uint64_t slow_start_ms)
{
    if (back_since_ms == 0 || slow_start_ms == 0 || weight == 0)
        return weight;
    uint64_t start = weight / 10 ? weight / 10 : 1;
    if (now_ms <= back_since_ms)
        return (unsigned)start;
    uint64_t elapsed = now_ms - back_since_ms;
    if (elapsed >= slow_start_ms)
        return weight;
    /* double keeps elapsed * span from overflowing for any slow_start_ms; span < 2^32 is
     * exact in a double and truncation only rounds the ramp down by less than 1. */
    uint64_t span = weight - start;
    uint64_t add = (uint64_t)((double)span * ((double)elapsed / (double)slow_start_ms));
    return (unsigned)(start + (add > span ? span : add));
}
