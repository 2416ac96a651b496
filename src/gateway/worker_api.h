/* What the gateway (main thread) does with a worker. */
#ifndef SURETY_GATEWAY_WORKER_API_H
#define SURETY_GATEWAY_WORKER_API_H

#include "conf/conf.h"
#include "gateway/access_log.h"
#include "gateway/state.h"
#include "gateway/stats.h"
#include "shield/policy.h"
#include "tls/tls.h"

typedef struct worker worker_t;

/* Builds a worker on conf with the given listening sockets (one per listener,
 * ownership passes on success). NULL on failure. */
worker_t *worker_new(conf_t *conf, unsigned id, const int *listen_fds, access_log_t *alog,
                     state_t *state, shield_t *shield, const shield_gen_t *sg,
                     tls_server_t *const *tls, SSL_CTX *const *pool_tls);
int worker_start(worker_t *w);
/* Any thread. gentle (a reload, not a stop): idle keep-alive connections
 * are not cut at once (a client may be sending its next request right
 * now); each gets Connection: close on its next response, or is closed
 * after a short grace when it stays idle. */
void worker_drain(worker_t *w, bool gentle);
/* True once the worker's thread has finished (any thread). */
bool worker_stopped(worker_t *w);
/* The listening socket of listener l (for a reload to dup), or -1. */
int worker_listen_fd(worker_t *w, size_t l);
void worker_join(worker_t *w);
/* After worker_join. The worker's stats_t is not freed: see worker_stats. */
void worker_free(worker_t *w);
/* The worker's counters; they outlive the worker (freed by the gateway). */
stats_t *worker_stats(worker_t *w);

/* upstream.c: the client context of a pool with `tls:`, which requests and
 * health checks both use. NULL with "FILE: problem" or the reason in err.
 * The caller frees it (SSL_CTX_free); connections hold their own reference.
 * Main or control thread. */
SSL_CTX *upstream_tls_ctx_new(const conf_pool_t *pc, char *err, size_t errlen);

#endif
