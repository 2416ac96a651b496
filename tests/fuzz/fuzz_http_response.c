/* libFuzzer target for the response-head parser. Each input is parsed as
 * the answer to a GET and to a HEAD; the checks are the parser's contract:
 * views inside the head, prefixes of a good head ask for more, prefixes of
 * a bad one are refused for the same reason or ask for more, the body kind
 * agrees with the status and the request method, and a chunked body that
 * follows is scanned. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

#define CAP 64

static const http_limits_t lim = {
    .max_request_line = 4096, .max_header_bytes = 16384, .max_headers = CAP};

static void inside(str_t v, const char *buf, size_t len)
{
    if (v.len && (v.p < buf || v.p + v.len > buf + len))
        abort();
}

static void check_response(const http_response_t *r, const char *buf, size_t len, bool head)
{
    if (r->head_len < 4 || r->head_len > len || memcmp(buf + r->head_len - 4, "\r\n\r\n", 4))
        abort();
    if (r->status < 100 || r->status > 599 || (r->minor != 0 && r->minor != 1))
        abort();
    if (r->nfields > CAP)
        abort();
    bool empty = head || r->status < 200 || r->status == 204 || r->status == 304;
    if (empty != (r->body == HTTP_BODY_NONE))
        abort();
    if (r->body == HTTP_BODY_CLOSE && r->keep_alive)
        abort();
    inside(r->reason, buf, r->head_len);
    for (size_t i = 0; i < r->nfields; i++) {
        inside(r->fields[i].name, buf, r->head_len);
        inside(r->fields[i].value, buf, r->head_len);
    }
}

static void one(const char *buf, size_t len, bool head)
{
    static http_field_t fields[CAP], fields2[CAP];
    http_response_t r, r2;
    http_reject_t why = HTTP_REJECT_NONE, why2 = HTTP_REJECT_NONE;
    int rc = http_parse_response(&r, buf, len, &lim, head, fields, CAP, &why);

    if (rc == 0) {
        check_response(&r, buf, len, head);
        if (http_parse_response(&r2, buf, r.head_len - 1, &lim, head, fields2, CAP, &why2) !=
            -EAGAIN)
            abort();
        if (r.body == HTTP_BODY_CHUNKED) {
            http_chunked_t c;
            size_t used = 0;
            http_chunked_init(&c, 256, 1024);
            rc = http_chunked_scan(&c, buf + r.head_len, len - r.head_len, &used, &why);
            if (rc == 0 && (used > len - r.head_len || c.data_total > used))
                abort();
        }
    } else if (rc == -EBADMSG) {
        if (why <= HTTP_REJECT_NONE || why >= HTTP_REJECT_COUNT)
            abort();
        for (size_t n = len / 2; n < len; n += (len - n + 1) / 2) {
            int rc2 = http_parse_response(&r2, buf, n, &lim, head, fields2, CAP, &why2);
            if (rc2 == 0 || (rc2 == -EBADMSG && why2 != why))
                abort();
        }
    } else if (rc != -EAGAIN) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one((const char *)data, size, false);
    one((const char *)data, size, true);
    return 0;
}
