/* Per-worker counters and their Prometheus families: see stats.h. */
#include "gateway/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const stats_timeout_names[TIMEOUT_COUNT] = {"header", "idle", "client", "connect",
                                                        "response"};
static const char *const code_names[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

stats_t *stats_new(const conf_t *conf)
{
    stats_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->listeners = calloc(conf->nlisteners, sizeof(*s->listeners));
    s->routes = calloc(conf->nlisteners, sizeof(*s->routes));
    s->servers = calloc(conf->npools, sizeof(*s->servers));
    s->pools = calloc(conf->npools ? conf->npools : 1, sizeof(*s->pools));
    if (!s->listeners || !s->routes || !s->servers || !s->pools)
        goto fail;
    for (size_t i = 0; i < conf->nlisteners; i++)
        if (!(s->routes[i] = calloc(conf->listeners[i].nroutes ? conf->listeners[i].nroutes : 1,
                                    sizeof(**s->routes))))
            goto fail;
    for (size_t i = 0; i < conf->npools; i++)
        if (!(s->servers[i] = calloc(conf->pools[i].nservers, sizeof(**s->servers))))
            goto fail;
    return s;
fail:
    stats_free(s, conf);
    return NULL;
}

void stats_free(stats_t *s, const conf_t *conf)
{
    if (!s)
        return;
    for (size_t i = 0; s->routes && i < conf->nlisteners; i++)
        free(s->routes[i]);
    for (size_t i = 0; s->servers && i < conf->npools; i++)
        free(s->servers[i]);
    free(s->routes);
    free(s->servers);
    free(s->listeners);
    free(s->pools);
    free(s);
}

void stats_observe_duration(stats_latency_t *l, uint64_t us)
{
    double secs = (double)us / 1e6;
    size_t i = 0;
    while (i < STATS_NBUCKETS && secs > stats_bucket_bounds[i])
        i++;
    STAT_INC(l->buckets[i]);
    STAT_ADD(l->duration_us_sum, us);
}

/* A family whose every sample is one plain field of a per-listener or
 * per-server struct: the table rows below. */
typedef struct {
    const char *name, *help;
    size_t offset;
    prom_type_t type;
} simple_family_t;

static void emit(prom_t *p, const simple_family_t *f, const prom_label_t *lab, size_t nlab,
                 uint64_t v)
{
    if (f->type == PROM_GAUGE)
        prom_gauge(p, f->name, lab, nlab, (double)(int64_t)v); /* gauges may be signed */
    else
        prom_counter(p, f->name, lab, nlab, v);
}

/* Sums of one field over workers. `at` maps a worker's stats to the field. */
#define SUM(expr)                                                                                  \
    ({                                                                                             \
        uint64_t _s = 0;                                                                           \
        for (unsigned _w = 0; _w < n; _w++) {                                                      \
            const stats_t *ws = per_worker[_w];                                                    \
            _s += (uint64_t)STAT_GET(expr);                                                        \
        }                                                                                          \
        _s;                                                                                        \
    })

/* The latency histogram of listener l (route SIZE_MAX) or of its route r,
 * summed over the workers. */
static void latency_sum(stats_latency_t *out, stats_t *const *per_worker, unsigned n, size_t l,
                        size_t r)
{
    memset(out, 0, sizeof(*out));
    for (unsigned w = 0; w < n; w++) {
        const stats_latency_t *h =
            r == SIZE_MAX ? &per_worker[w]->listeners[l].latency : &per_worker[w]->routes[l][r].latency;
        for (size_t b = 0; b <= STATS_NBUCKETS; b++)
            out->buckets[b] += STAT_GET(h->buckets[b]);
        out->duration_us_sum += STAT_GET(h->duration_us_sum);
    }
}

static void histogram(prom_t *p, const char *name, const stats_latency_t *h,
                      const prom_label_t *lab, size_t nlab)
{
    uint64_t count = 0;
    for (size_t b = 0; b <= STATS_NBUCKETS; b++)
        count += h->buckets[b];
    prom_histogram(p, name, lab, nlab, stats_bucket_bounds, h->buckets, STATS_NBUCKETS,
                   (double)h->duration_us_sum / 1e6, count);
}

static void write_listeners(prom_t *p, const conf_t *conf, stats_t *const *per_worker, unsigned n)
{
    prom_family(p, "surety_listener_requests_total", PROM_COUNTER,
                "Requests answered on the listener, by status class.");
    for (size_t l = 0; l < conf->nlisteners; l++)
        for (int k = 0; k < 5; k++)
            prom_counter(
                p, "surety_listener_requests_total",
                PROM_LABELS({"listener", conf->listeners[l].name}, {"code", code_names[k]}),
                SUM(ws->listeners[l].requests.code[k]));

    prom_family(p, "surety_listener_request_duration_seconds", PROM_HISTOGRAM,
                "Time from the first byte of a request to the last byte of its response.");
    for (size_t l = 0; l < conf->nlisteners; l++) {
        stats_latency_t h;
        latency_sum(&h, per_worker, n, l, SIZE_MAX);
        histogram(p, "surety_listener_request_duration_seconds", &h,
                  PROM_LABELS({"listener", conf->listeners[l].name}));
    }

    static const simple_family_t simple[] = {
        {"surety_listener_received_bytes_total", "Bytes received from clients.",
         offsetof(stats_listener_t, bytes_in), PROM_COUNTER},
        {"surety_listener_sent_bytes_total", "Bytes sent to clients.",
         offsetof(stats_listener_t, bytes_out), PROM_COUNTER},
        {"surety_listener_connections_total", "Client connections accepted.",
         offsetof(stats_listener_t, conns_total), PROM_COUNTER},
        {"surety_listener_connections_open", "Client connections open now.",
         offsetof(stats_listener_t, conns_open), PROM_GAUGE},
        {"surety_listener_connections_idle", "Client connections waiting for a request now.",
         offsetof(stats_listener_t, conns_idle), PROM_GAUGE},
    };
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        prom_family(p, simple[i].name, simple[i].type, simple[i].help);
        for (size_t l = 0; l < conf->nlisteners; l++) {
            uint64_t v = SUM(*(uint64_t *)((char *)&ws->listeners[l] + simple[i].offset));
            emit(p, &simple[i], PROM_LABELS({"listener", conf->listeners[l].name}), v);
        }
    }

    prom_family(p, "surety_http_rejects_total", PROM_COUNTER,
                "Requests refused by the HTTP parser or limits, by reason.");
    for (size_t l = 0; l < conf->nlisteners; l++)
        for (int r = 1; r < HTTP_REJECT_COUNT; r++)
            prom_counter(p, "surety_http_rejects_total",
                         PROM_LABELS({"listener", conf->listeners[l].name},
                                     {"reason", http_reject_name((http_reject_t)r)}),
                         SUM(ws->listeners[l].rejects[r]));

    prom_family(p, "surety_http_timeouts_total", PROM_COUNTER,
                "Timeouts, by kind: header, idle, client, connect, response.");
    for (size_t l = 0; l < conf->nlisteners; l++)
        for (int k = 0; k < TIMEOUT_COUNT; k++)
            prom_counter(p, "surety_http_timeouts_total",
                         PROM_LABELS({"listener", conf->listeners[l].name},
                                     {"kind", stats_timeout_names[k]}),
                         SUM(ws->listeners[l].timeouts[k]));

    prom_family(p, "surety_tls_handshakes_total", PROM_COUNTER,
                "TLS handshakes completed on the listener.");
    for (size_t l = 0; l < conf->nlisteners; l++)
        if (conf->listeners[l].tls.enabled)
            prom_counter(p, "surety_tls_handshakes_total",
                         PROM_LABELS({"listener", conf->listeners[l].name}),
                         SUM(ws->listeners[l].tls_handshakes));
    prom_family(p, "surety_tls_resumptions_total", PROM_COUNTER,
                "TLS handshakes that resumed a session (a ticket) instead of a full handshake.");
    for (size_t l = 0; l < conf->nlisteners; l++)
        if (conf->listeners[l].tls.enabled)
            prom_counter(p, "surety_tls_resumptions_total",
                         PROM_LABELS({"listener", conf->listeners[l].name}),
                         SUM(ws->listeners[l].tls_resumed));
    prom_family(p, "surety_tls_handshake_failures_total", PROM_COUNTER,
                "TLS handshakes that failed, by reason: version (too old), cipher (nothing in "
                "common), not-tls (plain HTTP or garbage), closed (the client left), other.");
    for (size_t l = 0; l < conf->nlisteners; l++)
        for (int k = 0; k < TLS_FAIL_COUNT && conf->listeners[l].tls.enabled; k++)
            prom_counter(p, "surety_tls_handshake_failures_total",
                         PROM_LABELS({"listener", conf->listeners[l].name},
                                     {"reason", stats_tls_fail_names[k]}),
                         SUM(ws->listeners[l].tls_failures[k]));
}

static void write_routes(prom_t *p, const conf_t *conf, stats_t *const *per_worker, unsigned n)
{
    prom_family(p, "surety_route_requests_total", PROM_COUNTER,
                "Requests answered through the route, by status class.");
    for (size_t l = 0; l < conf->nlisteners; l++) {
        const conf_listener_t *lc = &conf->listeners[l];
        for (size_t r = 0; r < lc->nroutes; r++)
            for (int k = 0; k < 5; k++)
                prom_counter(p, "surety_route_requests_total",
                             PROM_LABELS({"listener", lc->name}, {"route", lc->routes[r].name},
                                         {"pool", conf->pools[lc->routes[r].pool].name},
                                         {"code", code_names[k]}),
                             SUM(ws->routes[l][r].requests.code[k]));
    }
    prom_family(p, "surety_route_request_duration_seconds", PROM_HISTOGRAM,
                "Time from the first byte of a request to the last byte of its response, by "
                "route.");
    for (size_t l = 0; l < conf->nlisteners; l++) {
        const conf_listener_t *lc = &conf->listeners[l];
        for (size_t r = 0; r < lc->nroutes; r++) {
            stats_latency_t h;
            latency_sum(&h, per_worker, n, l, r);
            histogram(p, "surety_route_request_duration_seconds", &h,
                      PROM_LABELS({"listener", lc->name}, {"route", lc->routes[r].name}));
        }
    }
}

/* "listener:NAME" or "route:LISTENER/ROUTE" */
static void sli_fill(gateway_sli_t *e, const char *kind, const char *a, const char *b,
                     const stats_codes_t *codes, const stats_latency_t *h)
{
    snprintf(e->source, sizeof(e->source), "%s:%s%s%s", kind, a, b ? "/" : "", b ? b : "");
    e->requests = 0;
    for (int k = 0; k < 5; k++)
        e->requests += codes->code[k];
    e->errors = codes->code[4];
    memcpy(e->buckets, h->buckets, sizeof(e->buckets));
}

size_t stats_sli(const conf_t *conf, stats_t *const *per_worker, unsigned n, gateway_sli_t *out,
                 size_t max)
{
    size_t i = 0;
    for (size_t l = 0; l < conf->nlisteners; l++) {
        const conf_listener_t *lc = &conf->listeners[l];
        stats_codes_t codes = {0};
        stats_latency_t h;
        for (int k = 0; k < 5; k++)
            codes.code[k] = SUM(ws->listeners[l].requests.code[k]);
        latency_sum(&h, per_worker, n, l, SIZE_MAX);
        if (i < max)
            sli_fill(&out[i], "listener", lc->name, NULL, &codes, &h);
        i++;
        for (size_t r = 0; r < lc->nroutes; r++, i++) {
            for (int k = 0; k < 5; k++)
                codes.code[k] = SUM(ws->routes[l][r].requests.code[k]);
            latency_sum(&h, per_worker, n, l, r);
            if (i < max)
                sli_fill(&out[i], "route", lc->name, lc->routes[r].name, &codes, &h);
        }
    }
    return i;
}

static void write_servers(prom_t *p, const conf_t *conf, stats_t *const *per_worker, unsigned n)
{
    prom_family(p, "surety_server_requests_total", PROM_COUNTER,
                "Requests sent to the server, by status class of the answer.");
    for (size_t pi = 0; pi < conf->npools; pi++)
        for (size_t s = 0; s < conf->pools[pi].nservers; s++)
            for (int k = 0; k < 5; k++)
                prom_counter(p, "surety_server_requests_total",
                             PROM_LABELS({"pool", conf->pools[pi].name},
                                         {"server", conf->pools[pi].servers[s].address},
                                         {"code", code_names[k]}),
                             SUM(ws->servers[pi][s].requests.code[k]));

    static const simple_family_t simple[] = {
        {"surety_server_connections_total", "Connections opened to the server.",
         offsetof(stats_server_t, conns_total), PROM_COUNTER},
        {"surety_server_connections_idle", "Idle keep-alive connections to the server now.",
         offsetof(stats_server_t, conns_idle), PROM_GAUGE},
        {"surety_server_connect_errors_total",
         "Connections to the server that failed or timed out.",
         offsetof(stats_server_t, connect_errors), PROM_COUNTER},
        {"surety_server_inflight", "Requests sent to the server and not yet answered.",
         offsetof(stats_server_t, inflight), PROM_GAUGE},
        {"surety_server_retries_total", "Requests retried on another server after this one failed.",
         offsetof(stats_server_t, retries), PROM_COUNTER},
        {"surety_server_ejections_total", "Passive outlier ejections of the server.",
         offsetof(stats_server_t, ejections), PROM_COUNTER},
        {"surety_server_tls_handshakes_total",
         "TLS handshakes completed with the server (pools with tls).",
         offsetof(stats_server_t, tls_handshakes), PROM_COUNTER},
        {"surety_server_tls_resumptions_total", "Of those, handshakes that resumed a session.",
         offsetof(stats_server_t, tls_resumed), PROM_COUNTER},
        {"surety_server_tls_failures_total",
         "TLS handshakes with the server that failed, certificate verification included.",
         offsetof(stats_server_t, tls_failures), PROM_COUNTER},
    };
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        prom_family(p, simple[i].name, simple[i].type, simple[i].help);
        for (size_t pi = 0; pi < conf->npools; pi++)
            for (size_t s = 0; s < conf->pools[pi].nservers; s++) {
                uint64_t v = SUM(*(uint64_t *)((char *)&ws->servers[pi][s] + simple[i].offset));
                emit(p, &simple[i],
                     PROM_LABELS({"pool", conf->pools[pi].name},
                                 {"server", conf->pools[pi].servers[s].address}),
                     v);
            }
    }
}

static void write_pools(prom_t *p, const conf_t *conf, stats_t *const *per_worker, unsigned n)
{
    static const simple_family_t simple[] = {
        {"surety_pool_retries_total", "Retries started for requests routed to the pool.",
         offsetof(stats_pool_t, retries), PROM_COUNTER},
        {"surety_pool_retry_budget_exhausted_total",
         "Retries not made because the pool's retry budget was spent.",
         offsetof(stats_pool_t, budget_exhausted), PROM_COUNTER},
        {"surety_pool_no_server_total",
         "Requests answered 503: no usable server in the pool "
         "or its backups.",
         offsetof(stats_pool_t, no_server), PROM_COUNTER},
        {"surety_pool_busy_total",
         "Requests answered 503 because every usable server of the pool had max_inflight "
         "requests, at once or after queue_timeout.",
         offsetof(stats_pool_t, busy), PROM_COUNTER},
        {"surety_pool_queued", "Requests waiting for a max_inflight slot now (queue_timeout).",
         offsetof(stats_pool_t, queued), PROM_GAUGE},
    };
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        prom_family(p, simple[i].name, simple[i].type, simple[i].help);
        for (size_t pi = 0; pi < conf->npools; pi++)
            emit(p, &simple[i], PROM_LABELS({"pool", conf->pools[pi].name}),
                 SUM(*(uint64_t *)((char *)&ws->pools[pi] + simple[i].offset)));
    }
}

void stats_write(prom_t *p, const conf_t *conf, stats_t *const *per_worker, unsigned n,
                 unsigned workers, const char *version)
{
    prom_family(p, "surety_build_info", PROM_GAUGE, "Always 1; the labels say which build runs.");
    prom_gauge(p, "surety_build_info", PROM_LABELS({"version", version}), 1);
    prom_family(p, "surety_workers", PROM_GAUGE, "Worker threads of the data plane.");
    prom_gauge(p, "surety_workers", NULL, 0, workers);
    write_listeners(p, conf, per_worker, n);
    write_routes(p, conf, per_worker, n);
    write_servers(p, conf, per_worker, n);
    write_pools(p, conf, per_worker, n);
    prom_family(p, "surety_access_log_dropped_total", PROM_COUNTER,
                "Access log lines dropped because the log writer could not keep up.");
    prom_counter(p, "surety_access_log_dropped_total", NULL, 0, SUM(ws->access_log_dropped));
}

static void codes_add(stats_codes_t *d, const stats_codes_t *s)
{
    for (int k = 0; k < 5; k++)
        STAT_ADD(d->code[k], STAT_GET(s->code[k]));
}

static size_t find_name(const char *name, const void *base, size_t n, size_t stride,
                        size_t name_off)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(*(char *const *)((const char *)base + i * stride + name_off), name))
            return i;
    return SIZE_MAX;
}
#define FIND(name, arr, n, type, field)                                                            \
    find_name((name), (arr), (n), sizeof(type), offsetof(type, field))

static void latency_add(stats_latency_t *d, const stats_latency_t *s)
{
    for (size_t b = 0; b <= STATS_NBUCKETS; b++)
        STAT_ADD(d->buckets[b], STAT_GET(s->buckets[b]));
    STAT_ADD(d->duration_us_sum, STAT_GET(s->duration_us_sum));
}

void stats_fold(stats_t *dst, const conf_t *dc, const stats_t *src, const conf_t *sc)
{
    for (size_t l = 0; l < sc->nlisteners; l++) {
        size_t d =
            FIND(sc->listeners[l].name, dc->listeners, dc->nlisteners, conf_listener_t, name);
        if (d == SIZE_MAX)
            continue;
        stats_listener_t *dl = &dst->listeners[d];
        const stats_listener_t *sl = &src->listeners[l];
        codes_add(&dl->requests, &sl->requests);
        STAT_ADD(dl->bytes_in, STAT_GET(sl->bytes_in));
        STAT_ADD(dl->bytes_out, STAT_GET(sl->bytes_out));
        STAT_ADD(dl->conns_total, STAT_GET(sl->conns_total));
        latency_add(&dl->latency, &sl->latency);
        for (int r = 0; r < HTTP_REJECT_COUNT; r++)
            STAT_ADD(dl->rejects[r], STAT_GET(sl->rejects[r]));
        for (int t = 0; t < TIMEOUT_COUNT; t++)
            STAT_ADD(dl->timeouts[t], STAT_GET(sl->timeouts[t]));
        STAT_ADD(dl->tls_handshakes, STAT_GET(sl->tls_handshakes));
        STAT_ADD(dl->tls_resumed, STAT_GET(sl->tls_resumed));
        for (int t = 0; t < TLS_FAIL_COUNT; t++)
            STAT_ADD(dl->tls_failures[t], STAT_GET(sl->tls_failures[t]));
        const conf_listener_t *sl_c = &sc->listeners[l], *dl_c = &dc->listeners[d];
        for (size_t r = 0; r < sl_c->nroutes; r++) {
            size_t dr = FIND(sl_c->routes[r].name, dl_c->routes, dl_c->nroutes, conf_route_t, name);
            if (dr != SIZE_MAX) {
                codes_add(&dst->routes[d][dr].requests, &src->routes[l][r].requests);
                latency_add(&dst->routes[d][dr].latency, &src->routes[l][r].latency);
            }
        }
    }
    for (size_t p = 0; p < sc->npools; p++) {
        size_t d = FIND(sc->pools[p].name, dc->pools, dc->npools, conf_pool_t, name);
        if (d == SIZE_MAX)
            continue;
        STAT_ADD(dst->pools[d].retries, STAT_GET(src->pools[p].retries));
        STAT_ADD(dst->pools[d].budget_exhausted, STAT_GET(src->pools[p].budget_exhausted));
        STAT_ADD(dst->pools[d].no_server, STAT_GET(src->pools[p].no_server));
        STAT_ADD(dst->pools[d].busy, STAT_GET(src->pools[p].busy));
        const conf_pool_t *sp = &sc->pools[p], *dp = &dc->pools[d];
        for (size_t i = 0; i < sp->nservers; i++) {
            size_t ds =
                FIND(sp->servers[i].address, dp->servers, dp->nservers, conf_server_t, address);
            if (ds == SIZE_MAX)
                continue;
            stats_server_t *dsv = &dst->servers[d][ds];
            const stats_server_t *ssv = &src->servers[p][i];
            codes_add(&dsv->requests, &ssv->requests);
            STAT_ADD(dsv->conns_total, STAT_GET(ssv->conns_total));
            STAT_ADD(dsv->connect_errors, STAT_GET(ssv->connect_errors));
            STAT_ADD(dsv->retries, STAT_GET(ssv->retries));
            STAT_ADD(dsv->ejections, STAT_GET(ssv->ejections));
            STAT_ADD(dsv->tls_handshakes, STAT_GET(ssv->tls_handshakes));
            STAT_ADD(dsv->tls_resumed, STAT_GET(ssv->tls_resumed));
            STAT_ADD(dsv->tls_failures, STAT_GET(ssv->tls_failures));
        }
    }
    STAT_ADD(dst->access_log_dropped, STAT_GET(src->access_log_dropped));
}
