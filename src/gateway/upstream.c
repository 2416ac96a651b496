/* Upstream connections: connect, the per-worker per-server keep-alive pool,
 * and the I/O callback that hands upstream events to the attached client.
 *
 * An idle connection sits in its server's list (most recently used first:
 * the one least likely to have been closed by the server) with the pool's
 * keepalive timer running. Any event on an idle connection means the server
 * closed it or sent bytes nobody asked for: either way it is closed. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/worker.h"

static void upstream_io_cb(loop_t *loop, loop_io_t *io, uint32_t ev);
static void upstream_timer_cb(loop_t *loop, loop_timer_t *t);

static const conf_pool_t *pool_conf(const upstream_t *u)
{
    return &u->w->conf->pools[u->srv->pool];
}

void upstream_close(upstream_t *u)
{
    if (!u)
        return;
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
    if (!reusable || u->eof || buf_len(&u->in) || u->srv->nidle >= pc->keepalive_max ||
        u->w->draining) {
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
