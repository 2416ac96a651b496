/* The admin HTTP server: /metrics, /healthz and the API, on the control
 * thread.
 *
 * It owns no thread: admin_new() attaches a listening socket to a loop the
 * caller runs, and everything (accepting, parsing with the strict parser of
 * src/http, calling handlers, writing) happens in that loop's callbacks. What
 * it serves is a static route table from the caller, {method, path, handler,
 * help}; there are no built-in routes. Built in are only the answers no
 * handler should have to write: 404 for an unknown path, 405 with Allow for a
 * known path and another method (HEAD is served by the GET handler, without
 * the body), 400-class answers for requests the parser refuses, 411 for
 * chunked request bodies, 413 for bodies past the limit, 500 when a handler
 * fails; error bodies are JSON {"error": "..."}. Connections are persistent
 * (HTTP/1.1 keep-alive), bounded in number (past the limit they are
 * accepted and closed at once), in head and body size, and in time.
 *
 * Thread-safety: an admin_t and its handlers run on the loop's thread only. */
#ifndef SURETY_ADMIN_ADMIN_H
#define SURETY_ADMIN_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/sock.h"
#include "core/str.h"
#include "http/http.h"
#include "metrics/prom.h"

typedef struct admin admin_t;
/* Filled by a handler through the admin_response_* functions below. */
typedef struct admin_response admin_response_t;

/* What a handler sees of a request. Views into the connection's buffers,
 * valid for the duration of the handler call. */
typedef struct {
    str_t method;
    str_t path;                 /* as sent, without the query; not percent-decoded */
    str_t query;                /* after '?', empty if none */
    str_t body;                 /* Content-Length bytes; empty if none */
    const http_request_t *http; /* the whole head: fields, host, version */
} admin_request_t;

/* Runs on the loop's thread; must not block. Fills res (default: 200, empty
 * text/plain body) and returns 0, or a negative errno, which is answered
 * with 500 whatever res holds. ud is admin_new()'s. */
/* The value of NAME in a query string (no percent-decoding: names and
 * addresses need none). Empty view when absent. */
str_t admin_query_param(str_t q, const char *name);

typedef int (*admin_handler_cb)(const admin_request_t *req, admin_response_t *res, void *ud);

typedef struct {
    const char *method; /* "GET", "POST", ...: exact, case-sensitive */
    const char *path;   /* exact match on the request path: "/metrics" */
    admin_handler_cb handler;
    const char *help; /* one line, for listings and docs */
} admin_route_t;

typedef struct {
    size_t max_conns;           /* connections served at once (64) */
    size_t max_head;            /* bytes of a request head (16 KiB): 431 past it */
    size_t max_body;            /* bytes of a request body (1 MiB): 413 past it */
    size_t max_response;        /* bytes a handler may write with append/printf (1 MiB) */
    size_t max_metrics;         /* bytes of an admin_response_prom() page (16 MiB) */
    uint64_t header_timeout_ms; /* from a request's first byte to its last head byte (10 s) */
    uint64_t idle_timeout_ms;   /* keep-alive wait, and any stall reading a body or
                                 * writing a response (30 s) */
} admin_limits_t;

/* The defaults above. */
extern const admin_limits_t admin_limits_default;

/* Listens on addr and serves routes[0, nroutes) on loop. routes must stay
 * valid (a static table) until admin_free(); ud is passed to every handler.
 * lim: NULL for admin_limits_default. Call on the loop's thread, or before the
 * loop runs. Who frees: the caller, admin_free(), on the same thread.
 * NULL on failure with *ret_err set (-EADDRINUSE, -EACCES, -ENOMEM, ...). */
admin_t *admin_new(loop_t *loop, const sock_addr_t *addr, const admin_route_t *routes,
                   size_t nroutes, const admin_limits_t *lim, void *ud, int *ret_err);
/* Closes the listener and every connection (responses in flight are cut). */
void admin_free(admin_t *a);
/* The address actually bound (with port 0, the one the kernel chose). */
int admin_local_addr(const admin_t *a, sock_addr_t *ret);
/* Connections open now, including those in a lingering close. */
size_t admin_connections(const admin_t *a);

/* ---- for handlers: the response ---- */

void admin_response_status(admin_response_t *res, int status);
/* content_type must outlive the response: a literal. Default
 * "text/plain; charset=utf-8". */
void admin_response_type(admin_response_t *res, const char *content_type);
/* Append to the body, bounded by max_response. 0, -ENOSPC, -ENOMEM; a
 * failure is remembered and turns the answer into a 500. */
int admin_response_append(admin_response_t *res, const void *p, size_t n);
int admin_response_printf(admin_response_t *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Replaces the body with {"error": msg} (msg escaped) and sets status and
 * the JSON type. 0 or -ENOSPC/-ENOMEM. */
int admin_response_error(admin_response_t *res, int status, const char *msg);
/* The body as a Prometheus page: returns a writer owned by the response
 * (freed after sending), bounded by max_metrics, and sets the exposition
 * Content-Type. Once it is called, the page is the body: bytes appended
 * with the functions above are not sent. The handler writes families and samples into it; if the
 * writer ends in error (the page outgrew the bound) the answer is a 500.
 * NULL when out of memory. Calling it twice returns the same writer. */
prom_t *admin_response_prom(admin_response_t *res);

/* Serves new connections through TLS with tls (NULL: in clear from now
 * on). The caller keeps ownership and may free the previous one at once:
 * connections still using it hold their own reference (tls_server_free). */
#include "tls/tls.h"
void admin_set_tls(admin_t *a, tls_server_t *tls);

#endif
