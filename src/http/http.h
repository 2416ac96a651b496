/* Strict HTTP/1.1 message parsing (RFC 9110, RFC 9112).
 *
 * The parsers read a message head from a byte buffer and hand out str_t views
 * into it; they copy nothing and allocate nothing (the caller supplies the
 * field array, whose capacity bounds the header count). They are strict on
 * purpose: everything that lets two HTTP implementations disagree on where a
 * message ends (request smuggling) is rejected with a reason, never repaired.
 * Each reason maps to one status code and one metric label.
 *
 * Thread-safety: pure functions over caller memory; any thread. */
#ifndef SURETY_HTTP_HTTP_H
#define SURETY_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* Why a message was rejected. The list is X-macro so that names (metric
 * label values) and status codes cannot drift from the enum. */
#define HTTP_REJECT_LIST(X)                                                                        \
    X(NONE, "none", 0)                                                                             \
    X(BAD_REQUEST_LINE, "bad_request_line", 400)                                                   \
    X(BAD_METHOD, "bad_method", 400)                                                               \
    X(BAD_TARGET, "bad_target", 400)                                                               \
    X(URI_TOO_LONG, "uri_too_long", 414)                                                           \
    X(BAD_VERSION, "bad_version", 400)                                                             \
    X(UNSUPPORTED_VERSION, "unsupported_version", 505)                                             \
    X(BAD_STATUS_LINE, "bad_status_line", 502)                                                     \
    X(BAD_HEADER_NAME, "bad_header_name", 400)                                                     \
    X(BAD_HEADER_VALUE, "bad_header_value", 400)                                                   \
    X(SPACE_BEFORE_COLON, "space_before_colon", 400)                                               \
    X(OBS_FOLD, "obs_fold", 400)                                                                   \
    X(BARE_CR, "bare_cr", 400)                                                                     \
    X(BARE_LF, "bare_lf", 400)                                                                     \
    X(TOO_MANY_HEADERS, "too_many_headers", 431)                                                   \
    X(HEADERS_TOO_LARGE, "headers_too_large", 431)                                                 \
    X(MISSING_HOST, "missing_host", 400)                                                           \
    X(MULTIPLE_HOST, "multiple_host", 400)                                                         \
    X(BAD_HOST, "bad_host", 400)                                                                   \
    X(CL_AND_TE, "content_length_and_transfer_encoding", 400)                                      \
    X(BAD_CONTENT_LENGTH, "bad_content_length", 400)                                               \
    X(BAD_TRANSFER_ENCODING, "bad_transfer_encoding", 400)                                         \
    X(UNSUPPORTED_TRANSFER_CODING, "unsupported_transfer_coding", 501)                             \
    X(TE_ON_HTTP10, "transfer_encoding_on_http10", 400)                                            \
    X(BAD_CHUNK_SIZE, "bad_chunk_size", 400)                                                       \
    X(BAD_CHUNK_EXT, "bad_chunk_extension", 400)                                                   \
    X(BAD_CHUNK_DATA, "bad_chunk_data", 400)                                                       \
    X(BAD_TRAILER, "bad_trailer", 400)                                                             \
    X(BODY_TOO_LARGE, "body_too_large", 413)

typedef enum {
#define HTTP_REJECT_ENUM(id, name, status) HTTP_REJECT_##id,
    HTTP_REJECT_LIST(HTTP_REJECT_ENUM)
#undef HTTP_REJECT_ENUM
        HTTP_REJECT_COUNT
} http_reject_t;

/* Metric label value ("bad_chunk_size"); "none" for HTTP_REJECT_NONE. */
const char *http_reject_name(http_reject_t r);
/* Status code to answer with (400, 413, 414, 431, 501, 505; 502 for
 * upstream-side reasons). */
int http_reject_status(http_reject_t r);

typedef struct {
    str_t name;
    str_t value; /* OWS trimmed */
} http_field_t;

typedef struct {
    size_t max_request_line; /* bytes of the request-line incl. CRLF; 414 past it */
    size_t max_header_bytes; /* bytes of the whole head incl. request-line; 431 */
    size_t max_headers;      /* field lines; 431 past it; <= the field array capacity */
} http_limits_t;

typedef enum {
    HTTP_BODY_NONE,    /* no body */
    HTTP_BODY_LENGTH,  /* content_length bytes follow */
    HTTP_BODY_CHUNKED, /* chunked coding (validated with http_chunked_scan) */
    HTTP_BODY_CLOSE,   /* responses only: body runs until the connection closes */
} http_body_kind_t;

typedef struct {
    str_t method;
    str_t target; /* request-target as sent */
    str_t path;   /* origin-form: target up to '?'; absolute-form: its path ("/" if empty) */
    str_t query;  /* after '?', without it; empty when absent */
    int minor;    /* HTTP/1.<minor>: 0 or 1 */
    http_field_t *fields;
    size_t nfields;
    str_t host;   /* Host value, or the authority of an absolute-form target */
    http_body_kind_t body;
    uint64_t content_length; /* with HTTP_BODY_LENGTH */
    bool keep_alive;         /* the connection may carry another request after this one */
    bool expect_continue;    /* Expect: 100-continue */
    bool upgrade;            /* Upgrade field present and "upgrade" among Connection tokens */
    size_t head_len;         /* bytes of the head, final CRLF included */
} http_request_t;

typedef struct {
    int status;
    str_t reason;
    int minor;
    http_field_t *fields;
    size_t nfields;
    http_body_kind_t body;
    uint64_t content_length;
    bool keep_alive; /* the server keeps the connection open after this response */
    bool upgrade;    /* 101 with Upgrade */
    size_t head_len;
} http_response_t;

/* Parses a request head from buf[0, len).
 *   0        complete: *req is filled, req->head_len bytes belong to the head;
 *   -EAGAIN  no complete head yet and no limit exceeded: read more;
 *   -EBADMSG rejected: *ret_reason says why (http_reject_status() the answer).
 * fields has room for cap entries; lim->max_headers must be <= cap.
 * Rejects: malformed request-line, non-token method, target not origin-,
 * absolute-, authority- (CONNECT) or asterisk- (OPTIONS) form, control bytes
 * in the target, versions other than HTTP/1.0 and 1.1 (505 for 2.x, 0.9),
 * obs-fold, whitespace between name and colon, empty or non-token names, CTL
 * (other than HTAB) or NUL in values, bare CR, bare LF, missing Host on 1.1,
 * several Host fields, both Content-Length and Transfer-Encoding, malformed
 * or differing Content-Length values (a list of identical values is one
 * value), Transfer-Encoding on HTTP/1.0, any transfer coding list that does
 * not end in a single final "chunked" (unknown codings: 501), limits. */
int http_parse_request(http_request_t *req, const char *buf, size_t len, const http_limits_t *lim,
                       http_field_t *fields, size_t cap, http_reject_t *ret_reason);

/* Parses a response head. head_request: the request was HEAD (no body);
 * 1xx, 204 and 304 have no body; Transfer-Encoding not ending in chunked
 * means HTTP_BODY_CLOSE; neither CL nor TE means HTTP_BODY_CLOSE. Both CL
 * and TE, or bad CL, are rejected (a proxy must not guess). Returns as
 * http_parse_request; reasons are answered as 502 by the proxy. */
int http_parse_response(http_response_t *res, const char *buf, size_t len,
                        const http_limits_t *lim, bool head_request, http_field_t *fields,
                        size_t cap, http_reject_t *ret_reason);

/* Validating scanner for a chunked body. The proxy forwards the coded bytes
 * unchanged; the scanner tells where the body ends and refuses bad framing:
 * chunk sizes that are empty, non-hex, signed, "0x"-prefixed or overflow 63
 * bits; bare CR or LF; CR/LF or control bytes in chunk extensions; chunk data
 * not followed by CRLF; malformed or oversized trailer fields. */
typedef struct {
    int state;
    uint64_t remaining;   /* data bytes left in the current chunk */
    size_t line_len;      /* bytes of the current size/ext or trailer line */
    size_t trailer_bytes; /* trailer section so far */
    size_t max_line;      /* bound on a chunk-size line (with extensions) */
    size_t max_trailer;   /* bound on the trailer section */
    uint64_t data_total;  /* decoded body bytes so far */
} http_chunked_t;

void http_chunked_init(http_chunked_t *c, size_t max_line, size_t max_trailer);
/* Scans p[0, len) as the next bytes of the chunked body.
 *   0        the body ended: *ret_used bytes of p belong to it (the rest is
 *            the next message);
 *   -EAGAIN  all len bytes belong to the body and it continues (*ret_used = len);
 *   -EBADMSG bad framing: *ret_reason. */
int http_chunked_scan(http_chunked_t *c, const char *p, size_t len, size_t *ret_used,
                      http_reject_t *ret_reason);

/* True when the next byte the scanner expects is chunk data (c->remaining
 * of them): lets a caller that decodes (a proxy answering an HTTP/1.0
 * client) hand data runs on and drop the framing. */
bool http_chunked_in_data(const http_chunked_t *c);

/* Standard reason phrase for a status code ("Not Found"); "Unknown" otherwise. */
const char *http_status_text(int status);
/* True for fields a proxy must not forward (RFC 9110 7.6.1): Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authenticate/Authorization... and any field named in the message's
 * Connection value (pass it as connection; empty when absent). */
bool http_field_is_hop_by_hop(str_t name, str_t connection);
/* The first field with this name (case-insensitive), or NULL. */
const http_field_t *http_field_find(const http_field_t *fields, size_t n, str_t name);

#endif
