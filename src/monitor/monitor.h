/* The control plane's watch (issue 6): it turns what the gateway counts and
 * what the probes see into objectives, and objectives into alerts.
 *
 * Every collection tick (10 s) the control thread hands it the gateway's
 * cumulative request SLIs (gateway_sli_read); it keeps the previous
 * snapshot, takes differences, writes them to the store and adds them to
 * each objective's per-minute series (slo.c). Probes (probe.c) run on the
 * same loop and feed monitor-sourced objectives as they finish. Then every
 * objective is evaluated against the workbook's burn-rate rules; a rule set
 * that starts or stops firing is posted to the notifier (notify.c) for the
 * objective's alerts, unless a maintenance window silences it, and is
 * recorded as an event. Events (alerts, monitor state changes, failovers)
 * go to the store and to a ring kept for the API.
 *
 * Time is clock_unix() (core/clock.h): injectable for tests.
 *
 * Thread-safety: a monitor_t belongs to the control thread; monitor_new
 * and monitor_free may also run on the main thread before the loop runs. */
#ifndef SURETY_MONITOR_MONITOR_H
#define SURETY_MONITOR_MONITOR_H

#include <jansson.h>
#include <stdio.h>

#include "conf/conf.h"
#include "core/loop.h"
#include "gateway/gateway.h"
#include "metrics/prom.h"
#include "monitor/notify.h"
#include "store/store.h"

/* How often the gateway's counters are collected, unless the test
 * variable SURETY_TEST_TICK_MS says otherwise. */
#define MONITOR_TICK_MS 10000
/* Events kept in memory for GET /api/v1/events. */
#define MONITOR_EVENTS_KEPT 1000

typedef struct monitor monitor_t;

typedef struct {
    loop_t *loop;      /* the control thread's: probes run on it */
    const conf_t *conf; /* must outlive the monitor */
    store_t *store;    /* NULL: nothing is written (the store is off) */
    notify_t *notify;  /* NULL: no alerts configured; receivers are conf->alerts in order */
} monitor_opts_t;

/* A monitor for o->conf. old (may be NULL; a reload) hands over what must
 * outlive a generation: each objective's series when its name, source,
 * kind and window stay; probe states; the last gateway snapshot; the event
 * ring; the alert state. Who frees: the caller, monitor_free(), on the
 * loop's thread; old stays the caller's to free after this call. NULL on
 * failure with *ret_err (-ENOMEM, -EINVAL). */
monitor_t *monitor_new(const monitor_opts_t *o, monitor_t *old, int *ret_err);
void monitor_free(monitor_t *m);

/* One collection tick: the gateway's cumulative SLIs, then an evaluation
 * of every objective. */
void monitor_tick(monitor_t *m, const gateway_sli_t *sli, size_t n);

/* Records an event (failover, pool without healthy servers, ...): the
 * store and the ring. detail_json: a JSON object text, or NULL. */
void monitor_event(monitor_t *m, const char *kind, const char *subject, const char *detail_json);

/* For the admin API: new references the caller decrefs. */
json_t *monitor_objectives_json(monitor_t *m);
json_t *monitor_monitors_json(monitor_t *m);
json_t *monitor_events_json(monitor_t *m, size_t limit, const char *kind);
/* For `surety status`: one line per objective, one per monitor. */
void monitor_status_text(monitor_t *m, FILE *out);
/* surety_objective_* families, then the probes', the store's, the notifier's. */
void monitor_metrics_write(monitor_t *m, prom_t *p);

#endif
