/* The security API: security events and bans (see api_security.c). ud is
 * the control thread's api_pools_t, as for the pools API. */
#ifndef SURETY_ADMIN_API_SECURITY_H
#define SURETY_ADMIN_API_SECURITY_H

#include "admin/admin.h"

#include <jansson.h>

/* Answers with o as indented JSON, taking o (NULL: -ENOMEM). */
int api_send_json(admin_response_t *res, json_t *o);

int api_security_events(const admin_request_t *req, admin_response_t *res, void *ud);
int api_bans_get(const admin_request_t *req, admin_response_t *res, void *ud);
int api_bans_add(const admin_request_t *req, admin_response_t *res, void *ud);
int api_bans_lift(const admin_request_t *req, admin_response_t *res, void *ud);

#endif
