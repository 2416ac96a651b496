/* A store writer for the crash test (tests/integration/test_store_crash.py).
 *
 *   crash_writer PATH BASE [normal|full] [COUNT]
 *
 * Opens the store at PATH and submits, in a loop, row n = BASE+1, BASE+2,
 * ...: an event of kind "crash" whose subject is n, an SLI sample for source
 * "crash" at ts T0+n (1 request, n%2 errors, one count in bucket n%4) and a
 * probe result. Each time store_acked() passes an event's sequence number,
 * it prints that event's n on its own line and flushes: a line on stdout
 * means "this row was acknowledged". The test kills it with SIGKILL at a
 * random moment and checks that every printed n is in the file.
 *
 * Without COUNT it runs until killed; with COUNT it stops after COUNT rows,
 * closes the store and exits 0. Errors go to stderr, exit 1. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

#define T0 1795000000LL
/* Events submitted but not yet acknowledged, at most: the queue's size. */
#define PENDING_MAX 65536

static const double bounds[4] = {0.01, 0.1, 1, INFINITY};

typedef struct {
    uint64_t seq;
    unsigned long long n;
} pending_t;

static pending_t pending[PENDING_MAX];
static size_t p_head, p_count;

/* Prints the rows acknowledged since the last call. */
static void print_acked(store_t *s)
{
    uint64_t acked = store_acked(s);
    bool any = false;
    while (p_count > 0 && pending[p_head].seq <= acked) {
        printf("%llu\n", pending[p_head].n);
        p_head = (p_head + 1) % PENDING_MAX;
        p_count--;
        any = true;
    }
    if (any)
        fflush(stdout);
}

/* Submits until the queue takes it, printing acknowledgements meanwhile. */
#define SUBMIT(s, fn, x, seq)                                                                      \
    do {                                                                                           \
        int rc_;                                                                                   \
        while ((rc_ = fn(s, x, seq)) == -ENOBUFS) {                                                \
            print_acked(s);                                                                        \
            usleep(200);                                                                           \
        }                                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "crash_writer: %s: %s\n", #fn, strerror(-rc_));                        \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void submit_row(store_t *s, unsigned long long n)
{
    char subject[32];
    uint64_t seq, buckets[4] = {0};
    snprintf(subject, sizeof(subject), "%llu", n);
    store_event_t e = {.ts = T0 + (int64_t)n,
                       .kind = STR_LIT("crash"),
                       .subject = str_cstr(subject),
                       .detail = STR_LIT("{\"crash\":true}")};
    while (p_count == PENDING_MAX) {
        print_acked(s);
        usleep(200);
    }
    SUBMIT(s, store_event_submit, &e, &seq);
    pending[(p_head + p_count++) % PENDING_MAX] = (pending_t){seq, n};
    buckets[n % 4] = 1;
    store_sli_t x = {.source = STR_LIT("crash"),
                     .ts = T0 + (int64_t)n,
                     .requests = 1,
                     .errors = n % 2,
                     .buckets = buckets,
                     .nbuckets = 4};
    SUBMIT(s, store_sli_submit, &x, NULL);
    store_probe_t p = {.monitor = STR_LIT("crash"),
                       .ts = T0 + (int64_t)n,
                       .ok = n % 5 != 0,
                       .latency_ms = (double)(n % 100),
                       .detail = STR_LIT("crash test")};
    SUBMIT(s, store_probe_submit, &p, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: crash_writer PATH BASE [normal|full] [COUNT]\n");
        return 2;
    }
    store_opts_t o;
    store_opts_init(&o);
    o.path = argv[1];
    o.bucket_bounds = bounds;
    o.nbuckets = 4;
    o.retention_every_s = 0; /* the test counts every row */
    o.commit_ms = 10;
    if (argc > 3 && strcmp(argv[3], "full") == 0)
        o.sync = STORE_SYNC_FULL;
    unsigned long long base = strtoull(argv[2], NULL, 10);
    unsigned long long count = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
    char err[512];
    store_t *s = store_open(&o, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "crash_writer: %s\n", err);
        return 1;
    }
    for (unsigned long long n = base + 1; count == 0 || n <= base + count; n++) {
        submit_row(s, n);
        print_acked(s);
    }
    /* A clean end: everything submitted is acknowledged, then closed. */
    int rc = p_count ? store_wait(s, pending[(p_head + p_count - 1) % PENDING_MAX].seq, 30000) : 0;
    print_acked(s);
    store_close(s);
    return rc == 0 ? 0 : 1;
}
