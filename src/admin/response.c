/* The admin's responses: the admin_response_* functions handlers call, the
 * routing of a request to a handler (with the built-in 404, 405 and 500
 * answers), and the serialisation of the status line and fields. Pure
 * functions of their arguments; the connection code in admin.c decides when
 * they run and sends what they produce. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_int.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define JSON "application/json"

void response_init(admin_response_t *res, size_t max_response, size_t max_metrics)
{
    res->status = 200;
    res->ctype = TEXT_PLAIN;
    res->body = NULL;
    res->len = res->cap = 0;
    res->max = max_response;
    res->prom = NULL;
    res->max_metrics = max_metrics;
    res->err = 0;
    res->allow[0] = 0;
}

void response_reset(admin_response_t *res)
{
    free(res->body);
    prom_free(res->prom);
    response_init(res, res->max, res->max_metrics);
}

str_t response_body(const admin_response_t *res)
{
    return res->prom ? prom_str(res->prom) : str_from(res->body, res->len);
}

void admin_response_status(admin_response_t *res, int status)
{
    assert(status >= 200 && status <= 599); /* 1xx are the server's business */
    res->status = status;
}

void admin_response_type(admin_response_t *res, const char *content_type)
{
    assert(content_type && !strpbrk(content_type, "\r\n"));
    res->ctype = content_type;
}

static int remember(admin_response_t *res, int err)
{
    if (err < 0 && !res->err)
        res->err = err;
    return err;
}

/* Room for n more bytes. The body grows as written rather than being
 * allocated at max_response: most answers are a few bytes of JSON. */
static int reserve(admin_response_t *res, size_t n)
{
    if (res->err)
        return res->err;
    if (n > res->max - res->len)
        return remember(res, -ENOSPC);
    if (res->len + n <= res->cap)
        return 0;
    size_t cap = res->cap ? res->cap : 512;
    while (cap < res->len + n)
        cap *= 2;
    if (cap > res->max)
        cap = res->max;
    char *b = realloc(res->body, cap);
    if (!b)
        return remember(res, -ENOMEM);
    res->body = b;
    res->cap = cap;
    return 0;
}

int admin_response_append(admin_response_t *res, const void *p, size_t n)
{
    int err = reserve(res, n);
    if (err < 0 || n == 0)
        return err;
    memcpy(res->body + res->len, p, n);
    res->len += n;
    return 0;
}

int admin_response_printf(admin_response_t *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap); /* measure, then write in place */
    va_end(ap);
    if (n < 0)
        return remember(res, -EINVAL);
    /* One more for vsnprintf's NUL, which len then leaves out. */
    int err = reserve(res, (size_t)n + 1);
    if (err < 0)
        return err;
    va_start(ap, fmt);
    vsnprintf(res->body + res->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    res->len += (size_t)n;
    return 0;
}

/* Clears the body, the writer and the error: for answers that replace
 * whatever a handler wrote. */
static void clear_body(admin_response_t *res)
{
    res->len = 0;
    prom_free(res->prom);
    res->prom = NULL;
    res->err = 0;
}

int admin_response_error(admin_response_t *res, int status, const char *msg)
{
    clear_body(res);
    admin_response_status(res, status);
    res->ctype = JSON;
    int err = admin_response_append(res, "{\"error\": \"", 11);
    for (const unsigned char *c = (const unsigned char *)msg; *c && !err; c++) {
        if (*c == '"' || *c == '\\')
            err = admin_response_printf(res, "\\%c", *c);
        else if (*c < 0x20)
            err = admin_response_printf(res, "\\u%04x", *c);
        else
            err = admin_response_append(res, c, 1);
    }
    if (!err)
        err = admin_response_append(res, "\"}\n", 3);
    return err;
}

prom_t *admin_response_prom(admin_response_t *res)
{
    if (!res->prom) {
        res->prom = prom_new(res->max_metrics);
        if (!res->prom)
            return NULL;
    }
    res->ctype = PROM_CONTENT_TYPE;
    return res->prom;
}

static void run_handler(const admin_route_t *r, void *ud, const admin_request_t *req,
                        admin_response_t *res)
{
    int err = r->handler(req, res, ud);
    if (err < 0 || res->err || (res->prom && prom_error(res->prom)))
        admin_response_error(res, 500, "internal error");
}

/* "GET, HEAD, POST": the methods routed for path, each once; HEAD wherever
 * GET is, since GET's handler serves it. */
static void build_allow(const admin_route_t *routes, size_t n, str_t path, char *out, size_t size)
{
    size_t len = 0;
    bool get = false, head = false;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (!str_eq(path, str_cstr(routes[i].path)))
            continue;
        const char *m = routes[i].method;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = str_eq(path, str_cstr(routes[j].path)) && strcmp(routes[j].method, m) == 0;
        get |= strcmp(m, "GET") == 0;
        head |= strcmp(m, "HEAD") == 0;
        if (dup)
            continue;
        int w = snprintf(out + len, size - len, "%s%s", len ? ", " : "", m);
        if (w < 0 || (size_t)w >= size - len) {
            out[len] = 0; /* keep whole names only */
            return;
        }
        len += (size_t)w;
    }
    if (get && !head)
        snprintf(out + len, size - len, ", HEAD");
}

void response_route(const admin_route_t *routes, size_t nroutes, void *ud,
                    const admin_request_t *req, admin_response_t *res)
{
    bool known = false;
    const admin_route_t *get = NULL;
    bool is_head = str_eq(req->method, STR_LIT("HEAD"));

    for (size_t i = 0; i < nroutes; i++) {
        const admin_route_t *r = &routes[i];
        if (!str_eq(req->path, str_cstr(r->path)))
            continue;
        known = true;
        if (str_eq(req->method, str_cstr(r->method))) {
            run_handler(r, ud, req, res);
            return;
        }
        if (is_head && !get && strcmp(r->method, "GET") == 0)
            get = r;
    }
    if (get) {
        run_handler(get, ud, req, res);
        return;
    }
    if (!known) {
        admin_response_error(res, 404, "not found");
        return;
    }
    build_allow(routes, nroutes, req->path, res->allow, sizeof(res->allow));
    admin_response_error(res, 405, "method not allowed");
}

/* IMF-fixdate (RFC 9110 5.6.7), independent of the locale. */
static void format_date(uint64_t wall_ms, char *out, size_t n)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int response_head(const admin_response_t *res, buf_t *out, uint64_t wall_ms, size_t body_len,
                  bool keep_alive, bool http10)
{
    char date[40];
    format_date(wall_ms, date, sizeof(date));
    int err = buf_appendf(out,
                          "HTTP/1.1 %d %s\r\n"
                          "Date: %s\r\n"
                          "Cache-Control: no-store\r\n",
                          res->status, http_status_text(res->status), date);
    if (!err && !response_bodyless(res->status))
        err = buf_appendf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n", res->ctype, body_len);
    if (!err && res->allow[0])
        err = buf_appendf(out, "Allow: %s\r\n", res->allow);
    if (!err && !keep_alive)
        err = buf_appendf(out, "Connection: close\r\n");
    else if (!err && http10)
        err = buf_appendf(out, "Connection: keep-alive\r\n");
    if (!err)
        err = buf_append(out, "\r\n", 2);
    return err;
}

str_t admin_query_param(str_t q, const char *name)
{
    str_t key = str_cstr(name);
    while (q.len) {
        const char *amp = memchr(q.p, '&', q.len);
        str_t kv = str_from(q.p, amp ? (size_t)(amp - q.p) : q.len);
        if (kv.len > key.len && kv.p[key.len] == '=' && !memcmp(kv.p, key.p, key.len))
            return str_from(kv.p + key.len + 1, kv.len - key.len - 1);
        if (!amp)
            break;
        q.len -= (size_t)(amp - q.p) + 1;
        q.p = amp + 1;
    }
    return STR_NULL;
}
