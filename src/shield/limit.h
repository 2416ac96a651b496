/* Limit tables: per-key state for the shield's flood limits (issue 4), the
 * request rate of an address or a header value, and the open connections
 * and connection rate of an address. Worker threads consult a table on
 * every accepted connection and every request, from their event loops, so a
 * call never blocks, never allocates, never makes a system call, and takes
 * tens of nanoseconds.
 *
 * A table has a fixed capacity, all of it allocated (and touched) by
 * limit_table_new(): its memory does not grow however many distinct keys
 * arrive. It is set-associative, like a CPU cache: a keyed hash of the key
 * picks a set of 8 entries (ways), and a key missing from its set takes a
 * free way, else one whose state no longer matters (its bucket is full
 * again and it holds no connection), else evicts the least recently used
 * way, preferring ways without open connections. A flood from millions of
 * addresses therefore evicts cold entries and leaves the keys that keep
 * coming back where they are. Each set has its own spinlock (an atomic
 * flag held for a few dozen instructions), so any number of threads may
 * share a table; threads on different sets never write a common cache line.
 *
 * One entry serves a key's token bucket and its connection count. The bucket
 * is kept as the "generic cell rate algorithm" (GCRA, ITU-T I.371) keeps it:
 * one time, the theoretical arrival time (TAT) of the next request at the
 * configured rate, in units of 2^-20 ms. The bucket holds
 * burst - (TAT - now) / interval tokens, it is full when TAT <= now, and
 * taking a token adds one interval to TAT. This is the same token bucket as
 * counting (fixed-point) tokens and refilling them from the elapsed time,
 * with three advantages: nothing is ever multiplied by the elapsed time, so
 * nothing overflows however long a key sleeps; no fraction of a token is
 * lost to rounding at each refill, which is what makes slow rates (1/h)
 * drift with a token count; and "full" does not depend on the rate, so the
 * table can tell a stale entry from a live one without knowing which limit
 * its caller applies. The interval is rounded up to 2^-20 ms (about 1 ns),
 * so a rate is never exceeded and is undershot by at most 0.05% at 1e6/s.
 *
 * Times are milliseconds of a monotonic clock that the caller passes in
 * (tests pass their own); values up to 2^43 ms (278 years) are exact, later
 * ones are clamped. Calls from several threads may pass slightly different
 * times (each read its own clock): a time earlier than one already seen
 * only makes that call a little stricter. */
#ifndef SURETY_SHIELD_LIMIT_H
#define SURETY_SHIELD_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct sockaddr;

/* What a limit counts by: an address, or a keyed hash of some bytes. Make
 * them with limit_key_from_addr() or limit_key_from_bytes(). */
typedef struct {
    uint8_t b[16];
} limit_key_t;

typedef struct limit_table limit_table_t;

/* The number of ways in a set; capacities are multiples of it. */
#define LIMIT_WAYS 8

/* A table of at least capacity (>= 1) entries: the capacity is rounded up
 * to a power-of-two number of sets of LIMIT_WAYS entries (1000 becomes
 * 1024), 32 bytes of memory each. Allocates and clears all of its memory
 * here, and draws the secret of its keyed hashes from getrandom(). NULL with
 * errno set on failure (EINVAL for capacity 0, ENOMEM, or getrandom's
 * error). The caller frees it with limit_table_free() once no thread uses it
 * any more. */
limit_table_t *limit_table_new(size_t capacity);
void limit_table_free(limit_table_t *t);

/* Entries, after rounding. */
size_t limit_table_capacity(const limit_table_t *t);
/* Bytes allocated for the table, constant for its life. */
size_t limit_table_memory(const limit_table_t *t);
/* Entries that hold a key, stale ones included (they are reused first), at
 * most the capacity. Evictions: keys dropped while their state still
 * mattered (a bucket not full yet, or open connections), the sign of a
 * table too small for the keys it sees. Both sum per-set counters without
 * locking (one cache line per 8 entries: about a millisecond for a million
 * entries), so they are for metrics, not for the request path. */
size_t limit_table_used(const limit_table_t *t);
uint64_t limit_table_evictions(const limit_table_t *t);

/* The key of sa's address (the port is ignored). An AF_INET address is
 * stored as its IPv4-mapped IPv6 address ::ffff:a.b.c.d, so that a client
 * seen through an IPv4 socket and through a dual-stack IPv6 socket is one
 * key; AF_INET6 is taken as it is (aggregating IPv6 clients by prefix is the
 * caller's choice: mask the address first). Any other family gives the
 * all-zero key (::), which all such clients share. */
void limit_key_from_addr(limit_key_t *k, const struct sockaddr *sa);

/* The key of the bytes p[0, n) (a header value, a route name): their
 * SipHash-2-4 128-bit tag under t's random secret, so that nobody who does
 * not know the secret can choose values that collide. Such a key is valid in
 * t only (another table has another secret); it equals an address key only
 * by a 2^-128 chance. About 30 ns for a short value; safe from any thread
 * (it only reads the secret). */
void limit_key_from_bytes(const limit_table_t *t, limit_key_t *k, const void *p, size_t n);

/* Takes one token from k's bucket. The bucket holds at most burst tokens
 * (0 counts as 1) and refills at rate.count tokens per rate.per_ms ms; a key
 * not in the table starts with a full bucket. Returns 0 when the token was
 * there (the request is allowed), else the number of ms (>= 1) until a
 * token will be, for a Retry-After. A refused call takes nothing, but marks
 * k recently used like any call, so that a client kept refused is the last
 * whose state a flood evicts. A rate with count or per_ms 0 means no limit:
 * 0, without looking at the table. Safe from any thread; does not block
 * (beyond another thread's few dozen instructions on the same set),
 * allocate or make system calls. */
uint64_t limit_take(limit_table_t *t, const limit_key_t *k, conf_rate_t rate, unsigned burst,
                    uint64_t now_ms) __attribute__((warn_unused_result));

/* Answers of limit_conn_acquire(). */
enum {
    LIMIT_OK = 0,         /* counted: release it when the connection closes */
    LIMIT_CONCURRENT = 1, /* max_conns connections of k are already open */
    LIMIT_RATE = 2,       /* k opened connections faster than rate/burst */
};

/* Admits a new connection of k if k has fewer than max_conns open (0: no
 * limit) and a token in its bucket for rate/burst (as limit_take(); a rate
 * with count or per_ms 0: no limit). LIMIT_OK counts the connection and
 * takes the token: the caller then calls limit_conn_release(t, k) exactly
 * once, when the connection closes. LIMIT_CONCURRENT and LIMIT_RATE refuse,
 * count nothing and take no token (the concurrency limit is checked first).
 * Same thread rules as limit_take(). The count is per entry: if a flood
 * evicts k while its connections are open (only once every way of its set
 * holds open connections), their count is lost, and the releases that
 * follow are no-ops. */
int limit_conn_acquire(limit_table_t *t, const limit_key_t *k, unsigned max_conns, conf_rate_t rate,
                       unsigned burst, uint64_t now_ms) __attribute__((warn_unused_result));

/* Closes one connection counted by limit_conn_acquire(). A no-op when k is
 * no longer in the table or has no connection counted: the count never goes
 * below zero. (If k was evicted with connections open and has come back
 * since, their releases lower its new count: the limit is looser for a
 * while, never stuck.) Same thread rules as limit_take(). */
void limit_conn_release(limit_table_t *t, const limit_key_t *k);

#endif
