/* The control thread: see control.h. Today it serves the admin listener;
 * health checks, monitors and objectives will run on the same loop. */
#include "admin/control.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "core/log.h"
#include "core/loop.h"

struct control {
    conf_t *conf;
    gateway_t *gateway;
    loop_t *loop;
    loop_async_t stop;
    admin_t *admin;
    pthread_t thread;
    bool started;
};

static int healthz_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    (void)ud;
    return admin_response_append(res, "ok\n", 3);
}

static int metrics_cb(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    control_t *c = ud;
    prom_t *p = admin_response_prom(res);
    if (!p)
        return -ENOMEM;
    gateway_metrics_write(c->gateway, p);
    return prom_error(p);
}

static const admin_route_t routes[] = {
    {"GET", "/healthz", healthz_cb, "liveness: 200 ok while the process serves"},
    {"GET", "/metrics", metrics_cb, "Prometheus metrics (text format 0.0.4)"},
};

static void stop_cb(loop_t *loop, loop_async_t *a)
{
    (void)a;
    loop_stop(loop);
}

control_t *control_new(conf_t *conf, gateway_t *g, FILE *errs)
{
    control_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->conf = conf_ref(conf);
    c->gateway = g;
    c->loop = loop_new();
    if (!c->loop || loop_async_init(c->loop, &c->stop, stop_cb) < 0) {
        fprintf(errs, "control thread: cannot create its event loop\n");
        goto fail;
    }
    if (conf->admin_enabled) {
        int err = 0;
        c->admin = admin_new(c->loop, &conf->admin_addr, routes, sizeof(routes) / sizeof(routes[0]),
                             NULL, c, &err);
        if (!c->admin) {
            fprintf(errs, "admin: cannot listen on %s: %s\n", conf->admin_listen, strerror(-err));
            goto fail;
        }
    }
    return c;
fail:
    control_free(c);
    return NULL;
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
    if (c->loop) {
        loop_async_deinit(c->loop, &c->stop);
        loop_free(c->loop);
    }
    conf_unref(c->conf);
    free(c);
}
