/* Bottleneck and fault detection (issue 6, item 5), on the control thread
 * at each collection tick: events (watch_event) when
 *  - a server's latency stays far above the rest of its pool: its latency
 *    estimate (the workers' peak EWMA, state.h) over FAULT_SLOW_FACTOR
 *    times the median of the pool's other usable servers, and at least
 *    FAULT_SLOW_MIN_US more, for FAULT_SLOW_TICKS ticks in a row
 *    ("slow_server"; "slow_server_recovered" under half the factor, as
 *    long);
 *  - a pool has no usable server left ("pool_unavailable", then
 *    "pool_available"); failovers are reported where they are decided;
 *  - a worker's client connections reach FAULT_SATURATION_PCT of
 *    max_connections ("saturation", subject "connections", then
 *    "saturation_cleared" under FAULT_SATURATION_CLEAR_PCT), and so do a
 *    server's requests in flight of its max_inflight (subject
 *    "server:POOL/ADDRESS"; the highest count since the last tick, so a
 *    burst between two ticks is seen).
 * Each condition is reported when it starts and when it ends, not at
 * every tick. */
#ifndef SURETY_ADMIN_FAULTS_H
#define SURETY_ADMIN_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "gateway/gateway.h"

#define FAULT_SLOW_FACTOR 3.0
#define FAULT_SLOW_MIN_US 20000
#define FAULT_SLOW_TICKS 3
#define FAULT_SATURATION_PCT 90
#define FAULT_SATURATION_CLEAR_PCT 80

/* A per-server and per-pool memory, shaped like the configuration it was
 * made for (faults_reset on a reload). */
typedef struct {
    const conf_t *conf;
    uint8_t **ticks; /* [pool][server]: consecutive ticks in the other state */
    bool **slow;     /* [pool][server]: reported slow */
    bool *empty;     /* [pool]: reported without usable servers */
    bool **full;     /* [pool][server]: reported near max_inflight */
    bool saturated;  /* connections: reported near max_connections */
} faults_t;

typedef void (*faults_event_cb)(void *ud, const char *kind, const char *subject,
                                const char *detail_json);

/* 0 or -ENOMEM. Freed with faults_deinit (also before a faults_reset). */
int faults_reset(faults_t *f, const conf_t *conf);
void faults_deinit(faults_t *f);
/* One tick: state is the gateway's (shaped like f->conf), now its clock
 * (state.h's, the control loop's monotonic ms). Takes the servers'
 * in-flight peaks (state_inflight_peak_take). */
void faults_tick(faults_t *f, gateway_t *g, state_t *state, uint64_t now,
                 faults_event_cb cb, void *ud);

#endif
