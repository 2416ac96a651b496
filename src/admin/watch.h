/* The control thread's watch (issue 6): the store, the notifier and the
 * monitor (src/monitor/monitor.h) tied to the gateway and the admin API.
 * A collection timer reads the gateway's SLIs every MONITOR_TICK_MS and
 * hands them to the monitor; the admin routes /api/v1/objectives,
 * /api/v1/monitors, /api/v1/events and /api/v1/alerts/deliveries read it.
 *
 * Ownership: the store is the caller's (opened at start by main, closed
 * after the control thread stops: it outlives reloads); the notifier and
 * the monitor are the watch's. Thread: watch_init on the main thread
 * before the loop runs, everything else on the control thread. */
#ifndef SURETY_ADMIN_WATCH_H
#define SURETY_ADMIN_WATCH_H

#include <stdio.h>

#include "admin/admin.h"
#include "gateway/gateway.h"
#include "admin/faults.h"
#include "monitor/monitor.h"

typedef struct {
    loop_t *loop;
    gateway_t *gateway;
    conf_t *conf;       /* a reference of its own: the monitor reads it */
    store_t *store;     /* borrowed; NULL: none */
    notify_t *notify;   /* NULL without alerts */
    unsigned char secrets_digest[32]; /* SHA-256 of the secrets notify was built with */
    monitor_t *monitor;
    loop_timer_t tick;
    uint64_t tick_ms;   /* MONITOR_TICK_MS, or SURETY_TEST_TICK_MS */
    gateway_sli_t *sli; /* scratch for gateway_sli_read */
    size_t sli_cap;
    faults_t faults;    /* bottleneck and fault detection */
} watch_t;

/* 0, or -errno with the reason on errs (an alert's secret file cannot be
 * read, out of memory). The timer starts with the loop. */
int watch_init(watch_t *w, loop_t *loop, gateway_t *g, conf_t *conf, store_t *store,
               FILE *errs);
/* A reload: the monitor moves to conf keeping its history; the notifier is
 * rebuilt only when `alerts:` changed (a new one would notify again every
 * alert still firing). A notifier that cannot start leaves alerts unsent
 * until a later reload (logged); monitors that cannot start (out of
 * memory) keep the previous configuration, whose reference the watch
 * holds. */
void watch_reload(watch_t *w, conf_t *conf);
void watch_deinit(watch_t *w);

/* Records a control-plane event (failover...). */
void watch_event(watch_t *w, const char *kind, const char *subject, const char *detail_json);

int watch_objectives_get(watch_t *w, const admin_request_t *req, admin_response_t *res);
int watch_monitors_get(watch_t *w, const admin_request_t *req, admin_response_t *res);
int watch_events_get(watch_t *w, const admin_request_t *req, admin_response_t *res);
int watch_deliveries_get(watch_t *w, const admin_request_t *req, admin_response_t *res);
void watch_metrics_write(watch_t *w, prom_t *p);

/* Main thread, `surety run`: the store of conf (store.sqlite), its
 * directory made if missing. NULL with the reason on errs. */
store_t *watch_store_open(const conf_t *conf, FILE *errs);

#endif
