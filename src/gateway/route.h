/* Route selection: the first route of a listener whose host and path prefix
 * match the request. Host comparison ignores case and a trailing ":port";
 * "*.example.com" matches any name ending in ".example.com" (not the bare
 * "example.com", as in TLS wildcard rules). */
#ifndef SURETY_GATEWAY_ROUTE_H
#define SURETY_GATEWAY_ROUTE_H

#include "conf/conf.h"
#include "core/str.h"

/* The index of the matching route, or -1. */
int route_match(const conf_listener_t *l, str_t host, str_t path);

#endif
