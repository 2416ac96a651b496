/* Upstream connections: connect (and the pool's TLS handshake), the
 * per-worker per-server keep-alive pool, and the I/O callback that hands
 * upstream events to the attached client.
 *
 * TLS to a pool: the context is the generation's (one per pool, verifying
 * the servers' chain and name unless `verify: false`); each server keeps the
 * latest resumable session per worker, so a new connection to a server
 * usually resumes instead of paying a full handshake.
 *
 * An idle connection sits in its server's list (most recently used first:
 * the one least likely to have been closed by the server) with the pool's
 * keepalive timer running. Any event on an idle connection means the server
 * closed it or sent bytes nobody asked for: either way it is closed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/log.h"
#include "gateway/worker.h"
#include "gateway/worker_api.h"

static void upstream_io_cb(loop_t *loop, loop_io_t *io, uint32_t ev);
static void upstream_timer_cb(loop_t *loop, loop_timer_t *t);

static void tls_warn_cb_pool(void *arg, const char *msg)
{
    log_warn("pool %s: tls: %s", (const char *)arg, msg);
}

static const conf_pool_t *pool_conf(const upstream_t *u)
{
    return &u->w->conf->pools[u->srv->pool];
}

/* Offers the connection's session to its server for the next connection
 * to resume (once: TLS 1.3 tickets come after the handshake, so the first
 * response is the earliest moment a resumable session exists). */
static void keep_session(upstream_t *u)
{
    if (u->session_kept || !u->tls.ssl || u->tls.handshaking || u->tls.dead)
        return;
    SSL_SESSION *s = SSL_get1_session(u->tls.ssl);
    if (s && SSL_SESSION_is_resumable(s)) {
        SSL_SESSION_free(u->srv->tls_session);
        u->srv->tls_session = s;
        u->session_kept = true;
        return;
    }
    SSL_SESSION_free(s);
}

void upstream_close(upstream_t *u)
{
    if (!u)
        return;
    if (u->tls.ssl) {
        keep_session(u);
        tls_io_close_notify(&u->tls);
        tls_conn_free(&u->tls);
    }
    if (u->state == UP_IDLE) {
        list_remove(&u->link);
        u->srv->nidle--;
        STAT_DEC(u->srv->stats->conns_idle);
    }
    loop_timer_stop(u->w->loop, &u->timer);
    loop_io_del(u->w->loop, &u->io);
    close(u->io.fd);
    buf_deinit(&u->in);
    buf_deinit(&u->out);
    free(u);
}

upstream_t *upstream_acquire(worker_t *w, server_t *srv, int *ret_err)
{
    if (!list_empty(&srv->idle)) {
        upstream_t *u = container_of(srv->idle.next, upstream_t, link);
        list_remove(&u->link);
        srv->nidle--;
        STAT_DEC(srv->stats->conns_idle);
        loop_timer_stop(w->loop, &u->timer);
        u->state = UP_ACTIVE;
        u->reused = true;
        return u;
    }
    const conf_server_t *cs = &w->conf->pools[srv->pool].servers[srv->index];
    upstream_t *u = calloc(1, sizeof(*u));
    if (!u) {
        *ret_err = -ENOMEM;
        return NULL;
    }
    int fd = sock_connect(&cs->addr);
    if (fd < 0) {
        STAT_INC(srv->stats->connect_errors);
        free(u);
        *ret_err = fd;
        return NULL;
    }
    u->w = w;
    u->srv = srv;
    u->state = UP_CONNECTING;
    list_init(&u->link);
    buf_init_cached(&u->in, &w->up_in);
    buf_init_cached(&u->out, &w->up_out);
    loop_timer_init(&u->timer, upstream_timer_cb);
    int r = loop_io_add(w->loop, &u->io, fd, upstream_io_cb);
    if (r < 0) {
        close(fd);
        free(u);
        *ret_err = r;
        return NULL;
    }
    STAT_INC(srv->stats->conns_total);
    loop_timer_start(w->loop, &u->timer, w->conf->pools[srv->pool].connect_timeout_ms);
    return u;
}

void upstream_release(upstream_t *u, bool reusable)
{
    const conf_pool_t *pc = pool_conf(u);
    u->client = NULL;
    keep_session(u);
    if (!reusable || u->eof || buf_len(&u->in) || u->srv->nidle >= pc->keepalive_max ||
        u->w->draining || (u->tls.ssl && SSL_has_pending(u->tls.ssl))) {
        upstream_close(u);
        return;
    }
    buf_deinit(&u->in);
    buf_deinit(&u->out);
    buf_init_cached(&u->out, &u->w->up_out); /* a retry may have resized it */
    u->state = UP_IDLE;
    u->ready.readable = false; /* a stale flag must not close it at the next edge */
    list_insert_head(&u->srv->idle, &u->link);
    u->srv->nidle++;
    STAT_INC(u->srv->stats->conns_idle);
    loop_timer_start(u->w->loop, &u->timer, pc->keepalive_timeout_ms);
}

static void upstream_io_cb(loop_t *loop, loop_io_t *io, uint32_t ev)
{
    (void)loop;
    upstream_t *u = container_of(io, upstream_t, io);
    loop_ready_update(&u->ready, ev);
    if (u->state == UP_IDLE) {
        /* Bytes or a FIN on an idle connection: the server closed it (or
         * broke the protocol). Writability alone (ACKs freeing the send
         * buffer raise an edge too) says nothing: keep it. */
        if (u->ready.readable)
            upstream_close(u);
        return;
    }
    if (u->client)
        client_run(u->client);
}

static void upstream_timer_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    upstream_t *u = container_of(t, upstream_t, timer);
    if (u->state == UP_IDLE) {
        upstream_close(u);
        return;
    }
    if (u->client)
        client_upstream_timeout(u->client);
}

/* The TCP connection is up: the pool's TLS starts on it. */
static int tls_start(upstream_t *u)
{
    SSL *ssl = tls_client_ssl_new(u->w->pools[u->srv->pool].tls);
    if (!ssl || SSL_set_fd(ssl, u->io.fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return -ENOMEM;
    }
    if (u->srv->tls_session)
        SSL_set_session(ssl, u->srv->tls_session);
    tls_conn_start(&u->tls, ssl);
    return 0;
}

int upstream_connect_step(upstream_t *u, char *why, size_t whylen)
{
    if (u->state != UP_CONNECTING)
        return 0;
    if (!u->tls.ssl) {
        if (!u->ready.writable)
            return -EAGAIN;
        int err = sock_error(u->io.fd);
        if (err) {
            STAT_INC(u->srv->stats->connect_errors);
            snprintf(why, whylen, "cannot connect: %s", strerror(-err));
            return err;
        }
        if (!u->w->pools[u->srv->pool].tls) {
            u->state = UP_ACTIVE;
            return 0;
        }
        if (tls_start(u) < 0) {
            snprintf(why, whylen, "cannot start TLS: out of memory");
            return -ENOMEM;
        }
    }
    int r = tls_io_handshake(&u->tls, &u->ready);
    if (r == -EAGAIN)
        return r;
    if (r < 0) {
        STAT_INC(u->srv->stats->tls_failures);
        char text[256];
        tls_io_failure(&u->tls, text, sizeof(text));
        snprintf(why, whylen, "TLS handshake failed: %s", text);
        return r;
    }
    STAT_INC(u->srv->stats->tls_handshakes);
    if (SSL_session_reused(u->tls.ssl))
        STAT_INC(u->srv->stats->tls_resumed);
    u->state = UP_ACTIVE;
    return 0;
}

int upstream_send(upstream_t *u, const char *a, size_t alen, const char *b, size_t blen,
                  size_t *ret_sent)
{
    return tls_stream_send(u->io.fd, &u->tls, &u->ready, a, alen, b, blen, ret_sent);
}

int upstream_read(upstream_t *u, int *ret_err)
{
    return tls_stream_read(u->io.fd, &u->tls, &u->in, &u->ready, &u->eof, ret_err);
}

SSL_CTX *upstream_tls_ctx_new(const conf_pool_t *pc, char *err, size_t errlen)
{
    tls_client_conf_t c = {
        .verify = pc->tls.verify,
        .ca = pc->tls.ca,
        .sni = pc->tls.sni,
        .cert = pc->tls.cert,
        .key = pc->tls.key,
        .warn = tls_warn_cb_pool,
        .warn_arg = pc->name,
    };
    return tls_client_ctx_new(&c, err, errlen);
}
