/* The response-head parser (RFC 9112 section 4 and 6.3). It reads what an
 * upstream server sends back and decides how the body is framed. A
 * response the proxy cannot frame without guessing (Content-Length with
 * Transfer-Encoding, a bad Content-Length) is refused, and the proxy answers
 * the client 502 instead of relaying bytes whose end it does not know.
 * Like the request parser it keeps no state between calls. */
#include <assert.h>

#include "http/http.h"
#include "http/parse_common.h"

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF.
 * "HTTP/1.1 200\r\n" (no SP, no reason) is accepted too: common in the
 * wild, and unambiguous. */
static int parse_status_line(const http_scan_t *s, size_t *pos, http_response_t *res,
                             http_reject_t *r)
{
    const unsigned char *p = s->p;
    size_t i = *pos;
    int major, minor, rc;

    rc = http_parse_version(s, &i, &major, &minor, HTTP_REJECT_BAD_STATUS_LINE, r);
    if (rc < 0)
        return rc;
    if (i >= s->end)
        return http_scan_need(s, i, r);
    if (p[i] != ' ')
        return http_reject_at(s, i, HTTP_REJECT_BAD_STATUS_LINE, r);
    if (major != 1 || minor > 1)
        return http_reject(r, HTTP_REJECT_UNSUPPORTED_VERSION);
    res->minor = minor;

    int status = 0;
    for (int k = 0; k < 3; k++) {
        if (++i >= s->end)
            return http_scan_need(s, i, r);
        if (p[i] < '0' || p[i] > '9')
            return http_reject_at(s, i, HTTP_REJECT_BAD_STATUS_LINE, r);
        status = status * 10 + (p[i] - '0');
    }
    if (status < 100 || status > 599)
        return http_reject(r, HTTP_REJECT_BAD_STATUS_LINE);
    res->status = status;

    if (++i >= s->end)
        return http_scan_need(s, i, r);
    size_t rstart = i;
    if (p[i] == ' ') {
        rstart = ++i;
        i = http_skip_value(p, i, s->end);
        if (i == s->end)
            return http_scan_need(s, i, r);
    }
    if (p[i] != '\r' && p[i] != '\n')
        return http_reject(r, HTTP_REJECT_BAD_STATUS_LINE);
    rc = http_scan_crlf(s, i, r);
    if (rc < 0)
        return rc;
    res->reason = str_from((const char *)p + rstart, i - rstart);
    *pos = i + 2;
    return 0;
}

static int finish_response(http_response_t *res, bool head_request, http_reject_t *r)
{
    http_head_info_t info;
    int rc = http_head_info(res->fields, res->nfields, &info, r);
    if (rc < 0)
        return rc;

    /* Refused even where the body is known to be empty (HEAD, 204, 304):
     * a server that sends these is confused, and so might the next hop be. */
    if (info.cl_seen && info.te_seen)
        return http_reject(r, HTTP_REJECT_CL_AND_TE);
    if (info.cl_bad)
        return http_reject(r, HTTP_REJECT_BAD_CONTENT_LENGTH);
    if (info.te_seen) {
        /* RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has
         * faulty framing. */
        if (res->minor == 0)
            return http_reject(r, HTTP_REJECT_TE_ON_HTTP10);
        if (info.te_bad)
            return http_reject(r, HTTP_REJECT_BAD_TRANSFER_ENCODING);
    }

    int st = res->status;
    if (head_request || st < 200 || st == 204 || st == 304) {
        res->body = HTTP_BODY_NONE;
    } else if (info.te_seen) {
        /* Not ending in chunked: only the close of the connection ends it. */
        res->body = info.te_chunked_last ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
    } else if (info.cl_seen) {
        res->body = HTTP_BODY_LENGTH;
        res->content_length = info.content_length;
    } else {
        res->body = HTTP_BODY_CLOSE;
    }
    if (info.cl_seen)
        res->content_length = info.content_length;

    if (res->minor == 1)
        res->keep_alive = !info.conn_close;
    else
        res->keep_alive = info.conn_keep_alive && !info.conn_close;
    if (res->body == HTTP_BODY_CLOSE)
        res->keep_alive = false;
    res->upgrade = st == 101 && info.upgrade_seen;
    return 0;
}

int http_parse_response(http_response_t *res, const char *buf, size_t len, const http_limits_t *lim,
                        bool head_request, http_field_t *fields, size_t cap,
                        http_reject_t *ret_reason)
{
    http_response_t q = {0};
    http_reject_t why = HTTP_REJECT_NONE;
    http_scan_t s = {.p = (const unsigned char *)buf, .len = len};
    size_t i = 0;
    int rc;

    assert(lim && (fields || cap == 0));
    /* max_request_line has no meaning here; the whole head is bounded. */
    http_scan_limit(&s, lim->max_header_bytes, HTTP_REJECT_HEADERS_TOO_LARGE);
    rc = parse_status_line(&s, &i, &q, &why);
    if (rc < 0)
        goto out;
    q.fields = fields;
    rc = http_parse_fields(&s, &i, fields, lim->max_headers < cap ? lim->max_headers : cap,
                           &q.nfields, &why);
    if (rc < 0)
        goto out;
    q.head_len = i;
    rc = finish_response(&q, head_request, &why);
    if (rc < 0)
        goto out;
    *res = q;
out:
    if (ret_reason)
        *ret_reason = why;
    return rc;
}
