/* What the gateway (main thread) does with a worker. */
#ifndef SURETY_GATEWAY_WORKER_API_H
#define SURETY_GATEWAY_WORKER_API_H

#include "conf/conf.h"
#include "gateway/access_log.h"
#include "gateway/state.h"
#include "gateway/stats.h"

typedef struct worker worker_t;

/* Builds a worker on conf with the given listening sockets (one per listener,
 * ownership passes on success). NULL on failure. */
worker_t *worker_new(conf_t *conf, unsigned id, const int *listen_fds, access_log_t *alog,
                     state_t *state);
int worker_start(worker_t *w);
/* Any thread. */
void worker_drain(worker_t *w);
void worker_join(worker_t *w);
/* After worker_join. The worker's stats_t is not freed: see worker_stats. */
void worker_free(worker_t *w);
/* The worker's counters; they outlive the worker (freed by the gateway). */
stats_t *worker_stats(worker_t *w);

#endif
