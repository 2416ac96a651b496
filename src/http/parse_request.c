/* The request-head parser (RFC 9112 section 3, RFC 9110 for field
 * semantics). It reads the request-line, the field lines and then decides
 * framing (body length), Host and connection persistence, rejecting every
 * ambiguity that lets a front and a back end disagree about where a request
 * ends. The head is parsed again from its first byte on every call: heads
 * are bounded by max_header_bytes, and keeping no state between calls means
 * a connection that is waiting for bytes costs nothing here. */
#include <assert.h>

#include "http/http.h"
#include "http/parse_common.h"

/* origin-form: absolute-path [ "?" query ] */
static void split_path(http_request_t *q, str_t t)
{
    const char *qm = memchr(t.p, '?', t.len);
    if (qm) {
        q->path = str_from(t.p, (size_t)(qm - t.p));
        q->query = str_from(qm + 1, t.len - q->path.len - 1);
    } else {
        q->path = t;
        q->query = str_from(t.p + t.len, 0);
    }
}

/* absolute-form: "http" / "https" "://" authority path-abempty [ "?" query ].
 * The authority must be a plain host[:port]: userinfo is refused (RFC 9110
 * 4.2.4), as is an empty host. */
static int parse_absolute(http_request_t *q, str_t t, http_reject_t *r)
{
    size_t skip;
    if (t.len >= 7 && str_case_eq(str_from(t.p, 7), STR_LIT("http://")))
        skip = 7;
    else if (t.len >= 8 && str_case_eq(str_from(t.p, 8), STR_LIT("https://")))
        skip = 8;
    else
        return http_reject(r, HTTP_REJECT_BAD_TARGET);
    size_t i = skip;
    while (i < t.len && t.p[i] != '/' && t.p[i] != '?')
        i++;
    str_t auth = str_from(t.p + skip, i - skip);
    if (!http_authority_valid(auth, false, false))
        return http_reject(r, HTTP_REJECT_BAD_TARGET);
    q->host = auth;
    str_t rest = str_from(t.p + i, t.len - i);
    if (rest.len == 0 || rest.p[0] == '?') {
        q->path = STR_LIT("/");
        q->query = rest.len ? str_from(rest.p + 1, rest.len - 1) : rest;
    } else {
        split_path(q, rest);
    }
    return 0;
}

/* Checks the request-target's form against the method and fills path and
 * query (and host, for absolute-form). Known before the head is complete, so
 * a bad target is refused without waiting for the fields. */
static int parse_target(http_request_t *q, bool *ret_absolute, http_reject_t *r)
{
    str_t t = q->target;
    bool connect = str_eq(q->method, STR_LIT("CONNECT"));

    *ret_absolute = false;
    if (t.p[0] == '/') {
        if (connect)
            return http_reject(r, HTTP_REJECT_BAD_TARGET);
        split_path(q, t);
        return 0;
    }
    if (t.len == 1 && t.p[0] == '*') {
        if (!str_eq(q->method, STR_LIT("OPTIONS")))
            return http_reject(r, HTTP_REJECT_BAD_TARGET);
        q->path = t;
        q->query = str_from(t.p + 1, 0);
        return 0;
    }
    if (connect) {
        /* authority-form: uri-host ":" port, nothing else. */
        if (!http_authority_valid(t, false, true))
            return http_reject(r, HTTP_REJECT_BAD_TARGET);
        q->path = q->query = str_from(t.p + t.len, 0);
        return 0;
    }
    *ret_absolute = true;
    return parse_absolute(q, t, r);
}

/* request-line = method SP request-target SP HTTP-version CRLF, exactly one
 * SP between the parts. *pos is the first byte of the line; on 0 it is the
 * byte after its CRLF. */
static int parse_request_line(const http_scan_t *s, size_t *pos, http_request_t *q,
                              bool *ret_absolute, http_reject_t *r)
{
    const unsigned char *p = s->p;
    size_t i = *pos, start = i;
    int major, minor, rc;

    i = http_skip_token(p, i, s->end);
    if (i == s->end)
        return http_scan_need(s, i, r);
    if (p[i] != ' ')
        return http_reject_at(s, i, HTTP_REJECT_BAD_METHOD, r);
    if (i == start)
        return http_reject(r, HTTP_REJECT_BAD_REQUEST_LINE);
    q->method = str_from((const char *)p + start, i - start);

    start = ++i;
    i = http_skip_target(p, i, s->end);
    if (i == s->end)
        return http_scan_need(s, i, r);
    if (p[i] != ' ') {
        bool eol = p[i] == '\r' || p[i] == '\n'; /* HTTP/0.9-style, no version */
        return http_reject_at(s, i, eol ? HTTP_REJECT_BAD_REQUEST_LINE : HTTP_REJECT_BAD_TARGET, r);
    }
    if (i == start)
        return http_reject(r, HTTP_REJECT_BAD_REQUEST_LINE);
    q->target = str_from((const char *)p + start, i - start);
    rc = parse_target(q, ret_absolute, r);
    if (rc < 0)
        return rc;

    if (++i >= s->end)
        return http_scan_need(s, i, r);
    if (p[i] == ' ')
        return http_reject(r, HTTP_REJECT_BAD_REQUEST_LINE);
    rc = http_parse_version(s, &i, &major, &minor, HTTP_REJECT_BAD_VERSION, r);
    if (rc < 0)
        return rc;
    if (i >= s->end)
        return http_scan_need(s, i, r);
    if (p[i] == ' ')
        return http_reject(r, HTTP_REJECT_BAD_REQUEST_LINE);
    if (p[i] != '\r')
        return http_reject_at(s, i, HTTP_REJECT_BAD_VERSION, r);
    rc = http_scan_crlf(s, i, r);
    if (rc < 0)
        return rc;
    /* Well-formed but not ours: HTTP/0.9, 1.2, 2.0, 3.0... */
    if (major != 1 || minor > 1)
        return http_reject(r, HTTP_REJECT_UNSUPPORTED_VERSION);
    q->minor = minor;
    *pos = i + 2;
    return 0;
}

/* Host, framing and persistence from the parsed fields (RFC 9112 3.2, 6.1,
 * 6.3, 9.3). The order of the checks only decides which reason is
 * reported when a head has several faults. */
static int finish_request(http_request_t *q, bool absolute, http_reject_t *r)
{
    http_head_info_t info;
    int rc = http_head_info(q->fields, q->nfields, &info, r);
    if (rc < 0)
        return rc;

    if (info.nhost > 1)
        return http_reject(r, HTTP_REJECT_MULTIPLE_HOST);
    if (info.nhost == 0 && q->minor == 1)
        return http_reject(r, HTTP_REJECT_MISSING_HOST);
    if (info.nhost == 1 && !http_authority_valid(info.host, true, false))
        return http_reject(r, HTTP_REJECT_BAD_HOST);
    /* With absolute-form the target's authority wins over Host (3.2.2). */
    if (!absolute)
        q->host = info.host;

    if (info.cl_seen && info.te_seen)
        return http_reject(r, HTTP_REJECT_CL_AND_TE);
    if (info.cl_bad)
        return http_reject(r, HTTP_REJECT_BAD_CONTENT_LENGTH);
    if (info.te_seen) {
        if (q->minor == 0)
            return http_reject(r, HTTP_REJECT_TE_ON_HTTP10);
        if (info.te_bad || (info.te_chunked && !info.te_chunked_last))
            return http_reject(r, HTTP_REJECT_BAD_TRANSFER_ENCODING);
        /* We cannot decode anything but chunked, so we cannot find the end of
         * such a body: 501 (RFC 9112 6.1). */
        if (info.te_other)
            return http_reject(r, HTTP_REJECT_UNSUPPORTED_TRANSFER_CODING);
        q->body = HTTP_BODY_CHUNKED;
    } else if (info.cl_seen) {
        q->body = HTTP_BODY_LENGTH;
        q->content_length = info.content_length;
    } else {
        q->body = HTTP_BODY_NONE;
    }

    if (q->minor == 1) {
        q->keep_alive = !info.conn_close;
        /* HTTP/1.0 servers must ignore Expect and Upgrade (RFC 9110 10.1.1, 7.8). */
        q->expect_continue = info.expect_continue;
        q->upgrade = info.upgrade_seen && info.conn_upgrade;
    } else {
        q->keep_alive = info.conn_keep_alive && !info.conn_close;
    }
    return 0;
}

/* Empty lines before the request-line are skipped (RFC 9112 2.2: a client
 * may send a CRLF after a POST body); they count in head_len and against
 * max_header_bytes. */
int http_parse_request(http_request_t *req, const char *buf, size_t len, const http_limits_t *lim,
                       http_field_t *fields, size_t cap, http_reject_t *ret_reason)
{
    http_request_t q = {0};
    http_reject_t why = HTTP_REJECT_NONE;
    http_scan_t s = {.p = (const unsigned char *)buf, .len = len};
    size_t i = 0, line_lim;
    bool absolute = false;
    int rc;

    assert(lim && (fields || cap == 0));
    http_scan_limit(&s, lim->max_header_bytes, HTTP_REJECT_HEADERS_TOO_LARGE);
    while (i < s.end && (s.p[i] == '\r' || s.p[i] == '\n')) {
        rc = http_scan_crlf(&s, i, &why);
        if (rc < 0)
            goto out;
        i += 2;
    }

    line_lim = lim->max_request_line > SIZE_MAX - i ? SIZE_MAX : i + lim->max_request_line;
    if (line_lim <= lim->max_header_bytes)
        http_scan_limit(&s, line_lim, HTTP_REJECT_URI_TOO_LONG);
    rc = parse_request_line(&s, &i, &q, &absolute, &why);
    if (rc < 0)
        goto out;

    http_scan_limit(&s, lim->max_header_bytes, HTTP_REJECT_HEADERS_TOO_LARGE);
    q.fields = fields;
    rc = http_parse_fields(&s, &i, fields, lim->max_headers < cap ? lim->max_headers : cap,
                           &q.nfields, &why);
    if (rc < 0)
        goto out;
    q.head_len = i;

    rc = finish_request(&q, absolute, &why);
    if (rc < 0)
        goto out;
    *req = q;
out:
    if (ret_reason)
        *ret_reason = why;
    return rc;
}
