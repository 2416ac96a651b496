/* Private to src/admin: the response object that admin.c (connections) and
 * response.c (routing, bodies, the response head) share. Nothing outside
 * src/admin includes this; handlers see admin_response_t as opaque. */
#ifndef SURETY_ADMIN_ADMIN_INT_H
#define SURETY_ADMIN_ADMIN_INT_H

#include <stdbool.h>

#include "admin/admin.h"
#include "core/buf.h"

struct admin_response {
    int status;
    const char *ctype;
    char *body; /* append/printf/error: grows by doubling up to max */
    size_t len;
    size_t cap;
    size_t max;   /* max_response */
    prom_t *prom; /* admin_response_prom(): when set, it is the body */
    size_t max_metrics;
    int err;         /* first failed append: the answer becomes a 500 */
    char allow[128]; /* 405: the Allow value; empty otherwise */
};

/* An empty 200 text/plain response; allocates nothing yet. */
void response_init(admin_response_t *res, size_t max_response, size_t max_metrics);
/* Frees what a response holds and makes it empty again (init state). */
void response_reset(admin_response_t *res);
/* The bytes of the body. */
str_t response_body(const admin_response_t *res);

/* Finds the route for req and runs it into res: a route's handler (GET's for
 * HEAD), or 404, 405 with Allow, 500 when the handler fails. */
void response_route(const admin_route_t *routes, size_t nroutes, void *ud,
                    const admin_request_t *req, admin_response_t *res);

/* Appends the status line and fields for res to out: Date from wall_ms,
 * Content-Type and Content-Length (body_len; both omitted for 204 and 304),
 * Allow when set, Connection: close when !keep_alive, Connection: keep-alive
 * for an HTTP/1.0 client that keeps the connection. 0 or -ENOSPC. */
int response_head(const admin_response_t *res, buf_t *out, uint64_t wall_ms, size_t body_len,
                  bool keep_alive, bool http10);
/* Statuses whose responses carry no body (RFC 9110 6.4.1). */
static inline bool response_bodyless(int status)
{
    return status < 200 || status == 204 || status == 304;
}

#endif
