/* The pools API: see api_pools.c. Handlers for the admin route table; ud is
 * an api_pools_t that the control thread owns. */
#ifndef SURETY_ADMIN_API_POOLS_H
#define SURETY_ADMIN_API_POOLS_H

#include "admin/admin.h"
#include "gateway/gateway.h"

/* Failovers and failbacks, newest last: what `surety status` shows. */
#define API_EVENTS 16
typedef struct {
    uint64_t wall_ms;
    char text[192];
} api_event_t;

typedef struct {
    const conf_t *conf;
    state_t *state;
    gateway_t *gateway;
    loop_t *loop; /* the control loop: its clock */
    api_event_t events[API_EVENTS];
    size_t nevents; /* total ever recorded; the ring holds the last API_EVENTS */
} api_pools_t;

/* Records an event (control thread). */
void api_pools_event(api_pools_t *a, const char *text);

int api_pools_get(const admin_request_t *req, admin_response_t *res, void *ud);
int api_servers_drain(const admin_request_t *req, admin_response_t *res, void *ud);
int api_servers_disable(const admin_request_t *req, admin_response_t *res, void *ud);
int api_servers_enable(const admin_request_t *req, admin_response_t *res, void *ud);

#endif
