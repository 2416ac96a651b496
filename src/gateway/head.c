/* Request and response head rewriting: see head.h. */
#include "gateway/head.h"

#include <errno.h>
#include <stdio.h>

#define APPEND(s)                                                                                  \
    do {                                                                                           \
        if (buf_append_str(out, (s)) < 0)                                                          \
            return -ENOSPC;                                                                        \
    } while (0)
#define APPEND_LIT(lit) APPEND(STR_LIT(lit))

static const str_t H_CONNECTION = STR_LIT("Connection");
static const str_t H_XFF = STR_LIT("X-Forwarded-For");
static const str_t H_XFP = STR_LIT("X-Forwarded-Proto");
static const str_t H_FORWARDED = STR_LIT("Forwarded");
static const str_t H_REQID = STR_LIT("X-Request-Id");
static const str_t H_HOST = STR_LIT("Host");
static const str_t H_UPGRADE = STR_LIT("Upgrade");

/* The Connection fields of a head, found once per head rather than once per
 * field: a field is hop-by-hop if the standard list names it or any of them
 * does. Heads with more than 8 Connection fields are refused upstream of here
 * in practice; past 8 the rest are treated as one more reason to drop. */
typedef struct {
    str_t values[8];
    size_t n;
} connection_t;

static void connection_collect(connection_t *c, const http_field_t *fields, size_t n)
{
    c->n = 0;
    for (size_t i = 0; i < n && c->n < 8; i++)
        if (str_case_eq(fields[i].name, H_CONNECTION))
            c->values[c->n++] = fields[i].value;
}

static bool is_hop(const connection_t *c, str_t name)
{
    if (c->n == 0)
        return http_field_is_hop_by_hop(name, STR_NULL);
    for (size_t i = 0; i < c->n; i++)
        if (http_field_is_hop_by_hop(name, c->values[i]))
            return true;
    return false;
}

static int append_field(buf_t *out, str_t name, str_t value)
{
    APPEND(name);
    APPEND_LIT(": ");
    APPEND(value);
    APPEND_LIT("\r\n");
    return 0;
}

str_t head_client_request_id(const http_request_t *req)
{
    const http_field_t *f = http_field_find(req->fields, req->nfields, H_REQID);
    if (!f || f->value.len == 0 || f->value.len > 64)
        return STR_NULL;
    for (size_t i = 0; i < f->value.len; i++) {
        char c = f->value.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return STR_NULL;
    }
    return f->value;
}

static int write_request_line(buf_t *out, const http_request_t *req)
{
    APPEND(req->method);
    APPEND_LIT(" ");
    if (req->target.len && req->target.p[0] != '/' && req->target.p[0] != '*' &&
        !str_eq(req->method, STR_LIT("CONNECT"))) {
        /* absolute-form: servers get origin-form (RFC 9112 3.2.1) */
        APPEND(req->path);
        if (req->query.len) {
            APPEND_LIT("?");
            APPEND(req->query);
        }
    } else {
        APPEND(req->target);
    }
    APPEND(req->minor ? STR_LIT(" HTTP/1.1\r\n") : STR_LIT(" HTTP/1.0\r\n"));
    return 0;
}

/* Forwarded (RFC 7239) wants IPv6 quoted and bracketed, hosts quoted. */
static int write_forwarded_element(buf_t *out, const http_request_t *req,
                                   const head_request_ctx_t *ctx)
{
    bool v6 = ctx->client_ip.len && memchr(ctx->client_ip.p, ':', ctx->client_ip.len);
    APPEND(v6 ? STR_LIT("for=\"[") : STR_LIT("for="));
    APPEND(ctx->client_ip);
    if (v6)
        APPEND_LIT("]\"");
    /* host= repeats the Host value: only when short, so that the growth of a
     * rewritten head stays bounded (the proxy reserves 4 KiB for it). */
    if (req->host.len && req->host.len <= 255) {
        bool plain = true;
        for (size_t i = 0; i < req->host.len; i++)
            if (req->host.p[i] == '"' || req->host.p[i] == '\\')
                plain = false;
        if (plain) {
            APPEND_LIT(";host=\"");
            APPEND(req->host);
            APPEND_LIT("\"");
        }
    }
    APPEND_LIT(";proto=");
    APPEND(ctx->proto);
    return 0;
}

/* One combined field from every field named `name`, then `last` appended. */
static int write_joined(buf_t *out, const http_request_t *req, str_t name, str_t last,
                        const head_request_ctx_t *ctx)
{
    APPEND(name);
    APPEND_LIT(": ");
    for (size_t i = 0; i < req->nfields; i++) {
        if (!str_case_eq(req->fields[i].name, name) || req->fields[i].value.len == 0)
            continue;
        APPEND(req->fields[i].value);
        APPEND_LIT(", ");
    }
    if (last.p)
        APPEND(last);
    else if (write_forwarded_element(out, req, ctx) < 0)
        return -ENOSPC;
    APPEND_LIT("\r\n");
    return 0;
}

int head_write_request(buf_t *out, const http_request_t *req, const head_request_ctx_t *ctx)
{
    bool absolute = req->target.len && req->target.p[0] != '/' && req->target.p[0] != '*';
    connection_t conn;
    connection_collect(&conn, req->fields, req->nfields);
    if (write_request_line(out, req) < 0)
        return -ENOSPC;
    for (size_t i = 0; i < req->nfields; i++) {
        const http_field_t *f = &req->fields[i];
        if (is_hop(&conn, f->name))
            continue;
        if (str_case_eq(f->name, H_XFF) || str_case_eq(f->name, H_XFP) ||
            str_case_eq(f->name, H_FORWARDED) || str_case_eq(f->name, H_REQID))
            continue;
        if (absolute && str_case_eq(f->name, H_HOST))
            continue;
        if (append_field(out, f->name, f->value) < 0)
            return -ENOSPC;
    }
    if (absolute && append_field(out, H_HOST, req->host) < 0)
        return -ENOSPC;
    if (req->body == HTTP_BODY_CHUNKED)
        APPEND_LIT("Transfer-Encoding: chunked\r\n");
    if (req->upgrade) {
        const http_field_t *u = http_field_find(req->fields, req->nfields, H_UPGRADE);
        if (u && append_field(out, H_UPGRADE, u->value) < 0)
            return -ENOSPC;
        APPEND_LIT("Connection: upgrade\r\n");
    }
    if (write_joined(out, req, H_XFF, ctx->client_ip, ctx) < 0 ||
        write_joined(out, req, H_FORWARDED, STR_NULL, ctx) < 0)
        return -ENOSPC;
    APPEND_LIT("X-Forwarded-Proto: ");
    APPEND(ctx->proto);
    APPEND_LIT("\r\n");
    if (append_field(out, H_REQID, ctx->request_id) < 0)
        return -ENOSPC;
    APPEND_LIT("\r\n");
    return 0;
}

int head_write_response(buf_t *out, const http_response_t *res, int client_minor, bool keep_alive,
                        str_t request_id, const head_added_t *added)
{
    bool has[HEAD_ADDED_MAX] = {false};
    unsigned nadded = added ? added->n : 0;
    /* by hand: this runs for every response, printf is measurable here */
    char line[13] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + res->status / 100 % 10);
    line[10] = (char)('0' + res->status / 10 % 10);
    line[11] = (char)('0' + res->status % 10);
    APPEND(str_from(line, sizeof(line)));
    APPEND(res->reason);
    APPEND_LIT("\r\n");
    bool has_reqid = false;
    connection_t conn;
    connection_collect(&conn, res->fields, res->nfields);
    for (size_t i = 0; i < res->nfields; i++) {
        const http_field_t *f = &res->fields[i];
        if (is_hop(&conn, f->name))
            continue;
        has_reqid |= str_case_eq(f->name, H_REQID);
        for (unsigned k = 0; k < nadded; k++)
            has[k] |= str_case_eq(f->name, added->name[k]);
        if (append_field(out, f->name, f->value) < 0)
            return -ENOSPC;
    }
    if (res->body == HTTP_BODY_CHUNKED)
        APPEND_LIT("Transfer-Encoding: chunked\r\n");
    if (res->status == 101) {
        const http_field_t *u = http_field_find(res->fields, res->nfields, H_UPGRADE);
        if (u && append_field(out, H_UPGRADE, u->value) < 0)
            return -ENOSPC;
        APPEND_LIT("Connection: upgrade\r\n");
    } else if (res->status >= 200) {
        if (!keep_alive)
            APPEND_LIT("Connection: close\r\n");
        else if (client_minor == 0)
            APPEND_LIT("Connection: keep-alive\r\n");
    }
    if (!has_reqid && request_id.len && append_field(out, H_REQID, request_id) < 0)
        return -ENOSPC;
    for (unsigned k = 0; k < nadded; k++)
        if (!has[k] && append_field(out, added->name[k], added->value[k]) < 0)
            return -ENOSPC;
    APPEND_LIT("\r\n");
    return 0;
}

int head_write_redirect(buf_t *out, str_t host, unsigned port, str_t target, str_t request_id)
{
    APPEND_LIT("HTTP/1.1 308 Permanent Redirect\r\nLocation: https://");
    APPEND(host);
    if (port != 443 && buf_appendf(out, ":%u", port) < 0)
        return -ENOSPC;
    /* an absolute-form target (http://host/path): keep only its path */
    if (target.len && target.p[0] != '/') {
        const char *p = memchr(target.p, '/', target.len);
        const char *path = p && p + 1 < target.p + target.len && p[1] == '/'
                               ? memchr(p + 2, '/', (size_t)(target.p + target.len - p - 2))
                               : NULL;
        target = path ? str_from(path, (size_t)(target.p + target.len - path)) : STR_LIT("/");
    }
    APPEND(target);
    APPEND_LIT("\r\nContent-Length: 0\r\nConnection: close\r\n");
    if (request_id.len && append_field(out, H_REQID, request_id) < 0)
        return -ENOSPC;
    APPEND_LIT("\r\n");
    return 0;
}

int head_write_error(buf_t *out, int status, bool head_method, str_t request_id, str_t extra)
{
    const char *text = http_status_text(status);
    char body[96];
    int blen = snprintf(body, sizeof(body), "%d %s\n", status, text);
    int r = buf_appendf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n",
                        status, text, blen);
    if (r < 0)
        return r;
    if (request_id.len && append_field(out, H_REQID, request_id) < 0)
        return -ENOSPC;
    if (extra.len)
        APPEND(extra);
    APPEND_LIT("\r\n");
    if (!head_method)
        APPEND(str_from(body, (size_t)blen));
    return 0;
}
