/* Bans, offence memory and strikes (see ban.h for the contract).
 *
 * The three tables share one structure, amap_t: the keys live in a dense
 * array, which the owner mirrors with a parallel array of records, and an
 * open-addressing index (linear probing, at most half full) maps a key to
 * its position. Removal moves the last key into the hole, so the arrays
 * stay dense and a random position is a fair sample for eviction, and
 * backward-shift deletion keeps the index free of tombstones. The hash is
 * seeded from getrandom() at creation: addresses are chosen by clients,
 * and an IPv6 client can choose many.
 *
 * The ban table adds a binary min-heap on `until` (positions kept in the
 * records, as libuv's timer heap does), which gives both the next expiry
 * and the ban to drop when the table is full in O(log n). */
#include "shield/ban.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define AMAP_NONE UINT32_MAX
/* Bans and strikes are dropped rather than sampled from all n: eight
 * random candidates find one among the oldest few percent. */
#define EVICT_SAMPLES 8
/* A ban line is about 200 bytes; longer ones are not ours. */
#define BAN_LINE_MAX 1024

typedef struct {
    ban_addr_t *keys; /* keys[0, n), dense */
    uint32_t *slots;  /* key index + 1; 0 marks an empty slot */
    uint32_t n, cap, max;
    uint32_t mask; /* number of slots - 1; slots >= 2 * cap */
    uint64_t seed[2];
} amap_t;

typedef struct {
    uint64_t forget_at;
    uint32_t offences;
} offender_t;

struct ban_table {
    pthread_rwlock_t lock;
    atomic_size_t count; /* bans.n, for the lock-free empty check */
    amap_t bans;
    ban_t *recs;    /* parallel to bans.keys */
    uint32_t *pos;  /* recs[i] is heap[pos[i]] */
    uint32_t *heap; /* heap[0, bans.n): indices into recs, min-heap on until */
    amap_t offenders;
    offender_t *offs; /* parallel to offenders.keys */
    uint64_t rng;
};

typedef struct {
    uint64_t t[BAN_STRIKES_MAX]; /* a ring: oldest at head */
    uint64_t last;               /* the newest strike, for eviction */
    uint8_t n, head;
} striker_t;

struct ban_strikes {
    amap_t map;
    striker_t *recs;
    uint64_t rng;
};

/* ---- addresses ---- */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool ban_addr_is_v4(const ban_addr_t *a)
{
    return memcmp(a->b, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

bool ban_addr_from_sockaddr(const struct sockaddr *sa, ban_addr_t *ret)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        memcpy(ret->b, v4_mapped_prefix, 12);
        memcpy(ret->b + 12, &s4->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(ret->b, &s6->sin6_addr, 16);
        return true;
    }
    return false;
}

int ban_addr_parse(const char *text, ban_addr_t *ret)
{
    ban_addr_t a;
    if (!text)
        return -EINVAL;
    if (strchr(text, ':')) {
        if (inet_pton(AF_INET6, text, a.b) != 1)
            return -EINVAL;
    } else {
        memcpy(a.b, v4_mapped_prefix, 12);
        if (inet_pton(AF_INET, text, a.b + 12) != 1)
            return -EINVAL;
    }
    *ret = a;
    return 0;
}

void ban_addr_format(const ban_addr_t *a, char *out, size_t n)
{
    if (ban_addr_is_v4(a))
        inet_ntop(AF_INET, a->b + 12, out, (socklen_t)n);
    else
        inet_ntop(AF_INET6, a->b, out, (socklen_t)n);
}

uint64_t ban_duration(uint64_t for_ms, uint64_t max_ms, uint32_t offences)
{
    uint64_t cap = max_ms && max_ms < BAN_FOR_MAX_MS ? max_ms : BAN_FOR_MAX_MS;
    uint64_t d = for_ms < cap ? for_ms : cap;
    /* Doubling past the cap is the cap; stop before the shift overflows. */
    for (uint32_t i = 1; i < offences && d < cap; i++)
        d = d > cap / 2 ? cap : d * 2;
    return d;
}

/* ---- the address map ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t random_seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = mix64((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^ (uintptr_t)&v);
    }
    return v | 1; /* xorshift state must not be 0 */
}

/* xorshift64*: the sample picker for eviction. */
static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545f4914f6cdd1dULL >> 32) % n);
}

static void amap_init(amap_t *m, uint32_t max)
{
    memset(m, 0, sizeof(*m));
    m->max = max;
    m->seed[0] = random_seed();
    m->seed[1] = random_seed();
}

static void amap_deinit(amap_t *m)
{
    free(m->keys);
    free(m->slots);
}

static uint32_t amap_home(const amap_t *m, const ban_addr_t *k)
{
    uint64_t w0, w1;
    memcpy(&w0, k->b, 8);
    memcpy(&w1, k->b + 8, 8);
    return (uint32_t)mix64(mix64(w0 ^ m->seed[0]) ^ w1 ^ m->seed[1]) & m->mask;
}

static uint32_t amap_find(const amap_t *m, const ban_addr_t *k)
{
    if (m->n == 0)
        return AMAP_NONE;
    for (uint32_t i = amap_home(m, k);; i = (i + 1) & m->mask) {
        uint32_t s = m->slots[i];
        if (s == 0)
            return AMAP_NONE;
        if (memcmp(&m->keys[s - 1], k, sizeof(*k)) == 0)
            return s - 1;
    }
}

/* The slot that holds key index idx, which must be in the map. */
static uint32_t amap_slot_of(const amap_t *m, uint32_t idx)
{
    uint32_t i = amap_home(m, &m->keys[idx]);
    while (m->slots[i] != idx + 1)
        i = (i + 1) & m->mask;
    return i;
}

static void amap_link(amap_t *m, uint32_t idx)
{
    uint32_t i = amap_home(m, &m->keys[idx]);
    while (m->slots[i])
        i = (i + 1) & m->mask;
    m->slots[i] = idx + 1;
}

/* The capacity the next growth gives, 0 when the map is at its max. */
static uint32_t amap_next_cap(const amap_t *m)
{
    if (m->cap >= m->max)
        return 0;
    uint32_t cap = m->cap ? m->cap * 2 : 16;
    return cap < m->max ? cap : m->max;
}

/* Grows keys to cap and rebuilds the index. -ENOMEM leaves m as it was. */
static int amap_grow(amap_t *m, uint32_t cap)
{
    uint32_t nslots = 32;
    while (nslots < 2 * cap)
        nslots *= 2;
    ban_addr_t *keys = realloc(m->keys, (size_t)cap * sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    m->keys = keys;
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    free(m->slots);
    m->slots = slots;
    m->mask = nslots - 1;
    m->cap = cap;
    for (uint32_t i = 0; i < m->n; i++)
        amap_link(m, i);
    return 0;
}

/* Adds k, which is not in m; the caller made room (n < cap). */
static uint32_t amap_add(amap_t *m, const ban_addr_t *k)
{
    assert(m->n < m->cap);
    m->keys[m->n] = *k;
    amap_link(m, m->n);
    return m->n++;
}

/* Removes key index idx and moves the last key into its place. Returns
 * the index the moved key had (== idx when idx was last), so that the
 * owner moves its record the same way. */
static uint32_t amap_del(amap_t *m, uint32_t idx)
{
    uint32_t i = amap_slot_of(m, idx);
    /* Backward shift: a later key of the same probe run moves into the
     * hole when its home is not between the hole and where it sits. */
    for (uint32_t j = (i + 1) & m->mask; m->slots[j]; j = (j + 1) & m->mask) {
        uint32_t home = amap_home(m, &m->keys[m->slots[j] - 1]);
        if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = 0;
    uint32_t last = --m->n;
    if (idx != last) {
        m->keys[idx] = m->keys[last];
        m->slots[amap_slot_of(m, last)] = idx + 1;
    }
    return last;
}

/* ---- the ban heap ---- */

static bool heap_less(const ban_table_t *t, uint32_t a, uint32_t b)
{
    return t->recs[t->heap[a]].until < t->recs[t->heap[b]].until;
}

static void heap_swap(ban_table_t *t, uint32_t a, uint32_t b)
{
    uint32_t x = t->heap[a];
    t->heap[a] = t->heap[b];
    t->heap[b] = x;
    t->pos[t->heap[a]] = a;
    t->pos[t->heap[b]] = b;
}

/* Restores the heap order around position i, whose until changed. */
static void heap_fix(ban_table_t *t, uint32_t i, uint32_t n)
{
    while (i > 0 && heap_less(t, i, (i - 1) / 2)) {
        heap_swap(t, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < n && heap_less(t, l, m))
            m = l;
        if (l + 1 < n && heap_less(t, l + 1, m))
            m = l + 1;
        if (m == i)
            break;
        heap_swap(t, i, m);
        i = m;
    }
}

/* Removes recs[idx] from the heap and the map, keeping all three dense. */
static void table_remove(ban_table_t *t, uint32_t idx)
{
    uint32_t n = t->bans.n, p = t->pos[idx];
    if (p != n - 1) {
        heap_swap(t, p, n - 1);
        heap_fix(t, p, n - 1);
    }
    uint32_t last = amap_del(&t->bans, idx);
    if (last != idx) {
        t->recs[idx] = t->recs[last];
        t->pos[idx] = t->pos[last];
        t->heap[t->pos[idx]] = idx;
    }
}

/* Makes room for one more ban below BAN_MAX. -ENOMEM leaves t usable. */
static int table_reserve(ban_table_t *t)
{
    if (t->bans.n < t->bans.cap)
        return 0;
    uint32_t cap = amap_next_cap(&t->bans);
    if (cap == 0)
        return -ENOSPC;
    /* Larger parallel arrays are harmless if a later step fails. */
    ban_t *recs = realloc(t->recs, (size_t)cap * sizeof(*recs));
    if (!recs)
        return -ENOMEM;
    t->recs = recs;
    uint32_t *pos = realloc(t->pos, (size_t)cap * sizeof(*pos));
    if (!pos)
        return -ENOMEM;
    t->pos = pos;
    uint32_t *heap = realloc(t->heap, (size_t)cap * sizeof(*heap));
    if (!heap)
        return -ENOMEM;
    t->heap = heap;
    return amap_grow(&t->bans, cap);
}

/* ---- offence memory ---- */

static void offenders_remove(ban_table_t *t, uint32_t idx)
{
    uint32_t last = amap_del(&t->offenders, idx);
    if (last != idx)
        t->offs[idx] = t->offs[last];
}

/* Records offences for a until forget_at. Out of memory, the record is
 * lost: the next ban of a is then shorter, nothing worse. */
static void offenders_put(ban_table_t *t, const ban_addr_t *a, uint32_t offences,
                          uint64_t forget_at)
{
    amap_t *m = &t->offenders;
    uint32_t idx = amap_find(m, a);
    if (idx != AMAP_NONE) {
        offender_t *o = &t->offs[idx];
        o->offences = offences > o->offences ? offences : o->offences;
        o->forget_at = forget_at > o->forget_at ? forget_at : o->forget_at;
        return;
    }
    if (m->n >= m->max) {
        uint32_t victim = rng_below(&t->rng, m->n);
        for (int i = 1; i < EVICT_SAMPLES; i++) {
            uint32_t c = rng_below(&t->rng, m->n);
            if (t->offs[c].forget_at < t->offs[victim].forget_at)
                victim = c;
        }
        offenders_remove(t, victim);
    } else if (m->n == m->cap) {
        uint32_t cap = amap_next_cap(m);
        offender_t *offs = realloc(t->offs, (size_t)cap * sizeof(*offs));
        if (!offs)
            return;
        t->offs = offs;
        if (amap_grow(m, cap) < 0)
            return;
    }
    idx = amap_add(m, a);
    t->offs[idx].offences = offences;
    t->offs[idx].forget_at = forget_at;
}

/* ---- the ban table ---- */

ban_table_t *ban_table_new(void)
{
    pthread_rwlockattr_t attr;
    ban_table_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    /* Workers read on every accept; a writer (a new ban) must still get
     * in, so waiting writers go before new readers. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int r = pthread_rwlock_init(&t->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (r != 0) {
        free(t);
        return NULL;
    }
    atomic_init(&t->count, 0);
    amap_init(&t->bans, BAN_MAX);
    amap_init(&t->offenders, BAN_OFFENDERS_MAX);
    t->rng = random_seed();
    return t;
}

void ban_table_free(ban_table_t *t)
{
    if (!t)
        return;
    pthread_rwlock_destroy(&t->lock);
    amap_deinit(&t->bans);
    amap_deinit(&t->offenders);
    free(t->recs);
    free(t->pos);
    free(t->heap);
    free(t->offs);
    free(t);
}

uint64_t ban_table_until(ban_table_t *t, const ban_addr_t *a)
{
    if (atomic_load_explicit(&t->count, memory_order_relaxed) == 0)
        return 0;
    uint64_t until = 0;
    pthread_rwlock_rdlock(&t->lock);
    uint32_t idx = amap_find(&t->bans, a);
    if (idx != AMAP_NONE)
        until = t->recs[idx].until;
    pthread_rwlock_unlock(&t->lock);
    return until;
}

size_t ban_table_count(ban_table_t *t)
{
    return atomic_load_explicit(&t->count, memory_order_relaxed);
}

uint32_t ban_table_offences(ban_table_t *t, const ban_addr_t *a, uint64_t now)
{
    uint32_t n = 0;
    pthread_rwlock_rdlock(&t->lock);
    uint32_t idx = amap_find(&t->offenders, a);
    if (idx != AMAP_NONE && t->offs[idx].forget_at > now)
        n = t->offs[idx].offences;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

void ban_table_remember(ban_table_t *t, const ban_addr_t *a, uint32_t offences, uint64_t forget_at)
{
    pthread_rwlock_wrlock(&t->lock);
    offenders_put(t, a, offences, forget_at);
    pthread_rwlock_unlock(&t->lock);
}

int ban_table_put(ban_table_t *t, const ban_t *b, ban_t *ret_replaced)
{
    int r = BAN_PUT_NEW;
    pthread_rwlock_wrlock(&t->lock);
    uint32_t idx = amap_find(&t->bans, &b->addr);
    if (idx != AMAP_NONE) {
        t->recs[idx] = *b;
        heap_fix(t, t->pos[idx], t->bans.n);
        r = BAN_PUT_UPDATED;
        goto remember;
    }
    if (t->bans.n >= BAN_MAX) {
        *ret_replaced = t->recs[t->heap[0]];
        table_remove(t, t->heap[0]);
        r = BAN_PUT_REPLACED;
    } else if (table_reserve(t) < 0) {
        r = -ENOMEM;
        goto out;
    }
    idx = amap_add(&t->bans, &b->addr);
    t->recs[idx] = *b;
    t->pos[idx] = idx;
    t->heap[idx] = idx; /* the heap has as many entries as the map */
    heap_fix(t, idx, t->bans.n);
remember:
    offenders_put(t, &b->addr, b->offences, b->until + BAN_MEMORY_MS);
    atomic_store_explicit(&t->count, t->bans.n, memory_order_relaxed);
out:
    pthread_rwlock_unlock(&t->lock);
    return r;
}

int ban_table_lift(ban_table_t *t, const ban_addr_t *a, ban_t *ret_lifted)
{
    int r = 0;
    pthread_rwlock_wrlock(&t->lock);
    uint32_t idx = amap_find(&t->bans, a);
    if (idx == AMAP_NONE) {
        r = -ENOENT;
        goto out;
    }
    if (ret_lifted)
        *ret_lifted = t->recs[idx];
    table_remove(t, idx);
    atomic_store_explicit(&t->count, t->bans.n, memory_order_relaxed);
out:
    pthread_rwlock_unlock(&t->lock);
    return r;
}

size_t ban_table_expire(ban_table_t *t, uint64_t now, ban_t *out, size_t max)
{
    size_t k = 0;
    pthread_rwlock_wrlock(&t->lock);
    while (k < max && t->bans.n > 0 && t->recs[t->heap[0]].until <= now) {
        out[k++] = t->recs[t->heap[0]];
        table_remove(t, t->heap[0]);
    }
    atomic_store_explicit(&t->count, t->bans.n, memory_order_relaxed);
    pthread_rwlock_unlock(&t->lock);
    return k;
}

uint64_t ban_table_next_expiry(ban_table_t *t)
{
    pthread_rwlock_rdlock(&t->lock);
    uint64_t u = t->bans.n ? t->recs[t->heap[0]].until : UINT64_MAX;
    pthread_rwlock_unlock(&t->lock);
    return u;
}

int ban_table_snapshot(ban_table_t *t, ban_t **ret, size_t *ret_n)
{
    int r = 0;
    ban_t *copy = NULL;
    pthread_rwlock_rdlock(&t->lock);
    size_t n = t->bans.n;
    if (n) {
        copy = malloc(n * sizeof(*copy));
        if (!copy) {
            r = -ENOMEM;
            goto out;
        }
        memcpy(copy, t->recs, n * sizeof(*copy));
    }
    *ret = copy;
    *ret_n = n;
out:
    pthread_rwlock_unlock(&t->lock);
    return r;
}

/* ---- strikes ---- */

ban_strikes_t *ban_strikes_new(void)
{
    ban_strikes_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    amap_init(&st->map, BAN_STRIKERS_MAX);
    st->rng = random_seed();
    return st;
}

void ban_strikes_free(ban_strikes_t *st)
{
    if (!st)
        return;
    amap_deinit(&st->map);
    free(st->recs);
    free(st);
}

size_t ban_strikes_count(const ban_strikes_t *st)
{
    return st->map.n;
}

static void strikes_remove(ban_strikes_t *st, uint32_t idx)
{
    uint32_t last = amap_del(&st->map, idx);
    if (last != idx)
        st->recs[idx] = st->recs[last];
}

/* The record of a, created empty when missing (evicting when full); NULL
 * when out of memory. */
static striker_t *strikes_get(ban_strikes_t *st, const ban_addr_t *a)
{
    amap_t *m = &st->map;
    uint32_t idx = amap_find(m, a);
    if (idx != AMAP_NONE)
        return &st->recs[idx];
    if (m->n >= m->max) {
        uint32_t victim = rng_below(&st->rng, m->n);
        for (int i = 1; i < EVICT_SAMPLES; i++) {
            uint32_t c = rng_below(&st->rng, m->n);
            if (st->recs[c].last < st->recs[victim].last)
                victim = c;
        }
        strikes_remove(st, victim);
    } else if (m->n == m->cap) {
        uint32_t cap = amap_next_cap(m);
        striker_t *recs = realloc(st->recs, (size_t)cap * sizeof(*recs));
        if (!recs)
            return NULL;
        st->recs = recs;
        if (amap_grow(m, cap) < 0)
            return NULL;
    }
    idx = amap_add(m, a);
    st->recs[idx].n = 0;
    st->recs[idx].head = 0;
    return &st->recs[idx];
}

bool ban_strikes_add(ban_strikes_t *st, const ban_addr_t *a, uint64_t now, unsigned after,
                     uint64_t within_ms)
{
    striker_t *s = strikes_get(st, a);
    if (!s)
        return false;
    if (s->n < BAN_STRIKES_MAX) {
        s->t[(s->head + s->n) % BAN_STRIKES_MAX] = now;
        s->n++;
    } else {
        s->t[s->head] = now;
        s->head = (uint8_t)((s->head + 1) % BAN_STRIKES_MAX);
    }
    s->last = now;
    if (after < 1)
        after = 1;
    if (after > BAN_STRIKES_MAX)
        after = BAN_STRIKES_MAX;
    if (s->n < after)
        return false;
    /* The after-th newest strike decides: the window slides with now. A
     * clock that stepped back makes old strikes count as new. */
    uint64_t oldest = s->t[(s->head + s->n - after) % BAN_STRIKES_MAX];
    uint64_t age = now > oldest ? now - oldest : 0;
    if (age >= within_ms)
        return false;
    strikes_remove(st, amap_find(&st->map, a));
    return true;
}

/* ---- the ban file ---- */

int ban_file_mkdir(const char *path)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0750) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* A JSON string for s, or "?" when s is not valid UTF-8 (reasons and
 * policy names are tokens; the security center cleans them first). */
static json_t *json_str(const char *s)
{
    json_t *j = json_string(s);
    return j ? j : json_string("?");
}

static json_t *ban_to_json(const ban_t *b)
{
    char addr[BAN_ADDR_TEXT_MAX];
    json_t *o = json_object();
    if (!o)
        return NULL;
    ban_addr_format(&b->addr, addr, sizeof(addr));
    json_object_set_new(o, "address", json_string(addr));
    json_object_set_new(o, "since", json_integer((json_int_t)b->since));
    json_object_set_new(o, "until", json_integer((json_int_t)b->until));
    json_object_set_new(o, "offences", json_integer(b->offences));
    json_object_set_new(o, "reason", json_str(b->reason));
    if (b->policy[0])
        json_object_set_new(o, "policy", json_str(b->policy));
    return o;
}

/* fsync of the directory holding path, so that the rename is durable. */
static int sync_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

/* Writes the lines to f; 0 or -ENOMEM / -EIO. */
static int write_bans(FILE *f, const ban_t *bans, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *o = ban_to_json(&bans[i]);
        if (!o)
            return -ENOMEM;
        int r = json_dumpf(o, f, JSON_COMPACT);
        json_decref(o);
        if (r < 0 || fputc('\n', f) == EOF)
            return -EIO;
    }
    return fflush(f) == EOF ? -EIO : 0;
}

int ban_file_save(const char *path, const ban_t *bans, size_t n, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    const char *what = "cannot create its directory";
    FILE *f = NULL;
    int r;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        r = -ENAMETOOLONG;
        what = "path too long";
        goto out;
    }
    r = ban_file_mkdir(path);
    if (r < 0)
        goto out;
    what = "cannot write";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    f = fdopen(fd, "w");
    if (!f) {
        r = -errno;
        close(fd);
        goto out;
    }
    r = write_bans(f, bans, n);
    if (r == 0 && fsync(fileno(f)) < 0)
        r = -errno;
    if (fclose(f) == EOF && r == 0)
        r = -errno;
    f = NULL;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        goto out;
    }
    what = "cannot sync its directory";
    r = sync_dir(path);
out:
    if (r < 0 && err && errlen)
        snprintf(err, errlen, "%s: %s: %s", path, what, strerror(-r));
    return r;
}

/* A string member of o copied into out (cut to fit); absent is empty.
 * false when present but not a string. */
static bool member_str(json_t *o, const char *key, char *out, size_t n)
{
    json_t *v = json_object_get(o, key);
    out[0] = '\0';
    if (!v)
        return true;
    if (!json_is_string(v))
        return false;
    snprintf(out, n, "%s", json_string_value(v));
    return true;
}

static bool member_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Parses one line into b; NULL, or what is wrong with it. */
static const char *parse_ban(const char *line, ban_t *b)
{
    const char *why = NULL;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
    json_t *addr = json_object_get(o, "address");
    uint64_t offences;

    memset(b, 0, sizeof(*b));
    if (!json_is_object(o))
        why = "not a JSON object";
    else if (!json_is_string(addr) || ban_addr_parse(json_string_value(addr), &b->addr) < 0)
        why = "no valid \"address\"";
    else if (!member_u64(o, "since", &b->since) || !member_u64(o, "until", &b->until) ||
             b->until <= b->since)
        why = "no valid \"since\" and \"until\"";
    else if (!member_u64(o, "offences", &offences) || offences < 1 || offences > UINT32_MAX)
        why = "no valid \"offences\"";
    else if (!member_str(o, "reason", b->reason, sizeof(b->reason)) ||
             !member_str(o, "policy", b->policy, sizeof(b->policy)))
        why = "\"reason\" or \"policy\" is not a string";
    else
        b->offences = (uint32_t)offences;
    json_decref(o);
    return why;
}

/* Reads one line into buf (without its newline). Returns its length, -1 at
 * end of file, -ENAMETOOLONG for a longer line (consumed) or another
 * negative errno when reading fails (-EISDIR for a directory). */
static long read_line(FILE *f, char *buf, size_t size)
{
    size_t n = 0;
    bool too_long = false;
    int c;
    errno = 0;
    while ((c = getc_unlocked(f)) != EOF && c != '\n') {
        if (n < size - 1)
            buf[n++] = (char)c;
        else
            too_long = true;
    }
    if (ferror(f))
        return errno > 0 && errno != ENAMETOOLONG ? -errno : -EIO;
    if (c == EOF && n == 0 && !too_long)
        return -1;
    buf[n] = '\0';
    return too_long ? -ENAMETOOLONG : (long)n;
}

/* Adds one parsed ban: running bans to the table, expired ones to the
 * offence memory only. */
static int load_one(ban_table_t *t, const ban_t *b, uint64_t now)
{
    ban_t replaced;
    if (b->until > now)
        return ban_table_put(t, b, &replaced) < 0 ? -ENOMEM : 0;
    if (b->until + BAN_MEMORY_MS > now)
        ban_table_remember(t, &b->addr, b->offences, b->until + BAN_MEMORY_MS);
    return 0;
}

int ban_file_load(ban_table_t *t, const char *path, uint64_t now, char *err, size_t errlen)
{
    char line[BAN_LINE_MAX];
    unsigned long lineno = 0;
    int r = 0;
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        r = -errno;
        goto out;
    }
    for (;;) {
        long got = read_line(f, line, sizeof(line));
        if (got == -1)
            break;
        lineno++;
        if (got < 0 && got != -ENAMETOOLONG) {
            r = (int)got;
            goto out;
        }
        if (got == -ENAMETOOLONG) {
            log_warn("%s:%lu: skipped, line longer than %d bytes", path, lineno, BAN_LINE_MAX - 1);
            continue;
        }
        if (strspn(line, " \t\r") == (size_t)got)
            continue;
        ban_t b;
        const char *why = parse_ban(line, &b);
        if (why) {
            log_warn("%s:%lu: skipped, %s", path, lineno, why);
            continue;
        }
        r = load_one(t, &b, now);
        if (r < 0)
            goto out;
    }
out:
    if (r < 0 && err && errlen)
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
    if (f)
        fclose(f);
    return r;
}
