/* The gateway: binds the listeners, owns the workers and the access log, and
 * answers metrics from the workers' counters. See gateway.h. */
#include "gateway/gateway.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/worker_api.h"

#ifndef SURETY_VERSION
#define SURETY_VERSION "dev"
#endif

struct gateway {
    conf_t *conf;
    unsigned nworkers;
    worker_t **workers;
    stats_t **stats; /* [nworkers], kept past the workers for a last scrape */
    access_log_t *alog;
    state_t *state; /* shared runtime state: outlives the workers */
    bool drained;
};

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

static int bind_all(gateway_t *g, int **fds, FILE *errs)
{
    const conf_t *conf = g->conf;
    for (size_t l = 0; l < conf->nlisteners; l++) {
        const conf_listener_t *lc = &conf->listeners[l];
        int r = probe_free(&lc->addr);
        for (unsigned w = 0; r == 0 && w < g->nworkers; w++) {
            fds[w][l] = sock_listen(&lc->addr, true, 511);
            r = fds[w][l] < 0 ? fds[w][l] : 0;
        }
        if (r < 0) {
            fprintf(errs, "listener '%s': cannot listen on %s: %s\n", lc->name, lc->listen,
                    strerror(-r));
            return r;
        }
    }
    return 0;
}

gateway_t *gateway_new(conf_t *conf, FILE *errs)
{
    gateway_t *g = calloc(1, sizeof(*g));
    int **fds = NULL;
    int err = 0;
    if (!g)
        return NULL;
    g->conf = conf_ref(conf);
    g->nworkers = conf->workers;
    g->workers = calloc(g->nworkers, sizeof(*g->workers));
    g->stats = calloc(g->nworkers, sizeof(*g->stats));
    fds = calloc(g->nworkers, sizeof(*fds));
    if (!g->workers || !g->stats || !fds)
        goto fail;
    for (unsigned w = 0; w < g->nworkers; w++) {
        fds[w] = malloc(conf->nlisteners * sizeof(**fds));
        if (!fds[w])
            goto fail;
        for (size_t l = 0; l < conf->nlisteners; l++)
            fds[w][l] = -1;
    }
    g->state = state_new(conf);
    if (!g->state)
        goto fail;
    g->alog = access_log_open(conf, &err);
    if (err < 0) {
        fprintf(errs, "access log %s: %s\n", conf->access_log, strerror(-err));
        goto fail;
    }
    if (bind_all(g, fds, errs) < 0)
        goto fail;
    for (unsigned w = 0; w < g->nworkers; w++) {
        g->workers[w] = worker_new(conf, w, fds[w], g->alog, g->state);
        if (!g->workers[w]) {
            fprintf(errs, "worker %u: cannot be set up (out of memory?)\n", w);
            goto fail;
        }
        g->stats[w] = worker_stats(g->workers[w]);
        for (size_t l = 0; l < conf->nlisteners; l++)
            fds[w][l] = -1; /* the worker owns them now */
    }
    for (unsigned w = 0; w < g->nworkers; w++)
        free(fds[w]);
    free(fds);
    return g;
fail:
    for (unsigned w = 0; fds && w < g->nworkers; w++) {
        for (size_t l = 0; fds[w] && l < conf->nlisteners; l++)
            if (fds[w][l] >= 0)
                close(fds[w][l]);
        free(fds[w]);
    }
    free(fds);
    gateway_free(g);
    return NULL;
}

int gateway_start(gateway_t *g)
{
    for (unsigned w = 0; w < g->nworkers; w++) {
        int r = worker_start(g->workers[w]);
        if (r < 0)
            return r;
    }
    return 0;
}

void gateway_drain(gateway_t *g)
{
    for (unsigned w = 0; w < g->nworkers; w++)
        if (g->workers[w])
            worker_drain(g->workers[w]);
}

void gateway_join(gateway_t *g)
{
    for (unsigned w = 0; w < g->nworkers; w++)
        if (g->workers[w])
            worker_join(g->workers[w]);
}

void gateway_free(gateway_t *g)
{
    if (!g)
        return;
    for (unsigned w = 0; g->workers && w < g->nworkers; w++)
        worker_free(g->workers[w]);
    access_log_close(g->alog); /* after the workers: they hold its pipe */
    for (unsigned w = 0; g->stats && w < g->nworkers; w++)
        stats_free(g->stats[w], g->conf);
    free(g->stats);
    free(g->workers);
    state_free(g->state);
    conf_unref(g->conf);
    free(g);
}

void gateway_reopen_logs(gateway_t *g)
{
    access_log_reopen(g->alog);
}

int64_t gateway_server_inflight(gateway_t *g, size_t pool, size_t server)
{
    int64_t n = 0;
    for (unsigned w = 0; w < g->nworkers; w++)
        n += STAT_GET(g->stats[w]->servers[pool][server].inflight);
    return n;
}

state_t *gateway_state(gateway_t *g)
{
    return g->state;
}

void gateway_metrics_write(gateway_t *g, prom_t *p)
{
    stats_write(p, g->conf, g->stats, g->nworkers, SURETY_VERSION);
}
