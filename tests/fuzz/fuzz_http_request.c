/* libFuzzer target for the request-head parser, run as a pipelined stream:
 * parse a head, skip its body (Content-Length, or the chunked scanner), and
 * go on with the next request, as a client connection would. Besides
 * crashes and sanitizer reports it checks the parser's contract: every view
 * lies inside the head, a good head's prefixes ask for more bytes, a bad
 * input's prefixes are never accepted and are refused for the same reason,
 * and tighter limits never accept what looser ones refuse. */
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

static void check_request(const http_request_t *q, const char *buf, size_t len)
{
    if (q->head_len < 4 || q->head_len > len || memcmp(buf + q->head_len - 4, "\r\n\r\n", 4))
        abort();
    if (q->method.len == 0 || q->target.len == 0 || (q->minor != 0 && q->minor != 1))
        abort();
    if (q->nfields > CAP || (q->body == HTTP_BODY_LENGTH && q->content_length > INT64_MAX))
        abort();
    if (q->body != HTTP_BODY_NONE && q->body != HTTP_BODY_LENGTH && q->body != HTTP_BODY_CHUNKED)
        abort();
    inside(q->method, buf, q->head_len);
    inside(q->target, buf, q->head_len);
    if (q->path.p != NULL && !(q->path.len == 1 && q->path.p[0] == '/'))
        inside(q->path, buf, q->head_len);
    inside(q->query, buf, q->head_len);
    inside(q->host, buf, q->head_len);
    for (size_t i = 0; i < q->nfields; i++) {
        inside(q->fields[i].name, buf, q->head_len);
        inside(q->fields[i].value, buf, q->head_len);
        if (q->fields[i].name.len == 0)
            abort();
    }
}

/* One head at buf[0, len). Returns its rc; *q and *why as the parser left them. */
static int one(const char *buf, size_t len, http_request_t *q, http_reject_t *why)
{
    static http_field_t fields[CAP], fields2[CAP];
    http_request_t q2;
    http_reject_t why2 = HTTP_REJECT_NONE;
    int rc = http_parse_request(q, buf, len, &lim, fields, CAP, why);

    if (rc == 0) {
        check_request(q, buf, len);
        if (http_parse_request(&q2, buf, q->head_len, &lim, fields2, CAP, &why2) != 0 ||
            q2.head_len != q->head_len || q2.body != q->body || q2.nfields != q->nfields ||
            q2.keep_alive != q->keep_alive || q2.content_length != q->content_length)
            abort();
        if (http_parse_request(&q2, buf, q->head_len - 1, &lim, fields2, CAP, &why2) != -EAGAIN)
            abort();
        /* Tighter limits may refuse, but only for a limit. */
        http_limits_t tight = {q->head_len - 1, q->head_len - 1, q->nfields};
        if (http_parse_request(&q2, buf, len, &tight, fields2, CAP, &why2) == 0)
            abort();
    } else if (rc == -EBADMSG) {
        if (*why <= HTTP_REJECT_NONE || *why >= HTTP_REJECT_COUNT || http_reject_status(*why) < 400)
            abort();
        for (size_t n = len / 2; n < len; n += (len - n + 1) / 2) {
            int rc2 = http_parse_request(&q2, buf, n, &lim, fields2, CAP, &why2);
            if (rc2 == 0 || (rc2 == -EBADMSG && why2 != *why))
                abort();
        }
    } else if (rc == -EAGAIN) {
        if (http_parse_request(&q2, buf, len / 2, &lim, fields2, CAP, &why2) != -EAGAIN)
            abort();
    } else {
        abort();
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;

    for (int n = 0; n < 16 && off < size; n++) {
        http_request_t q;
        http_reject_t why = HTTP_REJECT_NONE;
        if (one(buf + off, size - off, &q, &why) != 0)
            break;
        off += q.head_len;
        if (q.body == HTTP_BODY_LENGTH) {
            if (q.content_length > size - off)
                break;
            off += q.content_length;
        } else if (q.body == HTTP_BODY_CHUNKED) {
            http_chunked_t c;
            size_t used = 0;
            http_chunked_init(&c, 256, 1024);
            if (http_chunked_scan(&c, buf + off, size - off, &used, &why) != 0)
                break;
            if (used > size - off || c.data_total > used)
                abort();
            off += used;
        }
        if (!q.keep_alive)
            break;
    }
    return 0;
}
