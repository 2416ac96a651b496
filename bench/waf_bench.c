/* Speed of the WAF (src/shield/waf.c: libmodsecurity 3 with the OWASP CRS):
 * what one rule set costs to load (time and resident memory), microseconds
 * per request on one thread for benign and for attack requests, and
 * requests per second through a pool of T threads, whose verdicts are also
 * checked against the single-thread ones (a cheap race detector; run it
 * under valgrind --tool=helgrind with a small N for a real one). Build it in
 * a release build without sanitizers:
 *
 *   meson setup build-rel --buildtype=release && ninja -C build-rel waf_bench
 *   ./build-rel/src/shield/waf_bench [N [T [PARANOIA]]]   (defaults 2000, 2, 1) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shield/waf.h"

#define HEADERS                                                                                    \
    "Host: example.com\r\n"                                                                        \
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"       \
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"                  \
    "Accept-Language: en-US,en;q=0.5\r\n"                                                          \
    "Accept-Encoding: gzip, deflate, br\r\n"                                                       \
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n"

typedef struct {
    const char *head, *body;
} req_t;

static const req_t benign[] = {
    {"GET /products?category=shoes&page=2&sort=price_asc HTTP/1.1\r\n" HEADERS "\r\n", NULL},
    {"GET /assets/app.3f9a1c.js HTTP/1.1\r\n" HEADERS "Referer: https://example.com/\r\n\r\n",
     NULL},
    {"POST /login HTTP/1.1\r\n" HEADERS
     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 48\r\n\r\n",
     "username=alice&password=S3cret%21pass&remember=1"},
    {"POST /api/v1/orders HTTP/1.1\r\n" HEADERS
     "Content-Type: application/json\r\nContent-Length: 67\r\n\r\n",
     "{\"item\":\"book\",\"quantity\":2,\"note\":\"gift wrap please\",\"price\":12.5}"},
};

static const req_t attacks[] = {
    {"GET /?id=1'+OR+'1'='1 HTTP/1.1\r\n" HEADERS "\r\n", NULL},
    {"GET /search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E HTTP/1.1\r\n" HEADERS "\r\n", NULL},
    {"GET /static/../../etc/passwd HTTP/1.1\r\n" HEADERS "\r\n", NULL},
    {"POST /api/comments HTTP/1.1\r\n" HEADERS
     "Content-Type: application/json\r\nContent-Length: 47\r\n\r\n",
     "{\"comment\":\"<script>alert(1)</script>\",\"id\":7}"},
};

#define NB (sizeof(benign) / sizeof(benign[0]))
#define NA (sizeof(attacks) / sizeof(attacks[0]))

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident memory in KiB, from /proc/self/statm. */
static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * 4;
}

static waf_job_t *job_of(const waf_t *w, const req_t *r)
{
    waf_job_t *j =
        waf_job_new(w, r->head, strlen(r->head), r->body, r->body ? strlen(r->body) : 0, false);
    if (!j) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return j;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* n inspections on this thread, cycling through reqs: prints the mean,
 * median and 99th percentile of waf_inspect()'s own timing. */
static void single(const waf_t *w, const char *what, const req_t *reqs, size_t nreqs, long n,
                   int want)
{
    uint64_t *us = malloc((size_t)n * sizeof(*us));
    double t0 = now();
    int wrong = 0;
    for (long i = 0; i < n; i++) {
        waf_job_t *j = job_of(w, &reqs[(size_t)i % nreqs]);
        waf_inspect(j);
        us[i] = j->elapsed_us;
        wrong += j->verdict != want;
        waf_job_free(j);
    }
    double t = now() - t0;
    qsort(us, (size_t)n, sizeof(*us), cmp_u64);
    printf("%-8s %ld requests on 1 thread: %.0f us each (median %llu, p99 %llu), %.0f/s%s\n", what,
           n, t / (double)n * 1e6, (unsigned long long)us[n / 2],
           (unsigned long long)us[n * 99 / 100], (double)n / t, wrong ? "  WRONG VERDICTS" : "");
    free(us);
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long done;
} owner_t;

static void done_cb(waf_job_t *j)
{
    owner_t *o = j->owner;
    pthread_mutex_lock(&o->lock);
    o->done++;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

/* n jobs, half benign and half attacks, through a pool of threads; each
 * verdict and rule list is compared with ref (the single-thread result of
 * the same request). */
static void pooled(const waf_t *w, unsigned threads, long n, waf_job_t **ref)
{
    owner_t o = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    waf_job_t **jobs = malloc((size_t)n * sizeof(*jobs));
    waf_pool_t *p = waf_pool_new(threads, (size_t)n);
    long differ = 0;

    if (!p || !jobs) {
        fprintf(stderr, "cannot start the pool\n");
        exit(1);
    }
    double t0 = now();
    for (long i = 0; i < n; i++) {
        size_t k = (size_t)i % (NB + NA);
        jobs[i] = job_of(w, k < NB ? &benign[k] : &attacks[k - NB]);
        jobs[i]->done = done_cb;
        jobs[i]->owner = &o;
        if (waf_pool_submit(p, jobs[i]) != 0) {
            fprintf(stderr, "queue full\n");
            exit(1);
        }
    }
    pthread_mutex_lock(&o.lock);
    while (o.done < n)
        pthread_cond_wait(&o.cond, &o.lock);
    pthread_mutex_unlock(&o.lock);
    double t = now() - t0;
    waf_pool_free(p);
    for (long i = 0; i < n; i++) {
        const waf_job_t *a = jobs[i], *b = ref[(size_t)i % (NB + NA)];
        differ += a->verdict != b->verdict || a->nrules != b->nrules || a->score != b->score ||
                  memcmp(a->rules, b->rules, a->nrules * sizeof(a->rules[0])) != 0;
        waf_job_free(jobs[i]);
    }
    free(jobs);
    printf("mixed    %ld requests on a pool of %u threads: %.0f/s, %ld differ from 1 thread\n", n,
           threads, (double)n / t, differ);
}

/* Loads c, printing the time and the growth of resident memory. */
static waf_t *load(const waf_conf_t *c, const char *what)
{
    char err[512];
    long rss0 = rss_kib();
    double t0 = now();
    waf_t *w = waf_load(c, err, sizeof(err));
    double t = now() - t0;
    if (!w) {
        fprintf(stderr, "waf_load: %s\n", err);
        exit(1);
    }
    printf("%s: %.3f s, resident memory +%.1f MiB (paranoia %u)\n", what, t,
           (double)(rss_kib() - rss0) / 1024, c->paranoia);
    return w;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000;
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    waf_conf_t c = {.paranoia = argc > 3 ? (unsigned)atoi(argv[3]) : 1,
                    .anomaly_threshold = WAF_THRESHOLD_DEFAULT,
                    .mode = WAF_MODE_BLOCK,
                    .body_limit = WAF_BODY_LIMIT_DEFAULT};
    waf_job_t *ref[NB + NA];

    if (n < 1 || threads < 1) {
        fprintf(stderr, "usage: %s [N [THREADS [PARANOIA]]]\n", argv[0]);
        return 2;
    }
    /* The first load also creates the engine (libxml2, libcurl, the
     * collections); the second shows what one more rule set costs, as
     * during a reload. */
    waf_t *w = load(&c, "first load");
    waf_t *again = load(&c, "second load");
    waf_free(again);
    for (size_t k = 0; k < NB + NA; k++) {
        ref[k] = job_of(w, k < NB ? &benign[k] : &attacks[k - NB]);
        waf_inspect(ref[k]);
    }
    single(w, "benign", benign, NB, n, WAF_PASS);
    single(w, "attack", attacks, NA, n, WAF_MATCH);
    pooled(w, threads, n, ref);
    for (size_t k = 0; k < NB + NA; k++)
        waf_job_free(ref[k]);
    waf_free(w);
    return 0;
}
