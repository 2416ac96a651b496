/* Limit tables as a set-associative cache of GCRA token buckets and
 * connection counts (see limit.h for the contract). The table is one
 * allocation: a small header, then 2^k sets of 8 ways, each set 256 bytes
 * aligned on a cache line and laid out by how often a field is read:
 *
 *   line 0: the lock, the LRU order, per-set counters, one tag byte per way
 *           (a byte of the key's hash, 0 for a way never used) and the
 *           open connections of each way;
 *   line 1: the TAT of each way (see limit.h);
 *   lines 2-3: the 16-byte keys.
 *
 * A lookup compares tags on line 0 and reads the key of a way only when its
 * tag matches (a stranger's tag matches with probability 1/255 per way), so
 * a hit reads three lines, and a miss (a flood of new keys) reads two, line
 * 0 and line 1 to find a stale way to reuse, before it writes the new key.
 * Ways are never emptied once used, so the ways of a set fill in order and
 * `used` says which one is next.
 *
 * What that costs (bench/limit_bench.c, release build, the project's 2-core
 * VM): about 16 ns for a hit, 30 ns for a miss in a table that fits in the
 * caches, 210 ns for a miss in a 32 MiB table, which is this machine's
 * memory latency (170 ns) plus the hash; two threads taking from the same
 * keys pay for moving the set's lines from one core to the other, about
 * 160 ns a call, as any shared counter would.
 *
 * The LRU order of a set is a permutation of its 8 ways packed in 24 bits,
 * 3 bits per position, most recently used first; touching a way moves it to
 * the front with a few shifts. That is exact LRU, with no timestamp to store
 * per way and nothing that wraps around.
 *
 * The set of a key is chosen by SipHash-1-3 of the key under a secret drawn
 * at creation: addresses are chosen by clients (anyone with an IPv6 /64 has
 * 2^64 of them), and an unkeyed hash would let them fill one set on purpose
 * and evict a chosen victim's state with a handful of keys. */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "shield/limit.h"

/* Times inside the table are in units of 2^-LIMIT_UNIT_SHIFT ms. */
#define LIMIT_UNIT_SHIFT 20
/* Bounds that keep every TAT below 2^64 (see gcra_of): now in units below
 * 2^63, an interval at most 2^60 units (per_ms at most 2^40 ms, 34 years),
 * a tolerance at most 2^61 units. */
#define LIMIT_NOW_MAX_MS ((UINT64_C(1) << 43) - 1)
#define LIMIT_PER_MS_MAX (UINT64_C(1) << 40)
#define LIMIT_TOLERANCE_MAX (UINT64_C(1) << 61)
#define LIMIT_CACHE_LINE 64
/* Position i of the LRU order holds way i: any permutation would do. */
#define LIMIT_ORDER_INIT 076543210u

typedef struct {
    /* Line 0. The counters are written under the lock but read without it
     * by limit_table_used/evictions, hence atomic (relaxed). */
    _Atomic uint32_t lock; /* the spinlock: 1 while held */
    uint32_t order;        /* LRU permutation, position 0 (low bits) most recent */
    _Atomic uint32_t used; /* ways holding a key: ways 0 to used - 1 */
    uint32_t spare;
    _Atomic uint64_t evictions;
    uint8_t tag[LIMIT_WAYS];
    uint32_t conns[LIMIT_WAYS];
    /* Line 1. */
    uint64_t tat[LIMIT_WAYS];
    /* Lines 2 and 3. */
    limit_key_t key[LIMIT_WAYS];
} __attribute__((aligned(LIMIT_CACHE_LINE))) limit_set_t;

_Static_assert(sizeof(limit_set_t) == 4 * LIMIT_CACHE_LINE, "a set is four cache lines");
_Static_assert(offsetof(limit_set_t, tat) == LIMIT_CACHE_LINE, "TATs start line 1");

struct limit_table {
    limit_set_t *sets;
    size_t mask; /* number of sets - 1 */
    size_t memory;
    uint64_t set_secret[2];   /* SipHash-1-3 key: key -> set and tag */
    uint64_t bytes_secret[2]; /* SipHash-2-4 key: bytes -> key */
};

/* A rate as the GCRA applies it, in table time units. */
typedef struct {
    uint64_t interval;  /* between two tokens */
    uint64_t tolerance; /* (burst - 1) intervals: how far TAT may run ahead */
} gcra_t;

/* ---- SipHash (Aumasson and Bernstein), as in the reference code. */

static inline uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static inline void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

static inline void sip_init(uint64_t v[4], const uint64_t k[2], bool wide)
{
    v[0] = k[0] ^ UINT64_C(0x736f6d6570736575);
    v[1] = k[1] ^ UINT64_C(0x646f72616e646f6d) ^ (wide ? 0xee : 0);
    v[2] = k[0] ^ UINT64_C(0x6c7967656e657261);
    v[3] = k[1] ^ UINT64_C(0x7465646279746573);
}

static inline void sip_block(uint64_t v[4], uint64_t m, unsigned crounds)
{
    v[3] ^= m;
    for (unsigned i = 0; i < crounds; i++)
        sip_round(v);
    v[0] ^= m;
}

/* SipHash-1-3 of a 16-byte key, 64-bit output: picks the set and the tag. */
static inline uint64_t sip13_key(const uint64_t secret[2], const limit_key_t *k)
{
    uint64_t v[4];
    sip_init(v, secret, false);
    sip_block(v, load_le64(k->b), 1);
    sip_block(v, load_le64(k->b + 8), 1);
    sip_block(v, (uint64_t)sizeof(k->b) << 56, 1); /* the length block */
    v[2] ^= 0xff;
    for (unsigned i = 0; i < 3; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* SipHash-2-4 of p[0, n) with the 128-bit output, bytes in the reference
 * code's order (little-endian halves). */
static void sip24_128(const uint64_t secret[2], const uint8_t *p, size_t n, uint8_t out[16])
{
    uint64_t v[4], last = (uint64_t)n << 56;
    size_t i = 0;

    sip_init(v, secret, true);
    for (; i + 8 <= n; i += 8)
        sip_block(v, load_le64(p + i), 2);
    for (unsigned j = 0; i + j < n; j++)
        last |= (uint64_t)p[i + j] << (8 * j);
    sip_block(v, last, 2);
    v[2] ^= 0xee;
    for (unsigned r = 0; r < 4; r++)
        sip_round(v);
    uint64_t h0 = v[0] ^ v[1] ^ v[2] ^ v[3];
    v[1] ^= 0xdd;
    for (unsigned r = 0; r < 4; r++)
        sip_round(v);
    uint64_t h1 = v[0] ^ v[1] ^ v[2] ^ v[3];
    for (unsigned j = 0; j < 8; j++) {
        out[j] = (uint8_t)(h0 >> (8 * j));
        out[8 + j] = (uint8_t)(h1 >> (8 * j));
    }
}

/* ---- The table. */

limit_table_t *limit_table_new(size_t capacity)
{
    const size_t head =
        (sizeof(limit_table_t) + LIMIT_CACHE_LINE - 1) & ~(size_t)(LIMIT_CACHE_LINE - 1);
    size_t need = capacity / LIMIT_WAYS + (capacity % LIMIT_WAYS != 0), nsets = 1;
    uint64_t secret[4];

    if (capacity == 0) {
        errno = EINVAL;
        return NULL;
    }
    while (nsets < need) {
        if (nsets > (SIZE_MAX - head) / sizeof(limit_set_t) / 2) {
            errno = ENOMEM;
            return NULL;
        }
        nsets <<= 1;
    }
    /* getrandom() fills up to 256 bytes in one call once the entropy pool
     * is ready; the loop covers a signal interrupting the wait for it at
     * early boot. */
    for (size_t got = 0; got < sizeof(secret);) {
        ssize_t r = getrandom((uint8_t *)secret + got, sizeof(secret) - got, 0);
        if (r < 0 && errno != EINTR)
            return NULL;
        got += r > 0 ? (size_t)r : 0;
    }
    size_t memory = head + nsets * sizeof(limit_set_t);
    limit_table_t *t = aligned_alloc(LIMIT_CACHE_LINE, memory);
    if (!t)
        return NULL;
    /* Clearing every set here also faults its pages in: the table's memory
     * is resident from the start and never grows afterwards. */
    memset(t, 0, memory);
    t->sets = (limit_set_t *)(void *)((uint8_t *)t + head);
    t->mask = nsets - 1;
    t->memory = memory;
    memcpy(t->set_secret, secret, sizeof(t->set_secret));
    memcpy(t->bytes_secret, secret + 2, sizeof(t->bytes_secret));
    for (size_t i = 0; i < nsets; i++)
        t->sets[i].order = LIMIT_ORDER_INIT;
    return t;
}

void limit_table_free(limit_table_t *t)
{
    free(t);
}

size_t limit_table_capacity(const limit_table_t *t)
{
    assert(t);
    return (t->mask + 1) * LIMIT_WAYS;
}

size_t limit_table_memory(const limit_table_t *t)
{
    assert(t);
    return t->memory;
}

size_t limit_table_used(const limit_table_t *t)
{
    size_t used = 0;

    assert(t);
    for (size_t i = 0; i <= t->mask; i++)
        used += atomic_load_explicit(&t->sets[i].used, memory_order_relaxed);
    return used;
}

uint64_t limit_table_evictions(const limit_table_t *t)
{
    uint64_t n = 0;

    assert(t);
    for (size_t i = 0; i <= t->mask; i++)
        n += atomic_load_explicit(&t->sets[i].evictions, memory_order_relaxed);
    return n;
}

/* ---- Keys. */

void limit_key_from_addr(limit_key_t *k, const struct sockaddr *sa)
{
    assert(k && sa);
    memset(k, 0, sizeof(*k));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        k->b[10] = k->b[11] = 0xff;
        memcpy(k->b + 12, &a->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(k->b, &a->sin6_addr, 16);
    }
}

void limit_key_from_bytes(const limit_table_t *t, limit_key_t *k, const void *p, size_t n)
{
    assert(t && k && (p || n == 0));
    sip24_128(t->bytes_secret, p, n, k->b);
}

/* ---- Sets. set_find, set_touch, set_victim and set_get run with the
 * set's lock held. */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Test-and-test-and-set: waiters spin on a plain load, which stays in
 * their cache, instead of bouncing the line with failed exchanges. No
 * system call, ever: the holder runs a few dozen instructions. (A holder
 * preempted by the kernel makes waiters spin until it runs again, which is
 * why workers are one thread per core.) */
static inline void set_lock(limit_set_t *s)
{
    while (atomic_exchange_explicit(&s->lock, 1, memory_order_acquire))
        while (atomic_load_explicit(&s->lock, memory_order_relaxed))
            cpu_relax();
}

static inline void set_unlock(limit_set_t *s)
{
    atomic_store_explicit(&s->lock, 0, memory_order_release);
}

/* The set of k, and in *tag the byte its ways are tagged with (never 0,
 * which marks an unused way). The tag comes from the top bits of the hash
 * and the set from the bottom ones, so they are independent. */
static inline limit_set_t *set_of(const limit_table_t *t, const limit_key_t *k, uint8_t *tag)
{
    uint64_t h = sip13_key(t->set_secret, k);
    uint8_t g = (uint8_t)(h >> 56);
    *tag = g ? g : 1;
    return &t->sets[h & t->mask];
}

/* The way holding k, or -1. */
static inline int set_find(const limit_set_t *s, uint8_t tag, const limit_key_t *k)
{
    for (int w = 0; w < LIMIT_WAYS; w++)
        if (s->tag[w] == tag && memcmp(&s->key[w], k, sizeof(*k)) == 0)
            return w;
    return -1;
}

static inline unsigned order_at(uint32_t order, unsigned pos)
{
    return (order >> (3 * pos)) & 7;
}

/* Moves way w to the front of the LRU order: the ways before it shift back
 * by one position, the ways after it stay. */
static inline void set_touch(limit_set_t *s, unsigned w)
{
    uint32_t o = s->order;
    unsigned pos = 0;

    while (order_at(o, pos) != w)
        pos++;
    uint32_t before = (UINT32_C(1) << (3 * pos)) - 1;
    uint32_t after = ~((UINT32_C(1) << (3 * (pos + 1))) - 1);
    s->order = (o & after) | ((o & before) << 3) | w;
}

/* An entry that has nothing to remember: no connection and a full bucket,
 * whatever the rate (TAT not in the future). */
static inline bool way_stale(const limit_set_t *s, unsigned w, uint64_t now)
{
    return s->conns[w] == 0 && s->tat[w] <= now;
}

/* The way for a key missing from s: an unused way; else the least recently
 * used stale way, which loses nothing; else the least recently used way
 * without connections; else the least recently used way. Counts the fill
 * or the eviction. */
static unsigned set_victim(limit_set_t *s, uint64_t now)
{
    uint32_t used = atomic_load_explicit(&s->used, memory_order_relaxed);
    int unconnected = -1;

    if (used < LIMIT_WAYS) {
        atomic_store_explicit(&s->used, used + 1, memory_order_relaxed);
        return used;
    }
    for (unsigned pos = LIMIT_WAYS; pos-- > 0;) {
        unsigned w = order_at(s->order, pos);
        if (way_stale(s, w, now))
            return w;
        if (unconnected < 0 && s->conns[w] == 0)
            unconnected = (int)w;
    }
    uint64_t ev = atomic_load_explicit(&s->evictions, memory_order_relaxed);
    atomic_store_explicit(&s->evictions, ev + 1, memory_order_relaxed);
    return unconnected >= 0 ? (unsigned)unconnected : order_at(s->order, LIMIT_WAYS - 1);
}

/* The way of k in s, taken for it if it was missing (a full bucket, no
 * connection), and made the most recently used. */
static unsigned set_get(limit_set_t *s, uint8_t tag, const limit_key_t *k, uint64_t now)
{
    int found = set_find(s, tag, k);
    unsigned w;

    if (found >= 0) {
        w = (unsigned)found;
    } else {
        w = set_victim(s, now);
        s->tag[w] = tag;
        s->key[w] = *k;
        s->tat[w] = now;
        s->conns[w] = 0;
    }
    set_touch(s, w);
    return w;
}

/* ---- Token buckets (GCRA). */

/* The GCRA form of rate and burst; false when the rate means no limit.
 * The interval is rounded up, so that the rate is never exceeded. Clamping
 * per_ms and the tolerance costs nothing real (a token per 34 years, a
 * burst of 2^41 ms) and bounds every TAT: below now + 2^61 + 2^60 units. */
static bool gcra_of(conf_rate_t rate, unsigned burst, gcra_t *g)
{
    if (rate.count == 0 || rate.per_ms == 0)
        return false;
    uint64_t per = rate.per_ms < LIMIT_PER_MS_MAX ? rate.per_ms : LIMIT_PER_MS_MAX;
    uint64_t span = per << LIMIT_UNIT_SHIFT;
    g->interval = span / rate.count + (span % rate.count != 0);
    uint64_t extra = burst > 1 ? burst - 1 : 0;
    g->tolerance =
        extra > LIMIT_TOLERANCE_MAX / g->interval ? LIMIT_TOLERANCE_MAX : extra * g->interval;
    return true;
}

/* The time now in table units. */
static inline uint64_t now_units(uint64_t now_ms)
{
    return (now_ms < LIMIT_NOW_MAX_MS ? now_ms : LIMIT_NOW_MAX_MS) << LIMIT_UNIT_SHIFT;
}

/* Whether a token is in the bucket whose TAT is tat: 0 and the TAT after
 * taking it in *ret_tat, or the wait in units (> 0) until there is one. A
 * TAT in the past is a bucket refilled past its capacity: it restarts at
 * now, full. */
static inline uint64_t gcra_check(uint64_t tat, uint64_t now, const gcra_t *g, uint64_t *ret_tat)
{
    if (tat < now)
        tat = now;
    if (tat - now > g->tolerance)
        return tat - now - g->tolerance;
    *ret_tat = tat + g->interval;
    return 0;
}

static inline uint64_t units_to_ms_up(uint64_t u)
{
    return (u >> LIMIT_UNIT_SHIFT) + ((u & ((UINT64_C(1) << LIMIT_UNIT_SHIFT) - 1)) != 0);
}

uint64_t limit_take(limit_table_t *t, const limit_key_t *k, conf_rate_t rate, unsigned burst,
                    uint64_t now_ms)
{
    gcra_t g;
    uint8_t tag;

    assert(t && k);
    if (!gcra_of(rate, burst, &g))
        return 0;
    uint64_t now = now_units(now_ms);
    limit_set_t *s = set_of(t, k, &tag);
    set_lock(s);
    unsigned w = set_get(s, tag, k, now);
    uint64_t wait = gcra_check(s->tat[w], now, &g, &s->tat[w]);
    set_unlock(s);
    return wait ? units_to_ms_up(wait) : 0;
}

int limit_conn_acquire(limit_table_t *t, const limit_key_t *k, unsigned max_conns, conf_rate_t rate,
                       unsigned burst, uint64_t now_ms)
{
    gcra_t g;
    uint8_t tag;
    uint64_t tat;
    int r = LIMIT_OK;

    assert(t && k);
    bool limited = gcra_of(rate, burst, &g);
    uint64_t now = now_units(now_ms);
    limit_set_t *s = set_of(t, k, &tag);
    set_lock(s);
    unsigned w = set_get(s, tag, k, now);
    /* UINT32_MAX open connections of one key cannot happen (file
     * descriptors run out first); refusing there keeps the count exact. */
    if ((max_conns != 0 && s->conns[w] >= max_conns) || s->conns[w] == UINT32_MAX) {
        r = LIMIT_CONCURRENT;
    } else if (limited && gcra_check(s->tat[w], now, &g, &tat) != 0) {
        r = LIMIT_RATE;
    } else {
        if (limited)
            s->tat[w] = tat;
        s->conns[w]++;
    }
    set_unlock(s);
    return r;
}

void limit_conn_release(limit_table_t *t, const limit_key_t *k)
{
    uint8_t tag;

    assert(t && k);
    limit_set_t *s = set_of(t, k, &tag);
    set_lock(s);
    int w = set_find(s, tag, k);
    if (w >= 0) {
        if (s->conns[w] > 0)
            s->conns[w]--;
        set_touch(s, (unsigned)w);
    }
    set_unlock(s);
}
