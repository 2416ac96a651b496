/* Active health checks: the control thread probes every server of every pool
 * whose configuration asks for it (health.type http or tcp) and feeds each
 * result to state_check_result(), which applies rise/fall and flips the
 * server's shared health flag that the workers read when they balance.
 *
 * Everything runs on the control thread's event loop, non-blocking: one
 * timer per server, at most one connection per server at a time, and a
 * deadline (health.timeout) over the whole check. Checks start after a random
 * delay in [0, interval) and then repeat every interval +-10%, so that many
 * servers with the same interval are not probed in lockstep.
 *
 * Thread-safety: a health_t and every call on it belong to the thread that
 * runs its loop (the control thread). */
#ifndef SURETY_GATEWAY_HEALTH_H
#define SURETY_GATEWAY_HEALTH_H

#include "conf/conf.h"
#include "core/loop.h"
#include "gateway/state.h"
#include "metrics/prom.h"

typedef struct health health_t;

/* Arms the checks of conf on loop; the first ones run once the loop runs.
 * conf and state must outlive the health_t (state is shaped like conf: same
 * pools, same servers, same order). Who frees: the caller, with
 * health_free(), on the loop's thread, before the loop is freed. NULL on
 * failure with *ret_err = -ENOMEM or -EINVAL (state not shaped like conf). */
health_t *health_new(loop_t *loop, const conf_t *conf, state_t *state, int *ret_err);
/* Stops every check (closing connections in flight, which count as nothing)
 * and frees h. The server states keep what the last checks said, so a reload
 * that makes a new health_t carries health over. Accepts NULL. */
void health_free(health_t *h);

/* Writes surety_health_checks_total{pool,server,result}, surety_server_up
 * {pool,server} (every server of every pool, checked or not) and
 * surety_health_transitions_total{pool,server,to}. Errors stay in p
 * (prom_error). */
void health_metrics_write(health_t *h, prom_t *p);

#endif
