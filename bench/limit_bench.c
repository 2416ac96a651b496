/* Speed of the shield's limit tables (src/shield/limit.c), against issue
 * 4's budget of tens of nanoseconds per call on the accept and request
 * paths. Times limit_take() with 1 and 2 threads sharing one table:
 *
 *   hot shared: 16 keys cycled (a few busy clients), every call a hit in
 *          cache; with 2 threads both cycle the same keys, so every call
 *          takes the set's cache lines from the other core;
 *   hot own: with 2 threads, each cycles 16 keys of its own (clients spread
 *          over workers): threads on different sets share no cache line;
 *   flood: a new address on every call (a key is never seen twice), into
 *          tables of 1M entries (32 MiB, beyond the caches: one cache miss
 *          to memory per call), 64K entries (2 MiB) and 1K entries (32 KiB,
 *          in cache): every call a miss that reuses or evicts a way.
 *
 * plus, with 1 thread, a limit_conn_acquire()+limit_conn_release() pair on
 * hot keys and limit_key_from_bytes() of a 24-byte value. The clock is fake
 * (1 ms per 1000 calls). Build in a release build without sanitizers:
 *
 *   meson setup build-rel --buildtype=release && meson compile -C build-rel limit_bench
 *   ./build-rel/src/shield/limit_bench [CALLS]     (per thread, default 20000000)
 *
 * The machine is shared with the rest of the system: run it a few times and
 * read the lowest figures. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shield/limit.h"

#define HOT_KEYS 16

typedef enum { CASE_HOT, CASE_HOT_OWN, CASE_FLOOD, CASE_CONN, CASE_BYTES } bench_case_t;

typedef struct {
    limit_table_t *t;
    bench_case_t what;
    long calls;
    unsigned id;
    pthread_barrier_t *start;
    double ns;        /* per call, measured by this thread */
    unsigned long ok; /* allowed calls, so that nothing is optimized away */
} worker_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An address key in 2001:db8::/32 whose low 64 bits are i, with the thread
 * in bits 64-71 so that two threads' floods are distinct addresses. */
static void key_n(limit_key_t *k, unsigned id, uint64_t i)
{
    memset(k, 0, sizeof(*k));
    k->b[0] = 0x20;
    k->b[1] = 0x01;
    k->b[2] = 0x0d;
    k->b[3] = 0xb8;
    k->b[7] = (uint8_t)id;
    for (int j = 0; j < 8; j++)
        k->b[15 - j] = (uint8_t)(i >> (8 * j));
}

static unsigned long run_case(worker_t *w)
{
    const conf_rate_t rate = {100, 1000};
    limit_key_t hot[HOT_KEYS], k;
    unsigned long ok = 0;

    for (unsigned i = 0; i < HOT_KEYS; i++)
        key_n(&hot[i], w->what == CASE_HOT_OWN ? w->id + 1 : 0, i);
    for (long i = 0; i < w->calls; i++) {
        uint64_t now = (uint64_t)i / 1000;
        switch (w->what) {
        case CASE_HOT:
        case CASE_HOT_OWN:
            ok += limit_take(w->t, &hot[i % HOT_KEYS], rate, 50, now) == 0;
            break;
        case CASE_FLOOD:
            key_n(&k, w->id + 100, (uint64_t)i);
            ok += limit_take(w->t, &k, rate, 50, now) == 0;
            break;
        case CASE_CONN:
            if (limit_conn_acquire(w->t, &hot[i % HOT_KEYS], 100, rate, 50, now) == LIMIT_OK) {
                limit_conn_release(w->t, &hot[i % HOT_KEYS]);
                ok++;
            }
            break;
        case CASE_BYTES: {
            char value[24] = "Bearer 0123456789abcdef";
            memcpy(value + 16, &i, sizeof(i));
            limit_key_from_bytes(w->t, &k, value, sizeof(value));
            ok += k.b[0] & 1;
            break;
        }
        }
    }
    return ok;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    pthread_barrier_wait(w->start);
    double t0 = now_s();
    w->ok = run_case(w);
    w->ns = (now_s() - t0) * 1e9 / (double)w->calls;
    return NULL;
}

/* Runs what on nthreads threads sharing a new table of capacity entries;
 * prints the mean ns per call of one thread, and the calls per second of
 * all of them together. */
static int bench(const char *name, bench_case_t what, size_t capacity, unsigned nthreads,
                 long calls)
{
    pthread_t th[2];
    worker_t w[2];
    pthread_barrier_t start;
    double ns = 0, rate = 0;

    limit_table_t *t = limit_table_new(capacity);
    if (!t) {
        perror("limit_bench: limit_table_new");
        return -1;
    }
    pthread_barrier_init(&start, NULL, nthreads);
    for (unsigned i = 0; i < nthreads; i++) {
        w[i] = (worker_t){.t = t, .what = what, .calls = calls, .id = i, .start = &start};
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0) {
            perror("limit_bench: pthread_create");
            return -1;
        }
    }
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        ns += w[i].ns / nthreads;
        rate += 1e9 / w[i].ns;
    }
    printf("%-21s %u thread%s  %6.1f ns/call  %6.1f M calls/s  table %zu entries (%zu KiB), "
           "used %zu, evictions %llu\n",
           name, nthreads, nthreads > 1 ? "s" : " ", ns, rate / 1e6, limit_table_capacity(t),
           limit_table_memory(t) / 1024, limit_table_used(t),
           (unsigned long long)limit_table_evictions(t));
    pthread_barrier_destroy(&start);
    limit_table_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 20000000;
    int r = 0;

    if (calls <= 0) {
        fprintf(stderr, "usage: limit_bench [CALLS per thread]\n");
        return 2;
    }
    for (unsigned n = 1; n <= 2; n++) {
        r |= bench(n == 1 ? "take hot" : "take hot shared", CASE_HOT, 1 << 20, n, calls);
        if (n > 1)
            r |= bench("take hot own", CASE_HOT_OWN, 1 << 20, n, calls);
        r |= bench("take flood 1M table", CASE_FLOOD, 1 << 20, n, calls);
        r |= bench("take flood 64K table", CASE_FLOOD, 1 << 16, n, calls);
        r |= bench("take flood 1K table", CASE_FLOOD, 1 << 10, n, calls);
    }
    r |= bench("acquire+release hot", CASE_CONN, 1 << 20, 1, calls);
    r |= bench("key_from_bytes (24 B)", CASE_BYTES, 8, 1, calls);
    return r ? 1 : 0;
}
