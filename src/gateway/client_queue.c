/* Requests waiting for a max_inflight slot (pools.<n>.queue_timeout).
 *
 * A request whose pool has usable servers but none with room is not
 * answered at once: the client goes to CL_QUEUED with its request head
 * still in c->in, in its worker's FIFO. When its turn comes it goes back to
 * CL_HEAD and the head is parsed again (as after the WAF's verdict), and
 * tx_connect either gets a slot or puts it back in the queue; when
 * queue_timeout has passed since it first waited, it is answered 503.
 *
 * Slots are counted over all workers (state.h), but each worker queues its
 * own clients: a slot freed by this worker kicks its queue at once, and
 * while anything waits the queue is also looked at every QUEUE_POLL_MS, for
 * the slots the other workers free. The queue owns no memory: its entries
 * are connections, already bounded by max_connections. */
#include "gateway/worker.h"

#include <stdio.h>

#include "gateway/stats.h"

/* How often a worker with waiting requests looks for slots that other
 * workers freed; a slot freed by this worker is seen at once. */
#define QUEUE_POLL_MS 5

static bool queued(const client_t *c)
{
    return c->qlink.next != &c->qlink;
}

/* Whether a request of pool could get a slot now: a usable server with
 * room in the pool that serves it. A pool with nothing usable at all says
 * yes: tx_connect then answers (no server, or the backups). */
static bool pool_has_room(const worker_t *w, size_t pool, uint64_t now)
{
    size_t cur = state_serving(w->state, pool);
    if (cur == SIZE_MAX)
        return true;
    const conf_pool_t *pc = &w->conf->pools[cur];
    const pool_state_t *ps = &w->state->pools[cur];
    bool open = false;
    for (size_t i = 0; i < pc->nservers; i++) {
        if (!state_server_usable(&ps->servers[i], now))
            continue;
        open = true;
        if (state_server_has_room(&ps->servers[i], pc->servers[i].max_inflight))
            return true;
    }
    return !open;
}

/* The pool stayed busy for as long as the request may wait: 503, and
 * another attempt soon may well get in. */
static int busy(client_t *c)
{
    STAT_INC(c->w->stats->pools[c->tx.pool].busy);
    snprintf(c->tx.extra, sizeof(c->tx.extra), "Retry-After: 1\r\n");
    return client_fail(c, 503);
}

int client_queue_wait(client_t *c)
{
    worker_t *w = c->w;
    size_t pool = c->tx.pool;
    uint64_t now = loop_now(w->loop), since = c->tx.queued_ms ? c->tx.queued_ms : now;
    uint64_t timeout = w->conf->pools[pool].queue_timeout_ms, waited = now - since;
    if (waited >= timeout)
        return busy(c); /* queue_timeout 0: never queued, no queue_s in the log */
    c->tx.queued_ms = since;
    c->state = CL_QUEUED;
    /* the head is parsed again when its turn comes: what the first pass
     * did (counting, the shield's request checks) must not happen twice */
    c->tx.shield_passed = true;
    list_insert_tail(&w->queued, &c->qlink);
    w->nqueued++;
    STAT_INC(w->stats->pools[pool].queued);
    loop_timer_start(w->loop, &c->timer, timeout - waited);
    if (!loop_timer_active(&w->queue_timer))
        loop_timer_start(w->loop, &w->queue_timer, QUEUE_POLL_MS);
    return STEP_IDLE;
}

void client_queue_remove(client_t *c)
{
    if (!queued(c))
        return;
    list_remove(&c->qlink);
    c->tx.queue_wait_ms = loop_now(c->w->loop) - c->tx.queued_ms;
    c->w->nqueued--;
    STAT_DEC(c->w->stats->pools[c->tx.pool].queued);
}

int client_queue_expired(client_t *c)
{
    client_queue_remove(c);
    return busy(c);
}

void client_queue_kick(worker_t *w)
{
    if (w->nqueued)
        loop_timer_start(w->loop, &w->queue_timer, 0);
}

/* One look at the queue, oldest first: a request whose pool has room goes
 * on (client_run); the others keep their order. Each request is looked at
 * once per pass, so one that is queued again (another worker took the
 * slot first) does not spin. */
static void queue_pass(worker_t *w)
{
    uint64_t now = loop_now(w->loop);
    size_t npools = w->conf->npools ? w->conf->npools : 1;
    bool full[npools];
    for (size_t p = 0; p < npools; p++)
        full[p] = false;
    for (unsigned n = w->nqueued; n > 0 && !list_empty(&w->queued); n--) {
        client_t *c = container_of(w->queued.next, client_t, qlink);
        size_t p = c->tx.pool;
        if (full[p] || !pool_has_room(w, p, now)) {
            full[p] = true;
            list_remove(&c->qlink);
            list_insert_tail(&w->queued, &c->qlink);
            continue;
        }
        client_queue_remove(c);
        c->state = CL_HEAD;
        c->parsed_len = 0;
        client_run(c); /* c may be gone, or queued again */
        if (!pool_has_room(w, p, now))
            full[p] = true;
    }
}

void client_queue_timer_cb(loop_t *loop, loop_timer_t *t)
{
    worker_t *w = container_of(t, worker_t, queue_timer);
    queue_pass(w);
    if (w->nqueued && !loop_timer_active(t))
        loop_timer_start(loop, t, QUEUE_POLL_MS);
}
