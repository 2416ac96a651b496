/* The gateway: binds the listeners, owns the worker generations, the access
 * log and the shared state, and answers metrics from the workers' counters.
 *
 * A generation is one configuration with its workers, state and access log.
 * A reload builds a complete new generation beside the running one (taking
 * over the very same listening sockets with dup, so no queued connection is
 * lost), starts it, and asks the old workers for a gentle drain; the old
 * generation is freed once its last worker has stopped (gateway_reap). Its
 * counters are folded by name into the totals so that Prometheus counters
 * never go back. See gateway.h and docs/architecture.md. */
#include "gateway/gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/worker_api.h"
#include "tls/tls.h"

#ifndef SURETY_VERSION
#define SURETY_VERSION "dev"
#endif

typedef struct gen {
    conf_t *conf;
    unsigned nworkers;
    worker_t **workers;
    stats_t **stats; /* [nworkers], kept past the workers for a last scrape */
    access_log_t *alog;
    state_t *state;
    shield_gen_t *sg;   /* the compiled shield policies */
    tls_server_t **tls; /* [listener]: TLS termination, NULL for plain HTTP */
    SSL_CTX **pool_tls; /* [pool]: TLS to the servers, NULL for plain HTTP */
    struct gen *next;   /* draining generations */
} gen_t;

struct gateway {
    shield_t *shield;     /* bans, events, WAF threads, limit state: outlives generations */
    pthread_mutex_t lock; /* cur, draining, retired: swapped by reloads, read by metrics */
    gen_t *cur;
    gen_t *draining;
    stats_t *retired;    /* counters of freed generations, shaped like cur->conf */
    uint64_t generation; /* reloads applied */
};

static void gen_free(gen_t *gen)
{
    if (!gen)
        return;
    for (unsigned w = 0; gen->workers && w < gen->nworkers; w++)
        worker_free(gen->workers[w]);
    access_log_close(gen->alog); /* after the workers: they hold its pipe */
    for (unsigned w = 0; gen->stats && w < gen->nworkers; w++)
        stats_free(gen->stats[w], gen->conf);
    free(gen->stats);
    free(gen->workers);
    shield_gen_free(gen->sg); /* after the workers: they use its policies */
    for (size_t l = 0; gen->tls && l < gen->conf->nlisteners; l++)
        tls_server_free(gen->tls[l]); /* connections still open keep what they use */
    free(gen->tls);
    for (size_t p = 0; gen->pool_tls && p < gen->conf->npools; p++)
        SSL_CTX_free(gen->pool_tls[p]); /* upstream connections hold their own reference */
    free(gen->pool_tls);
    state_free(gen->state);
    conf_unref(gen->conf);
    free(gen);
}

/* SO_REUSEPORT lets any process of the same user share a port, so a second
 * surety (or a stale one) would silently split the traffic. A plain bind
 * first tells whether the address is really free. */
static int probe_free(const sock_addr_t *a)
{
    int fd = sock_listen(a, false, 1);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

static bool addr_eq(const sock_addr_t *a, const sock_addr_t *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Listening sockets for every worker and listener of conf. Addresses the old
 * generation already listens on are taken over (dup of the same socket);
 * others are checked free, then bound. */
static int bind_all(const conf_t *conf, unsigned nworkers, int **fds, const gen_t *old, FILE *errs)
{
    for (size_t l = 0; l < conf->nlisteners; l++) {
        const conf_listener_t *lc = &conf->listeners[l];
        size_t ol = SIZE_MAX;
        for (size_t k = 0; old && k < old->conf->nlisteners; k++)
            if (addr_eq(&old->conf->listeners[k].addr, &lc->addr))
                ol = k;
        int r = ol == SIZE_MAX ? probe_free(&lc->addr) : 0;
        for (unsigned w = 0; r == 0 && w < nworkers; w++) {
            int ofd =
                ol != SIZE_MAX && w < old->nworkers ? worker_listen_fd(old->workers[w], ol) : -1;
            fds[w][l] =
                ofd >= 0 ? fcntl(ofd, F_DUPFD_CLOEXEC, 0) : sock_listen(&lc->addr, true, 511);
            r = fds[w][l] < 0 ? (ofd >= 0 ? -errno : fds[w][l]) : 0;
        }
        if (r < 0) {
            fprintf(errs, "listener '%s': cannot listen on %s: %s\n", lc->name, lc->listen,
                    strerror(-r));
            return r;
        }
    }
    return 0;
}

static void tls_warn(void *arg, const char *msg)
{
    log_warn("listener %s: tls: %s", (const char *)arg, msg);
}

/* The TLS listener of lc, or NULL with the reason on errs. Certificates are
 * read now: a reload with a renewed certificate serves it to new
 * connections while connections of the old generation keep theirs. */
static tls_server_t *tls_listener(const conf_listener_t *lc, FILE *errs)
{
    static const int versions[] = {
        [10] = TLS1_VERSION, [11] = TLS1_1_VERSION, [12] = TLS1_2_VERSION, [13] = TLS1_3_VERSION};
    const conf_tls_t *t = &lc->tls;
    tls_cert_files_t files[1 + t->ncerts];
    files[0] = (tls_cert_files_t){t->cert, t->key, t->ocsp};
    for (size_t i = 0; i < t->ncerts; i++)
        files[1 + i] =
            (tls_cert_files_t){t->certs[i].cert, t->certs[i].key, t->certs[i].ocsp};
    tls_server_conf_t c = {
        .certs = files,
        .ncerts = 1 + t->ncerts,
        .profile = t->profile == CONF_TLS_MODERN ? TLS_PROFILE_MODERN : TLS_PROFILE_INTERMEDIATE,
        .min_version = t->min_version ? versions[t->min_version] : 0,
        .allow_legacy = t->allow_legacy,
        .ticket_rotate_ms = t->ticket_rotate_ms,
        .warn = tls_warn,
        .warn_arg = lc->name,
    };
    char err[1024] = "";
    tls_server_t *s = tls_server_new(&c, err, sizeof(err));
    if (!s)
        fprintf(errs, "listener '%s': tls: %s\n", lc->name, err);
    return s;
}

/* The client context of a pool with tls, or NULL with the reason on errs. */
static SSL_CTX *tls_pool(const conf_pool_t *pc, FILE *errs)
{
    char err[1024] = "";
    if (!pc->tls.verify)
        log_warn("pool %s: tls.verify is false: the servers' certificates are not checked, so "
                 "anyone on the path can pose as them",
                 pc->name);
    SSL_CTX *ctx = upstream_tls_ctx_new(pc, err, sizeof(err));
    if (!ctx)
        fprintf(errs, "pool '%s': tls: %s\n", pc->name, err);
    return ctx;
}

/* surety_tls_certificate_expiry_seconds: what an alert on "renew within
 * N days" needs, per listener, certificate name and key type. */
static void tls_metrics_write(const gen_t *gen, prom_t *p)
{
    prom_family(p, "surety_tls_certificate_expiry_seconds", PROM_GAUGE,
                "Seconds until the certificate expires (negative: expired), by listener, "
                "name and key type.");
    time_t now = time(NULL);
    for (size_t l = 0; l < gen->conf->nlisteners; l++) {
        if (!gen->tls[l])
            continue;
        tls_cert_info_t *info = malloc(TLS_MAX_CERTS * sizeof(*info));
        size_t n = info ? tls_server_certs(gen->tls[l], info, TLS_MAX_CERTS) : 0;
        for (size_t i = 0; i < n && i < TLS_MAX_CERTS; i++)
            prom_gauge(p, "surety_tls_certificate_expiry_seconds",
                       PROM_LABELS({"listener", gen->conf->listeners[l].name},
                                   {"name", info[i].name}, {"type", info[i].key_type}),
                       (double)(info[i].not_after_s - (int64_t)now));
        free(info);
    }
}

int gateway_check_tls(const conf_t *conf, FILE *errs)
{
    int bad = 0;
    for (size_t l = 0; l < conf->nlisteners; l++) {
        if (!conf->listeners[l].tls.enabled)
            continue;
        tls_server_t *s = tls_listener(&conf->listeners[l], errs);
        bad |= !s;
        tls_server_free(s);
    }
    for (size_t p = 0; p < conf->npools; p++) {
        if (!conf->pools[p].tls.enabled)
            continue;
        SSL_CTX *ctx = tls_pool(&conf->pools[p], errs);
        bad |= !ctx;
        SSL_CTX_free(ctx);
    }
    return bad ? -EINVAL : 0;
}

/* A complete generation for conf, not started. NULL with the reason on errs. */
static gen_t *gen_new(shield_t *shield, conf_t *conf, const gen_t *old, FILE *errs)
{
    gen_t *gen = calloc(1, sizeof(*gen));
    int **fds = NULL;
    int err = 0;
    if (!gen)
        return NULL;
    gen->conf = conf_ref(conf);
    gen->nworkers = conf->workers;
    gen->workers = calloc(gen->nworkers, sizeof(*gen->workers));
    gen->stats = calloc(gen->nworkers, sizeof(*gen->stats));
    fds = calloc(gen->nworkers, sizeof(*fds));
    gen->state = state_new(conf);
    if (!gen->workers || !gen->stats || !fds || !gen->state)
        goto fail;
    if (old)
        state_carry(gen->state, conf, old->state);
    if (!(gen->sg = shield_gen_new(shield, conf, errs)))
        goto fail;
    if (!(gen->tls = calloc(conf->nlisteners ? conf->nlisteners : 1, sizeof(*gen->tls))))
        goto fail;
    for (size_t l = 0; l < conf->nlisteners; l++)
        if (conf->listeners[l].tls.enabled &&
            !(gen->tls[l] = tls_listener(&conf->listeners[l], errs)))
            goto fail;
    if (!(gen->pool_tls = calloc(conf->npools ? conf->npools : 1, sizeof(*gen->pool_tls))))
        goto fail;
    for (size_t p = 0; p < conf->npools; p++)
        if (conf->pools[p].tls.enabled && !(gen->pool_tls[p] = tls_pool(&conf->pools[p], errs)))
            goto fail;
    for (unsigned w = 0; w < gen->nworkers; w++) {
        fds[w] = malloc(conf->nlisteners * sizeof(**fds));
        if (!fds[w])
            goto fail;
        for (size_t l = 0; l < conf->nlisteners; l++)
            fds[w][l] = -1;
    }
    gen->alog = access_log_open(conf, &err);
    if (err < 0) {
        fprintf(errs, "access log %s: %s\n", conf->access_log, strerror(-err));
        goto fail;
    }
    if (bind_all(conf, gen->nworkers, fds, old, errs) < 0)
        goto fail;
    for (unsigned w = 0; w < gen->nworkers; w++) {
        gen->workers[w] =
            worker_new(conf, w, fds[w], gen->alog, gen->state, shield, gen->sg, gen->tls,
                       gen->pool_tls);
        if (!gen->workers[w]) {
            fprintf(errs, "worker %u: cannot be set up (out of memory?)\n", w);
            goto fail;
        }
        gen->stats[w] = worker_stats(gen->workers[w]);
        for (size_t l = 0; l < conf->nlisteners; l++)
            fds[w][l] = -1; /* the worker owns them now */
    }
    for (unsigned w = 0; w < gen->nworkers; w++)
        free(fds[w]);
    free(fds);
    return gen;
fail:
    for (unsigned w = 0; fds && w < gen->nworkers; w++) {
        for (size_t l = 0; fds[w] && l < conf->nlisteners; l++)
            if (fds[w][l] >= 0)
                close(fds[w][l]);
        free(fds[w]);
    }
    free(fds);
    gen_free(gen);
    return NULL;
}

static int gen_start(gen_t *gen)
{
    for (unsigned w = 0; w < gen->nworkers; w++) {
        int r = worker_start(gen->workers[w]);
        if (r < 0)
            return r;
    }
    return 0;
}

static void gen_drain(gen_t *gen, bool gentle)
{
    for (unsigned w = 0; w < gen->nworkers; w++)
        if (gen->workers[w])
            worker_drain(gen->workers[w], gentle);
}

static void gen_join(gen_t *gen)
{
    for (unsigned w = 0; w < gen->nworkers; w++)
        if (gen->workers[w])
            worker_join(gen->workers[w]);
}

gateway_t *gateway_new(conf_t *conf, FILE *errs)
{
    gateway_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    pthread_mutex_init(&g->lock, NULL);
    if (!(g->shield = shield_new(conf, errs))) {
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
    }
    g->cur = gen_new(g->shield, conf, NULL, errs);
    /* retired is freed with cur's conf: none without a cur */
    if (!g->cur || !(g->retired = stats_new(conf))) {
        gateway_free(g);
        return NULL;
    }
    return g;
}

int gateway_start(gateway_t *g)
{
    return gen_start(g->cur);
}

int gateway_reload(gateway_t *g, conf_t *conf, FILE *errs)
{
    gen_t *old = g->cur;
    gen_t *gen = gen_new(g->shield, conf, old, errs);
    stats_t *retired = stats_new(conf);
    if (!gen || !retired) {
        stats_free(retired, conf);
        gen_free(gen);
        return -EINVAL;
    }
    int r = gen_start(gen);
    if (r < 0) {
        gen_drain(gen, false);
        gen_join(gen);
        gen_free(gen);
        stats_free(retired, conf);
        fprintf(errs, "cannot start the new workers: %s\n", strerror(-r));
        return r;
    }
    pthread_mutex_lock(&g->lock);
    stats_fold(retired, conf, g->retired, old->conf);
    stats_free(g->retired, old->conf);
    g->retired = retired;
    old->next = g->draining;
    g->draining = old;
    g->cur = gen;
    g->generation++;
    pthread_mutex_unlock(&g->lock);
    gen_drain(old, true);
    return 0;
}

void gateway_reap(gateway_t *g, bool wait)
{
    for (;;) {
        gen_t *done = NULL;
        pthread_mutex_lock(&g->lock);
        for (gen_t **pp = &g->draining; *pp; pp = &(*pp)->next) {
            bool stopped = true;
            for (unsigned w = 0; w < (*pp)->nworkers; w++)
                stopped &= worker_stopped((*pp)->workers[w]);
            if (stopped || wait) {
                done = *pp;
                *pp = done->next;
                break;
            }
        }
        pthread_mutex_unlock(&g->lock);
        if (!done)
            return;
        gen_join(done);
        pthread_mutex_lock(&g->lock);
        for (unsigned w = 0; w < done->nworkers; w++)
            stats_fold(g->retired, g->cur->conf, done->stats[w], done->conf);
        pthread_mutex_unlock(&g->lock);
        gen_free(done);
    }
}

void gateway_drain(gateway_t *g)
{
    gen_drain(g->cur, false);
    pthread_mutex_lock(&g->lock);
    for (gen_t *d = g->draining; d; d = d->next)
        gen_drain(d, false);
    pthread_mutex_unlock(&g->lock);
}

void gateway_join(gateway_t *g)
{
    gen_join(g->cur);
    gateway_reap(g, true);
}

void gateway_free(gateway_t *g)
{
    if (!g)
        return;
    gateway_reap(g, true);
    if (g->cur)
        stats_free(g->retired, g->cur->conf);
    gen_free(g->cur);
    shield_free(g->shield);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

void gateway_reopen_logs(gateway_t *g)
{
    access_log_reopen(g->cur->alog);
    sec_reopen_log(shield_sec(g->shield));
}

shield_t *gateway_shield(gateway_t *g)
{
    return g->shield;
}

void gateway_shield_summary(gateway_t *g, FILE *out)
{
    pthread_mutex_lock(&g->lock);
    shield_summary(g->shield, g->cur->sg, out);
    pthread_mutex_unlock(&g->lock);
}

bool gateway_lists_changed(gateway_t *g)
{
    return shield_gen_files_changed(g->cur->sg);
}

uint64_t gateway_generation(gateway_t *g)
{
    pthread_mutex_lock(&g->lock);
    uint64_t n = g->generation;
    pthread_mutex_unlock(&g->lock);
    return n;
}

/* A gauge summed over the workers of the generation whose state this is
 * (0 for another generation's): a server's in-flight requests, or with
 * server SIZE_MAX the pool's queued ones. */
static int64_t current_gauge(gateway_t *g, const state_t *state, size_t pool, size_t server)
{
    int64_t n = 0;
    pthread_mutex_lock(&g->lock);
    gen_t *gen = g->cur;
    if (gen->state == state)
        for (unsigned w = 0; w < gen->nworkers; w++) {
            if (server == SIZE_MAX)
                n += STAT_GET(gen->stats[w]->pools[pool].queued);
            else
                n += STAT_GET(gen->stats[w]->servers[pool][server].inflight);
        }
    pthread_mutex_unlock(&g->lock);
    return n;
}

int64_t gateway_server_inflight(gateway_t *g, const state_t *state, size_t pool, size_t server)
{
    return current_gauge(g, state, pool, server);
}

int64_t gateway_pool_queued(gateway_t *g, const state_t *state, size_t pool)
{
    return current_gauge(g, state, pool, SIZE_MAX);
}

state_t *gateway_state(gateway_t *g)
{
    return g->cur->state;
}

conf_t *gateway_conf(gateway_t *g)
{
    return g->cur->conf;
}

/* Under g->lock: the counters of the live workers, then one stats_t (which
 * the caller frees, *ret_extra) with everything else the current
 * generation's names still count: freed generations and those draining. */
static unsigned stats_all(gateway_t *g, stats_t **all, stats_t **ret_extra)
{
    gen_t *gen = g->cur;
    stats_t *extra = stats_new(gen->conf);
    if (extra) {
        stats_fold(extra, gen->conf, g->retired, gen->conf);
        for (gen_t *d = g->draining; d; d = d->next)
            for (unsigned w = 0; w < d->nworkers; w++)
                stats_fold(extra, gen->conf, d->stats[w], d->conf);
    }
    unsigned n = 0;
    for (unsigned w = 0; w < gen->nworkers; w++)
        all[n++] = gen->stats[w];
    if (extra)
        all[n++] = extra;
    *ret_extra = extra;
    return n;
}

int64_t gateway_connections_peak(gateway_t *g)
{
    int64_t peak = 0;
    pthread_mutex_lock(&g->lock);
    gen_t *gen = g->cur;
    for (unsigned w = 0; w < gen->nworkers; w++) {
        int64_t open = 0;
        for (size_t l = 0; l < gen->conf->nlisteners; l++)
            open += STAT_GET(gen->stats[w]->listeners[l].conns_open);
        if (open > peak)
            peak = open;
    }
    pthread_mutex_unlock(&g->lock);
    return peak;
}

size_t gateway_sli_read(gateway_t *g, gateway_sli_t *out, size_t max)
{
    pthread_mutex_lock(&g->lock);
    stats_t *all[g->cur->nworkers + 1], *extra;
    unsigned n = stats_all(g, all, &extra);
    size_t r = stats_sli(g->cur->conf, all, n, out, max);
    stats_free(extra, g->cur->conf);
    pthread_mutex_unlock(&g->lock);
    return r;
}

void gateway_metrics_write(gateway_t *g, prom_t *p)
{
    pthread_mutex_lock(&g->lock);
    gen_t *gen = g->cur;
    stats_t *all[gen->nworkers + 1], *extra;
    unsigned n = stats_all(g, all, &extra);
    stats_write(p, gen->conf, all, n, gen->nworkers, SURETY_VERSION);
    shield_metrics_write(g->shield, gen->sg, p);
    tls_metrics_write(gen, p);
    stats_free(extra, gen->conf);
    pthread_mutex_unlock(&g->lock);
}
