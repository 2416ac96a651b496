/* The proxy state machine of one client connection.
 *
 * A connection carries one transaction at a time: read a request head, pick a
 * route and a server, send the rewritten head and stream the request body to
 * the server, read the response head, stream the response body back, then
 * either wait for the next request (pipelined bytes may already be in the
 * buffer: they are answered in order because nothing is read ahead) or close.
 *
 * Everything is driven by client_run(), which performs every I/O step that
 * can progress until none can (edge-triggered readiness is remembered in the
 * readable/writable flags and cleared on -EAGAIN or a short read). Bodies are
 * never copied: bytes go from one side's input buffer straight to the other
 * side's socket, so memory per connection is the two input buffers plus, for
 * the moment a head is in flight, the head buffers; reading stops while a
 * buffer is full, which is the backpressure.
 *
 * Runs on the worker thread that accepted the connection; never blocks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/log.h"
#include "gateway/head.h"
#include "gateway/route.h"
#include "gateway/worker.h"

enum { IDLE = STEP_IDLE, PROGRESS = STEP_PROGRESS, CLOSED = STEP_CLOSED };

/* Grace for an idle keep-alive connection in a reload's drain: long enough
 * for a request already on its way to arrive and be answered (with
 * Connection: close), short enough that the old generation goes soon. */
#define RELOAD_IDLE_GRACE_MS 1000
/* A TLS connection idle this long gives its record buffers back. */
#define TLS_TRIM_MS 1000

static void client_io_cb(loop_t *loop, loop_io_t *io, uint32_t ev);
static void client_timer_cb(loop_t *loop, loop_timer_t *t);
static bool request_sent(const client_t *c);
static void observe_latency(client_t *c);
static void tx_detach_all(client_t *c);

static const conf_listener_t *lconf(const client_t *c)
{
    return &c->w->conf->listeners[c->l->index];
}

static stats_listener_t *lstats(const client_t *c)
{
    return &c->w->stats->listeners[c->l->index];
}

/* ---- connection lifecycle ------------------------------------------------ */

/* An idle keep-alive connection waits timeouts.idle for its next request.
 * A TLS one also gives OpenSSL's record buffers back (about 34 KiB) once it
 * has been idle for TLS_TRIM_MS: not at once, because a busy client's next
 * request usually comes sooner and would allocate them again (freeing them
 * after every record, SSL_MODE_RELEASE_BUFFERS, cost 15-20% of the CPU per
 * keep-alive request; docs/performance.md). */
static void idle_timer_start(client_t *c)
{
    uint64_t t = c->w->draining ? RELOAD_IDLE_GRACE_MS : lconf(c)->idle_timeout_ms;
    c->tls_trim_due = false;
    if (c->tls.ssl && t > TLS_TRIM_MS) {
        c->tls_trim_due = true;
        c->idle_left_ms = t - TLS_TRIM_MS;
        t = TLS_TRIM_MS;
    }
    loop_timer_start(c->w->loop, &c->timer, t);
}

void client_accept(worker_t *w, listener_t *l, int fd, const sock_addr_t *peer, bool counted)
{
    client_t *c = calloc(1, sizeof(*c));
    if (!c) {
        if (counted)
            shield_conn_closed(l->policy, (const struct sockaddr *)&peer->ss);
        close(fd);
        return;
    }
    c->conn_policy = counted ? l->policy : NULL;
    c->w = w;
    c->l = l;
    c->peer = *peer;
    c->state = CL_HEAD;
    c->tx.route = -1;
    buf_init_cached(&c->in, &w->client_in[l->index]);
    buf_init_cached(&c->out, &w->client_out);
    sock_addr_format_ip(peer, c->peer_ip, sizeof(c->peer_ip));
    c->peer_ip_len = (uint8_t)strlen(c->peer_ip);
    loop_timer_init(&c->timer, client_timer_cb);
    list_init(&c->link);
    list_init(&c->qlink);
    if (loop_io_add(w->loop, &c->io, fd, client_io_cb) < 0) {
        if (counted)
            shield_conn_closed(l->policy, (const struct sockaddr *)&peer->ss);
        close(fd);
        free(c);
        return;
    }
    sock_set_nodelay(fd);
    if (l->tls && !client_tls_start(c, fd)) {
        if (counted)
            shield_conn_closed(l->policy, (const struct sockaddr *)&peer->ss);
        loop_io_del(w->loop, &c->io);
        close(fd);
        free(c);
        return;
    }
    list_insert_head(&w->clients, &c->link);
    w->nclients++;
    STAT_INC(lstats(c)->conns_total);
    STAT_INC(lstats(c)->conns_open);
    STAT_INC(lstats(c)->conns_idle);
    c->idle_counted = true;
    loop_timer_start(w->loop, &c->timer, lconf(c)->header_timeout_ms);
}

static void set_idle(client_t *c, bool idle)
{
    if (c->idle_counted == idle)
        return;
    c->idle_counted = idle;
    if (idle)
        STAT_INC(lstats(c)->conns_idle);
    else
        STAT_DEC(lstats(c)->conns_idle);
}

void client_close(client_t *c)
{
    worker_t *w = c->w;
    client_queue_remove(c);
    tx_detach_all(c);
    if (c->tx.waf_job)
        c->tx.waf_job->tag = NULL; /* the verdict finds nobody: worker.c frees the job */
    if (c->conn_policy)
        shield_conn_closed(c->conn_policy, (const struct sockaddr *)&c->peer.ss);
    if (c->up) {
        upstream_close(c->up);
        c->up = NULL;
    }
    set_idle(c, false);
    STAT_DEC(lstats(c)->conns_open);
    loop_timer_stop(w->loop, &c->timer);
    loop_io_del(w->loop, &c->io);
    tls_io_close_notify(&c->tls);
    client_tls_free(c);
    close(c->io.fd);
    buf_deinit(&c->in);
    buf_deinit(&c->out);
    list_remove(&c->link);
    free(c);
    worker_client_closed(w);
}

/* ---- transactions ------------------------------------------------------- */

static void body_init(body_t *b, http_body_kind_t kind, uint64_t length, size_t max_trailer)
{
    b->kind = kind;
    b->dechunk = false;
    b->remaining = length;
    b->pending = 0;
    b->done = kind == HTTP_BODY_NONE || (kind == HTTP_BODY_LENGTH && length == 0);
    if (kind == HTTP_BODY_CHUNKED)
        http_chunked_init(&b->chunked, 4096, max_trailer);
}

/* The next run of chunk data in p[0, len), framing skipped: *ret_off and
 * *ret_len locate it (len 0: none yet), *ret_used bytes were consumed.
 * 0 at the end of the body, -EAGAIN for more, -EBADMSG. */
int client_dechunk_next(http_chunked_t *ch, const char *p, size_t len, size_t *ret_used,
                        size_t *ret_off, size_t *ret_len, http_reject_t *ret_reason)
{
    size_t i = 0, used;
    *ret_len = 0;
    while (i < len) {
        if (http_chunked_in_data(ch)) {
            size_t n = len - i < ch->remaining ? len - i : (size_t)ch->remaining;
            http_chunked_scan(ch, p + i, n, &used, ret_reason);
            *ret_off = i;
            *ret_len = n;
            *ret_used = i + n;
            return -EAGAIN;
        }
        int r = http_chunked_scan(ch, p + i, 1, &used, ret_reason);
        if (r == -EBADMSG)
            return r;
        i++;
        if (r == 0) {
            *ret_used = i;
            return 0;
        }
    }
    *ret_used = len;
    return -EAGAIN;
}

/* Dechunking in place: the data runs of the raw bytes after pending move
 * down to follow the pending (already decoded) bytes, the framing between
 * them disappears. Decoded data is never longer than its coding, so this
 * needs no second buffer. Rare path: HTTP/1.0 clients of chunked servers. */
static int body_dechunk(body_t *b, buf_t *src, http_reject_t *ret_reason)
{
    char *base = buf_rptr(src);
    size_t rd = b->pending, wr = b->pending, end = buf_len(src);
    while (rd < end && !b->done) {
        size_t used, off, n;
        int r = client_dechunk_next(&b->chunked, base + rd, end - rd, &used, &off, &n, ret_reason);
        if (r == -EBADMSG)
            return r;
        if (n)
            memmove(base + wr, base + rd + off, n);
        wr += n;
        rd += used;
        b->done = r == 0;
    }
    memmove(base + wr, base + rd, end - rd);
    src->tail -= rd - wr;
    b->pending = wr;
    return 0;
}

/* Classifies the bytes of src after the pending ones as body (pending grows)
 * or as the start of the next message (left alone). 0, or -EBADMSG. */
static int body_classify(body_t *b, buf_t *src, http_reject_t *ret_reason)
{
    size_t avail = buf_len(src) - b->pending;
    if (b->done || avail == 0)
        return 0;
    if (b->dechunk)
        return body_dechunk(b, src, ret_reason);
    const char *p = buf_rptr(src) + b->pending;
    size_t used = 0;
    switch (b->kind) {
    case HTTP_BODY_LENGTH:
        used = avail < b->remaining ? avail : (size_t)b->remaining;
        b->remaining -= used;
        b->done = b->remaining == 0;
        break;
    case HTTP_BODY_CHUNKED: {
        int r = http_chunked_scan(&b->chunked, p, avail, &used, ret_reason);
        if (r == -EBADMSG)
            return r;
        b->done = r == 0;
        break;
    }
    case HTTP_BODY_CLOSE:
        used = avail;
        break;
    case HTTP_BODY_NONE:
        b->done = true;
        break;
    }
    b->pending += used;
    return 0;
}

static bool body_sent(const body_t *b)
{
    return b->done && b->pending == 0;
}

static void tx_reset(client_t *c)
{
    c->tx = (typeof(c->tx)){0};
    c->tx.route = -1;
}

static void tx_log(client_t *c)
{
    const conf_t *conf = c->w->conf;
    const conf_listener_t *lc = lconf(c);
    uint64_t dur = (loop_now(c->w->loop) - c->tx.start_ms) * 1000;
    int status = c->tx.status;
    stats_listener_t *ls = lstats(c);
    stats_code_inc(&ls->requests, status);
    stats_observe_duration(&ls->latency, dur);
    STAT_ADD(ls->bytes_in, c->tx.bytes_in);
    STAT_ADD(ls->bytes_out, c->tx.bytes_out);
    access_log_entry_t e = {
        .wall_ms = loop_wall_ms(c->w->loop),
        .listener = lc->name,
        .client = &c->peer,
        .method = c->tx.method,
        .path = c->tx.path,
        .path_len = c->tx.path_len,
        .status = status,
        .bytes_in = c->tx.bytes_in,
        .bytes_out = c->tx.bytes_out,
        .duration_us = dur,
        .queued = c->tx.queued_ms != 0,
        .queue_ms = c->tx.queue_wait_ms,
        .request_id = c->tx.request_id,
        .reject = c->tx.reject ? http_reject_name(c->tx.reject) : NULL,
    };
    if (c->tx.route >= 0) {
        const conf_route_t *r = &lc->routes[c->tx.route];
        e.route = r->name;
        e.pool = conf->pools[r->pool].name;
        stats_route_t *rs = &c->w->stats->routes[c->l->index][c->tx.route];
        stats_code_inc(&rs->requests, status);
        stats_observe_duration(&rs->latency, dur);
        if (c->tx.server) {
            e.server = c->tx.server->label;
            stats_code_inc(&c->tx.server->stats->requests, status);
        }
    }
    access_log_add(&c->w->alog, &e);
}

static int answered(client_t *c, int status);

int client_fail(client_t *c, int status)
{
    if (c->up) {
        upstream_close(c->up);
        c->up = NULL;
    }
    if (c->tx.response_started) {
        /* Part of the real response went out: the only honest end is a cut. */
        c->tx.status = c->tx.status ? c->tx.status : status;
        if (!c->tx.tunnel_logged)
            tx_log(c);
        client_close(c);
        return CLOSED;
    }
    buf_consume(&c->out, buf_len(&c->out));
    head_write_error(&c->out, status, c->tx.head_method,
                     str_from(c->tx.request_id, c->tx.request_id_len), str_cstr(c->tx.extra));
    return answered(c, status);
}

/* c->out holds a whole answer made here: log it, then close once sent. */
static int answered(client_t *c, int status)
{
    c->tx.status = status;
    c->tx.response_started = true;
    tx_log(c);
    tx_detach_all(c);
    c->state = CL_CLOSING;
    c->keep_alive = false;
    loop_timer_start(c->w->loop, &c->timer, lconf(c)->client_timeout_ms);
    return PROGRESS;
}

/* listeners.<name>.redirect_https: 308 to the same host and target over
 * HTTPS on that port. */
static int redirect_https(client_t *c, const http_request_t *req)
{
    str_t host = req->host;
    /* the port goes; an IPv6 literal keeps its brackets */
    const char *end = host.p + host.len, *colon = NULL;
    for (const char *p = host.p; p < end; p++)
        if (*p == ':')
            colon = p;
    if (colon && !(host.len && host.p[0] == '[' && end[-1] == ']'))
        host.len = (size_t)(colon - host.p);
    buf_consume(&c->in, req->head_len);
    if (!host.len)
        return client_fail(c, 400);
    buf_consume(&c->out, buf_len(&c->out));
    if (head_write_redirect(&c->out, host, lconf(c)->redirect_https, req->target,
                            str_from(c->tx.request_id, c->tx.request_id_len)) < 0)
        return client_fail(c, 414);
    return answered(c, 308);
}

static int tx_fail(client_t *c, int status)
{
    return client_fail(c, status);
}

static int tx_reject(client_t *c, http_reject_t reason)
{
    STAT_INC(lstats(c)->rejects[reason]);
    if (c->l->policy)
        client_shield_event(c, c->l->policy, SHIELD_BAD_REQUEST, http_reject_status(reason), NULL);
    c->tx.reject = reason;
    if (!c->tx.start_ms)
        c->tx.start_ms = loop_now(c->w->loop);
    log_debug("listener %s: rejected request: %s", lconf(c)->name, http_reject_name(reason));
    return tx_fail(c, http_reject_status(reason));
}

static void copy_request_info(client_t *c, const http_request_t *req)
{
    size_t n =
        req->method.len < sizeof(c->tx.method) - 1 ? req->method.len : sizeof(c->tx.method) - 1;
    memcpy(c->tx.method, req->method.p, n);
    c->tx.method[n] = 0;
    n = req->target.len < sizeof(c->tx.path) ? req->target.len : sizeof(c->tx.path);
    memcpy(c->tx.path, req->target.p, n);
    c->tx.path_len = n;
    str_t id = head_client_request_id(req);
    if (id.len) {
        memcpy(c->tx.request_id, id.p, id.len);
        c->tx.request_id[id.len] = 0;
        c->tx.request_id_len = id.len;
    } else {
        worker_make_request_id(c->w, c->tx.request_id);
        c->tx.request_id_len = 32;
    }
    c->tx.head_method = str_eq(req->method, STR_LIT("HEAD"));
}

/* ---- server choice, retries, outliers ----------------------------------- */

static bool method_idempotent(const char *m)
{
    static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(idem) / sizeof(idem[0]); i++)
        if (!strcmp(m, idem[i]))
            return true;
    return false;
}

static bool was_tried(const client_t *c, const server_t *srv)
{
    for (unsigned i = 0; i < c->tx.ntried; i++)
        if (c->tx.tried[i] == srv)
            return true;
    return false;
}

/* The pool's algorithm over w->usable, with weights ramped by slow start. */
static int balance_pick(client_t *c, size_t p, uint64_t now)
{
    worker_t *w = c->w;
    const conf_pool_t *pc = &w->conf->pools[p];
    pool_t *pl = &w->pools[p];
    const unsigned *weights = w->weights[p];
    if (pc->slow_start_ms) {
        const pool_state_t *ps = &w->state->pools[p];
        /* x100: the ramp starts at a tenth of the weight, which for the
         * default weight 1 would round to the full weight; scaling every
         * server alike keeps the ratios */
        for (size_t i = 0; i < pc->nservers; i++)
            pl->eff_weight[i] = balance_slow_start_weight(
                w->weights[p][i] * 100,
                __atomic_load_n(&ps->servers[i].back_since, __ATOMIC_RELAXED), now,
                pc->slow_start_ms);
        weights = pl->eff_weight;
    }
    switch (pc->balance) {
    case CONF_BALANCE_LEAST_CONN:
        return balance_least_conn_pick(&pl->rr, pc->nservers, weights, pl->inflight, w->usable);
    case CONF_BALANCE_P2C_EWMA:
        return balance_p2c_pick(&w->rng, pc->nservers, pl->ewma, pl->inflight, weights, w->usable,
                                now, BALANCE_EWMA_TAU_MS);
    case CONF_BALANCE_HASH:
        return balance_ring_pick(pl->ring, c->tx.hash_key, pl->inflight, w->usable,
                                 BALANCE_RING_LOAD_FACTOR);
    case CONF_BALANCE_ROUND_ROBIN:
        break;
    }
    return balance_rr_pick(&pl->rr, weights, w->usable);
}

/* The value of cookie `name` in the request's Cookie fields, or empty. */
static str_t cookie_value(const http_request_t *req, str_t name)
{
    for (size_t i = 0; i < req->nfields; i++) {
        if (!str_case_eq(req->fields[i].name, STR_LIT("Cookie")))
            continue;
        str_t rest = req->fields[i].value;
        while (rest.len) {
            str_t pair = str_next_token(&rest, ';');
            if (pair.len > name.len && pair.p[name.len] == '=' && !memcmp(pair.p, name.p, name.len))
                return str_from(pair.p + name.len + 1, pair.len - name.len - 1);
        }
    }
    return STR_NULL;
}

str_t client_request_key(const client_t *c, const http_request_t *req, conf_hash_kind_t kind,
                         const char *name)
{
    switch (kind) {
    case CONF_HASH_HEADER: {
        const http_field_t *f = http_field_find(req->fields, req->nfields, str_cstr(name));
        return f ? f->value : STR_NULL;
    }
    case CONF_HASH_COOKIE:
        return cookie_value(req, str_cstr(name));
    case CONF_HASH_ROUTE: {
        const char *route = lconf(c)->routes[c->tx.route].name;
        return str_from(route, strlen(route));
    }
    case CONF_HASH_SOURCE:
        break;
    }
    return STR_NULL;
}

/* balance: hash — the key of this request: the client's address, a
 * header's value or a cookie's value (absent: the client's address, so
 * that such requests still spread). */
static uint64_t request_hash_key(const client_t *c, const conf_pool_t *pc,
                                 const http_request_t *req)
{
    str_t v = client_request_key(c, req, pc->hash, pc->hash_name);
    if (!v.len)
        v = str_from(c->peer_ip, c->peer_ip_len);
    return balance_hash_bytes(v.p, v.len);
}

/* A usable server not tried yet by this transaction: from the pool that
 * serves the route's pool now (itself, or its backup after a failover), then
 * down that pool's backup chain, so that a retry can reach the DR pool
 * before the control thread has even noticed the primaries are gone. A pool
 * whose open servers are all at max_inflight is busy, not down: NULL with
 * tx.busy set, and its backups are not asked. */
static server_t *pick_server(client_t *c)
{
    worker_t *w = c->w;
    const conf_t *conf = w->conf;
    uint64_t now = loop_now(w->loop);
    size_t cur = state_serving(w->state, c->tx.pool);
    c->tx.busy = false; /* this pick's verdict only */
    for (size_t hops = 0; cur != SIZE_MAX && hops <= conf->npools;
         cur = conf->pools[cur].backup, hops++) {
        const pool_state_t *ps = &w->state->pools[cur];
        const conf_pool_t *pc = &conf->pools[cur];
        bool any = false, open = false;
        if (c->tx.skip_pool == cur + 1)
            continue;
        for (size_t i = 0; i < pc->nservers; i++) {
            bool ok = state_server_usable(&ps->servers[i], now) &&
                      !was_tried(c, &w->pools[cur].servers[i]);
            open |= ok;
            w->usable[i] =
                ok && state_server_has_room(&ps->servers[i], pc->servers[i].max_inflight);
            any |= w->usable[i];
        }
        if (open && !any) {
            c->tx.busy = true;
            return NULL;
        }
        if (!any)
            continue;
        int idx = balance_pick(c, cur, now);
        if (idx >= 0)
            return &w->pools[cur].servers[idx];
    }
    return NULL;
}

static unsigned server_max_inflight(const client_t *c, const server_t *srv)
{
    return c->w->conf->pools[srv->pool].servers[srv->index].max_inflight;
}

static server_state_t *server_state(const client_t *c, const server_t *srv)
{
    return &c->w->state->pools[srv->pool].servers[srv->index];
}

static void tx_attach(client_t *c, server_t *srv)
{
    c->tx.server = srv;
    c->w->pools[srv->pool].inflight[srv->index]++;
    c->tx.sent_ms = loop_now(c->w->loop);
    if (c->tx.ntried < GW_MAX_TRIES)
        c->tx.tried[c->tx.ntried++] = srv;
    STAT_INC(srv->stats->inflight);
    if (!c->tx.counted_active) {
        c->w->pools[c->tx.pool].active++;
        c->tx.counted_active = true;
    }
}

/* The transaction no longer occupies its server (done, failed, retried). */
static void tx_detach(client_t *c)
{
    server_t *srv = c->tx.server;
    if (srv) {
        STAT_DEC(srv->stats->inflight);
        c->w->pools[srv->pool].inflight[srv->index]--;
        unsigned max = server_max_inflight(c, srv);
        state_server_release(server_state(c, srv), max);
        c->tx.server = NULL;
        if (max)
            client_queue_kick(c->w); /* a slot came free: a waiting request may take it */
    }
}

/* Ends the transaction's share of the pool counters (the retry budget). */
static void tx_uncount(client_t *c)
{
    pool_t *pl = &c->w->pools[c->tx.pool];
    if (c->tx.counted_active)
        pl->active--;
    if (c->tx.counted_retrying)
        pl->retrying--;
    c->tx.counted_active = c->tx.counted_retrying = false;
}

/* Passive outlier detection: one more failure of the current server. */
static void report_failure(client_t *c)
{
    server_t *srv = c->tx.server;
    if (!srv)
        return;
    observe_latency(c);
    const conf_pool_t *pc = &c->w->conf->pools[srv->pool];
    pool_state_t *ps = &c->w->state->pools[srv->pool];
    server_state_t *ss = &ps->servers[srv->index];
    if (state_report_failure(ps, ss, &pc->outlier, loop_now(c->w->loop))) {
        STAT_INC(srv->stats->ejections);
        log_warn("outlier: pool %s server %s ejected for %llu ms after %u consecutive failures",
                 pc->name, srv->label,
                 (unsigned long long)(__atomic_load_n(&ss->ejected_until, __ATOMIC_RELAXED) -
                                      loop_now(c->w->loop)),
                 pc->outlier.consecutive_errors);
    }
}

static void tx_detach_all(client_t *c)
{
    tx_detach(c);
    tx_uncount(c);
    buf_deinit(&c->tx.replay);
}

/* What a new connection must be sent to take over this transaction: the
 * rewritten head and the body bytes already sent (kept in tx.replay). Owned
 * by the caller (buf_deinit). */
static int retry_bytes(client_t *c, const upstream_t *old, buf_t *ret)
{
    buf_init(ret, c->tx.head_up_len + buf_len(&c->tx.replay));
    if (buf_append(ret, old->out.data, c->tx.head_up_len) < 0 ||
        buf_append_str(ret, buf_str(&c->tx.replay)) < 0) {
        buf_deinit(ret);
        return -ENOMEM;
    }
    return 0;
}

/* A connection takes the bytes of a retry; its head buffer is resized when
 * a replayed body does not fit the usual one (bounded by retry.body). */
static int upstream_take(upstream_t *u, const buf_t *bytes)
{
    if (buf_len(bytes) > u->out.cap) {
        buf_deinit(&u->out);
        buf_init(&u->out, buf_len(bytes));
    }
    return buf_append_str(&u->out, buf_str(bytes));
}

/* The time this server took, success or not (a server that fails slowly
 * must look slow): p2c-ewma's input, and the latency the pools API shows for
 * every pool. */
static void observe_latency(client_t *c)
{
    server_t *srv = c->tx.server;
    uint64_t now = loop_now(c->w->loop);
    if (srv) {
        balance_ewma_t *e = &c->w->pools[srv->pool].ewma[srv->index];
        balance_ewma_observe(e, (now - c->tx.sent_ms) * 1000 + 500, now, BALANCE_EWMA_TAU_MS);
        /* published for the next generation's workers (see state.h) */
        __atomic_store_n(&c->w->state->pools[srv->pool].servers[srv->index].ewma_us,
                         (uint64_t)e->ewma_us, __ATOMIC_RELAXED);
    }
}

static void report_success(client_t *c)
{
    server_t *srv = c->tx.server;
    observe_latency(c);
    if (srv)
        state_report_success(&c->w->state->pools[srv->pool].servers[srv->index]);
}

/* May this transaction be retried for this reason (a CONF_RETRY_* bit)?
 * Only before any response byte reached the client, for requests whose body
 * need not be replayed, idempotent ones unless configured, within attempts.
 * The budget is checked once the next server is known (retry_budget_allows). */
static bool can_retry(client_t *c, unsigned why)
{
    const conf_retry_t *rc = &c->w->conf->pools[c->tx.pool].retry;
    if (c->tx.response_started || c->tx.got_1xx || c->tx.retries >= rc->attempts ||
        !(rc->on & why) || c->tx.ntried >= GW_MAX_TRIES)
        return false;
    if (!c->tx.replayable)
        return false; /* a body over retry.body, or chunked: not kept, not replayable */
    return rc->non_idempotent || method_idempotent(c->tx.method);
}

/* The retry budget (retries in flight against requests in flight, per
 * worker and pool, at least budget_min) keeps retries from piling more load
 * onto a pool that is failing. It applies to retries that stay in the pool
 * that just failed: a retry that moves down the backup chain adds nothing to
 * that pool's load, and refusing it would turn a failover into errors. */
static bool retry_budget_allows(client_t *c, const server_t *next)
{
    const server_t *prev = c->tx.ntried ? c->tx.tried[c->tx.ntried - 1] : NULL;
    if (c->tx.counted_retrying || !prev || prev->pool != next->pool)
        return true;
    const conf_retry_t *rc = &c->w->conf->pools[c->tx.pool].retry;
    pool_t *pl = &c->w->pools[c->tx.pool];
    uint64_t allowed = (uint64_t)pl->active * rc->budget_ppm / 1000000;
    if (allowed < rc->budget_min)
        allowed = rc->budget_min;
    if (pl->retrying < allowed)
        return true;
    STAT_INC(c->w->stats->pools[c->tx.pool].budget_exhausted);
    return false;
}

/* Would a retry find a server now (a usable, untried one down the chain,
 * within the budget if it is in the pool that just failed)? Asked before a
 * server's answer is dropped for a retry: when the answer is the last word,
 * the client must get it rather than a 502 of ours. Touches no balancer. */
static bool retry_target_exists(client_t *c)
{
    worker_t *w = c->w;
    const conf_t *conf = w->conf;
    uint64_t now = loop_now(w->loop);
    size_t cur = state_serving(w->state, c->tx.pool);
    for (size_t hops = 0; cur != SIZE_MAX && hops <= conf->npools;
         cur = conf->pools[cur].backup, hops++) {
        for (size_t i = 0; i < conf->pools[cur].nservers; i++) {
            server_t *srv = &w->pools[cur].servers[i];
            if (!state_server_usable(&w->state->pools[cur].servers[i], now) || was_tried(c, srv))
                continue;
            if (retry_budget_allows(c, srv))
                return true;
            break; /* this pool's budget is spent: try its backups */
        }
    }
    return false;
}

static void count_retry(client_t *c)
{
    pool_t *pl = &c->w->pools[c->tx.pool];
    if (!c->tx.counted_retrying) {
        pl->retrying++;
        c->tx.counted_retrying = true;
    }
    c->tx.retries++;
    STAT_INC(c->w->stats->pools[c->tx.pool].retries);
    if (c->tx.server)
        STAT_INC(c->tx.server->stats->retries);
}

/* Chooses a server and attaches a connection to it; a connect that fails at
 * once is retried on another server like any connect failure. The rewritten
 * head, if any, moves to the new connection. retry: this is a retry (the
 * budget applies, and it is counted). */
static int tx_connect(client_t *c, const buf_t *head, int fail_status, bool retry)
{
    for (;;) {
        server_t *srv = pick_server(c);
        if (!srv && c->tx.busy && !c->tx.ntried)
            return client_queue_wait(c); /* all at max_inflight: busy, not down */
        if (!srv) {
            /* nothing usable at all: 503; every server tried: the failure's own status */
            if (!c->tx.ntried)
                STAT_INC(c->w->stats->pools[c->tx.pool].no_server);
            return tx_fail(c, c->tx.ntried ? fail_status : 503);
        }
        if (retry) {
            if (!retry_budget_allows(c, srv)) {
                /* the pool's budget is spent: only its backups may still take it */
                c->tx.skip_pool = srv->pool + 1;
                continue;
            }
        }
        /* the pick saw room; another worker may have taken the last slot
         * since: pick again, and that pick sees the server full */
        if (!state_server_reserve(server_state(c, srv), server_max_inflight(c, srv)))
            continue;
        if (retry)
            count_retry(c);
        tx_detach(c);
        tx_attach(c, srv);
        int err = 0;
        upstream_t *u = upstream_acquire(c->w, srv, &err);
        if (u && head && upstream_take(u, head) < 0) {
            upstream_close(u);
            u = NULL;
            err = -ENOMEM;
        }
        if (u) {
            u->client = c;
            c->up = u;
            c->tx.req_head_sent = 0;
            c->tx.resp_parsed_len = 0;
            if (u->state != UP_CONNECTING)
                loop_timer_start(c->w->loop, &u->timer,
                                 c->w->conf->pools[srv->pool].response_timeout_ms);
            return PROGRESS;
        }
        worker_server_warn(c->w, srv, "cannot connect: %s", strerror(-err));
        report_failure(c);
        if (!can_retry(c, CONF_RETRY_CONNECT))
            return tx_fail(c, 502);
        retry = true;
        fail_status = 502;
    }
}

/* The current server failed the transaction (why: a CONF_RETRY_* bit).
 * Counts the failure against it and retries elsewhere when allowed, else
 * answers status. */
static int tx_retry_or_fail(client_t *c, unsigned why, int status)
{
    report_failure(c);
    if (!can_retry(c, why))
        return tx_fail(c, status);
    upstream_t *old = c->up;
    buf_t bytes;
    if (retry_bytes(c, old, &bytes) < 0)
        return tx_fail(c, status);
    c->up = NULL;
    upstream_close(old);
    int r = tx_connect(c, &bytes, status, true);
    buf_deinit(&bytes);
    return r;
}

/* A parsed head: route it, write the server's head, set up both bodies. */
static int tx_start(client_t *c, http_request_t *req)
{
    const conf_listener_t *lc = lconf(c);
    bool again = c->tx.shield_passed; /* parsed again after the WAF's pass */
    if (!again) {
        c->tx.bytes_in += req->head_len;
        copy_request_info(c, req);
    }
    c->keep_alive = req->keep_alive && !c->w->draining;
    c->tx.upgrade = req->upgrade;
    c->tx.minor = req->minor;
    body_init(&c->tx.req_body, req->body, req->content_length, lc->max_header_bytes);
    set_idle(c, false);
    if (lc->redirect_https)
        return redirect_https(c, req);

    int route = route_match(lc, req->host, req->path);
    if (route < 0) {
        buf_consume(&c->in, req->head_len);
        return tx_fail(c, 404);
    }
    c->tx.route = route;
    c->tx.pool = lc->routes[route].pool;
    c->tx.policy = c->l->route_policy ? c->l->route_policy[route] : NULL;
    if (c->tx.policy && !again) {
        int r;
        if (client_shield_request(c, req, &r))
            return r;
    }
    /* a body is kept for a retry when its announced length is within
     * retry.body; chunked bodies (length unknown up front) are not */
    size_t keep = c->w->conf->pools[c->tx.pool].retry.body;
    c->tx.replayable = req->body == HTTP_BODY_NONE ||
                       (req->body == HTTP_BODY_LENGTH && req->content_length <= keep);
    buf_deinit(&c->tx.replay); /* a request back from the queue passes here again */
    buf_init(&c->tx.replay,
             req->body == HTTP_BODY_LENGTH && c->tx.replayable ? (size_t)req->content_length : 0);
    if (c->w->conf->pools[c->tx.pool].balance == CONF_BALANCE_HASH)
        c->tx.hash_key = request_hash_key(c, &c->w->conf->pools[c->tx.pool], req);
    int r = tx_connect(c, NULL, 503, false);
    if (r != PROGRESS || !c->up)
        return r;

    head_request_ctx_t ctx = {
        .client_ip = str_from(c->peer_ip, c->peer_ip_len),
        .request_id = str_from(c->tx.request_id, c->tx.request_id_len),
        .proto = c->tls.ssl ? STR_LIT("https") : STR_LIT("http"),
    };
    if (head_write_request(&c->up->out, req, &ctx) < 0) {
        buf_consume(&c->in, req->head_len);
        return tx_reject(c, HTTP_REJECT_HEADERS_TOO_LARGE);
    }
    c->tx.head_up_len = buf_len(&c->up->out);
    buf_consume(&c->in, req->head_len);
    c->state = CL_PROXY;
    loop_timer_start(c->w->loop, &c->timer, lc->client_timeout_ms);
    return PROGRESS;
}

/* The response is complete and written: account, recycle, go on. */
static int tx_finish(client_t *c)
{
    bool req_done = request_sent(c);
    tx_log(c);
    tx_detach_all(c);
    upstream_release(c->up, c->tx.up_keep_alive && req_done);
    c->up = NULL;
    c->requests++;
    /* Draining for a stop, the connection ends here even if the response
     * promised keep-alive; for a reload it stays open as promised (the client
     * may be sending its next request already) and that request is answered
     * with Connection: close, or it is closed after a short idle grace. */
    if (!c->keep_alive || !req_done || c->eof || (c->w->draining && !c->w->gentle)) {
        client_close(c);
        return CLOSED;
    }
    tx_reset(c);
    c->state = CL_HEAD;
    c->parsed_len = 0;
    if (buf_len(&c->in) == 0) {
        set_idle(c, true);
        buf_release(&c->in);
        idle_timer_start(c);
    } else {
        c->tx.start_ms = loop_now(c->w->loop);
        loop_timer_start(c->w->loop, &c->timer, lconf(c)->header_timeout_ms);
    }
    if (buf_len(&c->out) == 0)
        buf_deinit(&c->out);
    return PROGRESS;
}

/* ---- I/O steps ------------------------------------------------------------ */

/* To the client: a[0,alen) then b[0,blen), in clear or through TLS. */
static int client_send(client_t *c, const char *a, size_t alen, const char *b, size_t blen,
                       size_t *ret_sent)
{
    return tls_stream_send(c->io.fd, &c->tls, &c->ready, a, alen, b, blen, ret_sent);
}

/* From the client into c->in, in clear or through TLS. */
static int client_read_in(client_t *c, int *ret_err)
{
    return tls_stream_read(c->io.fd, &c->tls, &c->in, &c->ready, &c->eof, ret_err);
}

/* Sends what is left of out, then up to body_len bytes from the front of
 * body, to the client; consumes both. Returns body bytes sent (>= 0),
 * -EAGAIN or -errno. */
static ssize_t send_out_and_body(client_t *c, buf_t *out, buf_t *body, size_t body_len,
                                 bool *ret_progress)
{
    size_t hl = buf_len(out), sent;
    int r = client_send(c, hl ? buf_rptr(out) : NULL, hl, body_len ? buf_rptr(body) : NULL,
                        body_len, &sent);
    if (r < 0)
        return r;
    *ret_progress = sent > 0;
    size_t from_out = sent < hl ? sent : hl;
    if (from_out)
        buf_consume(out, from_out);
    if (sent > from_out)
        buf_consume(body, sent - from_out);
    return (ssize_t)(sent - from_out);
}

/* CL_HEAD: parse what is buffered, else read more. */
static int step_head(client_t *c)
{
    worker_t *w = c->w;
    if (buf_len(&c->in) > c->parsed_len) {
        http_request_t req;
        http_reject_t reason = HTTP_REJECT_NONE;
        int r = http_parse_request(&req, buf_rptr(&c->in), buf_len(&c->in), &c->l->limits,
                                   w->fields, c->l->limits.max_headers, &reason);
        if (r == 0)
            return tx_start(c, &req);
        if (r == -EBADMSG)
            return tx_reject(c, reason);
        c->parsed_len = buf_len(&c->in);
    }
    if (c->w->draining && !c->w->gentle && buf_len(&c->in) == 0) {
        client_close(c);
        return CLOSED;
    }
    bool was_empty = buf_len(&c->in) == 0;
    int err = 0;
    int r = client_read_in(c, &err);
    if (c->eof) {
        /* Closing between requests is normal; mid-head it is the client's loss. */
        client_close(c);
        return CLOSED;
    }
    if (r == IDLE && buf_len(&c->in) == 0 && c->in.data)
        buf_release(&c->in); /* idle keep-alive connections hold no buffer */
    if (r == PROGRESS && was_empty && buf_len(&c->in)) {
        set_idle(c, false);
        c->tls_trim_due = false;
        c->tx.start_ms = loop_now(w->loop);
        if (c->requests > 0)
            loop_timer_start(w->loop, &c->timer, lconf(c)->header_timeout_ms);
    }
    if (r == IDLE && c->in.data && buf_free_space(&c->in) == 0)
        return tx_reject(c, HTTP_REJECT_HEADERS_TOO_LARGE);
    return r;
}

/* The connection to the server failed before the response was complete. A
 * reused keep-alive connection that the server had closed is retried once on
 * a fresh one when nothing is lost by it (no body, no response byte). */
static int upstream_failed(client_t *c, int err)
{
    upstream_t *u = c->up;
    bool replayable =
        c->tx.replayable && !c->tx.response_started && !c->tx.got_1xx && buf_len(&u->in) == 0;
    if (u->reused && replayable && !c->tx.retried) {
        c->tx.retried = true;
        int e = 0;
        buf_t bytes;
        upstream_t *fresh = upstream_acquire(c->w, u->srv, &e);
        if (fresh && retry_bytes(c, u, &bytes) == 0) {
            int r = upstream_take(fresh, &bytes);
            buf_deinit(&bytes);
            if (r == 0) {
                upstream_close(u);
                fresh->client = c;
                c->up = fresh;
                c->tx.req_head_sent = 0;
                return PROGRESS;
            }
        }
        upstream_close(fresh);
    }
    const char *tls_why = u->tls.error ? ERR_reason_error_string(u->tls.error) : NULL;
    worker_server_warn(c->w, u->srv, "failed before answering: %s%s%s",
                       err ? strerror(-err) : "connection closed", tls_why ? ": TLS: " : "",
                       tls_why ? tls_why : "");
    return tx_retry_or_fail(c, CONF_RETRY_RESET, 502);
}

/* Connect completion (the first writability tells), then the pool's TLS
 * handshake; a failure of either is a connect failure, retried elsewhere. */
static int step_connect(client_t *c)
{
    upstream_t *u = c->up;
    if (u->state != UP_CONNECTING)
        return IDLE;
    char why[320];
    int r = upstream_connect_step(u, why, sizeof(why));
    if (r == -EAGAIN)
        return IDLE;
    if (r < 0) {
        worker_server_warn(c->w, u->srv, "%s", why);
        return tx_retry_or_fail(c, CONF_RETRY_CONNECT, 502);
    }
    loop_timer_start(c->w->loop, &u->timer, c->w->conf->pools[u->srv->pool].response_timeout_ms);
    return PROGRESS;
}

/* The client timer while a request body comes: timeouts.client, or a
 * second when limits.body_rate must be watched. */
static uint64_t body_timer_ms(const client_t *c)
{
    uint64_t t = lconf(c)->client_timeout_ms;
    if (c->tx.policy && c->tx.policy->conf->limits.body_rate && t > 1000)
        t = 1000;
    return t;
}

int client_read(client_t *c)
{
    int err = 0;
    int r = client_read_in(c, &err);
    if (r == PROGRESS && c->eof && err) {
        client_close(c);
        return CLOSED;
    }
    return r;
}

int client_flush_out(client_t *c)
{
    size_t sent;
    int r = client_send(c, buf_rptr(&c->out), buf_len(&c->out), NULL, 0, &sent);
    if (r == 0 && sent) {
        buf_consume(&c->out, sent);
        return PROGRESS;
    }
    if (r < 0 && r != -EAGAIN) {
        client_close(c);
        return CLOSED;
    }
    return IDLE;
}

/* Request direction: head and body to the server, more body from the client. */
static int step_request(client_t *c)
{
    upstream_t *u = c->up;
    body_t *b = &c->tx.req_body;
    int progress = IDLE;
    http_reject_t reason;

    if (u->state == UP_CONNECTING || c->tx.stop_request)
        return IDLE;
    if (body_classify(b, &c->in, &reason) < 0)
        return tx_reject(c, reason);
    size_t hl = buf_len(&u->out) - c->tx.req_head_sent;
    if (hl || b->pending) {
        size_t sent;
        int r = upstream_send(u, buf_rptr(&u->out) + c->tx.req_head_sent, hl,
                              b->pending ? buf_rptr(&c->in) : NULL, b->pending, &sent);
        if (r == 0 && sent) {
            size_t from_head = sent < hl ? sent : hl;
            c->tx.req_head_sent += from_head;
            if (sent > from_head) {
                if (c->tx.replay.cap) /* kept for a retry; bounded by retry.body */
                    buf_append(&c->tx.replay, buf_rptr(&c->in), sent - from_head);
                buf_consume(&c->in, sent - from_head);
                b->pending -= sent - from_head;
                c->tx.bytes_in += sent - from_head;
                int r = client_shield_body(c, sent - from_head);
                if (r != IDLE)
                    return r; /* answered 413 (or cut): c may be gone */
            }
            progress = PROGRESS;
        } else if (r < 0 && r != -EAGAIN) {
            return upstream_failed(c, r);
        }
    }
    if (!b->done && !c->eof) {
        int err = 0;
        int r = client_read_in(c, &err);
        if (r == PROGRESS) {
            progress = PROGRESS;
            c->tx.last_read_ms = loop_now(c->w->loop);
            loop_timer_start(c->w->loop, &c->timer, body_timer_ms(c));
        }
        if (c->eof && !b->done) {
            /* The client gave up mid-body: nothing can complete this request. */
            client_close(c);
            return CLOSED;
        }
    }
    return progress;
}

static bool request_sent(const client_t *c)
{
    return body_sent(&c->tx.req_body) && c->tx.req_head_sent == buf_len(&c->up->out);
}

/* A response head arrived: 1xx is relayed and waited past; a final one is
 * rewritten into out and its body set up. */
static int on_response_head(client_t *c, http_response_t *res)
{
    upstream_t *u = c->up;
    str_t reqid = str_from(c->tx.request_id, c->tx.request_id_len);
    if (res->status < 200 && res->status != 101) {
        c->tx.got_1xx = true;
        if (c->tx.minor == 1 && head_write_response(&c->out, res, 1, true, STR_NULL, NULL) < 0)
            return tx_fail(c, 502);
        buf_consume(&u->in, res->head_len);
        c->tx.resp_parsed_len = 0;
        return PROGRESS;
    }
    if (res->status == 101 && !c->tx.upgrade)
        return tx_fail(c, 502);
    if (res->status >= 500) {
        unsigned bit = res->status == 500   ? CONF_RETRY_500
                       : res->status == 502 ? CONF_RETRY_502
                       : res->status == 503 ? CONF_RETRY_503
                       : res->status == 504 ? CONF_RETRY_504
                                            : 0;
        if (bit && can_retry(c, bit) && retry_target_exists(c))
            return tx_retry_or_fail(c, bit, 502); /* the answer is dropped: another server tries */
        report_failure(c);
    } else {
        report_success(c);
    }
    if (!request_sent(c)) {
        /* The server answered before taking the whole request: stop sending,
         * and the connection cannot carry another request. */
        c->tx.stop_request = true;
        c->keep_alive = false;
    }
    /* An HTTP/1.0 client cannot read chunked coding: it gets the decoded
     * body, delimited by the connection's close. */
    bool dechunk = c->tx.minor == 0 && res->body == HTTP_BODY_CHUNKED;
    http_body_kind_t wire_kind = res->body;
    if (dechunk)
        res->body = HTTP_BODY_CLOSE;
    if (res->body == HTTP_BODY_CLOSE)
        c->keep_alive = false;
    c->tx.up_keep_alive = res->keep_alive;
    if (request_sent(c)) {
        buf_deinit(&u->out); /* no retry possible past this point */
        c->tx.req_head_sent = 0;
    }
    if (head_write_response(&c->out, res, c->tx.minor, c->keep_alive, reqid,
                            &c->l->added) < 0)
        return tx_fail(c, 502);
    c->tx.status = res->status;
    c->tx.response_started = true;
    buf_consume(&u->in, res->head_len);
    body_init(&c->tx.resp_body, wire_kind, res->content_length, u->in.cap);
    c->tx.resp_body.dechunk = dechunk;
    if (res->status == 101) {
        c->state = CL_TUNNEL;
        tx_log(c);
        c->tx.tunnel_logged = true;
        loop_timer_stop(c->w->loop, &u->timer);
    }
    return PROGRESS;
}

/* Response direction: read from the server, parse the head, stream the body. */
static int step_response(client_t *c)
{
    upstream_t *u = c->up;
    body_t *b = &c->tx.resp_body;
    int progress = IDLE, err = 0;

    if (u->state == UP_CONNECTING)
        return IDLE;
    if (upstream_read(u, &err) == PROGRESS) {
        progress = PROGRESS;
        loop_timer_start(c->w->loop, &u->timer,
                         c->w->conf->pools[u->srv->pool].response_timeout_ms);
    }
    while (!c->tx.response_started && buf_len(&u->in) > c->tx.resp_parsed_len) {
        http_response_t res;
        http_reject_t reason = HTTP_REJECT_NONE;
        int r =
            http_parse_response(&res, buf_rptr(&u->in), buf_len(&u->in), &c->w->resp_limits,
                                c->tx.head_method, c->w->fields, GW_RESPONSE_MAX_FIELDS, &reason);
        if (r == -EAGAIN) {
            c->tx.resp_parsed_len = buf_len(&u->in);
            if (buf_free_space(&u->in) == 0)
                return tx_fail(c, 502);
            break;
        }
        if (r < 0) {
            worker_server_warn(c->w, u->srv, "invalid response: %s", http_reject_name(reason));
            return tx_fail(c, 502);
        }
        r = on_response_head(c, &res);
        if (r != PROGRESS || c->state != CL_PROXY || c->up != u)
            return r; /* closed, answered, or retried on another connection */
        progress = PROGRESS;
    }
    if (!c->tx.response_started) {
        if (u->eof)
            return upstream_failed(c, err);
        if (buf_len(&c->out)) { /* relayed 1xx */
            size_t sent;
            int r = client_send(c, buf_rptr(&c->out), buf_len(&c->out), NULL, 0, &sent);
            if (r == 0 && sent) {
                buf_consume(&c->out, sent);
                c->tx.bytes_out += sent;
                progress = PROGRESS;
            }
        }
        return progress;
    }

    http_reject_t reason;
    if (body_classify(b, &u->in, &reason) < 0) {
        worker_server_warn(c->w, u->srv, "bad chunked body: %s", http_reject_name(reason));
        return tx_fail(c, 502);
    }
    if (u->eof && b->kind == HTTP_BODY_CLOSE)
        b->done = true;
    if (buf_len(&c->out) || b->pending) {
        bool sent_any = false;
        size_t out_before = buf_len(&c->out);
        ssize_t n = send_out_and_body(c, &c->out, &u->in, b->pending, &sent_any);
        if (n >= 0) {
            b->pending -= (size_t)n;
            c->tx.bytes_out += (size_t)n + (out_before - buf_len(&c->out));
            if (sent_any) {
                progress = PROGRESS;
                loop_timer_start(c->w->loop, &c->timer, lconf(c)->client_timeout_ms);
            }
        } else if (n != -EAGAIN) {
            /* The client went away: nothing more to do for it. */
            client_close(c);
            return CLOSED;
        }
    }
    if (body_sent(b) && buf_len(&c->out) == 0)
        return tx_finish(c);
    if (u->eof && !b->done && b->pending == 0) {
        worker_server_warn(c->w, u->srv, "closed mid-response");
        return tx_fail(c, 502); /* cuts the response: the length cannot be honoured */
    }
    return progress;
}

static int step_proxy(client_t *c)
{
    int r1 = step_connect(c);
    if (r1 == CLOSED || c->state != CL_PROXY)
        return r1 == CLOSED ? CLOSED : PROGRESS;
    int r2 = step_request(c);
    if (r2 == CLOSED || c->state != CL_PROXY)
        return r2 == CLOSED ? CLOSED : PROGRESS;
    int r3 = step_response(c);
    if (r3 == CLOSED)
        return CLOSED;
    return (r1 == PROGRESS || r2 == PROGRESS || r3 == PROGRESS) ? PROGRESS : IDLE;
}

/* After 101: bytes both ways until either side ends. */
static int step_tunnel(client_t *c)
{
    upstream_t *u = c->up;
    int progress = IDLE, err = 0;
    bool any;
    if (client_read_in(c, &err) == PROGRESS)
        progress = PROGRESS;
    if (upstream_read(u, &err) == PROGRESS)
        progress = PROGRESS;
    if (buf_len(&c->in)) {
        size_t sent;
        int r = upstream_send(u, buf_rptr(&c->in), buf_len(&c->in), NULL, 0, &sent);
        if (r == 0 && sent) {
            buf_consume(&c->in, sent);
            c->tx.bytes_in += sent;
            progress = PROGRESS;
        } else if (r < 0 && r != -EAGAIN) {
            u->eof = c->eof = true;
        }
    }
    if (buf_len(&c->out) || buf_len(&u->in)) {
        size_t before = buf_len(&c->out) + buf_len(&u->in);
        ssize_t n = send_out_and_body(c, &c->out, &u->in, buf_len(&u->in), &any);
        if (n >= 0 && any) {
            c->tx.bytes_out += before - buf_len(&c->out) - buf_len(&u->in);
            progress = PROGRESS;
        } else if (n < 0 && n != -EAGAIN) {
            u->eof = c->eof = true;
        }
    }
    if (progress == PROGRESS)
        loop_timer_start(c->w->loop, &c->timer, lconf(c)->client_timeout_ms);
    if ((c->eof && buf_len(&c->in) == 0) ||
        (u->eof && buf_len(&u->in) == 0 && buf_len(&c->out) == 0)) {
        client_close(c);
        return CLOSED;
    }
    return progress;
}

/* Flush the final answer, then a lingering close: stop sending, read and
 * discard what the client still sends for a moment, so that unread request
 * bytes do not turn our close into a reset that destroys the answer. */
static int step_closing(client_t *c)
{
    if (buf_len(&c->out))
        return client_flush_out(c);
    if (!c->shut) {
        tls_io_close_notify(&c->tls);
        shutdown(c->io.fd, SHUT_WR);
        c->shut = true;
        loop_timer_start(c->w->loop, &c->timer, 2000);
    }
    for (;;) {
        if (!c->ready.readable)
            return IDLE;
        buf_consume(&c->in, buf_len(&c->in));
        int err = 0;
        /* raw: what follows our close (and close_notify) is only discarded */
        tls_stream_read(c->io.fd, NULL, &c->in, &c->ready, &c->eof, &err);
        if (c->eof) {
            client_close(c);
            return CLOSED;
        }
    }
}

void client_run(client_t *c)
{
    while (c->tls.handshaking)
        if (client_tls_handshake(c) != PROGRESS)
            return;
    for (;;) {
        int r = IDLE;
        switch (c->state) {
        case CL_HEAD:
            r = step_head(c);
            break;
        case CL_PROXY:
            r = step_proxy(c);
            break;
        case CL_TUNNEL:
            r = step_tunnel(c);
            break;
        case CL_CLOSING:
            r = step_closing(c);
            break;
        case CL_WAF:
            r = client_waf_step(c);
            break;
        case CL_QUEUED: /* its turn comes from the queue (client_queue.c) */
            break;
        }
        if (r != PROGRESS)
            return;
    }
}

static void client_io_cb(loop_t *loop, loop_io_t *io, uint32_t ev)
{
    (void)loop;
    client_t *c = container_of(io, client_t, io);
    loop_ready_update(&c->ready, ev);
    client_run(c);
}

static void client_timer_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    client_t *c = container_of(t, client_t, timer);
    stats_listener_t *ls = lstats(c);
    switch (c->state) {
    case CL_HEAD:
        if (buf_len(&c->in) == 0 && c->tls_trim_due) {
            c->tls_trim_due = false;
            tls_io_trim(&c->tls);
            loop_timer_start(c->w->loop, &c->timer, c->idle_left_ms);
            return;
        }
        if (buf_len(&c->in) == 0) {
            STAT_INC(ls->timeouts[c->requests ? TIMEOUT_IDLE : TIMEOUT_HEADER]);
            client_close(c);
            return;
        }
        STAT_INC(ls->timeouts[TIMEOUT_HEADER]);
        if (c->l->policy)
            client_shield_event(c, c->l->policy, SHIELD_SLOW_HEADER, 408, NULL);
        if (tx_fail(c, 408) == CLOSED)
            return;
        break;
    case CL_QUEUED:
        if (client_queue_expired(c) == CLOSED)
            return;
        break;
    case CL_WAF:
        if (c->tx.waf_job) { /* waiting on the WAF threads, which always answer */
            loop_timer_start(c->w->loop, &c->timer, lconf(c)->client_timeout_ms);
            return;
        }
        STAT_INC(ls->timeouts[TIMEOUT_CLIENT]);
        buf_consume(&c->in, c->tx.head_up_len);
        if (tx_fail(c, 408) == CLOSED)
            return;
        break;
    case CL_PROXY:
        if (client_shield_body_too_slow(c)) {
            client_shield_event(c, c->tx.policy, SHIELD_SLOW_BODY, 408, NULL);
            if (tx_fail(c, 408) == CLOSED)
                return;
            break;
        }
        if (!c->tx.req_body.done && c->tx.policy && c->tx.policy->conf->limits.body_rate &&
            loop_now(c->w->loop) - c->tx.last_read_ms < lconf(c)->client_timeout_ms) {
            loop_timer_start(c->w->loop, &c->timer, body_timer_ms(c));
            return;
        }
        if (request_sent(c) && buf_len(&c->out) == 0 && c->tx.resp_body.pending == 0) {
            /* Waiting on the server, not on the client: its own timer rules. */
            loop_timer_start(c->w->loop, &c->timer, lconf(c)->client_timeout_ms);
            return;
        }
        STAT_INC(ls->timeouts[TIMEOUT_CLIENT]);
        if (tx_fail(c, 408) == CLOSED)
            return;
        break;
    case CL_TUNNEL:
    case CL_CLOSING:
        client_close(c);
        return;
    }
    client_run(c);
}

/* True while the transaction waits for the client (more request body, or
 * room to write the response), not for the server: the server's timer must
 * not blame the server for a slow client. */
static bool waiting_on_client(const client_t *c)
{
    const upstream_t *u = c->up;
    if (c->tx.response_started)
        return buf_len(&c->out) > 0 || c->tx.resp_body.pending > 0;
    return !c->tx.req_body.done && c->tx.req_body.pending == 0 &&
           c->tx.req_head_sent == buf_len(&u->out);
}

void client_upstream_timeout(client_t *c)
{
    stats_listener_t *ls = lstats(c);
    upstream_t *u = c->up;
    if (u->state != UP_CONNECTING && waiting_on_client(c)) {
        loop_timer_start(c->w->loop, &u->timer,
                         c->w->conf->pools[u->srv->pool].response_timeout_ms);
        return;
    }
    if (u->state == UP_CONNECTING) {
        STAT_INC(ls->timeouts[TIMEOUT_CONNECT]);
        STAT_INC(u->srv->stats->connect_errors);
        worker_server_warn(c->w, u->srv, "connect timed out");
    } else {
        STAT_INC(ls->timeouts[TIMEOUT_RESPONSE]);
        worker_server_warn(c->w, u->srv, "did not answer in time");
    }
    bool connecting = u->state == UP_CONNECTING;
    if (tx_retry_or_fail(c, connecting ? CONF_RETRY_CONNECT : CONF_RETRY_TIMEOUT, 504) == CLOSED)
        return;
    client_run(c);
}

void client_drain(client_t *c)
{
    /* a response head already sent keeps its word (see tx_finish) */
    if (!c->tx.response_started)
        c->keep_alive = false;
    if (c->state != CL_HEAD || buf_len(&c->in) != 0)
        return;
    c->tls_trim_due = false; /* the grace below ends it */
    if (c->w->gentle)
        loop_timer_start(c->w->loop, &c->timer, RELOAD_IDLE_GRACE_MS);
    else
        client_close(c);
}
