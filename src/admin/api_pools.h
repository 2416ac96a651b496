/* The pools API: see api_pools.c. Handlers for the admin route table; ud is
 * an api_pools_t that the control thread owns. */
#ifndef SURETY_ADMIN_API_POOLS_H
#define SURETY_ADMIN_API_POOLS_H

#include "admin/admin.h"
#include "gateway/gateway.h"

typedef struct {
    const conf_t *conf;
    state_t *state;
    gateway_t *gateway;
    loop_t *loop; /* the control loop: its clock */
} api_pools_t;

int api_pools_get(const admin_request_t *req, admin_response_t *res, void *ud);
int api_servers_drain(const admin_request_t *req, admin_response_t *res, void *ud);
int api_servers_disable(const admin_request_t *req, admin_response_t *res, void *ud);
int api_servers_enable(const admin_request_t *req, admin_response_t *res, void *ud);

#endif
