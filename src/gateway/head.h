/* Message heads as the proxy forwards them: the request head rewritten for
 * the server, the response head rewritten for the client, and the answers the
 * proxy makes itself (errors). Hop-by-hop fields (RFC 9110 7.6.1) never cross;
 * X-Forwarded-For, X-Forwarded-Proto, Forwarded and X-Request-Id are added.
 * Pure functions writing into a bounded buffer: -ENOSPC when it is too small. */
#ifndef SURETY_GATEWAY_HEAD_H
#define SURETY_GATEWAY_HEAD_H

#include <stdbool.h>

#include "core/buf.h"
#include "core/str.h"
#include "http/http.h"

typedef struct {
    str_t client_ip;  /* the peer's address, as text */
    str_t request_id; /* already chosen (kept from the client or generated) */
    str_t proto;      /* "http" or "https" */
} head_request_ctx_t;

/* The request head for the server: same method, origin-form target, the
 * client's HTTP minor version, fields minus hop-by-hop ones plus the
 * forwarding fields; "Transfer-Encoding: chunked" and the Upgrade pair are
 * re-added when the message needs them. */
int head_write_request(buf_t *out, const http_request_t *req, const head_request_ctx_t *ctx);

/* Fields a listener adds to responses that lack them (HSTS, the security
 * headers): at most HEAD_ADDED_MAX, views into the listener's storage. */
#define HEAD_ADDED_MAX 4
typedef struct {
    str_t name[HEAD_ADDED_MAX], value[HEAD_ADDED_MAX];
    unsigned n;
} head_added_t;

/* The response head for the client, always HTTP/1.1; Connection: close when
 * the client connection ends after it (keep_alive false), keep-alive for a
 * 1.0 client that keeps it; X-Request-Id added when the server did not, and
 * each field of added (may be NULL) likewise. */
int head_write_response(buf_t *out, const http_response_t *res, int client_minor, bool keep_alive,
                        str_t request_id, const head_added_t *added);

/* A complete answer made by the proxy (errors): status line, a short text
 * body (omitted for HEAD), Connection: close. extra: more header lines,
 * each ending in CRLF ("Retry-After: 2\r\n"), or empty. */
int head_write_error(buf_t *out, int status, bool head_method, str_t request_id, str_t extra);

/* 308 Permanent Redirect to https://HOST[:PORT]TARGET (PORT left out when
 * 443), no body, Connection: close. -ENOSPC when it does not fit. */
int head_write_redirect(buf_t *out, str_t host, unsigned port, str_t target, str_t request_id);

/* The client's X-Request-Id if it is 1..64 bytes of [A-Za-z0-9._-], else empty. */
str_t head_client_request_id(const http_request_t *req);

#endif
