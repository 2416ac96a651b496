/* Consistent hashing with bounded load. A pool's servers are placed on a 64-bit ring at many
 * pseudo-random points each (in proportion to weight); a request key goes to the server of the
 * first point clockwise from the key's hash, so the same key keeps hitting the same server
 * (cache affinity) and removing a server moves only the keys it had. The bounded-load walk
 * (Mirrokni, Thorup, Zadimoghaddam 2018) skips servers already above the pool's average load
 * times a factor, so a hot key spills over instead of overloading one server. The ring is
 * built once per pool and never modified, so workers share it without locks. */
#include "gateway/balance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    uint32_t server;
} ring_point_t;

struct balance_ring {
    size_t n;             /* servers */
    size_t n_points;      /* entries in points */
    ring_point_t *points; /* sorted by hash, then server */
    bool *placed;         /* [n]: server has points (weight > 0) */
};

static uint64_t mix64(uint64_t z)
{
    /* The splitmix64 finaliser: every input bit flips each output bit with probability ~1/2. */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

uint64_t balance_hash_bytes(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a 64 offset basis and prime */
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3u;
    }
    /* Folding the length in keeps inputs that differ only by trailing zero bytes apart. */
    return mix64(h ^ (uint64_t)len);
}

static int point_cmp(const void *a, const void *b)
{
    const ring_point_t *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (x->server > y->server) - (x->server < y->server);
}

/* Points for each server: budget = min(160 n, 64 Ki) split by weight, at least 1 when the
 * weight is positive. Fills per[] and returns the total. */
static size_t ring_plan(size_t n, const unsigned *weights, size_t *per)
{
    uint64_t total_w = 0;
    for (size_t i = 0; i < n; i++)
        total_w += weights ? weights[i] : 1;
    uint64_t budget = (uint64_t)BALANCE_RING_POINTS_PER_SERVER * n;
    if (budget > BALANCE_RING_MAX_POINTS)
        budget = BALANCE_RING_MAX_POINTS;
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = weights ? weights[i] : 1;
        /* budget <= 2^16 and w < 2^32: the product fits. */
        uint64_t k = w ? budget * w / total_w : 0;
        per[i] = (size_t)(w && k == 0 ? 1 : k);
        sum += per[i];
    }
    return sum;
}

balance_ring_t *balance_ring_new(size_t n, const unsigned *weights, const char *const *server_keys)
{
    balance_ring_t *r = NULL;
    size_t *per = NULL;
    if (n == 0 || n > UINT32_MAX)
        goto out;
    per = calloc(n, sizeof(*per));
    r = calloc(1, sizeof(*r));
    if (!per || !r)
        goto fail;
    r->n = n;
    r->n_points = ring_plan(n, weights, per);
    r->points = calloc(r->n_points ? r->n_points : 1, sizeof(*r->points));
    r->placed = calloc(n, sizeof(*r->placed));
    if (!r->points || !r->placed)
        goto fail;

    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t klen = strlen(server_keys[i]);
        char *buf = malloc(klen + 24); /* "#" + up to 20 digits + NUL */
        if (!buf)
            goto fail;
        memcpy(buf, server_keys[i], klen);
        r->placed[i] = per[i] > 0;
        for (size_t j = 0; j < per[i]; j++) {
            int len = snprintf(buf + klen, 24, "#%zu", j);
            r->points[at].hash = balance_hash_bytes(buf, klen + (size_t)len);
            r->points[at].server = (uint32_t)i;
            at++;
        }
        free(buf);
    }
    qsort(r->points, r->n_points, sizeof(*r->points), point_cmp);
    goto out;
fail:
    balance_ring_free(r);
    r = NULL;
out:
    free(per);
    return r;
}

void balance_ring_free(balance_ring_t *r)
{
    if (!r)
        return;
    free(r->points);
    free(r->placed);
    free(r);
}

size_t balance_ring_servers(const balance_ring_t *r)
{
    return r->n;
}

size_t balance_ring_points(const balance_ring_t *r)
{
    return r->n_points;
}

/* Index of the first point with hash >= h, wrapping to 0 past the end. */
static size_t ring_find(const balance_ring_t *r, uint64_t h)
{
    size_t lo = 0, hi = r->n_points;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->points[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == r->n_points ? 0 : lo;
}

/* The bounded-load cap, ceil(c (total + 1) / usable), or UINT64_MAX for no bound. */
static uint64_t ring_cap(const balance_ring_t *r, const unsigned *inflight, const bool *usable,
                         double load_factor)
{
    if (!inflight || load_factor <= 0)
        return UINT64_MAX;
    if (load_factor < 1)
        load_factor = 1; /* below 1 no server might qualify */
    uint64_t total = 0, n_usable = 0;
    for (size_t i = 0; i < r->n; i++) {
        if ((usable && !usable[i]) || !r->placed[i])
            continue; /* a server that cannot be picked must not lower the average */
        total += inflight[i];
        n_usable++;
    }
    if (n_usable == 0)
        return UINT64_MAX;
    return (uint64_t)ceil(load_factor * (double)(total + 1) / (double)n_usable);
}

int balance_ring_pick(const balance_ring_t *r, uint64_t key_hash, const unsigned *inflight,
                      const bool *usable, double load_factor)
{
    if (r->n_points == 0)
        return -1;
    uint64_t cap = ring_cap(r, inflight, usable, load_factor);
    size_t start = ring_find(r, key_hash);
    int first_usable = -1;
    /* One lap at most. Since the cap is at least the average over the usable servers with
     * points, one of them is below it; first_usable only guards against that reasoning failing
     * to floating-point rounding. */
    for (size_t k = 0; k < r->n_points; k++) {
        uint32_t s = r->points[(start + k) % r->n_points].server;
        if (usable && !usable[s])
            continue;
        if (cap == UINT64_MAX || inflight[s] < cap)
            return (int)s;
        if (first_usable < 0)
            first_usable = (int)s;
    }
    return first_usable;
}
