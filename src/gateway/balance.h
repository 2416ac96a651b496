/* Server selection: the algorithms a proxy worker uses to choose one server of a pool for a
 * request. Every function here is pure and single-threaded: no I/O, no globals, no locks. The
 * caller (the worker) owns all state and passes per-server arrays indexed 0..n-1; a candidate
 * is considered only when usable[i] is true (usable == NULL: all are), and a pick returns the
 * chosen index or -1 when no server qualifies. The one exception to "per worker" is the hash
 * ring, which is immutable after balance_ring_new() and may be shared read-only by threads.
 *
 *   balance_rr_*         smooth weighted round-robin (nginx's algorithm), balance.c
 *   balance_least_conn_* weighted least connections, round-robin among ties, balance.c
 *   balance_slow_start_* linear weight ramp for a server that just came back, balance.c
 *   balance_ewma_*, p2c  power of two choices over peak-EWMA latency, balance_ewma.c
 *   balance_ring_*       consistent hashing with bounded load, balance_hash.c
 *
 * A weight of 0 means "never pick" for every algorithm except plain round-robin, whose
 * existing behaviour is kept. */
#ifndef SURETY_GATEWAY_BALANCE_H
#define SURETY_GATEWAY_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Smooth weighted round-robin --------------------------------------------------------- */

/* Every pick adds each candidate's weight to its running score, takes the highest score and
 * subtracts the total from it. Weights 5,1,1 give a a b a c a a, spreading the heavy server's
 * turns instead of bunching them. Over many picks each worker keeps the configured ratio, and
 * so does their sum. */
typedef struct {
    size_t n;
    int *current; /* running scores, [n] */
} balance_rr_t;

/* 0 or -ENOMEM; the caller frees with balance_rr_deinit(). */
int balance_rr_init(balance_rr_t *rr, size_t n);
void balance_rr_deinit(balance_rr_t *rr);
/* Picks among the servers whose usable[i] is true (NULL: all), with weights[i].
 * Returns the index, or -1 when none is usable. */
int balance_rr_pick(balance_rr_t *rr, const unsigned *weights, const bool *usable);

/* ---- Weighted least connections ---------------------------------------------------------- */

/* Picks the usable server with the smallest (inflight[i] + 1) / weights[i], compared exactly
 * by cross-multiplication. Among equally loaded servers the choice is smooth weighted
 * round-robin over rr's scores, so equal servers share evenly instead of the lowest index
 * taking every tie. Give least-conn its own balance_rr_t (balance_rr_init(rr, n)), not the
 * one a round-robin pool uses. weights NULL: all 1. Servers with weight 0 are skipped.
 * Returns the index, or -1 when none qualifies. */
int balance_least_conn_pick(balance_rr_t *rr, size_t n, const unsigned *weights,
                            const unsigned *inflight, const bool *usable);

/* ---- Slow start -------------------------------------------------------------------------- */

/* The weight to use for a server that came back (passed its health check again) at
 * back_since_ms: ramps linearly from max(1, weight / 10) at back_since_ms to weight at
 * back_since_ms + slow_start_ms, so a cold server (empty caches, JIT, pools) is not handed
 * its full share at once. back_since_ms == 0 or slow_start_ms == 0: the full weight.
 * weight 0 stays 0. */
unsigned balance_slow_start_weight(unsigned weight, uint64_t back_since_ms, uint64_t now_ms,
                                   uint64_t slow_start_ms);

/* ---- Power of two choices over peak-EWMA ------------------------------------------------- */

/* Decay time constant suggested for balance_ewma_observe() and balance_p2c_pick(): 10 s. Old
 * latency counts with weight exp(-dt / tau): after 10 s a sample weighs 37%, after 23 s 10%. */
#define BALANCE_EWMA_TAU_MS 10000u

/* Per-server latency estimate in microseconds. Zero-initialise (or balance_ewma_init()) for
 * "no sample yet". Owned by the worker, one per server. */
typedef struct {
    double ewma_us;    /* estimate as of stamp_ms */
    uint64_t stamp_ms; /* time of the last observation */
    bool sampled;      /* false until the first observation */
} balance_ewma_t;

void balance_ewma_init(balance_ewma_t *e);
/* Records one response time (the caller should also report errors and timeouts, with the
 * time waited, so a failing server looks slow). Peak-sensitive: let cur be the estimate as
 * read now (balance_ewma_value()); a sample at or above cur replaces it at once, a sample
 * below pulls it down: cur * k + rtt * (1 - k), k = exp(-dt / tau), dt the time since the
 * previous sample. So a latency spike is seen immediately, recovery is believed gradually.
 * tau_ms: BALANCE_EWMA_TAU_MS unless configured; 0 means no memory. */
void balance_ewma_observe(balance_ewma_t *e, uint64_t rtt_us, uint64_t now_ms, uint64_t tau_ms);
/* The estimate as read at now_ms: the stored value decayed toward 0 by exp(-dt / tau) for the
 * time without a sample. A server that stopped getting traffic because it was slow thus
 * becomes attractive again and gets probed, after about tau * ln(slowdown) (23 s for a 10x
 * slower server at tau 10 s); its first answer then sets the estimate (peak rule) whether it
 * is still slow or has recovered. Returns 0 for a server without samples. */
double balance_ewma_value(const balance_ewma_t *e, uint64_t now_ms, uint64_t tau_ms);

/* splitmix64 step: a small, fast, statistically good generator for picks (not for secrets).
 * The caller owns *state (any seed, 0 included) and must not share it between threads. */
uint64_t balance_rand(uint64_t *state);

/* Draws two distinct usable servers (weight > 0) uniformly with *rng_state and returns the one
 * with the smaller cost = ewma * (inflight + 1) / weight; one candidate: it; none: -1. The
 * ewma is balance_ewma_value() at now_ms with tau_ms; a server without a sample is costed
 * at the lowest ewma in the pool, so new servers are tried rather than avoided forever.
 * A zero ewma is raised to 1 us so inflight still counts. inflight NULL: all 0; weights
 * NULL: all 1. Two random candidates instead of the global minimum keep many workers, each
 * with a stale view, from stampeding the same "best" server. */
int balance_p2c_pick(uint64_t *rng_state, size_t n, const balance_ewma_t *e,
                     const unsigned *inflight, const unsigned *weights, const bool *usable,
                     uint64_t now_ms, uint64_t tau_ms);

/* ---- Consistent hashing with bounded load ------------------------------------------------ */

/* Virtual points per server at average weight, and the cap on the ring's total points. A pool
 * of n servers gets budget = min(160 * n, 65536) points, split in proportion to weight, each
 * weighted server at least 1: n = 1000 with weights up to 1000 is at most 65536 + 1000 points
 * (16 bytes each, ~1 MiB). Up to 409 equal servers get 160 points each, which keeps the
 * spread of key shares within a few percent; beyond, fewer per server. */
#define BALANCE_RING_POINTS_PER_SERVER 160u
#define BALANCE_RING_MAX_POINTS 65536u
/* Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads" (2018): 1.25 bounds
 * a server at 25% above the average while moving few keys when load shifts. */
#define BALANCE_RING_LOAD_FACTOR 1.25

typedef struct balance_ring balance_ring_t;

/* 64-bit hash of len bytes: FNV-1a over the bytes, then the splitmix64 finaliser, so every
 * input bit affects every output bit (FNV alone leaves the low bits weak). Stable across
 * runs and builds: rings and key placement do not depend on a seed. */
uint64_t balance_hash_bytes(const void *p, size_t len);

/* Builds the ring of a pool of n servers. Server i's points are at balance_hash_bytes() of
 * "server_keys[i]#j", j = 0, 1, ..., so a server keeps its points when others are added or
 * removed (as long as the point count per server stays the same, i.e. n <= 409 at equal
 * weights). server_keys[i]: a stable identity such as "10.0.0.1:8080". weights NULL: all 1;
 * weight 0: no points. Returns NULL on allocation failure or n == 0. The caller frees with
 * balance_ring_free(); the ring is immutable, so threads may share it read-only. */
balance_ring_t *balance_ring_new(size_t n, const unsigned *weights, const char *const *server_keys);
void balance_ring_free(balance_ring_t *r);
/* Number of servers and points, for statistics and tests. */
size_t balance_ring_servers(const balance_ring_t *r);
size_t balance_ring_points(const balance_ring_t *r);

/* Walks clockwise from key_hash's place on the ring to the first usable server whose
 * inflight is below ceil(load_factor * (total_inflight + 1) / n_usable), total over usable
 * servers; a hot key then spills to the next servers instead of overloading one. Since
 * load_factor >= 1 some usable server is always below that bound, and a key's server changes
 * only when that server is unusable or over it. inflight NULL or load_factor <= 0: no bound
 * (plain consistent hashing); 0 < load_factor < 1 is taken as 1. Returns -1 when no server
 * with points is usable. */
int balance_ring_pick(const balance_ring_t *r, uint64_t key_hash, const unsigned *inflight,
                      const bool *usable, double load_factor);

#endif
