/* The control thread: its own event loop, the admin HTTP listener (/healthz,
 * /metrics, later the API), and later health checks and monitors. It never
 * touches a worker's connections; it reads the gateway's counters. */
#ifndef SURETY_ADMIN_CONTROL_H
#define SURETY_ADMIN_CONTROL_H

#include <stdio.h>

#include "conf/conf.h"
#include "gateway/gateway.h"

typedef struct control control_t;

/* Binds the admin listener (when conf enables it); NULL with the reason on
 * errs. Freed by control_free() after control_stop(). */
control_t *control_new(conf_t *conf, gateway_t *g, FILE *errs);
int control_start(control_t *c);
/* Stops the thread and waits for it. */
void control_stop(control_t *c);
void control_free(control_t *c);

#endif
