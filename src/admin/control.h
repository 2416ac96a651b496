/* The control thread: its own event loop, the admin HTTP listener (/healthz,
 * /metrics, later the API), and later health checks and monitors. It never
 * touches a worker's connections; it reads the gateway's counters. */
#ifndef SURETY_ADMIN_CONTROL_H
#define SURETY_ADMIN_CONTROL_H

#include <stdio.h>

#include "conf/conf.h"
#include "gateway/gateway.h"
#include "store/store.h"
#include "tls/tls.h"

typedef struct control control_t;

/* Binds the admin listener (when conf enables it) and sets up the watch
 * (objectives, monitors, alerts) writing to store (borrowed, may be NULL);
 * NULL with the reason on errs. Freed by control_free() after
 * control_stop(). */
control_t *control_new(conf_t *conf, gateway_t *g, store_t *store, FILE *errs);
int control_start(control_t *c);
/* Main thread, after gateway_reload(): the control thread moves to the new
 * generation (checks, API, failover) and this returns once it has, so that
 * the old state may be freed after. */
void control_reload(control_t *c, conf_t *conf, state_t *state, tls_server_t *admin_tls);
/* The admin listener's TLS for conf (admin.tls): 0 with *ret NULL when it
 * has none, 0 with *ret set (the caller owns it, or hands it to
 * control_reload, which takes it), or -EINVAL with "admin: tls: FILE:
 * problem" on errs. Main thread: `surety check`, start and reload. */
int control_admin_tls_new(const conf_t *conf, tls_server_t **ret, FILE *errs);
/* Main thread: the outcome of the latest reload, served by GET
 * /api/v1/reload (ok, or the errors as text). */
void control_reload_result(control_t *c, uint64_t generation, bool ok, const char *text);

/* Stops the thread and waits for it. */
void control_stop(control_t *c);
void control_free(control_t *c);

#endif
