/* Unit tests for src/admin: a real admin_t on a loop running in its own
 * thread, on 127.0.0.1 with an ephemeral port, driven through real sockets.
 * Covers the routes and built-in answers (200, HEAD, 404, 405 with Allow,
 * 400 for what the strict parser refuses, 411, 413, 500), keep-alive and
 * pipelining, bodies larger than the head buffer, 100-continue, a metrics
 * page, the connection cap (the 65th is closed at once) and the header and
 * idle timeouts. Handlers run on the loop thread; the test only talks to the
 * server through sockets, and stops it with loop_async. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin/admin.h"

/* ---- the server under test ---- */

typedef struct {
    loop_t *loop;
    admin_t *admin;
    loop_async_t stop;
    pthread_t thread;
    sock_addr_t addr;
} server_t;

static int h_healthz(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    (void)ud;
    return admin_response_append(res, "ok\n", 3);
}

static int h_echo(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)ud;
    admin_response_type(res, "application/octet-stream");
    return admin_response_append(res, req->body.p, req->body.len);
}

static int h_query(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)ud;
    const http_field_t *f =
        http_field_find(req->http->fields, req->http->nfields, STR_LIT("X-Test"));
    return admin_response_printf(res, "query=%.*s x-test=%.*s", STR_FMT(req->query),
                                 f ? (int)f->value.len : 0, f ? f->value.p : "");
}

static int h_conns(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    server_t *s = ud;
    return admin_response_printf(res, "%zu", admin_connections(s->admin));
}

static int h_fail(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    (void)ud;
    admin_response_append(res, "partial", 7); /* replaced by the 500 */
    return -EIO;
}

static int h_created(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    (void)ud;
    admin_response_status(res, 201);
    admin_response_type(res, "application/json");
    return admin_response_printf(res, "{\"id\": %d}", 7);
}

static int h_metrics(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    (void)ud;
    prom_t *p = admin_response_prom(res);
    if (!p)
        return -ENOMEM;
    prom_family(p, "surety_admin_test_total", PROM_COUNTER, "A test counter.");
    for (int i = 0; i < 100; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        prom_counter(p, "surety_admin_test_total", PROM_LABELS({"i", v}), (uint64_t)i);
    }
    return 0; /* an overflow is prom's sticky error: the admin answers 500 */
}

static const admin_route_t routes[] = {
    {"GET", "/healthz", h_healthz, "Liveness: 200 ok."},
    {"GET", "/metrics", h_metrics, "Prometheus metrics."},
    {"POST", "/echo", h_echo, "Echoes the request body."},
    {"PUT", "/echo", h_echo, "Echoes the request body."},
    {"GET", "/query", h_query, "Shows the query and X-Test."},
    {"GET", "/conns", h_conns, "Admin connections open."},
    {"GET", "/fail", h_fail, "Fails."},
    {"POST", "/created", h_created, "201 with JSON."},
};

static void stop_cb(loop_t *loop, loop_async_t *a)
{
    (void)a;
    loop_stop(loop);
}

static void *server_thread(void *arg)
{
    server_t *s = arg;
    loop_run(s->loop);
    return NULL;
}

static server_t *server_start(const admin_limits_t *lim)
{
    server_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->loop = loop_new();
    assert_non_null(s->loop);
    sock_addr_t any;
    assert_int_equal(sock_addr_parse("127.0.0.1:0", 11, &any), 0);
    int err = 0;
    s->admin = admin_new(s->loop, &any, routes, sizeof(routes) / sizeof(routes[0]), lim, s, &err);
    assert_non_null(s->admin);
    assert_int_equal(admin_local_addr(s->admin, &s->addr), 0);
    assert_true(sock_addr_port(&s->addr) > 0);
    assert_int_equal(loop_async_init(s->loop, &s->stop, stop_cb), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, server_thread, s), 0);
    return s;
}

static void server_stop(server_t *s)
{
    loop_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    admin_free(s->admin);
    loop_async_deinit(s->loop, &s->stop);
    loop_free(s->loop);
    free(s);
}

static int setup(void **state)
{
    *state = server_start(NULL);
    return 0;
}

static int teardown(void **state)
{
    server_stop(*state);
    return 0;
}

/* ---- a small blocking client ---- */

typedef struct {
    int fd;
    char buf[1 << 20];
    size_t len; /* bytes received and not yet consumed */
} client_t;

typedef struct {
    int status;
    char head[4096];
    char *body; /* NUL-terminated copy, freed by resp_free */
    size_t body_len;
} resp_t;

static client_t *client_open(const server_t *s)
{
    client_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    assert_int_equal(connect(c->fd, (const struct sockaddr *)&s->addr.ss, s->addr.len), 0);
    return c;
}

static void client_close(client_t *c)
{
    close(c->fd);
    free(c);
}

static void client_send(client_t *c, const char *data, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        data += w;
        n -= (size_t)w;
    }
}

static void client_sends(client_t *c, const char *data)
{
    client_send(c, data, strlen(data));
}

/* Reads more; returns bytes read, 0 at EOF, -errno (ECONNRESET, EAGAIN on timeout). */
static ssize_t client_fill(client_t *c)
{
    assert_true(c->len < sizeof(c->buf));
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n < 0)
        return -errno;
    c->len += (size_t)n;
    return n;
}

static void client_consume(client_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads one response; head_request: no body follows. */
static void client_read(client_t *c, resp_t *r, bool head_request)
{
    memset(r, 0, sizeof(*r));
    char *end;
    for (;;) {
        end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end)
            break;
        ssize_t n = client_fill(c);
        if (n <= 0)
            fail_msg("connection ended (%zd) before a response head", n);
    }
    size_t hl = (size_t)(end - c->buf) + 4;
    assert_true(hl < sizeof(r->head));
    memcpy(r->head, c->buf, hl);
    r->head[hl] = 0;
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    client_consume(c, hl);

    const char *cl = strstr(r->head, "\r\nContent-Length: ");
    size_t n = 0;
    if (cl && !head_request && r->status >= 200)
        n = strtoul(cl + 18, NULL, 10);
    while (c->len < n) {
        ssize_t got = client_fill(c);
        if (got <= 0)
            fail_msg("connection ended (%zd) inside a body", got);
    }
    r->body = malloc(n + 1);
    memcpy(r->body, c->buf, n);
    r->body[n] = 0;
    r->body_len = n;
    client_consume(c, n);
}

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

static bool head_has(const resp_t *r, const char *line)
{
    char want[256];
    snprintf(want, sizeof(want), "\r\n%s\r\n", line);
    return strstr(r->head, want) != NULL;
}

/* The server closed: EOF (or a reset) before the timeout, nothing else. */
static void assert_closed(client_t *c)
{
    ssize_t n = client_fill(c);
    while (n > 0)
        n = client_fill(c); /* a response may come first: the caller read it */
    if (n != 0 && n != -ECONNRESET)
        fail_msg("expected the server to close, got %zd", n);
}

static resp_t roundtrip(client_t *c, const char *req)
{
    resp_t r;
    client_sends(c, req);
    client_read(c, &r, strncmp(req, "HEAD ", 5) == 0);
    return r;
}

/* ---- tests ---- */

static void test_admin_route_answers_200(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    assert_true(head_has(&r, "Content-Type: text/plain; charset=utf-8"));
    assert_true(head_has(&r, "Content-Length: 3"));
    assert_true(head_has(&r, "Cache-Control: no-store"));
    assert_non_null(strstr(r.head, "\r\nDate: "));
    assert_null(strstr(r.head, "Connection:"));
    resp_free(&r);

    r = roundtrip(c, "GET /query?a=1&b=%20 HTTP/1.1\r\nHost: admin\r\nX-Test: hi\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "query=a=1&b=%20 x-test=hi");
    resp_free(&r);

    r = roundtrip(c, "POST /created HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(r.status, 201);
    assert_true(head_has(&r, "Content-Type: application/json"));
    assert_string_equal(r.body, "{\"id\": 7}");
    resp_free(&r);
    client_close(c);
}

static void test_admin_head_uses_get_and_sends_no_body(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, "HEAD /healthz HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_true(head_has(&r, "Content-Length: 3"));
    resp_free(&r);
    /* Had a body been sent, it would be read as this response's head. */
    r = roundtrip(c, "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    resp_free(&r);
    client_close(c);
}

static void test_admin_unknown_path_is_404_json(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, "GET /nope HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 404);
    assert_true(head_has(&r, "Content-Type: application/json"));
    assert_string_equal(r.body, "{\"error\": \"not found\"}\n");
    resp_free(&r);
    /* Paths match exactly: no prefix, no trailing-slash folding. */
    r = roundtrip(c, "GET /healthz/ HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 404);
    resp_free(&r);
    r = roundtrip(c, "GET /HEALTHZ HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* A 404 keeps the connection. */
    r = roundtrip(c, "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    client_close(c);
}

static void test_admin_wrong_method_is_405_with_allow(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, "POST /healthz HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(r.status, 405);
    assert_true(head_has(&r, "Allow: GET, HEAD"));
    assert_string_equal(r.body, "{\"error\": \"method not allowed\"}\n");
    resp_free(&r);
    r = roundtrip(c, "DELETE /echo HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 405);
    assert_true(head_has(&r, "Allow: POST, PUT"));
    resp_free(&r);
    r = roundtrip(c, "HEAD /echo HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 405); /* HEAD borrows GET only */
    resp_free(&r);
    r = roundtrip(c, "get /healthz HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 405); /* methods are case-sensitive */
    resp_free(&r);
    client_close(c);
}

static void test_admin_keep_alive_serves_two_requests_on_one_connection(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = roundtrip(c, "GET /conns HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "1"); /* still the same, only connection */
    resp_free(&r);

    /* Pipelined: two requests in one write, two answers in order. */
    client_sends(c, "GET /query?n=1 HTTP/1.1\r\nHost: admin\r\n\r\n"
                    "GET /query?n=2 HTTP/1.1\r\nHost: admin\r\n\r\n");
    client_read(c, &r, false);
    assert_string_equal(r.body, "query=n=1 x-test=");
    resp_free(&r);
    client_read(c, &r, false);
    assert_string_equal(r.body, "query=n=2 x-test=");
    resp_free(&r);

    /* Connection: close is honoured: answered, then closed. */
    r = roundtrip(c, "GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_true(head_has(&r, "Connection: close"));
    resp_free(&r);
    assert_closed(c);
    client_close(c);

    /* HTTP/1.0 closes by default, keeps the connection when asked. */
    c = client_open(s);
    r = roundtrip(c, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_true(head_has(&r, "Connection: keep-alive"));
    resp_free(&r);
    r = roundtrip(c, "GET /healthz HTTP/1.0\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_true(head_has(&r, "Connection: close"));
    resp_free(&r);
    assert_closed(c);
    client_close(c);
}

static void expect_400(server_t *s, const char *req)
{
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, req);
    if (r.status != 400)
        fail_msg("status %d for %s", r.status, req);
    assert_true(head_has(&r, "Connection: close"));
    assert_true(head_has(&r, "Content-Type: application/json"));
    assert_non_null(strstr(r.body, "{\"error\": \""));
    resp_free(&r);
    assert_closed(c);
    client_close(c);
}

static void test_admin_malformed_request_is_400_and_closes(void **state)
{
    server_t *s = *state;
    expect_400(s, "GARBAGE\r\n\r\n");
    expect_400(s, "GET /healthz HTTP/1.1\r\n\r\n");                           /* no Host */
    expect_400(s, "GET /healthz HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n"); /* space in name */
    expect_400(s, "GET /healthz HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n"); /* space before colon */
    expect_400(s, "GET /healthz HTTP/1.1\nHost: a\n\n");                /* bare LF */
    expect_400(s, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                  "Content-Length: 2\r\n\r\nab");
}

static void test_admin_refuses_chunked_and_oversized_bodies(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "3\r\nabc\r\n0\r\n\r\n");
    assert_int_equal(r.status, 411);
    resp_free(&r);
    assert_closed(c);
    client_close(c);

    c = client_open(s);
    r = roundtrip(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n");
    assert_int_equal(r.status, 413);
    assert_true(head_has(&r, "Connection: close"));
    resp_free(&r);
    client_close(c);

    /* A head past 16 KiB. */
    c = client_open(s);
    char *big = malloc(20000);
    int n = snprintf(big, 20000, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(big + n, 'x', 17000);
    memcpy(big + n + 17000, "\r\n\r\n", 5);
    r = roundtrip(c, big);
    assert_int_equal(r.status, 431);
    resp_free(&r);
    free(big);
    client_close(c);
}

static void test_admin_bodies_larger_than_the_head_buffer(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    size_t n = 300 * 1000;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    char head[128];
    snprintf(head, sizeof(head), "PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", n);
    client_sends(c, head);
    client_send(c, body, n);
    client_sends(c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"); /* pipelined after it */
    resp_t r;
    client_read(c, &r, false);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, body, n);
    resp_free(&r);
    client_read(c, &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    resp_free(&r);

    /* A small body that fits with its head. */
    r = roundtrip(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    assert_string_equal(r.body, "hello");
    resp_free(&r);
    free(body);
    client_close(c);
}

static void test_admin_expect_100_continue(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    client_sends(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                    "Expect: 100-continue\r\n\r\n");
    resp_t r;
    client_read(c, &r, false);
    assert_int_equal(r.status, 100);
    resp_free(&r);
    client_sends(c, "ping");
    client_read(c, &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ping");
    resp_free(&r);
    client_close(c);
}

static void test_admin_handler_failure_is_500(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, "GET /fail HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "{\"error\": \"internal error\"}\n");
    resp_free(&r);
    r = roundtrip(c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"); /* connection survives */
    assert_int_equal(r.status, 200);
    resp_free(&r);
    client_close(c);
}

static void test_admin_metrics_page_from_a_prom_writer(void **state)
{
    server_t *s = *state;
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_true(head_has(&r, "Content-Type: " PROM_CONTENT_TYPE));
    assert_memory_equal(r.body, "# HELP surety_admin_test_total A test counter.\n", 47);
    assert_non_null(strstr(r.body, "surety_admin_test_total{i=\"99\"} 99\n"));
    resp_free(&r);
    client_close(c);
}

static void test_admin_65th_connection_is_closed_at_once(void **state)
{
    server_t *s = *state;
    client_t *c[64];
    for (int i = 0; i < 64; i++)
        c[i] = client_open(s);
    /* The last one asks: connections are accepted in order, so all 64 are in. */
    resp_t r = roundtrip(c[63], "GET /conns HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_string_equal(r.body, "64");
    resp_free(&r);

    client_t *extra = client_open(s); /* the kernel completes the handshake... */
    assert_closed(extra);             /* ...the admin accepts and closes it */
    client_close(extra);

    r = roundtrip(c[0], "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"); /* the others still work */
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* A freed slot is usable again. */
    client_close(c[1]);
    for (int tries = 0;; tries++) {
        r = roundtrip(c[63], "GET /conns HTTP/1.1\r\nHost: a\r\n\r\n");
        bool done = strcmp(r.body, "63") == 0;
        resp_free(&r);
        if (done)
            break;
        assert_true(tries < 100);
        usleep(10 * 1000);
    }
    client_t *again = client_open(s);
    r = roundtrip(again, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    client_close(again);
    for (int i = 0; i < 64; i++)
        if (i != 1)
            client_close(c[i]);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_admin_header_and_idle_timeouts_close(void **state)
{
    (void)state;
    admin_limits_t lim = admin_limits_default;
    lim.header_timeout_ms = 200;
    lim.idle_timeout_ms = 400;
    server_t *s = server_start(&lim);

    /* Deadlines are measured from before the step that arms them, so a
     * busy machine can only make them look longer; 20 ms of slack for the
     * loop's cached clock. */

    /* A head that never completes: closed at the header timeout, even though
     * bytes keep trickling in. */
    uint64_t t0 = now_ms();
    client_t *c = client_open(s);
    client_sends(c, "GET /healthz HTTP/1.1\r\n");
    usleep(100 * 1000);
    client_sends(c, "Host: a\r\n");
    assert_closed(c);
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 180 && dt < 5000);
    client_close(c);

    /* A silent new connection also gets the header timeout. */
    t0 = now_ms();
    c = client_open(s);
    assert_closed(c);
    dt = now_ms() - t0;
    assert_true(dt >= 180 && dt < 5000);
    client_close(c);

    /* Idle keep-alive connection: closed after the idle timeout. */
    c = client_open(s);
    t0 = now_ms();
    resp_t r = roundtrip(c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_closed(c);
    dt = now_ms() - t0;
    assert_true(dt >= 380 && dt < 5000);
    client_close(c);
    server_stop(s);
}

static void test_admin_metrics_page_past_its_bound_is_500(void **state)
{
    (void)state;
    admin_limits_t lim = admin_limits_default;
    lim.max_metrics = 1024;
    server_t *s = server_start(&lim);
    client_t *c = client_open(s);
    resp_t r = roundtrip(c, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(r.status, 500);
    assert_true(head_has(&r, "Content-Type: application/json"));
    resp_free(&r);
    client_close(c);
    server_stop(s);
}

static void test_admin_new_reports_address_in_use(void **state)
{
    server_t *s = *state;
    loop_t *loop = loop_new();
    int err = 0;
    admin_t *a = admin_new(loop, &s->addr, routes, 1, NULL, NULL, &err);
    assert_null(a);
    assert_int_equal(err, -EADDRINUSE);
    loop_free(loop);
    admin_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admin_route_answers_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_head_uses_get_and_sends_no_body, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_admin_unknown_path_is_404_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_wrong_method_is_405_with_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_keep_alive_serves_two_requests_on_one_connection,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_malformed_request_is_400_and_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_admin_refuses_chunked_and_oversized_bodies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_admin_bodies_larger_than_the_head_buffer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_admin_expect_100_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_handler_failure_is_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_metrics_page_from_a_prom_writer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_admin_65th_connection_is_closed_at_once, setup,
                                        teardown),
        cmocka_unit_test(test_admin_header_and_idle_timeouts_close),
        cmocka_unit_test(test_admin_metrics_page_past_its_bound_is_500),
        cmocka_unit_test_setup_teardown(test_admin_new_reports_address_in_use, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
