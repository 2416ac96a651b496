/* Active health checks: see health.h. One health_check_t per checked server
 * holds two timers (the next tick, the deadline of the check in flight), the
 * connection of the check in flight, and that server's counters. A check is
 * a small state machine driven by the loop's edge-triggered events: connect
 * (wait for writability, then SO_ERROR), for HTTP send the request, read the
 * response into a bounded buffer and judge it as soon as it can be judged.
 * Whatever ends a check (verdict, error, deadline) goes through check_done(),
 * which closes the connection, records the result in the server's state and
 * logs a transition. The tick cadence does not depend on how long checks
 * take: a tick that finds a check still running skips, and that check's
 * deadline ends it, so there is never more than one connection per server.
 *
 * A pool with `tls:` is checked through TLS with a context built from the
 * same settings as the workers' (upstream_tls_ctx_new), so a server whose
 * certificate requests would refuse is also DOWN; a tcp check then passes
 * once the handshake does. */
#include "gateway/health.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/sock.h"
#include "gateway/worker.h"
#include "gateway/worker_api.h"
#include "http/http.h"

/* A response larger than this fails the check: a health endpoint that
 * answers with more is misconfigured, and the bound keeps a misbehaving
 * server from making the control thread buffer without limit. */
#define HEALTH_MAX_RESPONSE (64 * 1024)
#define HEALTH_MAX_HEAD (16 * 1024)
#define HEALTH_MAX_FIELDS 100

#ifndef container_of
#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#endif

typedef struct {
    health_t *h;
    const conf_pool_t *pool;
    const conf_server_t *server;
    server_state_t *st;
    loop_timer_t tick;     /* the next check */
    loop_timer_t deadline; /* of the check in flight */
    loop_io_t io;          /* io.fd: the check in flight's connection, -1 when idle */
    loop_ready_t ready;
    bool connected;
    SSL_CTX *tls_ctx; /* the pool's (health_t owns it); NULL: plain */
    tls_conn_t tls;   /* the check in flight's TLS, tls.ssl NULL before/without */
    char *request; /* HTTP checks: the whole request, built once */
    size_t request_len, sent;
    buf_t in; /* the response; storage only while a check runs */
    uint64_t ok, fail, ups, downs;
    uint64_t tls_fail; /* checks that failed in the TLS handshake */
} health_check_t;

struct health {
    loop_t *loop;
    const conf_t *conf;
    state_t *state;
    uint64_t rng;
    health_check_t *checks;
    size_t nchecks;
    SSL_CTX **pool_tls; /* [pool]: contexts of pools with tls and checks */
};

/* xorshift64*: jitter needs spread, not secrecy. */
static uint64_t rand_below(health_t *h, uint64_t n)
{
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return n ? (h->rng * 2685821657736338717ULL) % n : 0;
}

/* interval +-10%, at least 1 ms */
static uint64_t next_delay(health_t *h, uint64_t interval)
{
    uint64_t j = interval / 10;
    uint64_t d = interval - j + rand_below(h, 2 * j + 1);
    return d ? d : 1;
}

static void conn_close(health_check_t *c)
{
    if (c->io.fd < 0)
        return;
    if (c->tls.ssl) {
        tls_io_close_notify(&c->tls);
        tls_conn_free(&c->tls);
    }
    loop_io_del(c->h->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
}

/* Ends the check in flight (or one that failed to start): closes it,
 * records the verdict, and on a transition logs it and counts it. The
 * caller has written last_error. */
static void check_done(health_check_t *c, bool ok, int status)
{
    loop_t *loop = c->h->loop;
    server_state_t *st = c->st;
    const conf_health_t *hc = &c->pool->health;
    uint64_t now = loop_now(loop);

    conn_close(c);
    loop_timer_stop(loop, &c->deadline);
    buf_deinit(&c->in);

    st->last_status = status;
    if (ok) {
        st->last_error[0] = '\0';
        c->ok++;
    } else {
        c->fail++;
    }
    int t = state_check_result(st, ok, hc->rise, hc->fall, now);
    st->last_check = now;
    if (t < 0) {
        c->downs++;
        log_warn("health: pool %s server %s is DOWN after %u failed check%s (%s)", c->pool->name,
                 c->server->address, st->streak_fail, st->streak_fail == 1 ? "" : "s",
                 st->last_error);
    } else if (t == STATE_UNEJECTED) {
        log_info("outlier: pool %s server %s is back before its ejection ended: %u successful "
                 "checks",
                 c->pool->name, c->server->address, hc->rise);
    } else if (t > 0) {
        c->ups++;
        log_info("health: pool %s server %s is UP after %u successful check%s", c->pool->name,
                 c->server->address, st->streak_ok, st->streak_ok == 1 ? "" : "s");
    }
}

static void check_ok(health_check_t *c, int status)
{
    check_done(c, true, status);
}

/* why: printf format of last_error ("connect: %s"). */
static void check_fail(health_check_t *c, int status, const char *why, ...)
    __attribute__((format(printf, 3, 4)));
static void check_fail(health_check_t *c, int status, const char *why, ...)
{
    va_list ap;
    va_start(ap, why);
    vsnprintf(c->st->last_error, sizeof(c->st->last_error), why, ap);
    va_end(ap);
    check_done(c, false, status);
}

/* Judges what has been read so far. Returns -EAGAIN when more must be read
 * (and eof is false), 0 once check_done() has been called. */
static int response_judge(health_check_t *c, bool eof)
{
    const conf_health_t *hc = &c->pool->health;
    static const http_limits_t lim = {.max_request_line = HEALTH_MAX_HEAD,
                                      .max_header_bytes = HEALTH_MAX_HEAD,
                                      .max_headers = HEALTH_MAX_FIELDS};
    http_field_t fields[HEALTH_MAX_FIELDS];
    http_response_t res;
    http_reject_t why = HTTP_REJECT_NONE;
    str_t in = buf_str(&c->in);
    bool head_req = strcmp(hc->method, "HEAD") == 0;

    int r =
        http_parse_response(&res, in.p, in.len, &lim, head_req, fields, HEALTH_MAX_FIELDS, &why);
    if (r == -EAGAIN && !eof)
        return -EAGAIN;
    if (r == -EAGAIN) {
        check_fail(c, 0, "invalid response: %s",
                   in.len ? "connection closed inside the head" : "connection closed, no response");
        return 0;
    }
    if (r < 0) {
        check_fail(c, 0, "invalid response: %s", http_reject_name(why));
        return 0;
    }
    if ((unsigned)res.status < hc->expect_min || (unsigned)res.status > hc->expect_max) {
        check_fail(c, res.status, "status %d", res.status);
        return 0;
    }
    if (!hc->body) {
        check_ok(c, res.status);
        return 0;
    }
    /* Connection: close, so reading to EOF is always right; Content-Length
     * only lets the verdict come sooner. A chunked body is searched with its
     * framing, which a substring of the payload spans only at a chunk
     * boundary: health endpoints answer in one chunk. */
    size_t body_len = in.len - res.head_len;
    bool complete = eof || res.body == HTTP_BODY_NONE;
    if (res.body == HTTP_BODY_NONE)
        body_len = 0;
    if (res.body == HTTP_BODY_LENGTH && body_len >= res.content_length) {
        body_len = (size_t)res.content_length;
        complete = true;
    }
    if (memmem(in.p + res.head_len, body_len, hc->body, strlen(hc->body))) {
        check_ok(c, res.status);
        return 0;
    }
    if (!complete)
        return -EAGAIN;
    check_fail(c, res.status, "body lacks '%s'", hc->body);
    return 0;
}

/* Sends what is left of the request. 0 (all sent, or wait for writability)
 * or -errno. */
static int request_send(health_check_t *c)
{
    while (c->sent < c->request_len) {
        size_t n;
        int r = tls_stream_send(c->io.fd, &c->tls, &c->ready, c->request + c->sent,
                            c->request_len - c->sent, NULL, 0, &n);
        if (r == -EAGAIN)
            return 0;
        if (r < 0)
            return r;
        c->sent += n;
    }
    return 0;
}

/* Reads until nothing more comes now or a verdict. */
static void response_read(health_check_t *c)
{
    for (;;) {
        bool eof = false;
        int err = 0;
        if (buf_len(&c->in) > HEALTH_MAX_RESPONSE ||
            (c->in.data && buf_free_space(&c->in) == 0)) {
            check_fail(c, 0, "response too large");
            return;
        }
        if (!tls_stream_read(c->io.fd, &c->tls, &c->in, &c->ready, &eof, &err))
            return;
        if (err == -ENOSPC) {
            check_fail(c, 0, "response too large");
            return;
        }
        if (err) {
            check_fail(c, 0, "read: %s", strerror(-err));
            return;
        }
        if (response_judge(c, eof) == 0)
            return;
    }
}

/* The connection is up: the pool's TLS handshake, one step. 0 done,
 * -EAGAIN, or -EPROTO after check_fail. */
static int tls_step(health_check_t *c)
{
    if (!c->tls.ssl) {
        SSL *ssl = tls_client_ssl_new(c->tls_ctx);
        if (!ssl || SSL_set_fd(ssl, c->io.fd) != 1) {
            SSL_free(ssl);
            check_fail(c, 0, "internal: out of memory");
            return -EPROTO;
        }
        tls_conn_start(&c->tls, ssl);
    }
    int r = tls_io_handshake(&c->tls, &c->ready);
    if (r != -EPROTO)
        return r;
    char why[320];
    tls_io_failure(&c->tls, why, sizeof(why));
    c->tls_fail++;
    check_fail(c, 0, "TLS: %s", why);
    return -EPROTO;
}

static void io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)loop;
    health_check_t *c = container_of(io, health_check_t, io);
    loop_ready_update(&c->ready, events);
    if (!c->connected) {
        if (!c->ready.writable)
            return;
        int err = sock_error(io->fd);
        if (err < 0) {
            check_fail(c, 0, "connect: %s", strerror(-err));
            return;
        }
        c->connected = true;
    }
    if (c->tls_ctx && (!c->tls.ssl || c->tls.handshaking) && tls_step(c) < 0)
        return; /* waiting, or failed (and closed) */
    if (c->pool->health.type == CONF_HEALTH_TCP) {
        check_ok(c, 0);
        return;
    }
    if (c->sent < c->request_len && c->ready.writable) {
        int r = request_send(c);
        if (r < 0) {
            check_fail(c, 0, "send: %s", strerror(-r));
            return;
        }
    }
    /* A server may answer (and close) before reading the whole request. */
    if (c->ready.readable)
        response_read(c);
}

static void deadline_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    health_check_t *c = container_of(t, health_check_t, deadline);
    check_fail(c, 0, "timeout");
}

static void check_start(health_check_t *c)
{
    loop_t *loop = c->h->loop;
    c->ready = (loop_ready_t){0};
    c->connected = false;
    c->tls = (tls_conn_t){0};
    c->sent = 0;
    buf_init(&c->in, HEALTH_MAX_RESPONSE + 1);
    int fd = sock_connect(&c->server->addr);
    if (fd < 0) {
        check_fail(c, 0, "connect: %s", strerror(-fd));
        return;
    }
    int r = loop_io_add(loop, &c->io, fd, io_cb);
    if (r < 0) {
        close(fd);
        check_fail(c, 0, "internal: %s", strerror(-r));
        return;
    }
    if (loop_timer_start(loop, &c->deadline, c->pool->health.timeout_ms) < 0)
        check_fail(c, 0, "internal: %s", strerror(ENOMEM));
}

static void tick_cb(loop_t *loop, loop_timer_t *t)
{
    health_check_t *c = container_of(t, health_check_t, tick);
    /* The tick was just disarmed, so the heap has its slot: this cannot fail. */
    (void)loop_timer_start(loop, t, next_delay(c->h, c->pool->health.interval_ms));
    if (c->io.fd >= 0)
        return; /* still running: its deadline ends it */
    check_start(c);
}

/* "METHOD PATH HTTP/1.1" with Host, User-Agent and Connection: close, so
 * that the end of the response is the end of the connection. */
static char *request_build(const conf_health_t *hc, const conf_server_t *s, size_t *ret_len)
{
    const char *host = hc->host ? hc->host : s->address;
    char *req = NULL;
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: surety-health\r\n"
                     "Connection: close\r\n\r\n",
                     hc->method ? hc->method : "GET", hc->path ? hc->path : "/", host);
    if (n < 0)
        return NULL;
    *ret_len = (size_t)n;
    return req;
}

static int checks_init(health_t *h)
{
    const conf_t *conf = h->conf;
    size_t n = 0;
    h->pool_tls = calloc(conf->npools ? conf->npools : 1, sizeof(*h->pool_tls));
    if (!h->pool_tls)
        return -ENOMEM;
    for (size_t p = 0; p < conf->npools; p++) {
        if (h->state->pools[p].nservers != conf->pools[p].nservers)
            return -EINVAL;
        if (conf->pools[p].health.type != CONF_HEALTH_NONE)
            n += conf->pools[p].nservers;
    }
    h->checks = calloc(n ? n : 1, sizeof(*h->checks));
    if (!h->checks)
        return -ENOMEM;
    for (size_t p = 0; p < conf->npools; p++) {
        const conf_pool_t *cp = &conf->pools[p];
        if (cp->health.type == CONF_HEALTH_NONE)
            continue;
        if (cp->tls.enabled) {
            /* The gateway built the same context already: only memory fails. */
            char err[512];
            if (!(h->pool_tls[p] = upstream_tls_ctx_new(cp, err, sizeof(err)))) {
                log_error("health: pool %s: tls: %s", cp->name, err);
                return -EINVAL;
            }
        }
        for (size_t i = 0; i < cp->nservers; i++) {
            health_check_t *c = &h->checks[h->nchecks++];
            c->h = h;
            c->pool = cp;
            c->server = &cp->servers[i];
            c->st = &h->state->pools[p].servers[i];
            c->io.fd = -1;
            c->tls_ctx = h->pool_tls[p];
            loop_timer_init(&c->tick, tick_cb);
            loop_timer_init(&c->deadline, deadline_cb);
            buf_init(&c->in, HEALTH_MAX_RESPONSE + 1);
            if (cp->health.type == CONF_HEALTH_HTTP &&
                !(c->request = request_build(&cp->health, c->server, &c->request_len)))
                return -ENOMEM;
        }
    }
    return 0;
}

health_t *health_new(loop_t *loop, const conf_t *conf, state_t *state, int *ret_err)
{
    int err = -ENOMEM;
    health_t *h = calloc(1, sizeof(*h));
    if (!h)
        goto fail;
    h->loop = loop;
    h->conf = conf;
    h->state = state;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->rng = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
             ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)h;
    if (!h->rng)
        h->rng = 0x9e3779b97f4a7c15ULL;
    if (state->npools != conf->npools) {
        err = -EINVAL;
        goto fail;
    }
    if ((err = checks_init(h)) < 0)
        goto fail;
    /* First checks spread over one interval, so a restart does not probe
     * every server in the same millisecond. */
    for (size_t i = 0; i < h->nchecks; i++) {
        health_check_t *c = &h->checks[i];
        if (loop_timer_start(loop, &c->tick, rand_below(h, c->pool->health.interval_ms)) < 0) {
            err = -ENOMEM;
            goto fail;
        }
    }
    return h;
fail:
    health_free(h);
    if (ret_err)
        *ret_err = err;
    return NULL;
}

void health_free(health_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nchecks; i++) {
        health_check_t *c = &h->checks[i];
        loop_timer_stop(h->loop, &c->tick);
        loop_timer_stop(h->loop, &c->deadline);
        conn_close(c);
        buf_deinit(&c->in);
        free(c->request);
    }
    free(h->checks);
    for (size_t p = 0; h->pool_tls && p < h->conf->npools; p++)
        SSL_CTX_free(h->pool_tls[p]);
    free(h->pool_tls);
    free(h);
}

void health_metrics_write(health_t *h, prom_t *p)
{
    prom_family(p, "surety_health_checks_total", PROM_COUNTER,
                "Active health checks finished, by result.");
    for (size_t i = 0; i < h->nchecks; i++) {
        const health_check_t *c = &h->checks[i];
        const char *pool = c->pool->name, *srv = c->server->address;
        prom_counter(p, "surety_health_checks_total",
                     PROM_LABELS({"pool", pool}, {"server", srv}, {"result", "ok"}), c->ok);
        prom_counter(p, "surety_health_checks_total",
                     PROM_LABELS({"pool", pool}, {"server", srv}, {"result", "fail"}), c->fail);
    }
    prom_family(p, "surety_health_tls_failures_total", PROM_COUNTER,
                "Health checks of pools with tls that failed in the TLS handshake (a "
                "certificate the pool's settings refuse, among others).");
    for (size_t i = 0; i < h->nchecks; i++) {
        const health_check_t *c = &h->checks[i];
        if (c->tls_ctx)
            prom_counter(p, "surety_health_tls_failures_total",
                         PROM_LABELS({"pool", c->pool->name}, {"server", c->server->address}),
                         c->tls_fail);
    }
    prom_family(p, "surety_server_up", PROM_GAUGE,
                "1 while the server's health is up (always, without active checks), else 0.");
    for (size_t pi = 0; pi < h->state->npools; pi++) {
        const pool_state_t *ps = &h->state->pools[pi];
        for (size_t i = 0; i < ps->nservers; i++) {
            const server_state_t *s = &ps->servers[i];
            bool up = __atomic_load_n(&s->health, __ATOMIC_RELAXED) == SRV_UP;
            prom_gauge_u64(p, "surety_server_up",
                           PROM_LABELS({"pool", ps->name}, {"server", s->address}), up);
        }
    }
    prom_family(p, "surety_health_transitions_total", PROM_COUNTER,
                "Health changes decided by active checks, by the state entered.");
    for (size_t i = 0; i < h->nchecks; i++) {
        const health_check_t *c = &h->checks[i];
        const char *pool = c->pool->name, *srv = c->server->address;
        prom_counter(p, "surety_health_transitions_total",
                     PROM_LABELS({"pool", pool}, {"server", srv}, {"to", "up"}), c->ups);
        prom_counter(p, "surety_health_transitions_total",
                     PROM_LABELS({"pool", pool}, {"server", srv}, {"to", "down"}), c->downs);
    }
}
