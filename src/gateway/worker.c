/* A worker: one thread running one event loop with its own listening
 * sockets (SO_REUSEPORT: the kernel spreads new connections across workers),
 * client connections, upstream keep-alive pools and counters. Workers share
 * nothing mutable; the main thread talks to one only through its async
 * handle (drain), the control thread only reads its counters. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/worker.h"
#include "gateway/worker_api.h"

/* Warm buffer blocks kept per size and worker: enough for the connections
 * that turn over between two loop iterations; at most a few MiB. */
#define BUF_CACHE_MAX 64

static void accept_cb(loop_t *loop, loop_io_t *io, uint32_t ev);

static void listener_pause(worker_t *w, listener_t *l)
{
    if (l->accepting && l->io.fd >= 0) {
        loop_io_del(w->loop, &l->io);
        l->accepting = false;
    }
}

static void listener_resume(worker_t *w, listener_t *l)
{
    if (!l->accepting && l->io.fd >= 0 && !w->draining &&
        loop_io_add_listener(w->loop, &l->io, l->io.fd, accept_cb) == 0)
        l->accepting = true;
}

static void resume_timer_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    worker_t *w = container_of(t, worker_t, resume_timer);
    for (size_t i = 0; i < w->conf->nlisteners; i++)
        if (w->nclients < w->conf->max_connections)
            listener_resume(w, &w->listeners[i]);
}

/* The shield refused a new connection: close it before anything is
 * allocated for it, and say why (a counted event; it may be a strike).
 * Counted first: whoever sees the connection closed then finds it counted
 * (a scrape right after the refusal saw 0 on a busy machine). */
static void refuse(worker_t *w, listener_t *l, int fd, const sock_addr_t *peer, shield_reason_t why)
{
    secev_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.client = *peer;
    shield_event(w->shield, l->policy, why, &ev);
    close(fd);
}

static void accept_cb(loop_t *loop, loop_io_t *io, uint32_t ev)
{
    (void)loop;
    (void)ev;
    listener_t *l = container_of(io, listener_t, io);
    worker_t *w = l->w;
    /* Bounded batch: one busy listener must not starve the others. */
    for (int i = 0; i < 64; i++) {
        if (w->nclients >= w->conf->max_connections) {
            for (size_t k = 0; k < w->conf->nlisteners; k++)
                listener_pause(w, &w->listeners[k]);
            return;
        }
        sock_addr_t peer;
        int fd = sock_accept(io->fd, &peer);
        if (fd == -EAGAIN)
            return;
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                /* Out of descriptors: a level-triggered listener would spin,
                 * so stop accepting for a moment. */
                log_error("worker %u: accept: %s; pausing accepts for 100ms", w->id, strerror(-fd));
                for (size_t k = 0; k < w->conf->nlisteners; k++)
                    listener_pause(w, &w->listeners[k]);
                loop_timer_start(w->loop, &w->resume_timer, 100);
            }
            return;
        }
        bool counted = false;
        if (l->policy) {
            shield_reason_t why = shield_accept(
                w->shield, l->policy, (const struct sockaddr *)&peer.ss, loop_now(w->loop));
            if (why != SHIELD_OK) {
                refuse(w, l, fd, &peer, why);
                continue;
            }
            counted = true;
        }
        client_accept(w, l, fd, &peer, counted);
    }
}

void worker_client_closed(worker_t *w)
{
    w->nclients--;
    if (w->draining) {
        if (w->nclients == 0)
            loop_stop(w->loop);
        return;
    }
    if (w->nclients + 1 == w->conf->max_connections)
        resume_timer_cb(w->loop, &w->resume_timer);
}

#define SERVER_WARN_PER_SECOND 5

void worker_server_warn(worker_t *w, server_t *srv, const char *fmt, ...)
{
    uint64_t now = loop_now(w->loop);
    unsigned suppressed = 0;
    if (now - srv->log_at >= 1000) {
        if (srv->log_count > SERVER_WARN_PER_SECOND)
            suppressed = srv->log_count - SERVER_WARN_PER_SECOND;
        srv->log_at = now;
        srv->log_count = 0;
    }
    if (++srv->log_count > SERVER_WARN_PER_SECOND)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (suppressed)
        log_warn("pool %s: server %s: %s (and %u more like it in the last second)",
                 w->conf->pools[srv->pool].name, srv->label, msg, suppressed);
    else
        log_warn("pool %s: server %s: %s", w->conf->pools[srv->pool].name, srv->label, msg);
}

void worker_make_request_id(worker_t *w, char out[33])
{
    /* splitmix64 over a per-worker random seed: unique, unpredictable enough
     * for correlation (not for security), and free of locks. */
    uint64_t z = w->reqid_seed + 0x9e3779b97f4a7c15ULL * ++w->reqid_counter;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    static const char hex[] = "0123456789abcdef";
    uint64_t parts[2] = {w->reqid_prefix, z};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 16; i++)
            out[p * 16 + i] = hex[(parts[p] >> (60 - 4 * i)) & 15];
    out[32] = 0;
}

static void close_idle_upstreams(worker_t *w)
{
    for (size_t p = 0; p < w->conf->npools; p++)
        for (size_t s = 0; s < w->conf->pools[p].nservers; s++) {
            server_t *srv = &w->pools[p].servers[s];
            while (!list_empty(&srv->idle))
                upstream_close(container_of(srv->idle.next, upstream_t, link));
        }
}

static void close_all_clients(worker_t *w)
{
    list_t *pos, *tmp;
    list_foreach_safe(pos, tmp, &w->clients) client_close(container_of(pos, client_t, link));
}

static void drain_timer_cb(loop_t *loop, loop_timer_t *t)
{
    worker_t *w = container_of(t, worker_t, drain_timer);
    if (w->nclients)
        log_warn("worker %u: drain timeout: closing %u connections still in flight", w->id,
                 w->nclients);
    close_all_clients(w);
    loop_stop(loop);
}

/* On the worker thread: the main thread asked for a drain. */
static void wake_cb(loop_t *loop, loop_async_t *a)
{
    worker_t *w = container_of(a, worker_t, wake);
    if (w->draining || !__atomic_load_n(&w->drain_requested, __ATOMIC_ACQUIRE))
        return;
    w->draining = true;
    w->gentle = __atomic_load_n(&w->drain_gentle, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < w->conf->nlisteners; i++) {
        listener_t *l = &w->listeners[i];
        listener_pause(w, l);
        if (l->io.fd >= 0) {
            close(l->io.fd);
            l->io.fd = -1;
        }
    }
    loop_timer_stop(loop, &w->resume_timer);
    list_t *pos, *tmp;
    list_foreach_safe(pos, tmp, &w->clients) client_drain(container_of(pos, client_t, link));
    close_idle_upstreams(w);
    if (w->nclients == 0)
        loop_stop(loop);
    else
        loop_timer_start(loop, &w->drain_timer, w->conf->drain_timeout_ms);
}

/* On a WAF thread: hand the finished job to its worker. The worker may be
 * stopping, but worker_free waits for waf_inflight to reach zero, and that
 * decrement is the last thing done here. */
void worker_waf_job_done(waf_job_t *job)
{
    worker_t *w = job->owner;
    pthread_mutex_lock(&w->waf_lock);
    /* A non-empty list has a wake-up pending already (the worker takes the
     * whole list when it wakes): one eventfd write per batch, not per job. */
    bool wake = w->waf_done == NULL;
    job->next = w->waf_done;
    w->waf_done = job;
    pthread_mutex_unlock(&w->waf_lock);
    if (wake)
        loop_async_send(&w->waf_wake);
    __atomic_sub_fetch(&w->waf_inflight, 1, __ATOMIC_ACQ_REL);
}

static waf_job_t *take_waf_done(worker_t *w)
{
    pthread_mutex_lock(&w->waf_lock);
    waf_job_t *list = w->waf_done;
    w->waf_done = NULL;
    pthread_mutex_unlock(&w->waf_lock);
    /* oldest first: the list was pushed at its head */
    waf_job_t *rev = NULL;
    while (list) {
        waf_job_t *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    return rev;
}

/* On the worker thread: verdicts are back. */
static void waf_wake_cb(loop_t *loop, loop_async_t *a)
{
    (void)loop;
    worker_t *w = container_of(a, worker_t, waf_wake);
    for (waf_job_t *j = take_waf_done(w), *next; j; j = next) {
        next = j->next;
        client_t *c = j->tag;
        if (c)
            client_waf_done(c, j);
        else
            waf_job_free(j); /* its client has gone */
    }
}

static void idle_cb(loop_t *loop, void *data)
{
    (void)loop;
    worker_t *w = data;
    access_log_flush(&w->alog);
}

static int setup_pools(worker_t *w, SSL_CTX *const *pool_tls)
{
    const conf_t *conf = w->conf;
    w->pools = calloc(conf->npools, sizeof(*w->pools));
    w->weights = calloc(conf->npools, sizeof(*w->weights));
    if (!w->pools || !w->weights)
        return -ENOMEM;
    for (size_t p = 0; p < conf->npools; p++) {
        const conf_pool_t *pc = &conf->pools[p];
        pool_t *pool = &w->pools[p];
        pool->tls = pool_tls ? pool_tls[p] : NULL;
        pool->servers = calloc(pc->nservers, sizeof(*pool->servers));
        pool->inflight = calloc(pc->nservers, sizeof(*pool->inflight));
        pool->eff_weight = calloc(pc->nservers, sizeof(*pool->eff_weight));
        pool->ewma = calloc(pc->nservers, sizeof(*pool->ewma));
        w->weights[p] = calloc(pc->nservers, sizeof(**w->weights));
        if (!pool->servers || !pool->inflight || !pool->eff_weight || !pool->ewma ||
            !w->weights[p] || balance_rr_init(&pool->rr, pc->nservers) < 0)
            return -ENOMEM;
        if (pc->balance == CONF_BALANCE_HASH) {
            const char *keys[pc->nservers];
            unsigned weights[pc->nservers];
            for (size_t s = 0; s < pc->nservers; s++) {
                keys[s] = pc->servers[s].address;
                weights[s] = pc->servers[s].weight;
            }
            if (!(pool->ring = balance_ring_new(pc->nservers, weights, keys)))
                return -ENOMEM;
        }
        for (size_t s = 0; s < pc->nservers; s++) {
            server_t *srv = &pool->servers[s];
            srv->pool = p;
            srv->index = s;
            list_init(&srv->idle);
            srv->stats = &w->stats->servers[p][s];
            snprintf(srv->label, sizeof(srv->label), "%s", pc->servers[s].address);
            w->weights[p][s] = pc->servers[s].weight;
            /* a reload's workers start from the estimate the old ones made */
            uint64_t ewma =
                __atomic_load_n(&w->state->pools[p].servers[s].ewma_us, __ATOMIC_RELAXED);
            if (ewma)
                balance_ewma_observe(&pool->ewma[s], ewma, loop_now(w->loop), BALANCE_EWMA_TAU_MS);
        }
    }
    return 0;
}

/* The listener's policy and each route's (its own, else the listener's);
 * the largest request a policy's WAF holds in the input buffer. */
static int setup_shield(worker_t *w, listener_t *l, const conf_listener_t *lc, size_t *ret_waf_body)
{
    l->policy = shield_gen_policy(w->sg, lc->shield);
    l->route_policy = calloc(lc->nroutes ? lc->nroutes : 1, sizeof(*l->route_policy));
    if (!l->route_policy)
        return -ENOMEM;
    *ret_waf_body = 0;
    for (size_t r = 0; r < lc->nroutes; r++) {
        const shield_policy_t *p = shield_gen_policy(w->sg, lc->routes[r].shield);
        l->route_policy[r] = p ? p : l->policy;
        if (l->route_policy[r] && l->route_policy[r]->waf &&
            l->route_policy[r]->conf->waf.body > *ret_waf_body)
            *ret_waf_body = l->route_policy[r]->conf->waf.body;
    }
    return 0;
}

/* The fields l adds to responses that lack them: HSTS (TLS listeners with
 * tls.hsts) and, with security_headers, the three that stop MIME sniffing,
 * framing by other sites and full-URL referrers. */
static void added_init(listener_t *l, const conf_listener_t *lc)
{
    head_added_t *a = &l->added;
    if (l->tls && lc->tls.hsts_ms) {
        int n = snprintf(l->hsts, sizeof(l->hsts), "max-age=%llu",
                         (unsigned long long)(lc->tls.hsts_ms / 1000));
        a->name[a->n] = STR_LIT("Strict-Transport-Security");
        a->value[a->n++] = str_from(l->hsts, (size_t)n);
    }
    if (!lc->security_headers)
        return;
    a->name[a->n] = STR_LIT("X-Content-Type-Options");
    a->value[a->n++] = STR_LIT("nosniff");
    a->name[a->n] = STR_LIT("X-Frame-Options");
    a->value[a->n++] = STR_LIT("SAMEORIGIN");
    a->name[a->n] = STR_LIT("Referrer-Policy");
    a->value[a->n++] = STR_LIT("strict-origin-when-cross-origin");
}

worker_t *worker_new(conf_t *conf, unsigned id, const int *listen_fds, access_log_t *alog,
                     state_t *state, shield_t *shield, const shield_gen_t *sg,
                     tls_server_t *const *tls, SSL_CTX *const *pool_tls)
{
    worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->id = id;
    w->shield = shield;
    w->sg = sg;
    pthread_mutex_init(&w->waf_lock, NULL);
    w->conf = conf_ref(conf);
    w->state = state;
    size_t most = 1;
    for (size_t p = 0; p < conf->npools; p++)
        if (conf->pools[p].nservers > most)
            most = conf->pools[p].nservers;
    w->usable = calloc(most, sizeof(*w->usable));
    list_init(&w->clients);
    list_init(&w->queued);
    loop_timer_init(&w->queue_timer, client_queue_timer_cb);
    loop_timer_init(&w->drain_timer, drain_timer_cb);
    loop_timer_init(&w->resume_timer, resume_timer_cb);
    w->loop = loop_new();
    w->stats = stats_new(conf);
    w->listeners = calloc(conf->nlisteners, sizeof(*w->listeners));
    w->client_in = calloc(conf->nlisteners, sizeof(*w->client_in));
    if (!w->loop || !w->stats || !w->listeners || !w->client_in || !w->usable ||
        setup_pools(w, pool_tls) < 0 || loop_async_init(w->loop, &w->wake, wake_cb) < 0)
        goto fail;
    w->wake_ready = true;
    if (loop_async_init(w->loop, &w->waf_wake, waf_wake_cb) < 0)
        goto fail;
    w->waf_wake_ready = true;
    if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) ||
        getrandom(&w->reqid_seed, sizeof(w->reqid_seed), 0) != sizeof(w->reqid_seed) ||
        getrandom(&w->reqid_prefix, sizeof(w->reqid_prefix), 0) != sizeof(w->reqid_prefix))
        goto fail;

    size_t max_head = 0;
    for (size_t i = 0; i < conf->nlisteners; i++) {
        const conf_listener_t *lc = &conf->listeners[i];
        listener_t *l = &w->listeners[i];
        l->w = w;
        l->index = i;
        l->io.fd = listen_fds[i];
        l->tls = tls ? tls[i] : NULL;
        added_init(l, lc);
        l->limits.max_request_line = lc->max_uri;
        l->limits.max_header_bytes = lc->max_header_bytes;
        l->limits.max_headers = lc->max_headers < GW_MAX_FIELDS ? lc->max_headers : GW_MAX_FIELDS;
        size_t waf_body;
        if (setup_shield(w, l, lc, &waf_body) < 0)
            goto fail_caches;
        /* a request the WAF holds keeps its head and body prefix in `in` */
        size_t cap = lc->max_header_bytes + waf_body;
        if (conf->buffer_size > cap)
            cap = conf->buffer_size;
        if (buf_cache_init(&w->client_in[i], cap, BUF_CACHE_MAX) < 0)
            goto fail_caches;
        if (lc->max_header_bytes > max_head)
            max_head = lc->max_header_bytes;
    }
    size_t up_in_cap = conf->buffer_size > 32768 ? conf->buffer_size : 32768;
    w->resp_limits.max_request_line = up_in_cap;
    w->resp_limits.max_header_bytes = up_in_cap;
    w->resp_limits.max_headers = GW_RESPONSE_MAX_FIELDS;
    /* Rewritten heads grow by the forwarding fields (bounded: see head.c). */
    if (buf_cache_init(&w->up_in, up_in_cap, BUF_CACHE_MAX) < 0 ||
        buf_cache_init(&w->up_out, max_head + 4096, BUF_CACHE_MAX) < 0 ||
        buf_cache_init(&w->client_out, up_in_cap + 1024, BUF_CACHE_MAX) < 0)
        goto fail_caches;
    access_log_writer_init(&w->alog, alog, &w->stats->access_log_dropped);
    loop_set_idle(w->loop, idle_cb, w);
    for (size_t i = 0; i < conf->nlisteners; i++)
        listener_resume(w, &w->listeners[i]);
    return w;
fail_caches:
    for (size_t i = 0; i < conf->nlisteners; i++)
        w->listeners[i].io.fd = -1; /* the caller still owns them */
    worker_free(w);
    return NULL;
fail:
    for (size_t i = 0; i < conf->nlisteners; i++)
        if (w->listeners)
            w->listeners[i].io.fd = -1; /* the caller still owns them */
    worker_free(w);
    return NULL;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    int r = loop_run(w->loop);
    if (r < 0)
        log_error("worker %u: event loop failed: %s", w->id, strerror(-r));
    access_log_flush(&w->alog);
    __atomic_store_n(&w->stopped, true, __ATOMIC_RELEASE);
    return NULL;
}

bool worker_stopped(worker_t *w)
{
    return __atomic_load_n(&w->stopped, __ATOMIC_ACQUIRE);
}

int worker_listen_fd(worker_t *w, size_t l)
{
    return l < w->conf->nlisteners ? w->listeners[l].io.fd : -1;
}

int worker_start(worker_t *w)
{
    int r = pthread_create(&w->thread, NULL, worker_main, w);
    if (r != 0)
        return -r;
    w->started = true;
    return 0;
}

void worker_drain(worker_t *w, bool gentle)
{
    __atomic_store_n(&w->drain_gentle, gentle, __ATOMIC_RELEASE);
    __atomic_store_n(&w->drain_requested, true, __ATOMIC_RELEASE);
    loop_async_send(&w->wake);
}

void worker_join(worker_t *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = false;
}

void worker_free(worker_t *w)
{
    if (!w)
        return;
    if (w->pools) {
        close_all_clients(w);
        close_idle_upstreams(w);
    }
    for (size_t i = 0; w->listeners && i < w->conf->nlisteners; i++) {
        listener_pause(w, &w->listeners[i]);
        if (w->listeners[i].io.fd >= 0)
            close(w->listeners[i].io.fd);
    }
    if (w->wake_ready)
        loop_async_deinit(w->loop, &w->wake);
    /* WAF jobs still at the WAF threads will call back into this worker:
     * wait for them (they always finish; their clients are gone). */
    while (__atomic_load_n(&w->waf_inflight, __ATOMIC_ACQUIRE))
        usleep(1000);
    for (waf_job_t *j = take_waf_done(w), *next; j; j = next) {
        next = j->next;
        waf_job_free(j);
    }
    if (w->waf_wake_ready)
        loop_async_deinit(w->loop, &w->waf_wake);
    pthread_mutex_destroy(&w->waf_lock);
    for (size_t p = 0; w->pools && p < w->conf->npools; p++) {
        for (size_t s = 0; w->pools[p].servers && s < w->conf->pools[p].nservers; s++)
            SSL_SESSION_free(w->pools[p].servers[s].tls_session);
        free(w->pools[p].servers);
        free(w->pools[p].inflight);
        free(w->pools[p].eff_weight);
        free(w->pools[p].ewma);
        balance_ring_free(w->pools[p].ring);
        balance_rr_deinit(&w->pools[p].rr);
        free(w->weights[p]);
    }
    free(w->pools);
    free(w->weights);
    free(w->usable);
    /* after every connection: their buffers went back to the caches */
    for (size_t i = 0; w->client_in && i < w->conf->nlisteners; i++)
        if (w->client_in[i].blocks)
            buf_cache_deinit(&w->client_in[i]);
    free(w->client_in);
    if (w->client_out.blocks)
        buf_cache_deinit(&w->client_out);
    if (w->up_in.blocks)
        buf_cache_deinit(&w->up_in);
    if (w->up_out.blocks)
        buf_cache_deinit(&w->up_out);
    for (size_t i = 0; w->listeners && i < w->conf->nlisteners; i++)
        free(w->listeners[i].route_policy);
    free(w->listeners);
    if (w->loop)
        loop_free(w->loop);
    /* stats are kept by the gateway until metrics are no longer read */
    conf_unref(w->conf);
    free(w);
}

stats_t *worker_stats(worker_t *w)
{
    return w->stats;
}
