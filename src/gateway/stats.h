/* Per-worker counters. Each worker is the only writer of its own stats, so
 * increments are plain load+store (relaxed atomics, no lock prefix); the
 * control thread sums all workers with relaxed loads when /metrics is asked
 * for. Shapes (how many listeners, routes, servers) follow the conf_t the
 * worker was built from. */
#ifndef SURETY_GATEWAY_STATS_H
#define SURETY_GATEWAY_STATS_H

#include <stdint.h>

#include "conf/conf.h"
#include "http/http.h"
#include "metrics/prom.h"

#define STAT_ADD(field, n)                                                                         \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define STAT_INC(field) STAT_ADD(field, 1)
#define STAT_DEC(field) STAT_ADD(field, -1)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Request duration histogram bounds in seconds: the configuration's, which
 * latency objectives share (a threshold must be one of them). */
#define STATS_NBUCKETS CONF_LATENCY_NBUCKETS
#define stats_bucket_bounds conf_latency_bounds

enum { TIMEOUT_HEADER, TIMEOUT_IDLE, TIMEOUT_CLIENT, TIMEOUT_CONNECT, TIMEOUT_RESPONSE,
       TIMEOUT_COUNT };

/* Why TLS handshakes failed (client_tls.c names them). */
enum { TLS_FAIL_VERSION, TLS_FAIL_CIPHER, TLS_FAIL_NOT_TLS, TLS_FAIL_CLOSED, TLS_FAIL_OTHER,
       TLS_FAIL_COUNT };
extern const char *const stats_tls_fail_names[TLS_FAIL_COUNT];
extern const char *const stats_timeout_names[TIMEOUT_COUNT];

typedef struct {
    uint64_t code[5]; /* 1xx .. 5xx */
} stats_codes_t;

/* A request duration histogram. */
typedef struct {
    uint64_t buckets[STATS_NBUCKETS + 1]; /* last: +Inf */
    uint64_t duration_us_sum;
} stats_latency_t;

/* One route of one listener. */
typedef struct {
    stats_codes_t requests;
    stats_latency_t latency;
} stats_route_t;

typedef struct {
    stats_codes_t requests;
    uint64_t bytes_in, bytes_out;
    uint64_t conns_total;
    int64_t conns_open, conns_idle;
    stats_latency_t latency;
    uint64_t rejects[HTTP_REJECT_COUNT];
    uint64_t timeouts[TIMEOUT_COUNT];
    uint64_t tls_handshakes, tls_resumed;
    uint64_t tls_failures[TLS_FAIL_COUNT];
} stats_listener_t;

typedef struct {
    stats_codes_t requests;
    uint64_t conns_total;
    int64_t conns_idle;
    int64_t inflight;
    uint64_t connect_errors;
    uint64_t retries;    /* requests retried away from this server */
    uint64_t ejections;  /* passive outlier ejections */
    uint64_t tls_handshakes; /* pool with tls: handshakes completed */
    uint64_t tls_resumed;    /* of those, resumed sessions */
    uint64_t tls_failures;   /* handshakes that failed (verification included) */
} stats_server_t;

typedef struct {
    uint64_t retries;           /* retries started for requests routed to the pool */
    uint64_t budget_exhausted;  /* retries refused by the retry budget */
    uint64_t no_server;         /* requests that found no usable server (503) */
    uint64_t busy;              /* requests refused: every open server at max_inflight (503) */
    uint64_t queued;            /* gauge: requests waiting for a max_inflight slot now */
} stats_pool_t;

typedef struct {
    stats_listener_t *listeners;  /* [conf->nlisteners] */
    stats_pool_t *pools;          /* [conf->npools] */
    stats_route_t **routes;       /* [listener][route] */
    stats_server_t **servers;     /* [pool][server] */
    uint64_t access_log_dropped;
} stats_t;

/* Allocates zeroed counters shaped like conf; freed with stats_free(). */
stats_t *stats_new(const conf_t *conf);
void stats_free(stats_t *s, const conf_t *conf);

static inline void stats_code_inc(stats_codes_t *c, int status)
{
    int k = status / 100 - 1;
    if (k >= 0 && k < 5)
        STAT_INC(c->code[k]);
}
void stats_observe_duration(stats_latency_t *l, uint64_t us);

/* Adds src's counters (not its gauges) into dst, matching listeners,
 * routes, pools and servers by name: how totals survive a reload. */
void stats_fold(stats_t *dst, const conf_t *dc, const stats_t *src, const conf_t *sc);

/* The request SLIs (gateway_sli_read): per listener, then per route, the
 * sums over the given stats. Returns how many entries there are. */
#include "gateway/gateway.h"
size_t stats_sli(const conf_t *conf, stats_t *const *per_worker, unsigned n, gateway_sli_t *out,
                 size_t max);

/* Sums the given workers' stats into metric families. */
void stats_write(prom_t *p, const conf_t *conf, stats_t *const *per_worker, unsigned n,
                 unsigned workers, const char *version);

#endif
