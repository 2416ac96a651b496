/* The control thread: see control.h. It serves the admin listener and runs
 * health checks, failover decisions and the watch (objectives, monitors,
 * alerts: watch.c) on one loop. */
#include "admin/control.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <unistd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/api_pools.h"
#include "admin/api_security.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "admin/watch.h"
#include "gateway/health.h"

/* How often the failover decision is re-evaluated: the reaction time to a
 * pool losing its servers, on top of the detection (checks or ejections). */
#define FAILOVER_EVAL_MS 100

struct control {
    api_pools_t api; /* first: the admin handlers' ud */
    conf_t *conf;
    gateway_t *gateway;
    loop_t *loop;
    loop_async_t stop;
    admin_t *admin;
    health_t *health;
    watch_t watch; /* objectives, monitors, alerts (watch.h) */
    bool watch_ready;
    loop_timer_t failover_timer;
    loop_async_t reload;       /* main -> control: move to pending_conf/state */
    conf_t *pending_conf;      /* under lock */
    state_t *pending_state;
    tls_server_t *pending_admin_tls;
    tls_server_t *admin_tls;   /* admin.tls of the current generation; NULL: clear */
    uint64_t reload_seq, reload_done; /* requests posted / applied (under lock) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t result_generation; /* under lock: the latest reload's outcome */
    bool result_ok;
    char result_text[4096];
    pthread_t thread;
    bool started;
};

static int healthz_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    (void)ud;
    return admin_response_append(res, "ok\n", 3);
}

static void failover_metrics_write(control_t *c, prom_t *p)
{
    const conf_t *conf = c->conf;
    state_t *st = c->api.state;
    uint64_t now = loop_now(c->loop);
    prom_family(p, "surety_pool_failovers_total", PROM_COUNTER,
                "Changes of the pool serving a pool's traffic: failovers and failbacks.");
    for (size_t i = 0; i < conf->npools; i++)
        prom_counter(p, "surety_pool_failovers_total", PROM_LABELS({"pool", conf->pools[i].name}),
                     st->pools[i].failovers);
    prom_family(p, "surety_pool_serving", PROM_GAUGE,
                "1 for the pool that serves the traffic routed to `pool` now.");
    for (size_t i = 0; i < conf->npools; i++)
        prom_gauge(p, "surety_pool_serving",
                   PROM_LABELS({"pool", conf->pools[i].name},
                               {"serving", conf->pools[state_serving(st, i)].name}),
                   1);
    prom_family(p, "surety_server_usable", PROM_GAUGE,
                "1 when new requests may go to the server: up, enabled and not ejected.");
    for (size_t i = 0; i < conf->npools; i++)
        for (size_t k = 0; k < conf->pools[i].nservers; k++)
            prom_gauge(p, "surety_server_usable",
                       PROM_LABELS({"pool", conf->pools[i].name},
                                   {"server", conf->pools[i].servers[k].address}),
                       state_server_usable(&st->pools[i].servers[k], now));
}

static int metrics_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    control_t *c = ud;
    prom_t *p = admin_response_prom(res);
    if (!p)
        return -ENOMEM;
    gateway_metrics_write(c->gateway, p);
    failover_metrics_write(c, p);
    if (c->health)
        health_metrics_write(c->health, p);
    if (c->watch_ready)
        watch_metrics_write(&c->watch, p);
    return prom_error(p);
}

static int reload_post_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    (void)ud;
    /* the main thread reloads (it owns the generations): wake it as SIGHUP would */
    kill(getpid(), SIGHUP);
    admin_response_status(res, 202);
    admin_response_type(res, "application/json");
    return admin_response_printf(res, "{\"reload\": \"requested\"}\n");
}

static int reload_get_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    control_t *c = ud;
    pthread_mutex_lock(&c->lock);
    json_t *o = json_object();
    json_object_set_new(o, "generation", json_integer((json_int_t)c->result_generation));
    json_object_set_new(o, "ok", json_boolean(c->result_ok));
    json_object_set_new(o, "errors", json_string(c->result_text));
    pthread_mutex_unlock(&c->lock);
    return api_send_json(res, o);
}

static int objectives_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    return watch_objectives_get(&((control_t *)ud)->watch, req, res);
}

static int monitors_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    return watch_monitors_get(&((control_t *)ud)->watch, req, res);
}

static int events_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    return watch_events_get(&((control_t *)ud)->watch, req, res);
}

static int deliveries_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    return watch_deliveries_get(&((control_t *)ud)->watch, req, res);
}

static const admin_route_t routes[] = {
    {"GET", "/api/v1/objectives", objectives_cb,
     "every objective: SLI, target, error budget left, burn rates, firing alerts, maintenance "
     "(?format=text: the lines of `surety status`)"},
    {"GET", "/api/v1/monitors", monitors_cb,
     "every monitor (probe): state, last result, streaks, counts"},
    {"GET", "/api/v1/events", events_cb,
     "control-plane events, newest first: alerts fired and resolved, monitors up and down, "
     "failovers (?limit=N&kind=KIND)"},
    {"GET", "/api/v1/alerts/deliveries", deliveries_cb,
     "the latest notification attempts: receiver, result, status, error"},
    {"POST", "/api/v1/reload", reload_post_cb,
     "reload the configuration file (as SIGHUP); the outcome: GET /api/v1/reload"},
    {"GET", "/api/v1/reload", reload_get_cb,
     "the latest reload: generation, ok, and the errors of a refused file"},
    {"GET", "/healthz", healthz_cb, "liveness: 200 ok while the process serves"},
    {"GET", "/metrics", metrics_cb, "Prometheus metrics (text format 0.0.4)"},
    {"GET", "/api/v1/pools", api_pools_get,
     "every pool and server: health, admin state, ejection, in-flight, last check "
     "(?format=text: the table of `surety status`)"},
    {"POST", "/api/v1/servers/drain", api_servers_drain,
     "?pool=NAME&server=ADDRESS: finish in-flight requests, take no new ones"},
    {"POST", "/api/v1/servers/disable", api_servers_disable,
     "?pool=NAME&server=ADDRESS: take no requests"},
    {"POST", "/api/v1/servers/enable", api_servers_enable,
     "?pool=NAME&server=ADDRESS: back in service (slow start applies)"},
    {"GET", "/api/v1/security/events", api_security_events,
     "security events, newest first (?limit=N, default 100; ?client=ADDRESS)"},
    {"GET", "/api/v1/bans", api_bans_get, "addresses banned now, with their offences"},
    {"POST", "/api/v1/bans", api_bans_add,
     "ban an address: {\"address\": ..., \"for\": \"1h\", \"reason\": ...}"},
    {"POST", "/api/v1/bans/lift", api_bans_lift, "lift a ban: {\"address\": ...}"},
};

static void failover_cb(const conf_t *conf, size_t pool, size_t from, size_t to, void *ud)
{
    control_t *c = ud;
    const pool_state_t *ps = &c->api.state->pools[pool];
    uint64_t now = loop_now(c->loop);
    char text[192];
    if (to == pool)
        snprintf(text, sizeof(text),
                 "failback: pool %s serves its own traffic again (was %s; %zu of %zu servers "
                 "usable)",
                 conf->pools[pool].name, conf->pools[from].name, state_pool_usable(ps, now),
                 ps->nservers);
    else
        snprintf(text, sizeof(text),
                 "failover: pool %s traffic now goes to %s (was %s; %zu of %zu servers usable, "
                 "min_healthy %u)",
                 conf->pools[pool].name, conf->pools[to].name, conf->pools[from].name,
                 state_pool_usable(ps, now), ps->nservers, conf->pools[pool].failover_min_healthy);
    log_msg(to == pool ? LOG_INFO : LOG_WARN, "%s", text);
    api_pools_event(&c->api, text);
    char subject[160], detail[256];
    snprintf(subject, sizeof(subject), "pool:%s", conf->pools[pool].name);
    snprintf(detail, sizeof(detail), "{\"from\":\"%s\",\"to\":\"%s\"}", conf->pools[from].name,
             conf->pools[to].name);
    if (c->watch_ready)
        watch_event(&c->watch, to == pool ? "failback" : "failover", subject, detail);
}

/* On the control thread: move to the generation the main thread posted. */
static void reload_cb(loop_t *loop, loop_async_t *a)
{
    control_t *c = container_of(a, control_t, reload);
    pthread_mutex_lock(&c->lock);
    conf_t *conf = c->pending_conf;
    state_t *state = c->pending_state;
    uint64_t seq = c->reload_seq;
    tls_server_t *admin_tls = c->pending_admin_tls;
    c->pending_conf = NULL;
    c->pending_admin_tls = NULL;
    pthread_mutex_unlock(&c->lock);
    if (conf) {
        /* new admin connections get the new certificates; open ones keep theirs */
        if (c->admin)
            admin_set_tls(c->admin, admin_tls);
        tls_server_free(c->admin_tls);
        c->admin_tls = admin_tls;
        int err = 0;
        health_t *h = health_new(loop, conf, state, &err);
        if (!h)
            log_error("health checks: cannot restart after the reload: %s", strerror(-err));
        health_free(c->health);
        c->health = h;
        if (c->watch_ready)
            watch_reload(&c->watch, conf); /* before the old conf goes: it reads both */
        conf_unref(c->conf);
        c->conf = conf; /* the reference taken by control_reload */
        c->api.conf = conf;
        c->api.state = state;
    }
    pthread_mutex_lock(&c->lock);
    c->reload_done = seq;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void control_reload(control_t *c, conf_t *conf, state_t *state, tls_server_t *admin_tls)
{
    pthread_mutex_lock(&c->lock);
    conf_unref(c->pending_conf);
    tls_server_free(c->pending_admin_tls);
    c->pending_conf = conf_ref(conf);
    c->pending_state = state;
    c->pending_admin_tls = admin_tls;
    uint64_t seq = ++c->reload_seq;
    pthread_mutex_unlock(&c->lock);
    if (!c->started) {
        reload_cb(c->loop, &c->reload);
        return;
    }
    loop_async_send(&c->reload);
    pthread_mutex_lock(&c->lock);
    while (c->reload_done < seq)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

void control_reload_result(control_t *c, uint64_t generation, bool ok, const char *text)
{
    pthread_mutex_lock(&c->lock);
    c->result_generation = generation;
    c->result_ok = ok;
    snprintf(c->result_text, sizeof(c->result_text), "%s", text ? text : "");
    pthread_mutex_unlock(&c->lock);
}

static void failover_timer_cb(loop_t *loop, loop_timer_t *t)
{
    control_t *c = container_of(t, control_t, failover_timer);
    state_failover_eval(c->api.state, c->conf, loop_now(loop), failover_cb, c);
    loop_timer_start(loop, t, FAILOVER_EVAL_MS);
}

static void stop_cb(loop_t *loop, loop_async_t *a)
{
    (void)a;
    loop_stop(loop);
}

control_t *control_new(conf_t *conf, gateway_t *g, store_t *store, FILE *errs)
{
    control_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->stop.io.fd = c->reload.io.fd = -1; /* deinit before init is harmless */
    c->conf = conf_ref(conf);
    c->gateway = g;
    c->result_ok = true;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->loop = loop_new();
    if (!c->loop || loop_async_init(c->loop, &c->stop, stop_cb) < 0 ||
        loop_async_init(c->loop, &c->reload, reload_cb) < 0) {
        fprintf(errs, "control thread: cannot create its event loop\n");
        goto fail;
    }
    c->api.conf = conf;
    c->api.state = gateway_state(g);
    c->api.gateway = g;
    c->api.loop = c->loop;
    int herr = 0;
    c->health = health_new(c->loop, conf, c->api.state, &herr);
    if (!c->health) {
        fprintf(errs, "health checks: cannot start: %s\n", strerror(-herr));
        goto fail;
    }
    if (watch_init(&c->watch, c->loop, g, conf, store, errs) < 0)
        goto fail;
    c->watch_ready = true;
    loop_timer_init(&c->failover_timer, failover_timer_cb);
    loop_timer_start(c->loop, &c->failover_timer, FAILOVER_EVAL_MS);
    if (conf->admin_enabled) {
        int err = 0;
        if (control_admin_tls_new(conf, &c->admin_tls, errs) < 0)
            goto fail;
        c->admin = admin_new(c->loop, &conf->admin_addr, routes, sizeof(routes) / sizeof(routes[0]),
                             NULL, c, &err);
        if (!c->admin) {
            fprintf(errs, "admin: cannot listen on %s: %s\n", conf->admin_listen, strerror(-err));
            goto fail;
        }
        admin_set_tls(c->admin, c->admin_tls);
    }
    return c;
fail:
    control_free(c);
    return NULL;
}

static void admin_tls_warn(void *arg, const char *msg)
{
    (void)arg;
    log_warn("admin: tls: %s", msg);
}

int control_admin_tls_new(const conf_t *conf, tls_server_t **ret, FILE *errs)
{
    *ret = NULL;
    if (!conf->admin_enabled || !conf->admin_tls.enabled)
        return 0;
    tls_cert_files_t files = {.cert = conf->admin_tls.cert, .key = conf->admin_tls.key};
    tls_server_conf_t tc = {
        .certs = &files,
        .ncerts = 1,
        .profile = TLS_PROFILE_INTERMEDIATE,
        .warn = admin_tls_warn,
        .client_ca = conf->admin_tls.client_ca,
    };
    char err[1024] = "";
    *ret = tls_server_new(&tc, err, sizeof(err));
    if (!*ret) {
        fprintf(errs, "admin: tls: %s\n", err);
        return -EINVAL;
    }
    return 0;
}

static void *control_main(void *arg)
{
    control_t *c = arg;
    int r = loop_run(c->loop);
    if (r < 0)
        log_error("control thread: event loop failed: %s", strerror(-r));
    return NULL;
}

int control_start(control_t *c)
{
    int r = pthread_create(&c->thread, NULL, control_main, c);
    if (r != 0)
        return -r;
    c->started = true;
    return 0;
}

void control_stop(control_t *c)
{
    if (!c->started)
        return;
    loop_async_send(&c->stop);
    pthread_join(c->thread, NULL);
    c->started = false;
}

void control_free(control_t *c)
{
    if (!c)
        return;
    admin_free(c->admin);
    if (c->watch_ready)
        watch_deinit(&c->watch);
    tls_server_free(c->admin_tls);
    tls_server_free(c->pending_admin_tls);
    health_free(c->health);
    if (c->loop) {
        loop_timer_stop(c->loop, &c->failover_timer);
        loop_async_deinit(c->loop, &c->stop);
        loop_async_deinit(c->loop, &c->reload);
        loop_free(c->loop);
    }
    conf_unref(c->conf);
    conf_unref(c->pending_conf);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}
