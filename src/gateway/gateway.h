/* The gateway: the data plane. It owns the worker threads, each with its own
 * event loop, its own SO_REUSEPORT listening sockets, client connections and
 * upstream keep-alive pools, and it answers the control thread's questions
 * (metrics) from per-worker counters without locks.
 *
 * Lifecycle (main thread): gateway_new() binds every listener (so that an
 * address in use is reported before anything starts), gateway_start() starts
 * the workers, gateway_drain() asks them to stop accepting and finish what is
 * in flight, gateway_join() waits for them, gateway_free() releases. */
#ifndef SURETY_GATEWAY_GATEWAY_H
#define SURETY_GATEWAY_GATEWAY_H

#include <stdio.h>

#include "conf/conf.h"
#include "metrics/prom.h"

typedef struct gateway gateway_t;

/* Takes a reference on conf. On failure returns NULL and writes the reason
 * (e.g. "listener 'web': cannot listen on 127.0.0.1:8080: Address in use")
 * to errs. Freed with gateway_free() after gateway_join(). */
gateway_t *gateway_new(conf_t *conf, FILE *errs);
int gateway_start(gateway_t *g);
/* Any thread, idempotent: stop accepting, close idle connections, finish
 * in-flight requests for at most conf->drain_timeout_ms, then stop. */
void gateway_drain(gateway_t *g);
void gateway_join(gateway_t *g);
void gateway_free(gateway_t *g);
/* Main thread: a new generation on conf (validated). The listening sockets
 * of addresses that stay are taken over, new ones bound, the state of
 * servers that stay carried over; the new workers start and the old ones
 * drain gently. On failure (an address taken, ...) nothing changes: returns
 * -errno with the reason on errs. */
int gateway_reload(gateway_t *g, conf_t *conf, FILE *errs);
/* Main thread: frees old generations whose workers have stopped (all of
 * them, waiting, when wait). */
void gateway_reap(gateway_t *g, bool wait);
/* Reloads applied so far. */
uint64_t gateway_generation(gateway_t *g);
/* The current generation's configuration. */
conf_t *gateway_conf(gateway_t *g);

/* `surety check`: loads every listener's certificates and keys as a start
 * would (chains, key match, expiry); the problems on errs, warnings logged.
 * 0 or -EINVAL. */
int gateway_check_tls(const conf_t *conf, FILE *errs);

/* Reopens the access and security log files (logrotate); any thread. */
void gateway_reopen_logs(gateway_t *g);

/* The shield: bans and security events for the admin API. */
#include "shield/policy.h"
shield_t *gateway_shield(gateway_t *g);
/* `surety status` lines about the shield (any thread). */
void gateway_shield_summary(gateway_t *g, FILE *out);
/* Main thread: an @file deny/allow list of the current generation changed
 * on disk (time to reload). Each change is reported once: a reload that
 * fails on the new file is not retried until the file changes again. */
bool gateway_lists_changed(gateway_t *g);

/* The shared runtime state (health, ejections, failover) of pools and
 * servers, for the control thread. Lives as long as the gateway. */
#include "gateway/state.h"
state_t *gateway_state(gateway_t *g);
/* Requests in flight to one server of the generation whose state this is,
 * summed over its workers (0 for another generation's state); any thread. */
int64_t gateway_server_inflight(gateway_t *g, const state_t *state, size_t pool, size_t server);
/* Requests of a pool waiting for a max_inflight slot, likewise. */
int64_t gateway_pool_queued(gateway_t *g, const state_t *state, size_t pool);

/* Request SLIs for the objectives (issue 6): cumulative counts since start,
 * monotonic across reloads for listeners and routes whose names stay, so
 * the reader takes differences. */
typedef struct {
    char source[160]; /* "listener:web" or "route:web/api" (the route's name) */
    uint64_t requests;
    uint64_t errors; /* answered 5xx */
    uint64_t buckets[CONF_LATENCY_NBUCKETS + 1]; /* by latency, conf_latency_bounds; last +Inf */
} gateway_sli_t;
/* One entry per listener, then one per route of each, into out[0, max);
 * returns how many there are (more than max: the rest are left out). Any
 * thread; takes the gateway's lock for as long as a /metrics scrape. */
size_t gateway_sli_read(gateway_t *g, gateway_sli_t *out, size_t max);

/* The most client connections any one worker of the current generation has
 * open now (max_connections is a per-worker cap). Any thread. */
int64_t gateway_connections_peak(gateway_t *g);

/* Writes every gateway metric family; runs on the control thread and reads
 * the workers' counters with relaxed atomic loads. */
void gateway_metrics_write(gateway_t *g, prom_t *p);

#endif
