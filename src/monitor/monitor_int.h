/* What monitor.c and monitor_api.c share: the monitor's state. */
#ifndef SURETY_MONITOR_MONITOR_INT_H
#define SURETY_MONITOR_MONITOR_INT_H

#include "monitor/monitor.h"
#include "monitor/probe.h"
#include "monitor/slo.h"

/* One objective's runtime. */
typedef struct {
    const conf_objective_t *oc;
    slo_series_t *series;
    slo_status_t st;   /* the latest evaluation */
    bool evaluated;
    bool silenced;     /* in a maintenance window at the latest evaluation */
    bool firing[2];    /* page, ticket: firing as far as alerts are concerned */
    int64_t since[2];  /* when that last changed */
} monitor_obj_t;

/* One event of the ring. */
typedef struct {
    int64_t ts;
    char kind[32];
    char subject[160];
    char detail[512]; /* JSON object text */
} monitor_ev_t;

struct monitor {
    monitor_opts_t o;
    probe_t *probes; /* NULL without monitors */
    monitor_obj_t *obj;
    size_t nobj;
    gateway_sli_t *prev; /* the last snapshot of the gateway's counters */
    size_t nprev;
    bool primed;         /* prev holds a snapshot */
    monitor_ev_t *events; /* ring of MONITOR_EVENTS_KEPT */
    size_t ev_head, ev_count;
    uint64_t store_refused;  /* writes the store's queue refused (full) */
    uint64_t notify_refused; /* posts the notifier's queue refused */
};

/* "page", "ticket": the two severities, as alerts and the API name them. */
extern const char *const monitor_sev_names[2];

const conf_maintenance_t *monitor_maintenance(const monitor_t *m, size_t i, int64_t now);

#endif
