/* Power of two choices over peak-EWMA latency (the scheme of Finagle and Linkerd): each worker
 * keeps a decaying latency estimate per server, fed by the responses it sees, and for every
 * request compares two random servers by estimate x (inflight + 1) / weight. Latency makes a
 * slow server lose, the inflight factor stops a fast one from being buried, and the random pair
 * keeps workers with stale, different views from all piling onto the same server. */
#include "gateway/balance.h"

#include <math.h>

void balance_ewma_init(balance_ewma_t *e)
{
    e->ewma_us = 0;
    e->stamp_ms = 0;
    e->sampled = false;
}

/* exp(-dt / tau): how much of the old estimate survives dt ms. A clock that went backwards
 * counts as no time passed. */
static double ewma_keep(uint64_t then_ms, uint64_t now_ms, uint64_t tau_ms)
{
    if (now_ms <= then_ms)
        return 1.0;
    if (tau_ms == 0)
        return 0.0;
    return exp(-(double)(now_ms - then_ms) / (double)tau_ms);
}

void balance_ewma_observe(balance_ewma_t *e, uint64_t rtt_us, uint64_t now_ms, uint64_t tau_ms)
{
    double rtt = (double)rtt_us;
    if (!e->sampled) {
        e->ewma_us = rtt;
    } else {
        /* Compare with the estimate as p2c saw it, decayed for the quiet time; otherwise the
         * first fast answer of a server that was idle (and probed because it decayed) would
         * be mixed with its stale, high value and push it back up. */
        double keep = ewma_keep(e->stamp_ms, now_ms, tau_ms);
        double cur = e->ewma_us * keep;
        e->ewma_us = rtt >= cur ? rtt : cur * keep + rtt * (1.0 - keep);
    }
    e->sampled = true;
    if (now_ms > e->stamp_ms)
        e->stamp_ms = now_ms;
}

double balance_ewma_value(const balance_ewma_t *e, uint64_t now_ms, uint64_t tau_ms)
{
    if (!e->sampled)
        return 0;
    return e->ewma_us * ewma_keep(e->stamp_ms, now_ms, tau_ms);
}

uint64_t balance_rand(uint64_t *state)
{
    /* splitmix64 (Steele, Lea, Flood 2014): a Weyl sequence through a strong mixer. */
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static bool p2c_candidate(size_t i, const unsigned *weights, const bool *usable)
{
    return (!usable || usable[i]) && (!weights || weights[i] > 0);
}

/* The index of the rank-th candidate (0-based), scanning in index order. */
static size_t p2c_nth(size_t n, size_t rank, const unsigned *weights, const bool *usable)
{
    for (size_t i = 0; i < n; i++)
        if (p2c_candidate(i, weights, usable) && rank-- == 0)
            return i;
    return n; /* not reached: rank < number of candidates */
}

static double p2c_cost(size_t i, double ewma, const unsigned *inflight, const unsigned *weights)
{
    double in = inflight ? (double)inflight[i] : 0.0;
    double w = weights ? (double)weights[i] : 1.0;
    return (ewma > 1.0 ? ewma : 1.0) * (in + 1.0) / w;
}

int balance_p2c_pick(uint64_t *rng_state, size_t n, const balance_ewma_t *e,
                     const unsigned *inflight, const unsigned *weights, const bool *usable,
                     uint64_t now_ms, uint64_t tau_ms)
{
    /* One pass for the candidate count and the pool's lowest estimate, which stands in for
     * servers without a sample. */
    size_t count = 0;
    double lowest = -1;
    for (size_t i = 0; i < n; i++) {
        if (!p2c_candidate(i, weights, usable))
            continue;
        count++;
        if (e[i].sampled) {
            double v = balance_ewma_value(&e[i], now_ms, tau_ms);
            if (lowest < 0 || v < lowest)
                lowest = v;
        }
    }
    if (count == 0)
        return -1;
    if (count == 1)
        return (int)p2c_nth(n, 0, weights, usable);
    if (lowest < 0)
        lowest = 0;

    /* Two distinct ranks, uniform over pairs. The modulo bias is below count / 2^64. */
    size_t ra = (size_t)(balance_rand(rng_state) % count);
    size_t rb = (size_t)(balance_rand(rng_state) % (count - 1));
    if (rb >= ra)
        rb++;
    size_t a = p2c_nth(n, ra, weights, usable), b = p2c_nth(n, rb, weights, usable);

    double ea = e[a].sampled ? balance_ewma_value(&e[a], now_ms, tau_ms) : lowest;
    double eb = e[b].sampled ? balance_ewma_value(&e[b], now_ms, tau_ms) : lowest;
    return p2c_cost(b, eb, inflight, weights) < p2c_cost(a, ea, inflight, weights) ? (int)b
                                                                                   : (int)a;
}
